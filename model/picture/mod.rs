//! Pictures: sequence diagrams of schedules ([`sequence`]) and the HTML
//! report of a check ([`report`]). Both are self-contained files that
//! need nothing but a browser (no script, no network fetch), written
//! deterministically from a replay or a check's results.

pub mod report;
pub mod sequence;
