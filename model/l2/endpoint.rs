//! A container's network stack as seen from its `eth0`: the ARP cache and
//! ARP responder of `net/ipv4/arp.c` (`arp_process`) and the neighbour
//! states of `net/core/neighbour.c` that matter here.
//!
//! What is modelled:
//! - neighbour states `INCOMPLETE` (broadcast request sent), `REACHABLE`
//!   (a reply confirmed it), `STALE` (time passed, or learned from a
//!   request), `PROBE` (unicast request sent to the cached MAC);
//! - `arp_process`: a request for our address is answered (unless the
//!   scenario turned the responder off, `arp_responder = false`: the
//!   container still sends requests and learns from what it receives — a
//!   model switch with no exact Linux equivalent (`arp_ignore=8` also
//!   stops the answers but skips learning the sender too); it is *not*
//!   IFF_NOARP, below) and creates or updates
//!   a `STALE` entry for its sender; a reply updates an existing entry to
//!   `REACHABLE`; a gratuitous ARP updates an existing entry only
//!   (`arp_accept=0`); frames for another MAC are dropped by the stack
//!   (`PACKET_OTHERHOST`);
//! - the count of replies received since the last request per target,
//!   which `l2.single_arp_reply` checks;
//! - pinned entries, `PERMANENT` and `NOARP` (a scenario's `eth0_neigh`):
//!   `neigh_update` without `NEIGH_UPDATE_F_ADMIN` never changes them, and
//!   resolving a pinned peer sends nothing;
//! - IFF_NOARP (`ip link set eth0 arp off`, a scenario's `arp = false` and
//!   `arp off`/`arp on` steps): `arp_rcv` consumes every ARP packet
//!   (net/ipv4/arp.c, `dev->flags & IFF_NOARP`), a missing entry is
//!   created `NOARP` with the device's own MAC (`arp_constructor`), and a
//!   change of the flag flushes every entry of the device, permanent ones
//!   included (`arp_netdev_event` → `neigh_changeaddr` →
//!   `neigh_flush_dev(.., skip_perm = false)`). Upstream: torvalds/linux,
//!   net/ipv4/arp.c and net/core/neighbour.c, GPL-2.0, behaviour
//!   rewritten; all three checked on kernel 6.18 by tests/pinned_kernel.rs.
//!
//! Not modelled: `locktime` (two replies with *different* MACs within a
//! second), retransmission timers and `ucast_solicit`/`mcast_solicit`
//! counts (a scenario's script says when a container resolves or probes),
//! garbage collection other than the script's `forget`, and every protocol
//! above IPv4 except the model's UDP data frames.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::wire::{
    build, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, Ipv4Packet,
    Ipv4Repr, UdpPacket,
};

/// Marks the payload of a data frame; the two bytes after it are its id.
pub const DATA_MAGIC: &[u8] = b"netrace-data:";

/// A neighbour entry's state (`NUD_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NudState {
    /// A broadcast request is out, no answer yet.
    Incomplete,
    /// Confirmed by a reply.
    Reachable,
    /// Usable but unconfirmed.
    Stale,
    /// A unicast request to the cached MAC is out.
    Probe,
    /// Set by the administrator (`ip neigh replace ... nud permanent`):
    /// never changed by what the container receives, never aged or
    /// garbage-collected.
    Permanent,
    /// No resolution needed (`nud noarp`, or an entry `arp_constructor`
    /// creates on an IFF_NOARP device, with the device's own MAC): as
    /// permanent for everything the model does.
    Noarp,
}

impl NudState {
    /// The `ip neigh` spelling.
    pub fn name(self) -> &'static str {
        match self {
            NudState::Incomplete => "INCOMPLETE",
            NudState::Reachable => "REACHABLE",
            NudState::Stale => "STALE",
            NudState::Probe => "PROBE",
            NudState::Permanent => "PERMANENT",
            NudState::Noarp => "NOARP",
        }
    }

    /// `nud permanent` or `nud noarp`: `neigh_update` without
    /// `NEIGH_UPDATE_F_ADMIN` leaves such an entry alone.
    pub fn is_pinned(self) -> bool {
        matches!(self, NudState::Permanent | NudState::Noarp)
    }
}

/// One ARP cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArpEntry {
    /// The cached MAC (none while incomplete).
    pub mac: Option<EthernetAddress>,
    /// Its state.
    pub state: NudState,
}

/// A container's static configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointConfig {
    /// Its name in the scenario.
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its MAC (Docker's `02:42:` + IP).
    pub mac: EthernetAddress,
    /// Whether it answers ARP requests.
    pub arp_responder: bool,
}

/// A container's dynamic state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Endpoint {
    /// The ARP cache.
    pub arp: BTreeMap<Ipv4Addr, ArpEntry>,
    /// Replies received per target since the last request for it.
    pub replies: BTreeMap<Ipv4Addr, u8>,
    /// Ids of the data frames it received.
    pub received: Vec<u16>,
    /// `eth0` has IFF_NOARP (`ip link set eth0 arp off`).
    pub noarp: bool,
}

/// What receiving a frame did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Frames the container sends in response.
    pub out: Vec<Vec<u8>>,
    /// What happened, for the trace.
    pub notes: Vec<String>,
}

impl Endpoint {
    /// What resolving `target` needs without sending anything: `Some`
    /// when the entry is pinned (`PERMANENT`/`NOARP`: `__neigh_event_send`
    /// sends nothing for a connected entry) or when `eth0` is IFF_NOARP,
    /// where `arp_constructor` makes a missing entry `NOARP` with the
    /// device's own MAC (checked on the kernel: a datagram to a peer then
    /// leaves with its sender's MAC as destination). `None`: a request
    /// must be broadcast ([`Endpoint::resolve`]).
    pub fn resolve_silently(&mut self, cfg: &EndpointConfig, target: Ipv4Addr) -> Option<String> {
        if let Some(e) = self.arp.get(&target) {
            if e.state.is_pinned() {
                return Some(format!(
                    "{}: {target} is {} at {}: nothing sent",
                    cfg.name,
                    e.state.name(),
                    e.mac.map_or("-".to_string(), |m| m.to_string())
                ));
            }
        }
        if self.noarp {
            if let Some(mac) = self.arp.get(&target).and_then(|e| e.mac) {
                // An entry programmed on the NOARP device is used as it is.
                return Some(format!(
                    "{}: eth0 is NOARP: {target} is cached at {mac}, nothing sent",
                    cfg.name
                ));
            }
            self.arp.insert(
                target,
                ArpEntry {
                    mac: Some(cfg.mac),
                    state: NudState::Noarp,
                },
            );
            return Some(format!(
                "{}: eth0 is NOARP: {target} gets a NOARP entry with its own MAC {}, nothing sent",
                cfg.name, cfg.mac
            ));
        }
        None
    }

    /// `ip link set eth0 arp off|on`: the flag flips and
    /// `arp_netdev_event` (NETDEV_CHANGE with IFF_NOARP in
    /// `flags_changed`) calls `neigh_changeaddr`, which flushes every
    /// entry of the device, permanent ones included (checked on the
    /// kernel both ways).
    pub fn set_arp(&mut self, on: bool) {
        if self.noarp != on {
            return;
        }
        self.noarp = !on;
        self.arp.clear();
    }

    /// Sends a broadcast ARP request for `target` (entry `INCOMPLETE`).
    pub fn resolve(&mut self, cfg: &EndpointConfig, target: Ipv4Addr) -> Vec<u8> {
        self.arp.insert(
            target,
            ArpEntry {
                mac: self.arp.get(&target).and_then(|e| e.mac),
                state: NudState::Incomplete,
            },
        );
        self.replies.insert(target, 0);
        build::arp_request(cfg.mac, cfg.ip, target)
    }

    /// Sends a unicast ARP request to the cached MAC (entry `PROBE`);
    /// `None` when nothing is cached.
    pub fn probe(&mut self, cfg: &EndpointConfig, target: Ipv4Addr) -> Option<Vec<u8>> {
        let entry = self.arp.get_mut(&target)?;
        let mac = entry.mac?;
        if entry.state.is_pinned() || self.noarp {
            return None;
        }
        entry.state = NudState::Probe;
        self.replies.insert(target, 0);
        let mut frame = build::arp_request(cfg.mac, cfg.ip, target);
        frame[0..6].copy_from_slice(mac.as_bytes());
        Some(frame)
    }

    /// A data frame to `target` with `id`, to the cached MAC; `None` when
    /// nothing is cached.
    pub fn send(&self, cfg: &EndpointConfig, target: Ipv4Addr, id: u16) -> Option<Vec<u8>> {
        let mac = self.arp.get(&target)?.mac?;
        let mut payload = DATA_MAGIC.to_vec();
        payload.extend_from_slice(&id.to_be_bytes());
        Some(build::unicast_ip(cfg.mac, mac, cfg.ip, target, &payload))
    }

    /// True when `target` is cached and confirmed (or pinned).
    pub fn is_reachable(&self, target: Ipv4Addr) -> bool {
        self.arp.get(&target).is_some_and(|e| {
            matches!(
                e.state,
                NudState::Reachable | NudState::Permanent | NudState::Noarp
            )
        })
    }

    /// Time passed beyond `base_reachable_time`: confirmed entries go stale.
    pub fn age(&mut self) {
        for e in self.arp.values_mut() {
            if e.state == NudState::Reachable {
                e.state = NudState::Stale;
            }
        }
    }

    /// `arp_process` and IPv4 receive for a frame arriving on `eth0`.
    pub fn receive(&mut self, cfg: &EndpointConfig, frame: &[u8]) -> Received {
        let mut r = Received::default();
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            r.notes
                .push(format!("{}: malformed frame dropped", cfg.name));
            return r;
        };
        let dst = eth.dst_addr();
        if dst != cfg.mac && !dst.is_broadcast() {
            r.notes.push(format!(
                "{}: frame for {dst}, not us: dropped by the stack",
                cfg.name
            ));
            return r;
        }
        match eth.ethertype() {
            EtherType::Arp if self.noarp => {
                // arp_rcv: `dev->flags & IFF_NOARP` consumes every ARP
                // packet before arp_process sees it.
                r.notes.push(format!(
                    "{}: eth0 is NOARP: ARP ignored (arp_rcv)",
                    cfg.name
                ));
            }
            EtherType::Arp => {
                let Some(arp) = ArpPacket::new_checked(eth.payload())
                    .ok()
                    .and_then(|p| ArpRepr::parse(&p).ok())
                else {
                    return r;
                };
                self.arp_process(cfg, &arp, &mut r);
            }
            EtherType::Ipv4 => {
                if let Some(id) = data_id(eth.payload(), cfg.ip) {
                    self.received.push(id);
                    r.notes
                        .push(format!("{}: data frame #{id} received", cfg.name));
                }
            }
            _ => {}
        }
        r
    }

    fn arp_process(&mut self, cfg: &EndpointConfig, arp: &ArpRepr, r: &mut Received) {
        let (sip, sha, tip) = (
            arp.source_protocol_addr,
            arp.source_hardware_addr,
            arp.target_protocol_addr,
        );
        match arp.operation {
            ArpOperation::Request if tip == cfg.ip && sip != cfg.ip => {
                if cfg.arp_responder {
                    r.out.push(build::arp_reply(cfg.mac, cfg.ip, sha, sip));
                    r.notes.push(format!(
                        "{}: answers {} is-at {}",
                        cfg.name, cfg.ip, cfg.mac
                    ));
                } else {
                    r.notes
                        .push(format!("{}: ARP responder off: no answer", cfg.name));
                }
                // neigh_event_ns: the sender is learned as STALE.
                let e = self.arp.entry(sip).or_insert(ArpEntry {
                    mac: Some(sha),
                    state: NudState::Stale,
                });
                if e.mac != Some(sha) && !e.state.is_pinned() {
                    e.mac = Some(sha);
                    e.state = NudState::Stale;
                }
            }
            ArpOperation::Request if sip == tip => {
                // Gratuitous: update an existing entry only.
                if let Some(e) = self.arp.get_mut(&sip) {
                    if e.mac != Some(sha) && !e.state.is_pinned() {
                        r.notes.push(format!(
                            "{}: gratuitous ARP updates {sip} to {sha}",
                            cfg.name
                        ));
                        e.mac = Some(sha);
                        e.state = NudState::Stale;
                    }
                }
            }
            ArpOperation::Reply if tip == cfg.ip => {
                if let Some(n) = self.replies.get_mut(&sip) {
                    *n = n.saturating_add(1);
                    r.notes.push(format!(
                        "{}: ARP reply #{} for its request who-has {sip} ({sip} is-at {sha})",
                        cfg.name, n
                    ));
                }
                if let Some(e) = self.arp.get_mut(&sip) {
                    if e.state.is_pinned() {
                        r.notes.push(format!(
                            "{}: {sip} is {}: the reply changes nothing",
                            cfg.name,
                            e.state.name()
                        ));
                    } else {
                        e.mac = Some(sha);
                        e.state = NudState::Reachable;
                    }
                } else {
                    r.notes.push(format!(
                        "{}: unsolicited reply ignored (no entry)",
                        cfg.name
                    ));
                }
            }
            _ => {}
        }
    }
}

/// The id of a model data frame addressed to `ip`, if `payload` (an IPv4
/// packet) is one.
pub fn data_id(payload: &[u8], ip: Ipv4Addr) -> Option<u16> {
    let packet = Ipv4Packet::new_checked(payload).ok()?;
    let repr = Ipv4Repr::parse(&packet).ok()?;
    if repr.dst_addr != ip {
        return None;
    }
    let udp = UdpPacket::new_checked(packet.payload()).ok()?;
    let data = udp.payload();
    let rest = data.strip_prefix(DATA_MAGIC)?;
    (rest.len() == 2).then(|| u16::from_be_bytes([rest[0], rest[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(last: u8) -> EndpointConfig {
        let ip = Ipv4Addr::new(10, 0, 0, last);
        EndpointConfig {
            name: format!("c{last}"),
            ip,
            mac: EthernetAddress::docker(ip),
            arp_responder: true,
        }
    }

    #[test]
    fn resolve_answer_count_and_send() {
        let (a, b) = (cfg(2), cfg(3));
        let (mut ea, mut eb) = (Endpoint::default(), Endpoint::default());
        let req = ea.resolve(&a, b.ip);
        let rb = eb.receive(&b, &req);
        assert_eq!(rb.out.len(), 1, "B answers");
        assert_eq!(eb.arp[&a.ip].state, NudState::Stale, "and learns A");
        ea.receive(&a, &rb.out[0]);
        assert!(ea.is_reachable(b.ip));
        assert_eq!(ea.replies[&b.ip], 1);
        ea.receive(&a, &rb.out[0]);
        assert_eq!(
            ea.replies[&b.ip], 2,
            "a second reply to the same request counts"
        );
        let data = ea.send(&a, b.ip, 7).unwrap();
        eb.receive(&b, &data);
        assert_eq!(eb.received, vec![7]);
    }

    #[test]
    fn responder_off_and_frames_for_others() {
        let (a, mut b) = (cfg(2), cfg(3));
        b.arp_responder = false;
        let mut ea = Endpoint::default();
        let mut eb = Endpoint::default();
        let req = ea.resolve(&a, b.ip);
        assert!(eb.receive(&b, &req).out.is_empty());
        let c = cfg(4);
        let mut ec = Endpoint::default();
        ea.arp.insert(
            b.ip,
            ArpEntry {
                mac: Some(b.mac),
                state: NudState::Reachable,
            },
        );
        let data = ea.send(&a, b.ip, 1).unwrap();
        let r = ec.receive(&c, &data);
        assert!(ec.received.is_empty() && r.notes[0].contains("not us"));
    }

    #[test]
    fn probe_is_unicast_and_age_makes_entries_stale() {
        let (a, b) = (cfg(2), cfg(3));
        let mut ea = Endpoint::default();
        assert!(ea.probe(&a, b.ip).is_none());
        ea.arp.insert(
            b.ip,
            ArpEntry {
                mac: Some(b.mac),
                state: NudState::Reachable,
            },
        );
        ea.age();
        assert_eq!(ea.arp[&b.ip].state, NudState::Stale);
        let p = ea.probe(&a, b.ip).unwrap();
        assert_eq!(&p[0..6], b.mac.as_bytes());
        assert_eq!(ea.arp[&b.ip].state, NudState::Probe);
    }
}
