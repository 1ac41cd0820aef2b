//! `netrace audit --netns NAME` / `--from-dump DIR`: an overlay network
//! namespace's tables ([`super::iproute`]) read as the L2 model's state,
//! written as an L2 scenario and judged like any other.
//!
//! **What it reads**, as libnetwork's overlay driver builds the namespace
//! (`drivers/overlay/ov_network.go`, `initSandbox`/`setupSubnetSandbox`:
//! one bridge with the subnet's gateway address, one vxlan device created
//! with `Learning`, `Proxy`, `L2miss`, `L3miss` and enslaved to it, one
//! veth per local container; `peerdb.go`, `peerAdd` → `AddNeighbor`:
//! a permanent neighbour entry on the vxlan device, then a permanent FDB
//! entry `MAC dst VTEP self` per peer):
//!
//! The devices are found by kind and master, not by name (libnetwork
//! creates them as `ov-VNI-ID` and `vx-VNI-ID` and the sandbox renames
//! them; the seed's are `br0` and `vxlan1`):
//!
//! - the bridge (`br0`): its IPv4 address (the subnet, the gateway), its
//!   `ageing_time`, its ports and their `learning` and `neigh_suppress`;
//! - the vxlan device (`vxlan1`): VNI, `local`, `proxy`, `learning`,
//!   `l2miss`, `l3miss`, `ageing`;
//! - vxlan1's neighbour entries and FDB entries with their states;
//! - br0's FDB (what it has learned, on which port);
//! - for each local port, the MAC and address behind it: from the peer
//!   namespace when the live reader found it ([`Peer`]), else from br0's
//!   FDB (the MAC learned on that port) and vxlan1's neighbour table (the
//!   address of that MAC), else from Docker's MAC convention
//!   (`02:42:` + the address, libnetwork's `GenerateMACFromIP`).
//!
//! **How it maps** to the scenario ([`Reading::scenario`]): the audited
//! namespace is host `this-host`, whose vxlan1 holds exactly the entries
//! read (`join_peers = false`, `vxlan_neigh`, `vxlan_fdb`); every remote
//! VTEP of vxlan1's FDB is a host of its own, programmed as the driver's
//! join events would (its tables are not read: it is another machine);
//! every local container whose MAC and address are known is a container
//! on `this-host`. One local container (the first that vxlan1 does not
//! answer for, else the first) resolves and talks to every other local
//! container as seed 001's did (resolve, send, forget, resolve again, send
//! once the replies have settled), then to one remote peer, then waits
//! the ageing time and talks to the first target again (`l2.converges`).
//! The variants are the host as read (`live`: the driver's profile, from
//! `--profile` or assumed, with the port flags read as the fixes
//! `learning-off`/`neigh-suppress` and the `--fix`es said to be
//! deployed), then each other fix on top of it, then swarm mode.
//!
//! **What it does not map** is reported as a [`Gap`], never dropped: a
//! gap that could change a verdict (`matters`: a vxlan flag the model
//! does not have, a neighbour entry that is not permanent, a container
//! whose MAC is not Docker's, two bridges, ...) turns a clean verdict into
//! `unknown` (exit 3); a gap that cannot (IPv6 entries, learned vxlan FDB
//! entries, which age) is listed with the reason. br0's learned entries
//! are not carried over (the scenario starts from an empty FDB, as after
//! `ageing_time`), but a local container's MAC learned on another port is
//! reported as what it is: traffic to it is being lost now.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::iproute::{Link, PortFlags, Pos, Tables};
use crate::l2::bridge::AGEING_TIME_S;
use crate::overlay::system::{MAX_CONTAINERS, MAX_HOSTS};
use crate::overlay::Fix;
use crate::scenario::l2::MAX_AGEING_TIME_S;
use crate::wire::EthernetAddress;

/// What the live reader found behind a local port, in the veth peer's
/// namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The namespace (`ip netns` name, or a path).
    pub ns: String,
    /// The peer interface (`eth0`).
    pub ifname: String,
    /// Its MAC.
    pub mac: Option<EthernetAddress>,
    /// Its IPv4 addresses.
    pub ipv4: Vec<Ipv4Net>,
}

/// How to read the tables.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The namespace's name (`--netns`), `None` for a dump.
    pub netns: Option<String>,
    /// What the scenario is named after: the namespace, or `dump-DIR`.
    pub label: String,
    /// Where the tables came from, for comments (`namespace 1-abc` or
    /// `dump/`).
    pub origin: String,
    /// The input names for comments: link, addr, neigh, fdb.
    pub inputs: [String; 4],
    /// `--profile`: the driver's profile.
    pub profile: Option<String>,
    /// `--fix`: driver-side fixes said to be deployed.
    pub fixes: Vec<Fix>,
    /// `--vtep`: this host's underlay address.
    pub vtep: Option<Ipv4Addr>,
    /// What the live reader found behind each port (port name → peer).
    pub peers: BTreeMap<String, Peer>,
}

/// Something in the state the scenario does not represent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// What, and where it was read.
    pub what: String,
    /// Whether it could change a verdict.
    pub matters: bool,
}

/// A local container, behind a port of br0.
#[derive(Clone, Debug)]
pub struct Local {
    /// Its name in the scenario.
    pub name: String,
    /// The br0 port.
    pub port: String,
    /// Its MAC and where that came from.
    pub mac: Option<(EthernetAddress, String)>,
    /// Its address and where that came from.
    pub ip: Option<(Ipv4Addr, String)>,
    /// vxlan1 answers ARP for its address (proxy, a connected neighbour
    /// entry, no bridge-local FDB entry for the entry's MAC).
    pub answered: bool,
    /// In the scenario (MAC and address known and representable).
    pub modelled: bool,
}

impl Local {
    /// Its MAC, if known.
    pub fn mac_addr(&self) -> Option<EthernetAddress> {
        self.mac.as_ref().map(|m| m.0)
    }

    /// Its address, if known.
    pub fn ip_addr(&self) -> Option<Ipv4Addr> {
        self.ip.as_ref().map(|m| m.0)
    }
}

/// A vxlan1 entry carried into the scenario, with its provenance.
#[derive(Clone, Debug)]
struct Entry {
    toml: String,
    comment: String,
}

/// A br0 FDB entry read.
#[derive(Clone, Debug)]
pub struct Learned {
    /// The MAC.
    pub mac: EthernetAddress,
    /// The port it is on.
    pub port: String,
    /// When it is a local container's MAC on another port: which.
    pub wrong: Option<String>,
    /// Where it was read.
    pub line: Pos,
}

/// The tables read as the model's state.
#[derive(Clone, Debug)]
pub struct Reading {
    /// Where it came from.
    pub origin: String,
    /// The namespace, when live.
    pub netns: Option<String>,
    /// The bridge's name.
    pub bridge: String,
    /// The vxlan device's name.
    pub vxlan: String,
    /// The subnet (br0's address).
    pub subnet: Ipv4Net,
    /// br0's address.
    pub gateway: Ipv4Addr,
    /// The VNI.
    pub vni: u32,
    /// This host's VTEP and why.
    pub vtep: (Ipv4Addr, String),
    /// The ageing time, seconds.
    pub ageing_s: u32,
    /// The vxlan device's flags, as read.
    pub vx_flags: String,
    /// br0's ports and their flags.
    pub ports: Vec<(String, PortFlags)>,
    /// The local containers, in port order.
    pub locals: Vec<Local>,
    /// Remote peers: name, address, MAC, VTEP.
    pub remotes: Vec<(String, Ipv4Addr, EthernetAddress, Ipv4Addr)>,
    /// Remote VTEPs (hosts of the scenario), sorted.
    pub remote_vteps: Vec<Ipv4Addr>,
    /// br0's learned entries.
    pub learned: Vec<Learned>,
    /// The driver's profile and why.
    pub profile: (String, String),
    /// The live variant's fixes and why each.
    pub fixes: Vec<(Fix, String)>,
    /// What is not represented.
    pub gaps: Vec<Gap>,
    /// Counts for the summary: devices, neighbour and FDB entries read.
    pub counts: (usize, usize, usize),
    neigh: Vec<(Ipv4Addr, EthernetAddress, Entry)>,
    fdb: Vec<(EthernetAddress, Ipv4Addr, Entry)>,
    /// The local containers vxlan1 answers for: the workaround's lines.
    pub workaround: Vec<String>,
    /// The input names: link, addr, neigh, fdb.
    pub inputs: [String; 4],
    /// See [`Settings::label`].
    pub label: String,
}

/// Why the tables cannot be read as an overlay namespace at all (no
/// bridge, no vxlan device): bad input, with what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotOverlay {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// The line of `link.json` it concerns (0: the file).
    pub line: usize,
}

/// Why the state cannot be modelled at all (it was read, but the model
/// has no place for it): the audit is inconclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmodelled(pub String);

/// The error of [`read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Not an overlay namespace: bad input (exit 2).
    NotOverlay(NotOverlay),
    /// Read, but not modelled (exit 3).
    Unmodelled(Unmodelled),
}

/// The model's container name for a port: `veth-A` → `A`, else the
/// port's name.
fn container_name(port: &str) -> String {
    let n = port.strip_prefix("veth-").unwrap_or(port);
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Docker's address of a MAC (`02:42:` + four bytes), if it is one.
fn docker_ip(mac: EthernetAddress) -> Option<Ipv4Addr> {
    let b = mac.as_bytes();
    (b[0] == 0x02 && b[1] == 0x42).then(|| Ipv4Addr::new(b[2], b[3], b[4], b[5]))
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Reads `tables` as an overlay namespace.
pub fn read(t: &Tables, s: &Settings) -> Result<Reading, ReadError> {
    let [link_in, _addr_in, neigh_in, fdb_in] = &s.inputs;
    let not = |message: String, hint: &str, line: usize| {
        ReadError::NotOverlay(NotOverlay {
            message,
            hint: hint.to_string(),
            line,
        })
    };
    let mut gaps: Vec<Gap> = Vec::new();
    let mut gap = |what: String, matters: bool| gaps.push(Gap { what, matters });
    let bridges: Vec<&Link> = t
        .links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .collect();
    let overlay_hint = "give libnetwork's overlay namespace of the network: on the host, \
                        `ls /var/run/docker/netns` lists them (the overlay's is `1-` and the \
                        network id's first ten characters); `ip netns attach` or nsenter \
                        reach it";
    let br = match bridges.as_slice() {
        [] => {
            return Err(not(
                format!(
                    "no bridge among the {} device(s) of {link_in}: this is not an overlay network's namespace",
                    t.links.len()
                ),
                overlay_hint,
                0,
            ))
        }
        [b] => *b,
        many => {
            return Err(ReadError::Unmodelled(Unmodelled(format!(
                "{} bridges ({}): the namespace of an overlay network with several subnets \
                 has a bridge and a vxlan device per subnet; the model has one of each per host",
                many.len(),
                many.iter()
                    .map(|b| b.ifname.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))))
        }
    };
    let ports: Vec<&Link> = t
        .links
        .iter()
        .filter(|l| l.master.as_deref() == Some(br.ifname.as_str()))
        .collect();
    let vxs: Vec<&&Link> = ports.iter().filter(|l| l.vxlan.is_some()).collect();
    let vxl = match vxs.as_slice() {
        [] => {
            return Err(not(
                format!(
                    "no vxlan device is a port of {} in {link_in}: this is not an overlay network's namespace",
                    br.ifname
                ),
                overlay_hint,
                br.line.line,
            ))
        }
        [v] => **v,
        many => {
            return Err(ReadError::Unmodelled(Unmodelled(format!(
                "{} vxlan devices are ports of {}: the model has one per host",
                many.len(),
                br.ifname
            ))))
        }
    };
    let vx = vxl.vxlan.clone().expect("filtered");
    let gateway_net = match br.ipv4.as_slice() {
        [n] => *n,
        [] => {
            return Err(ReadError::Unmodelled(Unmodelled(format!(
                "{} has no IPv4 address: the overlay's subnet is not known (libnetwork puts the \
                 subnet's gateway on the bridge; was addr.json (`ip -j addr show`) saved from the same namespace?)",
                br.ifname
            ))))
        }
        many => {
            return Err(ReadError::Unmodelled(Unmodelled(format!(
                "{} has {} IPv4 addresses: the model has one subnet per bridge",
                br.ifname,
                many.len()
            ))))
        }
    };
    let subnet = gateway_net.trunc();
    let gateway = gateway_net.addr();
    if subnet.prefix_len() > 29 {
        return Err(ReadError::Unmodelled(Unmodelled(format!(
            "{}'s subnet {subnet} is smaller than the model's smallest overlay (/29)",
            br.ifname
        ))));
    }
    if gateway != Ipv4Addr::from(u32::from(subnet.network()) + 1) {
        gap(
            format!(
                "{}'s address is {gateway}, the model puts the gateway at the subnet's first \
                 address (no container here talks to the gateway, so no property looks at it)",
                br.ifname
            ),
            false,
        );
    }
    let vx_flags = format!(
        "proxy {} learning {} l2miss {} l3miss {}",
        on(vx.proxy),
        on(vx.learning),
        on(vx.l2miss),
        on(vx.l3miss)
    );
    for (flag, value) in [
        ("proxy", vx.proxy),
        ("learning", vx.learning),
        ("l2miss", vx.l2miss),
        ("l3miss", vx.l3miss),
    ] {
        if !value {
            gap(
                format!(
                    "{} has {flag} off ({link_in}:{}): the model's vxlan device has proxy, learning, \
                     l2miss and l3miss on, as libnetwork creates it",
                    vxl.ifname, vxl.line
                ),
                true,
            );
        }
    }
    // Ageing: br0's clock_t (centiseconds) and vxlan's seconds.
    let br_ageing = br.ageing_time_cs.map(|cs| (cs / 100, cs % 100 == 0));
    let ageing_s = match (br_ageing, vx.ageing_s) {
        (Some((b, exact)), v) => {
            if !exact {
                gap(
                    format!(
                        "{}'s ageing_time is {} centiseconds: the model counts whole seconds ({b} s used)",
                        br.ifname,
                        br.ageing_time_cs.unwrap_or(0)
                    ),
                    true,
                );
            }
            if let Some(v) = v.filter(|v| *v != b) {
                gap(
                    format!(
                        "{}'s ageing_time ({b} s) and {}'s ageing ({v} s) differ: the model has one \
                         ageing time for both ({b} s used)",
                        br.ifname, vxl.ifname
                    ),
                    true,
                );
            }
            b
        }
        (None, Some(v)) => v,
        (None, None) => u64::from(AGEING_TIME_S),
    };
    let ageing_s = if (1..=u64::from(MAX_AGEING_TIME_S)).contains(&ageing_s) {
        ageing_s as u32
    } else {
        gap(
            format!(
                "ageing time {ageing_s} s: the model ages entries after 1 to {MAX_AGEING_TIME_S} s \
                 ({AGEING_TIME_S} s used)"
            ),
            true,
        );
        AGEING_TIME_S
    };
    // Ports.
    let mut port_flags = Vec::new();
    let mut fixes: Vec<(Fix, String)> = Vec::new();
    for p in &ports {
        let flags = p.port.unwrap_or(PortFlags {
            learning: true,
            neigh_suppress: false,
        });
        port_flags.push((p.ifname.clone(), flags));
        if p.ifindex == vxl.ifindex {
            if !flags.learning {
                fixes.push((
                    Fix::LearningOff,
                    format!(
                        "{}'s port has learning off ({link_in}:{})",
                        p.ifname, p.line
                    ),
                ));
            }
            if flags.neigh_suppress {
                fixes.push((
                    Fix::NeighSuppress,
                    format!(
                        "{}'s port has neigh_suppress on ({link_in}:{})",
                        p.ifname, p.line
                    ),
                ));
            }
        } else if p.kind.as_deref() != Some("veth") {
            gap(
                format!(
                    "port {} of {} is a {} device, not a container's veth: the model's bridge has \
                     vxlan1 and veths only",
                    p.ifname,
                    br.ifname,
                    p.kind.as_deref().unwrap_or("plain")
                ),
                true,
            );
        } else if !flags.learning || flags.neigh_suppress {
            gap(
                format!(
                    "port {} has learning {} and neigh_suppress {}: the model's container ports \
                     learn and do not suppress",
                    p.ifname,
                    on(flags.learning),
                    on(flags.neigh_suppress)
                ),
                true,
            );
        }
    }
    for f in &s.fixes {
        if !fixes.iter().any(|(x, _)| x == f) {
            fixes.push((*f, "given by --fix".to_string()));
        }
    }
    // vxlan1's neighbour entries.
    let mut neigh: Vec<(Ipv4Addr, EthernetAddress, Pos)> = Vec::new();
    let mut v6 = 0usize;
    for n in t.neigh.iter().filter(|n| n.dev == vxl.ifname) {
        let IpAddr::V4(ip) = n.dst else {
            v6 += 1;
            continue;
        };
        let Some(mac) = n.lladdr else {
            gap(
                format!(
                    "{neigh_in}:{}: {ip} dev {} has no lladdr ({}): arp_reduce neither answers \
                     nor raises an l3miss for it; the model has no such entry",
                    n.line,
                    vxl.ifname,
                    n.state_words()
                ),
                true,
            );
            continue;
        };
        if !n.permanent() {
            gap(
                format!(
                    "{neigh_in}:{}: {ip} lladdr {mac} dev {} is {}, not PERMANENT: the model's \
                     vxlan neighbour entries are permanent (the driver's)",
                    n.line,
                    vxl.ifname,
                    n.state_words()
                ),
                true,
            );
            continue;
        }
        if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() {
            gap(
                format!(
                    "{neigh_in}:{}: {ip} dev {} is outside the overlay subnet {subnet}",
                    n.line, vxl.ifname
                ),
                false,
            );
            continue;
        }
        neigh.push((ip, mac, n.line));
    }
    if v6 > 0 {
        gap(
            format!(
                "{v6} IPv6 neighbour entr(y/ies) on {}: the model is IPv4 only",
                vxl.ifname
            ),
            false,
        );
    }
    let br0_neigh = t.neigh.iter().filter(|n| n.dev == br.ifname).count();
    if br0_neigh > 0 {
        let suppress = port_flags.iter().any(|(_, f)| f.neigh_suppress);
        gap(
            format!(
                "{br0_neigh} neighbour entr(y/ies) of {} itself: its own ARP cache, which only \
                 neigh_suppress answers from (the model's is empty){}",
                br.ifname,
                if suppress {
                    "; neigh_suppress is on here, so it could answer from them"
                } else {
                    "; neigh_suppress is off, so none is answered from"
                }
            ),
            suppress,
        );
    }
    // vxlan1's FDB entries (its own table: `self`).
    let mut fdb: Vec<(EthernetAddress, Ipv4Addr, Pos)> = Vec::new();
    let mut learned_vx = 0usize;
    let mut seen: BTreeSet<EthernetAddress> = BTreeSet::new();
    for f in t
        .fdb
        .iter()
        .filter(|f| f.ifname == vxl.ifname && f.self_ && f.master.is_none())
    {
        let Some(dst) = f.dst else {
            continue;
        };
        let IpAddr::V4(dst) = dst else {
            gap(
                format!(
                    "{fdb_in}:{}: {} dst {dst}: an IPv6 remote, the model's underlay is IPv4",
                    f.line, f.mac
                ),
                true,
            );
            continue;
        };
        if f.mac == EthernetAddress([0; 6]) {
            gap(
                format!(
                    "{fdb_in}:{}: the all-zeros default entry (dst {dst}): unknown MACs are sent \
                     there instead of raising an l2miss; the model's vxlan1 has no default entry",
                    f.line
                ),
                true,
            );
            continue;
        }
        if f.state != "permanent" {
            learned_vx += 1;
            continue;
        }
        if !seen.insert(f.mac) {
            gap(
                format!(
                    "{fdb_in}:{}: a second remote for {} (dst {dst}): the model's vxlan FDB has \
                     one remote per MAC",
                    f.line, f.mac
                ),
                true,
            );
            continue;
        }
        if subnet.contains(&dst) {
            gap(
                format!(
                    "{fdb_in}:{}: {} dst {dst} points into the overlay subnet",
                    f.line, f.mac
                ),
                true,
            );
            continue;
        }
        fdb.push((f.mac, dst, f.line));
    }
    if learned_vx > 0 {
        gap(
            format!(
                "{learned_vx} learned (not permanent) FDB entr(y/ies) of {}: not carried over; \
                 they age out after {ageing_s} s and the scenario starts as after they have",
                vxl.ifname
            ),
            false,
        );
    }
    // br0's FDB: what it learned on which port.
    let mut learned: Vec<Learned> = Vec::new();
    for f in t.fdb.iter().filter(|f| {
        f.master.as_deref() == Some(br.ifname.as_str()) && f.ifname != br.ifname && !f.self_
    }) {
        match f.state.as_str() {
            "permanent" => {} // the ports' own MACs: local entries
            "" => learned.push(Learned {
                mac: f.mac,
                port: f.ifname.clone(),
                wrong: None,
                line: f.line,
            }),
            other => gap(
                format!(
                    "{fdb_in}:{}: {} on {} is {other}: the model's bridge learns its entries, it \
                     has no user-added ones",
                    f.line, f.mac, f.ifname
                ),
                true,
            ),
        }
    }
    // Local containers.
    let mut locals: Vec<Local> = Vec::new();
    for p in ports
        .iter()
        .filter(|p| p.ifindex != vxl.ifindex && p.kind.as_deref() == Some("veth"))
    {
        let peer = s.peers.get(&p.ifname);
        let mut mac = peer.and_then(|x| {
            x.mac.map(|m| {
                (
                    m,
                    format!(
                        "{}'s {} in namespace {} ({LINK_CMD_SHORT} there)",
                        p.ifname, x.ifname, x.ns
                    ),
                )
            })
        });
        if mac.is_none() {
            let on_port: Vec<&Learned> = learned.iter().filter(|l| l.port == p.ifname).collect();
            match on_port.as_slice() {
                [l] => {
                    mac = Some((
                        l.mac,
                        format!(
                            "the MAC {} learned on {} ({fdb_in}:{})",
                            br.ifname, p.ifname, l.line
                        ),
                    ))
                }
                [] => {}
                many => gap(
                    format!(
                        "{} has learned {} MACs on {}: which is the container's is not known",
                        br.ifname,
                        many.len(),
                        p.ifname
                    ),
                    true,
                ),
            }
        }
        let mut ip = None;
        if let (Some(x), Some((m, _))) = (peer, &mac) {
            let m = *m;
            if let Some(n) = x
                .ipv4
                .iter()
                .find(|n| subnet.contains(&n.addr()) && x.mac == Some(m))
            {
                ip = Some((
                    n.addr(),
                    format!(
                        "{}'s address in namespace {} (ip -j addr there)",
                        x.ifname, x.ns
                    ),
                ));
            }
        }
        if let (None, Some((m, _))) = (&ip, &mac) {
            let m = *m;
            if let Some((a, _, line)) = neigh.iter().find(|(_, nm, _)| *nm == m) {
                ip = Some((
                    *a,
                    format!(
                        "{}'s neighbour entry for {m} ({neigh_in}:{line})",
                        vxl.ifname
                    ),
                ));
            } else if let Some(a) = docker_ip(m).filter(|a| subnet.contains(a)) {
                ip = Some((a, format!("Docker's MAC convention: {m} is 02:42 + {a}")));
            }
        }
        let name = container_name(&p.ifname);
        locals.push(Local {
            name,
            port: p.ifname.clone(),
            mac,
            ip,
            answered: false,
            modelled: false,
        });
    }
    // Which locals can be modelled.
    let mut used_ips: BTreeSet<Ipv4Addr> = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for l in &mut locals {
        let why = match (&l.mac, &l.ip) {
            (None, _) => Some(format!(
                "port {}: no MAC known (its namespace was not found and {} has learned nothing on it)",
                l.port, br.ifname
            )),
            (Some((m, _)), None) => Some(format!(
                "port {}: MAC {m}, but no address known (not in its namespace, no neighbour entry, \
                 not a Docker MAC of {subnet})",
                l.port
            )),
            (Some((m, _)), Some((a, _))) => {
                if *m != EthernetAddress::docker(*a) {
                    Some(format!(
                        "port {}: MAC {m} with address {a}: the model names every container's MAC \
                         after its address (Docker's {})",
                        l.port,
                        EthernetAddress::docker(*a)
                    ))
                } else if *a == gateway || !used_ips.insert(*a) {
                    Some(format!("port {}: address {a} is the gateway's or another port's", l.port))
                } else {
                    None
                }
            }
        };
        match why {
            Some(w) => gap(w, true),
            None => {
                while !names.insert(l.name.clone()) {
                    l.name.push('_');
                }
                l.modelled = true;
            }
        }
    }
    if locals.iter().filter(|l| l.modelled).count() >= MAX_CONTAINERS {
        return Err(ReadError::Unmodelled(Unmodelled(format!(
            "{} local containers: the model has at most {MAX_CONTAINERS} containers",
            locals.len()
        ))));
    }
    // This host's VTEP.
    let local_macs: BTreeSet<EthernetAddress> = locals.iter().filter_map(Local::mac_addr).collect();
    let vtep = if let Some(v) = s.vtep {
        (v, "given by --vtep".to_string())
    } else if let Some(v) = vx.local {
        (
            v,
            format!("{}'s local address ({link_in}:{})", vxl.ifname, vxl.line),
        )
    } else {
        let pointing: BTreeSet<Ipv4Addr> = fdb
            .iter()
            .filter(|(m, d, _)| local_macs.contains(m) && !d.is_unspecified())
            .map(|(_, d, _)| *d)
            .collect();
        if pointing.len() == 1 {
            let v = *pointing.iter().next().expect("one");
            (
                v,
                format!(
                    "{} has no local address; its FDB entries for local containers point at {v}",
                    vxl.ifname
                ),
            )
        } else {
            let remotes: BTreeSet<Ipv4Addr> = fdb.iter().map(|(_, d, _)| *d).collect();
            let v = (1..=254u8)
                .map(|i| Ipv4Addr::new(192, 0, 2, i))
                .find(|a| !remotes.contains(a))
                .expect("a free documentation address");
            gap(
                format!(
                    "{} has no local address and no entry points at this host: a placeholder VTEP \
                     {v} is used (pass --vtep ADDRESS, the host's advertise address, to say)",
                    vxl.ifname
                ),
                false,
            );
            (
                v,
                "a placeholder (no entry says this host's address)".to_string(),
            )
        }
    };
    // Which locals vxlan1 answers for: arp_reduce's test.
    let fdb_of = |m: EthernetAddress| fdb.iter().find(|(x, _, _)| *x == m).map(|(_, d, _)| *d);
    for l in &mut locals {
        if let Some(a) = l.ip_addr() {
            if let Some((_, nm, _)) = neigh.iter().find(|(x, _, _)| *x == a) {
                l.answered = vx.proxy && fdb_of(*nm).is_none_or(|d| !d.is_unspecified());
            }
        }
    }
    let netns_prefix = s
        .netns
        .as_ref()
        .map_or(String::new(), |n| format!("ip netns exec {n} "));
    let workaround: Vec<String> = locals
        .iter()
        .filter(|l| l.answered)
        .filter_map(|l| l.ip_addr())
        .map(|a| format!("{netns_prefix}ip neigh del {a} dev {}", vxl.ifname))
        .collect();
    // br0's wrong entries now.
    for le in &mut learned {
        if let Some(l) = locals
            .iter()
            .find(|l| l.mac_addr() == Some(le.mac) && l.port != le.port)
        {
            le.wrong = Some(l.name.clone());
        }
    }
    // Remote peers: neighbour entries that are not local containers'.
    let local_ips: BTreeSet<Ipv4Addr> = locals.iter().filter_map(Local::ip_addr).collect();
    let mut remotes = Vec::new();
    for (a, m, _) in &neigh {
        if local_ips.contains(a) || local_macs.contains(m) {
            continue;
        }
        if let Some(d) = fdb_of(*m).filter(|d| !d.is_unspecified() && *d != vtep.0) {
            if *m == EthernetAddress::docker(*a) {
                remotes.push((
                    format!("peer-{}", a.to_string().replace('.', "-")),
                    *a,
                    *m,
                    d,
                ));
            }
        }
    }
    let mut remote_vteps: Vec<Ipv4Addr> = fdb
        .iter()
        .map(|(_, d, _)| *d)
        .filter(|d| !d.is_unspecified() && *d != vtep.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if remote_vteps.len() >= MAX_HOSTS {
        gap(
            format!(
                "{} remote VTEPs: the model has at most {MAX_HOSTS} hosts; frames to {} are lost in it",
                remote_vteps.len(),
                remote_vteps[MAX_HOSTS - 1..]
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            false,
        );
        remote_vteps.truncate(MAX_HOSTS - 1);
    }
    // The driver's profile.
    let marked = fdb
        .iter()
        .any(|(m, d, _)| *d == vtep.0 && local_macs.contains(m));
    let profile = match &s.profile {
        Some(p) => (p.clone(), "given by --profile".to_string()),
        None if marked => (
            "classic-17.03".to_string(),
            format!(
                "{} holds FDB entries for local containers at this host's own VTEP: the mark of \
                 classic Swarm's miss path (watchMiss → peerAdd with no locality check)",
                vxl.ifname
            ),
        ),
        None => (
            "classic-17.03".to_string(),
            "the driver's mode cannot be read from the namespace (watchMiss runs in dockerd): \
             classic overlay assumed; pass --profile swarm-mode for a swarm-mode host"
                .to_string(),
        ),
    };
    // Entries carried into the scenario, with their provenance.
    let neigh_entries = neigh
        .iter()
        .map(|(a, m, line)| {
            (
                *a,
                *m,
                Entry {
                    toml: format!("{{ ip = \"{a}\", mac = \"{m}\" }}"),
                    comment: format!(
                        "{neigh_in}:{line}: {a} lladdr {m} dev {} PERMANENT",
                        vxl.ifname
                    ),
                },
            )
        })
        .collect();
    let fdb_entries = fdb
        .iter()
        .map(|(m, d, line)| {
            (
                *m,
                *d,
                Entry {
                    toml: format!("{{ mac = \"{m}\", dst = \"{d}\" }}"),
                    comment: format!(
                        "{fdb_in}:{line}: {m} dev {} dst {d} self permanent{}",
                        vxl.ifname,
                        if *d == vtep.0 {
                            " (this host's own VTEP)"
                        } else if d.is_unspecified() {
                            " (bridge-local)"
                        } else {
                            ""
                        }
                    ),
                },
            )
        })
        .collect();
    Ok(Reading {
        origin: s.origin.clone(),
        netns: s.netns.clone(),
        bridge: br.ifname.clone(),
        vxlan: vxl.ifname.clone(),
        subnet,
        gateway,
        vni: vx.vni,
        vtep,
        ageing_s,
        vx_flags,
        ports: port_flags,
        locals,
        remotes,
        remote_vteps,
        learned,
        profile,
        fixes,
        gaps,
        counts: (t.links.len(), t.neigh.len(), t.fdb.len()),
        neigh: neigh_entries,
        fdb: fdb_entries,
        workaround,
        inputs: s.inputs.clone(),
        label: s.label.clone(),
    })
}

const LINK_CMD_SHORT: &str = "ip -j -d link";

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One generated scenario.
#[derive(Clone, Debug)]
pub struct Generated {
    /// Its name.
    pub name: String,
    /// The TOML text.
    pub toml: String,
    /// The variants, the live one first.
    pub variants: Vec<String>,
    /// Who talks to whom, in words.
    pub checked: String,
}

impl Reading {
    /// The modelled local containers.
    pub fn modelled(&self) -> Vec<&Local> {
        self.locals.iter().filter(|l| l.modelled).collect()
    }

    /// Whether a gap could change a verdict.
    pub fn gaps_matter(&self) -> bool {
        self.gaps.iter().any(|g| g.matters)
    }

    /// The local containers vxlan1 answers for.
    pub fn answered(&self) -> Vec<&Local> {
        self.locals.iter().filter(|l| l.answered).collect()
    }

    /// The scenario's name.
    pub fn scenario_name(&self, after_workaround: bool) -> String {
        format!(
            "audit-{}{}",
            container_name(&self.label),
            if after_workaround {
                "-after-workaround"
            } else {
                ""
            }
        )
    }

    /// The L2 scenario of the state; with `after_workaround`, of the
    /// state after the seed's workaround (the `ip neigh del` lines).
    /// `None` when no local container can be modelled.
    pub fn scenario(&self, after_workaround: bool) -> Option<Generated> {
        let locals = self.modelled();
        if locals.is_empty() {
            return None;
        }
        let name = self.scenario_name(after_workaround);
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# Written by netrace audit from {}; every line says where it came from.",
            self.origin
        );
        if after_workaround {
            let _ = writeln!(
                t,
                "# The state after the seed's workaround: vxlan1's neighbour entries for the local \
                 containers it answers for deleted ({}).",
                self.workaround.len()
            );
        }
        for g in &self.gaps {
            let _ = writeln!(
                t,
                "# not represented{}: {}",
                if g.matters {
                    " (could change a verdict)"
                } else {
                    ""
                },
                g.what
            );
        }
        let _ = writeln!(t, "name = {}", quoted(&name));
        let _ = writeln!(t, "kind = \"l2\"");
        // Who talks to whom.
        let requester = locals.iter().position(|l| !l.answered).unwrap_or(0);
        let r = locals[requester];
        let targets: Vec<&Local> = locals
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != requester)
            .map(|(_, l)| *l)
            .collect();
        let remote = self.remotes.first();
        let mut said = Vec::new();
        if !targets.is_empty() {
            said.push(format!(
                "{} resolves and talks to {} (twice each, as seed 001's containers did)",
                r.name,
                targets
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some((n, ..)) = remote {
            said.push(format!("then to the remote peer {n}"));
        }
        if !targets.is_empty() {
            said.push(format!(
                "then waits the ageing time ({} s) and talks to {} again",
                self.ageing_s, targets[0].name
            ));
        }
        let checked = if said.is_empty() {
            format!(
                "{} is the only local container and vxlan1 knows no remote peer: nothing to talk to",
                r.name
            )
        } else {
            said.join(", ")
        };
        let _ = writeln!(
            t,
            "description = {}",
            quoted(&format!(
                "The overlay namespace read from {}{}: {checked}.",
                self.origin,
                if after_workaround {
                    ", after the seed's workaround (ip neigh del of vxlan1's entries for local containers)"
                } else {
                    ""
                }
            ))
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "[network]");
        let _ = writeln!(
            t,
            "subnet = \"{}\"  # {}'s address {}/{}",
            self.subnet,
            self.bridge,
            self.gateway,
            self.subnet.prefix_len()
        );
        let _ = writeln!(t, "vni = {}  # {}'s id", self.vni, self.vxlan);
        let _ = writeln!(
            t,
            "ageing_time_s = {}  # {}'s ageing_time and {}'s ageing",
            self.ageing_s, self.bridge, self.vxlan
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "[[host]]");
        let _ = writeln!(t, "name = \"this-host\"  # the audited namespace");
        let _ = writeln!(t, "vtep = \"{}\"  # {}", self.vtep.0, self.vtep.1);
        let _ = writeln!(
            t,
            "join_peers = false  # vxlan1 holds exactly the entries read"
        );
        let hidden: BTreeSet<Ipv4Addr> = if after_workaround {
            self.answered().iter().filter_map(|l| l.ip_addr()).collect()
        } else {
            BTreeSet::new()
        };
        let _ = writeln!(
            t,
            "vxlan_neigh = [  # {}'s permanent neighbour entries, from {}",
            self.vxlan, self.inputs[2]
        );
        for (a, _, e) in &self.neigh {
            if hidden.contains(a) {
                let _ = writeln!(t, "  # deleted by the workaround: {}", e.comment);
            } else {
                let _ = writeln!(t, "  {},  # {}", e.toml, e.comment);
            }
        }
        let _ = writeln!(t, "]");
        let _ = writeln!(
            t,
            "vxlan_fdb = [  # {}'s permanent FDB entries (self), from {}",
            self.vxlan, self.inputs[3]
        );
        for (_, _, e) in &self.fdb {
            let _ = writeln!(t, "  {},  # {}", e.toml, e.comment);
        }
        let _ = writeln!(t, "]");
        for (i, v) in self.remote_vteps.iter().enumerate() {
            let _ = writeln!(t);
            let _ = writeln!(t, "[[host]]");
            let _ = writeln!(
                t,
                "name = \"remote{}\"  # a dst of {}'s FDB; its tables are not read: programmed as the driver's join events would",
                i + 1,
                self.vxlan
            );
            let _ = writeln!(
                t,
                "vtep = \"{v}\"  # the dst of {}'s FDB entries for it",
                self.vxlan
            );
        }
        let mut script: Vec<String> = Vec::new();
        for x in &targets {
            for step in ["resolve", "send", "forget", "resolve"] {
                script.push(format!("{step} {}", x.name));
            }
            script.push("wait 1".into());
            script.push(format!("send {}", x.name));
        }
        if let Some((n, ..)) = remote {
            script.push(format!("resolve {n}"));
            script.push(format!("send {n}"));
        }
        if let Some(x) = targets.first() {
            script.push(format!("wait {}", self.ageing_s));
            script.push(format!("resolve {}", x.name));
            script.push("wait 1".into());
            script.push(format!("send {}", x.name));
        }
        for (i, l) in locals.iter().enumerate() {
            let (mac, mac_from) = l.mac.as_ref().expect("modelled");
            let (ip, ip_from) = l.ip.as_ref().expect("modelled");
            let _ = writeln!(t);
            let _ = writeln!(t, "[[container]]");
            let _ = writeln!(
                t,
                "name = {}  # behind {} port {}{}",
                quoted(&l.name),
                self.bridge,
                l.port,
                if l.answered {
                    format!("; {} answers ARP for it", self.vxlan)
                } else {
                    String::new()
                }
            );
            let _ = writeln!(t, "host = \"this-host\"");
            let _ = writeln!(t, "ip = \"{ip}\"  # {ip_from}; its MAC {mac}: {mac_from}");
            if i == requester && !script.is_empty() {
                let _ = writeln!(t, "script = [  # generated: {checked}");
                for s in &script {
                    let _ = writeln!(t, "  {},", quoted(s));
                }
                let _ = writeln!(t, "]");
            }
        }
        if let Some((n, a, m, d)) = remote {
            let h = self
                .remote_vteps
                .iter()
                .position(|v| v == d)
                .expect("a remote VTEP");
            let _ = writeln!(t);
            let _ = writeln!(t, "[[container]]");
            let _ = writeln!(
                t,
                "name = {}  # a remote peer: {}'s neighbour entry {a} lladdr {m}, FDB dst {d}",
                quoted(n),
                self.vxlan
            );
            let _ = writeln!(t, "host = \"remote{}\"  # its VTEP {d}", h + 1);
            let _ = writeln!(t, "ip = \"{a}\"  # {}'s neighbour entry for it", self.vxlan);
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "[bounds]");
        let _ = writeln!(t, "max_states = 2000000");
        let _ = writeln!(t, "max_depth = 1000");
        // Variants: the host as read, each other fix on it, swarm mode.
        let live_fixes: Vec<Fix> = self.fixes.iter().map(|(f, _)| *f).collect();
        let mut variants = Vec::new();
        let fix_list = |fs: &[Fix]| {
            fs.iter()
                .map(|f| quoted(f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(t);
        let _ = writeln!(t, "[[variant]]");
        let _ = writeln!(t, "name = \"live\"");
        let _ = writeln!(
            t,
            "profile = {}  # {}",
            quoted(&self.profile.0),
            self.profile.1
        );
        if !live_fixes.is_empty() {
            let why: Vec<String> = self
                .fixes
                .iter()
                .map(|(f, w)| format!("{}: {w}", f.name()))
                .collect();
            let _ = writeln!(
                t,
                "fixes = [{}]  # {}",
                fix_list(&live_fixes),
                why.join("; ")
            );
        }
        let _ = writeln!(t, "note = \"the host as read\"");
        variants.push("live".to_string());
        for (fname, fix) in Fix::ALL {
            if live_fixes.contains(&fix) {
                continue;
            }
            let mut fs = live_fixes.clone();
            fs.push(fix);
            let _ = writeln!(t);
            let _ = writeln!(t, "[[variant]]");
            let _ = writeln!(t, "name = {}", quoted(fname));
            let _ = writeln!(t, "profile = {}", quoted(&self.profile.0));
            let _ = writeln!(t, "fixes = [{}]", fix_list(&fs));
            let _ = writeln!(t, "note = \"the host as read, with {fname}\"");
            variants.push(fname.to_string());
        }
        if self.profile.0 != "swarm-mode" {
            let _ = writeln!(t);
            let _ = writeln!(t, "[[variant]]");
            let _ = writeln!(t, "name = \"swarm-mode\"");
            let _ = writeln!(t, "profile = \"swarm-mode\"");
            if !live_fixes.is_empty() {
                let port: Vec<Fix> = live_fixes
                    .iter()
                    .copied()
                    .filter(|f| matches!(f, Fix::LearningOff | Fix::NeighSuppress))
                    .collect();
                if !port.is_empty() {
                    let _ = writeln!(t, "fixes = [{}]", fix_list(&port));
                }
            }
            let _ = writeln!(
                t,
                "note = \"the host as read, the driver in swarm mode (no miss handling)\""
            );
            variants.push("swarm-mode".to_string());
        }
        Some(Generated {
            name,
            toml: t,
            variants,
            checked,
        })
    }
}
