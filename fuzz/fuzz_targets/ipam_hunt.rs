//! The duplicate hunt: like `ipam_schedule`, but every profile counts and
//! only `ipam.unique` matters, so from an empty corpus the fuzzer finds the
//! duplicate of seed 000 in the 17.05 (and 17.06 + serial) profiles.
//! See docs/fuzzing.md.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netrace::fuzzing::ipam_schedule(data, netrace::fuzzing::Expect::Duplicates);
});
