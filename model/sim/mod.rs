//! The simulation contract every system model implements, and the trace it
//! writes.
//!
//! A [`Model`] is plain data plus pure functions, in the style of
//! stateright: an initial state, the enabled actions of a state in a
//! deterministic order, the next state of an action, and named properties.
//! States are `Clone + Eq + Hash` with deterministic iteration order (only
//! `Vec`s and `BTreeMap`s inside), so the explorer can deduplicate them and
//! so that the same schedule always produces the same trace, byte for byte.
//!
//! A *schedule* is the list of choices made at each step: the index of the
//! chosen action in the list [`Model::actions`] returned. Indices are what
//! replay tokens carry ([`crate::explore::token`]).
//!
//! Nothing here reads a clock, the OS random source or iterates a `HashMap`.
//! Simulated time, where a model needs it (bridge ageing), is part of the
//! state and advanced by actions.

use std::fmt::Debug;
use std::hash::Hash;

/// When a property is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// In every reachable state (a safety invariant).
    Always,
    /// In every state with no enabled action (the system has quiesced).
    Quiescent,
}

/// A named property: `check` returns `Err(explanation)` when violated.
pub struct Property<M: Model> {
    /// Stable dotted name (`ipam.unique`, `l2.fdb_correct`, ...).
    pub name: &'static str,
    /// When it is checked.
    pub when: When,
    /// One line saying what it asserts, for the docs and `--help` output.
    pub summary: &'static str,
    /// The check itself.
    pub check: fn(&M, &M::State) -> Result<(), String>,
}

impl<M: Model> Clone for Property<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Model> Copy for Property<M> {}

/// A system model the explorer can run.
pub trait Model: Sized {
    /// The whole world: plain, hashable data.
    type State: Clone + Eq + Hash + Debug;
    /// One atomic step of one actor.
    type Action: Clone + Debug + Eq;

    /// The state before any concurrent step.
    fn init_state(&self) -> Self::State;

    /// The enabled actions of `state`, appended to `out` in a deterministic
    /// order. An empty list means the system has quiesced.
    fn actions(&self, state: &Self::State, out: &mut Vec<Self::Action>);

    /// The state after `action`. When `trace` is on, the model appends the
    /// lines that explain the step (what the real system would log).
    fn next_state(
        &self,
        state: &Self::State,
        action: &Self::Action,
        trace: &mut Trace,
    ) -> Self::State;

    /// The properties this model checks, in a fixed order.
    fn properties(&self) -> Vec<Property<Self>>;

    /// A short, human-readable name of the action (`run cranky_shockley0:
    /// compute`), used as the headline of a trace step.
    fn describe(&self, state: &Self::State, action: &Self::Action) -> String;

    /// A stable identity of the action across states (which actor, which
    /// frame), used when shrinking a schedule: after a step is removed the
    /// remaining steps are matched by key, not by index.
    fn action_key(&self, action: &Self::Action) -> u64;

    /// True when the action touches only its actor's private data, so it
    /// commutes with every other action and no property can observe it.
    /// The explorer then explores it alone (a sound partial-order
    /// reduction for safety properties over acyclic state graphs).
    fn is_local(&self, _state: &Self::State, _action: &Self::Action) -> bool {
        false
    }

    /// Lines summarizing a state (printed at the end of a trace).
    fn summarize(&self, state: &Self::State) -> Vec<String>;
}

/// The explanation a model writes while stepping, when asked to.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    enabled: bool,
    lines: Vec<String>,
}

impl Trace {
    /// A trace that records nothing (used while exploring).
    pub fn off() -> Trace {
        Trace {
            enabled: false,
            lines: Vec::new(),
        }
    }

    /// A trace that records lines.
    pub fn on() -> Trace {
        Trace {
            enabled: true,
            lines: Vec::new(),
        }
    }

    /// Whether lines are being recorded; models check it before formatting.
    pub fn is_on(&self) -> bool {
        self.enabled
    }

    /// Records a line (ignored when off).
    pub fn line(&mut self, text: impl Into<String>) {
        if self.enabled {
            self.lines.push(text.into());
        }
    }

    /// Takes the recorded lines, leaving the trace empty.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }
}
