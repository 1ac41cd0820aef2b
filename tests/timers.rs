//! The L2 explorer with a clock (`[time]`, model/overlay/system/timers.rs):
//! the probe's last word is found through the kernel's own DELAY -> PROBE
//! timer and replays from its token; every explored step respects the
//! clock (timers fire at their due time, late answers leave within their
//! range, nothing passes the horizon); the horizon is the bound the verdict
//! names; bad `[time]` input is exit 2 with file and line; `netrace kernel`
//! refuses a timed scenario and says why.

mod common;

use std::collections::{BTreeSet, VecDeque};

use common::cli::{both, json_rows, run, scratch_with};
use netrace::overlay::system::{L2Action, OverlaySystem};
use netrace::scenario::{self, l2::L2Scenario};
use netrace::sim::{Model, Trace};

const PROBE: &str = "scenarios/classic-overlay-probe-last-word.toml";

fn verdict(rows: &[serde_json::Value], variant: &str, prop: &str) -> (String, serde_json::Value) {
    let r = rows
        .iter()
        .find(|r| r["variant"] == variant && r["property"] == prop)
        .unwrap_or_else(|| panic!("no row {variant} {prop}"));
    (r["verdict"].as_str().unwrap().to_string(), r.clone())
}

#[test]
fn the_probe_last_word_is_found_through_a_timer_and_replays() {
    let o = run(&["check", PROBE, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let rows = json_rows(&o);
    let (v, row) = verdict(&rows, "classic-17.03", "l2.delivery");
    assert_eq!(v, "violated");
    assert_eq!(row["complete"], true);
    assert_eq!(row["extra"]["horizon_ms"], 420_000);
    let token = row["counterexample"]["token"].as_str().unwrap().to_string();
    let o = run(&["replay", PROBE, &token]);
    let text = both(&o);
    // The ordering needs the timer: the only second ARP request of the
    // run is the kernel's unicast probe, sent when DELAY expired, and the
    // proxy's answer to it is what moved B.
    let probe = text
        .find("DELAY -> PROBE")
        .unwrap_or_else(|| panic!("no DELAY -> PROBE in the replay:\n{text}"));
    let proxy = text[probe..]
        .find("vxlan1 proxy (arp_reduce) answers")
        .unwrap_or_else(|| panic!("no proxy answer after the probe:\n{text}"));
    assert!(
        text[probe + proxy..].contains("learned on vxlan1")
            || text[probe + proxy..].contains("moved veth-B -> vxlan1"),
        "the proxy's answer does not move B:\n{text}"
    );
    assert!(text.contains("A's data frame #4 to B"), "{text}");
    // The fixes that keep local peers off vxlan1 close it.
    for fixed in ["swarm-mode", "locality-check", "vxlan-fdb-zero"] {
        for p in ["l2.single_arp_reply", "l2.fdb_correct", "l2.delivery"] {
            assert_eq!(verdict(&rows, fixed, p).0, "holds", "{fixed} {p}");
        }
    }
}

#[test]
fn the_horizon_is_the_bound() {
    // Cut before the DELAY -> PROBE timer (A's second send is at 400 s,
    // its probe at 405 s): no second ARP request, no second reply.
    let text = std::fs::read_to_string(PROBE)
        .unwrap()
        .replace("horizon = \"420s\"", "horizon = \"404s\"");
    let short = scratch_with("timers", "short-horizon.toml", &text);
    let o = run(&["check", short.to_str().unwrap(), "--format", "json"]);
    let rows = json_rows(&o);
    let (v, row) = verdict(&rows, "classic-17.03", "l2.single_arp_reply");
    assert_eq!(v, "holds", "{row}");
    assert_eq!(row["extra"]["horizon_ms"], 404_000);
    let o = run(&["check", PROBE, "--format", "json"]);
    let (v, _) = verdict(&json_rows(&o), "classic-17.03", "l2.single_arp_reply");
    assert_eq!(v, "violated");
}

/// Every state the explorer can reach, with every enabled action.
fn walk(
    m: &OverlaySystem,
    mut each: impl FnMut(&OverlaySystem, &netrace::overlay::system::L2State, &L2Action),
) {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([m.init_state()]);
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        actions.clear();
        m.actions(&s, &mut actions);
        for a in &actions {
            each(m, &s, a);
            let n = m.next_state(&s, a, &mut Trace::off());
            let key = format!("{n:?}");
            if seen.insert(key) {
                queue.push_back(n);
            }
        }
        assert!(seen.len() < 100_000, "the timed space should be small");
    }
}

#[test]
fn every_explored_step_respects_the_clock() {
    let s = scenario::load(std::path::Path::new(PROBE)).unwrap();
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let mut ticks = 0;
    let mut releases = 0;
    for v in &sc.variants {
        let horizon = v.model.time().expect("a [time] scenario").horizon_ms;
        walk(&v.model, |m, s, a| {
            let t = s.time.as_ref().unwrap();
            let n = m.next_state(s, a, &mut Trace::off());
            let nt = n.time.as_ref().unwrap();
            // The clock moves forward only, never past the horizon.
            assert!(nt.now_ms >= t.now_ms && nt.now_ms <= horizon, "{a:?}");
            match a {
                L2Action::Tick => {
                    ticks += 1;
                    assert!(nt.now_ms > t.now_ms);
                    // Only when no frame, driver call or script step is due.
                    assert!(s.inflight.is_empty(), "a tick with frames in flight");
                }
                L2Action::Release(i) => {
                    releases += 1;
                    let h = &t.held[*i as usize];
                    assert!(h.earliest_ms <= t.now_ms, "released early");
                }
                _ => assert_eq!(nt.now_ms, t.now_ms, "{a:?} took time"),
            }
            // No late answer is overdue, and no neighbour timer was
            // skipped: every armed timer lies at or after the clock.
            for h in &nt.held {
                assert!(h.latest_ms >= nt.now_ms, "{h:?} left after its latest time");
            }
            for table in &nt.neigh {
                for (ip, e) in table.entries() {
                    if let Some(d) = e.timer_ms() {
                        assert!(d > nt.now_ms, "{ip}'s timer at {d} was skipped");
                    }
                }
            }
        });
    }
    assert!(
        ticks > 0 && releases > 0,
        "{ticks} ticks, {releases} releases"
    );
}

#[test]
fn bad_time_input_is_exit_2_with_file_and_line() {
    let good = std::fs::read_to_string(PROBE).unwrap();
    for (name, from, to, says) in [
        (
            "horizon-word",
            "horizon = \"420s\"",
            "horizon = \"soon\"",
            "horizon",
        ),
        (
            "horizon-long",
            "horizon = \"420s\"",
            "horizon = \"2h\"",
            "longer than an hour",
        ),
        (
            "probe-step",
            "\"send B\", \"wait 8\"",
            "\"probe B\", \"wait 8\"",
            "probes by itself",
        ),
        (
            "unknown-key",
            "horizon = \"420s\"",
            "horizon = \"420s\"\nquantum = 3",
            "quantum",
        ),
    ] {
        let text = good.replace(from, to);
        assert_ne!(text, good, "{name}");
        let p = scratch_with("timers", &format!("{name}.toml"), &text);
        let o = run(&["check", p.to_str().unwrap()]);
        let out = both(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}");
        assert!(out.contains(says), "{name}: {out}");
        assert!(
            out.contains(&format!("{name}.toml:")),
            "{name}: no file and line: {out}"
        );
        assert!(!out.contains("panicked"), "{name}: {out}");
    }
}

#[test]
fn the_kernel_oracle_refuses_a_timed_scenario_and_says_why() {
    let o = run(&["kernel", PROBE]);
    let out = both(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("cannot force"), "{out}");
    assert!(out.contains("classic-overlay-last-word"), "{out}");
}
