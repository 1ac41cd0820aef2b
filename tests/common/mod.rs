//! Helpers shared by the test binaries that work on the bundled scenarios
//! (`mod common;` in each; not every binary uses every helper).
#![allow(dead_code)]

pub mod cli;
pub mod etcd;
pub mod kernel;
pub mod lanes;
pub mod toys;

use std::path::Path;

use netrace::check::{self, Run, VariantResult};
use netrace::explore::Options;
use netrace::scenario::{self, Scenario};

/// Every scenario under `scenarios/`, loaded.
pub fn bundled() -> Vec<Scenario> {
    load_dir("scenarios")
}

/// Every scenario file in `dir` (relative to the crate's root), loaded.
fn load_dir(dir: &str) -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    scenario::collect(&[dir])
        .unwrap()
        .iter()
        .map(|p| scenario::load(p).unwrap())
        .collect()
}

/// `netrace check` of every variant of `s` with `options`, as the library
/// runs it (no expectation of `holds` added).
pub fn check_all(s: &Scenario, options: &Options) -> Vec<VariantResult> {
    let run = Run {
        scenario: s,
        options,
        expect_holds: false,
        scenario_strategy: false,
    };
    check::check_scenario(run, None, &mut |_, _| {}, &mut |_| {})
}

/// The scale scenarios under `scenarios/scale/`, loaded.
pub fn bundled_scale() -> Vec<Scenario> {
    load_dir("scenarios/scale")
}

/// `netrace check` of every variant of `s` as the command line runs it
/// without `--strategy`: each variant searched the way its scenario says.
pub fn check_as_bundled(s: &Scenario) -> Vec<VariantResult> {
    let options = Options {
        bounds: s.bounds,
        ..Options::default()
    };
    let run = Run {
        scenario: s,
        options: &options,
        expect_holds: false,
        scenario_strategy: true,
    };
    check::check_scenario(run, None, &mut |_, _| {}, &mut |_| {})
}

/// Asserts that each of `markers` occurs in `text` (a trace) and that
/// their first occurrences come in the order given, naming the missing
/// marker or the first pair out of order.
pub fn in_order(text: &str, markers: &[&str]) {
    let at: Vec<usize> = markers
        .iter()
        .map(|m| {
            text.find(m)
                .unwrap_or_else(|| panic!("{m:?} is not in the trace:\n{text}"))
        })
        .collect();
    for (i, w) in at.windows(2).enumerate() {
        assert!(
            w[0] < w[1],
            "{:?} should come before {:?} but comes after it in the trace:\n{text}",
            markers[i],
            markers[i + 1]
        );
    }
}
