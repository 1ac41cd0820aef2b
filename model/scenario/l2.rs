//! `kind = "l2"` scenario files: an overlay network over hosts, containers
//! with scripts, and variants (driver profiles with fixes) with expected
//! verdicts. See `docs/scenario-format.md`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::kind::{CheckedModel, Describe, System, Variant, VariantOf};
use super::{
    builtin_profile, check_name, check_variant_names, parse_cidr, parse_expect, parse_ipv4,
    InputError, RawBounds, RawExplore, Scenario, Source,
};
use crate::check::Run;
use crate::l2::bridge::AGEING_TIME_S;
use crate::l2::endpoint::NudState;
use crate::l2::neigh::NudState as NeighNud;
use crate::l2::neigh::{NeighParams, KERNEL_DEFAULTS};
use crate::overlay::system::{
    ContainerSpec, ContainerStart, EpTiming, HostSpec, L2Spec, OverlaySystem, Preset, ScriptStep,
    TimeSpec, MAX_CONTAINERS, MAX_HORIZON_MS, MAX_HOSTS, MAX_SCRIPT_STEPS,
};
use crate::overlay::timed::{
    ContainerTiming, Flow, FlowKind, ReplyDelay, Thresholds, TimedSpec, TIMED_PROPERTIES,
};
use crate::overlay::{topology, Fix, OverlayProfile, PROFILE_NAMES};
use crate::wire::EthernetAddress;
use ipnet::Ipv4Net;
use std::any::Any;

/// The properties an L2 scenario checks, in matrix order.
pub const PROPERTIES: [&str; 5] = [
    "l2.single_arp_reply",
    "l2.fdb_correct",
    "l2.delivery",
    "l2.no_storm",
    "l2.converges",
];

/// A loaded L2 scenario.
#[derive(Debug)]
pub struct L2Scenario {
    /// The scenario's name.
    pub name: String,
    /// The profile-independent description.
    pub spec: L2Spec,
    /// The variants, in file order.
    pub variants: Vec<L2Variant>,
    /// The timed part (`[[traffic]]`, `reply_delay`, `neigh`,
    /// `[simulate]`) for `netrace simulate`; defaults when absent.
    pub timed: TimedSpec,
    /// Per variant (in the order of `variants`): the expected timed
    /// verdicts (`simulate_expect`), `true` = "violated", `false` = "not
    /// violated".
    pub simulate_expect: Vec<BTreeMap<String, bool>>,
}

/// One variant: a driver profile with fixes, its model, and what is
/// expected of it.
pub type L2Variant = VariantOf<OverlaySystem, OverlayProfile>;

impl L2Scenario {
    /// The picture of every variant (the first drawn) or of the one named;
    /// `None` when no variant has that name.
    pub fn picture(&self, variant: Option<&str>) -> Option<topology::Picture> {
        let drawn: Vec<(&str, &OverlaySystem)> = self
            .variants
            .iter()
            .filter(|v| variant.is_none_or(|n| v.name == n))
            .map(|v| (v.name.as_str(), &v.model))
            .collect();
        if drawn.is_empty() {
            return None;
        }
        Some(topology::picture(&self.name, &self.spec, &drawn))
    }
}

impl System for L2Scenario {
    fn kind(&self) -> &'static str {
        "l2"
    }
    fn variants(&self) -> Vec<&dyn Variant> {
        self.variants.iter().map(|v| v as &dyn Variant).collect()
    }
    fn topology_dot(&self, variant: Option<&str>) -> Option<String> {
        let p = self.picture(variant)?;
        Some(topology::dot(&p, &self.spec))
    }
    fn topology_svg(&self, variant: Option<&str>) -> Option<String> {
        let p = self.picture(variant)?;
        Some(topology::svg(&p, &self.spec))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl CheckedModel for OverlaySystem {
    /// The price of a fix: unicast frames flooded because a bridge did not
    /// know the destination, on the schedule that always takes the first
    /// enabled action.
    fn extra(&self, run: Run) -> Vec<(String, u64)> {
        let floods = self.canonical_count("unicast_floods", run.options.bounds.max_depth);
        let mut out = vec![("floods".to_string(), floods)];
        // The clock's bound: a verdict holds up to this time.
        if let Some(t) = self.time() {
            out.push(("horizon_ms".to_string(), t.horizon_ms));
        }
        out
    }
}

impl Describe for OverlayProfile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        OverlayProfile::summary(self)
    }
}

/// The largest `ageing_time_s`: about 11.5 days. The kernel takes more
/// (`ageing_time` is a clock_t), but no scenario needs it and simulated
/// time must not wrap.
pub const MAX_AGEING_TIME_S: u32 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    network: Spanned<RawNetwork>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
    #[serde(default)]
    container: Vec<Spanned<RawContainer>>,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
    #[serde(default)]
    traffic: Vec<Spanned<RawTraffic>>,
    simulate: Option<Spanned<RawSimulate>>,
    time: Option<Spanned<RawTime>>,
}

/// `[time]`: the explorer's clock (model/overlay/system/timers.rs).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    horizon: Spanned<String>,
}

/// One `[[traffic]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraffic {
    from: Spanned<String>,
    to: Spanned<String>,
    kind: Spanned<String>,
    every: Spanned<String>,
    burst: Option<Spanned<i64>>,
    start: Option<Spanned<String>>,
}

/// A container's `reply_delay`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplyDelay {
    p: Spanned<f64>,
    min: Spanned<String>,
    max: Spanned<String>,
}

/// `[simulate]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimulate {
    duration: Option<Spanned<String>>,
    runs: Option<Spanned<i64>>,
    timeout: Option<Spanned<String>>,
    loss: Option<Spanned<f64>>,
    no_flap: Option<Spanned<RawNoFlap>>,
    recovers_within: Option<Spanned<String>>,
    arp_entries_elsewhere: Option<Spanned<i64>>,
}

/// `[simulate] no_flap`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoFlap {
    moves: Spanned<i64>,
    window: Spanned<String>,
}

/// The longest simulated time a scenario may ask for: one day.
pub const MAX_SIM_US: u64 = 86_400_000_000;

/// At most this many runs.
pub const MAX_RUNS: u32 = 100_000;

/// A time span ("200ms", "1s", "2.5s", "15m", "1h") in microseconds;
/// `None` when it is not one.
pub fn parse_span_us(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit.trim() {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" | "min" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    let us = n * scale;
    (us.is_finite() && us >= 0.0 && us <= MAX_SIM_US as f64).then(|| us.round() as u64)
}

fn span(src: &Source, v: &Spanned<String>, key: &str, min_us: u64) -> Result<u64, InputError> {
    match parse_span_us(v.get_ref()) {
        Some(us) if us >= min_us => Ok(us),
        _ => Err(src.error(
            v.span(),
            format!("{key} = {:?} is not a usable time span", v.get_ref()),
            format!(
                "write a number with a unit (us, ms, s, m, h), e.g. \"200ms\" or \"15m\", \
                 from {} µs up to one day",
                min_us
            ),
        )),
    }
}

/// A container's `neigh = { ... }`: sysctl names as under
/// /proc/sys/net/ipv4/neigh/<dev>/, checked by `NeighSysctls::validate`.
fn parse_neigh(
    src: &Source,
    table: &Spanned<BTreeMap<String, Spanned<i64>>>,
) -> Result<NeighParams, InputError> {
    let mut sys = KERNEL_DEFAULTS;
    for (k, v) in table.get_ref() {
        let slot = match k.as_str() {
            "base_reachable_time_ms" => &mut sys.base_reachable_time_ms,
            "delay_first_probe_time" => &mut sys.delay_first_probe_time,
            "retrans_time_ms" => &mut sys.retrans_time_ms,
            "ucast_solicit" => &mut sys.ucast_solicit,
            "mcast_solicit" => &mut sys.mcast_solicit,
            "mcast_resolicit" => &mut sys.mcast_resolicit,
            "app_solicit" => &mut sys.app_solicit,
            "gc_stale_time" => &mut sys.gc_stale_time,
            "locktime" => &mut sys.locktime,
            "unres_qlen_bytes" => &mut sys.unres_qlen_bytes,
            other => {
                return Err(src.error(
                    table.span(),
                    format!("neigh has no sysctl {other:?}"),
                    "per-interface sysctls: base_reachable_time_ms, delay_first_probe_time, \
                     retrans_time_ms, ucast_solicit, mcast_solicit, mcast_resolicit, app_solicit, \
                     gc_stale_time, locktime, unres_qlen_bytes (gc_thresh1 is table-wide)",
                ))
            }
        };
        *slot = *v.get_ref();
    }
    sys.validate().map_err(|e| {
        let at = table
            .get_ref()
            .get(e.sysctl)
            .map_or(table.span(), |v| v.span());
        src.error(
            at,
            e.to_string(),
            "see /proc/sys/net/ipv4/neigh/default/ for the defaults",
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default = "default_name")]
    name: String,
    subnet: Spanned<String>,
    vni: Option<Spanned<i64>>,
    max_hops: Option<Spanned<i64>>,
    ageing_time_s: Option<Spanned<i64>>,
}

fn default_name() -> String {
    "ov".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    vtep: Spanned<String>,
    join_peers: Option<bool>,
    #[serde(default)]
    vxlan_neigh: Vec<Spanned<RawNeigh>>,
    #[serde(default)]
    vxlan_fdb: Vec<Spanned<RawFdb>>,
}

/// A pre-programmed neighbour entry on vxlan1.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeigh {
    ip: Spanned<String>,
    mac: Spanned<String>,
    nud: Option<Spanned<String>>,
}

/// The states `vxlan_neigh` takes. `reachable` is left out: the kernel
/// turns it stale after a random 15 to 45 s, a timer the model does not
/// have on vxlan1.
pub const VXLAN_NUD_STATES: [&str; 3] = ["permanent", "noarp", "stale"];

/// A pre-programmed entry of a container's ARP cache.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEth0Neigh {
    ip: Spanned<String>,
    mac: Spanned<String>,
    nud: Option<Spanned<String>>,
}

/// The states `eth0_neigh` takes, as `ip neigh replace ... nud STATE`
/// spells them.
pub const ETH0_NUD_STATES: [&str; 4] = ["permanent", "noarp", "reachable", "stale"];

/// A container's pre-programmed ARP cache, checked against the subnet and
/// the container's own address.
fn parse_eth0_neigh(
    src: &Source,
    rc: &RawContainer,
    subnet: Ipv4Net,
    own: Ipv4Addr,
) -> Result<Vec<(Ipv4Addr, EthernetAddress, NudState)>, InputError> {
    let mut out: Vec<(Ipv4Addr, EthernetAddress, NudState)> = Vec::new();
    for n in &rc.eth0_neigh {
        let rn = n.get_ref();
        let ip = parse_ipv4(src, &rn.ip, "ip")?;
        if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() || ip == own
        {
            return Err(src.error(
                rn.ip.span(),
                format!("{ip} is not another host address of the overlay subnet {subnet}"),
                "eth0_neigh entries are for the container's peers on the overlay (not itself)",
            ));
        }
        let mac = parse_mac(src, &rn.mac)?;
        let nud = match rn.nud.as_ref().map(|v| v.get_ref().as_str()) {
            None | Some("permanent") => NudState::Permanent,
            Some("noarp") => NudState::Noarp,
            Some("reachable") => NudState::Reachable,
            Some("stale") => NudState::Stale,
            Some(other) => {
                return Err(src.error(
                    rn.nud.as_ref().expect("some").span(),
                    format!("nud = {other:?} is not a state eth0_neigh takes"),
                    format!("write one of {}", ETH0_NUD_STATES.join(", ")),
                ))
            }
        };
        if out.iter().any(|(x, _, _)| *x == ip) {
            return Err(src.error(
                n.span(),
                format!("eth0_neigh lists {ip} twice"),
                "a neighbour table holds one entry per address: keep one",
            ));
        }
        out.push((ip, mac, nud));
    }
    Ok(out)
}

/// A pre-programmed FDB entry of vxlan1.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFdb {
    mac: Spanned<String>,
    dst: Spanned<String>,
}

/// A unicast MAC (`02:42:0a:00:00:03`).
fn parse_mac(src: &Source, text: &Spanned<String>) -> Result<EthernetAddress, InputError> {
    let mac: EthernetAddress = text.get_ref().parse().map_err(|_| {
        src.error(
            text.span(),
            format!("mac = {:?} is not a MAC address", text.get_ref()),
            "write six hex bytes with colons, e.g. mac = \"02:42:0a:00:00:03\"",
        )
    })?;
    if !mac.is_unicast() {
        return Err(src.error(
            text.span(),
            format!("{mac} is not a unicast MAC"),
            "vxlan1's entries here are for containers: give a unicast MAC (first byte even)",
        ));
    }
    Ok(mac)
}

/// The pre-programmed tables of one host, checked against the subnet.
fn parse_preset(src: &Source, rh: &RawHost, subnet: Ipv4Net) -> Result<Preset, InputError> {
    let mut preset = Preset {
        join_peers: rh.join_peers.unwrap_or(true),
        ..Preset::default()
    };
    for n in &rh.vxlan_neigh {
        let rn = n.get_ref();
        let ip = parse_ipv4(src, &rn.ip, "ip")?;
        if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() {
            return Err(src.error(
                rn.ip.span(),
                format!("{ip} is not a host address of the overlay subnet {subnet}"),
                "vxlan1's neighbour entries are for overlay addresses",
            ));
        }
        let mac = parse_mac(src, &rn.mac)?;
        let nud = match rn.nud.as_ref().map(|v| v.get_ref().as_str()) {
            None | Some("permanent") => NeighNud::Permanent,
            Some("noarp") => NeighNud::Noarp,
            Some("stale") => NeighNud::Stale,
            Some(other) => {
                return Err(src.error(
                    rn.nud.as_ref().expect("some").span(),
                    format!("nud = {other:?} is not a state vxlan_neigh takes"),
                    format!(
                        "write one of {} (reachable turns stale on a kernel timer the model does not have)",
                        VXLAN_NUD_STATES.join(", ")
                    ),
                ))
            }
        };
        if preset.vxlan_neigh.iter().any(|(x, _, _)| *x == ip) {
            return Err(src.error(
                n.span(),
                format!("vxlan_neigh lists {ip} twice"),
                "a neighbour table holds one entry per address: keep one",
            ));
        }
        preset.vxlan_neigh.push((ip, mac, nud));
    }
    for f in &rh.vxlan_fdb {
        let rf = f.get_ref();
        let mac = parse_mac(src, &rf.mac)?;
        let dst = parse_ipv4(src, &rf.dst, "dst")?;
        if subnet.contains(&dst) {
            return Err(src.error(
                rf.dst.span(),
                format!("dst {dst} lies inside the overlay subnet {subnet}"),
                "dst is a VTEP (underlay) address, or 0.0.0.0 for a bridge-local entry",
            ));
        }
        if preset.vxlan_fdb.iter().any(|(x, _)| *x == mac) {
            return Err(src.error(
                f.span(),
                format!("vxlan_fdb lists {mac} twice"),
                "the model's vxlan FDB holds one remote per MAC: keep one",
            ));
        }
        preset.vxlan_fdb.push((mac, dst));
    }
    Ok(preset)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    name: Spanned<String>,
    host: Spanned<String>,
    ip: Spanned<String>,
    /// `false`: `eth0` starts with IFF_NOARP (`ip link set eth0 arp off`).
    #[serde(default = "yes")]
    arp: bool,
    /// Its ARP cache at the start: `ip neigh replace IP lladdr MAC dev
    /// eth0 nud STATE`.
    #[serde(default)]
    eth0_neigh: Vec<Spanned<RawEth0Neigh>>,
    #[serde(default = "yes")]
    arp_responder: bool,
    #[serde(default)]
    script: Vec<Spanned<String>>,
    reply_delay: Option<Spanned<RawReplyDelay>>,
    neigh: Option<Spanned<BTreeMap<String, Spanned<i64>>>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    fixes: Vec<Spanned<String>>,
    explore: Option<RawExplore>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    simulate_expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// Loads an L2 scenario.
pub fn load(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let raw: Raw = src.parse("see docs/scenario-format.md for the keys of an l2 scenario")?;
    check_name(src, &raw.name, "scenario")?;
    let net = raw.network.get_ref();
    let subnet = parse_cidr(src, &net.subnet, "subnet")?;
    if subnet.trunc() != subnet {
        return Err(src.error(
            net.subnet.span(),
            format!("subnet {subnet} has host bits set"),
            format!("write the network address: subnet = \"{}\"", subnet.trunc()),
        ));
    }
    if subnet.prefix_len() > 29 {
        return Err(src.error(
            net.subnet.span(),
            format!("subnet {subnet} is too small for an overlay"),
            "use a prefix of /29 or shorter",
        ));
    }
    let vni = match &net.vni {
        None => 256,
        Some(v) if (1..=0xff_ffff).contains(v.get_ref()) => *v.get_ref() as u32,
        Some(v) => {
            return Err(src.error(
                v.span(),
                format!("vni = {} is out of range", v.get_ref()),
                "a VXLAN VNI is 1 to 16777215",
            ))
        }
    };
    let max_hops = match &net.max_hops {
        None => 16,
        Some(v) if (1..=250).contains(v.get_ref()) => *v.get_ref() as u8,
        Some(v) => {
            return Err(src.error(
                v.span(),
                format!("max_hops = {} is impossible", v.get_ref()),
                "give a hop bound from 1 to 250",
            ))
        }
    };
    let ageing_time_s = match &net.ageing_time_s {
        None => AGEING_TIME_S,
        Some(v) if (1..=i64::from(MAX_AGEING_TIME_S)).contains(v.get_ref()) => *v.get_ref() as u32,
        Some(v) => {
            return Err(src.error(
                v.span(),
                format!("ageing_time_s = {} is out of range", v.get_ref()),
                format!(
                    "give the bridge and vxlan ageing time in seconds, 1 to {MAX_AGEING_TIME_S} \
                     (the kernel's default is {AGEING_TIME_S})"
                ),
            ))
        }
    };
    if raw.host.is_empty() {
        return Err(src.error(
            raw.network.span(),
            format!("an l2 scenario has 1 to {MAX_HOSTS} hosts"),
            "add [[host]] tables with name and vtep",
        ));
    }
    if let Some(extra) = raw.host.get(MAX_HOSTS) {
        return Err(src.error(
            extra.span(),
            format!(
                "{} hosts: an l2 scenario has at most {MAX_HOSTS}",
                raw.host.len()
            ),
            format!("remove this [[host]] table and those after it (at most {MAX_HOSTS} hosts)"),
        ));
    }
    if let Some(extra) = raw.container.get(MAX_CONTAINERS) {
        return Err(src.error(
            extra.span(),
            format!(
                "{} containers: an l2 scenario has at most {MAX_CONTAINERS}",
                raw.container.len()
            ),
            format!(
                "remove this [[container]] table and those after it (at most {MAX_CONTAINERS} containers)"
            ),
        ));
    }
    for c in &raw.container {
        let script = &c.get_ref().script;
        if let Some(extra) = script.get(MAX_SCRIPT_STEPS) {
            return Err(src.error(
                extra.span(),
                format!(
                    "container {}'s script has {} steps: at most {MAX_SCRIPT_STEPS} are supported",
                    c.get_ref().name.get_ref(),
                    script.len()
                ),
                format!(
                    "shorten the script to {MAX_SCRIPT_STEPS} steps (this is step {}); split the work over more containers or use \"wait N\" for long pauses",
                    MAX_SCRIPT_STEPS + 1
                ),
            ));
        }
    }
    let mut hosts: Vec<HostSpec> = Vec::new();
    for h in &raw.host {
        let rh = h.get_ref();
        let vtep = parse_ipv4(src, &rh.vtep, "vtep")?;
        if hosts.iter().any(|x| x.name == *rh.name.get_ref()) {
            return Err(src.error(
                rh.name.span(),
                format!("host {} is defined twice", rh.name.get_ref()),
                "give every host its own name",
            ));
        }
        if hosts.iter().any(|x| x.vtep == vtep) || subnet.contains(&vtep) {
            return Err(src.error(
                rh.vtep.span(),
                format!("vtep {vtep} is used twice or lies inside the overlay subnet"),
                "give every host its own underlay address outside the overlay subnet",
            ));
        }
        hosts.push(HostSpec {
            name: rh.name.get_ref().clone(),
            vtep,
            preset: parse_preset(src, rh, subnet)?,
        });
    }
    let gateway = Ipv4Addr::from(u32::from(subnet.network()) + 1);
    let mut containers: Vec<ContainerSpec> = Vec::new();
    for c in &raw.container {
        let rc = c.get_ref();
        check_name(src, &rc.name, "container")?;
        let host = hosts
            .iter()
            .position(|h| h.name == *rc.host.get_ref())
            .ok_or_else(|| {
                src.error(
                    rc.host.span(),
                    format!("no host named {}", rc.host.get_ref()),
                    "host names are those of the [[host]] tables",
                )
            })?;
        let ip = parse_ipv4(src, &rc.ip, "ip")?;
        if !subnet.contains(&ip)
            || ip == subnet.network()
            || ip == subnet.broadcast()
            || ip == gateway
        {
            return Err(src.error(
                rc.ip.span(),
                format!("{ip} is not a container address of {subnet}"),
                format!("use a host address of {subnet} other than the gateway {gateway}"),
            ));
        }
        if let Some(x) = containers.iter().find(|x| x.name == *rc.name.get_ref()) {
            return Err(src.error(
                rc.name.span(),
                format!("container {} is defined twice", x.name),
                "give every container its own name",
            ));
        }
        if let Some(x) = containers.iter().find(|x| x.ip == ip) {
            return Err(src.error(
                rc.ip.span(),
                format!("address {ip} is already container {}'s", x.name),
                "give every container its own address",
            ));
        }
        containers.push(ContainerSpec {
            name: rc.name.get_ref().clone(),
            host,
            ip,
            arp_responder: rc.arp_responder,
            script: Vec::new(),
            start: ContainerStart {
                noarp: !rc.arp,
                eth0_neigh: parse_eth0_neigh(src, rc, subnet, ip)?,
                joins_late: false,
            },
        });
    }
    if containers.is_empty() {
        return Err(src.error(
            raw.name.span(),
            "the scenario has no containers",
            "add [[container]] tables",
        ));
    }
    // Scripts, once every name is known.
    for (i, c) in raw.container.iter().enumerate() {
        for step in &c.get_ref().script {
            let parsed = parse_step(step.get_ref(), &containers, i).map_err(|why| {
                src.error(
                    step.span(),
                    format!("script step {:?}: {why}", step.get_ref()),
                    "steps are \"resolve X\", \"probe X\", \"send X\", \"forget X\", \"wait SECONDS\", \"garp\", \"arp off\", \"arp on\" and \"join\", X a container name",
                )
            })?;
            if parsed == ScriptStep::Join {
                if containers[i].start.joins_late {
                    return Err(src.error(
                        step.span(),
                        "a second \"join\" step",
                        "a container's join event reaches the other hosts once: keep one \"join\"",
                    ));
                }
                if hosts.len() < 2 {
                    return Err(src.error(
                        step.span(),
                        "\"join\" in a scenario with one host",
                        "a join event programs the container on the other hosts' vxlan1: add a second [[host]]",
                    ));
                }
                containers[i].start.joins_late = true;
            }
            containers[i].script.push(parsed);
        }
    }
    let bounds = raw.bounds.resolve(src)?;
    let spec = L2Spec {
        network: net.name.clone(),
        subnet,
        vni,
        hosts,
        containers,
        max_hops,
        ageing_time_s,
    };
    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &PROFILE_NAMES,
    )?;
    let timed = parse_timed(src, &raw, &spec)?;
    let time = parse_time(src, &raw, &timed)?;
    let mut simulate_expect = Vec::new();
    let mut variants: Vec<L2Variant> = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let mut profile =
            builtin_profile(src, &rv.profile, &PROFILE_NAMES, OverlayProfile::builtin)?;
        for f in &rv.fixes {
            let fix = Fix::parse(f.get_ref()).ok_or_else(|| {
                let names: Vec<&str> = Fix::ALL.iter().map(|(n, _)| *n).collect();
                src.error(
                    f.span(),
                    format!("unknown fix {:?}", f.get_ref()),
                    format!("fixes: {}", names.join(", ")),
                )
            })?;
            if !profile.fixes.contains(&fix) {
                profile.fixes.push(fix);
            }
        }
        let expect = parse_expect(src, &rv.expect, &PROPERTIES)?;
        let mut sim_expect = BTreeMap::new();
        for (k, val) in &rv.simulate_expect {
            if !TIMED_PROPERTIES.contains(&k.get_ref().as_str()) {
                return Err(src.error(
                    k.span(),
                    format!("unknown timed property {}", k.get_ref()),
                    format!("netrace simulate checks: {}", TIMED_PROPERTIES.join(", ")),
                ));
            }
            let violated = match val.get_ref().as_str() {
                "violated" => true,
                "not violated" => false,
                other => {
                    return Err(src.error(
                        val.span(),
                        format!("{other:?} cannot be expected of a sampled simulation"),
                        "expect \"violated\" or \"not violated\" (a simulation never shows that a property holds)",
                    ))
                }
            };
            sim_expect.insert(k.get_ref().clone(), violated);
        }
        simulate_expect.push(sim_expect);
        let model = OverlaySystem::new(&spec, &profile).map_err(|e| {
            src.error(
                rv.name.span(),
                format!("variant {}: {e}", rv.name.get_ref()),
                "see docs/scenario-format.md",
            )
        })?;
        let model = match &time {
            None => model,
            Some((t, at)) => model
                .with_time(t.clone())
                .map_err(|e| src.error(at.clone(), e, "see docs/scenario-format.md, \"[time]\""))?,
        };
        variants.push(L2Variant {
            name: rv.name.get_ref().clone(),
            note: rv.note.clone(),
            profile,
            model,
            expect,
            explore: RawExplore::resolve_opt(&rv.explore, src)?,
        });
    }
    Scenario::loaded(
        src,
        path,
        &raw.name,
        raw.description,
        bounds,
        &raw.explore,
        Box::new(L2Scenario {
            name: raw.name.get_ref().clone(),
            spec,
            variants,
            timed,
            simulate_expect,
        }),
    )
}

/// The `[time]` table, with where it is (for errors about it).
fn parse_time(
    src: &Source,
    raw: &Raw,
    timed: &TimedSpec,
) -> Result<Option<(TimeSpec, std::ops::Range<usize>)>, InputError> {
    let Some(t) = &raw.time else { return Ok(None) };
    let horizon_us = span(src, &t.get_ref().horizon, "horizon", 10_000)?;
    let horizon_ms = horizon_us / 1000;
    if horizon_ms > MAX_HORIZON_MS {
        return Err(src.error(
            t.get_ref().horizon.span(),
            format!(
                "horizon = {:?} is longer than an hour",
                t.get_ref().horizon.get_ref()
            ),
            "the explorer's clock is a bound of an exhaustive search: give 10ms to 1h (a \
             minute covers every neighbour timer at the kernel's defaults)",
        ));
    }
    let containers = timed
        .containers
        .iter()
        .map(|c| EpTiming {
            params: c.neigh.clone(),
            hold_ms: c.reply_delay.filter(|rd| rd.p > 0.0).map(|rd| {
                let lo = if rd.p < 1.0 { 0 } else { rd.min_us / 1000 };
                (lo, rd.max_us.div_ceil(1000))
            }),
        })
        .collect();
    Ok(Some((
        TimeSpec {
            horizon_ms,
            containers,
        },
        t.span(),
    )))
}

/// The timed part of the scenario.
fn parse_timed(src: &Source, raw: &Raw, spec: &L2Spec) -> Result<TimedSpec, InputError> {
    let by_name = |v: &Spanned<String>| -> Result<usize, InputError> {
        spec.containers
            .iter()
            .position(|c| c.name == *v.get_ref())
            .ok_or_else(|| {
                src.error(
                    v.span(),
                    format!("no container named {}", v.get_ref()),
                    "from and to name [[container]] tables",
                )
            })
    };
    let mut flows = Vec::new();
    for t in &raw.traffic {
        let rt = t.get_ref();
        let from = by_name(&rt.from)?;
        let to = by_name(&rt.to)?;
        if from == to {
            return Err(src.error(
                t.span(),
                "a flow from a container to itself",
                "give two different containers",
            ));
        }
        let kind = match rt.kind.get_ref().as_str() {
            "ping" => FlowKind::Ping,
            "tcp" => FlowKind::Tcp,
            other => {
                return Err(src.error(
                    rt.kind.span(),
                    format!("kind = {other:?} is not a traffic kind"),
                    "kind = \"ping\" (never confirms the neighbour) or \"tcp\" (request/response; replies confirm it)",
                ))
            }
        };
        let every_us = span(src, &rt.every, "every", 10_000)?;
        let burst = match &rt.burst {
            None => 1,
            Some(b) if (1..=100).contains(b.get_ref()) => *b.get_ref() as u32,
            Some(b) => {
                return Err(src.error(
                    b.span(),
                    format!("burst = {} is out of range", b.get_ref()),
                    "give 1 to 100 requests per period",
                ))
            }
        };
        if u64::from(burst) * 1_000 >= every_us {
            return Err(src.error(
                t.span(),
                format!(
                    "a burst of {burst} (1 ms apart) does not fit in every = {:?}",
                    rt.every.get_ref()
                ),
                "make every longer than burst milliseconds",
            ));
        }
        let start_us = match &rt.start {
            None => 0,
            Some(v) => span(src, v, "start", 0)?,
        };
        flows.push(Flow {
            from,
            to,
            kind,
            every_us,
            burst,
            start_us,
            late_us: 0,
        });
    }
    let mut containers = Vec::new();
    for c in &raw.container {
        let rc = c.get_ref();
        let neigh = match &rc.neigh {
            None => NeighParams::default(),
            Some(t) => parse_neigh(src, t)?,
        };
        let reply_delay = match &rc.reply_delay {
            None => None,
            Some(rd) => {
                let r = rd.get_ref();
                if !(0.0..=1.0).contains(r.p.get_ref()) {
                    return Err(src.error(
                        r.p.span(),
                        format!("p = {} is not a probability", r.p.get_ref()),
                        "give p from 0 to 1 (0.02 = one answer in fifty is late)",
                    ));
                }
                let min_us = span(src, &r.min, "min", 0)?;
                let max_us = span(src, &r.max, "max", 0)?;
                if max_us < min_us || max_us > 60_000_000 {
                    return Err(src.error(
                        r.max.span(),
                        format!("max = {:?} is below min or above 60 s", r.max.get_ref()),
                        "give min <= max <= 60s",
                    ));
                }
                Some(ReplyDelay {
                    p: *r.p.get_ref(),
                    min_us,
                    max_us,
                })
            }
        };
        containers.push(ContainerTiming {
            neigh,
            reply_delay,
            relay_us: Vec::new(),
        });
    }
    let mut out = TimedSpec {
        flows,
        containers,
        duration_us: 900_000_000,
        runs: 100,
        timeout_us: 1_000_000,
        thresholds: Thresholds::default(),
        entries_elsewhere: 0,
    };
    if let Some(sim) = &raw.simulate {
        let rs = sim.get_ref();
        if let Some(d) = &rs.duration {
            out.duration_us = span(src, d, "duration", 1_000_000)?;
        }
        if let Some(r) = &rs.runs {
            if !(1..=i64::from(MAX_RUNS)).contains(r.get_ref()) {
                return Err(src.error(
                    r.span(),
                    format!("runs = {} is out of range", r.get_ref()),
                    format!("give 1 to {MAX_RUNS} runs"),
                ));
            }
            out.runs = *r.get_ref() as u32;
        }
        if let Some(t) = &rs.timeout {
            out.timeout_us = span(src, t, "timeout", 1_000)?;
        }
        if let Some(l) = &rs.loss {
            if !(0.0..=1.0).contains(l.get_ref()) {
                return Err(src.error(
                    l.span(),
                    format!("loss = {} is not a fraction", l.get_ref()),
                    "give the largest acceptable loss per flow, 0 to 1 (0.01 = 1%)",
                ));
            }
            out.thresholds.loss = *l.get_ref();
        }
        if let Some(nf) = &rs.no_flap {
            let n = nf.get_ref();
            if !(1..=1_000_000).contains(n.moves.get_ref()) {
                return Err(src.error(
                    n.moves.span(),
                    format!("moves = {} is out of range", n.moves.get_ref()),
                    "give the most moves of one MAC allowed in the window, 1 to 1000000",
                ));
            }
            out.thresholds.flap_moves = *n.moves.get_ref() as u32;
            out.thresholds.flap_window_us = span(src, &n.window, "window", 1_000)?;
        }
        if let Some(n) = &rs.arp_entries_elsewhere {
            if !(0..=1_000_000).contains(n.get_ref()) {
                return Err(src.error(
                    n.span(),
                    format!("arp_entries_elsewhere = {} is out of range", n.get_ref()),
                    "give the number of ARP entries in the machine's other namespaces, 0 to 1000000",
                ));
            }
            out.entries_elsewhere = *n.get_ref() as usize;
        }
        if let Some(r) = &rs.recovers_within {
            out.thresholds.recover_us = span(src, r, "recovers_within", 1_000)?;
        }
    }
    Ok(out)
}

fn parse_step(text: &str, containers: &[ContainerSpec], me: usize) -> Result<ScriptStep, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let target = |name: &str| -> Result<usize, String> {
        let t = containers
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| format!("no container named {name}"))?;
        if t == me {
            return Err("a container does not talk to itself".into());
        }
        Ok(t)
    };
    match words.as_slice() {
        ["resolve", x] => Ok(ScriptStep::Resolve(target(x)?)),
        ["probe", x] => Ok(ScriptStep::Probe(target(x)?)),
        ["send", x] => Ok(ScriptStep::Send(target(x)?)),
        ["forget", x] => Ok(ScriptStep::Forget(target(x)?)),
        ["wait", n] => match n.parse::<u32>() {
            Ok(n) if (1..=86_400).contains(&n) => Ok(ScriptStep::Wait(n)),
            _ => Err("wait takes 1 to 86400 seconds".into()),
        },
        ["garp"] => Ok(ScriptStep::Garp),
        ["arp", "off"] => Ok(ScriptStep::Arp(false)),
        ["arp", "on"] => Ok(ScriptStep::Arp(true)),
        ["join"] => Ok(ScriptStep::Join),
        _ => Err("unknown step".into()),
    }
}
