//! The bodies of the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`), kept
//! in the library so that `cargo test` replays every committed corpus file
//! on stable Rust (`tests/fuzz_corpus.rs`) and so that a crash found by the
//! fuzzer is a plain function call to debug.
//!
//! - [`ipam_schedule`]: bytes choose an allocator scenario (pool size,
//!   setup, concurrent runs and removals, daemons, profile, serial) and a
//!   schedule; a violation of a property the profile is expected to hold
//!   panics with a scenario file and a replay token that reproduce it.
//! - [`l2_orderings`]: the same for frame delivery orders in an overlay
//!   scenario (two hosts; containers with scripts made from the bytes).
//! - [`scenario_parse`]: any bytes as a scenario file: errors are fine,
//!   panics and hangs are not.
//! - [`frame_parse`]: any bytes through every frame parser
//!   ([`crate::wire::fuzz_frame_parse`]).
//!
//! Which profiles are expected to hold is the point of the targets: the
//! fixed ones (`libnetwork-18.03`, `classic-swarm-cas` without serial
//! allocation; the `swarm-mode` and `locality-check` overlays). With
//! [`Expect::All`] every profile is expected to hold, which turns the
//! fuzzer into a bug hunter for the known-buggy ones (docs/fuzzing.md).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::explore::token;
use crate::ipam::profile::{Profile, PROFILE_NAMES};
use crate::ipam::system::{ActorKind, ActorSpec, IpamSpec, IpamSystem, SetupOp, Target};
use crate::overlay::system::{ContainerSpec, HostSpec, L2Spec, OverlaySystem, ScriptStep};
use crate::overlay::{Fix, OverlayProfile};
use crate::sim::{Model, Trace, When};

/// Which profiles a target expects to hold every property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Only the fixed profiles: a violation is a regression.
    Fixed,
    /// Every profile: a violation of a buggy profile is reported too (a
    /// bug hunt).
    All,
    /// Every profile, but only duplicates (`ipam.unique`): the hunt for the
    /// duplicate of seed 000.
    Duplicates,
}

/// Reads the fuzzer's bytes as a stream of small choices; past the end
/// every choice is 0.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn rest(&self) -> &[u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

/// A generated case: the model, a scenario file that builds the same model,
/// and what is expected of it.
struct Case<M> {
    model: M,
    toml: String,
    variant: String,
    expect_hold: bool,
    /// Only these properties count (all when empty).
    only: &'static [&'static str],
}

/// Runs the schedule the bytes give (a choice per step, modulo the number
/// of enabled actions; past the end the first enabled action) and panics on
/// a violation of an expected property. Returns how many states were
/// checked, or `None` when the case is not expected to hold (not run).
fn run_case<M: Model>(case: &Case<M>, schedule_bytes: &[u8], max_steps: usize) -> Option<usize> {
    if !case.expect_hold {
        return None;
    }
    let m = &case.model;
    let props = m.properties();
    let mut state = m.init_state();
    let mut schedule: Vec<u32> = Vec::new();
    let mut actions = Vec::new();
    let mut trace = Trace::off();
    for step in 0..=max_steps {
        actions.clear();
        m.actions(&state, &mut actions);
        let quiescent = actions.is_empty();
        for p in &props {
            if (p.when == When::Quiescent && !quiescent)
                || !(case.only.is_empty() || case.only.contains(&p.name))
            {
                continue;
            }
            if let Err(message) = (p.check)(m, &state) {
                let scope = token::Scope {
                    name: "fuzz-case",
                    content: crate::scenario::content_hash(&case.toml),
                };
                let tok = token::encode(scope, &case.variant, &schedule);
                panic!(
                    "{} violated on variant {}: {message}\n\
                     save the scenario below as fuzz-case.toml and run:\n  \
                     netrace replay fuzz-case.toml {tok}\n\
                     ----- fuzz-case.toml -----\n{}",
                    p.name, case.variant, case.toml
                );
            }
        }
        if quiescent || step == max_steps {
            return Some(step + 1);
        }
        let choice = schedule_bytes
            .get(step)
            .map_or(0, |&b| usize::from(b) % actions.len());
        state = m.next_state(&state, &actions[choice], &mut trace);
        schedule.push(choice as u32);
    }
    unreachable!("the loop returns at step == max_steps")
}

fn ipam_case(bytes: &mut Bytes, expect: Expect) -> Option<Case<IpamSystem>> {
    let prefix = 24 + bytes.below(5) as u8; // /24 ... /28
    let subnet = format!("10.9.0.0/{prefix}");
    let profile_name = PROFILE_NAMES[bytes.below(PROFILE_NAMES.len())];
    let mut profile = Profile::builtin(profile_name).expect("listed");
    profile.serial = bytes.byte() & 1 == 1;
    let runs = bytes.below(12);
    let setup_names: Vec<String> = (1..=runs).map(|i| format!("s{i}")).collect();
    let mut setup: Vec<SetupOp> = setup_names.iter().cloned().map(SetupOp::Run).collect();
    let mut live = setup_names.clone();
    for _ in 0..bytes.below(4) {
        if live.is_empty() {
            break;
        }
        let gone = live.remove(bytes.below(live.len()));
        setup.push(SetupOp::Rm(Target::Name(gone)));
    }
    let daemons = if profile.store { 1 + bytes.below(2) } else { 1 };
    let mut actors = Vec::new();
    let mut runs_started = 0;
    for _ in 0..1 + bytes.below(4) {
        let daemon = bytes.below(daemons);
        if bytes.byte() & 1 == 0 || live.is_empty() {
            runs_started += 1;
            let name = format!("r{runs_started}");
            actors.push(ActorSpec {
                kind: ActorKind::Run(name.clone()),
                daemon,
            });
            live.push(name);
        } else {
            let gone = live.remove(bytes.below(live.len()));
            actors.push(ActorSpec {
                kind: ActorKind::Rm(Target::Name(gone)),
                daemon,
            });
        }
    }
    let spec = IpamSpec {
        network: "fuzz".into(),
        subnet: subnet.parse().expect("valid"),
        gateway: None,
        ip_range: None,
        setup,
        actors,
        faults: Default::default(),
        endpoints: false,
    };
    let model = IpamSystem::new(&spec, &profile).ok()?;
    let variant = format!(
        "{}{}",
        profile.name,
        if profile.serial { "+serial" } else { "" }
    );
    let fixed = profile.name == "libnetwork-18.03"
        || (profile.name == "classic-swarm-cas" && !profile.serial);
    Some(Case {
        toml: ipam_toml(&spec, &profile, &variant),
        model,
        variant,
        expect_hold: fixed || expect != Expect::Fixed,
        only: if expect == Expect::Duplicates {
            &["ipam.unique"]
        } else {
            &[]
        },
    })
}

fn ipam_toml(spec: &IpamSpec, profile: &Profile, variant: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "name = \"fuzz-case\"\nkind = \"ipam\"\n");
    let _ = writeln!(
        t,
        "[network]\nname = \"{}\"\nsubnet = \"{}\"\n",
        spec.network, spec.subnet
    );
    for op in &spec.setup {
        match op {
            SetupOp::Run(n) => {
                let _ = writeln!(t, "[[setup]]\nrun = [\"{n}\"]\n");
            }
            SetupOp::Rm(target) => {
                let _ = writeln!(t, "[[setup]]\nrm = [\"{target}\"]\n");
            }
        }
    }
    for a in &spec.actors {
        match &a.kind {
            ActorKind::Run(n) => {
                let _ = writeln!(t, "[[actor]]\nrun = \"{n}\"\ndaemon = {}\n", a.daemon);
            }
            ActorKind::Rm(target) => {
                let _ = writeln!(t, "[[actor]]\nrm = \"{target}\"\ndaemon = {}\n", a.daemon);
            }
        }
    }
    let _ = writeln!(
        t,
        "[[variant]]\nname = \"{variant}\"\nprofile = \"{}\"\nserial = {}",
        profile.name, profile.serial
    );
    t
}

/// The `ipam_schedule` fuzz target.
pub fn ipam_schedule(data: &[u8], expect: Expect) {
    let mut bytes = Bytes { data, pos: 0 };
    if let Some(case) = ipam_case(&mut bytes, expect) {
        run_case(&case, bytes.rest(), 400);
    }
}

const L2_STEPS: usize = 9;

fn l2_case(bytes: &mut Bytes, expect: Expect) -> Case<OverlaySystem> {
    let variants: [(&str, &str, &[Fix]); 4] = [
        ("swarm-mode", "swarm-mode", &[]),
        ("locality-check", "classic-17.03", &[Fix::LocalityCheck]),
        ("classic-17.03", "classic-17.03", &[]),
        ("learning-off", "classic-17.03", &[Fix::LearningOff]),
    ];
    let (variant, profile_name, fixes) = variants[bytes.below(variants.len())];
    let mut profile = OverlayProfile::builtin(profile_name).expect("listed");
    profile.fixes = fixes.to_vec();
    let names = ["A", "B", "C"];
    let mut containers: Vec<ContainerSpec> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ContainerSpec {
            name: n.to_string(),
            host: usize::from(i == 2),
            ip: Ipv4Addr::new(10, 0, 0, 2 + i as u8),
            arp_responder: true,
            script: Vec::new(),
            start: Default::default(),
        })
        .collect();
    // A always has a script; B sometimes talks too.
    for (who, container) in containers.iter_mut().enumerate().take(2) {
        let len = if who == 0 {
            1 + bytes.below(L2_STEPS)
        } else {
            bytes.below(4)
        };
        let mut script = Vec::new();
        for _ in 0..len {
            let peers: Vec<usize> = (0..3).filter(|&p| p != who).collect();
            let peer = peers[bytes.below(peers.len())];
            match bytes.below(7) {
                0 | 1 => script.extend([ScriptStep::Resolve(peer), ScriptStep::Send(peer)]),
                2 => script.push(ScriptStep::Forget(peer)),
                3 => script.push(ScriptStep::Wait(if bytes.byte() & 1 == 0 {
                    1
                } else {
                    300
                })),
                4 => script.push(ScriptStep::Garp),
                5 => script.push(ScriptStep::Probe(peer)),
                _ => script.extend([
                    ScriptStep::Resolve(peer),
                    ScriptStep::Wait(1),
                    ScriptStep::Send(peer),
                ]),
            }
        }
        container.script = script;
    }
    let spec = L2Spec {
        network: "ov".into(),
        subnet: "10.0.0.0/24".parse().expect("valid"),
        vni: 256,
        hosts: vec![
            HostSpec {
                name: "host1".into(),
                vtep: Ipv4Addr::new(192, 168, 100, 1),
                preset: Default::default(),
            },
            HostSpec {
                name: "host2".into(),
                vtep: Ipv4Addr::new(192, 168, 100, 2),
                preset: Default::default(),
            },
        ],
        containers,
        max_hops: 16,
        ageing_time_s: crate::l2::bridge::AGEING_TIME_S,
    };
    let model = OverlaySystem::new(&spec, &profile).expect("the generated topology is valid");
    let fixed = matches!(variant, "swarm-mode" | "locality-check");
    Case {
        toml: l2_toml(&spec, &profile, variant),
        model,
        variant: variant.to_string(),
        expect_hold: fixed || expect != Expect::Fixed,
        only: &[],
    }
}

fn l2_toml(spec: &L2Spec, profile: &OverlayProfile, variant: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "name = \"fuzz-case\"\nkind = \"l2\"\n\n[network]\nsubnet = \"{}\"\n",
        spec.subnet
    );
    for h in &spec.hosts {
        let _ = writeln!(
            t,
            "[[host]]\nname = \"{}\"\nvtep = \"{}\"\n",
            h.name, h.vtep
        );
    }
    for c in &spec.containers {
        let steps: Vec<String> = c
            .script
            .iter()
            .map(|s| match *s {
                ScriptStep::Resolve(p) => format!("\"resolve {}\"", spec.containers[p].name),
                ScriptStep::Probe(p) => format!("\"probe {}\"", spec.containers[p].name),
                ScriptStep::Send(p) => format!("\"send {}\"", spec.containers[p].name),
                ScriptStep::Forget(p) => format!("\"forget {}\"", spec.containers[p].name),
                ScriptStep::Wait(n) => format!("\"wait {n}\""),
                ScriptStep::Garp => "\"garp\"".to_string(),
                ScriptStep::Arp(on) => format!("\"arp {}\"", if on { "on" } else { "off" }),
                ScriptStep::Join => "\"join\"".to_string(),
            })
            .collect();
        let _ = writeln!(
            t,
            "[[container]]\nname = \"{}\"\nhost = \"{}\"\nip = \"{}\"\nscript = [{}]\n",
            c.name,
            spec.hosts[c.host].name,
            c.ip,
            steps.join(", ")
        );
    }
    let fixes: Vec<String> = profile
        .fixes
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let _ = writeln!(
        t,
        "[[variant]]\nname = \"{variant}\"\nprofile = \"{}\"\nfixes = [{}]",
        profile.name,
        fixes.join(", ")
    );
    t
}

/// The `l2_orderings` fuzz target.
pub fn l2_orderings(data: &[u8], expect: Expect) {
    let mut bytes = Bytes { data, pos: 0 };
    let case = l2_case(&mut bytes, expect);
    run_case(&case, bytes.rest(), 2_000);
}

/// The `scenario_parse` fuzz target: loading must end in a scenario or an
/// error, for any bytes.
pub fn scenario_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::scenario::load_str("fuzz.toml", &text, Path::new("fuzz.toml"));
}

/// The `frame_parse` fuzz target.
pub fn frame_parse(data: &[u8]) {
    crate::wire::fuzz_frame_parse(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_scenarios_load_back_from_their_toml() {
        for seed in 0..200u8 {
            let data: Vec<u8> = (0..64u8)
                .map(|i| seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)))
                .collect();
            if let Some(case) = ipam_case(
                &mut Bytes {
                    data: &data,
                    pos: 0,
                },
                Expect::All,
            ) {
                crate::scenario::load_str(
                    "fuzz-case.toml",
                    &case.toml,
                    Path::new("fuzz-case.toml"),
                )
                .unwrap_or_else(|e| panic!("{e}\n{}", case.toml));
            }
            let case = l2_case(
                &mut Bytes {
                    data: &data,
                    pos: 0,
                },
                Expect::All,
            );
            crate::scenario::load_str("fuzz-case.toml", &case.toml, Path::new("fuzz-case.toml"))
                .unwrap_or_else(|e| panic!("{e}\n{}", case.toml));
        }
    }

    #[test]
    fn the_hunt_finds_the_17_05_duplicate() {
        // profile byte 0 = libnetwork-17.05, no serial, /24, 2 setup runs,
        // no removals, two concurrent runs; then a schedule that lets both
        // compute before either commits.
        let mut found = false;
        'search: for a in 0..4u8 {
            for b in 0..4u8 {
                let mut data = vec![0u8, 0, 0, 2, 0, 1, 0, 0, 0, 0];
                data.extend([a, b].iter().cycle().take(40));
                if std::panic::catch_unwind(|| ipam_schedule(&data, Expect::Duplicates)).is_err() {
                    found = true;
                    break 'search;
                }
            }
        }
        assert!(found, "alternating schedules give the duplicate");
        // And the fixed target stays quiet on the same inputs: the same
        // scenario and schedules with the profile byte choosing
        // libnetwork-18.03, which the fixed target really runs.
        let fixed = PROFILE_NAMES
            .iter()
            .position(|n| *n == "libnetwork-18.03")
            .expect("listed") as u8;
        for a in 0..4u8 {
            for b in 0..4u8 {
                let mut data = vec![0u8, fixed, 0, 2, 0, 1, 0, 0, 0, 0];
                data.extend([a, b].iter().cycle().take(40));
                let mut bytes = Bytes {
                    data: &data,
                    pos: 0,
                };
                let case = ipam_case(&mut bytes, Expect::Fixed).expect("a valid scenario");
                assert_eq!(case.variant, "libnetwork-18.03");
                assert!(case.expect_hold, "the fixed target checks this profile");
                let checked = run_case(&case, bytes.rest(), 400);
                assert!(
                    checked.is_some_and(|n| n > 1),
                    "the fixed target ran the schedule and checked its states: {checked:?}"
                );
            }
        }
    }

    #[test]
    fn fixed_profiles_hold_on_every_small_input() {
        for a in 0..=255u8 {
            let data = [
                a,
                a.wrapping_mul(3),
                a ^ 0x55,
                5,
                1,
                2,
                a,
                3,
                4,
                a.rotate_left(3),
                1,
                0,
                2,
                1,
            ];
            ipam_schedule(&data, Expect::Fixed);
            l2_orderings(&data, Expect::Fixed);
            scenario_parse(&data);
            frame_parse(&data);
        }
    }
}
