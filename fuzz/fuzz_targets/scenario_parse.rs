//! Any bytes as a scenario file: an error is fine, a panic or a hang is not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netrace::fuzzing::scenario_parse(data);
});
