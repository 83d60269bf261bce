//! An SNS notification envelope with fuzzed `Message` and `MessageAttributes` through
//! `wire::decode`, then serializer lookup and decoding.
//! The body is `melange_fuzz::sns_envelope`, which CI replays over `fuzz/corpus/sns_envelope/`.
//! Run: `cargo +nightly fuzz run sns_envelope` in fuzz/ (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = melange_fuzz::sns_envelope(data);
});
