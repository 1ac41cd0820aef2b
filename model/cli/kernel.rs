//! `netrace kernel`: runs an L2 schedule on the real kernel (see
//! [`crate::kernel`]) and prints the model and the kernel side by side.

use std::fmt::Write as _;
use std::io::Write;

use serde_json::json;

use super::output::format_ms;
use super::{Format, KernelArgs};
use crate::explore::token;
use crate::scenario::cluster::ClusterScenario;
use crate::scenario::l2::L2Scenario;
use crate::scenario::{self, InputError, Scenario};

/// `netrace kernel`: exit 0 when the kernel agrees with the model on
/// every variant run, 1 when it disagrees on one, 2 when it cannot run
/// (not root, no network namespaces, a schedule that cannot be forced).
pub(crate) fn cmd_kernel(a: KernelArgs) -> Result<u8, InputError> {
    use crate::kernel::{self, ScheduleSource};
    use crate::overlay::oracle;

    let s = scenario::load(&a.scenario)?;
    // Checked before anything runs, as `check` checks them.
    let bounds = super::bounds_override(s.bounds, a.max_states, a.max_depth)?;
    if s.system.downcast::<ClusterScenario>().is_some() {
        if a.soak.is_some() {
            return Err(InputError::whole(
                a.scenario.display().to_string(),
                "--soak runs an l2 scenario's [[traffic]]; this is an overlay-cluster scenario",
                "give an l2 scenario with [[traffic]], or drop --soak",
            ));
        }
        return cmd_kernel_cluster(&a, &s);
    }
    let Some(sc) = s.system.downcast::<L2Scenario>() else {
        return Err(InputError::whole(
            a.scenario.display().to_string(),
            format!(
                "a {} scenario has no datapath to run on the kernel",
                s.system.kind()
            ),
            "netrace kernel takes an l2 or overlay-cluster scenario",
        ));
    };
    if let Some(d) = &a.soak {
        return super::soak::cmd_kernel_soak(&a, &s, sc, d);
    }
    if a.soak_record.is_some() {
        return Err(InputError::whole(
            "--soak-record",
            "--soak-record writes what a soak recorded, and no --soak was given",
            "add --soak DURATION, or drop --soak-record",
        ));
    }
    if a.soak_runs.is_some() {
        return Err(InputError::whole(
            "--soak-runs",
            "--soak-runs repeats a soak, and no --soak was given",
            "add --soak DURATION, or drop --soak-runs",
        ));
    }
    if sc.variants.iter().any(|v| v.model.time().is_some()) {
        return Err(InputError::whole(
            a.scenario.display().to_string(),
            "this scenario has a [time] table: its orders put neighbour timers and late \
             answers between frame deliveries, and the kernel oracle cannot force them (it \
             injects the frames of a schedule one cascade at a time; a real neighbour timer \
             fires when the kernel's clock says, with its random reachable_time and the timer \
             wheel's slack, not between two chosen deliveries)",
            "run the oracle on the untimed scenario with the same topology (remove [time]; \
             e.g. scenarios/classic-overlay-last-word.toml checks the same datapath for a \
             forced order); the timed behaviour is compared with real stacks statistically by \
             the soak oracle, not order by order",
        ));
    }
    let (token, wanted) = selection(&a, &s)?;
    let variants: Vec<_> = sc
        .variants
        .iter()
        .filter(|v| wanted.as_ref().is_none_or(|w| *w == v.name))
        .collect();
    let versions = match kernel::preflight() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("netrace kernel: {e}");
            return Ok(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut disagree, mut unrunnable) = (0usize, 0usize);
    for v in variants {
        // Progress on stderr: the schedule search and the run can take a
        // while; stdout stays the report.
        eprintln!(
            "netrace kernel: {} · {}: picking the schedule",
            s.name, v.name
        );
        let (schedule, source) = match (&token, &a.token) {
            (Some(t), Some(text)) => (t.schedule.clone(), ScheduleSource::Token(text.clone())),
            _ => kernel::default_schedule(&v.model, bounds),
        };
        let plan = oracle::plan(&v.model, &schedule).map_err(|d| {
            InputError::whole(
                "--token",
                format!("{d} (on variant {})", v.name),
                "a token runs on the variant and scenario version it was found with",
            )
        })?;
        // A schedule that waits longer than a run can, or ages faster
        // than the real clock can follow, is the scenario's to change.
        kernel::run::check_timing(&v.model, &plan).map_err(|why| {
            InputError::whole(
                a.scenario.display().to_string(),
                format!("variant {}: {why}", v.name),
                "the kernel oracle runs a script's waits on the real clock",
            )
        })?;
        if !plan.faithful() && token.is_none() {
            eprintln!(
                "netrace kernel: {} · {}: the {source} cannot be forced on a kernel: it depends \
                 on an interleaving inside one frame's cascade (pass it with --token to compare \
                 the oracle form's prediction anyway)",
                s.name, v.name
            );
            unrunnable += 1;
            continue;
        }
        eprintln!(
            "netrace kernel: {} · {}: running {} events on the kernel",
            s.name,
            v.name,
            plan.events.len()
        );
        let run = match kernel::run(&v.model, &plan, &kernel::RunOptions::default()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("netrace kernel: {} · {}: {e}", s.name, v.name);
                unrunnable += 1;
                continue;
            }
        };
        // A divergence at any step disagrees, not only in the final tables.
        let comparison = kernel::compare::compare_run(&v.model, &plan, &run);
        if !comparison.agree() {
            disagree += 1;
        }
        let report = KernelReport {
            scenario: &s,
            variant: &v.name,
            source: &source,
            token: token::encode((&s).into(), &v.name, &schedule),
            versions: &versions,
            plan: &plan,
            run: &run,
            comparison: &comparison,
        };
        let text = match a.format {
            Format::Text => kernel_text(&report),
            Format::Json => kernel_json(&report),
        };
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    Ok(if disagree > 0 {
        1
    } else if unrunnable > 0 {
        2
    } else {
        0
    })
}

/// `--token`, decoded against the scenario, and the variant to run
/// (`--variant`, else the token's; checked to exist), or `None` for all.
fn selection(
    a: &KernelArgs,
    s: &Scenario,
) -> Result<(Option<token::Token>, Option<String>), InputError> {
    let token = a
        .token
        .as_ref()
        .map(|t| {
            token::decode(s.into(), t).map_err(|e| {
                InputError::whole(
                    "--token",
                    format!("the token is not usable: {e}"),
                    format!(
                        "copy the token exactly as `netrace check {}` printed it",
                        a.scenario.display()
                    ),
                )
            })
        })
        .transpose()?;
    let wanted = a
        .variant
        .clone()
        .or_else(|| token.as_ref().map(|t| t.variant.clone()));
    if let Some(name) = &wanted {
        let what = if a.variant.is_some() {
            "--variant"
        } else {
            "--token"
        };
        s.find_variant(name, what)?;
    }
    Ok((token, wanted))
}

/// `netrace kernel` on an overlay-cluster scenario: each variant's
/// schedules (every one in a small space, else the first-action one and
/// the counterexamples; or the `--token`'s) on real vxlan devices in one
/// namespace per host ([`crate::kernel::cluster`]). Exit codes as for L2.
fn cmd_kernel_cluster(a: &KernelArgs, s: &Scenario) -> Result<u8, InputError> {
    use crate::kernel::{self, cluster};
    let sc = s
        .system
        .downcast::<ClusterScenario>()
        .expect("checked by the caller");
    let (token, wanted) = selection(a, s)?;
    let versions = match kernel::preflight() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("netrace kernel: {e}");
            return Ok(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut disagree, mut unrunnable) = (0usize, 0usize);
    for v in sc
        .variants
        .iter()
        .filter(|v| wanted.as_ref().is_none_or(|w| *w == v.name))
    {
        let schedules = match &token {
            Some(t) => vec![("the token's schedule".to_string(), t.schedule.clone())],
            None => cluster::schedules(&v.model),
        };
        let mut text = String::new();
        let _ = writeln!(
            text,
            "{} · variant {} — multi-host kernel oracle ({})",
            s.name,
            v.name,
            super::shown(&s.path)
        );
        let _ = writeln!(text, "  kernel {} · {}", versions.kernel, versions.iproute2);
        let mut rows = Vec::new();
        let mut bad = 0;
        for (what, schedule) in &schedules {
            eprintln!(
                "netrace kernel: {} · {}: {what} ({} steps) on {} hosts",
                s.name,
                v.name,
                schedule.len(),
                v.model.spec.hosts.len()
            );
            let run = match cluster::run(&v.model, schedule) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("netrace kernel: {} · {}: {e}", s.name, v.name);
                    unrunnable += 1;
                    continue;
                }
            };
            let token = token::encode(s.into(), &v.name, schedule);
            let _ = writeln!(
                text,
                "  {what}: {} steps, {} netlink requests ({} refused as the model said), {} frames, {} entries aged: {}",
                run.steps,
                run.requests,
                run.refused,
                run.frames,
                run.aged,
                if run.mismatches.is_empty() { "agrees" } else { "DISAGREES" }
            );
            let _ = writeln!(
                text,
                "    model trace: netrace replay {} {token}",
                super::shown(&s.path)
            );
            for m in &run.mismatches {
                let _ = writeln!(text, "    step {} on {}: {}", m.step, m.host, m.what);
            }
            bad += usize::from(!run.mismatches.is_empty());
            rows.push(json!({
                "scenario": s.name,
                "variant": v.name,
                "schedule": what,
                "token": token,
                "steps": run.steps,
                "requests": run.requests,
                "refused": run.refused,
                "frames": run.frames,
                "aged": run.aged,
                "agrees": run.mismatches.is_empty(),
                "mismatches": run.mismatches.iter().map(|m| json!({"step": m.step, "host": m.host, "what": m.what})).collect::<Vec<_>>(),
                "kernel": versions.kernel,
                "iproute2": versions.iproute2,
            }));
        }
        disagree += bad;
        let _ = writeln!(
            text,
            "result: the kernel {} with the model on {} of {} schedules\n",
            if bad == 0 { "AGREES" } else { "DISAGREES" },
            rows.len() - bad,
            rows.len()
        );
        let printed = match a.format {
            Format::Text => text,
            Format::Json => rows.iter().map(|r| format!("{r}\n")).collect(),
        };
        let _ = out.write_all(printed.as_bytes());
        let _ = out.flush();
    }
    Ok(if disagree > 0 {
        1
    } else if unrunnable > 0 {
        2
    } else {
        0
    })
}

/// Everything `netrace kernel` prints about one variant.
pub struct KernelReport<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The variant's name.
    pub variant: &'a str,
    /// Where the schedule came from.
    pub source: &'a crate::kernel::ScheduleSource,
    /// A replay token for the schedule.
    pub token: String,
    /// Kernel and iproute2 versions.
    pub versions: &'a crate::kernel::Versions,
    /// The plan run.
    pub plan: &'a crate::overlay::oracle::Plan,
    /// What the kernel did.
    pub run: &'a crate::kernel::KernelRun,
    /// The comparison.
    pub comparison: &'a crate::kernel::Comparison,
}

/// The kernel oracle's side-by-side comparison, for people.
pub fn kernel_text(r: &KernelReport) -> String {
    let mut out = String::new();
    let s = r.scenario;
    let _ = writeln!(
        out,
        "{} · variant {} — kernel oracle ({})",
        s.name,
        r.variant,
        super::shown(&s.path)
    );
    let _ = writeln!(
        out,
        "  kernel {} · {}",
        r.versions.kernel, r.versions.iproute2
    );
    let _ = writeln!(out, "  schedule: {}", r.source);
    let _ = writeln!(
        out,
        "    model trace: netrace replay {} {}",
        super::shown(&s.path),
        r.token
    );
    if r.plan.faithful() {
        let _ = writeln!(
            out,
            "  plan: {} events; faithful (run one at a time they give the schedule's own observables)",
            r.plan.events.len()
        );
    } else {
        let _ = writeln!(
            out,
            "  plan: {} events; NOT FAITHFUL: this schedule depends on an interleaving inside one \
             frame's cascade, which no kernel run can force.\n  The model column below is the \
             oracle form's prediction for the events run one at a time, not the schedule's.",
            r.plan.events.len()
        );
    }
    let _ = writeln!(
        out,
        "  namespaces: {} ({}, all removed after the run)",
        r.run
            .namespaces
            .first()
            .and_then(|n| n.rsplit_once('-'))
            .map_or_else(String::new, |(p, _)| format!("{p}-*")),
        r.run.namespaces.len()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  events, in order; each waited for until its predicted effect showed in the kernel:"
    );
    let width = r.run.events.len().to_string().len();
    for (i, e) in r.run.events.iter().enumerate() {
        let mark = if e.reached { " " } else { "✗" };
        let _ = writeln!(
            out,
            "  {mark} {:>width$}. {}  [{}]",
            i + 1,
            e.what,
            format_ms(e.waited_ms)
        );
        if let Some(m) = &e.missing {
            let _ = writeln!(out, "    {:>width$}  not reached: {m}", "");
        }
    }
    for t in &r.comparison.tables {
        let _ = writeln!(out);
        let kw = t
            .rows
            .iter()
            .map(|x| x.key.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let mw = t
            .rows
            .iter()
            .map(|x| x.model.as_deref().unwrap_or("-").chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let _ = writeln!(
            out,
            "  {}{}",
            t.name,
            if t.agree() { "" } else { "   ✗ DIFFERS" }
        );
        if t.rows.is_empty() {
            let _ = writeln!(out, "      (empty in both)");
            continue;
        }
        let _ = writeln!(out, "    {:kw$}  {:mw$}  kernel", "", "model");
        for row in &t.rows {
            let _ = writeln!(
                out,
                "  {} {:kw$}  {:mw$}  {}",
                if row.agree { " " } else { "✗" },
                row.key,
                row.model.as_deref().unwrap_or("-"),
                row.kernel.as_deref().unwrap_or("-")
            );
            if let Some((m, k)) = &row.detail {
                let _ = writeln!(out, "      model:");
                for f in m {
                    let _ = writeln!(out, "        {f}");
                }
                let _ = writeln!(out, "      kernel:");
                for f in k {
                    let _ = writeln!(out, "        {f}");
                }
            }
        }
    }
    let _ = writeln!(out);
    if r.comparison.agree() {
        let _ = writeln!(
            out,
            "result: the kernel AGREES with the model on every table"
        );
    } else {
        let _ = writeln!(
            out,
            "result: the kernel DISAGREES with the model on: {}",
            r.comparison.disagreeing().join("; ")
        );
        if let Some(i) = r.run.first_divergence {
            let _ = writeln!(
                out,
                "  first seen after event {}: {}",
                i + 1,
                r.run.events[i].what
            );
        }
    }
    let _ = writeln!(out);
    out
}

/// The kernel oracle's comparison as one JSON object (one line).
pub fn kernel_json(r: &KernelReport) -> String {
    let obj = json!({
        "scenario": r.scenario.name,
        "variant": r.variant,
        "schedule": {
            "source": r.source,
            "token": r.token,
        },
        "faithful": r.plan.faithful(),
        "versions": r.versions,
        "events": r.run.events,
        "first_divergence": r.run.first_divergence.map(|i| i + 1),
        "clock_lag_ms": r.run.clock_lag_ms,
        "model": r.plan.expected,
        "kernel": r.run.observed,
        "tables": r.comparison.tables.iter().map(|t| json!({
            "name": t.name,
            "agree": t.agree(),
            "rows": t.rows,
        })).collect::<Vec<_>>(),
        "agree": r.comparison.agree(),
    });
    format!("{obj}\n")
}
