//! The Linux VXLAN device (`drivers/net/vxlan/vxlan_core.c`): its own FDB,
//! its neighbour table, proxy ARP, l2miss/l3miss, learning, local bypass
//! and encapsulation.
//!
//! Upstream (GPL-2.0, behaviour rewritten from the source):
//! - [`VxlanDev::xmit`] stands for `vxlan_xmit`: with `proxy`, *every*
//!   ARP frame goes to `arp_reduce` (replies and non-requests are
//!   consumed); otherwise the destination MAC is looked up in the FDB
//!   (`vxlan_find_mac`), then the all-zeros default entry, else an
//!   `l2miss` is raised (for unicast destinations) and the frame dropped;
//!   each remote is sent by `vxlan_xmit_one`: remote 0.0.0.0 drops, a
//!   remote that is an address of this host takes the local bypass
//!   (`encap_bypass_if_local` → `vxlan_encap_bypass`: snoop the source
//!   into the FDB with remote 127.0.0.1, then receive the frame on this
//!   same device), any other remote is encapsulated (RFC 7348);
//! - `arp_reduce`: requests only; the target IP is looked up in the
//!   device's neighbour table; a connected entry (`NUD_CONNECTED`:
//!   permanent, noarp or reachable) is answered unless vxlan's FDB entry for its MAC has remote 0.0.0.0
//!   ("bridge-local"); the reply (Ethernet source and sender MAC = the
//!   entry's MAC) is *received on the vxlan device* (`netif_rx`); no entry
//!   and `l3miss` → an l3miss notification; an entry that is not
//!   connected (a pre-programmed `stale` one) gets neither a reply nor an
//!   l3miss (checked on the kernel by tests/pinned_kernel.rs). The request
//!   is consumed;
//! - [`VxlanDev::receive`] stands for `vxlan_rcv` on the underlay: with
//!   `learning`, `vxlan_snoop` learns or migrates the source MAC to the
//!   outer source IP, but never moves a permanent entry (the packet is then
//!   dropped);
//! - [`VxlanDev::age`] stands for `vxlan_cleanup` (learned entries only):
//!   an entry expires `ageing` seconds after its last *use*
//!   (`f->used + age_interval`), and `f->used` is stamped by
//!   `vxlan_find_mac` on the transmit path (`vxlan_xmit`, `arp_reduce`);
//!   `vxlan_snoop` from the remote an entry already has returns at once
//!   and refreshes nothing, so traffic received from a peer does not keep
//!   its entry alive — only traffic sent to it does.
//!
//! Not modelled: multicast groups and the default-entry flood list beyond
//! one remote per entry, VNI filtering, GBP/GPE, nexthop objects, route
//! short-circuit (`rsc`), IPv6 and `neigh_reduce`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::neigh::NudState;
use crate::wire::{
    build, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
};

/// The loopback remote `vxlan_encap_bypass` snoops with.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// A VXLAN FDB entry (`bridge fdb ... dev vxlan1 dst IP self`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VxFdb {
    /// The remote VTEP (0.0.0.0 = "bridge-local").
    pub remote: Ipv4Addr,
    /// `permanent` (never aged, never migrated by snooping).
    pub permanent: bool,
    /// Simulated time of the last update (creation or migration), seconds:
    /// the kernel's `f->updated`.
    pub updated_s: u32,
    /// Simulated time of the last use by the transmit path, seconds: the
    /// kernel's `f->used`, which `vxlan_find_mac` stamps on every lookup
    /// and which `vxlan_cleanup` ages by. The model stamps learned entries
    /// only (a permanent entry's use time is never looked at).
    pub used_s: u32,
}

impl VxFdb {
    /// A permanent entry (`bridge fdb replace ... self permanent`) created
    /// at `now_s`.
    pub fn permanent(remote: Ipv4Addr, now_s: u32) -> VxFdb {
        VxFdb {
            remote,
            permanent: true,
            updated_s: now_s,
            used_s: now_s,
        }
    }
}

/// A neighbour entry on the vxlan device (`ip neigh ... dev vxlan1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VxNeigh {
    /// The MAC it resolves to.
    pub mac: EthernetAddress,
    /// Its state: `PERMANENT` (what the driver programs), or what a
    /// scenario pre-programs (`NOARP`, `STALE`). `arp_reduce` answers
    /// only a connected entry (`NUD_CONNECTED`: permanent, noarp,
    /// reachable).
    pub nud: NudState,
}

impl VxNeigh {
    /// `nud permanent`.
    pub fn permanent(&self) -> bool {
        self.nud == NudState::Permanent
    }

    /// `n->nud_state & NUD_CONNECTED`.
    pub fn connected(&self) -> bool {
        matches!(
            self.nud,
            NudState::Permanent | NudState::Noarp | NudState::Reachable
        )
    }
}

/// The device's flags (`ip link add vxlan1 type vxlan ... proxy learning l2miss l3miss`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VxlanConfig {
    /// VNI.
    pub vni: u32,
    /// `proxy`.
    pub proxy: bool,
    /// `learning`.
    pub learning: bool,
    /// `l2miss`.
    pub l2miss: bool,
    /// `l3miss`.
    pub l3miss: bool,
    /// This host's VTEP address (local bypass for it).
    pub local_ip: Ipv4Addr,
    /// The device's own MAC (outer source of encapsulated frames here).
    pub mac: EthernetAddress,
    /// `ageing`, seconds.
    pub ageing_s: u32,
}

/// A miss notification to user space (the overlay driver's `watchMiss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Miss {
    /// `l3miss`: no neighbour entry for this IP.
    L3(Ipv4Addr),
    /// `l2miss`: no FDB entry for this MAC.
    L2(EthernetAddress),
}

impl std::fmt::Display for Miss {
    /// As `ip monitor` names the notification: `l3miss 10.0.0.3`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::L3(ip) => write!(f, "l3miss {ip}"),
            Miss::L2(mac) => write!(f, "l2miss {mac}"),
        }
    }
}

/// The device's dynamic state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct VxlanDev {
    /// MAC → FDB entry.
    pub fdb: BTreeMap<EthernetAddress, VxFdb>,
    /// IP → neighbour entry.
    pub neigh: BTreeMap<Ipv4Addr, VxNeigh>,
}

/// What a transmitted frame became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tx {
    /// `arp_reduce` answered: this reply is received on the device.
    ProxyReply(Vec<u8>),
    /// Consumed with a miss notification.
    Miss(Miss),
    /// Local bypass: received back on the device.
    Bypass(Vec<u8>),
    /// Encapsulated to this remote VTEP (outer bytes).
    Encap(Ipv4Addr, Vec<u8>),
    /// Consumed or dropped, for this reason.
    Dropped(String),
}

impl VxlanDev {
    /// `vxlan_xmit` of `frame` at `now_s`; `notes` gets what happened.
    pub fn xmit(
        &mut self,
        config: &VxlanConfig,
        frame: &[u8],
        now_s: u32,
        notes: &mut Vec<String>,
    ) -> Tx {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Tx::Dropped("malformed frame".into());
        };
        if config.proxy && eth.ethertype() == EtherType::Arp {
            return self.arp_reduce(config, eth.payload(), now_s);
        }
        let dst = eth.dst_addr();
        let key = if self.fdb.contains_key(&dst) {
            dst
        } else {
            EthernetAddress([0; 6])
        };
        let remote = match self.find_mac(&key, now_s) {
            Some(remote) => remote,
            None => {
                if config.l2miss && dst.is_unicast() {
                    return Tx::Miss(Miss::L2(dst));
                }
                return Tx::Dropped(format!("no FDB entry for {dst} and no default: dropped"));
            }
        };
        if remote.is_unspecified() {
            return Tx::Dropped(format!("FDB entry for {dst} has remote 0.0.0.0: dropped"));
        }
        if remote == config.local_ip || remote.is_loopback() {
            if config.learning {
                self.snoop(eth.src_addr(), LOOPBACK, now_s, notes);
            }
            notes.push(format!(
                "vxlan1: {dst} -> remote {remote} is this host: local bypass"
            ));
            return Tx::Bypass(frame.to_vec());
        }
        let outer = build::vxlan_encap(
            config.mac,
            EthernetAddress::BROADCAST,
            config.local_ip,
            remote,
            src_port(frame),
            config.vni,
            frame,
        );
        notes.push(format!("vxlan1: {dst} -> encapsulated to {remote}"));
        Tx::Encap(remote, outer)
    }

    /// `vxlan_find_mac`: the entry's remote, stamping its use time.
    fn find_mac(&mut self, mac: &EthernetAddress, now_s: u32) -> Option<Ipv4Addr> {
        let f = self.fdb.get_mut(mac)?;
        if !f.permanent {
            f.used_s = now_s;
        }
        Some(f.remote)
    }

    /// `arp_reduce`.
    fn arp_reduce(&mut self, config: &VxlanConfig, payload: &[u8], now_s: u32) -> Tx {
        let Some(arp) = ArpPacket::new_checked(payload)
            .ok()
            .and_then(|p| ArpRepr::parse(&p).ok())
        else {
            return Tx::Dropped("proxy: not an Ethernet/IPv4 ARP packet: consumed".into());
        };
        if arp.operation != ArpOperation::Request {
            return Tx::Dropped(
                "proxy: ARP reply sent into vxlan1 is consumed (arp_reduce answers requests only)"
                    .into(),
            );
        }
        let tip = arp.target_protocol_addr;
        if tip.is_loopback() || tip.is_multicast() {
            return Tx::Dropped("proxy: loopback/multicast target: consumed".into());
        }
        match self.neigh.get(&tip).cloned() {
            Some(n) if !n.connected() => Tx::Dropped(format!(
                "proxy: {tip} is {} (not connected): no reply and no l3miss, request consumed",
                n.nud.name()
            )),
            Some(n) => {
                if let Some(remote) = self.find_mac(&n.mac, now_s) {
                    if remote.is_unspecified() {
                        return Tx::Dropped(format!(
                            "proxy: {tip} is bridge-local (FDB remote 0.0.0.0): no reply, request consumed"
                        ));
                    }
                }
                let reply = build::arp_reply(
                    n.mac,
                    tip,
                    arp.source_hardware_addr,
                    arp.source_protocol_addr,
                );
                Tx::ProxyReply(reply)
            }
            None if config.l3miss => Tx::Miss(Miss::L3(tip)),
            None => Tx::Dropped(format!(
                "proxy: no neighbour entry for {tip}: request consumed"
            )),
        }
    }

    /// `vxlan_snoop`: learn `mac` at `remote`, migrating a learned entry but
    /// never a permanent one. Returns false when the packet must be dropped
    /// (a permanent entry points elsewhere).
    pub fn snoop(
        &mut self,
        mac: EthernetAddress,
        remote: Ipv4Addr,
        now_s: u32,
        notes: &mut Vec<String>,
    ) -> bool {
        if !mac.is_unicast() || mac == EthernetAddress([0; 6]) {
            return false;
        }
        match self.fdb.get_mut(&mac) {
            // The remote it already has: nothing to learn, nothing
            // refreshed (`vxlan_snoop` returns before touching the entry).
            Some(f) if f.remote == remote => true,
            Some(f) if f.permanent => {
                notes.push(format!(
                    "vxlan1: {mac} from {remote} but permanently at {}: not migrated, packet dropped",
                    f.remote
                ));
                false
            }
            Some(f) => {
                notes.push(format!(
                    "vxlan1 fdb: {mac} migrated {} -> {remote}",
                    f.remote
                ));
                f.remote = remote;
                f.updated_s = now_s;
                true
            }
            None => {
                self.fdb.insert(
                    mac,
                    VxFdb {
                        remote,
                        permanent: false,
                        updated_s: now_s,
                        used_s: now_s,
                    },
                );
                notes.push(format!("vxlan1 fdb: {mac} learned at {remote}"));
                true
            }
        }
    }

    /// `vxlan_rcv` of an encapsulated packet from the underlay: decap,
    /// check the VNI, snoop; the inner frame to hand to the bridge.
    pub fn receive(
        &mut self,
        config: &VxlanConfig,
        outer: &[u8],
        now_s: u32,
        notes: &mut Vec<String>,
    ) -> Option<Vec<u8>> {
        let Ok((header, inner)) = build::vxlan_decap(outer) else {
            notes.push("vxlan1: not a VXLAN packet: dropped".into());
            return None;
        };
        if header.vni != config.vni {
            notes.push(format!("vxlan1: VNI {} is not ours: dropped", header.vni));
            return None;
        }
        let src_ip = outer_src(outer)?;
        let inner = inner.to_vec();
        let src = EthernetFrame::new_checked(&inner[..]).ok()?.src_addr();
        if config.learning && !self.snoop(src, src_ip, now_s, notes) {
            return None;
        }
        Some(inner)
    }

    /// `vxlan_cleanup` at `now_s`: removes learned entries not used by the
    /// transmit path for the ageing interval (`f->used + age_interval`).
    pub fn age(&mut self, config: &VxlanConfig, now_s: u32) -> Vec<EthernetAddress> {
        let expired: Vec<EthernetAddress> = self
            .fdb
            .iter()
            .filter(|(_, f)| !f.permanent && now_s.saturating_sub(f.used_s) >= config.ageing_s)
            .map(|(m, _)| *m)
            .collect();
        for m in &expired {
            self.fdb.remove(m);
        }
        expired
    }
}

/// The outer UDP source port: Linux hashes the inner flow
/// (`udp_flow_src_port`); here a fixed function of the inner MACs keeps
/// frames deterministic, in the ephemeral range.
fn src_port(inner: &[u8]) -> u16 {
    let mut h: u16 = 0xc000;
    for &b in inner.iter().take(12) {
        h = h.rotate_left(3) ^ u16::from(b);
    }
    0xc000 | (h & 0x3fff)
}

fn outer_src(outer: &[u8]) -> Option<Ipv4Addr> {
    let eth = EthernetFrame::new_checked(outer).ok()?;
    let ip = crate::wire::Ipv4Packet::new_checked(eth.payload()).ok()?;
    Some(crate::wire::Ipv4Repr::parse(&ip).ok()?.src_addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> EthernetAddress {
        EthernetAddress([2, 0x42, 10, 0, 0, last])
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn config() -> VxlanConfig {
        VxlanConfig {
            vni: 256,
            proxy: true,
            learning: true,
            l2miss: true,
            l3miss: true,
            local_ip: "192.168.100.1".parse().unwrap(),
            mac: EthernetAddress([2, 0, 0, 0, 1, 0xfe]),
            ageing_s: 300,
        }
    }

    #[test]
    fn arp_reduce_misses_then_answers_a_programmed_neighbour() {
        let c = config();
        let mut v = VxlanDev::default();
        let req = build::arp_request(mac(2), ip(2), ip(3));
        let mut notes = Vec::new();
        assert_eq!(v.xmit(&c, &req, 0, &mut notes), Tx::Miss(Miss::L3(ip(3))));
        v.neigh.insert(
            ip(3),
            VxNeigh {
                mac: mac(3),
                nud: NudState::Permanent,
            },
        );
        let out = v.xmit(&c, &req, 0, &mut notes);
        let Tx::ProxyReply(reply) = &out else {
            panic!("{out:?}")
        };
        assert_eq!(reply, &build::arp_reply(mac(3), ip(3), mac(2), ip(2)));
        // A bridge-local FDB entry (remote 0.0.0.0) silences the proxy.
        v.fdb
            .insert(mac(3), VxFdb::permanent(Ipv4Addr::UNSPECIFIED, 0));
        assert!(matches!(v.xmit(&c, &req, 0, &mut notes), Tx::Dropped(_)));
        // ARP replies into a proxy device are consumed.
        let reply = build::arp_reply(mac(3), ip(3), mac(2), ip(2));
        assert!(matches!(v.xmit(&c, &reply, 0, &mut notes), Tx::Dropped(_)));
    }

    #[test]
    fn a_local_remote_takes_the_bypass_and_snoops_loopback() {
        let c = config();
        let mut v = VxlanDev::default();
        v.fdb.insert(mac(3), VxFdb::permanent(c.local_ip, 0));
        let data = build::unicast_ip(mac(2), mac(3), ip(2), ip(3), b"x");
        let mut notes = Vec::new();
        assert_eq!(v.xmit(&c, &data, 5, &mut notes), Tx::Bypass(data.clone()));
        assert_eq!(v.fdb[&mac(2)].remote, LOOPBACK);
    }

    #[test]
    fn encapsulates_to_remote_and_the_far_side_learns_but_never_moves_permanent() {
        let c = config();
        let mut v = VxlanDev::default();
        let far: Ipv4Addr = "192.168.100.2".parse().unwrap();
        v.fdb.insert(mac(4), VxFdb::permanent(far, 0));
        let data = build::unicast_ip(mac(2), mac(4), ip(2), ip(4), b"x");
        let mut notes = Vec::new();
        let out = v.xmit(&c, &data, 0, &mut notes);
        let Tx::Encap(to, outer) = &out else {
            panic!("{out:?}")
        };
        assert_eq!(*to, far);
        let mut c2 = config();
        c2.local_ip = far;
        let mut v2 = VxlanDev::default();
        assert_eq!(v2.receive(&c2, outer, 0, &mut notes), Some(data.clone()));
        assert_eq!(v2.fdb[&mac(2)].remote, c.local_ip);
        // A permanent entry elsewhere: dropped, not migrated.
        v2.fdb.insert(
            mac(2),
            VxFdb::permanent("192.168.100.9".parse().unwrap(), 0),
        );
        assert_eq!(v2.receive(&c2, outer, 0, &mut notes), None);
    }

    #[test]
    fn ageing_follows_use_not_snooping_from_the_same_remote() {
        let c = config();
        let far: Ipv4Addr = "192.168.100.2".parse().unwrap();
        let mut notes = Vec::new();
        // Learned at 0; snooped again from the same remote at 200: not
        // refreshed, so it expires at 300.
        let mut v = VxlanDev::default();
        assert!(v.snoop(mac(4), far, 0, &mut notes));
        assert!(v.snoop(mac(4), far, 200, &mut notes));
        assert_eq!(v.age(&c, 300), vec![mac(4)]);
        // Learned at 0, used by the transmit path at 200: alive at 300,
        // gone at 500.
        let mut v = VxlanDev::default();
        assert!(v.snoop(mac(4), far, 0, &mut notes));
        let data = build::unicast_ip(mac(2), mac(4), ip(2), ip(4), b"x");
        assert!(matches!(v.xmit(&c, &data, 200, &mut notes), Tx::Encap(..)));
        assert_eq!(v.age(&c, 300), Vec::<EthernetAddress>::new());
        assert_eq!(v.age(&c, 500), vec![mac(4)]);
    }

    #[test]
    fn no_entry_raises_l2miss_for_unicast() {
        let c = config();
        let mut v = VxlanDev::default();
        let data = build::unicast_ip(mac(2), mac(9), ip(2), ip(9), b"x");
        let mut notes = Vec::new();
        assert_eq!(v.xmit(&c, &data, 0, &mut notes), Tx::Miss(Miss::L2(mac(9))));
    }
}
