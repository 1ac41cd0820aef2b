//! `kind = "ipam"` scenario files: a network, a sequential setup, the
//! concurrent `run`/`rm` actors, and variants (profiles) with expected
//! verdicts. See `docs/scenario-format.md`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::kind::{CheckedModel, Describe, System, Variant, VariantOf};
use super::{
    builtin_profile, check_name, check_variant_names, fault_budget, parse_cidr, parse_expect,
    parse_ipv4, InputError, RawBounds, RawExplore, Scenario, Source,
};
use crate::ipam::bitseq::Version;
use crate::ipam::profile::{Profile, PROFILE_NAMES};
use crate::ipam::system::{
    ActorKind, ActorSpec, BuildError, Faults, IpamSpec, IpamSystem, SetupOp, Target,
};
use std::any::Any;

/// The properties an IPAM scenario checks, in matrix order.
pub const PROPERTIES: [&str; 3] = ["ipam.unique", "ipam.accounted", "ipam.counter"];

/// The properties a scenario with `[recovery] endpoints = true` checks
/// besides [`PROPERTIES`].
pub const RECOVERY_PROPERTIES: [&str; 2] = ["store.restartable", "ipam.no_leak_after_recovery"];

/// A loaded IPAM scenario.
#[derive(Debug)]
pub struct IpamScenario {
    /// The profile-independent description.
    pub spec: IpamSpec,
    /// The variants, in file order.
    pub variants: Vec<IpamVariant>,
}

/// One variant: a profile, its model, and what is expected of it.
pub type IpamVariant = VariantOf<IpamSystem, Profile>;

impl System for IpamScenario {
    fn kind(&self) -> &'static str {
        "ipam"
    }
    fn variants(&self) -> Vec<&dyn Variant> {
        self.variants.iter().map(|v| v as &dyn Variant).collect()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl CheckedModel for IpamSystem {}

impl Describe for Profile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        Profile::summary(self)
    }
}

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
    setup: Option<Spanned<toml::Value>>,
    #[serde(default)]
    actor: Vec<Spanned<RawActor>>,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    faults: RawFaults,
    #[serde(default)]
    recovery: Option<Spanned<RawRecovery>>,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecovery {
    #[serde(default)]
    endpoints: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    store_timeouts: Option<Spanned<i64>>,
    lost_answers: Option<Spanned<i64>>,
    lost_requests: Option<Spanned<i64>>,
    crashes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default = "default_network_name")]
    name: String,
    subnet: Spanned<String>,
    gateway: Option<Spanned<String>>,
    ip_range: Option<Spanned<String>>,
}

fn default_network_name() -> String {
    "bridge".to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRuns {
    Count(i64),
    Names(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    run: Option<RawRuns>,
    #[serde(default)]
    rm: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    run: Option<Spanned<String>>,
    rm: Option<Spanned<String>>,
    #[serde(default)]
    daemon: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    serial: Option<bool>,
    network_lock: Option<bool>,
    hold_handle_lock: Option<bool>,
    force_disconnect: Option<Spanned<bool>>,
    search: Option<Spanned<String>>,
    explore: Option<RawExplore>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

fn target_str(v: &str) -> Target {
    match v.parse::<Ipv4Addr>() {
        Ok(a) => Target::Address(a),
        Err(_) => Target::Name(v.to_string()),
    }
}

/// Loads an IPAM scenario.
pub fn load(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let raw: Raw = src.parse("see docs/scenario-format.md for the keys of an ipam scenario")?;
    check_name(src, &raw.name, "scenario")?;
    let net = raw.network.get_ref();
    let subnet = parse_cidr(src, &net.subnet, "subnet")?;
    let gateway = net
        .gateway
        .as_ref()
        .map(|g| parse_ipv4(src, g, "gateway"))
        .transpose()?;
    let ip_range = net
        .ip_range
        .as_ref()
        .map(|r| parse_cidr(src, r, "ip_range"))
        .transpose()?;
    // Each problem at the key that has it.
    for (cidr, raw_cidr, what) in [
        (Some(subnet), Some(&net.subnet), "subnet"),
        (ip_range, net.ip_range.as_ref(), "ip_range"),
    ] {
        if let (Some(c), Some(r)) = (cidr, raw_cidr) {
            if c != c.trunc() {
                return Err(src.error(
                    r.span(),
                    format!("{what} {c} has host bits set"),
                    format!("write the network address: \"{}\"", c.trunc()),
                ));
            }
        }
    }
    if let (Some(g), Some(raw_g)) = (gateway, &net.gateway) {
        if !subnet.contains(&g) || g == subnet.network() || g == subnet.broadcast() {
            return Err(src.error(
                raw_g.span(),
                format!("gateway {g} is not a host address of the subnet {subnet}"),
                format!("give an address inside {subnet}, other than its network and broadcast addresses"),
            ));
        }
    }
    if let (Some(r), Some(raw_r)) = (ip_range, &net.ip_range) {
        if !subnet.contains(&r) {
            return Err(src.error(
                raw_r.span(),
                format!("ip_range {r} is not inside the subnet {subnet}"),
                format!("give a range inside {subnet}"),
            ));
        }
    }

    let mut setup = Vec::new();
    if let Some(raw_setup) = &raw.setup {
        let setup_error = |message: String| {
            src.error(
                raw_setup.span(),
                message,
                "write [setup] with run = N or [\"name\", ...] and rm = [\"name or address\", ...], \
                 or several [[setup]] tables applied in order",
            )
        };
        let tables: Vec<toml::Value> = match raw_setup.get_ref() {
            toml::Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        let mut auto = 0;
        for table in tables {
            let step: RawSetup = table.try_into().map_err(|e: toml::de::Error| {
                setup_error(format!("setup: {}", super::serde_message(e.message())))
            })?;
            match step.run {
                None => {}
                Some(RawRuns::Count(n)) => {
                    if !(0..=100_000).contains(&n) {
                        return Err(setup_error(format!(
                            "setup run = {n} is impossible: give 0 to 100000 containers, or a list of names"
                        )));
                    }
                    for _ in 0..n {
                        auto += 1;
                        setup.push(SetupOp::Run(format!("setup-{auto}")));
                    }
                }
                Some(RawRuns::Names(names)) => setup.extend(names.into_iter().map(SetupOp::Run)),
            }
            for r in step.rm {
                setup.push(SetupOp::Rm(target_str(&r)));
            }
        }
    }

    let mut actors = Vec::new();
    for a in &raw.actor {
        let inner = a.get_ref();
        let kind = match (&inner.run, &inner.rm) {
            (Some(name), None) => {
                if name.get_ref().parse::<Ipv4Addr>().is_ok() || name.get_ref().is_empty() {
                    return Err(src.error(
                        name.span(),
                        format!("run {:?}: a container name is expected", name.get_ref()),
                        "name the container the run starts, for example run = \"web-1\"",
                    ));
                }
                ActorKind::Run(name.get_ref().clone())
            }
            (None, Some(t)) => ActorKind::Rm(target_str(t.get_ref())),
            _ => {
                return Err(src.error(
                    a.span(),
                    "an actor has exactly one of `run` or `rm`",
                    "write run = \"NAME\" to start a container, rm = \"NAME\" or rm = \"ADDRESS\" to remove one",
                ))
            }
        };
        let daemon = match &inner.daemon {
            None => 0,
            Some(d) if (0..8).contains(d.get_ref()) => *d.get_ref() as usize,
            Some(d) => {
                return Err(src.error(
                    d.span(),
                    format!("daemon = {} is out of range", d.get_ref()),
                    "daemons are numbered from 0 to 7",
                ))
            }
        };
        actors.push(ActorSpec { kind, daemon });
    }
    if actors.is_empty() {
        return Err(src.error(
            raw.name.span(),
            "the scenario has no concurrent actors",
            "add [[actor]] tables with run = \"NAME\" or rm = \"NAME|ADDRESS\"",
        ));
    }

    let budget = |v: &Option<Spanned<i64>>, key: &str| fault_budget(src, v, key);
    let faults = Faults {
        store_timeouts: budget(&raw.faults.store_timeouts, "store_timeouts")?,
        lost_answers: budget(&raw.faults.lost_answers, "lost_answers")?,
        lost_requests: budget(&raw.faults.lost_requests, "lost_requests")?,
        crashes: budget(&raw.faults.crashes, "crashes")?,
    };
    let endpoints = raw.recovery.as_ref().is_some_and(|r| r.get_ref().endpoints);
    let bounds = raw.bounds.resolve(src)?;
    let spec = IpamSpec {
        network: net.name.clone(),
        subnet,
        gateway,
        ip_range,
        setup,
        actors,
        faults,
        endpoints,
    };
    let known: Vec<&str> = if endpoints {
        PROPERTIES
            .iter()
            .chain(&RECOVERY_PROPERTIES)
            .copied()
            .collect()
    } else {
        PROPERTIES.to_vec()
    };

    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &PROFILE_NAMES,
    )?;
    let mut variants: Vec<IpamVariant> = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let mut profile = builtin_profile(src, &rv.profile, &PROFILE_NAMES, Profile::builtin)?;
        if let Some(s) = rv.serial {
            profile.serial = s;
        }
        if let Some(l) = rv.network_lock {
            profile.network_lock = l;
        }
        if let Some(h) = rv.hold_handle_lock {
            profile.hold_handle_lock = h;
        }
        if let Some(f) = &rv.force_disconnect {
            if *f.get_ref() && !endpoints {
                return Err(src.error(
                    f.span(),
                    "force_disconnect deletes stale endpoint records, but this scenario keeps none",
                    "add [recovery] with endpoints = true, or remove force_disconnect",
                ));
            }
            profile.force_disconnect = *f.get_ref();
        }
        if let Some(s) = &rv.search {
            profile.search = Version::parse(s.get_ref()).ok_or_else(|| {
                src.error(
                    s.span(),
                    format!("unknown search version {:?}", s.get_ref()),
                    "search is \"17.05\" or \"2023\"",
                )
            })?;
        }
        for k in rv.expect.keys() {
            if !endpoints && RECOVERY_PROPERTIES.contains(&k.get_ref().as_str()) {
                return Err(src.error(
                    k.span(),
                    format!("{} is checked only with endpoint records", k.get_ref()),
                    "add [recovery] with endpoints = true, or remove this expectation",
                ));
            }
        }
        let expect = parse_expect(src, &rv.expect, &known)?;
        if endpoints && !profile.store {
            return Err(src.error(
                rv.profile.span(),
                format!(
                    "profile {} has no store, but [recovery] endpoints keeps endpoint records in the cluster store",
                    profile.name
                ),
                "use profile = \"classic-swarm-cas\" (a global-scope network), or remove [recovery]",
            ));
        }
        let model = IpamSystem::new(&spec, &profile).map_err(|e| {
            let span = match &e {
                BuildError::Network(_) => raw.network.get_ref().subnet.span(),
                BuildError::Setup(_) => raw.setup.as_ref().map_or(0..0, |s| s.span()),
                BuildError::Actor(i, _) => raw.actor[*i].span(),
            };
            src.error(
                span,
                format!("variant {}: {e}", rv.name.get_ref()),
                "fix the scenario: see docs/scenario-format.md",
            )
        })?;
        variants.push(IpamVariant {
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
        Box::new(IpamScenario { spec, variants }),
    )
}
