//! Untrusted pickle bytes through `PickleSerializer` (raw, typed, tight limits, base64).
//! The body is `melange_fuzz::pickle_decode`, which CI replays over `fuzz/corpus/pickle_decode/`.
//! Run: `cargo +nightly fuzz run pickle_decode` in fuzz/ (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = melange_fuzz::pickle_decode(data);
});
