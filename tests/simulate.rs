//! `netrace simulate` (model/overlay/timed.rs, model/cli/simulate.rs):
//! same seed, same bytes; the seed's loop under classic-17.03 and none
//! under the fixes that close it; the timed properties can fail; bad
//! input is exit 2 with file and line.

mod common;

use common::cli::{json_rows, run, scratch_with, stderr, stdout};
use std::path::{Path, PathBuf};

use netrace::overlay::timed::{
    run_once, run_once_logged, Episode, FdbMove, FlowResult, RunResult, Thresholds,
};
use netrace::scenario::l2::L2Scenario;
use netrace::wire::EthernetAddress;

const SEED_LOOP: &str = "scenarios/classic-overlay-seed-loop.toml";

#[test]
fn same_seed_same_bytes() {
    let args = [
        "simulate",
        SEED_LOOP,
        "--variant",
        "classic-17.03",
        "--runs",
        "4",
        "--duration",
        "3m",
        "--seed",
        "3",
        "--format",
        "json",
    ];
    let (a, b) = (run(&args), run(&args));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout, "two runs with seed 3 differ");
    let text = [
        "simulate",
        SEED_LOOP,
        "--variant",
        "classic-17.03",
        "--runs",
        "2",
        "--duration",
        "2m",
        "--seed",
        "3",
    ];
    assert_eq!(run(&text).stdout, run(&text).stdout);
    let rows = json_rows(&a);
    assert_eq!(rows.len(), 1);
    for key in [
        "scenario",
        "variant",
        "runs",
        "seed",
        "loss_mean",
        "episodes",
        "episode_s_median",
        "recovered",
        "fdb_moves_mean",
        "arp_per_s_mean",
    ] {
        assert!(rows[0].get(key).is_some(), "row lacks {key}: {}", rows[0]);
    }
}

/// The seed's platform at the CI parameters (the scenario's [simulate]:
/// 20 runs of 15 min, seed 0): under classic-17.03 the proxied reply moves
/// db's br0 entry to vxlan1 and db's prompt real reply moves it back (FDB
/// moves, the incident's first step) and, the hosts' backlogs being FIFO,
/// the real reply has the last word: no flapping. swarm-mode and the
/// locality check: no move, no loss.
#[test]
fn the_seed_loop_and_the_fixes_that_close_it() {
    let o = run(&["simulate", SEED_LOOP, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let rows = json_rows(&o);
    let row = |v: &str| rows.iter().find(|r| r["variant"] == v).unwrap().clone();
    let classic = row("classic-17.03");
    assert!(
        classic["fdb_moves_mean"].as_f64().unwrap() > 0.0,
        "{classic}"
    );
    assert_eq!(
        classic["properties"]["l2.no_flap"]["verdict"], "not violated",
        "{classic}"
    );
    for v in ["swarm-mode", "locality-check"] {
        let r = row(v);
        assert_eq!(r["episodes"], 0, "{r}");
        assert_eq!(r["fdb_moves_mean"].as_f64(), Some(0.0), "{r}");
        assert_eq!(r["loss_mean"].as_f64(), Some(0.0), "{r}");
        // No episode, nothing to recover from: null, not a vacuous 1.
        assert!(r["recovered"].is_null(), "{r}");
    }
    // The text output prints the moves as bridge monitor lines.
    let t = run(&[
        "simulate",
        SEED_LOOP,
        "--variant",
        "classic-17.03",
        "--runs",
        "1",
        "--seed",
        "3",
    ]);
    let text = stdout(&t);
    assert!(text.contains("dev vxlan1 master br0"), "{text}");
    assert!(
        text.contains("not violated in") || text.contains("violated in run"),
        "{text}"
    );
    assert!(
        !text.contains("holds"),
        "a sampled simulation never says holds: {text}"
    );
}

/// The seed-loop scenario with db's lateness `p` (the other lines as
/// bundled), and, when given, a `simulate_expect` line for classic-17.03.
fn seed_loop_with(name: &str, p: &str, classic_expect: Option<&str>) -> PathBuf {
    let base = std::fs::read_to_string(SEED_LOOP).unwrap();
    let late = r#"reply_delay = { p = 0.05, min = "5ms", max = "80ms" }"#;
    assert!(base.contains(late));
    let mut text = base.replace(
        late,
        &format!(r#"reply_delay = {{ p = {p}, min = "5ms", max = "80ms" }}"#),
    );
    if let Some(e) = classic_expect {
        let note = "note = \"the incident\"\n";
        assert!(text.contains(note));
        text = text.replace(note, &format!("{note}simulate_expect = {e}\n"));
    }
    scratch_with("simulate", name, &text)
}

/// A scenario file, loaded.
fn load(path: &Path) -> netrace::scenario::Scenario {
    netrace::scenario::load(path).unwrap()
}

/// The index of the variant `name`.
fn vi(sc: &L2Scenario, name: &str) -> usize {
    sc.variants.iter().position(|v| v.name == name).unwrap()
}

/// Each host's receive backlog is FIFO (model/overlay/timed.rs, the
/// kernel's `enqueue_to_backlog` / `process_backlog` on one CPU): on a
/// host, a frame handed on after another is processed after it, and no
/// frame is processed before its hand-off plus the shortest service time.
/// The run has frames queued behind others (the test exercises the queue).
#[test]
fn a_hosts_backlog_is_fifo() {
    let s = load(Path::new(SEED_LOOP));
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let i = vi(sc, "classic-17.03");
    let (_, log) = run_once_logged(&sc.variants[i].model, &sc.timed, 0, 20_000_000);
    assert!(log.len() > 100, "{} hand-offs", log.len());
    let mut queued_behind = 0;
    for h in 0..2 {
        let on: Vec<_> = log.iter().filter(|x| x.host == h).collect();
        for w in on.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert!(a.ticket < b.ticket && a.handed_us <= b.handed_us);
            if let (Some(pa), Some(pb)) = (a.processed_us, b.processed_us) {
                assert!(
                    pa < pb,
                    "host {h}: {b:?}, handed on after {a:?}, was processed first"
                );
                if b.handed_us < pa {
                    queued_behind += 1;
                }
            }
        }
        for x in &on {
            if let Some(p) = x.processed_us {
                assert!(p >= x.handed_us + 5, "{x:?}");
            }
        }
    }
    assert!(queued_behind > 0, "no frame ever waited behind another");
}

/// With FIFO backlogs the kernel's order holds (incidents.md §5): when db
/// answers promptly, its real reply crosses br0 after the proxied reply
/// and before the requester's first frame, so nothing is lost and no
/// requester is ever learned on vxlan1 (only db's own entry moves, to
/// vxlan1 and back). When db is late every time, the requester's first
/// frame meets db on vxlan1: that request is lost, and the episode ends by
/// itself with the next request (one request per episode, as the kernel
/// soak shows); swarm-mode still shows nothing.
#[test]
fn a_prompt_reply_has_the_last_word_a_late_one_costs_one_request() {
    let prompt = seed_loop_with("seed-loop-prompt.toml", "0.0", None);
    let s = load(&prompt);
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let i = vi(sc, "classic-17.03");
    let m = &sc.variants[i].model;
    let db = m.endpoints().iter().position(|e| e.name == "db").unwrap();
    let db_mac = m.endpoints()[db].mac;
    for seed in 0..5 {
        let r = run_once(m, &sc.timed, seed, 60_000_000, &|| false);
        assert!(r.episodes.is_empty(), "seed {seed}: {:?}", r.episodes);
        assert!(
            r.fdb_moves > 0,
            "seed {seed}: the proxied reply moved nothing"
        );
        for mv in &r.moves {
            assert_eq!(mv.mac, db_mac, "seed {seed}: a requester moved: {mv:?}");
        }
    }
    let late = seed_loop_with("seed-loop-late.toml", "1.0", None);
    let s = load(&late);
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let i = vi(sc, "classic-17.03");
    let m = &sc.variants[i].model;
    let mut episodes = 0;
    // Two minutes: cron's next request (100 s) ends the episode of its
    // first (10 s).
    for seed in 0..5 {
        let r = run_once(m, &sc.timed, seed, 120_000_000, &|| false);
        for e in &r.episodes {
            assert_eq!(e.lost, 1, "seed {seed}: {e:?}");
            assert!(e.end_us.is_some(), "seed {seed}: {e:?} did not end");
        }
        episodes += r.episodes.len();
    }
    assert!(episodes > 0, "a late db never cost a request");
    let i = vi(sc, "swarm-mode");
    let r = run_once(&sc.variants[i].model, &sc.timed, 0, 60_000_000, &|| false);
    assert!(r.episodes.is_empty() && r.fdb_moves == 0, "{r:?}");
}

fn moves(ts: &[u64]) -> Vec<FdbMove> {
    ts.iter()
        .enumerate()
        .map(|(i, t)| FdbMove {
            t_us: *t,
            host: 0,
            mac: EthernetAddress([2, 0x42, 10, 0, 0, 2]),
            from: (i % 2) as u8,
            to: ((i + 1) % 2) as u8,
        })
        .collect()
}

#[test]
fn timed_properties_can_fail() {
    let s = netrace::scenario::load(std::path::Path::new(SEED_LOOP)).unwrap();
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let m = &sc.variants[0].model;
    let th = Thresholds {
        loss: 0.10,
        flap_moves: 2,
        flap_window_us: 1_000_000,
        recover_us: 5_000_000,
    };
    let mut r = RunResult {
        duration_us: 60_000_000,
        flows: vec![FlowResult {
            sent: 100,
            lost: 10,
        }],
        moves: moves(&[0, 2_000_000, 4_000_000]),
        episodes: vec![Episode {
            flow: 0,
            start_us: 1_000_000,
            end_us: Some(6_000_000),
            lost: 5,
            judged_until_us: 59_000_000,
        }],
        ..RunResult::default()
    };
    // At the bounds: nothing violated.
    for p in ["l2.loss", "l2.no_flap", "l2.recovers_within"] {
        assert_eq!(r.violation(m, p, &th), None, "{p}");
    }
    // One past each bound: each violated.
    r.flows[0].lost = 11;
    assert!(r.violation(m, "l2.loss", &th).is_some());
    r.moves = moves(&[0, 400_000, 900_000]);
    assert!(r.violation(m, "l2.no_flap", &th).is_some());
    r.episodes[0].end_us = Some(6_000_001);
    assert!(r.violation(m, "l2.recovers_within", &th).is_some());
    // An episode still open at the end counts to the end of judging.
    r.episodes[0].end_us = None;
    let why = r.violation(m, "l2.recovers_within", &th).unwrap();
    assert!(why.contains("had not ended"), "{why}");
}

#[test]
fn a_contradicted_expectation_is_exit_1() {
    let text = std::fs::read_to_string(SEED_LOOP).unwrap().replace(
        r#"note = "no miss handling (#2047): local peers are never programmed"
simulate_expect = { "l2.loss" = "not violated""#,
        r#"note = "no miss handling (#2047): local peers are never programmed"
simulate_expect = { "l2.loss" = "violated""#,
    );
    assert!(text.contains(r#"simulate_expect = { "l2.loss" = "violated", "l2.no_flap" = "not"#));
    let p = scratch_with("simulate", "expect-swarm-loss.toml", &text);
    let o = run(&[
        "simulate",
        p.to_str().unwrap(),
        "--variant",
        "swarm-mode",
        "--runs",
        "2",
        "--duration",
        "1m",
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "expected violated, not seen: {}",
        stdout(&o)
    );
    // db late every time: the first contact at 10 s costs cron's request.
    let p = seed_loop_with(
        "expect-classic-loss.toml",
        "1.0",
        Some(r#"{ "l2.loss" = "violated" }"#),
    );
    let o = run(&[
        "simulate",
        p.to_str().unwrap(),
        "--variant",
        "classic-17.03",
        "--runs",
        "2",
        "--duration",
        "1m",
        "--seed",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let p = seed_loop_with(
        "expect-classic-no-loss.toml",
        "1.0",
        Some(r#"{ "l2.loss" = "not violated" }"#),
    );
    let o = run(&[
        "simulate",
        p.to_str().unwrap(),
        "--variant",
        "classic-17.03",
        "--runs",
        "1",
        "--seed",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("CONTRADICTS"));
}

/// Each bad key of the timed format: exit 2, the file and line of the key.
#[test]
fn bad_input_is_exit_2_with_file_and_line() {
    let base = std::fs::read_to_string(SEED_LOOP).unwrap();
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let cases: [(&str, &str, &str); 6] = [
        (
            "kind = \"tcp\"\nevery = \"200ms\"",
            "kind = \"tcpx\"\nevery = \"200ms\"",
            "tcpx",
        ),
        ("every = \"200ms\"", "every = \"fast\"", "fast"),
        ("p = 0.05", "p = 1.5", "p = 1.5"),
        (
            "reply_delay = { p = 0.05",
            "neigh = { retrans_time_ms = -5 }\nreply_delay = { p = 0.05",
            "retrans_time_ms",
        ),
        (
            "reply_delay = { p = 0.05",
            "neigh = { gc_thresh1 = 5 }\nreply_delay = { p = 0.05",
            "gc_thresh1",
        ),
        ("loss = 0.01", "loss = 3.0", "loss = 3.0"),
    ];
    for (i, (from, to, needle)) in cases.iter().enumerate() {
        assert!(base.contains(from), "case {i}: {from}");
        let text = base.replacen(from, to, 1);
        let name = format!("bad-{i}.toml");
        let p = scratch_with("simulate", &name, &text);
        let o = run(&[
            "simulate",
            p.to_str().unwrap(),
            "--runs",
            "1",
            "--duration",
            "1m",
        ]);
        assert_eq!(o.status.code(), Some(2), "case {i}: {}", stderr(&o));
        let err = stderr(&o);
        let want = format!("{name}:{}", line_of(&text, needle));
        assert!(err.contains(&want), "case {i}: want {want} in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Flags.
    for args in [
        ["--runs", "0"],
        ["--duration", "soon"],
        ["--variant", "nope"],
    ] {
        let mut a = vec!["simulate", SEED_LOOP];
        a.extend_from_slice(&args);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    // An l2 scenario without traffic still loads for check, and simulate
    // says what is missing.
    let o = run(&["simulate", "scenarios/classic-overlay-last-word.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("[[traffic]]"), "{}", stderr(&o));
}

/// `Flow::late_us` (issue 16's trap): with it 0 every request leaves
/// exactly on its schedule, so web's 200 ms grid and cron's first contact
/// at 10 s coincide to the microsecond; with it set, as the soak
/// comparison does for its TCP client (which sends only when a 20 ms read
/// returns), every request after a flow's first leaves up to that late
/// and the coincidence is gone. Host1's hand-offs exactly on a 200 ms
/// boundary are web's requests (and cron's first, on time).
#[test]
fn a_late_flow_leaves_off_its_schedule() {
    let s = load(Path::new(SEED_LOOP));
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let m = &sc.variants[vi(sc, "classic-17.03")].model;
    let on_grid = |spec: &netrace::overlay::timed::TimedSpec| {
        let (_, log) = run_once_logged(m, spec, 0, 20_000_000);
        log.iter()
            .filter(|x| x.host == 0 && x.handed_us > 0 && x.handed_us % 200_000 == 0)
            .count()
    };
    let exact = on_grid(&sc.timed);
    assert!(
        exact >= 90,
        "{exact} hand-offs on the grid without lateness"
    );
    let mut spec = sc.timed.clone();
    for f in &mut spec.flows {
        f.late_us = 20_000;
    }
    let late = on_grid(&spec);
    assert!(
        late < 5,
        "{late} hand-offs still on the grid with 20 ms lateness"
    );
}

/// `ContainerTiming::relay_us` draws each relayed ARP reply's pass-through
/// from the measured values themselves, not from a range between them:
/// with values 1 ms and 9 ms, host1's br0 learns db on its veth about
/// 1 ms or about 9 ms after the proxied reply taught it vxlan1 at web's
/// first contact (db's port line), never in between, and both occur over
/// a few seeds.
#[test]
fn the_relay_draws_measured_values() {
    let prompt = seed_loop_with("seed-loop-relay.toml", "0.0", None);
    let s = load(&prompt);
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let m = &sc.variants[vi(sc, "classic-17.03")].model;
    let db = m.endpoints().iter().position(|e| e.name == "db").unwrap();
    let db_mac = m.endpoints()[db].mac;
    let mut spec = sc.timed.clone();
    spec.containers[db].relay_us = vec![1_000, 9_000];
    let (mut short, mut long) = (0, 0);
    for seed in 0..12 {
        let r = run_once(m, &spec, seed, 2_000_000, &|| false);
        let line = &r
            .ports
            .iter()
            .find(|((h, mac), _)| *h == 0 && *mac == db_mac)
            .expect("db's port line on host1")
            .1;
        assert!(line.len() >= 2, "seed {seed}: {line:?}");
        let gap = line[1].0 - line[0].0;
        match gap {
            900..=1_200 => short += 1,
            8_900..=9_200 => long += 1,
            _ => panic!("seed {seed}: db came back {gap} µs after the proxy"),
        }
    }
    assert!(short > 0 && long > 0, "short {short}, long {long}");
}

/// A SYN lost into vxlan1 is retransmitted after `TCP_TIMEOUT_INIT`
/// (1 s): with db always late (p = 1), cron's first SYN to db (10 s, its
/// first contact, answered first by vxlan1's proxy) meets db on vxlan1,
/// loops back through the local bypass and is dropped, and br0 learns
/// cron on vxlan1. With a connect timeout longer than 1 s (the flow's
/// timeout, 3 s here) the client sends the SYN again exactly 1 s later,
/// db answers only that one, and the request written on the connection is
/// answered. With the bundled 1 s timeout (the soak client's
/// `connect_timeout`) the connect gives up first: one SYN, one lost
/// request.
#[test]
fn a_syn_lost_into_vxlan1_is_retransmitted_after_1s() {
    use netrace::overlay::system::VXLAN_PORT;
    use netrace::overlay::timed::run_once_tcp_logged;
    let late = seed_loop_with("seed-loop-syn.toml", "1.0", None);
    let s = load(&late);
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let m = &sc.variants[vi(sc, "classic-17.03")].model;
    let at = |n: &str| m.endpoints().iter().position(|e| e.name == n).unwrap();
    let (cron, db) = (at("cron"), at("db"));
    let cron_mac = m.endpoints()[cron].mac;
    let f = sc
        .timed
        .flows
        .iter()
        .position(|x| x.from == cron && x.to == db)
        .unwrap();
    let mut spec = sc.timed.clone();
    spec.timeout_us = 3_000_000;
    let mut seen = None;
    for seed in 0..8 {
        let (r, log) = run_once_tcp_logged(m, &spec, seed, 20_000_000);
        let of = |server: bool, kind: &str| -> Vec<u64> {
            log.iter()
                .filter(|x| x.flow == f && x.server == server && x.kind == kind)
                .map(|x| x.t_us)
                .collect()
        };
        let (syns, synacks) = (of(false, "SYN"), of(true, "SYN-ACK"));
        let first = syns[0];
        assert_eq!(first, 10_000_000, "seed {seed}: cron connects at its start");
        let looped = r
            .moves
            .iter()
            .any(|mv| mv.mac == cron_mac && mv.to == VXLAN_PORT && mv.t_us < first + 1_000);
        if !looped {
            continue;
        }
        seen.get_or_insert(seed);
        assert!(
            syns.len() >= 2 && syns[1] == first + 1_000_000,
            "seed {seed}: SYNs at {syns:?}"
        );
        assert!(
            synacks.iter().all(|&t| t > syns[1]),
            "seed {seed}: db answered the lost SYN: {synacks:?}"
        );
        assert_eq!(
            (r.flows[f].sent, r.flows[f].lost),
            (1, 0),
            "seed {seed}: the request on the retransmitted SYN's connection"
        );
    }
    let seed = seen.expect("no seed lost cron's first SYN into vxlan1");
    let (r, log) = run_once_tcp_logged(m, &sc.timed, seed, 20_000_000);
    let syns = log
        .iter()
        .filter(|x| x.flow == f && !x.server && x.kind == "SYN")
        .count();
    assert_eq!(
        syns, 1,
        "the 1 s connect timeout comes before the retransmission"
    );
    assert_eq!((r.flows[f].sent, r.flows[f].lost), (1, 1));
}

/// The soak comparison's model (`soak::model_as_soaked`) starts with
/// vxlan1's tables as the soak programs them: under classic-17.03 the
/// proxy answers for db at web's very first contact (0 s), so br0 learns
/// db on vxlan1 (and back on its veth with db's own reply), as the
/// kernel's `bridge monitor fdb` shows at 1 ms; the scenario's own model,
/// whose driver programs db only at that first l3miss, moves nothing
/// then. swarm-mode's soak programs no local entry: nothing moves.
#[test]
fn the_soak_comparison_models_the_soaks_tables() {
    use netrace::kernel::soak::{model_as_soaked, plan_from_scenario};
    let s = load(Path::new(SEED_LOOP));
    let sc = s.system.downcast::<L2Scenario>().unwrap();
    let first_second = |m: &netrace::overlay::system::OverlaySystem| {
        let r = run_once(m, &sc.timed, 1, 5_000_000, &|| false);
        r.moves
            .iter()
            .filter(|mv| mv.t_us < 1_000)
            .map(|mv| {
                m.endpoints()
                    .iter()
                    .find(|e| e.mac == mv.mac)
                    .unwrap()
                    .name
                    .clone()
            })
            .collect::<Vec<_>>()
    };
    let v = &sc.variants[vi(sc, "classic-17.03")];
    let plan = plan_from_scenario(&v.model, &sc.timed, 60_000, 1).unwrap();
    let soaked = model_as_soaked(&v.model, &plan).unwrap();
    let moved = first_second(&soaked);
    assert!(
        moved.contains(&"db".to_string()),
        "with the soak's tables: {moved:?} moved in the first ms"
    );
    assert!(first_second(&v.model).is_empty());
    let v = &sc.variants[vi(sc, "swarm-mode")];
    let plan = plan_from_scenario(&v.model, &sc.timed, 60_000, 1).unwrap();
    let soaked = model_as_soaked(&v.model, &plan).unwrap();
    let r = run_once(&soaked, &sc.timed, 1, 5_000_000, &|| false);
    assert_eq!(r.fdb_moves, 0);
}
