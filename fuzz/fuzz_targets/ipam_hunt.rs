//! The bug hunt: like `ipam_schedule`, but every profile is expected to
//! hold, so the fuzzer reports the known bugs of 17.05 and 17.06 (the
//! duplicate of seed 000) from an empty corpus. See docs/fuzzing.md.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netrace::fuzzing::ipam_schedule(data, netrace::fuzzing::Expect::All);
});
