//! The overlay L2 model: the explorer finds the "last word" from the
//! scenario alone, the fixes hold, the counterexample is the incident's
//! story, frames come out as a pcap file, and the final tables as JSON.

use std::path::Path;
use std::process::{Command, Output};

use netrace::explore::{self, Options};
use netrace::overlay::system::{ContainerSpec, HostSpec, L2Spec, OverlaySystem, ScriptStep};
use netrace::overlay::{Fix, OverlayProfile};
use netrace::sim::Model;

mod common;
use common::cli::scratch;

const SCRATCH: &str = "l2-tests";

fn netrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netrace"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("netrace runs")
}

const SCENARIO: &str = "scenarios/classic-overlay-last-word.toml";

/// `netrace replay --variant` replays a schedule by actor and stops where
/// the variant blocks it: exit 0 when nothing was violated up to there.
const EXPECTED_LOCALITY_REPLAY_CODE: i32 = 0;

/// A, B on host1, C on host2; A resolves B twice (forgetting in between),
/// then sends to B once the replies settled.
fn spec() -> L2Spec {
    let c = |name: &str, host, last, script| ContainerSpec {
        name: name.into(),
        host,
        ip: format!("10.0.0.{last}").parse().unwrap(),
        arp_responder: true,
        script,
        start: Default::default(),
    };
    L2Spec {
        network: "ov".into(),
        subnet: "10.0.0.0/24".parse().unwrap(),
        vni: 256,
        hosts: vec![
            HostSpec {
                name: "host1".into(),
                vtep: "192.168.100.1".parse().unwrap(),
                preset: Default::default(),
            },
            HostSpec {
                name: "host2".into(),
                vtep: "192.168.100.2".parse().unwrap(),
                preset: Default::default(),
            },
        ],
        containers: vec![
            c(
                "A",
                0,
                2,
                vec![
                    ScriptStep::Resolve(1),
                    ScriptStep::Forget(1),
                    ScriptStep::Resolve(1),
                    ScriptStep::Wait(1),
                    ScriptStep::Send(1),
                ],
            ),
            c("B", 0, 3, vec![]),
            c("C", 1, 4, vec![]),
        ],
        max_hops: 16,
        ageing_time_s: netrace::l2::bridge::AGEING_TIME_S,
    }
}

fn verdicts(profile: &OverlayProfile) -> Vec<bool> {
    let m = OverlaySystem::new(&spec(), profile).unwrap();
    let r = explore::bfs(&m, &Options::default(), &mut |_| {});
    assert!(r.complete, "the L2 search covers its whole space");
    r.violations.iter().map(Option::is_some).collect()
}

fn profile(name: &str, fixes: &[Fix]) -> OverlayProfile {
    let mut p = OverlayProfile::builtin(name).unwrap();
    p.fixes = fixes.to_vec();
    p
}

#[test]
fn the_explorer_finds_the_last_word_and_the_fixes_remove_it() {
    // [single_arp_reply, fdb_correct, delivery, no_storm, converges]
    assert_eq!(
        verdicts(&profile("classic-17.03", &[])),
        vec![true, true, true, false, false]
    );
    assert_eq!(verdicts(&profile("swarm-mode", &[])), vec![false; 5]);
    assert_eq!(
        verdicts(&profile("classic-17.03", &[Fix::LocalityCheck])),
        vec![false; 5]
    );
    assert_eq!(
        verdicts(&profile("classic-17.03", &[Fix::VxlanFdbZero])),
        vec![false; 5]
    );
    // learning off: still two replies, but the last one cannot move B.
    assert_eq!(
        verdicts(&profile("classic-17.03", &[Fix::LearningOff])),
        vec![true, false, false, false, false]
    );
    // neigh_suppress alone: br0's own neighbour table is empty.
    assert_eq!(
        verdicts(&profile("classic-17.03", &[Fix::NeighSuppress])),
        verdicts(&profile("classic-17.03", &[]))
    );
}

#[test]
fn the_price_of_learning_off_is_flooding() {
    let scenario =
        netrace::scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(SCENARIO)).unwrap();
    let Some(l2) = scenario
        .system
        .downcast::<netrace::scenario::l2::L2Scenario>()
    else {
        panic!("an l2 scenario")
    };
    let floods = |name: &str| {
        l2.variants
            .iter()
            .find(|v| v.name == name)
            .unwrap()
            .model
            .canonical_count("unicast_floods", 1000)
    };
    assert!(floods("learning-off") > floods("locality-check"));
}

fn json_rows(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn token_of(variant: &str, property: &str) -> String {
    let o = netrace(&["check", SCENARIO, "--variant", variant, "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = json_rows(&o);
    let row = rows.iter().find(|r| r["property"] == property).unwrap();
    row["counterexample"]["token"]
        .as_str()
        .expect("a counterexample")
        .to_string()
}

#[test]
fn the_fdb_counterexample_tells_the_incident() {
    let token = token_of("classic-17.03", "l2.fdb_correct");
    let o = netrace(&["replay", SCENARIO, &token]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8(o.stdout).unwrap();
    // The proxied reply arrives on vxlan1 and moves B's MAC there, after
    // B's own reply: the last word.
    let proxy = text
        .find("vxlan1 proxy (arp_reduce) answers")
        .expect("a proxied reply");
    let real = text[proxy..]
        .find("fdb: 02:42:0a:00:00:03 learned on veth-B")
        .or_else(|| text[proxy..].find("fdb: 02:42:0a:00:00:03 moved vxlan1 -> veth-B"))
        .map(|i| i + proxy);
    let last_word = text
        .rfind("fdb: 02:42:0a:00:00:03 moved veth-B -> vxlan1")
        .expect("B's MAC moves to vxlan1");
    let real = real.expect("B's own reply reaches br0 on veth-B after the proxied one is made");
    assert!(real < last_word, "the proxied reply must be the last word");
    // A's next frame to B does not reach B: looped back and dropped.
    let after = &text[last_word..];
    assert!(after.contains("local bypass"), "{after}");
    assert!(
        after.contains("is behind vxlan1, the ingress port: dropped"),
        "{after}"
    );
    assert!(after.contains("never reached it"), "{after}");
}

#[test]
fn the_single_reply_counterexample_shows_two_replies() {
    let token = token_of("classic-17.03", "l2.single_arp_reply");
    let o = netrace(&["replay", SCENARIO, &token]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("ARP reply #1 for its request who-has 10.0.0.3"));
    assert!(text.contains("ARP reply #2 for its request who-has 10.0.0.3"));
    assert!(text.contains("✗ l2.single_arp_reply violated"));
}

/// Writes `text` as scratch file `name`, runs `netrace check` on it,
/// asserts it is refused as bad input (exit 2) and returns its stderr.
fn refused(name: &str, text: &str) -> String {
    let file = scratch(SCRATCH, name);
    std::fs::write(&file, text).unwrap();
    let o = netrace(&["check", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{name}: {err}");
    err
}

#[test]
fn replay_writes_a_pcap_that_reads_back_frame_for_frame() {
    let token = token_of("classic-17.03", "l2.fdb_correct");
    let pcap = scratch(SCRATCH, "last-word.pcap");
    let o = netrace(&["replay", SCENARIO, &token, "--pcap", pcap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8(o.stdout).unwrap();
    let packets = netrace::wire::pcap::read_pcapng(std::fs::File::open(&pcap).unwrap()).unwrap();
    // One packet per delivery step, at the capture point the step names,
    // going the way it says, commented with its step, stamped with the
    // simulated clock (the sum of the waits before it) plus its index in
    // microseconds.
    let mut now = 0;
    let mut deliveries: Vec<(String, String, &str, u32)> = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("step") else {
            continue;
        };
        let Some((n, headline)) = rest.trim_start().split_once("  ") else {
            continue;
        };
        if let Some(w) = headline.split_once(": wait ") {
            now += w.1.trim_end_matches(" s").parse::<u32>().unwrap();
            continue;
        }
        let Some((at, _)) = headline.split_once(": ") else {
            continue;
        };
        let Some((point, way)) = at.rsplit_once(' ') else {
            continue;
        };
        if matches!(way, "in" | "out") {
            deliveries.push((n.to_string(), point.to_string(), way, now));
        }
    }
    assert!(deliveries.len() > 10, "{text}");
    assert!(now >= 3, "the schedule waits: {text}");
    assert_eq!(
        packets.len(),
        deliveries.len(),
        "one packet per delivery step"
    );
    for (i, (p, (n, point, way, at_s))) in packets.iter().zip(&deliveries).enumerate() {
        // "host1 br0 veth-A in", "host1 vxlan1 out", "A eth0 in",
        // "host2 underlay in": the interface is the point without "in"/"out".
        assert_eq!(&p.interface, point, "step {n}");
        let direction = match *way {
            "in" => netrace::sim::Direction::Inbound,
            _ => netrace::sim::Direction::Outbound,
        };
        assert_eq!(p.direction, Some(direction), "step {n}");
        let comment = p.comment.as_deref().unwrap_or_default();
        assert!(
            comment.starts_with(&format!("step {n}: {point} {way}: ")),
            "{comment}"
        );
        assert_eq!(
            p.timestamp,
            netrace::wire::pcap::timestamp(*at_s, i),
            "step {n}"
        );
    }
    assert!(packets.iter().any(|p| p.interface == "host1 br0 vxlan1"));
    assert!(packets.iter().any(|p| p.interface == "host2 underlay"));
    assert!(netrace::wire::build::describe(&packets[0].bytes)
        .contains("ARP, Request who-has 10.0.0.3 tell 10.0.0.2"));
    // Byte-identical on a second run.
    let pcap2 = scratch(SCRATCH, "last-word-2.pcap");
    netrace(&[
        "replay",
        SCENARIO,
        &token,
        "--pcap",
        pcap2.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&pcap).unwrap(),
        std::fs::read(&pcap2).unwrap()
    );
}

#[test]
fn replay_json_ends_with_the_final_tables() {
    let token = token_of("classic-17.03", "l2.fdb_correct");
    let o = netrace(&["replay", SCENARIO, &token, "--format", "json"]);
    let text = String::from_utf8(o.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().next_back().map(String::as_str), Some("tables"));
    let host1 = &v["tables"]["hosts"][0];
    assert_eq!(host1["host"], "host1");
    assert_eq!(host1["br0_fdb"]["02:42:0a:00:00:03"], "vxlan1");
    assert_eq!(host1["vxlan_fdb"]["02:42:0a:00:00:03"], "192.168.100.1");
    assert_eq!(host1["vxlan_neigh"]["10.0.0.3"], "02:42:0a:00:00:03");
}

#[test]
fn topology_prints_dot() {
    let o = netrace(&["topology", SCENARIO]);
    assert_eq!(o.status.code(), Some(0));
    let dot = String::from_utf8(o.stdout).unwrap();
    assert!(
        dot.starts_with("digraph \"classic-overlay-last-word\" {"),
        "{dot}"
    );
    assert!(dot.contains("subgraph cluster_host1 {") && dot.contains("veth-B"));
    let o = netrace(&["topology", "scenarios/docker-17.05-duplicate-ip.toml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_delivery_with_the_locality_fix_reaches_b() {
    // Replaying the classic counterexample on the fixed variant: the fix
    // changes what is enabled (no driver work after the miss), so the
    // replay stops at the driver's step and says why: exit 0, not the bug.
    let token = token_of("classic-17.03", "l2.fdb_correct");
    let o = netrace(&["replay", SCENARIO, &token, "--variant", "locality-check"]);
    assert_eq!(
        o.status.code(),
        Some(EXPECTED_LOCALITY_REPLAY_CODE),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("BLOCKED on variant locality-check"), "{out}");
    assert!(
        out.contains("overlay driver has nothing to program"),
        "{out}"
    );
    assert!(!out.contains("l2.fdb_correct violated"), "{out}");
}

/// A and B on host1 talk to C on host2 with the hop bound at 2: every
/// cross-host frame takes veth → br0 → vxlan1 → underlay → br0 → veth, so
/// its copy arriving at host2's br0 has been forwarded 3 times.
fn cross_host_spec(max_hops: u8) -> L2Spec {
    let mut s = spec();
    s.containers[0].script = vec![ScriptStep::Resolve(2), ScriptStep::Send(2)];
    s.max_hops = max_hops;
    s
}

#[test]
fn a_flood_past_the_hop_bound_violates_no_storm() {
    let verdicts = |max_hops| {
        let m =
            OverlaySystem::new(&cross_host_spec(max_hops), &profile("swarm-mode", &[])).unwrap();
        let r = explore::bfs(&m, &Options::default(), &mut |_| {});
        assert!(r.complete);
        r.violations
            .iter()
            .map(|v| v.as_ref().map(|c| c.message.clone()))
            .collect::<Vec<_>>()
    };
    // [single_arp_reply, fdb_correct, delivery, no_storm, converges]
    let tight = verdicts(2);
    let storm = tight[3].as_ref().expect("l2.no_storm is violated");
    assert!(storm.contains("(bound 2)"), "{storm}");
    assert_eq!(
        tight.iter().map(Option::is_some).collect::<Vec<_>>(),
        vec![false, false, false, true, false]
    );
    // The default bound is met by the same traffic.
    assert!(verdicts(16).iter().all(Option::is_none));
}

#[test]
fn a_300_step_script_is_refused_at_load() {
    let steps = vec!["\"wait 1\""; 300].join(", ");
    let text = format!(
        "name = \"long\"\nkind = \"l2\"\n\n[network]\nsubnet = \"10.0.0.0/24\"\n\n\
         [[host]]\nname = \"host1\"\nvtep = \"192.168.100.1\"\n\n\
         [[container]]\nname = \"A\"\nhost = \"host1\"\nip = \"10.0.0.2\"\n\
         script = [{steps}]\n\n\
         [[variant]]\nname = \"swarm-mode\"\nprofile = \"swarm-mode\"\n"
    );
    let err = refused("long-script.toml", &text);
    assert!(err.contains("long-script.toml:15:2011"), "{err}");
    assert!(
        err.contains("script has 300 steps: at most 200 are supported"),
        "{err}"
    );
    assert!(err.contains("shorten the script"), "{err}");
}

#[test]
fn a_subnet_with_host_bits_is_refused() {
    let text = "name = \"bits\"\nkind = \"l2\"\n\n[network]\nsubnet = \"10.0.0.1/24\"\n\n\
                [[host]]\nname = \"host1\"\nvtep = \"192.168.100.1\"\n\n\
                [[container]]\nname = \"A\"\nhost = \"host1\"\nip = \"10.0.0.2\"\n\n\
                [[variant]]\nname = \"swarm-mode\"\nprofile = \"swarm-mode\"\n";
    let err = refused("host-bits.toml", text);
    assert!(err.contains("host-bits.toml:5:"), "{err}");
    assert!(err.contains("has host bits set"), "{err}");
    assert!(err.contains("10.0.0.0/24"), "{err}");
}

#[test]
fn a_duplicate_address_is_reported_on_its_own_line() {
    let text = "name = \"dup\"\nkind = \"l2\"\n\n[network]\nsubnet = \"10.0.0.0/24\"\n\n\
                [[host]]\nname = \"host1\"\nvtep = \"192.168.100.1\"\n\n\
                [[container]]\nname = \"A\"\nhost = \"host1\"\nip = \"10.0.0.2\"\n\n\
                [[container]]\nname = \"B\"\nhost = \"host1\"\nip = \"10.0.0.2\"\n\n\
                [[variant]]\nname = \"swarm-mode\"\nprofile = \"swarm-mode\"\n";
    let err = refused("dup-ip.toml", text);
    // Line 19 is B's `ip = "10.0.0.2"`, not its name on line 17.
    assert!(err.contains("dup-ip.toml:19:"), "{err}");
    assert!(err.contains("already container A's"), "{err}");
}

#[test]
fn model_actions_are_deterministic() {
    let m = OverlaySystem::new(&spec(), &profile("classic-17.03", &[])).unwrap();
    let a = explore::bfs(&m, &Options::default(), &mut |_| {});
    let b = explore::bfs(&m, &Options::default(), &mut |_| {});
    assert_eq!(a.states, b.states);
    assert_eq!(a.violations, b.violations);
    assert_eq!(m.properties().len(), 5);
}

#[test]
fn every_variant_of_the_scenario_has_a_kernel_forceable_plan() {
    use netrace::overlay::oracle;
    let scenario =
        netrace::scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(SCENARIO)).unwrap();
    let Some(l2) = scenario
        .system
        .downcast::<netrace::scenario::l2::L2Scenario>()
    else {
        panic!("an l2 scenario")
    };
    for v in &l2.variants {
        let schedule =
            oracle::forceable_counterexample(&v.model, "l2.fdb_correct", 2000, scenario.bounds)
                .unwrap_or_else(|| oracle::canonical_schedule(&v.model, 1000));
        let p = oracle::plan(&v.model, &schedule).unwrap();
        assert!(p.faithful(), "{}", v.name);
        let b_port = p.expected.br0_fdb[0].get("02:42:0a:00:00:03").cloned();
        if v.name == "classic-17.03" {
            assert_eq!(b_port.as_deref(), Some("vxlan1"), "the last word");
        }
    }
}

/// The br0 FDB of host1 after A resolves B and then runs `waits`, with
/// br0 and vxlan1 ageing after `ageing_time_s` (first enabled action each
/// step: the tables at quiescence do not depend on the order).
fn br0_after_waits(ageing_time_s: u32, waits: &[u32]) -> Vec<String> {
    let mut s = spec();
    s.ageing_time_s = ageing_time_s;
    s.containers[0].script = std::iter::once(ScriptStep::Resolve(1))
        .chain(waits.iter().map(|&n| ScriptStep::Wait(n)))
        .collect();
    let m = OverlaySystem::new(&s, &profile("swarm-mode", &[])).unwrap();
    let mut state = m.init_state();
    let mut actions = Vec::new();
    let mut trace = netrace::sim::Trace::off();
    for _ in 0..10_000 {
        actions.clear();
        m.actions(&state, &mut actions);
        let Some(a) = actions.first() else { break };
        state = m.next_state(&state, a, &mut trace);
    }
    assert!(actions.is_empty(), "the script ends");
    let received = vec![Vec::new(); m.endpoints().len()];
    let o = netrace::overlay::oracle::observe(&m, &state, &received);
    o.br0_fdb[0].keys().cloned().collect()
}

#[test]
fn a_wait_of_the_ageing_time_ages_and_a_shorter_one_does_not() {
    let a_and_b = vec!["02:42:0a:00:00:02".to_string(), "02:42:0a:00:00:03".into()];
    assert_eq!(br0_after_waits(5, &[]), a_and_b, "A and B are learned");
    assert_eq!(br0_after_waits(5, &[4]), a_and_b, "4 s < ageing_time 5 s");
    assert!(br0_after_waits(5, &[5]).is_empty(), "5 s = ageing_time");
    assert!(br0_after_waits(5, &[4, 1]).is_empty(), "waits add up");
    assert_eq!(
        br0_after_waits(netrace::l2::bridge::AGEING_TIME_S, &[5]),
        a_and_b,
        "the default is 300 s"
    );
}

#[test]
fn ageing_time_s_is_checked_at_load() {
    for (value, col) in [("0", 17), ("1000001", 17), ("-3", 17)] {
        let text = format!(
            "name = \"age\"\nkind = \"l2\"\n\n[network]\nsubnet = \"10.0.0.0/24\"\n\
             ageing_time_s = {value}\n\n\
             [[host]]\nname = \"host1\"\nvtep = \"192.168.100.1\"\n\n\
             [[container]]\nname = \"A\"\nhost = \"host1\"\nip = \"10.0.0.2\"\n\n\
             [[variant]]\nname = \"swarm-mode\"\nprofile = \"swarm-mode\"\n"
        );
        let err = refused("ageing.toml", &text);
        assert!(err.contains(&format!("ageing.toml:6:{col}")), "{err}");
        assert!(
            err.contains(&format!("ageing_time_s = {value} is out of range")),
            "{err}"
        );
        assert!(err.contains("1 to 1000000"), "{err}");
    }
}
