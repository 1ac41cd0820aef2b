//! A two-host driver for the neighbour model (`netrace::l2::neigh`), for
//! tests/neigh.rs and tests/neigh_kernel.rs: host A sends to host B at
//! given times; B answers every ARP request A sends before
//! `answers_until_ms` at once; A's upper layer confirms at given times.
//! The trace is A's entry for B, state by state.

use std::net::Ipv4Addr;

use netrace::l2::neigh::{
    ArpIn, ArpOp, NeighAction, NeighParams, NeighTable, NudState, PacketType, QueuedPacket,
    TimerWheel,
};
use netrace::wire::EthernetAddress;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A's address.
pub const A_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
/// B's address.
pub const B_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
/// A's MAC.
pub const A_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x0a, 0xc7, 0x00, 0x01]);
/// B's MAC.
pub const B_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x0a, 0xc7, 0x00, 0x02]);

/// B's unicast reply to A.
pub fn reply_from_b() -> ArpIn {
    ArpIn {
        op: ArpOp::Reply,
        sha: B_MAC,
        sip: B_IP,
        tha: A_MAC,
        tip: A_IP,
        pkt_type: PacketType::Host,
    }
}

/// What a run of the driver saw.
#[derive(Debug, Default)]
pub struct Trace {
    /// A's entry for B: (time, state entered), starting with NONE at 0.
    pub states: Vec<(u64, NudState)>,
    /// A's ARP requests for B: (time, unicast MAC or broadcast).
    pub solicits: Vec<(u64, Option<EthernetAddress>)>,
    /// Packets transmitted (id, time).
    pub transmitted: Vec<(u64, u64)>,
    /// Packets dropped (id, time).
    pub dropped: Vec<(u64, u64)>,
    /// When the timers of A's entry for B fired.
    pub fired: Vec<u64>,
    /// When that entry's timer is due after the end (MAX: none runs).
    pub next_timer: u64,
}

impl Trace {
    /// The state of A's entry for B at `t`.
    pub fn state_at(&self, t: u64) -> NudState {
        self.states
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(NudState::None, |(_, s)| *s)
    }

    /// The sequence of states entered, in order.
    pub fn sequence(&self) -> Vec<NudState> {
        self.states.iter().map(|(_, s)| *s).collect()
    }
}

/// Runs A's table with `params` and `reachable_time = rt_ms` until
/// `end_ms`: packet `i` sent at `sends[i]`, confirmations at `confirms`,
/// B answering requests sent before `answers_until_ms`; timers fire as
/// `wheel` says, or on time.
#[allow(clippy::too_many_arguments)]
pub fn drive(
    wheel: Option<TimerWheel>,
    params: NeighParams,
    rt_ms: u64,
    sends: &[u64],
    confirms: &[u64],
    answers_until_ms: u64,
    end_ms: u64,
) -> Trace {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut table = NeighTable::new(params, A_IP, A_MAC, 0, &mut rng);
    table.set_reachable_time_ms(rt_ms);
    table.set_timer_wheel(wheel);
    let mut trace = Trace {
        states: vec![(0, NudState::None)],
        ..Trace::default()
    };
    // (time, 0 = confirm before send at the same ms, 1 = send, index)
    let mut events: Vec<(u64, u8, u64)> = confirms.iter().map(|t| (*t, 0, 0)).collect();
    events.extend(sends.iter().enumerate().map(|(i, t)| (*t, 1, i as u64)));
    events.sort();
    events.push((end_ms, 2, 0));
    for (at, kind, id) in events {
        loop {
            let due = table.next_timer_ms();
            if due > at {
                break;
            }
            if table.entry(B_IP).and_then(|n| n.timer_ms()) == Some(due) {
                trace.fired.push(due);
            }
            let acts: Vec<NeighAction> = table
                .run_timers(due, &mut rng)
                .into_iter()
                .map(|(_, a)| a)
                .collect();
            handle(&mut table, &mut trace, due, acts, answers_until_ms);
        }
        let acts = match kind {
            0 => {
                table.neigh_confirm(at, B_IP);
                Vec::new()
            }
            1 => table.neigh_event_send(at, B_IP, Some(QueuedPacket { id, truesize: 768 })),
            _ => Vec::new(),
        };
        handle(&mut table, &mut trace, at, acts, answers_until_ms);
    }
    trace.next_timer = table
        .entry(B_IP)
        .and_then(|n| n.timer_ms())
        .unwrap_or(u64::MAX);
    trace
}

fn handle(
    table: &mut NeighTable,
    trace: &mut Trace,
    now: u64,
    acts: Vec<NeighAction>,
    answers_until_ms: u64,
) {
    let mut replies = 0;
    for a in acts {
        match a {
            NeighAction::State { target, to, .. } if target == B_IP => trace.states.push((now, to)),
            NeighAction::Solicit { target, unicast } if target == B_IP => {
                trace.solicits.push((now, unicast));
                if now < answers_until_ms {
                    replies += 1;
                }
            }
            NeighAction::Transmit { packet, .. } => trace.transmitted.push((packet, now)),
            NeighAction::Drop { packet, .. } => trace.dropped.push((packet, now)),
            _ => {}
        }
    }
    for _ in 0..replies {
        let acts = table.arp_process(now, &reply_from_b());
        handle(table, trace, now, acts, answers_until_ms);
    }
}
