//! Toy models for the explorer's tests of the partial-order reduction's
//! cycle proviso (`tests/soundness.rs`, `tests/jobs.rs`): each has a flag
//! that the one property forbids.

use netrace::sim::{Checked, Model, Property, Trace, When};

/// A state with the flag the toy property forbids.
pub trait Flagged {
    /// Whether the flag was raised.
    fn raised(&self) -> bool;
}

fn never_raised<M: Model>(_: &M, s: &M::State) -> Result<Checked, String>
where
    M::State: Flagged,
{
    if s.raised() {
        Err("the flag was raised".into())
    } else {
        Ok(Checked::Something)
    }
}

/// The toy models' one property: the flag is never raised.
fn never_raised_property<M: Model>() -> Vec<Property<M>>
where
    M::State: Flagged,
{
    vec![Property {
        name: "toy.never_raised",
        when: When::Always,
        summary: "the flag is never raised",
        check: never_raised::<M>,
    }]
}

/// A toy model with a cycle of local steps: a private toggle that is
/// always enabled, beside a shared step that raises a flag the property
/// forbids. Without the cycle proviso, the reduction follows the toggle
/// around its cycle forever and never tries the shared step.
pub struct Cycle;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CycleState {
    toggle: bool,
    flag: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CycleAction {
    Toggle,
    Raise,
}

impl Flagged for CycleState {
    fn raised(&self) -> bool {
        self.flag
    }
}

impl Model for Cycle {
    type State = CycleState;
    type Action = CycleAction;
    fn init_state(&self) -> CycleState {
        CycleState {
            toggle: false,
            flag: false,
        }
    }
    fn actions(&self, s: &CycleState, out: &mut Vec<CycleAction>) {
        out.push(CycleAction::Toggle);
        if !s.flag {
            out.push(CycleAction::Raise);
        }
    }
    fn next_state(&self, s: &CycleState, a: &CycleAction, _: &mut Trace) -> CycleState {
        let mut n = s.clone();
        match a {
            CycleAction::Toggle => n.toggle = !n.toggle,
            CycleAction::Raise => n.flag = true,
        }
        n
    }
    fn properties(&self) -> Vec<Property<Self>> {
        never_raised_property()
    }
    fn describe(&self, _: &CycleState, a: &CycleAction) -> String {
        format!("{a:?}")
    }
    fn action_key(&self, _: &CycleState, a: &CycleAction) -> u64 {
        match a {
            CycleAction::Toggle => 0,
            CycleAction::Raise => 1,
        }
    }
    fn is_local(&self, _: &CycleState, a: &CycleAction) -> bool {
        // The toggle is private and no property reads it: a legitimate
        // local step.
        *a == CycleAction::Toggle
    }
    fn summarize(&self, s: &CycleState) -> Vec<String> {
        vec![format!("{s:?}")]
    }
}

/// A toy model where a state's local step leads to a state of its own
/// depth: from `x = 0` two shared steps reach `x = 1` and `x = 2`; at
/// `x = 1` a local step slides to `x = 2` and a shared one raises the
/// flag the property forbids. The cycle proviso ("already visited at a
/// depth no greater than this state's") expands `x = 1` fully, so the
/// raise is found; a proviso that only looked at shallower depths would
/// follow the slide alone and miss it. None of the bundled models has a
/// step within one depth, so this is the only test of that case.
pub struct Slide;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SlideState {
    x: u8,
    flag: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlideStep {
    ToOne,
    ToTwo,
    Slide,
    Raise,
}

impl Flagged for SlideState {
    fn raised(&self) -> bool {
        self.flag
    }
}

impl Model for Slide {
    type State = SlideState;
    type Action = SlideStep;
    fn init_state(&self) -> SlideState {
        SlideState { x: 0, flag: false }
    }
    fn actions(&self, s: &SlideState, out: &mut Vec<SlideStep>) {
        match (s.x, s.flag) {
            (0, _) => out.extend([SlideStep::ToOne, SlideStep::ToTwo]),
            (1, false) => out.extend([SlideStep::Slide, SlideStep::Raise]),
            _ => {}
        }
    }
    fn next_state(&self, s: &SlideState, a: &SlideStep, _: &mut Trace) -> SlideState {
        let mut n = s.clone();
        match a {
            SlideStep::ToOne => n.x = 1,
            SlideStep::ToTwo | SlideStep::Slide => n.x = 2,
            SlideStep::Raise => n.flag = true,
        }
        n
    }
    fn properties(&self) -> Vec<Property<Self>> {
        never_raised_property()
    }
    fn describe(&self, _: &SlideState, a: &SlideStep) -> String {
        format!("{a:?}")
    }
    fn action_key(&self, _: &SlideState, a: &SlideStep) -> u64 {
        a.clone() as u64
    }
    fn is_local(&self, _: &SlideState, a: &SlideStep) -> bool {
        *a == SlideStep::Slide
    }
    fn summarize(&self, s: &SlideState) -> Vec<String> {
        vec![format!("{s:?}")]
    }
}
