//! Random small scenarios, every schedule: the fixed profiles never violate
//! a property (exhaustive search, complete), and for the buggy 17.05
//! profile the shrunk counterexample of the duplicate is minimal: exactly
//! the twelve steps of two whole `Handle.set` calls.

use netrace::explore::{self, Options};
use netrace::ipam::profile::Profile;
use netrace::ipam::system::{ActorKind, ActorSpec, IpamSpec, IpamSystem, SetupOp, Target};
use netrace::overlay::system::{ContainerSpec, HostSpec, L2Spec, OverlaySystem, ScriptStep};
use netrace::overlay::{Fix, OverlayProfile};
use netrace::sim::Model;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Shape {
    prefix: u8,
    setup_runs: usize,
    setup_rms: Vec<usize>,
    runs: usize,
    rms: Vec<usize>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        26u8..=28,
        0usize..6,
        proptest::collection::vec(any::<usize>(), 0..2),
        1usize..=3,
        proptest::collection::vec(any::<usize>(), 0..2),
    )
        .prop_map(|(prefix, setup_runs, setup_rms, runs, rms)| Shape {
            prefix,
            setup_runs,
            setup_rms,
            runs,
            rms,
        })
}

fn spec(s: &Shape) -> IpamSpec {
    let mut setup: Vec<SetupOp> = (1..=s.setup_runs)
        .map(|i| SetupOp::Run(format!("s{i}")))
        .collect();
    let mut live: Vec<String> = (1..=s.setup_runs).map(|i| format!("s{i}")).collect();
    for &k in &s.setup_rms {
        if !live.is_empty() {
            let gone = live.remove(k % live.len());
            setup.push(SetupOp::Rm(Target::Name(gone)));
        }
    }
    let mut actors: Vec<ActorSpec> = (1..=s.runs)
        .map(|i| ActorSpec {
            kind: ActorKind::Run(format!("r{i}")),
            daemon: 0,
        })
        .collect();
    for &k in &s.rms {
        if !live.is_empty() {
            let gone = live.remove(k % live.len());
            actors.push(ActorSpec {
                kind: ActorKind::Rm(Target::Name(gone)),
                daemon: 0,
            });
        }
    }
    IpamSpec {
        network: "t".into(),
        subnet: format!("10.3.0.0/{}", s.prefix).parse().unwrap(),
        gateway: None,
        ip_range: None,
        setup,
        actors,
        faults: Default::default(),
        endpoints: false,
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7363_6865_6475_6c65),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn fixed_profiles_never_violate(s in shape(), serial in any::<bool>(), cas in any::<bool>()) {
        let mut profile = Profile::builtin(if cas { "classic-swarm-cas" } else { "libnetwork-18.03" }).unwrap();
        // classic-swarm-cas runs the 17.05 search: serial allocation there
        // is the known sequential bug, not a race.
        profile.serial = serial && !cas;
        let m = IpamSystem::new(&spec(&s), &profile);
        prop_assume!(m.is_ok());
        let m = m.unwrap();
        let r = explore::bfs(&m, &Options::default(), &mut |_| {});
        prop_assert!(r.complete);
        for (p, v) in m.properties().iter().zip(&r.violations) {
            prop_assert!(v.is_none(), "{} violated: {:?}", p.name, v);
        }
    }

    #[test]
    fn the_17_05_duplicate_shrinks_to_two_whole_calls(s in shape()) {
        prop_assume!(s.runs >= 2);
        let m = IpamSystem::new(&spec(&s), &Profile::builtin("libnetwork-17.05").unwrap());
        prop_assume!(m.is_ok());
        let m = m.unwrap();
        let r = explore::bfs(&m, &Options::default(), &mut |_| {});
        let found = r.violations[0].as_ref().expect("two concurrent runs can collide in 17.05");
        let shrunk = explore::shrink(&m, 0, &found.schedule, 1000);
        // precheck, read, compute, modify, write, commit — twice.
        prop_assert_eq!(shrunk.len(), 12);
    }
}

fn l2_spec(a_script: Vec<ScriptStep>, b_script: Vec<ScriptStep>) -> L2Spec {
    let c = |name: &str, host, last: u8, script| ContainerSpec {
        name: name.into(),
        host,
        ip: std::net::Ipv4Addr::new(10, 0, 0, last),
        arp_responder: true,
        script,
        start: Default::default(),
    };
    L2Spec {
        network: "ov".into(),
        subnet: "10.0.0.0/24".parse().unwrap(),
        vni: 256,
        hosts: vec![
            HostSpec {
                name: "h1".into(),
                vtep: "192.168.100.1".parse().unwrap(),
                preset: Default::default(),
            },
            HostSpec {
                name: "h2".into(),
                vtep: "192.168.100.2".parse().unwrap(),
                preset: Default::default(),
            },
        ],
        containers: vec![
            c("A", 0, 2, a_script),
            c("B", 0, 3, b_script),
            c("C", 1, 4, vec![]),
        ],
        max_hops: 16,
        ageing_time_s: netrace::l2::bridge::AGEING_TIME_S,
    }
}

fn talk(me: usize) -> impl Strategy<Value = Vec<ScriptStep>> {
    let peers: Vec<usize> = (0..3).filter(|&p| p != me).collect();
    proptest::collection::vec((0usize..5, proptest::sample::select(peers)), 1..4).prop_map(
        |items| {
            let mut script = Vec::new();
            for (kind, peer) in items {
                match kind {
                    0 | 1 => script.extend([ScriptStep::Resolve(peer), ScriptStep::Send(peer)]),
                    2 => script.push(ScriptStep::Forget(peer)),
                    3 => script.push(ScriptStep::Wait(300)),
                    _ => script.push(ScriptStep::Garp),
                }
            }
            script
        },
    )
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn fixed_overlays_never_violate(a in talk(0), b in proptest::option::of(talk(1)), locality in any::<bool>()) {
        let spec = l2_spec(a, b.unwrap_or_default());
        let profile = if locality {
            let mut p = OverlayProfile::builtin("classic-17.03").unwrap();
            p.fixes = vec![Fix::LocalityCheck];
            p
        } else {
            OverlayProfile::builtin("swarm-mode").unwrap()
        };
        let m = OverlaySystem::new(&spec, &profile).unwrap();
        let r = explore::bfs(&m, &Options::default(), &mut |_| {});
        prop_assert!(r.complete);
        for (p, v) in m.properties().iter().zip(&r.violations) {
            prop_assert!(v.is_none(), "{} violated: {:?}", p.name, v);
        }
    }
}
