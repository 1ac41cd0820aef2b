//! Overlay scenarios (scripts from bytes) and frame delivery orders; a
//! violation in `swarm-mode` or `locality-check` is a crash with a scenario
//! file and a replay token. See docs/fuzzing.md.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netrace::fuzzing::l2_orderings(data, netrace::fuzzing::Expect::Fixed);
});
