//! What travels through a backend: outgoing messages and received envelopes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The backend's token for one delivery of a message, used to acknowledge it or change its
/// visibility. Cheap to clone.
#[derive(Clone)]
pub struct ReceiptHandle(Receipt);

#[derive(Clone)]
enum Receipt {
    /// A backend's text: SQS's, or any made with [`ReceiptHandle::new`].
    Text(Arc<str>),
    /// The in-memory backend's: its two numbers, written out as text only when asked (a
    /// consumer that only acknowledges never asks, and the backend reads the numbers back
    /// without parsing).
    Numbered {
        numbers: [u64; 2],
        text: OnceLock<Box<str>>,
    },
}

impl ReceiptHandle {
    /// Wraps a backend's receipt.
    pub fn new(receipt: impl Into<Arc<str>>) -> Self {
        Self(Receipt::Text(receipt.into()))
    }

    /// An in-memory backend receipt, by its numbers.
    pub(crate) fn numbered(numbers: [u64; 2]) -> Self {
        Self(Receipt::Numbered {
            numbers,
            text: OnceLock::new(),
        })
    }

    /// The numbers of a receipt made by [`numbered`](Self::numbered); `None` for text.
    pub(crate) fn numbers(&self) -> Option<[u64; 2]> {
        match &self.0 {
            Receipt::Numbered { numbers, .. } => Some(*numbers),
            Receipt::Text(_) => None,
        }
    }

    /// The receipt as the backend gave it.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Receipt::Text(text) => text,
            Receipt::Numbered { numbers, text } => {
                text.get_or_init(|| crate::memory::receipt_text(*numbers))
            }
        }
    }
}

/// Receipts are equal when their text is; two numbered ones compare without writing it.
impl PartialEq for ReceiptHandle {
    fn eq(&self, other: &Self) -> bool {
        match (self.numbers(), other.numbers()) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => self.as_str() == other.as_str(),
        }
    }
}

impl Eq for ReceiptHandle {}

impl Hash for ReceiptHandle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for ReceiptHandle {
    // Receipts are long opaque strings; the tail is enough to tell them apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.as_str();
        let tail = text
            .char_indices()
            .rev()
            .nth(9)
            .map_or(text, |(i, _)| &text[i..]);
        write!(f, "ReceiptHandle(..{tail})")
    }
}

/// A message ready to be handed to a backend: serialized content plus the attributes the
/// Python Melange wire format carries.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// The serialized message (JSON text, base64 pickle, ...).
    pub content: String,
    /// The manifest the consumer dispatches on; `None` publishes without the `manifest` and
    /// `serializer_id` attributes, as Python Melange does for a serializer with no manifest.
    pub manifest: Option<Cow<'static, str>>,
    /// The identifier of the serializer that produced `content`.
    pub serializer_id: u32,
    /// Extra string attributes to send along.
    pub attributes: HashMap<String, String>,
    /// FIFO queues: the message group (order and exclusive processing hold per group).
    pub message_group_id: Option<String>,
    /// FIFO queues: the deduplication id; content-based deduplication applies when absent.
    pub deduplication_id: Option<String>,
    /// Topics: the notification subject.
    pub subject: Option<String>,
}

impl OutgoingMessage {
    /// A message with the given content, manifest and serializer, and nothing else set.
    pub fn new(
        content: impl Into<String>,
        manifest: impl Into<Cow<'static, str>>,
        serializer_id: u32,
    ) -> Self {
        Self {
            content: content.into(),
            manifest: Some(manifest.into()),
            serializer_id,
            attributes: HashMap::new(),
            message_group_id: None,
            deduplication_id: None,
            subject: None,
        }
    }

    /// Size in bytes as SQS counts a publish to a queue, and as melange-sqs checks it
    /// against SQS's 1 MiB: the body melange-sqs sends, `{"Message":"<content>"}` with the
    /// content JSON-escaped (a quote, a backslash or a control character takes two to six
    /// bytes), plus every message attribute's name, data type and value.
    pub fn wire_size(&self) -> usize {
        QUEUE_BODY_WRAPPER + json_string_len(&self.content) + self.attributes_size()
    }

    /// `Some(`[`wire_size`](Self::wire_size)`)` when that is over `limit`. Escaping at most
    /// sextuples a byte, so a message whose worst case fits is not read through: the
    /// in-memory backend checks every publish, and nearly all are far from the limit.
    pub(crate) fn wire_size_over(&self, limit: usize) -> Option<usize> {
        let attributes = self.attributes_size();
        let worst = self.content.len().saturating_mul(6);
        if QUEUE_BODY_WRAPPER + worst + attributes <= limit {
            return None;
        }
        let size = QUEUE_BODY_WRAPPER + json_string_len(&self.content) + attributes;
        (size > limit).then_some(size)
    }

    /// Size in bytes as SNS counts a publish to a topic, and as melange-sqs checks it
    /// against SNS's 256 KiB: the content (SNS's `Message` is the bare content), the subject,
    /// and every message attribute's name, data type and value.
    pub fn topic_wire_size(&self) -> usize {
        self.content.len() + self.subject.as_ref().map_or(0, String::len) + self.attributes_size()
    }

    /// The attributes' share of the size: name, data type and value of each attribute
    /// melange-sqs sends. With a manifest, `manifest` (`String`) and `serializer_id`
    /// (`Number`) replace extra attributes of the same names, as they do on the wire.
    fn attributes_size(&self) -> usize {
        const STRING: usize = "String".len();
        let reserved = self.manifest.as_ref().map_or(0, |manifest| {
            (MANIFEST_ATTRIBUTE.len() + STRING + manifest.len())
                + (SERIALIZER_ID_ATTRIBUTE.len() + "Number".len() + decimal_len(self.serializer_id))
        });
        let extra: usize = self
            .attributes
            .iter()
            .filter(|(name, _)| {
                self.manifest.is_none()
                    || !(*name == MANIFEST_ATTRIBUTE || *name == SERIALIZER_ID_ATTRIBUTE)
            })
            .map(|(name, value)| name.len() + STRING + value.len())
            .sum();
        reserved + extra
    }
}

/// The message attribute melange-sqs writes the manifest in.
const MANIFEST_ATTRIBUTE: &str = "manifest";
/// The message attribute melange-sqs writes the serializer id in.
const SERIALIZER_ID_ATTRIBUTE: &str = "serializer_id";

/// The bytes of `{"Message":""}`, the body melange-sqs wraps queue content in.
const QUEUE_BODY_WRAPPER: usize = r#"{"Message":""}"#.len();

/// The length of `text` written inside a JSON string as melange-sqs writes it: serde_json's
/// escapes (`\"`, `\\`, `\n` and the like, `\u00XX` for other control characters), plus
/// U+FFFE and U+FFFF as `\ufffe` and `\uffff`, which SQS refuses raw.
fn json_string_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\u{08}' | '\t' | '\n' | '\u{0c}' | '\r' => 2,
            '\u{00}'..='\u{1f}' | '\u{FFFE}' | '\u{FFFF}' => 6,
            c => c.len_utf8(),
        })
        .sum()
}

/// The number of decimal digits of `n`.
fn decimal_len(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// The most characters SNS accepts in a subject: "less than 100".
pub const MAX_SUBJECT_CHARS: usize = 99;

/// Why SNS would refuse a subject, from [`check_subject`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSubject {
    /// The subject is empty.
    #[error("a subject must not be empty")]
    Empty,
    /// The subject holds a character other than printable ASCII: a line break, another
    /// control character, or a character that is not ASCII.
    #[error(
        "a subject must be printable ASCII text, without line breaks or control characters, \
         not hold {found:?}"
    )]
    NotPrintableAscii {
        /// The first such character.
        found: char,
    },
    /// The subject starts with a space.
    #[error("a subject must start with a letter, a number or a punctuation mark, not {found:?}")]
    BadStart {
        /// Its first character.
        found: char,
    },
    /// The subject is too long.
    #[error("a subject must be less than 100 characters long, not {chars}")]
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
}

/// Checks a topic message's subject ([`OutgoingMessage::subject`]) as SNS's `Publish` does,
/// which refuses the whole message when the subject breaks its rule: "Subjects must be
/// ASCII text that begins with a letter, number, or punctuation mark; must not include line
/// breaks or control characters; and must be less than 100 characters long" (the SNS
/// `Publish` API reference).
///
/// Newer editions of that reference (and of the AWS SDKs generated from it) say "UTF-8 text
/// with no line breaks or control characters, and less than 100 characters long"; this
/// check keeps to the stricter ASCII rule, so a subject it accepts is accepted under either
/// reading.
///
/// The in-memory backend refuses a topic message whose subject fails it with
/// [`BackendError::InvalidRequest`](crate::BackendError::InvalidRequest).
///
/// ```
/// use melange_core::envelope::{InvalidSubject, check_subject};
///
/// assert!(check_subject("Order #42 created").is_ok());
/// assert_eq!(
///     check_subject("two\nlines"),
///     Err(InvalidSubject::NotPrintableAscii { found: '\n' })
/// );
/// assert!(check_subject(&"s".repeat(100)).is_err());
/// ```
pub fn check_subject(subject: &str) -> Result<(), InvalidSubject> {
    let Some(first) = subject.chars().next() else {
        return Err(InvalidSubject::Empty);
    };
    if let Some(found) = subject
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' '))
    {
        return Err(InvalidSubject::NotPrintableAscii { found });
    }
    // Printable ASCII that is not a letter, a number or a punctuation mark: a space.
    if !first.is_ascii_graphic() {
        return Err(InvalidSubject::BadStart { found: first });
    }
    // ASCII by now: one byte per character.
    if subject.len() > MAX_SUBJECT_CHARS {
        return Err(InvalidSubject::TooLong {
            chars: subject.len(),
        });
    }
    Ok(())
}

/// How a received message was delivered: what the backend needs to acknowledge it and what a
/// handler may want to know about the delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The queue it was received from.
    pub queue: Arc<str>,
    /// The token to acknowledge or change the visibility of this delivery.
    pub receipt: ReceiptHandle,
    /// How many times the message has been received, this time included (SQS
    /// `ApproximateReceiveCount`).
    pub receive_count: u32,
    /// The FIFO message group, if any.
    pub message_group_id: Option<Arc<str>>,
    /// Message attributes other than `manifest` and `serializer_id`.
    pub attributes: HashMap<String, String>,
}

/// A received message as it goes into dispatch: the content still serialized, the manifest
/// and serializer id needed to decode it, and its [`Delivery`].
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The backend's message id (stable across redeliveries).
    pub message_id: Arc<str>,
    /// The serialized content.
    pub content: Arc<str>,
    /// The manifest, when the sender wrote one.
    pub manifest: Option<Arc<str>>,
    /// The serializer id, when the sender wrote one; the registry's default decodes otherwise.
    pub serializer_id: Option<u32>,
    /// Delivery data.
    pub delivery: Delivery,
}

/// A received message whose body or attributes could not be read. It still holds its
/// delivery, so the consumer can acknowledge or release it like any other.
#[derive(Debug, thiserror::Error)]
#[error("message {message_id} on queue `{queue}` is malformed: {error}", queue = delivery.queue)]
pub struct MalformedMessage {
    /// The backend's message id.
    pub message_id: Arc<str>,
    /// Delivery data.
    pub delivery: Delivery,
    /// What is wrong with it.
    #[source]
    pub error: WireError,
}

/// What can be wrong with a message read off the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The body is not in any format melange reads.
    #[error("invalid body: {reason}")]
    InvalidBody {
        /// Why it was rejected.
        reason: String,
    },
    /// A message attribute has the wrong type or an unreadable value.
    #[error("invalid attribute `{name}`: {reason}")]
    InvalidAttribute {
        /// The attribute's name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The message is larger than this consumer accepts.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
}

/// Options for one receive call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// At most this many messages (SQS allows 1 to 10).
    pub max_messages: u32,
    /// Long-poll: wait up to this long for a first message (SQS allows up to 20 s).
    pub wait_time: Duration,
    /// Hide received messages from other consumers for this long; the queue's default when
    /// `None`.
    pub visibility_timeout: Option<Duration>,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        Self {
            max_messages: 10,
            wait_time: Duration::from_secs(20),
            visibility_timeout: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON string as melange-sqs writes it in a queue body: serde_json's, with U+FFFE and
    /// U+FFFF escaped.
    fn written(text: &str) -> String {
        serde_json::to_string(text)
            .unwrap()
            .replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff")
    }

    #[test]
    fn json_string_len_is_the_length_of_the_written_string() {
        let body = "{\"customer\":\"customer-42\",\"amount\":1999}";
        let odd: Vec<char> = (0..=0x7f_u8)
            .map(char::from)
            .chain([
                'é', '€', '\u{2028}', '\u{FFFD}', '\u{FFFE}', '\u{FFFF}', '😀',
            ])
            .collect();
        for at in 0..=body.len() {
            for &c in &odd {
                for repeat in [1, 2, 9] {
                    let mut text = body.to_owned();
                    text.insert_str(at, &c.to_string().repeat(repeat));
                    assert_eq!(
                        json_string_len(&text) + 2,
                        written(&text).len(),
                        "{c:?} x{repeat} at {at}"
                    );
                }
            }
        }
        assert_eq!(json_string_len(""), 0);
    }

    #[test]
    fn sizes_count_attribute_names_types_and_values() {
        let mut message = OutgoingMessage::new("a\"b", "OrderCreated", 12);
        let attributes = ("manifest".len() + "String".len() + "OrderCreated".len())
            + ("serializer_id".len() + "Number".len() + "12".len());
        assert_eq!(
            message.wire_size(),
            r#"{"Message":"a\"b"}"#.len() + attributes
        );
        assert_eq!(message.topic_wire_size(), 3 + attributes);
        message.subject = Some("Hello".to_owned());
        message
            .attributes
            .insert("trace".to_owned(), "abc".to_owned());
        // Replaced on the wire by the manifest's own attribute.
        message
            .attributes
            .insert("manifest".to_owned(), "ignored".to_owned());
        assert_eq!(message.topic_wire_size(), 3 + 5 + attributes + 5 + 6 + 3);
        message.manifest = None;
        assert_eq!(
            message.topic_wire_size(),
            3 + 5 + (5 + 6 + 3) + ("manifest".len() + 6 + "ignored".len())
        );
        for (id, digits) in [(0, 1), (9, 1), (10, 2), (u32::MAX, 10)] {
            assert_eq!(decimal_len(id), digits, "{id}");
        }
    }

    #[test]
    fn subjects_are_checked_as_sns_checks_them() {
        let longest = "s".repeat(MAX_SUBJECT_CHARS);
        for good in ["x", "1", "~ tilde first", "[tag] Order #1: paid!", &longest] {
            assert_eq!(check_subject(good), Ok(()), "{good:?}");
        }
        let too_long = "s".repeat(MAX_SUBJECT_CHARS + 1);
        let cases = [
            ("", InvalidSubject::Empty),
            (" x", InvalidSubject::BadStart { found: ' ' }),
            ("a\nb", InvalidSubject::NotPrintableAscii { found: '\n' }),
            ("\r", InvalidSubject::NotPrintableAscii { found: '\r' }),
            ("a\tb", InvalidSubject::NotPrintableAscii { found: '\t' }),
            (
                "del\u{7f}",
                InvalidSubject::NotPrintableAscii { found: '\u{7f}' },
            ),
            ("€uro", InvalidSubject::NotPrintableAscii { found: '€' }),
            (
                "\u{a0}x",
                InvalidSubject::NotPrintableAscii { found: '\u{a0}' },
            ),
            (&too_long, InvalidSubject::TooLong { chars: 100 }),
        ];
        for (subject, expected) in cases {
            assert_eq!(check_subject(subject), Err(expected), "{subject:?}");
        }
    }

    #[test]
    fn receipt_debug_shows_only_the_tail() {
        let receipt = ReceiptHandle::new("a-very-long-receipt-handle-0123456789");
        assert_eq!(format!("{receipt:?}"), "ReceiptHandle(..0123456789)");
        assert_eq!(
            format!("{:?}", ReceiptHandle::new("r1")),
            "ReceiptHandle(..r1)"
        );
    }
}
