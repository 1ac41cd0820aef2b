//! The neighbour model (`netrace::l2::neigh`) against the kernel's
//! documented transitions: one test per transition, each naming the
//! kernel function (`net/core/neighbour.c`, `net/ipv4/arp.c`) it stands
//! for; and the recorded defaults against this machine's sysctls.
//!
//! Times are in ms. Unless a test says otherwise the parameters are the
//! kernel's defaults (retrans 1 s, delay_first_probe_time 5 s, 3 unicast
//! and 3 broadcast solicitations, locktime 1 s) and `reachable_time` is
//! pinned to 20 s so that the times below are exact.

#[path = "common/neigh.rs"]
mod driver;

use std::net::Ipv4Addr;

use driver::{drive, reply_from_b, A_IP, A_MAC, B_IP, B_MAC};
use netrace::l2::neigh::{
    ArpIn, ArpOp, DropReason, NeighAction, NeighParams, NeighSysctls, NeighTable, NudState,
    PacketType, QueuedPacket, KERNEL_DEFAULTS,
};
use netrace::wire::EthernetAddress;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const RT: u64 = 20_000;
const C_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 3);
const OTHER_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x0a, 0xc7, 0x00, 0x99]);

fn params(f: impl FnOnce(&mut NeighSysctls)) -> NeighParams {
    let mut s = KERNEL_DEFAULTS;
    f(&mut s);
    s.validate().expect("valid sysctls")
}

fn table(p: NeighParams) -> (NeighTable, ChaCha8Rng) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut t = NeighTable::new(p, A_IP, A_MAC, 0, &mut rng);
    t.set_reachable_time_ms(RT);
    (t, rng)
}

/// An ARP request from `sha`/`sip` for `tip`, broadcast.
fn request(sha: EthernetAddress, sip: Ipv4Addr, tip: Ipv4Addr) -> ArpIn {
    ArpIn {
        op: ArpOp::Request,
        sha,
        sip,
        tha: EthernetAddress([0; 6]),
        tip,
        pkt_type: PacketType::Broadcast,
    }
}

fn pkt(id: u64) -> Option<QueuedPacket> {
    Some(QueuedPacket { id, truesize: 768 })
}

/// Fires timers up to `now`, answering nothing.
fn tick(t: &mut NeighTable, rng: &mut ChaCha8Rng, now: u64) -> Vec<(u64, NeighAction)> {
    t.run_timers(now, rng)
}

fn solicits(acts: &[(u64, NeighAction)]) -> Vec<(u64, Option<EthernetAddress>)> {
    acts.iter()
        .filter_map(|(at, a)| match a {
            NeighAction::Solicit { unicast, .. } => Some((*at, *unicast)),
            _ => None,
        })
        .collect()
}

/// A's entry for B, REACHABLE since `at` (sent at `at`, answered at once).
fn resolved_at(at: u64) -> (NeighTable, ChaCha8Rng) {
    let (mut t, rng) = table(NeighParams::default());
    t.neigh_event_send(at, B_IP, pkt(0));
    t.arp_process(at, &reply_from_b());
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));
    (t, rng)
}

#[test]
fn none_to_incomplete_on_send() {
    // __neigh_event_send: NONE → INCOMPLETE, the first broadcast at once
    // (immediate_ok), the packet queued, the timer at retrans_time.
    let (mut t, _) = table(NeighParams::default());
    let acts = t.neigh_event_send(100, B_IP, pkt(1));
    assert_eq!(t.state(B_IP), Some(NudState::Incomplete));
    assert!(
        acts.contains(&NeighAction::Solicit {
            target: B_IP,
            unicast: None
        }),
        "{acts:?}"
    );
    assert!(!acts
        .iter()
        .any(|a| matches!(a, NeighAction::Transmit { .. })));
    assert_eq!(t.entry(B_IP).unwrap().queue().count(), 1);
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), Some(1100));
}

#[test]
fn incomplete_to_reachable_on_reply() {
    // arp_process (unicast reply) → neigh_update(NUD_REACHABLE): the
    // queue is sent, the timer runs reachable_time from now.
    let (mut t, _) = table(NeighParams::default());
    t.neigh_event_send(100, B_IP, pkt(1));
    let acts = t.arp_process(150, &reply_from_b());
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));
    assert!(
        acts.contains(&NeighAction::Transmit {
            packet: 1,
            target: B_IP,
            mac: B_MAC
        }),
        "{acts:?}"
    );
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), Some(150 + RT));
    assert_eq!(t.entry(B_IP).unwrap().mac(), Some(B_MAC));
}

#[test]
fn incomplete_to_failed_after_mcast_and_app_solicit() {
    // neigh_timer_handler + arp_solicit: mcast_solicit broadcasts
    // retrans_time apart, then FAILED (neigh_max_probes) and the queue
    // dropped (neigh_invalidate).
    let (mut t, mut rng) = table(NeighParams::default());
    let mut acts: Vec<(u64, NeighAction)> = t
        .neigh_event_send(0, B_IP, pkt(1))
        .into_iter()
        .map(|a| (0, a))
        .collect();
    acts.extend(tick(&mut t, &mut rng, 2_999));
    assert_eq!(solicits(&acts), vec![(0, None), (1000, None), (2000, None)]);
    assert_eq!(t.state(B_IP), Some(NudState::Incomplete));
    let acts = tick(&mut t, &mut rng, 3_000);
    assert_eq!(t.state(B_IP), Some(NudState::Failed));
    assert!(
        acts.contains(&(
            3000,
            NeighAction::Drop {
                packet: 1,
                target: B_IP,
                reason: DropReason::Failed
            }
        )),
        "{acts:?}"
    );
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), None);

    // With app_solicit = 1 the first probe goes to user space
    // (neigh_app_ns) and the entry fails one retrans_time later.
    let (mut t, mut rng) = table(params(|s| s.app_solicit = 1));
    let first = t.neigh_event_send(0, B_IP, pkt(1));
    assert!(
        first.contains(&NeighAction::AppSolicit { target: B_IP }),
        "{first:?}"
    );
    let acts = tick(&mut t, &mut rng, 3_999);
    assert_eq!(
        solicits(&acts),
        vec![(1000, None), (2000, None), (3000, None)]
    );
    tick(&mut t, &mut rng, 4_000);
    assert_eq!(t.state(B_IP), Some(NudState::Failed));
}

#[test]
fn reachable_to_stale_after_reachable_time() {
    // neigh_timer_handler: not confirmed for reachable_time and not used
    // within delay_first_probe_time → STALE, no timer.
    let (mut t, mut rng) = resolved_at(0);
    // time_before_eq: at confirmed + reachable_time exactly the entry is
    // still alive, re-armed HZ/100 (10 ms) later.
    tick(&mut t, &mut rng, RT + 9);
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));
    let acts = tick(&mut t, &mut rng, RT + 10);
    assert_eq!(t.state(B_IP), Some(NudState::Stale), "{acts:?}");
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), None);
}

#[test]
fn reachable_packets_do_not_stamp_used_but_slow_path_ones_do() {
    // neigh_output: while REACHABLE packets take neigh_hh_output, which
    // leaves `used` alone, so steady traffic still ends in STALE.
    let (mut t, mut rng) = resolved_at(0);
    for s in (1000..RT).step_by(1000) {
        tick(&mut t, &mut rng, s);
        t.neigh_event_send(s, B_IP, pkt(s));
    }
    tick(&mut t, &mut rng, RT + 10);
    assert_eq!(t.state(B_IP), Some(NudState::Stale));

    // neigh_timer_handler's other branch: used within
    // delay_first_probe_time of the expiry (here the resolving send at
    // 0, reachable_time 3 s < 5 s) → DELAY, not STALE.
    let (mut t, mut rng) = table(NeighParams::default());
    t.set_reachable_time_ms(3000);
    t.neigh_event_send(0, B_IP, pkt(0));
    t.arp_process(0, &reply_from_b());
    tick(&mut t, &mut rng, 3010);
    assert_eq!(t.state(B_IP), Some(NudState::Delay));
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), Some(8010));
}

#[test]
fn upper_layer_confirmation_keeps_reachable() {
    // neigh_confirm stamps `confirmed`; neigh_timer_handler re-arms at
    // confirmed + reachable_time ("still alive").
    let (mut t, mut rng) = resolved_at(0);
    t.neigh_confirm(15_000, B_IP);
    tick(&mut t, &mut rng, RT + 10);
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), Some(15_000 + RT));
}

#[test]
fn stale_to_delay_on_send() {
    // __neigh_event_send: STALE → DELAY, the packet sent to the cached
    // MAC at once, the timer at delay_first_probe_time.
    let (mut t, mut rng) = resolved_at(0);
    tick(&mut t, &mut rng, RT + 10);
    let acts = t.neigh_event_send(RT + 500, B_IP, pkt(7));
    assert_eq!(t.state(B_IP), Some(NudState::Delay));
    assert!(acts.contains(&NeighAction::Transmit {
        packet: 7,
        target: B_IP,
        mac: B_MAC
    }));
    assert!(!acts
        .iter()
        .any(|a| matches!(a, NeighAction::Solicit { .. })));
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), Some(RT + 500 + 5000));
}

#[test]
fn delay_to_reachable_on_upper_layer_confirm() {
    // neigh_confirm during DELAY; neigh_timer_handler then finds
    // confirmed within delay_first_probe_time → REACHABLE, no probe.
    let (mut t, mut rng) = resolved_at(0);
    tick(&mut t, &mut rng, RT + 10);
    t.neigh_event_send(RT + 500, B_IP, pkt(7));
    t.neigh_confirm(RT + 2000, B_IP);
    let acts = tick(&mut t, &mut rng, RT + 5500);
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));
    assert!(solicits(&acts).is_empty());
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), Some(RT + 2000 + RT));
}

#[test]
fn delay_to_probe_then_failed_after_ucast_solicit() {
    // neigh_timer_handler: DELAY without confirmation → PROBE
    // (probes = 0), ucast_solicit unicast probes to the cached MAC
    // retrans_time apart, then FAILED; mcast_resolicit = 0 adds none.
    let (mut t, mut rng) = resolved_at(0);
    tick(&mut t, &mut rng, RT + 10);
    t.neigh_event_send(RT + 500, B_IP, pkt(7));
    let d = RT + 5500;
    let acts = tick(&mut t, &mut rng, d);
    assert_eq!(t.state(B_IP), Some(NudState::Probe));
    assert_eq!(solicits(&acts), vec![(d, Some(B_MAC))]);
    let acts = tick(&mut t, &mut rng, d + 2999);
    assert_eq!(
        solicits(&acts),
        vec![(d + 1000, Some(B_MAC)), (d + 2000, Some(B_MAC))]
    );
    assert_eq!(t.state(B_IP), Some(NudState::Probe));
    tick(&mut t, &mut rng, d + 3000);
    assert_eq!(t.state(B_IP), Some(NudState::Failed));
    // The MAC stays cached; the next send starts over with broadcasts.
    assert_eq!(t.entry(B_IP).unwrap().mac(), Some(B_MAC));
    let acts = t.neigh_event_send(d + 3100, B_IP, pkt(8));
    assert_eq!(t.state(B_IP), Some(NudState::Incomplete));
    assert!(acts.contains(&NeighAction::Solicit {
        target: B_IP,
        unicast: None
    }));

    // mcast_resolicit = 1: one broadcast after the unicast probes.
    let (mut t, mut rng) = table(params(|s| s.mcast_resolicit = 1));
    t.neigh_event_send(0, B_IP, pkt(0));
    t.arp_process(0, &reply_from_b());
    tick(&mut t, &mut rng, RT + 10);
    t.neigh_event_send(RT + 500, B_IP, pkt(7));
    let acts = tick(&mut t, &mut rng, d + 3999);
    assert_eq!(solicits(&acts).last(), Some(&(d + 3000, None)));
    tick(&mut t, &mut rng, d + 4000);
    assert_eq!(t.state(B_IP), Some(NudState::Failed));
}

#[test]
fn probe_to_reachable_on_reply() {
    // arp_process → neigh_update(NUD_REACHABLE) from PROBE.
    let (mut t, mut rng) = resolved_at(0);
    tick(&mut t, &mut rng, RT + 10);
    t.neigh_event_send(RT + 500, B_IP, pkt(7));
    tick(&mut t, &mut rng, RT + 5500);
    assert_eq!(t.state(B_IP), Some(NudState::Probe));
    t.arp_process(RT + 5501, &reply_from_b());
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));
    assert_eq!(t.entry(B_IP).unwrap().timer_ms(), Some(RT + 5501 + RT));
}

#[test]
fn request_for_us_creates_a_stale_entry_and_is_answered() {
    // arp_process → neigh_event_ns: a request for our address creates
    // the sender's entry in STALE (with override) and is answered.
    let (mut t, _) = table(NeighParams::default());
    let req = request(B_MAC, B_IP, A_IP);
    let acts = t.arp_process(10, &req);
    assert_eq!(t.state(B_IP), Some(NudState::Stale));
    assert!(acts.contains(&NeighAction::Reply {
        to_ip: B_IP,
        to_mac: B_MAC
    }));
    // A request for someone else creates nothing (arp_accept = 0) ...
    let other = ArpIn {
        sip: C_IP,
        sha: OTHER_MAC,
        tip: Ipv4Addr::new(10, 199, 0, 9),
        ..req
    };
    assert!(t.arp_process(20, &other).is_empty());
    assert_eq!(t.state(C_IP), None);
    // ... unless arp_accept = 1 and it is gratuitous.
    t.set_arp_accept(true);
    let garp = ArpIn { tip: C_IP, ..other };
    t.arp_process(30, &garp);
    assert_eq!(t.state(C_IP), Some(NudState::Stale));
    // A request for us from a REACHABLE neighbour keeps it REACHABLE
    // (__neigh_update: STALE with the same MAC changes no state).
    let (mut t, _) = resolved_at(0);
    t.arp_process(100, &req);
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));
    // Frames for another host (PACKET_OTHERHOST) never reach arp_process.
    let (mut t, _) = table(NeighParams::default());
    assert!(t
        .arp_process(
            10,
            &ArpIn {
                pkt_type: PacketType::OtherHost,
                ..req
            }
        )
        .is_empty());
    assert_eq!(t.state(B_IP), None);
}

#[test]
fn locktime_keeps_the_first_reply_and_garp_overrides_it() {
    // arp_process: a different MAC replaces the cached one only if
    // locktime has passed since the entry last changed, or the frame is
    // a gratuitous ARP.
    let (mut t, _) = resolved_at(0);
    let late = ArpIn {
        sha: OTHER_MAC,
        ..reply_from_b()
    };
    t.arp_process(999, &late);
    assert_eq!(
        t.entry(B_IP).unwrap().mac(),
        Some(B_MAC),
        "within locktime: ignored"
    );
    // ... yet __neigh_update stamped `confirmed` before refusing it.
    assert_eq!(t.entry(B_IP).unwrap().confirmed_ms(), 999);
    t.arp_process(1001, &late);
    assert_eq!(
        t.entry(B_IP).unwrap().mac(),
        Some(OTHER_MAC),
        "after locktime: replaced"
    );
    assert_eq!(t.state(B_IP), Some(NudState::Reachable));

    let (mut t, _) = resolved_at(0);
    let garp = request(OTHER_MAC, B_IP, B_IP);
    t.arp_process(10, &garp);
    assert_eq!(t.entry(B_IP).unwrap().mac(), Some(OTHER_MAC));
    // A request carries no reachability: the new MAC is STALE.
    assert_eq!(t.state(B_IP), Some(NudState::Stale));

    // A request for someone else from a cached sender also updates it,
    // after locktime (same rule, state STALE).
    let (mut t, _) = resolved_at(0);
    let req = ArpIn { tip: C_IP, ..garp };
    t.arp_process(500, &req);
    assert_eq!(t.entry(B_IP).unwrap().mac(), Some(B_MAC));
    t.arp_process(1500, &req);
    assert_eq!(t.entry(B_IP).unwrap().mac(), Some(OTHER_MAC));
}

#[test]
fn gc_collects_stale_and_failed_only_above_gc_thresh1() {
    // neigh_periodic_work: nothing is collected while the machine's
    // table holds fewer than gc_thresh1 entries ...
    let (mut t, mut rng) = resolved_at(0);
    tick(&mut t, &mut rng, 200_000);
    assert_eq!(t.state(B_IP), Some(NudState::Stale));
    // ... and above it a STALE entry unused for gc_stale_time goes at the
    // next run (every base_reachable_time/2 = 15 s) ...
    t.set_entries_elsewhere(200);
    let acts = tick(&mut t, &mut rng, 300_000);
    assert_eq!(t.state(B_IP), None);
    assert!(acts
        .iter()
        .any(|(_, a)| *a == NeighAction::Collected { target: B_IP }));
    // ... a FAILED one at the first run whatever its age, a fresh STALE
    // one stays.
    let (mut t, mut rng) = table(NeighParams::default());
    t.set_entries_elsewhere(200);
    t.neigh_event_send(0, B_IP, None);
    let req = request(OTHER_MAC, C_IP, A_IP);
    tick(&mut t, &mut rng, 3000);
    assert_eq!(t.state(B_IP), Some(NudState::Failed));
    t.arp_process(RT - 100, &req);
    tick(&mut t, &mut rng, RT + 15_000);
    assert_eq!(t.state(B_IP), None, "FAILED collected");
    assert_eq!(t.state(C_IP), Some(NudState::Stale), "fresh STALE kept");
}

#[test]
fn unresolved_queue_drops_the_oldest_beyond_unres_qlen_bytes() {
    // __neigh_event_send: while INCOMPLETE, packets queue up to
    // unres_qlen_bytes of truesize; the oldest go first.
    let (mut t, _) = table(params(|s| s.unres_qlen_bytes = 2000));
    let mut drops = Vec::new();
    for id in 0..4 {
        for a in t.neigh_event_send(id, B_IP, pkt(id)) {
            if let NeighAction::Drop { packet, reason, .. } = a {
                drops.push((packet, reason));
            }
        }
    }
    assert_eq!(
        drops,
        vec![(0, DropReason::QueueFull), (1, DropReason::QueueFull)]
    );
    let ids: Vec<u64> = t.entry(B_IP).unwrap().queue().map(|p| p.id).collect();
    assert_eq!(ids, vec![2, 3]);
    // The reply sends them in order.
    let acts = t.arp_process(10, &reply_from_b());
    let sent: Vec<u64> = acts
        .iter()
        .filter_map(|a| match a {
            NeighAction::Transmit { packet, .. } => Some(*packet),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![2, 3]);
}

#[test]
fn request_for_us_resolves_an_incomplete_entry_through_delay() {
    // __neigh_update to STALE from INCOMPLETE: the queue leaves through
    // neigh_resolve_output, whose neigh_event_send moves STALE → DELAY.
    let (mut t, _) = table(NeighParams::default());
    t.neigh_event_send(0, B_IP, pkt(1));
    let req = request(B_MAC, B_IP, A_IP);
    let acts = t.arp_process(50, &req);
    assert_eq!(t.state(B_IP), Some(NudState::Delay), "{acts:?}");
    assert!(acts.contains(&NeighAction::Transmit {
        packet: 1,
        target: B_IP,
        mac: B_MAC
    }));
}

#[test]
fn no_probes_configured_fails_at_once() {
    // __neigh_event_send with mcast_solicit + app_solicit = 0.
    let (mut t, _) = table(params(|s| s.mcast_solicit = 0));
    let acts = t.neigh_event_send(0, B_IP, pkt(1));
    assert_eq!(t.state(B_IP), Some(NudState::Failed));
    assert!(acts.contains(&NeighAction::Drop {
        packet: 1,
        target: B_IP,
        reason: DropReason::NoProbes
    }));
}

#[test]
fn iff_noarp_entries_use_the_own_mac_and_ignore_arp() {
    // arp_constructor on an IFF_NOARP device: NOARP with dev_addr; arp_rcv
    // drops every ARP; arp_netdev_event flushes on the flag change.
    let (mut t, mut rng) = resolved_at(0);
    t.set_noarp(true);
    assert_eq!(t.state(B_IP), None, "flushed");
    let acts = t.neigh_event_send(10, B_IP, pkt(1));
    assert_eq!(t.state(B_IP), Some(NudState::Noarp));
    assert_eq!(
        acts,
        vec![NeighAction::Transmit {
            packet: 1,
            target: B_IP,
            mac: A_MAC
        }]
    );
    assert!(t.arp_process(20, &reply_from_b()).is_empty());
    let later = tick(&mut t, &mut rng, 1_000_000);
    assert!(solicits(&later).is_empty());
    assert_eq!(t.state(B_IP), Some(NudState::Noarp));
}

#[test]
fn permanent_entries_ignore_arp_and_timers() {
    // neigh_update without NEIGH_UPDATE_F_ADMIN leaves PERMANENT alone.
    let (mut t, mut rng) = table(NeighParams::default());
    t.add_permanent(0, B_IP, B_MAC);
    t.arp_process(
        5000,
        &ArpIn {
            sha: OTHER_MAC,
            ..reply_from_b()
        },
    );
    tick(&mut t, &mut rng, 1_000_000);
    assert_eq!(t.state(B_IP), Some(NudState::Permanent));
    assert_eq!(t.entry(B_IP).unwrap().mac(), Some(B_MAC));
    t.delete(1_000_001, B_IP);
    assert_eq!(t.state(B_IP), None);
}

#[test]
fn ping_cycles_through_probe_while_tcp_stays_reachable() {
    // Traffic every second for 60 s, B answering: without confirmation
    // (ping) the entry goes REACHABLE → STALE → DELAY → PROBE →
    // REACHABLE; with a confirmation per packet (TCP) it never leaves
    // REACHABLE.
    let p = NeighParams::default();
    let sends: Vec<u64> = (0..60).map(|s| s * 1000).collect();
    let ping = drive(Option::None, p.clone(), RT, &sends, &[], u64::MAX, 60_000);
    use NudState::*;
    assert_eq!(
        ping.sequence(),
        vec![
            None, Incomplete, Reachable, Stale, Delay, Probe, Reachable, Stale, Delay, Probe,
            Reachable
        ],
        "{:?}",
        ping.states
    );
    assert_eq!(ping.state_at(RT + 11), Stale);
    assert_eq!(ping.state_at(RT + 1000), Delay);
    assert_eq!(ping.state_at(RT + 6000), Reachable);
    let tcp = drive(Option::None, p, RT, &sends, &sends[1..], u64::MAX, 60_000);
    assert_eq!(tcp.sequence(), vec![None, Incomplete, Reachable]);
}

#[test]
fn reachable_time_is_drawn_per_interface_from_the_seed() {
    // neigh_parms_alloc → neigh_rand_reach_time: the same seed gives the
    // same draw; across seeds the draws spread over [base/2, 3·base/2).
    let draw = |seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        NeighTable::new(NeighParams::default(), A_IP, A_MAC, 0, &mut rng).reachable_time_ms()
    };
    assert_eq!(draw(42), draw(42));
    let all: Vec<u64> = (0..200).map(draw).collect();
    assert!(all.iter().all(|d| (15_000..45_000).contains(d)), "{all:?}");
    assert!(all.iter().any(|d| *d < 20_000) && all.iter().any(|d| *d > 40_000));
    // neigh_periodic_work redraws after 300 s.
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut t = NeighTable::new(NeighParams::default(), A_IP, A_MAC, 0, &mut rng);
    let first = t.reachable_time_ms();
    t.run_timers(299_000, &mut rng);
    assert_eq!(t.reachable_time_ms(), first);
    t.run_timers(330_000, &mut rng);
    assert_ne!(t.reachable_time_ms(), first);
}

/// The recorded defaults ([`KERNEL_DEFAULTS`]) equal this machine's
/// `/proc/sys/net/ipv4/neigh/default/*`: a new kernel with other defaults
/// is noticed here. Skips loudly only when /proc cannot be read.
#[test]
fn recorded_defaults_match_the_running_kernel() {
    let dir = std::path::Path::new("/proc/sys/net/ipv4/neigh/default");
    let read = |name: &str| -> Option<i64> {
        std::fs::read_to_string(dir.join(name)).ok().map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {s:?} is not a number: {e}"))
        })
    };
    if read("base_reachable_time_ms").is_none() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NEIGH SYSCTL CHECK SKIPPED: {} is not readable here",
            dir.display()
        );
        return;
    }
    let k = KERNEL_DEFAULTS;
    let expected = [
        ("base_reachable_time_ms", k.base_reachable_time_ms),
        ("delay_first_probe_time", k.delay_first_probe_time),
        ("retrans_time_ms", k.retrans_time_ms),
        ("ucast_solicit", k.ucast_solicit),
        ("mcast_solicit", k.mcast_solicit),
        ("mcast_resolicit", k.mcast_resolicit),
        ("app_solicit", k.app_solicit),
        ("gc_stale_time", k.gc_stale_time),
        ("locktime", k.locktime),
        ("unres_qlen_bytes", k.unres_qlen_bytes),
        ("gc_thresh1", k.gc_thresh1),
    ];
    let differ: Vec<String> = expected
        .iter()
        .filter_map(|(name, want)| {
            let got =
                read(name).unwrap_or_else(|| panic!("{name} missing under {}", dir.display()));
            (got != *want).then(|| format!("{name}: recorded {want}, this kernel {got}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "the running kernel's neighbour defaults differ from model/l2/neigh.rs KERNEL_DEFAULTS \
         (record the new kernel's values there, with its version): {differ:?}"
    );
}

#[test]
fn one_packet_keeps_a_short_lived_entry_probing_forever() {
    // Measured on 6.18 (docs/fidelity.md): a solicitation counts as a use,
    // so with reachable_time < delay_first_probe_time one packet sends
    // the entry round REACHABLE → DELAY → PROBE → REACHABLE for as long as
    // the neighbour answers, one unicast probe per round, no traffic.
    let p = NeighParams::default();
    let one = drive(Option::None, p.clone(), 3000, &[0], &[], u64::MAX, 60_000);
    use NudState::*;
    let rounds = one
        .sequence()
        .windows(3)
        .filter(|w| w == &[Delay, Probe, Reachable])
        .count();
    assert!(rounds >= 7, "{:?}", one.states);
    assert!(!one.sequence().contains(&Stale), "{:?}", one.states);
    // reachable_time above delay_first_probe_time: the first expiry finds
    // the entry unused and it rests in STALE.
    let long = drive(Option::None, p, 6000, &[0], &[], u64::MAX, 60_000);
    assert_eq!(long.sequence(), vec![None, Incomplete, Reachable, Stale]);
}
