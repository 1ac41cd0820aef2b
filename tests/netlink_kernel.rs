//! The netlink semantics of a vxlan device's tables (model/l2/netlink.rs)
//! against the running kernel: the same requests, in the same order, get
//! the same answers (success or the same errno) from the model and from
//! iproute2 on a real vxlan device, and leave the same tables; and moby
//! #53663 happens for real: an exclusive add over an entry the kernel
//! learned from the peer's traffic fails with `EEXIST` and the entry ages
//! out, while replace makes it permanent and it survives.
//!
//! Two namespaces, A and B, joined by a veth pair (the underlay,
//! 192.168.222.0/24, inside the namespaces only), each with a vxlan device
//! (VNI 42, `learning`) over it. B's vxlan1 sends raw Ethernet frames with
//! chosen source MACs (a packet socket) through its all-zeros entry to A,
//! so A's vxlan1 learns those MACs at B's address exactly as it learns a
//! peer's containers. The model starts from the same learned entries
//! (`VxlanDev::snoop`).
//!
//! Needs root and network namespaces: see tests/common/kernel.rs for the
//! skip and `NETRACE_REQUIRE_KERNEL=1`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netrace::kernel::capture::PacketSocket;
use netrace::kernel::cluster;
use netrace::kernel::netns::{self, Namespaces};
use netrace::kernel::KernelError;
use netrace::l2::netlink::{Errno, NlRequest, NudState};
use netrace::l2::vxlan::{VxlanConfig, VxlanDev};
use netrace::wire::{build, EthernetAddress};

mod common;
use common::kernel::{kernel_or_skip, leaves_no_namespace};

const VTEP_A: Ipv4Addr = Ipv4Addr::new(192, 168, 222, 1);
const VTEP_B: Ipv4Addr = Ipv4Addr::new(192, 168, 222, 2);
/// An address on the underlay no host has: a stale or moved peer.
const VTEP_GONE: Ipv4Addr = Ipv4Addr::new(192, 168, 222, 3);
/// A neighbour the requests program on A's vxlan1.
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 9);

fn mac(last: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0x42, 0x0a, 0x4d, 0x00, last])
}

/// A's and B's namespaces with the underlay and the vxlan devices up.
struct Hosts {
    ns: Namespaces,
    ageing_s: u32,
}

impl Hosts {
    fn a(&self) -> &str {
        &self.ns.names()[0]
    }

    fn b(&self) -> &str {
        &self.ns.names()[1]
    }

    fn build(ageing_s: u32) -> Result<Hosts, KernelError> {
        let prefix = netns::unique_prefix();
        let mut ns = Namespaces::new();
        ns.add(&format!("{prefix}-a"))?;
        ns.add(&format!("{prefix}-b"))?;
        let hosts = Hosts { ns, ageing_s };
        let (a, b) = (hosts.a().to_string(), hosts.b().to_string());
        let ip = |args: &[&str]| netns::run("ip", args).map(drop);
        ip(&[
            "-n", &a, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", &b,
        ])?;
        let age = ageing_s.to_string();
        for (ns, vtep, own) in [(&a, VTEP_A, mac(0xa0)), (&b, VTEP_B, mac(0xb0))] {
            let local = vtep.to_string();
            ip(&["-n", ns, "addr", "add", &format!("{vtep}/24"), "dev", "ul0"])?;
            ip(&["-n", ns, "link", "set", "ul0", "up"])?;
            ip(&[
                "-n", ns, "link", "add", "vxlan1", "type", "vxlan", "id", "42", "local", &local,
                "dstport", "4789", "dev", "ul0", "learning", "ageing", &age,
            ])?;
            ip(&[
                "-n",
                ns,
                "link",
                "set",
                "vxlan1",
                "address",
                &own.to_string(),
            ])?;
            ip(&["-n", ns, "link", "set", "vxlan1", "up"])?;
        }
        // B floods everything to A.
        netns::run(
            "bridge",
            &[
                "-n",
                &b,
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vxlan1",
                "dst",
                &VTEP_A.to_string(),
                "self",
                "permanent",
            ],
        )?;
        Ok(hosts)
    }

    /// B's vxlan1 sends a broadcast frame from each of `macs`; returns once
    /// A's vxlan1 has learned all of them (at most 5 s).
    fn learn(&self, macs: &[EthernetAddress]) {
        let sock = PacketSocket::open(self.b(), "vxlan1").expect("packet socket on B's vxlan1");
        for m in macs {
            let frame = build::gratuitous_arp(*m, Ipv4Addr::new(10, 77, 0, 100));
            sock.send(&frame).expect("send on B's vxlan1");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let table = self.fdb();
            if macs.iter().all(|m| table.get(m) == Some(&(VTEP_B, false))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "A's vxlan1 did not learn {macs:?} from B: {table:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A's vxlan1 FDB: MAC → (remote, permanent), unicast entries only
    /// (the cluster oracle's read-back).
    fn fdb(&self) -> BTreeMap<EthernetAddress, (Ipv4Addr, bool)> {
        cluster::vxlan_fdb(self.a()).expect("bridge fdb show")
    }

    /// A's vxlan1 neighbour entry for `ip`: (MAC, permanent).
    fn neigh(&self, ip: Ipv4Addr) -> Option<(EthernetAddress, bool)> {
        let rows = netns::run_json(
            "ip",
            &[
                "-n",
                self.a(),
                "-j",
                "neigh",
                "show",
                "dev",
                "vxlan1",
                "to",
                &ip.to_string(),
            ],
        )
        .expect("ip neigh show");
        rows.iter().find_map(|r| {
            let m: EthernetAddress = r["lladdr"].as_str()?.parse().ok()?;
            let permanent = r["state"]
                .as_array()
                .is_some_and(|s| s.iter().any(|w| w == "PERMANENT"));
            Some((m, permanent))
        })
    }

    /// `bridge fdb VERB MAC dev vxlan1 [dst REMOTE] self STATE` on A.
    fn fdb_request(
        &self,
        request: NlRequest,
        m: EthernetAddress,
        remote: Option<Ipv4Addr>,
        state: NudState,
    ) -> Result<(), Errno> {
        let (m, remote) = (m.to_string(), remote.map(|r| r.to_string()));
        let mut args = vec!["-n", self.a(), "fdb", request.verb(), &m, "dev", "vxlan1"];
        if let Some(r) = &remote {
            args.extend(["dst", r]);
        }
        args.push("self");
        if request != NlRequest::Del {
            args.push(match state {
                NudState::Permanent => "permanent",
                NudState::Reachable => "dynamic",
            });
        }
        answer(netns::run("bridge", &args))
    }

    /// `ip neigh VERB IP [lladdr MAC nud permanent] dev vxlan1` on A.
    fn neigh_request(
        &self,
        request: NlRequest,
        ip: Ipv4Addr,
        m: EthernetAddress,
    ) -> Result<(), Errno> {
        let (ip, m) = (ip.to_string(), m.to_string());
        let mut args = vec!["-n", self.a(), "neigh", request.verb(), &ip];
        if request != NlRequest::Del {
            args.extend(["lladdr", &m, "nud", "permanent"]);
        }
        args.extend(["dev", "vxlan1"]);
        answer(netns::run("ip", &args))
    }

    /// The model's device config for A (only `ageing` matters here).
    fn config(&self) -> VxlanConfig {
        VxlanConfig {
            vni: 42,
            proxy: false,
            learning: true,
            l2miss: false,
            l3miss: false,
            local_ip: VTEP_A,
            mac: mac(0xa0),
            ageing_s: self.ageing_s,
        }
    }
}

/// The kernel's answer to one iproute2 request: success, or the errno it
/// printed. Anything else (iproute2 missing, an unknown message) fails the
/// test.
fn answer(r: Result<String, KernelError>) -> Result<(), Errno> {
    match r {
        Ok(_) => Ok(()),
        Err(KernelError::Failed(m)) => {
            Err(Errno::from_stderr(&m).unwrap_or_else(|| panic!("unexpected failure: {m}")))
        }
        Err(e) => panic!("{e}"),
    }
}

/// The model's device after it learned `macs` from B at time 0.
fn model_learned(macs: &[EthernetAddress]) -> VxlanDev {
    let mut dev = VxlanDev::default();
    for m in macs {
        assert!(dev.snoop(*m, VTEP_B, 0, &mut Vec::new()));
    }
    dev
}

fn model_fdb(dev: &VxlanDev) -> BTreeMap<EthernetAddress, (Ipv4Addr, bool)> {
    dev.fdb
        .iter()
        .map(|(m, f)| (*m, (f.remote, f.permanent)))
        .collect()
}

/// One request of a sequence.
#[derive(Clone, Copy, Debug)]
enum Step {
    Fdb(NlRequest, EthernetAddress, Option<Ipv4Addr>, NudState),
    Neigh(NlRequest, Ipv4Addr, EthernetAddress),
}

/// The requests a driver's peer add, peer delete and their mistakes make
/// (`bridge` has no `change` verb, so `NLM_F_REPLACE` alone is sent to the
/// neighbour table only),
/// over one learned MAC (B's container, `mac(2)`) and one that was never
/// seen (`mac(3)`), with every answer the kernel can give here.
fn sequence() -> Vec<Step> {
    use NlRequest::*;
    use NudState::*;
    let (b, c) = (mac(2), mac(3));
    vec![
        // #53663: the exclusive add over the learned entry.
        Step::Fdb(Add, b, Some(VTEP_B), Permanent),
        // `replace` takes it over, moving it to another remote.
        Step::Fdb(Replace, b, Some(VTEP_GONE), Permanent),
        // #1902: a delete naming the wrong remote deletes nothing, and
        // this kernel answers success.
        Step::Fdb(Del, b, Some(VTEP_B), Permanent),
        Step::Fdb(Del, b, Some(VTEP_GONE), Permanent),
        Step::Fdb(Del, b, None, Permanent),
        // A MAC never seen: add, add again, append, replace as dynamic.
        Step::Fdb(Add, c, Some(VTEP_B), Permanent),
        Step::Fdb(Add, c, Some(VTEP_B), Permanent),
        Step::Fdb(Append, c, Some(VTEP_GONE), Permanent),
        Step::Fdb(Replace, c, Some(VTEP_GONE), Reachable),
        Step::Fdb(Replace, c, Some(VTEP_B), Permanent),
        Step::Fdb(Del, c, None, Permanent),
        // The neighbour entry arp_reduce answers from.
        Step::Neigh(Change, PEER_IP, b),
        Step::Neigh(Add, PEER_IP, b),
        Step::Neigh(Add, PEER_IP, c),
        Step::Neigh(Change, PEER_IP, c),
        Step::Neigh(Replace, PEER_IP, b),
        Step::Neigh(Del, PEER_IP, c),
        Step::Neigh(Del, PEER_IP, c),
    ]
}

#[test]
fn every_request_gets_the_same_answer_and_leaves_the_same_tables_as_on_the_kernel() {
    let Some(_lock) = kernel_or_skip("netlink requests") else {
        return;
    };
    leaves_no_namespace(|| {
        let hosts = Hosts::build(300).expect("namespaces");
        hosts.learn(&[mac(2)]);
        let mut model = model_learned(&[mac(2)]);
        assert_eq!(model_fdb(&model), hosts.fdb(), "the same start");
        let mut errnos = Vec::new();
        for (i, step) in sequence().into_iter().enumerate() {
            let (want, got) = match step {
                Step::Fdb(req, m, remote, state) => (
                    model.fdb_request(req, m, remote, state, i as u32),
                    hosts.fdb_request(req, m, remote, state),
                ),
                Step::Neigh(req, ip, m) => (
                    model.neigh_request(req, ip, m),
                    hosts.neigh_request(req, ip, m),
                ),
            };
            assert_eq!(
                got, want,
                "step {i} {step:?}: the kernel answered {got:?}, the model {want:?}"
            );
            assert_eq!(hosts.fdb(), model_fdb(&model), "step {i} {step:?}: FDB");
            let kernel_neigh = hosts.neigh(PEER_IP);
            let model_neigh = model.neigh.get(&PEER_IP).map(|n| (n.mac, n.permanent()));
            assert_eq!(kernel_neigh, model_neigh, "step {i} {step:?}: neighbour");
            errnos.extend(got.err());
        }
        // The sequence exercised every answer it claims to.
        for e in [Errno::Exists, Errno::NoEntry] {
            assert!(errnos.contains(&e), "no request answered {e}");
        }
    });
}

#[test]
fn moby_53663_exclusive_add_loses_to_the_learned_entry_and_replace_keeps_the_peer() {
    let Some(_lock) = kernel_or_skip("moby #53663") else {
        return;
    };
    leaves_no_namespace(|| {
        // Two containers on B, both learned by A; the rejoining driver
        // re-adds one with `add` (before the fix), the other with
        // `replace` (the fix).
        let (by_add, by_replace) = (mac(2), mac(3));
        let hosts = Hosts::build(1).expect("namespaces");
        hosts.learn(&[by_add, by_replace]);
        let mut model = model_learned(&[by_add, by_replace]);
        let add = NlRequest::Add;
        let replace = NlRequest::Replace;
        let perm = NudState::Permanent;
        assert_eq!(
            hosts.fdb_request(add, by_add, Some(VTEP_B), perm),
            Err(Errno::Exists)
        );
        assert_eq!(
            model.fdb_request(add, by_add, Some(VTEP_B), perm, 0),
            Err(Errno::Exists)
        );
        assert_eq!(
            hosts.fdb_request(replace, by_replace, Some(VTEP_B), perm),
            Ok(())
        );
        assert_eq!(
            model.fdb_request(replace, by_replace, Some(VTEP_B), perm, 0),
            Ok(())
        );
        assert_eq!(
            hosts.fdb(),
            model_fdb(&model),
            "while the learned entry lives"
        );

        // B falls quiet. vxlan_cleanup runs every FDB_AGE_INTERVAL (10 s)
        // and removes learned entries idle for `ageing`: the one the add
        // lost to goes, and with it A's way to the container.
        let deadline = Instant::now() + Duration::from_secs(25);
        while hosts.fdb().contains_key(&by_add) {
            assert!(
                Instant::now() < deadline,
                "the learned entry never aged out: {:?}",
                hosts.fdb()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let expired = model.age(&hosts.config(), hosts.ageing_s);
        assert_eq!(expired, vec![by_add]);
        let after = hosts.fdb();
        assert_eq!(after, model_fdb(&model), "after ageing");
        assert!(
            !after.contains_key(&by_add),
            "the add's peer is unreachable"
        );
        assert_eq!(
            after.get(&by_replace),
            Some(&(VTEP_B, true)),
            "replace kept the peer"
        );
    });
}
