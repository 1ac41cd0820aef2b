//! Checking: every variant of a scenario against every property, with the
//! verdicts compared to the scenario's expectations.
//!
//! For each variant one search runs (exhaustive by default) and checks all
//! properties at once; each violation is shrunk ([`crate::explore::shrink`])
//! and turned into a replay token. The results feed the matrix printed by
//! `netrace check` and its JSON lines.
//!
//! The properties themselves are defined beside the models they speak
//! about ([`crate::ipam::system`] for `ipam.*`); this module only runs them.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::explore::{self, token, Options, Progress};
use crate::scenario::{Scenario, System, Verdict};
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

/// The verdict on one property of one variant.
#[derive(Clone, Debug)]
pub struct PropertyResult {
    /// The property's dotted name.
    pub property: &'static str,
    /// What the search found.
    pub verdict: Verdict,
    /// What the scenario expects, if it says.
    pub expected: Option<Verdict>,
    /// Found = expected (or holds, where nothing is expected).
    pub matches: bool,
    /// The shrunk counterexample of a violation.
    pub counterexample: Option<Counterexample>,
}

/// Everything found about one variant.
#[derive(Clone, Debug)]
pub struct VariantResult {
    /// The scenario's name.
    pub scenario: String,
    /// The variant's name.
    pub variant: String,
    /// One result per property, in the model's order.
    pub properties: Vec<PropertyResult>,
    /// States visited (exhaustive) or steps walked (random).
    pub states: u64,
    /// Whether the whole bounded space was covered.
    pub complete: bool,
    /// Which bound stopped the search, if any.
    pub bound_hit: Option<&'static str>,
    /// Wall-clock time of the search and shrinking, in milliseconds.
    pub elapsed_ms: f64,
    /// Extra per-variant figures a system reports (the price of a fix).
    pub extra: Vec<(String, String)>,
}

impl VariantResult {
    /// True when every property matches.
    pub fn all_match(&self) -> bool {
        self.properties.iter().all(|p| p.matches)
    }
}

/// Searches one model and judges every property.
pub fn check_model<M: Model>(
    scenario: &str,
    variant: &str,
    model: &M,
    expect: &BTreeMap<String, Verdict>,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> VariantResult {
    let started = Instant::now();
    let report = explore::explore(model, options, progress);
    let props = model.properties();
    let mut properties = Vec::with_capacity(props.len());
    for (i, (p, violation)) in props.iter().zip(&report.violations).enumerate() {
        let expected = expect.get(p.name).copied();
        let (verdict, counterexample) = match violation {
            None => (Verdict::Holds, None),
            Some(v) => {
                let schedule = explore::shrink(model, i, &v.schedule, options.bounds.max_depth);
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
                (
                    Verdict::Violated,
                    Some(Counterexample {
                        steps: schedule.len(),
                        token: token::encode(scenario, variant, &schedule),
                        message,
                    }),
                )
            }
        };
        properties.push(PropertyResult {
            property: p.name,
            verdict,
            expected,
            matches: expected.map_or(verdict == Verdict::Holds, |e| e == verdict),
            counterexample,
        });
    }
    VariantResult {
        scenario: scenario.to_string(),
        variant: variant.to_string(),
        properties,
        states: report.states,
        complete: report.complete,
        bound_hit: report.bound_hit,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        extra: Vec::new(),
    }
}

/// Checks the variants of a scenario (all, or those named in `only`).
pub fn check_scenario(
    scenario: &Scenario,
    options: &Options,
    only: Option<&str>,
    progress: &mut dyn FnMut(&str, Progress),
) -> Vec<VariantResult> {
    let mut out = Vec::new();
    match &scenario.system {
        System::Ipam(s) => {
            for v in &s.variants {
                if only.is_some_and(|o| o != v.name) {
                    continue;
                }
                let mut p = |pr: Progress| progress(&v.name, pr);
                out.push(check_model(
                    &scenario.name,
                    &v.name,
                    &v.model,
                    &v.expect,
                    options,
                    &mut p,
                ));
            }
        }
        System::L2(s) => {
            for v in &s.variants {
                if only.is_some_and(|o| o != v.name) {
                    continue;
                }
                let mut p = |pr: Progress| progress(&v.name, pr);
                let mut r = check_model(
                    &scenario.name,
                    &v.name,
                    &v.model,
                    &v.expect,
                    options,
                    &mut p,
                );
                // The price of a fix: unicast frames flooded because a
                // bridge did not know the destination, on the schedule
                // that always takes the first enabled action.
                let floods = v
                    .model
                    .canonical_count("unicast_floods", options.bounds.max_depth);
                r.extra.push(("floods".to_string(), floods.to_string()));
                out.push(r);
            }
        }
    }
    out
}
