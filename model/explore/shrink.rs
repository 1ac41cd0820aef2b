//! Shrinking a violating schedule to a minimal one.
//!
//! Steps are matched by [`Model::action_key`], not by index, so that after
//! a step is removed the remaining steps still mean the same actions. The
//! result is minimal under the removal of one step and (up to
//! `MAX_PAIR_SHRINK` steps) of two: no such removal still violates the
//! property in fewer steps. For a `Quiescent` property a shortened
//! schedule is completed by taking the first enabled action until the
//! system quiesces.

use crate::sim::{Model, Trace, When};

/// Runs a schedule given as action keys; returns the choice indices taken
/// and whether property `prop` was violated, truncating at the first
/// violation of an `Always` property. For a `Quiescent` property the
/// schedule is completed by always taking the first enabled action.
fn run_keys<M: Model>(
    model: &M,
    prop: &crate::sim::Property<M>,
    keys: &[u64],
    max_depth: u32,
) -> Option<Vec<u32>> {
    let mut trace = Trace::off();
    let mut state = model.init_state();
    let mut choices = Vec::new();
    let mut actions = Vec::new();
    model.actions(&state, &mut actions);
    let violated = |state: &M::State, quiescent: bool| -> bool {
        (prop.when == When::Always || quiescent) && (prop.check)(model, state).is_err()
    };
    if violated(&state, actions.is_empty()) {
        return Some(choices);
    }
    for &key in keys {
        let index = actions
            .iter()
            .position(|a| model.action_key(&state, a) == key)?;
        state = model.next_state(&state, &actions[index], &mut trace);
        choices.push(index as u32);
        actions.clear();
        model.actions(&state, &mut actions);
        if violated(&state, actions.is_empty()) {
            return Some(choices);
        }
    }
    if prop.when == When::Quiescent {
        while !actions.is_empty() && (choices.len() as u32) < max_depth {
            state = model.next_state(&state, &actions[0], &mut trace);
            choices.push(0);
            actions.clear();
            model.actions(&state, &mut actions);
        }
        if violated(&state, actions.is_empty()) {
            return Some(choices);
        }
    }
    None
}

/// Shrinks a schedule violating property `prop` (an index into
/// [`Model::properties`]): removes single steps, matched by action key,
/// while the violation persists, until no removal keeps it. The result is
/// never longer than the input and still violates the property.
pub fn shrink<M: Model>(model: &M, prop: usize, schedule: &[u32], max_depth: u32) -> Vec<u32> {
    let props = model.properties();
    let property = &props[prop];
    let Ok(keys) = super::keys_of(model, schedule) else {
        // A schedule that does not replay cannot be shrunk; keep it.
        return schedule.to_vec();
    };
    let Some(mut best) = run_keys(model, property, &keys, max_depth) else {
        // Not reproducible by key (should not happen); keep the original.
        return schedule.to_vec();
    };
    let keys_of = |choices: &[u32]| super::keys_of(model, choices).expect("choices just taken");
    let mut best_keys = keys_of(&best);
    // Tries a candidate key list; keeps it when it violates with fewer
    // steps.
    let try_keys = |candidate: &[u64], best: &mut Vec<u32>, best_keys: &mut Vec<u64>| match run_keys(
        model, property, candidate, max_depth,
    ) {
        Some(choices) if choices.len() < best.len() => {
            *best = choices;
            *best_keys = keys_of(best);
            true
        }
        _ => false,
    };
    loop {
        // Single steps first, then pairs: a step of one actor that only
        // makes sense with another of its steps (a lock and its unlock, a
        // request and its reply) goes only with its partner, and a random
        // walk's detours are made of such pairs.
        let mut improved = false;
        let mut i = 0;
        while i < best_keys.len() {
            let mut candidate = best_keys.clone();
            candidate.remove(i);
            if try_keys(&candidate, &mut best, &mut best_keys) {
                improved = true;
            } else {
                i += 1;
            }
        }
        if !improved && best_keys.len() <= MAX_PAIR_SHRINK {
            'pairs: for i in 0..best_keys.len() {
                for j in i + 1..best_keys.len() {
                    let mut candidate = best_keys.clone();
                    candidate.remove(j);
                    candidate.remove(i);
                    if try_keys(&candidate, &mut best, &mut best_keys) {
                        improved = true;
                        break 'pairs;
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
    best
}

/// Pairs of steps are tried for removal up to this schedule length
/// (quadratic in it).
const MAX_PAIR_SHRINK: usize = 128;
