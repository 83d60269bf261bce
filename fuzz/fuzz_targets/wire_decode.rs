//! Fuzzes everything that parses network input: the SQS body and its attributes (including
//! SNS envelopes) with `melange::sqs::wire::decode`, then serializer lookup and decoding with
//! `SerializerRegistry::deserialize`. Run: `cargo +nightly fuzz run wire_decode` in fuzz/.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use melange::SerializerRegistry;
use melange::sqs::wire::{self, Attribute};

fuzz_target!(|data: &[u8]| {
    // Layout: body \0 (name \x01 type \x01 value \0)* — any bytes; invalid UTF-8 is lossy.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let body = parts.next().unwrap_or_default();
    let mut attributes = HashMap::new();
    for part in parts {
        let mut fields = part.splitn(3, '\u{1}');
        let name = fields.next().unwrap_or_default().to_owned();
        let data_type = fields.next().unwrap_or("String").to_owned();
        let string_value = fields.next().map(str::to_owned);
        attributes.insert(
            name,
            Attribute {
                data_type,
                string_value,
            },
        );
    }
    let limit = data.len() / 2 + 16;
    let _ = wire::decode(body, &attributes, limit);
    if let Ok(message) = wire::decode(body, &attributes, wire::SQS_MAX_MESSAGE_SIZE) {
        let registry = SerializerRegistry::default();
        let _ = registry.deserialize::<serde_json::Value>(
            &message.content,
            message.serializer_id,
            message.manifest.as_deref(),
        );
    }
});
