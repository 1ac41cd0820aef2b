//! Shrinking a violating schedule to a minimal one.
//!
//! Steps are matched by [`Model::action_key`], not by index, so that after
//! a step is removed the remaining steps still mean the same actions.

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
    // Translate choices into keys.
    let mut keys = Vec::with_capacity(schedule.len());
    {
        let mut trace = Trace::off();
        let mut state = model.init_state();
        let mut actions = Vec::new();
        for &choice in schedule {
            actions.clear();
            model.actions(&state, &mut actions);
            let action = &actions[choice as usize];
            keys.push(model.action_key(&state, action));
            state = model.next_state(&state, action, &mut trace);
        }
    }
    let Some(mut best) = run_keys(model, property, &keys, max_depth) else {
        // Not reproducible by key (should not happen); keep the original.
        return schedule.to_vec();
    };
    // Keep the keys of the best schedule in sync with its choices.
    let keys_of = |choices: &[u32]| -> Vec<u64> {
        let mut trace = Trace::off();
        let mut state = model.init_state();
        let mut actions = Vec::new();
        let mut out = Vec::with_capacity(choices.len());
        for &c in choices {
            actions.clear();
            model.actions(&state, &mut actions);
            out.push(model.action_key(&state, &actions[c as usize]));
            state = model.next_state(&state, &actions[c as usize], &mut trace);
        }
        out
    };
    let mut best_keys = keys_of(&best);
    loop {
        let mut improved = false;
        let mut i = 0;
        while i < best_keys.len() {
            let mut candidate = best_keys.clone();
            candidate.remove(i);
            match run_keys(model, property, &candidate, max_depth) {
                Some(choices) if choices.len() < best.len() => {
                    best = choices;
                    best_keys = keys_of(&best);
                    improved = true;
                }
                _ => i += 1,
            }
        }
        if !improved {
            break;
        }
    }
    best
}
