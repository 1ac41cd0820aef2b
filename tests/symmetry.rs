//! The symmetry reduction: the same verdicts and counterexample lengths
//! with and without it on every bundled scenario (breadth- and
//! depth-first), tokens found with it replay concretely, and the reduced
//! space is exactly one state per orbit of the full space — checked by a
//! breadth-first search written here, independent of the explorer, over
//! the IPAM model with its permutations applied by hand.

use std::collections::{BTreeMap, HashSet, VecDeque};

use netrace::explore::{self, token, Options, Strategy};
use netrace::ipam::profile::Profile;
use netrace::ipam::system::{ActorKind, ActorSpec, IpamSpec, IpamState, IpamSystem, SetupOp};
use netrace::scenario::{ipam::IpamScenario, Scenario};
use netrace::sim::{Model, Trace};

mod common;
use common::bundled;

type Row = (String, bool, Option<usize>);

/// Rows, per-variant reductions, and counterexample tokens.
type Checked = (
    BTreeMap<(String, &'static str), Row>,
    BTreeMap<String, Vec<&'static str>>,
    Vec<String>,
);

/// Per (variant, property): verdict words, complete, counterexample
/// steps; and per variant the reductions that ran.
fn check(s: &Scenario, strategy: Strategy, symmetry: bool) -> Checked {
    let options = Options {
        bounds: s.bounds,
        strategy,
        symmetry,
        ..Options::default()
    };
    let results = common::check_all(s, &options);
    let mut rows = BTreeMap::new();
    let mut reductions = BTreeMap::new();
    let mut tokens = Vec::new();
    for r in results {
        reductions.insert(r.variant.clone(), r.reductions.clone());
        for p in r.properties {
            if let Some(c) = &p.counterexample {
                tokens.push(c.token.clone());
            }
            rows.insert(
                (r.variant.clone(), p.property),
                (
                    p.verdict.words(),
                    r.complete,
                    p.counterexample.map(|c| c.steps),
                ),
            );
        }
    }
    (rows, reductions, tokens)
}

#[test]
fn verdicts_and_counterexample_lengths_are_the_same_with_and_without_symmetry() {
    let mut reduced = 0;
    for s in bundled() {
        let ipam = s.system.downcast::<IpamScenario>();
        for strategy in [Strategy::Bfs, Strategy::Dfs] {
            let (on, reductions, _) = check(&s, strategy, true);
            let (off, without, _) = check(&s, strategy, false);
            let lengths = |m: &BTreeMap<(String, &'static str), Row>| {
                m.iter()
                    .map(|(k, (v, c, n))| (k.clone(), (v.clone(), *c, n.is_some())))
                    .collect::<BTreeMap<_, _>>()
            };
            assert_eq!(lengths(&on), lengths(&off), "{} {strategy:?}", s.name);
            if strategy == Strategy::Bfs {
                // Breadth-first counterexamples are shortest either way.
                assert_eq!(on, off, "{}", s.name);
            }
            for (variant, r) in &reductions {
                let classes = ipam
                    .and_then(|i| i.variants.iter().find(|v| &v.name == variant))
                    .map_or(0, |v| v.model.symmetry_classes().len());
                assert_eq!(
                    r.contains(&"symmetry"),
                    classes > 0,
                    "{} {variant}: {r:?}",
                    s.name
                );
                assert!(!without[variant].contains(&"symmetry"));
                reduced += usize::from(classes > 0);
            }
        }
    }
    assert!(
        reduced >= 10,
        "the IPAM scenarios have interchangeable runs"
    );
}

#[test]
fn counterexamples_found_with_symmetry_replay_concretely() {
    for s in bundled() {
        let (rows, _, tokens) = check(&s, Strategy::Bfs, true);
        // Every counterexample carries a token (a scenario may have none:
        // the seed loop's variants are for `netrace simulate`).
        let counterexamples = rows
            .values()
            .filter(|(_, _, steps)| steps.is_some())
            .count();
        assert_eq!(tokens.len(), counterexamples, "{}", s.name);
        for t in tokens {
            let tok = token::decode((&s).into(), &t).unwrap();
            let v = s.system.variant(&tok.variant).unwrap();
            let replayed = v
                .replay(&tok.schedule)
                .unwrap_or_else(|d| panic!("{} {t}: the token does not replay: {d}", s.name));
            assert!(
                !replayed.violated.is_empty(),
                "{} {t}: replayed without a violation",
                s.name
            );
        }
    }
}

/// Every reachable state of `m`, by a plain breadth-first search (no
/// reduction of any kind).
fn reachable(m: &IpamSystem) -> HashSet<IpamState> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    let init = m.init_state();
    seen.insert(init.clone());
    queue.push_back(init);
    let mut actions = Vec::new();
    let mut trace = Trace::off();
    while let Some(s) = queue.pop_front() {
        actions.clear();
        m.actions(&s, &mut actions);
        for a in &actions {
            let n = m.next_state(&s, a, &mut trace);
            if seen.insert(n.clone()) {
                queue.push_back(n);
            }
        }
    }
    seen
}

/// `s` with actors `i` and `j` (of one class) exchanged, by hand: their
/// private states, their containers' holdings, and the locks they hold.
fn swapped(m: &IpamSystem, s: &IpamState, i: u8, j: u8, containers: &[usize]) -> IpamState {
    let mut t = s.clone();
    let (a, b) = (i as usize, j as usize);
    t.actors.swap(a, b);
    t.holders_mut().swap(containers[a], containers[b]);
    let swap = |l: Option<u8>| {
        l.map(|x| {
            if x == i {
                j
            } else if x == j {
                i
            } else {
                x
            }
        })
    };
    for d in &mut t.daemons {
        d.network_lock = swap(d.network_lock);
        d.handle_lock = swap(d.handle_lock);
    }
    let _ = m;
    t
}

fn runs(n: usize, setup: Vec<SetupOp>) -> IpamSpec {
    IpamSpec {
        network: "bridge".into(),
        subnet: "172.17.0.0/28".parse().unwrap(),
        gateway: None,
        ip_range: None,
        setup,
        actors: (0..n)
            .map(|i| ActorSpec {
                kind: ActorKind::Run(format!("r{i}")),
                daemon: 0,
            })
            .collect(),
        faults: Default::default(),
        endpoints: false,
    }
}

#[test]
fn the_reduced_space_is_one_state_per_orbit_of_the_full_space() {
    let release = vec![
        SetupOp::Run("old".into()),
        SetupOp::Rm(netrace::ipam::system::Target::Name("old".into())),
    ];
    for (n, setup) in [(3, Vec::new()), (3, release)] {
        for (profile, serial) in [
            ("libnetwork-17.05", false),
            ("libnetwork-17.05", true),
            ("libnetwork-18.03", false),
            ("classic-swarm-cas", false),
        ] {
            let mut p = Profile::builtin(profile).unwrap();
            p.serial = serial;
            let m = IpamSystem::new(&runs(n, setup.clone()), &p).unwrap();
            assert_eq!(m.symmetry_classes(), &[vec![0, 1, 2]], "{profile}");
            let containers: Vec<usize> = (0..n).map(|i| m.containers().len() - n + i).collect();
            let all = reachable(&m);
            // The symmetry is real: swapping two runs of a reachable state
            // gives a reachable state with the same property results.
            let props = m.properties();
            for s in &all {
                for (i, j) in [(0, 1), (1, 2), (0, 2)] {
                    let t = swapped(&m, s, i, j, &containers);
                    assert!(all.contains(&t), "{profile}: a swap leaves the space");
                    for p in &props {
                        assert_eq!(
                            (p.check)(&m, s).is_ok(),
                            (p.check)(&m, &t).is_ok(),
                            "{profile}: {} is not symmetric",
                            p.name
                        );
                    }
                }
                // The representative is a member of the orbit.
                let c = m.canonical(s).unwrap_or_else(|| s.clone());
                let orbit: Vec<IpamState> = [
                    s.clone(),
                    swapped(&m, s, 0, 1, &containers),
                    swapped(&m, s, 1, 2, &containers),
                    swapped(&m, s, 0, 2, &containers),
                    swapped(&m, &swapped(&m, s, 0, 1, &containers), 1, 2, &containers),
                    swapped(&m, &swapped(&m, s, 1, 2, &containers), 0, 1, &containers),
                ]
                .into();
                assert!(
                    orbit.contains(&c),
                    "{profile}: a representative outside its orbit"
                );
                // Every member of the orbit has the same representative.
                for o in &orbit {
                    assert_eq!(m.canonical(o).unwrap_or_else(|| o.clone()), c, "{profile}");
                }
            }
            let orbits: HashSet<IpamState> = all
                .iter()
                .map(|s| m.canonical(s).unwrap_or_else(|| s.clone()))
                .collect();
            // The explorer without partial-order reduction visits exactly
            // the states of the full space, or exactly its orbits.
            let count = |symmetry| {
                let r = explore::bfs(
                    &m,
                    &Options {
                        por: false,
                        symmetry,
                        ..Options::default()
                    },
                    &mut |_| {},
                );
                assert!(r.complete);
                r.states
            };
            assert_eq!(count(false), all.len() as u64, "{profile}");
            assert_eq!(count(true), orbits.len() as u64, "{profile}");
            assert!(orbits.len() * 2 < all.len(), "{profile}: a real reduction");
        }
    }
}

#[test]
fn runs_targeted_by_an_rm_or_on_other_daemons_are_not_interchangeable() {
    let mut spec = runs(3, Vec::new());
    spec.actors.push(ActorSpec {
        kind: ActorKind::Rm(netrace::ipam::system::Target::Name("r1".into())),
        daemon: 0,
    });
    let m = IpamSystem::new(&spec, &Profile::builtin("libnetwork-17.05").unwrap()).unwrap();
    assert_eq!(m.symmetry_classes(), &[vec![0, 2]]);
    let mut spec = runs(4, Vec::new());
    spec.actors[1].daemon = 1;
    spec.actors[3].daemon = 1;
    let m = IpamSystem::new(&spec, &Profile::builtin("classic-swarm-cas").unwrap()).unwrap();
    assert_eq!(m.symmetry_classes(), &[vec![0, 2], vec![1, 3]]);
}

/// Compact frontier states (issue 10 item 2): a step shares its parent's
/// store and daemon handles (one `Arc`, copy-on-write) unless it writes
/// them, and the model's fingerprint, which hashes those shared parts by
/// their cached fingerprints, still tells every reachable state apart.
#[test]
fn a_step_shares_the_store_and_handles_it_leaves_alone_and_fingerprints_stay_exact() {
    use std::collections::HashMap;
    use std::sync::Arc;
    let release = vec![
        SetupOp::Run("old".into()),
        SetupOp::Rm(netrace::ipam::system::Target::Name("old".into())),
    ];
    for profile in ["libnetwork-17.05", "libnetwork-18.03", "classic-swarm-cas"] {
        let p = Profile::builtin(profile).unwrap();
        let m = IpamSystem::new(&runs(3, release.clone()), &p).unwrap();
        let all = reachable(&m);
        let (mut shared, mut steps) = (0u64, 0u64);
        let mut by_fp: HashMap<u128, &IpamState> = HashMap::new();
        let mut actions = Vec::new();
        for s in &all {
            if let Some(other) = by_fp.insert(m.fingerprint(s), s) {
                assert_eq!(other, s, "{profile}: two states, one fingerprint");
            }
            actions.clear();
            m.actions(s, &mut actions);
            for a in &actions {
                let mut trace = Trace::on();
                let n = m.next_state(s, a, &mut trace);
                let lines = trace.take().join("\n");
                steps += 1;
                // Only a write (`nh.writeToStore()`, a lost answer
                // included) may take a store of its own.
                if let (Some(x), Some(y)) = (&s.store, &n.store) {
                    if !lines.contains("writeToStore") {
                        assert!(Arc::ptr_eq(x, y), "{profile}: a copied store:\n{lines}");
                        shared += 1;
                    }
                }
                // Only a refresh, the compute and commit phases (under
                // `h.Lock()`) and a crash may take a handle of their own.
                let touches = ["GetObject", "h.Lock()", "fails hard"];
                if !touches.iter().any(|t| lines.contains(t)) {
                    for (d, e) in s.daemons.iter().zip(&n.daemons) {
                        assert!(
                            Arc::ptr_eq(&d.handle, &e.handle),
                            "{profile}: a copied handle:\n{lines}"
                        );
                    }
                }
            }
        }
        assert_eq!(by_fp.len(), all.len(), "{profile}");
        if p.store {
            assert!(
                shared * 2 > steps,
                "{profile}: {shared} of {steps} steps share the store"
            );
        }
    }
}

/// The breadth-first frontier's encoding (`Model::packer`): every
/// reachable state of three runs under three profiles (with a store and
/// its faults under `classic-swarm-cas`) packs into a byte string that
/// unpacks, from one buffer holding all of them in turn, into an equal
/// state with the same fingerprint, and the encoding is compact (the
/// goal of ≤ 32 bytes per visited state needs frontier states of a few
/// dozen bytes, not the ~650 of an `IpamState` with its heap parts).
#[test]
fn packed_frontier_states_unpack_to_equal_states() {
    let release = vec![
        SetupOp::Run("old".into()),
        SetupOp::Rm(netrace::ipam::system::Target::Name("old".into())),
    ];
    for profile in ["libnetwork-17.05", "libnetwork-18.03", "classic-swarm-cas"] {
        let p = Profile::builtin(profile).unwrap();
        let mut spec = runs(3, release.clone());
        if p.store {
            spec.faults = netrace::ipam::system::Faults {
                store_timeouts: 1,
                crashes: 1,
                ..Default::default()
            };
        }
        let m = IpamSystem::new(&spec, &p).unwrap();
        let all: Vec<IpamState> = reachable(&m).into_iter().collect();
        let mut packer = m.packer().expect("the IPAM model packs its states");
        let mut buf = Vec::new();
        for s in &all {
            packer.pack(s, &mut buf);
        }
        let mut bytes = &buf[..];
        for s in &all {
            let back = packer.unpack(&mut bytes);
            assert_eq!(&back, s, "{profile}: unpacked state differs");
            assert_eq!(m.fingerprint(&back), m.fingerprint(s), "{profile}");
        }
        assert!(bytes.is_empty(), "{profile}: bytes left over");
        let per_state = buf.len() as f64 / all.len() as f64;
        assert!(
            per_state < 40.0,
            "{profile}: {per_state:.1} bytes per packed state over {} states",
            all.len()
        );
        eprintln!(
            "{profile}: {} states, {per_state:.1} bytes per packed state",
            all.len()
        );
    }
}

/// The sequential search's reused states (`Frontier::pop_into`,
/// `Model::next_state_into`): every reachable state of three runs under
/// three profiles (store faults and endpoint records included), decoded
/// in breadth-first order into one state reused throughout, equals the
/// state packed, with the same fingerprint; and a successor written into
/// one reused state equals `next_state`'s, with the same fingerprint.
/// Neither may change a state that shares parts with the reused one.
#[test]
fn reused_states_decode_and_step_to_equal_states() {
    let release = vec![
        SetupOp::Run("old".into()),
        SetupOp::Rm(netrace::ipam::system::Target::Name("old".into())),
    ];
    for profile in ["libnetwork-17.05", "libnetwork-18.03", "classic-swarm-cas"] {
        let p = Profile::builtin(profile).unwrap();
        let mut spec = runs(3, release.clone());
        if p.store {
            spec.faults = netrace::ipam::system::Faults {
                store_timeouts: 1,
                crashes: 1,
                ..Default::default()
            };
            spec.endpoints = true;
        }
        let m = IpamSystem::new(&spec, &p).unwrap();
        // Breadth-first order, so that the test is the same every run.
        let mut all = vec![m.init_state()];
        let mut seen: HashSet<IpamState> = all.iter().cloned().collect();
        let mut actions = Vec::new();
        let mut trace = Trace::off();
        let mut reused = m.init_state();
        let mut steps = 0;
        let mut i = 0;
        while i < all.len() {
            let s = all[i].clone();
            i += 1;
            actions.clear();
            m.actions(&s, &mut actions);
            let parent = deep(&s);
            for a in &actions {
                let n = m.next_state(&s, a, &mut trace);
                let previous = reused.clone();
                let was = deep(&previous);
                m.next_state_into(&s, a, &mut trace, &mut reused);
                assert_eq!(reused, n, "{profile}: {a:?} from {s:?}");
                assert_eq!(m.fingerprint(&reused), m.fingerprint(&n), "{profile}");
                assert_eq!(deep(&s), parent, "{profile}: the parent changed");
                assert_eq!(deep(&previous), was, "{profile}: a sharer changed");
                steps += 1;
                if seen.insert(n.clone()) {
                    all.push(n);
                }
            }
        }
        let mut packer = m.packer().expect("the IPAM model packs its states");
        let mut buf = Vec::new();
        for s in &all {
            packer.pack(s, &mut buf);
        }
        let mut bytes = &buf[..];
        let mut out = all[all.len() - 1].clone();
        for s in &all {
            let before = out.clone();
            let was = deep(&before);
            packer.unpack_into(&mut bytes, &mut out);
            assert_eq!(
                &out, s,
                "{profile}: state decoded into a reused one differs"
            );
            assert_eq!(m.fingerprint(&out), m.fingerprint(s), "{profile}");
            assert_eq!(deep(&before), was, "{profile}: a sharer changed");
        }
        assert!(bytes.is_empty(), "{profile}: bytes left over");
        // Again, the reused state never cloned: its parts are its own, so
        // the packer may write them in place.
        let mut bytes = &buf[..];
        for s in &all {
            packer.unpack_into(&mut bytes, &mut out);
            assert_eq!(&out, s, "{profile}: state decoded in place differs");
            assert_eq!(m.fingerprint(&out), m.fingerprint(s), "{profile}");
        }
        assert_eq!(p.store, all.iter().any(|s| !s.records.is_empty()));
        eprintln!("{profile}: {} states, {steps} steps", all.len());
    }
}

/// A deep snapshot of a state: its `Debug` text (the shared parts'
/// values) without the parts' fingerprint caches, which fill in as the
/// state is hashed.
fn deep(s: &IpamState) -> String {
    let text = format!("{s:?}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("fingerprint: OnceLock(") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        rest = &rest[rest.find(')').map_or(rest.len(), |e| e + 1)..];
    }
    out.push_str(rest);
    out
}
