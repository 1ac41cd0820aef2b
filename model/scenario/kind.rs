//! The one place a kind of scenario is registered, and the object-safe
//! interface through which `check`, `replay`, `kernel` and `topology` see
//! every kind.
//!
//! The engine is generic over [`Model`]; the CLI is not, and should not
//! match on kinds. A kind is three things:
//!
//! 1. a loader, `fn(&Source, &Path) -> Result<Scenario, InputError>`, in
//!    its own module under `model/scenario/`, which builds one model per
//!    variant into a [`VariantOf`] and a scenario type implementing
//!    [`System`] (a handful of lines: the kind's name, its variants);
//! 2. its model implementing [`CheckedModel`] (usually an empty `impl`;
//!    a kind that reports extra figures overrides [`CheckedModel::extra`]);
//! 3. one line in [`KINDS`].
//!
//! Everything else — the matrix, JSON rows, replay by choice or by action
//! keys on another variant, `--pcap`, `--svg` and the HTML report — works
//! through [`Variant`] and does not change. (A kind draws sequence
//! diagrams when its model implements [`Model::lanes`] and
//! [`Model::sketch`]; a topology picture when its [`System`] implements
//! `topology_dot` and `topology_svg`.) A capability only some kinds have (the kernel oracle for
//! L2) reaches the concrete type through `<dyn System>::downcast`.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::{InputError, Scenario, Source, Verdict};
use crate::check::{check_model, Run, VariantResult};
use crate::explore::{self, Blocked, Divergence, Progress, ReplayStep, Strategy};
use crate::sim::Model;

/// A kind of scenario: the value of a file's `kind` key and its loader.
pub struct Kind {
    /// The `kind` key's value.
    pub name: &'static str,
    /// What it models, for error hints (`"address allocator"`).
    pub about: &'static str,
    /// Reads the rest of the file.
    pub load: fn(&Source, &Path) -> Result<Scenario, InputError>,
}

/// Every kind of scenario netrace reads: add a new kind here, once.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "ipam",
        about: "address allocator",
        load: super::ipam::load,
    },
    Kind {
        name: "l2",
        about: "overlay datapath",
        load: super::l2::load,
    },
    Kind {
        name: "overlay-cluster",
        about: "overlay control plane over many hosts",
        load: super::cluster::load,
    },
    Kind {
        name: "catalogue",
        about: "allocator of the catalogue over etcd",
        load: super::catalogue::load,
    },
];

/// A loaded scenario's system: its variants, behind one interface.
pub trait System: fmt::Debug + Any {
    /// The kind's name, as in [`KINDS`].
    fn kind(&self) -> &'static str;
    /// The variants in file order.
    fn variants(&self) -> Vec<&dyn Variant>;
    /// A Graphviz (DOT) picture of the system, for kinds that have a
    /// topology: of every variant (the first drawn, what differs marked)
    /// or of the one named. `None` when the kind has no topology or no
    /// variant has that name (callers check it with `<dyn System>::variant`).
    fn topology_dot(&self, _variant: Option<&str>) -> Option<String> {
        None
    }
    /// The same picture as a self-contained SVG document drawn by netrace
    /// itself (no Graphviz), for `netrace topology --svg` and reports.
    fn topology_svg(&self, _variant: Option<&str>) -> Option<String> {
        None
    }
    /// The concrete type, for `<dyn System>::downcast`.
    fn as_any(&self) -> &dyn Any;
}

impl dyn System {
    /// The concrete scenario type, when it is `T`.
    pub fn downcast<T: System>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Option<&dyn Variant> {
        self.variants().into_iter().find(|v| v.name() == name)
    }

    /// The variants' names in file order.
    pub fn variant_names(&self) -> Vec<String> {
        self.variants()
            .iter()
            .map(|v| v.name().to_string())
            .collect()
    }
}

/// One variant of any kind: checked, replayed, described.
pub trait Variant {
    /// The variant's name.
    fn name(&self) -> &str;
    /// Why it is there.
    fn note(&self) -> &str;
    /// `profile NAME: what it does`, for trace headers.
    fn profile_line(&self) -> String;
    /// Expected verdict per property.
    fn expect(&self) -> &BTreeMap<String, Verdict>;
    /// The variant's own strategy (`explore = { ... }`), if it has one.
    fn explore(&self) -> Option<Strategy>;
    /// The names of the properties its model checks, in order.
    fn properties(&self) -> Vec<&'static str>;
    /// Searches the variant's model and judges every property.
    fn check(&self, run: Run, progress: &mut dyn FnMut(Progress)) -> VariantResult;
    /// Replays a schedule of choices found on this variant.
    fn replay(&self, schedule: &[u32]) -> Result<Replayed, Divergence>;
    /// The action keys of a schedule of this variant (to replay it on
    /// another variant of the same scenario).
    fn keys_of(&self, schedule: &[u32]) -> Result<Vec<u64>, Divergence>;
    /// Replays action keys from another variant: the same actors' steps in
    /// the same order, stopping where this variant blocks them.
    fn replay_keys(&self, keys: &[u64]) -> Replayed;
}

/// A replayed schedule, with the model's descriptions already rendered.
#[derive(Debug)]
pub struct Replayed {
    /// The model's summary of the initial state.
    pub initial: Vec<String>,
    /// Every step in order (the first is the initial state's check).
    pub steps: Vec<ReplayStep>,
    /// The model's summary of the final state.
    pub final_summary: Vec<String>,
    /// The model's tables of the final state (JSON).
    pub final_tables: serde_json::Value,
    /// True when no action is enabled in the final state.
    pub quiescent: bool,
    /// Every property violated at some point: (name, first explanation).
    pub violated: Vec<(&'static str, String)>,
    /// Where a replay by keys could not go on, and why.
    pub blocked: Option<Blocked>,
    /// The lanes of its sequence diagram ([`Model::lanes`]).
    pub lanes: Vec<crate::sim::Lane>,
}

impl Replayed {
    /// The properties violated in the initial state (before any step).
    pub fn initial_violations(&self) -> &[(&'static str, String)] {
        match self.steps.first() {
            Some(st) if st.headline == explore::INITIAL_STATE => &st.violations,
            _ => &[],
        }
    }

    /// The steps with their numbers as every output prints them (from 1;
    /// the initial state's check, when present, is not a step).
    pub fn numbered_steps(&self) -> impl Iterator<Item = (usize, &ReplayStep)> {
        let skip = usize::from(
            self.steps
                .first()
                .is_some_and(|st| st.headline == explore::INITIAL_STATE),
        );
        self.steps
            .iter()
            .skip(skip)
            .enumerate()
            .map(|(i, st)| (i + 1, st))
    }
}

/// What a kind's model adds to the generic [`Model`] for `check`.
pub trait CheckedModel: Model + 'static {
    /// Extra per-variant figures (name, value) for the matrix and JSON.
    fn extra(&self, _run: Run) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// What a profile says about itself in trace headers.
pub trait Describe {
    /// The profile's name.
    fn profile_name(&self) -> &str;
    /// One line saying what it does.
    fn summary(&self) -> String;
}

/// A variant of a kind whose model is `M` and profile `P`: every kind's
/// variants have this shape, so [`Variant`] is implemented once for all.
#[derive(Debug)]
pub struct VariantOf<M, P> {
    /// The variant's name.
    pub name: String,
    /// Why it is there (free text).
    pub note: String,
    /// The resolved profile with overrides and fixes applied.
    pub profile: P,
    /// The model, built and validated at load time.
    pub model: M,
    /// Expected verdict per property.
    pub expect: BTreeMap<String, Verdict>,
    /// How to search this variant when the command line does not say
    /// (its `explore = { ... }`); before the scenario's `[explore]`.
    pub explore: Option<Strategy>,
}

fn rendered<M: Model>(
    model: &M,
    replay: explore::Replay<M::State>,
    blocked: Option<Blocked>,
) -> Replayed {
    Replayed {
        initial: model.summarize(&model.init_state()),
        final_summary: model.summarize(&replay.final_state),
        final_tables: model.tables(&replay.final_state),
        steps: replay.steps,
        quiescent: replay.quiescent,
        violated: replay.violated,
        blocked,
        lanes: model.lanes(),
    }
}

impl<M: CheckedModel, P: Describe> Variant for VariantOf<M, P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn note(&self) -> &str {
        &self.note
    }

    fn profile_line(&self) -> String {
        format!(
            "profile {}: {}",
            self.profile.profile_name(),
            self.profile.summary()
        )
    }

    fn expect(&self) -> &BTreeMap<String, Verdict> {
        &self.expect
    }

    fn explore(&self) -> Option<Strategy> {
        self.explore
    }

    fn properties(&self) -> Vec<&'static str> {
        self.model.properties().iter().map(|p| p.name).collect()
    }

    fn check(&self, run: Run, progress: &mut dyn FnMut(Progress)) -> VariantResult {
        let mut r = check_model(run, &self.name, &self.model, &self.expect, progress);
        r.extra.extend(self.model.extra(run));
        r
    }

    fn replay(&self, schedule: &[u32]) -> Result<Replayed, Divergence> {
        let r = explore::replay(&self.model, schedule)?;
        Ok(rendered(&self.model, r, None))
    }

    fn keys_of(&self, schedule: &[u32]) -> Result<Vec<u64>, Divergence> {
        explore::keys_of(&self.model, schedule)
    }

    fn replay_keys(&self, keys: &[u64]) -> Replayed {
        let (r, _, blocked) = explore::replay_keys(&self.model, keys);
        rendered(&self.model, r, blocked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(headline: &str, violations: Vec<(&'static str, String)>) -> ReplayStep {
        ReplayStep {
            headline: headline.to_string(),
            lines: Vec::new(),
            frames: Vec::new(),
            violations,
            sketch: crate::sim::Sketch::default(),
        }
    }

    fn replayed(steps: Vec<ReplayStep>) -> Replayed {
        Replayed {
            initial: Vec::new(),
            steps,
            final_summary: Vec::new(),
            final_tables: serde_json::Value::Null,
            quiescent: true,
            violated: Vec::new(),
            blocked: None,
            lanes: Vec::new(),
        }
    }

    #[test]
    fn the_initial_check_is_not_a_step() {
        let bad = vec![("ipam.unique", "from the start".to_string())];
        let r = replayed(vec![
            step(explore::INITIAL_STATE, bad.clone()),
            step("a", Vec::new()),
            step("b", Vec::new()),
        ]);
        assert_eq!(r.initial_violations(), bad.as_slice());
        let numbered: Vec<(usize, &str)> = r
            .numbered_steps()
            .map(|(n, s)| (n, s.headline.as_str()))
            .collect();
        assert_eq!(numbered, [(1, "a"), (2, "b")]);

        let r = replayed(vec![step("a", Vec::new()), step("b", bad.clone())]);
        assert!(r.initial_violations().is_empty());
        assert_eq!(
            r.numbered_steps().map(|(n, _)| n).collect::<Vec<_>>(),
            [1, 2]
        );
    }
}
