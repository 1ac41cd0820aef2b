//! `netrace audit`: from the evidence on a host to scenarios and verdicts.
//!
//! Two sources: a dockerd debug log (`--docker-log`, this module and
//! [`dockerlog`]: IPAM scenarios, one per window of concurrent address
//! requests), and an overlay network namespace's tables, live or saved
//! (`--netns`, `--from-dump`: [`iproute`] parses iproute2's JSON,
//! [`live`] runs it or reads the dump, [`overlay`] reads the tables as the
//! L2 model's state and writes its scenario).
//!
//! **The log.**
//!
//! What it models: the log's address events ([`dockerlog`]) are put on
//! one timeline per network; the IPv4 assignments (`Assigning addresses
//! for endpoint ...`, the first of the two that libnetwork's
//! createEndpoint logs per endpoint) are grouped into windows, each
//! assignment starting at most `window` after the previous one (concurrent
//! `docker run`s); the releases of the network's pool since the previous
//! window become the scenario's setup, releases inside the window become
//! concurrent `rm` actors, and the window's assignments its `run` actors.
//! The scenario is written as TOML, every line with a comment naming the
//! log line it came from, and goes through the normal loader and checker.
//!
//! What it does not model: the log does not say which addresses were in
//! use, so the setup rests on a stated assumption ([`Held`]); it does not
//! carry over the addresses of earlier windows (each window starts from
//! its assumption); it does not read IPv6 pools, or requests for a preferred address (a
//! `RequestAddress` with an address is a `docker run --ip`: reported, not
//! modelled).

pub mod dockerlog;
pub mod iproute;
pub mod live;
pub mod overlay;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use dockerlog::{Event, Log};

/// A pool id as libnetwork logs it: `AddressSpace/Subnet[/ChildSubnet]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// As logged.
    pub id: String,
    /// `LocalDefault` (local scope, no store) or `GlobalDefault` (global
    /// scope: the handle lives in the cluster store), or another space.
    pub space: String,
    /// The subnet.
    pub subnet: Ipv4Net,
    /// The child subnet (`--ip-range`), if any.
    pub ip_range: Option<Ipv4Net>,
}

impl Pool {
    /// Parses `LocalDefault/172.17.0.0/16` (or with a child subnet).
    pub fn parse(id: &str) -> Option<Pool> {
        let (space, rest) = id.split_once('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (subnet, ip_range) = match parts.as_slice() {
            [a, l] => (format!("{a}/{l}").parse().ok()?, None),
            [a, l, b, m] => (
                format!("{a}/{l}").parse().ok()?,
                Some(format!("{b}/{m}").parse().ok()?),
            ),
            _ => return None,
        };
        Some(Pool {
            id: id.to_string(),
            space: space.to_string(),
            subnet,
            ip_range,
        })
    }

    /// True for a global-scope pool (store-backed handle).
    pub fn is_global(&self) -> bool {
        self.space.starts_with("Global")
    }
}

/// Which addresses were held before the window's releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Every allocatable address from the first one up to the highest
    /// released one, as on a daemon whose containers filled the pool in
    /// order (the default).
    UpToHighestRelease,
    /// These addresses (and the released ones), from `--held A-B`.
    Range(Ipv4Addr, Ipv4Addr),
}

/// How audit reads the log.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The file's name as shown in comments (`seed.log`).
    pub file: String,
    /// The longest gap between two assignments of one window.
    pub window_ns: i64,
    /// The setup assumption.
    pub held: Held,
    /// `--pool NETWORK=POOL`.
    pub pools: BTreeMap<String, String>,
    /// The profiles to check, the daemon's first (empty: from the log, or
    /// the default list).
    pub profiles: Vec<String>,
}

/// An event of the timeline with its line.
#[derive(Clone, Debug)]
pub struct At {
    /// 1-based line of the log.
    pub line: usize,
    /// As logged.
    pub time: String,
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
}

/// One window of concurrent requests on one network.
#[derive(Clone, Debug)]
pub struct Window {
    /// 1-based, over the whole log.
    pub index: usize,
    /// The network's name.
    pub network: String,
    /// Its pool, if known.
    pub pool: Option<Pool>,
    /// How the pool was tied to the network.
    pub pool_reason: String,
    /// The IPv4 assignments: endpoint and where.
    pub runs: Vec<(String, At)>,
    /// Releases of the pool since the previous window, before this one.
    pub releases_before: Vec<(Ipv4Addr, At)>,
    /// Releases of the pool while the window's assignments start.
    pub releases_during: Vec<(Ipv4Addr, At)>,
    /// The log lines the window rests on, in order, as text.
    pub timeline: Vec<String>,
}

impl Window {
    /// Two or more concurrent actors: worth a search.
    pub fn is_candidate(&self) -> bool {
        self.runs.len() + self.releases_during.len() >= 2 && !self.runs.is_empty()
    }

    /// Start and end (nanoseconds) of the window's assignments.
    pub fn span_ns(&self) -> (i64, i64) {
        let first = self.runs.first().map_or(0, |r| r.1.time_ns);
        let last = self.runs.last().map_or(0, |r| r.1.time_ns);
        (first, last)
    }

    /// The scenario's name.
    pub fn scenario_name(&self) -> String {
        let net: String = self
            .network
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("audit-{net}-window-{}", self.index)
    }
}

/// What the log says, arranged.
#[derive(Clone, Debug)]
pub struct Audit {
    /// Every window (candidates and single assignments).
    pub windows: Vec<Window>,
    /// The daemon's version, if the log says, and its line.
    pub version: Option<(String, usize)>,
    /// IPv4 assignments seen.
    pub assignments: usize,
    /// Second `Assigning` lines of an endpoint (createEndpoint's post-IPv6
    /// pass: no IPv4 request).
    pub second_passes: usize,
    /// Requests for a preferred address (`docker run --ip`), not modelled.
    pub preferred: Vec<usize>,
}

/// Arranges a parsed log into windows.
pub fn arrange(log: &Log, settings: &Settings) -> Audit {
    let show = |l: &dockerlog::Line| -> String {
        let what = match &l.event {
            Event::Release { pool, address } => format!("ReleaseAddress({pool}, {address})"),
            Event::Request { pool, preferred } => format!(
                "RequestAddress({pool}, {})",
                preferred.map_or("<nil>".to_string(), |a| a.to_string())
            ),
            Event::Assigning { endpoint, network } => {
                format!("Assigning addresses for endpoint {endpoint} on network {network}")
            }
            Event::Releasing { endpoint, network } => {
                format!("Releasing addresses for endpoint {endpoint} on network {network}")
            }
            Event::ExternalConnectivity { endpoint } => {
                format!("Programming external connectivity on endpoint {endpoint}")
            }
            Event::DaemonVersion { version } => format!("Docker daemon version {version}"),
        };
        format!("{}:{}  {}  {what}", settings.file, l.line, l.time)
    };
    let at = |l: &dockerlog::Line| At {
        line: l.line,
        time: l.time.clone(),
        time_ns: l.time_ns,
    };

    let mut version = None;
    let mut preferred = Vec::new();
    // IPv4 assignments per network; who holds an address on which network.
    let mut first_pass: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    let mut holding: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut second_passes = 0;
    let mut pools_seen: Vec<String> = Vec::new();
    // Network → pool votes: a request follows the latest unpaired assignment.
    let mut votes: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut unpaired: Vec<String> = Vec::new();
    for (i, l) in log.lines.iter().enumerate() {
        match &l.event {
            Event::DaemonVersion { version: v } => version = Some((v.clone(), l.line)),
            Event::Assigning { endpoint, network } => {
                let key = (network.clone(), endpoint.clone());
                if holding.get(&key).copied().unwrap_or(false) {
                    second_passes += 1;
                } else {
                    holding.insert(key, true);
                    first_pass
                        .entry(network.clone())
                        .or_default()
                        .push((endpoint.clone(), i));
                    unpaired.push(network.clone());
                }
            }
            Event::Releasing { endpoint, network } => {
                holding.insert((network.clone(), endpoint.clone()), false);
            }
            Event::Request { pool, preferred: p } => {
                if p.is_some() {
                    preferred.push(l.line);
                }
                if !pools_seen.contains(pool) {
                    pools_seen.push(pool.clone());
                }
                if let Some(net) = unpaired.pop() {
                    *votes
                        .entry(net)
                        .or_default()
                        .entry(pool.clone())
                        .or_default() += 1;
                }
            }
            Event::Release { pool, .. } => {
                if !pools_seen.contains(pool) {
                    pools_seen.push(pool.clone());
                }
            }
            Event::ExternalConnectivity { .. } => {}
        }
    }

    // Each network's pool, and why.
    let mut pool_of: BTreeMap<String, (String, String)> = BTreeMap::new();
    for net in first_pass.keys() {
        let chosen = if let Some(p) = settings.pools.get(net) {
            Some((p.clone(), "given by --pool".to_string()))
        } else if let Some((p, n)) = votes
            .get(net)
            .and_then(|v| v.iter().max_by_key(|(_, n)| **n))
        {
            Some((
                p.clone(),
                format!("{n} RequestAddress line(s) follow its assignments"),
            ))
        } else if pools_seen.len() == 1 && first_pass.len() == 1 {
            Some((
                pools_seen[0].clone(),
                "the only pool in the log, and the only network with assignments".to_string(),
            ))
        } else if net == "bridge" {
            Some((
                "LocalDefault/172.17.0.0/16".to_string(),
                "Docker's default for the default bridge (the log does not tie a pool to it; pass --pool bridge=POOL)".to_string(),
            ))
        } else {
            None
        };
        if let Some(c) = chosen {
            pool_of.insert(net.clone(), c);
        }
    }

    let mut windows = Vec::new();
    for (net, runs) in &first_pass {
        let (pool_id, pool_reason) = pool_of.get(net).cloned().unwrap_or_else(|| {
            (
                String::new(),
                "no pool is tied to this network in the log; pass --pool NETWORK=POOL".to_string(),
            )
        });
        let pool = Pool::parse(&pool_id);
        let mut runs: Vec<(String, usize)> = runs.clone();
        runs.sort_by_key(|(_, i)| (log.lines[*i].time_ns, *i));
        // Chains of assignments at most `window_ns` apart.
        let mut groups: Vec<Vec<(String, usize)>> = Vec::new();
        for r in runs {
            let t = log.lines[r.1].time_ns;
            match groups.last_mut() {
                Some(g) if t - log.lines[g.last().unwrap().1].time_ns <= settings.window_ns => {
                    g.push(r)
                }
                _ => groups.push(vec![r]),
            }
        }
        let mut previous_end = i64::MIN;
        for g in groups {
            let start = log.lines[g[0].1].time_ns;
            let end = log.lines[g.last().unwrap().1].time_ns;
            let mut releases_before = Vec::new();
            let mut releases_during = Vec::new();
            let mut timeline = Vec::new();
            for l in &log.lines {
                let ours = match &l.event {
                    Event::Release { pool: p, address } if *p == pool_id => {
                        if l.time_ns > previous_end && l.time_ns < start {
                            releases_before.push((*address, at(l)));
                            true
                        } else if l.time_ns >= start && l.time_ns <= end {
                            releases_during.push((*address, at(l)));
                            true
                        } else {
                            false
                        }
                    }
                    Event::Request { pool: p, .. } if *p == pool_id => {
                        l.time_ns >= start && l.time_ns <= end
                    }
                    Event::Assigning { network, .. } | Event::Releasing { network, .. }
                        if network == net =>
                    {
                        l.time_ns >= start && l.time_ns <= end
                    }
                    _ => false,
                };
                if ours {
                    timeline.push(show(l));
                }
            }
            previous_end = end;
            windows.push(Window {
                index: 0,
                network: net.clone(),
                pool: pool.clone(),
                pool_reason: pool_reason.clone(),
                runs: g
                    .iter()
                    .map(|(e, i)| (e.clone(), at(&log.lines[*i])))
                    .collect(),
                releases_before,
                releases_during,
                timeline,
            });
        }
    }
    windows.sort_by_key(|w| (w.span_ns().0, w.network.clone()));
    for (i, w) in windows.iter_mut().enumerate() {
        w.index = i + 1;
    }
    Audit {
        assignments: first_pass.values().map(Vec::len).sum(),
        windows,
        version,
        second_passes,
        preferred,
    }
}

/// The profile of a daemon version (`17.05.0-ce` → `libnetwork-17.05`):
/// before 17.06 no fix, 17.06 to 18.02 the network lock (#1808), from
/// 18.03 the handle lock held through the commit (#2105).
pub fn profile_of_version(version: &str) -> Option<&'static str> {
    let mut parts = version.split(['.', '-']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some(if (major, minor) < (17, 6) {
        "libnetwork-17.05"
    } else if (major, minor) < (18, 3) {
        "libnetwork-17.06"
    } else {
        "libnetwork-18.03"
    })
}

/// The local-scope profiles, oldest first: the fixes in order.
pub const LOCAL_PROFILES: [&str; 3] = ["libnetwork-17.05", "libnetwork-17.06", "libnetwork-18.03"];

/// The addresses the allocator hands out in order on a fresh pool:
/// the hosts of the range (or subnet) except the gateway.
fn allocatable(pool: &Pool, gateway: Ipv4Addr) -> impl Iterator<Item = Ipv4Addr> {
    let base = pool.ip_range.unwrap_or(pool.subnet);
    let (lo, hi) = (u32::from(base.network()), u32::from(base.broadcast()));
    (lo + 1..hi)
        .map(Ipv4Addr::from)
        .filter(move |a| *a != gateway)
}

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// What went into a window's scenario besides the TOML.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The TOML text.
    pub toml: String,
    /// The setup assumption in words.
    pub assumption: String,
    /// The variants' profiles, the daemon's first.
    pub profiles: Vec<String>,
}

/// Why a window's scenario cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwritable(pub String);

/// The IPAM scenario of one window.
pub fn scenario(
    w: &Window,
    settings: &Settings,
    profiles: &[String],
    profile_reason: &str,
) -> Result<Generated, Unwritable> {
    let pool = w.pool.as_ref().ok_or_else(|| {
        Unwritable(format!(
            "the pool of network {} is not known: {}",
            w.network, w.pool_reason
        ))
    })?;
    let gateway = Ipv4Addr::from(u32::from(pool.subnet.network()) + 1);
    let file = &settings.file;
    let released: Vec<Ipv4Addr> = w
        .releases_before
        .iter()
        .chain(&w.releases_during)
        .map(|(a, _)| *a)
        .collect();
    for a in &released {
        if !pool.subnet.contains(a) {
            return Err(Unwritable(format!(
                "{a} was released on pool {} but is outside its subnet",
                pool.id
            )));
        }
    }
    // The held set, as a bound on the allocatable addresses.
    let (held_lo, held_hi, range_hi, assumption) = match settings.held {
        Held::UpToHighestRelease => match released.iter().max() {
            Some(&hi) => {
                let lo = allocatable(pool, gateway).next().unwrap_or(hi);
                (
                    Some(lo),
                    Some(hi),
                    hi,
                    format!(
                        "the log does not list the addresses in use; {lo} to {hi} (the highest released) \
                         are taken to be held before the releases, as on a daemon whose containers filled \
                         the pool in order; pass --held A-B to say otherwise"
                    ),
                )
            }
            None => (
                None,
                None,
                Ipv4Addr::UNSPECIFIED,
                "no release precedes the window: the pool is taken as filled in order up to an \
                 unknown point, which the model starts as empty; pass --held A-B to say otherwise"
                    .to_string(),
            ),
        },
        Held::Range(a, b) => {
            if !pool.subnet.contains(&a) || !pool.subnet.contains(&b) {
                return Err(Unwritable(format!(
                    "--held {a}-{b} is not inside the subnet {} of network {}",
                    pool.subnet, w.network
                )));
            }
            // A released address was held, whatever the range says.
            let hi = released.iter().copied().chain([b]).max().unwrap_or(b);
            (
                Some(a),
                Some(hi),
                b,
                format!("{a} to {b} and the released addresses are held before the releases (given by --held)"),
            )
        }
    };
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Written by `netrace audit --docker-log {file}`: window {} on network {}.",
        w.index, w.network
    );
    let _ = writeln!(toml, "# Assumption: {assumption}.");
    let _ = writeln!(toml, "name = {}", quoted(&w.scenario_name()));
    let _ = writeln!(toml, "kind = \"ipam\"");
    let _ = writeln!(
        toml,
        "description = {}",
        quoted(&format!(
            "Window {} of {file}: {} release(s), then {} concurrent assignment(s) on network {} within {}.",
            w.index,
            released.len(),
            w.runs.len(),
            w.network,
            duration_words(w.span_ns().1 - w.span_ns().0),
        ))
    );
    let _ = writeln!(toml, "source = {}", quoted(file));
    let _ = writeln!(toml);
    let _ = writeln!(toml, "[network]");
    let first_run = &w.runs[0].1;
    let _ = writeln!(
        toml,
        "name = {}  # {file}:{}: the network of the assignments",
        quoted(&w.network),
        first_run.line
    );
    let _ = writeln!(
        toml,
        "subnet = \"{}\"  # pool {} ({})",
        pool.subnet, pool.id, w.pool_reason
    );
    let _ = writeln!(
        toml,
        "gateway = \"{gateway}\"  # the first host address, as libnetwork reserves it"
    );
    if let Some(r) = pool.ip_range {
        let _ = writeln!(toml, "ip_range = \"{r}\"  # the pool's child subnet");
    }
    let _ = writeln!(toml);
    let _ = writeln!(toml, "[setup]");
    if let (Some(lo), Some(hi)) = (held_lo, held_hi) {
        let order: Vec<Ipv4Addr> = allocatable(pool, gateway)
            .take_while(|a| *a <= hi)
            .collect();
        let free: Vec<String> = order
            .iter()
            .filter(|a| (**a < lo || **a > range_hi) && !released.contains(a))
            .map(|a| quoted(&a.to_string()))
            .collect();
        let _ = writeln!(
            toml,
            "run = {}  # assumption: containers filled {} to {hi} in order (first-fit after the network and gateway addresses); rm frees what was not held",
            order.len(),
            order.first().copied().unwrap_or(lo)
        );
        let mut rm: Vec<(String, String)> = Vec::new();
        let n_free = free.len();
        for (i, a) in free.into_iter().enumerate() {
            let c = if i == 0 {
                format!("outside {lo}-{range_hi}: free, by --held ({n_free} address(es))")
            } else {
                String::new()
            };
            rm.push((a, c));
        }
        for (a, at) in &w.releases_before {
            rm.push((
                quoted(&a.to_string()),
                format!("{file}:{} ReleaseAddress at {}", at.line, at.time),
            ));
        }
        let _ = writeln!(toml, "rm = [");
        for (r, c) in &rm {
            if c.is_empty() {
                let _ = writeln!(toml, "  {r},");
            } else {
                let _ = writeln!(toml, "  {r},  # {c}");
            }
        }
        let _ = writeln!(toml, "]");
    } else {
        let _ = writeln!(toml, "run = 0  # assumption: nothing held (see above)");
    }
    for (e, at) in &w.runs {
        let _ = writeln!(toml);
        let _ = writeln!(toml, "[[actor]]");
        let _ = writeln!(
            toml,
            "run = {}  # {file}:{} Assigning addresses at {}",
            quoted(e),
            at.line,
            at.time
        );
    }
    for (a, at) in &w.releases_during {
        let _ = writeln!(toml);
        let _ = writeln!(toml, "[[actor]]");
        let _ = writeln!(
            toml,
            "rm = \"{a}\"  # {file}:{} ReleaseAddress at {}, during the window",
            at.line, at.time
        );
    }
    let _ = writeln!(toml);
    let _ = writeln!(toml, "[bounds]");
    let _ = writeln!(toml, "max_states = 3000000");
    let _ = writeln!(toml, "max_depth = 200");
    for (i, p) in profiles.iter().enumerate() {
        let _ = writeln!(toml);
        let _ = writeln!(toml, "[[variant]]");
        let _ = writeln!(toml, "name = {}", quoted(p));
        let _ = writeln!(toml, "profile = {}", quoted(p));
        let note = if i == 0 {
            format!("the daemon's profile: {profile_reason}")
        } else {
            "a later fix, for comparison".to_string()
        };
        let _ = writeln!(toml, "note = {}", quoted(&note));
        // Many interleaved runs without a lock: a breadth-first search
        // cannot end; PCT finds the duplicate (as scenarios/scale/ does).
        if p == "libnetwork-17.05" && w.runs.len() > 6 {
            let _ = writeln!(
                toml,
                "explore = {{ strategy = \"pct\", seed = 1, runs = 200, depth = 3 }}"
            );
        }
    }
    Ok(Generated {
        toml,
        assumption,
        profiles: profiles.to_vec(),
    })
}

/// `4.8 ms`, `1.2 s`.
pub fn duration_words(ns: i64) -> String {
    if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools() {
        let p = Pool::parse("LocalDefault/172.17.0.0/16").unwrap();
        assert_eq!(p.subnet.to_string(), "172.17.0.0/16");
        assert!(!p.is_global());
        let p = Pool::parse("GlobalDefault/10.0.0.0/16/10.0.1.0/24").unwrap();
        assert!(p.is_global());
        assert_eq!(p.ip_range.unwrap().to_string(), "10.0.1.0/24");
        assert!(Pool::parse("nonsense").is_none());
    }

    #[test]
    fn versions() {
        assert_eq!(profile_of_version("17.05.0-ce"), Some("libnetwork-17.05"));
        assert_eq!(profile_of_version("1.13.1"), Some("libnetwork-17.05"));
        assert_eq!(profile_of_version("17.12.1-ce"), Some("libnetwork-17.06"));
        assert_eq!(profile_of_version("18.03.0-ce"), Some("libnetwork-18.03"));
        assert_eq!(profile_of_version("dev"), None);
    }
}
