//! The multi-host kernel oracle for `overlay-cluster` scenarios: a
//! schedule of [`crate::overlay::cluster`] run on real vxlan devices in
//! network namespaces, one per host, joined by a real underlay, and
//! compared with the model at every step.
//!
//! The topology: an underlay namespace with a bridge, and per host a
//! namespace with `ul0` (a veth on that bridge, the host's VTEP address
//! as /32 with a route to every other VTEP) and `vxlan1` (the scenario's
//! VNI, `local` the VTEP, `dstport 4789`, `learning`, a short `ageing`).
//! Encapsulation between hosts is real: nothing bypasses the underlay.
//!
//! A run replays the driver's netlink requests as the model made them
//! ([`KernelStep::Driver`]: `ip neigh` and `bridge fdb` in the host's
//! namespace), in the schedule's order, and checks that the kernel gives
//! each the model's answer (success, `EEXIST`, `ENOENT`). A container's
//! traffic ([`KernelStep::Traffic`]) is a real VXLAN datagram (a
//! gratuitous ARP from the container's MAC) sent from its host's VTEP to
//! the receiving host's, which the receiving vxlan device decapsulates
//! and snoops. After every step, every host's vxlan FDB (unicast MAC →
//! remote, permanent or learned) and neighbour table are read back and
//! compared with the model's.
//!
//! Time: the devices age with `ageing` [`AGEING_S`] instead of the
//! scenario's; a `wait` that ages entries in the model waits until the
//! kernel's `vxlan_cleanup` (every 10 s at most) has removed exactly those,
//! and a wait that ages nothing is not waited for. So the oracle checks
//! *which* entries age, not *when*; a schedule whose steps take longer than
//! [`AGEING_S`] before a wait could see the kernel age a learned entry
//! early, which the comparison would report.
//!
//! A daemon restart ([`KernelStep::Recreate`]) deletes the host's vxlan1
//! and creates it again: the new overlay sandbox's empty tables.
//!
//! What it does not do: run the real driver (its requests come from the
//! model; a different decision by the real driver is not seen), NetworkDB,
//! containers, bridges or ARP. Needs root, like the L2 oracle.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::netns::{self, in_netns, Namespaces};
use super::KernelError;
use crate::l2::netlink::{Errno, NlRequest};
use crate::overlay::cluster::{Cluster, ClusterState, KernelStep, NlCall};
use crate::sim::{Model, Trace};
use crate::wire::{build, EthernetAddress};

/// The `ageing` of the real vxlan devices, seconds.
pub const AGEING_S: u32 = 2;
/// How long a wait may take for the kernel to age what the model aged.
const AGE_DEADLINE: Duration = Duration::from_secs(20);

/// A host's vxlan tables as compared: FDB (unicast MAC → remote,
/// permanent) and neighbours (IP → MAC).
pub type Tables = (
    BTreeMap<EthernetAddress, (Ipv4Addr, bool)>,
    BTreeMap<Ipv4Addr, EthernetAddress>,
);

/// One disagreement between the model and the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The schedule step (0: the settled start).
    pub step: usize,
    /// The host.
    pub host: String,
    /// What differed, with both sides.
    pub what: String,
}

/// What a run found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterRun {
    /// Steps replayed (besides the start).
    pub steps: usize,
    /// Netlink requests sent to the kernels.
    pub requests: usize,
    /// Requests the kernel refused as the model said it would.
    pub refused: usize,
    /// Frames injected on the underlay.
    pub frames: usize,
    /// Learned entries the kernels aged as the model did.
    pub aged: usize,
    /// Every disagreement, in order (empty: the kernel agrees).
    pub mismatches: Vec<Mismatch>,
}

/// The namespaces of one run.
struct Topology {
    /// Deletes every namespace when dropped.
    _ns: Namespaces,
    /// The host namespaces, by host index.
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), KernelError> {
    netns::run("ip", args).map(drop)
}

impl Topology {
    fn build(model: &Cluster) -> Result<Topology, KernelError> {
        let prefix = netns::unique_prefix();
        let mut ns = Namespaces::new();
        let ul = format!("{prefix}-ul");
        ns.add(&ul)?;
        ip(&["-n", &ul, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &ul, "link", "set", "br0", "up"])?;
        let mut hosts = Vec::new();
        let spec = &model.spec;
        for (i, h) in spec.hosts.iter().enumerate() {
            let name = format!("{prefix}-h{i}");
            ns.add(&name)?;
            let port = format!("p{i}");
            ip(&[
                "-n", &ul, "link", "add", &port, "type", "veth", "peer", "name", "ul0", "netns",
                &name,
            ])?;
            ip(&["-n", &ul, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &ul, "link", "set", &port, "up"])?;
            let vtep = h.vtep.to_string();
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{vtep}/32"),
                "dev",
                "ul0",
            ])?;
            ip(&["-n", &name, "link", "set", "ul0", "up"])?;
            for other in spec.hosts.iter().filter(|o| o.vtep != h.vtep) {
                ip(&[
                    "-n",
                    &name,
                    "route",
                    "add",
                    &format!("{}/32", other.vtep),
                    "dev",
                    "ul0",
                ])?;
            }
            vxlan(model, i, &name)?;
            hosts.push(name);
        }
        Ok(Topology { _ns: ns, hosts })
    }

    /// A daemon restart's new overlay sandbox: host `h`'s vxlan1 deleted
    /// and created again, with empty tables.
    fn recreate(&self, model: &Cluster, h: usize) -> Result<(), KernelError> {
        ip(&["-n", &self.hosts[h], "link", "del", "vxlan1"])?;
        vxlan(model, h, &self.hosts[h])
    }

    /// Sends `call` to host `h`'s kernel; its answer.
    fn request(&self, h: usize, call: &NlCall) -> Result<Result<(), Errno>, KernelError> {
        let ns = self.hosts[h].as_str();
        let out = match *call {
            NlCall::Neigh(req, ip, mac, _) => {
                let (ip, mac) = (ip.to_string(), mac.to_string());
                let mut args = vec!["-n", ns, "neigh", req.verb(), &ip];
                if req != NlRequest::Del {
                    args.extend(["lladdr", &mac, "nud", "permanent"]);
                }
                args.extend(["dev", "vxlan1"]);
                netns::run("ip", &args)
            }
            NlCall::Fdb(req, mac, remote, _) => {
                let (mac, remote) = (mac.to_string(), remote.map(|r| r.to_string()));
                let mut args = vec!["-n", ns, "fdb", req.verb(), &mac, "dev", "vxlan1"];
                if let Some(r) = &remote {
                    args.extend(["dst", r]);
                }
                args.push("self");
                if req != NlRequest::Del {
                    args.push("permanent");
                }
                netns::run("bridge", &args)
            }
        };
        match out {
            Ok(_) => Ok(Ok(())),
            Err(KernelError::Failed(m)) => match Errno::from_stderr(&m) {
                Some(e) => Ok(Err(e)),
                None => Err(KernelError::Failed(m)),
            },
            Err(e) => Err(e),
        }
    }

    /// A VXLAN datagram from host `from`'s VTEP to host `to`'s, carrying a
    /// gratuitous ARP from `mac`.
    fn traffic(
        &self,
        model: &Cluster,
        from: usize,
        to: usize,
        mac: EthernetAddress,
    ) -> Result<(), KernelError> {
        let src = model.spec.hosts[from].vtep;
        let dst = model.spec.hosts[to].vtep;
        let vni = model.vxlan_config(to).vni;
        let mut datagram = vec![0x08, 0, 0, 0];
        datagram.extend_from_slice(&(vni << 8).to_be_bytes());
        datagram.extend(build::gratuitous_arp(mac, Ipv4Addr::new(169, 254, 0, 1)));
        in_netns(&self.hosts[from], || {
            let sock = UdpSocket::bind(SocketAddrV4::new(src, 0))
                .map_err(|e| KernelError::Failed(format!("bind {src}: {e}")))?;
            sock.send_to(&datagram, SocketAddrV4::new(dst, 4789))
                .map_err(|e| KernelError::Failed(format!("send to {dst}:4789: {e}")))?;
            Ok(())
        })
    }

    /// Host `h`'s vxlan tables.
    fn tables(&self, h: usize) -> Result<Tables, KernelError> {
        let ns = self.hosts[h].as_str();
        let fdb = vxlan_fdb(ns)?;
        let rows = netns::run_json("ip", &["-n", ns, "-j", "neigh", "show", "dev", "vxlan1"])?;
        let neigh = rows
            .iter()
            .filter_map(|r| {
                let ip: Ipv4Addr = r["dst"].as_str()?.parse().ok()?;
                let m: EthernetAddress = r["lladdr"].as_str()?.parse().ok()?;
                Some((ip, m))
            })
            .collect();
        Ok((fdb, neigh))
    }
}

/// The unicast entries of `vxlan1`'s FDB in namespace `ns`, read back with
/// `bridge -j fdb show dev vxlan1`: MAC → (remote, permanent). Learned
/// entries show as not permanent; the all-zeros and multicast entries
/// (flooding) are left out.
pub fn vxlan_fdb(ns: &str) -> Result<BTreeMap<EthernetAddress, (Ipv4Addr, bool)>, KernelError> {
    let rows = netns::run_json("bridge", &["-n", ns, "-j", "fdb", "show", "dev", "vxlan1"])?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let m: EthernetAddress = r["mac"].as_str()?.parse().ok()?;
            let dst: Ipv4Addr = r["dst"].as_str()?.parse().ok()?;
            let permanent = r["state"].as_str() == Some("permanent");
            m.is_unicast().then_some((m, (dst, permanent)))
        })
        .collect())
}

/// Creates host `i`'s vxlan1 in namespace `ns`.
fn vxlan(model: &Cluster, i: usize, ns: &str) -> Result<(), KernelError> {
    let config = model.vxlan_config(i);
    let vtep = model.spec.hosts[i].vtep.to_string();
    let (vni, age) = (config.vni.to_string(), AGEING_S.to_string());
    ip(&[
        "-n", ns, "link", "add", "vxlan1", "type", "vxlan", "id", &vni, "local", &vtep, "dstport",
        "4789", "dev", "ul0", "learning", "ageing", &age,
    ])?;
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        "vxlan1",
        "address",
        &config.mac.to_string(),
    ])?;
    ip(&["-n", ns, "link", "set", "vxlan1", "up"])
}

/// The model's tables of host `h` in `s`.
pub fn model_tables(s: &ClusterState, h: usize) -> Tables {
    let vx = &s.hosts[h].vx;
    (
        vx.fdb
            .iter()
            .map(|(m, f)| (*m, (f.remote, f.permanent)))
            .collect(),
        vx.neigh.iter().map(|(ip, n)| (*ip, n.mac)).collect(),
    )
}

/// Runs `schedule` (choices, as replay tokens carry them) of `model` on
/// the kernel and compares at every step.
pub fn run(model: &Cluster, schedule: &[u32]) -> Result<ClusterRun, KernelError> {
    run_with(model, schedule, &mut |_, _| Ok(()))
}

/// A test's hook into a run: called with the step about to be replayed and
/// the host namespaces.
pub type Meddle<'a> = dyn FnMut(usize, &[String]) -> Result<(), KernelError> + 'a;

/// [`run`], calling `meddle(step, host namespaces)` before each step is
/// replayed (steps from 1): a test's way to change a kernel behind the
/// model's back and see the comparison catch it.
pub fn run_with(
    model: &Cluster,
    schedule: &[u32],
    meddle: &mut Meddle,
) -> Result<ClusterRun, KernelError> {
    super::run::require_root()?;
    let topo = Topology::build(model)?;
    let mut out = ClusterRun::default();
    let hosts = &model.spec.hosts;
    // The settled start.
    for (h, calls) in model.init_calls().iter().enumerate() {
        driver(&topo, &mut out, 0, &hosts[h].name, h, calls)?;
    }
    let mut state = model.init_state();
    compare(&topo, &mut out, 0, model, &state)?;
    let mut actions = Vec::new();
    for (i, &choice) in schedule.iter().enumerate() {
        actions.clear();
        model.actions(&state, &mut actions);
        let action = actions.get(choice as usize).ok_or_else(|| {
            KernelError::Failed(format!(
                "step {}: the schedule chooses action {choice} of {}",
                i + 1,
                actions.len()
            ))
        })?;
        meddle(i + 1, &topo.hosts)?;
        let (next, step) = model.apply(&state, action, &mut Trace::off());
        match step {
            KernelStep::Driver { host, calls } => {
                driver(&topo, &mut out, i + 1, &hosts[host].name, host, &calls)?
            }
            KernelStep::Traffic { from, to, mac } => {
                topo.traffic(model, from, to, mac)?;
                out.frames += 1;
                // Wait for the receiver to have snooped it, if the model
                // says it learned something.
                let want = model_tables(&next, to).0.get(&mac).copied();
                let deadline = Instant::now() + Duration::from_secs(2);
                while topo.tables(to)?.0.get(&mac).copied() != want && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            KernelStep::Wait { aged, .. } => {
                let deadline = Instant::now() + AGE_DEADLINE;
                while !aged.is_empty() && Instant::now() < deadline {
                    let mut gone = true;
                    for &(h, mac) in &aged {
                        gone &= !topo.tables(h)?.0.contains_key(&mac);
                    }
                    if gone {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                out.aged += aged.len();
            }
            KernelStep::Recreate { host } => topo.recreate(model, host)?,
            KernelStep::Drivers(steps) => {
                for (host, calls) in &steps {
                    driver(&topo, &mut out, i + 1, &hosts[*host].name, *host, calls)?;
                }
            }
            KernelStep::None => {}
        }
        state = next;
        out.steps += 1;
        compare(&topo, &mut out, i + 1, model, &state)?;
    }
    drop(topo);
    Ok(out)
}

fn driver(
    topo: &Topology,
    out: &mut ClusterRun,
    step: usize,
    host_name: &str,
    host: usize,
    calls: &[NlCall],
) -> Result<(), KernelError> {
    for call in calls {
        let want = match *call {
            NlCall::Neigh(.., r) | NlCall::Fdb(.., r) => r,
        };
        let got = topo.request(host, call)?;
        out.requests += 1;
        if got.is_err() && got == want {
            out.refused += 1;
        }
        if got != want {
            out.mismatches.push(Mismatch {
                step,
                host: host_name.to_string(),
                what: format!("{call:?}: the kernel answered {got:?}, the model {want:?}"),
            });
        }
    }
    Ok(())
}

fn compare(
    topo: &Topology,
    out: &mut ClusterRun,
    step: usize,
    model: &Cluster,
    state: &ClusterState,
) -> Result<(), KernelError> {
    for (h, spec) in model.spec.hosts.iter().enumerate() {
        let (kfdb, kneigh) = topo.tables(h)?;
        let (mfdb, mneigh) = model_tables(state, h);
        if kfdb != mfdb {
            out.mismatches.push(Mismatch {
                step,
                host: spec.name.clone(),
                what: format!("vxlan1 FDB: kernel {kfdb:?}, model {mfdb:?}"),
            });
        }
        if kneigh != mneigh {
            out.mismatches.push(Mismatch {
                step,
                host: spec.name.clone(),
                what: format!("vxlan1 neighbours: kernel {kneigh:?}, model {mneigh:?}"),
            });
        }
    }
    Ok(())
}

/// The most schedules [`schedules`] enumerates before it falls back to a
/// sample.
pub const MAX_SCHEDULES: usize = 32;

/// The schedules the oracle runs for a variant: every maximal schedule
/// (to quiescence) when there are at most [`MAX_SCHEDULES`]; otherwise the
/// one that always takes the first enabled action and the breadth-first
/// counterexample of each violated property. Each comes with a label.
pub fn schedules(model: &Cluster) -> Vec<(String, Vec<u32>)> {
    let mut all = Vec::new();
    if enumerate(model, model.init_state(), &mut Vec::new(), &mut all) {
        return all
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("schedule {} of every one", i + 1), s))
            .collect();
    }
    let mut out: Vec<(String, Vec<u32>)> = Vec::new();
    let mut state = model.init_state();
    let (mut first, mut actions) = (Vec::new(), Vec::new());
    loop {
        actions.clear();
        model.actions(&state, &mut actions);
        let Some(a) = actions.first() else { break };
        state = model.next_state(&state, a, &mut Trace::off());
        first.push(0);
    }
    out.push(("the first enabled action at every step".into(), first));
    let report = crate::explore::bfs(model, &crate::explore::Options::default(), &mut |_| {});
    for (p, v) in model.properties().iter().zip(&report.violations) {
        if let Some(v) = v {
            if !out.iter().any(|(_, s)| *s == v.schedule) {
                out.push((
                    format!("the counterexample of {}", p.name),
                    v.schedule.clone(),
                ));
            }
        }
    }
    out
}

/// Every maximal schedule from `state` after `prefix`, into `out`; false
/// once there are more than [`MAX_SCHEDULES`].
fn enumerate(
    model: &Cluster,
    state: ClusterState,
    prefix: &mut Vec<u32>,
    out: &mut Vec<Vec<u32>>,
) -> bool {
    let mut actions = Vec::new();
    model.actions(&state, &mut actions);
    if actions.is_empty() {
        out.push(prefix.clone());
        return out.len() <= MAX_SCHEDULES;
    }
    for (i, a) in actions.iter().enumerate() {
        let next = model.next_state(&state, a, &mut Trace::off());
        prefix.push(i as u32);
        let ok = enumerate(model, next, prefix, out);
        prefix.pop();
        if !ok {
            return false;
        }
    }
    true
}
