//! Kubernetes ClusterIP allocation and its repair loop, over etcd
//! (kubernetes #37488, the leak counter of #39206).
//!
//! Stands for kubernetes/kubernetes (Apache-2.0), as of the 1.5 and 1.6
//! releases, checked against the upstream code (docs/fidelity.md says
//! where):
//! - `pkg/registry/core/service/rest.go`, `REST.Create`: a Service create
//!   is `serviceIPs.AllocateNext()` then `registry.CreateService`, two
//!   separate writes; `REST.Delete`: `registry.DeleteService`, then
//!   `serviceIPs.Release(ip)`.
//! - `pkg/registry/core/service/allocator/storage/storage.go`, `Etcd`:
//!   `AllocateNext` and `Release` go through `tryUpdate`, a
//!   `GuaranteedUpdate` of the one `RangeAllocation` object (read, change
//!   the bitmap, compare-and-swap on its resourceVersion, which is the
//!   etcd key's `mod_revision`; retried until it applies); `Get` reads the
//!   object; `CreateOrUpdate` writes a snapshot only if its
//!   resourceVersion is still the stored one, else a `Conflict`.
//! - `pkg/registry/core/service/allocator/bitmap.go`,
//!   `randomScanStrategy.AllocateBit`: a random start, then the next free
//!   bit; every free address can be the one handed out, so here the
//!   explorer chooses among all of them.
//! - `pkg/registry/core/service/ipallocator/controller/repair.go`,
//!   `Repair.RunOnce` (`retry.RetryOnConflict(retry.DefaultBackoff,
//!   runOnce)`: at most 4 passes) and `runOnce`: `alloc.Get()` (the
//!   snapshot, at revision r1), a `List` of all Services (no resource
//!   version: a fresh read of another collection), a bitmap rebuilt from
//!   the listed ClusterIPs, the leftovers of the snapshot treated as leaks,
//!   then `alloc.CreateOrUpdate(snapshot)` conditioned on r1. Before
//!   #39206 a leftover is dropped at once; from #39206 on, the in-memory
//!   map `leaks` counts: first sighting `numRepairsBeforeLeakCleanup - 1`,
//!   fall through to keep it and store `count - 1`, free it on the sighting
//!   that finds the count at 0. An entry is deleted only when a listed
//!   Service uses the address, and the map is updated before the write, so
//!   a pass whose write conflicts still counts.
//!
//! The steps, each one request to the store: `AllocateNext` (the
//! successful iteration of the `GuaranteedUpdate` loop: a failed
//! compare-and-swap changes nothing, so its retries are not steps),
//! `CreateService`, `DeleteService`, `Release`, and the repair's `Get`,
//! `List` and `CreateOrUpdate`. A fault, within the scenario's budget:
//! the apiserver serving a create dies between `AllocateNext` and
//! `CreateService` (the deferred release never runs).
//!
//! Time is not modelled as seconds: the repair runs every few minutes and
//! a create's two writes are milliseconds apart, so a scenario bounds how
//! many `runOnce` passes may *start* while one create is between its two
//! writes (`window_lists`), and how many `RunOnce` calls the repair makes
//! in all (`runs`). Not modelled: NodePorts (the port allocator has the
//! same loop), several apiservers each with its own repair loop and
//! `leaks` map, the watch cache (the 1.5 List is a fresh read), a Service
//! that asks for a specific ClusterIP, and IPv6.
//!
//! The later design, profile `kubernetes-kep-1880` (KEP-1880, #115075):
//! `pkg/registry/core/service/ipallocator/ipallocator.go`,
//! `Allocator.createIPAddress`, makes `AllocateNext` the create of an
//! IPAddress object named by the address, its `ParentRef` the Service
//! (`AlreadyExists` means taken), before the Service object is written;
//! `Release` deletes it; `controller/repairip.go`, `syncIPAddress`, deletes
//! an IPAddress whose parent Service is not found once it is older than
//! `gracePeriod` (60 s, "the default timeout value on the kube-apiserver"),
//! else requeues it. Here a sync is one step (the lister read and the
//! delete), the repair's `runs` count syncs, and time is a clock in the
//! state that advances [`TICK_S`] at a time, only while a create is in
//! flight and only as far as the variant's `api_call_s` lets that create
//! last (nothing else depends on time). Not modelled for it: informer lag
//! (the lister is read as etcd is), ServiceCIDR objects, the repair of
//! Services whose IPAddress is missing.

use std::collections::BTreeMap;

use super::{bits, put, Pool};
use crate::sim::{Arrow, ArrowKind, Checked, Lane, Mark, Model, Property, Sketch, Trace, When};
use crate::store::etcd::{
    Compare, CompareResult, CompareTarget, Etcd, RangeRequest, RequestOp, Revision, TxnRequest,
};

/// The etcd key of the ClusterIP `RangeAllocation` object.
pub const RANGE_KEY: &str = "/registry/ranges/serviceips";
/// The prefix of every Service object's key.
pub const SERVICES: &str = "/registry/services/specs/";

/// The etcd key of Service `name` (namespace `default`).
pub fn service_key(name: &str) -> String {
    format!("{SERVICES}default/{name}")
}

/// The prefix of KEP-1880's IPAddress objects (one key per address).
pub const IPADDRESSES: &str = "/registry/ipaddresses/";

/// KEP-1880's repair deletes an IPAddress whose parent Service does not
/// exist only when it is older than this (`gracePeriod` in repairip.go).
pub const GRACE_S: u32 = 60;

/// The step of simulated time, seconds (KEP-1880 profile only).
pub const TICK_S: u32 = 30;

/// `retry.DefaultBackoff.Steps`: the passes of one `RunOnce`.
pub const RUN_ONCE_PASSES: u8 = 4;

/// A stored object's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Obj {
    /// The `RangeAllocation`: the allocated offsets as a bitmap.
    Range(u64),
    /// A Service: its ClusterIP's offset.
    Service(u32),
    /// KEP-1880: the IPAddress object of one address.
    IpAddress {
        /// Its `ParentRef`: the Service it was allocated for.
        parent: String,
        /// Its creation time on the simulated clock, seconds.
        created_s: u32,
    },
}

/// The profiles a variant starts from.
pub const PROFILE_NAMES: [&str; 3] = [
    "kubernetes-pre-39206",
    "kubernetes-39206",
    "kubernetes-kep-1880",
];

/// What a variant runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterIpProfile {
    /// Its name.
    pub name: String,
    /// `numRepairsBeforeLeakCleanup`; `None`: before #39206, no counter (a
    /// leftover is freed by the first pass that sees it).
    pub leak_counter: Option<u8>,
    /// At most this many repair `List`s happen while one create is
    /// between `AllocateNext` and `CreateService`, or one delete between
    /// `DeleteService` and `Release`; `None`: no bound but the repair's
    /// `runs`.
    pub window_lists: Option<u8>,
    /// KEP-1880's design: an IPAddress object per address instead of the
    /// bitmap, and its repair (`repairip.go`) instead of `runOnce`.
    pub ipaddress: bool,
    /// KEP-1880 profile: the longest a create stays between its two
    /// writes, seconds (time passes in steps of [`TICK_S`]).
    pub api_call_s: u32,
}

impl ClusterIpProfile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<ClusterIpProfile> {
        let (leak_counter, ipaddress) = match name {
            "kubernetes-pre-39206" => (None, false),
            "kubernetes-39206" => (Some(3), false),
            "kubernetes-kep-1880" => (None, true),
            _ => return None,
        };
        Some(ClusterIpProfile {
            name: name.to_string(),
            leak_counter,
            window_lists: None,
            ipaddress,
            api_call_s: 0,
        })
    }

    /// One line: what the repair does with a leftover, and the window.
    pub fn summary(&self) -> String {
        if self.ipaddress {
            return format!(
                "an IPAddress object per address (KEP-1880); the repair deletes one whose Service \
                 does not exist once it is older than {GRACE_S} s; a create may take up to {} s \
                 between its two writes",
                self.api_call_s
            );
        }
        let counter = match self.leak_counter {
            None => "repair frees an unused address on the first pass that sees it (k = 1)".to_string(),
            Some(k) => format!("repair keeps an unused address until its leak counter runs out (numRepairsBeforeLeakCleanup = {k})"),
        };
        let window = match self.window_lists {
            None => {
                "any number of repair Lists between a create's or a delete's two writes".to_string()
            }
            Some(w) => {
                format!("at most {w} repair Lists between a create's or a delete's two writes")
            }
        };
        format!("{counter}; {window}")
    }

    /// How many sequential passes free a fresh leak: what `ipam.no_leak`
    /// lets the repair run at quiescence.
    pub fn promised_passes(&self) -> u8 {
        match self.leak_counter {
            None => 1,
            // The first sighting stores k - 2 (k - 1, fallen through and
            // decremented); a pass that finds 0 or less frees it.
            Some(k) => k.max(2),
        }
    }
}

/// What a concurrent actor does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorSpec {
    /// `kubectl create service`: `REST.Create` with a ClusterIP to allocate.
    Create(String),
    /// `kubectl delete service`: `REST.Delete`.
    Delete(String),
}

impl ActorSpec {
    /// The Service it acts on.
    pub fn service(&self) -> &str {
        match self {
            ActorSpec::Create(n) | ActorSpec::Delete(n) => n,
        }
    }
}

/// A scenario's system, independent of the variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterIpSpec {
    /// The service CIDR's addresses.
    pub pool: Pool,
    /// Services that exist before (on offsets 0, 1, ... in order).
    pub services: Vec<String>,
    /// The concurrent creates and deletes.
    pub actors: Vec<ActorSpec>,
    /// `RunOnce` calls the repair makes.
    pub repair_runs: u8,
    /// Apiserver deaths between a create's two writes.
    pub crashes: u8,
}

/// Where an actor is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Not started.
    Start,
    /// A create after `AllocateNext`: its offset, and the repair `List`s
    /// since.
    Allocated {
        /// The ClusterIP's offset.
        offset: u32,
        /// Repair `List`s since `AllocateNext`.
        lists: u8,
        /// When `AllocateNext` ran, seconds.
        at_s: u32,
    },
    /// A delete after `DeleteService`: the offset to release, and the
    /// repair `List`s since.
    Deleted {
        /// The ClusterIP's offset.
        offset: u32,
        /// Repair `List`s since `DeleteService`.
        lists: u8,
    },
    /// Finished.
    Done(Outcome),
}

/// How an actor finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The Service was written with this offset.
    Created(u32),
    /// `AllocateNext` found the range full.
    Full,
    /// The apiserver died between the two writes.
    Crashed,
    /// The Service was deleted and its address released.
    Deleted,
    /// The Service to delete did not exist.
    NotFound,
}

/// The repair controller's progress in its current pass.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RepairStep {
    /// Before `Get`.
    Idle,
    /// After `Get`: the snapshot's resourceVersion and bitmap.
    Snapshot {
        /// r1: the `RangeAllocation`'s `mod_revision`.
        r1: Revision,
        /// The snapshot's bitmap.
        bitmap: u64,
    },
    /// After `List`: the listed Services' (name, offset), in key order.
    Listed {
        /// r1.
        r1: Revision,
        /// The snapshot's bitmap.
        bitmap: u64,
        /// The listed Services.
        services: Vec<(String, u32)>,
    },
}

/// The repair controller (`Repair` in repair.go).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repair {
    /// `RunOnce` calls not yet started.
    pub runs_left: u8,
    /// The pass of the current `RunOnce` (1 to 4), 0 between calls.
    pub pass: u8,
    /// Where the current pass is.
    pub step: RepairStep,
    /// `Repair.leaks`: the leak counter per offset (in memory).
    pub leaks: BTreeMap<u32, i8>,
}

/// The whole world.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterIpState {
    /// etcd.
    pub store: Etcd<Obj>,
    /// The creates and deletes, as in the spec.
    pub actors: Vec<Phase>,
    /// The repair controller.
    pub repair: Repair,
    /// Apiserver deaths left.
    pub crashes_left: u8,
    /// The first address handed out while a written Service held it:
    /// (offset, holder, taker).
    pub reallocated: Option<(u32, String, String)>,
    /// The simulated clock, seconds (KEP-1880 profile; 0 otherwise).
    pub now_s: u32,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `AllocateNext` of a create, handing out `offset` (`None`: full).
    AllocateNext {
        /// The actor.
        actor: u8,
        /// The offset the random scan lands on.
        offset: Option<u32>,
    },
    /// `CreateService`: the Service object written.
    CreateService {
        /// The actor.
        actor: u8,
    },
    /// The apiserver serving a create dies after `AllocateNext`.
    Crash {
        /// The actor.
        actor: u8,
    },
    /// `GetService` and `DeleteService` of a delete.
    DeleteService {
        /// The actor.
        actor: u8,
    },
    /// `Release` of a delete's address.
    Release {
        /// The actor.
        actor: u8,
    },
    /// The repair's `alloc.Get()`: the snapshot.
    Get,
    /// The repair's `List` of all Services.
    List,
    /// The repair's rebuild and `alloc.CreateOrUpdate(snapshot)`.
    CreateOrUpdate,
    /// KEP-1880: the repair's `syncIPAddress` of one address.
    SyncIpAddress {
        /// The address's offset.
        offset: u32,
    },
    /// KEP-1880: [`TICK_S`] seconds pass.
    Tick,
}

/// What `runOnce` decides from a snapshot and a list: the bitmap to write,
/// the leak counters after the pass, and the log lines (repair.go's
/// messages). Shared by the model and the real clients of
/// tests/etcd_k8s.rs, so both decide alike.
pub fn rebuild(
    profile: &ClusterIpProfile,
    pool: &Pool,
    snapshot: u64,
    services: &[(String, u32)],
    leaks: &mut BTreeMap<u32, i8>,
) -> (u64, Vec<String>) {
    let leak_counter = profile.leak_counter;
    let mut stored = snapshot;
    let mut rebuilt = 0u64;
    let mut log = Vec::new();
    for (name, offset) in services {
        let bit = 1u64 << offset;
        let ip = pool.addr(*offset);
        if rebuilt & bit != 0 {
            log.push(format!(
                "the cluster IP {ip} for service {name}/default was assigned to multiple services; please recreate"
            ));
            continue;
        }
        rebuilt |= bit;
        if stored & bit != 0 {
            stored &= !bit;
        } else {
            log.push(format!(
                "the cluster IP {ip} for service {name}/default is not allocated; repairing"
            ));
        }
        leaks.remove(offset);
    }
    for offset in bits(stored) {
        let ip = pool.addr(offset);
        let Some(k) = leak_counter else {
            log.push(format!(
                "the cluster IP {ip} appears to have leaked: cleaning up"
            ));
            continue;
        };
        let count = match leaks.get(&offset) {
            None => {
                log.push(format!(
                    "the cluster IP {ip} may have leaked: flagging for later clean up"
                ));
                Some(k as i8 - 1)
            }
            Some(&c) if c > 0 => Some(c),
            Some(_) => None,
        };
        match count {
            Some(c) => {
                leaks.insert(offset, c - 1);
                rebuilt |= 1u64 << offset;
            }
            None => log.push(format!(
                "the cluster IP {ip} appears to have leaked: cleaning up"
            )),
        }
    }
    (rebuilt, log)
}

/// The model of one variant.
#[derive(Debug)]
pub struct ClusterIpSystem {
    spec: ClusterIpSpec,
    profile: ClusterIpProfile,
    init: ClusterIpState,
}

const REPAIR: u8 = u8::MAX;

impl ClusterIpSystem {
    /// The model of `spec` under `profile`.
    pub fn new(spec: &ClusterIpSpec, profile: &ClusterIpProfile) -> Result<Self, String> {
        if spec.services.len() > spec.pool.size as usize {
            return Err(format!(
                "{} existing Services do not fit in {} addresses",
                spec.services.len(),
                spec.pool.size
            ));
        }
        let mut store: Etcd<Obj> = Etcd::compacting();
        let mut bitmap = 0u64;
        for (i, name) in spec.services.iter().enumerate() {
            bitmap |= 1 << i;
            store
                .put(&put(&service_key(name), Obj::Service(i as u32)))
                .expect("a put of a key");
            if profile.ipaddress {
                let ip = Obj::IpAddress {
                    parent: name.clone(),
                    created_s: 0,
                };
                store
                    .put(&put(&ipaddress_key(&spec.pool, i as u32), ip))
                    .expect("a put of a key");
            }
        }
        if !profile.ipaddress {
            store
                .put(&put(RANGE_KEY, Obj::Range(bitmap)))
                .expect("a put of a key");
        }
        let init = ClusterIpState {
            store,
            actors: vec![Phase::Start; spec.actors.len()],
            repair: Repair {
                runs_left: spec.repair_runs,
                pass: 0,
                step: RepairStep::Idle,
                leaks: BTreeMap::new(),
            },
            crashes_left: spec.crashes,
            reallocated: None,
            now_s: 0,
        };
        Ok(ClusterIpSystem {
            spec: spec.clone(),
            profile: profile.clone(),
            init,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &ClusterIpSpec {
        &self.spec
    }

    /// The profile.
    pub fn profile(&self) -> &ClusterIpProfile {
        &self.profile
    }

    /// The `RangeAllocation`'s bitmap and `mod_revision`.
    pub fn range(store: &Etcd<Obj>) -> (u64, Revision) {
        match store.get(RANGE_KEY) {
            Some(kv) => match kv.value {
                Obj::Range(b) => (b, kv.mod_revision),
                _ => panic!("{RANGE_KEY} holds no range"),
            },
            None => panic!("{RANGE_KEY} was created with the cluster"),
        }
    }

    /// The live Service objects: (name, offset) in key order.
    pub fn services(store: &Etcd<Obj>) -> Vec<(String, u32)> {
        let r = store
            .range(&RangeRequest {
                key: SERVICES.to_string(),
                prefix: true,
                ..RangeRequest::default()
            })
            .expect("a read of now");
        r.kvs
            .into_iter()
            .map(|kv| {
                let name = kv.key.rsplit('/').next().unwrap_or_default().to_string();
                match kv.value {
                    Obj::Service(o) => (name, o),
                    _ => panic!("{} holds no Service", kv.key),
                }
            })
            .collect()
    }

    /// KEP-1880: the IPAddress objects, (offset, parent, created_s).
    pub fn ipaddresses(&self, store: &Etcd<Obj>) -> Vec<(u32, String, u32)> {
        let r = store
            .range(&RangeRequest {
                key: IPADDRESSES.to_string(),
                prefix: true,
                ..RangeRequest::default()
            })
            .expect("a read of now");
        r.kvs
            .into_iter()
            .map(|kv| {
                let ip: std::net::Ipv4Addr = kv.key[IPADDRESSES.len()..]
                    .parse()
                    .expect("an IPAddress is named by its address");
                let offset = u32::from(ip) - u32::from(self.spec.pool.first);
                match kv.value {
                    Obj::IpAddress { parent, created_s } => (offset, parent, created_s),
                    _ => panic!("{} holds no IPAddress", kv.key),
                }
            })
            .collect()
    }

    /// The allocated addresses as a bitmap, whatever the design.
    pub fn allocated(&self, store: &Etcd<Obj>) -> u64 {
        if self.profile.ipaddress {
            self.ipaddresses(store)
                .iter()
                .fold(0, |m, (o, _, _)| m | 1u64 << o)
        } else {
            Self::range(store).0
        }
    }

    fn name(&self, actor: u8) -> &str {
        self.spec.actors[actor as usize].service()
    }

    /// A `GuaranteedUpdate` of the range that applies: read, change, and a
    /// compare-and-swap on the `mod_revision` just read.
    fn guaranteed_update(store: &mut Etcd<Obj>, change: impl FnOnce(u64) -> u64) -> Revision {
        let (bitmap, rev) = Self::range(store);
        let r = store
            .txn(&TxnRequest {
                compare: vec![Compare {
                    key: RANGE_KEY.to_string(),
                    target: CompareTarget::Mod(rev),
                    result: CompareResult::Equal,
                }],
                success: vec![RequestOp::Put(put(RANGE_KEY, Obj::Range(change(bitmap))))],
                failure: vec![],
            })
            .expect("a valid transaction");
        assert!(r.succeeded, "nothing wrote between the read and the swap");
        r.revision
    }

    fn window_open(&self, state: &ClusterIpState) -> bool {
        match self.profile.window_lists {
            None => true,
            Some(w) => state.actors.iter().all(|p| match p {
                Phase::Allocated { lists, .. } | Phase::Deleted { lists, .. } => *lists < w,
                _ => true,
            }),
        }
    }

    /// The bitmap after `passes` sequential repair passes from `state`
    /// (nothing else running), for `ipam.no_leak`.
    fn settled(&self, state: &ClusterIpState, passes: u8) -> u64 {
        if self.profile.ipaddress {
            // Past the grace period, every IPAddress whose Service does
            // not exist is deleted by the next sync.
            return self
                .ipaddresses(&state.store)
                .iter()
                .filter(|(_, parent, _)| state.store.get(&service_key(parent)).is_some())
                .fold(0, |m, (o, _, _)| m | 1u64 << o);
        }
        let mut store = state.store.clone();
        let mut leaks = state.repair.leaks.clone();
        for _ in 0..passes {
            let (snapshot, _) = Self::range(&store);
            let services = Self::services(&store);
            let (rebuilt, _) = rebuild(
                &self.profile,
                &self.spec.pool,
                snapshot,
                &services,
                &mut leaks,
            );
            Self::guaranteed_update(&mut store, |_| rebuilt);
        }
        Self::range(&store).0
    }

    fn used(state: &ClusterIpState) -> u64 {
        Self::services(&state.store)
            .iter()
            .fold(0, |m, (_, o)| m | 1u64 << o)
    }

    fn ip(&self, offset: u32) -> std::net::Ipv4Addr {
        self.spec.pool.addr(offset)
    }

    /// The leak counters as `{10.96.0.1=1}`.
    fn leaks_text(&self, leaks: &BTreeMap<u32, i8>) -> String {
        let list: Vec<String> = leaks
            .iter()
            .map(|(o, c)| format!("{}={c}", self.ip(*o)))
            .collect();
        format!("{{{}}}", list.join(", "))
    }

    fn bitmap_text(&self, bitmap: u64) -> String {
        let list: Vec<String> = bits(bitmap).map(|o| self.ip(o).to_string()).collect();
        if list.is_empty() {
            "{}".to_string()
        } else {
            format!("{{{}}}", list.join(", "))
        }
    }
}

/// KEP-1880: the key of an address's IPAddress object.
pub fn ipaddress_key(pool: &Pool, offset: u32) -> String {
    format!("{IPADDRESSES}{}", pool.addr(offset))
}

/// A create of a key that must not exist yet (`If(create_revision = 0)
/// Then(Put)`, how the apiserver creates an object): its revision.
fn create_if_absent(store: &mut Etcd<Obj>, key: &str, value: Obj) -> Revision {
    let r = store
        .txn(&TxnRequest {
            compare: vec![Compare {
                key: key.to_string(),
                target: CompareTarget::Create(0),
                result: CompareResult::Equal,
            }],
            success: vec![RequestOp::Put(put(key, value))],
            failure: vec![],
        })
        .expect("a valid transaction");
    assert!(
        r.succeeded,
        "{key} is new: names are unique, addresses free"
    );
    r.revision
}

fn unique(m: &ClusterIpSystem, s: &ClusterIpState) -> Result<Checked, String> {
    let services = ClusterIpSystem::services(&s.store);
    super::unique(&m.spec.pool, services.iter().map(|(n, o)| (n.as_str(), *o)))
}

fn no_leak(m: &ClusterIpSystem, s: &ClusterIpState) -> Result<Checked, String> {
    let passes = m.profile.promised_passes();
    let before = m.allocated(&s.store);
    let after = m.settled(s, passes);
    let promise = if m.profile.ipaddress {
        format!("{GRACE_S} s and a repair sync of every IPAddress")
    } else {
        format!("{passes} more repair passes")
    };
    super::no_leak(
        &m.spec.pool,
        before,
        after,
        ClusterIpSystem::used(s),
        &promise,
    )
}

fn not_reallocated(m: &ClusterIpSystem, s: &ClusterIpState) -> Result<Checked, String> {
    match &s.reallocated {
        Some((o, holder, taker)) => Err(format!(
            "{} was handed to {taker} while Service {holder} exists with it",
            m.ip(*o)
        )),
        None => Ok(Checked::when(
            !ClusterIpSystem::services(&s.store).is_empty(),
        )),
    }
}

impl Model for ClusterIpSystem {
    type State = ClusterIpState;
    type Action = Action;

    fn init_state(&self) -> ClusterIpState {
        self.init.clone()
    }

    fn actions(&self, s: &ClusterIpState, out: &mut Vec<Action>) {
        for (i, (spec, phase)) in self.spec.actors.iter().zip(&s.actors).enumerate() {
            let actor = i as u8;
            match (spec, phase) {
                (ActorSpec::Create(_), Phase::Start) => {
                    let bitmap = self.allocated(&s.store);
                    let free = self.spec.pool.full() & !bitmap;
                    if free == 0 {
                        out.push(Action::AllocateNext {
                            actor,
                            offset: None,
                        });
                    }
                    for o in bits(free) {
                        out.push(Action::AllocateNext {
                            actor,
                            offset: Some(o),
                        });
                    }
                }
                (ActorSpec::Create(_), Phase::Allocated { .. }) => {
                    out.push(Action::CreateService { actor });
                    if s.crashes_left > 0 {
                        out.push(Action::Crash { actor });
                    }
                }
                (ActorSpec::Delete(_), Phase::Start) => out.push(Action::DeleteService { actor }),
                (ActorSpec::Delete(_), Phase::Deleted { .. }) => {
                    out.push(Action::Release { actor })
                }
                _ => {}
            }
        }
        let r = &s.repair;
        if self.profile.ipaddress {
            if r.runs_left > 0 {
                for (offset, _, _) in self.ipaddresses(&s.store) {
                    out.push(Action::SyncIpAddress { offset });
                }
            }
            // Time passes while a create is in flight, up to its bound
            // (nothing else in the model depends on time).
            let in_flight: Vec<u32> = s
                .actors
                .iter()
                .filter_map(|p| match p {
                    Phase::Allocated { at_s, .. } => Some(*at_s),
                    _ => None,
                })
                .collect();
            if !in_flight.is_empty()
                && in_flight
                    .iter()
                    .all(|at| s.now_s + TICK_S - at <= self.profile.api_call_s)
            {
                out.push(Action::Tick);
            }
            return;
        }
        match r.step {
            RepairStep::Idle => {
                if r.pass > 0 || r.runs_left > 0 {
                    out.push(Action::Get);
                }
            }
            RepairStep::Snapshot { .. } => {
                if self.window_open(s) {
                    out.push(Action::List);
                }
            }
            RepairStep::Listed { .. } => out.push(Action::CreateOrUpdate),
        }
    }

    fn next_state(&self, s: &ClusterIpState, a: &Action, trace: &mut Trace) -> ClusterIpState {
        let mut n = s.clone();
        match a {
            Action::AllocateNext { actor, offset } => {
                let i = *actor as usize;
                match offset {
                    None => {
                        trace.line("AllocateNext: range is full");
                        n.actors[i] = Phase::Done(Outcome::Full);
                    }
                    Some(o) if self.profile.ipaddress => {
                        // createIPAddress: Create fails with AlreadyExists
                        // on a taken address; the scan lands on a free one.
                        let key = ipaddress_key(&self.spec.pool, *o);
                        let ip = Obj::IpAddress {
                            parent: self.name(*actor).to_string(),
                            created_s: s.now_s,
                        };
                        let r = create_if_absent(&mut n.store, &key, ip);
                        if trace.is_on() {
                            trace.line(format!(
                                "IPAddress {} created for Service {} at revision {} (t = {} s)",
                                self.ip(*o),
                                self.name(*actor),
                                r,
                                s.now_s
                            ));
                        }
                    }
                    Some(o) => {
                        let bit = 1u64 << o;
                        let rev = Self::guaranteed_update(&mut n.store, |b| {
                            assert!(b & bit == 0, "the scan lands on a free bit");
                            b | bit
                        });
                        if trace.is_on() {
                            trace.line(format!(
                                "GuaranteedUpdate {RANGE_KEY}: {} allocated at revision {rev}; now {}",
                                self.ip(*o),
                                self.bitmap_text(Self::range(&n.store).0)
                            ));
                        }
                    }
                }
                if let Some(o) = offset {
                    if n.reallocated.is_none() {
                        if let Some((holder, _)) =
                            Self::services(&s.store).into_iter().find(|(_, x)| x == o)
                        {
                            n.reallocated = Some((*o, holder, self.name(*actor).to_string()));
                        }
                    }
                    n.actors[i] = Phase::Allocated {
                        offset: *o,
                        lists: 0,
                        at_s: s.now_s,
                    };
                }
            }
            Action::CreateService { actor } => {
                let i = *actor as usize;
                let Phase::Allocated { offset, .. } = s.actors[i] else {
                    panic!("CreateService before AllocateNext")
                };
                let key = service_key(self.name(*actor));
                let rev = create_if_absent(&mut n.store, &key, Obj::Service(offset));
                if trace.is_on() {
                    trace.line(format!(
                        "{key} created with clusterIP {} at revision {rev}",
                        self.ip(offset)
                    ));
                }
                n.actors[i] = Phase::Done(Outcome::Created(offset));
            }
            Action::Crash { actor } => {
                let i = *actor as usize;
                let Phase::Allocated { offset, .. } = s.actors[i] else {
                    panic!("a crash outside the window")
                };
                n.crashes_left -= 1;
                if trace.is_on() {
                    trace.line(format!(
                        "the apiserver dies: {} stays allocated, no Service uses it",
                        self.ip(offset)
                    ));
                }
                n.actors[i] = Phase::Done(Outcome::Crashed);
            }
            Action::DeleteService { actor } => {
                let i = *actor as usize;
                let key = service_key(self.name(*actor));
                match n.store.get(&key).map(|kv| kv.value.clone()) {
                    Some(Obj::Service(offset)) => {
                        n.store
                            .delete(&crate::store::etcd::DeleteRequest {
                                key: key.clone(),
                                ..Default::default()
                            })
                            .expect("a delete of a key");
                        if trace.is_on() {
                            trace.line(format!(
                                "{key} deleted at revision {}; {} not yet released",
                                n.store.revision(),
                                self.ip(offset)
                            ));
                        }
                        n.actors[i] = Phase::Deleted { offset, lists: 0 };
                    }
                    _ => {
                        trace.line(format!("GetService {key}: not found"));
                        n.actors[i] = Phase::Done(Outcome::NotFound);
                    }
                }
            }
            Action::Release { actor } => {
                let i = *actor as usize;
                let Phase::Deleted { offset, .. } = s.actors[i] else {
                    panic!("Release before DeleteService")
                };
                if self.profile.ipaddress {
                    n.store
                        .delete(&crate::store::etcd::DeleteRequest {
                            key: ipaddress_key(&self.spec.pool, offset),
                            ..Default::default()
                        })
                        .expect("a delete of a key");
                    trace.line(format!("IPAddress {} deleted", self.ip(offset)));
                } else {
                    let rev = Self::guaranteed_update(&mut n.store, |b| b & !(1u64 << offset));
                    if trace.is_on() {
                        trace.line(format!(
                            "GuaranteedUpdate {RANGE_KEY}: {} released at revision {rev}; now {}",
                            self.ip(offset),
                            self.bitmap_text(Self::range(&n.store).0)
                        ));
                    }
                }
                n.actors[i] = Phase::Done(Outcome::Deleted);
            }
            Action::SyncIpAddress { offset } => {
                n.repair.runs_left -= 1;
                let key = ipaddress_key(&self.spec.pool, *offset);
                let Some(Obj::IpAddress { parent, created_s }) =
                    s.store.get(&key).map(|kv| kv.value.clone())
                else {
                    panic!("a sync of an IPAddress that exists")
                };
                let age = s.now_s - created_s;
                if s.store.get(&service_key(&parent)).is_some() {
                    trace.line(format!(
                        "IPAddress {}: Service {parent} exists",
                        self.ip(*offset)
                    ));
                } else if age > GRACE_S {
                    n.store
                        .delete(&crate::store::etcd::DeleteRequest {
                            key,
                            ..Default::default()
                        })
                        .expect("a delete of a key");
                    trace.line(format!(
                        "IPAddress {} for Service {parent} appears to have leaked: cleaning up ({age} s old)",
                        self.ip(*offset)
                    ));
                } else {
                    trace.line(format!(
                        "IPAddress {}: Service {parent} not found, {age} s old: requeued",
                        self.ip(*offset)
                    ));
                }
            }
            Action::Tick => {
                n.now_s += TICK_S;
                trace.line(format!("t = {} s", n.now_s));
            }
            Action::Get => {
                if n.repair.pass == 0 {
                    n.repair.runs_left -= 1;
                    n.repair.pass = 1;
                }
                let (bitmap, r1) = Self::range(&n.store);
                if trace.is_on() {
                    trace.line(format!(
                        "RunOnce pass {}: snapshot of {RANGE_KEY} at resourceVersion {r1}: {}",
                        n.repair.pass,
                        self.bitmap_text(bitmap)
                    ));
                }
                n.repair.step = RepairStep::Snapshot { r1, bitmap };
            }
            Action::List => {
                let RepairStep::Snapshot { r1, bitmap } = s.repair.step else {
                    panic!("List before Get")
                };
                for p in &mut n.actors {
                    if let Phase::Allocated { lists, .. } | Phase::Deleted { lists, .. } = p {
                        *lists += 1;
                    }
                }
                let services = Self::services(&n.store);
                if trace.is_on() {
                    let list: Vec<String> = services
                        .iter()
                        .map(|(name, o)| format!("{name}={}", self.ip(*o)))
                        .collect();
                    trace.line(format!(
                        "List services at revision {}: [{}]",
                        n.store.revision(),
                        list.join(", ")
                    ));
                }
                n.repair.step = RepairStep::Listed {
                    r1,
                    bitmap,
                    services,
                };
            }
            Action::CreateOrUpdate => {
                let RepairStep::Listed {
                    r1,
                    bitmap,
                    services,
                } = &s.repair.step
                else {
                    panic!("CreateOrUpdate before List")
                };
                let (rebuilt, log) = rebuild(
                    &self.profile,
                    &self.spec.pool,
                    *bitmap,
                    services,
                    &mut n.repair.leaks,
                );
                for l in log {
                    trace.line(l);
                }
                let r = n
                    .store
                    .txn(&TxnRequest {
                        compare: vec![Compare {
                            key: RANGE_KEY.to_string(),
                            target: CompareTarget::Mod(*r1),
                            result: CompareResult::Equal,
                        }],
                        success: vec![RequestOp::Put(put(RANGE_KEY, Obj::Range(rebuilt)))],
                        failure: vec![],
                    })
                    .expect("a valid transaction");
                if r.succeeded {
                    if trace.is_on() {
                        trace.line(format!(
                            "CreateOrUpdate {RANGE_KEY} (resourceVersion {r1}): written at revision {}: {}",
                            r.revision,
                            self.bitmap_text(rebuilt)
                        ));
                    }
                    n.repair.pass = 0;
                } else {
                    let (_, now) = Self::range(&n.store);
                    let retry = s.repair.pass < RUN_ONCE_PASSES;
                    trace.line(format!(
                        "CreateOrUpdate {RANGE_KEY}: Conflict (resourceVersion {r1}, stored {now}){}",
                        if retry {
                            "; RetryOnConflict retries"
                        } else {
                            "; RetryOnConflict gives up"
                        }
                    ));
                    n.repair.pass = if retry { s.repair.pass + 1 } else { 0 };
                }
                n.repair.step = RepairStep::Idle;
            }
        }
        n
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: "ipam.unique",
                when: When::Always,
                summary: "no two live Service objects have one ClusterIP",
                check: unique,
            },
            Property {
                name: "ipam.no_leak",
                when: When::Quiescent,
                summary: "at quiescence, after the repair passes the system promises, every address no live Service uses is free",
                check: no_leak,
            },
            Property {
                name: "k8s.no_reallocation",
                when: When::Always,
                summary: "a Service's ClusterIP is never handed out again while the Service exists",
                check: not_reallocated,
            },
        ]
    }

    fn describe(&self, s: &ClusterIpState, a: &Action) -> String {
        match a {
            Action::AllocateNext { actor, offset } => match offset {
                Some(o) => format!(
                    "create {}: AllocateNext → {}",
                    self.name(*actor),
                    self.ip(*o)
                ),
                None => format!("create {}: AllocateNext (full)", self.name(*actor)),
            },
            Action::CreateService { actor } => {
                format!("create {}: CreateService", self.name(*actor))
            }
            Action::Crash { actor } => format!(
                "create {}: the apiserver dies before CreateService",
                self.name(*actor)
            ),
            Action::DeleteService { actor } => {
                format!("delete {}: DeleteService", self.name(*actor))
            }
            Action::Release { actor } => format!("delete {}: Release", self.name(*actor)),
            Action::Get => format!(
                "repair: RunOnce {} pass {}: Get (snapshot)",
                self.spec.repair_runs - s.repair.runs_left + u8::from(s.repair.pass == 0),
                s.repair.pass.max(1)
            ),
            Action::List => "repair: List services".to_string(),
            Action::SyncIpAddress { offset } => {
                format!("repair: syncIPAddress {}", self.ip(*offset))
            }
            Action::Tick => format!("{TICK_S} s pass"),
            Action::CreateOrUpdate => "repair: rebuild, CreateOrUpdate".to_string(),
        }
    }

    fn action_key(&self, _s: &ClusterIpState, a: &Action) -> u64 {
        let (actor, tag, offset): (u8, u8, u32) = match a {
            Action::AllocateNext { actor, offset } => (*actor, 1, offset.map_or(0, |o| o + 1)),
            Action::CreateService { actor } => (*actor, 2, 0),
            Action::Crash { actor } => (*actor, 3, 0),
            Action::DeleteService { actor } => (*actor, 4, 0),
            Action::Release { actor } => (*actor, 5, 0),
            Action::Get => (REPAIR, 6, 0),
            Action::List => (REPAIR, 7, 0),
            Action::CreateOrUpdate => (REPAIR, 8, 0),
            Action::SyncIpAddress { offset } => (REPAIR, 9, offset + 1),
            Action::Tick => (REPAIR - 1, 10, 0),
        };
        u64::from(actor) | u64::from(tag) << 8 | u64::from(offset) << 16
    }

    fn summarize(&self, s: &ClusterIpState) -> Vec<String> {
        let mut out = if self.profile.ipaddress {
            let ips: Vec<String> = self
                .ipaddresses(&s.store)
                .iter()
                .map(|(o, parent, at)| format!("{}→{parent} (t = {at} s)", self.ip(*o)))
                .collect();
            vec![format!(
                "IPAddresses at t = {} s: [{}]",
                s.now_s,
                ips.join(", ")
            )]
        } else {
            let (bitmap, rev) = Self::range(&s.store);
            vec![format!(
                "{RANGE_KEY} (resourceVersion {rev}): {}",
                self.bitmap_text(bitmap)
            )]
        };
        let services: Vec<String> = Self::services(&s.store)
            .iter()
            .map(|(n, o)| format!("{n}={}", self.ip(*o)))
            .collect();
        out.push(format!("services: [{}]", services.join(", ")));
        if !s.repair.leaks.is_empty() {
            out.push(format!(
                "repair leaks: {}",
                self.leaks_text(&s.repair.leaks)
            ));
        }
        out
    }

    fn lanes(&self) -> Vec<Lane> {
        let mut out: Vec<Lane> = self
            .spec
            .actors
            .iter()
            .map(|a| match a {
                ActorSpec::Create(n) => Lane::new("apiserver", &format!("create {n}")),
                ActorSpec::Delete(n) => Lane::new("apiserver", &format!("delete {n}")),
            })
            .collect();
        out.push(Lane::new("apiserver", "repair"));
        out.push(Lane::new("", "etcd"));
        out
    }

    fn sketch(&self, before: &ClusterIpState, a: &Action, after: &ClusterIpState) -> Sketch {
        let n = self.spec.actors.len();
        let (repair, etcd) = (n, n + 1);
        let (lane, what) = match a {
            Action::AllocateNext { actor, .. } => (*actor as usize, "AllocateNext"),
            Action::CreateService { actor } => (*actor as usize, "CreateService"),
            Action::Crash { actor } => (*actor as usize, "apiserver dies"),
            Action::DeleteService { actor } => (*actor as usize, "DeleteService"),
            Action::Release { actor } => (*actor as usize, "Release"),
            Action::Get => (repair, "Get"),
            Action::List => (repair, "List"),
            Action::CreateOrUpdate => (repair, "CreateOrUpdate"),
            Action::SyncIpAddress { .. } => (repair, "syncIPAddress"),
            Action::Tick => {
                return Sketch {
                    lane: None,
                    what: format!("{TICK_S} s pass: t = {} s", after.now_s),
                    ..Sketch::default()
                }
            }
        };
        let mut arrows = Vec::new();
        let mut marks = Vec::new();
        let call = |from: usize, to: usize, label: String| Arrow {
            from,
            to,
            label,
            kind: ArrowKind::Call,
        };
        // The allocated addresses, and the revision that last changed them.
        let state_of = |st: &ClusterIpState| {
            if self.profile.ipaddress {
                (self.allocated(&st.store), st.store.revision())
            } else {
                Self::range(&st.store)
            }
        };
        let (b0, r0) = state_of(before);
        let (b1, r1) = state_of(after);
        match a {
            Action::Crash { .. } => {}
            Action::Get => {
                arrows.push(call(etcd, lane, format!("r{r0}: {}", self.bitmap_text(b0))))
            }
            Action::List => {
                let list: Vec<String> = Self::services(&before.store)
                    .iter()
                    .map(|(s, o)| format!("{s}={}", self.ip(*o)))
                    .collect();
                arrows.push(call(etcd, lane, format!("[{}]", list.join(", "))));
            }
            _ => {
                let label = match a {
                    Action::AllocateNext {
                        offset: Some(o), ..
                    } if self.profile.ipaddress => {
                        format!("create IPAddress {}", self.ip(*o))
                    }
                    Action::AllocateNext {
                        offset: Some(o), ..
                    } => format!("set {}", self.ip(*o)),
                    Action::CreateService { .. } => "put Service".to_string(),
                    Action::SyncIpAddress { offset } => format!("sync {}", self.ip(*offset)),
                    Action::DeleteService { .. } => "delete Service".to_string(),
                    Action::Release { actor } => match before.actors[*actor as usize] {
                        Phase::Deleted { offset, .. } => format!("clear {}", self.ip(offset)),
                        _ => "release".to_string(),
                    },
                    Action::CreateOrUpdate => match &before.repair.step {
                        RepairStep::Listed { r1, .. } => {
                            format!("if r = r{r1}: {}", self.bitmap_text(b1))
                        }
                        _ => "write".to_string(),
                    },
                    _ => what.to_string(),
                };
                arrows.push(call(lane, etcd, label));
            }
        }
        if b0 != b1 || r0 != r1 {
            marks.push(Mark {
                lane: etcd,
                text: format!("r{r1}: {}", self.bitmap_text(b1)),
                change: b0 != b1,
            });
        }
        if before.repair.leaks != after.repair.leaks {
            marks.push(Mark {
                lane,
                text: format!("leaks {}", self.leaks_text(&after.repair.leaks)),
                change: false,
            });
        }
        if matches!(a, Action::CreateOrUpdate) && after.repair.pass > 0 && b0 == b1 {
            marks.push(Mark {
                lane,
                text: "Conflict".to_string(),
                change: false,
            });
        }
        Sketch {
            lane: Some(lane),
            what: what.to_string(),
            arrows,
            marks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        Pool::hosts("10.96.0.0/29".parse().unwrap()).unwrap()
    }

    #[test]
    fn the_leak_counter_frees_on_the_kth_sighting_and_forgets_only_when_used() {
        let p = pool();
        let fix = ClusterIpProfile::builtin("kubernetes-39206").unwrap();
        let before = ClusterIpProfile::builtin("kubernetes-pre-39206").unwrap();
        let mut leaks = BTreeMap::new();
        // Offset 1 set in the snapshot, used by no Service.
        let mut sightings = Vec::new();
        for _ in 0..3 {
            let (rebuilt, _) = rebuild(&fix, &p, 0b10, &[], &mut leaks);
            sightings.push(rebuilt);
        }
        assert_eq!(sightings, [0b10, 0b10, 0], "kept twice, freed on the third");
        // The counter is still there (0): a fresh leak of 1 is freed at once.
        assert_eq!(leaks.get(&1), Some(&0));
        assert_eq!(rebuild(&fix, &p, 0b10, &[], &mut leaks).0, 0);
        // A Service using it clears the counter.
        rebuild(&fix, &p, 0b10, &[("a".into(), 1)], &mut leaks);
        assert!(leaks.is_empty());
        // Before #39206: freed on the first sighting.
        assert_eq!(rebuild(&before, &p, 0b10, &[], &mut leaks).0, 0);
        // A listed Service whose bit is not set is set again.
        assert_eq!(
            rebuild(&before, &p, 0, &[("a".into(), 2)], &mut leaks).0,
            0b100
        );
    }
}
