//! `netrace kernel FILE --soak DURATION`: the soak oracle
//! ([`crate::kernel::soak`]) on a scenario's timed spec, set side by side
//! with `netrace simulate`'s model on the same plan, and judged by
//! [`soak::compare`] (docs/kernel-oracle.md, "netrace kernel --soak").
//!
//! Per variant: the plan is built from the scenario
//! ([`soak::plan_from_scenario`]: same containers, traffic, reply delays,
//! neighbour sysctls, profile); the kernel runs it once for DURATION of
//! real time; the model runs it `--runs` times (default
//! [`DEFAULT_MODEL_RUNS`]) for the same simulated duration, seeds `seed`
//! to `seed + runs − 1`, with the kernel's ARP table size (read from
//! `/proc/net/stat/arp_cache` before the soak) as its entries elsewhere;
//! the model gets the soak's apparatus, not a change of the scenario: a
//! slow container's ARP replies pass the delayer's pass-through as the
//! bridge measured it (request out of br0 to reply into br0, kernel
//! timestamps; each reply one of the measured values, drawn at random:
//! `ContainerTiming::relay_us`), and every request of a `tcp` flow after
//! its first leaves up to [`soak::TICK`] late (`Flow::late_us`: the soak's
//! TCP client sends only when its blocking read returns, so its requests
//! are never aligned to the microsecond with another flow's, as the
//! model's schedule otherwise is; docs/findings.md, "What the trap was"),
//! and vxlan1 starts with the tables the soak programs before its traffic
//! ([`soak::model_as_soaked`]: the soak has no driver, and the model's
//! would program a local peer only at its first l3miss; docs/findings.md,
//! "The soak's first contacts");
//! both are summarised alike ([`soak::model_summary`],
//! `SoakReport::summary`) and compared. Exit 0 when every variant agrees,
//! 1 when one disagrees, 2 on bad input or when the kernel cannot run.
//! Progress goes to stderr. Cleanup is the soak's: namespaces, the
//! `bridge monitor` child and threads are removed on every return, and
//! SIGINT/SIGTERM/SIGHUP remove the namespaces through the oracle's
//! handler before the process exits. `--soak-record FILE` also writes
//! each soak's report (FDB events, ARP frames with kernel timestamps, the
//! delayer's records) and the relay given to the model, as JSON.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::json;

use super::{emit, Format, KernelArgs};
use crate::kernel::soak::{self, Criterion, SoakComparison, SoakReport, Summary};
use crate::kernel::KernelError;
use crate::overlay::timed;
use crate::scenario::l2::{parse_span_us, L2Scenario, MAX_RUNS};
use crate::scenario::{InputError, Scenario};

/// Model runs per variant unless `--runs` says otherwise: enough that the
/// model's side of each test is a distribution, not one draw.
pub const DEFAULT_MODEL_RUNS: u32 = 20;

/// The shortest soak accepted, ms: below the probe timeout nothing is
/// judged.
const MIN_SOAK_MS: u64 = 5_000;

/// The most kernel soaks per variant `--soak-runs` accepts.
pub const MAX_SOAK_RUNS: u32 = 20;

/// `netrace kernel FILE --soak DURATION`.
pub(crate) fn cmd_kernel_soak(
    a: &KernelArgs,
    s: &Scenario,
    sc: &L2Scenario,
    duration: &str,
) -> Result<u8, InputError> {
    let file = a.scenario.display().to_string();
    if a.token.is_some() {
        return Err(InputError::whole(
            "--token",
            "--token names a schedule; a soak runs traffic, not a schedule",
            "drop --token, or drop --soak to run the schedule",
        ));
    }
    let duration_ms = match parse_span_us(duration) {
        Some(us)
            if us.is_multiple_of(1000)
                && (MIN_SOAK_MS..=soak::MAX_SOAK_MS).contains(&(us / 1000)) =>
        {
            us / 1000
        }
        _ => {
            return Err(InputError::whole(
                "--soak",
                format!("--soak {duration} is not a usable soak length"),
                "give 5s to 10m with a unit, e.g. --soak 20s",
            ))
        }
    };
    let runs = match a.runs {
        None => DEFAULT_MODEL_RUNS,
        Some(n) if (1..=i64::from(MAX_RUNS)).contains(&n) => n as u32,
        Some(n) => {
            return Err(InputError::whole(
                "--runs",
                format!("--runs {n} is out of range"),
                format!("give 1 to {MAX_RUNS} model runs"),
            ))
        }
    };
    let soak_runs = match a.soak_runs {
        None => 1,
        Some(n) if (1..=i64::from(MAX_SOAK_RUNS)).contains(&n) => n as u32,
        Some(n) => {
            return Err(InputError::whole(
                "--soak-runs",
                format!("--soak-runs {n} is out of range"),
                format!("give 1 to {MAX_SOAK_RUNS} kernel soaks per variant"),
            ))
        }
    };
    if sc.timed.flows.is_empty() {
        return Err(InputError::whole(
            file,
            "the scenario has no [[traffic]]: a soak has nothing to run",
            "add [[traffic]] entries with from, to, kind and every (docs/scenario-format.md)",
        ));
    }
    if let Some(v) = &a.variant {
        s.find_variant(v, "--variant")?;
    }
    // Every plan is built (and refused) before anything runs.
    let mut plans = Vec::new();
    for v in &sc.variants {
        if a.variant.as_ref().is_some_and(|w| *w != v.name) {
            continue;
        }
        let plan = soak::plan_from_scenario(&v.model, &sc.timed, duration_ms, a.seed)
            .map_err(|why| {
                InputError::whole(
                    file.clone(),
                    format!("variant {}: {why}", v.name),
                    "the soak oracle runs two hosts' containers with real stacks (docs/kernel-oracle.md)",
                )
            })?;
        plans.push((v, plan));
    }
    if let Err(e) = crate::kernel::preflight() {
        eprintln!("netrace kernel: {e}");
        return Ok(2);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let criterion = Criterion::default();
    let mut disagree = 0usize;
    // Opened before any soak, so an unwritable file costs no kernel time;
    // one JSON line per variant.
    let mut record = match &a.soak_record {
        Some(path) => Some((
            path,
            std::fs::File::create(path).map_err(|e| record_error(path, e))?,
        )),
        None => None,
    };
    for (v, plan) in plans {
        let elsewhere = soak::arp_cache_entries().unwrap_or(0);
        let mut reports = Vec::new();
        for k in 0..soak_runs {
            eprintln!(
                "netrace kernel --soak: {} · {}: soaking the kernel for {:.0} s, run {} of {soak_runs} ({} containers, {} flows)",
                s.name,
                v.name,
                duration_ms as f64 / 1e3,
                k + 1,
                plan.containers.len(),
                plan.flows.len()
            );
            let mut p = plan.clone();
            p.seed = a.seed.wrapping_add(u64::from(k));
            match soak::soak(&p) {
                Ok(r) => reports.push(r),
                Err(e @ KernelError::Unavailable(_)) | Err(e @ KernelError::Failed(_)) => {
                    eprintln!("netrace kernel --soak: {} · {}: {e}", s.name, v.name);
                    return Ok(2);
                }
            }
        }
        // The model runs as long as the shortest soak ran.
        let run_ms = reports
            .iter()
            .map(|r| r.duration_ms)
            .min()
            .unwrap_or(duration_ms);
        eprintln!(
            "netrace kernel --soak: {} · {}: {runs} model runs of {:.0} s",
            s.name,
            v.name,
            run_ms as f64 / 1e3
        );
        let started = Instant::now();
        let mut spec = sc.timed.clone();
        spec.entries_elsewhere = elsewhere;
        // The oracle's delayer relays every ARP reply of a slow container
        // through user space, late or not: the model's container gets the
        // pass-throughs the bridge saw in these soaks (replies passed on
        // at once), each reply one of them drawn at random, outside the
        // backlog, as the kernel's does.
        for (i, ep) in v.model.endpoints().iter().enumerate() {
            spec.containers[i].relay_us = relay_us(&reports, &plan, &ep.name);
        }
        // The soak's TCP client sends a request only when its blocking
        // read (timeout TICK) returns, so on an open connection every
        // request after the first leaves up to TICK after its due time;
        // the ping loop sleeps until the due time.
        for f in &mut spec.flows {
            if f.kind == timed::FlowKind::Tcp {
                f.late_us = soak::TICK.as_micros() as u64;
            }
        }
        if let Some((path, file)) = &mut record {
            let relays: std::collections::BTreeMap<&str, &[u64]> = v
                .model
                .endpoints()
                .iter()
                .enumerate()
                .map(|(i, ep)| (ep.name.as_str(), spec.containers[i].relay_us.as_slice()))
                .collect();
            let rec = json!({
                "scenario": s.name,
                "variant": v.name,
                "seed": a.seed,
                "relay_us": relays,
                "reports": reports,
            });
            std::io::Write::write_all(file, format!("{rec}\n").as_bytes())
                .map_err(|e| record_error(path, e))?;
        }
        // vxlan1's tables as the soak programs them before its traffic
        // (the soak has no driver; the model's would program a local peer
        // only at its first l3miss).
        let soaked = soak::model_as_soaked(&v.model, &plan).map_err(|why| {
            InputError::whole(
                file.clone(),
                format!("variant {}: {why}", v.name),
                "the soak oracle programs vxlan1 as the driver's join events do (docs/kernel-oracle.md)",
            )
        })?;
        let results: Vec<timed::RunResult> = (0..runs)
            .map(|r| {
                timed::run_once(
                    &soaked,
                    &spec,
                    a.seed.wrapping_add(u64::from(r)),
                    run_ms * 1000,
                    &|| false,
                )
            })
            .collect();
        let model = soak::model_summary(&soaked, &results);
        let kernel = reports
            .iter()
            .map(SoakReport::summary)
            .fold(Summary::default(), |a, b| a + b);
        let cmp = soak::compare(&model, &kernel, criterion);
        if !cmp.agree {
            disagree += 1;
        }
        eprintln!(
            "netrace kernel --soak: {} · {}: model done in {:.1} s: {}",
            s.name,
            v.name,
            started.elapsed().as_secs_f64(),
            if cmp.agree { "agree" } else { "DISAGREE" }
        );
        let text = match a.format {
            Format::Json => json_row(
                &s.name, &v.name, a.seed, elsewhere, &model, &kernel, &reports, &cmp,
            ),
            Format::Text => text_block(
                &s.name, &v.name, a.seed, runs, elsewhere, &reports, &model, &kernel, &cmp,
            ),
        };
        emit(&mut out, &text)?;
    }
    Ok(if disagree > 0 { 1 } else { 0 })
}

/// The error for a `--soak-record` file that cannot be written.
fn record_error(path: &std::path::Path, e: std::io::Error) -> InputError {
    InputError::whole(
        path.display().to_string(),
        format!("cannot write the soak record: {e}"),
        "give a writable file for --soak-record",
    )
}

/// The measured pass-throughs of `container`'s delayer, µs: for every
/// ARP reply its delayer passed on at once, the time from the request
/// leaving br0 for the container to the reply entering br0 from its veth
/// (kernel timestamps on the bridge port, [`SoakReport::reply_delays`]),
/// in order; empty when the container has no delayer. A sample counts as
/// passed on at once when it is under the shortest delay the delayer
/// draws (`min_ms`; under 1 ms when that is 0).
///
/// Not the delayer's own `held_ms` (from its socket's timestamp to its
/// send): the reply also crosses the container's stack, the `mirred`
/// redirect, the wake-up of the delayer's thread and, after the send, the
/// veth and a backlog on whichever CPU the thread ran; the bridge sees
/// 89–202 µs where `held_ms` said 17–181 µs (docs/findings.md, "What the
/// trap was"). And the values themselves, not a range between
/// percentiles: a uniform range put most draws where the kernel showed
/// none.
fn relay_us(reports: &[SoakReport], plan: &soak::SoakPlan, container: &str) -> Vec<u64> {
    match plan.containers.iter().find(|c| c.name == container) {
        Some(c) => relay_of(reports, c.reply_delay, container),
        None => Vec::new(),
    }
}

/// [`relay_us`] for a container with delayer `delay`.
fn relay_of(reports: &[SoakReport], delay: Option<soak::ReplyDelay>, container: &str) -> Vec<u64> {
    let Some(delay) = delay else {
        return Vec::new();
    };
    let below_ms = (delay.min_ms.max(1)) as f64;
    reports
        .iter()
        .flat_map(|report| report.reply_delays.iter())
        .filter(|h| h.container == container)
        .flat_map(|h| h.samples_ms.iter())
        .filter(|&&ms| ms >= 0.0 && ms < below_ms)
        .map(|&ms| (ms * 1e3).round() as u64)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn json_row(
    scenario: &str,
    variant: &str,
    seed: u64,
    elsewhere: usize,
    model: &Summary,
    kernel: &Summary,
    reports: &[SoakReport],
    cmp: &SoakComparison,
) -> String {
    let row = json!({
        "scenario": scenario,
        "variant": variant,
        "seed": seed,
        "duration_s": kernel.duration_ms as f64 / 1e3 / kernel.runs.max(1) as f64,
        "arp_entries_elsewhere": elsewhere,
        "model": model,
        "kernel": kernel,
        "kernel_runs": reports.iter().map(SoakReport::summary).collect::<Vec<_>>(),
        "arp_requests": reports.iter().map(|r| &r.request_fates).collect::<Vec<_>>(),
        "criterion": cmp.criterion,
        "metrics": cmp.rows,
        "agree": cmp.agree,
    });
    format!("{row}\n")
}

#[allow(clippy::too_many_arguments)]
fn text_block(
    scenario: &str,
    variant: &str,
    seed: u64,
    runs: u32,
    elsewhere: usize,
    reports: &[SoakReport],
    model: &Summary,
    kernel: &Summary,
    cmp: &SoakComparison,
) -> String {
    let mut t = String::new();
    let kruns = reports.len().max(1) as u64;
    let _ = writeln!(
        t,
        "{scenario} · {variant} — {kruns} soak(s) of {:.1} s on kernel {} (delayer seeds {seed}..{}) \
         against {runs} model runs (seeds {seed}..{}; ARP entries elsewhere {elsewhere})",
        kernel.duration_ms as f64 / 1e3 / kruns as f64,
        reports.first().map_or("?", |r| r.kernel.as_str()),
        seed.wrapping_add(kruns - 1),
        seed.wrapping_add(u64::from(runs) - 1)
    );
    let _ = writeln!(
        t,
        "  {:<28} {:>14} {:>14}   kernel per run",
        "per run", "model (mean)", "kernel (mean)"
    );
    let n = model.runs.max(1) as f64;
    let per: Vec<Summary> = reports.iter().map(SoakReport::summary).collect();
    type Pick = fn(&Summary) -> u64;
    let metrics: [(&str, Pick); 5] = [
        ("probes", |s| s.probes),
        ("lost", |s| s.lost),
        ("outage episodes", |s| s.episodes),
        ("host1 br0 FDB moves", |s| s.fdb_moves),
        ("ARP frames from containers", |s| s.arp_frames),
    ];
    for (what, pick) in metrics {
        let each: Vec<String> = per.iter().map(|s| pick(s).to_string()).collect();
        let _ = writeln!(
            t,
            "  {what:<28} {:>14.1} {:>14.1}   {}",
            pick(model) as f64 / n,
            pick(kernel) as f64 / kruns as f64,
            each.join(" ")
        );
    }
    for (k, report) in reports.iter().enumerate() {
        for f in &report.flows {
            let _ = writeln!(
                t,
                "  kernel run {} flow {} {} -> {}: {} probes, {} lost, {} episodes",
                k + 1,
                format!("{:?}", f.kind).to_lowercase(),
                f.from,
                f.to,
                f.sent,
                f.lost,
                f.episodes.len()
            );
        }
    }
    let (mut h, mut q) = (Vec::new(), Vec::new());
    for r in reports {
        let (a, b) = r.request_fates.totals();
        h.push(a);
        q.push(b);
    }
    let sum = |f: &dyn Fn(usize) -> u64| (0..reports.len()).map(f).sum::<u64>();
    let _ = writeln!(
        t,
        "  kernel ARP requests handed to containers: {} — answered {}; unanswered: run ended {}, \
         lost after the stack {}, stack silent {} (eth0 rx drops {})",
        sum(&|i| h[i].handed),
        sum(&|i| h[i].answered),
        sum(&|i| h[i].at_end),
        sum(&|i| h[i].lost_after_stack),
        sum(&|i| h[i].silent),
        reports
            .iter()
            .flat_map(|r| r.rx_dropped.values())
            .sum::<u64>()
    );
    let _ = writeln!(
        t,
        "  kernel ARP requests sent by containers: {} — answered by the target only {}, by a proxy \
         only {}, by both {}, source not seen {}; unanswered: reply dropped in br0 {}, target silent {}, proxy without \
         entry {}, never delivered {}, run ended {}",
        sum(&|i| q[i].sent),
        sum(&|i| q[i].real_only),
        sum(&|i| q[i].proxy_only),
        sum(&|i| q[i].proxy_and_real),
        sum(&|i| q[i].answered_unwatched),
        sum(&|i| q[i].reply_not_delivered),
        sum(&|i| q[i].target_silent),
        sum(&|i| q[i].proxy_silent),
        sum(&|i| q[i].not_delivered),
        sum(&|i| q[i].at_end)
    );
    for line in cmp.to_string().lines() {
        let _ = writeln!(t, "  {line}");
    }
    t.push('\n');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::soak::{DelayHistogram, DelayRecord, ReplyDelay, RequestFates};
    use std::collections::BTreeMap;

    fn report(samples_ms: Vec<f64>, held_ms: f64) -> SoakReport {
        SoakReport {
            duration_ms: 60_000,
            kernel: "test".into(),
            fdb_events: Vec::new(),
            fdb_moves: BTreeMap::new(),
            fdb_move_ms: Vec::new(),
            flows: Vec::new(),
            arp_frames: Vec::new(),
            reply_delays: vec![DelayHistogram {
                container: "db".into(),
                samples_ms,
                buckets: Vec::new(),
            }],
            delayer: BTreeMap::from([(
                "db".to_string(),
                vec![DelayRecord {
                    t_ms: 1.0,
                    asked_ms: 0,
                    held_ms,
                    target: std::net::Ipv4Addr::new(10, 0, 0, 2),
                }],
            )]),
            request_fates: RequestFates::default(),
            arp_events: Vec::new(),
            rx_dropped: BTreeMap::new(),
            namespaces: Vec::new(),
            processes: Vec::new(),
        }
    }

    /// The model's relay is what the bridge measured for the replies the
    /// delayer passed on at once (under its shortest delay), each value
    /// kept: not the delayer's own hold time, not the delayed replies.
    #[test]
    fn the_relay_is_the_bridge_measured_undelayed_reply_time() {
        let delay = Some(ReplyDelay {
            p: 0.05,
            min_ms: 5,
            max_ms: 80,
        });
        let reports = [report(vec![53.2, 0.099], 0.018), report(vec![0.202], 0.181)];
        assert_eq!(relay_of(&reports, delay, "db"), vec![99, 202]);
        assert!(relay_of(&reports, None, "db").is_empty());
        assert!(relay_of(&reports, delay, "web").is_empty());
    }
}
