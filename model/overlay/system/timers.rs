//! Time as explorable events in the L2 explorer (issue 16 item 2, the
//! explorer's half): a scenario that opts in with a `[time]` table gives
//! every container the kernel's neighbour subsystem
//! ([`crate::l2::neigh::NeighTable`], the same state machine `netrace
//! simulate` runs; there is no second one) and puts a simulated clock, in
//! milliseconds, into the explored state.
//!
//! # The abstraction: a discrete clock that jumps between event points
//!
//! The explorer's new choices are [`L2Action::Tick`] (the clock jumps to
//! the next *event point*) and [`L2Action::Release`] (a slow container's
//! held answer leaves now). Event points are, after `now`:
//!
//! - every container's neighbour timers (`neigh_timer_handler`, per
//!   entry): REACHABLE → DELAY/STALE after `reachable_time`, DELAY →
//!   PROBE after `delay_first_probe_time`, INCOMPLETE/PROBE retransmits
//!   every `retrans_time`, FAILED after `ucast_solicit` (+ `app_solicit` +
//!   `mcast_solicit`) probes;
//! - br0's and vxlan1's FDB ageing: a dynamic entry expires `ageing_time`
//!   after it was last refreshed (`br_fdb_cleanup`, `vxlan_cleanup`, at
//!   the one-second grain of the model's tables);
//! - a held answer's earliest and latest leaving time (the container's
//!   `reply_delay`: the answer of a slow container leaves any time in
//!   `[min, max]` after it was due, or at once when `p < 1`);
//! - the end of a script's `wait N`.
//!
//! Frames other than held answers, the overlay driver's work and the
//! operator's cleanup take no time: the clock moves only when nothing of
//! them is pending, and container scripts are prompt (a step that can run
//! runs before the clock moves; `wait N` says when a container acts
//! again). Between two event points nothing changes by itself, so the
//! explorer loses nothing by acting only at event points — except through
//! the time stamps the actions leave behind (see below).
//!
//! **Sound** (every explored order is realisable with some timing): the
//! clock only moves forward, every timer fires at its kernel due time,
//! every held answer leaves within its stated delay range, and every other
//! frame is delivered within microseconds, which real latencies allow.
//!
//! **Under-approximates** (orders a real system can show and the explorer
//! does not try; a `holds` is a statement about the explored timings):
//! - a timer firing while a fast frame is still between two hops, or while
//!   the driver's netlink calls are pending (real: µs to a few ms);
//! - actions between event points: an answer released at an event point
//!   stamps `confirmed` there, not a little later, so a later expiry is not
//!   shifted relative to other deadlines (a region construction would
//!   split these; it is not built);
//! - a periodic operator job: `delete-local-arp` runs before the clock
//!   moves, so the window of up to one period in which the l3miss entry
//!   lives is not explored;
//! - the kernel's random factor: `reachable_time` is fixed at
//!   `base_reachable_time_ms` (the middle of the kernel's draw `[base/2,
//!   3·base/2)`) and never redrawn; the timer wheel's slack is not used.
//!
//! **Over-approximates**: nothing beyond the untimed explorer (a slow
//! container's answer may take any delay in its range, each as often as
//! the explorer likes, where the simulation draws it with probability
//! `p`). Like the untimed explorer, it delivers any frame in flight next,
//! so it also tries orders in which a frame overtakes one handed on
//! before it on the same host. One CPU's receive backlog does not produce
//! those (it is FIFO: `enqueue_to_backlog` / `process_backlog`, see
//! [`crate::overlay::timed`], which keeps one FIFO per host since the
//! timed simulation's minutes-long episodes came from such overtaking);
//! a host with several CPUs can (RPS, a sender on another CPU). So a
//! violation found here may need more than one CPU, and a `holds` covers
//! the FIFO orders too. Restricting the explorer to FIFO orders per host
//! is not done (it changes the state space of every L2 scenario).
//!
//! # The bound
//!
//! The clock never passes the scenario's `[time] horizon`: a state whose
//! next event point lies beyond it is terminal, and the properties judged
//! at quiescence (`l2.fdb_correct`, `l2.delivery`, `l2.converges`) are
//! judged there, "by the horizon". So a `holds` means "holds for every
//! explored order up to the horizon"; `netrace check --format json` names
//! the bound in the row's `extra` (`horizon_ms`). The space is finite
//! because every tick moves the clock forward by at least the kernel's
//! shortest timer (10 ms) or to a one-second table deadline.
//!
//! Script steps with the clock: `send X` hands the packet to the
//! neighbour table (`neigh_event_send`: transmitted, queued while
//! INCOMPLETE, or dropped) and completes; `resolve X` starts resolution
//! without a packet and completes once the entry is REACHABLE (or FAILED);
//! `forget X` is `ip neigh del`; `wait N` ends N seconds later; `garp` is
//! unchanged. `probe X` is refused: with timers the kernel probes by
//! itself (DELAY → PROBE).
//!
//! Not modelled here: responses to the data frames (the explorer's data
//! is one-way), upper-layer confirmation (`neigh_confirm`), `arp_accept`,
//! garbage collection (the machine-wide `gc_thresh1` is never reached by a
//! handful of entries), and the kernel oracle forcing timer order
//! (`netrace kernel` refuses a `[time]` scenario and says why).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{L2Action, L2State, OverlaySystem, ScriptStep};
use crate::l2::endpoint::DATA_MAGIC;
use crate::l2::neigh::{
    ArpOp, NeighAction, NeighParams, NeighTable, PacketType, QueuedPacket, Received,
};
use crate::sim::Trace;
use crate::wire::build;

/// The longest horizon a scenario may ask for: one hour.
pub const MAX_HORIZON_MS: u64 = 3_600_000;

/// `skb->truesize` of one queued data frame (a small UDP datagram).
const TRUESIZE: u32 = 768;

/// The scenario's `[time]` table, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeSpec {
    /// The clock never passes this, ms.
    pub horizon_ms: u64,
    /// Per container, in the scenario's order.
    pub containers: Vec<EpTiming>,
}

/// One container's timing in the explorer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpTiming {
    /// Its `net.ipv4.neigh.eth0.*`.
    pub params: NeighParams,
    /// Its answers leave between `.0` and `.1` ms after they are due
    /// (`None`: at once).
    pub hold_ms: Option<(u64, u64)>,
}

/// An answer of a slow container, not yet on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Held {
    /// The container.
    pub ep: u8,
    /// It may leave from this time on, ms.
    pub earliest_ms: u64,
    /// It has left by this time, ms.
    pub latest_ms: u64,
    /// The frame.
    pub bytes: Vec<u8>,
}

/// The clock and the containers' neighbour tables.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimeState {
    /// Simulated time, ms.
    pub now_ms: u64,
    /// Per container: its neighbour table.
    pub neigh: Vec<NeighTable>,
    /// Held answers, sorted.
    pub held: Vec<Held>,
    /// Per container: its script's `wait` ends at this time, ms.
    pub wait_until: Vec<u64>,
    /// Neighbour timers fired so far.
    pub firings: u32,
}

impl OverlaySystem {
    /// The model with the clock and the containers' neighbour tables
    /// (the scenario's `[time]` table).
    pub fn with_time(mut self, time: TimeSpec) -> Result<OverlaySystem, String> {
        if time.containers.len() != self.eps.len() {
            return Err("[time]: one timing per container".to_string());
        }
        for c in &self.spec.containers {
            if let Some(step) = c
                .script
                .iter()
                .find(|s| matches!(s, ScriptStep::Arp(_) | ScriptStep::Join))
            {
                let step = match step {
                    ScriptStep::Join => "join",
                    _ => "arp off/on",
                };
                return Err(format!(
                    "{}'s script has a \"{step}\" step, which a [time] scenario does not take \
                     yet: the timed neighbour tables do not model IFF_NOARP or a late join; \
                     drop the step or the [time] table",
                    c.name
                ));
            }
            if c.start.noarp || !c.start.eth0_neigh.is_empty() || c.start.joins_late {
                return Err(format!(
                    "{} has arp = false or eth0_neigh entries, which a [time] scenario does not \
                     take yet: its neighbour table starts empty with ARP on; drop the key or the \
                     [time] table",
                    c.name
                ));
            }
            if c.script.iter().any(|s| matches!(s, ScriptStep::Probe(_))) {
                return Err(format!(
                    "{}'s script has a \"probe\" step, which a [time] scenario does not take: \
                     with timers the kernel probes by itself (STALE -> DELAY -> PROBE); write \
                     \"send X\" and let the timers run",
                    c.name
                ));
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let neigh = self
            .eps
            .iter()
            .zip(&time.containers)
            .map(|(cfg, t)| {
                let mut table = NeighTable::new(t.params.clone(), cfg.ip, cfg.mac, 0, &mut rng);
                table.set_reachable_time_ms(t.params.base_reachable_ms());
                table
            })
            .collect();
        self.init.time = Some(TimeState {
            now_ms: 0,
            neigh,
            held: Vec::new(),
            wait_until: vec![0; self.eps.len()],
            firings: 0,
        });
        self.time = Some(time);
        Ok(self)
    }

    /// The `[time]` table, when the scenario has one.
    pub fn time(&self) -> Option<&TimeSpec> {
        self.time.as_ref()
    }

    /// Whether container `e`'s next script step may run (clock on).
    pub(super) fn timed_step_enabled(&self, s: &L2State, e: usize) -> bool {
        let t = s.time.as_ref().expect("clock on");
        t.now_ms >= t.wait_until[e]
    }

    /// The next event point after now, if any.
    fn next_event(&self, s: &L2State) -> Option<u64> {
        let t = s.time.as_ref()?;
        let now = t.now_ms;
        let mut next: Option<u64> = None;
        let mut see = |d: u64| {
            if d > now {
                next = Some(next.map_or(d, |n: u64| n.min(d)));
            }
        };
        for table in &t.neigh {
            for (_, n) in table.entries() {
                if let Some(d) = n.timer_ms() {
                    see(d);
                }
            }
        }
        for h in &t.held {
            see(h.earliest_ms);
            see(h.latest_ms);
        }
        for (e, &w) in t.wait_until.iter().enumerate() {
            if (s.eps[e].pc as usize) < self.spec.containers[e].script.len() {
                see(w);
            }
        }
        let ageing = u64::from(self.spec.ageing_time_s);
        for hs in &s.hosts {
            for f in hs.br.fdb.values().filter(|f| !f.local) {
                see((u64::from(f.updated_s) + ageing) * 1000);
            }
            for f in hs.vx.fdb.values().filter(|f| !f.permanent) {
                see((u64::from(f.used_s) + ageing) * 1000);
            }
        }
        next
    }

    /// The next event point, as the trace names it.
    pub(super) fn next_event_name(&self, s: &L2State) -> String {
        self.next_event(s)
            .map_or_else(|| "(no event)".to_string(), fmt_ms)
    }

    /// The clock's actions: held answers that may leave now, and the
    /// tick when nothing else must happen first.
    pub(super) fn timed_actions(&self, s: &L2State, out: &mut Vec<L2Action>) {
        let Some(t) = s.time.as_ref() else { return };
        for (i, h) in t.held.iter().enumerate() {
            if i > 0 && t.held[i - 1] == *h {
                continue;
            }
            if h.earliest_ms <= t.now_ms {
                out.push(L2Action::Release(i as u16));
            }
        }
        let prompt_work = out
            .iter()
            .any(|a| !matches!(a, L2Action::Release(_) | L2Action::Tick));
        if prompt_work {
            return;
        }
        let horizon = self.time.as_ref().map_or(0, |x| x.horizon_ms);
        let overdue = t.held.iter().any(|h| h.latest_ms <= t.now_ms);
        if overdue {
            return;
        }
        if self.next_event(s).is_some_and(|d| d <= horizon) {
            out.push(L2Action::Tick);
        }
    }

    /// The clock jumps to the next event point: FDB entries age, due
    /// neighbour timers fire.
    pub(super) fn tick(&self, s: &mut L2State, trace: &mut Trace) {
        let Some(to) = self.next_event(s) else { return };
        let t = s.time.as_mut().expect("clock on");
        t.now_ms = to;
        s.now_s = (to / 1000) as u32;
        trace.line(format!("clock: now {}", fmt_ms(to)));
        let now_s = s.now_s;
        for (h, hs) in s.hosts.iter_mut().enumerate() {
            for m in hs.br.age(&self.hosts[h].br, now_s) {
                trace.line(format!("{} br0 fdb: {m} aged out", self.hosts[h].name));
            }
            for m in hs.vx.age(&self.hosts[h].vx, now_s) {
                trace.line(format!("{} vxlan1 fdb: {m} aged out", self.hosts[h].name));
            }
        }
        for e in 0..self.eps.len() {
            let t = s.time.as_mut().expect("clock on");
            let due = t.neigh[e]
                .entries()
                .filter(|(_, n)| n.timer_ms().is_some_and(|d| d <= to))
                .count();
            if due == 0 {
                continue;
            }
            t.firings += due as u32;
            // The draws of the periodic work are not explored: the table
            // keeps reachable_time = base (see the module docs).
            let mut rng = ChaCha8Rng::seed_from_u64(to);
            let acts = t.neigh[e].run_timers(to, &mut rng);
            let base = t.neigh[e].params().base_reachable_ms();
            t.neigh[e].set_reachable_time_ms(base);
            for (_, a) in acts {
                self.timed_act(s, e, a, "timer", trace);
            }
        }
        for e in 0..self.eps.len() {
            self.timed_complete(s, e, trace);
        }
    }

    /// A held answer leaves now.
    pub(super) fn release(&self, s: &mut L2State, i: usize, trace: &mut Trace) {
        let t = s.time.as_mut().expect("clock on");
        let h = t.held.remove(i);
        trace.line(format!(
            "{} eth0 out (late, at {}): {}",
            self.eps[h.ep as usize].name,
            fmt_ms(t.now_ms),
            build::describe(&h.bytes)
        ));
        self.inject(s, h.ep as usize, h.bytes);
    }

    /// What container `e`'s neighbour table asks for.
    fn timed_act(&self, s: &mut L2State, e: usize, a: NeighAction, why: &str, trace: &mut Trace) {
        let cfg = &self.eps[e];
        let now = s.time.as_ref().expect("clock on").now_ms;
        match a {
            NeighAction::Solicit { target, unicast } => {
                let mut f = build::arp_request(cfg.mac, cfg.ip, target);
                if let Some(u) = unicast {
                    f[0..6].copy_from_slice(u.as_bytes());
                }
                s.eps[e].ep.replies.insert(target, 0);
                trace.line(format!(
                    "{} eth0 out ({why}, arp_solicit): {}",
                    cfg.name,
                    build::describe(&f)
                ));
                self.inject(s, e, f);
            }
            NeighAction::Reply { to_ip, to_mac } => {
                if !cfg.arp_responder {
                    trace.line(format!(
                        "{}: does not answer ARP (arp_responder = false)",
                        cfg.name
                    ));
                    return;
                }
                let f = build::arp_reply(cfg.mac, cfg.ip, to_mac, to_ip);
                let hold = self.time.as_ref().and_then(|t| t.containers[e].hold_ms);
                match hold {
                    Some((lo, hi)) => {
                        trace.line(format!(
                            "{}: answer held, leaves between {} and {}: {}",
                            cfg.name,
                            fmt_ms(now + lo),
                            fmt_ms(now + hi),
                            build::describe(&f)
                        ));
                        let t = s.time.as_mut().expect("clock on");
                        let item = Held {
                            ep: e as u8,
                            earliest_ms: now + lo,
                            latest_ms: now + hi,
                            bytes: f,
                        };
                        let at = t.held.binary_search(&item).unwrap_or_else(|x| x);
                        t.held.insert(at, item);
                    }
                    None => {
                        trace.line(format!("{} eth0 out: {}", cfg.name, build::describe(&f)));
                        self.inject(s, e, f);
                    }
                }
            }
            NeighAction::Transmit {
                packet,
                target,
                mac,
                ..
            } => {
                let mut payload = DATA_MAGIC.to_vec();
                payload.extend_from_slice(&(packet as u16).to_be_bytes());
                let f = build::unicast_ip(cfg.mac, mac, cfg.ip, target, &payload);
                trace.line(format!(
                    "{}: data frame #{packet} leaves to {mac}",
                    cfg.name
                ));
                self.inject(s, e, f);
            }
            NeighAction::Drop {
                packet,
                target,
                reason,
            } => trace.line(format!(
                "{}: data frame #{packet} to {target} dropped ({reason:?})",
                cfg.name
            )),
            NeighAction::State { target, from, to } => trace.line(format!(
                "{} neigh {target}: {} -> {}",
                cfg.name,
                from.name(),
                to.name()
            )),
            NeighAction::AppSolicit { target } => {
                trace.line(format!("{}: app_solicit for {target}", cfg.name))
            }
            NeighAction::Collected { target } => {
                trace.line(format!("{}: neigh {target} collected", cfg.name))
            }
        }
    }

    /// Container `e`'s next script step with the clock on.
    pub(super) fn timed_script(&self, s: &mut L2State, e: usize, trace: &mut Trace) {
        let pc = s.eps[e].pc as usize;
        let step = self.spec.containers[e].script[pc];
        let now = s.time.as_ref().expect("clock on").now_ms;
        let ip_of = |t: usize| self.eps[t].ip;
        match step {
            ScriptStep::Send(t) => {
                let id = super::data_frame_id(e, pc);
                trace.line(format!(
                    "{}: data frame #{id} to {} handed to the neighbour table",
                    self.eps[e].name, self.eps[t].name
                ));
                let tm = s.time.as_mut().expect("clock on");
                let acts = tm.neigh[e].neigh_event_send(
                    now,
                    ip_of(t),
                    Some(QueuedPacket {
                        id: u64::from(id),
                        truesize: TRUESIZE,
                    }),
                );
                s.sent.push(id);
                s.eps[e].pc += 1;
                for a in acts {
                    self.timed_act(s, e, a, "send", trace);
                }
            }
            ScriptStep::Resolve(t) => {
                let tm = s.time.as_mut().expect("clock on");
                let acts = tm.neigh[e].neigh_event_send(now, ip_of(t), None);
                s.eps[e].waiting = true;
                for a in acts {
                    self.timed_act(s, e, a, "resolve", trace);
                }
                self.timed_complete(s, e, trace);
            }
            ScriptStep::Forget(t) => {
                let tm = s.time.as_mut().expect("clock on");
                let acts = tm.neigh[e].delete(now, ip_of(t));
                trace.line(format!("{}: ip neigh del {}", self.eps[e].name, ip_of(t)));
                s.eps[e].pc += 1;
                for a in acts {
                    self.timed_act(s, e, a, "forget", trace);
                }
            }
            ScriptStep::Wait(n) => {
                let tm = s.time.as_mut().expect("clock on");
                tm.wait_until[e] = now + u64::from(n) * 1000;
                trace.line(format!(
                    "{}: waits until {}",
                    self.eps[e].name,
                    fmt_ms(tm.wait_until[e])
                ));
                s.eps[e].pc += 1;
            }
            ScriptStep::Garp => {
                let cfg = &self.eps[e];
                let f = build::gratuitous_arp(cfg.mac, cfg.ip);
                trace.line(format!("{} eth0 out: {}", cfg.name, build::describe(&f)));
                self.inject(s, e, f);
                s.eps[e].pc += 1;
            }
            ScriptStep::Probe(_) | ScriptStep::Arp(_) | ScriptStep::Join => {
                unreachable!("refused by with_time")
            }
        }
    }

    /// A `resolve` completes once its entry is REACHABLE (or FAILED).
    fn timed_complete(&self, s: &mut L2State, e: usize, trace: &mut Trace) {
        if !s.eps[e].waiting {
            return;
        }
        let Some(ScriptStep::Resolve(t)) = self.spec.containers[e]
            .script
            .get(s.eps[e].pc as usize)
            .copied()
        else {
            return;
        };
        let ip = self.eps[t].ip;
        let state = s.time.as_ref().expect("clock on").neigh[e].state(ip);
        let done = match state {
            Some(st) if st.connected() => Some("resolved"),
            Some(crate::l2::neigh::NudState::Failed) | None => Some("resolution FAILED"),
            _ => None,
        };
        if let Some(what) = done {
            s.eps[e].waiting = false;
            s.eps[e].pc += 1;
            trace.line(format!("{}: {ip} {what}", self.eps[e].name));
        }
    }

    /// A frame arrives at container `e`'s eth0 (clock on): ARP through the
    /// neighbour table, data frames counted.
    pub(super) fn timed_receive(&self, s: &mut L2State, e: usize, bytes: &[u8], trace: &mut Trace) {
        let cfg = &self.eps[e];
        let now = s.time.as_ref().expect("clock on").now_ms;
        match Received::sort(bytes, cfg.mac) {
            Some(Received::Arp(arp_in)) => {
                if arp_in.op == ArpOp::Reply
                    && arp_in.pkt_type == PacketType::Host
                    && arp_in.tip == cfg.ip
                {
                    let n = s.eps[e].ep.replies.entry(arp_in.sip).or_insert(0);
                    *n = n.saturating_add(1);
                }
                let tm = s.time.as_mut().expect("clock on");
                let acts = tm.neigh[e].arp_process(now, &arp_in);
                for a in acts {
                    self.timed_act(s, e, a, "arp_process", trace);
                }
                self.timed_complete(s, e, trace);
            }
            Some(Received::Ipv4(payload)) => {
                if let Some(id) = crate::l2::endpoint::data_id(payload, cfg.ip) {
                    trace.line(format!("{}: received data frame #{id}", cfg.name));
                    s.eps[e].ep.received.push(id);
                }
            }
            None => {}
        }
    }

    /// The summary lines of the clock and the neighbour tables.
    pub(super) fn timed_summary(&self, s: &L2State, out: &mut Vec<String>) {
        let Some(t) = s.time.as_ref() else { return };
        out.push(format!(
            "clock {} (horizon {}), {} neighbour timer(s) fired",
            fmt_ms(t.now_ms),
            fmt_ms(self.time.as_ref().map_or(0, |x| x.horizon_ms)),
            t.firings
        ));
        for (e, table) in t.neigh.iter().enumerate() {
            let entries: Vec<String> = table
                .entries()
                .map(|(ip, n)| {
                    format!(
                        "{ip}->{} {}",
                        n.mac().map_or("(none)".to_string(), |m| m.to_string()),
                        n.state().name()
                    )
                })
                .collect();
            out.push(format!(
                "{} neigh: {}",
                self.eps[e].name,
                if entries.is_empty() {
                    "(empty)".to_string()
                } else {
                    entries.join(" ")
                }
            ));
        }
        for h in &t.held {
            out.push(format!(
                "{}'s answer held until {}: {}",
                self.eps[h.ep as usize].name,
                fmt_ms(h.latest_ms),
                build::describe(&h.bytes)
            ));
        }
    }
}

/// `12.345 s`.
pub fn fmt_ms(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}
