//! `kind = "catalogue"` scenario files: one allocator of the catalogue
//! ([`crate::catalogue`]) chosen by `system`, its cluster, its concurrent
//! actors, fault budget and variants. See `docs/scenario-format.md`.
//!
//! The keys every system shares (`name`, `system`, `description`,
//! `source`, `[bounds]`, `[explore]`, `[faults]`, `[[variant]]` with
//! `name`, `profile`, `note`, `expect`, `explore`) are read here; each
//! system adds its own tables and variant keys. Today: `system =
//! "kubernetes-clusterip"`, `system = "whereabouts"`, `system =
//! "calico"`, `system = "cilium-operator"` and `system =
//! "swarmkit-allocator"`.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::kind::{CheckedModel, Describe, System, Variant, VariantOf};
use super::{
    builtin_profile, check_name, check_variant_names, parse_cidr, parse_expect, InputError,
    RawBounds, RawExplore, Scenario, Source,
};
use crate::catalogue::calico::{
    CalicoProfile, CalicoSpec, CalicoSystem, HostSpec, PROFILE_NAMES as CALICO_PROFILE_NAMES,
};
use crate::catalogue::cilium::{
    CiliumProfile, CiliumSpec, CiliumSystem, PROFILE_NAMES as CILIUM_PROFILE_NAMES,
};
use crate::catalogue::k8s::{
    ActorSpec, ClusterIpProfile, ClusterIpSpec, ClusterIpSystem, PROFILE_NAMES, TICK_S,
};
use crate::catalogue::swarmkit::{
    SwarmObject, SwarmProfile, SwarmSpec, SwarmSystem, PROFILE_NAMES as SWARM_PROFILE_NAMES,
};
use crate::catalogue::whereabouts::{
    LeaseSpec, WhereaboutsProfile, WhereaboutsSpec, WhereaboutsSystem,
    PROFILE_NAMES as WB_PROFILE_NAMES,
};
use crate::catalogue::Pool;

/// The systems a catalogue scenario can name.
pub const SYSTEMS: [&str; 5] = [
    "kubernetes-clusterip",
    "whereabouts",
    "calico",
    "cilium-operator",
    "swarmkit-allocator",
];

/// The properties a Kubernetes ClusterIP scenario checks, in matrix order.
pub const K8S_PROPERTIES: [&str; 3] = ["ipam.unique", "ipam.no_leak", "k8s.no_reallocation"];

/// The most `RunOnce` calls a scenario may ask of the repair.
pub const MAX_REPAIR_RUNS: i64 = 6;

/// A loaded catalogue scenario of one system: its variant-independent
/// description `S`, and its variants of model `M` under profile `P`.
#[derive(Debug)]
pub struct CatalogueScenario<S, M, P> {
    /// The variant-independent description.
    pub spec: S,
    /// The variants, in file order.
    pub variants: Vec<VariantOf<M, P>>,
}

impl<S, M, P> System for CatalogueScenario<S, M, P>
where
    S: std::fmt::Debug + 'static,
    M: CheckedModel + std::fmt::Debug + 'static,
    P: Describe + std::fmt::Debug + 'static,
{
    fn kind(&self) -> &'static str {
        "catalogue"
    }
    fn variants(&self) -> Vec<&dyn Variant> {
        self.variants.iter().map(|v| v as &dyn Variant).collect()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A loaded Kubernetes ClusterIP scenario.
pub type ClusterIpScenario = CatalogueScenario<ClusterIpSpec, ClusterIpSystem, ClusterIpProfile>;

/// One variant: a profile, its model, what is expected of it.
pub type ClusterIpVariant = VariantOf<ClusterIpSystem, ClusterIpProfile>;

impl CheckedModel for ClusterIpSystem {}

impl Describe for ClusterIpProfile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        ClusterIpProfile::summary(self)
    }
}

#[derive(Deserialize)]
struct Head {
    name: Spanned<String>,
    system: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawK8s {
    #[allow(dead_code)]
    name: Spanned<String>,
    #[allow(dead_code)]
    kind: String,
    #[allow(dead_code)]
    system: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    cluster: Spanned<RawCluster>,
    #[serde(default)]
    actor: Vec<Spanned<RawActor>>,
    repair: Spanned<RawRepair>,
    #[serde(default)]
    faults: RawFaults,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    service_cidr: Spanned<String>,
    #[serde(default)]
    services: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    create: Option<Spanned<String>>,
    delete: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepair {
    runs: Spanned<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    crashes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    leak_counter: Option<Spanned<i64>>,
    window_lists: Option<Spanned<i64>>,
    api_call_s: Option<Spanned<i64>>,
    explore: Option<RawExplore>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// Loads a catalogue scenario: reads `system`, then that system's keys.
pub fn load(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let head: Head =
        src.parse("see docs/scenario-format.md for the keys of a catalogue scenario")?;
    check_name(src, &head.name, "scenario")?;
    let Some(system) = head.system else {
        return Err(src.error(
            head.name.span(),
            "a catalogue scenario has no `system`",
            format!("add system = \"{}\"", SYSTEMS.join("\" or system = \"")),
        ));
    };
    match system.get_ref().as_str() {
        "kubernetes-clusterip" => load_k8s(src, path),
        "whereabouts" => load_whereabouts(src, path),
        "calico" => load_calico(src, path),
        "cilium-operator" => load_cilium(src, path),
        "swarmkit-allocator" => load_swarm(src, path),
        other => Err(src.error(
            system.span(),
            format!("unknown system {other:?}"),
            format!("system is one of: {}", SYSTEMS.join(", ")),
        )),
    }
}

/// A name of a Service: a DNS label, as Kubernetes requires.
fn check_service(src: &Source, n: &Spanned<String>) -> Result<(), InputError> {
    check_label(src, n, "Service")
}

/// A name of a Kubernetes object (`what`): a DNS label.
fn check_label(src: &Source, n: &Spanned<String>, what: &str) -> Result<(), InputError> {
    let s = n.get_ref();
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(src.error(
            n.span(),
            format!("{s:?} is not a {what} name"),
            format!("a {what} name is a DNS label: lower-case letters, digits and '-', at most 63"),
        ))
    }
}

/// A catalogue pool from the CIDR at `key`: a network address (no host
/// bits), /30 to /26.
fn pool_of(src: &Source, cidr: &Spanned<String>, key: &str) -> Result<Pool, InputError> {
    let net = parse_cidr(src, cidr, key)?;
    if net != net.trunc() {
        return Err(src.error(
            cidr.span(),
            format!("{key} {net} has host bits set"),
            format!("write the network address: \"{}\"", net.trunc()),
        ));
    }
    Pool::hosts(net).map_err(|e| {
        src.error(
            cidr.span(),
            e,
            format!("give a {key} from /30 (2 addresses) to /26 (62)"),
        )
    })
}

fn load_k8s(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let raw: RawK8s =
        src.parse("see docs/scenario-format.md for the keys of a kubernetes-clusterip scenario")?;
    let cluster = raw.cluster.get_ref();
    let pool = pool_of(src, &cluster.service_cidr, "service_cidr")?;
    let cidr = pool.cidr;
    // Every Service a file names into existence, each once.
    let mut names: Vec<String> = Vec::new();
    let mut fresh = |n: &Spanned<String>| -> Result<(), InputError> {
        check_service(src, n)?;
        if names.contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                format!("Service {} is named twice", n.get_ref()),
                "every Service listed in [cluster] or created by an actor needs its own name",
            ));
        }
        names.push(n.get_ref().clone());
        Ok(())
    };
    for s in &cluster.services {
        fresh(s)?;
    }
    if cluster.services.len() > pool.size as usize {
        return Err(src.error(
            raw.cluster.span(),
            format!(
                "{} existing Services do not fit in the {} addresses of {cidr}",
                cluster.services.len(),
                pool.size
            ),
            "list fewer services or widen service_cidr",
        ));
    }
    let mut actors = Vec::new();
    for a in &raw.actor {
        let inner = a.get_ref();
        let spec =
            match (&inner.create, &inner.delete) {
                (Some(n), None) => {
                    fresh(n)?;
                    ActorSpec::Create(n.get_ref().clone())
                }
                (None, Some(n)) => {
                    check_service(src, n)?;
                    ActorSpec::Delete(n.get_ref().clone())
                }
                _ => return Err(src.error(
                    a.span(),
                    "an actor has exactly one of `create` or `delete`",
                    "write create = \"NAME\" for a new Service, delete = \"NAME\" to delete one",
                )),
            };
        actors.push(spec);
    }
    if actors.len() > 6 {
        return Err(src.error(
            raw.actor[6].span(),
            format!("{} actors: at most 6", actors.len()),
            "every actor multiplies the space to explore; the races need two or three",
        ));
    }
    let runs = raw.repair.get_ref().runs.clone();
    if !(0..=MAX_REPAIR_RUNS).contains(runs.get_ref()) {
        return Err(src.error(
            runs.span(),
            format!("runs = {} is out of range", runs.get_ref()),
            format!("give the repair 0 to {MAX_REPAIR_RUNS} RunOnce calls"),
        ));
    }
    let crashes = match &raw.faults.crashes {
        None => 0,
        Some(c) if (0..=2).contains(c.get_ref()) => *c.get_ref() as u8,
        Some(c) => {
            return Err(src.error(
                c.span(),
                format!("crashes = {} is out of range", c.get_ref()),
                "give crashes = 0 to 2: each fault multiplies the space to explore",
            ))
        }
    };
    let spec = ClusterIpSpec {
        pool,
        services: cluster
            .services
            .iter()
            .map(|s| s.get_ref().clone())
            .collect(),
        actors,
        repair_runs: *runs.get_ref() as u8,
        crashes,
    };
    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &PROFILE_NAMES,
    )?;
    let small = |v: &Option<Spanned<i64>>, key: &str, range: std::ops::RangeInclusive<i64>| match v
    {
        None => Ok(None),
        Some(n) if range.contains(n.get_ref()) => Ok(Some(*n.get_ref() as u8)),
        Some(n) => Err(src.error(
            n.span(),
            format!("{key} = {} is out of range", n.get_ref()),
            format!("give {key} from {} to {}", range.start(), range.end()),
        )),
    };
    let mut variants = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let mut profile =
            builtin_profile(src, &rv.profile, &PROFILE_NAMES, ClusterIpProfile::builtin)?;
        if let Some(k) = small(&rv.leak_counter, "leak_counter", 1..=10)? {
            if profile.leak_counter.is_none() {
                let span = rv.leak_counter.as_ref().map_or(0..0, |s| s.span());
                return Err(src.error(
                    span,
                    format!("profile {} has no leak counter", profile.name),
                    "leak_counter sets numRepairsBeforeLeakCleanup: use it with profile \"kubernetes-39206\"",
                ));
            }
            profile.leak_counter = Some(k);
        }
        profile.window_lists = small(&rv.window_lists, "window_lists", 0..=10)?;
        // Each design's own keys, refused on the other.
        let misplaced = if profile.ipaddress {
            rv.window_lists.as_ref().map(|k| (k, "window_lists"))
        } else {
            rv.api_call_s.as_ref().map(|k| (k, "api_call_s"))
        };
        if let Some((k, key)) = misplaced {
            return Err(src.error(
                k.span(),
                format!("{key} does not apply to profile {}", profile.name),
                "window_lists bounds the repair loop of the bitmap profiles (kubernetes-pre-39206, \
                 kubernetes-39206); api_call_s the clock of kubernetes-kep-1880",
            ));
        }
        if let Some(t) = &rv.api_call_s {
            if !(0..=600).contains(t.get_ref()) || t.get_ref() % i64::from(TICK_S) != 0 {
                return Err(src.error(
                    t.span(),
                    format!("api_call_s = {} is impossible", t.get_ref()),
                    format!("give 0 to 600 seconds in steps of {TICK_S} (the model's clock step)"),
                ));
            }
            profile.api_call_s = *t.get_ref() as u32;
        }
        let expect = parse_expect(src, &rv.expect, &K8S_PROPERTIES)?;
        let model = ClusterIpSystem::new(&spec, &profile).map_err(|e| {
            src.error(
                raw.cluster.span(),
                format!("variant {}: {e}", rv.name.get_ref()),
                "fix the scenario: see docs/scenario-format.md",
            )
        })?;
        variants.push(ClusterIpVariant {
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
        raw.bounds.resolve(src)?,
        &raw.explore,
        Box::new(ClusterIpScenario { spec, variants }),
    )
}

/// The properties a whereabouts scenario checks, in matrix order.
pub const WHEREABOUTS_PROPERTIES: [&str; 4] = [
    "ipam.unique",
    "ipam.no_leak",
    "whereabouts.recorded",
    "whereabouts.exclusive",
];

/// A loaded whereabouts scenario.
pub type WhereaboutsScenario =
    CatalogueScenario<WhereaboutsSpec, WhereaboutsSystem, WhereaboutsProfile>;

/// One whereabouts variant.
pub type WhereaboutsVariant = VariantOf<WhereaboutsSystem, WhereaboutsProfile>;

impl CheckedModel for WhereaboutsSystem {}

impl Describe for WhereaboutsProfile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        WhereaboutsProfile::summary(self)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhereabouts {
    #[allow(dead_code)]
    name: Spanned<String>,
    #[allow(dead_code)]
    kind: String,
    #[allow(dead_code)]
    system: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    ipam: Spanned<RawIpam>,
    #[serde(default)]
    pod: Vec<Spanned<RawPod>>,
    #[serde(default)]
    reconciler: Option<RawReconciler>,
    #[serde(default)]
    lease: Option<Spanned<RawLease>>,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    variant: Vec<Spanned<RawWbVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpam {
    range: Spanned<String>,
    deadline_conflicts: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPod {
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconciler {
    runs: Spanned<i64>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawLease {
    lease_duration_ms: Spanned<i64>,
    renew_deadline_ms: Spanned<i64>,
    retry_period_ms: Spanned<i64>,
    clock_limit_ms: Spanned<i64>,
}

/// `[lease]` in `RetryPeriod` ticks.
fn lease_of(src: &Source, l: &RawLease) -> Result<LeaseSpec, InputError> {
    let retry = *l.retry_period_ms.get_ref();
    if !(1..=60_000).contains(&retry) {
        return Err(src.error(
            l.retry_period_ms.span(),
            format!("retry_period_ms = {retry} is out of range"),
            "give retry_period_ms from 1 to 60000 (whereabouts' default is 500)",
        ));
    }
    let ticks = |n: &Spanned<i64>, key: &str| -> Result<u8, InputError> {
        let v = *n.get_ref();
        if v < 0 || v % retry != 0 || v / retry > 8 {
            return Err(src.error(
                n.span(),
                format!("{key} = {v} is not 0 to 8 times retry_period_ms = {retry}"),
                "the model's clock ticks once per retry period: give a multiple of it, at most 8 times it",
            ));
        }
        Ok((v / retry) as u8)
    };
    let duration = ticks(&l.lease_duration_ms, "lease_duration_ms")?;
    let renew_deadline = ticks(&l.renew_deadline_ms, "renew_deadline_ms")?;
    let clock_limit = ticks(&l.clock_limit_ms, "clock_limit_ms")?;
    if renew_deadline == 0 || renew_deadline >= duration {
        return Err(src.error(
            l.renew_deadline_ms.span(),
            format!(
                "renew_deadline_ms = {} is not between 0 and lease_duration_ms",
                l.renew_deadline_ms.get_ref()
            ),
            "client-go requires LeaseDuration > RenewDeadline > 0 (whereabouts: 1500 and 1000)",
        ));
    }
    Ok(LeaseSpec {
        duration,
        renew_deadline,
        clock_limit,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWbVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    deadline_conflicts: Option<Spanned<i64>>,
    clock_limit_ms: Option<Spanned<i64>>,
    explore: Option<RawExplore>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// `deadline_conflicts`, from 1 to 10.
fn deadline(src: &Source, n: &Spanned<i64>) -> Result<u8, InputError> {
    if (1..=10).contains(n.get_ref()) {
        Ok(*n.get_ref() as u8)
    } else {
        Err(src.error(
            n.span(),
            format!("deadline_conflicts = {} is out of range", n.get_ref()),
            "give deadline_conflicts from 1 to 10: the conflicts an ADD sees before its deadline",
        ))
    }
}

fn load_whereabouts(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let raw: RawWhereabouts =
        src.parse("see docs/scenario-format.md for the keys of a whereabouts scenario")?;
    let ipam = raw.ipam.get_ref();
    let pool = pool_of(src, &ipam.range, "range")?;
    let mut pods: Vec<String> = Vec::new();
    for p in &raw.pod {
        let n = &p.get_ref().name;
        check_label(src, n, "pod")?;
        if pods.contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                format!("pod {} is named twice", n.get_ref()),
                "every [[pod]] needs its own name",
            ));
        }
        pods.push(n.get_ref().clone());
    }
    if pods.len() > 4 {
        return Err(src.error(
            raw.pod[4].span(),
            format!("{} pods: at most 4", pods.len()),
            "every pod multiplies the space to explore; the races need two or three",
        ));
    }
    let runs = match &raw.reconciler {
        None => 0,
        Some(r) if (0..=3).contains(r.runs.get_ref()) => *r.runs.get_ref() as u8,
        Some(r) => {
            return Err(src.error(
                r.runs.span(),
                format!("runs = {} is out of range", r.runs.get_ref()),
                "give the reconciler 0 to 3 runs",
            ))
        }
    };
    let spec = WhereaboutsSpec {
        pool,
        pods,
        reconciler_runs: runs,
        deadline_conflicts: deadline(src, &ipam.deadline_conflicts)?,
        lease: match &raw.lease {
            Some(l) => Some(lease_of(src, l.get_ref())?),
            None => None,
        },
    };
    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &WB_PROFILE_NAMES,
    )?;
    let mut variants = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let profile = builtin_profile(
            src,
            &rv.profile,
            &WB_PROFILE_NAMES,
            WhereaboutsProfile::builtin,
        )?;
        let mut vspec = spec.clone();
        if let Some(d) = &rv.deadline_conflicts {
            vspec.deadline_conflicts = deadline(src, d)?;
        }
        if let Some(c) = &rv.clock_limit_ms {
            let Some(l) = &raw.lease else {
                return Err(src.error(
                    c.span(),
                    "clock_limit_ms without a [lease]",
                    "give the scenario a [lease] table, or drop clock_limit_ms",
                ));
            };
            let mut l = l.get_ref().clone();
            l.clock_limit_ms = c.clone();
            vspec.lease = Some(lease_of(src, &l)?);
        }
        let expect = parse_expect(src, &rv.expect, &WHEREABOUTS_PROPERTIES)?;
        variants.push(WhereaboutsVariant {
            name: rv.name.get_ref().clone(),
            note: rv.note.clone(),
            model: WhereaboutsSystem::new(&vspec, &profile),
            profile,
            expect,
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
        Box::new(WhereaboutsScenario { spec, variants }),
    )
}

/// The properties a Calico scenario checks, in matrix order.
pub const CALICO_PROPERTIES: [&str; 4] = [
    "ipam.unique",
    "ipam.no_leak",
    "calico.tunnel_addr_kept",
    "calico.one_block_owner",
];

/// A loaded Calico scenario.
pub type CalicoScenario = CatalogueScenario<CalicoSpec, CalicoSystem, CalicoProfile>;

/// One Calico variant.
pub type CalicoVariant = VariantOf<CalicoSystem, CalicoProfile>;

impl CheckedModel for CalicoSystem {}

impl Describe for CalicoProfile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        CalicoProfile::summary(self)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalico {
    #[allow(dead_code)]
    name: Spanned<String>,
    #[allow(dead_code)]
    kind: String,
    #[allow(dead_code)]
    system: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    ipam: Spanned<RawCalicoIpam>,
    #[serde(default)]
    node: Vec<Spanned<RawPod>>,
    #[serde(default)]
    pod: Vec<Spanned<RawCalicoPod>>,
    gc: Option<RawReconciler>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
    #[serde(default)]
    faults: RawCalicoFaults,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    variant: Vec<Spanned<RawCalicoVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalicoIpam {
    pool: Spanned<String>,
    block_size: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalicoPod {
    name: Spanned<String>,
    node: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    assigns: Spanned<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCalicoFaults {
    cleanup_failures: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalicoVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    assigns: BTreeMap<Spanned<String>, Spanned<i64>>,
    explore: Option<RawExplore>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// A small count at `key`, within `range` (at most 255), with a hint of
/// what it is.
fn count(
    src: &Source,
    n: &Spanned<i64>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    what: &str,
) -> Result<u8, InputError> {
    debug_assert!(*range.end() <= i64::from(u8::MAX));
    in_range(src, n, key, range, what).map(|n| n as u8)
}

fn load_calico(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let raw: RawCalico =
        src.parse("see docs/scenario-format.md for the keys of a calico scenario")?;
    let ipam = raw.ipam.get_ref();
    let net = parse_cidr(src, &ipam.pool, "pool")?;
    if net != net.trunc() {
        return Err(src.error(
            ipam.pool.span(),
            format!("pool {net} has host bits set"),
            format!("write the network address: \"{}\"", net.trunc()),
        ));
    }
    let total = 1u64 << (32 - u32::from(net.prefix_len()));
    if !(4..=u64::from(crate::catalogue::MAX_POOL)).contains(&total) {
        return Err(src.error(
            ipam.pool.span(),
            format!("pool {net} has {total} addresses"),
            "give a pool from /30 (4 addresses) to /26 (64): the races need a few blocks of a few addresses",
        ));
    }
    let pool = Pool {
        cidr: net,
        first: net.network(),
        size: total as u32,
    };
    let bs = ipam.block_size.get_ref();
    if !(2..=total as i64).contains(bs) || bs.count_ones() != 1 {
        return Err(src.error(
            ipam.block_size.span(),
            format!("block_size = {bs} is impossible for pool {net}"),
            format!("give a power of two from 2 to {total} (a block is a CIDR inside the pool)"),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    let mut fresh = |n: &Spanned<String>, what: &str| -> Result<(), InputError> {
        check_label(src, n, what)?;
        if names.contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                format!("{} is named twice", n.get_ref()),
                "every node, pod and host needs its own name",
            ));
        }
        names.push(n.get_ref().clone());
        Ok(())
    };
    let mut nodes = Vec::new();
    for n in &raw.node {
        fresh(&n.get_ref().name, "node")?;
        nodes.push(n.get_ref().name.get_ref().clone());
    }
    let mut pods = Vec::new();
    for p in &raw.pod {
        let rp = p.get_ref();
        fresh(&rp.name, "pod")?;
        let Some(i) = nodes.iter().position(|n| n == rp.node.get_ref()) else {
            return Err(src.error(
                rp.node.span(),
                format!(
                    "pod {} runs on node {}, which no [[node]] names",
                    rp.name.get_ref(),
                    rp.node.get_ref()
                ),
                "name a node listed in a [[node]] table",
            ));
        };
        pods.push((rp.name.get_ref().clone(), i as u8));
    }
    let mut hosts = Vec::new();
    for h in &raw.host {
        let rh = h.get_ref();
        fresh(&rh.name, "host")?;
        hosts.push(HostSpec {
            name: rh.name.get_ref().clone(),
            assigns: count(
                src,
                &rh.assigns,
                "assigns",
                1..=3,
                "the host's AutoAssign calls",
            )?,
        });
    }
    let limits: [(usize, &str, usize, Option<std::ops::Range<usize>>); 3] = [
        (nodes.len(), "nodes", 2, raw.node.get(2).map(|n| n.span())),
        (pods.len(), "pods", 3, raw.pod.get(3).map(|n| n.span())),
        (hosts.len(), "hosts", 3, raw.host.get(3).map(|n| n.span())),
    ];
    for (n, what, max, span) in limits {
        if n > max {
            return Err(src.error(
                span.unwrap_or(0..0),
                format!("{n} {what}: at most {max}"),
                "every actor multiplies the space to explore; the races need two or three",
            ));
        }
    }
    let gc_runs = match &raw.gc {
        None => 0,
        Some(g) => count(
            src,
            &g.runs,
            "runs",
            0..=3,
            "the garbage collector's passes",
        )?,
    };
    let cleanup_failures = match &raw.faults.cleanup_failures {
        None => 0,
        Some(c) => count(
            src,
            c,
            "cleanup_failures",
            0..=2,
            "each fault multiplies the space to explore",
        )?,
    };
    let spec = CalicoSpec {
        pool,
        block_size: *bs as u32,
        nodes,
        pods,
        gc_runs,
        hosts,
        cleanup_failures,
    };
    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &CALICO_PROFILE_NAMES,
    )?;
    let mut variants = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let profile = builtin_profile(
            src,
            &rv.profile,
            &CALICO_PROFILE_NAMES,
            CalicoProfile::builtin,
        )?;
        let mut vspec = spec.clone();
        for (host, n) in &rv.assigns {
            let Some(h) = vspec.hosts.iter_mut().find(|h| &h.name == host.get_ref()) else {
                return Err(src.error(
                    host.span(),
                    format!("no [[host]] is named {}", host.get_ref()),
                    "assigns = { HOST = N } sets the AutoAssign calls of a listed host",
                ));
            };
            h.assigns = count(src, n, "assigns", 1..=3, "the host's AutoAssign calls")?;
        }
        let expect = parse_expect(src, &rv.expect, &CALICO_PROPERTIES)?;
        let model = CalicoSystem::new(&vspec, &profile).map_err(|e| {
            src.error(
                raw.ipam.span(),
                format!("variant {}: {e}", rv.name.get_ref()),
                "widen the pool or make the blocks smaller",
            )
        })?;
        variants.push(CalicoVariant {
            name: rv.name.get_ref().clone(),
            note: rv.note.clone(),
            model,
            profile,
            expect,
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
        Box::new(CalicoScenario { spec, variants }),
    )
}

/// The properties a Cilium operator scenario checks, in matrix order.
pub const CILIUM_PROPERTIES: [&str; 2] = ["ipam.unique", "cilium.no_release_in_use"];

/// A loaded Cilium operator scenario.
pub type CiliumScenario = CatalogueScenario<CiliumSpec, CiliumSystem, CiliumProfile>;

/// One Cilium variant.
pub type CiliumVariant = VariantOf<CiliumSystem, CiliumProfile>;

impl CheckedModel for CiliumSystem {}

impl Describe for CiliumProfile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        CiliumProfile::summary(self)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCilium {
    #[allow(dead_code)]
    name: Spanned<String>,
    #[allow(dead_code)]
    kind: String,
    #[allow(dead_code)]
    system: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    node: Spanned<RawCiliumNode>,
    #[serde(default)]
    pod: Vec<Spanned<RawPod>>,
    operator: RawOperator,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    variant: Vec<Spanned<RawCiliumVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCiliumNode {
    subnet: Spanned<String>,
    addresses: Spanned<i64>,
    pre_allocate: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    runs: Spanned<i64>,
    horizon_s: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCiliumVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    excess_ip_release_delay_s: Option<Spanned<i64>>,
    explore: Option<RawExplore>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// An integer key in `range`, or an error pointing at it.
fn in_range(
    src: &Source,
    n: &Spanned<i64>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    why: &str,
) -> Result<i64, InputError> {
    if range.contains(n.get_ref()) {
        Ok(*n.get_ref())
    } else {
        Err(src.error(
            n.span(),
            format!("{key} = {} is out of range", n.get_ref()),
            format!(
                "give {key} from {} to {}: {why}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Seconds in steps of the Cilium model's clock.
fn seconds(src: &Source, n: &Spanned<i64>, key: &str, max: i64) -> Result<u32, InputError> {
    let tick = i64::from(crate::catalogue::cilium::TICK_S);
    if (0..=max).contains(n.get_ref()) && n.get_ref() % tick == 0 {
        Ok(*n.get_ref() as u32)
    } else {
        Err(src.error(
            n.span(),
            format!("{key} = {} is impossible", n.get_ref()),
            format!("give 0 to {max} seconds in steps of {tick} (the model's clock step)"),
        ))
    }
}

/// Pod names: DNS labels, each once, at most `max`.
fn pod_names(src: &Source, raw: &[Spanned<RawPod>], max: usize) -> Result<Vec<String>, InputError> {
    let mut pods: Vec<String> = Vec::new();
    for p in raw {
        let n = &p.get_ref().name;
        check_label(src, n, "pod")?;
        if pods.contains(n.get_ref()) {
            return Err(src.error(
                n.span(),
                format!("pod {} is named twice", n.get_ref()),
                "every [[pod]] needs its own name",
            ));
        }
        pods.push(n.get_ref().clone());
    }
    if pods.len() > max {
        return Err(src.error(
            raw[max].span(),
            format!("{} pods: at most {max}", pods.len()),
            "every pod multiplies the space to explore; the races need one or two",
        ));
    }
    Ok(pods)
}

fn load_cilium(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    let raw: RawCilium =
        src.parse("see docs/scenario-format.md for the keys of a cilium-operator scenario")?;
    let nd = raw.node.get_ref();
    let pool = pool_of(src, &nd.subnet, "subnet")?;
    let addresses = in_range(
        src,
        &nd.addresses,
        "addresses",
        1..=i64::from(pool.size),
        "the interface's addresses at start, within the subnet",
    )? as u32;
    let pre_allocate = in_range(
        src,
        &nd.pre_allocate,
        "pre_allocate",
        0..=8,
        "spec.ipam.pre-allocate",
    )? as u32;
    let pods = pod_names(src, &raw.pod, 3)?;
    let runs = in_range(
        src,
        &raw.operator.runs,
        "runs",
        0..=4,
        "each maintainIPPool run multiplies the space to explore",
    )? as u8;
    let horizon_s = seconds(src, &raw.operator.horizon_s, "horizon_s", 300)?;
    let spec = CiliumSpec {
        pool,
        addresses,
        pre_allocate,
        pods,
        operator_runs: runs,
        horizon_s,
    };
    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &CILIUM_PROFILE_NAMES,
    )?;
    let mut variants = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let mut profile = builtin_profile(
            src,
            &rv.profile,
            &CILIUM_PROFILE_NAMES,
            CiliumProfile::builtin,
        )?;
        if let Some(d) = &rv.excess_ip_release_delay_s {
            profile.release_delay_s = seconds(src, d, "excess_ip_release_delay_s", 600)?;
        }
        let expect = parse_expect(src, &rv.expect, &CILIUM_PROPERTIES)?;
        variants.push(CiliumVariant {
            name: rv.name.get_ref().clone(),
            note: rv.note.clone(),
            model: CiliumSystem::new(&spec, &profile),
            profile,
            expect,
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
        Box::new(CiliumScenario { spec, variants }),
    )
}

/// The properties a swarm-mode allocator scenario checks, in matrix order.
pub const SWARM_PROPERTIES: [&str; 3] = ["ipam.unique", "ipam.no_leak", "swarm.vip_kept"];

/// A loaded swarm-mode allocator scenario.
pub type SwarmScenario = CatalogueScenario<SwarmSpec, SwarmSystem, SwarmProfile>;

/// One swarm-mode variant.
pub type SwarmVariant = VariantOf<SwarmSystem, SwarmProfile>;

impl CheckedModel for SwarmSystem {}

impl Describe for SwarmProfile {
    fn profile_name(&self) -> &str {
        &self.name
    }
    fn summary(&self) -> String {
        SwarmProfile::summary(self)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwarm {
    #[allow(dead_code)]
    name: Spanned<String>,
    #[allow(dead_code)]
    kind: String,
    #[allow(dead_code)]
    system: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    network: Spanned<RawNetwork>,
    #[serde(default)]
    service: Vec<Spanned<RawSwarmObject>>,
    #[serde(default)]
    task: Vec<Spanned<RawSwarmObject>>,
    #[serde(default)]
    bounds: RawBounds,
    explore: Option<RawExplore>,
    #[serde(default)]
    variant: Vec<Spanned<RawSwarmVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    subnet: Spanned<String>,
    #[serde(default)]
    ingress: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwarmObject {
    name: Spanned<String>,
    address: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwarmVariant {
    name: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    note: String,
    explore: Option<RawExplore>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

fn load_swarm(src: &Source, path: &Path) -> Result<Scenario, InputError> {
    use crate::catalogue::swarmkit::Kind;
    let raw: RawSwarm =
        src.parse("see docs/scenario-format.md for the keys of a swarmkit-allocator scenario")?;
    let net = raw.network.get_ref();
    let pool = pool_of(src, &net.subnet, "subnet")?;
    let mut objects: Vec<SwarmObject> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let lists = [(Kind::Service, &raw.service), (Kind::Task, &raw.task)];
    for (kind, list) in lists {
        for o in list {
            let ro = o.get_ref();
            let n = &ro.name;
            let what = if kind == Kind::Service {
                "service"
            } else {
                "task"
            };
            let ok = !n.get_ref().is_empty()
                && n.get_ref().len() <= 63
                && n.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
            if !ok {
                return Err(src.error(
                    n.span(),
                    format!("{:?} is not a {what} name", n.get_ref()),
                    "a name is letters, digits, '-', '.' and '_', at most 63",
                ));
            }
            let key = format!("{what} {}", n.get_ref());
            if names.contains(&key) {
                return Err(src.error(
                    n.span(),
                    format!("{what} {} is named twice", n.get_ref()),
                    format!("every [[{what}]] needs its own name"),
                ));
            }
            names.push(key);
            let address = match &ro.address {
                None => None,
                Some(a) => {
                    let ip = super::parse_ipv4(src, a, "address")?;
                    let off = u32::from(ip).wrapping_sub(u32::from(pool.first));
                    if !pool.cidr.contains(&ip) || off >= pool.size {
                        return Err(src.error(
                            a.span(),
                            format!("{ip} is not a host address of {}", pool.cidr),
                            format!(
                                "give an address from {} to {}",
                                pool.addr(0),
                                pool.addr(pool.size - 1)
                            ),
                        ));
                    }
                    if objects.iter().any(|x| x.address == Some(off)) {
                        return Err(src.error(
                            a.span(),
                            format!("{ip} is recorded for two objects"),
                            "the starting store holds each address once: the restore is what is checked",
                        ));
                    }
                    Some(off)
                }
            };
            objects.push(SwarmObject {
                kind,
                name: n.get_ref().clone(),
                address,
            });
        }
    }
    if objects.is_empty() || objects.len() > 6 {
        return Err(src.error(
            raw.network.span(),
            format!(
                "{} objects: give 1 to 6 [[service]] and [[task]] tables",
                objects.len()
            ),
            "every object multiplies the orders to explore; the races need three",
        ));
    }
    let spec = SwarmSpec {
        pool,
        ingress: net.ingress,
        objects,
    };
    check_variant_names(
        src,
        &raw.name,
        raw.variant.iter().map(|v| &v.get_ref().name),
        &SWARM_PROFILE_NAMES,
    )?;
    let mut variants = Vec::new();
    for v in &raw.variant {
        let rv = v.get_ref();
        let profile = builtin_profile(
            src,
            &rv.profile,
            &SWARM_PROFILE_NAMES,
            SwarmProfile::builtin,
        )?;
        let expect = parse_expect(src, &rv.expect, &SWARM_PROPERTIES)?;
        variants.push(SwarmVariant {
            name: rv.name.get_ref().clone(),
            note: rv.note.clone(),
            model: SwarmSystem::new(&spec, &profile),
            profile,
            expect,
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
        Box::new(SwarmScenario { spec, variants }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    const GOOD: &str = "name = \"t\"\nkind = \"catalogue\"\nsystem = \"kubernetes-clusterip\"\n\
        [cluster]\nservice_cidr = \"10.96.0.0/30\"\n[[actor]]\ncreate = \"web\"\n\
        [repair]\nruns = 1\n[[variant]]\nname = \"v\"\nprofile = \"kubernetes-39206\"\n";

    fn err(text: &str) -> InputError {
        load_str("t.toml", text, Path::new("t.toml")).unwrap_err()
    }

    #[test]
    fn a_good_file_loads_and_bad_ones_point_at_the_key() {
        let s = load_str("t.toml", GOOD, Path::new("t.toml")).unwrap();
        assert_eq!(s.system.kind(), "catalogue");
        let e = err(&GOOD.replace("runs = 1", "runs = 9"));
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("runs = 9"), "{e}");
        let e = err(&GOOD.replace("10.96.0.0/30", "10.96.0.0/16"));
        assert_eq!(e.line, 5, "{e}");
        let e = err(&GOOD.replace("kubernetes-clusterip", "flannel"));
        assert_eq!((e.line, e.column), (3, 10), "{e}");
        let e = err(&GOOD.replace("create = \"web\"", "create = \"Web\""));
        assert_eq!(e.line, 7, "{e}");
        let e = err(&format!("{GOOD}leak_counter = 2\n")
            .replace("kubernetes-39206", "kubernetes-pre-39206"));
        assert!(e.message.contains("no leak counter"), "{e}");
        let e = err(&format!("{GOOD}api_call_s = 90\n"));
        assert!(e.message.contains("api_call_s does not apply"), "{e}");
        let e =
            err(&format!("{GOOD}api_call_s = 45\n")
                .replace("kubernetes-39206", "kubernetes-kep-1880"));
        assert!(e.message.contains("api_call_s = 45 is impossible"), "{e}");
        let e = err(&GOOD.replace("[repair]", "[repair]\nevery = 3"));
        assert!(e.message.contains("unknown field"), "{e}");
    }

    const WB: &str = "name = \"w\"\nkind = \"catalogue\"\nsystem = \"whereabouts\"\n\
        [ipam]\nrange = \"10.10.0.0/30\"\ndeadline_conflicts = 1\n[[pod]]\nname = \"a\"\n\
        [[variant]]\nname = \"v\"\nprofile = \"whereabouts-208\"\n";

    #[test]
    fn a_whereabouts_file_loads_and_bad_ones_point_at_the_key() {
        let s = load_str("w.toml", WB, Path::new("w.toml")).unwrap();
        assert!(s.system.downcast::<WhereaboutsScenario>().is_some());
        let e = err(&WB.replace("deadline_conflicts = 1", "deadline_conflicts = 0"));
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("deadline_conflicts = 0"), "{e}");
        let e = err(&WB.replace("10.10.0.0/30", "10.10.0.1/30"));
        assert_eq!(e.line, 5, "{e}");
        let e = err(&WB.replace("name = \"a\"", "name = \"A\""));
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("not a pod name"), "{e}");
        let e = err(&WB.replace("whereabouts-208", "whereabouts-207"));
        assert_eq!(e.line, 11, "{e}");
        let e = err(&format!("{WB}[reconciler]\nruns = 4\n"));
        assert_eq!(e.line, 13, "{e}");
        let e = err(&WB.replace("[ipam]", "[ipam]\nleader = true"));
        assert!(e.message.contains("unknown field"), "{e}");
    }

    /// The bundled whereabouts scenarios' spaces and verdicts, pinned as
    /// the Kubernetes ones below.
    #[test]
    fn the_bundled_whereabouts_scenarios_are_pinned() {
        let pinned: [(&str, &str, u64, [bool; 4]); 5] = [
            (
                "whereabouts-deadline-nil-error",
                "pre-143",
                41,
                [true, false, true, false],
            ),
            ("whereabouts-deadline-nil-error", "143", 41, [false; 4]),
            (
                "whereabouts-deadline-nil-error",
                "pre-143-two-conflicts",
                45,
                [false; 4],
            ),
            (
                "whereabouts-reconciler-list-order",
                "pods-first",
                600,
                [true, false, true, false],
            ),
            (
                "whereabouts-reconciler-list-order",
                "pools-first",
                388,
                [false; 4],
            ),
        ];
        for (file, variant, states, violated) in pinned {
            let s = bundled(file);
            let sc = s.system.downcast::<WhereaboutsScenario>().unwrap();
            assert_pinned(sc, file, variant, states, violated);
        }
    }

    /// The leader-lease scenario's spaces and verdicts: the deposed ADD
    /// goes on (#113, #145) and two ADDs work at once; the CAS keeps
    /// `ipam.unique` after #143; cancelling the work on losing leadership,
    /// or ADDs faster than the lease, keep them apart.
    #[test]
    fn the_whereabouts_leader_lease_scenario_is_pinned() {
        let file = "whereabouts-leader-lease";
        let pinned: [(&str, u64, [bool; 4]); 4] = [
            ("113", 1755, [true, false, true, true]),
            ("145", 4159, [false, false, false, true]),
            ("145-stop", 3305, [false; 4]),
            ("145-fast", 749, [false; 4]),
        ];
        let s = bundled(file);
        let sc = s.system.downcast::<WhereaboutsScenario>().unwrap();
        for (variant, states, violated) in pinned {
            assert_pinned(sc, file, variant, states, violated);
        }
    }

    #[test]
    fn a_bad_lease_points_at_the_key() {
        let lease = "[lease]\nlease_duration_ms = 1500\nrenew_deadline_ms = 1000\n\
            retry_period_ms = 500\nclock_limit_ms = 2000\n";
        let s = load_str(
            "w.toml",
            &WB.replace("[[pod]]", &format!("{lease}[[pod]]")),
            Path::new("w.toml"),
        )
        .unwrap();
        assert!(s.system.downcast::<WhereaboutsScenario>().is_some());
        let bad = |from: &str, to: &str| {
            err(&WB.replace("[[pod]]", &format!("{}[[pod]]", lease.replace(from, to))))
        };
        let e = bad("renew_deadline_ms = 1000", "renew_deadline_ms = 1500");
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("renew_deadline_ms = 1500"), "{e}");
        let e = bad("clock_limit_ms = 2000", "clock_limit_ms = 2100");
        assert_eq!(e.line, 11, "{e}");
        let e = bad("retry_period_ms = 500", "retry_period_ms = 0");
        assert_eq!(e.line, 10, "{e}");
        let e = err(&format!("{WB}clock_limit_ms = 1000\n"));
        assert!(e.message.contains("without a [lease]"), "{e}");
    }

    const CALICO: &str = "name = \"c\"\nkind = \"catalogue\"\nsystem = \"calico\"\n\
        [ipam]\npool = \"10.65.0.0/29\"\nblock_size = 4\n[[host]]\nname = \"a\"\nassigns = 1\n\
        [[variant]]\nname = \"v\"\nprofile = \"calico-785\"\n";

    #[test]
    fn a_calico_file_loads_and_bad_ones_point_at_the_key() {
        let s = load_str("c.toml", CALICO, Path::new("c.toml")).unwrap();
        assert!(s.system.downcast::<CalicoScenario>().is_some());
        let e = err(&CALICO.replace("block_size = 4", "block_size = 3"));
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("block_size = 3"), "{e}");
        let e = err(&CALICO.replace("10.65.0.0/29", "10.65.0.0/24"));
        assert_eq!(e.line, 5, "{e}");
        let e = err(&CALICO.replace("assigns = 1", "assigns = 4"));
        assert_eq!(e.line, 9, "{e}");
        let e = err(&CALICO.replace("calico-785", "calico-3.22"));
        assert_eq!(e.line, 12, "{e}");
        let e = err(&format!("{CALICO}assigns = {{ z = 2 }}\n"));
        assert!(e.message.contains("no [[host]] is named z"), "{e}");
        let e = err(&format!("{CALICO}[[pod]]\nname = \"p\"\nnode = \"n9\"\n"));
        assert!(e.message.contains("which no [[node]] names"), "{e}");
        // A node's block and the hosts' blocks do not fit in one block.
        let e = err(&format!("{CALICO}[[node]]\nname = \"n1\"\n")
            .replace("block_size = 4", "block_size = 8"));
        assert!(e.message.contains("1 blocks of 8"), "{e}");
    }

    /// The bundled Calico scenarios' spaces and verdicts, pinned as the
    /// others: [ipam.unique, ipam.no_leak, calico.tunnel_addr_kept,
    /// calico.one_block_owner] violated or not.
    #[test]
    fn the_bundled_calico_scenarios_are_pinned() {
        let pinned: [(&str, &str, u64, [bool; 4]); 7] = [
            (
                "calico-release-by-handle",
                "release-by-handle",
                95,
                [true, false, true, false],
            ),
            ("calico-release-by-handle", "5613", 78, [false; 4]),
            (
                "calico-block-affinity",
                "pre-785",
                119,
                [false, false, false, true],
            ),
            (
                "calico-block-affinity",
                "pre-785-second-assign",
                925,
                [false, false, false, true],
            ),
            (
                "calico-block-affinity",
                "785",
                1181,
                [false, false, false, true],
            ),
            (
                "calico-block-affinity",
                "785-second-assign",
                4393,
                [false; 4],
            ),
            ("calico-block-affinity", "6003", 1181, [false; 4]),
        ];
        for (file, variant, states, violated) in pinned {
            let s = bundled(file);
            let sc = s.system.downcast::<CalicoScenario>().unwrap();
            let v = sc.variants.iter().find(|v| v.name == variant).unwrap();
            let r = crate::explore::bfs(&v.model, &crate::explore::Options::default(), &mut |_| {});
            assert!(r.complete, "{file} {variant}");
            let found: Vec<bool> = r.violations.iter().map(Option::is_some).collect();
            assert_eq!(
                (r.states, found.as_slice()),
                (states, &violated[..]),
                "{file} {variant}"
            );
        }
    }

    fn bundled(file: &str) -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{file}.toml"));
        crate::scenario::load(&path).unwrap()
    }

    /// The variant's search is complete, with `states` states, and finds
    /// exactly the `violated` properties.
    fn assert_pinned<S, M: crate::sim::Model, P, const N: usize>(
        sc: &CatalogueScenario<S, M, P>,
        file: &str,
        variant: &str,
        states: u64,
        violated: [bool; N],
    ) {
        let v = sc.variants.iter().find(|v| v.name == variant).unwrap();
        let r = crate::explore::bfs(&v.model, &crate::explore::Options::default(), &mut |_| {});
        assert!(r.complete, "{file} {variant}");
        let found: Vec<bool> = r.violations.iter().map(Option::is_some).collect();
        assert_eq!(
            (r.states, found.as_slice()),
            (states, &violated[..]),
            "{file} {variant}"
        );
    }

    const CILIUM: &str = "name = \"c\"\nkind = \"catalogue\"\nsystem = \"cilium-operator\"\n\
        [node]\nsubnet = \"10.0.1.0/29\"\naddresses = 3\npre_allocate = 1\n[[pod]]\nname = \"a\"\n\
        [operator]\nruns = 1\nhorizon_s = 30\n\
        [[variant]]\nname = \"v\"\nprofile = \"cilium-17939\"\n";

    #[test]
    fn a_cilium_file_loads_and_bad_ones_point_at_the_key() {
        let s = load_str("c.toml", CILIUM, Path::new("c.toml")).unwrap();
        assert!(s.system.downcast::<CiliumScenario>().is_some());
        let e = err(&CILIUM.replace("addresses = 3", "addresses = 7"));
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("addresses = 7"), "{e}");
        let e = err(&CILIUM.replace("horizon_s = 30", "horizon_s = 20"));
        assert_eq!(e.line, 12, "{e}");
        assert!(e.message.contains("impossible"), "{e}");
        let e = err(&format!("{CILIUM}excess_ip_release_delay_s = 700\n"));
        assert_eq!(e.line, 16, "{e}");
        let e = err(&CILIUM.replace("cilium-17939", "cilium-32531"));
        assert_eq!(e.line, 15, "{e}");
        let e = err(&CILIUM.replace("[operator]", "[operator]\nleader = true"));
        assert!(e.message.contains("unknown field"), "{e}");
    }

    const SWARM: &str = "name = \"s\"\nkind = \"catalogue\"\nsystem = \"swarmkit-allocator\"\n\
        [network]\nsubnet = \"10.0.0.0/29\"\n[[service]]\nname = \"web\"\naddress = \"10.0.0.1\"\n\
        [[task]]\nname = \"web.1\"\n\
        [[variant]]\nname = \"v\"\nprofile = \"swarmkit-2237\"\n";

    #[test]
    fn a_swarm_file_loads_and_bad_ones_point_at_the_key() {
        let s = load_str("s.toml", SWARM, Path::new("s.toml")).unwrap();
        assert!(s.system.downcast::<SwarmScenario>().is_some());
        let e = err(&SWARM.replace("\"10.0.0.1\"", "\"10.0.0.7\""));
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("not a host address"), "{e}");
        let e = err(&SWARM.replace(
            "name = \"web.1\"",
            "name = \"web.1\"\naddress = \"10.0.0.1\"",
        ));
        assert_eq!(e.line, 11, "{e}");
        assert!(e.message.contains("recorded for two objects"), "{e}");
        let e = err(&SWARM.replace("[[variant]]", "[[task]]\nname = \"web.1\"\n[[variant]]"));
        assert_eq!(e.line, 12, "{e}");
        assert!(e.message.contains("task web.1 is named twice"), "{e}");
        let e = err(&SWARM.replace("swarmkit-2237", "swarmkit-2505"));
        assert_eq!(e.line, 13, "{e}");
        assert!(e.message.contains("swarmkit-2505"), "{e}");
    }

    /// The bundled Cilium and swarm-mode scenarios' spaces and verdicts,
    /// pinned as the others above.
    #[test]
    fn the_bundled_cilium_and_swarm_scenarios_are_pinned() {
        let pinned: [(&str, &str, u64, [bool; 2]); 4] = [
            ("cilium-excess-release", "pre-17939", 1459, [false, true]),
            ("cilium-excess-release", "delay-only", 7453, [false, true]),
            ("cilium-excess-release", "17939", 7692, [false, false]),
            (
                "cilium-excess-release",
                "17939-no-delay",
                19081,
                [false, false],
            ),
        ];
        for (file, variant, states, violated) in pinned {
            let s = bundled(file);
            let sc = s.system.downcast::<CiliumScenario>().unwrap();
            let v = sc.variants.iter().find(|v| v.name == variant).unwrap();
            let r = crate::explore::bfs(&v.model, &crate::explore::Options::default(), &mut |_| {});
            assert!(r.complete, "{file} {variant}");
            let found: Vec<bool> = r.violations.iter().map(Option::is_some).collect();
            assert_eq!(
                (r.states, found.as_slice()),
                (states, &violated[..]),
                "{file} {variant}"
            );
        }
        let pinned: [(&str, &str, u64, [bool; 3]); 5] = [
            (
                "swarm-allocator-restore",
                "pre-2237",
                6,
                [true, false, false],
            ),
            ("swarm-allocator-restore", "2237", 4, [false; 3]),
            (
                "swarm-ingress-vip-restore",
                "pre-2237",
                5,
                [true, false, true],
            ),
            ("swarm-ingress-vip-restore", "2237", 4, [true, false, true]),
            ("swarm-ingress-vip-restore", "2468", 4, [false; 3]),
        ];
        for (file, variant, states, violated) in pinned {
            let s = bundled(file);
            let sc = s.system.downcast::<SwarmScenario>().unwrap();
            assert_pinned(sc, file, variant, states, violated);
        }
    }

    /// The handshake's `holds` is not bought by never releasing: with the
    /// handshake the operator does unassign a free address, and never one
    /// a pod holds.
    #[test]
    fn the_handshake_still_releases_free_addresses() {
        use crate::sim::Model;
        let s = bundled("cilium-excess-release");
        let sc = s.system.downcast::<CiliumScenario>().unwrap();
        for name in ["17939", "17939-no-delay"] {
            let m = &sc.variants.iter().find(|v| v.name == name).unwrap().model;
            let init = m.init_state().eni;
            let mut seen = std::collections::BTreeSet::new();
            let mut stack = vec![m.init_state()];
            let mut released = false;
            let mut actions = Vec::new();
            while let Some(st) = stack.pop() {
                if !seen.insert(crate::explore::fingerprint(&st)) {
                    continue;
                }
                released |= st.eni != init;
                actions.clear();
                m.actions(&st, &mut actions);
                for a in &actions {
                    stack.push(m.next_state(&st, a, &mut crate::sim::Trace::off()));
                }
            }
            assert!(released, "{name}: no address is ever released");
        }
    }

    /// The bundled Kubernetes scenarios' spaces, pinned: a change in a
    /// count is a change in the model's semantics and must be explained
    /// (and the findings' figures updated). Also which properties each
    /// variant violates, with the searches complete.
    #[test]
    fn the_bundled_k8s_scenarios_state_counts_are_pinned() {
        let pinned: [(&str, &str, u64, [bool; 3]); 8] = [
            (
                "k8s-clusterip-repair",
                "before-39206",
                9154,
                [true, false, true],
            ),
            ("k8s-clusterip-repair", "39206-two-lists", 8638, [false; 3]),
            (
                "k8s-clusterip-repair",
                "39206-three-lists",
                10340,
                [true, false, true],
            ),
            (
                "k8s-clusterip-stale-leak-count",
                "before-39206",
                28355,
                [true, false, true],
            ),
            (
                "k8s-clusterip-stale-leak-count",
                "39206-no-list",
                13051,
                [false; 3],
            ),
            (
                "k8s-clusterip-stale-leak-count",
                "39206-one-list",
                33705,
                [true, false, true],
            ),
            ("k8s-clusterip-kep-1880", "kep-1880-60s", 1789, [false; 3]),
            (
                "k8s-clusterip-kep-1880",
                "kep-1880-90s",
                5399,
                [true, false, true],
            ),
        ];
        for (file, variant, states, violated) in pinned {
            let s = bundled(file);
            let sc = s.system.downcast::<ClusterIpScenario>().unwrap();
            assert_pinned(sc, file, variant, states, violated);
        }
    }
}
