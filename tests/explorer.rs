//! The explorer on the IPAM model: verdicts do not depend on the
//! partial-order reduction, pinned state counts (a change in a count is a
//! change in semantics and must be explained), shrunk counterexamples are
//! minimal, random walks are reproducible, and seeded bugs are found.

use netrace::explore::{self, Bounds, Options, Strategy};
use netrace::ipam::profile::Profile;
use netrace::ipam::system::{ActorKind, ActorSpec, IpamSpec, IpamSystem, SetupOp, Target};
use netrace::scenario::ipam::IpamScenario;
use netrace::scenario::l2::L2Scenario;
use netrace::sim::{Model, Trace, When};

mod common;
use common::bundled;

fn verdicts<M: Model>(m: &M, por: bool) -> (Vec<bool>, bool, u64) {
    verdicts_with(m, por, false)
}

fn verdicts_with<M: Model>(m: &M, por: bool, symmetry: bool) -> (Vec<bool>, bool, u64) {
    let r = explore::bfs(
        m,
        &Options {
            por,
            symmetry,
            ..Options::default()
        },
        &mut |_| {},
    );
    (
        r.violations.iter().map(Option::is_some).collect(),
        r.complete,
        r.states,
    )
}

#[test]
fn partial_order_reduction_never_changes_a_verdict() {
    for s in bundled() {
        let Some(ipam) = s.system.downcast::<IpamScenario>() else {
            continue;
        };
        for v in &ipam.variants {
            let (with, complete_with, states_with) = verdicts(&v.model, true);
            let (without, complete_without, states_without) = verdicts(&v.model, false);
            assert_eq!(with, without, "{} {}", s.name, v.name);
            assert_eq!(complete_with, complete_without, "{} {}", s.name, v.name);
            assert!(states_with <= states_without, "{} {}", s.name, v.name);
        }
    }
}

fn seed() -> IpamSpec {
    let mut setup: Vec<SetupOp> = (1..=16)
        .map(|i| SetupOp::Run(format!("setup-{i}")))
        .collect();
    setup.push(SetupOp::Rm(Target::Address("172.17.0.16".parse().unwrap())));
    setup.push(SetupOp::Rm(Target::Address("172.17.0.17".parse().unwrap())));
    IpamSpec {
        network: "bridge".into(),
        subnet: "172.17.0.0/16".parse().unwrap(),
        gateway: None,
        ip_range: None,
        setup,
        actors: ["a", "b", "c", "d"]
            .iter()
            .map(|n| ActorSpec {
                kind: ActorKind::Run(n.to_string()),
                daemon: 0,
            })
            .collect(),
        faults: Default::default(),
        endpoints: false,
    }
}

#[test]
fn pinned_state_counts_of_the_seed_scenario() {
    // If one of these changes, the model's semantics changed: explain it
    // in the commit that changes it.
    // The symmetry reduction (the default) makes the four runs
    // interchangeable; its counts are checked independently of these
    // figures by tests/symmetry.rs (one state per orbit of the full space).
    let cases = [
        ("libnetwork-17.05", true, false, 2778),
        ("libnetwork-17.05", false, false, 7363),
        ("libnetwork-17.06", true, false, 513),
        ("libnetwork-18.03", true, false, 513),
        ("classic-swarm-cas", true, false, 20504),
        ("libnetwork-17.05", true, true, 199),
        ("libnetwork-17.06", true, true, 33),
        ("libnetwork-18.03", true, true, 33),
        ("classic-swarm-cas", true, true, 984),
    ];
    for (name, por, symmetry, want) in cases {
        let m = IpamSystem::new(&seed(), &Profile::builtin(name).unwrap()).unwrap();
        let (_, complete, states) = verdicts_with(&m, por, symmetry);
        assert!(complete);
        assert_eq!(states, want, "{name} por={por} symmetry={symmetry}");
    }
}

#[test]
fn shrunk_counterexamples_are_one_minimal() {
    for s in bundled() {
        let Some(ipam) = s.system.downcast::<IpamScenario>() else {
            continue;
        };
        for v in &ipam.variants {
            let m = &v.model;
            let r = explore::bfs(m, &Options::default(), &mut |_| {});
            for (i, found) in r.violations.iter().enumerate() {
                let Some(found) = found else { continue };
                let shrunk = explore::shrink(m, i, &found.schedule, 1000);
                assert!(shrunk.len() <= found.schedule.len());
                let prop = &m.properties()[i];
                assert!(
                    violates(m, i, &shrunk),
                    "{} {} {}",
                    s.name,
                    v.name,
                    prop.name
                );
                if prop.when == When::Always {
                    // Removing any single step (matched by actor) loses it.
                    let keys = keys_of(m, &shrunk);
                    for drop in 0..keys.len() {
                        let mut k = keys.clone();
                        k.remove(drop);
                        assert!(
                            !violates_keys(m, i, &k),
                            "{} {} {}: step {drop} is not needed",
                            s.name,
                            v.name,
                            prop.name
                        );
                    }
                }
            }
        }
    }
}

fn keys_of<M: Model>(m: &M, schedule: &[u32]) -> Vec<u64> {
    let mut state = m.init_state();
    let mut out = Vec::new();
    let mut actions = Vec::new();
    for &c in schedule {
        actions.clear();
        m.actions(&state, &mut actions);
        out.push(m.action_key(&state, &actions[c as usize]));
        state = m.next_state(&state, &actions[c as usize], &mut Trace::off());
    }
    out
}

fn violates<M: Model>(m: &M, prop: usize, schedule: &[u32]) -> bool {
    let r = explore::replay(m, schedule).unwrap();
    let name = m.properties()[prop].name;
    r.violated.iter().any(|(n, _)| *n == name)
}

fn violates_keys<M: Model>(m: &M, prop: usize, keys: &[u64]) -> bool {
    let p = &m.properties()[prop];
    let mut state = m.init_state();
    let mut actions = Vec::new();
    for &k in keys {
        actions.clear();
        m.actions(&state, &mut actions);
        let Some(a) = actions.iter().find(|a| m.action_key(&state, a) == k) else {
            return false;
        };
        state = m.next_state(&state, a, &mut Trace::off());
        if (p.check)(m, &state).is_err() {
            return true;
        }
    }
    false
}

#[test]
fn random_walks_are_reproducible_and_find_the_duplicate() {
    let m = IpamSystem::new(&seed(), &Profile::builtin("libnetwork-17.05").unwrap()).unwrap();
    let opts = Options {
        strategy: Strategy::Random {
            seed: 42,
            walks: 500,
        },
        bounds: Bounds::default(),
        ..Options::default()
    };
    let a = explore::explore(&m, &opts, &mut |_| {});
    let b = explore::explore(&m, &opts, &mut |_| {});
    assert_eq!(a.violations, b.violations);
    assert!(!a.complete);
    assert!(
        a.violations[0].is_some(),
        "500 random walks find the duplicate"
    );
}

#[test]
fn removing_the_18_03_lock_brings_the_duplicate_back() {
    // The seeded bug: 18.03 minus both of its locks is 17.05 again.
    let mut p = Profile::builtin("libnetwork-18.03").unwrap();
    let fixed = IpamSystem::new(&seed(), &p).unwrap();
    assert_eq!(verdicts(&fixed, true).0, vec![false, false, false]);
    p.hold_handle_lock = false;
    p.network_lock = false;
    let broken = IpamSystem::new(&seed(), &p).unwrap();
    assert!(
        verdicts(&broken, true).0[0],
        "the explorer must find the duplicate"
    );
}

#[test]
fn state_bounds_are_respected_and_reported() {
    let m = IpamSystem::new(&seed(), &Profile::builtin("classic-swarm-cas").unwrap()).unwrap();
    let r = explore::bfs(
        &m,
        &Options {
            bounds: Bounds {
                max_states: 1000,
                max_depth: 1000,
            },
            // The full space: 20,504 states, past the bound.
            symmetry: false,
            ..Options::default()
        },
        &mut |_| {},
    );
    assert_eq!(r.states, 1000);
    assert!(!r.complete);
    assert_eq!(r.stop, Some(explore::Stop::MaxStates));
    let r = explore::bfs(
        &m,
        &Options {
            bounds: Bounds {
                max_states: 1_000_000,
                max_depth: 5,
            },
            ..Options::default()
        },
        &mut |_| {},
    );
    assert!(!r.complete);
    assert_eq!(r.stop, Some(explore::Stop::MaxDepth));
    assert!(r.max_depth_seen <= 5);
}

#[test]
fn pinned_state_counts_of_the_bundled_l2_scenarios() {
    // Every variant of every bundled L2 scenario, with the default options
    // (those of `netrace check`). If one changes, the L2 model's semantics
    // changed: explain it in the commit that changes it.
    let want: [(&str, &str, u64); 27] = [
        ("classic-overlay-first-word", "classic-17.03", 108),
        ("classic-overlay-first-word", "locality-check", 46),
        ("classic-overlay-first-word", "learning-off", 76),
        ("classic-overlay-last-word", "classic-17.03", 445),
        ("classic-overlay-last-word", "swarm-mode", 170),
        ("classic-overlay-last-word", "locality-check", 248),
        ("classic-overlay-last-word", "learning-off", 546),
        ("classic-overlay-last-word", "vxlan-fdb-zero", 380),
        ("classic-overlay-last-word", "neigh-suppress", 445),
        ("classic-overlay-last-word", "delete-local-arp", 560),
        // Traffic only (for `netrace simulate`): no script, one state.
        ("classic-overlay-seed-loop", "classic-17.03", 1),
        ("classic-overlay-seed-loop", "swarm-mode", 1),
        ("classic-overlay-seed-loop", "locality-check", 1),
        ("classic-overlay-seed-loop", "learning-off", 1),
        ("classic-overlay-seed-loop", "vxlan-fdb-zero", 1),
        ("classic-overlay-seed-loop", "neigh-suppress", 1),
        ("classic-overlay-seed-loop", "delete-local-arp", 1),
        // A pinned neighbour entry, a late join (eth0_neigh, join).
        ("classic-overlay-pinned-neigh", "classic-17.03", 301582),
        ("classic-overlay-pinned-neigh", "swarm-mode", 78180),
        ("classic-overlay-pinned-neigh", "locality-check", 122834),
        // With a clock ([time]): timers, ageing and late answers are events.
        ("classic-overlay-probe-last-word", "classic-17.03", 195),
        ("classic-overlay-probe-last-word", "swarm-mode", 100),
        ("classic-overlay-probe-last-word", "locality-check", 123),
        ("classic-overlay-probe-last-word", "learning-off", 185),
        ("classic-overlay-probe-last-word", "vxlan-fdb-zero", 142),
        ("classic-overlay-probe-last-word", "neigh-suppress", 195),
        ("classic-overlay-probe-last-word", "delete-local-arp", 247),
    ];
    let mut seen = Vec::new();
    for s in bundled() {
        let Some(l2) = s.system.downcast::<L2Scenario>() else {
            continue;
        };
        for v in &l2.variants {
            let r = explore::bfs(&v.model, &Options::default(), &mut |_| {});
            assert!(r.complete, "{} {}", s.name, v.name);
            seen.push((s.name.clone(), v.name.clone(), r.states));
        }
    }
    let want: Vec<(String, String, u64)> = want
        .iter()
        .map(|(s, v, n)| (s.to_string(), v.to_string(), *n))
        .collect();
    seen.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(seen, want_sorted, "every bundled L2 variant, pinned");
}

#[test]
fn pct_needs_depth_two_for_the_seed_duplicate_and_is_reproducible() {
    let m = IpamSystem::new(&seed(), &Profile::builtin("libnetwork-17.05").unwrap()).unwrap();
    let pct = |depth, seed| {
        explore::explore(
            &m,
            &Options {
                strategy: Strategy::Pct {
                    seed,
                    runs: 300,
                    depth,
                },
                ..Options::default()
            },
            &mut |_| {},
        )
    };
    // Depth 1: no change point, so the highest-priority run goes to the
    // end before the next starts: serial runs never collide.
    for seed in 0..3 {
        let r = pct(1, seed);
        assert!(
            r.violations[0].is_none(),
            "seed {seed}: a serial run collided"
        );
        assert!(!r.complete);
        assert_eq!(r.stop, Some(explore::Stop::Sampling));
    }
    // Depth 2: one preemption is all the duplicate needs (a run reads the
    // bitmap and is preempted before it commits).
    for seed in 0..3 {
        let r = pct(2, seed);
        let v = r.violations[0]
            .as_ref()
            .expect("depth 2 finds the duplicate");
        assert!(violates(&m, 0, &v.schedule), "seed {seed}");
        assert!(!r.complete);
        assert_eq!(
            r.violations,
            pct(2, seed).violations,
            "same seed, same runs"
        );
    }
}
