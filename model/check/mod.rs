//! Checking: every variant of a scenario against every property, with the
//! verdicts compared to the scenario's expectations.
//!
//! For each variant one search runs (exhaustive by default) and checks all
//! properties at once; each violation is shrunk ([`shrink`](crate::explore::shrink()))
//! and turned into a replay token. The results feed the matrix printed by
//! `netrace check` and its JSON lines.
//!
//! The properties themselves are defined beside the models they speak
//! about ([`crate::ipam::system`] for `ipam.*`); this module only runs them.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::explore::{self, token, Bounds, Options, Progress, Report, Stop, Strategy};
use crate::scenario::{Scenario, Verdict};
use crate::sim::Model;
pub mod linearizability;

/// A replayable counterexample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// Its length in steps, after shrinking.
    pub steps: usize,
    /// The replay token.
    pub token: String,
    /// What the property said about the violating state.
    pub message: String,
}

/// How a found verdict stands against the scenario's expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Judgement {
    /// Found what was expected, conclusively (or nothing was expected: an
    /// exploration reports what it found).
    Met,
    /// The search did not cover the space, so the expectation is neither
    /// met nor contradicted: `unknown`.
    Inconclusive,
    /// A conclusive verdict contradicts the expectation.
    Contradicted,
}

/// The verdict on one property of one variant.
#[derive(Clone, Debug)]
pub struct PropertyResult {
    /// The property's dotted name.
    pub property: &'static str,
    /// What the search found.
    pub verdict: Verdict,
    /// What the scenario expects, if it says (or `holds`, under
    /// `--expect-holds`).
    pub expected: Option<Verdict>,
    /// The found verdict against the expectation.
    pub judgement: Judgement,
    /// The shrunk counterexample of a violation.
    pub counterexample: Option<Counterexample>,
}

impl PropertyResult {
    /// True when the verdict is what was expected, conclusively.
    pub fn matches(&self) -> bool {
        self.judgement == Judgement::Met
    }

    /// The verdict as a cell of the fix matrix: `VIOLATED 12` (with the
    /// counterexample's length), `holds`, `unknown (max_states)`, ...
    pub fn cell(&self) -> String {
        match (&self.verdict, &self.counterexample) {
            (Verdict::Violated, Some(c)) => format!("VIOLATED {}", c.steps),
            (Verdict::Violated, None) => "VIOLATED".to_string(),
            (v, _) => v.words(),
        }
    }
}

/// Judges a found verdict against an expectation.
///
/// `expected = None` is an exploration: every verdict is reported and
/// none contradicts anything (except, with nothing conclusive found, the
/// run still says `unknown` in the matrix). An expectation of `holds` is
/// met only by `holds`: `vacuous` and `unknown` never pass for it.
pub fn judge(verdict: Verdict, expected: Option<Verdict>) -> Judgement {
    match expected {
        None => Judgement::Met,
        Some(e) if e == verdict => Judgement::Met,
        Some(_) if !verdict.is_conclusive() => Judgement::Inconclusive,
        Some(_) => Judgement::Contradicted,
    }
}

/// The verdict of one property from a search report.
pub fn verdict_of(report: &Report, property: usize) -> Verdict {
    if report.violations[property].is_some() {
        Verdict::Violated
    } else if !report.complete {
        Verdict::Unknown(report.stop.unwrap_or(Stop::Sampling))
    } else if !report.checked[property] {
        Verdict::Vacuous
    } else {
        Verdict::Holds
    }
}

/// Everything found about one variant.
#[derive(Clone, Debug)]
pub struct VariantResult {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file.
    pub file: String,
    /// The variant's name.
    pub variant: String,
    /// One result per property, in the model's order.
    pub properties: Vec<PropertyResult>,
    /// States visited (exhaustive) or steps walked (random).
    pub states: u64,
    /// Whether the whole bounded space was covered.
    pub complete: bool,
    /// Why the search ended early, if it did.
    pub stop: Option<Stop>,
    /// The bounds searched under.
    pub bounds: Bounds,
    /// The strategy's name (`bfs`, `random`).
    pub strategy: &'static str,
    /// The reductions that ran (`por`, `symmetry`).
    pub reductions: Vec<&'static str>,
    /// Bytes of the visited set and frontier at the end of the search.
    pub bytes: u64,
    /// Wall-clock time of the search and shrinking, in milliseconds.
    pub elapsed_ms: f64,
    /// Extra per-variant figures a system reports (the price of a fix).
    pub extra: Vec<(String, u64)>,
    /// The strategy's parameters for a sampled strategy: (seed, runs,
    /// PCT depth, 0 for random walks).
    pub sampling: Option<(u64, u64, u32)>,
    /// The shard this result covers (`--shard`), if only one.
    pub shard: Option<explore::Shard>,
    /// For a result of `netrace merge`: how many shards it combines.
    pub merged_shards: Option<u64>,
    /// The scenario's content hash (as in its replay tokens).
    pub scenario_hash: u32,
}

impl VariantResult {
    /// The worst judgement among the properties.
    pub fn judgement(&self) -> Judgement {
        self.properties
            .iter()
            .map(|p| p.judgement)
            .max()
            .unwrap_or(Judgement::Met)
    }
}

/// What a run of `check` over one variant is told.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// The scenario's name, file and content hash.
    pub scenario: &'a Scenario,
    /// Search options.
    pub options: &'a Options,
    /// Treat a property without an expectation as expected to hold.
    pub expect_holds: bool,
    /// Search each variant the way its scenario says (a variant's
    /// `explore`, else the scenario's `[explore]`), where it says;
    /// `options.strategy` elsewhere. False when the command line gave
    /// `--strategy`: then it applies everywhere.
    pub scenario_strategy: bool,
}

/// Searches one model and judges every property.
pub fn check_model<M: Model>(
    run: Run,
    variant: &str,
    model: &M,
    expect: &BTreeMap<String, Verdict>,
    progress: &mut dyn FnMut(Progress),
) -> VariantResult {
    let options = run.options;
    let started = Instant::now();
    let report = explore::explore(model, options, progress);
    let props = model.properties();
    let mut properties = Vec::with_capacity(props.len());
    for (i, (p, violation)) in props.iter().zip(&report.violations).enumerate() {
        let expected = expect
            .get(p.name)
            .copied()
            .or(run.expect_holds.then_some(Verdict::Holds));
        let verdict = verdict_of(&report, i);
        let counterexample = violation.as_ref().map(|v| {
            let mut schedule = explore::shrink(model, i, &v.schedule, options.bounds.max_depth);
            if let Some(shorter) = shorter_by_search(model, options, i, schedule.len()) {
                schedule = shorter;
            }
            // The message of the shrunk schedule may differ from the
            // first one found (other actors, other addresses).
            let message = explore::replay(model, &schedule)
                .ok()
                .and_then(|r| {
                    r.violated
                        .into_iter()
                        .find(|(n, _)| *n == p.name)
                        .map(|(_, m)| m)
                })
                .unwrap_or_else(|| v.message.clone());
            Counterexample {
                steps: schedule.len(),
                token: token::encode(run.scenario.into(), variant, &schedule),
                message,
            }
        });
        properties.push(PropertyResult {
            property: p.name,
            verdict,
            expected,
            judgement: judge(verdict, expected),
            counterexample,
        });
    }
    let (strategy, exhaustive) = (options.strategy.name(), options.strategy.is_exhaustive());
    let mut reductions = Vec::new();
    if exhaustive && options.por {
        reductions.push("por");
    }
    if exhaustive && options.symmetry && model.has_symmetry() {
        reductions.push("symmetry");
    }
    VariantResult {
        scenario: run.scenario.name.clone(),
        file: run.scenario.path.display().to_string(),
        variant: variant.to_string(),
        properties,
        states: report.states,
        complete: report.complete,
        stop: report.stop,
        bounds: options.bounds,
        strategy,
        reductions,
        bytes: report.bytes,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        extra: Vec::new(),
        sampling: match options.strategy {
            Strategy::Random { seed, walks } => Some((seed, walks, 0)),
            Strategy::Pct { seed, runs, depth } => Some((seed, runs, depth)),
            Strategy::Bfs | Strategy::Dfs => None,
        },
        shard: options.shard,
        merged_shards: None,
        scenario_hash: run.scenario.content_hash,
    }
}

/// The most states the search for a shorter counterexample of a sampled
/// violation may visit.
pub const SHORTER_SEARCH_STATES: u64 = 200_000;

/// The search for a shorter counterexample may compute about this many
/// successors: its state budget is this divided by the number of actions
/// enabled in the initial state (capped at [`SHORTER_SEARCH_STATES`]), so
/// a scenario of 50 concurrent actors gets 10,000 states, not 200,000
/// states of 50 successors each.
pub const SHORTER_SEARCH_WORK: u64 = 500_000;

/// A sampling strategy's violation, shrunk by step removal, can still be
/// longer than the shortest one (a random walk orders steps in ways no
/// removal undoes). A breadth-first search bounded to fewer steps than the
/// shrunk schedule, and to [`SHORTER_SEARCH_STATES`] and
/// [`SHORTER_SEARCH_WORK`], finds the shortest one when the space is
/// small enough: then the random counterexample is as short as the
/// breadth-first search's. It checks only that property and stops at its
/// first violation. Breadth-first searches need none.
fn shorter_by_search<M: Model>(
    model: &M,
    options: &Options,
    property: usize,
    len: usize,
) -> Option<Vec<u32>> {
    if options.strategy == Strategy::Bfs || len <= 1 {
        return None;
    }
    let mut enabled = Vec::new();
    model.actions(&model.init_state(), &mut enabled);
    let budget = (SHORTER_SEARCH_WORK / (enabled.len() as u64).max(1)).min(SHORTER_SEARCH_STATES);
    let search = Options {
        bounds: Bounds {
            max_states: options.bounds.max_states.min(budget),
            max_depth: (len - 1) as u32,
        },
        strategy: Strategy::Bfs,
        stop_at_first: false,
        target: Some(property),
        ..*options
    };
    let r = explore::bfs(model, &search, &mut |_| {});
    let found = r.violations[property].as_ref()?;
    let shrunk = explore::shrink(model, property, &found.schedule, options.bounds.max_depth);
    (shrunk.len() < len).then_some(shrunk)
}

/// Checks the variants of a scenario (all, or those named in `only`),
/// calling `done` with each variant's result as soon as it is known.
/// Stops after a variant whose search was interrupted, and with
/// `stop_at_first` after the first variant that contradicts its expectations.
pub fn check_scenario(
    run: Run,
    only: Option<&str>,
    progress: &mut dyn FnMut(&str, Progress),
    done: &mut dyn FnMut(&VariantResult),
) -> Vec<VariantResult> {
    let scenario = run.scenario;
    let mut out = Vec::new();
    let mut finish = |r: VariantResult, out: &mut Vec<VariantResult>| -> bool {
        done(&r);
        // Stop after an interrupted search, and with `stop_at_first`
        // (`--fail-fast`) after the first variant that contradicts.
        let go_on = r.stop != Some(Stop::Interrupted)
            && !(run.options.stop_at_first && r.judgement() == Judgement::Contradicted);
        out.push(r);
        go_on
    };
    for v in scenario.system.variants() {
        if only.is_some_and(|o| o != v.name()) {
            continue;
        }
        let mut p = |pr: Progress| progress(v.name(), pr);
        let own = run
            .scenario_strategy
            .then(|| v.explore().or(scenario.explore))
            .flatten();
        let options = Options {
            strategy: own.unwrap_or(run.options.strategy),
            ..*run.options
        };
        let run = Run {
            options: &options,
            ..run
        };
        if !finish(v.check(run, &mut p), &mut out) {
            break;
        }
    }
    out
}
