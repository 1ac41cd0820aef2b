//! Seed 001's second half: classic Swarm's endpoint records in the cluster
//! store and the recovery after a node failure (`[recovery] endpoints`,
//! model/ipam/system.rs). The failure is put at every point of a docker
//! run and a docker rm in turn, and what the restart leaves is compared
//! with what libnetwork's code leaves there (docs/fidelity.md §
//! "Endpoint records"); the bundled scenario's verdicts are checked with
//! and without the reductions.

use netrace::explore::{self, Options};
use netrace::ipam::profile::Profile;
use netrace::ipam::system::{
    ActorKind, ActorSpec, Fault, Faults, IpamSpec, IpamState, IpamSystem, Outcome, Step, Target,
};
use netrace::scenario::ipam::IpamScenario;
use netrace::sim::{Model, Trace};

/// One actor on daemon 1 of two (db and cache up, started on daemon 0),
/// one failure allowed.
fn spec(actor: ActorKind) -> IpamSpec {
    IpamSpec {
        network: "overlay-net".into(),
        subnet: "10.30.0.0/24".parse().unwrap(),
        gateway: None,
        ip_range: None,
        setup: vec![
            netrace::ipam::system::SetupOp::Run("db".into()),
            netrace::ipam::system::SetupOp::Run("cache".into()),
        ],
        actors: vec![ActorSpec {
            kind: actor,
            daemon: 1,
        }],
        faults: Faults {
            crashes: 1,
            ..Faults::default()
        },
        endpoints: true,
    }
}

fn model(actor: ActorKind, force_disconnect: bool) -> IpamSystem {
    let mut p = Profile::builtin("classic-swarm-cas").unwrap();
    p.force_disconnect = force_disconnect;
    IpamSystem::new(&spec(actor), &p).unwrap()
}

/// The actor takes `k` plain steps, its daemon fails, then every actor runs
/// to the end (the first plain step enabled each time). Returns the final
/// state and the names of the properties it violates.
fn fail_after(m: &IpamSystem, k: usize) -> (IpamState, Vec<&'static str>) {
    let mut s = m.init_state();
    let mut trace = Trace::off();
    let plain = Step {
        actor: 0,
        fault: Fault::None,
    };
    for _ in 0..k {
        s = m.next_state(&s, &plain, &mut trace);
    }
    s = m.next_state(
        &s,
        &Step {
            actor: 0,
            fault: Fault::Crash,
        },
        &mut trace,
    );
    loop {
        let mut out = Vec::new();
        m.actions(&s, &mut out);
        let Some(step) = out.into_iter().find(|a| a.fault == Fault::None) else {
            break;
        };
        s = m.next_state(&s, &step, &mut trace);
    }
    let violated = m
        .properties()
        .iter()
        .filter(|p| (p.check)(m, &s).is_err())
        .map(|p| p.name)
        .collect();
    (s, violated)
}

const LEAK: [&str; 2] = ["ipam.accounted", "ipam.no_leak_after_recovery"];
const STALE: [&str; 3] = [
    "ipam.accounted",
    "store.restartable",
    "ipam.no_leak_after_recovery",
];

#[test]
fn a_failure_at_each_point_of_docker_run_leaves_what_libnetwork_leaves() {
    // The run's first attempt: precheck read compute modify write commit
    // epstore join. Failing before the k-th phase:
    let expected: [(&str, &[&str]); 8] = [
        ("precheck", &[]),
        ("read", &[]),
        ("compute", &[]),
        ("modify", &[]),
        // Nothing is written before the AtomicPut.
        ("write", &[]),
        // The bit is in the store, the endpoint object died, no record:
        // nothing finds the address again.
        ("commit", &LEAK),
        ("epstore", &LEAK),
        // updateToStore(ep) done, the sandbox does not list it yet: the
        // record stays (global scope) and blocks the restart.
        ("join", &STALE),
    ];
    let m = model(ActorKind::Run("web".into()), false);
    for (k, (phase, want)) in expected.iter().enumerate() {
        let (s, violated) = fail_after(&m, k);
        assert_eq!(&violated, want, "daemon failing before {phase}");
        let outcome = s.actors[0].outcome;
        if want.contains(&"store.restartable") {
            assert_eq!(outcome, Outcome::NameTaken, "before {phase}");
            assert_eq!(s.records[2], Some(4), "web's record keeps 10.30.0.4");
            assert_eq!(s.holders[2], None);
        } else {
            assert!(
                matches!(outcome, Outcome::Allocated(_)),
                "before {phase}: web starts again, got {outcome:?}"
            );
            assert_eq!(s.records[2], s.holders[2], "before {phase}");
        }
    }
    // After join the run is done: no failure can interrupt it any more.
    let mut s = m.init_state();
    for _ in 0..8 {
        s = m.next_state(
            &s,
            &Step {
                actor: 0,
                fault: Fault::None,
            },
            &mut Trace::off(),
        );
    }
    let mut out = Vec::new();
    m.actions(&s, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!((s.holders[2], s.records[2]), (Some(4), Some(4)));
}

#[test]
fn force_disconnect_clears_the_stale_record_but_not_a_recordless_leak() {
    let m = model(ActorKind::Run("web".into()), true);
    // Failing before join: disconnect -f deletes the record and releases
    // 10.30.0.4; web starts again and takes it.
    let (s, violated) = fail_after(&m, 7);
    assert!(violated.is_empty(), "{violated:?}");
    assert_eq!(s.actors[0].outcome, Outcome::Allocated(4));
    assert_eq!((s.holders[2], s.records[2]), (Some(4), Some(4)));
    // Failing before commit: no record to find, 10.30.0.4 stays set and
    // web starts again on 10.30.0.5.
    let (s, violated) = fail_after(&m, 5);
    assert_eq!(violated, LEAK);
    assert_eq!((s.holders[2], s.records[2]), (Some(5), Some(5)));
}

#[test]
fn a_failure_at_each_point_of_docker_rm_leaves_what_libnetwork_leaves() {
    // The rm: delete (leave + deleteFromStore) read compute modify write
    // commit.
    let expected: [(&str, &[&str]); 6] = [
        // Killed before anything: the sandbox still lists the endpoint,
        // cache is kept up (the restart's cleanup and start are clean).
        ("delete", &[]),
        // The record is gone, the bit is still set: sandboxCleanup's
        // ep.Delete(true) fails at getEndpointFromStore, nothing releases.
        ("read", &LEAK),
        ("compute", &LEAK),
        ("modify", &LEAK),
        ("write", &LEAK),
        // The release is in the store; only the handle's commit is lost.
        ("commit", &[]),
    ];
    for force in [false, true] {
        let m = model(ActorKind::Rm(Target::Name("cache".into())), force);
        for (k, (phase, want)) in expected.iter().enumerate() {
            let (s, violated) = fail_after(&m, k);
            assert_eq!(&violated, want, "daemon failing before {phase}");
            assert_eq!(s.actors[0].outcome, Outcome::Crashed, "before {phase}");
            // The rm never leaves a stale record: it deletes the record
            // before it releases.
            assert_eq!(s.records[1], s.holders[1], "before {phase}");
        }
    }
}

#[test]
fn the_bundled_scenario_finds_the_stale_record_and_the_fix_clears_it() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/classic-swarm-node-failure.toml");
    let s = netrace::scenario::load(&path).unwrap();
    let scenario = s.system.downcast::<IpamScenario>().unwrap();
    let names: Vec<&str> = scenario.variants[0]
        .model
        .properties()
        .iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        [
            "ipam.unique",
            "ipam.accounted",
            "ipam.counter",
            "store.restartable",
            "ipam.no_leak_after_recovery"
        ]
    );
    let want = [
        ("classic-swarm-cas", [false, true, false, true, true]),
        ("force-disconnect", [false, true, false, false, true]),
    ];
    for (v, (name, violated)) in scenario.variants.iter().zip(want) {
        assert_eq!(v.name, name);
        let mut states = Vec::new();
        for (por, symmetry) in [(false, false), (true, false), (true, true)] {
            let r = explore::bfs(
                &v.model,
                &Options {
                    por,
                    symmetry,
                    ..Options::default()
                },
                &mut |_| {},
            );
            assert!(r.complete, "{name}");
            let found: Vec<bool> = r.violations.iter().map(Option::is_some).collect();
            assert_eq!(found, violated, "{name} por={por} symmetry={symmetry}");
            assert!(r.checked[3] && r.checked[4], "{name}: not vacuous");
            states.push(r.states);
            // Each counterexample replays to a state that breaks it.
            for (p, found) in r.violations.iter().enumerate() {
                let Some(found) = found else { continue };
                let replay = explore::replay(&v.model, &found.schedule).unwrap();
                assert!(
                    replay.violated.iter().any(|(n, _)| *n == names[p]),
                    "{name}: {} replays",
                    names[p]
                );
            }
        }
        assert!(states[0] >= states[1], "{name}: {states:?}");
    }
}
