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

/// What a property check saw in one state, when it was not violated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// The state had something the property speaks about, and it held.
    Something,
    /// The state had nothing to check (no address held, no frame sent
    /// after an ageing wait, ...). A property that sees only `Nothing` over
    /// a whole space is *vacuous*: it held because it never applied.
    Nothing,
}

impl Checked {
    /// `Something` when `applies`, else `Nothing`.
    pub fn when(applies: bool) -> Checked {
        if applies {
            Checked::Something
        } else {
            Checked::Nothing
        }
    }
}

/// A named property: `check` returns `Err(explanation)` when violated,
/// and says whether it had anything to check otherwise.
pub struct Property<M: Model> {
    /// Stable dotted name (`ipam.unique`, `l2.fdb_correct`, ...).
    pub name: &'static str,
    /// When it is checked.
    pub when: When,
    /// One line saying what it asserts, for the docs and `--help` output.
    pub summary: &'static str,
    /// The check itself.
    pub check: fn(&M, &M::State) -> Result<Checked, String>,
}

impl<M: Model> Clone for Property<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Model> Copy for Property<M> {}

/// A system model the explorer can run.
pub trait Model: Sized + Sync {
    /// The whole world: plain, hashable data (shared between the threads
    /// of a parallel search, so `Send + Sync`).
    type State: Clone + Eq + Hash + Debug + Send + Sync;
    /// One atomic step of one actor.
    type Action: Clone + Debug + Eq + Send + Sync;

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

    /// [`Model::next_state`] written into `out`, whatever `out` held (the
    /// sequential breadth-first search keeps one such state and reuses
    /// it for every successor). By default `*out = next_state(..)`; a
    /// model may reuse `out`'s allocations instead. The result must equal
    /// `next_state`'s.
    fn next_state_into(
        &self,
        state: &Self::State,
        action: &Self::Action,
        trace: &mut Trace,
        out: &mut Self::State,
    ) {
        *out = self.next_state(state, action, trace);
    }

    /// The properties this model checks, in a fixed order.
    fn properties(&self) -> Vec<Property<Self>>;

    /// A short, human-readable name of the action (`run cranky_shockley0:
    /// compute`), used as the headline of a trace step.
    fn describe(&self, state: &Self::State, action: &Self::Action) -> String;

    /// A stable identity of the action across states (which actor, which
    /// frame), used when shrinking a schedule: after a step is removed the
    /// remaining steps are matched by key, not by index.
    fn action_key(&self, state: &Self::State, action: &Self::Action) -> u64;

    /// True when the action touches only its actor's private data, so it
    /// commutes with every other action and no property can observe it.
    /// The explorer then explores it alone (a partial-order reduction,
    /// sound for safety properties with the cycle proviso the explorer
    /// applies: see [`crate::explore::bfs`]).
    fn is_local(&self, _state: &Self::State, _action: &Self::Action) -> bool {
        false
    }

    /// Why no action with this [`Model::action_key`] is enabled in `state`
    /// (a lock held by another actor, a check that refused it), for
    /// replaying a schedule on a variant where it cannot be taken. `None`
    /// when the model cannot say.
    fn blocked(&self, _state: &Self::State, _key: u64) -> Option<String> {
        None
    }

    /// A representative of `state`'s orbit under the model's symmetry
    /// (actors that are interchangeable up to their names), or `None`
    /// when `state` is its own representative or the model has none. The
    /// exhaustive explorers store and expand representatives only (see
    /// [`crate::explore::bfs`]), then map each counterexample back to a
    /// concrete schedule.
    ///
    /// The contract, for a group of permutations of actors: the result is
    /// `π(state)` for some permutation `π` of the group; the model is
    /// equivariant under every `π` (the actions of `π(s)` are the permuted
    /// actions of `s`, and stepping commutes with `π`); and every
    /// property's verdict (violated or not, something to check or not) is
    /// the same in `s` and `π(s)`. Then a property is violated in the
    /// reduced space exactly when it is in the full one. Representatives
    /// that are equal for every member of an orbit give the most
    /// reduction; that is not needed for soundness.
    fn canonical(&self, _state: &Self::State) -> Option<Self::State> {
        None
    }

    /// Whether [`Model::canonical`] can map a state elsewhere: the model
    /// has interchangeable actors (reported as the `symmetry` reduction).
    fn has_symmetry(&self) -> bool {
        false
    }

    /// The state's fingerprint, the key of the exhaustive searches'
    /// visited sets: by default [`crate::explore::fingerprint`] of the
    /// whole state. A model may give a cheaper one, for example hashing a
    /// part shared between states by a hash cached with it. It must be a
    /// function of the state's value (equal states, equal fingerprints),
    /// and as unlikely as a 128-bit hash to be equal for different states.
    fn fingerprint(&self, state: &Self::State) -> crate::explore::Fingerprint {
        crate::explore::fingerprint(state)
    }

    /// An encoder of states as byte strings for the breadth-first
    /// search's frontier ([`crate::explore::pack`]), made once per search;
    /// `None` (the default) keeps frontier states as they are. Decoding
    /// must give back an equal state: `unpack(pack(s)) == s`.
    fn packer(&self) -> Option<Box<dyn crate::explore::pack::Packer<Self::State> + '_>> {
        None
    }

    /// Lines summarizing a state (printed at the end of a trace).
    fn summarize(&self, state: &Self::State) -> Vec<String>;

    /// The state's tables as structured data, for `replay --format json`
    /// (for example a bridge's FDB). Nothing by default.
    fn tables(&self, _state: &Self::State) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// The lanes of the model's sequence diagrams (`replay --svg`), left
    /// to right: one per actor or device. None by default: a model
    /// without lanes has no diagram.
    fn lanes(&self) -> Vec<Lane> {
        Vec::new()
    }

    /// What one step looks like in a sequence diagram: the lane that acts,
    /// the messages that arrive, the state changes to mark. Called by
    /// replay only, with the states before and after `action`.
    fn sketch(
        &self,
        _before: &Self::State,
        _action: &Self::Action,
        _after: &Self::State,
    ) -> Sketch {
        Sketch::default()
    }
}

/// A lane of a sequence diagram: an actor or a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// Its name, unique in the diagram (`A`, `host1 br0 veth-A`).
    pub name: String,
    /// The short title drawn at its head (`veth-A`).
    pub title: String,
    /// The group it is drawn in (`host1`; empty for none).
    pub group: String,
}

impl Lane {
    /// A lane titled `title` in `group`, named `"{group} {title}"` (or
    /// `title` when there is no group).
    pub fn new(group: &str, title: &str) -> Lane {
        Lane {
            name: if group.is_empty() {
                title.to_string()
            } else {
                format!("{group} {title}")
            },
            title: title.to_string(),
            group: group.to_string(),
        }
    }
}

/// What kind of message an arrow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrowKind {
    /// An ARP frame.
    Arp,
    /// A data frame (or any other frame).
    Data,
    /// An encapsulated frame on the underlay.
    Underlay,
    /// A call or notification (netlink, a lock, a read or write of a
    /// shared object).
    Call,
}

/// A message from one lane to another, drawn at the step it arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// The sending lane (an index into [`Model::lanes`]).
    pub from: usize,
    /// The receiving lane.
    pub to: usize,
    /// Its label, as the text trace would say it (`who-has 10.0.0.3`).
    pub label: String,
    /// What it is.
    pub kind: ArrowKind,
}

/// A mark on a lane: a state change (an FDB entry learned or moved, a
/// commit) or a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The lane it is on.
    pub lane: usize,
    /// What happened, briefly.
    pub text: String,
    /// True for a change of shared state (drawn emphasised), false for a
    /// note about the actor's own progress.
    pub change: bool,
}

/// One step of a sequence diagram ([`Model::sketch`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sketch {
    /// The lane that acts, or `None` for a step of the whole system
    /// (simulated time passing).
    pub lane: Option<usize>,
    /// What the step is, in a few words (`resolve B`, `compute`).
    pub what: String,
    /// Messages arriving in this step.
    pub arrows: Vec<Arrow>,
    /// Marks on lanes.
    pub marks: Vec<Mark>,
}

/// Which way a captured frame was going through its capture point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received by the device (a bridge port's ingress, a container's
    /// `eth0`, a VTEP's underlay).
    Inbound,
    /// Sent by the device (vxlan1 transmitting towards the underlay).
    Outbound,
}

/// A frame as a capture point saw it: a packet of a pcapng file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedFrame {
    /// The capture point, e.g. `host1 br0 veth-A` (a pcapng interface).
    pub interface: String,
    /// Which way the frame went through it.
    pub direction: Direction,
    /// The simulated clock when it was delivered, seconds.
    pub at_s: u32,
    /// The Ethernet frame, no FCS.
    pub bytes: Vec<u8>,
}

/// The explanation a model writes while stepping, when asked to: lines
/// of text, the frames that moved (for pcap files), and named counters
/// (for figures such as "unicast frames flooded").
#[derive(Debug, Default, Clone)]
pub struct Trace {
    enabled: bool,
    lines: Vec<String>,
    frames: Vec<CapturedFrame>,
    counters: std::collections::BTreeMap<&'static str, u64>,
}

impl Trace {
    /// A trace that records nothing (used while exploring).
    pub fn off() -> Trace {
        Trace::default()
    }

    /// A trace that records lines, frames and counters.
    pub fn on() -> Trace {
        Trace {
            enabled: true,
            ..Trace::default()
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

    /// Records a frame's bytes as it is delivered at `at_s` on the
    /// simulated clock; `capture` names where it was seen (called only
    /// when the trace is on, so exploring formats nothing).
    pub fn frame(
        &mut self,
        capture: impl FnOnce() -> (String, Direction),
        at_s: u32,
        bytes: &[u8],
    ) {
        if self.enabled {
            let (interface, direction) = capture();
            self.frames.push(CapturedFrame {
                interface,
                direction,
                at_s,
                bytes: bytes.to_vec(),
            });
        }
    }

    /// Adds one to a named counter (ignored when off).
    pub fn bump(&mut self, counter: &'static str) {
        if self.enabled {
            *self.counters.entry(counter).or_default() += 1;
        }
    }

    /// Takes the recorded lines, leaving the trace empty of lines.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    /// Takes the recorded frames.
    pub fn take_frames(&mut self) -> Vec<CapturedFrame> {
        std::mem::take(&mut self.frames)
    }

    /// A counter's value.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}
