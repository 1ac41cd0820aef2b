//! The explorers: exhaustive breadth-first search with visited-state
//! hashing and a partial-order reduction, seeded random walks, replay of a
//! schedule, and shrinking of a violating schedule.
//!
//! Every explorer reports, per property, the first violation it found as a
//! schedule (a list of choice indices, see [`crate::sim`]). Breadth-first
//! search finds a shortest violating schedule of the reduced graph; the
//! shrinker ([`shrink`]) then removes every step the violation does not
//! need, so what users see is minimal under step removal.
//!
//! Bounds are explicit ([`Bounds`]): a search that hits one says so
//! (`complete: false`) instead of claiming a property holds.
//!
//! Not here: PCT, and sharding by schedule prefix (design.md mentions both;
//! neither is needed for the scenarios shipped so far).

pub mod shrink;
pub mod token;

pub use shrink::shrink;

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sim::{Model, Trace, When};

/// Limits on a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Stop after this many distinct states (exhaustive) or steps (random).
    pub max_states: u64,
    /// Do not expand states at this depth.
    pub max_depth: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_states: 2_000_000,
            max_depth: 1_000,
        }
    }
}

/// How to search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Exhaustive breadth-first search.
    Bfs,
    /// `walks` random walks from a seed.
    Random {
        /// The seed; walk `i` uses its own stream derived from it.
        seed: u64,
        /// How many walks.
        walks: u64,
    },
}

/// Search options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Limits.
    pub bounds: Bounds,
    /// Which explorer.
    pub strategy: Strategy,
    /// Use the partial-order reduction (exhaustive search only).
    pub por: bool,
    /// Stop at the first violation of any property (for "time to first
    /// violation" measurements); the report is then not complete.
    pub stop_at_first: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bounds: Bounds::default(),
            strategy: Strategy::Bfs,
            por: true,
            stop_at_first: false,
        }
    }
}

/// A found violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The schedule from the initial state to the violating state.
    pub schedule: Vec<u32>,
    /// What the property said.
    pub message: String,
}

/// The outcome of a search.
#[derive(Clone, Debug)]
pub struct Report {
    /// Distinct states visited (exhaustive) or steps taken (random).
    pub states: u64,
    /// True when the whole bounded space was covered: no bound was hit
    /// and the strategy is exhaustive.
    pub complete: bool,
    /// Which bound stopped the search, if one did.
    pub bound_hit: Option<&'static str>,
    /// The deepest state reached.
    pub max_depth_seen: u32,
    /// Per property (in [`Model::properties`] order), the first violation.
    pub violations: Vec<Option<Violation>>,
}

/// Progress of a long search, for the progress line on stderr.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// States (or steps) so far.
    pub states: u64,
    /// The search depth reached.
    pub depth: u32,
    /// The state bound.
    pub max_states: u64,
}

/// A deterministic 64-bit fingerprint of a state.
pub fn fingerprint<S: Hash>(state: &S) -> u64 {
    let mut h = DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

/// Runs the chosen strategy.
pub fn explore<M: Model>(
    model: &M,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Report {
    match options.strategy {
        Strategy::Bfs => bfs(model, options, progress),
        Strategy::Random { seed, walks } => {
            random_walks(model, seed, walks, options.bounds, progress)
        }
    }
}

/// Checks the `Always` properties, and when `quiescent` the `Quiescent`
/// ones, recording the first violation of each.
fn check_state<M: Model>(
    model: &M,
    props: &[crate::sim::Property<M>],
    state: &M::State,
    quiescent: bool,
    found: &mut [Option<Violation>],
    schedule: &mut dyn FnMut() -> Vec<u32>,
) {
    for (i, p) in props.iter().enumerate() {
        if found[i].is_some() || (p.when == When::Quiescent && !quiescent) {
            continue;
        }
        if let Err(message) = (p.check)(model, state) {
            found[i] = Some(Violation {
                schedule: schedule(),
                message,
            });
        }
    }
}

/// Exhaustive breadth-first search with visited-state hashing.
///
/// The partial-order reduction: when a state has an enabled action that
/// [`Model::is_local`] says is local, only that action is explored from the
/// state. Local actions commute with every other action and change nothing
/// a property reads, so every property violation stays reachable. Choices
/// are recorded as indices into the *full* action list, so schedules found
/// with the reduction replay without it.
pub fn bfs<M: Model>(model: &M, options: &Options, progress: &mut dyn FnMut(Progress)) -> Report {
    let props = model.properties();
    let mut found: Vec<Option<Violation>> = vec![None; props.len()];
    let bounds = options.bounds;
    // fingerprint -> (parent fingerprint, choice index)
    let mut parents: HashMap<u64, (u64, u32)> = HashMap::new();
    let mut queue: VecDeque<(M::State, u64, u32)> = VecDeque::new();
    let init = model.init_state();
    let init_fp = fingerprint(&init);
    parents.insert(init_fp, (init_fp, u32::MAX));
    let path_to = |parents: &HashMap<u64, (u64, u32)>, mut fp: u64| -> Vec<u32> {
        let mut path = Vec::new();
        while fp != init_fp {
            let (parent, choice) = parents[&fp];
            path.push(choice);
            fp = parent;
        }
        path.reverse();
        path
    };
    let mut actions = Vec::new();
    check_state(model, &props, &init, false, &mut found, &mut Vec::new);
    queue.push_back((init, init_fp, 0));
    let mut bound_hit = None;
    let mut max_depth_seen = 0;
    let mut trace = Trace::off();
    let mut last_report = 0u64;
    let done = |found: &[Option<Violation>]| {
        found.iter().all(Option::is_some)
            || (options.stop_at_first && found.iter().any(Option::is_some))
    };
    'search: while let Some((state, fp, depth)) = queue.pop_front() {
        if done(&found) {
            break;
        }
        max_depth_seen = max_depth_seen.max(depth);
        actions.clear();
        model.actions(&state, &mut actions);
        if actions.is_empty() {
            // Quiesced: the `Quiescent` properties apply. Breadth-first
            // order makes this the shortest path to such a state.
            check_state(model, &props, &state, true, &mut found, &mut || {
                path_to(&parents, fp)
            });
            continue;
        }
        if depth >= bounds.max_depth {
            bound_hit = Some("max_depth");
            continue;
        }
        let ample: Option<usize> = if options.por {
            actions.iter().position(|a| model.is_local(&state, a))
        } else {
            None
        };
        for (index, action) in actions.iter().enumerate() {
            if ample.is_some_and(|a| a != index) {
                continue;
            }
            let next = model.next_state(&state, action, &mut trace);
            let next_fp = fingerprint(&next);
            if parents.contains_key(&next_fp) {
                continue;
            }
            parents.insert(next_fp, (fp, index as u32));
            check_state(model, &props, &next, false, &mut found, &mut || {
                path_to(&parents, next_fp)
            });
            let visited = parents.len() as u64;
            if visited - last_report >= 50_000 {
                last_report = visited;
                progress(Progress {
                    states: visited,
                    depth: depth + 1,
                    max_states: bounds.max_states,
                });
            }
            if visited >= bounds.max_states {
                bound_hit = Some("max_states");
                break 'search;
            }
            queue.push_back((next, next_fp, depth + 1));
        }
    }
    let stopped_early = done(&found) && !queue.is_empty();
    Report {
        states: parents.len() as u64,
        complete: bound_hit.is_none() && !stopped_early,
        bound_hit,
        max_depth_seen,
        violations: found,
    }
}

/// `walks` random walks, each choosing uniformly among enabled actions with
/// its own ChaCha8 stream seeded from `(seed, walk)`. Never complete.
pub fn random_walks<M: Model>(
    model: &M,
    seed: u64,
    walks: u64,
    bounds: Bounds,
    progress: &mut dyn FnMut(Progress),
) -> Report {
    let props = model.properties();
    let mut found: Vec<Option<Violation>> = vec![None; props.len()];
    let mut steps = 0u64;
    let mut max_depth_seen = 0;
    let mut bound_hit = None;
    let mut trace = Trace::off();
    let mut actions = Vec::new();
    'walks: for walk in 0..walks {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ walk);
        let mut state = model.init_state();
        let mut schedule: Vec<u32> = Vec::new();
        loop {
            actions.clear();
            model.actions(&state, &mut actions);
            let quiescent = actions.is_empty();
            check_state(model, &props, &state, quiescent, &mut found, &mut || {
                schedule.clone()
            });
            if quiescent || found.iter().all(Option::is_some) {
                break;
            }
            if schedule.len() as u32 >= bounds.max_depth {
                bound_hit = Some("max_depth");
                break;
            }
            if steps >= bounds.max_states {
                bound_hit = Some("max_states");
                break 'walks;
            }
            let choice = rng.gen_range(0..actions.len());
            state = model.next_state(&state, &actions[choice], &mut trace);
            schedule.push(choice as u32);
            steps += 1;
            max_depth_seen = max_depth_seen.max(schedule.len() as u32);
        }
        if found.iter().all(Option::is_some) {
            break;
        }
        if walk % 1024 == 1023 {
            progress(Progress {
                states: steps,
                depth: max_depth_seen,
                max_states: bounds.max_states,
            });
        }
    }
    Report {
        states: steps,
        complete: false,
        bound_hit,
        max_depth_seen,
        violations: found,
    }
}

/// Why a schedule could not be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The 1-based step that could not be taken.
    pub step: usize,
    /// The choice the schedule asked for.
    pub choice: u32,
    /// How many actions were enabled there.
    pub enabled: usize,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.enabled == 0 {
            write!(
                f,
                "the schedule diverges at step {}: the system had already quiesced (no action enabled)",
                self.step
            )
        } else {
            write!(
                f,
                "the schedule diverges at step {}: it chooses action {} but only {} were enabled",
                self.step, self.choice, self.enabled
            )
        }
    }
}

/// One replayed step.
#[derive(Clone, Debug)]
pub struct ReplayStep {
    /// The action's headline ([`Model::describe`]).
    pub headline: String,
    /// What the model logged.
    pub lines: Vec<String>,
    /// The frames this step delivered, as bytes.
    pub frames: Vec<Vec<u8>>,
    /// Properties first violated in the state after this step:
    /// (property name, explanation).
    pub violations: Vec<(&'static str, String)>,
}

/// The result of replaying a schedule.
#[derive(Clone, Debug)]
pub struct Replay<S> {
    /// Every step in order.
    pub steps: Vec<ReplayStep>,
    /// The final state.
    pub final_state: S,
    /// True when no action is enabled in the final state.
    pub quiescent: bool,
    /// Every property violated at some point: (name, first explanation).
    pub violated: Vec<(&'static str, String)>,
}

/// Replays a schedule with the trace on, checking properties after each
/// step. The same model and schedule always give the same result.
pub fn replay<M: Model>(model: &M, schedule: &[u32]) -> Result<Replay<M::State>, Divergence> {
    let props = model.properties();
    let mut state = model.init_state();
    let mut steps = Vec::new();
    let mut violated: Vec<(&'static str, String)> = Vec::new();
    let mut actions = Vec::new();
    let check = |state: &M::State, quiescent: bool, violated: &mut Vec<(&'static str, String)>| {
        let mut new = Vec::new();
        for p in &props {
            if violated.iter().any(|(n, _)| *n == p.name) {
                continue;
            }
            if p.when == When::Quiescent && !quiescent {
                continue;
            }
            if let Err(message) = (p.check)(model, state) {
                violated.push((p.name, message.clone()));
                new.push((p.name, message));
            }
        }
        new
    };
    model.actions(&state, &mut actions);
    let initial = check(&state, actions.is_empty(), &mut violated);
    if !initial.is_empty() {
        steps.push(ReplayStep {
            headline: "initial state".to_string(),
            lines: Vec::new(),
            frames: Vec::new(),
            violations: initial,
        });
    }
    for (i, &choice) in schedule.iter().enumerate() {
        let Some(action) = actions.get(choice as usize).cloned() else {
            return Err(Divergence {
                step: i + 1,
                choice,
                enabled: actions.len(),
            });
        };
        let headline = model.describe(&state, &action);
        let mut trace = Trace::on();
        state = model.next_state(&state, &action, &mut trace);
        actions.clear();
        model.actions(&state, &mut actions);
        let violations = check(&state, actions.is_empty(), &mut violated);
        steps.push(ReplayStep {
            headline,
            lines: trace.take(),
            frames: trace.take_frames(),
            violations,
        });
    }
    Ok(Replay {
        steps,
        quiescent: actions.is_empty(),
        final_state: state,
        violated,
    })
}
