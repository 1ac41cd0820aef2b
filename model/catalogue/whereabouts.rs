//! whereabouts, the Multus IPAM plugin: its allocate loop with a context
//! deadline (whereabouts #143) and its reconciler's list order (#207, fix
//! #208), over etcd.
//!
//! Stands for k8snetworkplumbingwg/whereabouts (Apache-2.0), checked
//! against the upstream code (docs/fidelity.md says where):
//! - `pkg/storage/storage.go`, `IPManagementRange` (the era's loop, shared
//!   by the etcd and the Kubernetes backends through the `Store`
//!   interface): `RETRYLOOP`, at most `DatastoreRetries` passes; each pass
//!   first checks `ctx.Done()`, then `ipam.GetIPPool` (read the pool and
//!   its allocations), `allocate.AssignIP` (the lowest free address of the
//!   range, `IterateForAssignment`), then `pool.Update` (a write
//!   conditioned on the version read: the Kubernetes backend's
//!   resourceVersion, the etcd backend's compare-and-swap); on a conflict
//!   the loop continues. Before #143 (commit 3ebaa07e) the `ctx.Done()`
//!   case is `return newip, nil`: the address picked by the pass that
//!   conflicted, with no error, so the CNI ADD succeeds with an address the
//!   pool does not record for it. The fix returns the context's error.
//! - `pkg/reconciler/iploop.go`, `NewReconcileLooper`: `ListPods` (the live
//!   pods and their IPs), then `findOrphanedIPsPerPool` → `ListIPPools`,
//!   a reservation is orphaned when `isPodAlive` finds no listed pod with
//!   its podRef and IP; `ReconcileIPPools` removes the orphans with
//!   `pool.Update` (conditioned on the listed version). #207: a pod created
//!   between the two lists is not among the live pods but its reservation
//!   is listed, so it is removed. #208 lists the pools first.
//!
//! The steps, each one request to the store: `CreatePod` (the pod object,
//! written before the kubelet calls the CNI ADD), `GetIPPool` (the read and
//! the pick), `Update` (the conditional write; success ends the ADD and the
//! kubelet records the address in the pod's status in the same step), and
//! the reconciler's `ListPods`, `ListIPPools`, `ReconcileIPPools`.
//!
//! Time is not modelled: the context's deadline is a count of conflicts
//! (`deadline_conflicts`): once an ADD has seen that many, the deadline has
//! passed when the loop next checks it. Not modelled: the pod status
//! written by the kubelet as a separate step after the ADD, CNI DEL and pod
//! deletion, the kubelet retrying a failed ADD (#142), overlapping ranges
//! (`OverlappingRangeIPReservation`), reservations keyed by pod name
//! (#176), IPv6.
//!
//! The leader-election lease (#113, #145), when the scenario has a
//! `[lease]`: `pkg/storage/kubernetes/ipam.go`, `IPManagement` and
//! `newLeaderElector` (upstream HEAD 3a262bd0). Each ADD runs a client-go
//! `leaderelection.LeaderElector` on one `Lease` object
//! (`LeaseDuration`/`RenewDeadline`/`RetryPeriod` from the IPAM config,
//! defaults 1500/1000/500 ms in `pkg/types/types.go`); `OnStartedLeading`
//! closes `leaderOK`, and the goroutine waiting on it then calls
//! `IPManagementKubernetesUpdate(ctx, ...)` with the CNI call's own
//! context, not the leader-election one: `OnStoppedLeading` closes
//! `deposed`, which nothing selects on once the update runs, so the work
//! continues after leadership is lost. When the update returns, `stopM`
//! cancels the elector's context; #145 (commit 6fdb4ded) sets
//! `ReleaseOnCancel: true`, so the lease is released then (before #145 the
//! next ADD waits for it to expire). client-go's semantics as modelled:
//! a candidate acquires when the record has no holder or its renew time
//! plus `LeaseDuration` has passed; the leader renews (at most once per
//! `RetryPeriod` tick, and the explorer may let renewals fail by not
//! taking them); a leader that has not renewed for `RenewDeadline` stops
//! leading, and the model fires that timer before the clock moves on.
//! Time is a clock of `RetryPeriod` ticks, bounded by `clock_limit`; the
//! explorer chooses when it ticks, so any step of the allocation may be
//! slow. The `stop_on_lost` profile is not upstream: it is the fix #145's
//! warning points at (pass `OnStartedLeading`'s context to the work, so
//! losing leadership cancels it); a cancelled ADD fails at its next step.
//! Not modelled: clock skew between nodes, the acquire/renew as a read and
//! a separate conditional write (one atomic step here), an `Update`
//! already on the wire when leadership is lost (the request is one step:
//! sent and applied), the context deadline while waiting for the lease.

use std::collections::BTreeMap;

use super::{bits, put, Pool};
use crate::sim::{Checked, Model, Property, Trace, When};
use crate::store::etcd::{
    Compare, CompareResult, CompareTarget, Etcd, RangeRequest, RequestOp, Revision, TxnRequest,
};

/// The key of the one `IPPool` object.
pub const POOL_KEY: &str = "/whereabouts/ippools/range";
/// The key of the leader-election `Lease` object.
pub const LEASE_KEY: &str = "/registry/leases/kube-system/whereabouts";
/// The prefix of the pod objects.
pub const PODS: &str = "/registry/pods/default/";

/// A stored object's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Obj {
    /// The `IPPool`: its allocations, offset → podRef.
    Pool(BTreeMap<u32, String>),
    /// A pod: the address in its status, once its ADD succeeded.
    Pod(Option<u32>),
    /// The `Lease`: its holder (a pod's index) and its renew time (ticks).
    Lease {
        /// `holderIdentity`; `None` once released.
        holder: Option<u8>,
        /// `renewTime`, on the model's clock.
        renew: u8,
    },
}

/// The profiles a variant starts from.
pub const PROFILE_NAMES: [&str; 6] = [
    "whereabouts-pre-143",
    "whereabouts-143",
    "whereabouts-208",
    "whereabouts-113",
    "whereabouts-145",
    "whereabouts-145-stop",
];

/// What a variant runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhereaboutsProfile {
    /// The profile's name.
    pub name: String,
    /// Before #143: the deadline returns the picked address with no error.
    pub deadline_returns_ip: bool,
    /// From #208 on: the reconciler lists the pools before the pods.
    pub pools_first: bool,
    /// From #145 on: the lease is released when the ADD's elector ends.
    pub release_on_cancel: bool,
    /// Not upstream: losing leadership cancels the ADD's work.
    pub stop_on_lost: bool,
}

impl WhereaboutsProfile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<WhereaboutsProfile> {
        let (deadline_returns_ip, pools_first, release_on_cancel, stop_on_lost) = match name {
            "whereabouts-pre-143" | "whereabouts-113" => (true, false, false, false),
            "whereabouts-143" => (false, false, false, false),
            "whereabouts-208" | "whereabouts-145" => (false, true, true, false),
            "whereabouts-145-stop" => (false, true, true, true),
            _ => return None,
        };
        Some(WhereaboutsProfile {
            name: name.to_string(),
            deadline_returns_ip,
            pools_first,
            release_on_cancel,
            stop_on_lost,
        })
    }

    /// One line: what the profile does.
    pub fn summary(&self) -> String {
        format!(
            "the deadline {}; the reconciler lists {}; the lease {}; losing it {}",
            if self.deadline_returns_ip {
                "returns the picked address with a nil error (before #143)"
            } else {
                "returns the context's error (#143)"
            },
            if self.pools_first {
                "IP pools, then pods (#208)"
            } else {
                "pods, then IP pools (before #208)"
            },
            if self.release_on_cancel {
                "is released when the ADD ends (#145)"
            } else {
                "expires after the ADD (before #145)"
            },
            if self.stop_on_lost {
                "cancels the ADD's work (not upstream)"
            } else {
                "does not stop the ADD's work (upstream)"
            }
        )
    }
}

/// The variant-independent description of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhereaboutsSpec {
    /// The range.
    pub pool: Pool,
    /// The pods created concurrently, each with one CNI ADD.
    pub pods: Vec<String>,
    /// Reconciler runs.
    pub reconciler_runs: u8,
    /// Conflicts after which an ADD's context deadline has passed.
    pub deadline_conflicts: u8,
    /// The leader-election lease around each ADD, if any.
    pub lease: Option<LeaseSpec>,
}

/// The leader election's timing, in `RetryPeriod` ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseSpec {
    /// `LeaseDuration`.
    pub duration: u8,
    /// `RenewDeadline`, less than `duration`.
    pub renew_deadline: u8,
    /// The clock stops here: the bound on how slow the ADDs may be.
    pub clock_limit: u8,
}

/// Where a pod is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Not created.
    Start,
    /// Created; its elector waits to acquire the lease.
    Waiting,
    /// Created; its ADD is at the top of `RETRYLOOP`, after `conflicts`
    /// conflicts.
    Loop {
        /// Conflicts so far.
        conflicts: u8,
    },
    /// After `GetIPPool`: the picked offset and the version read.
    Picked {
        /// The lowest free offset.
        offset: u32,
        /// The pool's `mod_revision` as read.
        rev: Revision,
        /// Conflicts so far.
        conflicts: u8,
    },
    /// The ADD succeeded with this offset.
    Running(u32),
    /// The ADD failed (pool full, or the deadline after #143).
    Failed,
}

/// Where the reconciler is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Reconciler {
    /// Runs not started.
    pub runs_left: u8,
    /// The live pods listed in this run: podRef → IP.
    pub pods: Option<BTreeMap<String, Option<u32>>>,
    /// The pool listed in this run, and its version.
    pub pool: Option<(BTreeMap<u32, String>, Revision)>,
}

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WhereaboutsState {
    /// The store.
    pub store: Etcd<Obj>,
    /// Each pod's ADD.
    pub pods: Vec<Phase>,
    /// The reconciler.
    pub reconciler: Reconciler,
    /// The clock, in `RetryPeriod` ticks (0 without a lease).
    pub clock: u8,
    /// Each pod's elector leads (between `OnStartedLeading` and
    /// `OnStoppedLeading` or the end of its ADD).
    pub leading: Vec<bool>,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The pod object is written.
    CreatePod(u8),
    /// `GetIPPool` and `AssignIP` (or the deadline fires at the loop's top).
    GetIpPool(u8),
    /// `pool.Update` of the picked address.
    Update(u8),
    /// The reconciler's `ListPods`.
    ListPods,
    /// The reconciler's `ListIPPools`.
    ListIpPools,
    /// The reconciler's `ReconcileIPPools`.
    ReconcileIpPools,
    /// The pod's elector acquires the expired or free lease.
    Acquire(u8),
    /// The leader renews the lease.
    Renew(u8),
    /// `RenewDeadline` passed without a renewal: `OnStoppedLeading`.
    StopLeading(u8),
    /// The clock moves one `RetryPeriod` on.
    Tick,
}

/// A whereabouts model: one scenario under one profile.
#[derive(Debug)]
pub struct WhereaboutsSystem {
    spec: WhereaboutsSpec,
    profile: WhereaboutsProfile,
    init: WhereaboutsState,
}

fn pod_key(name: &str) -> String {
    format!("{PODS}{name}")
}

/// `pool.Update`: the write applies only if the pool is still at `rev`.
fn update_pool(store: &mut Etcd<Obj>, rev: Revision, allocations: BTreeMap<u32, String>) -> bool {
    store
        .txn(&TxnRequest {
            compare: vec![Compare {
                key: POOL_KEY.to_string(),
                target: CompareTarget::Mod(rev),
                result: CompareResult::Equal,
            }],
            success: vec![RequestOp::Put(put(POOL_KEY, Obj::Pool(allocations)))],
            failure: vec![],
        })
        .expect("a valid transaction")
        .succeeded
}

impl WhereaboutsSystem {
    /// The model of `spec` under `profile`.
    pub fn new(spec: &WhereaboutsSpec, profile: &WhereaboutsProfile) -> Self {
        let mut store: Etcd<Obj> = Etcd::compacting();
        store
            .put(&put(POOL_KEY, Obj::Pool(BTreeMap::new())))
            .expect("a valid put");
        if spec.lease.is_some() {
            store
                .put(&put(
                    LEASE_KEY,
                    Obj::Lease {
                        holder: None,
                        renew: 0,
                    },
                ))
                .expect("a valid put");
        }
        let init = WhereaboutsState {
            store,
            pods: vec![Phase::Start; spec.pods.len()],
            reconciler: Reconciler {
                runs_left: spec.reconciler_runs,
                ..Reconciler::default()
            },
            clock: 0,
            leading: vec![false; spec.pods.len()],
        };
        WhereaboutsSystem {
            spec: spec.clone(),
            profile: profile.clone(),
            init,
        }
    }

    /// The scenario as this model runs it.
    pub fn spec(&self) -> &WhereaboutsSpec {
        &self.spec
    }

    /// The profile.
    pub fn profile(&self) -> &WhereaboutsProfile {
        &self.profile
    }

    /// The pool's allocations and `mod_revision`.
    pub fn pool(store: &Etcd<Obj>) -> (BTreeMap<u32, String>, Revision) {
        match store.get(POOL_KEY) {
            Some(kv) => match &kv.value {
                Obj::Pool(a) => (a.clone(), kv.mod_revision),
                _ => panic!("{POOL_KEY} holds no pool"),
            },
            None => panic!("{POOL_KEY} was created with the cluster"),
        }
    }

    /// The live pods: name → the IP in their status.
    pub fn live_pods(store: &Etcd<Obj>) -> BTreeMap<String, Option<u32>> {
        let r = store
            .range(&RangeRequest {
                key: PODS.to_string(),
                prefix: true,
                ..RangeRequest::default()
            })
            .expect("a read of now");
        r.kvs
            .into_iter()
            .filter_map(|kv| match kv.value {
                Obj::Pod(ip) => Some((kv.key[PODS.len()..].to_string(), ip)),
                _ => None,
            })
            .collect()
    }

    /// The reservations `isPodAlive` finds no live pod for.
    fn orphans(
        pool: &BTreeMap<u32, String>,
        pods: &BTreeMap<String, Option<u32>>,
    ) -> BTreeMap<u32, String> {
        pool.iter()
            .filter(|(o, p)| pods.get(*p) != Some(&Some(**o)))
            .map(|(o, p)| (*o, p.clone()))
            .collect()
    }

    fn ip(&self, offset: u32) -> std::net::Ipv4Addr {
        self.spec.pool.addr(offset)
    }

    fn allocations_text(&self, a: &BTreeMap<u32, String>) -> String {
        let v: Vec<String> = a
            .iter()
            .map(|(o, p)| format!("{}→{p}", self.ip(*o)))
            .collect();
        format!("[{}]", v.join(", "))
    }

    /// The lease record: holder and renew time.
    pub fn lease(store: &Etcd<Obj>) -> Option<(Option<u8>, u8)> {
        match store.get(LEASE_KEY).map(|kv| &kv.value) {
            Some(Obj::Lease { holder, renew }) => Some((*holder, *renew)),
            _ => None,
        }
    }

    fn set_lease(store: &mut Etcd<Obj>, holder: Option<u8>, renew: u8) {
        store
            .put(&put(LEASE_KEY, Obj::Lease { holder, renew }))
            .expect("a valid put");
    }

    /// A leader whose `RenewDeadline` has passed: its elector's timer
    /// fires before the clock moves on.
    fn overdue(&self, s: &WhereaboutsState) -> Option<u8> {
        let l = self.spec.lease?;
        let (holder, renew) = Self::lease(&s.store)?;
        let p = holder?;
        (s.leading[p as usize] && s.clock >= renew + l.renew_deadline).then_some(p)
    }

    /// The ADD of pod `p` ends: its elector's context is cancelled; with
    /// `ReleaseOnCancel` a leader releases the lease.
    fn end_add(&self, n: &mut WhereaboutsState, p: u8, trace: &mut Trace) {
        if !n.leading[p as usize] {
            return;
        }
        n.leading[p as usize] = false;
        if self.profile.release_on_cancel {
            if let Some((Some(h), _)) = Self::lease(&n.store) {
                if h == p {
                    Self::set_lease(&mut n.store, None, n.clock);
                    trace.line("the elector's context is cancelled: the lease is released");
                }
            }
        }
    }

    fn used(store: &Etcd<Obj>) -> u64 {
        Self::live_pods(store)
            .values()
            .flatten()
            .fold(0, |m, o| m | 1u64 << o)
    }
}

fn unique(m: &WhereaboutsSystem, s: &WhereaboutsState) -> Result<Checked, String> {
    let pods = WhereaboutsSystem::live_pods(&s.store);
    super::unique(
        &m.spec.pool,
        pods.iter()
            .filter_map(|(n, ip)| ip.map(|o| (n.as_str(), o))),
    )
}

fn no_leak(m: &WhereaboutsSystem, s: &WhereaboutsState) -> Result<Checked, String> {
    let (pool, _) = WhereaboutsSystem::pool(&s.store);
    let pods = WhereaboutsSystem::live_pods(&s.store);
    let before = pool.keys().fold(0u64, |b, o| b | 1 << o);
    // One more reconciler run, alone: it removes every orphan.
    let orphans = WhereaboutsSystem::orphans(&pool, &pods);
    let after = before & !orphans.keys().fold(0u64, |b, o| b | 1 << o);
    super::no_leak(
        &m.spec.pool,
        before,
        after,
        WhereaboutsSystem::used(&s.store),
        "one more reconciler run",
    )
}

fn recorded(m: &WhereaboutsSystem, s: &WhereaboutsState) -> Result<Checked, String> {
    let (pool, _) = WhereaboutsSystem::pool(&s.store);
    let pods = WhereaboutsSystem::live_pods(&s.store);
    let mut any = false;
    for (name, ip) in &pods {
        let Some(o) = ip else { continue };
        any = true;
        if pool.get(o) != Some(name) {
            return Err(format!(
                "pod {name} runs with {} but the IPPool records {}",
                m.ip(*o),
                match pool.get(o) {
                    Some(other) => format!("it for pod {other}"),
                    None => "no reservation for it".to_string(),
                }
            ));
        }
    }
    Ok(Checked::when(any))
}

fn exclusive(m: &WhereaboutsSystem, s: &WhereaboutsState) -> Result<Checked, String> {
    if m.spec.lease.is_none() {
        return Ok(Checked::Nothing);
    }
    let working: Vec<&str> = s
        .pods
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, Phase::Loop { .. } | Phase::Picked { .. }))
        .map(|(i, _)| m.spec.pods[i].as_str())
        .collect();
    if working.len() > 1 {
        return Err(format!(
            "the ADDs of pods {} work on the IPPool at once, with one lease",
            working.join(" and ")
        ));
    }
    Ok(Checked::when(!working.is_empty()))
}

impl Model for WhereaboutsSystem {
    type State = WhereaboutsState;
    type Action = Action;

    fn init_state(&self) -> WhereaboutsState {
        self.init.clone()
    }

    fn actions(&self, s: &WhereaboutsState, out: &mut Vec<Action>) {
        for (i, phase) in s.pods.iter().enumerate() {
            let pod = i as u8;
            match phase {
                Phase::Start => out.push(Action::CreatePod(pod)),
                Phase::Waiting => {
                    if let (Some(l), Some((holder, renew))) =
                        (self.spec.lease, Self::lease(&s.store))
                    {
                        if holder.is_none() || s.clock >= renew + l.duration {
                            out.push(Action::Acquire(pod));
                        }
                    }
                }
                Phase::Loop { .. } => out.push(Action::GetIpPool(pod)),
                Phase::Picked { .. } => out.push(Action::Update(pod)),
                Phase::Running(_) | Phase::Failed => {}
            }
        }
        let r = &s.reconciler;
        let first_done = if self.profile.pools_first {
            r.pool.is_some()
        } else {
            r.pods.is_some()
        };
        match (r.pods.is_some(), r.pool.is_some()) {
            (true, true) => out.push(Action::ReconcileIpPools),
            _ if first_done => out.push(if self.profile.pools_first {
                Action::ListPods
            } else {
                Action::ListIpPools
            }),
            _ if r.runs_left > 0 => out.push(if self.profile.pools_first {
                Action::ListIpPools
            } else {
                Action::ListPods
            }),
            _ => {}
        }
        if let Some(l) = self.spec.lease {
            if let Some(p) = self.overdue(s) {
                out.push(Action::StopLeading(p));
            } else {
                if let Some((Some(p), renew)) = Self::lease(&s.store) {
                    if s.leading[p as usize] && renew < s.clock {
                        out.push(Action::Renew(p));
                    }
                }
                if s.clock < l.clock_limit && s.pods.iter().any(|p| *p != Phase::Start) {
                    out.push(Action::Tick);
                }
            }
        }
    }

    fn next_state(&self, s: &WhereaboutsState, a: &Action, trace: &mut Trace) -> WhereaboutsState {
        let mut n = s.clone();
        match *a {
            Action::CreatePod(p) => {
                let name = &self.spec.pods[p as usize];
                n.store
                    .put(&put(&pod_key(name), Obj::Pod(None)))
                    .expect("a valid put");
                n.pods[p as usize] = if self.spec.lease.is_some() {
                    Phase::Waiting
                } else {
                    Phase::Loop { conflicts: 0 }
                };
            }
            Action::Acquire(p) => {
                let (holder, _) = Self::lease(&s.store).expect("a lease");
                Self::set_lease(&mut n.store, Some(p), s.clock);
                n.leading[p as usize] = true;
                n.pods[p as usize] = Phase::Loop { conflicts: 0 };
                trace.line(format!(
                    "acquires the lease at t{} ({}); OnStartedLeading: IPManagementKubernetesUpdate starts",
                    s.clock,
                    match holder {
                        None => "no holder".to_string(),
                        Some(h) => format!("pod {}'s has expired", self.spec.pods[h as usize]),
                    }
                ));
            }
            Action::Renew(p) => {
                Self::set_lease(&mut n.store, Some(p), s.clock);
                trace.line(format!("renews the lease at t{}", s.clock));
            }
            Action::Tick => {
                n.clock += 1;
                trace.line(format!("t{}", n.clock));
            }
            Action::StopLeading(p) => {
                n.leading[p as usize] = false;
                let working = matches!(
                    s.pods[p as usize],
                    Phase::Loop { .. } | Phase::Picked { .. }
                );
                if self.profile.stop_on_lost && working {
                    n.pods[p as usize] = Phase::Failed;
                    trace.line("OnStoppedLeading: the work's context is cancelled; the ADD fails");
                } else if working {
                    trace.line(
                        "OnStoppedLeading closes deposed; nothing waits on it: the update goes on",
                    );
                } else {
                    trace.line("OnStoppedLeading");
                }
            }
            Action::GetIpPool(p) => {
                let Phase::Loop { conflicts } = s.pods[p as usize] else {
                    unreachable!("GetIPPool at the loop's top")
                };
                let (pool, rev) = Self::pool(&s.store);
                let taken = pool.keys().fold(0u64, |b, o| b | 1 << o);
                let free = bits(self.spec.pool.full() & !taken).next();
                n.pods[p as usize] = match free {
                    Some(offset) => {
                        if trace.is_on() {
                            trace.line(format!(
                                "GetIPPool at r{rev}: {}; AssignIP picks {}",
                                self.allocations_text(&pool),
                                self.ip(offset)
                            ));
                        }
                        Phase::Picked {
                            offset,
                            rev,
                            conflicts,
                        }
                    }
                    None => {
                        trace.line("AssignIP: no free address; the ADD fails");
                        Phase::Failed
                    }
                };
                if n.pods[p as usize] == Phase::Failed {
                    self.end_add(&mut n, p, trace);
                }
            }
            Action::Update(p) => {
                let Phase::Picked {
                    offset,
                    rev,
                    conflicts,
                } = s.pods[p as usize]
                else {
                    unreachable!("Update after GetIPPool")
                };
                let name = &self.spec.pods[p as usize];
                let (mut pool, _) = Self::pool(&s.store);
                pool.insert(offset, name.clone());
                let running = |n: &mut WhereaboutsState| {
                    n.store
                        .put(&put(&pod_key(name), Obj::Pod(Some(offset))))
                        .expect("a valid put");
                    n.pods[p as usize] = Phase::Running(offset);
                };
                if update_pool(&mut n.store, rev, pool) {
                    trace.line(format!(
                        "Update applies; the ADD returns {}",
                        self.ip(offset)
                    ));
                    running(&mut n);
                } else if conflicts + 1 < self.spec.deadline_conflicts {
                    trace.line("Update: conflict; the loop continues");
                    n.pods[p as usize] = Phase::Loop {
                        conflicts: conflicts + 1,
                    };
                } else if self.profile.deadline_returns_ip {
                    trace.line(format!(
                        "Update: conflict; the deadline has passed: return {} with a nil error",
                        self.ip(offset)
                    ));
                    running(&mut n);
                } else {
                    trace.line("Update: conflict; the deadline has passed: the ADD fails");
                    n.pods[p as usize] = Phase::Failed;
                }
                if matches!(n.pods[p as usize], Phase::Running(_) | Phase::Failed) {
                    self.end_add(&mut n, p, trace);
                }
            }
            Action::ListPods => {
                if n.reconciler.pool.is_none() {
                    n.reconciler.runs_left -= 1;
                }
                let pods = Self::live_pods(&s.store);
                if trace.is_on() {
                    let v: Vec<String> = pods
                        .iter()
                        .map(|(p, ip)| match ip {
                            Some(o) => format!("{p}={}", self.ip(*o)),
                            None => format!("{p} (no IP yet)"),
                        })
                        .collect();
                    trace.line(format!("ListPods: [{}]", v.join(", ")));
                }
                n.reconciler.pods = Some(pods);
            }
            Action::ListIpPools => {
                if n.reconciler.pods.is_none() {
                    n.reconciler.runs_left -= 1;
                }
                let (pool, rev) = Self::pool(&s.store);
                if trace.is_on() {
                    trace.line(format!(
                        "ListIPPools at r{rev}: {}",
                        self.allocations_text(&pool)
                    ));
                }
                n.reconciler.pool = Some((pool, rev));
            }
            Action::ReconcileIpPools => {
                let (pool, rev) = n.reconciler.pool.take().expect("listed");
                let pods = n.reconciler.pods.take().expect("listed");
                let orphans = Self::orphans(&pool, &pods);
                if orphans.is_empty() {
                    trace.line("ReconcileIPPools: no orphans");
                } else {
                    let kept: BTreeMap<u32, String> = pool
                        .into_iter()
                        .filter(|(o, _)| !orphans.contains_key(o))
                        .collect();
                    let ok = update_pool(&mut n.store, rev, kept);
                    trace.line(format!(
                        "ReconcileIPPools removes {}: {}",
                        self.allocations_text(&orphans),
                        if ok {
                            "applies"
                        } else {
                            "conflict, the run fails"
                        }
                    ));
                }
            }
        }
        n
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: "ipam.unique",
                when: When::Always,
                summary: "no two live pods have one address",
                check: unique,
            },
            Property {
                name: "ipam.no_leak",
                when: When::Quiescent,
                summary: "at quiescence, after one more reconciler run, every address no live pod uses is free",
                check: no_leak,
            },
            Property {
                name: "whereabouts.recorded",
                when: When::Always,
                summary: "a running pod's address is reserved for it in the IPPool",
                check: recorded,
            },
            Property {
                name: "whereabouts.exclusive",
                when: When::Always,
                summary: "with a lease, at most one ADD works on the IPPool at a time",
                check: exclusive,
            },
        ]
    }

    fn describe(&self, _s: &WhereaboutsState, a: &Action) -> String {
        let pod = |p: u8| &self.spec.pods[p as usize];
        match *a {
            Action::CreatePod(p) => format!("pod {}: created", pod(p)),
            Action::GetIpPool(p) => format!("ADD {}: GetIPPool, AssignIP", pod(p)),
            Action::Update(p) => format!("ADD {}: pool.Update", pod(p)),
            Action::ListPods => "reconciler: ListPods".to_string(),
            Action::ListIpPools => "reconciler: ListIPPools".to_string(),
            Action::ReconcileIpPools => "reconciler: ReconcileIPPools".to_string(),
            Action::Acquire(p) => format!("elector {}: acquire the lease", pod(p)),
            Action::Renew(p) => format!("elector {}: renew the lease", pod(p)),
            Action::StopLeading(p) => format!("elector {}: RenewDeadline passed", pod(p)),
            Action::Tick => "clock: one RetryPeriod".to_string(),
        }
    }

    fn action_key(&self, _s: &WhereaboutsState, a: &Action) -> u64 {
        const RECONCILER: u64 = 0xff;
        let (actor, tag) = match *a {
            Action::CreatePod(p) => (u64::from(p), 1),
            Action::GetIpPool(p) => (u64::from(p), 2),
            Action::Update(p) => (u64::from(p), 3),
            Action::ListPods => (RECONCILER, 4),
            Action::ListIpPools => (RECONCILER, 5),
            Action::ReconcileIpPools => (RECONCILER, 6),
            Action::Acquire(p) => (u64::from(p), 7),
            Action::Renew(p) => (u64::from(p), 8),
            Action::StopLeading(p) => (u64::from(p), 9),
            Action::Tick => (0xfe, 10),
        };
        actor | tag << 8
    }

    fn summarize(&self, s: &WhereaboutsState) -> Vec<String> {
        let (pool, rev) = Self::pool(&s.store);
        let pods: Vec<String> = Self::live_pods(&s.store)
            .iter()
            .map(|(p, ip)| match ip {
                Some(o) => format!("{p}={}", self.ip(*o)),
                None => format!("{p} (no IP)"),
            })
            .collect();
        let mut v = vec![
            format!("IPPool (r{rev}): {}", self.allocations_text(&pool)),
            format!("pods: [{}]", pods.join(", ")),
        ];
        if let Some((holder, renew)) = Self::lease(&s.store) {
            v.push(format!(
                "lease: {} renewed t{renew}; clock t{}",
                match holder {
                    Some(h) => format!("held by {}", self.spec.pods[h as usize]),
                    None => "free".to_string(),
                },
                s.clock
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_reservations_without_a_live_pod_holding_them() {
        let pool: BTreeMap<u32, String> = [(0, "a".into()), (1, "b".into()), (2, "c".into())]
            .into_iter()
            .collect();
        let pods: BTreeMap<String, Option<u32>> = [("a".into(), Some(0)), ("b".into(), Some(5))]
            .into_iter()
            .collect();
        let o = WhereaboutsSystem::orphans(&pool, &pods);
        assert_eq!(o.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    }
}
