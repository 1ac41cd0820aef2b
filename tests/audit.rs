//! `netrace audit --docker-log`: the seed's log excerpt (tests/data/
//! seed-000-docker.log, the lines of seed 000's report) is audited to the
//! seed's duplicate from the log alone; the fixes hold; JSON rows; a log
//! without overlapping requests is clean; garbage is bad input; the
//! emitted scenario is one `netrace check` accepts.

use std::path::Path;

mod common;
use common::cli::{json_rows, run, scratch, stderr, stdout};

const SCRATCH: &str = "audit-tests";

const SEED_LOG: &str = "tests/data/seed-000-docker.log";

#[test]
fn the_seed_log_yields_the_duplicate_and_the_fixes_hold() {
    let o = run(&["audit", "--docker-log", SEED_LOG]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    // The verdict line of each variant: 17.05 violated, the fixes hold.
    let row = |v: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{v} ")))
            .unwrap_or_else(|| panic!("no row {v}: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("libnetwork-17.05")[1], "VIOLATED", "{text}");
    for fix in ["libnetwork-17.06", "libnetwork-18.03"] {
        assert_eq!(&row(fix)[1..4], ["holds", "holds", "holds"], "{text}");
    }
    let dup = text
        .lines()
        .find(|l| l.contains("libnetwork-17.05 · ipam.unique"))
        .unwrap_or_else(|| panic!("no ipam.unique counterexample: {text}"));
    assert!(dup.contains("172.17.0.16 is held by"), "{dup}");
    let endpoints = [
        "cranky_shockley0",
        "prickly_spence",
        "trusting_davinci",
        "small_davinci7",
    ];
    assert_eq!(
        endpoints.iter().filter(|e| dup.contains(*e)).count(),
        2,
        "{dup}"
    );
    // The timeline names its log lines; the assumption is stated.
    assert!(text.contains("seed-000-docker.log:1 "), "{text}");
    assert!(text.contains("taken to be held"), "{text}");
    assert!(
        text.contains("1 hazard(s) under the daemon's profile"),
        "{text}"
    );
}

#[test]
fn json_has_one_row_per_hazard() {
    let o = run(&["audit", "--docker-log", SEED_LOG, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let rows = json_rows(&o);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["verdict"], "violated", "{r}");
        assert_eq!(r["pool"], "LocalDefault/172.17.0.0/16");
        assert_eq!(r["network"], "bridge");
        assert_eq!(r["endpoints"].as_array().unwrap().len(), 4);
        assert!(r["token"].as_str().unwrap().contains(':'));
        assert!(r["steps"].as_u64().unwrap() > 0);
    }
    let unique = rows
        .iter()
        .find(|r| r["property"] == "ipam.unique")
        .expect("an ipam.unique row");
    assert_eq!(unique["variant"], "libnetwork-17.05");
    assert_eq!(unique["daemon_profile"], true);
    assert!(unique["message"].as_str().unwrap().contains("172.17.0.16"));
    assert_eq!(unique["start"], "2017-05-03T17:36:53.225655932Z");
    assert_eq!(unique["end"], "2017-05-03T17:36:53.230449113Z");
    // No row for a fixed profile: they hold.
    assert!(rows.iter().all(|r| r["variant"] == "libnetwork-17.05"));
}

#[test]
fn assignments_far_apart_are_no_window() {
    let seed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED_LOG)).unwrap();
    // The same log with the four assignments 2 s apart.
    let spread: String = seed
        .lines()
        .map(|l| {
            let l = l.replace("17:36:53.230230667", "17:36:55.230230667");
            let l = l.replace("17:36:53.230297294", "17:36:57.230297294");
            l.replace("17:36:53.230449113", "17:36:59.230449113")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = scratch(SCRATCH, "spread.log");
    std::fs::write(&path, spread).unwrap();
    let o = run(&["audit", "--docker-log", path.to_str().unwrap()]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}{}", stderr(&o));
    assert!(text.contains("no overlapping requests"), "{text}");
    assert!(
        text.contains("4 IPv4 assignment(s) on 1 network(s)"),
        "{text}"
    );
    assert!(!text.contains("VIOLATED"), "{text}");
    // With a window wider than the gaps they overlap again.
    let o = run(&[
        "audit",
        "--docker-log",
        path.to_str().unwrap(),
        "--window",
        "5s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

#[test]
fn garbage_is_bad_input_with_the_file_and_a_hint() {
    let path = scratch(SCRATCH, "garbage.log");
    std::fs::write(&path, "hello\nthis is not a docker log\n").unwrap();
    let o = run(&["audit", "--docker-log", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}:1:", path.display())), "{err}");
    assert!(err.contains("hint:") && err.contains("--debug"), "{err}");
    assert!(stdout(&o).is_empty());
    let o = run(&["audit", "--docker-log", "tests/data/no-such.log"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tests/data/no-such.log"),
        "{}",
        stderr(&o)
    );
    let o = run(&["audit", "--docker-log", SEED_LOG, "--held", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--held"), "{}", stderr(&o));
}

#[test]
fn the_emitted_scenario_is_checked_and_replayed_by_netrace() {
    let dir = scratch(SCRATCH, "emitted");
    let _ = std::fs::remove_dir_all(&dir);
    let o = run(&[
        "audit",
        "--docker-log",
        SEED_LOG,
        "--emit-scenario",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let rows = json_rows(&o);
    let unique = rows
        .iter()
        .find(|r| r["property"] == "ipam.unique")
        .unwrap();
    let file = unique["scenario"].as_str().expect("the emitted path");
    assert!(Path::new(file).starts_with(&dir), "{file}");
    let toml = std::fs::read_to_string(file).unwrap();
    // Every setup and actor line says which log line it came from.
    for l in toml
        .lines()
        .filter(|l| l.starts_with("run = \"") || l.contains("\"172.17.0.1"))
    {
        if l.starts_with("gateway") {
            continue;
        }
        assert!(l.contains("# seed-000-docker.log:"), "{l}");
    }
    let o = run(&["check", file, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["replay", file, unique["token"].as_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("violates ipam.unique"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_profile_comes_from_the_log_or_the_command_line() {
    let seed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED_LOG)).unwrap();
    let with_version = format!(
        "time=\"2017-05-03T17:30:00.000000000Z\" level=info msg=\"Docker daemon\" commit=f4ffd25 graphdriver=aufs version=18.03.1-ce\n{seed}"
    );
    let path = scratch(SCRATCH, "version.log");
    std::fs::write(&path, with_version).unwrap();
    let o = run(&["audit", "--docker-log", path.to_str().unwrap()]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("daemon's profile: libnetwork-18.03"),
        "{text}"
    );
    assert!(text.contains("no hazard under libnetwork-18.03"), "{text}");
    let o = run(&[
        "audit",
        "--docker-log",
        path.to_str().unwrap(),
        "--profile",
        "libnetwork-17.05",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

#[test]
fn held_says_which_addresses_were_in_use() {
    // Only .2-.5 (and the released .16, .17) held: the lowest free address
    // is .6, and that is where two runs meet.
    let o = run(&[
        "audit",
        "--docker-log",
        SEED_LOG,
        "--held",
        "172.17.0.2-172.17.0.5",
    ]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    assert!(text.contains("172.17.0.6 is held by"), "{text}");
    assert!(text.contains("(given by --held)"), "{text}");
}

#[test]
fn pools_from_request_lines_global_scope_and_releases_during_a_window() {
    let log = [
        (
            "10:00:00.000",
            "Assigning addresses for endpoint web1's interface on network ov",
        ),
        (
            "10:00:00.001",
            "RequestAddress(GlobalDefault/10.0.0.0/24, <nil>, map[])",
        ),
        (
            "10:00:00.002",
            "Assigning addresses for endpoint web2's interface on network ov",
        ),
        (
            "10:00:00.003",
            "RequestAddress(GlobalDefault/10.0.0.0/24, <nil>, map[])",
        ),
        (
            "10:00:00.004",
            "Assigning addresses for endpoint db's interface on network mynet",
        ),
        (
            "10:00:00.0045",
            "ReleaseAddress(LocalDefault/172.18.0.0/16, 172.18.0.5)",
        ),
        (
            "10:00:00.005",
            "RequestAddress(LocalDefault/172.18.0.0/16, <nil>, map[])",
        ),
        (
            "10:00:00.006",
            "Assigning addresses for endpoint cache's interface on network mynet",
        ),
        (
            "10:00:00.007",
            "RequestAddress(LocalDefault/172.18.0.0/16, <nil>, map[])",
        ),
    ]
    .iter()
    .map(|(t, m)| format!("time=\"2018-01-10T{t}Z\" level=debug msg=\"{m}\"\n"))
    .collect::<String>();
    let path = scratch(SCRATCH, "two-networks.log");
    std::fs::write(&path, log).unwrap();
    let dir = scratch(SCRATCH, "two-networks");
    let _ = std::fs::remove_dir_all(&dir);
    let o = run(&[
        "audit",
        "--docker-log",
        path.to_str().unwrap(),
        "--emit-scenario",
        dir.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    // The overlay pool is global scope: the store-backed profile, which holds.
    assert!(text.contains("pool GlobalDefault/10.0.0.0/24"), "{text}");
    assert!(text.contains("no hazard under classic-swarm-cas"), "{text}");
    // The other network's pool comes from its RequestAddress lines; the
    // release during its window is a concurrent rm.
    assert!(
        text.contains("network mynet · pool LocalDefault/172.18.0.0/16"),
        "{text}"
    );
    let toml = std::fs::read_to_string(dir.join("audit-mynet-window-2.toml")).unwrap();
    assert!(
        toml.contains("rm = \"172.18.0.5\"  # two-networks.log:6 ReleaseAddress"),
        "{toml}"
    );
    assert!(text.contains("held by db and cache"), "{text}");
}
