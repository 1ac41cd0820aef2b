//! whereabouts' allocate loop (#143) as real clients of a real etcd, with
//! the model's verdicts on scenarios/whereabouts-deadline-nil-error.toml
//! beside the real runs'.
//!
//! Each pod has its own HTTP client and runs its protocol against the
//! server request by request, deciding from etcd's real answers:
//! `CreatePod` (a put of the pod's key), `GetIPPool` (a `Range` of the pool
//! key; the lowest free offset of the allocations read), `pool.Update` (a
//! `Txn` comparing the pool key's `mod_revision` with the one read; on
//! success a put of the pod's key with its address, the status). On a
//! failed compare the loop counts a conflict and, once the variant's
//! `deadline_conflicts` is reached, returns the picked address with a nil
//! error (before #143) or fails (#143); else it goes back to `GetIPPool`.
//!
//! **The order is forced**, and this says so: one driver thread gives the
//! turns, each turn one pod's next request (the pods' protocol state lives
//! in their own structs, fed only by etcd's answers). Two ways of picking:
//! the model's counterexample (its steps, in order) when the model finds
//! `ipam.unique` violated, and seeded random orders for every variant (a
//! sample, not a proof). A real run violates `ipam.unique` when two pod
//! keys in etcd end with one address. The model and the real runs must
//! agree: no random order may duplicate where the model says `holds`;
//! where it says `violated`, the forced counterexample and some random
//! order must end in a duplicate. The reconciler (#207) is not run here.
//! Each run uses its own key namespace; the etcd server is the test's own
//! and is stopped when the test ends, on every path (`Server`'s drop).

use netrace::catalogue::whereabouts::{
    Action, WhereaboutsProfile, WhereaboutsSpec, WhereaboutsSystem,
};
use netrace::explore::{self, Options};
use netrace::scenario::catalogue::WhereaboutsScenario;
use netrace::sim::{Model, Trace};
use netrace::store::oracle::{Client, Server};
use netrace::store::vector::{Cmp, Request};

mod common;
use common::etcd::{server_or_skip, Agreement};

const FILE: &str = "scenarios/whereabouts-deadline-nil-error.toml";
const POOL: &str = "/whereabouts/ippools/range";
const PODS: &str = "/registry/pods/default/";

fn variants() -> Vec<(String, WhereaboutsSpec, WhereaboutsProfile)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    let s = netrace::scenario::load(&path).unwrap();
    let sc = s.system.downcast::<WhereaboutsScenario>().unwrap();
    sc.variants
        .iter()
        .map(|v| {
            let mut spec = sc.spec.clone();
            spec.deadline_conflicts = v.model.spec().deadline_conflicts;
            (v.name.clone(), spec, v.profile.clone())
        })
        .collect()
}

/// The model's `ipam.unique` counterexample, as actions, if any.
fn model_verdict(spec: &WhereaboutsSpec, profile: &WhereaboutsProfile) -> Option<Vec<Action>> {
    let m = WhereaboutsSystem::new(spec, profile);
    let r = explore::bfs(&m, &Options::default(), &mut |_| {});
    assert!(r.complete, "the model's search covers its space");
    let v = r.violations[0].as_ref()?;
    let mut state = m.init_state();
    let mut steps = Vec::new();
    let mut actions = Vec::new();
    for &c in &v.schedule {
        actions.clear();
        m.actions(&state, &mut actions);
        let a = actions[c as usize].clone();
        state = m.next_state(&state, &a, &mut Trace::off());
        steps.push(a);
    }
    Some(steps)
}

fn range(client: &Client, key: &str, prefix: bool) -> Vec<netrace::store::vector::Kv> {
    client
        .apply(&Request::Range {
            key: key.into(),
            prefix,
            revision: 0,
            limit: 0,
            count_only: false,
        })
        .unwrap()
        .kvs
        .unwrap_or_default()
}

fn put(client: &Client, key: &str, value: String) {
    client
        .apply(&Request::Put {
            key: key.into(),
            value,
            lease: 0,
            prev_kv: false,
        })
        .unwrap();
}

/// The pool's allocations as `offset=pod` pairs, and its `mod_revision`.
fn pool(client: &Client) -> (Vec<(u32, String)>, i64) {
    let kv = &range(client, POOL, false)[0];
    let allocs = kv
        .value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (o, p) = s.split_once('=').unwrap();
            (o.parse().unwrap(), p.to_string())
        })
        .collect();
    (allocs, kv.mod_revision)
}

fn encode(allocs: &[(u32, String)]) -> String {
    let v: Vec<String> = allocs.iter().map(|(o, p)| format!("{o}={p}")).collect();
    v.join(",")
}

/// Where a real pod's ADD is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Loop {
        conflicts: u8,
    },
    Picked {
        offset: u32,
        rev: i64,
        conflicts: u8,
    },
    Done,
}

struct Pod {
    name: String,
    client: Client,
    phase: Phase,
}

impl Pod {
    /// One request of the pod's protocol, decided from etcd's answers.
    fn step(&mut self, size: u32, deadline: u8, returns_ip: bool) {
        let key = format!("{PODS}{}", self.name);
        self.phase = match self.phase {
            Phase::Start => {
                put(&self.client, &key, String::new());
                Phase::Loop { conflicts: 0 }
            }
            Phase::Loop { conflicts } => {
                let (allocs, rev) = pool(&self.client);
                match (0..size).find(|o| allocs.iter().all(|(a, _)| a != o)) {
                    Some(offset) => Phase::Picked {
                        offset,
                        rev,
                        conflicts,
                    },
                    None => Phase::Done,
                }
            }
            Phase::Picked {
                offset,
                rev,
                conflicts,
            } => {
                let (mut allocs, _) = pool(&self.client);
                allocs.push((offset, self.name.clone()));
                let r = self
                    .client
                    .apply(&Request::Txn {
                        compare: vec![Cmp {
                            key: POOL.into(),
                            target: "mod".into(),
                            result: "=".into(),
                            number: rev,
                            value: None,
                        }],
                        success: vec![Request::Put {
                            key: POOL.into(),
                            value: encode(&allocs),
                            lease: 0,
                            prev_kv: false,
                        }],
                        failure: vec![],
                    })
                    .unwrap();
                if r.succeeded == Some(true) || conflicts + 1 >= deadline && returns_ip {
                    put(&self.client, &key, offset.to_string());
                    Phase::Done
                } else if conflicts + 1 >= deadline {
                    Phase::Done
                } else {
                    Phase::Loop {
                        conflicts: conflicts + 1,
                    }
                }
            }
            Phase::Done => Phase::Done,
        };
    }
}

/// Splitmix64, seeded: the random orders.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// One real run in its own namespace: true when two pods ended with one
/// address. `order`: the model's steps, or a seed.
fn real_run(
    server: &Server,
    n: usize,
    spec: &WhereaboutsSpec,
    profile: &WhereaboutsProfile,
    order: Result<&[Action], u64>,
) -> bool {
    let ns = format!("/whereabouts/{n}/");
    put(&server.client(&ns, 0), POOL, String::new());
    let mut pods: Vec<Pod> = spec
        .pods
        .iter()
        .map(|p| Pod {
            name: p.clone(),
            client: server.client(&ns, 0),
            phase: Phase::Start,
        })
        .collect();
    let (size, deadline, returns_ip) = (
        spec.pool.size,
        spec.deadline_conflicts,
        profile.deadline_returns_ip,
    );
    match order {
        Ok(steps) => {
            for a in steps {
                let (Action::CreatePod(p) | Action::GetIpPool(p) | Action::Update(p)) = *a else {
                    panic!("no reconciler in {FILE}")
                };
                pods[p as usize].step(size, deadline, returns_ip);
            }
        }
        Err(seed) => {
            let mut rng = Rng(seed);
            loop {
                let live: Vec<usize> = (0..pods.len())
                    .filter(|&i| pods[i].phase != Phase::Done)
                    .collect();
                if live.is_empty() {
                    break;
                }
                pods[live[rng.below(live.len())]].step(size, deadline, returns_ip);
            }
        }
    }
    let ips: Vec<String> = range(&server.client(&ns, 0), PODS, true)
        .into_iter()
        .map(|kv| kv.value)
        .filter(|v| !v.is_empty())
        .collect();
    (1..ips.len()).any(|i| ips[..i].contains(&ips[i]))
}

#[test]
fn the_model_predicts_the_real_allocate_loops_verdicts() {
    let Some(server) = server_or_skip("the whereabouts allocate loop over real etcd") else {
        return;
    };
    const RANDOM_RUNS: u64 = 60;
    let mut n = 0;
    let mut agreement = Agreement::default();
    for (variant, spec, profile) in variants() {
        let model = model_verdict(&spec, &profile);
        let mut hits = 0;
        for seed in 0..RANDOM_RUNS {
            hits += u64::from(real_run(&server, n, &spec, &profile, Err(seed)));
            n += 1;
        }
        agreement.random(&variant, model.is_some(), hits, RANDOM_RUNS, true);
        if let Some(steps) = &model {
            let v = real_run(&server, n, &spec, &profile, Ok(steps));
            n += 1;
            agreement.forced(&variant, v, "");
        }
    }
    agreement.assert_agree();
}
