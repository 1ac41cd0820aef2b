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
//! Run: `cargo bench --bench explorer`. Figures: docs/performance.md.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use netrace::explore::{self, token, Options};
use netrace::scenario;
use netrace::scenario::ipam::IpamScenario;
use netrace::scenario::l2::L2Scenario;

fn seed_variant(name: &str) -> netrace::ipam::system::IpamSystem {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/docker-17.05-duplicate-ip.toml");
    let s = scenario::load(&path).expect("bundled scenario loads");
    let Some(ipam) = s.system.downcast::<IpamScenario>() else {
        panic!("the seed scenario is an ipam scenario")
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

criterion_group!(benches, explorer, symmetry, l2);
criterion_main!(benches);
