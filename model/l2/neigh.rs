//! The Linux neighbour subsystem of one container interface (its ARP
//! cache), with the kernel's timers on a simulated clock.
//!
//! Upstream: torvalds/linux (GPL-2.0), `net/core/neighbour.c`,
//! `include/net/neighbour.h` and `net/ipv4/arp.c`. The facts below were
//! read there (kernel 6.x sources, checked against the running 6.18 in
//! `tests/neigh_kernel.rs`) and written here anew; no kernel code is
//! carried over. Each function below names the kernel function it stands
//! for:
//!
//! - [`NeighTable::neigh_event_send`]: the output path of an IPv4 packet
//!   (`neigh_output` → `neigh_resolve_output` → `neigh_event_send_probe`
//!   → `__neigh_event_send`). `used` is stamped only on this slow path:
//!   while an entry is REACHABLE (or PERMANENT/NOARP) packets leave by
//!   `neigh_hh_output`/`neigh_connected_output`, which leave `used` alone.
//!   NONE/FAILED → INCOMPLETE with `probes = ucast_solicit`, the first
//!   solicitation sent at once (`immediate_ok`, since 5.17) and the timer
//!   at `retrans_time`; STALE → DELAY with the timer at
//!   `delay_first_probe_time`; with `mcast_solicit + app_solicit == 0`
//!   the entry goes FAILED and the packet is dropped. Packets sent while
//!   INCOMPLETE wait in the entry's queue, bounded by `unres_qlen_bytes`
//!   of `truesize`, the oldest dropped first.
//! - [`NeighTable::run_timers`]: `neigh_timer_handler` per entry and
//!   `neigh_periodic_work` per table, each at its own due time.
//!   REACHABLE: still alive while `now ≤ confirmed + reachable_time`
//!   (re-armed there); else DELAY if `now ≤ used + delay_first_probe_time`,
//!   else STALE (no timer). DELAY: REACHABLE if confirmed within the last
//!   `delay_first_probe_time`, else PROBE with `probes = 0`. INCOMPLETE
//!   and PROBE: FAILED once `probes ≥ neigh_max_probes` (`ucast + app +
//!   mcast_solicit`, or `+ mcast_resolicit` in PROBE), else one more
//!   solicitation and the timer at `retrans_time` (never below HZ/100 =
//!   10 ms). FAILED runs `neigh_invalidate`: every queued packet is
//!   reported unreachable and dropped.
//! - Measured, not found in the source: every solicitation stamps `used`
//!   (in the model, in `neigh_probe`). On 6.18 an entry answered in PROBE
//!   whose `reachable_time` is shorter than `delay_first_probe_time`
//!   expires into DELAY again, not STALE, with no traffic at all: one
//!   packet keeps it cycling REACHABLE → DELAY → PROBE → REACHABLE, one
//!   unicast probe per round, for as long as the neighbour answers
//!   (`tests/neigh_kernel.rs`, first setup). The line that stamps it was
//!   not located in the time of this slice; `neigh_event_send_probe` is
//!   the only writer in the sources read.
//! - `arp_solicit` (inside the timer and the send path): the first
//!   `ucast_solicit` probes are unicast to the cached MAC, the next
//!   `app_solicit` go to user space (`neigh_app_ns`, no frame), the rest
//!   are broadcast; nothing is sent on an IFF_NOARP device
//!   (`arp_send_dst`).
//! - [`NeighTable::neigh_update`]: `__neigh_update` for the non-admin
//!   callers (ARP) and the admin ones (`ip neigh replace … permanent`,
//!   `ip neigh del`). A REACHABLE update stamps `confirmed` *before* the
//!   override check, so even an update that is refused for its MAC
//!   confirms the entry; a different MAC without override is ignored; a
//!   STALE update with the same MAC keeps the current state; an entry
//!   leaving an invalid state sends its queue.
//! - [`NeighTable::arp_process`]: `arp_rcv` + `arp_process` with
//!   `arp_ignore = 0`, `arp_filter = 0`, `arp_accept` 0 or 1 and
//!   `drop_gratuitous_arp = 0`. A request *for our address* creates or
//!   updates the sender's entry to STALE with override
//!   (`neigh_event_ns`) and is answered; any other ARP (a request for
//!   someone else, a reply, a gratuitous ARP) only updates an entry that
//!   exists already (creation needs `arp_accept`), to REACHABLE for a
//!   unicast reply to us, to STALE otherwise, overriding a different MAC
//!   only when `locktime` has passed since the entry last changed or the
//!   frame is a gratuitous ARP. Frames for another host
//!   (`PACKET_OTHERHOST`) and every ARP on an IFF_NOARP device are
//!   dropped.
//! - [`NeighTable::neigh_confirm`]: `neigh_confirm` /
//!   `dst_confirm_neigh` (TCP's forward progress, `MSG_CONFIRM`): stamps
//!   `confirmed` and changes no state; the next timer decides. Ping (ICMP)
//!   never confirms.
//! - IFF_NOARP ([`NeighTable::set_noarp`], `arp_constructor`): new
//!   entries are NOARP with the device's *own* MAC, never time out and
//!   never solicit; switching the flag flushes the table
//!   (`arp_netdev_event` → `neigh_changeaddr`).
//! - The random factor ([`neigh_rand_reach_time`]): `reachable_time` is
//!   drawn uniformly in `[base/2, 3·base/2)` **per interface** (per
//!   `neigh_parms`), not per entry: when the interface's parameters are
//!   created or `base_reachable_time_ms` is written, and again by
//!   `neigh_periodic_work` once 300 s have passed since the last draw.
//! - Garbage collection (`neigh_periodic_work`, every
//!   `base_reachable_time/2`): only when the whole table holds at least
//!   `gc_thresh1` entries (128 by default, counted over every interface
//!   and namespace of the machine: [`NeighTable::set_entries_elsewhere`]);
//!   then it removes FAILED entries and those not used for
//!   `gc_stale_time`, never PERMANENT ones or ones with a timer running.
//!   On a container with a handful of neighbours nothing is ever
//!   collected.
//!
//! Time is simulated: every entry point takes `now` in milliseconds from
//! the caller, [`NeighTable::next_timer_ms`] says when the next timer is
//! due, and the random draws come from the caller's seeded RNG. No wall
//! clock, no OS randomness.
//!
//! Timers fire at their due time by default; [`TimerWheel`] makes them
//! fire when the kernel's timer wheel (`kernel/time/timer.c`) would: up
//! to a wheel granule late (32 ms at HZ = 250 for delays of 0.25–2 s),
//! in lockstep along chains of timers. The periodic work is not put on
//! the wheel (it only collects and redraws).
//!
//! Not modelled: `neigh_forced_gc` (tables above
//! `gc_thresh2`), proxy ARP (`pneigh_*`, `proxy_delay`), `anycast_delay`,
//! `arp_announce`/`arp_ignore`/`arp_filter` other than their defaults,
//! `arp_accept = 2`, managed entries (`NTF_MANAGED`, `interval_probe_time_ms`),
//! `NTF_EXT_LEARNED`, carrier loss, IPv6 neighbour discovery, and the
//! phase of the machine-wide table's 300-second redraw (the model counts
//! from the interface's creation). The timed simulation
//! ([`crate::overlay::timed`]) and the L2 explorer of a `[time]` scenario
//! (`model/overlay/system/timers.rs`) both run this table.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;

use rand::{Rng, RngCore};

use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame};

/// HZ/100 in ms: the shortest timer `neigh_timer_handler` arms.
const MIN_TIMER_MS: u64 = 10;

/// `neigh_periodic_work` redraws `reachable_time` after this long.
const REDRAW_MS: u64 = 300_000;

/// A neighbour entry's state (`NUD_*` in `include/uapi/linux/neighbour.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NudState {
    /// Just created, nothing known (`NUD_NONE`).
    None,
    /// Solicitations out, no answer yet.
    Incomplete,
    /// Confirmed within `reachable_time`.
    Reachable,
    /// Usable, unconfirmed; no timer.
    Stale,
    /// Used while stale: waiting `delay_first_probe_time` for an
    /// upper-layer confirmation before probing.
    Delay,
    /// Unicast probes to the cached MAC are out.
    Probe,
    /// Resolution failed.
    Failed,
    /// No resolution needed (IFF_NOARP devices).
    Noarp,
    /// Set by the administrator; never changes by itself.
    Permanent,
}

impl NudState {
    /// The `ip neigh` spelling.
    pub fn name(self) -> &'static str {
        match self {
            NudState::None => "NONE",
            NudState::Incomplete => "INCOMPLETE",
            NudState::Reachable => "REACHABLE",
            NudState::Stale => "STALE",
            NudState::Delay => "DELAY",
            NudState::Probe => "PROBE",
            NudState::Failed => "FAILED",
            NudState::Noarp => "NOARP",
            NudState::Permanent => "PERMANENT",
        }
    }

    /// The state named by `ip neigh` (`REACHABLE`, …), if any.
    pub fn from_name(name: &str) -> Option<NudState> {
        [
            NudState::None,
            NudState::Incomplete,
            NudState::Reachable,
            NudState::Stale,
            NudState::Delay,
            NudState::Probe,
            NudState::Failed,
            NudState::Noarp,
            NudState::Permanent,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// `NUD_IN_TIMER`: a timer runs in this state.
    pub fn in_timer(self) -> bool {
        matches!(
            self,
            NudState::Incomplete | NudState::Reachable | NudState::Delay | NudState::Probe
        )
    }

    /// `NUD_VALID`: the cached MAC may be used.
    pub fn valid(self) -> bool {
        matches!(
            self,
            NudState::Permanent
                | NudState::Noarp
                | NudState::Reachable
                | NudState::Probe
                | NudState::Stale
                | NudState::Delay
        )
    }

    /// `NUD_CONNECTED`: packets take the fast path.
    pub fn connected(self) -> bool {
        matches!(
            self,
            NudState::Permanent | NudState::Noarp | NudState::Reachable
        )
    }
}

impl fmt::Display for NudState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The neighbour sysctls as written under
/// `/proc/sys/net/ipv4/neigh/<dev>/`, each in the sysctl's own unit;
/// [`NeighSysctls::validate`] turns them into [`NeighParams`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NeighSysctls {
    /// `base_reachable_time_ms` (ms).
    pub base_reachable_time_ms: i64,
    /// `delay_first_probe_time` (s).
    pub delay_first_probe_time: i64,
    /// `retrans_time_ms` (ms).
    pub retrans_time_ms: i64,
    /// `ucast_solicit` (probes).
    pub ucast_solicit: i64,
    /// `mcast_solicit` (probes).
    pub mcast_solicit: i64,
    /// `mcast_resolicit` (probes).
    pub mcast_resolicit: i64,
    /// `app_solicit` (probes).
    pub app_solicit: i64,
    /// `gc_stale_time` (s).
    pub gc_stale_time: i64,
    /// `locktime` (USER_HZ ticks, 1/100 s).
    pub locktime: i64,
    /// `unres_qlen_bytes` (bytes of `truesize`).
    pub unres_qlen_bytes: i64,
    /// `gc_thresh1` (entries; table-wide, only under `default/`).
    pub gc_thresh1: i64,
}

/// The defaults of the kernel this project is developed on: Linux
/// 6.18.44 (`uname -r` = 6.18.44-fc-v1300, CONFIG_HZ=250), read from
/// `/proc/sys/net/ipv4/neigh/default/*` on 2026-12-07. They are the
/// kernel's built-in ARP defaults (`arp_tbl` in `net/ipv4/arp.c`);
/// `tests/neigh.rs` fails when the running kernel's differ.
pub const KERNEL_DEFAULTS: NeighSysctls = NeighSysctls {
    // net.ipv4.neigh.default.base_reachable_time_ms = 30000
    base_reachable_time_ms: 30_000,
    // net.ipv4.neigh.default.delay_first_probe_time = 5
    delay_first_probe_time: 5,
    // net.ipv4.neigh.default.retrans_time_ms = 1000
    retrans_time_ms: 1_000,
    // net.ipv4.neigh.default.ucast_solicit = 3
    ucast_solicit: 3,
    // net.ipv4.neigh.default.mcast_solicit = 3
    mcast_solicit: 3,
    // net.ipv4.neigh.default.mcast_resolicit = 0
    mcast_resolicit: 0,
    // net.ipv4.neigh.default.app_solicit = 0
    app_solicit: 0,
    // net.ipv4.neigh.default.gc_stale_time = 60
    gc_stale_time: 60,
    // net.ipv4.neigh.default.locktime = 100 (USER_HZ: 1 s)
    locktime: 100,
    // net.ipv4.neigh.default.unres_qlen_bytes = 212992
    unres_qlen_bytes: 212_992,
    // net.ipv4.neigh.default.gc_thresh1 = 128
    gc_thresh1: 128,
};

impl Default for NeighSysctls {
    fn default() -> NeighSysctls {
        KERNEL_DEFAULTS
    }
}

/// A sysctl value the kernel would not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighParamError {
    /// The sysctl's name (`base_reachable_time_ms`, …).
    pub sysctl: &'static str,
    /// The value given.
    pub value: i64,
    /// The largest value accepted.
    pub max: i64,
}

impl fmt::Display for NeighParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "net.ipv4.neigh.*.{} = {}: the kernel accepts 0 to {} (an int in the sysctl's unit); \
             give a value in that range",
            self.sysctl, self.value, self.max
        )
    }
}

impl std::error::Error for NeighParamError {}

impl NeighSysctls {
    /// Checks every value against the range the kernel's sysctl handlers
    /// accept (`proc_dointvec_minmax` with 0..INT_MAX, and for the
    /// jiffies-backed ones a value whose jiffies fit an int) and converts
    /// to milliseconds.
    pub fn validate(&self) -> Result<NeighParams, NeighParamError> {
        const INT_MAX: i64 = i32::MAX as i64;
        // Seconds and USER_HZ ticks become jiffies (HZ ≤ 1000): the
        // kernel refuses values whose jiffies overflow an int.
        let check = |sysctl: &'static str, value: i64, max: i64| {
            if (0..=max).contains(&value) {
                Ok(value as u64)
            } else {
                Err(NeighParamError { sysctl, value, max })
            }
        };
        Ok(NeighParams {
            base_reachable_ms: check(
                "base_reachable_time_ms",
                self.base_reachable_time_ms,
                INT_MAX,
            )?,
            delay_probe_ms: check(
                "delay_first_probe_time",
                self.delay_first_probe_time,
                INT_MAX / 1000,
            )? * 1000,
            retrans_ms: check("retrans_time_ms", self.retrans_time_ms, INT_MAX)?,
            ucast_probes: check("ucast_solicit", self.ucast_solicit, INT_MAX)? as u32,
            mcast_probes: check("mcast_solicit", self.mcast_solicit, INT_MAX)? as u32,
            mcast_reprobes: check("mcast_resolicit", self.mcast_resolicit, INT_MAX)? as u32,
            app_probes: check("app_solicit", self.app_solicit, INT_MAX)? as u32,
            gc_stale_ms: check("gc_stale_time", self.gc_stale_time, INT_MAX / 1000)? * 1000,
            locktime_ms: check("locktime", self.locktime, INT_MAX / 10)? * 10,
            queue_len_bytes: check("unres_qlen_bytes", self.unres_qlen_bytes, INT_MAX)?,
            gc_thresh1: check("gc_thresh1", self.gc_thresh1, INT_MAX)? as usize,
        })
    }
}

/// Validated neighbour parameters, times in ms (`NEIGH_VAR(p, …)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NeighParams {
    base_reachable_ms: u64,
    delay_probe_ms: u64,
    retrans_ms: u64,
    ucast_probes: u32,
    mcast_probes: u32,
    mcast_reprobes: u32,
    app_probes: u32,
    gc_stale_ms: u64,
    locktime_ms: u64,
    queue_len_bytes: u64,
    gc_thresh1: usize,
}

impl Default for NeighParams {
    fn default() -> NeighParams {
        KERNEL_DEFAULTS
            .validate()
            .expect("the recorded kernel defaults are valid")
    }
}

impl NeighParams {
    /// `BASE_REACHABLE_TIME` in ms.
    pub fn base_reachable_ms(&self) -> u64 {
        self.base_reachable_ms
    }
    /// `DELAY_PROBE_TIME` in ms.
    pub fn delay_probe_ms(&self) -> u64 {
        self.delay_probe_ms
    }
    /// `RETRANS_TIME` in ms.
    pub fn retrans_ms(&self) -> u64 {
        self.retrans_ms
    }
    /// `LOCKTIME` in ms.
    pub fn locktime_ms(&self) -> u64 {
        self.locktime_ms
    }
    /// `GC_STALETIME` in ms.
    pub fn gc_stale_ms(&self) -> u64 {
        self.gc_stale_ms
    }

    /// The sysctls these parameters came from, each in its own unit (the
    /// inverse of [`NeighSysctls::validate`]): what to write under
    /// `/proc/sys/net/ipv4/neigh/<dev>/` for a real interface to run with
    /// the same timers (the soak oracle does).
    pub fn sysctls(&self) -> NeighSysctls {
        NeighSysctls {
            base_reachable_time_ms: self.base_reachable_ms as i64,
            delay_first_probe_time: (self.delay_probe_ms / 1000) as i64,
            retrans_time_ms: self.retrans_ms as i64,
            ucast_solicit: i64::from(self.ucast_probes),
            mcast_solicit: i64::from(self.mcast_probes),
            mcast_resolicit: i64::from(self.mcast_reprobes),
            app_solicit: i64::from(self.app_probes),
            gc_stale_time: (self.gc_stale_ms / 1000) as i64,
            locktime: (self.locktime_ms / 10) as i64,
            unres_qlen_bytes: self.queue_len_bytes as i64,
            gc_thresh1: self.gc_thresh1 as i64,
        }
    }
}

/// `neigh_rand_reach_time`: uniform in `[base/2, base/2 + base)`, 0 for
/// a zero base.
pub fn neigh_rand_reach_time(base_ms: u64, rng: &mut impl RngCore) -> u64 {
    if base_ms == 0 {
        0
    } else {
        rng.gen_range(0..base_ms) + base_ms / 2
    }
}

/// The kernel's timer wheel (`kernel/time/timer.c`), for firing the
/// entries' timers when the kernel would rather than at their due time.
/// `msecs_to_jiffies` rounds a delay up to whole jiffies; then
/// `calc_wheel_index` puts a timer `delta` jiffies ahead on level `n`,
/// the first with `delta < 63 << 3n`, and `calc_index` rounds its expiry
/// up past the next multiple of the level's granularity `1 << 3n`
/// jiffies: it fires 1 to `1 << 3n` jiffies late (at HZ = 250: 4 ms for
/// delays under 252 ms, up to 32 ms up to 2 s, up to 256 ms up to 16 s).
/// How late a given timer fires depends on where the machine's jiffies
/// stand: with `phase_us` (the offset of jiffy 0 from the model's time 0)
/// the wheel is followed exactly — a timer armed by another timer's
/// handler then fires in lockstep with it, as on the kernel; without it
/// each timer is late by the average, `(1 + (1 << 3n)) / 2` jiffies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerWheel {
    /// CONFIG_HZ.
    pub hz: u32,
    /// Where jiffy 0 lies, in µs before the model's time 0; `None`: unknown.
    pub phase_us: Option<u32>,
}

impl TimerWheel {
    /// When a timer armed at `now_ms` for `due_ms` fires.
    pub fn fire_ms(&self, now_ms: u64, due_ms: u64) -> u64 {
        let hz = u64::from(self.hz.max(1));
        let delta_j = (due_ms.saturating_sub(now_ms) * hz).div_ceil(1000);
        let mut shift = 0;
        while shift < 24 && delta_j >= 63 << shift {
            shift += 3;
        }
        let gran = 1u64 << shift;
        match self.phase_us {
            None => now_ms + (delta_j * 1000 + (gran + 1) * 500) / hz,
            Some(phase) => {
                let jiffy_us = 1_000_000 / hz;
                let phase = u64::from(phase);
                let expires = (now_ms * 1000 + phase) / jiffy_us + delta_j;
                let fire_j = ((expires + gran) >> shift) << shift;
                (fire_j * jiffy_us - phase).div_ceil(1000)
            }
        }
    }

    /// HZ/100 jiffies (at least one), the shortest neighbour timer, in ms.
    fn min_timer_ms(&self) -> u64 {
        let hz = u64::from(self.hz.max(1));
        (hz / 100).max(1) * 1000 / hz
    }
}

/// A packet waiting for resolution (an skb on `arp_queue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueuedPacket {
    /// The caller's id for it.
    pub id: u64,
    /// Its `skb->truesize` in bytes (the queue bound counts these, not
    /// frame lengths: about 2.1 KB for a full-size frame).
    pub truesize: u32,
}

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue exceeded `unres_qlen_bytes` (`unres_discards`).
    QueueFull,
    /// Resolution failed; the sender was told unreachable
    /// (`neigh_invalidate` → `arp_error_report`).
    Failed,
    /// `mcast_solicit + app_solicit == 0`: no resolution is attempted.
    NoProbes,
}

/// What the neighbour subsystem asks of the rest of the stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NeighAction {
    /// `arp_solicit`: an ARP request for `target`, to `unicast` or
    /// broadcast when `None`.
    Solicit {
        /// The address asked for.
        target: Ipv4Addr,
        /// The destination MAC of a unicast probe.
        unicast: Option<EthernetAddress>,
    },
    /// `neigh_app_ns`: an `RTM_GETNEIGH` to user space, no frame.
    AppSolicit {
        /// The address asked for.
        target: Ipv4Addr,
    },
    /// `arp_process`: an ARP reply to a request for our address.
    Reply {
        /// The requester's address.
        to_ip: Ipv4Addr,
        /// The requester's MAC (the reply is unicast to it).
        to_mac: EthernetAddress,
    },
    /// A packet leaves with this destination MAC.
    Transmit {
        /// The packet's id.
        packet: u64,
        /// Its next hop.
        target: Ipv4Addr,
        /// The destination MAC.
        mac: EthernetAddress,
    },
    /// A packet is dropped.
    Drop {
        /// The packet's id.
        packet: u64,
        /// Its next hop.
        target: Ipv4Addr,
        /// Why.
        reason: DropReason,
    },
    /// An entry changed state (what `ip monitor neigh` would show, plus
    /// the changes the kernel does not notify).
    State {
        /// The entry.
        target: Ipv4Addr,
        /// Its state before.
        from: NudState,
        /// Its state now.
        to: NudState,
    },
    /// `neigh_periodic_work` removed an entry.
    Collected {
        /// The entry.
        target: Ipv4Addr,
    },
}

/// One neighbour entry (`struct neighbour`), times in ms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Neighbour {
    state: NudState,
    mac: Option<EthernetAddress>,
    confirmed: i64,
    used: i64,
    updated: i64,
    probes: u32,
    timer: Option<u64>,
    queue: VecDeque<QueuedPacket>,
    queue_bytes: u64,
}

impl Neighbour {
    /// Its state.
    pub fn state(&self) -> NudState {
        self.state
    }
    /// The cached MAC (`ha`), if any was ever learned.
    pub fn mac(&self) -> Option<EthernetAddress> {
        self.mac
    }
    /// When its timer fires, if one runs.
    pub fn timer_ms(&self) -> Option<u64> {
        self.timer
    }
    /// Packets waiting for resolution, oldest first.
    pub fn queue(&self) -> impl Iterator<Item = &QueuedPacket> {
        self.queue.iter()
    }
    /// Last confirmation (ms; may lie before 0).
    pub fn confirmed_ms(&self) -> i64 {
        self.confirmed
    }
}

/// The flags of `__neigh_update` the model uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UpdateFlags {
    /// `NEIGH_UPDATE_F_OVERRIDE`: a different MAC may replace the cached one.
    pub override_mac: bool,
    /// `NEIGH_UPDATE_F_ADMIN`: an administrative change (netlink, ioctl).
    pub admin: bool,
}

/// The ARP operation of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOp {
    /// `ARPOP_REQUEST`.
    Request,
    /// `ARPOP_REPLY`.
    Reply,
}

/// `skb->pkt_type` of a received frame: how its destination MAC relates
/// to the receiving device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Unicast to our MAC (`PACKET_HOST`).
    Host,
    /// Broadcast (`PACKET_BROADCAST`).
    Broadcast,
    /// Unicast to another MAC (`PACKET_OTHERHOST`), seen in promiscuous mode.
    OtherHost,
}

/// A received ARP packet, as `arp_process` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpIn {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sha: EthernetAddress,
    /// Sender protocol address.
    pub sip: Ipv4Addr,
    /// Target hardware address.
    pub tha: EthernetAddress,
    /// Target protocol address.
    pub tip: Ipv4Addr,
    /// How the frame was addressed to us.
    pub pkt_type: PacketType,
}

/// A frame received on an interface, as the stack sorts it before the
/// neighbour table sees it: `eth_type_trans` sets `pkt_type` from the
/// destination MAC, `arp_rcv` parses ARP for `arp_process`, and IPv4 goes
/// up only when it is addressed to our MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// An ARP request or reply.
    Arp(ArpIn),
    /// An IPv4 packet to our MAC: the Ethernet payload.
    Ipv4(&'a [u8]),
}

impl<'a> Received<'a> {
    /// Sorts `bytes` arriving at an interface whose MAC is `mac`; `None`
    /// for what the stack drops here (malformed, another ARP operation,
    /// IPv4 for another MAC, other ethertypes).
    pub fn sort(bytes: &'a [u8], mac: EthernetAddress) -> Option<Received<'a>> {
        let eth = EthernetFrame::new_checked(bytes).ok()?;
        let dst = eth.dst_addr();
        let pkt_type = if dst == mac {
            PacketType::Host
        } else if dst.is_broadcast() {
            PacketType::Broadcast
        } else {
            PacketType::OtherHost
        };
        match eth.ethertype() {
            EtherType::Arp => {
                let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()?;
                let op = match arp.operation {
                    ArpOperation::Request => ArpOp::Request,
                    ArpOperation::Reply => ArpOp::Reply,
                    _ => return None,
                };
                Some(Received::Arp(ArpIn {
                    op,
                    sha: arp.source_hardware_addr,
                    sip: arp.source_protocol_addr,
                    tha: arp.target_hardware_addr,
                    tip: arp.target_protocol_addr,
                    pkt_type,
                }))
            }
            EtherType::Ipv4 if pkt_type == PacketType::Host => Some(Received::Ipv4(eth.payload())),
            _ => None,
        }
    }
}

/// The neighbour table of one interface: its parameters, its
/// per-interface `reachable_time`, and its entries by next-hop address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NeighTable {
    params: NeighParams,
    own_ip: Ipv4Addr,
    own_mac: EthernetAddress,
    noarp: bool,
    arp_accept: bool,
    reachable_ms: u64,
    last_rand: u64,
    gc_due: u64,
    entries_elsewhere: usize,
    wheel: Option<TimerWheel>,
    entries: BTreeMap<Ipv4Addr, Neighbour>,
}

impl NeighTable {
    /// The table of an interface created at `now` with address `own_ip`
    /// and MAC `own_mac`: `neigh_parms_alloc` draws its `reachable_time`
    /// from `rng`; the periodic work first runs `reachable_time` later
    /// (`neigh_table_init`).
    pub fn new(
        params: NeighParams,
        own_ip: Ipv4Addr,
        own_mac: EthernetAddress,
        now: u64,
        rng: &mut impl RngCore,
    ) -> NeighTable {
        let reachable_ms = neigh_rand_reach_time(params.base_reachable_ms, rng);
        NeighTable {
            params,
            own_ip,
            own_mac,
            noarp: false,
            arp_accept: false,
            reachable_ms,
            last_rand: now,
            gc_due: now + reachable_ms.max(MIN_TIMER_MS),
            entries_elsewhere: 0,
            wheel: None,
            entries: BTreeMap::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &NeighParams {
        &self.params
    }

    /// The interface's current `reachable_time` (what `ip ntable show`
    /// prints as `reachable`).
    pub fn reachable_time_ms(&self) -> u64 {
        self.reachable_ms
    }

    /// Sets `reachable_time` to a value drawn elsewhere — e.g. read from
    /// the real interface by `ip ntable show` in an oracle run.
    pub fn set_reachable_time_ms(&mut self, ms: u64) {
        self.reachable_ms = ms;
    }

    /// Fire the entries' timers when the kernel's timer wheel would
    /// ([`TimerWheel`]) rather than at their due time (`None`, the
    /// default).
    pub fn set_timer_wheel(&mut self, wheel: Option<TimerWheel>) {
        self.wheel = wheel;
    }

    /// When a timer armed at `now` for `due` fires.
    fn arm(&self, now: u64, due: u64) -> u64 {
        match self.wheel {
            Some(w) => w.fire_ms(now, due),
            None => due,
        }
    }

    /// HZ/100, the shortest neighbour timer, in ms.
    fn min_timer_ms(&self) -> u64 {
        self.wheel.map_or(MIN_TIMER_MS, |w| w.min_timer_ms())
    }

    /// `net.ipv4.conf.<dev>.arp_accept` 0 (false) or 1 (true).
    pub fn set_arp_accept(&mut self, on: bool) {
        self.arp_accept = on;
    }

    /// How many ARP entries the rest of the machine holds (other
    /// interfaces and namespaces): `neigh_periodic_work` collects only
    /// when the whole table reaches `gc_thresh1`.
    pub fn set_entries_elsewhere(&mut self, n: usize) {
        self.entries_elsewhere = n;
    }

    /// `ip link set dev … arp off|on`: IFF_NOARP changes flush every
    /// entry (`neigh_changeaddr`), queued packets dropped.
    pub fn set_noarp(&mut self, noarp: bool) -> Vec<NeighAction> {
        let mut out = Vec::new();
        if self.noarp == noarp {
            return out;
        }
        self.noarp = noarp;
        for (ip, n) in std::mem::take(&mut self.entries) {
            for p in n.queue {
                out.push(NeighAction::Drop {
                    packet: p.id,
                    target: ip,
                    reason: DropReason::Failed,
                });
            }
        }
        out
    }

    /// The entry for `ip`.
    pub fn entry(&self, ip: Ipv4Addr) -> Option<&Neighbour> {
        self.entries.get(&ip)
    }

    /// The state of the entry for `ip`, if there is one.
    pub fn state(&self, ip: Ipv4Addr) -> Option<NudState> {
        self.entries.get(&ip).map(|n| n.state)
    }

    /// Every entry, by address.
    pub fn entries(&self) -> impl Iterator<Item = (Ipv4Addr, &Neighbour)> {
        self.entries.iter().map(|(ip, n)| (*ip, n))
    }

    /// When the next timer (an entry's or the periodic work) is due.
    pub fn next_timer_ms(&self) -> u64 {
        self.entries
            .values()
            .filter_map(|n| n.timer)
            .fold(self.gc_due, u64::min)
    }

    /// `neigh_create` + the protocol constructor (`arp_constructor`).
    fn lookup_or_create(&mut self, now: u64, ip: Ipv4Addr) -> &mut Neighbour {
        let base = self.params.base_reachable_ms as i64;
        let (noarp, own_mac) = (self.noarp, self.own_mac);
        self.entries.entry(ip).or_insert_with(|| Neighbour {
            state: if noarp {
                NudState::Noarp
            } else {
                NudState::None
            },
            mac: noarp.then_some(own_mac),
            confirmed: now as i64 - 2 * base,
            used: now as i64,
            updated: now as i64,
            probes: 0,
            timer: None,
            queue: VecDeque::new(),
            queue_bytes: 0,
        })
    }

    /// Sets an entry's state, logging the change.
    fn set_state(n: &mut Neighbour, ip: Ipv4Addr, to: NudState, out: &mut Vec<NeighAction>) {
        if n.state != to {
            out.push(NeighAction::State {
                target: ip,
                from: n.state,
                to,
            });
            n.state = to;
        }
    }

    /// A packet for next hop `ip` leaves the IP layer at `now`
    /// (`neigh_output`; `neigh_event_send` on the slow path). With
    /// `packet = None` it is `neigh_event_send(n, NULL)`: resolution
    /// without a packet.
    pub fn neigh_event_send(
        &mut self,
        now: u64,
        ip: Ipv4Addr,
        packet: Option<QueuedPacket>,
    ) -> Vec<NeighAction> {
        let mut out = Vec::new();
        self.event_send(now, ip, packet, &mut out);
        out
    }

    fn event_send(
        &mut self,
        now: u64,
        ip: Ipv4Addr,
        packet: Option<QueuedPacket>,
        out: &mut Vec<NeighAction>,
    ) {
        let p = self.params.clone();
        let delay_due = self.arm(now, now + p.delay_probe_ms);
        let retrans_due = self.arm(now, now + p.retrans_ms.max(self.min_timer_ms()));
        let n = self.lookup_or_create(now, ip);
        if n.state.connected() {
            // neigh_hh_output / neigh_connected_output: `used` untouched.
            if let (Some(pk), Some(mac)) = (packet, n.mac) {
                out.push(NeighAction::Transmit {
                    packet: pk.id,
                    target: ip,
                    mac,
                });
            }
            return;
        }
        // neigh_resolve_output → neigh_event_send_probe.
        n.used = now as i64;
        let mut immediate_probe = false;
        match n.state {
            NudState::Delay | NudState::Probe => {}
            NudState::Stale => {
                n.timer = Some(delay_due);
                n.updated = now as i64;
                Self::set_state(n, ip, NudState::Delay, out);
            }
            NudState::Incomplete => {}
            _ => {
                // NONE, FAILED.
                if p.mcast_probes + p.app_probes > 0 {
                    n.probes = p.ucast_probes;
                    n.updated = now as i64;
                    n.timer = Some(retrans_due);
                    Self::set_state(n, ip, NudState::Incomplete, out);
                    immediate_probe = true;
                } else {
                    n.updated = now as i64;
                    Self::set_state(n, ip, NudState::Failed, out);
                    if let Some(pk) = packet {
                        out.push(NeighAction::Drop {
                            packet: pk.id,
                            target: ip,
                            reason: DropReason::NoProbes,
                        });
                    }
                    return;
                }
            }
        }
        if n.state == NudState::Incomplete {
            if let Some(pk) = packet {
                // Oldest first until the new one fits.
                while n.queue_bytes + u64::from(pk.truesize) > p.queue_len_bytes {
                    let Some(old) = n.queue.pop_front() else {
                        break;
                    };
                    n.queue_bytes -= u64::from(old.truesize);
                    out.push(NeighAction::Drop {
                        packet: old.id,
                        target: ip,
                        reason: DropReason::QueueFull,
                    });
                }
                n.queue.push_back(pk);
                n.queue_bytes += u64::from(pk.truesize);
            }
        } else if let (Some(pk), Some(mac)) = (packet, n.mac) {
            out.push(NeighAction::Transmit {
                packet: pk.id,
                target: ip,
                mac,
            });
        }
        if immediate_probe {
            self.neigh_probe(now, ip, out);
        }
    }

    /// `neigh_max_probes`.
    fn max_probes(&self, state: NudState) -> u32 {
        let p = &self.params;
        p.ucast_probes
            + p.app_probes
            + if state == NudState::Probe {
                p.mcast_reprobes
            } else {
                p.mcast_probes
            }
    }

    /// `neigh_probe` → `arp_solicit`, then `probes++`. A solicitation also
    /// counts as a use (`used = now`): measured on 6.18, not located in the
    /// source (see the module docs).
    fn neigh_probe(&mut self, now: u64, ip: Ipv4Addr, out: &mut Vec<NeighAction>) {
        let (ucast, app, noarp) = (self.params.ucast_probes, self.params.app_probes, self.noarp);
        let n = self.entries.get_mut(&ip).expect("probed entry exists");
        n.used = now as i64;
        let k = n.probes;
        if k < ucast {
            if !noarp {
                out.push(NeighAction::Solicit {
                    target: ip,
                    unicast: n.mac,
                });
            }
        } else if k - ucast < app {
            out.push(NeighAction::AppSolicit { target: ip });
        } else if !noarp {
            out.push(NeighAction::Solicit {
                target: ip,
                unicast: None,
            });
        }
        n.probes += 1;
    }

    /// `neigh_invalidate`: queued packets are reported and dropped.
    fn invalidate(n: &mut Neighbour, ip: Ipv4Addr, out: &mut Vec<NeighAction>) {
        for pk in n.queue.drain(..) {
            out.push(NeighAction::Drop {
                packet: pk.id,
                target: ip,
                reason: DropReason::Failed,
            });
        }
        n.queue_bytes = 0;
    }

    /// Fires every timer due at or before `now`, each at its own due
    /// time and in time order (ties: entries by address, then the
    /// periodic work). Returns what happened, with the time it happened.
    pub fn run_timers(&mut self, now: u64, rng: &mut impl RngCore) -> Vec<(u64, NeighAction)> {
        let mut out = Vec::new();
        loop {
            let entry = self
                .entries
                .iter()
                .filter_map(|(ip, n)| n.timer.map(|t| (t, *ip)))
                .min();
            let mut acts = Vec::new();
            let at = match entry {
                Some((t, ip)) if t <= now && t <= self.gc_due => {
                    self.neigh_timer_handler(t, ip, &mut acts);
                    t
                }
                _ if self.gc_due <= now => {
                    let t = self.gc_due;
                    self.neigh_periodic_work(t, rng, &mut acts);
                    t
                }
                _ => break,
            };
            out.extend(acts.into_iter().map(|a| (at, a)));
        }
        out
    }

    /// `neigh_timer_handler` for the entry of `ip`, at `now`.
    fn neigh_timer_handler(&mut self, now: u64, ip: Ipv4Addr, out: &mut Vec<NeighAction>) {
        let p = self.params.clone();
        let rt = self.reachable_ms;
        let min_timer = self.min_timer_ms();
        let n = self.entries.get_mut(&ip).expect("timer of a live entry");
        n.timer = None;
        let t = now as i64;
        let state = n.state;
        if !state.in_timer() {
            return;
        }
        let retrans = p.retrans_ms.max(min_timer);
        let mut next = now + 1000;
        match state {
            NudState::Reachable => {
                if t <= n.confirmed + rt as i64 {
                    next = (n.confirmed + rt as i64) as u64;
                } else if t <= n.used + p.delay_probe_ms as i64 {
                    n.updated = t;
                    Self::set_state(n, ip, NudState::Delay, out);
                    next = now + p.delay_probe_ms;
                } else {
                    n.updated = t;
                    Self::set_state(n, ip, NudState::Stale, out);
                }
            }
            NudState::Delay => {
                if t <= n.confirmed + p.delay_probe_ms as i64 {
                    n.updated = t;
                    Self::set_state(n, ip, NudState::Reachable, out);
                    next = (n.confirmed + rt as i64).max(0) as u64;
                } else {
                    n.updated = t;
                    n.probes = 0;
                    Self::set_state(n, ip, NudState::Probe, out);
                    next = now + retrans;
                }
            }
            _ => next = now + retrans,
        }
        let state = n.state;
        if matches!(state, NudState::Incomplete | NudState::Probe) {
            let max = self.max_probes(state);
            let n = self.entries.get_mut(&ip).expect("entry");
            if n.probes >= max {
                n.updated = t;
                Self::set_state(n, ip, NudState::Failed, out);
                Self::invalidate(n, ip, out);
                return;
            }
        }
        let due = self.arm(now, next.max(now + min_timer));
        let n = self.entries.get_mut(&ip).expect("entry");
        if n.state.in_timer() {
            n.timer = Some(due);
        }
        if matches!(n.state, NudState::Incomplete | NudState::Probe) {
            self.neigh_probe(now, ip, out);
        }
    }

    /// `neigh_periodic_work` at `now`.
    fn neigh_periodic_work(
        &mut self,
        now: u64,
        rng: &mut impl RngCore,
        out: &mut Vec<NeighAction>,
    ) {
        if now > self.last_rand + REDRAW_MS {
            self.last_rand = now;
            self.reachable_ms = neigh_rand_reach_time(self.params.base_reachable_ms, rng);
        }
        self.gc_due = now + (self.params.base_reachable_ms / 2).max(MIN_TIMER_MS);
        if self.entries.len() + self.entries_elsewhere < self.params.gc_thresh1 {
            return;
        }
        let t = now as i64;
        let stale = self.params.gc_stale_ms as i64;
        let mut dead = Vec::new();
        for (ip, n) in self.entries.iter_mut() {
            if n.state == NudState::Permanent || n.state.in_timer() {
                continue;
            }
            if n.used < n.confirmed && n.confirmed <= t {
                n.used = n.confirmed;
            }
            let fresh = n.used <= t && t < n.used + stale;
            if n.state == NudState::Failed || !fresh {
                dead.push(*ip);
            }
        }
        for ip in dead {
            if let Some(mut n) = self.entries.remove(&ip) {
                Self::invalidate(&mut n, ip, out);
                out.push(NeighAction::Collected { target: ip });
            }
        }
    }

    /// `neigh_confirm` (upper-layer confirmation): stamps `confirmed`.
    pub fn neigh_confirm(&mut self, now: u64, ip: Ipv4Addr) {
        if let Some(n) = self.entries.get_mut(&ip) {
            n.confirmed = now as i64;
        }
    }

    /// `__neigh_update` of the entry for `ip` (created if absent) to
    /// state `new` with link-layer address `lladdr`.
    pub fn neigh_update(
        &mut self,
        now: u64,
        ip: Ipv4Addr,
        lladdr: Option<EthernetAddress>,
        new: NudState,
        flags: UpdateFlags,
    ) -> Vec<NeighAction> {
        let mut out = Vec::new();
        self.update(now, ip, lladdr, new, flags, &mut out);
        out
    }

    fn update(
        &mut self,
        now: u64,
        ip: Ipv4Addr,
        lladdr: Option<EthernetAddress>,
        mut new: NudState,
        flags: UpdateFlags,
        out: &mut Vec<NeighAction>,
    ) {
        let base = self.params.base_reachable_ms as i64;
        let reachable_due = self.arm(now, now + self.reachable_ms);
        let t = now as i64;
        let n = self.lookup_or_create(now, ip);
        let old = n.state;
        if !flags.admin && matches!(old, NudState::Noarp | NudState::Permanent) {
            return;
        }
        if !new.valid() {
            n.timer = None;
            Self::set_state(n, ip, new, out);
            if matches!(old, NudState::Incomplete | NudState::Probe) && new == NudState::Failed {
                Self::invalidate(n, ip, out);
            }
            return;
        }
        let lladdr = match (lladdr, n.mac) {
            (Some(m), _) => m,
            (None, Some(m)) if old.valid() => m,
            // No address given and none known: the request is discarded.
            _ => return,
        };
        if new.connected() {
            n.confirmed = t;
        }
        // Before a valid state the cached bytes count as a new address.
        let addr_changes = !(old.valid() && n.mac == Some(lladdr));
        if old.valid() {
            if addr_changes && !flags.override_mac {
                return;
            }
            if !addr_changes && new == NudState::Stale && !flags.admin {
                new = old;
            }
        }
        if new != old || addr_changes {
            n.updated = t;
        }
        if new != old {
            n.timer = None;
            if new == NudState::Probe {
                n.probes = 0;
            }
            if new.in_timer() {
                n.timer = Some(if new == NudState::Reachable {
                    reachable_due
                } else {
                    now
                });
            }
            Self::set_state(n, ip, new, out);
        }
        if addr_changes {
            n.mac = Some(lladdr);
            if !new.connected() {
                n.confirmed = t - 2 * base;
            }
        }
        if new == old || old.valid() {
            return;
        }
        // The entry just became valid: send what waited for it, through
        // its (new) output function, while it stays valid.
        let queued: Vec<QueuedPacket> = n.queue.drain(..).collect();
        n.queue_bytes = 0;
        for pk in queued {
            if !self.entries.get(&ip).is_some_and(|n| n.state.valid()) {
                out.push(NeighAction::Drop {
                    packet: pk.id,
                    target: ip,
                    reason: DropReason::Failed,
                });
                continue;
            }
            self.event_send(now, ip, Some(pk), out);
        }
    }

    /// `ip neigh replace IP lladdr MAC nud permanent`.
    pub fn add_permanent(
        &mut self,
        now: u64,
        ip: Ipv4Addr,
        mac: EthernetAddress,
    ) -> Vec<NeighAction> {
        self.neigh_update(
            now,
            ip,
            Some(mac),
            NudState::Permanent,
            UpdateFlags {
                override_mac: true,
                admin: true,
            },
        )
    }

    /// `ip neigh del IP` (`neigh_delete`): FAILED by admin, then removed.
    pub fn delete(&mut self, now: u64, ip: Ipv4Addr) -> Vec<NeighAction> {
        let mut out = Vec::new();
        if self.entries.contains_key(&ip) {
            self.update(
                now,
                ip,
                None,
                NudState::Failed,
                UpdateFlags {
                    override_mac: true,
                    admin: true,
                },
                &mut out,
            );
            if let Some(mut n) = self.entries.remove(&ip) {
                Self::invalidate(&mut n, ip, &mut out);
            }
        }
        out
    }

    /// `arp_rcv` + `arp_process` for an ARP packet received at `now`.
    pub fn arp_process(&mut self, now: u64, arp: &ArpIn) -> Vec<NeighAction> {
        let mut out = Vec::new();
        // arp_rcv: nothing on an IFF_NOARP device, nothing for another host.
        if self.noarp || arp.pkt_type == PacketType::OtherHost {
            return out;
        }
        if arp.tip.is_multicast() || arp.tip.is_loopback() {
            return out;
        }
        let for_us = arp.tip == self.own_ip;
        if arp.sip.is_unspecified() {
            // RFC 2131 duplicate address detection: answered, not learned.
            if arp.op == ArpOp::Request && for_us {
                out.push(NeighAction::Reply {
                    to_ip: arp.sip,
                    to_mac: arp.sha,
                });
            }
            return out;
        }
        if arp.op == ArpOp::Request && for_us {
            // neigh_event_ns: create or update to STALE, with override.
            self.update(
                now,
                arp.sip,
                Some(arp.sha),
                NudState::Stale,
                UpdateFlags {
                    override_mac: true,
                    admin: false,
                },
                &mut out,
            );
            out.push(NeighAction::Reply {
                to_ip: arp.sip,
                to_mac: arp.sha,
            });
            return out;
        }
        // Requests for someone else (no proxy modelled), replies, GARPs.
        let exists = self.entries.contains_key(&arp.sip);
        let sip_unicast =
            arp.sip != self.own_ip && !arp.sip.is_broadcast() && !arp.sip.is_multicast();
        let is_garp = (exists || self.arp_accept)
            && arp.sip == arp.tip
            && (arp.op == ArpOp::Request || arp.tha == arp.sha)
            && sip_unicast;
        let create =
            self.arp_accept && !exists && (is_garp || (arp.op == ArpOp::Reply && sip_unicast));
        if !(exists || create) {
            return out;
        }
        let updated = self
            .entries
            .get(&arp.sip)
            .map_or(i64::MIN / 2, |n| n.updated);
        let override_mac = now as i64 > updated + self.params.locktime_ms as i64 || is_garp;
        let state = if arp.op == ArpOp::Reply && arp.pkt_type == PacketType::Host {
            NudState::Reachable
        } else {
            NudState::Stale
        };
        self.update(
            now,
            arp.sip,
            Some(arp.sha),
            state,
            UpdateFlags {
                override_mac,
                admin: false,
            },
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn sysctls_round_trip() {
        let sys = NeighSysctls {
            base_reachable_time_ms: 1_234,
            delay_first_probe_time: 2,
            retrans_time_ms: 300,
            ucast_solicit: 0,
            mcast_solicit: 4,
            mcast_resolicit: 3,
            app_solicit: 1,
            gc_stale_time: 7,
            locktime: 50,
            unres_qlen_bytes: 4_096,
            gc_thresh1: 64,
        };
        assert_eq!(sys.validate().unwrap().sysctls(), sys);
        assert_eq!(NeighParams::default().sysctls(), KERNEL_DEFAULTS);
    }

    #[test]
    fn rand_reach_time_stays_in_the_kernel_interval() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws: Vec<u64> = (0..2000)
            .map(|_| neigh_rand_reach_time(1000, &mut rng))
            .collect();
        assert!(draws.iter().all(|d| (500..1500).contains(d)), "{draws:?}");
        // Both halves of the interval are hit: the draw is not a constant.
        assert!(draws.iter().any(|d| *d < 700) && draws.iter().any(|d| *d > 1300));
        assert_eq!(neigh_rand_reach_time(0, &mut rng), 0);
    }

    #[test]
    fn timer_wheel_lateness_grows_with_the_level() {
        // HZ = 250: level 0 (< 63 jiffies) one jiffy late, level 1 4.5
        // jiffies on average, level 2 32.5.
        let mean = TimerWheel {
            hz: 250,
            phase_us: None,
        };
        assert_eq!(mean.fire_ms(0, 100), 104);
        assert_eq!(mean.fire_ms(0, 1000), 1018);
        assert_eq!(mean.fire_ms(0, 3000), 3130);
        // Exactly: 1000 ms = 250 jiffies from jiffy 0 → the next multiple
        // of 8 after 250, jiffy 256 = 1024 ms; a timer armed by that
        // handler 250 jiffies on fires at jiffy 512, 6 jiffies late again
        // (lockstep).
        let exact = TimerWheel {
            hz: 250,
            phase_us: Some(0),
        };
        assert_eq!(exact.fire_ms(0, 1000), 1024);
        assert_eq!(exact.fire_ms(1024, 2024), 2048);
        // A phase shifts the grid.
        let shifted = TimerWheel {
            hz: 250,
            phase_us: Some(8000),
        };
        assert_eq!(shifted.fire_ms(0, 1000), 1016);
    }

    #[test]
    fn validation_names_the_sysctl() {
        let bad = NeighSysctls {
            delay_first_probe_time: -1,
            ..KERNEL_DEFAULTS
        };
        let e = bad.validate().unwrap_err();
        assert_eq!(e.sysctl, "delay_first_probe_time");
        assert!(e.to_string().contains("delay_first_probe_time = -1"), "{e}");
        let p = KERNEL_DEFAULTS.validate().unwrap();
        assert_eq!(p.locktime_ms(), 1000);
        assert_eq!(p.delay_probe_ms(), 5000);
    }
}
