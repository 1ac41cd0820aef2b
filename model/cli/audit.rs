//! `netrace audit --docker-log FILE`: reads the log, writes and checks the
//! scenario of each window of concurrent requests ([`crate::audit`]).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::audit::{self, dockerlog, Held, Settings, Window};
use crate::check::{Judgement, Run, VariantResult};
use crate::explore::Options;
use crate::ipam::profile::PROFILE_NAMES;
use crate::scenario::{self, InputError, Verdict};

use super::{emit, limits, output, Format};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["docker_log", "netns", "from_dump"])))]
pub(crate) struct AuditArgs {
    /// A dockerd log with debug lines (logrus text format: `time="..."
    /// level=debug msg="..."`), e.g. from `journalctl -u docker.service`
    /// or /var/log/upstart/docker.log, with the daemon started with
    /// `--debug` (or `"debug": true` in /etc/docker/daemon.json).
    #[arg(long, value_name = "FILE")]
    pub(crate) docker_log: Option<PathBuf>,
    /// A live overlay network namespace (an `ip netns` name; root): its
    /// bridge, vxlan device, their ports, neighbour and FDB tables are
    /// read with `ip -j` and `bridge -j`, as the L2 model's state.
    #[arg(long, value_name = "NAME")]
    pub(crate) netns: Option<String>,
    /// The same, from saved outputs: DIR/link.json (`ip -j -d link
    /// show`), addr.json (`ip -j addr show`), neigh.json (`ip -j neigh
    /// show`) and fdb.json (`bridge -j fdb show`), each run in the
    /// overlay namespace.
    #[arg(long, value_name = "DIR")]
    pub(crate) from_dump: Option<PathBuf>,
    /// --docker-log: the longest gap between two assignments of one
    /// window of concurrent requests (`docker run`s started together).
    #[arg(long, default_value = "1s")]
    pub(crate) window: String,
    /// The daemon's profile, then the profiles to compare it with
    /// (repeatable). --docker-log: default the profile of the version the
    /// log's `Docker daemon` line gives, else libnetwork-17.05, then the
    /// later fixes; classic-swarm-cas for a GlobalDefault pool. --netns,
    /// --from-dump: the overlay driver's mode, classic-17.03 (default) or
    /// swarm-mode (once).
    #[arg(long, value_name = "PROFILE")]
    pub(crate) profile: Vec<String>,
    /// --netns, --from-dump: a driver-side fix deployed on the host
    /// (locality-check, vxlan-fdb-zero, delete-local-arp), which the
    /// tables cannot show. Repeatable.
    #[arg(long, value_name = "FIX")]
    pub(crate) fix: Vec<String>,
    /// --netns, --from-dump: this host's VTEP (its advertise address),
    /// when the vxlan device has no local address.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) vtep: Option<String>,
    /// --docker-log: the addresses held before the window's releases, as
    /// A-B (default: from the first allocatable address up to the highest
    /// released one, as on a daemon whose containers filled the pool in
    /// order).
    #[arg(long, value_name = "A-B")]
    pub(crate) held: Option<String>,
    /// --docker-log: tie a network to its pool when the log does not
    /// (e.g. --pool bridge=LocalDefault/172.17.0.0/16). Repeatable.
    #[arg(long, value_name = "NETWORK=POOL")]
    pub(crate) pool: Vec<String>,
    /// --docker-log: write the scenario of each checked window into this
    /// directory (NAME.toml). --netns, --from-dump: write the scenario of
    /// the state into this file (and, when the seed's workaround applies,
    /// the state after it beside it as STEM.after-workaround.toml).
    /// Replay their counterexamples with `netrace replay`.
    #[arg(long, value_name = "DIR|FILE")]
    pub(crate) emit_scenario: Option<PathBuf>,
    /// Output format: text, or one JSON object per hazard.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

fn parse_held(text: &str) -> Result<Held, InputError> {
    let bad = || {
        InputError::whole(
            "--held",
            format!("--held {text} is not a range of addresses"),
            "give A-B with A <= B, e.g. --held 172.17.0.2-172.17.0.40",
        )
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok(Held::Range(a, b))
}

/// Runs `netrace audit`.
pub(crate) fn cmd_audit(a: AuditArgs, paint: output::Paint) -> Result<u8, InputError> {
    let Some(path) = a.docker_log.clone() else {
        return super::audit_l2::cmd_audit_l2(a, paint);
    };
    for (flag, given) in [("--fix", !a.fix.is_empty()), ("--vtep", a.vtep.is_some())] {
        if given {
            return Err(InputError::whole(
                flag,
                format!("{flag} applies to --netns and --from-dump, not to --docker-log"),
                "drop it, or audit an overlay namespace",
            ));
        }
    }
    let path = &path;
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        InputError::whole(
            file.clone(),
            format!("cannot read the log: {e}"),
            "check the path; save the daemon's log first, e.g. journalctl -u docker.service > docker.log",
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let log = dockerlog::parse(&text);
    let debug_hint = "give dockerd's own log (journalctl -u docker.service, /var/log/upstart/docker.log, \
                      /var/log/docker.log) with debug lines: start dockerd with --debug or set \"debug\": true \
                      in /etc/docker/daemon.json";
    if log.lines.is_empty() && log.other_dockerd == 0 {
        if let Some(&l) = log.bad_time.first() {
            return Err(InputError {
                file,
                line: l,
                column: 1,
                message: "the time= of this line is not an RFC 3339 timestamp".into(),
                hint:
                    "dockerd writes time=\"2017-05-03T17:36:40.406182314Z\"; give its log unchanged"
                        .into(),
            });
        }
        let first = text
            .lines()
            .position(|l| !l.trim().is_empty())
            .map_or(0, |i| i + 1);
        return Err(InputError {
            file,
            line: first,
            column: usize::from(first > 0),
            message: format!(
                "no dockerd log line (time=\"...\" level=... msg=\"...\") in {} line(s)",
                text.lines().count()
            ),
            hint: debug_hint.into(),
        });
    }
    if !log
        .lines
        .iter()
        .any(|l| matches!(l.event, dockerlog::Event::Assigning { .. }))
    {
        return Err(InputError::whole(
            file,
            format!(
                "no address assignment (\"Assigning addresses for endpoint ...\") among {} dockerd line(s): nothing to audit",
                log.lines.len() + log.other_dockerd
            ),
            debug_hint,
        ));
    }
    let window_ns = limits::parse_duration("--window", &a.window)?.as_nanos() as i64;
    let held = match &a.held {
        Some(t) => parse_held(t)?,
        None => Held::UpToHighestRelease,
    };
    let mut pools = std::collections::BTreeMap::new();
    for p in &a.pool {
        let bad = || {
            InputError::whole(
                "--pool",
                format!("--pool {p} is not NETWORK=POOL"),
                "give the network's name and its pool id as the log writes it, e.g. --pool bridge=LocalDefault/172.17.0.0/16",
            )
        };
        let (net, id) = p.split_once('=').ok_or_else(bad)?;
        audit::Pool::parse(id).ok_or_else(bad)?;
        pools.insert(net.to_string(), id.to_string());
    }
    for p in &a.profile {
        if !PROFILE_NAMES.contains(&p.as_str()) {
            return Err(InputError::whole(
                "--profile",
                format!("unknown profile {p:?}"),
                format!("profiles: {}", PROFILE_NAMES.join(", ")),
            ));
        }
    }
    let shown_name = path
        .file_name()
        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
    let settings = Settings {
        file: shown_name,
        window_ns,
        held,
        pools,
        profiles: a.profile.clone(),
    };
    let arranged = audit::arrange(&log, &settings);
    if let Some(dir) = &a.emit_scenario {
        std::fs::create_dir_all(dir).map_err(|e| {
            InputError::whole(
                dir.display().to_string(),
                format!("cannot create the directory: {e}"),
                "give --emit-scenario a writable directory",
            )
        })?;
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut hazards = 0usize;
    let mut inconclusive = 0usize;
    let mut checked = 0usize;
    let mut worst = Judgement::Met;
    let candidates: Vec<&Window> = arranged
        .windows
        .iter()
        .filter(|w| w.is_candidate())
        .collect();
    for w in &candidates {
        let (profiles, reason) = profiles_for(w, &settings, &arranged);
        let generated = match audit::scenario(w, &settings, &profiles, &reason) {
            Ok(g) => g,
            Err(audit::Unwritable(why)) => {
                inconclusive += 1;
                worst = worst.max(Judgement::Inconclusive);
                if a.format == Format::Text {
                    let mut t = window_head(w);
                    let _ = writeln!(t, "  not checked: {why}\n");
                    emit(&mut out, &t)?;
                }
                continue;
            }
        };
        let scenario_path = match &a.emit_scenario {
            Some(dir) => dir.join(format!("{}.toml", w.scenario_name())),
            None => PathBuf::from(format!("{}.toml", w.scenario_name())),
        };
        if a.emit_scenario.is_some() {
            super::write_file(&scenario_path, &generated.toml)?;
        }
        // The normal loader: the generated text is validated like any file.
        let s = scenario::load_str(
            &scenario_path.display().to_string(),
            &generated.toml,
            &scenario_path,
        )?;
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
        checked += 1;
        let daemon = &results[0];
        let violated = daemon
            .properties
            .iter()
            .any(|p| p.verdict == Verdict::Violated);
        let unknown = daemon
            .properties
            .iter()
            .any(|p| matches!(p.verdict, Verdict::Unknown(_)));
        if violated {
            hazards += 1;
            worst = worst.max(Judgement::Contradicted);
        } else if unknown {
            inconclusive += 1;
            worst = worst.max(Judgement::Inconclusive);
        }
        match a.format {
            Format::Text => {
                let t = window_text(
                    w,
                    &generated,
                    &reason,
                    &s,
                    &results,
                    a.emit_scenario.is_some(),
                    paint,
                );
                emit(&mut out, &t)?;
            }
            Format::Json => {
                let rows = json_rows(
                    w,
                    &generated,
                    &results,
                    a.emit_scenario.as_ref().map(|_| scenario_path.as_path()),
                );
                emit(&mut out, &rows)?;
            }
        }
    }
    if a.format == Format::Text {
        let networks: std::collections::BTreeSet<&str> = arranged
            .windows
            .iter()
            .map(|w| w.network.as_str())
            .collect();
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{file}: {} line(s) about addresses and endpoints read, {} other dockerd line(s) and {} foreign line(s) skipped; \
             {} IPv4 assignment(s) on {} network(s) ({}), {} repeated Assigning line(s) (createEndpoint's second pass, no IPv4 request)",
            log.lines.len(),
            log.other_dockerd,
            log.foreign,
            arranged.assignments,
            networks.len(),
            networks.iter().copied().collect::<Vec<_>>().join(", "),
            arranged.second_passes,
        );
        if !arranged.preferred.is_empty() {
            let _ = writeln!(
                t,
                "  {} request(s) for a preferred address (docker run --ip) are not modelled (lines {:?})",
                arranged.preferred.len(),
                arranged.preferred
            );
        }
        let window_words = audit::duration_words(window_ns);
        if candidates.is_empty() {
            let _ = writeln!(
                t,
                "no overlapping requests: no two assignments on one network start within --window {} ({window_words}) of each other; nothing to check, no hazard",
                a.window
            );
        } else {
            let _ = writeln!(
                t,
                "{} window(s) of concurrent requests (assignments at most {window_words} apart) of {} window(s), {checked} checked: {hazards} hazard(s) under the daemon's profile{}",
                candidates.len(),
                arranged.windows.len(),
                if inconclusive > 0 {
                    format!(", {inconclusive} inconclusive")
                } else {
                    String::new()
                }
            );
        }
        emit(&mut out, &t)?;
    }
    Ok(super::exit_code(worst))
}

/// The variants of a window's scenario, the daemon's first, and why.
fn profiles_for(w: &Window, settings: &Settings, arranged: &audit::Audit) -> (Vec<String>, String) {
    if !settings.profiles.is_empty() {
        return (settings.profiles.clone(), "given by --profile".to_string());
    }
    if w.pool.as_ref().is_some_and(audit::Pool::is_global) {
        return (
            vec!["classic-swarm-cas".to_string()],
            "a GlobalDefault pool is global scope: the handle lives in the store".to_string(),
        );
    }
    let from = |first: &str| -> Vec<String> {
        audit::LOCAL_PROFILES
            .iter()
            .skip_while(|p| **p != first)
            .map(|p| p.to_string())
            .collect()
    };
    if let Some((v, line)) = &arranged.version {
        if let Some(p) = audit::profile_of_version(v) {
            return (
                from(p),
                format!("{}:{line} says dockerd version {v}", settings.file),
            );
        }
    }
    (
        from("libnetwork-17.05"),
        "the log does not say the daemon's version (no \"Docker daemon\" line): 17.05 assumed; pass --profile".to_string(),
    )
}

fn window_head(w: &Window) -> String {
    let (start, end) = w.span_ns();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "window {} · network {} · pool {} · {} assignment(s) within {} ({} … {})",
        w.index,
        w.network,
        w.pool.as_ref().map_or("unknown", |p| p.id.as_str()),
        w.runs.len(),
        audit::duration_words(end - start),
        w.runs[0].1.time,
        w.runs.last().unwrap().1.time,
    );
    t
}

fn window_text(
    w: &Window,
    generated: &audit::Generated,
    reason: &str,
    s: &scenario::Scenario,
    results: &[VariantResult],
    emitted: bool,
    paint: output::Paint,
) -> String {
    let mut t = window_head(w);
    let _ = writeln!(t, "  timeline:");
    for l in &w.timeline {
        let _ = writeln!(t, "    {l}");
    }
    let _ = writeln!(t, "  pool: {}", w.pool_reason);
    let _ = writeln!(t, "  setup: {}", generated.assumption);
    let _ = writeln!(
        t,
        "  daemon's profile: {} ({reason})",
        generated.profiles[0]
    );
    let _ = writeln!(t);
    let matrix = output::matrix(s, results, paint);
    let mut blank = false;
    for line in matrix.lines() {
        // An audit's scenario expects nothing: no line about expectations.
        if line.trim() == "every verdict matches the scenario's expectation"
            || (blank && line.trim().is_empty())
        {
            continue;
        }
        blank = line.trim().is_empty();
        let _ = writeln!(t, "{}", format!("  {line}").trim_end());
    }
    let daemon = &results[0];
    let violated: Vec<&str> = daemon
        .properties
        .iter()
        .filter(|p| p.verdict == Verdict::Violated)
        .map(|p| p.property)
        .collect();
    let closing: Vec<&str> = results[1..]
        .iter()
        .filter(|r| r.properties.iter().all(|p| p.verdict == Verdict::Holds))
        .map(|r| r.variant.as_str())
        .collect();
    if violated.is_empty() {
        let _ = writeln!(t, "  no hazard under {}", daemon.variant);
    } else {
        let _ = writeln!(
            t,
            "  HAZARD under {}: {}{}",
            daemon.variant,
            violated.join(", "),
            if closing.is_empty() {
                String::new()
            } else {
                format!("; closed by {}", closing.join(", "))
            }
        );
    }
    if !emitted {
        let _ = writeln!(
            t,
            "  (the scenario was not written: rerun with --emit-scenario DIR to replay; the tokens stay valid)"
        );
    }
    let _ = writeln!(t);
    t
}

fn json_rows(
    w: &Window,
    generated: &audit::Generated,
    results: &[VariantResult],
    path: Option<&Path>,
) -> String {
    let mut t = String::new();
    let (start, end) = w.span_ns();
    for (i, r) in results.iter().enumerate() {
        for p in &r.properties {
            let Some(c) = &p.counterexample else { continue };
            let row = serde_json::json!({
                "window": w.index,
                "start": w.runs[0].1.time,
                "end": w.runs.last().unwrap().1.time,
                "start_ns": start,
                "end_ns": end,
                "network": w.network,
                "pool": w.pool.as_ref().map(|p| p.id.clone()),
                "endpoints": w.runs.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
                "log_lines": w.runs.iter().map(|(_, a)| a.line).collect::<Vec<_>>(),
                "released": w.releases_before.iter().chain(&w.releases_during).map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
                "assumption": generated.assumption,
                "variant": r.variant,
                "daemon_profile": i == 0,
                "property": p.property,
                "verdict": p.verdict.as_str(),
                "message": c.message,
                "steps": c.steps,
                "token": c.token,
                "scenario": path.map(|p| p.display().to_string()),
            });
            let _ = writeln!(t, "{row}");
        }
    }
    t
}
