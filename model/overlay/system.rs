//! The overlay L2 system: hosts with `br0` and `vxlan1`, containers with
//! scripts, the overlay driver, and every frame in flight as an actor.
//!
//! The explorer's choices are which in-flight frame is processed next (at
//! one device, in one direction), which container takes its next script
//! step, and when each host's driver handles its next notification. So the
//! order in which the copies of a flooded ARP request and their replies are
//! delivered — the "last word" in `br0`'s FDB — is exactly what it
//! explores.
//!
//! A container's script (from the scenario) is what it does, in order:
//! `resolve X` (broadcast ARP request; the step completes when a reply
//! confirms X), `probe X` (unicast request to the cached MAC), `send X`
//! (one data frame to the cached MAC), `garp` (gratuitous ARP),
//! `forget X` (its cache entry for X is garbage-collected) and `wait N`
//! (N seconds pass: FDB ageing, ARP entries go stale). `forget` and `wait`
//! stand for time passing, so they wait until the network is drained: no
//! frame in flight, no driver work pending.
//!
//! A scenario with a `[time]` table is explored with a clock instead:
//! the containers run the kernel's neighbour state machine and their
//! timers, FDB ageing and late answers are events ordered against the
//! deliveries (`system/timers.rs`, which says what that abstraction covers).
//!
//! Properties: `l2.single_arp_reply`, `l2.fdb_correct`, `l2.delivery`,
//! `l2.no_storm`, `l2.converges` (see [`OverlaySystem::properties`]).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::json;

use super::{Fix, OverlayProfile};
use crate::l2::bridge::{Bridge, BridgeConfig, PortConfig};
use crate::l2::endpoint::{data_id, ArpEntry, Endpoint, EndpointConfig, NudState};
use crate::l2::neigh::NudState as NeighNud;
use crate::l2::vxlan::{Miss, Tx, VxFdb, VxNeigh, VxlanConfig, VxlanDev};
use crate::sim::{Checked, Direction, Model, Property, Trace, When};
use crate::wire::{build, EthernetAddress, EthernetFrame};

mod sketch;
mod timers;
pub use sketch::brief;
pub use timers::{fmt_ms, EpTiming, Held, TimeSpec, TimeState, MAX_HORIZON_MS};

/// At most this many hosts (host indices are `u8` in the state).
pub const MAX_HOSTS: usize = 8;

/// At most this many containers (container indices are `u8` in actions
/// and locations, and the high byte of a data frame's id).
pub const MAX_CONTAINERS: usize = 32;

/// At most this many steps per script: the program counter is a `u8` and
/// the step index is the low byte of a data frame's id
/// ([`data_frame_id`]), so 255 is the hard limit; 200 leaves no doubt.
pub const MAX_SCRIPT_STEPS: usize = 200;

/// The vxlan1 port's index on every bridge.
pub const VXLAN_PORT: u8 = 0;

/// `base_reachable_time` (30 s): waiting at least this long makes
/// confirmed ARP entries stale.
pub const REACHABLE_S: u32 = 30;

/// One step of a container's script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptStep {
    /// Broadcast who-has for container `n`; done when a reply confirms it.
    Resolve(usize),
    /// Unicast who-has to the cached MAC of container `n`.
    Probe(usize),
    /// One data frame to container `n`.
    Send(usize),
    /// Drop the ARP entry for container `n` (garbage collection).
    Forget(usize),
    /// Let this many seconds pass.
    Wait(u32),
    /// Send a gratuitous ARP.
    Garp,
    /// `ip link set eth0 arp on` (`true`) or `arp off` (`false`).
    Arp(bool),
    /// The container's join event reaches the other hosts now: each of
    /// their drivers queues `peerAdd` for it (neighbour, then FDB entry).
    /// A container whose script has this step starts unknown to them.
    Join,
}

/// A host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// Its name.
    pub name: String,
    /// Its VTEP (underlay) address.
    pub vtep: Ipv4Addr,
    /// vxlan1's tables at the start, beyond (or instead of) what the
    /// driver's join events program (the scenario's `join_peers`,
    /// `vxlan_neigh`, `vxlan_fdb`).
    pub preset: Preset,
}

/// vxlan1's pre-programmed tables on one host: what an operator, an
/// earlier miss or a live host (`netrace audit --netns`) left there
/// before the scenario starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The driver's join events programmed every container of the other
    /// hosts (`peerAdd`: permanent neighbour and FDB entries), as in
    /// every scenario before pre-programmed tables existed. `false`:
    /// vxlan1 holds only the entries listed here.
    pub join_peers: bool,
    /// Permanent neighbour entries on vxlan1 (`ip neigh replace IP lladdr
    /// MAC dev vxlan1 nud permanent`), applied after the join entries (a
    /// listed IP replaces its join entry).
    pub vxlan_neigh: Vec<(Ipv4Addr, EthernetAddress, NeighNud)>,
    /// Permanent FDB entries of vxlan1 (`bridge fdb replace MAC dev
    /// vxlan1 dst DST self permanent`), applied after the join entries; a
    /// `dst` of 0.0.0.0 is "bridge-local".
    pub vxlan_fdb: Vec<(EthernetAddress, Ipv4Addr)>,
}

impl Default for Preset {
    fn default() -> Preset {
        Preset {
            join_peers: true,
            vxlan_neigh: Vec::new(),
            vxlan_fdb: Vec::new(),
        }
    }
}

/// A container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Its name.
    pub name: String,
    /// Index of its host.
    pub host: usize,
    /// Its overlay address.
    pub ip: Ipv4Addr,
    /// Whether it answers ARP.
    pub arp_responder: bool,
    /// What it does.
    pub script: Vec<ScriptStep>,
    /// Its state at the start beyond the defaults (`arp = false`,
    /// `eth0_neigh`, a late join).
    pub start: ContainerStart,
}

/// A container's starting state beyond the defaults.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ContainerStart {
    /// `eth0` starts with IFF_NOARP (the scenario's `arp = false`).
    pub noarp: bool,
    /// Its ARP cache at the start (`ip neigh replace IP lladdr MAC dev
    /// eth0 nud STATE`), in file order.
    pub eth0_neigh: Vec<(Ipv4Addr, EthernetAddress, NudState)>,
    /// Its join event is late: the other hosts' vxlan1 do not start
    /// with its entries; its script's `join` step queues them. Kept
    /// apart from the script so the kernel oracle's form (which has no
    /// scripts) starts with the same tables.
    pub joins_late: bool,
}

/// The profile-independent part of an L2 scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Spec {
    /// The overlay network's name.
    pub network: String,
    /// Its subnet (the gateway, `.1`, sits on every `br0`).
    pub subnet: Ipv4Net,
    /// Its VNI.
    pub vni: u32,
    /// Hosts.
    pub hosts: Vec<HostSpec>,
    /// Containers.
    pub containers: Vec<ContainerSpec>,
    /// The forwarding hop bound of `l2.no_storm`.
    pub max_hops: u8,
    /// Every `br0`'s `ageing_time` and every vxlan1's `ageing`, seconds
    /// (the scenario's `[network] ageing_time_s`, 300 by default as in
    /// the kernel).
    pub ageing_time_s: u32,
}

/// Where an in-flight frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loc {
    /// Arriving at a host's `br0` through a port.
    Bridge {
        /// Host index.
        host: u8,
        /// Port index (0 = vxlan1).
        port: u8,
    },
    /// Leaving `br0` into vxlan1 (`vxlan_xmit`).
    VxlanTx {
        /// Host index.
        host: u8,
    },
    /// Encapsulated on the underlay, arriving at a host's VTEP.
    Underlay {
        /// Host index.
        host: u8,
    },
    /// Arriving at a container's `eth0`.
    Endpoint {
        /// Container index.
        ep: u8,
    },
}

/// A frame in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InFlight {
    /// Where it is.
    pub at: Loc,
    /// How many times it was forwarded.
    pub hops: u8,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Work queued for a host's overlay driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriverOp {
    /// A miss notification to handle (`watchMiss`).
    Miss(Miss),
    /// `peerAdd`, first netlink call: the neighbour entry.
    NeighAdd(Ipv4Addr, EthernetAddress),
    /// `peerAdd`, second netlink call: the FDB entry.
    FdbAdd(EthernetAddress, Ipv4Addr),
}

impl DriverOp {
    /// Applies a `peerAdd` netlink call to vxlan1 at `now_s` (a miss
    /// notification is not a netlink call: nothing changes).
    pub fn apply(&self, vx: &mut VxlanDev, now_s: u32) {
        match *self {
            DriverOp::Miss(_) => {}
            DriverOp::NeighAdd(ip, mac) => {
                vx.neigh.insert(
                    ip,
                    VxNeigh {
                        mac,
                        nud: NeighNud::Permanent,
                    },
                );
            }
            DriverOp::FdbAdd(mac, remote) => {
                vx.fdb.insert(mac, VxFdb::permanent(remote, now_s));
            }
        }
    }

    /// The `ip`/`bridge` command the call stands for.
    pub fn command(&self, local_vtep: Ipv4Addr) -> String {
        match *self {
            DriverOp::Miss(m) => format!("handle {m} (watchMiss)"),
            DriverOp::NeighAdd(ip, mac) => {
                format!("ip neigh replace {ip} lladdr {mac} dev vxlan1 nud permanent")
            }
            DriverOp::FdbAdd(mac, remote) => format!(
                "bridge fdb replace {mac} dev vxlan1 dst {remote} self permanent{}",
                if remote == local_vtep {
                    "  (this host's own VTEP)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// What the overlay driver's miss path does with one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissPath {
    /// The profile's `watchMiss` does not handle this kind of miss.
    Ignored,
    /// `resolvePeer` knows no such peer.
    NoPeer,
    /// The locality check found the peer on this host: nothing programmed.
    LocalSkipped,
    /// `peerAdd`'s netlink calls, in order.
    Program(Vec<DriverOp>),
}

/// The miss path of libnetwork's overlay driver, `watchMiss` →
/// `resolvePeer` → `peerAdd` (`drivers/overlay/ov_network.go`,
/// `peerdb.go`), for one notification on a host whose VTEP is
/// `local_vtep`; `peer` is what `resolvePeer` returns (IP, MAC, VTEP).
///
/// `peerAdd`/`peerAddOp` programs the same two entries on every path, in
/// this order: `AddNeighbor(peerIP, peerMac)` on vxlan1, then the FDB
/// entry `AddNeighbor(vtep, peerMac, Family(AF_BRIDGE))`; the l2Miss and
/// l3Miss arguments only mark the entries, they do not choose which are
/// written. So an l3miss programs the neighbour and then the FDB entry;
/// an l2miss is ignored unless the profile's `watchMiss` handles l2misses
/// (`l2_miss_handling`), and then programs both too.
pub fn miss_path(
    profile: &OverlayProfile,
    miss: Miss,
    peer: Option<(Ipv4Addr, EthernetAddress, Ipv4Addr)>,
    local_vtep: Ipv4Addr,
) -> MissPath {
    if !profile.miss_handling || (matches!(miss, Miss::L2(_)) && !profile.l2_miss_handling) {
        return MissPath::Ignored;
    }
    let Some((ip, mac, vtep)) = peer else {
        return MissPath::NoPeer;
    };
    let local = vtep == local_vtep;
    if local && profile.has(Fix::LocalityCheck) {
        return MissPath::LocalSkipped;
    }
    let remote = if local && profile.has(Fix::VxlanFdbZero) {
        Ipv4Addr::UNSPECIFIED
    } else {
        vtep
    };
    MissPath::Program(vec![
        DriverOp::NeighAdd(ip, mac),
        DriverOp::FdbAdd(mac, remote),
    ])
}

/// One host's dynamic state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostState {
    /// `br0`.
    pub br: Bridge,
    /// `vxlan1`.
    pub vx: VxlanDev,
    /// The driver's queue (handled in order).
    pub driver: Vec<DriverOp>,
}

/// One container's dynamic state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EpState {
    /// Its stack.
    pub ep: Endpoint,
    /// The next script step.
    pub pc: u8,
    /// Waiting for a reply to the current `resolve`/`probe`.
    pub waiting: bool,
}

/// The whole world.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct L2State {
    /// Simulated time, seconds.
    pub now_s: u32,
    /// Per host.
    pub hosts: Vec<HostState>,
    /// Per container.
    pub eps: Vec<EpState>,
    /// Frames in flight, sorted (a multiset).
    pub inflight: Vec<InFlight>,
    /// Ids of the data frames sent.
    pub sent: Vec<u16>,
    /// The clock and the containers' neighbour tables, when the scenario
    /// has a `[time]` table (`system/timers.rs`).
    pub time: Option<TimeState>,
}

/// An action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L2Action {
    /// Process the in-flight frame at this index.
    Deliver(u16),
    /// A container's next script step.
    Script(u8),
    /// A host's driver handles the head of its queue.
    Driver(u8),
    /// The operator's job deletes vxlan1's ARP entries for local
    /// containers on this host (`delete-local-arp`).
    Cleanup(u8),
    /// The clock jumps to the next event point (`[time]` scenarios only).
    Tick,
    /// A slow container's held answer at this index leaves now (`[time]`
    /// scenarios only).
    Release(u16),
}

/// Static facts per host.
#[derive(Clone, Debug)]
struct Host {
    name: String,
    br: BridgeConfig,
    vx: VxlanConfig,
    /// Port index → container index (port 0 is vxlan1).
    port_ep: Vec<Option<usize>>,
}

/// The model: an L2 scenario under one profile.
#[derive(Clone, Debug)]
pub struct OverlaySystem {
    spec: L2Spec,
    profile: OverlayProfile,
    hosts: Vec<Host>,
    eps: Vec<EndpointConfig>,
    /// (host, port) of each container.
    ep_port: Vec<(usize, u8)>,
    init: L2State,
    /// The `[time]` table ([`timers`]).
    time: Option<TimeSpec>,
}

/// The id of the data frame sent by container `ep` at script step `step`.
pub fn data_frame_id(ep: usize, step: usize) -> u16 {
    debug_assert!(ep < MAX_CONTAINERS && step < MAX_SCRIPT_STEPS);
    ((ep as u16) << 8) | step as u16
}

impl OverlaySystem {
    /// Builds the model: devices configured as libnetwork creates them,
    /// remote peers programmed as join events would, local peers not.
    pub fn new(spec: &L2Spec, profile: &OverlayProfile) -> Result<OverlaySystem, String> {
        if spec.hosts.is_empty() || spec.hosts.len() > MAX_HOSTS {
            return Err(format!("an L2 scenario has 1 to {MAX_HOSTS} hosts"));
        }
        if spec.containers.len() > MAX_CONTAINERS {
            return Err(format!("at most {MAX_CONTAINERS} containers are supported"));
        }
        if let Some(c) = spec
            .containers
            .iter()
            .find(|c| c.script.len() > MAX_SCRIPT_STEPS)
        {
            return Err(format!(
                "{}'s script has {} steps; at most {MAX_SCRIPT_STEPS} are supported",
                c.name,
                c.script.len()
            ));
        }
        let gateway = Ipv4Addr::from(u32::from(spec.subnet.network()) + 1);
        let mut hosts = Vec::new();
        let mut ep_port = vec![(0usize, 0u8); spec.containers.len()];
        for (h, hs) in spec.hosts.iter().enumerate() {
            let mut ports = vec![PortConfig {
                name: "vxlan1".into(),
                learning: !profile.has(Fix::LearningOff),
                neigh_suppress: profile.has(Fix::NeighSuppress),
            }];
            let mut port_ep = vec![None];
            for (i, c) in spec.containers.iter().enumerate() {
                if c.host == h {
                    ep_port[i] = (h, ports.len() as u8);
                    ports.push(PortConfig {
                        name: format!("veth-{}", c.name),
                        learning: true,
                        neigh_suppress: false,
                    });
                    port_ep.push(Some(i));
                }
            }
            let n = h as u8 + 1;
            hosts.push(Host {
                name: hs.name.clone(),
                br: BridgeConfig {
                    mac: EthernetAddress([0x02, 0x00, 0x00, 0x00, n, 0x01]),
                    ip: gateway,
                    ports,
                    ageing_time_s: spec.ageing_time_s,
                },
                vx: VxlanConfig {
                    vni: spec.vni,
                    proxy: true,
                    learning: true,
                    l2miss: true,
                    l3miss: true,
                    local_ip: hs.vtep,
                    mac: EthernetAddress([0x02, 0x00, 0x00, 0x00, n, 0xfe]),
                    ageing_s: spec.ageing_time_s,
                },
                port_ep,
            });
        }
        let eps: Vec<EndpointConfig> = spec
            .containers
            .iter()
            .map(|c| EndpointConfig {
                name: c.name.clone(),
                ip: c.ip,
                mac: EthernetAddress::docker(c.ip),
                arp_responder: c.arp_responder,
            })
            .collect();
        let mut host_states = Vec::new();
        for (h, host) in hosts.iter().enumerate() {
            let mut vx = VxlanDev::default();
            let preset = &spec.hosts[h].preset;
            // peerAdd for every remote container (join events).
            for (i, c) in spec.containers.iter().enumerate() {
                if c.host != h && preset.join_peers && !c.start.joins_late {
                    vx.neigh.insert(
                        c.ip,
                        VxNeigh {
                            mac: eps[i].mac,
                            nud: NeighNud::Permanent,
                        },
                    );
                    vx.fdb
                        .insert(eps[i].mac, VxFdb::permanent(spec.hosts[c.host].vtep, 0));
                }
            }
            // Pre-programmed entries: `replace`, after the join entries.
            for &(ip, mac, nud) in &preset.vxlan_neigh {
                vx.neigh.insert(ip, VxNeigh { mac, nud });
            }
            for &(mac, dst) in &preset.vxlan_fdb {
                vx.fdb.insert(mac, VxFdb::permanent(dst, 0));
            }
            host_states.push(HostState {
                br: Bridge::new(&host.br),
                vx,
                driver: Vec::new(),
            });
        }
        let init = L2State {
            now_s: 0,
            hosts: host_states,
            eps: spec
                .containers
                .iter()
                .map(|c| {
                    let mut ep = Endpoint {
                        noarp: c.start.noarp,
                        ..Endpoint::default()
                    };
                    for &(ip, mac, state) in &c.start.eth0_neigh {
                        ep.arp.insert(
                            ip,
                            ArpEntry {
                                mac: Some(mac),
                                state,
                            },
                        );
                    }
                    EpState {
                        ep,
                        pc: 0,
                        waiting: false,
                    }
                })
                .collect(),
            inflight: Vec::new(),
            sent: Vec::new(),
            time: None,
        };
        Ok(OverlaySystem {
            spec: spec.clone(),
            profile: profile.clone(),
            hosts,
            eps,
            ep_port,
            init,
            time: None,
        })
    }

    /// The profile.
    pub fn profile(&self) -> &OverlayProfile {
        &self.profile
    }

    /// The scenario's description.
    pub fn spec(&self) -> &L2Spec {
        &self.spec
    }

    /// Host names.
    pub fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Host `host`'s `br0` as built (its ports: 0 = vxlan1, then the
    /// containers' veths), for pictures of the topology.
    pub fn bridge_config(&self, host: usize) -> &BridgeConfig {
        &self.hosts[host].br
    }

    /// Host `host`'s `vxlan1` as built (VNI, flags), for pictures of the
    /// topology.
    pub fn vxlan_config(&self, host: usize) -> &VxlanConfig {
        &self.hosts[host].vx
    }

    /// A bridge port's name.
    pub fn port_name(&self, host: usize, port: u8) -> &str {
        &self.hosts[host].br.ports[port as usize].name
    }

    /// The configuration of every container.
    pub fn endpoints(&self) -> &[EndpointConfig] {
        &self.eps
    }

    /// Whether nothing is in flight and no driver or operator work is
    /// pending: the condition for time to pass.
    pub fn drained(&self, s: &L2State) -> bool {
        s.inflight.is_empty()
            && s.hosts.iter().all(|h| h.driver.is_empty())
            && (0..self.hosts.len()).all(|h| !self.cleanup_pending(s, h))
    }

    pub(crate) fn cleanup_pending(&self, s: &L2State, h: usize) -> bool {
        self.profile.has(Fix::DeleteLocalArp)
            && self
                .spec
                .containers
                .iter()
                .any(|c| c.host == h && s.hosts[h].vx.neigh.contains_key(&c.ip))
    }

    /// A frame moves on from `from` to `at`: one more hop.
    fn forward(s: &mut L2State, at: Loc, from: &InFlight, bytes: Vec<u8>) {
        Self::push(
            s,
            InFlight {
                at,
                hops: from.hops.saturating_add(1),
                bytes,
            },
        );
    }

    fn push(s: &mut L2State, item: InFlight) {
        let at = s.inflight.binary_search(&item).unwrap_or_else(|e| e);
        s.inflight.insert(at, item);
    }

    fn step_enabled(&self, s: &L2State, ep: usize) -> bool {
        let st = &s.eps[ep];
        let Some(step) = self.spec.containers[ep].script.get(st.pc as usize) else {
            return false;
        };
        if st.waiting {
            return false;
        }
        if s.time.is_some() {
            return self.timed_step_enabled(s, ep);
        }
        match step {
            // On an IFF_NOARP eth0 a send needs no cached MAC: the
            // kernel creates a NOARP entry with eth0's own MAC.
            ScriptStep::Send(t) => {
                st.ep.noarp
                    || st
                        .ep
                        .arp
                        .get(&self.eps[*t].ip)
                        .and_then(|e| e.mac)
                        .is_some()
            }
            ScriptStep::Wait(_) | ScriptStep::Forget(_) => self.drained(s),
            _ => true,
        }
    }

    fn describe_step(&self, step: ScriptStep) -> String {
        let name = |t: usize| format!("{} ({})", self.eps[t].name, self.eps[t].ip);
        match step {
            ScriptStep::Resolve(t) => format!("resolve {}", name(t)),
            ScriptStep::Probe(t) => format!("probe {}", name(t)),
            ScriptStep::Send(t) => format!("send to {}", name(t)),
            ScriptStep::Forget(t) => format!("forget {}", name(t)),
            ScriptStep::Wait(n) => format!("wait {n} s"),
            ScriptStep::Garp => "gratuitous ARP".to_string(),
            ScriptStep::Arp(on) => {
                format!("ip link set eth0 arp {}", if on { "on" } else { "off" })
            }
            ScriptStep::Join => "join event to the other hosts".to_string(),
        }
    }

    /// Where a frame is, as the trace says it: its capture point and the
    /// way it goes through it (`host1 br0 veth-A in`, `host1 vxlan1 out`).
    fn loc_name(&self, at: Loc) -> String {
        let (point, direction) = self.capture_point(at);
        let way = match direction {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        };
        format!("{point} {way}")
    }

    /// The capture point of a frame at `at`, as a pcapng interface: the
    /// bridge port it enters `br0` by (`host1 br0 veth-A`), vxlan1 as it
    /// transmits (`host1 vxlan1`), the host's underlay as the encapsulated
    /// frame arrives (`host1 underlay`), a container's `eth0` (`A eth0`).
    pub fn capture_point(&self, at: Loc) -> (String, Direction) {
        match at {
            Loc::Bridge { host, port } => (
                format!(
                    "{} br0 {}",
                    self.hosts[host as usize].name,
                    self.port_name(host as usize, port)
                ),
                Direction::Inbound,
            ),
            Loc::VxlanTx { host } => (
                format!("{} vxlan1", self.hosts[host as usize].name),
                Direction::Outbound,
            ),
            Loc::Underlay { host } => (
                format!("{} underlay", self.hosts[host as usize].name),
                Direction::Inbound,
            ),
            Loc::Endpoint { ep } => (
                format!("{} eth0", self.eps[ep as usize].name),
                Direction::Inbound,
            ),
        }
    }

    /// After a frame reached container `ep`: its pending resolve/probe
    /// completes once the target is confirmed.
    fn maybe_complete(&self, s: &mut L2State, ep: usize, trace: &mut Trace) {
        let st = &mut s.eps[ep];
        if !st.waiting {
            return;
        }
        if let Some(ScriptStep::Resolve(t) | ScriptStep::Probe(t)) =
            self.spec.containers[ep].script.get(st.pc as usize)
        {
            if st.ep.is_reachable(self.eps[*t].ip) {
                st.waiting = false;
                st.pc += 1;
                trace.line(format!(
                    "{}: {} resolved",
                    self.eps[ep].name, self.eps[*t].ip
                ));
            }
        }
    }

    /// Processes one in-flight frame at its location; what it causes is
    /// pushed onto `s.inflight` (also used by the timed simulation,
    /// [`super::timed`], which hands over every location but the
    /// containers' `eth0`).
    pub(crate) fn deliver(&self, s: &mut L2State, item: InFlight, trace: &mut Trace) {
        let now = s.now_s;
        trace.frame(|| self.capture_point(item.at), now, &item.bytes);
        match item.at {
            Loc::Bridge { host, port } => {
                let h = host as usize;
                let o = s.hosts[h]
                    .br
                    .receive(&self.hosts[h].br, port, &item.bytes, now);
                for n in o.notes {
                    trace.line(n);
                }
                if o.unknown_unicast_flood {
                    trace.bump("unicast_floods");
                }
                for (p, bytes) in o.out {
                    let at = match self.hosts[h].port_ep[p as usize] {
                        None => Loc::VxlanTx { host },
                        Some(ep) => Loc::Endpoint { ep: ep as u8 },
                    };
                    Self::forward(s, at, &item, bytes);
                }
            }
            Loc::VxlanTx { host } => {
                let h = host as usize;
                let mut notes = Vec::new();
                let tx = s.hosts[h]
                    .vx
                    .xmit(&self.hosts[h].vx, &item.bytes, now, &mut notes);
                for n in notes {
                    trace.line(n);
                }
                match tx {
                    Tx::ProxyReply(reply) => {
                        trace.line(format!(
                            "vxlan1 proxy (arp_reduce) answers, reply received on vxlan1: {}",
                            build::describe(&reply)
                        ));
                        Self::forward(
                            s,
                            Loc::Bridge {
                                host,
                                port: VXLAN_PORT,
                            },
                            &item,
                            reply,
                        );
                    }
                    Tx::Miss(m) => {
                        let what = match m {
                            Miss::L3(ip) => format!("l3miss {ip}"),
                            Miss::L2(mac) => format!("l2miss {mac}"),
                        };
                        let listened = self.profile.miss_handling
                            && (matches!(m, Miss::L3(_)) || self.profile.l2_miss_handling);
                        if listened {
                            trace.line(format!(
                                "vxlan1: no entry: {what} notified to the driver; request consumed"
                            ));
                            s.hosts[h].driver.push(DriverOp::Miss(m));
                        } else {
                            trace.line(format!(
                                "vxlan1: no entry: {what} notified, the driver ignores it; consumed"
                            ));
                        }
                    }
                    Tx::Bypass(bytes) => Self::forward(
                        s,
                        Loc::Bridge {
                            host,
                            port: VXLAN_PORT,
                        },
                        &item,
                        bytes,
                    ),
                    Tx::Encap(remote, outer) => {
                        match self.spec.hosts.iter().position(|x| x.vtep == remote) {
                            Some(to) => {
                                Self::forward(s, Loc::Underlay { host: to as u8 }, &item, outer)
                            }
                            None => trace.line(format!("underlay: no VTEP at {remote}: lost")),
                        }
                    }
                    Tx::Dropped(why) => trace.line(why),
                }
            }
            Loc::Underlay { host } => {
                let h = host as usize;
                let mut notes = Vec::new();
                let inner = s.hosts[h]
                    .vx
                    .receive(&self.hosts[h].vx, &item.bytes, now, &mut notes);
                for n in notes {
                    trace.line(n);
                }
                if let Some(bytes) = inner {
                    trace.line(format!("decapsulated: {}", build::describe(&bytes)));
                    Self::forward(
                        s,
                        Loc::Bridge {
                            host,
                            port: VXLAN_PORT,
                        },
                        &item,
                        bytes,
                    );
                }
            }
            Loc::Endpoint { ep } if s.time.is_some() => {
                self.timed_receive(s, ep as usize, &item.bytes, trace);
            }
            Loc::Endpoint { ep } => {
                let e = ep as usize;
                let r = s.eps[e].ep.receive(&self.eps[e], &item.bytes);
                for n in r.notes {
                    trace.line(n);
                }
                let (host, port) = self.ep_port[e];
                for bytes in r.out {
                    Self::push(
                        s,
                        InFlight {
                            at: Loc::Bridge {
                                host: host as u8,
                                port,
                            },
                            hops: 0,
                            bytes,
                        },
                    );
                }
                self.maybe_complete(s, e, trace);
            }
        }
    }

    fn script(&self, s: &mut L2State, e: usize, trace: &mut Trace) {
        if s.time.is_some() {
            return self.timed_script(s, e, trace);
        }
        let pc = s.eps[e].pc as usize;
        let step = self.spec.containers[e].script[pc];
        let cfg = &self.eps[e];
        let (host, port) = self.ep_port[e];
        let at = Loc::Bridge {
            host: host as u8,
            port,
        };
        let emit = |s: &mut L2State, bytes: Vec<u8>, trace: &mut Trace| {
            trace.line(format!(
                "{} eth0 out: {}",
                cfg.name,
                build::describe(&bytes)
            ));
            Self::push(s, InFlight { at, hops: 0, bytes });
        };
        match step {
            ScriptStep::Resolve(t) => {
                if let Some(why) = s.eps[e].ep.resolve_silently(cfg, self.eps[t].ip) {
                    trace.line(why);
                    s.eps[e].pc += 1;
                    return;
                }
                let f = s.eps[e].ep.resolve(cfg, self.eps[t].ip);
                emit(s, f, trace);
                s.eps[e].waiting = true;
            }
            ScriptStep::Probe(t)
                if s.eps[e].ep.noarp
                    || s.eps[e]
                        .ep
                        .arp
                        .get(&self.eps[t].ip)
                        .is_some_and(|x| x.state.is_pinned()) =>
            {
                trace.line(format!(
                    "{}: {} is pinned or eth0 is NOARP: no probe",
                    cfg.name, self.eps[t].ip
                ));
                s.eps[e].pc += 1;
            }
            ScriptStep::Probe(t) => match s.eps[e].ep.probe(cfg, self.eps[t].ip) {
                Some(f) => {
                    emit(s, f, trace);
                    s.eps[e].waiting = true;
                }
                None => {
                    trace.line(format!(
                        "{}: nothing cached for {}: no probe",
                        cfg.name, self.eps[t].ip
                    ));
                    s.eps[e].pc += 1;
                }
            },
            ScriptStep::Send(t) => {
                if s.eps[e].ep.noarp && !s.eps[e].ep.arp.contains_key(&self.eps[t].ip) {
                    if let Some(why) = s.eps[e].ep.resolve_silently(cfg, self.eps[t].ip) {
                        trace.line(why);
                    }
                }
                let id = data_frame_id(e, pc);
                let f = s.eps[e]
                    .ep
                    .send(cfg, self.eps[t].ip, id)
                    .expect("enabled only with a cached MAC");
                trace.line(format!(
                    "{}: data frame #{id} to {}",
                    cfg.name, self.eps[t].name
                ));
                emit(s, f, trace);
                s.sent.push(id);
                s.eps[e].pc += 1;
            }
            ScriptStep::Forget(t) => {
                let ip = self.eps[t].ip;
                // Garbage collection (neigh_periodic_work, neigh_forced_gc)
                // never removes a PERMANENT entry.
                if s.eps[e]
                    .ep
                    .arp
                    .get(&ip)
                    .is_some_and(|x| x.state == NudState::Permanent)
                {
                    trace.line(format!(
                        "{}: ARP entry for {ip} is PERMANENT: not garbage-collected",
                        cfg.name
                    ));
                } else {
                    s.eps[e].ep.arp.remove(&ip);
                    trace.line(format!(
                        "{}: ARP entry for {ip} garbage-collected",
                        cfg.name
                    ));
                }
                s.eps[e].pc += 1;
            }
            ScriptStep::Wait(n) => {
                self.age_all(s, n, trace);
                s.eps[e].pc += 1;
            }
            ScriptStep::Garp => {
                let f = build::gratuitous_arp(cfg.mac, cfg.ip);
                emit(s, f, trace);
                s.eps[e].pc += 1;
            }
            ScriptStep::Arp(on) => {
                s.eps[e].ep.set_arp(on);
                trace.line(format!(
                    "{}: ip link set eth0 arp {}: its ARP cache is flushed (neigh_changeaddr)",
                    cfg.name,
                    if on { "on" } else { "off" }
                ));
                s.eps[e].pc += 1;
            }
            ScriptStep::Join => {
                // The join event reaches every other host: peerAdd.
                let vtep = self.spec.hosts[host].vtep;
                for (h, hs) in s.hosts.iter_mut().enumerate() {
                    if h != host && self.spec.hosts[h].preset.join_peers {
                        hs.driver.push(DriverOp::NeighAdd(cfg.ip, cfg.mac));
                        hs.driver.push(DriverOp::FdbAdd(cfg.mac, vtep));
                        trace.line(format!(
                            "{} joins: {}'s driver queues peerAdd({}, {}, {vtep})",
                            cfg.name, self.hosts[h].name, cfg.ip, cfg.mac
                        ));
                    }
                }
                s.eps[e].pc += 1;
            }
        }
    }

    /// `n` seconds pass: bridges and vxlan devices age their dynamic
    /// entries (`br_fdb_cleanup`, `vxlan_cleanup`), and past
    /// `base_reachable_time` confirmed ARP entries go stale.
    pub(crate) fn age_all(&self, s: &mut L2State, n: u32, trace: &mut Trace) {
        s.now_s += n;
        let now = s.now_s;
        trace.line(format!("{n} s pass (now {now} s)"));
        for (h, hs) in s.hosts.iter_mut().enumerate() {
            for m in hs.br.age(&self.hosts[h].br, now) {
                trace.line(format!("{} br0 fdb: {m} aged out", self.hosts[h].name));
            }
            for m in hs.vx.age(&self.hosts[h].vx, now) {
                trace.line(format!("{} vxlan1 fdb: {m} aged out", self.hosts[h].name));
            }
        }
        if n >= REACHABLE_S {
            for st in &mut s.eps {
                st.ep.age();
            }
        }
    }

    /// Bridges and vxlan devices age their dynamic entries at `s.now_s`
    /// without advancing time (`br_fdb_cleanup`, `vxlan_cleanup`), for the
    /// timed simulation's periodic cleanup; returns the MACs br0 dropped,
    /// by host.
    pub(crate) fn age_tables(&self, s: &mut L2State) -> Vec<(usize, EthernetAddress)> {
        let now = s.now_s;
        let mut gone = Vec::new();
        for (h, hs) in s.hosts.iter_mut().enumerate() {
            for m in hs.br.age(&self.hosts[h].br, now) {
                gone.push((h, m));
            }
            hs.vx.age(&self.hosts[h].vx, now);
        }
        gone
    }

    /// The (host, br0 port) of container `e`.
    pub fn container_port(&self, e: usize) -> (usize, u8) {
        self.ep_port[e]
    }

    /// Container `e` transmits `frame` on its `eth0`.
    pub(crate) fn inject(&self, s: &mut L2State, e: usize, frame: Vec<u8>) {
        let (host, port) = self.ep_port[e];
        Self::push(
            s,
            InFlight {
                at: Loc::Bridge {
                    host: host as u8,
                    port,
                },
                hops: 0,
                bytes: frame,
            },
        );
    }

    /// The operator job of `delete-local-arp` on host `h`.
    pub(crate) fn delete_local_neigh(&self, s: &mut L2State, h: usize, trace: &mut Trace) {
        for c in self.spec.containers.iter().filter(|c| c.host == h) {
            if s.hosts[h].vx.neigh.remove(&c.ip).is_some() {
                trace.line(format!(
                    "ip neigh del {} dev vxlan1 (local container {})",
                    c.ip, c.name
                ));
            }
        }
    }

    /// Host `h`'s driver handles the head of its queue.
    pub(crate) fn driver(&self, s: &mut L2State, h: usize, trace: &mut Trace) {
        let op = s.hosts[h].driver.remove(0);
        let local_vtep = self.spec.hosts[h].vtep;
        match op {
            DriverOp::Miss(m) => {
                let peer = match m {
                    Miss::L3(ip) => self.spec.containers.iter().position(|c| c.ip == ip),
                    Miss::L2(mac) => self.eps.iter().position(|c| c.mac == mac),
                };
                let resolved = peer.map(|p| {
                    let c = &self.spec.containers[p];
                    (c.ip, self.eps[p].mac, self.spec.hosts[c.host].vtep)
                });
                if let (Some(p), Some((ip, mac, vtep))) = (peer, resolved) {
                    if self.profile.miss_handling
                        && (matches!(m, Miss::L3(_)) || self.profile.l2_miss_handling)
                    {
                        trace.line(format!(
                            "watchMiss: resolvePeer({ip}) = {mac} at VTEP {vtep}"
                        ));
                        if vtep == local_vtep && !self.profile.has(Fix::LocalityCheck) {
                            trace.line(format!(
                                "peerAdd for a LOCAL container ({}), no locality check",
                                self.spec.containers[p].name
                            ));
                        }
                    }
                }
                match miss_path(&self.profile, m, resolved, local_vtep) {
                    MissPath::Ignored => trace
                        .line("watchMiss: an l2miss has no IPv4 destination: ignored (this era)"),
                    MissPath::NoPeer => trace.line("resolvePeer: no such peer in the cluster"),
                    MissPath::LocalSkipped => {
                        trace.line("locality check: the peer is local: not programmed")
                    }
                    MissPath::Program(ops) => {
                        s.hosts[h].driver.splice(0..0, ops);
                    }
                }
            }
            DriverOp::NeighAdd(..) | DriverOp::FdbAdd(..) => {
                op.apply(&mut s.hosts[h].vx, s.now_s);
                trace.line(op.command(local_vtep));
            }
        }
    }

    /// The ids of data frames sent after the last ageing wait (a `wait`
    /// of at least the bridge ageing time) of each script.
    fn after_ageing_ids(&self) -> Vec<(usize, u16)> {
        let mut out = Vec::new();
        for (e, c) in self.spec.containers.iter().enumerate() {
            let Some(last_wait) = c
                .script
                .iter()
                .rposition(|s| matches!(s, ScriptStep::Wait(n) if *n >= self.spec.ageing_time_s))
            else {
                continue;
            };
            for (i, step) in c.script.iter().enumerate().skip(last_wait + 1) {
                if let ScriptStep::Send(t) = step {
                    out.push((*t, data_frame_id(e, i)));
                }
            }
        }
        out
    }

    /// Runs the schedule that always takes the first enabled action and
    /// returns a named counter of its trace (the price of a fix).
    pub fn canonical_count(&self, counter: &str, max_depth: u32) -> u64 {
        let mut state = self.init_state();
        let mut trace = Trace::on();
        let mut actions = Vec::new();
        for _ in 0..max_depth {
            actions.clear();
            self.actions(&state, &mut actions);
            let Some(a) = actions.first() else { break };
            state = self.next_state(&state, a, &mut trace);
            trace.take();
            trace.take_frames();
        }
        trace.counter(counter)
    }
}

impl Model for OverlaySystem {
    type State = L2State;
    type Action = L2Action;

    fn init_state(&self) -> L2State {
        self.init.clone()
    }

    fn actions(&self, s: &L2State, out: &mut Vec<L2Action>) {
        for e in 0..s.eps.len() {
            if self.step_enabled(s, e) {
                out.push(L2Action::Script(e as u8));
            }
        }
        for (h, hs) in s.hosts.iter().enumerate() {
            if !hs.driver.is_empty() {
                out.push(L2Action::Driver(h as u8));
            }
        }
        for h in 0..s.hosts.len() {
            if self.cleanup_pending(s, h) {
                out.push(L2Action::Cleanup(h as u8));
            }
        }
        for (i, item) in s.inflight.iter().enumerate() {
            // Identical copies have identical effects: offer one.
            if i > 0 && s.inflight[i - 1] == *item {
                continue;
            }
            out.push(L2Action::Deliver(i as u16));
        }
        self.timed_actions(s, out);
    }

    fn next_state(&self, state: &L2State, action: &L2Action, trace: &mut Trace) -> L2State {
        let mut s = state.clone();
        match *action {
            L2Action::Deliver(i) => {
                let item = s.inflight.remove(i as usize);
                self.deliver(&mut s, item, trace);
            }
            L2Action::Script(e) => self.script(&mut s, e as usize, trace),
            L2Action::Driver(h) => self.driver(&mut s, h as usize, trace),
            L2Action::Cleanup(h) => self.delete_local_neigh(&mut s, h as usize, trace),
            L2Action::Tick => self.tick(&mut s, trace),
            L2Action::Release(i) => self.release(&mut s, i as usize, trace),
        }
        s
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: "l2.single_arp_reply",
                when: When::Always,
                summary: "a requester gets one ARP reply per request",
                check: check_single_reply,
            },
            Property {
                name: "l2.fdb_correct",
                when: When::Quiescent,
                summary: "at quiescence every local container MAC br0 knows is on its own veth",
                check: check_fdb,
            },
            Property {
                name: "l2.delivery",
                when: When::Quiescent,
                summary: "every script completes and every data frame reaches its live target",
                check: check_delivery,
            },
            Property {
                name: "l2.no_storm",
                when: When::Always,
                summary: "no frame is forwarded past the hop bound",
                check: check_storm,
            },
            Property {
                name: "l2.converges",
                when: When::Quiescent,
                summary: "data frames sent after the last ageing wait reach their targets",
                check: check_converges,
            },
        ]
    }

    fn describe(&self, s: &L2State, action: &L2Action) -> String {
        match *action {
            L2Action::Deliver(i) => {
                let item = &s.inflight[i as usize];
                format!(
                    "{}: {}",
                    self.loc_name(item.at),
                    build::describe(&item.bytes)
                )
            }
            L2Action::Script(e) => {
                let st = &s.eps[e as usize];
                let step = self.spec.containers[e as usize].script[st.pc as usize];
                format!(
                    "{}: {}",
                    self.eps[e as usize].name,
                    self.describe_step(step)
                )
            }
            L2Action::Driver(h) => format!(
                "{} overlay driver: {}",
                self.hosts[h as usize].name,
                s.hosts[h as usize].driver[0].command(self.spec.hosts[h as usize].vtep)
            ),
            L2Action::Cleanup(h) => format!(
                "{} operator: delete vxlan1 ARP entries of local containers",
                self.hosts[h as usize].name
            ),
            L2Action::Tick => format!(
                "clock: {} -> {}",
                fmt_ms(s.time.as_ref().map_or(0, |t| t.now_ms)),
                self.next_event_name(s)
            ),
            L2Action::Release(i) => match s.time.as_ref().and_then(|t| t.held.get(i as usize)) {
                Some(h) => format!(
                    "{}: late answer leaves: {}",
                    self.eps[h.ep as usize].name,
                    build::describe(&h.bytes)
                ),
                None => "late answer".to_string(),
            },
        }
    }

    fn action_key(&self, s: &L2State, action: &L2Action) -> u64 {
        match *action {
            L2Action::Script(e) => 1 << 60 | u64::from(e),
            L2Action::Driver(h) => 2 << 60 | u64::from(h),
            L2Action::Cleanup(h) => 3 << 60 | u64::from(h),
            L2Action::Tick => 4 << 60,
            L2Action::Release(i) => {
                let h = s.time.as_ref().map(|t| &t.held[i as usize]);
                5 << 60 | (crate::explore::stable_hash(&h) as u64) >> 4
            }
            // A delivery is known by what is delivered where.
            L2Action::Deliver(i) => {
                let item = &s.inflight[i as usize];
                // The top four bits stay clear of the tags above.
                (crate::explore::stable_hash(&(item.at, &item.bytes)) as u64) >> 4
            }
        }
    }

    fn blocked(&self, s: &L2State, key: u64) -> Option<String> {
        let index = (key & 0xff) as usize;
        Some(match key >> 60 {
            1 => {
                let name = &self.eps.get(index)?.name;
                let st = &s.eps[index];
                if st.pc as usize >= self.spec.containers[index].script.len() {
                    format!("{name}'s script is already done")
                } else if st.waiting {
                    format!("{name} is still waiting for an ARP reply")
                } else {
                    format!("{name} cannot take its next script step")
                }
            }
            2 => format!(
                "{}'s overlay driver has nothing to program here: this variant's miss path \
                 queued no netlink call (a fix such as the locality check skipped it)",
                self.hosts.get(index)?.name
            ),
            3 => format!(
                "no operator cleanup is pending on {}",
                self.hosts.get(index)?.name
            ),
            4 => "the clock cannot move here: frames, driver work or a script step come \
                  first, or the next event lies beyond the horizon"
                .to_string(),
            5 => "that late answer is not held here, or may not leave yet".to_string(),
            _ => "that frame is not in flight on this variant: it was never sent, or was \
                  already dropped or delivered"
                .to_string(),
        })
    }

    fn summarize(&self, s: &L2State) -> Vec<String> {
        let mut out = Vec::new();
        for (h, hs) in s.hosts.iter().enumerate() {
            let name = &self.hosts[h].name;
            let fdb: Vec<String> = hs
                .br
                .fdb
                .iter()
                .filter(|(_, e)| !e.local)
                .map(|(m, e)| format!("{m}->{}", self.port_name(h, e.port)))
                .collect();
            out.push(format!("{name} br0 fdb: {}", list_or_empty(&fdb)));
            let vfdb: Vec<String> = hs
                .vx
                .fdb
                .iter()
                .map(|(m, f)| {
                    format!(
                        "{m}->{}{}",
                        f.remote,
                        if f.permanent { "" } else { "(learned)" }
                    )
                })
                .collect();
            out.push(format!("{name} vxlan1 fdb: {}", list_or_empty(&vfdb)));
            let neigh: Vec<String> = hs
                .vx
                .neigh
                .iter()
                .map(|(ip, n)| format!("{ip}->{}", n.mac))
                .collect();
            out.push(format!("{name} vxlan1 neigh: {}", list_or_empty(&neigh)));
        }
        for (e, st) in s.eps.iter().enumerate() {
            let arp: Vec<String> = st
                .ep
                .arp
                .iter()
                .map(|(ip, a)| {
                    format!(
                        "{ip}->{} {}",
                        a.mac.map_or("(none)".to_string(), |m| m.to_string()),
                        a.state.name()
                    )
                })
                .collect();
            let script = &self.spec.containers[e].script;
            let progress = if (st.pc as usize) < script.len() {
                format!(
                    "at step {} of {} ({}{})",
                    st.pc + 1,
                    script.len(),
                    self.describe_step(script[st.pc as usize]),
                    if st.waiting {
                        ", waiting for a reply"
                    } else {
                        ""
                    }
                )
            } else {
                "script done".to_string()
            };
            let received: Vec<String> = st.ep.received.iter().map(|id| format!("#{id}")).collect();
            out.push(format!(
                "{}: {progress}; arp: {}; received: {}",
                self.eps[e].name,
                list_or_empty(&arp),
                list_or_empty(&received)
            ));
        }
        if !s.inflight.is_empty() {
            out.push(format!("{} frame(s) still in flight", s.inflight.len()));
        }
        self.timed_summary(s, &mut out);
        out
    }

    fn lanes(&self) -> Vec<crate::sim::Lane> {
        self.diagram_lanes()
    }

    fn sketch(&self, before: &L2State, action: &L2Action, after: &L2State) -> crate::sim::Sketch {
        self.diagram_step(before, action, after)
    }

    fn tables(&self, s: &L2State) -> serde_json::Value {
        let hosts: Vec<serde_json::Value> = s
            .hosts
            .iter()
            .enumerate()
            .map(|(h, hs)| {
                let br: serde_json::Map<String, serde_json::Value> = hs
                    .br
                    .fdb
                    .iter()
                    .filter(|(_, e)| !e.local)
                    .map(|(m, e)| (m.to_string(), json!(self.port_name(h, e.port))))
                    .collect();
                let vx: serde_json::Map<String, serde_json::Value> = hs
                    .vx
                    .fdb
                    .iter()
                    .map(|(m, f)| (m.to_string(), json!(f.remote.to_string())))
                    .collect();
                let neigh: serde_json::Map<String, serde_json::Value> = hs
                    .vx
                    .neigh
                    .iter()
                    .map(|(ip, n)| (ip.to_string(), json!(n.mac.to_string())))
                    .collect();
                json!({
                    "host": self.hosts[h].name,
                    "br0_fdb": br,
                    "vxlan_fdb": vx,
                    "vxlan_neigh": neigh,
                })
            })
            .collect();
        json!({ "hosts": hosts })
    }
}

/// The items joined by spaces, or `(empty)`.
fn list_or_empty(items: &[String]) -> String {
    if items.is_empty() {
        "(empty)".to_string()
    } else {
        items.join(" ")
    }
}

fn check_single_reply(m: &OverlaySystem, s: &L2State) -> Result<Checked, String> {
    for (e, st) in s.eps.iter().enumerate() {
        for (ip, n) in &st.ep.replies {
            if *n > 1 {
                return Err(format!(
                    "{} received {n} ARP replies to one request who-has {ip}",
                    m.eps[e].name
                ));
            }
        }
    }
    Ok(Checked::when(
        s.eps.iter().any(|st| !st.ep.replies.is_empty()),
    ))
}

fn check_fdb(m: &OverlaySystem, s: &L2State) -> Result<Checked, String> {
    let mut wrong = Vec::new();
    for (h, hs) in s.hosts.iter().enumerate() {
        for (e, c) in m.spec.containers.iter().enumerate() {
            if c.host != h {
                continue;
            }
            let mac = m.eps[e].mac;
            if let Some(entry) = hs.br.fdb.get(&mac) {
                let own = m.ep_port[e].1;
                if entry.port != own {
                    wrong.push(format!(
                        "{} br0 has {}'s MAC {mac} on {}, not on {}",
                        m.hosts[h].name,
                        c.name,
                        m.port_name(h, entry.port),
                        m.port_name(h, own)
                    ));
                }
            }
        }
    }
    if wrong.is_empty() {
        // Something to check once br0 knows a local container's MAC.
        let known = s.hosts.iter().enumerate().any(|(h, hs)| {
            m.spec
                .containers
                .iter()
                .enumerate()
                .any(|(e, c)| c.host == h && hs.br.fdb.contains_key(&m.eps[e].mac))
        });
        Ok(Checked::when(known))
    } else {
        Err(wrong.join("; "))
    }
}

fn undelivered(m: &OverlaySystem, s: &L2State, ids: &[(usize, u16)]) -> Option<String> {
    for &(target, id) in ids {
        if s.sent.contains(&id) && !s.eps[target].ep.received.contains(&id) {
            let from = (id >> 8) as usize;
            return Some(format!(
                "{}'s data frame #{id} to {} ({}) never reached it",
                m.eps[from].name, m.eps[target].name, m.eps[target].ip
            ));
        }
    }
    None
}

fn check_delivery(m: &OverlaySystem, s: &L2State) -> Result<Checked, String> {
    for (e, st) in s.eps.iter().enumerate() {
        let script = &m.spec.containers[e].script;
        if (st.pc as usize) < script.len() {
            return Err(format!(
                "{} is stuck at '{}'{}",
                m.eps[e].name,
                m.describe_step(script[st.pc as usize]),
                if st.waiting {
                    ": no ARP reply ever confirmed it"
                } else {
                    ""
                }
            ));
        }
    }
    let mut all = Vec::new();
    for (e, c) in m.spec.containers.iter().enumerate() {
        for (i, step) in c.script.iter().enumerate() {
            if let ScriptStep::Send(t) = step {
                all.push((*t, data_frame_id(e, i)));
            }
        }
    }
    match undelivered(m, s, &all) {
        Some(msg) => Err(msg),
        None => Ok(Checked::when(
            m.spec.containers.iter().any(|c| !c.script.is_empty()),
        )),
    }
}

fn check_storm(m: &OverlaySystem, s: &L2State) -> Result<Checked, String> {
    match s.inflight.iter().find(|f| f.hops > m.spec.max_hops) {
        Some(f) => Err(format!(
            "a frame was forwarded {} times (bound {}): {}",
            f.hops,
            m.spec.max_hops,
            build::describe(&f.bytes)
        )),
        None => Ok(Checked::when(!s.inflight.is_empty())),
    }
}

fn check_converges(m: &OverlaySystem, s: &L2State) -> Result<Checked, String> {
    let ids = m.after_ageing_ids();
    match undelivered(m, s, &ids) {
        Some(msg) => Err(format!("after ageing: {msg}")),
        // Vacuous when no data frame is sent after an ageing wait.
        None => Ok(Checked::when(!ids.is_empty())),
    }
}

/// True if `frame` is a model data frame (for the kernel oracle).
pub fn is_data_frame(frame: &[u8], ip: Ipv4Addr) -> bool {
    EthernetFrame::new_checked(frame)
        .ok()
        .and_then(|f| data_id(f.payload(), ip))
        .is_some()
}
