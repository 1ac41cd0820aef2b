//! `check --shard I/N` and `merge` (issue 10): for every bundled scenario
//! (the scale ones included), the merge of shards 1/4..4/4 gives the rows
//! of the unsharded run — verdicts, `complete`, stop, counterexamples and
//! their tokens — except the work figures (`states`, `bytes`,
//! `elapsed_ms`) and the shard fields; and bad shard sets are refused.

use std::path::Path;

use serde_json::Value;

mod common;
use common::cli::{json_rows, run, scratch_dir};

/// Runs the shards of `file` and writes their outputs; returns the paths.
fn shards(file: &str, n: u64) -> Vec<String> {
    let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
    (1..=n)
        .map(|k| {
            let o = run(&[
                "check",
                file,
                "--shard",
                &format!("{k}/{n}"),
                "--format",
                "json",
            ]);
            assert_ne!(o.status.code(), Some(2), "{file} shard {k}/{n}");
            let rs = json_rows(&o);
            assert!(rs.iter().all(|r| r["shard"] == format!("{k}/{n}")));
            let p = scratch_dir("shard-tests").join(format!("{stem}.{k}of{n}.jsonl"));
            std::fs::write(&p, &o.stdout).unwrap();
            p.display().to_string()
        })
        .collect()
}

/// A row without the fields that count work (or measure it) or name the shard.
fn verdict_part(r: &Value) -> Value {
    let mut r = r.clone();
    for k in [
        "states",
        "bytes",
        "bytes_per_state",
        "elapsed_ms",
        "shard",
        "merged_shards",
    ] {
        r.as_object_mut().unwrap().remove(k);
    }
    r
}

fn bundled_files() -> Vec<String> {
    let mut out = Vec::new();
    for d in ["scenarios", "scenarios/scale"] {
        let mut files: Vec<String> =
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .map(|p| format!("{d}/{}", p.file_name().unwrap().to_str().unwrap()))
                .collect();
        files.sort();
        out.extend(files);
    }
    out
}

#[test]
fn the_merge_of_four_shards_equals_the_unsharded_run_on_every_bundled_scenario() {
    let files = bundled_files();
    assert!(files.len() >= 8);
    let mut split = 0;
    for file in &files {
        let whole = run(&["check", file, "--format", "json"]);
        assert_eq!(whole.status.code(), Some(0), "{file}");
        let whole = json_rows(&whole);
        let parts = shards(file, 4);
        let mut args = vec!["merge", "--format", "json"];
        args.extend(parts.iter().map(String::as_str));
        let merged = run(&args);
        assert_eq!(
            merged.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&merged.stderr)
        );
        let merged = json_rows(&merged);
        assert_eq!(merged.len(), whole.len(), "{file}");
        for (w, m) in whole.iter().zip(&merged) {
            assert_eq!(verdict_part(w), verdict_part(m), "{file}");
            assert_eq!(m["merged_shards"], 4);
            assert!(w["shard"].is_null() && m["shard"].is_null());
        }
        // Where a shard explored fewer states than the whole run, the
        // space was split (not merely repeated four times).
        for k in 1..=4 {
            let text = std::fs::read_to_string(&parts[k - 1]).unwrap();
            for (r, w) in text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .zip(&whole)
            {
                if r["states"].as_u64() < w["states"].as_u64() {
                    split += 1;
                }
            }
        }
    }
    assert!(split > 0, "some search was split among the shards");
}

#[test]
fn a_missing_repeated_or_foreign_shard_is_refused_with_exit_two() {
    let file = "scenarios/release-race-duplicate.toml";
    let parts = shards(file, 3);
    let merge = |files: &[&str]| {
        let mut args = vec!["merge"];
        args.extend(files);
        let o = run(&args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, e) = merge(&[&parts[0], &parts[2]]);
    assert_eq!(code, Some(2));
    assert!(
        e.contains("shard(s) 2/3 missing") && e.contains("hint:"),
        "{e}"
    );
    let (code, e) = merge(&[&parts[0], &parts[1], &parts[1], &parts[2]]);
    assert_eq!(code, Some(2));
    assert!(e.contains("properties are not the model's"), "{e}");
    let other = shards(file, 2);
    let (code, e) = merge(&[&parts[0], &parts[1], &parts[2], &other[0]]);
    assert_eq!(code, Some(2));
    assert!(e.contains("other rows of it say 3 shards"), "{e}");
    // An unsharded output is not a shard.
    let whole = scratch_dir("shard-tests").join("whole.jsonl");
    std::fs::write(&whole, run(&["check", file, "--format", "json"]).stdout).unwrap();
    let (code, e) = merge(&[whole.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        e.contains("whole.jsonl:1") && e.contains("not from a shard"),
        "{e}"
    );
    // --shard itself checks its argument.
    for bad in ["0/4", "5/4", "x/4", "4"] {
        let o = run(&["check", file, "--shard", bad]);
        assert_eq!(o.status.code(), Some(2), "--shard {bad}");
    }
}

mod coverage {
    //! The shards together visit every state the unsharded search visits:
    //! a wrapper model records the fingerprint of every state its one
    //! property is checked on (every state a search visits), and without
    //! the partial-order reduction (whose reduced graph depends on the
    //! visiting order) the union over shards must equal the whole run's
    //! set, while some shard visits fewer states.

    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use netrace::explore::{self, fingerprint, Options, Shard};
    use netrace::scenario::{self, cluster::ClusterScenario, ipam::IpamScenario, l2::L2Scenario};
    use netrace::sim::{Checked, Model, Property, Trace, When};

    struct Recording<M: Model> {
        inner: M,
        seen: Mutex<BTreeSet<u128>>,
    }

    fn record<M: Model>(m: &Recording<M>, s: &M::State) -> Result<Checked, String> {
        m.seen.lock().unwrap().insert(fingerprint(s));
        Ok(Checked::Something)
    }

    impl<M: Model> Model for Recording<M> {
        type State = M::State;
        type Action = M::Action;
        fn init_state(&self) -> M::State {
            self.inner.init_state()
        }
        fn actions(&self, s: &M::State, out: &mut Vec<M::Action>) {
            self.inner.actions(s, out)
        }
        fn next_state(&self, s: &M::State, a: &M::Action, t: &mut Trace) -> M::State {
            self.inner.next_state(s, a, t)
        }
        fn properties(&self) -> Vec<Property<Self>> {
            vec![Property {
                name: "test.seen",
                when: When::Always,
                summary: "records every visited state",
                check: record::<M>,
            }]
        }
        fn describe(&self, s: &M::State, a: &M::Action) -> String {
            self.inner.describe(s, a)
        }
        fn action_key(&self, s: &M::State, a: &M::Action) -> u64 {
            self.inner.action_key(s, a)
        }
        fn canonical(&self, s: &M::State) -> Option<M::State> {
            self.inner.canonical(s)
        }
        fn has_symmetry(&self) -> bool {
            self.inner.has_symmetry()
        }
        // The inner model's frontier encoding, so the shards split a
        // packed frontier as the real search does.
        fn packer(&self) -> Option<Box<dyn netrace::explore::pack::Packer<M::State> + '_>> {
            self.inner.packer()
        }
        fn summarize(&self, s: &M::State) -> Vec<String> {
            self.inner.summarize(s)
        }
    }

    /// (whole set, union over `n` shards, smallest shard).
    fn sets<M: Model>(inner: M, n: u64) -> (BTreeSet<u128>, BTreeSet<u128>, usize) {
        let m = Recording {
            inner,
            seen: Mutex::new(BTreeSet::new()),
        };
        let options = Options {
            por: false,
            ..Options::default()
        };
        let whole = explore::bfs(&m, &options, &mut |_| {});
        assert!(whole.complete);
        let all = std::mem::take(&mut *m.seen.lock().unwrap());
        let mut union = BTreeSet::new();
        let mut smallest = usize::MAX;
        for index in 0..n {
            let r = explore::bfs(
                &m,
                &Options {
                    shard: Some(Shard { index, count: n }),
                    ..options
                },
                &mut |_| {},
            );
            assert!(r.complete);
            let part = std::mem::take(&mut *m.seen.lock().unwrap());
            smallest = smallest.min(part.len());
            union.extend(part);
        }
        (all, union, smallest)
    }

    #[test]
    fn the_shards_together_visit_every_state_of_the_whole_search() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut split = 0;
        for p in scenario::collect(&[dir]).unwrap() {
            let s = scenario::load(&p).unwrap();
            let mut check = |name: &str, all: BTreeSet<u128>, union: BTreeSet<u128>, min: usize| {
                assert!(
                    all == union,
                    "{} {name}: the whole search visits {} states, the shards together {} of them",
                    s.name,
                    all.len(),
                    all.intersection(&union).count()
                );
                split += usize::from(min < all.len());
            };
            if let Some(x) = s.system.downcast::<IpamScenario>() {
                for v in x
                    .variants
                    .iter()
                    .filter(|v| v.name != "classic-swarm-cas+serial")
                {
                    let (a, u, m) = sets(v.model.clone(), 3);
                    check(&v.name, a, u, m);
                }
            } else if let Some(x) = s.system.downcast::<L2Scenario>() {
                for v in &x.variants {
                    let (a, u, m) = sets(v.model.clone(), 3);
                    check(&v.name, a, u, m);
                }
            } else if let Some(x) = s.system.downcast::<ClusterScenario>() {
                for v in &x.variants {
                    let (a, u, m) = sets(v.model.clone(), 3);
                    check(&v.name, a, u, m);
                }
            }
        }
        assert!(split >= 5, "most searches were split ({split})");
    }
}
