//! The kernel oracle: a model schedule run on the real Linux bridge and
//! vxlan of this machine, and the two compared (`netrace kernel`,
//! docs/kernel-oracle.md).
//!
//! A model that disagrees with the kernel gives confidence in the wrong
//! answer. The datapath the L2 model stands for runs on this machine, so
//! the model can be checked against it directly:
//!
//! 1. [`crate::overlay::oracle::plan`] turns a schedule into root events
//!    (a container transmits these bytes, the driver programs this entry,
//!    the operator deletes that one, time passes) and the observables the
//!    model predicts; [`default_schedule`] picks the schedule when none is
//!    given (the last word when the variant has one);
//! 2. [`netns::Topology`] builds the scenario from real kernel objects in
//!    network namespaces of its own: per host a host namespace (underlay,
//!    VTEP, vxlan1's socket) and an overlay namespace (`br0`, `vxlan1`),
//!    per container a namespace with `eth0` and its veth on `br0`;
//! 3. [`run()`] drives the events in order through raw packet sockets
//!    ([`capture`]) and iproute2, waiting after each for its predicted
//!    effect to show in the kernel's tables and captures (never sleeping
//!    for order), and reads the kernel's observables;
//! 4. [`compare()`] sets them side by side, table by table.
//!
//! What it does not do: run a real container stack (containers are pure
//! L2 endpoints with no address: every frame they send is injected, which
//! is how a late real reply is *held back* until its turn), run the real
//! overlay driver (its netlink calls are replayed from the plan), or wait
//! more than 60 s in all (a script's `wait` is real time, with the
//! scenario's short `ageing_time_s` on every bridge and vxlan device, so
//! the kernel's own timers age the entries). It needs root; without it, or without iproute2 or
//! network namespaces, it says so ([`KernelError::Unavailable`], exit 2).

pub mod capture;
pub mod cluster;
pub mod compare;
pub mod netns;
pub mod run;
pub mod soak;

use std::fmt;

use serde::Serialize;

pub use self::compare::{compare, Comparison, Row, Table};
pub use self::run::{run, EventLog, KernelRun, RunOptions};
use crate::explore;
use crate::overlay::oracle;
use crate::overlay::system::OverlaySystem;
use crate::sim::Model;

/// Why the kernel oracle could not give an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// It cannot run here: not root, no iproute2, no network namespaces.
    Unavailable(String),
    /// Building or driving the topology failed part-way (a command
    /// failed, the starting state was not clean).
    Failed(String),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Unavailable(m) => write!(f, "the kernel oracle cannot run here: {m}"),
            KernelError::Failed(m) => write!(f, "the kernel oracle failed: {m}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// The versions a comparison was made with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Versions {
    /// `uname -r`.
    pub kernel: String,
    /// From `ip -V`, e.g. `iproute2-6.1.0`.
    pub iproute2: String,
}

/// The running kernel's release and iproute2's version.
pub fn versions() -> Result<Versions, KernelError> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let v = netns::run("ip", &["-V"])?;
    let iproute2 = v
        .split(',')
        .map(str::trim)
        .find(|p| p.starts_with("iproute2"))
        .unwrap_or(v.trim())
        .to_string();
    Ok(Versions { kernel, iproute2 })
}

/// Checks that the oracle can run here — root, `ip` and `bridge`
/// present, a network namespace can be created and deleted — and returns
/// the versions. Creates (and removes) one probe namespace.
pub fn preflight() -> Result<Versions, KernelError> {
    run::require_root()?;
    let versions = versions()?;
    netns::run("bridge", &["-V"])?;
    let mut probe = netns::Namespaces::new();
    probe
        .add(&format!("{}-probe", netns::unique_prefix()))
        .map_err(|e| match e {
            KernelError::Failed(m) => {
                KernelError::Unavailable(format!("cannot create a network namespace: {m}"))
            }
            other => other,
        })?;
    drop(probe);
    Ok(versions)
}

/// Where a schedule came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSource {
    /// Given by the user as a replay token.
    Token(String),
    /// The forceable counterexample of this property.
    Counterexample(String),
    /// The schedule that takes the first enabled action at every step.
    Canonical,
    /// [`seeded_walk`] with this seed (when the canonical schedule cannot
    /// be forced).
    Walk(u64),
}

impl fmt::Display for ScheduleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleSource::Token(t) => write!(f, "token {t}"),
            ScheduleSource::Counterexample(p) => write!(f, "counterexample of {p}"),
            ScheduleSource::Canonical => {
                f.write_str("canonical (the first enabled action at every step)")
            }
            ScheduleSource::Walk(seed) => write!(f, "seeded random walk {seed}"),
        }
    }
}

/// Random walks tried for a forceable counterexample of `l2.fdb_correct`
/// when the explorer's own cannot be forced, and for a forceable schedule
/// when the canonical one cannot.
pub const FORCEABLE_WALKS: u64 = 2000;

/// The seeded walk the oracle runs; see [`oracle::seeded_walk`].
pub use crate::overlay::oracle::seeded_walk;

fn forceable(model: &OverlaySystem, schedule: &[u32]) -> bool {
    oracle::plan(model, schedule).is_ok_and(|p| p.faithful())
}

/// The schedule `netrace kernel` runs when given none, the first that a
/// kernel run can be forced through (a faithful plan):
///
/// 1. the forceable counterexample of `l2.fdb_correct` (the last word:
///    [`oracle::forceable_counterexample`]);
/// 2. else the explorer's counterexample of another violated property,
///    or its shrunk form, in property order;
/// 3. else the canonical schedule (up to `bounds.max_depth` steps);
/// 4. else the first forceable [`seeded_walk`] (seeds from 0).
///
/// If none is forceable, the canonical schedule is returned; its plan is
/// not faithful and the caller says so. Every search stays within
/// `bounds` (the scenario's).
pub fn default_schedule(
    model: &OverlaySystem,
    bounds: explore::Bounds,
) -> (Vec<u32>, ScheduleSource) {
    let max_depth = bounds.max_depth;
    const LAST_WORD: &str = "l2.fdb_correct";
    if let Some(s) = oracle::forceable_counterexample(model, LAST_WORD, FORCEABLE_WALKS, bounds) {
        return (s, ScheduleSource::Counterexample(LAST_WORD.into()));
    }
    let options = explore::Options {
        bounds,
        ..explore::Options::default()
    };
    let report = explore::bfs(model, &options, &mut |_| {});
    for (i, p) in model.properties().iter().enumerate() {
        let Some(v) = report.violations[i]
            .as_ref()
            .filter(|_| p.name != LAST_WORD)
        else {
            continue;
        };
        if forceable(model, &v.schedule) {
            return (
                v.schedule.clone(),
                ScheduleSource::Counterexample(p.name.into()),
            );
        }
        let shrunk = explore::shrink(model, i, &v.schedule, max_depth);
        if forceable(model, &shrunk) {
            return (shrunk, ScheduleSource::Counterexample(p.name.into()));
        }
    }
    let canonical = oracle::canonical_schedule(model, max_depth);
    if forceable(model, &canonical) {
        return (canonical, ScheduleSource::Canonical);
    }
    for seed in 0..FORCEABLE_WALKS {
        let w = seeded_walk(model, seed, max_depth);
        if forceable(model, &w) {
            return (w, ScheduleSource::Walk(seed));
        }
    }
    (canonical, ScheduleSource::Canonical)
}
