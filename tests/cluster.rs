//! `kind = "overlay-cluster"`: many hosts, their peer tables and the
//! control plane (model/overlay/cluster.rs). The rejoin race of moby
//! #53663 is found from the scenario alone and leaves the signature the
//! fix's report gives; the fix closes it; each control-plane fault (a lost,
//! a duplicated, an out-of-order event) has the effect it should, and only
//! when its budget allows it; bad files are exit 2 with their line.

use serde_json::Value;

mod common;
use common::cli::{json_rows, run, scratch_with, stderr, stdout};
use common::in_order;

const SCRATCH: &str = "cluster-tests";
const REJOIN: &str = "scenarios/swarm-rejoin-fdb-eexist.toml";
const REUSE: &str = "scenarios/overlay-ip-reuse-1935.toml";
const SHARED: &str = "scenarios/overlay-shared-fdb-50106.toml";
const MOVE: &str = "scenarios/overlay-move-1902.toml";
const STALE: &str = "scenarios/overlay-stale-cache-1433.toml";
const LAZY: &str = "scenarios/overlay-lazy-init-1893.toml";
const SERF: &str = "scenarios/overlay-serf-replay-1639.toml";
const DUMMY: &str = "scenarios/overlay-miss-dummy.toml";
const NDB: &str = "scenarios/overlay-networkdb-retention-1727.toml";

/// The rows of `check FILE --format json`, which must exit 0.
fn checked(file: &str) -> Vec<Value> {
    let o = run(&["check", file, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json_rows(&o)
}

/// The replay of `property`'s counterexample on `variant`.
fn replay_of(file: &str, rows: &[Value], variant: &str, property: &str) -> String {
    let cx = &row(rows, variant, property)["counterexample"];
    let token = cx["token"].as_str().expect("a counterexample");
    let o = run(&["replay", file, token]);
    assert_eq!(o.status.code(), Some(1), "a violating replay exits 1");
    stdout(&o)
}

/// The row of `variant` and `property`.
fn row<'a>(rows: &'a [Value], variant: &str, property: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["variant"] == variant && r["property"] == property)
        .unwrap_or_else(|| panic!("no row for {variant} {property}"))
}

/// The era's variant violates each of `props` and the fix's holds it, with
/// a complete search.
fn era_violated_fix_holds(rows: &[Value], era: &str, fix: &str, props: &[&str]) {
    for p in props {
        assert_eq!(row(rows, era, p)["verdict"], "violated", "{era} {p}");
        assert_eq!(row(rows, fix, p)["verdict"], "holds", "{fix} {p}");
        assert_eq!(row(rows, fix, p)["complete"], true, "{fix} {p}");
    }
}

#[test]
fn the_rejoin_race_is_found_with_the_fixs_signature_and_replace_closes_it() {
    let o = run(&["check", REJOIN, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = json_rows(&o);
    era_violated_fix_holds(
        &rows,
        "moby-29",
        "moby-53663",
        &["overlay.converged", "overlay.reachable"],
    );
    let cx = &row(&rows, "moby-29", "overlay.reachable")["counterexample"];
    let token = cx["token"].as_str().unwrap();
    let o = run(&["replay", REJOIN, token]);
    assert_eq!(o.status.code(), Some(1), "a violating replay exits 1");
    let trace = stdout(&o);
    // The bad order: B's traffic between the leave and the join, so
    // vxlan1 learned B's MAC before the exclusive add.
    in_order(
        &trace,
        &[
            "worker1: leave of B",
            "vxlan1 fdb: 02:42:0a:00:01:11 learned at 192.168.100.2",
            "bridge fdb add 02:42:0a:00:01:11 dev vxlan1 dst 192.168.100.2 self permanent: EEXIST",
        ],
    );
    // #53663's signature: the FDB row gone, the neighbour row intact.
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(end.contains("worker1 vxlan1 fdb: (empty)"), "{end}");
    assert!(
        end.contains("worker1 vxlan1 neigh: 10.0.1.17 lladdr 02:42:0a:00:01:11"),
        "{end}"
    );
    // The same schedule on the fix: the replace takes the learned entry.
    let o = run(&["replay", REJOIN, token, "--variant", "moby-53663"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains(
        "bridge fdb replace 02:42:0a:00:01:11 dev vxlan1 dst 192.168.100.2 self permanent: ok"
    ));
}

/// A two-host scenario whose script is `script` and whose fault budget is
/// `faults` (TOML lines), with both profiles and no expectations.
fn scenario(name: &str, script: &str, faults: &str) -> String {
    two_hosts(
        name,
        script,
        faults,
        "live = false\n",
        r#"[[variant]]
name = "before"
profile = "moby-29"

[[variant]]
name = "after"
profile = "moby-53663"
"#,
    )
}

/// A scratch scenario of A on h1 and B on h2 (`b_extra`: B's further TOML
/// lines) with `script`, the fault budget `faults` and `variants` (TOML).
fn two_hosts(name: &str, script: &str, faults: &str, b_extra: &str, variants: &str) -> String {
    let text = format!(
        r#"name = "{name}"
kind = "overlay-cluster"
script = [{script}]

[faults]
{faults}

[[host]]
name = "h1"
vtep = "192.168.100.1"

[[host]]
name = "h2"
vtep = "192.168.100.2"

[[endpoint]]
name = "A"
host = "h1"
ip = "10.0.1.2"

[[endpoint]]
name = "B"
host = "h2"
ip = "10.0.1.3"
{b_extra}
{variants}"#
    );
    scratch_with(SCRATCH, &format!("{name}.toml"), &text)
        .display()
        .to_string()
}

/// `overlay.converged` per variant (before, after) of a scratch scenario.
fn converged(name: &str, script: &str, faults: &str) -> (String, String) {
    let file = scenario(name, script, faults);
    let o = run(&["check", &file, "--format", "json"]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        stderr(&o)
    );
    let rows = json_rows(&o);
    let v = |variant| {
        let r = row(&rows, variant, "overlay.converged");
        assert_eq!(r["complete"], true);
        r["verdict"].as_str().unwrap().to_string()
    };
    (v("before"), v("after"))
}

#[test]
fn each_control_plane_fault_does_what_it_says_and_only_within_its_budget() {
    let both = |v: &str| (v.to_string(), v.to_string());
    // B starts: one join to h1.
    assert_eq!(converged("start", r#""start B""#, ""), both("holds"));
    // The join lost: h1 never programs B.
    assert_eq!(
        converged("start-drop", r#""start B""#, "drop = 1"),
        both("violated")
    );
    // The join twice: peerAdd finds its own entry; the tables stay right.
    assert_eq!(
        converged("start-dup", r#""start B""#, "duplicate = 1"),
        both("holds")
    );
    // B restarts: leave then join. In order, it ends programmed; with the
    // join first, the late leave deletes the live B's entries (#1639's
    // shape).
    let restart = r#""start B", "stop B", "start B""#;
    assert_eq!(converged("restart", restart, ""), both("holds"));
    assert_eq!(
        converged("restart-reorder", restart, "reorder = 1"),
        both("violated")
    );
}

#[test]
fn bad_files_are_exit_2_with_their_line() {
    let cases = [
        ("step", r#""jump B""#, "unknown script step", 3),
        ("host", r#""fail h9""#, "no host named \"h9\"", 3),
        ("own", r#""send A -> h1""#, "runs on h1", 3),
        ("wait", r#""wait 0""#, "not a number of seconds", 3),
        ("move-own", r#""move A -> h1""#, "A already runs on h1", 3),
        (
            "move-after",
            r#""move B -> h1 after 0""#,
            "not a number of seconds",
            3,
        ),
        (
            "move-twice",
            r#""move B -> h1", "move B -> h1""#,
            "moved to h1 twice",
            3,
        ),
        ("budget", r#""start B""#, "drop = 9 is out of range", 6),
    ];
    for (name, script, want, line) in cases {
        let faults = if name == "budget" { "drop = 9" } else { "" };
        let file = scenario(&format!("bad-{name}"), script, faults);
        let o = run(&["check", &file]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains(&format!("{file}:{line}:")), "{name}: {err}");
    }
}

#[test]
fn the_reused_address_leaves_a_stale_remote_entry_only_in_the_pre_1935_map() {
    let rows = checked(REUSE);
    assert_eq!(
        row(&rows, "libnetwork-pre-1935", "overlay.converged")["verdict"],
        "violated"
    );
    let fixed = row(&rows, "libnetwork-1935", "overlay.converged");
    assert_eq!(fixed["verdict"], "holds");
    assert_eq!(fixed["complete"], true);
    let trace = replay_of(REUSE, &rows, "libnetwork-pre-1935", "overlay.converged");
    // The bad order: the new local endpoint overwrites the key before the
    // old one's leave arrives, which is then taken as stale.
    in_order(
        &trace,
        &[
            "start web.1@worker1",
            "web.1@worker1 overwrites web.1's entry",
            "worker1: leave of web.1",
            "mismatched endpoint ID): kept",
        ],
    );
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(
        end.contains("02:42:0a:00:01:06 dst 192.168.100.2 permanent"),
        "{end}"
    );
}

#[test]
fn a_shared_mac_loses_its_fdb_entry_without_fdbcnt() {
    let rows = checked(SHARED);
    era_violated_fix_holds(
        &rows,
        "moby-pre-50106",
        "moby-50106",
        &["overlay.converged", "overlay.reachable"],
    );
    let trace = replay_of(SHARED, &rows, "moby-pre-50106", "overlay.reachable");
    assert!(
        trace.contains("bridge fdb del 02:42:0a:00:01:03 dev vxlan1 dst 192.168.100.2 self: ok"),
        "{trace}"
    );
    // db.1's neighbour entry stays, its MAC's FDB entry is gone.
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(end.contains("10.0.1.3 lladdr 02:42:0a:00:01:03"), "{end}");
    assert!(!end.contains("02:42:0a:00:01:03 dst"), "{end}");
}

#[test]
fn a_move_to_the_local_node_keeps_the_remote_entry_before_1902() {
    let rows = checked(MOVE);
    era_violated_fix_holds(
        &rows,
        "libnetwork-pre-1902",
        "libnetwork-1902",
        &["overlay.converged", "overlay.no_local_peer"],
    );
    let trace = replay_of(MOVE, &rows, "libnetwork-pre-1902", "overlay.converged");
    assert!(trace.contains("the db is not consulted"), "{trace}");
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(
        end.contains("worker1 vxlan1 fdb: 02:42:0a:00:01:06 dst 192.168.100.2 permanent"),
        "{end}"
    );
}

#[test]
fn a_mac_that_is_not_unicast_is_exit_2_at_its_line() {
    let text = std::fs::read_to_string(scenario("mac-ok", r#""start B""#, "")).unwrap();
    // B's table: a multicast MAC, then a word that is no MAC.
    for (name, mac) in [("mac-multicast", "01:00:5e:00:00:01"), ("mac-word", "nope")] {
        let bad = text.replace(
            "ip = \"10.0.1.3\"\n",
            &format!("ip = \"10.0.1.3\"\nmac = \"{mac}\"\n"),
        );
        assert_ne!(bad, text);
        let line = bad.lines().position(|l| l.starts_with("mac =")).unwrap() + 1;
        let file = scratch_with(SCRATCH, &format!("{name}.toml"), &bad)
            .display()
            .to_string();
        let o = run(&["check", &file]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("is not a unicast MAC address"),
            "{name}: {err}"
        );
        assert!(err.contains(&format!("{file}:{line}:")), "{name}: {err}");
    }
}

#[test]
fn a_stale_delete_keeps_the_cached_pair_before_1433_and_the_fix_purges_it() {
    let rows = checked(STALE);
    era_violated_fix_holds(
        &rows,
        "libnetwork-pre-1433",
        "libnetwork-1433",
        &["overlay.converged", "overlay.reachable"],
    );
    let trace = replay_of(STALE, &rows, "libnetwork-pre-1433", "overlay.reachable");
    // The bad order on worker1: the new task's add before the old one's
    // delete, which is then stale and leaves the old pair cached; the
    // address back on worker2 is then skipped by AddNeighbor.
    in_order(
        &trace,
        &[
            "worker1: join of web.1b",
            "worker1: leave of web.1\n",
            "stale delete ignored: the sandbox cache keeps (192.168.100.2, 02:42:0a:00:01:06)",
            "worker1: join of web.1c",
            "Neighbor entry already present for IP 192.168.100.2, mac 02:42:0a:00:01:06",
        ],
    );
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(end.contains("worker1 vxlan1 fdb: (empty)"), "{end}");
    // The same schedule with #1433: the stale delete purges the pair, the
    // later add programs it.
    let cx = &row(&rows, "libnetwork-pre-1433", "overlay.reachable")["counterexample"];
    let token = cx["token"].as_str().unwrap();
    let o = run(&["replay", STALE, token, "--variant", "libnetwork-1433"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let fixed = stdout(&o);
    let purged = fixed
        .find("DeleteNeighbor 192.168.100.2 02:42:0a:00:01:06: sandbox cache only")
        .expect("the purge");
    let programmed = fixed
        .rfind(
            "bridge fdb replace 02:42:0a:00:01:06 dev vxlan1 dst 192.168.100.2 self permanent: ok",
        )
        .expect("the add programmed");
    assert!(purged < programmed, "{fixed}");
}

#[test]
fn a_delete_between_the_init_snapshot_and_its_replay_survives_before_1893() {
    let rows = checked(LAZY);
    assert_eq!(
        row(&rows, "libnetwork-pre-1893", "overlay.converged")["verdict"],
        "violated"
    );
    // #1893 alone brought #1902's wrong field: still violated, otherwise.
    assert_eq!(
        row(&rows, "libnetwork-1893", "overlay.converged")["verdict"],
        "violated"
    );
    for v in ["libnetwork-1902", "moby-53663"] {
        for p in [
            "overlay.converged",
            "overlay.reachable",
            "overlay.no_local_peer",
        ] {
            assert_eq!(row(&rows, v, p)["verdict"], "holds", "{v} {p}");
            assert_eq!(row(&rows, v, p)["complete"], true, "{v} {p}");
        }
    }
    let trace = replay_of(LAZY, &rows, "libnetwork-pre-1893", "overlay.converged");
    in_order(
        &trace,
        &[
            "peerDbUpdateSandbox snapshots the 2 remote peers",
            "worker1: leave of web.1",
            "could not find the neighbor entry to delete",
            "worker1: peerDbUpdateSandbox replays its snapshot",
        ],
    );
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(
        end.contains("02:42:0a:00:01:06 dst 192.168.100.2 permanent"),
        "{end}"
    );
    assert!(end.contains("10.0.1.6 lladdr 02:42:0a:00:01:06"), "{end}");
}

#[test]
fn a_lazy_host_with_a_running_container_and_an_unknown_sync_are_exit_2() {
    let file = scenario("lazy-ok", r#""start B", "sync h1""#, "");
    let text = std::fs::read_to_string(&file).unwrap();
    // A runs on h1 from the start: h1's sandbox cannot be lazy.
    let bad = text.replacen(
        "vtep = \"192.168.100.1\"\n",
        "vtep = \"192.168.100.1\"\nlazy = true\n",
        1,
    );
    assert_ne!(bad, text);
    let file = scratch_with(SCRATCH, "bad-lazy.toml", &bad)
        .display()
        .to_string();
    let o = run(&["check", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("whose sandbox is lazy"), "{err}");
    assert!(err.contains(&format!("{file}:")), "{err}");
    let file = scenario("bad-sync", r#""sync h9""#, "");
    let o = run(&["check", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no host named \"h9\""),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(&format!("{file}:3:")), "{}", stderr(&o));
}

#[test]
fn serfs_replay_points_a_restarted_node_at_the_old_host_before_1639_and_the_miss_path_recovers() {
    let rows = checked(SERF);
    era_violated_fix_holds(
        &rows,
        "libnetwork-pre-1639",
        "libnetwork-1639",
        &["overlay.converged", "overlay.reachable"],
    );
    let trace = replay_of(SERF, &rows, "libnetwork-pre-1639", "overlay.converged");
    // The PR's order: the replayed join at worker1 is handled after the
    // leave and the join at worker2 (serf's ring wraps).
    assert!(
        trace.contains("Join(ignoreOld = false): the push/pull replays serf's event buffer slot by slot (its ring wraps): leave of C1, join of C1@worker2, join of C1"),
        "{trace}"
    );
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(
        end.contains("worker3 vxlan1 fdb: 02:42:0a:00:00:02 dst 192.168.100.1 permanent"),
        "{end}"
    );
    // The fix: no old event is handled; the l3miss and the query program
    // C1 at worker2 (the schedule that takes the first action each time,
    // ten steps), replayed through its token as a user pastes it.
    let s = netrace::scenario::load(std::path::Path::new(SERF)).unwrap();
    let token = netrace::explore::token::encode((&s).into(), "libnetwork-1639", &[0; 10]);
    let o = run(&["replay", SERF, &token]);
    let t = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("worker3 vxlan1 has no neighbour entry for 10.0.0.2: l3miss"),
        "{t}"
    );
    assert!(
        t.contains(
            "bridge fdb replace 02:42:0a:00:00:02 dev vxlan1 dst 192.168.100.2 self permanent: ok"
        ),
        "{t}"
    );
}

/// A classic scenario: A on h1 moves to h2, h1 goes down, h3 restarts.
fn classic(name: &str, faults: &str, script_end: &str) -> String {
    let text = format!(
        r#"name = "{name}"
kind = "overlay-cluster"
script = ["move A -> h2 after 5", "fail h1", "restart h3"{script_end}]

[faults]
{faults}

[[host]]
name = "h1"
vtep = "192.168.100.1"

[[host]]
name = "h2"
vtep = "192.168.100.2"

[[host]]
name = "h3"
vtep = "192.168.100.3"

[[endpoint]]
name = "A"
host = "h1"
ip = "10.0.1.2"

[[variant]]
name = "before"
profile = "libnetwork-pre-1639"

[[variant]]
name = "after"
profile = "libnetwork-1639"
"#
    );
    scratch_with(SCRATCH, &format!("{name}.toml"), &text)
        .display()
        .to_string()
}

#[test]
fn the_miss_paths_dummy_entry_outlives_its_container_until_1935() {
    let rows = checked(DUMMY);
    era_violated_fix_holds(
        &rows,
        "libnetwork-1639",
        "libnetwork-1935-classic",
        &["overlay.converged", "overlay.no_local_peer"],
    );
    // The mechanism: the miss path records C1 as `dummy`, so C1's leave
    // (its real endpoint ID) is taken as outdated and deletes nothing.
    let trace = replay_of(DUMMY, &rows, "libnetwork-1639", "overlay.converged");
    assert!(trace.contains("peerAdd(dummy, 10.0.0.2)"), "{trace}");
    assert!(
        trace.contains("peerDbDelete C1: the entry is dummy's (mismatched endpoint ID): kept"),
        "{trace}"
    );
    let end = &trace[trace.find("final state").unwrap()..];
    assert!(
        end.contains("worker3 vxlan1 fdb: 02:42:0a:00:00:02 dst 192.168.100.1 permanent"),
        "{end}"
    );
    // The later driver programs the miss without a db entry, and C1's
    // leave deletes what it programmed: drive the fix's schedule in which
    // worker3 resolves the miss (answered with C1 at worker1) before C1's
    // leave reaches it.
    let (resolved, end) = drive_resolving(DUMMY, "libnetwork-1935-classic");
    assert!(
        resolved,
        "the fix's space has no schedule that resolves the miss"
    );
    assert!(
        !end.iter().any(|l| l.contains("dst 192.168.100.1")),
        "{end:?}"
    );
}

/// Runs `variant` taking the first enabled action, except that worker3's
/// l3miss is resolved with an answer as soon as one can be; whether it
/// was, and the final tables.
fn drive_resolving(file: &str, variant: &str) -> (bool, Vec<String>) {
    use netrace::overlay::cluster::ClusterAction;
    use netrace::scenario::cluster::ClusterScenario;
    use netrace::sim::{Model, Trace};
    let s = netrace::scenario::load(std::path::Path::new(file)).unwrap();
    let c = s.system.downcast::<ClusterScenario>().unwrap();
    let m = &c.variants.iter().find(|v| v.name == variant).unwrap().model;
    let mut state = m.init_state();
    let mut resolved = false;
    let mut actions: Vec<ClusterAction> = Vec::new();
    loop {
        actions.clear();
        m.actions(&state, &mut actions);
        let Some(&first) = actions.first() else {
            return (resolved, m.summarize(&state));
        };
        let answered = actions.iter().find(|a| {
            matches!(
                a,
                ClusterAction::Resolve {
                    answer: Some(_),
                    ..
                }
            )
        });
        let a = match answered {
            Some(&a) if !resolved => {
                resolved = true;
                a
            }
            _ => first,
        };
        state = m.next_state(&state, &a, &mut Trace::off());
    }
}

#[test]
fn the_replay_is_a_fault_within_its_budget_and_the_miss_path_is_what_programs_after_1639() {
    let verdicts = |file: &str| {
        let o = run(&["check", file, "--format", "json"]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        let rows = json_rows(&o);
        let v = |variant| {
            let r = row(&rows, variant, "overlay.converged");
            assert_eq!(r["complete"], true);
            r["verdict"].as_str().unwrap().to_string()
        };
        (v("before"), v("after"))
    };
    let arp = r#", "arp h3 -> A@h2""#;
    // No replay in the budget: both eras learn A@h2 through the miss.
    assert_eq!(
        verdicts(&classic("replay-0", "", arp)),
        ("holds".into(), "holds".into())
    );
    // One replay: only the era without ignoreOld breaks.
    assert_eq!(
        verdicts(&classic("replay-1", "replay = 1", arp)),
        ("violated".into(), "holds".into())
    );
    // Without the ARP nothing misses: after #1639 h3 never learns A@h2
    // (the fix relies on the miss path).
    assert_eq!(
        verdicts(&classic("replay-1-no-arp", "replay = 1", "")).1,
        "violated"
    );
    // Bad classic steps are exit 2 at their line.
    for (name, end, faults, want, line) in [
        ("arp-own", r#", "arp h1 -> A""#, "", "A runs on h1", 3),
        (
            "restart-who",
            r#", "restart h9""#,
            "",
            "no host named \"h9\"",
            3,
        ),
        (
            "replay-9",
            "",
            "replay = 9",
            "replay = 9 is out of range",
            6,
        ),
    ] {
        let file = classic(&format!("bad-{name}"), faults, end);
        let o = run(&["check", &file]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains(&format!("{file}:{line}:")), "{name}: {err}");
    }
}

/// Runs `variant` of `file` taking, at each step, the first enabled
/// action whose description contains the next of `picks` (the first
/// action once they are used up), to quiescence; the final summary.
fn drive(file: &str, variant: &str, picks: &[&str]) -> Vec<String> {
    use netrace::overlay::cluster::ClusterAction;
    use netrace::scenario::cluster::ClusterScenario;
    use netrace::sim::{Model, Trace};
    let s = netrace::scenario::load(std::path::Path::new(file)).unwrap();
    let c = s.system.downcast::<ClusterScenario>().unwrap();
    let m = &c.variants.iter().find(|v| v.name == variant).unwrap().model;
    let mut state = m.init_state();
    let mut picks = picks.iter();
    let mut next = picks.next();
    let mut actions: Vec<ClusterAction> = Vec::new();
    loop {
        actions.clear();
        m.actions(&state, &mut actions);
        if actions.is_empty() {
            return m.summarize(&state);
        }
        let a = match next {
            Some(p) => match actions.iter().find(|a| m.describe(&state, a).contains(p)) {
                Some(a) => {
                    next = picks.next();
                    *a
                }
                None => actions[0],
            },
            None => actions[0],
        };
        state = m.next_state(&state, &a, &mut Trace::off());
    }
}

#[test]
fn a_replay_wrapping_later_leaves_the_fdb_entry_out_through_the_osl_cache() {
    // Join at worker2, join at worker1, leave at worker1: the leave
    // deletes both entries, the l3miss resolves C1 at worker2, but the
    // osl cache still holds (worker2's VTEP, MAC) and skips the FDB entry.
    let end = drive(
        SERF,
        "libnetwork-pre-1639",
        &[
            "ring wrapping at 2",
            "worker3 receives",
            "worker3 receives",
            "worker3 receives",
            "arp",
            "resolves",
        ],
    );
    assert!(
        end.contains(&"worker3 vxlan1 fdb: (empty)".to_string()),
        "{end:?}"
    );
    assert!(
        end.contains(&"worker3 vxlan1 neigh: 10.0.0.2 lladdr 02:42:0a:00:00:02".to_string()),
        "{end:?}"
    );
}

/// A two-host NetworkDB scenario (B on h2 runs from the start) with the
/// era and the fix as variants (pre-1727, 1727), no expectations.
fn ndb_scenario(name: &str, script: &str, faults: &str, extra: &str) -> String {
    two_hosts(
        name,
        script,
        faults,
        "",
        &format!(
            r#"[[variant]]
name = "pre-1727"
profile = "libnetwork-pre-1727"

[[variant]]
name = "1727"
profile = "libnetwork-1727"
{extra}
"#
        ),
    )
}

/// `overlay.converged` per variant (pre-1727, 1727), complete searches.
fn ndb_converged(name: &str, script: &str, faults: &str) -> (String, String) {
    let file = ndb_scenario(name, script, faults, "");
    let o = run(&["check", &file, "--format", "json"]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        stderr(&o)
    );
    let rows = json_rows(&o);
    let v = |variant| {
        let r = row(&rows, variant, "overlay.converged");
        assert_eq!(r["complete"], true, "{name} {variant}");
        r["verdict"].as_str().unwrap().to_string()
    };
    (v("pre-1727"), v("1727"))
}

#[test]
fn a_delete_missed_until_its_tombstone_is_reaped_stays_for_good_before_1727() {
    let rows = checked(NDB);
    era_violated_fix_holds(
        &rows,
        "libnetwork-pre-1727",
        "libnetwork-1727",
        &["overlay.converged"],
    );
    for v in [
        "libnetwork-pre-1727",
        "libnetwork-1727",
        "libnetwork-1727-cut-off-30-min",
    ] {
        assert_eq!(row(&rows, v, "overlay.converged")["complete"], true, "{v}");
        assert_eq!(
            row(&rows, v, "overlay.reachable")["verdict"],
            "holds",
            "{v}"
        );
    }
    // #1727 narrows the window: cut off for the whole 30 minutes, a node
    // still keeps the entry.
    assert_eq!(
        row(&rows, "libnetwork-1727-cut-off-30-min", "overlay.converged")["verdict"],
        "violated"
    );
    // The era's counterexample replays: the gossip lost, a round missed,
    // worker2's reaper first at t = 60 s, then a bulk sync that has no
    // delete left to carry (and hands B's entry back to worker2).
    let out = replay_of(NDB, &rows, "libnetwork-pre-1727", "overlay.converged");
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{out}"))
    };
    assert!(at("leave (LTime 2) of B lost") < at("worker1 is cut off"));
    assert!(at("worker1 is cut off") < at("reaper removes the tombstone of B"));
    assert!(
        at("reaper removes the tombstone of B")
            < at("no entry for B: the create (LTime 1) is taken")
    );
    assert!(at("stale FDB entry 02:42:0a:00:01:06 dst 192.168.100.2") > 0);
    assert!(out.contains("worker1 NetworkDB: A (LTime 1), B (LTime 1), C (LTime 1)"));
}

#[test]
fn bulk_sync_carries_tombstones_until_they_are_reaped_and_ltime_orders_events() {
    let both = |v: &str| (v.to_string(), v.to_string());
    // B's delete gossiped: both converge.
    assert_eq!(ndb_converged("ndb-stop", r#""stop B""#, ""), both("holds"));
    // The gossip lost: the bulk sync at t = 30 s carries the tombstone.
    assert_eq!(
        ndb_converged("ndb-stop-drop", r#""stop B""#, "drop = 1"),
        both("holds")
    );
    // Bulk syncs missed but the gossip delivered: nothing stale.
    assert_eq!(
        ndb_converged("ndb-stop-miss", r#""stop B""#, "sync_miss = 3"),
        both("holds")
    );
    // The gossip lost and one round missed: the era's tombstone is reaped
    // at t = 60 s before that round's sync (the explorer orders them).
    assert_eq!(
        ndb_converged(
            "ndb-stop-drop-miss",
            r#""stop B""#,
            "drop = 1\nsync_miss = 1"
        ),
        ("violated".into(), "holds".into())
    );
    // B restarts: its delete reordered after its new create is older
    // (LTime 2 < 3) and ignored; the inbox-only driver takes it (see
    // each_control_plane_fault_does_what_it_says_and_only_within_its_budget).
    assert_eq!(
        ndb_converged(
            "ndb-restart-reorder",
            r#""stop B", "start B""#,
            "reorder = 1"
        ),
        both("holds")
    );
    // A wait runs NetworkDB's timers: the tombstone is reaped within it,
    // so the missed round before the end of the wait is enough again.
    assert_eq!(
        ndb_converged(
            "ndb-wait",
            r#""stop B", "wait 90""#,
            "drop = 1\nsync_miss = 1"
        ),
        ("violated".into(), "holds".into())
    );
}

#[test]
fn networkdb_profiles_refuse_node_steps_and_sync_miss_elsewhere_is_exit_2() {
    // fail/rejoin/restart: NetworkDB's node tables are not modelled.
    let file = ndb_scenario("ndb-fail", r#""fail h2""#, "", "");
    let o = run(&["check", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("is not modelled (script step fail)"), "{e}");
    assert!(e.contains(":28:"), "the variant's profile line: {e}");
    // sync_miss on a profile without bulk sync, and out of range.
    let text = std::fs::read_to_string(scenario("ndb-miss-base", r#""start B""#, "")).unwrap();
    let bad = text.replacen(
        "profile = \"moby-29\"",
        "profile = \"moby-29\"\nsync_miss = 2",
        1,
    );
    let f = scratch_with(SCRATCH, "ndb-miss-moby.toml", &bad);
    let o = run(&["check", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("which has no bulk sync"),
        "{}",
        stderr(&o)
    );
    let file = ndb_scenario("ndb-miss-range", r#""stop B""#, "", "sync_miss = 121");
    let o = run(&["check", &file]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("sync_miss = 121 is out of range") && e.contains(":33:"),
        "{e}"
    );
}
