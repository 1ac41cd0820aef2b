//! loom checks the real concurrent `Handle.set` code of every profile, in
//! a plain `cargo test`: `model/ipam/threaded.rs` is compiled here a second
//! time with loom's `Mutex` (the `sync` module below), so every lock
//! acquisition is a point where loom may switch threads, and loom explores
//! all interleavings.
//!
//! - 17.05: two concurrent `RequestAddress` calls: loom finds the duplicate;
//! - 17.06: a `RequestAddress` racing a `ReleaseAddress` (the release is not
//!   under the network lock): loom finds the lost update;
//! - 18.03 and classic-swarm-cas: both races pass, every interleaving;
//! - the ARP-reply race: the real and the proxied reply delivered by two
//!   threads into one bridge: loom finds the wrong final FDB of
//!   `classic-17.03` and passes with the locality check.
//!
//! A failing loom model panics; the tests that prove the checker *finds*
//! the bug expect that panic (`should_panic`) with the bug's message.

mod sync {
    pub use loom::sync::{Mutex, MutexGuard};
}

#[path = "../model/ipam/threaded.rs"]
mod threaded;

use loom::sync::Arc;
use netrace::ipam::profile::Profile;
use netrace::ipam::system::SequentialIpam;
use threaded::ThreadedNetwork;

/// A /27 with the gateway and s1..s4 (ordinals 2..=5) started.
fn network(profile: &Profile) -> (SequentialIpam, Vec<u64>) {
    let mut seq = SequentialIpam::new("10.7.0.0/27".parse().unwrap(), None, None, profile).unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        let a = seq.request_address().unwrap();
        held.push(seq.pool().ordinal(a).unwrap());
    }
    (seq, held)
}

fn profile(name: &str) -> Profile {
    Profile::builtin(name).unwrap()
}

/// Two concurrent runs; the addresses they get must differ.
fn two_runs(p: Profile) {
    loom::model(move || {
        let (seq, _) = network(&p);
        let net = Arc::new(ThreadedNetwork::new(&seq, &p));
        let other = {
            let net = Arc::clone(&net);
            loom::thread::spawn(move || net.request_address().unwrap())
        };
        let mine = net.request_address().unwrap();
        let theirs = other.join().unwrap();
        assert_ne!(mine, theirs, "duplicate: both runs got ordinal {mine}");
    });
}

/// A run racing an rm; at the end the bitmap must hold exactly the
/// reserved ordinals and the live containers' ones.
fn run_races_rm(p: Profile) {
    loom::model(move || {
        let (seq, held) = network(&p);
        let reserved = seq.pool().reserved();
        let net = Arc::new(ThreadedNetwork::new(&seq, &p));
        let released = held[3];
        let rm = {
            let net = Arc::clone(&net);
            loom::thread::spawn(move || net.release_address(released).unwrap())
        };
        let got = net.request_address().unwrap();
        rm.join().unwrap();
        let mut want: Vec<u64> = reserved.to_vec();
        want.extend(held.iter().copied().filter(|&o| o != released));
        want.push(got);
        want.sort_unstable();
        want.dedup();
        assert_eq!(
            net.bitmap().set_ordinals(),
            want,
            "lost update: the bitmap does not match the live containers"
        );
    });
}

#[test]
#[should_panic(expected = "duplicate")]
fn loom_finds_the_17_05_duplicate() {
    two_runs(profile("libnetwork-17.05"));
}

#[test]
#[should_panic(expected = "lost update")]
fn loom_finds_the_17_06_lost_update() {
    run_races_rm(profile("libnetwork-17.06"));
}

#[test]
fn loom_passes_17_06_for_two_runs() {
    // The network lock does serialise runs among themselves.
    two_runs(profile("libnetwork-17.06"));
}

#[test]
fn loom_passes_18_03() {
    two_runs(profile("libnetwork-18.03"));
    run_races_rm(profile("libnetwork-18.03"));
}

#[test]
#[should_panic(expected = "lost update")]
fn loom_finds_18_03_without_its_lock() {
    // What #2105 added, removed again: the release race comes back.
    let mut p = profile("libnetwork-18.03");
    p.hold_handle_lock = false;
    run_races_rm(p);
}

#[test]
fn loom_passes_classic_swarm_cas() {
    two_runs(profile("classic-swarm-cas"));
    run_races_rm(profile("classic-swarm-cas"));
}

mod arp_race {
    use loom::sync::{Arc, Mutex};
    use netrace::l2::bridge::{Bridge, BridgeConfig, PortConfig, AGEING_TIME_S};
    use netrace::l2::vxlan::{Miss, Tx, VxlanConfig, VxlanDev};
    use netrace::overlay::system::{miss_path, MissPath};
    use netrace::overlay::{Fix, OverlayProfile};
    use netrace::wire::{build, EthernetAddress};
    use std::net::Ipv4Addr;

    const VXLAN1: u8 = 0;
    const VETH_B: u8 = 2;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    /// One host: br0 with vxlan1, veth-A, veth-B. A's first request for B
    /// reaches vxlan1 and misses; the overlay driver's real miss path
    /// ([`miss_path`]) under `profile` decides what is programmed; then
    /// A's next request is flooded, one copy reaching B, one vxlan1.
    /// Returns what the miss path did.
    fn race(profile: OverlayProfile) -> MissPath {
        let local_vtep: Ipv4Addr = "192.168.100.1".parse().unwrap();
        let vx_config = VxlanConfig {
            vni: 256,
            proxy: true,
            learning: true,
            l2miss: true,
            l3miss: true,
            local_ip: local_vtep,
            mac: EthernetAddress([2, 0, 0, 0, 1, 0xfe]),
            ageing_s: 300,
        };
        let (a, b) = (
            EthernetAddress::docker(ip(2)),
            EthernetAddress::docker(ip(3)),
        );
        let request = build::arp_request(a, ip(2), ip(3));
        // The first request: an l3miss, handled by the driver.
        let mut vx = VxlanDev::default();
        let mut notes = Vec::new();
        let miss = vx.xmit(&vx_config, &request, 0, &mut notes);
        assert_eq!(miss, Tx::Miss(Miss::L3(ip(3))), "the first request misses");
        // resolvePeer: B, on this host.
        let path = miss_path(
            &profile,
            Miss::L3(ip(3)),
            Some((ip(3), b, local_vtep)),
            local_vtep,
        );
        if let MissPath::Program(ops) = &path {
            for op in ops {
                op.apply(&mut vx, 0);
            }
        }
        let result = path.clone();
        loom::model(move || {
            let config = BridgeConfig {
                mac: EthernetAddress([2, 0, 0, 0, 1, 1]),
                ip: ip(1),
                ports: ["vxlan1", "veth-A", "veth-B"]
                    .iter()
                    .map(|n| PortConfig {
                        name: n.to_string(),
                        learning: true,
                        neigh_suppress: false,
                    })
                    .collect(),
                ageing_time_s: AGEING_TIME_S,
            };
            let mut vx = vx.clone();
            let vx_config = vx_config.clone();
            let request = request.clone();
            let bridge = Arc::new(Mutex::new(Bridge::new(&config)));
            let config = Arc::new(config);
            let proxied = {
                let (bridge, config) = (Arc::clone(&bridge), Arc::clone(&config));
                loom::thread::spawn(move || {
                    let mut notes = Vec::new();
                    if let Tx::ProxyReply(reply) = vx.xmit(&vx_config, &request, 1, &mut notes) {
                        bridge.lock().unwrap().receive(&config, VXLAN1, &reply, 1);
                    }
                })
            };
            // B's own reply, on its veth.
            let real = build::arp_reply(b, ip(3), a, ip(2));
            bridge.lock().unwrap().receive(&config, VETH_B, &real, 1);
            proxied.join().unwrap();
            let port = bridge.lock().unwrap().fdb[&b].port;
            assert_eq!(
                port, VETH_B,
                "wrong final FDB: B's MAC learned on vxlan1 (the proxied reply had the last word)"
            );
        });
        result
    }

    fn profile(fixes: &[Fix]) -> OverlayProfile {
        let mut p = OverlayProfile::builtin("classic-17.03").unwrap();
        p.fixes = fixes.to_vec();
        p
    }

    #[test]
    #[should_panic(expected = "wrong final FDB")]
    fn loom_finds_the_last_word_of_classic_17_03() {
        race(profile(&[]));
    }

    #[test]
    fn loom_passes_with_the_locality_check() {
        // The miss path reaches the locality check, which skips B; then
        // loom explores both orders of the two replies and B stays on its
        // veth in every one.
        assert_eq!(race(profile(&[Fix::LocalityCheck])), MissPath::LocalSkipped);
    }
}
