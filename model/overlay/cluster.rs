//! Many hosts: each host's overlay driver with its peer table, fed by a
//! control plane whose deliveries the explorer orders, over the vxlan
//! tables of each host's overlay namespace.
//!
//! This is the control-plane half of the overlay, one level above
//! [`crate::overlay::system`] (which models one datapath frame by frame):
//! what a host's vxlan device holds for its *remote* peers, and how the
//! driver's reactions to join and leave events, in whatever order they
//! arrive, and the peers' own traffic (vxlan `learning`) leave it.
//!
//! Upstream (moby/moby, Apache-2.0, rewritten from the source read at
//! `daemon/libnetwork/drivers/overlay/peerdb.go` and
//! `daemon/libnetwork/osl/neigh_linux.go`):
//! - the peer table is `peerMap`, a `SetMatrix` keyed by the peer's IP:
//!   an insertion-ordered set of (endpoint, MAC, VTEP) per IP, whose first
//!   element is the one programmed ([`HostState::peers`]);
//! - `Cluster::peer_add` stands for `network.peerAdd` → `addNeighbor`:
//!   the IP neighbour entry first (`AddNeighbor`, exclusive, retried with
//!   replace only when this peer is the only one using the IP: the
//!   `replaceStale` rule), then the FDB entry, once per (VTEP, MAC) by the
//!   reference count `fdbCnt`, with `NeighAdd` (exclusive: before moby
//!   #53663) or `NeighSet` (replace: the fix) as the variant says
//!   ([`FdbProgram`]);
//! - `Cluster::peer_delete` stands for `network.peerDelete` →
//!   `deleteNeighbor`: the neighbour entry, then the FDB entry when the
//!   reference count falls to zero; then, if another endpoint still uses
//!   the IP, that one is programmed (the restore of #1935);
//! - the netlink requests go through [`crate::l2::netlink`], whose
//!   answers (`EEXIST` over a learned entry, ...) the kernel oracle checks
//!   (tests/netlink_kernel.rs);
//! - the control plane (NetworkDB) is a FIFO inbox of join and leave
//!   events per host. A node that memberlist marks failed
//!   ([`Op::Fail`]) makes every other host receive a leave for each of
//!   its endpoints; when it rejoins ([`Op::Rejoin`]), a join for each
//!   (bulk sync). Faults, each bounded by the scenario's budget: an event
//!   dropped, delivered twice, or delivered before an earlier one.
//! - a container's own host records it as a local peer when it starts
//!   (`Cluster::local_join`, nothing programmed) and forgets it when it
//!   stops (`Cluster::local_leave`, restoring the next endpoint of its
//!   IP if that one is remote);
//! - the eras before (profiles, [`DriverProfile`]): without `fdbCnt`
//!   (moby #50106: every delete takes the MAC's FDB entry); libnetwork's
//!   2017 peer map ([`PeerDb::Map`], read at moby/libnetwork 7447e54d^1,
//!   Apache-2.0: `peerDbAdd`/`peerDbDelete`/`peerAddOp`/`peerDeleteOp`
//!   and the osl's `AddNeighbor`/`DeleteNeighbor` with their sandbox
//!   neighbour cache, [`HostState::cache`]); and that map before #1902
//!   (de9a397a^: the delete handed `localPeer` as `updateDb`);
//! - libnetwork #1433 (commit 03f44066, merged as d2141cd8; read at
//!   03f44066^ and 03f44066): before it a delete whose endpoint ID no
//!   longer matches the peer table returned at once, so an add for the new
//!   (MAC, VTEP) handled before the delete of the old left the old pair in
//!   the sandbox cache and a later `AddNeighbor` of it programmed nothing
//!   ([`DriverProfile::stale_purge`]); the fix purges the cache only;
//! - lazy sandboxes ([`HostSpec::lazy`]): a host's network sandbox is
//!   created by its first local container (`Join` → `joinSandbox` →
//!   `initSandbox`: `setSandbox`, then the peer table programmed); events
//!   before it update the table only. Before libnetwork #1893 (0a9aaf80,
//!   37502aca, merged as f5ff00cb; read at 0a9aaf80^) the table was
//!   snapshotted and replayed later ([`ClusterAction::InitReplay`]), so a
//!   delete handled in between met an empty cache and the replay programmed
//!   the departed peer; with #1893 init is one operation
//!   ([`DriverProfile::atomic_init`]), as in moby today
//!   (`initSandboxPeerDB` under `peerOpMu`, the first entry per IP);
//! - `sync HOST` ([`Op::Sync`]): the orchestrator waits for one host's
//!   driver to have handled everything sent to it.
//! - a remote container's traffic ([`Op::Send`]) arrives at a host's vxlan
//!   device from its own host's VTEP and is snooped (`vxlan_snoop`): it
//!   learns the MAC when no entry exists, and never moves a permanent one.
//!
//! - the classic control plane (profiles `libnetwork-pre-1639` and
//!   `libnetwork-1639`: serf user events, serf's replay of old events to a
//!   restarting node, the l3miss path) is in [`serf`], with its upstream
//!   commits; a daemon restart ([`Op::Restart`]) and an ARP request that
//!   may miss ([`Op::Arp`]) are its script steps.
//!
//! - swarm mode's NetworkDB itself (profiles `libnetwork-pre-1727` and
//!   `libnetwork-1727`: the table with LTimes, deletes kept as tombstones
//!   until reaped, bulk sync every 30 s, the `sync_miss` fault) is in
//!   [`networkdb`], with its upstream commits; with the other profiles
//!   the inbox is the whole channel.
//!
//! Not modelled here: the bridge and the containers' ARP (the datapath
//! model does those), NetworkDB's gossip internals for the profiles
//! without [`DriverProfile::networkdb`] (see [`networkdb`] for what that
//! module leaves out),
//! the classic driver's KV-store watch and the miss path's l2misses (see
//! [`serf`]), the sandbox neighbour cache after #1935,
//! encryption (`setupEncryption`),
//! the `NTF_MASTER` delete of br0's dynamic entry that `DeleteNeighbor`
//! also sends, IPv6, the sandbox's teardown when its last container stops
//! (a created sandbox stays), how many handlers can fall between the
//! pre-#1893 snapshot and its replay (any number may), and the pre-#1893
//! replay's own concurrency with the adds of the same peers (one step).
//! The sandbox cache is driver memory: the kernel oracle does not compare
//! it, it sees it only through the requests sent or not. The era before #53663 is modelled from the
//! fix's description: the FDB add fails with `EEXIST`, the neighbour entry
//! added before it stays ("its neighbor row intact"), and `fdbCnt` is
//! rolled back; the current code also rolls back the neighbour entry.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;

use crate::l2::netlink::{Errno, NlRequest, NudState};
use crate::l2::vxlan::{VxlanConfig, VxlanDev};
use crate::sim::{Arrow, ArrowKind, Checked, Lane, Mark, Model, Property, Sketch, Trace, When};
use crate::wire::EthernetAddress;

pub mod networkdb;
pub mod serf;
pub use networkdb::{NdbClock, NdbEntry, NdbTable, NetDb};
pub use serf::Classic;

/// How the driver programs a peer's FDB entry on the vxlan device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FdbProgram {
    /// `NeighAdd` (`NLM_F_CREATE | NLM_F_EXCL`): moby up to 29.x.
    Add,
    /// `NeighSet` (`NLM_F_CREATE | NLM_F_REPLACE`): moby #53663.
    Replace,
}

impl FdbProgram {
    fn request(self) -> NlRequest {
        match self {
            FdbProgram::Add => NlRequest::Add,
            FdbProgram::Replace => NlRequest::Replace,
        }
    }
}

/// The peer table's shape: what the driver keeps per peer address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerDb {
    /// libnetwork before #1935 (2017): a plain map keyed by (IP, MAC)
    /// holding one (endpoint, VTEP) each, so a second endpoint with the
    /// same key overwrites the first; a delete whose endpoint ID does not
    /// match leaves the entry and touches only the sandbox's neighbour
    /// cache; the osl `AddNeighbor` skips what its cache already holds and
    /// programs with `NeighSet` (`Cluster::peer_add_map`).
    Map,
    /// libnetwork #1935 and later, moby today: a `SetMatrix` per IP, the
    /// first element programmed, the next restored when it is deleted.
    Set,
}

/// A variant's driver: what differs between the eras.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DriverProfile {
    /// The FDB request.
    pub fdb: FdbProgram,
    /// The peer table.
    pub peer_db: PeerDb,
    /// `fdbCnt` (moby #50106): the FDB entry of a (VTEP, MAC) is added
    /// once and deleted when its last neighbour entry goes. Without it
    /// (before #50106) every peer delete deletes the FDB entry. Only for
    /// [`PeerDb::Set`].
    pub fdb_cnt: bool,
    /// libnetwork before #1902: the delete operation was handed the
    /// `localPeer` flag where `updateDb` belonged, so a remote peer's
    /// delete never reached the peer table and, finding no entry, only
    /// cleaned the sandbox cache: the kernel kept `dst <remote> self
    /// permanent`. Only for [`PeerDb::Map`].
    pub delete_wrong_field: bool,
    /// libnetwork #1433 (commit 03f44066): a stale delete (the db entry
    /// under the (IP, MAC) key belongs to another endpoint) still purges
    /// the sandbox cache's (VTEP, MAC) pair, without touching the kernel.
    /// Without it (03f44066^) a stale delete returns at once and the
    /// pair stays cached. Only for [`PeerDb::Map`].
    pub stale_purge: bool,
    /// libnetwork #1893 (commits 0a9aaf80, 37502aca): a lazily created
    /// sandbox is initialised from the peer table as one operation on the
    /// driver's peer-operation channel, atomic with the events that
    /// follow. Without it (0a9aaf80^) `peerDbUpdateSandbox` snapshots the
    /// table and replays it later ([`ClusterAction::InitReplay`]), and an
    /// event handled in between is applied to the sandbox first.
    pub atomic_init: bool,
    /// The classic control plane (serf user events, the miss path and
    /// serf's replay on join; [`serf`]), or `None` for swarm mode's
    /// NetworkDB. With [`PeerDb::Set`] only as `libnetwork-1935-classic`
    /// (the miss path then programs without a db entry).
    pub classic: Option<Classic>,
    /// NetworkDB's table, tombstones and bulk sync ([`networkdb`]); `None`:
    /// the control plane is the hosts' inboxes alone.
    pub networkdb: Option<NetDb>,
}

impl DriverProfile {
    /// moby's driver with the given FDB request (`fdbCnt`, the set).
    pub fn moby(fdb: FdbProgram) -> DriverProfile {
        DriverProfile {
            fdb,
            peer_db: PeerDb::Set,
            fdb_cnt: true,
            delete_wrong_field: false,
            stale_purge: true,
            atomic_init: true,
            classic: None,
            networkdb: None,
        }
    }
}

/// A host of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// Its name (`worker1`).
    pub name: String,
    /// Its VTEP address (the underlay address vxlan encapsulates to).
    pub vtep: Ipv4Addr,
    /// Its overlay sandbox is created lazily, when its first container of
    /// the network starts (else it exists from the start).
    pub lazy: bool,
}

/// A container on the overlay network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Its name (`web.1`).
    pub name: String,
    /// The host it runs on (an index into [`ClusterSpec::hosts`]).
    pub host: usize,
    /// Its overlay address.
    pub ip: Ipv4Addr,
    /// Its MAC: libnetwork derives it from the IP (`02:42` + the address).
    pub mac: EthernetAddress,
    /// Running when the scenario starts (else it starts in the script).
    pub live: bool,
}

/// One step of the scenario's script, run in order by one orchestrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The container starts on its host: every other host gets a join.
    Start(usize),
    /// The container stops: every other host gets a leave.
    Stop(usize),
    /// memberlist marks the host failed: every other host gets a leave
    /// for each of its live endpoints.
    Fail(usize),
    /// The host rejoins: every other host gets a join for each of its
    /// live endpoints (NetworkDB's bulk sync).
    Rejoin(usize),
    /// The container's traffic reaches this host's vxlan device.
    Send(usize, usize),
    /// Simulated time passes (seconds) once every inbox is drained:
    /// learned entries age (`vxlan_cleanup`).
    Wait(u32),
    /// The orchestrator goes on only once this host's driver has handled
    /// every event sent to it (and replayed its sandbox-init snapshot):
    /// a barrier on one host, no time passes.
    Sync(usize),
    /// The host's daemon restarts ([`serf`]): driver memory and vxlan
    /// tables start empty, its serf instance joins again.
    Restart(usize),
    /// A container on the host (first) asks for the endpoint's (second)
    /// address: an l3miss when vxlan1 has no neighbour entry for it.
    Arp(usize, usize),
}

/// The faults the explorer may inject, each at most this many times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Faults {
    /// An event is lost.
    pub drop: u8,
    /// An event is delivered and stays in the inbox to be delivered again.
    pub duplicate: u8,
    /// An event other than the oldest is delivered first.
    pub reorder: u8,
    /// A restarting host's serf join is handed the cluster's old user
    /// events ([`serf`]).
    pub replay: u8,
    /// NetworkDB profiles: a (host, bulk-sync round) in which the host is
    /// cut off from bulk sync ([`networkdb`]).
    pub sync_miss: u8,
}

/// The whole scenario, profile-independent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The hosts.
    pub hosts: Vec<HostSpec>,
    /// The containers.
    pub endpoints: Vec<EndpointSpec>,
    /// The script.
    pub script: Vec<Op>,
    /// The vxlan devices' `ageing`, seconds.
    pub ageing_s: u32,
    /// The fault budget.
    pub faults: Faults,
}

/// A control-plane event: a peer joined or left, as NetworkDB tells the
/// driver (`peerAdd` / `peerDelete` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Event {
    /// True for a join.
    pub join: bool,
    /// The endpoint (its index is its endpoint ID).
    pub endpoint: u16,
    /// NetworkDB's LTime of the write (0 without NetworkDB).
    pub ltime: u16,
}

/// One entry of the peer table: (endpoint ID, MAC, VTEP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerEntry {
    /// The endpoint.
    pub endpoint: u16,
    /// Its MAC.
    pub mac: EthernetAddress,
    /// Its host's VTEP.
    pub vtep: Ipv4Addr,
}

/// One host's driver and tables.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostState {
    /// `peerMap`: per peer IP, the endpoints using it in insertion order.
    pub peers: BTreeMap<Ipv4Addr, Vec<PeerEntry>>,
    /// `fdbCnt`: references per (VTEP, MAC).
    pub fdb_cnt: BTreeMap<(Ipv4Addr, EthernetAddress), u32>,
    /// The overlay namespace's vxlan device.
    pub vx: VxlanDev,
    /// Events not delivered yet, oldest first.
    pub inbox: VecDeque<Event>,
    /// The last error `peerAdd`/`peerDelete` returned (the daemon logs it
    /// and goes on), for the trace and the properties' messages.
    pub last_error: Option<String>,
    /// l3misses the classic driver's `watchMiss` has yet to resolve, in
    /// order (the peer addresses).
    pub misses: VecDeque<Ipv4Addr>,
    /// The sandbox's neighbour cache of the 2017 osl (`n.neighbors`):
    /// the (destination IP, MAC) pairs `AddNeighbor` programmed, the peer
    /// IP for a neighbour entry, the VTEP for an FDB entry. Only
    /// [`PeerDb::Map`] keeps it; it is not kernel state.
    pub cache: BTreeSet<(Ipv4Addr, EthernetAddress)>,
    /// The network's sandbox (its vxlan device) exists. False on a
    /// [`HostSpec::lazy`] host until its first container starts: until
    /// then events only update the peer table.
    pub sandbox: bool,
    /// Before #1893: the peers `peerDbUpdateSandbox` snapshotted when the
    /// sandbox was created, not replayed yet.
    pub init_snapshot: Option<Vec<(Ipv4Addr, PeerEntry)>>,
}

impl HostState {
    fn empty() -> HostState {
        HostState {
            peers: BTreeMap::new(),
            fdb_cnt: BTreeMap::new(),
            vx: VxlanDev::default(),
            inbox: VecDeque::new(),
            last_error: None,
            misses: VecDeque::new(),
            cache: BTreeSet::new(),
            sandbox: true,
            init_snapshot: None,
        }
    }
}

/// The state of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterState {
    /// Per host.
    pub hosts: Vec<HostState>,
    /// Which endpoints run.
    pub live: Vec<bool>,
    /// Which hosts memberlist sees as alive.
    pub up: Vec<bool>,
    /// The next script step.
    pub pc: u16,
    /// The simulated clock, seconds.
    pub now_s: u32,
    /// Fault budgets left.
    pub faults: Faults,
    /// serf's buffer of user events, oldest first (classic profiles only;
    /// empty otherwise): what a joining node may be replayed.
    pub history: Vec<Event>,
    /// NetworkDB profiles: each host's table (empty otherwise).
    pub ndb: Vec<NdbTable>,
    /// NetworkDB profiles: the wait and the bulk-sync round.
    pub clock: NdbClock,
}

/// One netlink request a host's driver sent, with the answer the model
/// gave: what the kernel oracle repeats on a real vxlan device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NlCall {
    /// `ip neigh VERB IP lladdr MAC dev vxlan1 nud permanent`.
    Neigh(NlRequest, Ipv4Addr, EthernetAddress, Result<(), Errno>),
    /// `bridge fdb VERB MAC dev vxlan1 dst VTEP self permanent`.
    Fdb(
        NlRequest,
        EthernetAddress,
        Option<Ipv4Addr>,
        Result<(), Errno>,
    ),
}

/// What one step does to the hosts' kernels, for the kernel oracle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelStep {
    /// Host `host`'s driver sent these requests, in order.
    Driver {
        /// The host.
        host: usize,
        /// Its requests and the model's answers.
        calls: Vec<NlCall>,
    },
    /// A frame from `mac` arrives at host `to`'s vxlan device,
    /// encapsulated by host `from`.
    Traffic {
        /// The sending host.
        from: usize,
        /// The receiving host.
        to: usize,
        /// The inner source MAC.
        mac: EthernetAddress,
    },
    /// Time passes; the model aged out these learned entries (host, MAC).
    Wait {
        /// Seconds.
        secs: u32,
        /// The entries that aged.
        aged: Vec<(usize, EthernetAddress)>,
    },
    /// The host's overlay namespace is created anew (a daemon restart):
    /// its vxlan device starts with empty tables.
    Recreate {
        /// The host.
        host: usize,
    },
    /// Several hosts' drivers sent requests, host by host in this order
    /// (a NetworkDB bulk sync: the peer's, then the initiator's).
    Drivers(Vec<(usize, Vec<NlCall>)>),
    /// Nothing reaches a kernel (a script step that only queues events, a
    /// lost event).
    None,
}

/// One step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterAction {
    /// The next script step.
    Script,
    /// Host `host` handles the event at `index` of its inbox.
    Deliver {
        /// The host.
        host: u16,
        /// The event's position (0 unless reordered).
        index: u16,
        /// The fault applied, if any.
        fault: Option<Fault>,
    },
    /// Before #1893: host `host` replays its sandbox-init snapshot.
    InitReplay {
        /// The host.
        host: u16,
    },
    /// The next script step, a restart, with serf's replay of old events
    /// (the `replay` fault): its ring buffer wraps before the `wrap`th of
    /// the events replayable to the host.
    Replay {
        /// Where the ring wraps.
        wrap: u16,
    },
    /// Host `host`'s `watchMiss` resolves its oldest l3miss: the first
    /// answer to its `peerlookup` query, `(MAC, VTEP)`, or `None` when no
    /// member answers.
    Resolve {
        /// The host.
        host: u16,
        /// The answer the driver gets first.
        answer: Option<(EthernetAddress, Ipv4Addr)>,
    },
    /// NetworkDB: simulated time passes to the next timer; at a bulk-sync
    /// round, the hosts in `cut` (a bit each) are cut off from it.
    NdbTick {
        /// The hosts cut off this round.
        cut: u8,
    },
    /// NetworkDB: host `from`'s bulk sync of this round, with `to`.
    NdbSync {
        /// The initiator.
        from: u16,
        /// The peer it picked.
        to: u16,
    },
    /// NetworkDB: host `host`'s reaper removes its due tombstones.
    NdbReap {
        /// The host.
        host: u16,
    },
}

/// A fault on one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The event is lost.
    Drop,
    /// The event is handled and stays in the inbox.
    Duplicate,
}

/// The model of one variant.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// The scenario.
    pub spec: ClusterSpec,
    /// The variant's driver.
    pub profile: DriverProfile,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.join { "join" } else { "leave" })?;
        if self.ltime > 0 {
            write!(f, " (LTime {})", self.ltime)?;
        }
        Ok(())
    }
}

/// What a driver call works with: the clock, the trace, and the netlink
/// requests it sent (for the kernel oracle).
struct Cx<'a> {
    /// The host whose driver runs.
    host: usize,
    now_s: u32,
    trace: &'a mut Trace,
    calls: Vec<NlCall>,
}

impl Cluster {
    /// The model of `spec` under `profile`.
    pub fn new(spec: ClusterSpec, profile: DriverProfile) -> Cluster {
        Cluster { spec, profile }
    }

    fn config(&self, host: usize) -> VxlanConfig {
        VxlanConfig {
            vni: 4097,
            proxy: false,
            learning: true,
            l2miss: false,
            l3miss: false,
            local_ip: self.spec.hosts[host].vtep,
            mac: EthernetAddress([0x02, 0x42, 0xc0, 0xa8, 0, host as u8 + 1]),
            ageing_s: self.spec.ageing_s,
        }
    }

    fn entry(&self, e: usize) -> PeerEntry {
        let ep = &self.spec.endpoints[e];
        PeerEntry {
            endpoint: e as u16,
            mac: ep.mac,
            vtep: self.spec.hosts[ep.host].vtep,
        }
    }

    fn ep_name(&self, e: u16) -> &str {
        if e == serf::DUMMY {
            return "dummy";
        }
        &self.spec.endpoints[e as usize].name
    }

    /// A join from the control plane: the profile's `peerAdd`.
    fn remote_join(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        match self.profile.peer_db {
            PeerDb::Set => self.peer_add(h, e, cx),
            PeerDb::Map => self.peer_add_map(h, e, cx),
        }
    }

    /// A leave from the control plane: the profile's `peerDelete`.
    fn remote_leave(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        match self.profile.peer_db {
            PeerDb::Set => self.peer_delete(h, e, cx),
            PeerDb::Map => self.peer_delete_map(h, e, cx),
        }
    }

    /// The driver's `Join` for a container of its own host: the peer
    /// table records it (`peerAdd` with `localPeer`/`updateOnlyDB`),
    /// nothing is programmed.
    fn local_join(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        let entry = self.entry(e);
        let ip = self.spec.endpoints[e].ip;
        match self.profile.peer_db {
            PeerDb::Set => {
                let set = h.peers.entry(ip).or_default();
                if !set.contains(&entry) {
                    set.push(entry);
                }
                if set.len() > 1 {
                    cx.trace.line(format!(
                        "peerDbAdd transient condition: {} endpoints use {ip}",
                        set.len()
                    ));
                }
            }
            PeerDb::Map => self.map_put(h, ip, entry, cx),
        }
        cx.trace.line(format!(
            "{} joins locally: its peer entry is in the db, nothing to program",
            self.ep_name(entry.endpoint)
        ));
    }

    /// The driver's `Leave` for a container of its own host.
    fn local_leave(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        let entry = self.entry(e);
        let ip = self.spec.endpoints[e].ip;
        match self.profile.peer_db {
            PeerDb::Map => {
                // Before #1935 `Leave` sent no peerDelete: the entry stays.
                cx.trace.line(format!(
                    "{} leaves locally: its peer entry stays in the db",
                    self.ep_name(entry.endpoint)
                ));
            }
            PeerDb::Set => {
                let Some(set) = h.peers.get_mut(&ip) else {
                    return;
                };
                set.retain(|p| *p != entry);
                let remaining = set.len();
                if remaining == 0 {
                    h.peers.remove(&ip);
                    return;
                }
                if !h.sandbox {
                    return;
                }
                let who = format!("peerDelete (local {})", self.ep_name(entry.endpoint));
                self.restore_next(h, ip, &who, false, cx);
            }
        }
    }

    /// The pre-#1935 `peerDbAdd`: the (IP, MAC) key holds one entry, and
    /// the latest add overwrites it.
    fn map_put(&self, h: &mut HostState, ip: Ipv4Addr, entry: PeerEntry, cx: &mut Cx<'_>) {
        let list = h.peers.entry(ip).or_default();
        match list.iter_mut().find(|p| p.mac == entry.mac) {
            Some(p) => {
                if p.endpoint != entry.endpoint {
                    cx.trace.line(format!(
                        "peerDbAdd {ip} {}: {} overwrites {}'s entry",
                        entry.mac,
                        self.ep_name(entry.endpoint),
                        self.ep_name(p.endpoint)
                    ));
                }
                *p = entry;
            }
            None => list.push(entry),
        }
    }

    /// The pre-#1935 `peerAddOp` for a remote peer: the db entry, then the
    /// osl's `AddNeighbor` for the neighbour entry and for the FDB entry.
    fn peer_add_map(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        let entry = self.entry(e);
        let ip = self.spec.endpoints[e].ip;
        self.map_put(h, ip, entry, cx);
        if !self.has_sandbox(h, cx) {
            return;
        }
        let r = self
            .osl_add(h, ip, entry.mac, false, cx)
            .and_then(|()| self.osl_add(h, entry.vtep, entry.mac, true, cx));
        if let Err(err) = r {
            cx.trace.line(format!("Peer operation failed: {err}"));
            h.last_error = Some(format!(
                "peerAdd of {} failed: {err}",
                self.ep_name(entry.endpoint)
            ));
        }
    }

    /// The 2017 osl `AddNeighbor` (without `force`): nothing when the
    /// sandbox's cache has the (destination, MAC) pair, else `NeighSet`
    /// and the pair cached. `fdb`: the `AF_BRIDGE` entry (`dst` the VTEP).
    fn osl_add(
        &self,
        h: &mut HostState,
        dst: Ipv4Addr,
        mac: EthernetAddress,
        fdb: bool,
        cx: &mut Cx<'_>,
    ) -> Result<(), String> {
        if h.cache.contains(&(dst, mac)) {
            cx.trace.line(format!(
                "Neighbor entry already present for IP {dst}, mac {mac}"
            ));
            return Ok(());
        }
        let req = NlRequest::Replace;
        let r = if fdb {
            let r =
                h.vx.fdb_request(req, mac, Some(dst), NudState::Permanent, cx.now_s);
            cx.calls.push(NlCall::Fdb(req, mac, Some(dst), r));
            cx.trace.line(format!(
                "bridge fdb replace {mac} dev vxlan1 dst {dst} self permanent: {}",
                r.map_or_else(|e| e.to_string(), |()| "ok".into())
            ));
            r
        } else {
            let r = h.vx.neigh_request(req, dst, mac);
            cx.calls.push(NlCall::Neigh(req, dst, mac, r));
            cx.trace.line(format!(
                "ip neigh replace {dst} lladdr {mac} dev vxlan1 nud permanent: {}",
                r.map_or_else(|e| e.to_string(), |()| "ok".into())
            ));
            r
        };
        r.map_err(|e| format!("could not add neighbor entry: {e}"))?;
        h.cache.insert((dst, mac));
        Ok(())
    }

    /// The 2017 osl `DeleteNeighbor`: an error when the cache lacks the
    /// pair; the kernel entry deleted only with `os_delete`; the pair
    /// leaves the cache either way.
    fn osl_delete(
        &self,
        h: &mut HostState,
        dst: Ipv4Addr,
        mac: EthernetAddress,
        fdb: bool,
        os_delete: bool,
        cx: &mut Cx<'_>,
    ) -> Result<(), String> {
        if !h.cache.contains(&(dst, mac)) {
            return Err(format!(
                "could not find the neighbor entry to delete ({dst}, {mac})"
            ));
        }
        if os_delete {
            let req = NlRequest::Del;
            let r = if fdb {
                let r =
                    h.vx.fdb_request(req, mac, Some(dst), NudState::Permanent, 0);
                cx.calls.push(NlCall::Fdb(req, mac, Some(dst), r));
                cx.trace.line(format!(
                    "bridge fdb del {mac} dev vxlan1 dst {dst} self: {}",
                    r.map_or_else(|e| e.to_string(), |()| "ok".into())
                ));
                r
            } else {
                let r = h.vx.neigh_request(req, dst, mac);
                cx.calls.push(NlCall::Neigh(req, dst, mac, r));
                cx.trace.line(format!(
                    "ip neigh del {dst} dev vxlan1: {}",
                    r.map_or_else(|e| e.to_string(), |()| "ok".into())
                ));
                r
            };
            r.map_err(|e| format!("could not delete neighbor entry: {e}"))?;
        } else {
            cx.trace.line(format!(
                "DeleteNeighbor {dst} {mac}: sandbox cache only, the kernel entry stays"
            ));
        }
        h.cache.remove(&(dst, mac));
        Ok(())
    }

    /// The pre-#1935 `peerDeleteOp` (and, with `delete_wrong_field`, the
    /// pre-#1902 one, which never consulted the db).
    fn peer_delete_map(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        let entry = self.entry(e);
        let ip = self.spec.endpoints[e].ip;
        let name = self.ep_name(entry.endpoint).to_string();
        // `peerDbDelete`'s answer: the entry under the (IP, MAC) key.
        let found: Option<PeerEntry> = if self.profile.delete_wrong_field {
            cx.trace.line(format!(
                "peerDeleteOp {name}: updateDb is the localPeer flag (false): the db is not consulted"
            ));
            None
        } else {
            let list = h.peers.get_mut(&ip);
            let at = list
                .as_ref()
                .and_then(|l| l.iter().position(|p| p.mac == entry.mac));
            match (list, at) {
                (Some(list), Some(i)) => {
                    let p = list[i];
                    if p.endpoint != entry.endpoint {
                        cx.trace.line(format!(
                            "peerDbDelete {name}: the entry is {}'s (mismatched endpoint ID): kept",
                            self.ep_name(p.endpoint)
                        ));
                    } else {
                        list.remove(i);
                        if list.is_empty() {
                            h.peers.remove(&ip);
                        }
                    }
                    Some(p)
                }
                _ => None,
            }
        };
        if !self.has_sandbox(h, cx) {
            return;
        }
        let same_ep = found.is_some_and(|p| p.endpoint == entry.endpoint);
        let same_vtep = found.is_some_and(|p| p.vtep == entry.vtep);
        if !self.profile.stale_purge {
            self.peer_delete_pre_1433(h, ip, entry, found, cx);
            return;
        }
        if same_ep == same_vtep {
            let os_delete = same_ep && same_vtep;
            if let Err(err) = self.osl_delete(h, entry.vtep, entry.mac, true, os_delete, cx) {
                cx.trace.line(format!("Peer operation failed: {err}"));
                h.last_error = Some(format!("peerDelete of {name} failed: {err}"));
                return;
            }
        }
        if same_ep {
            if let Err(err) = self.osl_delete(h, ip, entry.mac, false, true, cx) {
                cx.trace.line(format!("Peer operation failed: {err}"));
                h.last_error = Some(format!("peerDelete of {name} failed: {err}"));
            }
        }
    }

    /// `network.peerAdd` on `host` for endpoint `e` (a remote one).
    fn peer_add(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        let entry = self.entry(e);
        let ip = self.spec.endpoints[e].ip;
        let set = h.peers.entry(ip).or_default();
        let inserted = !set.contains(&entry);
        if inserted {
            set.push(entry);
        } else if cx.trace.is_on() {
            cx.trace.line(format!(
                "peerAdd {}: entry already present in db",
                self.ep_name(entry.endpoint)
            ));
        }
        let db_entries = set.len();
        let replace_stale = inserted && db_entries == 1;
        if !self.has_sandbox(h, cx) {
            return;
        }
        if let Err(err) = self.add_neighbor(h, ip, entry, replace_stale, cx) {
            if db_entries > 1 && err.contains("already present") {
                // The transient case: another endpoint's entry is programmed.
                cx.trace
                    .line("peerAdd: another endpoint holds the IP; this one waits in the db");
                return;
            }
            cx.trace.line(format!("peer add operation failed: {err}"));
            h.last_error = Some(format!(
                "peerAdd of {} failed: {err}",
                self.ep_name(entry.endpoint)
            ));
        }
    }

    /// `network.addNeighbor`: the neighbour entry, then the FDB entry.
    fn add_neighbor(
        &self,
        h: &mut HostState,
        ip: Ipv4Addr,
        entry: PeerEntry,
        replace_stale: bool,
        cx: &mut Cx<'_>,
    ) -> Result<(), String> {
        let mut r = h.vx.neigh_request(NlRequest::Add, ip, entry.mac);
        cx.calls
            .push(NlCall::Neigh(NlRequest::Add, ip, entry.mac, r));
        if r == Err(Errno::Exists) && replace_stale {
            cx.trace.line(format!(
                "ip neigh add {ip}: {}; replacing stale neighbor entry",
                Errno::Exists
            ));
            r = h.vx.neigh_request(NlRequest::Replace, ip, entry.mac);
            cx.calls
                .push(NlCall::Neigh(NlRequest::Replace, ip, entry.mac, r));
        }
        match r {
            Ok(()) => cx.trace.line(format!(
                "ip neigh add {ip} lladdr {} dev vxlan1 nud permanent",
                entry.mac
            )),
            Err(e) => return Err(format!("neighbor entry already present for {ip} ({e})")),
        }
        let key = (entry.vtep, entry.mac);
        let first = if self.profile.fdb_cnt {
            let count = h.fdb_cnt.entry(key).or_insert(0);
            *count += 1;
            *count == 1
        } else {
            // Before moby #50106: every peer programs the FDB entry.
            true
        };
        if first {
            let req = self.profile.fdb.request();
            let r = h.vx.fdb_request(
                req,
                entry.mac,
                Some(entry.vtep),
                NudState::Permanent,
                cx.now_s,
            );
            cx.calls
                .push(NlCall::Fdb(req, entry.mac, Some(entry.vtep), r));
            cx.trace.line(format!(
                "bridge fdb {req} {} dev vxlan1 dst {} self permanent: {}",
                entry.mac,
                entry.vtep,
                r.map_or_else(|e| e.to_string(), |()| "ok".into())
            ));
            if let Err(e) = r {
                if let Some(c) = h.fdb_cnt.get_mut(&key) {
                    *c -= 1;
                }
                h.fdb_cnt.retain(|_, c| *c > 0);
                return Err(format!(
                    "could not add fdb entry into the sandbox: neighbor entry already present ({e})"
                ));
            }
        }
        Ok(())
    }

    /// `network.peerDelete` on `host` for endpoint `e`.
    fn peer_delete(&self, h: &mut HostState, e: usize, cx: &mut Cx<'_>) {
        let entry = self.entry(e);
        let ip = self.spec.endpoints[e].ip;
        let mut remaining = 0;
        let mut deleted = false;
        if let Some(set) = h.peers.get_mut(&ip) {
            if let Some(i) = set.iter().position(|p| *p == entry) {
                set.remove(i);
                deleted = true;
            }
            remaining = set.len();
            if set.is_empty() {
                h.peers.remove(&ip);
            }
        }
        if !deleted {
            cx.trace.line(format!(
                "peerDelete {}: peer entry was not in db",
                self.ep_name(entry.endpoint)
            ));
        }
        if !self.has_sandbox(h, cx) {
            return;
        }
        if let Err(err) = self.delete_neighbor(h, ip, entry, cx) {
            if remaining > 0 && err.contains("not found") {
                return;
            }
            cx.trace
                .line(format!("peer delete operation failed: {err}"));
        }
        if remaining > 0 {
            self.restore_next(h, ip, "peerDelete", true, cx);
        }
    }

    /// The tail of both delete paths (a remote peer's `peerDelete` and a
    /// local `Leave`): once an endpoint of `ip` has left the db and others
    /// remain, the db's next endpoint of the IP (its first element) is
    /// programmed, unless it lives on this host (a local peer needs no
    /// vxlan entry). `who` starts the trace line; `say_local` also traces
    /// the local case. A failed restore is kept as the host's last error.
    fn restore_next(
        &self,
        h: &mut HostState,
        ip: Ipv4Addr,
        who: &str,
        say_local: bool,
        cx: &mut Cx<'_>,
    ) {
        let next = h.peers[&ip][0];
        if self.spec.endpoints[next.endpoint as usize].host == cx.host {
            if say_local {
                cx.trace.line(format!(
                    "{who}: {} is next in the db, a local peer: nothing to program",
                    self.ep_name(next.endpoint)
                ));
            }
            return;
        }
        cx.trace.line(format!(
            "{who}: restoring {} from the db",
            self.ep_name(next.endpoint)
        ));
        if let Err(err) = self.add_neighbor(h, ip, next, false, cx) {
            h.last_error = Some(format!("peerDelete's restore failed: {err}"));
        }
    }

    /// `network.deleteNeighbor`.
    fn delete_neighbor(
        &self,
        h: &mut HostState,
        ip: Ipv4Addr,
        entry: PeerEntry,
        cx: &mut Cx<'_>,
    ) -> Result<(), String> {
        let key = (entry.vtep, entry.mac);
        if self.profile.fdb_cnt && h.fdb_cnt.get(&key).copied().unwrap_or(0) == 0 {
            return Err(
                "fdb entry was not programmed into sandbox: neighbor entry not found".into(),
            );
        }
        let r = h.vx.neigh_request(NlRequest::Del, ip, entry.mac);
        cx.calls
            .push(NlCall::Neigh(NlRequest::Del, ip, entry.mac, r));
        if let Err(e) = r {
            return Err(format!(
                "could not delete neighbor entry in the sandbox: not found ({e})"
            ));
        }
        cx.trace.line(format!("ip neigh del {ip} dev vxlan1"));
        let last = if self.profile.fdb_cnt {
            let c = h.fdb_cnt.get_mut(&key).expect("checked above");
            *c -= 1;
            *c == 0
        } else {
            // Before moby #50106: the FDB entry goes with every peer,
            // whoever else still resolves to its MAC.
            true
        };
        if last {
            h.fdb_cnt.remove(&key);
            let r = h.vx.fdb_request(
                NlRequest::Del,
                entry.mac,
                Some(entry.vtep),
                NudState::Permanent,
                0,
            );
            cx.calls
                .push(NlCall::Fdb(NlRequest::Del, entry.mac, Some(entry.vtep), r));
            cx.trace.line(format!(
                "bridge fdb del {} dev vxlan1 dst {} self: {}",
                entry.mac,
                entry.vtep,
                r.map_or_else(|e| e.to_string(), |()| "ok".into())
            ));
        }
        Ok(())
    }

    /// The step `action` from `s`: the next state, and what it does to
    /// the hosts' kernels.
    pub fn apply(
        &self,
        s: &ClusterState,
        action: &ClusterAction,
        trace: &mut Trace,
    ) -> (ClusterState, KernelStep) {
        let mut s = s.clone();
        let mut kernel = KernelStep::None;
        match *action {
            ClusterAction::Script => {
                let op = self.spec.script[s.pc as usize];
                s.pc += 1;
                match op {
                    Op::Start(e) => {
                        s.live[e] = true;
                        trace.line(format!(
                            "{} starts: its join goes to every other host",
                            self.spec.endpoints[e].name
                        ));
                        self.ndb_write(&mut s, e, true, trace);
                        self.announce(&mut s, e, true);
                        kernel = self.local(&mut s, e, true, trace);
                    }
                    Op::Stop(e) => {
                        s.live[e] = false;
                        trace.line(format!(
                            "{} stops: its leave goes to every other host",
                            self.spec.endpoints[e].name
                        ));
                        self.ndb_write(&mut s, e, false, trace);
                        self.announce(&mut s, e, false);
                        kernel = self.local(&mut s, e, false, trace);
                    }
                    Op::Fail(host) if self.profile.classic.is_some() => {
                        // The daemon is gone: what it had not handled is lost.
                        s.up[host] = false;
                        s.hosts[host].inbox.clear();
                        s.hosts[host].misses.clear();
                        trace.line(format!(
                            "{} fails: serf's member events do not reach the classic driver, the others are told nothing",
                            self.spec.hosts[host].name
                        ));
                    }
                    Op::Fail(host) => {
                        s.up[host] = false;
                        trace.line(format!(
                            "memberlist marks {} failed: the others get a leave for each of its endpoints",
                            self.spec.hosts[host].name
                        ));
                        for e in self.host_endpoints(&s, host) {
                            self.announce(&mut s, e, false);
                        }
                    }
                    Op::Rejoin(host) => {
                        s.up[host] = true;
                        trace.line(format!(
                            "{} rejoins: bulk sync sends the others a join for each of its endpoints",
                            self.spec.hosts[host].name
                        ));
                        for e in self.host_endpoints(&s, host) {
                            self.announce(&mut s, e, true);
                        }
                    }
                    Op::Send(e, to) if !s.hosts[to].sandbox => trace.line(format!(
                        "{}'s traffic reaches {}, which has no sandbox (no vxlan1) yet: dropped",
                        self.spec.endpoints[e].name, self.spec.hosts[to].name
                    )),
                    Op::Send(e, to) => {
                        let ep = &self.spec.endpoints[e];
                        let from = self.spec.hosts[ep.host].vtep;
                        let mut notes = Vec::new();
                        let now = s.now_s;
                        let accepted = s.hosts[to].vx.snoop(ep.mac, from, now, &mut notes);
                        kernel = KernelStep::Traffic {
                            from: ep.host,
                            to,
                            mac: ep.mac,
                        };
                        trace.line(format!(
                            "{}'s traffic reaches {} vxlan1 from {from}{}",
                            ep.name,
                            self.spec.hosts[to].name,
                            if accepted { "" } else { ": dropped" }
                        ));
                        for n in notes {
                            trace.line(n);
                        }
                    }
                    Op::Wait(secs) if self.profile.networkdb.is_some() => {
                        s.clock.wait_until = s.now_s + secs;
                        trace.line(format!(
                            "the orchestrator waits {secs} s (until t = {} s); NetworkDB's timers run",
                            s.clock.wait_until
                        ));
                    }
                    Op::Wait(secs) => kernel = self.pass_time(&mut s, secs, trace),
                    Op::Sync(host) => trace.line(format!(
                        "the orchestrator goes on: {} has handled every event sent to it",
                        self.spec.hosts[host].name
                    )),
                    Op::Restart(host) => {
                        kernel = self.restart(&mut s, host, None, trace);
                    }
                    Op::Arp(host, e) => self.arp(&mut s, host, e, trace),
                }
            }
            ClusterAction::Replay { wrap } => {
                let Op::Restart(host) = self.spec.script[s.pc as usize] else {
                    panic!("a replay is enabled only at a restart");
                };
                s.pc += 1;
                kernel = self.restart(&mut s, host, Some(wrap as usize), trace);
            }
            ClusterAction::Resolve { host, answer } => {
                kernel = self.resolve(&mut s, host as usize, answer, trace);
            }
            ClusterAction::InitReplay { host } => {
                kernel = self.init_replay(&mut s, host as usize, trace);
            }
            ClusterAction::NdbTick { cut } => kernel = self.ndb_tick(&mut s, cut, trace),
            ClusterAction::NdbSync { from, to } => {
                kernel = self.ndb_sync(&mut s, from as usize, to as usize, trace);
            }
            ClusterAction::NdbReap { host } => self.ndb_reap(&mut s, host as usize, trace),
            ClusterAction::Deliver { host, index, fault } => {
                let hi = host as usize;
                let event = match fault {
                    Some(Fault::Duplicate) => {
                        s.faults.duplicate -= 1;
                        s.hosts[hi].inbox[index as usize]
                    }
                    _ => s.hosts[hi]
                        .inbox
                        .remove(index as usize)
                        .expect("an enabled delivery"),
                };
                if index > 0 {
                    s.faults.reorder -= 1;
                }
                let name = &self.spec.hosts[hi].name;
                if fault == Some(Fault::Drop) {
                    s.faults.drop -= 1;
                    trace.line(format!(
                        "{name}: {event} of {} lost",
                        self.ep_name(event.endpoint)
                    ));
                    return (s, kernel);
                }
                trace.line(format!(
                    "{name}: {event} of {}",
                    self.ep_name(event.endpoint)
                ));
                let mut cx = Cx {
                    host: hi,
                    now_s: s.now_s,
                    trace,
                    calls: Vec::new(),
                };
                let h = &mut s.hosts[hi];
                if self.profile.networkdb.is_some() {
                    let now = s.now_s;
                    self.table_event(h, &mut s.ndb[hi], event, now, &mut cx);
                } else if event.join {
                    self.remote_join(h, event.endpoint as usize, &mut cx);
                } else {
                    self.remote_leave(h, event.endpoint as usize, &mut cx);
                }
                kernel = KernelStep::Driver {
                    host: hi,
                    calls: cx.calls,
                };
            }
        }
        (s, kernel)
    }

    /// `secs` of simulated time pass: learned entries idle that long age
    /// out (`vxlan_cleanup`).
    fn pass_time(&self, s: &mut ClusterState, secs: u32, trace: &mut Trace) -> KernelStep {
        s.now_s += secs;
        let now = s.now_s;
        trace.line(format!("{secs} s pass (t = {now} s)"));
        let mut aged = Vec::new();
        for (hi, h) in s.hosts.iter_mut().enumerate() {
            for mac in h.vx.age(&self.config(hi), now) {
                trace.line(format!(
                    "{} vxlan1 fdb: learned {mac} aged out",
                    self.spec.hosts[hi].name
                ));
                aged.push((hi, mac));
            }
        }
        KernelStep::Wait { secs, aged }
    }

    /// The container `e`'s own host's driver: its `Join` or `Leave`.
    fn local(&self, s: &mut ClusterState, e: usize, join: bool, trace: &mut Trace) -> KernelStep {
        let hi = self.spec.endpoints[e].host;
        let mut cx = Cx {
            host: hi,
            now_s: s.now_s,
            trace,
            calls: Vec::new(),
        };
        let h = &mut s.hosts[hi];
        if join {
            if !h.sandbox {
                // The driver's `Join` calls `joinSandbox` before it records
                // the endpoint in the peer table.
                self.sandbox_init(h, &mut cx);
            }
            self.local_join(h, e, &mut cx);
        } else {
            self.local_leave(h, e, &mut cx);
        }
        if cx.calls.is_empty() {
            KernelStep::None
        } else {
            KernelStep::Driver {
                host: hi,
                calls: cx.calls,
            }
        }
    }

    /// The settled start: every host's driver adds every live remote
    /// endpoint; `calls` gets each host's requests.
    fn settle(&self, s: &mut ClusterState, calls: &mut Vec<Vec<NlCall>>) {
        let mut trace = Trace::off();
        for (hi, h) in s.hosts.iter_mut().enumerate() {
            let mut cx = Cx {
                host: hi,
                now_s: 0,
                trace: &mut trace,
                calls: Vec::new(),
            };
            for (e, ep) in self.spec.endpoints.iter().enumerate() {
                if ep.live && ep.host == hi {
                    self.local_join(h, e, &mut cx);
                }
            }
            for (e, ep) in self.spec.endpoints.iter().enumerate() {
                if ep.live && ep.host != hi {
                    self.remote_join(h, e, &mut cx);
                }
            }
            calls.push(cx.calls);
        }
    }

    /// The requests each host's driver sends to reach the initial state
    /// (by host), for the kernel oracle.
    pub fn init_calls(&self) -> Vec<Vec<NlCall>> {
        let mut s = self.init_state();
        for (h, spec) in s.hosts.iter_mut().zip(&self.spec.hosts) {
            *h = HostState::empty();
            h.sandbox = !spec.lazy;
        }
        let mut calls = Vec::new();
        self.settle(&mut s, &mut calls);
        calls
    }

    /// The vxlan device configuration of host `host` (its VTEP, `ageing`).
    pub fn vxlan_config(&self, host: usize) -> VxlanConfig {
        self.config(host)
    }

    /// Sends `event` about `endpoint` to every host but its own.
    fn announce(&self, s: &mut ClusterState, endpoint: usize, join: bool) {
        let own = self.spec.endpoints[endpoint].host;
        let ltime = self.ndb_ltime(s, endpoint);
        if self.profile.classic.is_some() {
            s.history.push(Event {
                join,
                endpoint: endpoint as u16,
                ltime,
            });
        }
        let classic = self.profile.classic.is_some();
        for (i, h) in s.hosts.iter_mut().enumerate() {
            // A classic node that is down runs no serf to receive it.
            if i != own && (!classic || s.up[i]) {
                h.inbox.push_back(Event {
                    join,
                    endpoint: endpoint as u16,
                    ltime,
                });
            }
        }
    }

    fn host_endpoints(&self, s: &ClusterState, host: usize) -> Vec<usize> {
        (0..self.spec.endpoints.len())
            .filter(|&e| self.spec.endpoints[e].host == host && s.live[e])
            .collect()
    }

    fn drained(s: &ClusterState) -> bool {
        s.hosts.iter().all(Self::host_drained)
    }

    fn host_drained(h: &HostState) -> bool {
        h.inbox.is_empty() && h.init_snapshot.is_none() && h.misses.is_empty()
    }

    /// Remote live endpoints a host should have programmed.
    fn expected(&self, s: &ClusterState, host: usize) -> Vec<usize> {
        (0..self.spec.endpoints.len())
            .filter(|&e| {
                s.live[e]
                    && self.spec.endpoints[e].host != host
                    && s.up[self.spec.endpoints[e].host]
            })
            .collect()
    }
}

/// libnetwork's lazy sandbox and #1433's stale delete: the parts of the
/// 2016-17 driver the incidents #1433 and #1893 turn on (moby/libnetwork,
/// Apache-2.0, read at 03f44066 and its parent for #1433, and at 0a9aaf80^
/// and 37502aca for #1893; `drivers/overlay/peerdb.go`,
/// `drivers/overlay/ov_network.go` `initSandbox`, `osl/neigh_linux.go`).
impl Cluster {
    /// Whether the host's network sandbox exists; if not, says so: the
    /// event updated the peer table only (`n.sandbox() == nil`: "the sandbox
    /// init will configure all these peers from the database").
    fn has_sandbox(&self, h: &HostState, cx: &mut Cx<'_>) -> bool {
        if !h.sandbox {
            cx.trace
                .line("no sandbox yet (no local container): the peer table only");
        }
        h.sandbox
    }

    /// The peers a new sandbox is programmed with: `peerDbUpdateSandbox`
    /// (before #1893) and `peerInitOp` (after) skip local entries and call
    /// `peerAdd` without `updateDb` for every other one. For the set (the
    /// later driver) the first endpoint of each IP, the one programmed.
    fn init_walk(&self, h: &HostState, host: usize) -> Vec<(Ipv4Addr, PeerEntry)> {
        let remote = |p: &PeerEntry| self.spec.endpoints[p.endpoint as usize].host != host;
        let mut out = Vec::new();
        for (ip, list) in &h.peers {
            match self.profile.peer_db {
                PeerDb::Map => out.extend(list.iter().filter(|p| remote(p)).map(|p| (*ip, *p))),
                PeerDb::Set => out.extend(list.first().filter(|p| remote(p)).map(|p| (*ip, *p))),
            }
        }
        out
    }

    /// `initSandbox` on the first local container's `Join`: `setSandbox`,
    /// then the peer table. With #1893 the walk and its programming are
    /// one operation on the peer-operation goroutine; before it,
    /// `peerDbUpdateSandbox` took a snapshot and replayed it outside any
    /// lock that the event handlers wait for, so an event handled between
    /// the snapshot and the replay meets a sandbox the replay then
    /// programs from the old snapshot ([`ClusterAction::InitReplay`]).
    fn sandbox_init(&self, h: &mut HostState, cx: &mut Cx<'_>) {
        h.sandbox = true;
        let walk = self.init_walk(h, cx.host);
        if self.profile.atomic_init {
            cx.trace.line(format!(
                "the sandbox is created; peerInit programs the {} remote peers of the db on the peer-operation goroutine (#1893)",
                walk.len()
            ));
            self.replay_peers(h, &walk, cx);
        } else {
            cx.trace.line(format!(
                "the sandbox is created (setSandbox); peerDbUpdateSandbox snapshots the {} remote peers of the db, replayed later",
                walk.len()
            ));
            h.init_snapshot = Some(walk);
        }
    }

    /// `peerAdd(updateDb = false)` for each peer of an init walk.
    fn replay_peers(&self, h: &mut HostState, walk: &[(Ipv4Addr, PeerEntry)], cx: &mut Cx<'_>) {
        for &(ip, p) in walk {
            let name = self.ep_name(p.endpoint).to_string();
            cx.trace
                .line(format!("sandbox init: peerAdd {name} ({ip})"));
            let r = match self.profile.peer_db {
                PeerDb::Map => self
                    .osl_add(h, ip, p.mac, false, cx)
                    .and_then(|()| self.osl_add(h, p.vtep, p.mac, true, cx)),
                PeerDb::Set => self.add_neighbor(h, ip, p, false, cx),
            };
            if let Err(err) = r {
                cx.trace
                    .line(format!("peerdbupdate in sandbox failed: {err}"));
                h.last_error = Some(format!("peerdbupdate in sandbox failed for {name}: {err}"));
            }
        }
    }

    /// Before #1893: the replay of host `hi`'s init snapshot.
    fn init_replay(&self, s: &mut ClusterState, hi: usize, trace: &mut Trace) -> KernelStep {
        let mut cx = Cx {
            host: hi,
            now_s: s.now_s,
            trace,
            calls: Vec::new(),
        };
        let h = &mut s.hosts[hi];
        let walk = h.init_snapshot.take().expect("an enabled replay");
        cx.trace.line(format!(
            "{}: peerDbUpdateSandbox replays its snapshot of {} peers",
            self.spec.hosts[hi].name,
            walk.len()
        ));
        self.replay_peers(h, &walk, &mut cx);
        KernelStep::Driver {
            host: hi,
            calls: cx.calls,
        }
    }

    /// `peerDelete` before #1433 (03f44066^): `peerDbDelete` answers
    /// false for a mismatched endpoint ID and the delete returns at once,
    /// so the sandbox cache keeps the old (VTEP, MAC) pair, which makes a
    /// later `AddNeighbor` of that pair a no-op; otherwise both
    /// `DeleteNeighbor` calls delete the kernel entry and the cached pair.
    fn peer_delete_pre_1433(
        &self,
        h: &mut HostState,
        ip: Ipv4Addr,
        entry: PeerEntry,
        found: Option<PeerEntry>,
        cx: &mut Cx<'_>,
    ) {
        let name = self.ep_name(entry.endpoint).to_string();
        if found.is_some_and(|p| p.endpoint != entry.endpoint) {
            if h.cache.contains(&(entry.vtep, entry.mac)) {
                cx.trace.line(format!(
                    "peerDelete {name}: stale delete ignored: the sandbox cache keeps ({}, {})",
                    entry.vtep, entry.mac
                ));
            }
            return;
        }
        let r = self
            .osl_delete(h, entry.vtep, entry.mac, true, true, cx)
            .and_then(|()| self.osl_delete(h, ip, entry.mac, false, true, cx));
        if let Err(err) = r {
            cx.trace.line(format!("Peer operation failed: {err}"));
            h.last_error = Some(format!("peerDelete of {name} failed: {err}"));
        }
    }
}

fn prop_converged(m: &Cluster, s: &ClusterState) -> Result<Checked, String> {
    let mut problems = Vec::new();
    let mut checked = false;
    for (hi, h) in s.hosts.iter().enumerate() {
        // A host without a sandbox has no vxlan device to converge.
        if !s.up[hi] || !h.sandbox {
            continue;
        }
        let host = &m.spec.hosts[hi].name;
        let want = m.expected(s, hi);
        for &e in &want {
            checked = true;
            let ep = &m.spec.endpoints[e];
            let vtep = m.spec.hosts[ep.host].vtep;
            match h.vx.fdb.get(&ep.mac) {
                Some(f) if f.permanent && f.remote == vtep => {}
                Some(f) if f.remote == vtep => problems.push(format!(
                    "{host} vxlan1 has only a learned entry for {}'s MAC {} (it ages out)",
                    ep.name, ep.mac
                )),
                Some(f) => problems.push(format!(
                    "{host} vxlan1 sends {}'s MAC {} to {}, not {vtep}",
                    ep.name, ep.mac, f.remote
                )),
                None => problems.push(format!(
                    "{host} vxlan1 has no FDB entry for {}'s MAC {}",
                    ep.name, ep.mac
                )),
            }
            match h.vx.neigh.get(&ep.ip) {
                Some(n) if n.mac == ep.mac => {}
                Some(n) => problems.push(format!(
                    "{host} vxlan1 resolves {} to {}, not {}'s {}",
                    ep.ip, n.mac, ep.name, ep.mac
                )),
                None => problems.push(format!(
                    "{host} vxlan1 has no neighbour entry for {} ({})",
                    ep.name, ep.ip
                )),
            }
        }
        // Nothing stale: every permanent entry belongs to a live remote peer.
        for (mac, f) in &h.vx.fdb {
            let ok = want.iter().any(|&e| {
                let ep = &m.spec.endpoints[e];
                ep.mac == *mac && m.spec.hosts[ep.host].vtep == f.remote
            });
            if f.permanent && !ok {
                checked = true;
                problems.push(format!(
                    "{host} vxlan1 has a stale FDB entry {mac} dst {}",
                    f.remote
                ));
            }
        }
        for (ip, n) in &h.vx.neigh {
            let ok = want.iter().any(|&e| {
                let ep = &m.spec.endpoints[e];
                ep.ip == *ip && ep.mac == n.mac
            });
            if !ok {
                checked = true;
                problems.push(format!(
                    "{host} vxlan1 has a stale neighbour entry {ip} lladdr {}",
                    n.mac
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(Checked::when(checked))
    } else {
        Err(problems.join("; "))
    }
}

fn prop_reachable(m: &Cluster, s: &ClusterState) -> Result<Checked, String> {
    let mut problems = Vec::new();
    let mut checked = false;
    for (hi, h) in s.hosts.iter().enumerate() {
        if !s.up[hi] || m.host_endpoints(s, hi).is_empty() {
            continue;
        }
        let host = &m.spec.hosts[hi].name;
        for e in m.expected(s, hi) {
            checked = true;
            let ep = &m.spec.endpoints[e];
            let vtep = m.spec.hosts[ep.host].vtep;
            let resolves = h.vx.neigh.get(&ep.ip).is_some_and(|n| n.mac == ep.mac);
            let forwards = h.vx.fdb.get(&ep.mac).is_some_and(|f| f.remote == vtep);
            if !(resolves && forwards) {
                let why = match (resolves, forwards) {
                    (false, _) => format!("{} does not resolve there", ep.ip),
                    (true, _) => format!("no FDB entry sends {} to {vtep}", ep.mac),
                };
                let err = h
                    .last_error
                    .as_deref()
                    .map(|e| format!(" (the daemon logged: {e})"))
                    .unwrap_or_default();
                problems.push(format!(
                    "containers on {host} cannot reach {} ({}) on {}: {why}{err}",
                    ep.name, ep.ip, m.spec.hosts[ep.host].name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(Checked::when(checked))
    } else {
        Err(problems.join("; "))
    }
}

fn prop_no_local_peer(m: &Cluster, s: &ClusterState) -> Result<Checked, String> {
    let mut checked = false;
    for (hi, h) in s.hosts.iter().enumerate() {
        for e in m.host_endpoints(s, hi) {
            checked = true;
            let ep = &m.spec.endpoints[e];
            if let Some(f) = h.vx.fdb.get(&ep.mac) {
                return Err(format!(
                    "{} vxlan1 has an FDB entry for its own container {} ({} dst {})",
                    m.spec.hosts[hi].name, ep.name, ep.mac, f.remote
                ));
            }
        }
    }
    Ok(Checked::when(checked))
}

impl Model for Cluster {
    type State = ClusterState;
    type Action = ClusterAction;

    /// Every live endpoint known to every other host, as after a settled
    /// start: its peer entry, neighbour and FDB entries programmed.
    fn init_state(&self) -> ClusterState {
        let mut s = ClusterState {
            hosts: vec![HostState::empty(); self.spec.hosts.len()],
            live: self.spec.endpoints.iter().map(|e| e.live).collect(),
            up: vec![true; self.spec.hosts.len()],
            pc: 0,
            now_s: 0,
            faults: self.spec.faults,
            history: self.initial_history(),
            ndb: self.ndb_init(),
            clock: NdbClock::default(),
        };
        for (h, spec) in s.hosts.iter_mut().zip(&self.spec.hosts) {
            h.sandbox = !spec.lazy;
        }
        self.settle(&mut s, &mut Vec::new());
        s
    }

    fn actions(&self, s: &ClusterState, out: &mut Vec<ClusterAction>) {
        if let Some(op) = self.spec.script.get(s.pc as usize) {
            let ready = self.ndb_script_ready(s)
                && match op {
                    Op::Wait(_) => Self::drained(s),
                    Op::Sync(h) => Self::host_drained(&s.hosts[*h]),
                    _ => true,
                };
            if ready {
                out.push(ClusterAction::Script);
            }
            if let Op::Restart(host) = *op {
                self.replay_actions(s, host, out);
            }
        }
        self.resolve_actions(s, out);
        self.ndb_actions(s, out);
        for (hi, h) in s.hosts.iter().enumerate() {
            if h.init_snapshot.is_some() {
                out.push(ClusterAction::InitReplay { host: hi as u16 });
            }
            if h.inbox.is_empty() {
                continue;
            }
            let last = if s.faults.reorder > 0 {
                h.inbox.len()
            } else {
                1
            };
            for index in 0..last {
                // Identical events are one choice.
                if h.inbox.iter().take(index).any(|e| *e == h.inbox[index]) {
                    continue;
                }
                let host = hi as u16;
                let index = index as u16;
                out.push(ClusterAction::Deliver {
                    host,
                    index,
                    fault: None,
                });
                if s.faults.drop > 0 {
                    out.push(ClusterAction::Deliver {
                        host,
                        index,
                        fault: Some(Fault::Drop),
                    });
                }
                if s.faults.duplicate > 0 {
                    out.push(ClusterAction::Deliver {
                        host,
                        index,
                        fault: Some(Fault::Duplicate),
                    });
                }
            }
        }
    }

    fn next_state(
        &self,
        s: &ClusterState,
        action: &ClusterAction,
        trace: &mut Trace,
    ) -> ClusterState {
        self.apply(s, action, trace).0
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: "overlay.converged",
                when: When::Quiescent,
                summary: "at quiescence each host's vxlan FDB and neighbour entries are the live remote endpoints: permanent, at their host's VTEP, nothing stale, nothing missing",
                check: prop_converged,
            },
            Property {
                name: "overlay.reachable",
                when: When::Quiescent,
                summary: "at quiescence containers on every host can reach every live container on the others (a neighbour entry with its MAC, an FDB entry to its VTEP)",
                check: prop_reachable,
            },
            Property {
                name: "overlay.no_local_peer",
                when: When::Always,
                summary: "no host's vxlan device has an FDB entry for one of its own containers (seed 001's bug, generalised)",
                check: prop_no_local_peer,
            },
        ]
    }

    fn describe(&self, s: &ClusterState, action: &ClusterAction) -> String {
        match *action {
            ClusterAction::Script => match self.spec.script[s.pc as usize] {
                Op::Start(e) => format!("start {}", self.spec.endpoints[e].name),
                Op::Stop(e) => format!("stop {}", self.spec.endpoints[e].name),
                Op::Fail(h) => format!("fail {}", self.spec.hosts[h].name),
                Op::Rejoin(h) => format!("rejoin {}", self.spec.hosts[h].name),
                Op::Send(e, h) => format!(
                    "send {} -> {}",
                    self.spec.endpoints[e].name, self.spec.hosts[h].name
                ),
                Op::Wait(n) => format!("wait {n} s"),
                Op::Sync(h) => format!("sync {}", self.spec.hosts[h].name),
                Op::Restart(h) => format!("restart {}", self.spec.hosts[h].name),
                Op::Arp(h, e) => format!(
                    "arp {} -> {}",
                    self.spec.hosts[h].name, self.spec.endpoints[e].name
                ),
            },
            ClusterAction::InitReplay { host } => format!(
                "{} replays its sandbox-init snapshot",
                self.spec.hosts[host as usize].name
            ),
            ClusterAction::NdbTick { cut } => {
                let cut: Vec<&str> = (0..self.spec.hosts.len())
                    .filter(|h| cut & (1 << h) != 0)
                    .map(|h| self.spec.hosts[h].name.as_str())
                    .collect();
                let t = self.next_instant(s).unwrap_or(s.now_s);
                if cut.is_empty() {
                    format!("time passes to t = {t} s")
                } else {
                    format!(
                        "time passes to t = {t} s ({} cut off from this bulk-sync round)",
                        cut.join(", ")
                    )
                }
            }
            ClusterAction::NdbSync { from, to } => format!(
                "{} bulk-syncs with {}",
                self.spec.hosts[from as usize].name, self.spec.hosts[to as usize].name
            ),
            ClusterAction::NdbReap { host } => format!(
                "{}'s NetworkDB reaper runs",
                self.spec.hosts[host as usize].name
            ),
            ClusterAction::Replay { wrap } => {
                let Op::Restart(h) = self.spec.script[s.pc as usize] else {
                    unreachable!("a replay is enabled only at a restart")
                };
                format!(
                    "restart {} (serf replays old events, its ring wrapping at {wrap})",
                    self.spec.hosts[h].name
                )
            }
            ClusterAction::Resolve { host, answer } => {
                let ip = s.hosts[host as usize].misses[0];
                match answer {
                    Some((mac, vtep)) => format!(
                        "{} resolves the l3miss for {ip}: {mac} at {vtep}",
                        self.spec.hosts[host as usize].name
                    ),
                    None => format!(
                        "{} resolves the l3miss for {ip}: no answer",
                        self.spec.hosts[host as usize].name
                    ),
                }
            }
            ClusterAction::Deliver { host, index, fault } => {
                let event = s.hosts[host as usize].inbox[index as usize];
                let how = match fault {
                    None if index > 0 => " (out of order)",
                    None => "",
                    Some(Fault::Drop) => " (lost)",
                    Some(Fault::Duplicate) => " (delivered twice)",
                };
                format!(
                    "{} receives {} of {}{how}",
                    self.spec.hosts[host as usize].name,
                    event,
                    self.ep_name(event.endpoint)
                )
            }
        }
    }

    fn action_key(&self, s: &ClusterState, action: &ClusterAction) -> u64 {
        match *action {
            ClusterAction::Script => 1 << 60,
            ClusterAction::InitReplay { host } => 5 << 60 | u64::from(host) << 32,
            ClusterAction::Deliver { host, index, fault } => {
                let e = s.hosts[host as usize].inbox[index as usize];
                let f = match fault {
                    None => 0u64,
                    Some(Fault::Drop) => 1,
                    Some(Fault::Duplicate) => 2,
                };
                2 << 60
                    | u64::from(host) << 32
                    | u64::from(e.ltime) << 40
                    | u64::from(e.join) << 24
                    | u64::from(e.endpoint) << 4
                    | f
            }
            ClusterAction::Replay { wrap } => 3 << 60 | u64::from(wrap),
            ClusterAction::NdbTick { cut } => 6 << 60 | u64::from(cut),
            ClusterAction::NdbSync { from, to } => 7 << 60 | u64::from(from) << 32 | u64::from(to),
            ClusterAction::NdbReap { host } => 8 << 60 | u64::from(host),
            ClusterAction::Resolve { host, answer } => {
                let a = answer.map_or(0, |(mac, vtep)| {
                    let m = mac.0;
                    let v = vtep.octets();
                    1 << 56
                        | u64::from(u16::from_be_bytes([m[4], m[5]])) << 32
                        | u64::from(u32::from_be_bytes(v))
                }) & ((1 << 57) - 1);
                4 << 60 | u64::from(host) << 57 | a
            }
        }
    }

    fn summarize(&self, s: &ClusterState) -> Vec<String> {
        let mut out = Vec::new();
        for (hi, h) in s.hosts.iter().enumerate() {
            let host = &self.spec.hosts[hi].name;
            if !h.sandbox {
                out.push(format!(
                    "{host}: no sandbox yet (no local container; the peer table only)"
                ));
                continue;
            }
            let fdb: Vec<String> =
                h.vx.fdb
                    .iter()
                    .map(|(m, f)| {
                        format!(
                            "{m} dst {}{}",
                            f.remote,
                            if f.permanent {
                                " permanent"
                            } else {
                                " (learned)"
                            }
                        )
                    })
                    .collect();
            let neigh: Vec<String> =
                h.vx.neigh
                    .iter()
                    .map(|(ip, n)| format!("{ip} lladdr {}", n.mac))
                    .collect();
            out.push(format!(
                "{host} vxlan1 fdb: {}",
                if fdb.is_empty() {
                    "(empty)".into()
                } else {
                    fdb.join(", ")
                }
            ));
            out.push(format!(
                "{host} vxlan1 neigh: {}",
                if neigh.is_empty() {
                    "(empty)".into()
                } else {
                    neigh.join(", ")
                }
            ));
            if let Some(e) = &h.last_error {
                out.push(format!("{host} daemon log: {e}"));
            }
        }
        self.ndb_summary(s, &mut out);
        out
    }

    fn lanes(&self) -> Vec<Lane> {
        let mut lanes = vec![Lane::new("", "control plane")];
        for h in &self.spec.hosts {
            lanes.push(Lane::new(&h.name, "driver"));
            lanes.push(Lane::new(&h.name, "vxlan1"));
        }
        lanes
    }

    fn sketch(
        &self,
        before: &ClusterState,
        action: &ClusterAction,
        after: &ClusterState,
    ) -> Sketch {
        let driver = |h: usize| 1 + 2 * h;
        let vx = |h: usize| 2 + 2 * h;
        let mut sk = Sketch {
            what: self.describe(before, action),
            ..Sketch::default()
        };
        match *action {
            ClusterAction::Replay { .. } | ClusterAction::NdbTick { .. } => sk.lane = Some(0),
            ClusterAction::NdbReap { host } => sk.lane = Some(driver(host as usize)),
            ClusterAction::NdbSync { from, to } => {
                sk.lane = Some(driver(from as usize));
                sk.arrows.push(Arrow {
                    from: driver(from as usize),
                    to: driver(to as usize),
                    label: "bulk sync".into(),
                    kind: ArrowKind::Call,
                });
            }
            ClusterAction::Resolve { host, .. } => sk.lane = Some(driver(host as usize)),
            ClusterAction::Script => {
                sk.lane = Some(0);
                if let Op::Send(e, to) = self.spec.script[before.pc as usize] {
                    let from = self.spec.endpoints[e].host;
                    sk.arrows.push(Arrow {
                        from: vx(from),
                        to: vx(to),
                        label: format!("{}'s traffic", self.spec.endpoints[e].name),
                        kind: ArrowKind::Underlay,
                    });
                }
            }
            ClusterAction::InitReplay { host } => {
                sk.lane = Some(driver(host as usize));
            }
            ClusterAction::Deliver { host, index, .. } => {
                let h = host as usize;
                let event = before.hosts[h].inbox[index as usize];
                sk.lane = Some(driver(h));
                sk.arrows.push(Arrow {
                    from: 0,
                    to: driver(h),
                    label: format!("{event} {}", self.ep_name(event.endpoint)),
                    kind: ArrowKind::Call,
                });
            }
        }
        for h in 0..self.spec.hosts.len() {
            let (b, a) = (&before.hosts[h].vx, &after.hosts[h].vx);
            for (mac, f) in &a.fdb {
                if b.fdb.get(mac) != Some(f) {
                    sk.marks.push(Mark {
                        lane: vx(h),
                        text: format!(
                            "fdb {mac} dst {}{}",
                            f.remote,
                            if f.permanent {
                                " permanent"
                            } else {
                                " learned"
                            }
                        ),
                        change: true,
                    });
                }
            }
            for mac in b.fdb.keys().filter(|m| !a.fdb.contains_key(m)) {
                sk.marks.push(Mark {
                    lane: vx(h),
                    text: format!("fdb {mac} gone"),
                    change: true,
                });
            }
            for (ip, n) in &a.neigh {
                if b.neigh.get(ip) != Some(n) {
                    sk.marks.push(Mark {
                        lane: vx(h),
                        text: format!("neigh {ip} {}", n.mac),
                        change: true,
                    });
                }
            }
            for ip in b.neigh.keys().filter(|i| !a.neigh.contains_key(i)) {
                sk.marks.push(Mark {
                    lane: vx(h),
                    text: format!("neigh {ip} gone"),
                    change: true,
                });
            }
            if after.hosts[h].last_error != before.hosts[h].last_error {
                if let Some(e) = &after.hosts[h].last_error {
                    sk.marks.push(Mark {
                        lane: driver(h),
                        text: e.clone(),
                        change: false,
                    });
                }
            }
        }
        sk
    }
}
