//! Fuzz target `handshake`: runs [`topod::fuzzing::handshake`] on every input; only a
//! panic (or a sanitizer report, hang or OOM) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = topod::fuzzing::handshake(data);
});
