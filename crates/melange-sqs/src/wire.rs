//! The Python Melange 7.2.0 wire format on SQS and SNS, as pure functions over a message body
//! and its attributes (no SDK types), so it can be unit-tested, golden-tested and fuzzed.
//!
//! # Sending
//!
//! - To a queue: the body is the JSON object `{"Message": "<content>"}` ([`queue_body`]) and
//!   the message attributes `manifest` (`String`) and `serializer_id` (`Number`), exactly as
//!   Python Melange's `publish_to_queue` writes them.
//! - To a topic: the SNS `Message` is the bare content, with the same two attributes.
//!
//! # Receiving
//!
//! [`decode`] reads every form Python Melange accepts:
//!
//! - `{"Message": "<content>"}` with `manifest` / `serializer_id` SQS message attributes (a
//!   queue publish);
//! - the SNS notification envelope of a non-raw subscription: `Message` plus
//!   `MessageAttributes` whose entries are `{"Type": ..., "Value": ...}`;
//! - a raw SNS delivery: the bare content as body, the attributes copied onto the SQS message;
//! - any other body (not JSON, or JSON without `Message`): the content is the body itself, the
//!   manifest and serializer id come from the SQS attributes when present.
//!
//! Anything malformed is a typed [`WireError`], never a panic.

use std::borrow::Cow;
use std::collections::HashMap;

pub use melange_core::envelope::WireError;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The largest message SQS accepts and delivers: 1 MiB (1,048,576 bytes), body plus attribute
/// names, types and values.
pub const SQS_MAX_MESSAGE_SIZE: usize = 1_048_576;

/// The largest message SNS accepts for publishing: 256 KiB (262,144 bytes), body plus
/// attribute names, types and values.
pub const SNS_MAX_MESSAGE_SIZE: usize = 262_144;

/// The message attribute carrying the manifest (a `String`).
pub const MANIFEST_ATTRIBUTE: &str = "manifest";

/// The message attribute carrying the serializer identifier (a `Number`).
pub const SERIALIZER_ID_ATTRIBUTE: &str = "serializer_id";

/// One message attribute as SQS delivers it (`DataType` and `StringValue`), or as an SNS
/// notification envelope carries it (`Type` and `Value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// `String`, `Number`, `Binary`, possibly with a custom suffix (`Number.int`).
    pub data_type: String,
    /// The value of a `String` or `Number` attribute; `None` for `Binary` ones.
    pub string_value: Option<String>,
}

impl Attribute {
    /// A `String` attribute.
    pub fn string(value: impl Into<String>) -> Self {
        Self {
            data_type: "String".to_owned(),
            string_value: Some(value.into()),
        }
    }

    /// A `Number` attribute.
    pub fn number(value: impl Into<String>) -> Self {
        Self {
            data_type: "Number".to_owned(),
            string_value: Some(value.into()),
        }
    }

    /// The base type: `String`, `Number` or `Binary`, without a custom suffix.
    pub fn base_type(&self) -> &str {
        self.data_type
            .split_once('.')
            .map_or(&*self.data_type, |(base, _)| base)
    }
}

/// How a received body was laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyFormat {
    /// `{"Message": ...}` as Python Melange sends to queues.
    Melange,
    /// An SNS notification envelope (non-raw subscription).
    SnsNotification,
    /// Anything else: the body is the content (raw SNS delivery, foreign producers).
    Raw,
}

/// A received message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMessage {
    /// The serialized content.
    pub content: String,
    /// The manifest, when the sender wrote a non-empty one.
    pub manifest: Option<String>,
    /// The serializer identifier, when the sender wrote one.
    pub serializer_id: Option<u32>,
    /// `String` and `Number` attributes other than `manifest` and `serializer_id` (from the SQS
    /// message, and from the SNS envelope, which wins on a clash).
    pub attributes: HashMap<String, String>,
    /// How the body was laid out.
    pub format: BodyFormat,
}

/// The SQS body Python Melange's `publish_to_queue` writes: `{"Message": "<content>"}`.
///
/// Characters SQS refuses in a body (U+FFFE, U+FFFF) are written as JSON escapes, which every
/// JSON reader (Python's included) decodes back.
pub fn queue_body(content: &str) -> String {
    let body = serde_json::json!({ "Message": content }).to_string();
    if body.contains(['\u{FFFE}', '\u{FFFF}']) {
        body.replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff")
    } else {
        body
    }
}

/// The size SQS and SNS count for a message: the body plus every attribute's name, data type
/// and value.
pub fn message_size<'a>(
    body: &str,
    attributes: impl IntoIterator<Item = (&'a str, &'a Attribute)>,
) -> usize {
    body.len()
        + attributes
            .into_iter()
            .map(|(name, attribute)| {
                name.len()
                    + attribute.data_type.len()
                    + attribute.string_value.as_ref().map_or(0, String::len)
            })
            .sum::<usize>()
}

/// The attributes Python Melange sends with a message: `manifest` and `serializer_id` when
/// there is a manifest, plus the extra string attributes.
pub fn outgoing_attributes(
    manifest: Option<&str>,
    serializer_id: u32,
    extra: &HashMap<String, String>,
) -> HashMap<String, Attribute> {
    let mut attributes: HashMap<String, Attribute> = extra
        .iter()
        .map(|(name, value)| (name.clone(), Attribute::string(value.clone())))
        .collect();
    if let Some(manifest) = manifest {
        attributes.insert(MANIFEST_ATTRIBUTE.to_owned(), Attribute::string(manifest));
        attributes.insert(
            SERIALIZER_ID_ATTRIBUTE.to_owned(),
            Attribute::number(serializer_id.to_string()),
        );
    }
    attributes
}

/// Decodes a received SQS message: its body and its message attributes. Messages larger than
/// `size_limit` bytes (body plus attributes) are rejected with [`WireError::TooLarge`].
pub fn decode(
    body: &str,
    attributes: &HashMap<String, Attribute>,
    size_limit: usize,
) -> Result<WireMessage, WireError> {
    let size = message_size(body, attributes.iter().map(|(k, v)| (k.as_str(), v)));
    if size > size_limit {
        return Err(WireError::TooLarge {
            size,
            limit: size_limit,
        });
    }

    // Attributes of the SQS message first; an SNS envelope's attributes override them.
    let mut message = from_sqs_attributes(attributes)?;
    if !body.trim_start().starts_with('{') {
        message.content = body.to_owned();
        return Ok(message);
    }
    match serde_json::from_str::<BodyFields>(body) {
        // Not a Python Melange body: a raw delivery, or any JSON without `Message`.
        Ok(BodyFields { message: None, .. }) => message.content = body.to_owned(),
        Ok(BodyFields {
            message: Some(Some(content)),
            kind,
            attributes,
        }) => read_melange_body(
            &mut message,
            content,
            kind.as_deref() == Some("Notification"),
            attributes.as_ref(),
        )?,
        // A malformed `Message`, or anything the typed pass does not read: the general path,
        // which also words the errors.
        _ => read_body_value(body, &mut message)?,
    }
    Ok(message)
}

/// A raw message with what the SQS message attributes say; the body fills in the rest.
fn from_sqs_attributes(attributes: &HashMap<String, Attribute>) -> Result<WireMessage, WireError> {
    let mut message = WireMessage {
        content: String::new(),
        manifest: None,
        serializer_id: None,
        attributes: HashMap::new(),
        format: BodyFormat::Raw,
    };
    read_attributes(
        attributes
            .iter()
            .map(|(name, a)| (name.as_str(), a.base_type(), a.string_value.as_deref())),
        &mut message,
    )?;
    Ok(message)
}

/// The fields of a JSON object body that [`decode`] reads, in one typed pass that skips the
/// rest (building a [`Value`] for every body cost about 1.6 times reading `Message` alone);
/// only an SNS envelope's `MessageAttributes` are read into `Value`s.
/// Whatever it cannot read goes to [`read_body_value`]: a body holding a number out of `f64`'s
/// range in a field nobody reads is read here as Python's `json.loads` reads it, where the
/// `Value` parse would give up and take the whole body as content.
#[derive(Deserialize)]
struct BodyFields<'a> {
    /// Absent: `None`; `null`: `Some(None)` (an error, worded by the general path).
    #[serde(rename = "Message", default, deserialize_with = "present")]
    message: Option<Option<String>>,
    #[serde(rename = "Type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    /// `null` counts as absent, as on the general path; anything but an object or `null` is
    /// left to it.
    #[serde(rename = "MessageAttributes", default)]
    attributes: Option<serde_json::Map<String, Value>>,
}

/// Tells a field that is present (even as `null`) from one that is absent (the `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Reads a body that starts like a JSON object through a [`Value`]: every body the typed pass
/// does not take (the errors are worded here).
fn read_body_value(body: &str, message: &mut WireMessage) -> Result<(), WireError> {
    match serde_json::from_str::<Value>(body).ok() {
        Some(Value::Object(mut object)) if object.contains_key("Message") => {
            let content = match object.remove("Message") {
                Some(Value::String(content)) => content,
                Some(other) => {
                    return Err(WireError::InvalidBody {
                        reason: format!(
                            "`Message` must be a string, found {}",
                            json_type_name(&other)
                        ),
                    });
                }
                None => String::new(),
            };
            let is_notification =
                object.get("Type").and_then(Value::as_str) == Some("Notification");
            let envelope_attributes = match object.remove("MessageAttributes") {
                Some(Value::Object(attributes)) => Some(attributes),
                Some(Value::Null) | None => None,
                Some(other) => {
                    return Err(WireError::InvalidBody {
                        reason: format!(
                            "`MessageAttributes` must be an object, found {}",
                            json_type_name(&other)
                        ),
                    });
                }
            };
            read_melange_body(
                message,
                content,
                is_notification,
                envelope_attributes.as_ref(),
            )?;
        }
        _ => {
            message.content = body.to_owned();
            message.format = BodyFormat::Raw;
        }
    }
    Ok(())
}

/// Fills in a Python Melange body however it was read: its `Message`, and for an SNS
/// envelope its `Type` and `MessageAttributes`.
fn read_melange_body(
    message: &mut WireMessage,
    content: String,
    is_notification: bool,
    envelope_attributes: Option<&serde_json::Map<String, Value>>,
) -> Result<(), WireError> {
    message.content = content;
    match envelope_attributes {
        Some(attributes) => {
            message.format = BodyFormat::SnsNotification;
            read_envelope_attributes(attributes, message)
        }
        None => {
            message.format = if is_notification {
                BodyFormat::SnsNotification
            } else {
                BodyFormat::Melange
            };
            Ok(())
        }
    }
}

/// Reads the `MessageAttributes` of an SNS notification envelope:
/// `{"name": {"Type": "String", "Value": "..."}}`.
fn read_envelope_attributes(
    envelope: &serde_json::Map<String, Value>,
    message: &mut WireMessage,
) -> Result<(), WireError> {
    let mut entries = Vec::with_capacity(envelope.len());
    for (name, entry) in envelope {
        let Value::Object(entry) = entry else {
            return Err(WireError::InvalidAttribute {
                name: name.clone(),
                reason: format!(
                    "an SNS envelope attribute must be an object, found {}",
                    json_type_name(entry)
                ),
            });
        };
        let data_type = match entry.get("Type") {
            Some(Value::String(data_type)) => data_type.as_str(),
            None => "String",
            Some(other) => {
                return Err(WireError::InvalidAttribute {
                    name: name.clone(),
                    reason: format!("`Type` must be a string, found {}", json_type_name(other)),
                });
            }
        };
        let base_type = data_type
            .split_once('.')
            .map_or(data_type, |(base, _)| base);
        let value = match entry.get("Value") {
            Some(Value::String(value)) => Some(value.as_str()),
            Some(Value::Null) | None => None,
            Some(other) => {
                return Err(WireError::InvalidAttribute {
                    name: name.clone(),
                    reason: format!("`Value` must be a string, found {}", json_type_name(other)),
                });
            }
        };
        entries.push((name.as_str(), base_type, value));
    }
    read_attributes(entries, message)
}

/// Applies attributes `(name, base type, string value)` to the message: `manifest` and
/// `serializer_id` are checked and taken apart, other string-valued ones are kept.
fn read_attributes<'a>(
    attributes: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
    message: &mut WireMessage,
) -> Result<(), WireError> {
    for (name, base_type, value) in attributes {
        match name {
            MANIFEST_ATTRIBUTE => {
                if base_type == "Binary" {
                    return Err(WireError::InvalidAttribute {
                        name: name.to_owned(),
                        reason: "must be a String attribute, found Binary".to_owned(),
                    });
                }
                // Python Melange's topic publisher writes an empty manifest when it has none,
                // and its reader treats an empty one as missing.
                if let Some(manifest) = value.filter(|m| !m.is_empty()) {
                    message.manifest = Some(manifest.to_owned());
                }
            }
            SERIALIZER_ID_ATTRIBUTE => {
                let Some(value) = value else {
                    return Err(WireError::InvalidAttribute {
                        name: name.to_owned(),
                        reason: format!("must be a Number attribute, found {base_type}"),
                    });
                };
                let id =
                    value
                        .trim()
                        .parse::<u32>()
                        .map_err(|error| WireError::InvalidAttribute {
                            name: name.to_owned(),
                            reason: format!("`{value}` is not a serializer identifier: {error}"),
                        })?;
                message.serializer_id = Some(id);
            }
            _ => {
                if let Some(value) = value {
                    message.attributes.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }
    Ok(())
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn melange_attributes(manifest: &str, serializer_id: &str) -> HashMap<String, Attribute> {
        HashMap::from([
            ("manifest".to_owned(), Attribute::string(manifest)),
            ("serializer_id".to_owned(), Attribute::number(serializer_id)),
        ])
    }

    fn decode_ok(body: &str, attributes: &HashMap<String, Attribute>) -> WireMessage {
        match decode(body, attributes, SQS_MAX_MESSAGE_SIZE) {
            Ok(message) => message,
            Err(error) => panic!("{body:?} did not decode: {error}"),
        }
    }

    /// What `decode` gave before the typed pass: every object body through a `Value`.
    fn decode_through_value(
        body: &str,
        attributes: &HashMap<String, Attribute>,
    ) -> Result<WireMessage, WireError> {
        let mut message = from_sqs_attributes(attributes)?;
        if body.trim_start().starts_with('{') {
            read_body_value(body, &mut message)?;
        } else {
            message.content = body.to_owned();
        }
        Ok(message)
    }

    #[test]
    fn typed_pass_reads_every_body_as_the_value_path_does() {
        let messages = [
            None,
            Some("null"),
            Some(r#""plain""#),
            Some(r#""{\"k\": \"\u00e9\"}""#),
            Some("5"),
            Some("{}"),
        ];
        let kinds = [
            None,
            Some("null"),
            Some(r#""Notification""#),
            Some(r#""Notificati\u006fn""#),
            Some(r#""Other""#),
            Some("3"),
        ];
        let envelope_attributes = [
            None,
            Some("null"),
            Some("{}"),
            Some(r#"{"tenant": {"Type": "String", "Value": "acme"}, "manifest": {"Value": "M"}}"#),
            Some(r#"{"serializer_id": {"Type": "Number", "Value": "x"}}"#),
            Some(r#"{"tenant": ["String", "acme"], "a": {"Type": null}, "b": {"Value": 3}}"#),
            Some(
                r#"{"manifest": {"Type": "Binary", "Value": "M"}, "n": {"Value": "1", "x": 1e400}}"#,
            ),
            Some(r#""text""#),
            Some("[1]"),
        ];
        let extras = [
            None,
            Some(r#""other": [1, {"y": null}, 1.5e3, true]"#),
            Some(r#""Message": "again""#),
        ];
        let sqs_attributes = [HashMap::new(), melange_attributes("json", "1")];
        let mut compared = 0;
        for message in messages {
            for kind in kinds {
                for envelope in envelope_attributes {
                    for extra in extras {
                        let mut fields: Vec<String> = [
                            message.map(|v| format!(r#""Message": {v}"#)),
                            kind.map(|v| format!(r#""Type": {v}"#)),
                            envelope.map(|v| format!(r#""MessageAttributes": {v}"#)),
                            extra.map(str::to_owned),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        for _ in 0..2 {
                            let body = format!(" {{{}}} ", fields.join(", "));
                            for attributes in &sqs_attributes {
                                assert_eq!(
                                    decode(&body, attributes, SQS_MAX_MESSAGE_SIZE),
                                    decode_through_value(&body, attributes),
                                    "{body}"
                                );
                                compared += 1;
                            }
                            fields.reverse();
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 6 * 6 * 9 * 3 * 2 * 2);
        for body in [
            "{",
            r#"{"Message": "x"} trailing"#,
            r#"{"Message": "\ud800"}"#,
            "{}",
            "  {\"Message\":\"x\"}",
        ] {
            assert_eq!(
                decode(body, &HashMap::new(), SQS_MAX_MESSAGE_SIZE),
                decode_through_value(body, &HashMap::new()),
                "{body}"
            );
        }
    }

    #[test]
    fn queue_body_is_python_melange_layout_and_round_trips() {
        let content = r#"{"kind": "héllo \"quoted\""}"#;
        let body = queue_body(content);
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed, serde_json::json!({ "Message": content }));
        let message = decode_ok(&body, &melange_attributes("json", "1"));
        assert_eq!(message.content, content);
        assert_eq!(message.manifest.as_deref(), Some("json"));
        assert_eq!(message.serializer_id, Some(1));
        assert_eq!(message.format, BodyFormat::Melange);
    }

    #[test]
    fn queue_body_escapes_noncharacters_sqs_refuses() {
        let body = queue_body("a\u{FFFF}b\u{FFFE}");
        assert!(!body.contains('\u{FFFF}') && !body.contains('\u{FFFE}'));
        assert_eq!(
            decode_ok(&body, &HashMap::new()).content,
            "a\u{FFFF}b\u{FFFE}"
        );
    }

    #[test]
    fn sns_envelope_attributes_win() {
        let body = serde_json::json!({
            "Type": "Notification",
            "Message": "payload",
            "MessageAttributes": {
                "manifest": {"Type": "String", "Value": "OrderCreated"},
                "serializer_id": {"Type": "Number", "Value": "2"},
                "tenant": {"Type": "String", "Value": "acme"},
            },
        })
        .to_string();
        let message = decode_ok(&body, &HashMap::new());
        assert_eq!(message.content, "payload");
        assert_eq!(message.manifest.as_deref(), Some("OrderCreated"));
        assert_eq!(message.serializer_id, Some(2));
        assert_eq!(message.attributes["tenant"], "acme");
        assert_eq!(message.format, BodyFormat::SnsNotification);
    }

    #[test]
    fn sns_envelope_without_attributes_falls_back_to_sqs_attributes() {
        let body = r#"{"Type": "Notification", "Message": "x"}"#;
        let message = decode_ok(body, &melange_attributes("json", "1"));
        assert_eq!(message.format, BodyFormat::SnsNotification);
        assert_eq!(message.manifest.as_deref(), Some("json"));
    }

    #[test]
    fn raw_delivery_and_foreign_bodies_are_the_content() {
        let attributes = melange_attributes("json", "1");
        for body in [
            r#"{"kind": "raw"}"#,
            "not json at all",
            "[1, 2]",
            "",
            "{broken",
        ] {
            let message = decode_ok(body, &attributes);
            assert_eq!(message.content, body);
            assert_eq!(message.format, BodyFormat::Raw);
            assert_eq!(message.serializer_id, Some(1));
        }
        let message = decode_ok("plain", &HashMap::new());
        assert_eq!((message.manifest, message.serializer_id), (None, None));
    }

    #[test]
    fn empty_manifest_is_missing() {
        let message = decode_ok("x", &melange_attributes("", "1"));
        assert_eq!(message.manifest, None);
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        let cases: Vec<(&str, HashMap<String, Attribute>)> = vec![
            ("x", melange_attributes("json", "one")),
            ("x", melange_attributes("json", "-1")),
            (r#"{"Message": 5}"#, HashMap::new()),
            (
                r#"{"Message": "x", "MessageAttributes": []}"#,
                HashMap::new(),
            ),
            (
                r#"{"Message": "x", "MessageAttributes": {"serializer_id": {"Type": "Number", "Value": "x"}}}"#,
                HashMap::new(),
            ),
            (
                r#"{"Message": "x", "MessageAttributes": {"manifest": 3}}"#,
                HashMap::new(),
            ),
            (
                "x",
                HashMap::from([(
                    "manifest".to_owned(),
                    Attribute {
                        data_type: "Binary".to_owned(),
                        string_value: None,
                    },
                )]),
            ),
        ];
        for (body, attributes) in cases {
            assert!(
                decode(body, &attributes, SQS_MAX_MESSAGE_SIZE).is_err(),
                "{body:?} {attributes:?} should not decode"
            );
        }
        assert!(matches!(
            decode(r#"{"Message": 5}"#, &HashMap::new(), SQS_MAX_MESSAGE_SIZE),
            Err(WireError::InvalidBody { .. })
        ));
        assert!(matches!(
            decode("x", &melange_attributes("json", "one"), SQS_MAX_MESSAGE_SIZE),
            Err(WireError::InvalidAttribute { name, .. }) if name == "serializer_id"
        ));
    }

    #[test]
    fn oversized_messages_are_rejected() {
        let body = "x".repeat(100);
        assert_eq!(
            decode(&body, &HashMap::new(), 99),
            Err(WireError::TooLarge {
                size: 100,
                limit: 99
            })
        );
    }

    /// The in-memory backend checks sizes with `OutgoingMessage::wire_size` and
    /// `topic_wire_size` (melange-core); they must be the numbers this crate's
    /// `prepare_queue_message` and `prepare_topic_message` compute from the same functions
    /// as here, or a test passes in memory and the same message fails on SQS.
    #[test]
    fn melange_core_sizes_are_the_sizes_melange_sqs_checks() {
        use melange_core::OutgoingMessage;

        let pieces = [
            "x",
            "order",
            "\"",
            "\\",
            "\n",
            "\t",
            "\r",
            "\u{8}",
            "\u{c}",
            "\u{0}",
            "\u{1}",
            "\u{1f}",
            "\u{7f}",
            " ",
            "/",
            "<&>",
            "é",
            "€",
            "\u{2028}",
            "\u{FFFD}",
            "\u{FFFE}",
            "\u{FFFF}",
            "😀",
            r#"{"k":"v\"w"}"#,
        ];
        let serializer_ids = [0, 1, 2, 9, 10, 99, 100, 12_345, u32::MAX];
        let attribute_names = ["trace-id", "tenant", "manifest", "serializer_id", "a.b"];
        // xorshift64: many shapes, the same on every run.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let mut contents: Vec<String> = Vec::new();
        // Runs of one piece, across the eight-byte words melange-core reads at a time.
        for piece in pieces {
            for count in 0..=17 {
                contents.push(piece.repeat(count));
            }
        }
        for _ in 0..3_000 {
            let len = next(48);
            contents.push((0..len).map(|_| pieces[next(pieces.len())]).collect());
        }
        for (case, content) in contents.into_iter().enumerate() {
            let mut message = OutgoingMessage::new(
                content,
                ["json", "OrderCreated", "é-manifest", ""][case % 4],
                serializer_ids[next(serializer_ids.len())],
            );
            if next(4) == 0 {
                message.manifest = None;
            }
            for _ in 0..next(4) {
                let name = attribute_names[next(attribute_names.len())];
                let value = pieces[next(pieces.len())].repeat(next(3) + 1);
                message.attributes.insert(name.to_owned(), value);
            }
            if next(2) == 0 {
                message.subject = Some(pieces[next(pieces.len())].repeat(next(5)));
            }
            let attributes = outgoing_attributes(
                message.manifest.as_deref(),
                message.serializer_id,
                &message.attributes,
            );
            let attributes = || attributes.iter().map(|(k, v)| (k.as_str(), v));
            // As `prepare_queue_message` measures it.
            let queue = message_size(&queue_body(&message.content), attributes());
            assert_eq!(message.wire_size(), queue, "queue: {message:?}");
            // As `prepare_topic_message` measures it.
            let topic = message_size(&message.content, attributes())
                + message.subject.as_ref().map_or(0, String::len);
            assert_eq!(message.topic_wire_size(), topic, "topic: {message:?}");
        }
    }

    #[test]
    fn size_counts_names_types_and_values() {
        let attributes = outgoing_attributes(Some("json"), 1, &HashMap::new());
        let size = message_size("body", attributes.iter().map(|(k, v)| (k.as_str(), v)));
        assert_eq!(
            size,
            4 + ("manifest".len() + 6 + 4) + ("serializer_id".len() + 6 + 1)
        );
    }
}
