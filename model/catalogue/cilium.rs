//! Cilium operator IPAM (ENI-style, one node): the operator's excess-IP
//! release racing the agent's allocation of a fresh address (cilium
//! #13412), the release handshake of #17939 and `excess-ip-release-delay`.
//!
//! Stands for cilium/cilium (Apache-2.0), checked against the upstream
//! code (docs/fidelity.md says where):
//! - agent, `pkg/ipam/crd.go`: `crdAllocator.AllocateNext` →
//!   `nodeStore.allocateNext` (a free address of the agent's copy of the
//!   CiliumNode, `ownNode.Spec.IPAM.Pool`, not in the agent's `allocated`
//!   map and, with the handshake, not `isIPInReleaseHandshake`), then
//!   `refreshTrigger.TriggerWithReason`: the trigger
//!   `crd-allocator-node-refresher` runs `refreshNode` at most every 15 s
//!   (`MinInterval`), an `UpdateStatus` of `status.ipam.used` from the
//!   `allocated` map, with the copy's resourceVersion;
//!   `updateLocalNodeResource` (the CiliumNode watch): stores the new
//!   copy and, from #17939 on, answers every `marked-for-release` entry of
//!   `status.ipam.release-ips`: `do-not-release` when the address is in
//!   `allocated` (or no longer in the pool), `ready-for-release` otherwise;
//!   removes `released` entries whose address left the pool.
//! - operator, `pkg/ipam/node.go`: `maintainIPPool` →
//!   `determineMaintenanceAction` (excess = `calculateExcessIPs`: available
//!   − used − pre-allocate, with `used` as the agent last wrote it) and
//!   `handleIPRelease`: `ipsMarkedForRelease` keeps when each excess address
//!   was first seen; once `ExcessIPReleaseDelay` has passed, with the
//!   handshake `handleIPReleaseResponse` releases `ready-for-release`
//!   addresses, drops `do-not-release` ones, marks the others
//!   `marked-for-release`; `abortNoLongerExcessIPs`; then
//!   `ops.ReleaseIPs` (the cloud unassigns the addresses) and the status
//!   `released`. Before #17939 the excess addresses are released at once.
//!   `syncToAPIServer` then writes `status.ipam.release-ips`
//!   (`PopulateIPReleaseStatus`, keeping the agent's answers) and
//!   `spec.ipam.pool` (the interface's addresses).
//!
//! The steps: a pod's `AllocateNext` (agent-local), the agent's
//! `refreshNode` (one conditional write) and `updateLocalNodeResource` (one
//! read of the latest CiliumNode, as the watch delivers it), the operator's
//! `maintainIPPool` (one read and the cloud call) and `syncToAPIServer`
//! (one read and one write: the upstream Get-and-retry on a conflict is
//! folded into the step), and `Tick`: the clock advances 15 s, never past
//! a refresh that has waited 15 s (the agent's rate limit is the bound the
//! model keeps).
//!
//! Not modelled: Go's random map order (the agent and the operator both
//! take free addresses lowest first; the operator's pick of the interface
//! is one interface), `handleIPAllocation` (no new addresses come from the
//! cloud), more than one node, min-allocate and max-above-watermark, the
//! agent's restart, IPv6, #32531's window inside `updateLocalNodeResource`
//! (see docs/findings.md).

use std::collections::BTreeMap;

use super::{bits, put, Pool};
use crate::sim::{Checked, Model, Property, Trace, When};
use crate::store::etcd::{
    Compare, CompareResult, CompareTarget, Etcd, RequestOp, Revision, TxnRequest,
};

/// The key of the node's CiliumNode object.
pub const NODE_KEY: &str = "/registry/cilium.io/ciliumnodes/node-1";
/// The clock step and the agent's `refreshNode` rate limit, in seconds.
pub const TICK_S: u32 = 15;

/// A `status.ipam.release-ips` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rel {
    /// `marked-for-release`, set by the operator.
    Marked,
    /// `ready-for-release`, the agent's ACK.
    Ready,
    /// `do-not-release`, the agent's NACK.
    DoNotRelease,
    /// `released`, set by the operator once the cloud unassigned it.
    Released,
}

impl Rel {
    fn text(self) -> &'static str {
        match self {
            Rel::Marked => "marked-for-release",
            Rel::Ready => "ready-for-release",
            Rel::DoNotRelease => "do-not-release",
            Rel::Released => "released",
        }
    }
}

/// The CiliumNode object as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CiliumNode {
    /// `spec.ipam.pool`: the addresses the node may use.
    pub pool: u64,
    /// `status.ipam.used`: what the agent last reported in use.
    pub used: u64,
    /// `status.ipam.release-ips`.
    pub release: BTreeMap<u32, Rel>,
}

/// The profiles a variant starts from.
pub const PROFILE_NAMES: [&str; 2] = ["cilium-pre-17939", "cilium-17939"];

/// What a variant runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiliumProfile {
    /// The profile's name.
    pub name: String,
    /// From #17939 on: the release handshake.
    pub handshake: bool,
    /// `excess-ip-release-delay` in seconds (#17939's default: 180).
    pub release_delay_s: u32,
}

impl CiliumProfile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<CiliumProfile> {
        let (handshake, release_delay_s) = match name {
            "cilium-pre-17939" => (false, 0),
            "cilium-17939" => (true, 180),
            _ => return None,
        };
        Some(CiliumProfile {
            name: name.to_string(),
            handshake,
            release_delay_s,
        })
    }

    /// One line: what the profile does.
    pub fn summary(&self) -> String {
        format!(
            "{}; excess-ip-release-delay {} s",
            if self.handshake {
                "excess addresses released after the agent's ready-for-release (#17939)"
            } else {
                "excess addresses released as soon as the operator sees them (before #17939)"
            },
            self.release_delay_s
        )
    }
}

/// The variant-independent description of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiliumSpec {
    /// The subnet the interface's addresses come from.
    pub pool: Pool,
    /// How many addresses (the lowest offsets) the interface has at start.
    pub addresses: u32,
    /// `spec.ipam.pre-allocate`.
    pub pre_allocate: u32,
    /// The pods scheduled on the node, each one `AllocateNext`.
    pub pods: Vec<String>,
    /// `maintainIPPool` runs.
    pub operator_runs: u8,
    /// The clock stops here (seconds).
    pub horizon_s: u32,
}

/// Where a pod is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PodPhase {
    /// Not yet started.
    Start,
    /// Running with this offset.
    Running(u32),
    /// No address was available.
    Failed,
}

/// The agent's memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Agent {
    /// `ownNode`: its copy of the CiliumNode and that copy's revision.
    pub own: CiliumNode,
    /// The copy's `mod_revision` (its resourceVersion).
    pub own_rev: Revision,
    /// The `allocated` map.
    pub allocated: u64,
    /// When the refresh trigger fired and has not yet run.
    pub refresh_since: Option<u32>,
}

/// The operator's memory for the node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operator {
    /// Runs not started.
    pub runs_left: u8,
    /// `ipsMarkedForRelease`: offset → when first seen excess.
    pub marked: BTreeMap<u32, u32>,
    /// `ipReleaseStatus`.
    pub status: BTreeMap<u32, Rel>,
    /// A `syncToAPIServer` is due.
    pub sync: bool,
}

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CiliumState {
    /// The API server's store.
    pub store: Etcd<CiliumNode>,
    /// Simulated time, seconds.
    pub now: u32,
    /// The addresses the cloud has assigned to the node's interface.
    pub eni: u64,
    /// Each pod.
    pub pods: Vec<PodPhase>,
    /// The agent.
    pub agent: Agent,
    /// The operator.
    pub operator: Operator,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The CNI ADD of a pod: `AllocateNext`.
    AllocateNext(u8),
    /// The agent's `refreshNode`.
    RefreshNode,
    /// The agent's `updateLocalNodeResource` of the latest CiliumNode.
    UpdateLocalNodeResource,
    /// The operator's `maintainIPPool`.
    MaintainIpPool,
    /// The operator's `syncToAPIServer`.
    SyncToApiServer,
    /// 15 s pass.
    Tick,
}

/// A Cilium model: one scenario under one profile.
#[derive(Debug)]
pub struct CiliumSystem {
    spec: CiliumSpec,
    profile: CiliumProfile,
    init: CiliumState,
}

fn node(store: &Etcd<CiliumNode>) -> (CiliumNode, Revision) {
    let kv = store.get(NODE_KEY).expect("the CiliumNode exists");
    (kv.value.clone(), kv.mod_revision)
}

fn in_handshake(release: &BTreeMap<u32, Rel>) -> u64 {
    release
        .iter()
        .filter(|(_, r)| matches!(r, Rel::Marked | Rel::Ready | Rel::Released))
        .fold(0, |m, (o, _)| m | 1u64 << o)
}

impl CiliumSystem {
    /// The model of `spec` under `profile`.
    pub fn new(spec: &CiliumSpec, profile: &CiliumProfile) -> Self {
        let eni = if spec.addresses >= 64 {
            u64::MAX
        } else {
            (1u64 << spec.addresses) - 1
        };
        let first = CiliumNode {
            pool: eni,
            used: 0,
            release: BTreeMap::new(),
        };
        let mut store = Etcd::compacting();
        store
            .put(&put(NODE_KEY, first.clone()))
            .expect("a valid put");
        let own_rev = node(&store).1;
        let init = CiliumState {
            store,
            now: 0,
            eni,
            pods: vec![PodPhase::Start; spec.pods.len()],
            agent: Agent {
                own: first,
                own_rev,
                allocated: 0,
                refresh_since: None,
            },
            operator: Operator {
                runs_left: spec.operator_runs,
                marked: BTreeMap::new(),
                status: BTreeMap::new(),
                sync: false,
            },
        };
        CiliumSystem {
            spec: spec.clone(),
            profile: profile.clone(),
            init,
        }
    }

    /// The scenario as this model runs it.
    pub fn spec(&self) -> &CiliumSpec {
        &self.spec
    }

    /// The profile.
    pub fn profile(&self) -> &CiliumProfile {
        &self.profile
    }

    fn ip(&self, o: u32) -> std::net::Ipv4Addr {
        self.spec.pool.addr(o)
    }

    fn set_text(&self, m: u64) -> String {
        let v: Vec<String> = bits(m).map(|o| self.ip(o).to_string()).collect();
        format!("[{}]", v.join(", "))
    }

    fn release_text(&self, r: &BTreeMap<u32, Rel>) -> String {
        let v: Vec<String> = r
            .iter()
            .map(|(o, s)| format!("{}={}", self.ip(*o), s.text()))
            .collect();
        format!("{{{}}}", v.join(", "))
    }

    /// `determineMaintenanceAction`'s excess addresses: the lowest free
    /// ones of the pool, as many as `calculateExcessIPs` says.
    fn excess(&self, n: &CiliumNode) -> u64 {
        let available = n.pool.count_ones();
        let used = (n.used & n.pool).count_ones();
        let count = available.saturating_sub(used + self.spec.pre_allocate) as usize;
        bits(n.pool & !n.used)
            .take(count)
            .fold(0, |m, o| m | 1u64 << o)
    }

    fn trigger(agent: &mut Agent, now: u32) {
        agent.refresh_since.get_or_insert(now);
    }
}

fn unique(m: &CiliumSystem, s: &CiliumState) -> Result<Checked, String> {
    let names: Vec<(&str, u32)> = s
        .pods
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            PodPhase::Running(o) => Some((m.spec.pods[i].as_str(), *o)),
            _ => None,
        })
        .collect();
    super::unique(&m.spec.pool, names)
}

fn no_release_in_use(m: &CiliumSystem, s: &CiliumState) -> Result<Checked, String> {
    let mut any = false;
    for (i, p) in s.pods.iter().enumerate() {
        if let PodPhase::Running(o) = p {
            any = true;
            if s.eni & (1u64 << o) == 0 {
                return Err(format!(
                    "pod {} runs with {} but the operator released it from the node's interface",
                    m.spec.pods[i],
                    m.ip(*o)
                ));
            }
        }
    }
    Ok(Checked::when(any))
}

impl Model for CiliumSystem {
    type State = CiliumState;
    type Action = Action;

    fn init_state(&self) -> CiliumState {
        self.init.clone()
    }

    fn actions(&self, s: &CiliumState, out: &mut Vec<Action>) {
        for (i, p) in s.pods.iter().enumerate() {
            if *p == PodPhase::Start {
                out.push(Action::AllocateNext(i as u8));
            }
        }
        if s.agent.refresh_since.is_some() {
            out.push(Action::RefreshNode);
        }
        if node(&s.store).1 != s.agent.own_rev {
            out.push(Action::UpdateLocalNodeResource);
        }
        if s.operator.sync {
            out.push(Action::SyncToApiServer);
        } else if s.operator.runs_left > 0 {
            out.push(Action::MaintainIpPool);
        }
        let refresh_ok = s.agent.refresh_since.is_none_or(|t| s.now <= t);
        if s.now + TICK_S <= self.spec.horizon_s && refresh_ok {
            out.push(Action::Tick);
        }
    }

    fn next_state(&self, s: &CiliumState, a: &Action, trace: &mut Trace) -> CiliumState {
        let mut n = s.clone();
        let now = s.now;
        match *a {
            Action::AllocateNext(p) => {
                let a = &s.agent;
                let mut free = a.own.pool & !a.allocated;
                if self.profile.handshake {
                    free &= !in_handshake(&a.own.release);
                }
                match bits(free).next() {
                    Some(o) => {
                        n.agent.allocated |= 1u64 << o;
                        n.pods[p as usize] = PodPhase::Running(o);
                        Self::trigger(&mut n.agent, now);
                        trace.line(format!(
                            "AllocateNext from the agent's copy (pool {}): {}; refreshNode triggered",
                            self.set_text(a.own.pool),
                            self.ip(o)
                        ));
                    }
                    None => {
                        n.pods[p as usize] = PodPhase::Failed;
                        trace.line("AllocateNext: no address available; the CNI ADD fails");
                    }
                }
            }
            Action::RefreshNode => {
                let mut written = s.agent.own.clone();
                written.used = s.agent.allocated;
                let ok = n
                    .store
                    .txn(&TxnRequest {
                        compare: vec![Compare {
                            key: NODE_KEY.to_string(),
                            target: CompareTarget::Mod(s.agent.own_rev),
                            result: CompareResult::Equal,
                        }],
                        success: vec![RequestOp::Put(put(NODE_KEY, written.clone()))],
                        failure: vec![],
                    })
                    .expect("a valid transaction")
                    .succeeded;
                if ok {
                    n.agent.own = written;
                    n.agent.own_rev = node(&n.store).1;
                    n.agent.refresh_since = None;
                    trace.line(format!(
                        "UpdateStatus at r{}: used {}, release-ips {}",
                        s.agent.own_rev,
                        self.set_text(s.agent.allocated),
                        self.release_text(&s.agent.own.release)
                    ));
                } else {
                    trace.line(format!(
                        "UpdateStatus at r{}: conflict; the trigger retries",
                        s.agent.own_rev
                    ));
                }
            }
            Action::UpdateLocalNodeResource => {
                let (latest, rev) = node(&s.store);
                let mut own = latest;
                let mut changed = false;
                if self.profile.handshake {
                    let entries: Vec<(u32, Rel)> =
                        own.release.iter().map(|(o, r)| (*o, *r)).collect();
                    for (o, r) in entries {
                        if matches!(r, Rel::Ready | Rel::DoNotRelease) {
                            continue;
                        }
                        if own.pool & (1u64 << o) == 0 {
                            match r {
                                Rel::Released => {
                                    own.release.remove(&o);
                                    changed = true;
                                }
                                Rel::Marked => {
                                    own.release.insert(o, Rel::DoNotRelease);
                                    changed = true;
                                }
                                _ => {}
                            }
                            continue;
                        }
                        if r != Rel::Marked {
                            continue;
                        }
                        let answer = if s.agent.allocated & (1u64 << o) != 0 {
                            Rel::DoNotRelease
                        } else {
                            Rel::Ready
                        };
                        own.release.insert(o, answer);
                        changed = true;
                    }
                }
                if trace.is_on() {
                    trace.line(format!(
                        "CiliumNode r{rev}: pool {}, used {}, release-ips {}{}",
                        self.set_text(own.pool),
                        self.set_text(own.used),
                        self.release_text(&own.release),
                        if changed {
                            "; the agent answered: refreshNode triggered"
                        } else {
                            ""
                        }
                    ));
                }
                n.agent.own = own;
                n.agent.own_rev = rev;
                if changed {
                    Self::trigger(&mut n.agent, now);
                }
            }
            Action::MaintainIpPool => {
                n.operator.runs_left -= 1;
                let (res, rev) = node(&s.store);
                let op = &mut n.operator;
                // removeStaleReleaseIPs: the agent removed a `released`
                // entry once the address left the pool.
                op.status
                    .retain(|o, r| *r != Rel::Released || res.release.contains_key(o));
                let excess = self.excess(&res);
                for o in bits(excess) {
                    op.marked.entry(o).or_insert(now);
                }
                if excess == 0 {
                    op.marked.clear();
                }
                let mut to_mark = Vec::new();
                let mut to_release = 0u64;
                let marked: Vec<(u32, u32)> = op.marked.iter().map(|(o, t)| (*o, *t)).collect();
                for (o, since) in marked {
                    if excess & (1u64 << o) == 0 {
                        op.marked.remove(&o);
                        op.status.remove(&o);
                        continue;
                    }
                    if since + self.profile.release_delay_s > now {
                        continue;
                    }
                    if !self.profile.handshake {
                        to_release |= 1u64 << o;
                        continue;
                    }
                    // handleIPReleaseResponse
                    match res.release.get(&o) {
                        Some(Rel::Ready) => to_release |= 1u64 << o,
                        Some(Rel::DoNotRelease) => {
                            op.marked.remove(&o);
                            op.status.remove(&o);
                        }
                        Some(_) => {}
                        None => to_mark.push(o),
                    }
                }
                for o in &to_mark {
                    op.status.insert(*o, Rel::Marked);
                }
                if self.profile.handshake {
                    // abortNoLongerExcessIPs
                    for (o, r) in &res.release {
                        if excess & (1u64 << o) != 0 || *r == Rel::Released {
                            continue;
                        }
                        if op.status.get(o).is_some_and(|st| *st != Rel::Released) {
                            op.marked.remove(o);
                            op.status.remove(o);
                        }
                    }
                }
                if to_release != 0 {
                    n.eni &= !to_release;
                    for o in bits(to_release) {
                        n.operator.marked.remove(&o);
                        if self.profile.handshake {
                            n.operator.status.insert(o, Rel::Released);
                        }
                    }
                }
                n.operator.sync = true;
                if trace.is_on() {
                    let mut line = format!(
                        "maintainIPPool at {now} s reads r{rev}: pool {}, used {}: excess {}",
                        self.set_text(res.pool),
                        self.set_text(res.used),
                        self.set_text(excess)
                    );
                    if !to_mark.is_empty() {
                        let m = to_mark.iter().fold(0u64, |m, o| m | 1 << o);
                        line.push_str(&format!("; marks {} for release", self.set_text(m)));
                    }
                    if to_release != 0 {
                        line.push_str(&format!(
                            "; ReleaseIPs unassigns {} from the interface",
                            self.set_text(to_release)
                        ));
                    }
                    trace.line(line);
                }
            }
            Action::SyncToApiServer => {
                let (mut res, _) = node(&s.store);
                // PopulateIPReleaseStatus: keep the agent's answers to a mark.
                let mut release = BTreeMap::new();
                for (o, st) in &s.operator.status {
                    let kept = match (st, res.release.get(o)) {
                        (Rel::Marked, Some(r @ (Rel::Ready | Rel::DoNotRelease))) => *r,
                        _ => *st,
                    };
                    release.insert(*o, kept);
                }
                res.release = release;
                res.pool = s.eni;
                if trace.is_on() {
                    trace.line(format!(
                        "UpdateStatus release-ips {}, Update pool {}",
                        self.release_text(&res.release),
                        self.set_text(res.pool)
                    ));
                }
                n.store.put(&put(NODE_KEY, res)).expect("a valid put");
                n.operator.sync = false;
            }
            Action::Tick => {
                n.now = now + TICK_S;
            }
        }
        n
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: "ipam.unique",
                when: When::Always,
                summary: "no two running pods have one address",
                check: unique,
            },
            Property {
                name: "cilium.no_release_in_use",
                when: When::Always,
                summary: "the operator never unassigns an address a running pod uses",
                check: no_release_in_use,
            },
        ]
    }

    fn describe(&self, s: &CiliumState, a: &Action) -> String {
        match *a {
            Action::AllocateNext(p) => format!("pod {}: AllocateNext", self.spec.pods[p as usize]),
            Action::RefreshNode => "agent: refreshNode".to_string(),
            Action::UpdateLocalNodeResource => "agent: updateLocalNodeResource".to_string(),
            Action::MaintainIpPool => "operator: maintainIPPool".to_string(),
            Action::SyncToApiServer => "operator: syncToAPIServer".to_string(),
            Action::Tick => format!("clock: {} s → {} s", s.now, s.now + TICK_S),
        }
    }

    fn action_key(&self, _s: &CiliumState, a: &Action) -> u64 {
        match *a {
            Action::AllocateNext(p) => u64::from(p) | 1 << 8,
            Action::RefreshNode => 2 << 8,
            Action::UpdateLocalNodeResource => 3 << 8,
            Action::MaintainIpPool => 4 << 8,
            Action::SyncToApiServer => 5 << 8,
            Action::Tick => 6 << 8,
        }
    }

    fn summarize(&self, s: &CiliumState) -> Vec<String> {
        let (res, rev) = node(&s.store);
        let pods: Vec<String> = s
            .pods
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                PodPhase::Running(o) => format!("{}={}", self.spec.pods[i], self.ip(*o)),
                PodPhase::Start => format!("{} (not started)", self.spec.pods[i]),
                PodPhase::Failed => format!("{} (failed)", self.spec.pods[i]),
            })
            .collect();
        vec![
            format!(
                "CiliumNode (r{rev}): pool {}, used {}, release-ips {}",
                self.set_text(res.pool),
                self.set_text(res.used),
                self.release_text(&res.release)
            ),
            format!("interface: {}", self.set_text(s.eni)),
            format!("pods: [{}] at {} s", pods.join(", "), s.now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CiliumSpec {
        CiliumSpec {
            pool: Pool::hosts("10.0.1.0/29".parse().unwrap()).unwrap(),
            addresses: 3,
            pre_allocate: 1,
            pods: vec!["a".into()],
            operator_runs: 2,
            horizon_s: 30,
        }
    }

    #[test]
    fn excess_is_available_minus_used_minus_pre_allocate_lowest_first() {
        let m = CiliumSystem::new(&spec(), &CiliumProfile::builtin("cilium-17939").unwrap());
        let n = CiliumNode {
            pool: 0b111,
            used: 0b001,
            release: BTreeMap::new(),
        };
        assert_eq!(m.excess(&n), 0b010);
        let n = CiliumNode { used: 0b111, ..n };
        assert_eq!(m.excess(&n), 0);
    }
}
