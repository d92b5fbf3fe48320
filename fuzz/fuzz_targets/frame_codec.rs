//! Fuzz target `frame_codec`: runs [`topod::fuzzing::frame_codec`] on every input; only a
//! panic (or a sanitizer report, hang or OOM) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = topod::fuzzing::frame_codec(data);
});
