//! A container's ARP cache and its ARP flag (`eth0_neigh`, `arp = false`,
//! the `arp off` / `arp on` steps) against the running kernel's: two
//! network namespaces joined by a veth pair, A (10.9.0.2) and B
//! (10.9.0.3) with real IPv4 stacks. Each step is done on both sides — on
//! the kernel with `ip neigh replace`, `ip link set eth0 arp off|on` and
//! UDP datagrams; in the model with `netrace::l2::endpoint::Endpoint` —
//! and A's ARP cache is compared after each: the kernel's (`ip -j neigh
//! show nud all dev eth0`, IPv4 entries) with the model's, address by
//! address, MAC and state.
//!
//! What it shows: `arp off` and `arp on` each flush every entry, permanent
//! ones included (`arp_netdev_event` → `neigh_changeaddr`); on a NOARP
//! eth0 a datagram to a peer creates a `NOARP` entry with eth0's own MAC
//! (`arp_constructor`); an ARP request received on a NOARP eth0 is not
//! answered (`arp_rcv`); a pinned (`permanent`) entry survives a request
//! from its address with another MAC, and an unpinned (`stale`) one
//! takes it.
//!
//! Needs root and network namespaces; without them it prints `KERNEL
//! ORACLE SKIPPED: …` and passes, unless `NETRACE_REQUIRE_KERNEL=1`.

mod common;
use common::kernel::{kernel_or_skip, leaves_no_namespace};

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use netrace::kernel::netns::{self, in_netns, run, run_json, Namespaces};
use netrace::kernel::KernelError;
use netrace::l2::endpoint::{ArpEntry, Endpoint, EndpointConfig, NudState};
use netrace::wire::{build, EthernetAddress};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 3);
const A_MAC: &str = "02:42:0a:09:00:02";
const B_MAC: &str = "02:42:0a:09:00:03";
/// Addresses with no host behind them: pinned entries only.
const P_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 7);
const S_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 8);

type Cache = BTreeMap<String, (String, String)>;

/// A's IPv4 ARP cache on the kernel: IP → (MAC, STATE).
fn kernel_cache(ns: &str) -> Cache {
    let rows = run_json(
        "ip",
        &["-n", ns, "-j", "neigh", "show", "nud", "all", "dev", "eth0"],
    )
    .expect("ip neigh show");
    let mut out = Cache::new();
    for n in rows {
        let Some(dst) = n["dst"].as_str() else {
            continue;
        };
        if dst.parse::<Ipv4Addr>().is_err() {
            continue;
        }
        let state = n["state"]
            .as_array()
            .and_then(|s| s.first())
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        let mac = n["lladdr"].as_str().unwrap_or("-").to_string();
        out.insert(dst.to_string(), (mac, state));
    }
    out
}

/// The model's cache in the same form.
fn model_cache(ep: &Endpoint) -> Cache {
    ep.arp
        .iter()
        .map(|(ip, e)| {
            (
                ip.to_string(),
                (
                    e.mac.map_or("-".to_string(), |m| m.to_string()),
                    e.state.name().to_string(),
                ),
            )
        })
        .collect()
}

/// Waits (briefly) until the kernel's cache equals the model's; the
/// difference if it never does.
fn agree(ns: &str, ep: &Endpoint, step: &str) {
    let want = model_cache(ep);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = kernel_cache(ns);
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!("after {step}: kernel {got:?}, model {want:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn udp_from(ns: &str, src: Ipv4Addr, dst: Ipv4Addr) {
    in_netns(ns, || {
        let s = UdpSocket::bind((src, 0)).map_err(|e| KernelError::Failed(e.to_string()))?;
        s.send_to(b"x", (dst, 9))
            .map_err(|e| KernelError::Failed(e.to_string()))?;
        Ok(())
    })
    .expect("send");
}

fn ip(args: &[&str]) {
    run("ip", args).unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
}

/// Sets up A and B; returns the guard (namespaces deleted on drop).
fn pair() -> (Namespaces, String, String) {
    let prefix = netns::unique_prefix();
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    let mut guard = Namespaces::new();
    guard.add(&a).expect("netns a");
    guard.add(&b).expect("netns b");
    ip(&[
        "-n", &a, "link", "add", "eth0", "address", A_MAC, "type", "veth", "peer", "name", "eth0",
        "address", B_MAC, "netns", &b,
    ]);
    ip(&["-n", &a, "addr", "add", "10.9.0.2/24", "dev", "eth0"]);
    ip(&["-n", &b, "addr", "add", "10.9.0.3/24", "dev", "eth0"]);
    ip(&["-n", &a, "link", "set", "eth0", "up"]);
    ip(&["-n", &b, "link", "set", "eth0", "up"]);
    (guard, a, b)
}

fn cfg() -> EndpointConfig {
    EndpointConfig {
        name: "A".into(),
        ip: A_IP,
        mac: A_MAC.parse().unwrap(),
        arp_responder: true,
    }
}

#[test]
fn arp_off_and_on_flush_the_cache_and_noarp_entries_take_eths_own_mac() {
    let Some(_k) = kernel_or_skip("IFF_NOARP") else {
        return;
    };
    leaves_no_namespace(|| {
        let (_guard, a, b) = pair();
        let cfg = cfg();
        let mut ep = Endpoint::default();
        // eth0_neigh: a permanent and a stale entry.
        for (addr, mac, nud, state) in [
            (P_IP, "02:00:00:00:00:07", "permanent", NudState::Permanent),
            (S_IP, "02:00:00:00:00:08", "stale", NudState::Stale),
        ] {
            ip(&[
                "-n",
                &a,
                "neigh",
                "replace",
                &addr.to_string(),
                "lladdr",
                mac,
                "dev",
                "eth0",
                "nud",
                nud,
            ]);
            ep.arp.insert(
                addr,
                ArpEntry {
                    mac: Some(mac.parse().unwrap()),
                    state,
                },
            );
        }
        agree(&a, &ep, "eth0_neigh");

        // A request from the pinned address with another MAC: the
        // permanent entry keeps its MAC; so does the model's.
        let spoof: EthernetAddress = "02:00:00:00:00:99".parse().unwrap();
        let req = build::arp_request(spoof, P_IP, A_IP);
        let r = ep.receive(&cfg, &req);
        assert_eq!(r.out.len(), 1, "the model answers the request");
        inject(&b, &req);
        agree(&a, &ep, "a request from a pinned address");

        // arp off: everything goes, the permanent entry too.
        ep.set_arp(false);
        assert!(ep.arp.is_empty() && ep.noarp);
        ip(&["-n", &a, "link", "set", "eth0", "arp", "off"]);
        agree(&a, &ep, "arp off");

        // A sends to B with nothing cached: a NOARP entry with A's own MAC.
        assert!(ep.resolve_silently(&cfg, B_IP).is_some());
        udp_from(&a, A_IP, B_IP);
        agree(&a, &ep, "a datagram on a NOARP eth0");
        assert_eq!(model_cache(&ep)[&B_IP.to_string()].0, A_MAC);

        // B asks for A: A does not answer (B's entry never completes), and
        // the model's NOARP A answers nothing either.
        let r = ep.receive(
            &cfg,
            &build::arp_request(B_MAC.parse().unwrap(), B_IP, A_IP),
        );
        assert!(r.out.is_empty(), "the model's NOARP eth0 ignores ARP");
        udp_from(&b, B_IP, A_IP);
        std::thread::sleep(Duration::from_millis(1500));
        let b_cache = kernel_cache(&b);
        let b_state = b_cache.get(&A_IP.to_string()).map(|(_, s)| s.as_str());
        assert!(
            matches!(b_state, Some("INCOMPLETE" | "FAILED")),
            "B's entry for A: {b_cache:?}"
        );
        agree(&a, &ep, "a request received on a NOARP eth0");

        // A pinned entry programmed while off, then arp on: flushed too.
        ip(&[
            "-n",
            &a,
            "neigh",
            "replace",
            &P_IP.to_string(),
            "lladdr",
            "02:00:00:00:00:07",
            "dev",
            "eth0",
            "nud",
            "permanent",
        ]);
        ep.arp.insert(
            P_IP,
            ArpEntry {
                mac: Some("02:00:00:00:00:07".parse().unwrap()),
                state: NudState::Permanent,
            },
        );
        agree(&a, &ep, "a permanent entry on a NOARP eth0");
        ep.set_arp(true);
        ip(&["-n", &a, "link", "set", "eth0", "arp", "on"]);
        agree(&a, &ep, "arp on");
        assert!(ep.arp.is_empty());
    });
}

/// B's eth0 transmits `frame` (a raw packet socket).
fn inject(ns: &str, frame: &[u8]) {
    let sock = netrace::kernel::capture::PacketSocket::open(ns, "eth0").expect("packet socket");
    sock.send(frame).expect("send");
}

const LATE: &str = r#"
name = "late-join-stale"
kind = "l2"
[network]
subnet = "10.0.0.0/24"
ageing_time_s = 2
[[host]]
name = "host1"
vtep = "192.168.100.1"
vxlan_neigh = [{ ip = "10.0.0.5", mac = "02:42:0a:00:00:05", nud = "stale" }]
[[host]]
name = "host2"
vtep = "192.168.100.2"
[[container]]
name = "C"
host = "host2"
ip = "10.0.0.4"
script = ["join", "resolve A", "send A"]
[[container]]
name = "A"
host = "host1"
ip = "10.0.0.2"
script = ["resolve D", "wait 1", "resolve C", "send C"]
[[container]]
name = "D"
host = "host2"
ip = "10.0.0.5"
[[variant]]
name = "swarm"
profile = "swarm-mode"
"#;

/// C joins late (its join entries reach host1's vxlan1 while the scripts
/// run) and host1's vxlan1 holds a STALE entry for D: on the kernel as in
/// the model, vxlan1 does not answer for D (no reply, no l3miss), and the
/// entries the late join programs are there, permanent, when A asks for C.
#[test]
fn a_late_join_and_a_stale_vxlan_entry_agree_with_the_kernel() {
    let Some(_k) = kernel_or_skip("late join") else {
        return;
    };
    let s = netrace::scenario::load_str("late.toml", LATE, std::path::Path::new("late.toml"))
        .expect("loads");
    let l2 = s
        .system
        .downcast::<netrace::scenario::l2::L2Scenario>()
        .unwrap();
    let model = &l2.variants[0].model;
    let init = netrace::sim::Model::init_state(model);
    assert!(
        !init.hosts[0]
            .vx
            .neigh
            .contains_key(&"10.0.0.4".parse().unwrap()),
        "C's join entries are not there at the start"
    );
    leaves_no_namespace(|| {
        let mut schedules = vec![netrace::kernel::default_schedule(model, s.bounds).0];
        schedules.extend((0..3).map(|seed| netrace::kernel::seeded_walk(model, seed, 400)));
        for (i, schedule) in schedules.iter().enumerate() {
            let plan = netrace::overlay::oracle::plan(model, schedule).expect("a schedule");
            if !plan.faithful() {
                continue;
            }
            // The model's prediction: no reply for D; C programmed.
            let a_replies = plan
                .expected
                .arp_replies
                .get("A")
                .cloned()
                .unwrap_or_default();
            assert!(!a_replies.contains_key("10.0.0.5"), "{a_replies:?}");
            assert_eq!(
                plan.expected.vxlan_neigh[0]
                    .get("10.0.0.4")
                    .map(String::as_str),
                Some("02:42:0a:00:00:04"),
                "schedule {i}: the late join is programmed by the end"
            );
            assert_eq!(
                plan.expected.flags[0]
                    .get("vxlan1 neigh 10.0.0.5")
                    .map(String::as_str),
                Some("neigh stale")
            );
            let run = netrace::kernel::run(model, &plan, &netrace::kernel::RunOptions::default())
                .expect("the kernel runs");
            let cmp = netrace::kernel::compare(
                model,
                &plan.expected,
                &plan.received,
                &run.observed,
                &run.frames,
            );
            assert!(
                cmp.agree() && run.first_divergence.is_none(),
                "schedule {i}: disagree: {:?}",
                cmp.disagreeing()
            );
        }
    });
}

/// The new keys' bad input names its line and says what to do.
#[test]
fn bad_pinned_entries_and_steps_name_their_line() {
    let base = |container_extra: &str, script: &str, hosts: usize| {
        let second = if hosts > 1 {
            "[[host]]\nname = \"h2\"\nvtep = \"192.168.100.2\"\n"
        } else {
            ""
        };
        format!(
            "name = \"t\"\nkind = \"l2\"\n[network]\nsubnet = \"10.0.0.0/24\"\n[[host]]\nname = \"h\"\nvtep = \"192.168.100.1\"\n{second}[[container]]\nname = \"A\"\nhost = \"h\"\nip = \"10.0.0.2\"\n{container_extra}\nscript = [{script}]\n[[container]]\nname = \"B\"\nhost = \"h\"\nip = \"10.0.0.3\"\n[[variant]]\nname = \"v\"\nprofile = \"swarm-mode\"\n"
        )
    };
    let load =
        |text: &str| netrace::scenario::load_str("t.toml", text, std::path::Path::new("t.toml"));
    let ok = base(
        "arp = false\neth0_neigh = [{ ip = \"10.0.0.3\", mac = \"02:42:0a:00:00:03\", nud = \"noarp\" }]",
        "\"arp on\", \"resolve B\", \"arp off\", \"join\"",
        2,
    );
    load(&ok).expect("loads");
    for (extra, script, hosts, line, says) in [
        ("eth0_neigh = [{ ip = \"10.0.0.2\", mac = \"02:42:0a:00:00:03\" }]", "", 1, 12, "not another host address"),
        ("eth0_neigh = [{ ip = \"10.0.0.3\", mac = \"02:42:0a:00:00:03\", nud = \"delay\" }]", "", 1, 12, "not a state eth0_neigh takes"),
        ("eth0_neigh = [{ ip = \"10.0.0.3\", mac = \"02:42:0a:00:00:03\" }, { ip = \"10.0.0.3\", mac = \"02:42:0a:00:00:04\" }]", "", 1, 12, "lists 10.0.0.3 twice"),
        ("arp = \"off\"", "", 1, 12, "invalid type"),
        ("", "\"join\"", 1, 13, "one host"),
        ("", "\"join\", \"join\"", 2, 16, "a second \"join\""),
        ("", "\"arp sometimes\"", 1, 13, "unknown step"),
    ] {
        let e = load(&base(extra, script, hosts)).unwrap_err();
        assert_eq!(e.line, line, "{extra} {script}: {e}");
        assert!(e.message.contains(says), "{extra} {script}: {e}");
    }
    let vx = |nud: &str| {
        format!(
            "name = \"t\"\nkind = \"l2\"\n[network]\nsubnet = \"10.0.0.0/24\"\n[[host]]\nname = \"h\"\nvtep = \"192.168.100.1\"\nvxlan_neigh = [{{ ip = \"10.0.0.3\", mac = \"02:42:0a:00:00:03\", nud = \"{nud}\" }}]\n[[container]]\nname = \"A\"\nhost = \"h\"\nip = \"10.0.0.2\"\n[[variant]]\nname = \"v\"\nprofile = \"swarm-mode\"\n"
        )
    };
    load(&vx("stale")).expect("stale loads");
    let e = load(&vx("reachable")).unwrap_err();
    assert_eq!(e.line, 8, "{e}");
    assert!(e.message.contains("not a state vxlan_neigh takes"), "{e}");
}
