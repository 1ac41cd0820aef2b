//! Running a [`Plan`] on the kernel and reading back what it did.
//!
//! [`run`] builds the topology ([`Topology::build`]), opens a capture
//! socket on every container's `eth0`, checks the starting state (no
//! container MAC in any `br0`, vxlan1 holding exactly the remote peers,
//! no frame received yet), then runs the plan's events one by one:
//!
//! - `Inject`: the container's socket sends the exact bytes;
//! - `Program`: the overlay driver's netlink call, as iproute2 spells it
//!   (`ip neigh replace ... nud permanent`, `bridge fdb replace ... self
//!   permanent`);
//! - `DeleteLocalNeigh`: `ip neigh del` of every local container's entry
//!   on vxlan1;
//! - `Wait`: a script's `wait N` is N seconds on the real clock, with the
//!   scenario's `ageing_time_s` given to every `br0` (`ageing_time`) and
//!   vxlan1 (`ageing`) by [`Topology::build`]: the kernel's own timers
//!   age the entries, nothing is deleted by hand. Frames are captured
//!   while it waits. `br_fdb_cleanup` re-arms its work at the earliest
//!   expiry, so a `br0` entry goes within a jiffy of `updated +
//!   ageing_time`; `vxlan_cleanup` re-arms at the earliest expiry too,
//!   but at most [`VXLAN_AGE_INTERVAL`] (`FDB_AGE_INTERVAL`, 10 s) ahead,
//!   so an entry learned after the timer was armed may go up to 10 s late:
//!   the wait for a `Wait`'s effect allows that much more. Real time also
//!   passes between events (milliseconds), where the model's does not:
//!   a wait therefore ends when the real clock, counted from the first
//!   event, reaches the model's (the sum of the waits so far), so the
//!   milliseconds do not add up over a long script; a run whose events
//!   overran a wait by more than [`MAX_CLOCK_LAG`] fails. When the
//!   kernel's timers show a wait's effect late (vxlan's, above), the
//!   model's clock is taken to read the wait's end at the moment they
//!   have: entries that survive such a wait are that much older on the
//!   kernel, and if that ages one early, the next event's prediction
//!   fails to show, a disagreement, not a silent agreement. An entry the
//!   model ages exactly at a wait's end (a tie: learned `ageing_time_s`
//!   before it) is at most milliseconds from expiry on the kernel, and the
//!   wait for the prediction lets it go. [`check_timing`] refuses ageing
//!   times under [`MIN_KERNEL_AGEING_S`] and scripts that would wait
//!   longer than [`MAX_KERNEL_WAIT_S`] in all.
//!
//! After each event it waits, with a timeout that only matters when the
//! kernel disagrees, until the kernel shows the event's effect: every
//! container has received at least as many frames as the plan says
//! (`received_after`), and every host's `br0` FDB, vxlan1 FDB and vxlan1
//! neighbours equal the oracle form's prediction after that event. Only
//! then does the next event start; nothing is ordered by sleeping. The
//! first event whose effect never showed is reported, and later events
//! wait a shorter time (the run still completes, for the final tables).
//!
//! What it reads: `bridge -j fdb show` (entries with `master br0` whose
//! MAC is a container's; vxlan1's own entries that have a `dst` — the
//! device's multicast and own addresses have none and are not part of the
//! model), `ip -j neigh show dev vxlan1` (`PERMANENT` and `REACHABLE`
//! entries), and the captured frames, turned into ARP-reply and data
//! counts by the model's own [`observe`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::capture::{wait_any, PacketSocket};
use super::netns::{fdb_replace, neigh_replace, run as cmd, run_json, Topology};
use super::KernelError;
use crate::overlay::oracle::{apply, observe, oracle_form, Observables, OracleEvent, Plan};
use crate::overlay::system::{DriverOp, OverlaySystem};
use crate::sim::Model;
use crate::wire::build;

/// The shortest `ageing_time_s` a kernel run accepts: under 2 s the
/// milliseconds each event takes on the real clock could age an entry
/// the model (whose events take no time) keeps.
pub const MIN_KERNEL_AGEING_S: u32 = 2;

/// The most a kernel run waits for a plan's `wait` steps, seconds, in
/// all: runs are interactive and in CI, a scenario's default 300 s
/// ageing belongs to the model alone.
pub const MAX_KERNEL_WAIT_S: u64 = 60;

/// The most the real clock may run ahead of the model's at the start of
/// a wait: the model's times are whole seconds, so under half a second
/// of lag no entry ages on the kernel that the model keeps.
pub const MAX_CLOCK_LAG: Duration = Duration::from_millis(500);

/// `FDB_AGE_INTERVAL` of drivers/net/vxlan: the longest `vxlan_cleanup`
/// arms its timer ahead.
pub const VXLAN_AGE_INTERVAL: Duration = Duration::from_secs(10);

/// Refuses a plan whose real-clock waits a kernel run cannot honour:
/// an ageing time under [`MIN_KERNEL_AGEING_S`], or more than
/// [`MAX_KERNEL_WAIT_S`] of `wait` in all. The message says what to
/// change in the scenario.
pub fn check_timing(model: &OverlaySystem, plan: &Plan) -> Result<(), String> {
    let waits: u64 = plan
        .events
        .iter()
        .map(|e| match e {
            OracleEvent::Wait { seconds } => u64::from(*seconds),
            _ => 0,
        })
        .sum();
    if waits == 0 {
        return Ok(());
    }
    let ageing = model.spec().ageing_time_s;
    if ageing < MIN_KERNEL_AGEING_S {
        return Err(format!(
            "ageing_time_s = {ageing} is too short for the real clock: each event takes \
             milliseconds there; set [network] ageing_time_s = {MIN_KERNEL_AGEING_S} or more"
        ));
    }
    if waits > MAX_KERNEL_WAIT_S {
        return Err(format!(
            "this schedule waits {waits} s in all on the real clock, more than the kernel \
             oracle's {MAX_KERNEL_WAIT_S} s; give the scenario a short [network] ageing_time_s \
             (e.g. 2) and waits of that length, so that the real timers age the entries"
        ));
    }
    Ok(())
}

/// How long to wait for effects.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Per event, until the kernel first disagrees (default 2 s).
    pub wait_timeout: Duration,
    /// Per event once the kernel has disagreed (default 200 ms): the
    /// predictions no longer apply, this only lets each cascade finish.
    pub settle_timeout: Duration,
    /// After the last event, how long no new frame must arrive before the
    /// captures are read (default 50 ms). This orders nothing: it only
    /// gives frames the model does not predict a chance to be counted.
    pub quiet_period: Duration,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            wait_timeout: Duration::from_secs(2),
            settle_timeout: Duration::from_millis(200),
            quiet_period: Duration::from_millis(50),
        }
    }
}

/// One event as it ran.
#[derive(Clone, Debug, Serialize)]
pub struct EventLog {
    /// What was done, in words.
    pub what: String,
    /// How long until its effect showed (or the timeout), milliseconds.
    pub waited_ms: f64,
    /// Whether the predicted effect showed.
    pub reached: bool,
    /// When it did not: what was missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// What the kernel did with a plan.
#[derive(Clone, Debug, Serialize)]
pub struct KernelRun {
    /// The kernel's observables, computed as the model's are.
    pub observed: Observables,
    /// The frames each container received, in order.
    #[serde(skip)]
    pub frames: Vec<Vec<Vec<u8>>>,
    /// The events as they ran.
    pub events: Vec<EventLog>,
    /// The index of the first event whose predicted effect never showed.
    pub first_divergence: Option<usize>,
    /// How far the real clock was past the model's when a wait began, at
    /// most, in milliseconds: the work since the previous wait took longer
    /// than the wait (0 when every wait began in time). Over
    /// [`MAX_CLOCK_LAG`] the run fails.
    pub clock_lag_ms: f64,
    /// The namespaces used (all deleted when `run` returns).
    pub namespaces: Vec<String>,
}

/// The three per-host tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tables {
    br0_fdb: Vec<BTreeMap<String, String>>,
    vxlan_fdb: Vec<BTreeMap<String, String>>,
    vxlan_neigh: Vec<BTreeMap<String, String>>,
    flags: Vec<BTreeMap<String, String>>,
}

impl Tables {
    fn of(o: &Observables) -> Tables {
        Tables {
            br0_fdb: o.br0_fdb.clone(),
            vxlan_fdb: o.vxlan_fdb.clone(),
            vxlan_neigh: o.vxlan_neigh.clone(),
            flags: o.flags.clone(),
        }
    }

    /// The first difference, in words.
    fn diff(&self, other: &Tables, hosts: &[String]) -> Option<String> {
        let named = [
            ("br0 fdb", &self.br0_fdb, &other.br0_fdb),
            ("vxlan1 fdb", &self.vxlan_fdb, &other.vxlan_fdb),
            ("vxlan1 neighbours", &self.vxlan_neigh, &other.vxlan_neigh),
            ("entry flags", &self.flags, &other.flags),
        ];
        for (what, a, b) in named {
            for (h, name) in hosts.iter().enumerate() {
                let (x, y) = (a.get(h), b.get(h));
                if x != y {
                    return Some(format!(
                        "{name} {what}: kernel {} , model {}",
                        show_map(x),
                        show_map(y)
                    ));
                }
            }
        }
        None
    }
}

fn show_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}->{v}"))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "(empty)".into(),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails with [`KernelError::Unavailable`] unless the process is root.
pub fn require_root() -> Result<(), KernelError> {
    if is_root() {
        Ok(())
    } else {
        Err(KernelError::Unavailable(
            "not root: it creates network namespaces, veth pairs, bridges and vxlan devices \
             and opens raw packet sockets, which needs root (run it with sudo)"
                .into(),
        ))
    }
}

/// One line for an event.
pub fn describe_event(model: &OverlaySystem, event: &OracleEvent) -> String {
    let hosts = model.host_names();
    match event {
        OracleEvent::Inject { ep, frame } => format!(
            "{} eth0 out: {}",
            model.endpoints()[*ep].name,
            build::describe(frame)
        ),
        OracleEvent::Program { host, op } => match op {
            DriverOp::NeighAdd(ip, mac) => format!(
                "{} driver: ip neigh replace {ip} lladdr {mac} dev vxlan1 nud permanent",
                hosts[*host]
            ),
            DriverOp::FdbAdd(mac, remote) => format!(
                "{} driver: bridge fdb replace {mac} dev vxlan1 dst {remote} self permanent",
                hosts[*host]
            ),
            DriverOp::Miss(m) => format!("{} driver: miss {m:?} (not runnable)", hosts[*host]),
        },
        OracleEvent::DeleteLocalNeigh { host } => format!(
            "{} operator: ip neigh del <each local container> dev vxlan1",
            hosts[*host]
        ),
        OracleEvent::Wait { seconds } => format!(
            "{seconds} s pass on the real clock (ageing_time {} s)",
            model.spec().ageing_time_s
        ),
    }
}

/// Runs `plan` (a plan of `model`) on the kernel and reads back its
/// observables. Every namespace it created is gone when it returns,
/// whatever happened.
pub fn run(
    model: &OverlaySystem,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<KernelRun, KernelError> {
    require_root()?;
    check_timing(model, plan).map_err(KernelError::Failed)?;
    let n_eps = model.endpoints().len();
    if plan.received_after.len() != plan.events.len() {
        return Err(KernelError::Failed(
            "the plan's received_after does not match its events".into(),
        ));
    }
    // The oracle form's state after each event: what to wait for.
    let form = oracle_form(model);
    let mut state = form.init_state();
    let mut received: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n_eps];
    let initial = Tables::of(&observe(&form, &state, &received));
    let mut expected_after = Vec::new();
    for ev in &plan.events {
        apply(&form, &mut state, ev, &mut received);
        expected_after.push(Tables::of(&observe(&form, &state, &received)));
    }

    let topology = Topology::build(model)?;
    let namespaces = topology.namespaces().to_vec();
    let result = drive(model, plan, opts, &topology, &initial, &expected_after);
    drop(topology);
    let d = result?;
    if d.clock_lag > MAX_CLOCK_LAG {
        return Err(KernelError::Failed(format!(
            "the events before a wait took {} ms more than the wait itself, so the real \
             clock ran {} ms ahead of the model's and could age entries the model keeps; \
             make the waits longer than the work between them",
            d.clock_lag.as_millis(),
            d.clock_lag.as_millis()
        )));
    }
    Ok(KernelRun {
        observed: d.observed,
        frames: d.frames,
        events: d.events,
        first_divergence: d.first_divergence,
        clock_lag_ms: d.clock_lag.as_secs_f64() * 1e3,
        namespaces,
    })
}

struct Driven {
    observed: Observables,
    frames: Vec<Vec<Vec<u8>>>,
    events: Vec<EventLog>,
    first_divergence: Option<usize>,
    clock_lag: Duration,
}

fn drive(
    model: &OverlaySystem,
    plan: &Plan,
    opts: &RunOptions,
    topology: &Topology,
    initial: &Tables,
    expected_after: &[Tables],
) -> Result<Driven, KernelError> {
    let n_eps = model.endpoints().len();
    let hosts = model.host_names();
    let sockets: Vec<PacketSocket> = topology
        .container_ns
        .iter()
        .map(|ns| PacketSocket::open(ns, "eth0"))
        .collect::<Result<_, _>>()?;
    let mut frames: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n_eps];

    // The starting state: nothing received, nothing learned, the remote
    // peers programmed.
    wait_any(&sockets, &mut frames, Duration::ZERO)?;
    if let Some((e, f)) = frames
        .iter()
        .enumerate()
        .find_map(|(e, f)| f.first().map(|f| (e, f)))
    {
        return Err(KernelError::Failed(format!(
            "{} received a frame before the first event ({}): the setup is not quiet",
            model.endpoints()[e].name,
            build::describe(f)
        )));
    }
    let start = read_tables(model, topology)?;
    if let Some(d) = start.diff(initial, &hosts) {
        return Err(KernelError::Failed(format!(
            "the starting state is not the model's: {d}"
        )));
    }

    let mut events = Vec::new();
    let mut first_divergence = None;
    // The simulated clock is the sum of the waits so far; each wait ends
    // when the real clock, counted from here, reaches it again.
    let mut clock0 = Instant::now();
    let mut model_s: u64 = 0;
    let mut clock_lag = Duration::ZERO;
    let mut shown = Instant::now();
    for (i, ev) in plan.events.iter().enumerate() {
        let t0 = Instant::now();
        if t0.duration_since(shown) >= Duration::from_secs(3) {
            // A line every few seconds on long runs.
            eprintln!("netrace kernel: event {} of {}", i + 1, plan.events.len());
            shown = t0;
        }
        do_event(model, topology, &sockets, ev)?;
        let mut timeout = if first_divergence.is_none() {
            opts.wait_timeout
        } else {
            opts.settle_timeout
        };
        if let OracleEvent::Wait { seconds } = ev {
            // The real clock runs until it reads the model's again (the
            // milliseconds the events since the last wait took are not
            // added on top); frames that arrive meanwhile are kept.
            model_s += u64::from(*seconds);
            let until = clock0 + Duration::from_secs(model_s);
            clock_lag = clock_lag.max(Instant::now().saturating_duration_since(until));
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                if left.is_zero() {
                    break;
                }
                wait_any(&sockets, &mut frames, left.min(Duration::from_millis(100)))?;
            }
            timeout += until.saturating_duration_since(t0);
            if first_divergence.is_none() {
                timeout += VXLAN_AGE_INTERVAL;
            }
        }
        let missing = wait_for(
            model,
            topology,
            &sockets,
            &mut frames,
            &plan.received_after[i],
            &expected_after[i],
            t0 + timeout,
        )?;
        if missing.is_some() && first_divergence.is_none() {
            first_divergence = Some(i);
        }
        if matches!(ev, OracleEvent::Wait { .. }) {
            // The kernel's timers may show a wait's effect late (vxlan's up
            // to 10 s): the model's clock reads the wait's end when they
            // have, so that time does not count as the next wait's lag.
            let now_model = Instant::now()
                .checked_sub(Duration::from_secs(model_s))
                .unwrap_or(clock0);
            clock0 = clock0.max(now_model);
        }
        events.push(EventLog {
            what: describe_event(model, ev),
            waited_ms: (t0.elapsed().as_secs_f64() * 1e6).round() / 1000.0,
            reached: missing.is_none(),
            missing,
        });
    }
    // Frames nobody predicted get a chance to be counted.
    while wait_any(&sockets, &mut frames, opts.quiet_period)? > 0 {}
    let tables = read_tables(model, topology)?;
    drop(sockets);

    // The frame part of the observables exactly as the model computes
    // its own: `observe` over the captured frames (its per-host tables
    // come from the state, replaced by the kernel's right after).
    let form = oracle_form(model);
    let mut observed = observe(&form, &form.init_state(), &frames);
    observed.br0_fdb = tables.br0_fdb;
    observed.vxlan_fdb = tables.vxlan_fdb;
    observed.vxlan_neigh = tables.vxlan_neigh;
    observed.flags = tables.flags;
    Ok(Driven {
        observed,
        frames,
        events,
        first_divergence,
        clock_lag,
    })
}

/// Waits until the counts and tables are reached or `deadline` passes;
/// `None` when reached, else what is missing.
fn wait_for(
    model: &OverlaySystem,
    topology: &Topology,
    sockets: &[PacketSocket],
    frames: &mut [Vec<Vec<u8>>],
    counts: &[usize],
    tables: &Tables,
    deadline: Instant,
) -> Result<Option<String>, KernelError> {
    let hosts = model.host_names();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let short: Vec<String> = frames
            .iter()
            .zip(counts)
            .enumerate()
            .filter(|(_, (got, want))| got.len() < **want)
            .map(|(e, (got, want))| {
                format!(
                    "{} received {} of {} frame(s)",
                    model.endpoints()[e].name,
                    got.len(),
                    want
                )
            })
            .collect();
        let missing = if short.is_empty() {
            read_tables(model, topology)?.diff(tables, &hosts)
        } else {
            Some(short.join(", "))
        };
        if missing.is_none() || left.is_zero() {
            return Ok(missing);
        }
        // Block until a frame arrives (or a short while, for table-only
        // effects), then look again.
        wait_any(sockets, frames, left.min(Duration::from_millis(10)))?;
    }
}

fn do_event(
    model: &OverlaySystem,
    topology: &Topology,
    sockets: &[PacketSocket],
    event: &OracleEvent,
) -> Result<(), KernelError> {
    match event {
        OracleEvent::Inject { ep, frame } => sockets[*ep].send(frame),
        OracleEvent::Program { host, op } => {
            let ns = &topology.overlay_ns[*host];
            match op {
                DriverOp::NeighAdd(ip, mac) => neigh_replace(ns, &ip.to_string(), &mac.to_string()),
                DriverOp::FdbAdd(mac, remote) => {
                    fdb_replace(ns, &mac.to_string(), &remote.to_string())
                }
                DriverOp::Miss(m) => Err(KernelError::Failed(format!(
                    "a plan never holds a miss ({m:?}): the oracle form does not handle misses"
                ))),
            }
        }
        OracleEvent::DeleteLocalNeigh { host } => {
            let ns = &topology.overlay_ns[*host];
            let present: BTreeSet<String> =
                run_json("ip", &["-n", ns, "-j", "neigh", "show", "dev", "vxlan1"])?
                    .iter()
                    .filter_map(|n| n["dst"].as_str().map(str::to_string))
                    .collect();
            for c in model.spec().containers.iter().filter(|c| c.host == *host) {
                let ip = c.ip.to_string();
                if present.contains(&ip) {
                    cmd("ip", &["-n", ns, "neigh", "del", &ip, "dev", "vxlan1"])?;
                }
            }
            Ok(())
        }
        // The real clock does it: `drive` waits.
        OracleEvent::Wait { .. } => Ok(()),
    }
}

fn has_flag(entry: &Value, flag: &str) -> bool {
    entry["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(flag)))
}

/// The kernel's per-host tables, filtered as the model's are built.
fn read_tables(model: &OverlaySystem, topology: &Topology) -> Result<Tables, KernelError> {
    let macs: BTreeSet<String> = model
        .endpoints()
        .iter()
        .map(|e| e.mac.to_string())
        .collect();
    let mut t = Tables::default();
    for ns in &topology.overlay_ns {
        let mut br = BTreeMap::new();
        let mut vx: BTreeMap<String, String> = BTreeMap::new();
        let mut fl: BTreeMap<String, String> = BTreeMap::new();
        for entry in run_json("bridge", &["-n", ns, "-j", "fdb", "show"])? {
            let (Some(mac), Some(dev)) = (entry["mac"].as_str(), entry["ifname"].as_str()) else {
                continue;
            };
            let state = entry["state"].as_str().unwrap_or("");
            let kflags = |attach: &str| match state {
                "permanent" => format!("{attach} permanent"),
                "static" | "noarp" => format!("{attach} static"),
                _ => format!("{attach} dynamic"),
            };
            if entry["master"].as_str() == Some("br0") {
                if macs.contains(mac) {
                    br.insert(mac.to_string(), dev.to_string());
                    fl.insert(format!("br0 {mac}"), kflags("master"));
                }
            } else if dev == "vxlan1" && has_flag(&entry, "self") {
                if let Some(dst) = entry["dst"].as_str() {
                    fl.entry(format!("vxlan1 fdb {mac}"))
                        .and_modify(|f: &mut String| {
                            f.push(',');
                            f.push_str(&kflags("self"));
                        })
                        .or_insert_with(|| kflags("self"));
                    // Several remotes for one MAC show as several rows;
                    // the model has one, so a second one shows up joined.
                    vx.entry(mac.to_string())
                        .and_modify(|d: &mut String| {
                            d.push(',');
                            d.push_str(dst);
                        })
                        .or_insert_with(|| dst.to_string());
                }
            }
        }
        let mut neigh = BTreeMap::new();
        for n in run_json(
            "ip",
            &[
                "-n", ns, "-j", "neigh", "show", "nud", "all", "dev", "vxlan1",
            ],
        )? {
            let has = |want: &str| {
                n["state"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x.as_str() == Some(want)))
            };
            // IPv4 entries with an address, in the states the model's
            // vxlan1 holds (IPv6 multicast NOARP entries are not part of it).
            let state = ["PERMANENT", "NOARP", "REACHABLE", "STALE"]
                .into_iter()
                .find(|s| has(s));
            let ipv4 = n["dst"]
                .as_str()
                .is_some_and(|d| d.parse::<std::net::Ipv4Addr>().is_ok());
            if let (Some(state), true, Some(ip), Some(mac)) =
                (state, ipv4, n["dst"].as_str(), n["lladdr"].as_str())
            {
                neigh.insert(ip.to_string(), mac.to_string());
                fl.insert(
                    format!("vxlan1 neigh {ip}"),
                    format!("neigh {}", state.to_ascii_lowercase()),
                );
            }
        }
        t.br0_fdb.push(br);
        t.vxlan_fdb.push(vx);
        t.vxlan_neigh.push(neigh);
        t.flags.push(fl);
    }
    Ok(t)
}
