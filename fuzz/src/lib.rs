//! What the fuzz targets run, one function per target, each taking the fuzzer's bytes and
//! returning the decoded value or the typed error the library rejected them with.
//!
//! The same file is compiled into the `it` test binary
//! (`tests/it/reliability/fuzz_corpus.rs`, through `#[path]`), which replays every file of
//! `fuzz/corpus/<target>/` through these functions: CI runs exactly the code the fuzzer ran.
//! It depends only on `melange` (features `sqs` and `pickle`), `serde` and `serde_json`.

#[cfg(feature = "pickle")]
use std::collections::BTreeMap;
use std::collections::HashMap;

use melange::SerializerRegistry;
use melange::envelope::WireError;
use melange::error::SerializationError;
use melange::serializer::JsonSerializer;
#[cfg(feature = "pickle")]
use melange::serializer::pickle::{PickleError, PickleSerializer, ReadLimits};
use melange::sqs::wire::{self, Attribute, BodyFormat, WireMessage};
use serde_json::{Map, Value};

/// The fuzz targets, by name: the directories of `fuzz/corpus/`.
pub const TARGETS: &[&str] = &[
    "wire_decode",
    "sns_envelope",
    #[cfg(feature = "pickle")]
    "pickle_decode",
];

/// Runs the target `name` on `data`; `None` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> Option<Result<Decoded, Rejection>> {
    match name {
        "wire_decode" => Some(wire_decode(data)),
        "sns_envelope" => Some(sns_envelope(data)),
        #[cfg(feature = "pickle")]
        "pickle_decode" => Some(pickle_decode(data)),
        _ => None,
    }
}

/// What an input decoded to.
#[derive(Debug)]
pub struct Decoded {
    /// The message as the wire layer read it (`None` for the pickle target).
    pub message: Option<WireMessage>,
    /// The content, deserialized untyped.
    pub value: Value,
}

/// The typed error an input was rejected with.
#[derive(Debug)]
pub enum Rejection {
    /// `wire::decode` refused the body or its attributes.
    Wire(WireError),
    /// The serializer lookup or the content's decoding failed.
    Serialization(SerializationError),
    /// The pickle reader refused raw pickle bytes.
    #[cfg(feature = "pickle")]
    Pickle(PickleError),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Wire(error) => write!(f, "wire: {error}"),
            Rejection::Serialization(error) => write!(f, "serialization: {error}"),
            #[cfg(feature = "pickle")]
            Rejection::Pickle(error) => write!(f, "pickle: {error}"),
        }
    }
}

/// The registry a consumer would use: JSON (id 1) by default, pickle (id 2) when built in.
fn registry() -> SerializerRegistry {
    let builder = SerializerRegistry::builder().serializer("json", JsonSerializer);
    #[cfg(feature = "pickle")]
    let builder = builder.serializer("pickle", PickleSerializer::new());
    match builder.default_serializer("json").build() {
        Ok(registry) => registry,
        Err(error) => panic!("the fuzz registry is misconfigured: {error}"),
    }
}

/// Deserializes a decoded message's content the way the consumer does.
fn deserialize(message: WireMessage) -> Result<Decoded, Rejection> {
    let value = registry()
        .deserialize::<Value>(
            &message.content,
            message.serializer_id,
            message.manifest.as_deref(),
        )
        .map_err(Rejection::Serialization)?;
    Ok(Decoded {
        message: Some(message),
        value,
    })
}

/// Splits `name \x01 type \x01 value` (type and value optional).
fn fields(part: &str) -> (&str, Option<&str>, Option<&str>) {
    let mut fields = part.splitn(3, '\u{1}');
    let name = fields.next().unwrap_or_default();
    (name, fields.next(), fields.next())
}

/// Target `wire_decode`: an SQS message, body and attributes, through `wire::decode` (with a
/// small and the real size limit), then serializer lookup and decoding.
///
/// Layout: `body \0 (name \x01 type \x01 value \0)*`, any bytes (invalid UTF-8 is replaced).
pub fn wire_decode(data: &[u8]) -> Result<Decoded, Rejection> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let body = parts.next().unwrap_or_default();
    let mut attributes = HashMap::new();
    for part in parts {
        let (name, data_type, value) = fields(part);
        attributes.insert(
            name.to_owned(),
            Attribute {
                data_type: data_type.unwrap_or("String").to_owned(),
                string_value: value.map(str::to_owned),
            },
        );
    }
    let size = wire::message_size(body, attributes.iter().map(|(k, v)| (k.as_str(), v)));
    let limit = data.len() / 2 + 16;
    match wire::decode(body, &attributes, limit) {
        Err(WireError::TooLarge { size: seen, .. }) => {
            assert!(size > limit, "TooLarge under the limit");
            assert_eq!(seen, size, "TooLarge reports another size");
        }
        _ => assert!(size <= limit, "over the limit and not rejected as TooLarge"),
    }
    let message =
        wire::decode(body, &attributes, wire::SQS_MAX_MESSAGE_SIZE).map_err(Rejection::Wire)?;
    deserialize(message)
}

/// A field of the `sns_envelope` layout: `=json` is that JSON value (a string when it does
/// not parse), anything else a string.
fn json_field(field: &str) -> Value {
    match field.strip_prefix('=') {
        Some(json) => serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_owned())),
        None => Value::String(field.to_owned()),
    }
}

/// Target `sns_envelope`: an SNS notification envelope (non-raw subscription) as SQS delivers
/// it, with fuzzed `Message` and `MessageAttributes`, through `wire::decode`, then serializer
/// lookup and decoding.
///
/// Layout: `flags message \0 (name \x01 type \x01 value \0)*`. Flags: bit 0 adds
/// `"Type": "Notification"`; bits 1-2 pick `MessageAttributes`: absent, `null`, an object of
/// the entries, or the first entry's name as JSON; bit 3 adds SQS `manifest` /
/// `serializer_id` attributes the envelope's override. A field starting with `=` is raw JSON;
/// an entry without type or value leaves `Type` or `Value` out.
pub fn sns_envelope(data: &[u8]) -> Result<Decoded, Rejection> {
    let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\0');
    let message_field = parts.next().unwrap_or_default();
    let mut entries = Map::new();
    let mut first_name = None;
    for part in parts {
        let (name, data_type, value) = fields(part);
        first_name.get_or_insert(name);
        let mut entry = Map::new();
        if let Some(data_type) = data_type {
            entry.insert("Type".to_owned(), json_field(data_type));
        }
        if let Some(value) = value {
            entry.insert("Value".to_owned(), json_field(value));
        }
        entries.insert(name.to_owned(), Value::Object(entry));
    }

    let mut envelope = Map::new();
    if flags & 1 != 0 {
        envelope.insert("Type".to_owned(), "Notification".into());
    }
    envelope.insert(
        "MessageId".to_owned(),
        "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
    );
    envelope.insert(
        "TopicArn".to_owned(),
        "arn:aws:sns:us-east-1:123456789012:orders".into(),
    );
    let message = json_field(message_field);
    envelope.insert("Message".to_owned(), message.clone());
    envelope.insert("Timestamp".to_owned(), "2026-11-28T11:40:15.771Z".into());
    let message_attributes = match (flags >> 1) & 3 {
        0 => None,
        1 => Some(Value::Null),
        2 => Some(Value::Object(entries)),
        _ => Some(json_field(first_name.unwrap_or_default())),
    };
    let has_attribute_object = matches!(message_attributes, Some(Value::Object(_)));
    if let Some(message_attributes) = message_attributes {
        envelope.insert("MessageAttributes".to_owned(), message_attributes);
    }
    let body = Value::Object(envelope).to_string();

    let mut sqs_attributes = HashMap::new();
    if flags & 8 != 0 {
        sqs_attributes.insert(
            wire::MANIFEST_ATTRIBUTE.to_owned(),
            Attribute::string("json"),
        );
        sqs_attributes.insert(
            wire::SERIALIZER_ID_ATTRIBUTE.to_owned(),
            Attribute::number("1"),
        );
    }
    let decoded = wire::decode(&body, &sqs_attributes, wire::SQS_MAX_MESSAGE_SIZE)
        .map_err(Rejection::Wire)?;
    // A decoded envelope's content is its `Message` string, and the layout is recognised.
    let Value::String(content) = &message else {
        panic!("a non-string `Message` decoded: {body}");
    };
    assert_eq!(&decoded.content, content, "content differs from `Message`");
    let expected = if flags & 1 != 0 || has_attribute_object {
        BodyFormat::SnsNotification
    } else {
        BodyFormat::Melange
    };
    assert_eq!(decoded.format, expected, "{body}");
    deserialize(decoded)
}

/// A typed message with a field of most kinds, so typed reads walk every deserializer path.
#[cfg(feature = "pickle")]
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by `Debug` only
pub struct Typed {
    text: String,
    number: Option<i64>,
    small: u8,
    big: u128,
    ratio: f64,
    flag: bool,
    #[serde(with = "melange::serializer::pickle::datetime")]
    when: String,
    list: Vec<Typed2>,
    pair: (u16, String),
    counts: BTreeMap<String, u32>,
    kind: Kind,
    unit: (),
}

/// The nested struct of [`Typed`].
#[cfg(feature = "pickle")]
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by `Debug` only
pub struct Typed2 {
    x: i32,
    label: Option<String>,
}

/// An enum for [`Typed`]: unit, newtype and struct variants.
#[cfg(feature = "pickle")]
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by `Debug` only
pub enum Kind {
    /// A unit variant.
    Plain,
    /// A newtype variant.
    Wrapped(String),
    /// A struct variant.
    Detailed {
        /// A field.
        code: i8,
    },
}

/// Target `pickle_decode`: untrusted pickle bytes through `PickleSerializer`, untyped and
/// typed, with default and with tight [`ReadLimits`]; then the same bytes as the base64 text
/// of a message through the registry (serializer id 2).
///
/// Layout: the raw pickle bytes.
#[cfg(feature = "pickle")]
pub fn pickle_decode(data: &[u8]) -> Result<Decoded, Rejection> {
    let pickle = PickleSerializer::new();
    let mut limits = ReadLimits::default();
    limits.max_depth = 8;
    limits.max_memo_entries = 64;
    limits.max_expansion = 2;
    limits.max_input_bytes = 4096;
    let tight = match PickleSerializer::builder().limits(limits).build() {
        Ok(tight) => tight,
        Err(error) => panic!("the tight pickle serializer is misconfigured: {error}"),
    };
    let _ = tight.from_pickle::<Value>(data);
    let _ = pickle.from_pickle::<Typed>(data);
    let _ = registry().deserialize::<Value>(&String::from_utf8_lossy(data), Some(2), None);
    let value = pickle
        .from_pickle::<Value>(data)
        .map_err(Rejection::Pickle)?;
    // What was read untyped reads again from its own pickle.
    if let Ok(again) = pickle.to_pickle(&value) {
        let reread: Value = pickle
            .from_pickle(&again)
            .unwrap_or_else(|error| panic!("a re-pickled value does not read: {error}"));
        assert_eq!(reread, value, "a re-pickled value reads differently");
    }
    Ok(Decoded {
        message: None,
        value,
    })
}
