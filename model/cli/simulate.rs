//! `netrace simulate`: seeded timed runs of an L2 scenario's traffic
//! ([`crate::overlay::timed`]), the distributions per variant, and the
//! timed properties' verdicts. Progress goes to stderr; Ctrl-C stops
//! after the run in progress and prints what was done (exit 130).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::json;

use super::{emit, limits, Format};
use crate::overlay::timed::{self, RunResult, Summary};
use crate::scenario::l2::{parse_span_us, L2Scenario, MAX_RUNS, MAX_SIM_US};
use crate::scenario::{self, InputError};

/// How many `bridge monitor fdb` lines the text output prints per variant.
const MONITOR_LINES: usize = 20;

/// How many episodes the text output lists per variant.
const EPISODE_LINES: usize = 10;

/// How many runs per variant `--svg` draws (the first ones).
pub const SVG_RUNS: usize = 10;

#[derive(clap::Args, Debug)]
pub(crate) struct SimulateArgs {
    /// The scenario file (kind = "l2", with [[traffic]]).
    pub(crate) scenario: PathBuf,
    /// Only this variant (default: every variant).
    #[arg(long)]
    pub(crate) variant: Option<String>,
    /// Simulated time per run (default: the scenario's [simulate]
    /// duration, else 15m), e.g. 90s, 15m, 2h.
    #[arg(long)]
    pub(crate) duration: Option<String>,
    /// Runs per variant (default: the scenario's [simulate] runs, else 100).
    #[arg(long)]
    pub(crate) runs: Option<i64>,
    /// The seed; run r uses seed + r.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
    /// Write an SVG timeline of each of the first 10 runs of each variant
    /// into this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) svg: Option<PathBuf>,
    /// The soak oracle's relay for a container, as `netrace kernel --soak`
    /// gives it to the model: NAME=V1,V2,... (µs), every ARP reply of NAME
    /// passes an extra delay drawn from these values outside the backlog
    /// (`ContainerTiming::relay_us`). Repeatable. For reproducing a soak's
    /// model side without the kernel (`--soak-record` writes the values).
    #[arg(long, value_name = "NAME=V1,V2,...")]
    pub(crate) relay: Vec<String>,
    /// Every request of a flow of this kind after its first leaves late by
    /// up to this much (uniform), as the soak comparison does for `tcp`
    /// (`Flow::late_us`; e.g. `tcp=20ms`). Repeatable.
    #[arg(long, value_name = "KIND=SPAN")]
    pub(crate) late: Vec<String>,
}

/// Parses `--relay NAME=V1,V2,...` (µs) into the container index and the
/// pass-throughs.
fn parse_relay(
    text: &str,
    model: &crate::overlay::system::OverlaySystem,
) -> Result<(usize, Vec<u64>), InputError> {
    let bad = || {
        InputError::whole(
            "--relay",
            format!("--relay {text} is not NAME=V1,V2,... (µs)"),
            "give a container name and pass-throughs in µs, e.g. --relay db=13,121,187",
        )
    };
    let (name, values) = text.split_once('=').ok_or_else(bad)?;
    let values = values
        .split(',')
        .map(|v| v.trim().parse::<u64>().ok().filter(|&v| v <= 10_000_000))
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(bad)?;
    let i = model
        .endpoints()
        .iter()
        .position(|e| e.name == name)
        .ok_or_else(|| {
            InputError::whole(
                "--relay",
                format!("--relay {text}: no container named {name}"),
                "name a container of the scenario",
            )
        })?;
    Ok((i, values))
}

/// Parses `--late KIND=SPAN`.
fn parse_late(text: &str) -> Result<(&str, u64), InputError> {
    let bad = || {
        InputError::whole(
            "--late",
            format!("--late {text} is not KIND=SPAN"),
            "give tcp or ping and a span up to 10s, e.g. --late tcp=20ms",
        )
    };
    let (kind, span) = text.split_once('=').ok_or_else(bad)?;
    if kind != "tcp" && kind != "ping" {
        return Err(bad());
    }
    match parse_span_us(span) {
        Some(us) if us <= 10_000_000 => Ok((kind, us)),
        _ => Err(bad()),
    }
}

/// `netrace simulate`: exit 0 when every `simulate_expect` is met, 1 when
/// a property expected "not violated" was violated, 3 when one expected
/// "violated" was not seen in the runs (sampling cannot show absence), 2
/// on bad input, 130 when interrupted.
pub(crate) fn cmd_simulate(a: SimulateArgs) -> Result<u8, InputError> {
    let s = scenario::load(&a.scenario)?;
    let file = a.scenario.display().to_string();
    let Some(sc) = s.system.downcast::<L2Scenario>() else {
        return Err(InputError::whole(
            file,
            format!("a {} scenario has no datapath to simulate", s.system.kind()),
            "netrace simulate takes an l2 scenario (kind = \"l2\") with [[traffic]]",
        ));
    };
    if sc.timed.flows.is_empty() {
        return Err(InputError::whole(
            file,
            "the scenario has no [[traffic]]: nothing to simulate",
            "add [[traffic]] entries with from, to, kind and every (docs/scenario-format.md)",
        ));
    }
    if let Some(v) = &a.variant {
        s.find_variant(v, "--variant")?;
    }
    let duration_us = match &a.duration {
        None => sc.timed.duration_us,
        Some(t) => match parse_span_us(t) {
            Some(us) if (1_000_000..=MAX_SIM_US).contains(&us) => us,
            _ => {
                return Err(InputError::whole(
                    "--duration",
                    format!("--duration {t} is not a usable run length"),
                    "give 1s to 24h with a unit, e.g. --duration 15m",
                ))
            }
        },
    };
    let runs = match a.runs {
        None => sc.timed.runs,
        Some(n) if (1..=i64::from(MAX_RUNS)).contains(&n) => n as u32,
        Some(n) => {
            return Err(InputError::whole(
                "--runs",
                format!("--runs {n} is out of range"),
                format!("give 1 to {MAX_RUNS} runs"),
            ))
        }
    };
    if let Some(dir) = &a.svg {
        std::fs::create_dir_all(dir).map_err(|e| {
            InputError::whole(
                dir.display().to_string(),
                format!("cannot create the directory: {e}"),
                "give a writable directory for --svg",
            )
        })?;
    }
    limits::catch_sigint();
    let stop = || limits::INTERRUPTED.load(Ordering::SeqCst);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut code = 0u8;
    for (vi, v) in sc.variants.iter().enumerate() {
        if a.variant.as_ref().is_some_and(|w| *w != v.name) {
            continue;
        }
        let started = Instant::now();
        let mut last = Instant::now();
        let mut results: Vec<RunResult> = Vec::new();
        let mut spec = sc.timed.clone();
        for text in &a.relay {
            let (i, range) = parse_relay(text, &v.model)?;
            spec.containers[i].relay_us = range;
        }
        for text in &a.late {
            let (kind, late_us) = parse_late(text)?;
            for f in &mut spec.flows {
                if f.kind.name() == kind {
                    f.late_us = late_us;
                }
            }
        }
        for r in 0..runs {
            let res = timed::run_once(
                &v.model,
                &spec,
                a.seed.wrapping_add(u64::from(r)),
                duration_us,
                &stop,
            );
            let cut = res.interrupted;
            if !cut {
                results.push(res);
            }
            if last.elapsed().as_secs() >= 2 {
                last = Instant::now();
                eprintln!(
                    "netrace simulate: {} · {}: run {}/{runs} ({:.0} s)",
                    s.name,
                    v.name,
                    r + 1,
                    started.elapsed().as_secs_f64()
                );
            }
            if cut || stop() {
                break;
            }
        }
        let sum = timed::summarize(&v.model, &spec, &results);
        if let Some(dir) = &a.svg {
            for (r, res) in results.iter().take(SVG_RUNS).enumerate() {
                let path = dir.join(format!("{}-{}-run{r}.svg", s.name, v.name));
                let svg = crate::picture::timeline::svg(&v.model, &spec, &s.name, &v.name, res);
                std::fs::write(&path, svg).map_err(|e| {
                    InputError::whole(
                        path.display().to_string(),
                        format!("cannot write the picture: {e}"),
                        "give a writable directory for --svg",
                    )
                })?;
            }
        }
        let expect = &sc.simulate_expect[vi];
        let mut judged = Vec::new();
        for (p, verdict) in &sum.verdicts {
            let seen = verdict.is_some();
            let j = match expect.get(*p) {
                None => "",
                Some(true) if seen => "as expected",
                Some(false) if !seen => "as expected",
                Some(false) => {
                    code = code.max(1);
                    "CONTRADICTS the expectation"
                }
                Some(true) => {
                    if code == 0 {
                        code = 3;
                    }
                    "expected violated: not seen (sampled)"
                }
            };
            judged.push((*p, verdict.clone(), j));
        }
        let text = match a.format {
            Format::Json => json_row(&s.name, &v.name, a.seed, duration_us, &sum, &judged),
            Format::Text => text_block(sc, vi, a.seed, duration_us, &sum, &judged, &results),
        };
        emit(&mut out, &text)?;
        if stop() {
            eprintln!("netrace simulate: interrupted; the runs finished are reported");
            return Ok(130);
        }
    }
    Ok(code)
}

/// Four decimals: enough for the figures, stable for byte comparison.
fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

type Judged<'a> = Vec<(&'a str, Option<(usize, String)>, &'a str)>;

fn verdict_words(seed: u64, runs: usize, v: &Option<(usize, String)>) -> String {
    match v {
        Some((r, why)) => format!(
            "violated in run {r} (seed {}; replay: --seed {} --runs 1): {why}",
            seed.wrapping_add(*r as u64),
            seed.wrapping_add(*r as u64)
        ),
        None => format!("not violated in {runs} runs (sampled: not a proof)"),
    }
}

fn json_row(
    scenario: &str,
    variant: &str,
    seed: u64,
    duration_us: u64,
    sum: &Summary,
    judged: &Judged,
) -> String {
    let props: serde_json::Map<String, serde_json::Value> = judged
        .iter()
        .map(|(p, v, j)| {
            (
                p.to_string(),
                json!({
                    "verdict": if v.is_some() { "violated" } else { "not violated" },
                    "witness_seed": v.as_ref().map(|(r, _)| seed.wrapping_add(*r as u64)),
                    "why": v.as_ref().map(|(_, w)| w.clone()),
                    "expectation": j,
                }),
            )
        })
        .collect();
    let row = json!({
        "scenario": scenario,
        "variant": variant,
        "runs": sum.runs,
        "seed": seed,
        "duration_s": duration_us as f64 / 1e6,
        "loss_mean": r4(sum.loss_mean),
        "episodes": sum.episodes,
        "episode_s_median": r4(sum.episode_s_median),
        "episode_s_max": r4(sum.episode_s_max),
        "recovered": sum.recovered.map(r4),
        "fdb_moves_mean": r4(sum.fdb_moves_mean),
        "arp_per_s_mean": r4(sum.arp_per_s_mean),
        "properties": props,
    });
    format!("{row}\n")
}

fn text_block(
    sc: &L2Scenario,
    vi: usize,
    seed: u64,
    duration_us: u64,
    sum: &Summary,
    judged: &Judged,
    results: &[RunResult],
) -> String {
    let v = &sc.variants[vi];
    let m = &v.model;
    let names: Vec<&str> = m.endpoints().iter().map(|e| e.name.as_str()).collect();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} · {} — {} runs of {:.0} s, seeds {}..{}",
        sc.name,
        v.name,
        sum.runs,
        duration_us as f64 / 1e6,
        seed,
        seed.wrapping_add(sum.runs.saturating_sub(1) as u64)
    );
    let _ = writeln!(
        t,
        "  loss {:.2}%  episodes {} (median {:.3} s, longest {:.3} s, {})  br0 FDB moves/run {:.1}  ARP frames/s {:.2}",
        100.0 * sum.loss_mean,
        sum.episodes,
        sum.episode_s_median,
        sum.episode_s_max,
        sum.recovered.map_or("none to end".to_string(), |r| format!(
            "{:.0}% ended by themselves",
            100.0 * r
        )),
        sum.fdb_moves_mean,
        sum.arp_per_s_mean
    );
    let _ = writeln!(t, "  per flow (all runs):");
    for (f, flow) in sc.timed.flows.iter().enumerate() {
        let (sent, lost) = results.iter().fold((0u64, 0u64), |(s, l), r| {
            (s + r.flows[f].sent, l + r.flows[f].lost)
        });
        let eps = results
            .iter()
            .map(|r| r.episodes.iter().filter(|e| e.flow == f).count())
            .sum::<usize>();
        let _ =
            writeln!(
            t,
            "    flow {} {} {} -> {} every {:.3} s x{}: {} requests, {} lost ({:.2}%), {} episodes",
            f + 1,
            flow.kind.name(),
            names[flow.from],
            names[flow.to],
            flow.every_us as f64 / 1e6,
            flow.burst,
            sent,
            lost,
            if sent == 0 { 0.0 } else { 100.0 * lost as f64 / sent as f64 },
            eps
        );
    }
    for (p, verdict, j) in judged {
        let _ = writeln!(
            t,
            "  {p:<20} {}{}",
            verdict_words(seed, sum.runs, verdict),
            if j.is_empty() {
                String::new()
            } else {
                format!("  [{j}]")
            }
        );
    }
    if let Some(first) = results.first() {
        let _ = writeln!(
            t,
            "  run 0 (seed {}): {} episodes, {} br0 FDB moves",
            first.seed,
            first.episodes.len(),
            first.fdb_moves
        );
        for e in first.episodes.iter().take(EPISODE_LINES) {
            let _ = writeln!(
                t,
                "    episode flow {}: {:.3} s – {} ({:.3} s, {} requests lost)",
                e.flow + 1,
                e.start_us as f64 / 1e6,
                e.end_us.map_or("not ended".to_string(), |x| format!(
                    "{:.3} s",
                    x as f64 / 1e6
                )),
                e.duration_us() as f64 / 1e6,
                e.lost
            );
        }
        if first.episodes.len() > EPISODE_LINES {
            let _ = writeln!(t, "    … {} more", first.episodes.len() - EPISODE_LINES);
        }
        if !first.moves.is_empty() {
            let _ = writeln!(t, "  bridge monitor fdb (run 0, moves only):");
        }
        for mv in first.moves.iter().take(MONITOR_LINES) {
            let _ = writeln!(t, "    {}", timed::monitor_line(m, mv));
        }
        if first.fdb_moves as usize > MONITOR_LINES {
            let _ = writeln!(t, "    … {} more", first.fdb_moves as usize - MONITOR_LINES);
        }
    }
    t.push('\n');
    t
}
