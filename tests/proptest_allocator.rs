//! A proptest state-machine test: the allocator of every profile, used one
//! call at a time (`SequentialIpam`: the same `Handle.set` phases the
//! explorer interleaves, back to back), against a reference allocator
//! written from the documented semantics: network, broadcast and gateway
//! reserved; first-fit hands out the lowest free address; serial hands out
//! the lowest free address after the last one handed out, wrapping; a
//! release frees the address.
//!
//! Profiles with the 17.05 search *and* serial allocation (17.05, 17.06 and
//! classic-swarm-cas with `serial`) are left out on purpose: they are known
//! to diverge sequentially (the search bug of
//! `scenarios/serial-search-duplicate.toml`).
//!
//! The runs are deterministic (a fixed seed), like everything in netrace;
//! a failure is saved next to this file (`*.regressions`) and replayed
//! first on every later run.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use netrace::ipam::profile::Profile;
use netrace::ipam::system::SequentialIpam;
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

/// The reference allocator's state.
#[derive(Clone, Debug)]
struct Reference {
    profile: &'static str,
    serial: bool,
    prefix: u8,
    /// Free host ordinals.
    free: BTreeSet<u32>,
    /// Allocated, in order.
    held: Vec<u32>,
    /// The serial cursor: one past the last ordinal handed out.
    curr: u32,
    /// What the last request should have returned.
    expected: Option<Option<u32>>,
}

#[derive(Clone, Debug)]
enum Op {
    Request,
    /// Release the n-th held address (modulo).
    Release(usize),
}

const PROFILES: [(&str, bool); 5] = [
    ("libnetwork-17.05", false),
    ("libnetwork-17.06", false),
    ("libnetwork-18.03", false),
    ("libnetwork-18.03", true),
    ("classic-swarm-cas", false),
];

fn bits(prefix: u8) -> u32 {
    1 << (32 - prefix)
}

struct RefMachine;

impl ReferenceStateMachine for RefMachine {
    type State = Reference;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Reference> {
        (0..PROFILES.len(), 26u8..=29)
            .prop_map(|(p, prefix)| {
                let (profile, serial) = PROFILES[p];
                // Ordinal 0 (network), 1 (gateway) and the broadcast are reserved.
                let free = (2..bits(prefix) - 1).collect();
                Reference {
                    profile,
                    serial,
                    prefix,
                    free,
                    held: Vec::new(),
                    curr: 0,
                    expected: None,
                }
            })
            .boxed()
    }

    fn transitions(state: &Reference) -> BoxedStrategy<Op> {
        if state.held.is_empty() {
            Just(Op::Request).boxed()
        } else {
            prop_oneof![3 => Just(Op::Request), 2 => any::<usize>().prop_map(Op::Release)].boxed()
        }
    }

    fn apply(mut s: Reference, op: &Op) -> Reference {
        match op {
            Op::Request => {
                let pick = if s.serial && s.curr > 0 {
                    s.free
                        .range(s.curr..)
                        .next()
                        .or_else(|| s.free.iter().next())
                        .copied()
                } else {
                    s.free.iter().next().copied()
                };
                if let Some(o) = pick {
                    s.free.remove(&o);
                    s.held.push(o);
                    s.curr = o + 1;
                }
                s.expected = Some(pick);
            }
            Op::Release(n) => {
                let o = s.held.remove(n % s.held.len());
                s.free.insert(o);
                s.expected = None;
            }
        }
        s
    }
}

struct AllocatorTest;

impl StateMachineTest for AllocatorTest {
    type SystemUnderTest = (SequentialIpam, Vec<Ipv4Addr>);
    type Reference = RefMachine;

    fn init_test(r: &Reference) -> Self::SystemUnderTest {
        let mut profile = Profile::builtin(r.profile).unwrap();
        profile.serial = r.serial;
        let subnet = format!("10.1.0.0/{}", r.prefix).parse().unwrap();
        (
            SequentialIpam::new(subnet, None, None, &profile).unwrap(),
            Vec::new(),
        )
    }

    fn apply(
        (mut sut, mut held): Self::SystemUnderTest,
        r: &Reference,
        op: Op,
    ) -> Self::SystemUnderTest {
        match op {
            Op::Request => {
                let got = sut.request_address().ok();
                let want = r
                    .expected
                    .expect("set by a request")
                    .map(|o| sut.pool().address(u64::from(o)));
                assert_eq!(
                    got, want,
                    "{} serial={}: RequestAddress",
                    r.profile, r.serial
                );
                if let Some(a) = got {
                    held.push(a);
                }
            }
            Op::Release(n) => {
                let a = held.remove(n % held.len());
                sut.release_address(a).unwrap();
            }
        }
        (sut, held)
    }

    fn check_invariants((sut, held): &Self::SystemUnderTest, r: &Reference) {
        let bm = sut.bitseq();
        assert_eq!(
            bm.unselected(),
            bm.free_bits(),
            "the counter matches the bits"
        );
        let set: BTreeSet<u64> = bm.set_ordinals().into_iter().collect();
        let mut want: BTreeSet<u64> = sut.pool().reserved().into_iter().collect();
        want.extend(r.held.iter().map(|&o| u64::from(o)));
        assert_eq!(
            set, want,
            "the bitmap holds exactly the reserved and held addresses"
        );
        assert_eq!(held.len(), r.held.len());
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e65_7472_6163_6501),
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_profile_allocates_like_the_reference_one_call_at_a_time(sequential 1..80 => AllocatorTest);
}
