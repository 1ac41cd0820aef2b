//! Explorer throughput on the bundled IPAM scenarios: how long netrace
//! takes to find the seed's duplicate and to prove the fixes.
//!
//! Ids (group `explorer`):
//! - `first_violation/libnetwork-17.05`: breadth-first search of the seed
//!   scenario until the first violation (the duplicate), without shrinking;
//! - `first_violation_shrunk/libnetwork-17.05`: the same plus shrinking and
//!   the replay token, i.e. what a user waits for;
//! - `prove/libnetwork-18.03`: the whole bounded space of the 18.03 variant;
//! - `prove/libnetwork-18.03-no-netlock`: the same without the 17.06 lock;
//! - `prove/classic-swarm-cas`: the compare-and-swap store variant.
//!
//! Group `symmetry`, the seed scenario's whole space with the symmetry
//! reduction off and on, in one run (the ratio is the figure):
//! - `prove/libnetwork-17.05/off`, `.../on`, and the same for
//!   `libnetwork-18.03` and `classic-swarm-cas`.
//!
//! Group `l2`, the overlay scenario `classic-overlay-last-word`, the whole
//! bounded space of each variant (every property checked):
//! - `search/classic-17.03`, `search/locality-check`, `search/learning-off`.
//!
//! Group `scale` (issue 10), from the scale scenarios and the seed's
//! `classic-swarm-cas` variant:
//! - `prove/libnetwork-18.03/16-runs`: the whole space of 16 concurrent
//!   runs (`scenarios/scale/concurrent-runs-16.toml`);
//! - `first_duplicate_shrunk/pct/50-runs`: PCT on the seed's batch of 50
//!   runs until the first duplicate, then shrinking: what
//!   `--strategy pct --fail-fast` waits for;
//! - `jobs/1`, `jobs/2`: the whole `classic-swarm-cas` space of the seed
//!   (984 orbits is too small to split: a 6-run version, 29,643 orbits)
//!   with one and two threads, in one run (the ratio is the figure).
//!
//! Run: `cargo bench --bench explorer`. Figures: docs/performance.md.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use netrace::explore::{self, token, Options};
use netrace::scenario;
use netrace::scenario::ipam::IpamScenario;
use netrace::scenario::l2::L2Scenario;

/// Variant `name` of the seed scenario.
fn seed_variant(name: &str) -> netrace::ipam::system::IpamSystem {
    ipam_variant("scenarios/docker-17.05-duplicate-ip.toml", name)
}

/// Variant `name` of the bundled IPAM scenario `file` (relative to the
/// crate's root).
fn ipam_variant(file: &str, name: &str) -> netrace::ipam::system::IpamSystem {
    let s = scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .expect("bundled scenario loads");
    let Some(ipam) = s.system.downcast::<IpamScenario>() else {
        panic!("{file} is an ipam scenario")
    };
    ipam.variants
        .iter()
        .find(|v| v.name == name)
        .expect("variant exists")
        .model
        .clone()
}

fn explorer(c: &mut Criterion) {
    let mut g = c.benchmark_group("explorer");
    g.sample_size(20);
    let buggy = seed_variant("libnetwork-17.05");
    // The figures of this group predate the symmetry reduction and stay
    // comparable with it off; group `symmetry` compares the two.
    let first = Options {
        stop_at_first: true,
        symmetry: false,
        ..Options::default()
    };
    let full = Options {
        symmetry: false,
        ..Options::default()
    };
    g.bench_function("first_violation/libnetwork-17.05", |b| {
        b.iter(|| {
            let r = explore::bfs(&buggy, &first, &mut |_| {});
            assert!(r.violations[0].is_some(), "the duplicate is found");
            r.states
        })
    });
    g.bench_function("first_violation_shrunk/libnetwork-17.05", |b| {
        b.iter(|| {
            let r = explore::bfs(&buggy, &first, &mut |_| {});
            let v = r.violations[0].as_ref().expect("the duplicate is found");
            let shrunk = explore::shrink(&buggy, 0, &v.schedule, 1000);
            let scope = token::Scope {
                name: "docker-17.05-duplicate-ip",
                content: 0,
            };
            token::encode(scope, "libnetwork-17.05", &shrunk)
        })
    });
    for name in [
        "libnetwork-18.03",
        "libnetwork-18.03-no-netlock",
        "classic-swarm-cas",
    ] {
        let model = seed_variant(name);
        g.bench_function(format!("prove/{name}"), |b| {
            b.iter(|| {
                let r = explore::bfs(&model, &full, &mut |_| {});
                assert!(r.complete && r.violations.iter().all(Option::is_none));
                r.states
            })
        });
    }
    g.finish();
}

fn symmetry(c: &mut Criterion) {
    let mut g = c.benchmark_group("symmetry");
    g.sample_size(10);
    for name in ["libnetwork-17.05", "libnetwork-18.03", "classic-swarm-cas"] {
        let model = seed_variant(name);
        for (label, symmetry) in [("off", false), ("on", true)] {
            let options = Options {
                symmetry,
                ..Options::default()
            };
            g.bench_function(format!("prove/{name}/{label}"), |b| {
                b.iter(|| {
                    let r = explore::bfs(&model, &options, &mut |_| {});
                    assert!(r.complete);
                    r.states
                })
            });
        }
    }
    g.finish();
}

fn l2(c: &mut Criterion) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/classic-overlay-last-word.toml");
    let s = scenario::load(&path).expect("bundled scenario loads");
    let Some(l2) = s.system.downcast::<L2Scenario>() else {
        panic!("the last-word scenario is an l2 scenario")
    };
    let mut g = c.benchmark_group("l2");
    g.sample_size(20);
    for name in ["classic-17.03", "locality-check", "learning-off"] {
        let model = &l2
            .variants
            .iter()
            .find(|v| v.name == name)
            .expect("variant exists")
            .model;
        g.bench_function(format!("search/{name}"), |b| {
            b.iter(|| {
                let r = explore::bfs(model, &Options::default(), &mut |_| {});
                assert!(r.complete);
                r.states
            })
        });
    }
    g.finish();
}

fn scale(c: &mut Criterion) {
    use netrace::explore::Strategy;
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    let m16 = ipam_variant(
        "scenarios/scale/concurrent-runs-16.toml",
        "libnetwork-18.03",
    );
    g.bench_function("prove/libnetwork-18.03/16-runs", |b| {
        b.iter(|| {
            let r = explore::bfs(&m16, &Options::default(), &mut |_| {});
            assert!(r.complete);
            r.states
        })
    });
    let m50 = ipam_variant(
        "scenarios/scale/seed-batch-50-runs.toml",
        "libnetwork-17.05",
    );
    let pct = Options {
        strategy: Strategy::Pct {
            seed: 1,
            runs: 200,
            depth: 3,
        },
        stop_at_first: true,
        ..Options::default()
    };
    g.bench_function("first_duplicate_shrunk/pct/50-runs", |b| {
        b.iter(|| {
            let r = explore::explore(&m50, &pct, &mut |_| {});
            let v = r.violations[0].as_ref().expect("the duplicate");
            explore::shrink(&m50, 0, &v.schedule, 1000).len()
        })
    });
    // The seed's classic-swarm-cas with six runs: the scenario file with
    // two more `[[actor]]`s, built here.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/docker-17.05-duplicate-ip.toml"),
    )
    .expect("seed scenario");
    let six = text.replacen(
        "[bounds]",
        "[[actor]]\nrun = \"r5\"\n\n[[actor]]\nrun = \"r6\"\n\n[bounds]",
        1,
    );
    let dir = std::env::temp_dir().join("netrace-bench");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("six-runs.toml");
    std::fs::write(&file, six).expect("write");
    let m6 = ipam_variant(file.to_str().expect("utf-8"), "classic-swarm-cas");
    for jobs in [1, 2] {
        let options = Options {
            jobs,
            bounds: explore::Bounds {
                max_states: 10_000_000,
                ..Default::default()
            },
            ..Options::default()
        };
        g.bench_function(format!("jobs/{jobs}"), |b| {
            b.iter(|| {
                let r = explore::bfs(&m6, &options, &mut |_| {});
                assert!(r.complete);
                r.states
            })
        });
    }
    g.finish();
}

criterion_group!(benches, explorer, symmetry, l2, scale);
criterion_main!(benches);
