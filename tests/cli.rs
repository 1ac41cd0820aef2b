//! The command-line contract: exit codes, the JSON fields, replay tokens
//! that reproduce byte-identical traces, `ipam ops` against the recorded
//! vectors, and clear errors on bad input.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

mod common;
use common::cli::{json_rows, netrace, run, scratch_with, stderr, stdout};

const SCRATCH: &str = "cli-tests";

#[test]
fn check_of_the_seed_scenario_finds_the_duplicate_and_proves_the_fix() {
    let o = run(&[
        "check",
        "scenarios/docker-17.05-duplicate-ip.toml",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = json_rows(&o);
    let cell = |v: &str, p: &str| {
        rows.iter()
            .find(|r| r["variant"] == v && r["property"] == p)
            .unwrap_or_else(|| panic!("no row {v} {p}"))
            .clone()
    };
    let dup = cell("libnetwork-17.05", "ipam.unique");
    assert_eq!(dup["verdict"], "violated");
    assert_eq!(dup["matches"], true);
    let ce = &dup["counterexample"];
    assert!(ce["steps"].as_u64().unwrap() > 0);
    assert!(
        ce["message"]
            .as_str()
            .unwrap()
            .starts_with("172.17.0.16 is held by"),
        "first-fit reuses the lowest released address: {ce}"
    );
    for p in ["ipam.unique", "ipam.accounted", "ipam.counter"] {
        let fixed = cell("libnetwork-18.03", p);
        assert_eq!(fixed["verdict"], "holds");
        assert_eq!(fixed["complete"], true);
        assert!(fixed["counterexample"].is_null());
    }
    for r in &rows {
        for key in [
            "scenario",
            "variant",
            "property",
            "verdict",
            "expected",
            "matches",
            "complete",
            "states",
            "elapsed_ms",
            "counterexample",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert!(r["states"].as_u64().is_some() && r["elapsed_ms"].as_f64().is_some());
    }
}

#[test]
fn default_check_covers_every_bundled_scenario_and_exits_zero() {
    let o = run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    let mut seen = 0;
    for dir in ["scenarios", "scenarios/scale"] {
        for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let name = std::fs::read_to_string(&path).unwrap();
            let name = name
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .and_then(|l| l.strip_suffix('"'))
                .unwrap()
                .to_string();
            assert!(
                text.contains(&format!("{name} — {dir}/")),
                "matrix lacks {name}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 8, "the catalogue and its scale scenarios");
    assert!(text.contains("every verdict matches its expectation"));
}

#[test]
fn every_token_replays_to_its_violation_with_an_identical_trace() {
    let o = run(&["check", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let rows = json_rows(&o);
    let mut replayed = 0;
    for r in rows.iter().filter(|r| r["verdict"] == "violated") {
        let token = r["counterexample"]["token"].as_str().unwrap();
        let file = r["file"].as_str().unwrap().to_string();
        let a = run(&["replay", &file, token]);
        let b = run(&["replay", &file, token]);
        assert_eq!(
            a.status.code(),
            Some(1),
            "a violating schedule exits 1: {}",
            stderr(&a)
        );
        assert_eq!(a.stdout, b.stdout, "replay must be byte-identical");
        let text = stdout(&a);
        let property = r["property"].as_str().unwrap();
        assert!(
            text.contains(&format!(
                "✗ {property} violated: {}",
                r["counterexample"]["message"].as_str().unwrap()
            )),
            "replay of {token} does not show the violation of {property}:\n{text}"
        );
        replayed += 1;
    }
    assert!(replayed >= 3);
}

#[test]
fn check_is_deterministic() {
    let strip = |o: &Output| -> Vec<String> {
        json_rows(o)
            .into_iter()
            .map(|mut r| {
                // Measurements of the run, not results: wall time and the
                // heap the allocator saw.
                for k in ["elapsed_ms", "bytes", "bytes_per_state"] {
                    r[k] = serde_json::Value::Null;
                }
                r.to_string()
            })
            .collect()
    };
    let a = run(&["check", "--format", "json"]);
    let b = run(&["check", "--format", "json"]);
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn a_counterexample_replays_on_another_variant() {
    let o = run(&[
        "check",
        "scenarios/release-races-run.toml",
        "--format",
        "json",
    ]);
    let rows = json_rows(&o);
    let token = rows
        .iter()
        .find(|r| r["variant"] == "libnetwork-17.06" && r["verdict"] == "violated")
        .unwrap()["counterexample"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The 17.06 counterexample replayed on 18.03-without-handle-lock, whose
    // programs are the same shape, still violates.
    let o = run(&[
        "replay",
        "scenarios/release-races-run.toml",
        &token,
        "--variant",
        "libnetwork-18.03-without-handle-lock",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("replayed on variant libnetwork-18.03-without-handle-lock"));
}

#[test]
fn corrupt_tokens_are_refused_with_exit_two() {
    let file = "scenarios/docker-17.05-duplicate-ip.toml";
    for bad in [
        "garbage",
        "libnetwork-17.05:000001111100:00000000",
        "libnetwork-17.05:0000!1111100:6418a5b4",
        "no-such-variant:0:00000000",
    ] {
        let o = run(&["replay", file, bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stdout(&o));
        let e = stderr(&o);
        assert!(e.contains("error:") && e.contains("hint:"), "{e}");
    }
}

#[test]
fn a_schedule_that_diverges_is_refused() {
    // A valid token whose schedule asks for an action that is not enabled.
    let s = netrace::scenario::load(std::path::Path::new(
        "scenarios/docker-17.05-duplicate-ip.toml",
    ))
    .unwrap();
    let token = netrace::explore::token::encode((&s).into(), "libnetwork-17.05", &[9]);
    let o = run(&["replay", "scenarios/docker-17.05-duplicate-ip.toml", &token]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("diverges at step 1"), "{}", stderr(&o));
}

fn expect_input_error(text: &str, line: usize, needle: &str) {
    let p = scratch_with(SCRATCH, &format!("bad-{line}-{}.toml", needle.len()), text);
    let o = run(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let e = stderr(&o);
    let file = p.display().to_string();
    assert!(
        e.contains(&format!("{file}:{line}:")),
        "wrong position in: {e}"
    );
    assert!(e.contains(needle), "{needle:?} not in: {e}");
    assert!(e.contains("hint:"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

const GOOD_HEAD: &str = "name = \"t\"\nkind = \"ipam\"\n";

#[test]
fn bad_scenarios_get_a_position_and_a_hint() {
    expect_input_error("name = \"t\"\nkind = \"ipam\"\n[network\n", 3, "error:");
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"172.17.0.0/33\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        4,
        "not an IPv4 CIDR",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.99\"\n"),
        9,
        "unknown profile",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/29\"\n[setup]\nrun = 4\n[[actor]]\nrun = \"a\"\n[[actor]]\nrun = \"b\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        4,
        "has room for 5 containers",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[bounds]\nmax_states = 0\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        8,
        "max_states = 0 is impossible",
    );
    // `[explore]` and a variant's `explore` (issue 10).
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[explore]\nstrategy = \"bogus\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        8,
        "unknown strategy \"bogus\"",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\nexplore = {{ strategy = \"random\", depth = 2 }}\n"),
        10,
        "depth does not apply to strategy \"random\"",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\nexplore = {{ strategy = \"pct\", runs = 0 }}\n"),
        10,
        "runs = 0 is impossible",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\nsubnte = 1\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        5,
        "unknown field",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\nexpect = {{ \"ipam.uniq\" = \"holds\" }}\n"),
        10,
        "unknown property ipam.uniq",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrm = \"10.0.0.9\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        5,
        "no running container holds this address",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-18.03\"\n"),
        11,
        "variant v is defined twice",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n"),
        1,
        "the scenario has no variants",
    ); // Each problem at the line of the key that has it (issue 9).
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\ngateway = \"10.0.1.1\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        5,
        "gateway 10.0.1.1 is not a host address of the subnet",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.7/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        4,
        "has host bits set",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\nip_range = \"10.1.0.0/28\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        5,
        "ip_range 10.1.0.0/28 is not inside the subnet",
    );
    // Endpoint records and their fix (`[recovery]`, `force_disconnect`).
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"classic-swarm-cas\"\nforce_disconnect = true\n"),
        10,
        "force_disconnect deletes stale endpoint records, but this scenario keeps none",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"classic-swarm-cas\"\nexpect = {{ \"store.restartable\" = \"holds\" }}\n"),
        10,
        "store.restartable is checked only with endpoint records",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[recovery]\nendpoints = true\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n"),
        11,
        "profile libnetwork-17.05 has no store",
    );
    expect_input_error(
        &format!("{GOOD_HEAD}[network]\nsubnet = \"10.0.0.0/24\"\n[[actor]]\nrun = \"a\"\n[recovery]\nendpoint = true\n[[variant]]\nname = \"v\"\nprofile = \"classic-swarm-cas\"\n"),
        8,
        "unknown field",
    );
}

#[test]
fn missing_paths_and_bad_flags_exit_two() {
    let o = run(&["check", "no/such/file.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no such file or directory"));
    let o = run(&["check", "--max-states", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["check", "--variant", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_wrong_expectation_makes_check_exit_one() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/release-races-run.toml"),
    )
    .unwrap()
    .replacen(
        "expect = { \"ipam.unique\" = \"holds\", \"ipam.accounted\" = \"violated\"",
        "expect = { \"ipam.unique\" = \"holds\", \"ipam.accounted\" = \"holds\"",
        1,
    );
    let p = scratch_with(SCRATCH, "wrong-expectation.toml", &text);
    let o = run(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("(!) libnetwork-17.05 ipam.accounted: expected holds, found violated")
    );
}

#[test]
fn random_walks_find_the_seed_duplicate_too() {
    let o = run(&[
        "check",
        "scenarios/docker-17.05-duplicate-ip.toml",
        "--variant",
        "libnetwork-17.05",
        "--strategy",
        "random",
        "--seed",
        "7",
        "--walks",
        "2000",
        "--format",
        "json",
    ]);
    let rows = json_rows(&o);
    let unique = rows
        .iter()
        .find(|r| r["property"] == "ipam.unique")
        .unwrap();
    assert_eq!(unique["verdict"], "violated");
    assert_eq!(
        unique["complete"], false,
        "random walks never claim completeness"
    );
}

fn run_ops(bits: u64, version: &str, input: &str) -> Output {
    let mut child = netrace()
        .args([
            "ipam",
            "ops",
            "--bits",
            &bits.to_string(),
            "--version",
            version,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

#[test]
fn ipam_ops_reproduces_both_vector_files_exactly() {
    for (file, version) in [
        ("libnetwork-bitseq-17.05.jsonl", "17.05"),
        ("libnetwork-bitseq-2023.jsonl", "2023"),
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(file),
        )
        .unwrap();
        for line in text.lines() {
            // Cut the recorded line into its raw op and result texts, so the
            // comparison is byte for byte against what Go printed.
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ops: Vec<String> = v["ops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.to_string())
                .collect();
            let want = raw_array(line, "\"results\":[");
            let out = run_ops(
                v["bits"].as_u64().unwrap(),
                version,
                &(ops.join("\n") + "\n"),
            );
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let got: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
            assert_eq!(got, want, "{file} bits {} seed {}", v["bits"], v["seed"]);
        }
    }
}

/// The elements of the JSON array that starts after `key` in `line`, as raw
/// text (the recorded objects contain no nested arrays or objects).
fn raw_array(line: &str, key: &str) -> Vec<String> {
    let start = line.find(key).unwrap() + key.len();
    let body = &line[start..];
    let end = body.find("}]").unwrap() + 1;
    body[..end]
        .split("},{")
        .map(|s| {
            let s = s.trim_start_matches('{').trim_end_matches('}');
            format!("{{{s}}}")
        })
        .collect()
}

#[test]
fn ipam_ops_rejects_bad_lines_with_their_position() {
    let o = run_ops(32, "2023", "{\"op\":\"set_any\"}\n{\"op\":\"grab\"}\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("stdin:2:"), "{}", stderr(&o));
    let o = run_ops(32, "16.04", "");
    assert_eq!(o.status.code(), Some(2));
    let o = run_ops(0, "2023", "");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_replay_command_in_the_docs_still_replays() {
    // The docs show real commands; keep them true.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "md") {
            files.push(path);
        }
    }
    let mut seen = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("netrace replay scenarios/") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let (Some(file), Some(token)) = (words.next(), words.next()) else {
                continue;
            };
            let o = run(&["replay", &format!("scenarios/{file}"), token]);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{}: {line}: {}",
                f.display(),
                stderr(&o)
            );
            seen += 1;
        }
    }
    assert!(seen >= 3, "the docs show replay commands");
}

/// The matrix with each row's time column (its last 10 characters) cut,
/// and ANSI escapes removed.
fn matrix_without_times(text: &str) -> String {
    let mut plain = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters m
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .lines()
        .map(|l| {
            if l.contains("  complete  ") || l.contains("  stopped:") {
                &l[..l.len() - 10]
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn colour_only_when_asked_and_it_never_moves_a_column() {
    // A state bound leaves some expected `holds` unknown: cells of every
    // colour, bold ones and `(!)` lines.
    let args = [
        "check",
        "scenarios/docker-17.05-duplicate-ip.toml",
        "--max-states",
        "60",
    ];
    let with = |color: &str, no_color: Option<&str>| {
        let mut c = netrace();
        c.args(args).args(["--color", color]);
        c.env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let o = c.output().expect("netrace runs");
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        stdout(&o)
    };
    let always = with("always", None);
    for code in ["\x1b[31m", "\x1b[32m", "\x1b[1;33m", "\x1b[1m(!)\x1b[0m"] {
        assert!(always.contains(code), "no {code:?} in:\n{always}");
    }
    let never = with("never", None);
    assert!(!never.contains('\x1b'), "{never}");
    // Standard output is a pipe here: `auto` means no colour.
    assert!(!with("auto", None).contains('\x1b'));
    // NO_COLOR set and not empty: no colour by default; the flag wins.
    assert!(!with("auto", Some("1")).contains('\x1b'));
    assert!(with("always", Some("1")).contains('\x1b'));
    assert_eq!(matrix_without_times(&always), matrix_without_times(&never));
    // A bad value is a usage error.
    let o = run(&["check", "--color", "sometimes"]);
    assert_eq!(o.status.code(), Some(2));
}
