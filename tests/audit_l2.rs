//! `netrace audit --netns` and `--from-dump`: overlay namespaces built in
//! known states with the kernel oracle's machinery (the seed's broken
//! state, each fix's state, a clean swarm-mode state) are audited live
//! and get the right verdict; the same states saved as dumps
//! (tests/data/audit-l2/STATE/, committed, so these run without root)
//! get the same verdicts; bad input is exit 2 with the file and line.
//!
//! The live tests need root and network namespaces. Without them each
//! prints `KERNEL ORACLE SKIPPED: <why>` on stderr and passes, unless
//! `NETRACE_REQUIRE_KERNEL=1` is set, which makes a skip a failure (as
//! tests/kernel.rs). Every namespace is made by
//! `netrace::kernel::netns::Topology` with a unique name and removed when
//! it is dropped, on panic too; each live test checks that it left none.
//!
//! `NETRACE_WRITE_AUDIT_DUMPS=1` rewrites the committed dumps from the
//! live states (root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use netrace::kernel::capture::PacketSocket;
use netrace::kernel::{self, netns};
use netrace::overlay::system::OverlaySystem;
use netrace::scenario;
use netrace::scenario::l2::L2Scenario;
use netrace::wire::EthernetAddress;

const SCENARIO: &str = "scenarios/classic-overlay-last-word.toml";
const DUMPS: &str = "tests/data/audit-l2";

#[path = "common/kernel.rs"]
mod kernel_common;

use kernel_common::own_netns;

static KERNEL: Mutex<()> = Mutex::new(());

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netrace"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("netrace runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("audit-l2-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn kernel_or_skip(test: &str) -> Option<MutexGuard<'static, ()>> {
    kernel_common::kernel_or_skip(test, &KERNEL)
}

/// The states the tests build, each from the seed's scenario (A and B on
/// host1, C on host2) and its variant's port flags, then the driver's
/// netlink calls that leave vxlan1 as that state has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The seed's: vxlan1 holds permanent neighbour and FDB entries for
    /// the local A and B (the classic miss path programmed them).
    Seed,
    /// `learning-off`: as the seed's, the vxlan1 port does not learn.
    LearningOff,
    /// `neigh-suppress`: as the seed's, neigh_suppress on the vxlan1 port.
    NeighSuppress,
    /// `vxlan-fdb-zero`: the local peers' FDB entries are bridge-local.
    FdbZero,
    /// The seed's workaround done: the local neighbour entries deleted,
    /// the FDB entries left.
    Workaround,
    /// Nothing programmed for local containers: swarm mode, or the
    /// locality check.
    Clean,
}

impl State {
    fn dir(self) -> &'static str {
        match self {
            State::Seed => "seed",
            State::LearningOff => "learning-off",
            State::NeighSuppress => "neigh-suppress",
            State::FdbZero => "vxlan-fdb-zero",
            State::Workaround => "workaround",
            State::Clean => "clean",
        }
    }

    fn variant(self) -> &'static str {
        match self {
            State::LearningOff => "learning-off",
            State::NeighSuppress => "neigh-suppress",
            State::Clean => "swarm-mode",
            _ => "classic-17.03",
        }
    }
}

const A: (&str, &str) = ("10.0.0.2", "02:42:0a:00:00:02");
const B: (&str, &str) = ("10.0.0.3", "02:42:0a:00:00:03");
const VTEP1: &str = "192.168.100.1";

/// Builds `state`: the namespaces are removed when the topology drops.
fn build(state: State) -> netns::Topology {
    let s = scenario::load(&manifest().join(SCENARIO)).expect("the seed's scenario loads");
    let l2 = s.system.downcast::<L2Scenario>().expect("l2");
    let v = l2
        .variants
        .iter()
        .find(|v| v.name == state.variant())
        .expect("variant");
    // The kernel's default ageing (the seed's scenario has 2 s, for the
    // oracle's timers): what br0 learns stays while the test reads it.
    let mut spec = v.model.spec().clone();
    spec.ageing_time_s = 300;
    let model = OverlaySystem::new(&spec, v.model.profile()).expect("the model builds");
    let t = netns::Topology::build(&model).expect("the topology builds");
    let on = &t.overlay_ns[0];
    let local = |ip: &str, mac: &str, dst: &str, neigh: bool| {
        if neigh {
            netns::neigh_replace(on, ip, mac).expect("neigh");
        }
        netns::fdb_replace(on, mac, dst).expect("fdb");
    };
    match state {
        State::Seed | State::LearningOff | State::NeighSuppress => {
            local(A.0, A.1, VTEP1, true);
            local(B.0, B.1, VTEP1, true);
        }
        State::FdbZero => {
            local(A.0, A.1, "0.0.0.0", true);
            local(B.0, B.1, "0.0.0.0", true);
        }
        State::Workaround => {
            local(A.0, A.1, VTEP1, false);
            local(B.0, B.1, VTEP1, false);
        }
        State::Clean => {}
    }
    // Each container sends one broadcast frame (not ARP: vxlan1 drops a
    // broadcast it has no default entry for, and raises no miss), so that
    // br0 has learned its MAC on its port, as on a host whose containers
    // talk: a dump, which has no peer namespaces, finds them there.
    for (e, ns) in t.container_ns.iter().enumerate().take(2) {
        let mac: EthernetAddress = [A.1, B.1][e].parse().unwrap();
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(mac.as_bytes());
        frame.extend_from_slice(&[0x88, 0xb5]);
        frame.resize(60, 0);
        let sock = PacketSocket::open(ns, "eth0").expect("a packet socket");
        sock.send(&frame).expect("sent");
        let mac = mac.to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !netns::run("bridge", &["-n", on, "fdb", "show", "br", "br0"])
            .unwrap()
            .contains(&mac)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "br0 never learned {mac}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    // A's namespace says its address (B's is left to the tables).
    netns::run(
        "ip",
        &[
            "-n",
            &t.container_ns[0],
            "addr",
            "add",
            "10.0.0.2/24",
            "dev",
            "eth0",
        ],
    )
    .expect("addr");
    t
}

/// Saves the four outputs of `ns` into `dir`, with the documented
/// commands (docs/audit.md).
fn dump(ns: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (file, cmd) in [
        ("link.json", "ip -j -d link show"),
        ("addr.json", "ip -j addr show"),
        ("neigh.json", "ip -j neigh show"),
        ("fdb.json", "bridge -j fdb show"),
    ] {
        let mut args = vec!["netns", "exec", ns];
        args.extend(cmd.split_whitespace());
        let o = Command::new("ip").args(&args).output().expect("ip runs");
        assert!(o.status.success(), "{cmd}: {}", text(&o));
        std::fs::write(dir.join(file), &o.stdout).unwrap();
    }
}

/// What an audit of `state` must say: exit code, and lines it must print.
fn expect(state: State, o: &Output, how: &str) {
    let t = text(o);
    let code = o.status.code();
    // A matrix row's property cells (`VIOLATED 8` read as `VIOLATED`).
    let row = |v: &str| -> Vec<String> {
        let words: Vec<&str> = t
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{v} ")))
            .unwrap_or_else(|| panic!("{how}: no matrix row {v}:\n{t}"))
            .split_whitespace()
            .skip(1)
            .collect();
        let mut cells = Vec::new();
        for (i, w) in words.iter().enumerate() {
            if i > 0 && words[i - 1] == "VIOLATED" && w.parse::<u64>().is_ok() {
                continue;
            }
            cells.push(w.to_string());
        }
        cells
    };
    match state {
        State::Seed | State::NeighSuppress => {
            assert_eq!(code, Some(1), "{how}: {t}");
            assert!(t.contains("HAZARD as read"), "{how}: {t}");
            assert!(
                t.contains(
                    "vxlan1 answers ARP for 2 local container(s): A (10.0.0.2), B (10.0.0.3)"
                ),
                "{how}: {t}"
            );
            assert!(t.contains("ip neigh del 10.0.0.2 dev vxlan1"), "{how}: {t}");
            assert!(t.contains("ip neigh del 10.0.0.3 dev vxlan1"), "{how}: {t}");
            let live = row("live");
            assert_eq!(live[..2], ["VIOLATED", "VIOLATED"], "{how}: {t}");
            // The last word: B's MAC on vxlan1.
            assert!(
                t.contains("B's MAC 02:42:0a:00:00:03 on vxlan1"),
                "{how}: {t}"
            );
            // learning-off closes the last word, not the double reply.
            let lo = t
                .lines()
                .find(|l| l.trim_start().starts_with("learning-off") && l.contains("as read"))
                .unwrap_or_else(|| panic!("{how}: no learning-off line: {t}"));
            assert!(
                lo.contains("remaining: l2.single_arp_reply (8 steps); closes"),
                "{how}: {lo}"
            );
            // After the workaround, the locality check holds everything.
            let lc = t
                .lines()
                .find(|l| {
                    l.trim_start().starts_with("locality-check")
                        && l.contains("after the workaround")
                })
                .unwrap_or_else(|| panic!("{how}: no locality-check line: {t}"));
            assert!(lc.contains("every property holds"), "{how}: {lc}");
        }
        State::LearningOff => {
            assert_eq!(code, Some(1), "{how}: {t}");
            assert!(t.contains("fix in place: learning-off"), "{how}: {t}");
            let live = row("live");
            assert_eq!(live[..2], ["VIOLATED", "holds"], "{how}: {t}");
        }
        State::FdbZero => {
            assert_eq!(code, Some(0), "{how}: {t}");
            assert!(
                t.contains("vxlan1 answers ARP for no local container"),
                "{how}: {t}"
            );
            assert!(t.contains("no hazard as read"), "{how}: {t}");
        }
        State::Workaround => {
            // The classic driver programs them again on the next miss.
            assert_eq!(code, Some(1), "{how}: {t}");
            assert!(
                t.contains("holds no entry for a local container yet"),
                "{how}: {t}"
            );
            let d = t
                .lines()
                .find(|l| l.trim_start().starts_with("locality-check") && l.contains("as read"))
                .unwrap_or_else(|| panic!("{how}: {t}"));
            assert!(d.contains("every property holds"), "{how}: {d}");
        }
        State::Clean => {
            assert_eq!(code, Some(0), "{how}: {t}");
            assert!(
                t.contains("no hazard as read (variant live, driver swarm-mode)"),
                "{how}: {t}"
            );
            assert!(
                t.contains("checked: A resolves and talks to B"),
                "{how}: {t}"
            );
        }
    }
}

fn audit_args(state: State) -> Vec<&'static str> {
    match state {
        State::Clean => vec!["--profile", "swarm-mode"],
        _ => vec![],
    }
}

const STATES: [State; 6] = [
    State::Seed,
    State::LearningOff,
    State::NeighSuppress,
    State::FdbZero,
    State::Workaround,
    State::Clean,
];

#[test]
fn live_namespaces_in_known_states_get_their_verdicts_and_so_do_their_dumps() {
    let Some(_g) = kernel_or_skip("live_namespaces_in_known_states_get_their_verdicts") else {
        return;
    };
    let before = own_netns();
    let r = std::panic::catch_unwind(|| {
        for state in STATES {
            let t = build(state);
            let ns = t.overlay_ns[0].clone();
            let mut args = vec!["audit", "--netns", &ns];
            args.extend(audit_args(state));
            let o = run(&args);
            expect(state, &o, &format!("live {state:?}"));
            if state == State::Seed {
                // A's address came from its own namespace, B's from the tables.
                let t = text(&o);
                assert!(
                    t.contains("address from eth0's address in namespace"),
                    "{t}"
                );
                assert!(
                    t.contains("vxlan1's neighbour entry for 02:42:0a:00:00:03"),
                    "{t}"
                );
            }
            // The same state from a dump taken with the documented commands.
            let dir = scratch(&format!("dump-{}", state.dir()));
            dump(&ns, &dir);
            let mut args = vec!["audit", "--from-dump", dir.to_str().unwrap()];
            args.extend(audit_args(state));
            let d = run(&args);
            expect(state, &d, &format!("dump {state:?}"));
            if std::env::var("NETRACE_WRITE_AUDIT_DUMPS").as_deref() == Ok("1") {
                dump(&ns, &manifest().join(DUMPS).join(state.dir()));
            }
            drop(t);
        }
    });
    assert_eq!(before, own_netns(), "network namespaces left behind");
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn committed_dumps_get_their_verdicts() {
    for state in STATES {
        let dir = manifest().join(DUMPS).join(state.dir());
        let mut args = vec!["audit", "--from-dump", dir.to_str().unwrap()];
        args.extend(audit_args(state));
        let o = run(&args);
        expect(state, &o, &format!("committed dump {state:?}"));
    }
}

#[test]
fn the_clean_state_under_the_classic_driver_is_a_latent_hazard_and_the_locality_check_closes_it() {
    let dir = manifest().join(DUMPS).join("clean");
    let o = run(&["audit", "--from-dump", dir.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("classic overlay assumed"), "{t}");
    assert!(
        t.contains("holds no entry for a local container yet"),
        "{t}"
    );
    let o = run(&[
        "audit",
        "--from-dump",
        dir.to_str().unwrap(),
        "--fix",
        "locality-check",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn the_emitted_scenario_says_where_each_line_came_from_and_check_accepts_it() {
    let dir = manifest().join(DUMPS).join("seed");
    let file = scratch("seed.toml");
    let o = run(&[
        "audit",
        "--from-dump",
        dir.to_str().unwrap(),
        "--emit-scenario",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let toml = std::fs::read_to_string(&file).unwrap();
    for line in toml
        .lines()
        .filter(|l| l.contains(" = ") && !l.starts_with('#'))
    {
        let key = line.split(" = ").next().unwrap().trim();
        if [
            "name",
            "kind",
            "description",
            "max_states",
            "max_depth",
            "profile",
            "fixes",
            "note",
            "host",
            "script",
        ]
        .contains(&key)
        {
            continue;
        }
        assert!(line.contains('#'), "no provenance comment: {line}");
    }
    assert!(
        toml.contains("neigh.json:1:2: 10.0.0.2 lladdr 02:42:0a:00:00:02 dev vxlan1 PERMANENT"),
        "{toml}"
    );
    assert!(toml.contains("(this host's own VTEP)"), "{toml}");
    let after = file.with_file_name("seed.after-workaround.toml");
    assert!(std::fs::read_to_string(&after)
        .unwrap()
        .contains("# deleted by the workaround"));
    // check accepts it; the printed tokens replay.
    let c = run(&["check", file.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    let token = text(&o)
        .lines()
        .find_map(|l| l.trim().strip_prefix("netrace replay ").map(str::to_string))
        .expect("a replay line");
    let tok = token.split_whitespace().last().unwrap().to_string();
    // A token of a violation replays to it (replay exits 1).
    let r = run(&["replay", file.to_str().unwrap(), &tok]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    assert!(text(&r).contains("violated"), "{}", text(&r));
}

#[test]
fn json_rows_one_per_hazard() {
    let dir = manifest().join(DUMPS).join("seed");
    let o = run(&[
        "audit",
        "--from-dump",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let live: Vec<&serde_json::Value> = rows.iter().filter(|r| r["live"] == true).collect();
    assert!(
        live.iter()
            .any(|r| r["property"] == "l2.fdb_correct" && r["verdict"] == "violated"),
        "{rows:?}"
    );
    assert_eq!(rows[0]["answers_for"], serde_json::json!(["A", "B"]));
    assert_eq!(
        rows[0]["remedy"],
        serde_json::json!([
            "ip neigh del 10.0.0.2 dev vxlan1",
            "ip neigh del 10.0.0.3 dev vxlan1"
        ])
    );
    let clean = manifest().join(DUMPS).join("clean");
    let o = run(&[
        "audit",
        "--from-dump",
        clean.to_str().unwrap(),
        "--profile",
        "swarm-mode",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty(), "a clean host prints no row");
}

#[test]
fn bad_dumps_are_exit_2_with_file_and_line() {
    let dir = scratch("bad-dump");
    let seed = manifest().join(DUMPS).join("seed");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["link.json", "addr.json", "neigh.json", "fdb.json"] {
        std::fs::copy(seed.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("neigh.json"), "[{\"dst\":\"10.0.0.2\",\n\"dev\":").unwrap();
    let o = run(&["audit", "--from-dump", dir.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("neigh.json:2:"), "{t}");
    assert!(t.contains("hint:"), "{t}");
    std::fs::write(dir.join("neigh.json"), "[{\"dst\":\"10.0.0.2\",\"dev\":7}]").unwrap();
    let o = run(&["audit", "--from-dump", dir.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("neigh.json:1:") && t.contains("\"dev\""), "{t}");
    std::fs::remove_file(dir.join("fdb.json")).unwrap();
    let o = run(&["audit", "--from-dump", dir.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("fdb.json") && t.contains("bridge -j fdb show"),
        "{t}"
    );
    // A namespace that is no overlay's: no bridge.
    std::fs::write(dir.join("fdb.json"), "[]").unwrap();
    std::fs::write(dir.join("neigh.json"), "[]").unwrap();
    std::fs::write(dir.join("link.json"), "[{\"ifindex\":1,\"ifname\":\"lo\"}]").unwrap();
    let o = run(&["audit", "--from-dump", dir.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("no bridge"), "{t}");
}

#[test]
fn what_the_model_cannot_represent_is_reported_and_makes_a_clean_verdict_unknown() {
    // The vxlan-fdb-zero state (clean) with proxy off on vxlan1.
    let src = manifest().join(DUMPS).join("vxlan-fdb-zero");
    let dir = scratch("proxy-off");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["addr.json", "neigh.json", "fdb.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let link = std::fs::read_to_string(src.join("link.json")).unwrap();
    assert!(link.contains("\"proxy\":true"));
    std::fs::write(
        dir.join("link.json"),
        link.replace("\"proxy\":true", "\"proxy\":false"),
    )
    .unwrap();
    let o = run(&["audit", "--from-dump", dir.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(
        t.contains("not represented (could change a verdict): vxlan1 has proxy off"),
        "{t}"
    );
}

#[test]
fn pre_programmed_tables_load_and_bad_entries_name_their_line() {
    let base = |host_extra: &str| {
        format!(
            "name = \"t\"\nkind = \"l2\"\n[network]\nsubnet = \"10.0.0.0/24\"\n[[host]]\nname = \"h\"\nvtep = \"192.168.100.1\"\n{host_extra}\n[[container]]\nname = \"A\"\nhost = \"h\"\nip = \"10.0.0.2\"\n[[variant]]\nname = \"v\"\nprofile = \"swarm-mode\"\n"
        )
    };
    let ok = base("vxlan_neigh = [{ ip = \"10.0.0.3\", mac = \"02:42:0a:00:00:03\" }]\nvxlan_fdb = [{ mac = \"02:42:0a:00:00:03\", dst = \"0.0.0.0\" }]");
    let s = scenario::load_str("t.toml", &ok, Path::new("t.toml")).expect("loads");
    let l2 = s.system.downcast::<L2Scenario>().unwrap();
    let init = netrace::sim::Model::init_state(&l2.variants[0].model);
    assert_eq!(init.hosts[0].vx.neigh.len(), 1);
    assert_eq!(
        init.hosts[0].vx.fdb.values().next().unwrap().remote,
        std::net::Ipv4Addr::UNSPECIFIED
    );
    for (extra, line, says) in [
        ("vxlan_neigh = [{ ip = \"10.0.1.3\", mac = \"02:42:0a:00:00:03\" }]", 8, "not a host address of the overlay subnet"),
        ("vxlan_neigh = [{ ip = \"10.0.0.3\", mac = \"02:42:0a:00:03\" }]", 8, "is not a MAC address"),
        ("vxlan_neigh = [{ ip = \"10.0.0.3\", mac = \"01:00:5e:00:00:03\" }]", 8, "not a unicast MAC"),
        ("vxlan_fdb = [{ mac = \"02:42:0a:00:00:03\", dst = \"10.0.0.9\" }]", 8, "inside the overlay subnet"),
        ("vxlan_fdb = [\n{ mac = \"02:42:0a:00:00:03\", dst = \"192.168.100.2\" },\n{ mac = \"02:42:0a:00:00:03\", dst = \"192.168.100.3\" }]", 10, "lists 02:42:0a:00:00:03 twice"),
        ("vxlan_fdb = [{ mac = \"02:42:0a:00:00:03\", via = \"x\" }]", 8, "unknown field"),
        ("join_peers = \"no\"", 8, "invalid type"),
    ] {
        let e = scenario::load_str("t.toml", &base(extra), Path::new("t.toml")).unwrap_err();
        assert_eq!(e.line, line, "{extra}: {e}");
        assert!(e.message.contains(says), "{extra}: {e}");
    }
}

/// A scenario with pre-programmed tables (the seed's local entries, no
/// join entries) on the real kernel: the oracle programs the same
/// starting tables and agrees with the model on the last word.
#[test]
fn the_kernel_oracle_builds_pre_programmed_tables_and_agrees() {
    let Some(_g) = kernel_or_skip("the_kernel_oracle_builds_pre_programmed_tables") else {
        return;
    };
    let text = r#"
name = "preset-last-word"
kind = "l2"
[network]
subnet = "10.0.0.0/24"
ageing_time_s = 2
[[host]]
name = "host1"
vtep = "192.168.100.1"
join_peers = false
vxlan_neigh = [{ ip = "10.0.0.3", mac = "02:42:0a:00:00:03" }, { ip = "10.0.0.4", mac = "02:42:0a:00:00:04" }]
vxlan_fdb = [{ mac = "02:42:0a:00:00:03", dst = "192.168.100.1" }, { mac = "02:42:0a:00:00:04", dst = "192.168.100.2" }]
[[host]]
name = "host2"
vtep = "192.168.100.2"
[[container]]
name = "A"
host = "host1"
ip = "10.0.0.2"
script = ["resolve B", "wait 1", "send B"]
[[container]]
name = "B"
host = "host1"
ip = "10.0.0.3"
[[container]]
name = "C"
host = "host2"
ip = "10.0.0.4"
[[variant]]
name = "swarm"
profile = "swarm-mode"
"#;
    let s = scenario::load_str("preset.toml", text, Path::new("preset.toml")).expect("loads");
    let l2 = s.system.downcast::<L2Scenario>().unwrap();
    let model = &l2.variants[0].model;
    let before = own_netns();
    let (schedule, source) = kernel::default_schedule(model, s.bounds);
    let plan = netrace::overlay::oracle::plan(model, &schedule).expect("a schedule");
    assert!(plan.faithful(), "{source}");
    let run = kernel::run(model, &plan, &kernel::RunOptions::default()).expect("the kernel runs");
    let cmp = kernel::compare(
        model,
        &plan.expected,
        &plan.received,
        &run.observed,
        &run.frames,
    );
    assert!(cmp.agree(), "disagree: {:?} ({source})", cmp.disagreeing());
    // The last word: B's MAC on vxlan1 on both sides.
    assert_eq!(
        run.observed.br0_fdb[0]
            .get("02:42:0a:00:00:03")
            .map(String::as_str),
        Some("vxlan1"),
        "{source}: {:?}",
        run.observed.br0_fdb
    );
    assert_eq!(before, own_netns(), "network namespaces left behind");
}
