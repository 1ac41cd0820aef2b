//! The L2 model's sequence diagrams ([`Model::lanes`], [`Model::sketch`]):
//! which lane acts in a step, which frame arrives from where, and which
//! table entries changed.
//!
//! Lanes, per host: its containers, `br0`'s ports (one lane per veth and
//! one for the vxlan1 port), the vxlan1 device (which is also where the
//! host's underlay delivers), and the control lane of the overlay driver
//! (and the operator's job) when the profile has a miss path or the
//! `delete-local-arp` job. Every other host is drawn mirrored, so that
//! frames between two hosts cross the middle of the picture.
//!
//! Everything here is computed from the states before and after a step,
//! so it cannot disagree with the model: a frame's sender is read off
//! where it arrives (a veth port's sender is its container, vxlan1's
//! port's is the device, an underlay frame's is the host of its outer
//! source address), and a mark is a difference of a table between the two
//! states. Only replay calls this; exploring never does.

use std::collections::BTreeSet;

use super::*;
use crate::sim::{Arrow, ArrowKind, Lane, Mark, Sketch};
use crate::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, Ipv4Packet, UdpPacket, VxlanPacket,
    VXLAN_PORT as VXLAN_UDP_PORT,
};

/// A lane, before it is numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaneId {
    /// A container.
    Ep(usize),
    /// A port of a host's `br0`.
    Port(usize, u8),
    /// A host's vxlan1 (and its underlay).
    Vx(usize),
    /// A host's overlay driver and operator.
    Ctl(usize),
}

impl OverlaySystem {
    /// Whether host lanes include the control lane.
    fn has_control(&self) -> bool {
        self.profile.miss_handling || self.profile.has(Fix::DeleteLocalArp)
    }

    /// The lanes in drawing order.
    fn lane_ids(&self) -> Vec<LaneId> {
        let mut out = Vec::new();
        for (h, host) in self.hosts.iter().enumerate() {
            let mut lanes: Vec<LaneId> = host
                .port_ep
                .iter()
                .filter_map(|e| e.map(LaneId::Ep))
                .collect();
            lanes.extend((1..host.port_ep.len()).map(|p| LaneId::Port(h, p as u8)));
            lanes.push(LaneId::Port(h, VXLAN_PORT));
            lanes.push(LaneId::Vx(h));
            if self.has_control() {
                lanes.push(LaneId::Ctl(h));
            }
            if h % 2 == 1 {
                lanes.reverse();
            }
            out.extend(lanes);
        }
        out
    }

    fn lane(&self, id: LaneId) -> Lane {
        match id {
            LaneId::Ep(e) => {
                let host = &self.hosts[self.ep_port[e].0].name;
                Lane::new(host, &self.eps[e].name)
            }
            LaneId::Port(h, p) => Lane::new(
                &self.hosts[h].name,
                &format!("br0 {}", self.port_name(h, p)),
            ),
            LaneId::Vx(h) => Lane::new(&self.hosts[h].name, "vxlan1"),
            LaneId::Ctl(h) => Lane::new(&self.hosts[h].name, "driver"),
        }
    }

    /// The diagram's lanes ([`Model::lanes`]).
    pub(super) fn diagram_lanes(&self) -> Vec<Lane> {
        self.lane_ids()
            .into_iter()
            .map(|id| self.lane(id))
            .collect()
    }

    /// The number of lane `id`. A lane the profile does not draw (the
    /// control lane without a miss path) falls back to vxlan1's.
    fn index(&self, ids: &[LaneId], id: LaneId) -> usize {
        let fallback = match id {
            LaneId::Ctl(h) => LaneId::Vx(h),
            other => other,
        };
        ids.iter()
            .position(|&x| x == id)
            .or_else(|| ids.iter().position(|&x| x == fallback))
            .expect("every lane id is drawn")
    }

    /// Who a MAC is: a container's name, else the address.
    fn who(&self, mac: EthernetAddress) -> String {
        match self.eps.iter().find(|e| e.mac == mac) {
            Some(e) => format!("{}'s MAC", e.name),
            None => mac.to_string(),
        }
    }

    /// The lane a frame arriving at `at` was sent by.
    fn sender(&self, ids: &[LaneId], at: Loc, bytes: &[u8]) -> usize {
        let id = match at {
            Loc::Bridge { host, port } => match self.hosts[host as usize].port_ep[port as usize] {
                Some(e) => LaneId::Ep(e),
                None => LaneId::Vx(host as usize),
            },
            Loc::VxlanTx { host } => LaneId::Port(host as usize, VXLAN_PORT),
            Loc::Underlay { host } => {
                let src = EthernetFrame::new_checked(bytes).ok().and_then(|f| {
                    Ipv4Packet::new_checked(f.payload())
                        .ok()
                        .map(|p| p.src_addr())
                });
                match src.and_then(|ip| self.spec.hosts.iter().position(|h| h.vtep == ip)) {
                    Some(h) => LaneId::Vx(h),
                    None => LaneId::Vx(host as usize),
                }
            }
            Loc::Endpoint { ep } => {
                let (h, p) = self.ep_port[ep as usize];
                LaneId::Port(h, p)
            }
        };
        self.index(ids, id)
    }

    /// The lane where a frame at `at` arrives.
    fn receiver(&self, ids: &[LaneId], at: Loc) -> usize {
        let id = match at {
            Loc::Bridge { host, port } => LaneId::Port(host as usize, port),
            Loc::VxlanTx { host } | Loc::Underlay { host } => LaneId::Vx(host as usize),
            Loc::Endpoint { ep } => LaneId::Ep(ep as usize),
        };
        self.index(ids, id)
    }

    /// The marks of every table that differs between `a` and `b`.
    fn table_marks(&self, ids: &[LaneId], a: &L2State, b: &L2State) -> Vec<Mark> {
        let mut marks = Vec::new();
        for (h, (x, y)) in a.hosts.iter().zip(&b.hosts).enumerate() {
            let macs: BTreeSet<_> = x.br.fdb.keys().chain(y.br.fdb.keys()).collect();
            for mac in macs {
                let (old, new) = (x.br.fdb.get(mac), y.br.fdb.get(mac));
                if old.is_some_and(|e| e.local) || new.is_some_and(|e| e.local) {
                    continue;
                }
                let (lane, text) = match (old.map(|e| e.port), new.map(|e| e.port)) {
                    (None, Some(p)) => (p, format!("fdb: {} learned here", self.who(*mac))),
                    (Some(o), Some(p)) if o != p => (
                        p,
                        format!(
                            "fdb: {} moved here from {}",
                            self.who(*mac),
                            self.port_name(h, o)
                        ),
                    ),
                    (Some(o), None) => (o, format!("fdb: {} aged out", self.who(*mac))),
                    _ => continue,
                };
                marks.push(Mark {
                    lane: self.index(ids, LaneId::Port(h, lane)),
                    text,
                    change: true,
                });
            }
            let vx = self.index(ids, LaneId::Vx(h));
            let macs: BTreeSet<_> = x.vx.fdb.keys().chain(y.vx.fdb.keys()).collect();
            for mac in macs {
                let (old, new) = (x.vx.fdb.get(mac), y.vx.fdb.get(mac));
                let same =
                    |o: &VxFdb, n: &VxFdb| o.remote == n.remote && o.permanent == n.permanent;
                let text = match (old, new) {
                    (o, Some(n)) if o.is_none_or(|o| !same(o, n)) => format!(
                        "fdb: {} -> {}{}",
                        self.who(*mac),
                        n.remote,
                        if n.permanent {
                            " permanent"
                        } else {
                            " learned"
                        }
                    ),
                    (Some(_), None) => format!("fdb: {} gone", self.who(*mac)),
                    _ => continue,
                };
                marks.push(Mark {
                    lane: vx,
                    text,
                    change: true,
                });
            }
            let ips: BTreeSet<_> = x.vx.neigh.keys().chain(y.vx.neigh.keys()).collect();
            for ip in ips {
                let text = match (x.vx.neigh.get(ip), y.vx.neigh.get(ip)) {
                    (o, Some(n)) if o != Some(n) => format!(
                        "neigh: {ip} -> {}{}",
                        self.who(n.mac),
                        if n.permanent() {
                            " permanent".to_string()
                        } else {
                            format!(" {}", n.nud.name().to_ascii_lowercase())
                        }
                    ),
                    (Some(_), None) => format!("neigh: {ip} deleted"),
                    _ => continue,
                };
                marks.push(Mark {
                    lane: vx,
                    text,
                    change: true,
                });
            }
        }
        for (e, (x, y)) in a.eps.iter().zip(&b.eps).enumerate() {
            for (ip, entry) in &y.ep.arp {
                let old = x.ep.arp.get(ip).and_then(|o| o.mac);
                if let Some(mac) = entry.mac.filter(|m| old != Some(*m)) {
                    marks.push(Mark {
                        lane: self.index(ids, LaneId::Ep(e)),
                        text: format!("arp: {ip} -> {}", self.who(mac)),
                        change: false,
                    });
                }
            }
        }
        marks
    }

    /// The frames `b` has in flight that `a` had not (multisets).
    fn new_frames<'s>(a: &L2State, delivered: Option<usize>, b: &'s L2State) -> Vec<&'s InFlight> {
        let mut old: Vec<&InFlight> = a
            .inflight
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != delivered)
            .map(|(_, f)| f)
            .collect();
        let mut out = Vec::new();
        for f in &b.inflight {
            match old.iter().position(|o| *o == f) {
                Some(i) => {
                    old.remove(i);
                }
                None => out.push(f),
            }
        }
        out
    }

    /// A step as the diagram draws it ([`Model::sketch`]).
    pub(super) fn diagram_step(&self, a: &L2State, action: &L2Action, b: &L2State) -> Sketch {
        let ids = self.lane_ids();
        let marks = self.table_marks(&ids, a, b);
        match *action {
            L2Action::Deliver(i) => {
                let item = &a.inflight[i as usize];
                let to = self.receiver(&ids, item.at);
                let (label, kind) = brief(&item.bytes);
                let mut went: Vec<String> = Self::new_frames(a, Some(i as usize), b)
                    .iter()
                    .map(|f| {
                        let lane = self.receiver(&ids, f.at);
                        if lane == to {
                            // A reply received back on the same lane
                            // (the proxy's answer, the local bypass).
                            "back in on br0".to_string()
                        } else {
                            self.lane(ids[lane]).title
                        }
                    })
                    .collect();
                went.dedup();
                let driver_grew = a
                    .hosts
                    .iter()
                    .zip(&b.hosts)
                    .any(|(x, y)| y.driver.len() > x.driver.len());
                if driver_grew {
                    went.push("miss to the driver".to_string());
                }
                let what = if went.is_empty() {
                    match item.at {
                        Loc::Endpoint { .. } => "received".to_string(),
                        _ => "dropped or consumed".to_string(),
                    }
                } else {
                    format!("-> {}", went.join(", "))
                };
                Sketch {
                    lane: Some(to),
                    what,
                    arrows: vec![Arrow {
                        from: self.sender(&ids, item.at, &item.bytes),
                        to,
                        label,
                        kind,
                    }],
                    marks,
                }
            }
            L2Action::Script(e) => {
                let e = e as usize;
                let step = self.spec.containers[e].script[a.eps[e].pc as usize];
                let what = self.describe_step(step);
                let lane = match step {
                    // Time passes for the whole system.
                    ScriptStep::Wait(_) => None,
                    _ => Some(self.index(&ids, LaneId::Ep(e))),
                };
                let what = match step {
                    ScriptStep::Wait(_) => format!(
                        "{}: {what}, now {} s on the simulated clock",
                        self.eps[e].name, b.now_s
                    ),
                    _ => what,
                };
                Sketch {
                    lane,
                    what,
                    arrows: Vec::new(),
                    marks,
                }
            }
            L2Action::Driver(h) => {
                let h = h as usize;
                let ctl = self.index(&ids, LaneId::Ctl(h));
                let vx = self.index(&ids, LaneId::Vx(h));
                let op = a.hosts[h].driver[0];
                let (arrow, what) = match op {
                    DriverOp::Miss(m) => {
                        let programmed = b.hosts[h].driver.len() >= a.hosts[h].driver.len();
                        (
                            Arrow {
                                from: vx,
                                to: ctl,
                                label: m.to_string(),
                                kind: ArrowKind::Call,
                            },
                            if programmed {
                                "watchMiss: resolvePeer, peerAdd".to_string()
                            } else {
                                "watchMiss: nothing programmed".to_string()
                            },
                        )
                    }
                    DriverOp::NeighAdd(ip, mac) => (
                        Arrow {
                            from: ctl,
                            to: vx,
                            label: format!("neigh replace {ip} lladdr {mac}"),
                            kind: ArrowKind::Call,
                        },
                        "peerAdd: AddNeighbor".to_string(),
                    ),
                    DriverOp::FdbAdd(mac, remote) => (
                        Arrow {
                            from: ctl,
                            to: vx,
                            label: format!(
                                "fdb replace {mac} dst {remote}{}",
                                if remote == self.spec.hosts[h].vtep {
                                    " (own VTEP)"
                                } else {
                                    ""
                                }
                            ),
                            kind: ArrowKind::Call,
                        },
                        "peerAdd: AddNeighbor(AF_BRIDGE)".to_string(),
                    ),
                };
                Sketch {
                    lane: Some(ctl),
                    what,
                    arrows: vec![arrow],
                    marks,
                }
            }
            L2Action::Tick => Sketch {
                lane: None,
                what: format!(
                    "clock: now {}",
                    fmt_ms(b.time.as_ref().map_or(0, |t| t.now_ms))
                ),
                arrows: Vec::new(),
                marks,
            },
            L2Action::Release(i) => {
                let ep = a
                    .time
                    .as_ref()
                    .map_or(0, |t| t.held[i as usize].ep as usize);
                Sketch {
                    lane: Some(self.index(&ids, LaneId::Ep(ep))),
                    what: "its late answer leaves".to_string(),
                    arrows: Vec::new(),
                    marks,
                }
            }
            L2Action::Cleanup(h) => {
                let h = h as usize;
                let ctl = self.index(&ids, LaneId::Ctl(h));
                Sketch {
                    lane: Some(ctl),
                    what: "operator: delete local containers' ARP entries".to_string(),
                    arrows: vec![Arrow {
                        from: ctl,
                        to: self.index(&ids, LaneId::Vx(h)),
                        label: "ip neigh del ... dev vxlan1".to_string(),
                        kind: ArrowKind::Call,
                    }],
                    marks,
                }
            }
        }
    }
}

/// A frame in a few words, as the text trace names it: `who-has 10.0.0.3
/// tell 10.0.0.2`, `10.0.0.3 is-at 02:42:0a:00:00:03`, `data #11
/// 10.0.0.2 > 10.0.0.3`, and an underlay frame as `vxlan 256: ` and its
/// inner frame.
pub fn brief(bytes: &[u8]) -> (String, ArrowKind) {
    let Ok(frame) = EthernetFrame::new_checked(bytes) else {
        return (
            format!("malformed ({} bytes)", bytes.len()),
            ArrowKind::Data,
        );
    };
    match frame.ethertype() {
        EtherType::Arp => {
            let arp = ArpPacket::new_checked(frame.payload())
                .ok()
                .and_then(|p| ArpRepr::parse(&p).ok());
            let label = match arp {
                Some(a) => match a.operation {
                    ArpOperation::Request if a.source_protocol_addr == a.target_protocol_addr => {
                        format!("gratuitous ARP {}", a.source_protocol_addr)
                    }
                    ArpOperation::Request => format!(
                        "who-has {} tell {}",
                        a.target_protocol_addr, a.source_protocol_addr
                    ),
                    ArpOperation::Reply => format!(
                        "{} is-at {}",
                        a.source_protocol_addr, a.source_hardware_addr
                    ),
                    ArpOperation::Unknown(op) => format!("ARP op {op}"),
                },
                None => "malformed ARP".to_string(),
            };
            (label, ArrowKind::Arp)
        }
        EtherType::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(frame.payload()) else {
                return ("malformed IPv4".to_string(), ArrowKind::Data);
            };
            let udp = UdpPacket::new_checked(ip.payload()).ok();
            if let Some(vx) = udp
                .filter(|u| u.dst_port() == VXLAN_UDP_PORT)
                .and_then(|u| VxlanPacket::new_checked(u.payload()).ok())
            {
                let (inner, _) = brief(vx.payload());
                return (format!("vxlan {}: {inner}", vx.vni()), ArrowKind::Underlay);
            }
            let label = match data_id(frame.payload(), ip.dst_addr()) {
                Some(id) => format!("data #{id} {} > {}", ip.src_addr(), ip.dst_addr()),
                None => format!("IPv4 {} > {}", ip.src_addr(), ip.dst_addr()),
            };
            (label, ArrowKind::Data)
        }
        other => (format!("{other}"), ArrowKind::Data),
    }
}
