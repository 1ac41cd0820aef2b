//! Turning a model schedule into a plan the real kernel can run.
//!
//! In the model, the explorer interleaves single hops of frames; in the
//! kernel, a frame injected on a container's `eth0` runs its whole cascade
//! (bridge, vxlan, proxy reply, local bypass, underlay) at once, in
//! softirq context, and nothing can be slipped in between. What the
//! kernel can be told is the order of *root events*: a container
//! transmitting a frame, the overlay driver programming an entry, the
//! operator deleting one, time passing. So a plan is:
//!
//! 1. the **oracle form** of the scenario: containers are pure L2
//!    endpoints (no IP address, no ARP answering, no scripts: every frame
//!    they send is injected explicitly, replies included — which is how
//!    the kernel oracle holds back a real reply, see issue text), the
//!    driver does not react to misses (its netlink operations are
//!    replayed explicitly), the operator job is explicit too;
//! 2. the **events** of the schedule, one per root, ordered by the step at
//!    which the root last changed a bridge FDB (or first reached a
//!    bridge): that is when its cascade must run for the bridges to learn
//!    in the schedule's order ("the last word");
//! 3. the **observables** the oracle form predicts after running the
//!    events atomically, and those of the original schedule. When they
//!    agree the plan is *faithful*: the kernel run answers for the
//!    schedule. When they do not, the schedule depends on an interleaving
//!    inside one cascade that no kernel run can force, and the plan says so.
//!
//! Observables are what `netrace kernel` compares: each host's `br0` FDB
//! entries for container MACs, the ARP replies each container received
//! (by sender), the data frames each received, and vxlan1's FDB and
//! neighbour tables.

use std::collections::BTreeMap;

use serde::Serialize;

use super::system::{DriverOp, L2Action, L2State, Loc, OverlaySystem, ScriptStep};
use super::Fix;
use crate::explore::Divergence;
use crate::l2::endpoint::data_id;
use crate::sim::{Model, Trace};
use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame};

/// One thing the oracle does to the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OracleEvent {
    /// Container `ep` transmits these bytes on its `eth0`.
    Inject {
        /// Container index.
        ep: usize,
        /// The frame.
        frame: Vec<u8>,
    },
    /// The overlay driver's netlink operation on `host`'s vxlan1.
    Program {
        /// Host index.
        host: usize,
        /// The operation (`NeighAdd` or `FdbAdd`).
        op: DriverOp,
    },
    /// The operator deletes vxlan1's neighbour entries of `host`'s local
    /// containers (`delete-local-arp`).
    DeleteLocalNeigh {
        /// Host index.
        host: usize,
    },
    /// A script's `wait`: `seconds` of simulated time pass, and dynamic
    /// FDB entries unused for the ageing time expire (the kernel run
    /// waits that long on the real clock).
    Wait {
        /// How long, seconds.
        seconds: u32,
    },
}

/// What the kernel oracle compares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observables {
    /// Per host: container MAC → `br0` port name.
    pub br0_fdb: Vec<BTreeMap<String, String>>,
    /// Per container: ARP replies received, by sender IP.
    pub arp_replies: BTreeMap<String, BTreeMap<String, u32>>,
    /// Per container: ids of the data frames received, in order.
    pub data: BTreeMap<String, Vec<u16>>,
    /// Per host: vxlan1 FDB, MAC → remote.
    pub vxlan_fdb: Vec<BTreeMap<String, String>>,
    /// Per host: vxlan1 neighbours, IP → MAC.
    pub vxlan_neigh: Vec<BTreeMap<String, String>>,
    /// Per host: the flags of every entry above (`br0 MAC`, `vxlan1 fdb
    /// MAC`, `vxlan1 neigh IP` → `master dynamic`, `self permanent`, …).
    pub flags: Vec<BTreeMap<String, String>>,
}

/// How an entry's flags are spelled on both sides: `permanent` (kernel
/// state `permanent`), `static` (`noarp`/`static`), else `dynamic`
/// (learned: reachable or stale).
pub fn flags(attach: &str, permanent: bool) -> String {
    format!(
        "{attach} {}",
        if permanent { "permanent" } else { "dynamic" }
    )
}

/// How a vxlan1 neighbour entry's state is spelled on both sides:
/// `neigh permanent` (as [`flags`] has it), `neigh noarp`, `neigh stale`,
/// `neigh reachable`, ...
pub fn neigh_flags(nud: crate::l2::neigh::NudState) -> String {
    format!("neigh {}", nud.name().to_ascii_lowercase())
}

/// A kernel-runnable plan for one schedule.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The events, in the order the kernel runs them.
    pub events: Vec<OracleEvent>,
    /// After each event, how many frames each container has received in
    /// total (what the oracle waits for, instead of sleeping).
    pub received_after: Vec<Vec<usize>>,
    /// The frames each container receives over the whole plan, in order.
    pub received: Vec<Vec<Vec<u8>>>,
    /// What the oracle form predicts.
    pub expected: Observables,
    /// What the original schedule ends with.
    pub original: Observables,
}

impl Plan {
    /// True when running the events atomically gives the schedule's own
    /// observables, so a kernel run answers for the schedule.
    pub fn faithful(&self) -> bool {
        self.expected == self.original
    }
}

/// The scenario with containers as pure L2 endpoints and the driver and
/// operator made explicit.
pub fn oracle_form(model: &OverlaySystem) -> OverlaySystem {
    let mut spec = model.spec().clone();
    for c in &mut spec.containers {
        c.arp_responder = false;
        c.script.clear();
    }
    let mut profile = model.profile().clone();
    profile.miss_handling = false;
    profile.fixes.retain(|f| *f != Fix::DeleteLocalArp);
    OverlaySystem::new(&spec, &profile).expect("the same scenario builds")
}

/// Observables of a state, given the frames each container received.
pub fn observe(model: &OverlaySystem, state: &L2State, received: &[Vec<Vec<u8>>]) -> Observables {
    let eps = model.endpoints();
    let mut o = Observables::default();
    for (h, hs) in state.hosts.iter().enumerate() {
        let mut br = BTreeMap::new();
        let mut fl = BTreeMap::new();
        for ep in eps {
            if let Some(e) = hs.br.fdb.get(&ep.mac) {
                br.insert(ep.mac.to_string(), model.port_name(h, e.port).to_string());
                fl.insert(format!("br0 {}", ep.mac), flags("master", e.local));
            }
        }
        for (m, f) in &hs.vx.fdb {
            fl.insert(format!("vxlan1 fdb {m}"), flags("self", f.permanent));
        }
        for (ip, n) in &hs.vx.neigh {
            fl.insert(format!("vxlan1 neigh {ip}"), neigh_flags(n.nud));
        }
        o.flags.push(fl);
        o.br0_fdb.push(br);
        o.vxlan_fdb.push(
            hs.vx
                .fdb
                .iter()
                .map(|(m, f)| (m.to_string(), f.remote.to_string()))
                .collect(),
        );
        o.vxlan_neigh.push(
            hs.vx
                .neigh
                .iter()
                .map(|(ip, n)| (ip.to_string(), n.mac.to_string()))
                .collect(),
        );
    }
    for (e, frames) in received.iter().enumerate() {
        let mut replies: BTreeMap<String, u32> = BTreeMap::new();
        let mut data = Vec::new();
        for f in frames {
            let Ok(eth) = EthernetFrame::new_checked(&f[..]) else {
                continue;
            };
            match eth.ethertype() {
                EtherType::Arp => {
                    if let Some(arp) = ArpPacket::new_checked(eth.payload())
                        .ok()
                        .and_then(|p| ArpRepr::parse(&p).ok())
                    {
                        if arp.operation == ArpOperation::Reply
                            && arp.target_protocol_addr == eps[e].ip
                        {
                            *replies
                                .entry(arp.source_protocol_addr.to_string())
                                .or_default() += 1;
                        }
                    }
                }
                EtherType::Ipv4 => {
                    if let Some(id) = data_id(eth.payload(), eps[e].ip) {
                        data.push(id);
                    }
                }
                _ => {}
            }
        }
        o.arp_replies.insert(eps[e].name.clone(), replies);
        o.data.insert(eps[e].name.clone(), data);
    }
    o
}

/// Runs a model action, recording frames delivered to containers.
fn step(
    model: &OverlaySystem,
    state: &L2State,
    a: &L2Action,
    received: &mut [Vec<Vec<u8>>],
) -> L2State {
    if let L2Action::Deliver(i) = a {
        let item = &state.inflight[*i as usize];
        if let Loc::Endpoint { ep } = item.at {
            received[ep as usize].push(item.bytes.clone());
        }
    }
    model.next_state(state, a, &mut Trace::off())
}

/// Applies one event to the oracle form and runs its cascade to the end
/// (always the first enabled delivery).
pub fn apply(
    form: &OverlaySystem,
    state: &mut L2State,
    event: &OracleEvent,
    received: &mut [Vec<Vec<u8>>],
) {
    form.apply_oracle_event(state, event);
    let mut actions = Vec::new();
    loop {
        actions.clear();
        form.actions(state, &mut actions);
        let Some(a) = actions.first() else { break };
        *state = step(form, state, a, received);
    }
}

/// Builds the plan for `schedule` on `model`.
pub fn plan(model: &OverlaySystem, schedule: &[u32]) -> Result<Plan, Divergence> {
    let n_eps = model.endpoints().len();
    // Replay the original, attributing every frame to its root.
    let mut state = model.init_state();
    let mut received: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n_eps];
    // (in-flight item, root index) as a multiset
    let mut lineage: Vec<(super::system::InFlight, usize)> = Vec::new();
    // roots: (event, creation step, first bridge step, last fdb change step)
    struct Root {
        event: OracleEvent,
        created: usize,
        first_bridge: Option<usize>,
        last_change: Option<usize>,
    }
    let mut roots: Vec<Root> = Vec::new();
    let mut actions = Vec::new();
    for (k, &choice) in schedule.iter().enumerate() {
        actions.clear();
        model.actions(&state, &mut actions);
        let Some(a) = actions.get(choice as usize).copied() else {
            return Err(Divergence {
                step: k + 1,
                choice,
                enabled: actions.len(),
            });
        };
        let before_fdb: Vec<_> = state.hosts.iter().map(|h| h.br.fdb.clone()).collect();
        let mut delivered_root = None;
        let mut delivered_at = None;
        match a {
            L2Action::Deliver(i) => {
                let item = state.inflight[i as usize].clone();
                let pos = lineage
                    .iter()
                    .position(|(it, _)| *it == item)
                    .expect("every in-flight frame has a root");
                delivered_root = Some(lineage.remove(pos).1);
                delivered_at = Some(item.at);
            }
            L2Action::Driver(h) => {
                let op = state.hosts[h as usize].driver[0];
                if !matches!(op, DriverOp::Miss(_)) {
                    roots.push(Root {
                        event: OracleEvent::Program {
                            host: h as usize,
                            op,
                        },
                        created: k,
                        first_bridge: None,
                        last_change: Some(k),
                    });
                }
            }
            L2Action::Cleanup(h) => roots.push(Root {
                event: OracleEvent::DeleteLocalNeigh { host: h as usize },
                created: k,
                first_bridge: None,
                last_change: Some(k),
            }),
            // `[time]` models never reach the oracle: `netrace kernel`
            // refuses them (a namespace run cannot choose when a real
            // timer fires between two frames).
            L2Action::Tick | L2Action::Release(_) => {}
            L2Action::Script(e) => {
                let st = &state.eps[e as usize];
                if let Some(ScriptStep::Wait(n)) = model.spec().containers[e as usize]
                    .script
                    .get(st.pc as usize)
                {
                    roots.push(Root {
                        event: OracleEvent::Wait { seconds: *n },
                        created: k,
                        first_bridge: None,
                        last_change: Some(k),
                    });
                }
            }
        }
        let old = state.inflight.clone();
        let next = step(model, &state, &a, &mut received);
        // New items: the next multiset minus what was there (minus the
        // delivered one).
        let mut remaining = old;
        if let L2Action::Deliver(i) = a {
            remaining.remove(i as usize);
        }
        for item in &next.inflight {
            if let Some(p) = remaining.iter().position(|x| x == item) {
                remaining.remove(p);
                continue;
            }
            // A frame sent by a container (script step or response) is a
            // new root; anything else inherits the delivered frame's root.
            let root = match (a, delivered_at) {
                (L2Action::Script(e), _) => {
                    roots.push(Root {
                        event: OracleEvent::Inject {
                            ep: e as usize,
                            frame: item.bytes.clone(),
                        },
                        created: k,
                        first_bridge: None,
                        last_change: None,
                    });
                    roots.len() - 1
                }
                (L2Action::Deliver(_), Some(Loc::Endpoint { ep })) if item.hops == 0 => {
                    roots.push(Root {
                        event: OracleEvent::Inject {
                            ep: ep as usize,
                            frame: item.bytes.clone(),
                        },
                        created: k,
                        first_bridge: None,
                        last_change: None,
                    });
                    roots.len() - 1
                }
                _ => delivered_root.expect("frames only come from deliveries and scripts"),
            };
            lineage.push((item.clone(), root));
        }
        if let (Some(r), Some(Loc::Bridge { .. })) = (delivered_root, delivered_at) {
            let root = &mut roots[r];
            root.first_bridge.get_or_insert(k);
            let changed = next.hosts.iter().zip(&before_fdb).any(|(h, before)| {
                h.br.fdb
                    .iter()
                    .any(|(m, e)| before.get(m).is_none_or(|b| b.port != e.port))
            });
            if changed {
                root.last_change = Some(k);
            }
        }
        state = next;
    }
    let original = observe(model, &state, &received);

    let mut order: Vec<usize> = (0..roots.len()).collect();
    order.sort_by_key(|&r| {
        (
            roots[r]
                .last_change
                .or(roots[r].first_bridge)
                .unwrap_or(roots[r].created),
            r,
        )
    });
    let events: Vec<OracleEvent> = order.iter().map(|&r| roots[r].event.clone()).collect();

    // Run the oracle form.
    let form = oracle_form(model);
    let mut fs = form.init_state();
    let mut frecv: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n_eps];
    let mut received_after = Vec::new();
    for ev in &events {
        apply(&form, &mut fs, ev, &mut frecv);
        received_after.push(frecv.iter().map(Vec::len).collect());
    }
    let expected = observe(&form, &fs, &frecv);
    Ok(Plan {
        events,
        received_after,
        received: frecv,
        expected,
        original,
    })
}

/// A schedule of `model` that violates `property` and whose plan is
/// faithful (so the kernel can be made to run it): the explorer's shortest
/// counterexample when it qualifies, its shrunk form, else the first of up
/// to `walks` seeded random walks that does. Searches within `bounds`.
/// `None` if the property holds or no forceable schedule was found.
pub fn forceable_counterexample(
    model: &OverlaySystem,
    property: &str,
    walks: u64,
    bounds: crate::explore::Bounds,
) -> Option<Vec<u32>> {
    let props = model.properties();
    let index = props.iter().position(|p| p.name == property)?;
    let options = crate::explore::Options {
        bounds,
        ..crate::explore::Options::default()
    };
    let r = crate::explore::bfs(model, &options, &mut |_| {});
    let found = r.violations[index].as_ref()?;
    let shrunk = crate::explore::shrink(model, index, &found.schedule, bounds.max_depth);
    for candidate in [&found.schedule, &shrunk] {
        if plan(model, candidate).is_ok_and(|p| p.faithful()) {
            return Some(candidate.clone());
        }
    }
    for seed in 0..walks {
        let w = crate::explore::random_walks(model, seed, 1, bounds, &mut |_| {});
        if let Some(v) = &w.violations[index] {
            // Complete the walk's prefix to quiescence the way `shrink`
            // does, then check it can be forced.
            let full = crate::explore::shrink(model, index, &v.schedule, bounds.max_depth);
            if plan(model, &full).is_ok_and(|p| p.faithful()) {
                return Some(full);
            }
        }
    }
    None
}

/// A walk to quiescence (at most `max_depth` steps) choosing among the
/// enabled actions with xorshift64 seeded by `seed`: the same schedule for
/// the same seed on every platform.
pub fn seeded_walk(model: &OverlaySystem, seed: u64, max_depth: u32) -> Vec<u32> {
    let mut state = model.init_state();
    let mut schedule = Vec::new();
    let mut actions = Vec::new();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for _ in 0..max_depth {
        actions.clear();
        model.actions(&state, &mut actions);
        if actions.is_empty() {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = (x % actions.len() as u64) as usize;
        state = model.next_state(&state, &actions[c], &mut Trace::off());
        schedule.push(c as u32);
    }
    schedule
}

/// The schedule that always takes the first enabled action.
pub fn canonical_schedule(model: &OverlaySystem, max_depth: u32) -> Vec<u32> {
    let mut state = model.init_state();
    let mut steps = 0;
    let mut actions = Vec::new();
    while steps < max_depth as usize {
        actions.clear();
        model.actions(&state, &mut actions);
        let Some(a) = actions.first() else { break };
        state = model.next_state(&state, a, &mut Trace::off());
        steps += 1;
    }
    vec![0; steps]
}

impl OverlaySystem {
    /// Applies a root event to a state of the oracle form (without running
    /// the cascade): the first step of [`apply`].
    pub fn apply_oracle_event(&self, s: &mut L2State, event: &OracleEvent) {
        let mut trace = Trace::off();
        match event {
            OracleEvent::Inject { ep, frame } => self.inject(s, *ep, frame.clone()),
            OracleEvent::Program { host, op } => {
                s.hosts[*host].driver.insert(0, *op);
                *s = self.next_state(s, &L2Action::Driver(*host as u8), &mut trace);
            }
            OracleEvent::DeleteLocalNeigh { host } => self.delete_local_neigh(s, *host, &mut trace),
            OracleEvent::Wait { seconds } => self.age_all(s, *seconds, &mut trace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::system::{ContainerSpec, HostSpec, L2Spec};
    use crate::overlay::OverlayProfile;

    fn spec() -> L2Spec {
        let c = |name: &str, host, last: u8, script| ContainerSpec {
            name: name.into(),
            host,
            ip: std::net::Ipv4Addr::new(10, 0, 0, last),
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
                        ScriptStep::Resolve(2),
                        ScriptStep::Send(2),
                    ],
                ),
                c("B", 0, 3, vec![]),
                c("C", 1, 4, vec![]),
            ],
            max_hops: 16,
            ageing_time_s: crate::l2::bridge::AGEING_TIME_S,
        }
    }

    fn walk(model: &OverlaySystem, seed: u64) -> Vec<u32> {
        seeded_walk(model, seed, 100_000)
    }

    #[test]
    fn a_forceable_last_word_exists_and_the_canonical_schedule_is_faithful() {
        let model = OverlaySystem::new(&spec(), &OverlayProfile::builtin("classic-17.03").unwrap())
            .unwrap();
        let schedule = forceable_counterexample(&model, "l2.fdb_correct", 1000, Default::default())
            .expect("forceable");
        let p = plan(&model, &schedule).unwrap();
        assert!(p.faithful());
        assert_eq!(
            p.expected.br0_fdb[0]
                .get("02:42:0a:00:00:03")
                .map(String::as_str),
            Some("vxlan1")
        );
        for name in ["classic-17.03", "swarm-mode"] {
            let model =
                OverlaySystem::new(&spec(), &OverlayProfile::builtin(name).unwrap()).unwrap();
            let p = plan(&model, &canonical_schedule(&model, 1000)).unwrap();
            assert!(p.faithful(), "{name}");
        }
        let fixed =
            OverlaySystem::new(&spec(), &OverlayProfile::builtin("swarm-mode").unwrap()).unwrap();
        assert!(
            forceable_counterexample(&fixed, "l2.fdb_correct", 10, Default::default()).is_none()
        );
    }

    #[test]
    fn the_last_word_survives_the_plan_and_unforceable_schedules_are_told_apart() {
        let model = OverlaySystem::new(&spec(), &OverlayProfile::builtin("classic-17.03").unwrap())
            .unwrap();
        let (mut faithful, mut last_word, mut total) = (0, 0, 0);
        for seed in 0..300u64 {
            let p = plan(&model, &walk(&model, seed)).unwrap();
            total += 1;
            if p.faithful() {
                faithful += 1;
                if p.expected.br0_fdb[0]
                    .get("02:42:0a:00:00:03")
                    .map(String::as_str)
                    == Some("vxlan1")
                {
                    last_word += 1;
                }
            }
        }
        // Most random schedules can be forced on a kernel; the rest depend
        // on a hop of one frame slipping between hops of another.
        assert!(faithful * 2 > total, "{faithful}/{total} faithful");
        assert!(
            faithful < total,
            "some schedules interleave inside a cascade"
        );
        assert!(
            last_word > 0,
            "some faithful walks end with B's MAC on vxlan1"
        );
    }
}
