//! `kind = "overlay-cluster"` scenario files: hosts with their VTEPs, the
//! containers on them, a script of lifecycle steps (start, stop, a node
//! failed and rejoining, a container's traffic, time passing), the
//! control plane's fault budget, and variants (driver profiles) with
//! expected verdicts. The model is [`crate::overlay::cluster`]; the keys
//! are in docs/scenario-format.md.

use std::any::Any;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::kind::{CheckedModel, Describe, System, Variant, VariantOf};
use super::{
    builtin_profile, check_name, check_variant_names, fault_budget, parse_expect, parse_ipv4,
    InputError, RawBounds, RawExplore, Scenario, Source,
};
use crate::overlay::cluster::{
    Classic, Cluster, ClusterSpec, DriverProfile, EndpointSpec, Faults, FdbProgram, HostSpec,
    NetDb, Op, PeerDb,
};
use crate::wire::EthernetAddress;

/// The properties an overlay-cluster scenario checks, in matrix order.
pub const PROPERTIES: [&str; 3] = [
    "overlay.converged",
    "overlay.reachable",
    "overlay.no_local_peer",
];

/// The driver profiles, by name.
pub const PROFILES: [&str; 14] = [
    "libnetwork-pre-1433",
    "libnetwork-pre-1893",
    "libnetwork-pre-1902",
    "libnetwork-pre-1935",
    "libnetwork-1935",
    "moby-pre-50106",
    "moby-50106",
    "moby-29",
    "moby-53663",
    "libnetwork-pre-1639",
    "libnetwork-1639",
    "libnetwork-1935-classic",
    "libnetwork-pre-1727",
    "libnetwork-1727",
];

/// The most bulk-sync rounds a variant's `sync_miss` may cut a host off:
/// an hour of 30 s rounds.
const MAX_SYNC_MISS: i64 = 120;

/// The most hosts, endpoints and script steps a scenario may have: the
/// space grows with every event in flight.
const MAX_HOSTS: usize = 8;
const MAX_ENDPOINTS: usize = 16;
const MAX_SCRIPT: usize = 32;

/// A loaded overlay-cluster scenario.
#[derive(Debug)]
pub struct ClusterScenario {
    /// The variants, in file order.
    pub variants: Vec<VariantOf<Cluster, Profile>>,
}

/// A named driver profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Its name (`moby-29`).
    pub name: String,
    /// The driver it stands for.
    pub driver: DriverProfile,
}

impl Profile {
    /// The built-in profile `name`.
    pub fn builtin(name: &str) -> Option<Profile> {
        let map = |delete_wrong_field| DriverProfile {
            fdb: FdbProgram::Replace,
            peer_db: PeerDb::Map,
            fdb_cnt: false,
            delete_wrong_field,
            stale_purge: true,
            atomic_init: true,
            classic: None,
            networkdb: None,
        };
        // Classic Swarm in Feb 2017 (e1565882 and its parent): the map and
        // osl of then, serf and the miss path.
        let classic = |ignore_old| DriverProfile {
            classic: Some(Classic { ignore_old }),
            ..map(false)
        };
        let driver = match name {
            // 03f44066^ (2016): a stale delete returns at once; the sandbox
            // init replays a snapshot of the db (peerDbWg).
            "libnetwork-pre-1433" => DriverProfile {
                stale_purge: false,
                atomic_init: false,
                ..map(false)
            },
            // 0a9aaf80^ (July 2017): #1433's purge, the init still a
            // snapshot replayed later.
            "libnetwork-pre-1893" => DriverProfile {
                atomic_init: false,
                ..map(false)
            },
            "libnetwork-pre-1902" => map(true),
            "libnetwork-pre-1935" => map(false),
            // #1935's osl programs with NeighSet; fdbCnt came with #50106
            // (its FDB entry per (IP, MAC) key stood in for a count).
            "libnetwork-1935" => DriverProfile {
                fdb_cnt: false,
                ..DriverProfile::moby(FdbProgram::Replace)
            },
            // The osl of 2017-2025 programmed every entry with NeighSet.
            "moby-pre-50106" => DriverProfile {
                fdb_cnt: false,
                ..DriverProfile::moby(FdbProgram::Replace)
            },
            "moby-50106" => DriverProfile::moby(FdbProgram::Replace),
            "moby-29" => DriverProfile::moby(FdbProgram::Add),
            "moby-53663" => DriverProfile::moby(FdbProgram::Replace),
            "libnetwork-pre-1639" => classic(false),
            "libnetwork-1639" => classic(true),
            // Classic Swarm on #1935's driver (7447e54d, Oct 2017): the set
            // per IP, `peerDeleteOp` deletes a remote peer's kernel entries
            // whether the db had it or not, and `watchMiss` programs
            // without a db entry (396db359's `updateDB = false`).
            "libnetwork-1935-classic" => DriverProfile {
                fdb_cnt: false,
                classic: Some(Classic { ignore_old: true }),
                ..DriverProfile::moby(FdbProgram::Replace)
            },
            // April 2017 (ac502ef8 = 6d514496^): the driver of then (the map,
            // #1433's purge, the init snapshot before #1893) under NetworkDB
            // with reapInterval 60 s; #1727 (6d514496) raised it to 30 min.
            "libnetwork-pre-1727" | "libnetwork-1727" => DriverProfile {
                atomic_init: false,
                networkdb: Some(NetDb {
                    reap_s: if name == "libnetwork-1727" { 1800 } else { 60 },
                    bulk_sync_s: 30,
                }),
                ..map(false)
            },
            _ => return None,
        };
        Some(Profile {
            name: name.to_string(),
            driver,
        })
    }
}

impl Describe for Profile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        match self.name.as_str() {
            "libnetwork-pre-1433" => "overlay driver (libnetwork, 2016, before #1433): one peer entry per (IP, MAC); a delete whose endpoint ID does not match returns at once and the sandbox neighbour cache keeps the old (VTEP, MAC); the sandbox init replays a snapshot of the db".into(),
            "libnetwork-pre-1893" => "overlay driver (libnetwork, July 2017, before #1893): #1433's cache purge on a stale delete; a lazily created sandbox is programmed from a snapshot of the db replayed later, not atomically with the events that follow".into(),
            "libnetwork-pre-1902" => "overlay driver (libnetwork, Aug 2017, before #1902): one peer entry per (IP, MAC); a remote delete is handed the localPeer flag as updateDb and only cleans the sandbox cache".into(),
            "libnetwork-pre-1935" => "overlay driver (libnetwork 17.06-17.09, before #1935): one peer entry per (IP, MAC), overwritten by the latest add; a delete with another endpoint ID touches only the sandbox cache".into(),
            "libnetwork-1935" => "overlay driver with libnetwork #1935: a set of endpoints per key, the first programmed, the next restored; no fdbCnt".into(),
            "moby-pre-50106" => "overlay driver before moby #50106: every peer delete deletes its MAC's FDB entry (no fdbCnt); FDB entries programmed with NeighSet".into(),
            "libnetwork-pre-1639" => "classic overlay driver (libnetwork, Feb 2017, before #1639): serf user events into the 2017 peer map; serf joins with ignoreOld = false, so a restarting node is replayed old events; l3misses resolved by a serf query".into(),
            "libnetwork-1639" => "classic overlay driver with libnetwork #1639: serf joins with ignoreOld = true (old events ignored); peers already running are learned through l3misses and serf queries".into(),
            "libnetwork-1935-classic" => "classic overlay driver on libnetwork #1935 (Oct 2017): serf joins with ignoreOld = true; a set of endpoints per IP; an l3miss is programmed without a db entry, and a leave deletes a remote peer's kernel entries whether the db had it or not".into(),
            "libnetwork-pre-1727" => "swarm-mode overlay driver (libnetwork, April 2017, before #1727) under NetworkDB: deletes kept as tombstones for reapInterval = 60 s, a bulk sync with one peer every 30 s; the 2017 peer map".into(),
            "libnetwork-1727" => "swarm-mode overlay driver with libnetwork #1727 (Docker 17.06): NetworkDB keeps deletes for reapInterval = 30 min; bulk sync every 30 s; the 2017 peer map".into(),
            "moby-50106" => "overlay driver with moby #50106: fdbCnt, one FDB entry per (VTEP, MAC) for all the neighbour entries that need it; FDB entries programmed with NeighSet".into(),
            _ => match self.driver.fdb {
                FdbProgram::Add => {
                    "overlay driver (moby 29.x): fdbCnt; peer FDB entries added with NeighAdd (exclusive)".into()
                }
                FdbProgram::Replace => {
                    "overlay driver with moby #53663: fdbCnt; peer FDB entries programmed with NeighSet (replace)"
                        .into()
                }
            },
        }
    }
}

impl System for ClusterScenario {
    fn kind(&self) -> &'static str {
        "overlay-cluster"
    }
    fn variants(&self) -> Vec<&dyn Variant> {
        self.variants.iter().map(|v| v as &dyn Variant).collect()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl CheckedModel for Cluster {}

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
    script: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    network: RawNetwork,
    host: Vec<Spanned<RawHost>>,
    endpoint: Vec<Spanned<RawEndpoint>>,
    #[serde(default)]
    faults: RawFaults,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    ageing_s: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    vtep: Spanned<String>,
    #[serde(default)]
    lazy: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: Spanned<String>,
    host: Spanned<String>,
    ip: Spanned<String>,
    mac: Option<Spanned<String>>,
    live: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    drop: Option<Spanned<i64>>,
    duplicate: Option<Spanned<i64>>,
    reorder: Option<Spanned<i64>>,
    replay: Option<Spanned<i64>>,
    sync_miss: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    explore: Option<RawExplore>,
    sync_miss: Option<Spanned<i64>>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// The index of the host or endpoint (`what`) named `name` among `names`,
/// or an error at `span` listing the names there are.
fn named(
    src: &Source,
    names: &[&str],
    name: &str,
    span: std::ops::Range<usize>,
    what: &str,
) -> Result<usize, InputError> {
    names.iter().position(|n| *n == name).ok_or_else(|| {
        src.error(
            span,
            format!("no {what} named {name:?}"),
            format!("{what}s: {}", names.join(", ")),
        )
    })
}

/// libnetwork's MAC for an IPv4 endpoint: `02:42` and the address.
pub fn mac_of(ip: Ipv4Addr) -> EthernetAddress {
    let o = ip.octets();
    EthernetAddress([0x02, 0x42, o[0], o[1], o[2], o[3]])
}

const SCRIPT_HINT: &str = "script steps: \"start NAME\", \"stop NAME\", \"move NAME -> HOST\", \"move NAME -> HOST after SECONDS\", \"fail HOST\", \"rejoin HOST\", \"send NAME -> HOST\", \"wait SECONDS\", \"sync HOST\", \"restart HOST\", \"arp HOST -> NAME\"";

/// Loads an overlay-cluster scenario.
pub fn load(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let raw: Raw =
        src.parse("see docs/scenario-format.md for the keys of an overlay-cluster scenario")?;
    check_name(src, &raw.name, "scenario")?;
    let mut hosts: Vec<HostSpec> = Vec::new();
    if raw.host.len() < 2 || raw.host.len() > MAX_HOSTS {
        return Err(src.error(
            raw.name.span(),
            format!("the scenario has {} hosts", raw.host.len()),
            format!("give 2 to {MAX_HOSTS} [[host]] tables with name and vtep"),
        ));
    }
    for h in &raw.host {
        let r = h.get_ref();
        check_name(src, &r.name, "host")?;
        if hosts.iter().any(|x| x.name == *r.name.get_ref()) {
            return Err(src.error(
                r.name.span(),
                format!("host {} is defined twice", r.name.get_ref()),
                "give every host its own name",
            ));
        }
        let vtep = parse_ipv4(src, &r.vtep, "vtep")?;
        if hosts.iter().any(|x| x.vtep == vtep) {
            return Err(src.error(
                r.vtep.span(),
                format!("VTEP {vtep} is used twice"),
                "give every host its own underlay address",
            ));
        }
        hosts.push(HostSpec {
            name: r.name.get_ref().clone(),
            vtep,
            lazy: r.lazy,
        });
    }
    let host_names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let host_index =
        |name: &Spanned<String>| named(src, &host_names, name.get_ref(), name.span(), "host");
    let mut endpoints: Vec<EndpointSpec> = Vec::new();
    if raw.endpoint.is_empty() || raw.endpoint.len() > MAX_ENDPOINTS {
        return Err(src.error(
            raw.name.span(),
            format!("the scenario has {} endpoints", raw.endpoint.len()),
            format!("give 1 to {MAX_ENDPOINTS} [[endpoint]] tables with name, host and ip"),
        ));
    }
    for e in &raw.endpoint {
        let r = e.get_ref();
        check_name(src, &r.name, "endpoint")?;
        if endpoints.iter().any(|x| x.name == *r.name.get_ref()) {
            return Err(src.error(
                r.name.span(),
                format!("endpoint {} is defined twice", r.name.get_ref()),
                "give every endpoint its own name",
            ));
        }
        let ip = parse_ipv4(src, &r.ip, "ip")?;
        let mac = match &r.mac {
            None => mac_of(ip),
            Some(m) => match m.get_ref().parse::<EthernetAddress>() {
                Ok(mac) if mac.0[0] & 1 == 0 => mac,
                _ => {
                    return Err(src.error(
                        m.span(),
                        format!("mac = {:?} is not a unicast MAC address", m.get_ref()),
                        "give six hex bytes like \"02:42:0a:00:01:03\" (or leave mac out: libnetwork's 02:42 + the IP)",
                    ))
                }
            },
        };
        let host = host_index(&r.host)?;
        let live = r.live.unwrap_or(true);
        if live && hosts[host].lazy {
            return Err(src.error(
                e.span(),
                format!(
                    "endpoint {} runs on {} from the start, whose sandbox is lazy",
                    r.name.get_ref(),
                    hosts[host].name
                ),
                "a lazy host's sandbox is created by its first container: give its endpoints live = false and start them in the script, or drop lazy",
            ));
        }
        endpoints.push(EndpointSpec {
            name: r.name.get_ref().clone(),
            host,
            ip,
            mac,
            live,
        });
    }
    if raw.script.get_ref().len() > MAX_SCRIPT {
        return Err(src.error(
            raw.script.span(),
            format!("the script has {} steps", raw.script.get_ref().len()),
            format!("give at most {MAX_SCRIPT} steps"),
        ));
    }
    let mut script = Vec::new();
    for step in raw.script.get_ref() {
        let span = step.span();
        let text = step.get_ref().trim();
        let words: Vec<&str> = text.split_whitespace().collect();
        let host_named = |n: &str| named(src, &host_names, n, span.clone(), "host");
        let ep_names: Vec<String> = endpoints.iter().map(|e| e.name.clone()).collect();
        let ep_names: Vec<&str> = ep_names.iter().map(String::as_str).collect();
        let ep_index = |name: &str, span| named(src, &ep_names, name, span, "endpoint");
        if let ["move", n, "->", h, rest @ ..] = words.as_slice() {
            let e = ep_index(n, span.clone())?;
            let to = host_named(h)?;
            let after = match rest {
                [] => None,
                ["after", secs] => match secs.parse::<u32>() {
                    Ok(n) if (1..=86_400).contains(&n) => Some(n),
                    _ => {
                        return Err(src.error(
                            span,
                            format!(
                                "move ... after {secs}: not a number of seconds from 1 to 86400"
                            ),
                            SCRIPT_HINT,
                        ))
                    }
                },
                _ => {
                    return Err(src.error(
                        span,
                        format!("unknown script step {text:?}"),
                        SCRIPT_HINT,
                    ))
                }
            };
            if endpoints[e].host == to {
                return Err(src.error(
                    span,
                    format!("{n} already runs on {h}"),
                    "move a container to another host",
                ));
            }
            let name = format!("{n}@{h}");
            if endpoints.iter().any(|x| x.name == name) {
                return Err(src.error(
                    span,
                    format!("{n} is moved to {h} twice (the endpoint {name} exists)"),
                    "move a container to a host once; start or stop the moved one by its name NAME@HOST",
                ));
            }
            if endpoints.len() >= MAX_ENDPOINTS {
                return Err(src.error(
                    span,
                    format!("the move needs a new endpoint and the scenario has {MAX_ENDPOINTS}"),
                    format!("give at most {MAX_ENDPOINTS} endpoints, counting one per move"),
                ));
            }
            // The task rescheduled: a new endpoint (its own ID) with the
            // same IP and MAC on the other host.
            let moved = EndpointSpec {
                name,
                host: to,
                live: false,
                ..endpoints[e].clone()
            };
            endpoints.push(moved);
            script.push(Op::Stop(e));
            if let Some(secs) = after {
                script.push(Op::Wait(secs));
            }
            script.push(Op::Start(endpoints.len() - 1));
            continue;
        }
        let op = match words.as_slice() {
            ["start", n] => Op::Start(ep_index(n, span.clone())?),
            ["stop", n] => Op::Stop(ep_index(n, span.clone())?),
            ["fail", h] => Op::Fail(host_named(h)?),
            ["rejoin", h] => Op::Rejoin(host_named(h)?),
            ["sync", h] => Op::Sync(host_named(h)?),
            ["restart", h] => Op::Restart(host_named(h)?),
            ["arp", h, "->", n] => {
                let from = host_named(h)?;
                let e = ep_index(n, span.clone())?;
                if endpoints[e].host == from {
                    return Err(src.error(
                        span,
                        format!("{n} runs on {h}: its address is not resolved through vxlan"),
                        "ask for a container of another host",
                    ));
                }
                Op::Arp(from, e)
            }
            ["send", n, "->", h] => {
                let e = ep_index(n, span.clone())?;
                let to = host_named(h)?;
                if endpoints[e].host == to {
                    return Err(src.error(
                        span,
                        format!("{n} runs on {h}: its traffic there does not cross vxlan"),
                        "send a container's traffic to another host",
                    ));
                }
                Op::Send(e, to)
            }
            ["wait", secs] => match secs.parse::<u32>() {
                Ok(n) if (1..=86_400).contains(&n) => Op::Wait(n),
                _ => {
                    return Err(src.error(
                        span,
                        format!("wait {secs}: not a number of seconds from 1 to 86400"),
                        SCRIPT_HINT,
                    ))
                }
            },
            _ => return Err(src.error(span, format!("unknown script step {text:?}"), SCRIPT_HINT)),
        };
        script.push(op);
    }
    let ageing_s = match &raw.network.ageing_s {
        None => 300,
        Some(a) if (1..=1_000_000).contains(a.get_ref()) => *a.get_ref() as u32,
        Some(a) => {
            return Err(src.error(
                a.span(),
                format!("ageing_s = {} is out of range", a.get_ref()),
                "give 1 to 1000000 seconds (vxlan's default is 300)",
            ))
        }
    };
    let budget = |v: &Option<Spanned<i64>>, key: &str| fault_budget(src, v, key);
    let faults = Faults {
        drop: budget(&raw.faults.drop, "drop")?,
        duplicate: budget(&raw.faults.duplicate, "duplicate")?,
        reorder: budget(&raw.faults.reorder, "reorder")?,
        replay: budget(&raw.faults.replay, "replay")?,
        sync_miss: budget(&raw.faults.sync_miss, "sync_miss")?,
    };
    let spec = ClusterSpec {
        hosts,
        endpoints,
        script,
        ageing_s,
        faults,
    };
    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &PROFILES,
    )?;
    let mut variants = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let profile = builtin_profile(src, &rv.profile, &PROFILES, Profile::builtin)?;
        let mut spec = spec.clone();
        if profile.driver.networkdb.is_some() {
            if let Some(op) = spec
                .script
                .iter()
                .find(|op| matches!(op, Op::Fail(_) | Op::Rejoin(_) | Op::Restart(_)))
            {
                return Err(src.error(
                    rv.profile.span(),
                    format!(
                        "profile {} runs NetworkDB, whose handling of a node's failure, rejoin and restart is not modelled (script step {})",
                        rv.profile.get_ref(),
                        match op {
                            Op::Fail(_) => "fail",
                            Op::Rejoin(_) => "rejoin",
                            _ => "restart",
                        }
                    ),
                    "use fail, rejoin and restart with the other profiles, or leave them out of a NetworkDB scenario (see docs/scenario-format.md)",
                ));
            }
        }
        if let Some(n) = &rv.sync_miss {
            if profile.driver.networkdb.is_none() {
                return Err(src.error(
                    n.span(),
                    format!("sync_miss with profile {}, which has no bulk sync", rv.profile.get_ref()),
                    "give sync_miss only to a NetworkDB profile (libnetwork-pre-1727, libnetwork-1727)",
                ));
            }
            if !(0..=MAX_SYNC_MISS).contains(n.get_ref()) {
                return Err(src.error(
                    n.span(),
                    format!("sync_miss = {} is out of range", n.get_ref()),
                    format!("give sync_miss = 0 to {MAX_SYNC_MISS} (bulk-sync rounds a host may be cut off)"),
                ));
            }
            spec.faults.sync_miss = *n.get_ref() as u8;
        }
        variants.push(VariantOf {
            name: rv.name.get_ref().clone(),
            note: rv.note.clone(),
            model: Cluster::new(spec, profile.driver.clone()),
            profile,
            expect: parse_expect(src, &rv.expect, &PROPERTIES)?,
            explore: RawExplore::resolve_opt(&rv.explore, src)?,
        });
    }
    Scenario::loaded(
        src,
        path,
        &raw.name,
        raw.description,
        raw.bounds.resolve(src)?,
        &raw.explore,
        Box::new(ClusterScenario { variants }),
    )
}
