//! The soak oracle (`netrace::kernel::soak`) on the real kernel: a short
//! soak of the seed's platform in small under classic-17.03 (A, B, C on
//! host1, D on host2; B answers half its ARP requests 20–80 ms late), with
//! the containers' real ARP stacks and real ping/TCP traffic.
//!
//! What it asserts, each of which can fail:
//! - the delayer delays by the amount asked: every reply it held left the
//!   delayer within [`HELD_TOLERANCE_MS`] after the drawn delay, and the
//!   delays measured independently on B's bridge port (request handed to
//!   B → reply entering the bridge, kernel timestamps) show as many late
//!   replies, within the drawn range plus the tolerance, while the fast
//!   containers answer in under [`FAST_MS`];
//! - the real `bridge monitor fdb` recorded events: every local
//!   container's MAC learned on its own veth;
//! - the flows ran and were answered (sent > 0, not everything lost);
//! - nothing is left behind: no namespace of this process, no child
//!   process alive.
//!
//! Needs root and network namespaces; without them it prints `KERNEL
//! ORACLE SKIPPED: …` and passes, unless `NETRACE_REQUIRE_KERNEL=1`.

mod common;
use common::kernel::{kernel_or_skip, leaves_no_namespace};

use std::io::Write as _;

use std::path::Path;

use netrace::kernel::soak::{
    compare, model_as_soaked, model_summary, plan_from_scenario, soak, Criterion, SoakPlan,
};
use netrace::overlay::timed::{run_once, TimedSpec};
use netrace::scenario::{self, l2::L2Scenario};

/// How far after the drawn delay the delayer may send a held reply, ms:
/// its timer is ppoll(2)'s, on a loaded two-core machine.
const HELD_TOLERANCE_MS: f64 = 15.0;
/// A container without a delayer answers ARP within this, ms.
const FAST_MS: f64 = 5.0;
/// The soak's length.
const SOAK_MS: u64 = 12_000;

#[test]
fn classic_soak_with_a_slow_container() {
    let Some(_lock) = kernel_or_skip("classic_soak_with_a_slow_container") else {
        return;
    };
    let plan = SoakPlan::classic_example(SOAK_MS, 16);
    let report = leaves_no_namespace(|| soak(&plan).expect("the soak runs"));
    let _ = writeln!(std::io::stderr(), "{}", report.render());

    // Nothing left behind: every child (`bridge monitor fdb`) reaped.
    assert!(!report.processes.is_empty());
    for pid in &report.processes {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            !stat.contains("(bridge)"),
            "child {pid} still alive: {stat}"
        );
    }

    // The delayer: each held reply within the tolerance of its draw.
    let held = &report.delayer["B"];
    let delayed: Vec<_> = held.iter().filter(|r| r.asked_ms > 0).collect();
    assert!(
        delayed.len() >= 3,
        "the delayer held {} of {} replies",
        delayed.len(),
        held.len()
    );
    for r in held {
        let over = r.held_ms - r.asked_ms as f64;
        assert!(
            (-0.5..=HELD_TOLERANCE_MS).contains(&over),
            "asked {} ms, held {:.2} ms",
            r.asked_ms,
            r.held_ms
        );
    }
    // Measured on the bridge port, independently of the delayer's clock.
    let b = report
        .reply_delays
        .iter()
        .find(|h| h.container == "B")
        .unwrap();
    let late = b.samples_ms.iter().filter(|d| **d >= 19.0).count();
    assert_eq!(
        late,
        delayed.len(),
        "replies late on B's port {:?} vs held by the delayer {:?}",
        b.samples_ms,
        delayed
    );
    assert!(
        b.samples_ms
            .iter()
            .all(|d| *d < FAST_MS || (19.0..=80.0 + HELD_TOLERANCE_MS).contains(d)),
        "B's measured delays {:?}",
        b.samples_ms
    );
    for h in report.reply_delays.iter().filter(|h| h.container != "B") {
        assert!(
            h.samples_ms.iter().all(|d| *d < FAST_MS),
            "{} answers slowly: {:?}",
            h.container,
            h.samples_ms
        );
    }

    // bridge monitor fdb: each local container learned on its veth.
    for c in plan.containers.iter().filter(|c| c.name != "D") {
        let mac = c.mac.to_string();
        let port = format!("veth-{}", c.name);
        assert!(
            report
                .fdb_events
                .iter()
                .any(|e| e.br0 && !e.deleted && e.mac == mac && e.port == port),
            "no `{mac} dev {port} master br0` line in {:?}",
            report.fdb_events
        );
    }

    // The traffic ran.
    for f in &report.flows {
        assert!(f.sent > 10, "{f:?}");
        assert!(f.lost < f.sent, "{f:?}");
    }
}

/// The comparison on real data: one kernel soak of
/// tests/data/soak-short-timers.toml (base_reachable_time_ms = 1000 in
/// every container) agrees with the model run with the scenario's
/// sysctls, and disagrees with the model run with a wrong
/// `base_reachable_time_ms` (10 s): the model's timers are checked, not
/// only its datapath.
#[test]
fn soak_comparison_detects_wrong_timers() {
    let Some(_lock) = kernel_or_skip("soak_comparison_detects_wrong_timers") else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/soak-short-timers.toml");
    let s = scenario::load(&path).expect("the scenario loads");
    let sc = s.system.downcast::<L2Scenario>().expect("an l2 scenario");
    let v = &sc.variants[0];
    let plan = plan_from_scenario(&v.model, &sc.timed, TIMER_SOAK_MS, 16).expect("a soak plan");
    assert_eq!(plan.containers[0].sysctls["base_reachable_time_ms"], 1_000);
    let report = leaves_no_namespace(|| soak(&plan).expect("the soak runs"));
    let kernel = report.summary();
    // As `netrace kernel --soak` does: vxlan1's tables as the soak
    // programs them before its traffic.
    let soaked = model_as_soaked(&v.model, &plan).expect("the soak's tables");
    let model = |spec: &TimedSpec| {
        let runs: Vec<_> = (0..20)
            .map(|r| run_once(&soaked, spec, r, report.duration_ms * 1000, &|| false))
            .collect();
        model_summary(&soaked, &runs)
    };
    let right = compare(&model(&sc.timed), &kernel, Criterion::default());
    let _ = writeln!(std::io::stderr(), "scenario's timers:\n{right}");
    let mut wrong_spec = sc.timed.clone();
    for c in &mut wrong_spec.containers {
        let mut sys = c.neigh.sysctls();
        sys.base_reachable_time_ms = WRONG_BASE_REACHABLE_MS;
        c.neigh = sys.validate().expect("valid sysctls");
    }
    let wrong = compare(&model(&wrong_spec), &kernel, Criterion::default());
    let _ = writeln!(
        std::io::stderr(),
        "base_reachable_time_ms = {WRONG_BASE_REACHABLE_MS}:\n{wrong}"
    );
    assert!(
        right.agree,
        "the model with the scenario's timers disagrees:\n{right}"
    );
    assert!(
        !wrong.agree,
        "a wrong base_reachable_time_ms still agrees:\n{wrong}"
    );
}

/// The timer test's soak.
const TIMER_SOAK_MS: u64 = 20_000;
/// The wrong timer the model is given.
const WRONG_BASE_REACHABLE_MS: i64 = 10_000;
