//! Allocator scenarios and schedules from bytes; a violation of a property
//! a fixed profile (18.03, classic-swarm-cas) must hold is a crash, whose
//! message holds a scenario file and a replay token. See docs/fuzzing.md.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netrace::fuzzing::ipam_schedule(data, netrace::fuzzing::Expect::Fixed);
});
