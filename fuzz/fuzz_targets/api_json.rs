//! Fuzz target `api_json`: runs [`topod::fuzzing::api_json`] on every input; only a
//! panic (or a sanitizer report, hang or OOM) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = topod::fuzzing::api_json(data);
});
