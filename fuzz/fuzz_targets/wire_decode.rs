//! An SQS message (body + attributes, SNS envelopes included) through `wire::decode`, then
//! serializer lookup and decoding.
//! The body is `melange_fuzz::wire_decode`, which CI replays over `fuzz/corpus/wire_decode/`.
//! Run: `cargo +nightly fuzz run wire_decode` in fuzz/ (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = melange_fuzz::wire_decode(data);
});
