//! `netrace audit --netns NAME` and `--from-dump DIR`: an overlay
//! namespace's tables read as the L2 model's state ([`crate::audit::overlay`]),
//! written as a scenario, checked under the host as read and each fix, and
//! the hazards printed with their counterexamples and the remedy.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::audit::overlay::{self, Generated, ReadError, Reading};
use crate::audit::{live, overlay::Settings};
use crate::check::{Judgement, Run, VariantResult};
use crate::explore::Options;
use crate::kernel::KernelError;
use crate::overlay::{Fix, PROFILE_NAMES};
use crate::scenario::{self, InputError, Verdict};

use super::audit::AuditArgs;
use super::{emit, limits, output, Format};

/// One checked scenario: the state as read, or after the workaround.
struct Checked {
    generated: Generated,
    path: PathBuf,
    results: Vec<VariantResult>,
    label: &'static str,
    scenario: scenario::Scenario,
}

fn check(g: Generated, path: PathBuf, label: &'static str) -> Result<Checked, InputError> {
    // The normal loader: the generated text is validated like any file.
    let s = scenario::load_str(&path.display().to_string(), &g.toml, &path)?;
    let options = Options {
        limits: limits::run_limits(limits::default_max_memory(), None),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Options::default()
    };
    let options = Options {
        bounds: s.bounds,
        ..options
    };
    let run = Run {
        scenario: &s,
        options: &options,
        expect_holds: false,
        scenario_strategy: true,
    };
    let results = crate::check::check_scenario(run, None, &mut |_, _| {}, &mut |_| {});
    Ok(Checked {
        generated: g,
        path,
        results,
        label,
        scenario: s,
    })
}

fn after_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or("audit".to_string(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}.after-workaround.toml"))
}

/// Runs `netrace audit --netns` / `--from-dump`.
pub(crate) fn cmd_audit_l2(a: AuditArgs, paint: output::Paint) -> Result<u8, InputError> {
    for (flag, given) in [
        ("--held", a.held.is_some()),
        ("--pool", !a.pool.is_empty()),
        ("--window", a.window != "1s"),
    ] {
        if given {
            return Err(InputError::whole(
                flag,
                format!("{flag} applies to --docker-log, not to an overlay namespace"),
                "drop it",
            ));
        }
    }
    let profile = match a.profile.as_slice() {
        [] => None,
        [p] if PROFILE_NAMES.contains(&p.as_str()) => Some(p.clone()),
        [p] => {
            return Err(InputError::whole(
                "--profile",
                format!("unknown overlay driver profile {p:?}"),
                format!("profiles: {}", PROFILE_NAMES.join(", ")),
            ))
        }
        _ => {
            return Err(InputError::whole(
                "--profile",
                "an overlay namespace has one driver: give --profile once",
                "the fixes and swarm mode are compared with it anyway",
            ))
        }
    };
    let mut fixes = Vec::new();
    for f in &a.fix {
        let names: Vec<&str> = Fix::ALL.iter().map(|(n, _)| *n).collect();
        let fix = Fix::parse(f).ok_or_else(|| {
            InputError::whole(
                "--fix",
                format!("unknown fix {f:?}"),
                format!("fixes: {}", names.join(", ")),
            )
        })?;
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    }
    let vtep = match &a.vtep {
        None => None,
        Some(t) => Some(t.parse::<Ipv4Addr>().map_err(|_| {
            InputError::whole(
                "--vtep",
                format!("--vtep {t} is not an IPv4 address"),
                "give the host's underlay (advertise) address, e.g. --vtep 192.168.100.1",
            )
        })?),
    };
    let (texts, origin, netns, label) = if let Some(ns) = &a.netns {
        let texts = live::read_netns(ns).map_err(|e| {
            let hint = match &e {
                KernelError::Unavailable(_) => "auditing a live namespace needs root and iproute2; or save the four outputs (docs/audit.md) and use --from-dump DIR".to_string(),
                KernelError::Failed(_) => "check the name with `ip netns list` (Docker's namespaces are in /var/run/docker/netns: `ip netns attach NAME PID`, or save a dump with nsenter, docs/audit.md)".to_string(),
            };
            let (KernelError::Unavailable(why) | KernelError::Failed(why)) = &e;
            InputError::whole(
                format!("--netns {ns}"),
                format!("cannot read the namespace: {why}"),
                hint,
            )
        })?;
        (
            texts,
            format!("namespace {ns}"),
            Some(ns.clone()),
            ns.clone(),
        )
    } else {
        let dir = a.from_dump.clone().expect("the group requires a source");
        let texts = live::read_dump(&dir)?;
        let label = dir.file_name().map_or("dump".to_string(), |n| {
            format!("dump-{}", n.to_string_lossy())
        });
        (texts, format!("the dump in {}", dir.display()), None, label)
    };
    let tables = texts.parse()?;
    let peers = match &netns {
        Some(ns) => live::find_peers(ns, &tables),
        None => Default::default(),
    };
    let names = texts.names();
    let settings = Settings {
        netns: netns.clone(),
        label,
        origin: origin.clone(),
        inputs: names.clone(),
        profile,
        fixes,
        vtep,
        peers,
    };
    let reading = match overlay::read(&tables, &settings) {
        Ok(r) => r,
        Err(ReadError::NotOverlay(n)) => {
            return Err(InputError {
                file: names[0].clone(),
                line: n.line,
                column: usize::from(n.line > 0),
                message: n.message,
                hint: n.hint,
            })
        }
        Err(ReadError::Unmodelled(u)) => {
            let t = format!(
                "{origin}: read, but not modelled: {}\nno verdict: the model has no place for this state (exit 3)\n",
                u.0
            );
            if a.format == Format::Text {
                emit(&mut std::io::stdout().lock(), &t)?;
            } else {
                eprint!("{t}");
            }
            return Ok(3);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let Some(generated) = reading.scenario(false) else {
        let t = format!(
            "{}{}: no local container could be modelled: nothing to check{}\n",
            state_text(&reading),
            origin,
            if reading.gaps_matter() {
                " (inconclusive: see what is not represented)"
            } else {
                ", no hazard"
            }
        );
        if a.format == Format::Text {
            emit(&mut out, &t)?;
        }
        return Ok(if reading.gaps_matter() { 3 } else { 0 });
    };
    let path = a
        .emit_scenario
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.toml", generated.name)));
    if a.emit_scenario.is_some() {
        super::write_file(&path, &generated.toml)?;
    }
    let mut checked = vec![check(generated, path.clone(), "as read")?];
    if !reading.workaround.is_empty() {
        let g = reading.scenario(true).expect("the same containers");
        let p = after_path(&path);
        if a.emit_scenario.is_some() {
            super::write_file(&p, &g.toml)?;
        }
        checked.push(check(g, p, "after the workaround")?);
    }
    let live_result = &checked[0].results[0];
    let violated: Vec<&str> = live_result
        .properties
        .iter()
        .filter(|p| p.verdict == Verdict::Violated)
        .map(|p| p.property)
        .collect();
    let unknown = checked.iter().any(|c| {
        c.results[0]
            .properties
            .iter()
            .any(|p| matches!(p.verdict, Verdict::Unknown(_)))
    });
    let outage: Vec<&overlay::Learned> = reading
        .learned
        .iter()
        .filter(|l| l.wrong.is_some())
        .collect();
    let worst = if !violated.is_empty() || !outage.is_empty() {
        Judgement::Contradicted
    } else if unknown || reading.gaps_matter() {
        Judgement::Inconclusive
    } else {
        Judgement::Met
    };
    match a.format {
        Format::Text => {
            let t = report(
                &reading,
                &checked,
                &violated,
                &outage,
                a.emit_scenario.is_some(),
                worst,
                paint,
            );
            emit(&mut out, &t)?;
        }
        Format::Json => {
            let t = json_rows(&reading, &checked, &outage, a.emit_scenario.is_some());
            emit(&mut out, &t)?;
        }
    }
    Ok(super::exit_code(worst))
}

/// What was read, in words.
fn state_text(r: &Reading) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "overlay namespace read from {}", r.origin);
    let ports: Vec<String> = r
        .ports
        .iter()
        .map(|(n, f)| {
            format!(
                "{n} (learning {}, neigh_suppress {})",
                if f.learning { "on" } else { "off" },
                if f.neigh_suppress { "on" } else { "off" }
            )
        })
        .collect();
    let _ = writeln!(
        t,
        "  {}: {}/{}, ageing {} s; ports: {}",
        r.bridge,
        r.gateway,
        r.subnet.prefix_len(),
        r.ageing_s,
        ports.join(", ")
    );
    let _ = writeln!(
        t,
        "  {}: vni {}, {}; this host's VTEP {} ({})",
        r.vxlan, r.vni, r.vx_flags, r.vtep.0, r.vtep.1
    );
    let _ = writeln!(t, "  local containers (behind {}'s ports):", r.bridge);
    if r.locals.is_empty() {
        let _ = writeln!(t, "    (none)");
    }
    for l in &r.locals {
        let mac = l
            .mac
            .as_ref()
            .map_or("MAC unknown".to_string(), |(m, _)| m.to_string());
        let ip =
            l.ip.as_ref()
                .map_or("address unknown".to_string(), |(a, _)| a.to_string());
        let _ = writeln!(
            t,
            "    {:<10} {:<15} {}  on {}{}{}",
            l.name,
            ip,
            mac,
            l.port,
            if l.answered {
                format!("  ← {} answers ARP for it", r.vxlan)
            } else {
                String::new()
            },
            if l.modelled { "" } else { "  (not modelled)" }
        );
        if let Some((_, from)) = &l.mac {
            let _ = writeln!(t, "               MAC from {from}");
        }
        if let Some((_, from)) = &l.ip {
            let _ = writeln!(t, "               address from {from}");
        }
    }
    if !r.remotes.is_empty() {
        let rs: Vec<String> = r
            .remotes
            .iter()
            .map(|(_, a, m, d)| format!("{a} {m} at {d}"))
            .collect();
        let _ = writeln!(t, "  remote peers on {}: {}", r.vxlan, rs.join(", "));
    }
    if r.learned.is_empty() {
        let _ = writeln!(t, "  {} has learned no MAC", r.bridge);
    } else {
        let _ = writeln!(t, "  {} has learned:", r.bridge);
        for l in &r.learned {
            let _ = writeln!(
                t,
                "    {} on {}{}",
                l.mac,
                l.port,
                match &l.wrong {
                    Some(n) =>
                        format!("  ← {n}'s MAC on another port: traffic to {n} is being lost now"),
                    None => String::new(),
                }
            );
        }
        let _ = writeln!(
            t,
            "    (not carried into the scenario, which starts from an empty FDB, as after the ageing time)"
        );
    }
    let _ = writeln!(t, "  driver: {} ({})", r.profile.0, r.profile.1);
    for (f, why) in &r.fixes {
        let _ = writeln!(t, "  fix in place: {} ({why})", f.name());
    }
    for g in &r.gaps {
        let _ = writeln!(
            t,
            "  not represented{}: {}",
            if g.matters {
                " (could change a verdict)"
            } else {
                ""
            },
            g.what
        );
    }
    let (links, neigh, fdb) = r.counts;
    let _ = writeln!(
        t,
        "  read: {links} device(s), {neigh} neighbour entr(y/ies), {fdb} FDB entr(y/ies)"
    );
    t
}

fn matrix_text(t: &mut String, c: &Checked, paint: output::Paint) {
    let matrix = output::matrix(&c.scenario, &c.results, paint);
    let mut blank = false;
    let mut skip_next = false;
    let others: Vec<String> = c.results[1..]
        .iter()
        .map(|r| format!("{} · ", r.variant))
        .collect();
    for line in matrix.lines() {
        if skip_next {
            skip_next = false;
            continue;
        }
        // Only the host's own counterexamples: the fixes' are in the JSON
        // rows, their verdicts in the matrix and the lines below it.
        if others
            .iter()
            .any(|o| line.trim_start().starts_with(o.as_str()))
        {
            skip_next = true;
            continue;
        }
        // An audit's scenario expects nothing: no line about expectations.
        if line.trim() == "every verdict matches the scenario's expectation"
            || (blank && line.trim().is_empty())
        {
            continue;
        }
        blank = line.trim().is_empty();
        let _ = writeln!(t, "{}", format!("  {line}").trim_end());
    }
}

/// One line per variant: what it closes, what remains, its price.
fn fix_line(r: &VariantResult, live: &VariantResult) -> String {
    let floods = |v: &VariantResult| {
        v.extra
            .iter()
            .find(|(k, _)| k == "floods")
            .map_or(0, |(_, n)| *n)
    };
    let remaining: Vec<String> = r
        .properties
        .iter()
        .filter(|p| p.verdict == Verdict::Violated)
        .map(|p| match &p.counterexample {
            Some(c) => format!("{} ({} steps)", p.property, c.steps),
            None => p.property.to_string(),
        })
        .collect();
    let unknown: Vec<&str> = r
        .properties
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Unknown(_)))
        .map(|p| p.property)
        .collect();
    let closes: Vec<&str> = live
        .properties
        .iter()
        .zip(&r.properties)
        .filter(|(l, v)| l.verdict == Verdict::Violated && v.verdict != Verdict::Violated)
        .map(|(l, _)| l.property)
        .collect();
    let mut s = if remaining.is_empty() && unknown.is_empty() {
        "every property holds".to_string()
    } else if remaining.is_empty() {
        format!("unknown: {}", unknown.join(", "))
    } else {
        format!("remaining: {}", remaining.join(", "))
    };
    if !closes.is_empty() && !remaining.is_empty() {
        s.push_str(&format!("; closes {}", closes.join(", ")));
    }
    let (f, lf) = (floods(r), floods(live));
    if f != lf {
        s.push_str(&format!(
            "; price: {f} flooded unicast frame(s) on the canonical schedule ({lf} for live)"
        ));
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn report(
    r: &Reading,
    checked: &[Checked],
    violated: &[&str],
    outage: &[&overlay::Learned],
    emitted: bool,
    worst: Judgement,
    paint: output::Paint,
) -> String {
    let mut t = state_text(r);
    let _ = writeln!(t);
    let answered = r.answered();
    if answered.is_empty() {
        let _ = writeln!(t, "{} answers ARP for no local container.", r.vxlan);
    } else {
        let who: Vec<String> = answered
            .iter()
            .map(|l| {
                format!(
                    "{} ({})",
                    l.name,
                    l.ip_addr().map_or("?".into(), |a| a.to_string())
                )
            })
            .collect();
        let _ = writeln!(
            t,
            "{} answers ARP for {} local container(s): {}: with proxy on, a local ARP request for them gets two replies, the seed's state.",
            r.vxlan,
            answered.len(),
            who.join(", ")
        );
    }
    let _ = writeln!(t, "checked: {}", checked[0].generated.checked);
    let _ = writeln!(t);
    for c in checked {
        let _ = writeln!(
            t,
            "── {}",
            if c.label == "as read" {
                "the host as read"
            } else {
                "the host after the seed's workaround (the ip neigh del lines below)"
            }
        );
        matrix_text(&mut t, c, paint);
        if c.results[1..]
            .iter()
            .any(|r| r.properties.iter().any(|p| p.counterexample.is_some()))
        {
            let _ = writeln!(t, "  (the other variants' counterexamples: --format json)");
        }
        let _ = writeln!(t);
    }
    let live = &checked[0].results[0];
    if !outage.is_empty() {
        for l in outage {
            let n = l.wrong.as_deref().unwrap_or("?");
            let _ = writeln!(
                t,
                "NOW: {} has {n}'s MAC {} on {}, not on its own port: frames to {n} go into {} and are lost until {n} sends from its own port (l2.fdb_correct is violated on the host now)",
                r.bridge, l.mac, l.port, l.port
            );
        }
    }
    if violated.is_empty() {
        let props: Vec<&str> = live.properties.iter().map(|p| p.property).collect();
        let _ = writeln!(
            t,
            "no hazard as read (variant live, driver {}): {} checked over {} {} state(s); {} answers ARP for no local container{}{}",
            r.profile.0,
            props.join(", "),
            if live.complete { "the whole space of" } else { "part of the space," },
            live.states,
            r.vxlan,
            if r.learned.is_empty() || !outage.is_empty() { String::new() } else { format!("; every MAC {} has learned is on its container's port", r.bridge) },
            if worst == Judgement::Inconclusive {
                ": but inconclusive, a search did not cover its space or the state holds what the model cannot represent (see above)"
            } else {
                ""
            }
        );
    } else {
        let _ = writeln!(
            t,
            "HAZARD as read (variant live, driver {}): {}",
            r.profile.0,
            violated.join(", ")
        );
        if answered.is_empty() {
            let _ = writeln!(
                t,
                "  {} holds no entry for a local container yet: the driver's miss path programs them on the first ARP request that reaches {} (the counterexamples show it)",
                r.vxlan, r.vxlan
            );
        }
    }
    if !r.workaround.is_empty() {
        let _ = writeln!(
            t,
            "the seed's workaround, on this host (delete {}'s ARP entries for local containers):",
            r.vxlan
        );
        for l in &r.workaround {
            let _ = writeln!(t, "  {l}");
        }
        if r.netns.is_none() {
            let _ = writeln!(t, "  (run them in the overlay namespace: ip netns exec NS ... or nsenter --net=FILE ...)");
        }
    }
    let _ = writeln!(t, "the fixes, as the matrix found them:");
    for c in checked {
        let base = &c.results[0];
        for v in &c.results {
            if std::ptr::eq(v, base) && c.label == "as read" {
                continue;
            }
            let _ = writeln!(
                t,
                "  {:<16} {:<22} {}",
                v.variant,
                c.label,
                fix_line(v, if c.label == "as read" { live } else { base })
            );
        }
    }
    if !emitted {
        let _ = writeln!(
            t,
            "(the scenario was not written: rerun with --emit-scenario FILE to replay; the tokens stay valid)"
        );
    }
    t
}

fn json_rows(
    r: &Reading,
    checked: &[Checked],
    outage: &[&overlay::Learned],
    emitted: bool,
) -> String {
    let mut t = String::new();
    let answers: Vec<String> = r.answered().iter().map(|l| l.name.clone()).collect();
    let gaps: Vec<serde_json::Value> = r
        .gaps
        .iter()
        .map(|g| serde_json::json!({"what": g.what, "matters": g.matters}))
        .collect();
    for l in outage {
        let row = serde_json::json!({
            "source": r.origin,
            "netns": r.netns,
            "state": "observed",
            "variant": null,
            "live": true,
            "property": "l2.fdb_correct",
            "verdict": "violated",
            "message": format!("{} has {}'s MAC {} on {}, not on its own port", r.bridge, l.wrong.as_deref().unwrap_or("?"), l.mac, l.port),
            "steps": null,
            "token": null,
            "scenario": null,
            "answers_for": answers,
            "remedy": r.workaround,
            "not_represented": gaps,
        });
        let _ = writeln!(t, "{row}");
    }
    for c in checked {
        for (i, v) in c.results.iter().enumerate() {
            for p in &v.properties {
                let Some(ce) = &p.counterexample else {
                    continue;
                };
                let row = serde_json::json!({
                    "source": r.origin,
                    "netns": r.netns,
                    "state": c.label,
                    "variant": v.variant,
                    "live": i == 0 && c.label == "as read",
                    "property": p.property,
                    "verdict": p.verdict.as_str(),
                    "message": ce.message,
                    "steps": ce.steps,
                    "token": ce.token,
                    "scenario": emitted.then(|| c.path.display().to_string()),
                    "answers_for": answers,
                    "remedy": r.workaround,
                    "not_represented": gaps,
                });
                let _ = writeln!(t, "{row}");
            }
        }
    }
    t
}
