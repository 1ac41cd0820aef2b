//! `netrace check` says no more than it searched: exit codes 0/1/2/3/130,
//! `unknown (REASON)` in words, resource limits that end a search with
//! what it found, tokens tied to the scenario they came from, and replay
//! of a fix that blocks the race.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

mod common;
use common::cli::{json_rows, netrace, run, scratch_with};

const SCRATCH: &str = "verdict-tests";

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The token of the seed's 17.05 duplicate, as `check` prints it.
fn seed_duplicate_token() -> String {
    let o = run(&[
        "check",
        SEED,
        "--variant",
        "libnetwork-17.05",
        "--format",
        "json",
    ]);
    json_rows(&o)
        .into_iter()
        .find(|r| r["property"] == "ipam.unique")
        .unwrap()["counterexample"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

const RACE: &str = "scenarios/release-race-duplicate.toml";
const SEED: &str = "scenarios/docker-17.05-duplicate-ip.toml";

#[test]
fn a_search_cut_by_max_states_is_unknown_and_exits_3() {
    let o = run(&[
        "check",
        RACE,
        "--variant",
        "libnetwork-18.03",
        "--max-states",
        "50",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("unknown (max_states)"), "{out}");
    assert!(!out.contains(" holds "), "{out}");
    assert!(out.contains("raise --max-states"), "{out}");
    assert!(!out.contains("every verdict matches"), "{out}");
    // With the scenario's own bounds the space is covered: holds, 0.
    let o = run(&["check", RACE, "--variant", "libnetwork-18.03"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("holds"));
}

#[test]
fn random_walks_never_print_holds() {
    let o = run(&[
        "check",
        RACE,
        "--strategy",
        "random",
        "--walks",
        "50",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let rows = json_rows(&o);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_ne!(r["verdict"], "holds", "{r}");
        assert_ne!(r["verdict"], "vacuous", "{r}");
        if r["verdict"] == "unknown" {
            assert_eq!(r["unknown_reason"], "sampling", "{r}");
        }
        assert_eq!(r["complete"], false);
    }
    // The 17.06 duplicate is still found, and a violation is conclusive.
    assert!(rows
        .iter()
        .any(|r| r["variant"] == "libnetwork-17.06" && r["verdict"] == "violated"));
}

#[test]
fn a_property_with_nothing_to_check_is_vacuous() {
    let o = run(&[
        "check",
        "scenarios/classic-overlay-first-word.toml",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let converges: Vec<_> = json_rows(&o)
        .into_iter()
        .filter(|r| r["property"] == "l2.converges")
        .collect();
    assert!(!converges.is_empty());
    for r in converges {
        assert_eq!(r["verdict"], "vacuous", "{r}");
    }
    // Expecting holds of it is a contradiction, not a pass.
    let body = std::fs::read_to_string("scenarios/classic-overlay-first-word.toml")
        .unwrap()
        .replace(
            "\"l2.converges\" = \"vacuous\"",
            "\"l2.converges\" = \"holds\"",
        );
    let p = scratch_with(SCRATCH, "first-word-holds.toml", &body);
    let o = run(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("found vacuous"));
}

#[test]
fn a_scenario_without_expectations_is_an_exploration() {
    let body: String = std::fs::read_to_string(RACE)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("expect"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = scratch_with(SCRATCH, "race-explore.toml", &body);
    let o = run(&["check", p.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("VIOLATED"), "violations are reported: {out}");
    let o = run(&["check", p.to_str().unwrap(), "--expect-holds"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
}

#[test]
fn the_memory_budget_ends_a_search_as_unknown_memory() {
    let o = run(&[
        "check",
        SEED,
        "--variant",
        "classic-swarm-cas+serial",
        // The smallest budget accepted: the whole search needs about 4 MB
        // (4,031,465 bytes with two jobs, since the parallel search packs
        // its frontier), so 4M no longer stops it.
        "--max-memory",
        "1M",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    for r in json_rows(&o) {
        assert_eq!(r["verdict"], "unknown", "{r}");
        assert_eq!(r["unknown_reason"], "memory", "{r}");
        assert_eq!(r["stop"], "memory", "{r}");
    }
    // Absurd budgets are refused with exit 2.
    for bad in ["0", "12 parsecs", "100"] {
        let o = run(&["check", SEED, "--max-memory", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(text(&o.stderr).contains("hint:"));
    }
}

/// The seed scenario with `n` concurrent runs instead of four (the
/// generator loop of docs/performance.md): a search that takes seconds.
fn seed_with_runs(n: usize) -> PathBuf {
    let seed = std::fs::read_to_string(SEED).unwrap();
    let head_end = seed.find("\nrm = ").expect("the seed's rm line") + 1;
    let head_end = head_end + seed[head_end..].find('\n').unwrap() + 1;
    let variants = seed.find("[[variant]]").expect("the seed's variants");
    let mut body = seed[..head_end].to_string();
    for i in 1..=n {
        body.push_str(&format!("[[actor]]\nrun = \"r{i}\"\n"));
    }
    body.push_str("[bounds]\nmax_states = 200000000\nmax_depth = 1000\n");
    body.push_str(&seed[variants..]);
    scratch_with(SCRATCH, &format!("seed-{n}-runs.toml"), &body)
}

#[test]
fn the_time_limit_ends_a_search_as_unknown_time() {
    // 864,372 orbits under classic-swarm-cas: about 6 s in a release
    // build, so 100 ms ends it whatever the machine. (The seed's own four
    // runs finished within 100 ms once the search got faster.)
    let big = seed_with_runs(8);
    let o = run(&[
        "check",
        big.to_str().unwrap(),
        "--variant",
        "classic-swarm-cas",
        "--time-limit",
        "100ms",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("unknown (time)"), "{out}");
    assert!(out.contains("raise --time-limit"), "{out}");
}

#[test]
fn the_command_line_refuses_the_bounds_the_loader_refuses() {
    for (flag, v) in [
        ("--max-states", "0"),
        ("--max-states", "2000000000"),
        ("--max-depth", "0"),
        ("--max-depth", "5000000"),
    ] {
        let o = run(&["check", RACE, flag, v]);
        assert_eq!(o.status.code(), Some(2), "{flag} {v}");
        let e = text(&o.stderr);
        assert!(e.contains(flag) && e.contains("hint:"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn a_write_error_on_stdout_is_exit_2() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(full) = full else {
        panic!("/dev/full is missing: this test needs a Linux machine");
    };
    let o = netrace()
        .args(["check", RACE])
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(e.contains("cannot write the output"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn sigint_keeps_the_finished_rows_and_exits_130() {
    // The seed scenario's last variant takes seconds; the rows before it
    // take milliseconds. Interrupt once the one before it is written.
    let mut child = netrace()
        .args(["check", SEED, "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let r: serde_json::Value = serde_json::from_str(&line).unwrap();
        let last = r["variant"] == "classic-swarm-cas" && r["property"] == "ipam.counter";
        seen.push(r);
        if last {
            break;
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    for line in lines {
        seen.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let interrupted: Vec<_> = seen
        .iter()
        .filter(|r| r["variant"] == "classic-swarm-cas+serial")
        .collect();
    assert_eq!(
        interrupted.len(),
        3,
        "the running variant's rows are written"
    );
    for r in interrupted {
        assert_eq!(r["stop"], "interrupted", "{r}");
        assert!(
            r["verdict"] == "violated" || r["unknown_reason"] == "interrupted",
            "{r}"
        );
    }
    assert!(seen
        .iter()
        .any(|r| r["variant"] == "libnetwork-17.05" && r["verdict"] == "violated"));
}

#[test]
fn a_token_is_refused_on_an_edited_scenario_or_another_file_of_that_name() {
    let token = seed_duplicate_token();
    let original = std::fs::read_to_string(SEED).unwrap();
    // Reformatting and prose do not matter.
    let reworded = format!(
        "# a comment\n{}",
        original.replace("description = \"\"\"", "description = \"\"\"Reworded. ")
    );
    let p = scratch_with(SCRATCH, "seed-reworded.toml", &reworded);
    let o = run(&["replay", p.to_str().unwrap(), &token]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    // Another setup is another scenario, same name or not.
    let edited = original.replace(
        "rm = [\"172.17.0.16\", \"172.17.0.17\"]",
        "rm = [\"172.17.0.16\", \"172.17.0.15\"]",
    );
    assert_ne!(edited, original, "the edit applies");
    let p = scratch_with(SCRATCH, "seed-edited.toml", &edited);
    let o = run(&["replay", p.to_str().unwrap(), &token]);
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(e.contains("other content of this scenario"), "{e}");
    assert!(e.contains("edited since"), "{e}");
}

#[test]
fn replaying_a_race_on_a_fixed_variant_shows_what_blocks_it() {
    let token = seed_duplicate_token();
    let o = run(&["replay", SEED, &token, "--variant", "libnetwork-18.03"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("BLOCKED on variant libnetwork-18.03"), "{out}");
    assert!(out.contains("network lock"), "{out}");
    assert!(out.contains("result: blocked at step"), "{out}");
    let o = run(&[
        "replay",
        SEED,
        &token,
        "--variant",
        "libnetwork-18.03",
        "--format",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["blocked"]["reason"]
        .as_str()
        .unwrap()
        .contains("network lock"));
}

#[test]
fn ipam_ops_bounds_its_input() {
    use std::io::Write;
    let feed = |input: Vec<u8>| {
        let mut child = netrace()
            .args(["ipam", "ops", "--bits", "64", "--version", "2023"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Written from a thread while the output is read, so neither pipe
        // fills up; the child may stop reading early (a broken pipe).
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    };
    let mut long = b"{\"op\":\"set_any\"".to_vec();
    long.extend(std::iter::repeat_n(b' ', 10_000));
    long.extend(b"}\n");
    let o = feed(long);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("stdin:1:4097: error: the line is longer than 4096 bytes"));
    let many = "{\"op\":\"unset\",\"ordinal\":1}\n".repeat(100_001);
    let o = feed(many.into_bytes());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("stdin:100001:1: error: more than 100000 ops"));
}

#[test]
fn netrace_kernel_refuses_absurd_bounds_before_running() {
    for (flag, v) in [("--max-states", "0"), ("--max-depth", "5000000")] {
        let o = run(&[
            "kernel",
            "scenarios/classic-overlay-last-word.toml",
            flag,
            v,
        ]);
        assert_eq!(o.status.code(), Some(2), "{flag} {v}");
        let e = text(&o.stderr);
        assert!(e.contains(flag) && e.contains("hint:"), "{e}");
    }
}

#[test]
fn fail_fast_stops_at_the_first_counterexample_and_the_first_contradiction() {
    // The seed, with a wrong expectation on its first variant: 17.05 is
    // expected to keep addresses unique, which it does not.
    let seed = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SEED))
        .unwrap()
        .replacen(
            r#"expect = { "ipam.unique" = "violated", "ipam.accounted" = "violated""#,
            r#"expect = { "ipam.unique" = "holds", "ipam.accounted" = "violated""#,
            1,
        );
    let p = scratch_with(SCRATCH, "fail-fast.toml", &seed);
    let p = p.to_str().unwrap();
    let full = run(&["check", p, "--format", "json"]);
    assert_eq!(full.status.code(), Some(1), "{}", text(&full.stderr));
    let full = json_rows(&full);
    let fast = run(&["check", p, "--format", "json", "--fail-fast"]);
    assert_eq!(fast.status.code(), Some(1), "{}", text(&fast.stderr));
    assert!(text(&fast.stderr).contains("stopped by --fail-fast"));
    let fast = json_rows(&fast);
    // Only the first variant ran.
    assert!(fast.iter().all(|r| r["variant"] == "libnetwork-17.05"));
    assert!(full.iter().any(|r| r["variant"] != "libnetwork-17.05"));
    // Its search ended at the first violation, with fewer states, and
    // what it did not decide is unknown, never holds.
    let states = |rows: &[serde_json::Value]| rows[0]["states"].as_u64().unwrap();
    assert!(
        states(&fast) < states(&full),
        "{} vs {}",
        states(&fast),
        states(&full)
    );
    assert!(fast.iter().any(|r| r["verdict"] == "violated"));
    for r in &fast {
        assert_ne!(r["verdict"], "holds", "{r}");
        if r["verdict"] == "unknown" {
            assert_eq!(r["unknown_reason"], "first_violation", "{r}");
        }
    }
}

#[test]
fn symmetry_is_on_by_default_named_in_the_row_and_can_be_turned_off() {
    let args = [
        "check",
        "scenarios/docker-17.05-duplicate-ip.toml",
        "--variant",
        "libnetwork-17.05",
        "--format",
        "json",
    ];
    let on = run(&args);
    let off = run(&[&args[..], &["--symmetry", "off"]].concat());
    assert_eq!((on.status.code(), off.status.code()), (Some(0), Some(0)));
    let (on, off) = (json_rows(&on), json_rows(&off));
    assert_eq!(on.len(), off.len());
    for (a, b) in on.iter().zip(&off) {
        assert_eq!(a["reductions"], serde_json::json!(["por", "symmetry"]));
        assert_eq!(b["reductions"], serde_json::json!(["por"]));
        // Four interchangeable runs: the same verdicts over far fewer states.
        assert_eq!(a["verdict"], b["verdict"]);
        assert_eq!(a["complete"], true);
        assert!(a["states"].as_u64().unwrap() * 10 < b["states"].as_u64().unwrap());
    }
    // An L2 scenario has no interchangeable actors: nothing is said.
    let l2 = json_rows(&run(&[
        "check",
        "scenarios/classic-overlay-first-word.toml",
        "--format",
        "json",
    ]));
    assert!(l2
        .iter()
        .all(|r| r["reductions"] == serde_json::json!(["por"])));
    let bad = run(&[&args[..], &["--symmetry", "maybe"]].concat());
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn pct_never_prints_holds_and_refuses_a_depth_out_of_range() {
    let o = run(&[
        "check",
        "scenarios/docker-17.05-duplicate-ip.toml",
        "--variant",
        "libnetwork-17.05",
        "--strategy",
        "pct",
        "--pct-depth",
        "2",
        "--walks",
        "300",
        "--format",
        "json",
    ]);
    let rows = json_rows(&o);
    let verdict = |p: &str| {
        rows.iter()
            .find(|r| r["property"] == p)
            .map(|r| (r["verdict"].clone(), r["strategy"].clone()))
            .unwrap()
    };
    assert_eq!(verdict("ipam.unique").0, "violated");
    // Never proven by sampling, so its `holds` expectation is unmet: exit 3.
    assert_eq!(verdict("ipam.counter").0, "unknown");
    assert_eq!(verdict("ipam.counter").1, "pct");
    assert_eq!(o.status.code(), Some(3));
    for bad in ["0", "101"] {
        let o = run(&[
            "check",
            "scenarios/docker-17.05-duplicate-ip.toml",
            "--strategy",
            "pct",
            "--pct-depth",
            bad,
        ]);
        assert_eq!(o.status.code(), Some(2), "--pct-depth {bad}");
        assert!(text(&o.stderr).contains("--pct-depth"));
    }
}
