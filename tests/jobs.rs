//! `--jobs N` (issue 10): the parallel breadth-first search gives what the
//! sequential one gives — state counts, `complete`, stops, verdicts and
//! counterexample tokens — for every bundled scenario, with and without
//! the reductions, stopped at the first violation, and cut by a state
//! bound mid-layer; and it keeps its frontier as compact as the sequential
//! one does.

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

/// The seed scenario with `runs` concurrent `docker run`s and a state
/// bound that does not cut, as docs/performance.md's generator loop
/// writes it.
fn seed_with_runs(runs: usize) -> String {
    let seed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/docker-17.05-duplicate-ip.toml"),
    )
    .expect("the seed scenario");
    let lines: Vec<&str> = seed.lines().collect();
    let rm = lines
        .iter()
        .position(|l| l.starts_with("rm = "))
        .expect("rm");
    let variants = lines
        .iter()
        .position(|l| *l == "[[variant]]")
        .expect("variants");
    let mut text = lines[..=rm].join("\n");
    for i in 1..=runs {
        text.push_str(&format!("\n[[actor]]\nrun = \"r{i}\"\n"));
    }
    text.push_str("[bounds]\nmax_states = 200000000\nmax_depth = 1000\n");
    text.push_str(&lines[variants..].join("\n"));
    text.push('\n');
    text
}

/// `--jobs 2` holds its frontier packed, as `--jobs 1` does: on the
/// 161,509 orbits of `classic-swarm-cas` with seven runs, its bytes per
/// state (the counting allocator's peak) stay within 1.5× of one job's
/// (about 43 bytes; plain frontier states took about 10×), with the same
/// rows otherwise.
#[test]
fn two_jobs_keep_the_frontier_as_compact_as_one_job() {
    use common::cli::{json_rows, run, scratch_with};
    let file = scratch_with("jobs", "seed-7-runs.toml", &seed_with_runs(7));
    let file = file.to_str().expect("a UTF-8 path");
    let mut rows = Vec::new();
    for jobs in ["1", "2"] {
        let out = run(&[
            "check",
            file,
            "--variant",
            "classic-swarm-cas",
            "--jobs",
            jobs,
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "--jobs {jobs}");
        let mut all = json_rows(&out);
        let per_state = all[0]["bytes_per_state"].as_f64().expect("bytes_per_state");
        for row in &mut all {
            assert_eq!(row["states"], 161_509, "--jobs {jobs}");
            let obj = row.as_object_mut().expect("a row");
            for k in ["elapsed_ms", "bytes", "bytes_per_state"] {
                obj.remove(k);
            }
        }
        rows.push((all, per_state));
    }
    assert_eq!(rows[0].0, rows[1].0);
    let (one, two) = (rows[0].1, rows[1].1);
    assert!(
        two <= 1.5 * one,
        "--jobs 2 holds {two} bytes a state, --jobs 1 {one}"
    );
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
