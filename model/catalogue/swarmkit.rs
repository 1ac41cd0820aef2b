//! Docker swarm mode's network allocator rebuilt on a leader change:
//! swarmkit #2237 (one restore pass mixes re-registering stored addresses
//! with allocating new ones) and #2468 (origin libnetwork #1790: restore
//! never re-registered an ingress service's VIP).
//!
//! Stands for moby/swarmkit (Apache-2.0), checked against the upstream
//! code (docs/fidelity.md says where):
//! - `manager/allocator/network.go`, `doNetworkInit`: the new leader's
//!   allocator starts with an empty IPAM and walks the store: services
//!   (`FindServices`, each not `IsServiceAllocated(s, OnInit)` through
//!   `allocateService`), then tasks (`FindTasks`, `allocateTask`), each
//!   list committed in a batch. Before #2237 (commit 61483fb1) that is one
//!   pass: a task without an address processed before a task that claims
//!   one takes the claimed address. #2237 makes it two passes,
//!   `allocateServices(ctx, true)` / `allocateTasks(ctx, true)` (only
//!   objects that already have addresses) then the same with `false`.
//! - `manager/allocator/cnmallocator/networkallocator.go`:
//!   `allocateVIP` and `allocateNetworkIPs` call `ipam.RequestAddress`
//!   with the stored address when there is one (it fails when the address
//!   is taken), otherwise with none (any free address);
//!   `IsServiceAllocated`: for a VIP on the ingress network of a service
//!   that needs ingress, before #2468 (commit 5fd25d2b) the loop only
//!   `continue`s, so a service attached to ingress alone counts as
//!   allocated on init and its VIP is never requested; #2468 returns false
//!   when the allocator's `services` map lacks the service.
//!
//! The steps: one per object in each list of each pass, in the order the
//! explorer chooses (upstream it is the order of the store's index, by the
//! objects' random IDs); the object's commit is folded into its step
//! (nothing reads the store during the restore). The raft store swarmkit
//! keeps is the etcd model here: only the leader writes.
//!
//! Not modelled: the old leader (its state is the scenario's starting
//! store), nodes' ingress attachments (`allocateNodes`), ports, DNSRR,
//! serial allocation (`setIPAMSerialAlloc`: free addresses are taken
//! lowest first), the gateway address, events after the restore, #2505,
//! #2571/#2584, retries of a failed object.

use std::collections::BTreeMap;

use super::{bits, put, Pool};
use crate::sim::{Checked, Model, Property, Trace, When};
use crate::store::etcd::{Etcd, RangeRequest};

/// The prefix of the service objects.
pub const SERVICES: &str = "/swarm/services/";
/// The prefix of the task objects.
pub const TASKS: &str = "/swarm/tasks/";

/// The profiles a variant starts from.
pub const PROFILE_NAMES: [&str; 3] = ["swarmkit-pre-2237", "swarmkit-2237", "swarmkit-2468"];

/// What a variant runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmProfile {
    /// The profile's name.
    pub name: String,
    /// From #2237 on: claimed addresses first, then new ones.
    pub two_passes: bool,
    /// From #2468 on: an ingress service's VIP is requested on restore.
    pub restore_ingress_vips: bool,
}

impl SwarmProfile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<SwarmProfile> {
        let (two_passes, restore_ingress_vips) = match name {
            "swarmkit-pre-2237" => (false, false),
            "swarmkit-2237" => (true, false),
            "swarmkit-2468" => (true, true),
            _ => return None,
        };
        Some(SwarmProfile {
            name: name.to_string(),
            two_passes,
            restore_ingress_vips,
        })
    }

    /// One line: what the profile does.
    pub fn summary(&self) -> String {
        format!(
            "{}; {}",
            if self.two_passes {
                "restore in two passes, stored addresses first (#2237)"
            } else {
                "restore in one pass (before #2237)"
            },
            if self.restore_ingress_vips {
                "ingress VIPs requested on restore (#2468)"
            } else {
                "an ingress-only service counts as allocated, its VIP is not requested (before #2468)"
            }
        )
    }
}

/// What kind of object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A service with a VIP on the network.
    Service,
    /// A task with an endpoint on the network.
    Task,
}

/// One object in the store at the leader change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmObject {
    /// Service or task.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The address the store records for it, if any.
    pub address: Option<u32>,
}

/// The variant-independent description of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmSpec {
    /// The network's subnet.
    pub pool: Pool,
    /// The network is the ingress network (services on it are
    /// ingress-only services with published ports).
    pub ingress: bool,
    /// The objects, services first.
    pub objects: Vec<SwarmObject>,
}

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SwarmState {
    /// The store: each object's recorded address.
    pub store: Etcd<Option<u32>>,
    /// The new leader's IPAM: reserved offset → the object it was
    /// reserved for (index into the spec's objects).
    pub ipam: BTreeMap<u32, u8>,
    /// The list being walked (index into the profile's stages).
    pub stage: u8,
    /// Objects of the current list already processed.
    pub done: u64,
}

/// One step: the current list's `allocateService` or `allocateTask` of
/// object `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action(pub u8);

/// A swarm-mode allocator model: one scenario under one profile.
#[derive(Debug)]
pub struct SwarmSystem {
    spec: SwarmSpec,
    profile: SwarmProfile,
    init: SwarmState,
    /// Each stage: which kind, and which objects (a mask).
    stages: Vec<(Kind, u64)>,
}

impl SwarmSystem {
    /// The model of `spec` under `profile`.
    pub fn new(spec: &SwarmSpec, profile: &SwarmProfile) -> Self {
        let mut store = Etcd::compacting();
        for o in &spec.objects {
            store
                .put(&put(&Self::key_of(o), o.address))
                .expect("a valid put");
        }
        let mask = |kind: Kind, claimed: Option<bool>| {
            spec.objects
                .iter()
                .enumerate()
                .filter(|(_, o)| o.kind == kind && claimed.is_none_or(|c| o.address.is_some() == c))
                .fold(0u64, |m, (i, _)| m | 1 << i)
        };
        let stages = if profile.two_passes {
            vec![
                (Kind::Service, mask(Kind::Service, Some(true))),
                (Kind::Task, mask(Kind::Task, Some(true))),
                (Kind::Service, mask(Kind::Service, Some(false))),
                (Kind::Task, mask(Kind::Task, Some(false))),
            ]
        } else {
            vec![
                (Kind::Service, mask(Kind::Service, None)),
                (Kind::Task, mask(Kind::Task, None)),
            ]
        };
        let mut init = SwarmState {
            store,
            ipam: BTreeMap::new(),
            stage: 0,
            done: 0,
        };
        Self::skip_empty(&stages, &mut init);
        SwarmSystem {
            spec: spec.clone(),
            profile: profile.clone(),
            init,
            stages,
        }
    }

    fn key_of(o: &SwarmObject) -> String {
        match o.kind {
            Kind::Service => format!("{SERVICES}{}", o.name),
            Kind::Task => format!("{TASKS}{}", o.name),
        }
    }

    fn skip_empty(stages: &[(Kind, u64)], s: &mut SwarmState) {
        while let Some((_, mask)) = stages.get(s.stage as usize) {
            if mask & !s.done != 0 {
                break;
            }
            s.stage += 1;
            s.done = 0;
        }
    }

    /// The scenario as this model runs it.
    pub fn spec(&self) -> &SwarmSpec {
        &self.spec
    }

    /// The profile.
    pub fn profile(&self) -> &SwarmProfile {
        &self.profile
    }

    fn ip(&self, o: u32) -> std::net::Ipv4Addr {
        self.spec.pool.addr(o)
    }

    fn label(&self, i: usize) -> String {
        let o = &self.spec.objects[i];
        match o.kind {
            Kind::Service => format!("service {}", o.name),
            Kind::Task => format!("task {}", o.name),
        }
    }

    /// Every stored object with an address: (label, offset, kind).
    fn holders(&self, s: &SwarmState) -> Vec<(String, u32, Kind)> {
        let r = s
            .store
            .range(&RangeRequest {
                key: "/swarm/".to_string(),
                prefix: true,
                ..RangeRequest::default()
            })
            .expect("a read of now");
        r.kvs
            .into_iter()
            .filter_map(|kv| {
                let a = kv.value?;
                let (kind, label) = if let Some(n) = kv.key.strip_prefix(SERVICES) {
                    (Kind::Service, format!("service {n}"))
                } else {
                    let n = kv.key.strip_prefix(TASKS).unwrap_or(&kv.key);
                    (Kind::Task, format!("task {n}"))
                };
                Some((label, a, kind))
            })
            .collect()
    }
}

fn unique(m: &SwarmSystem, s: &SwarmState) -> Result<Checked, String> {
    let h = m.holders(s);
    super::unique(&m.spec.pool, h.iter().map(|(l, o, _)| (l.as_str(), *o)))
}

fn no_leak(m: &SwarmSystem, s: &SwarmState) -> Result<Checked, String> {
    let used = m.holders(s).iter().fold(0u64, |b, (_, o, _)| b | 1 << o);
    let ipam = reserved(s);
    super::no_leak(&m.spec.pool, ipam, ipam, used, "the restore")
}

fn reserved(s: &SwarmState) -> u64 {
    s.ipam.keys().fold(0u64, |b, o| b | 1 << o)
}

fn vip_kept(m: &SwarmSystem, s: &SwarmState) -> Result<Checked, String> {
    let mut any = false;
    for (i, obj) in m.spec.objects.iter().enumerate() {
        if obj.kind != Kind::Service {
            continue;
        }
        let Some(o) = s
            .store
            .get(&SwarmSystem::key_of(obj))
            .and_then(|kv| kv.value)
        else {
            continue;
        };
        any = true;
        match s.ipam.get(&o) {
            Some(&j) if j as usize == i => {}
            Some(&j) => {
                return Err(format!(
                    "{}'s VIP {} is reserved for {} in the new leader's IPAM",
                    m.label(i),
                    m.ip(o),
                    m.label(j as usize)
                ))
            }
            None => {
                return Err(format!(
                    "{}'s VIP {} is not reserved in the new leader's IPAM after the restore: \
                     the next task can be handed it",
                    m.label(i),
                    m.ip(o)
                ))
            }
        }
    }
    Ok(Checked::when(any))
}

impl Model for SwarmSystem {
    type State = SwarmState;
    type Action = Action;

    fn init_state(&self) -> SwarmState {
        self.init.clone()
    }

    fn actions(&self, s: &SwarmState, out: &mut Vec<Action>) {
        if let Some((_, mask)) = self.stages.get(s.stage as usize) {
            for i in bits(mask & !s.done) {
                out.push(Action(i as u8));
            }
        }
    }

    fn next_state(&self, s: &SwarmState, a: &Action, trace: &mut Trace) -> SwarmState {
        let mut n = s.clone();
        let i = a.0 as usize;
        let o = &self.spec.objects[i];
        let key = Self::key_of(o);
        let stored = s.store.get(&key).and_then(|kv| kv.value);
        n.done |= 1u64 << i;
        let skip = o.kind == Kind::Service
            && self.spec.ingress
            && stored.is_some()
            && !self.profile.restore_ingress_vips;
        if skip {
            trace.line(format!(
                "IsServiceAllocated(OnInit): true for the ingress VIP {}; not requested",
                self.ip(stored.unwrap_or(0))
            ));
        } else {
            match stored {
                Some(addr) => {
                    if !s.ipam.contains_key(&addr) {
                        n.ipam.insert(addr, a.0);
                        trace.line(format!("RequestAddress({}): reserved", self.ip(addr)));
                    } else {
                        trace.line(format!(
                            "RequestAddress({}): already allocated; the allocation fails, \
                             the object keeps its stored address",
                            self.ip(addr)
                        ));
                    }
                }
                None => match bits(self.spec.pool.full() & !reserved(s)).next() {
                    Some(addr) => {
                        n.ipam.insert(addr, a.0);
                        n.store.put(&put(&key, Some(addr))).expect("a valid put");
                        trace.line(format!(
                            "RequestAddress(any): {}; committed to the store",
                            self.ip(addr)
                        ));
                    }
                    None => trace.line("RequestAddress(any): no address available"),
                },
            }
        }
        Self::skip_empty(&self.stages, &mut n);
        n
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: "ipam.unique",
                when: When::Always,
                summary: "no two services or tasks in the store have one address",
                check: unique,
            },
            Property {
                name: "ipam.no_leak",
                when: When::Quiescent,
                summary: "after the restore, every address the new leader's IPAM holds is an object's",
                check: no_leak,
            },
            Property {
                name: "swarm.vip_kept",
                when: When::Quiescent,
                summary: "after the restore, every stored service VIP is reserved for its service in the new leader's IPAM",
                check: vip_kept,
            },
        ]
    }

    fn describe(&self, s: &SwarmState, a: &Action) -> String {
        let pass = if self.profile.two_passes {
            if s.stage < 2 {
                "pass 1 (stored addresses)"
            } else {
                "pass 2 (new)"
            }
        } else {
            "the one pass"
        };
        let i = a.0 as usize;
        let f = match self.spec.objects[i].kind {
            Kind::Service => "allocateService",
            Kind::Task => "allocateTask",
        };
        format!("restore, {pass}: {f} {}", self.label(i))
    }

    fn action_key(&self, _s: &SwarmState, a: &Action) -> u64 {
        u64::from(a.0)
    }

    fn summarize(&self, s: &SwarmState) -> Vec<String> {
        let h: Vec<String> = self
            .holders(s)
            .iter()
            .map(|(l, o, _)| format!("{l}={}", self.ip(*o)))
            .collect();
        let ipam: Vec<String> = s
            .ipam
            .iter()
            .map(|(o, i)| format!("{}→{}", self.ip(*o), self.label(*i as usize)))
            .collect();
        vec![
            format!("store: [{}]", h.join(", ")),
            format!("new leader's IPAM: [{}]", ipam.join(", ")),
        ]
    }
}
