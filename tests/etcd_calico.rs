//! Calico's garbage collector against a re-created node (#3589, fix
//! #5613) as real clients of a real etcd, with the model's verdicts on
//! scenarios/calico-release-by-handle.toml beside the real runs'.
//!
//! Three actors, each with its own HTTP client, each request real and each
//! decision from etcd's answers: the node (delete its key; re-create it
//! without an address; `ReleaseByHandle` of its tunnel handle: a `Range` of
//! the block, then a `Txn` comparing the block's `mod_revision` and putting
//! it without the handle's allocations; `AutoAssign`: a `Range`, the lowest
//! free ordinal, a `Txn`; the node's key with the address), the collector
//! (`checkAllocations`: a `Range` of the node key and, when it is absent,
//! of the block, recording the handle's allocations with their sequence
//! numbers; `garbageCollectIPs`: by handle before #5613, by address, handle
//! and sequence number after), and the pod (its `AutoAssign`, then its key
//! with the address, once the node has been re-created). The block's value
//! is written again here as text (`seq|ordinal=handle@seq,...`), not shared
//! with the model.
//!
//! **The order is forced**, and this says so: one driver thread gives the
//! turns, each turn one actor's next step (a step's compare-and-swap
//! retries on conflict, which in a forced order never happens). Two ways
//! of picking: the model's `ipam.unique` counterexample and seeded random
//! orders (a sample, not a proof). A real run violates `ipam.unique` when
//! the node's key and the pod's key end with one address. Each run has its
//! own key namespace; the etcd server is the test's own and stops when the
//! test ends, on every path.

use netrace::catalogue::calico::{Action, CalicoProfile, CalicoSpec, CalicoSystem};
use netrace::explore::{self, Options};
use netrace::scenario::catalogue::CalicoScenario;
use netrace::sim::{Model, Trace};
use netrace::store::oracle::{Client, Server};
use netrace::store::vector::{Cmp, Request};

mod common;
use common::etcd::{server_or_skip, Agreement};

const FILE: &str = "scenarios/calico-release-by-handle.toml";
const BLOCK: &str = "/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-30";
const NODE: &str = "/calico/resources/v3/projectcalico.org/nodes/n1";
const POD: &str = "/registry/pods/default/web";
const TUNNEL: &str = "ipip-tunnel-addr-n1";

fn variants() -> Vec<(String, CalicoSpec, CalicoProfile)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    let s = netrace::scenario::load(&path).unwrap();
    let sc = s.system.downcast::<CalicoScenario>().unwrap();
    sc.variants
        .iter()
        .map(|v| (v.name.clone(), sc.spec.clone(), v.profile.clone()))
        .collect()
}

/// The model's `ipam.unique` counterexample, as actions, if any.
fn model_verdict(spec: &CalicoSpec, profile: &CalicoProfile) -> Option<Vec<Action>> {
    let m = CalicoSystem::new(spec, profile).unwrap();
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

fn get(client: &Client, key: &str) -> Option<(String, i64)> {
    client
        .apply(&Request::Range {
            key: key.into(),
            prefix: false,
            revision: 0,
            limit: 0,
            count_only: false,
        })
        .unwrap()
        .kvs
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|kv| (kv.value, kv.mod_revision))
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

/// A block as text: its sequence number and ordinal → (handle, seq).
struct Block {
    seq: u64,
    allocs: Vec<(u32, String, u64)>,
}

fn parse(v: &str) -> Block {
    let (seq, rest) = v.split_once('|').unwrap();
    let allocs = rest
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (o, hs) = s.split_once('=').unwrap();
            let (h, q) = hs.rsplit_once('@').unwrap();
            (o.parse().unwrap(), h.to_string(), q.parse().unwrap())
        })
        .collect();
    Block {
        seq: seq.parse().unwrap(),
        allocs,
    }
}

fn encode(b: &Block) -> String {
    let v: Vec<String> = b
        .allocs
        .iter()
        .map(|(o, h, q)| format!("{o}={h}@{q}"))
        .collect();
    format!("{}|{}", b.seq, v.join(","))
}

/// Read the block, change it, swap it in on its revision; retried on a
/// conflict. Returns what `change` returned.
fn update_block<T>(client: &Client, mut change: impl FnMut(&mut Block) -> T) -> T {
    loop {
        let (v, rev) = get(client, BLOCK).expect("the block exists");
        let mut b = parse(&v);
        let out = change(&mut b);
        b.seq += 1;
        let r = client
            .apply(&Request::Txn {
                compare: vec![Cmp {
                    key: BLOCK.into(),
                    target: "mod".into(),
                    result: "=".into(),
                    number: rev,
                    value: None,
                }],
                success: vec![Request::Put {
                    key: BLOCK.into(),
                    value: encode(&b),
                    lease: 0,
                    prev_kv: false,
                }],
                failure: vec![],
            })
            .unwrap();
        if r.succeeded == Some(true) {
            return out;
        }
    }
}

fn assign(client: &Client, handle: &str) -> Option<u32> {
    update_block(client, |b| {
        let o = (0..4).find(|o| b.allocs.iter().all(|(a, _, _)| a != o))?;
        b.allocs.push((o, handle.to_string(), b.seq));
        Some(o)
    })
}

/// The actors' progress: the node's next step (0..5), the collector's
/// (0..2, its leaks), whether the pod ran.
struct Run {
    node: Client,
    gc: Client,
    pod: Client,
    node_step: u8,
    gc_step: u8,
    leaks: Vec<(u32, u64)>,
    node_addr: Option<u32>,
    pod_done: bool,
}

impl Run {
    fn node(&mut self) {
        match self.node_step {
            0 => {
                self.node
                    .apply(&Request::Delete {
                        key: NODE.into(),
                        prefix: false,
                        prev_kv: false,
                    })
                    .unwrap();
            }
            1 => put(&self.node, NODE, String::new()),
            2 => update_block(&self.node, |b| b.allocs.retain(|(_, h, _)| h != TUNNEL)),
            3 => self.node_addr = assign(&self.node, TUNNEL),
            4 => put(
                &self.node,
                NODE,
                self.node_addr.map_or(String::new(), |o| o.to_string()),
            ),
            _ => panic!("the node has no more steps"),
        }
        self.node_step += 1;
    }

    fn gc(&mut self, by_seq: bool) {
        match self.gc_step {
            0 => {
                if get(&self.gc, NODE).is_none() {
                    let (v, _) = get(&self.gc, BLOCK).unwrap();
                    self.leaks = parse(&v)
                        .allocs
                        .into_iter()
                        .filter(|(_, h, _)| h == TUNNEL)
                        .map(|(o, _, q)| (o, q))
                        .collect();
                }
            }
            1 => {
                for &(o, q) in &self.leaks.clone() {
                    if by_seq {
                        update_block(&self.gc, |b| {
                            b.allocs
                                .retain(|(a, h, s)| !(*a == o && h == TUNNEL && *s == q))
                        });
                    } else {
                        update_block(&self.gc, |b| b.allocs.retain(|(_, h, _)| h != TUNNEL));
                    }
                }
            }
            _ => panic!("the collector has no more steps"),
        }
        self.gc_step += 1;
    }

    fn pod(&mut self) {
        if let Some(o) = assign(&self.pod, "k8s-pod-network.web") {
            put(&self.pod, POD, o.to_string());
        }
        self.pod_done = true;
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

/// One real run in its own namespace: true when tunl0 and the pod end
/// with one address.
fn real_run(server: &Server, n: usize, by_seq: bool, order: Result<&[Action], u64>) -> bool {
    let ns = format!("/calico/{n}/");
    let setup = server.client(&ns, 0);
    put(&setup, BLOCK, format!("2|0={TUNNEL}@1"));
    put(&setup, NODE, "0".into());
    let mut run = Run {
        node: server.client(&ns, 0),
        gc: server.client(&ns, 0),
        pod: server.client(&ns, 0),
        node_step: 0,
        gc_step: 0,
        leaks: Vec::new(),
        node_addr: None,
        pod_done: false,
    };
    match order {
        Ok(steps) => {
            for a in steps {
                match a {
                    Action::DeleteNode(0)
                    | Action::CreateNode(0)
                    | Action::ReleaseTunnel(0)
                    | Action::AssignTunnel(0)
                    | Action::UpdateNode(0) => run.node(),
                    Action::CheckAllocations | Action::GarbageCollectIps => run.gc(by_seq),
                    Action::AssignPod(0) => run.pod(),
                    other => panic!("{other:?} is not in {FILE}"),
                }
            }
        }
        Err(seed) => {
            let mut rng = Rng(seed);
            loop {
                let mut live = Vec::new();
                if run.node_step < 5 {
                    live.push(0);
                }
                if run.gc_step < 2 {
                    live.push(1);
                }
                // The pod starts on the re-created node.
                if !run.pod_done && run.node_step >= 2 {
                    live.push(2);
                }
                if live.is_empty() {
                    break;
                }
                match live[rng.below(live.len())] {
                    0 => run.node(),
                    1 => run.gc(by_seq),
                    _ => run.pod(),
                }
            }
        }
    }
    let node = get(&setup, NODE).map(|(v, _)| v);
    let pod = get(&setup, POD).map(|(v, _)| v);
    matches!((node, pod), (Some(a), Some(b)) if !a.is_empty() && a == b)
}

#[test]
fn the_model_predicts_the_real_collectors_verdicts() {
    let Some(server) = server_or_skip("the Calico IPAM collector over real etcd") else {
        return;
    };
    // The window is narrow (about one order in 150 by a rough count), so many orders.
    const RANDOM_RUNS: u64 = 600;
    let mut n = 0;
    let mut agreement = Agreement::default();
    for (variant, spec, profile) in variants() {
        let model = model_verdict(&spec, &profile);
        let by_seq = profile.release_by_seq;
        let mut hits = 0;
        for seed in 0..RANDOM_RUNS {
            hits += u64::from(real_run(&server, n, by_seq, Err(seed)));
            n += 1;
        }
        agreement.random(&variant, model.is_some(), hits, RANDOM_RUNS, true);
        if let Some(steps) = &model {
            let v = real_run(&server, n, by_seq, Ok(steps));
            n += 1;
            agreement.forced(&variant, v, "");
        }
    }
    agreement.assert_agree();
}
