//! The Linux bridge (`net/bridge/`): ports, FDB learning on receive,
//! forwarding, flooding, ageing, and `neigh_suppress`.
//!
//! Upstream (GPL-2.0, behaviour rewritten from the source and its docs):
//! - [`Bridge::receive`] stands for `br_handle_frame_finish`: learning via
//!   `br_fdb_update` when the ingress port has `learning` on, then
//!   `br_do_proxy_suppress_arp` for ARP when some port has
//!   `neigh_suppress` (`br_do_proxy_suppress_arp`, net/bridge/br_arp_nd_proxy.c:
//!   a loopback or multicast target is left alone; an ARP packet of *any*
//!   op but the RARP ones whose sender IP is 0.0.0.0 or its own target —
//!   probes, gratuitous requests and gratuitous replies — is marked
//!   `proxyarp_replied` so it is not flooded to suppress ports; a request
//!   for the bridge's own IP likewise; a request whose target is in the
//!   bridge's neighbour table and whose MAC sits behind a suppress port is
//!   answered by `br_arp_send`), then forwarding: known unicast to the entry's port
//!   unless that is the ingress port (`should_deliver` refuses it: the
//!   frame is dropped), unknown unicast and broadcast flooded (`br_flood`)
//!   to every port but the ingress one (and not to `neigh_suppress` ports
//!   once the bridge proxy-replied);
//! - `br_fdb_update`: an existing entry is *moved* to the receiving port
//!   unless it is the bridge's own (local) entry; user-added static
//!   entries move too (only local and sticky do not) — the "last word";
//! - [`Bridge::age`] stands for `br_fdb_cleanup`: dynamic entries unused
//!   for `ageing_time` (300 s by default) are removed.
//!
//! Not modelled: VLANs, STP port states (every port forwards), hairpin
//! mode, multicast snooping, sticky entries, `BR_PROXYARP`, and frames
//! addressed to the bridge device itself (they go to its own IP stack and
//! end there).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::wire::{
    build, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
};

/// Default `ageing_time`, seconds.
pub const AGEING_TIME_S: u32 = 300;

/// One FDB entry of a bridge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FdbEntry {
    /// The port the MAC was learned on (index into the bridge's ports).
    pub port: u8,
    /// The bridge's own address: never moves, never ages.
    pub local: bool,
    /// Simulated time of the last update, seconds.
    pub updated_s: u32,
}

/// Per-port flags that matter here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortConfig {
    /// The port's name (`veth-A`, `vxlan1`).
    pub name: String,
    /// `learning` (on by default).
    pub learning: bool,
    /// `neigh_suppress` (off by default).
    pub neigh_suppress: bool,
}

/// A bridge's static configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BridgeConfig {
    /// The bridge device's own MAC (a local FDB entry).
    pub mac: EthernetAddress,
    /// Its IPv4 address (the overlay subnet's gateway).
    pub ip: Ipv4Addr,
    /// The ports, by index.
    pub ports: Vec<PortConfig>,
    /// `ageing_time`, seconds.
    pub ageing_time_s: u32,
}

/// A bridge's dynamic state: its FDB and its own neighbour table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Bridge {
    /// MAC → entry.
    pub fdb: BTreeMap<EthernetAddress, FdbEntry>,
    /// The bridge device's own ARP table (what `neigh_suppress` answers
    /// from): IP → MAC. Empty unless a scenario fills it.
    pub neigh: BTreeMap<Ipv4Addr, EthernetAddress>,
}

/// What one received frame did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Frames leaving through ports: (port, bytes).
    pub out: Vec<(u8, Vec<u8>)>,
    /// What happened, for the trace.
    pub notes: Vec<String>,
    /// The source MAC moved from one port to another: (mac, from, to).
    pub moved: Option<(EthernetAddress, u8, u8)>,
    /// A unicast frame was flooded because its destination is unknown.
    pub unknown_unicast_flood: bool,
    /// Dropped because the destination sits behind the ingress port.
    pub dropped_same_port: bool,
}

impl Bridge {
    /// A bridge with only its own local entry.
    pub fn new(config: &BridgeConfig) -> Bridge {
        let mut fdb = BTreeMap::new();
        fdb.insert(
            config.mac,
            FdbEntry {
                port: u8::MAX,
                local: true,
                updated_s: 0,
            },
        );
        Bridge {
            fdb,
            neigh: BTreeMap::new(),
        }
    }

    /// `br_handle_frame_finish` for `frame` received on `port` at `now_s`.
    pub fn receive(
        &mut self,
        config: &BridgeConfig,
        port: u8,
        frame: &[u8],
        now_s: u32,
    ) -> Outcome {
        let mut o = Outcome::default();
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            o.notes.push("malformed frame dropped".into());
            return o;
        };
        let (src, dst) = (eth.src_addr(), eth.dst_addr());
        let pname = |p: u8| -> &str {
            if p == u8::MAX {
                "br0"
            } else {
                config.ports[p as usize].name.as_str()
            }
        };
        // Learning (br_fdb_update).
        if config.ports[port as usize].learning && src.is_unicast() {
            match self.fdb.get_mut(&src) {
                Some(e) if e.local => {
                    o.notes
                        .push(format!("fdb: {src} is the bridge's own address: not moved"));
                }
                Some(e) => {
                    if e.port != port {
                        o.notes.push(format!(
                            "fdb: {src} moved {} -> {}",
                            pname(e.port),
                            pname(port)
                        ));
                        o.moved = Some((src, e.port, port));
                        e.port = port;
                    }
                    e.updated_s = now_s;
                }
                None => {
                    self.fdb.insert(
                        src,
                        FdbEntry {
                            port,
                            local: false,
                            updated_s: now_s,
                        },
                    );
                    o.notes
                        .push(format!("fdb: {src} learned on {}", pname(port)));
                }
            }
        }
        // neigh_suppress (br_do_proxy_suppress_arp), for ARP only.
        let suppress_enabled = config.ports.iter().any(|p| p.neigh_suppress);
        let mut proxyarp_replied = false;
        if suppress_enabled
            && eth.ethertype() == EtherType::Arp
            && !config.ports[port as usize].neigh_suppress
        {
            if let Some(arp) = ArpPacket::new_checked(eth.payload())
                .ok()
                .and_then(|p| ArpRepr::parse(&p).ok())
            {
                let (sip, tip) = (arp.source_protocol_addr, arp.target_protocol_addr);
                let is_request = arp.operation == ArpOperation::Request;
                if tip.is_loopback() || tip.is_multicast() {
                    // br_do_proxy_suppress_arp returns before anything else.
                } else if sip.is_unspecified() || sip == tip {
                    // Every ARP op (not only requests: gratuitous *replies*
                    // too) with a zero or self sender is kept from the
                    // suppress ports; only RARP ops are exempt.
                    proxyarp_replied = true;
                    o.notes.push(
                        "neigh_suppress: gratuitous/probe ARP not flooded to suppress ports".into(),
                    );
                } else if is_request && dst.is_unicast() {
                    // Newer kernels leave unicast requests alone.
                } else if is_request && tip == config.ip {
                    proxyarp_replied = true;
                } else if is_request {
                    if let Some(&mac) = self.neigh.get(&tip) {
                        if let Some(f) = self.fdb.get(&mac) {
                            let suppress_port =
                                f.port != u8::MAX && config.ports[f.port as usize].neigh_suppress;
                            if suppress_port {
                                // br_arp_send out of the ingress port.
                                let reply =
                                    build::arp_reply(mac, tip, arp.source_hardware_addr, sip);
                                o.notes.push(format!(
                                    "neigh_suppress: br0 answers {tip} is-at {mac} from its neighbour table"
                                ));
                                o.out.push((port, reply));
                            }
                            proxyarp_replied = true;
                        }
                    }
                }
            }
        }
        // Forwarding.
        let flood = |o: &mut Outcome, why: &str| {
            let mut to = Vec::new();
            for (i, p) in config.ports.iter().enumerate() {
                let i = i as u8;
                if i == port || (proxyarp_replied && p.neigh_suppress) {
                    continue;
                }
                o.out.push((i, frame.to_vec()));
                to.push(p.name.as_str());
            }
            o.notes.push(format!(
                "{why}: flood -> {}",
                if to.is_empty() {
                    "nothing".to_string()
                } else {
                    to.join(", ")
                }
            ));
        };
        if dst.is_multicast() {
            flood(&mut o, "broadcast");
        } else {
            match self.fdb.get(&dst) {
                Some(e) if e.local => o.notes.push("to the bridge itself: local delivery".into()),
                Some(e) if e.port == port => {
                    o.dropped_same_port = true;
                    o.notes.push(format!(
                        "{dst} is behind {}, the ingress port: dropped",
                        pname(port)
                    ));
                }
                Some(e) => {
                    o.out.push((e.port, frame.to_vec()));
                    o.notes.push(format!("forward -> {}", pname(e.port)));
                }
                None => {
                    o.unknown_unicast_flood = true;
                    flood(&mut o, &format!("{dst} unknown"));
                }
            }
        }
        o
    }

    /// `br_fdb_cleanup` at `now_s`: drops dynamic entries not updated for
    /// `ageing_time`. Returns the MACs removed.
    pub fn age(&mut self, config: &BridgeConfig, now_s: u32) -> Vec<EthernetAddress> {
        let expired: Vec<EthernetAddress> = self
            .fdb
            .iter()
            .filter(|(_, e)| !e.local && now_s.saturating_sub(e.updated_s) >= config.ageing_time_s)
            .map(|(m, _)| *m)
            .collect();
        for m in &expired {
            self.fdb.remove(m);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> EthernetAddress {
        EthernetAddress([2, 0x42, 10, 0, 0, last])
    }

    fn config() -> BridgeConfig {
        BridgeConfig {
            mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ip: "10.0.0.1".parse().unwrap(),
            ports: ["vxlan1", "veth-A", "veth-B"]
                .iter()
                .map(|n| PortConfig {
                    name: n.to_string(),
                    learning: true,
                    neigh_suppress: false,
                })
                .collect(),
            ageing_time_s: AGEING_TIME_S,
        }
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    #[test]
    fn learns_floods_forwards_and_the_last_word_moves_the_entry() {
        let c = config();
        let mut b = Bridge::new(&c);
        let req = build::arp_request(mac(2), ip(2), ip(3));
        let o = b.receive(&c, 1, &req, 0);
        assert_eq!(b.fdb[&mac(2)].port, 1);
        let ports: Vec<u8> = o.out.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            ports,
            vec![0, 2],
            "broadcast floods to all but the ingress port"
        );
        // B's real reply, then the proxied one on vxlan1: the last word.
        let reply = build::arp_reply(mac(3), ip(3), mac(2), ip(2));
        let o = b.receive(&c, 2, &reply, 1);
        assert_eq!(o.out, vec![(1, reply.clone())]);
        let o = b.receive(&c, 0, &reply, 2);
        assert_eq!(o.moved, Some((mac(3), 2, 0)));
        assert_eq!(b.fdb[&mac(3)].port, 0);
        // A's next frame to B goes to vxlan1, never to veth-B.
        let data = build::unicast_ip(mac(2), mac(3), ip(2), ip(3), b"x");
        let o = b.receive(&c, 1, &data, 3);
        assert_eq!(o.out.len(), 1);
        assert_eq!(o.out[0].0, 0);
        // Coming back in on vxlan1 it is dropped: ingress = egress.
        let o = b.receive(&c, 0, &data, 4);
        assert!(o.dropped_same_port && o.out.is_empty());
        assert_eq!(b.fdb[&mac(2)].port, 0, "A's MAC moved to vxlan1 too");
    }

    #[test]
    fn learning_off_keeps_the_entry_and_unknown_unicast_floods() {
        let mut c = config();
        c.ports[0].learning = false;
        let mut b = Bridge::new(&c);
        let reply = build::arp_reply(mac(3), ip(3), mac(2), ip(2));
        b.receive(&c, 2, &reply, 0);
        b.receive(&c, 0, &reply, 1);
        assert_eq!(b.fdb[&mac(3)].port, 2);
        let to_remote = build::unicast_ip(mac(2), mac(9), ip(2), ip(9), b"x");
        let o = b.receive(&c, 1, &to_remote, 2);
        assert!(o.unknown_unicast_flood);
        assert_eq!(o.out.len(), 2);
    }

    #[test]
    fn local_entries_never_move_and_dynamic_ones_age() {
        let c = config();
        let mut b = Bridge::new(&c);
        let spoof = build::arp_reply(c.mac, ip(1), mac(2), ip(2));
        b.receive(&c, 1, &spoof, 0);
        assert!(b.fdb[&c.mac].local);
        b.receive(&c, 1, &build::arp_request(mac(2), ip(2), ip(3)), 10);
        assert!(b.age(&c, 309).is_empty());
        assert_eq!(b.age(&c, 310), vec![mac(2)]);
        assert!(b.fdb.contains_key(&c.mac));
    }

    #[test]
    fn neigh_suppress_answers_only_from_the_bridge_neighbour_table() {
        let mut c = config();
        c.ports[0].neigh_suppress = true;
        let mut b = Bridge::new(&c);
        let req = build::arp_request(mac(2), ip(2), ip(3));
        // Empty neighbour table: flooded as usual, vxlan1 included.
        let o = b.receive(&c, 1, &req, 0);
        assert_eq!(o.out.len(), 2);
        // With an entry whose MAC sits behind a suppress port, the bridge
        // answers and does not flood to suppress ports.
        b.neigh.insert(ip(3), mac(3));
        b.fdb.insert(
            mac(3),
            FdbEntry {
                port: 0,
                local: false,
                updated_s: 0,
            },
        );
        let o = b.receive(&c, 1, &req, 1);
        let to: Vec<u8> = o.out.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            to,
            vec![1, 2],
            "reply out of the ingress port, flood to veth-B only"
        );
    }

    #[test]
    fn neigh_suppress_keeps_gratuitous_replies_from_suppress_ports_too() {
        let mut c = config();
        c.ports[0].neigh_suppress = true;
        let mut b = Bridge::new(&c);
        // A gratuitous ARP *reply* (sender = target = 10.0.0.2), broadcast:
        // br_do_proxy_suppress_arp marks it for every ARP op but RARP.
        let garp_reply = build::arp_reply(mac(2), ip(2), EthernetAddress::BROADCAST, ip(2));
        let o = b.receive(&c, 1, &garp_reply, 0);
        let to: Vec<u8> = o.out.iter().map(|(p, _)| *p).collect();
        assert_eq!(to, vec![2], "flooded to veth-B only, not to vxlan1");
        // The gratuitous request likewise.
        let o = b.receive(&c, 1, &build::gratuitous_arp(mac(2), ip(2)), 1);
        let to: Vec<u8> = o.out.iter().map(|(p, _)| *p).collect();
        assert_eq!(to, vec![2]);
    }
}
