//! Any bytes through every frame parser and `describe`: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netrace::fuzzing::frame_parse(data);
});
