//! The kernel oracle against the real Linux bridge and vxlan of this
//! machine: for every L2 scenario and variant in `scenarios/`, the kernel
//! agrees with the model (final `br0` FDB of container MACs, ARP replies
//! received, data frames delivered — and every other table the oracle
//! reads); `netrace kernel` shows the last word in both columns; no
//! namespace is left behind, not even on panic or Ctrl-C; and a wrong
//! expectation is caught, so the oracle can fail.
//!
//! These tests need root and network namespaces. Without them each test
//! prints `KERNEL ORACLE SKIPPED: <why>` on stderr and passes — unless
//! `NETRACE_REQUIRE_KERNEL=1` is set (CI sets it), in which case a skip is
//! a failure. `NETRACE_KERNEL_WALKS=N` raises the number of random walks
//! run per variant (default 3).
//!
//! Every test that touches the kernel holds one lock, so that `ip netns
//! list` before and after a test is not disturbed by another test of this
//! binary (names are unique per run anyway).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netrace::explore::Bounds;
use netrace::kernel::{self, KernelError, RunOptions};
use netrace::overlay::oracle::{self, Plan};
use netrace::overlay::system::OverlaySystem;
use netrace::scenario;
use netrace::scenario::l2::L2Scenario;

mod common;
use common::kernel::{
    all_netns, kernel_or_skip, leaves_no_namespace, netns_of, own_netns, par_each,
};

const SCENARIO: &str = "scenarios/classic-overlay-last-word.toml";
const B_MAC: &str = "02:42:0a:00:00:03";

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every variant of every L2 scenario: (scenario name, variant, model,
/// the scenario's bounds).
fn l2_variants() -> Vec<(String, String, OverlaySystem, Bounds)> {
    let files = scenario::collect(&[manifest().join("scenarios")]).expect("scenarios/");
    let mut out = Vec::new();
    for f in files {
        let s = scenario::load(&f).expect("scenarios load");
        if let Some(l2) = s.system.downcast::<L2Scenario>() {
            // A `[time]` scenario's orders put timers between deliveries,
            // which the oracle cannot force: `netrace kernel` refuses it
            // (tests/timers.rs checks the refusal).
            for v in l2.variants.iter().filter(|v| v.model.time().is_none()) {
                out.push((s.name.clone(), v.name.clone(), v.model.clone(), s.bounds));
            }
        }
    }
    assert!(!out.is_empty(), "scenarios/ holds L2 scenarios");
    out
}

/// Runs `plan` on the kernel and asserts agreement, naming what differs.
fn assert_kernel_agrees(label: &str, model: &OverlaySystem, plan: &Plan) -> kernel::KernelRun {
    let run =
        kernel::run(model, plan, &RunOptions::default()).unwrap_or_else(|e| panic!("{label}: {e}"));
    let cmp = kernel::compare(
        model,
        &plan.expected,
        &plan.received,
        &run.observed,
        &run.frames,
    );
    if !cmp.agree() {
        let mut why = String::new();
        for t in cmp.tables.iter().filter(|t| !t.agree()) {
            why.push_str(&format!("\n  {}:", t.name));
            for r in t.rows.iter().filter(|r| !r.agree) {
                why.push_str(&format!(
                    "\n    {}: model {:?}, kernel {:?}",
                    r.key, r.model, r.kernel
                ));
            }
        }
        if let Some(i) = run.first_divergence {
            why.push_str(&format!(
                "\n  first seen after event {}: {}",
                i + 1,
                run.events[i].what
            ));
        }
        panic!("{label}: the kernel disagrees with the model:{why}");
    }
    // The three observables the issue names, spelled out.
    assert_eq!(run.observed.br0_fdb, plan.expected.br0_fdb, "{label}");
    assert_eq!(
        run.observed.arp_replies, plan.expected.arp_replies,
        "{label}"
    );
    assert_eq!(run.observed.data, plan.expected.data, "{label}");
    assert_eq!(run.first_divergence, None, "{label}");
    run
}

#[test]
fn every_l2_variant_agrees_with_the_kernel_on_its_default_schedule() {
    let Some(_k) = kernel_or_skip("default schedules") else {
        return;
    };
    leaves_no_namespace(|| {
        par_each(&l2_variants(), |(scenario, variant, model, bounds)| {
            let (schedule, source) = kernel::default_schedule(model, *bounds);
            let plan = oracle::plan(model, &schedule).expect("a schedule of the model");
            assert!(
                plan.faithful(),
                "{scenario} {variant}: {source} is forceable"
            );
            let label = format!("{scenario} · {variant} · {source}");
            assert_kernel_agrees(&label, model, &plan);
            // A scenario without scripts (the seed loop: traffic only, for
            // `netrace simulate`) has an empty schedule: nothing to force.
            // The pinned-neighbour scenario's canonical schedule has B's
            // own reply come last (its last word is found by the explorer,
            // not by the first enabled action).
            if variant == "classic-17.03"
                && !schedule.is_empty()
                && scenario != "classic-overlay-pinned-neigh"
            {
                assert_eq!(
                    plan.expected.br0_fdb[0].get(B_MAC).map(String::as_str),
                    Some("vxlan1"),
                    "{label}: the default schedule is the last word"
                );
            }
        });
    });
}

#[test]
fn every_l2_variant_agrees_with_the_kernel_on_seeded_random_walks() {
    let Some(_k) = kernel_or_skip("random walks") else {
        return;
    };
    let per_variant: usize = std::env::var("NETRACE_KERNEL_WALKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    leaves_no_namespace(|| {
        par_each(&l2_variants(), |(scenario, variant, model, bounds)| {
            let mut run = 0;
            for seed in 0..1000u64 {
                if run == per_variant {
                    break;
                }
                let schedule = kernel::seeded_walk(model, seed, bounds.max_depth);
                let plan = oracle::plan(model, &schedule).expect("a schedule of the model");
                // Unfaithful walks interleave inside one cascade: no kernel
                // run can force them (oracle.rs); they are not run.
                if !plan.faithful() {
                    continue;
                }
                run += 1;
                assert_kernel_agrees(
                    &format!("{scenario} · {variant} · walk seed {seed}"),
                    model,
                    &plan,
                );
            }
            assert_eq!(
                run, per_variant,
                "{scenario} {variant}: faithful walks found"
            );
        });
    });
}

fn netrace(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netrace"))
        .current_dir(manifest())
        .args(args)
        .output()
        .expect("netrace runs")
}

#[test]
fn netrace_kernel_shows_the_last_word_in_both_columns() {
    let Some(_k) = kernel_or_skip("netrace kernel") else {
        return;
    };
    leaves_no_namespace(|| {
        let o = netrace(&["kernel", SCENARIO, "--variant", "classic-17.03"]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{text}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // In the host1 br0 table: B's MAC, model vxlan1, kernel vxlan1.
        let table = text
            .split("\n\n")
            .find(|t| t.trim_start().starts_with("host1 br0 fdb"))
            .unwrap_or_else(|| panic!("no host1 br0 table in\n{text}"));
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.contains(B_MAC))
            .unwrap_or_else(|| panic!("no row for B in\n{table}"))
            .split_whitespace()
            .collect();
        assert_eq!(row, vec![B_MAC, "vxlan1", "vxlan1"], "{table}");
        assert!(text.contains("schedule: counterexample of l2.fdb_correct"));
        assert!(text.contains("result: the kernel AGREES with the model on every table"));
        // Progress goes to stderr, the report to stdout.
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("picking the schedule"), "{err}");
        assert!(err.contains("events on the kernel"), "{err}");
        assert!(!text.contains("picking the schedule"));

        // The same as JSON.
        let o = netrace(&[
            "kernel",
            SCENARIO,
            "--variant",
            "classic-17.03",
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        assert_eq!(v["agree"], true);
        assert_eq!(v["faithful"], true);
        assert_eq!(v["model"]["br0_fdb"][0][B_MAC], "vxlan1");
        assert_eq!(v["kernel"]["br0_fdb"][0][B_MAC], "vxlan1");
        assert!(v["versions"]["kernel"]
            .as_str()
            .is_some_and(|k| !k.is_empty()));

        // The token printed replays the same schedule on the kernel.
        let token = v["schedule"]["token"].as_str().unwrap().to_string();
        let o = netrace(&["kernel", SCENARIO, "--token", &token]);
        assert_eq!(o.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("schedule: token {token}")));
    });
}

#[test]
fn a_panic_mid_run_leaves_no_namespace() {
    let Some(_k) = kernel_or_skip("panic cleanup") else {
        return;
    };
    let (_, _, model, _) = l2_variants().swap_remove(0);
    let before = own_netns();
    let r = std::panic::catch_unwind(|| {
        let topology = kernel::netns::Topology::build(&model).expect("builds");
        assert!(own_netns().len() >= before.len() + topology.namespaces().len());
        panic!("on purpose, with the topology up");
    });
    assert!(r.is_err());
    assert_eq!(before, own_netns(), "the guard removed everything");
}

/// Starts `netrace kernel` on every variant, sends SIGINT once a
/// namespace of the child satisfying `when` exists (observed, not timed),
/// and checks the child died of the signal leaving nothing behind.
fn interrupt_when(when: impl Fn(&str) -> bool) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrace"))
        .current_dir(manifest())
        .args(["kernel", SCENARIO])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netrace starts");
    let out_pid = child.id();
    let prefix = format!("nr{out_pid}x");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if all_netns()
            .iter()
            .any(|n| n.strip_prefix(&prefix).is_some_and(&when))
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("netrace ended ({status}) before it could be interrupted");
        }
        assert!(Instant::now() < deadline, "the namespace never appeared");
        std::thread::yield_now();
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGINT),
        "dies of the signal: {err}"
    );
    assert!(err.contains("removed"), "{err}");
    let left = netns_of(out_pid);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn ctrl_c_leaves_no_namespace_during_the_preflight() {
    let Some(_k) = kernel_or_skip("SIGINT cleanup") else {
        return;
    };
    interrupt_when(|rest| rest.ends_with("-probe"));
}

#[test]
fn ctrl_c_leaves_no_namespace_in_the_middle_of_a_run() {
    let Some(_k) = kernel_or_skip("SIGINT cleanup") else {
        return;
    };
    // The first variant's last container namespace: the topology is up,
    // events are about to run or running.
    interrupt_when(|rest| rest == "1-c2");
}

#[test]
fn a_wrong_expectation_is_caught() {
    let Some(_k) = kernel_or_skip("wrong expectation") else {
        return;
    };
    leaves_no_namespace(|| {
        let s = scenario::load(&manifest().join(SCENARIO)).unwrap();
        let Some(l2) = s.system.downcast::<L2Scenario>() else {
            panic!("an l2 scenario")
        };
        let model = &l2
            .variants
            .iter()
            .find(|v| v.name == "classic-17.03")
            .unwrap()
            .model;
        let (schedule, _) = kernel::default_schedule(model, s.bounds);
        let plan = oracle::plan(model, &schedule).unwrap();
        let run = assert_kernel_agrees("untampered", model, &plan);

        // 1. The model is told B stays on its veth: the kernel says no.
        let mut wrong = plan.expected.clone();
        wrong.br0_fdb[0].insert(B_MAC.into(), "veth-B".into());
        let cmp = kernel::compare(model, &wrong, &plan.received, &run.observed, &run.frames);
        assert!(!cmp.agree());
        assert_eq!(
            cmp.disagreeing(),
            vec!["host1 br0 fdb (container MAC -> port)"]
        );
        let row = cmp.tables[0].rows.iter().find(|r| r.key == B_MAC).unwrap();
        assert_eq!(
            (row.model.as_deref(), row.kernel.as_deref()),
            (Some("veth-B"), Some("vxlan1"))
        );

        // 2. One proxied reply fewer predicted: replies and frames differ.
        let mut fewer = plan.expected.clone();
        *fewer
            .arp_replies
            .get_mut("A")
            .unwrap()
            .get_mut("10.0.0.3")
            .unwrap() -= 1;
        let cmp = kernel::compare(model, &fewer, &plan.received, &run.observed, &run.frames);
        assert!(cmp
            .disagreeing()
            .iter()
            .any(|t| t.starts_with("ARP replies")));

        // 3. The kernel really does something else: no time passes (every
        // wait is left out of the run), the prediction is not changed.
        assert!(
            plan.events
                .iter()
                .any(|e| matches!(e, oracle::OracleEvent::Wait { seconds }
                if *seconds >= model.spec().ageing_time_s)),
            "the schedule ages"
        );
        let first_wait = plan
            .events
            .iter()
            .position(|e| matches!(e, oracle::OracleEvent::Wait { .. }))
            .unwrap();
        let mut short = plan.clone();
        for i in (0..plan.events.len()).rev() {
            if matches!(plan.events[i], oracle::OracleEvent::Wait { .. }) {
                short.events.remove(i);
                short.received_after.remove(i);
            }
        }
        // The plan's frame counts after the waits assume time passed;
        // waiting for them would let the real clock age the entries
        // during the timeout. Ask only for what had arrived before.
        let before = short.received_after[first_wait - 1].clone();
        for counts in &mut short.received_after[first_wait..] {
            *counts = before.clone();
        }
        let run = kernel::run(model, &short, &RunOptions::default()).unwrap();
        let cmp = kernel::compare(
            model,
            &plan.expected,
            &plan.received,
            &run.observed,
            &run.frames,
        );
        assert!(!cmp.agree(), "a run in which no time passes ends elsewhere");

        // 4. A prediction the kernel never reaches mid-run: the wait
        // gives up, names the event, and the run still completes.
        let mut greedy = plan.clone();
        for counts in &mut greedy.received_after[3..] {
            counts[0] += 1;
        }
        let quick = RunOptions {
            wait_timeout: Duration::from_millis(300),
            settle_timeout: Duration::from_millis(20),
            quiet_period: Duration::from_millis(20),
        };
        let run = kernel::run(model, &greedy, &quick).unwrap();
        assert_eq!(run.first_divergence, Some(3));
        assert!(run.events[3]
            .missing
            .as_deref()
            .is_some_and(|m| m.contains("A received")));
        assert_eq!(run.events.len(), greedy.events.len());
    });
}

/// A's script of the oracle's own unit tests: resolving B twice around a
/// forget lets frames of two cascades interleave, which some walks do.
const INTERLEAVING: &str = r#"
name = "interleaving"
kind = "l2"
description = "A resolves B twice and C once; some schedules interleave two cascades."
[network]
name = "ov"
subnet = "10.0.0.0/24"
vni = 256
[[host]]
name = "host1"
vtep = "192.168.100.1"
[[host]]
name = "host2"
vtep = "192.168.100.2"
[[container]]
name = "A"
host = "host1"
ip = "10.0.0.2"
script = ["resolve B", "forget B", "resolve B", "wait 1", "send B", "resolve C", "send C"]
[[container]]
name = "B"
host = "host1"
ip = "10.0.0.3"
[[container]]
name = "C"
host = "host2"
ip = "10.0.0.4"
[[variant]]
name = "classic-17.03"
profile = "classic-17.03"
"#;

#[test]
fn an_unforceable_token_runs_labelled_as_the_oracle_forms_prediction() {
    let Some(_k) = kernel_or_skip("unforceable token") else {
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("interleaving.toml");
    std::fs::write(&file, INTERLEAVING).unwrap();
    let s = scenario::load(&file).unwrap();
    let Some(l2) = s.system.downcast::<L2Scenario>() else {
        panic!("an l2 scenario")
    };
    let model = &l2.variants[0].model;
    let (seed, schedule) = (0..1000u64)
        .map(|seed| (seed, kernel::seeded_walk(model, seed, s.bounds.max_depth)))
        .find(|(_, w)| !oracle::plan(model, w).unwrap().faithful())
        .expect("an unforceable walk");
    let token = netrace::explore::token::encode((&s).into(), "classic-17.03", &schedule);
    leaves_no_namespace(|| {
        let o = netrace(&["kernel", file.to_str().unwrap(), "--token", &token]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("NOT FAITHFUL") && text.contains("oracle form's prediction"),
            "walk {seed}:\n{text}"
        );
        // The kernel still agrees with what the oracle form predicts.
        assert_eq!(o.status.code(), Some(0), "walk {seed}:\n{text}");
    });
}

#[test]
fn without_root_netrace_kernel_says_it_cannot_run() {
    // An ipam scenario is refused as bad input (exit 2), root or not.
    let o = netrace(&["kernel", "scenarios/docker-17.05-duplicate-ip.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("takes an l2 or overlay-cluster scenario"));
    // As an unprivileged user (when this runs as root and setpriv
    // exists): exit 2 with a message saying why.
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        let o = netrace(&["kernel", SCENARIO, "--variant", "swarm-mode"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("not root"));
        return;
    }
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_netrace"))
        .args(["kernel", SCENARIO, "--variant", "swarm-mode"])
        .current_dir(manifest())
        .output();
    match o {
        Ok(o) if o.status.code() != Some(126) && o.status.code() != Some(127) => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{err}");
            assert!(err.contains("not root"), "{err}");
        }
        _ => eprintln!("(setpriv unavailable or cannot execute the binary as nobody: unprivileged run not checked)"),
    }
    let e = KernelError::Unavailable("not root".into());
    assert!(e.to_string().contains("cannot run here"));
}

#[test]
fn a_namespace_of_another_process_is_not_counted_as_left_behind() {
    let Some(_k) = kernel_or_skip("foreign namespace") else {
        return;
    };
    // Another build on the machine adds a namespace while a test runs.
    let foreign = format!("other{}", std::process::id());
    let ip = |args: &[&str]| {
        assert!(Command::new("ip").args(args).status().unwrap().success());
    };
    let r = std::panic::catch_unwind(|| {
        leaves_no_namespace(|| ip(&["netns", "add", &foreign]));
    });
    ip(&["netns", "del", &foreign]);
    assert!(
        r.is_ok(),
        "a namespace this process did not create is not its own"
    );
}

fn last_word_plan() -> (OverlaySystem, Plan) {
    let s = scenario::load(&manifest().join(SCENARIO)).unwrap();
    let Some(l2) = s.system.downcast::<L2Scenario>() else {
        panic!("an l2 scenario")
    };
    let model = l2
        .variants
        .iter()
        .find(|v| v.name == "classic-17.03")
        .unwrap()
        .model
        .clone();
    let (schedule, _) = kernel::default_schedule(&model, s.bounds);
    let plan = oracle::plan(&model, &schedule).unwrap();
    (model, plan)
}

#[test]
fn frames_that_differ_only_in_an_arp_address_disagree() {
    // No kernel needed: the comparison itself, on the model's own frames.
    let (model, plan) = last_word_plan();
    let frames_table = |c: &kernel::Comparison| {
        c.tables
            .iter()
            .find(|t| t.name.starts_with("frames received"))
            .unwrap()
            .agree()
    };
    assert!(frames_table(&kernel::compare(
        &model,
        &plan.expected,
        &plan.received,
        &plan.expected,
        &plan.received
    )));
    // Find an ARP frame received by someone; change one byte of its ARP
    // sender protocol address (bytes 28..32), then of its target hardware
    // address (bytes 32..38), each alone.
    let (e, i) = plan
        .received
        .iter()
        .enumerate()
        .find_map(|(e, fs)| {
            fs.iter()
                .position(|f| f.len() >= 42 && f[12..14] == [0x08, 0x06])
                .map(|i| (e, i))
        })
        .expect("an ARP frame is received");
    for byte in [31usize, 37] {
        let mut tampered = plan.received.clone();
        tampered[e][i][byte] ^= 0x01;
        let cmp = kernel::compare(
            &model,
            &plan.expected,
            &plan.received,
            &plan.expected,
            &tampered,
        );
        assert!(
            !frames_table(&cmp),
            "frames differing in byte {byte} (an ARP address) must disagree"
        );
        assert!(!cmp.agree());
    }
}

#[test]
fn a_step_that_diverges_disagrees_even_when_the_final_tables_agree() {
    let (model, plan) = last_word_plan();
    let mut events: Vec<kernel::EventLog> = plan
        .events
        .iter()
        .map(|ev| kernel::EventLog {
            what: kernel::run::describe_event(&model, ev),
            waited_ms: 0.0,
            reached: true,
            missing: None,
        })
        .collect();
    let agreeing = kernel::KernelRun {
        observed: plan.expected.clone(),
        frames: plan.received.clone(),
        events: events.clone(),
        first_divergence: None,
        clock_lag_ms: 0.0,
        namespaces: Vec::new(),
    };
    assert!(kernel::compare::compare_run(&model, &plan, &agreeing).agree());
    events[1].reached = false;
    events[1].missing = Some("A received 0 of 1 frame(s)".into());
    let diverging = kernel::KernelRun {
        events,
        first_divergence: Some(1),
        ..agreeing
    };
    // The verdict `netrace kernel` exits on (1 when it disagrees).
    let cmp = kernel::compare::compare_run(&model, &plan, &diverging);
    assert!(!cmp.agree(), "a divergence mid-run is a disagreement");
    assert!(cmp.disagreeing().iter().any(|t| t.starts_with("events")));
}

#[test]
fn an_entry_whose_flags_differ_disagrees() {
    let (model, plan) = last_word_plan();
    let flags = &plan.expected.flags;
    assert!(
        flags.iter().flatten().any(|(_, f)| f == "self permanent"),
        "the driver programs permanent vxlan1 entries: {flags:?}"
    );
    // The same entries, one of them learned (dynamic) on the kernel side.
    let mut kernel_side = plan.expected.clone();
    let (h, key) = kernel_side
        .flags
        .iter()
        .enumerate()
        .find_map(|(h, m)| {
            m.iter()
                .find(|(_, f)| *f == "self permanent")
                .map(|(k, _)| (h, k.clone()))
        })
        .unwrap();
    kernel_side.flags[h].insert(key, "self dynamic".into());
    let cmp = kernel::compare(
        &model,
        &plan.expected,
        &plan.received,
        &kernel_side,
        &plan.received,
    );
    assert!(!cmp.agree(), "permanent vs dynamic must disagree");
    assert!(cmp.disagreeing().iter().any(|t| t.contains("entry flags")));
}

/// A resolves B, and a wait of `wait` seconds follows, with br0 and vxlan1
/// ageing after `ageing` seconds.
fn ageing_scenario(ageing: u32, wait: u32) -> OverlaySystem {
    ageing_file(ageing, wait).1
}

/// [`ageing_scenario`] and the file it was loaded from.
fn ageing_file(ageing: u32, wait: u32) -> (std::path::PathBuf, OverlaySystem) {
    let text = format!(
        "name = \"ageing\"\nkind = \"l2\"\n[network]\nsubnet = \"10.0.0.0/24\"\n\
         ageing_time_s = {ageing}\n\
         [[host]]\nname = \"host1\"\nvtep = \"192.168.100.1\"\n\
         [[container]]\nname = \"A\"\nhost = \"host1\"\nip = \"10.0.0.2\"\n\
         script = [\"resolve B\", \"wait {wait}\"]\n\
         [[container]]\nname = \"B\"\nhost = \"host1\"\nip = \"10.0.0.3\"\n\
         [[variant]]\nname = \"swarm-mode\"\nprofile = \"swarm-mode\"\n"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("ageing-{ageing}-{wait}.toml"));
    std::fs::write(&file, text).unwrap();
    let s = scenario::load(&file).unwrap();
    let l2 = s.system.downcast::<L2Scenario>().expect("an l2 scenario");
    (file, l2.variants[0].model.clone())
}

#[test]
fn the_real_bridge_and_vxlan_get_the_scenarios_ageing_time_in_their_units() {
    let Some(_k) = kernel_or_skip("ageing units") else {
        return;
    };
    leaves_no_namespace(|| {
        let model = ageing_scenario(7, 2);
        let topology = kernel::netns::Topology::build(&model).unwrap();
        let ns = &topology.overlay_ns[0];
        let info = |dev: &str| {
            let out = Command::new("ip")
                .args(["-n", ns, "-d", "-j", "link", "show", dev])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v[0]["linkinfo"]["info_data"].clone()
        };
        // IFLA_BR_AGEING_TIME is in centiseconds, IFLA_VXLAN_AGEING in seconds.
        assert_eq!(info("br0")["ageing_time"], 700, "{}", info("br0"));
        assert_eq!(info("vxlan1")["ageing"], 7, "{}", info("vxlan1"));
    });
}

#[test]
fn the_real_bridge_ages_its_entries_on_the_real_clock() {
    let Some(_k) = kernel_or_skip("real ageing") else {
        return;
    };
    leaves_no_namespace(|| {
        for (ageing, wait, aged) in [(2, 2, true), (4, 2, false)] {
            let model = ageing_scenario(ageing, wait);
            let (schedule, _) = kernel::default_schedule(&model, Bounds::default());
            let plan = oracle::plan(&model, &schedule).unwrap();
            let label = format!("ageing_time_s {ageing}, wait {wait}");
            // The model's prediction: learned before the wait, and gone
            // after it exactly when the wait reaches the ageing time.
            assert_eq!(plan.expected.br0_fdb[0].is_empty(), aged, "{label}");
            let run = assert_kernel_agrees(&label, &model, &plan);
            let waited = run
                .events
                .iter()
                .find(|e| e.what.contains("real clock"))
                .expect("the wait ran");
            // A wait ends when the real clock reaches the model's: its
            // seconds less the milliseconds the events before it took.
            assert!(
                waited.waited_ms >= f64::from(wait) * 1000.0 - 500.0,
                "{label}: the wait took {} ms",
                waited.waited_ms
            );
            assert!(run.clock_lag_ms < 500.0, "{label}: {}", run.clock_lag_ms);
        }
    });
}

#[test]
fn a_kernel_run_refuses_waits_the_real_clock_cannot_honour() {
    let Some(_k) = kernel_or_skip("timing refusal") else {
        return;
    };
    for (ageing, wait, says) in [(1, 1, "too short"), (300, 300, "waits 300 s in all")] {
        let model = ageing_scenario(ageing, wait);
        let (schedule, _) = kernel::default_schedule(&model, Bounds::default());
        let plan = oracle::plan(&model, &schedule).unwrap();
        let err = kernel::run(&model, &plan, &RunOptions::default()).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
        assert!(err.to_string().contains("ageing_time_s"), "{err}");
        // The command line refuses it as bad input, before building anything.
        let (file, _) = ageing_file(ageing, wait);
        let o = leaves_no_namespace(|| netrace(&["kernel", file.to_str().unwrap()]));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("real clock"),
            "{stderr}"
        );
    }
}
