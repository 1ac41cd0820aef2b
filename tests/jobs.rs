//! `--jobs N` (issue 10): the parallel breadth-first search gives what the
//! sequential one gives — state counts, `complete`, stops, verdicts and
//! counterexample tokens — for every bundled scenario, with and without
//! the reductions, stopped at the first violation, and cut by a state
//! bound mid-layer.

use netrace::check::VariantResult;
use netrace::explore::{Bounds, Options, Strategy};
use netrace::scenario::Scenario;

mod common;
use common::{bundled, bundled_scale, check_all};

type Row = (
    String,
    u64,
    bool,
    Option<&'static str>,
    Vec<(String, Option<String>)>,
);

fn rows(results: Vec<VariantResult>) -> Vec<Row> {
    results
        .into_iter()
        .map(|r| {
            (
                r.variant,
                r.states,
                r.complete,
                r.stop.map(|s| s.as_str()),
                r.properties
                    .into_iter()
                    .map(|p| (p.verdict.words(), p.counterexample.map(|c| c.token)))
                    .collect(),
            )
        })
        .collect()
}

fn compare(s: &Scenario, base: Options, what: &str) {
    let one = rows(check_all(s, &Options { jobs: 1, ..base }));
    let four = rows(check_all(s, &Options { jobs: 4, ..base }));
    assert_eq!(one, four, "{} ({what})", s.name);
}

#[test]
fn four_jobs_find_what_one_job_finds_on_every_bundled_scenario() {
    for s in bundled() {
        let base = Options {
            bounds: s.bounds,
            strategy: Strategy::Bfs,
            ..Options::default()
        };
        compare(&s, base, "default");
        // Without a reduction the seed scenario's +serial variants take
        // millions of states: bounded here (the cut is compared too).
        let unreduced = Options {
            bounds: Bounds {
                max_states: s.bounds.max_states.min(100_000),
                ..s.bounds
            },
            ..base
        };
        compare(
            &s,
            Options {
                symmetry: false,
                ..unreduced
            },
            "symmetry off",
        );
        compare(
            &s,
            Options {
                por: false,
                ..unreduced
            },
            "no por",
        );
        compare(
            &s,
            Options {
                stop_at_first: true,
                ..base
            },
            "fail-fast",
        );
        // A bound that cuts a layer in the middle (most variants here
        // have more than 300 states).
        let cut = Bounds {
            max_states: 300,
            ..s.bounds
        };
        compare(
            &s,
            Options {
                bounds: cut,
                ..base
            },
            "max_states 300",
        );
    }
}

#[test]
fn four_jobs_prove_the_scale_scenarios_as_one_job_does() {
    for s in bundled_scale() {
        // The 17.05 variants' spaces do not end: bounded, and stopped at
        // the first violation.
        let base = Options {
            bounds: Bounds {
                max_states: 20_000,
                ..s.bounds
            },
            strategy: Strategy::Bfs,
            stop_at_first: true,
            ..Options::default()
        };
        compare(&s, base, "fail-fast, 20,000 states");
    }
}

/// The cycle proviso on [`Slide`](common::toys::Slide), whose local step
/// stays at its depth (see there), with one job and four.
mod same_depth {
    use crate::common::toys::Slide;
    use netrace::explore::{self, Options};

    #[test]
    fn the_proviso_expands_a_state_whose_local_step_stays_at_its_depth() {
        let mut seen = Vec::new();
        for jobs in [1, 4] {
            let r = explore::bfs(
                &Slide,
                &Options {
                    jobs,
                    ..Options::default()
                },
                &mut |_| {},
            );
            let v = r.violations[0]
                .as_ref()
                .unwrap_or_else(|| panic!("jobs={jobs}: the raise beside the slide is missed"));
            assert_eq!(v.schedule, vec![0, 1], "jobs={jobs}");
            seen.push((r.states, r.complete, r.stop));
        }
        assert_eq!(seen[0], seen[1]);
        // x = 0, 1, 2 and the raised flag.
        assert_eq!(seen[0].0, 4);
    }
}
