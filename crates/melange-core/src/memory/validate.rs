//! The request checks SQS and SNS make before accepting a call: names, receive options and
//! message bodies, attributes and FIFO identifiers.

use std::time::Duration;

use crate::backend::MAX_VISIBILITY_TIMEOUT;
use crate::envelope::{OutgoingMessage, ReceiveOptions, check_subject};
use crate::error::BackendError;

/// The longest queue name SQS accepts, `.fifo` suffix included.
const MAX_QUEUE_NAME: usize = 80;
/// The longest topic name SNS accepts, `.fifo` suffix included.
const MAX_TOPIC_NAME: usize = 256;
/// The most messages one receive returns.
const MAX_RECEIVE_MESSAGES: u32 = 10;
/// The longest long-poll wait SQS accepts.
const MAX_WAIT_TIME: Duration = Duration::from_secs(20);
/// The most message attributes SQS accepts, `manifest` and `serializer_id` included.
const MAX_ATTRIBUTES: usize = 10;
/// The longest message attribute name SQS accepts.
const MAX_ATTRIBUTE_NAME: usize = 256;
/// The longest message group or deduplication id SQS accepts.
const MAX_FIFO_ID: usize = 128;
/// The range of `maxReceiveCount` SQS accepts in a redrive policy.
/// The most manifests one filter may list (SNS allows 150 values per filter policy).
const MAX_FILTER_VALUES: usize = 150;

pub(super) fn invalid(target: &str, reason: impl Into<String>) -> BackendError {
    BackendError::InvalidRequest {
        target: target.to_owned(),
        reason: reason.into(),
        source: None,
    }
}

fn invalid_name(name: &str, reason: impl Into<String>) -> BackendError {
    BackendError::InvalidName {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// Checks a name as SQS (`kind` "queue", up to 80 characters) or SNS ("topic", up to 256)
/// does: alphanumerics, hyphens and underscores, plus an optional `.fifo` suffix.
fn name(name: &str, kind: &str, max: usize) -> Result<(), BackendError> {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if base.is_empty() {
        return Err(invalid_name(
            name,
            format!("a {kind} name must not be empty"),
        ));
    }
    if name.len() > max {
        return Err(invalid_name(
            name,
            format!("a {kind} name has at most {max} characters"),
        ));
    }
    if let Some(bad) = base
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(invalid_name(
            name,
            format!(
                "a {kind} name may only hold alphanumerics, `-` and `_` (and end in `.fifo`), \
                 not {bad:?}"
            ),
        ));
    }
    Ok(())
}

/// Checks a queue name as SQS does.
pub(super) fn queue_name(queue: &str) -> Result<(), BackendError> {
    name(queue, "queue", MAX_QUEUE_NAME)
}

/// Checks a topic name as SNS does.
pub(super) fn topic_name(topic: &str) -> Result<(), BackendError> {
    name(topic, "topic", MAX_TOPIC_NAME)
}

/// Checks a visibility timeout against the 12-hour maximum.
pub(super) fn visibility_timeout(target: &str, timeout: Duration) -> Result<(), BackendError> {
    if timeout > MAX_VISIBILITY_TIMEOUT {
        return Err(invalid(
            target,
            format!(
                "visibility timeout of {timeout:?} exceeds the maximum of {MAX_VISIBILITY_TIMEOUT:?}"
            ),
        ));
    }
    Ok(())
}

/// Checks the options of one receive.
pub(super) fn receive_options(queue: &str, options: &ReceiveOptions) -> Result<(), BackendError> {
    if !(1..=MAX_RECEIVE_MESSAGES).contains(&options.max_messages) {
        return Err(invalid(
            queue,
            format!(
                "max messages must be 1 to {MAX_RECEIVE_MESSAGES}, not {}",
                options.max_messages
            ),
        ));
    }
    if options.wait_time > MAX_WAIT_TIME {
        return Err(invalid(
            queue,
            format!(
                "wait time of {:?} exceeds the maximum of {MAX_WAIT_TIME:?}",
                options.wait_time
            ),
        ));
    }
    if let Some(timeout) = options.visibility_timeout {
        visibility_timeout(queue, timeout)?;
    }
    Ok(())
}

/// Checks a manifest filter as SNS checks a filter policy.
pub(super) fn manifest_filter(topic: &str, filter: &[String]) -> Result<(), BackendError> {
    if filter.is_empty() {
        return Err(invalid(
            topic,
            "a manifest filter must list at least one manifest",
        ));
    }
    if filter.len() > MAX_FILTER_VALUES {
        return Err(invalid(
            topic,
            format!("a manifest filter lists at most {MAX_FILTER_VALUES} manifests"),
        ));
    }
    Ok(())
}

/// The first character SQS refuses in a message body, if any (SNS is held to the same
/// characters: its message reaches SQS as the body of a raw delivery).
fn disallowed_char(text: &str) -> Option<char> {
    // The common case is ASCII without control characters: eight bytes at a time while no
    // byte is below 0x20 or above 0x7f, then character by character from the first word
    // that has one (everything before it is ASCII, so that is a character boundary).
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut checked = 0;
    for word in text.as_bytes().chunks_exact(8) {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let word = u64::from_le_bytes(eight);
        // The top bit of each byte below 0x20 (a borrow may mark bytes after a marked one,
        // which only matters once one is marked), or with the top bit set.
        let below_space = word.wrapping_sub(0x2020_2020_2020_2020) & !word;
        if (below_space | word) & HIGH != 0 {
            break;
        }
        checked += 8;
    }
    text.get(checked..)?.chars().find(|c| !allowed_char(*c))
}

/// Whether SQS accepts `c` in a message body or attribute value (XML 1.0 characters).
fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn attribute_name(target: &str, name: &str) -> Result<(), BackendError> {
    let lower = name.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= MAX_ATTRIBUTE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if valid {
        Ok(())
    } else {
        Err(invalid(
            target,
            format!(
                "invalid message attribute name {name:?}: 1 to {MAX_ATTRIBUTE_NAME} \
                 alphanumerics, `-`, `_` or `.`, not starting with `AWS.` or `Amazon.`"
            ),
        ))
    }
}

/// Checks a message group or deduplication id: 1 to 128 alphanumerics or punctuation.
fn fifo_id(target: &str, what: &str, id: &str) -> Result<(), BackendError> {
    if id.is_empty() || id.len() > MAX_FIFO_ID || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            target,
            format!("a {what} has 1 to {MAX_FIFO_ID} alphanumerics or punctuation, not {id:?}"),
        ));
    }
    Ok(())
}

/// Where a message is going, for the checks that depend on it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Destination<'a> {
    /// The queue or topic name, for error messages.
    pub(super) target: &'a str,
    /// Whether it is a FIFO queue or topic.
    pub(super) fifo: bool,
    /// Whether content-based deduplication may stand in for a missing deduplication id.
    pub(super) content_based_deduplication: bool,
    /// Whether it is a topic: SNS measures the message otherwise than SQS does, and checks
    /// its subject and its bare content.
    pub(super) topic: bool,
    /// The largest message accepted, in bytes.
    pub(super) max_size: usize,
}

/// Checks a message as SQS's `SendMessage` (or SNS's `Publish`) does.
pub(super) fn message(to: Destination<'_>, message: &OutgoingMessage) -> Result<(), BackendError> {
    message_alone(to, message)?;
    deduplication(to, message.deduplication_id.is_some())
}

/// The checks of [`message`] that do not depend on the destination's settings, only on its
/// name (FIFO or not) and the backend's size limit: a publish to a queue makes them before
/// taking the backend's lock. `to.content_based_deduplication` is not read.
pub(super) fn message_alone(
    to: Destination<'_>,
    message: &OutgoingMessage,
) -> Result<(), BackendError> {
    let target = to.target;
    let over = if to.topic {
        Some(message.topic_wire_size()).filter(|size| *size > to.max_size)
    } else {
        message.wire_size_over(to.max_size)
    };
    if let Some(size) = over {
        return Err(BackendError::MessageTooLarge {
            target: target.to_owned(),
            size,
            limit: to.max_size,
        });
    }
    // Only SNS sees the content bare, and the subject: a queue body is the content
    // JSON-escaped in `{"Message": "..."}`, never empty and of allowed characters only.
    if to.topic {
        if let Some(subject) = &message.subject {
            check_subject(subject).map_err(|error| invalid(target, error.to_string()))?;
        }
        if message.content.is_empty() {
            return Err(invalid(target, "the message body must not be empty"));
        }
        if let Some(bad) = disallowed_char(&message.content) {
            return Err(invalid(
                target,
                format!("the message body holds the disallowed character {bad:?}"),
            ));
        }
    }
    let reserved = if message.manifest.is_some() { 2 } else { 0 };
    if message.attributes.len() + reserved > MAX_ATTRIBUTES {
        return Err(invalid(
            target,
            format!(
                "a message carries at most {MAX_ATTRIBUTES} attributes, manifest and serializer id included"
            ),
        ));
    }
    for (name, value) in &message.attributes {
        attribute_name(target, name)?;
        if value.is_empty() || !value.chars().all(allowed_char) {
            return Err(invalid(
                target,
                format!(
                    "message attribute {name:?} must hold a non-empty value of allowed characters"
                ),
            ));
        }
    }
    if let Some(group) = &message.message_group_id {
        fifo_id(target, "message group id", group)?;
    }
    if let Some(id) = &message.deduplication_id {
        if !to.fifo {
            return Err(invalid(
                target,
                "a deduplication id is only valid for FIFO queues and topics",
            ));
        }
        fifo_id(target, "deduplication id", id)?;
    }
    if to.fifo && message.message_group_id.is_none() {
        return Err(invalid(
            target,
            "a message for a FIFO queue or topic needs a message group id",
        ));
    }
    Ok(())
}

/// The check of [`message`] that depends on the destination's settings (which a later
/// declaration may change), made under the lock after [`message_alone`].
pub(super) fn deduplication(to: Destination<'_>, has_id: bool) -> Result<(), BackendError> {
    if to.fifo && !has_id && !to.content_based_deduplication {
        return Err(invalid(
            to.target,
            "the FIFO queue has no content-based deduplication: the message needs a deduplication id",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{allowed_char, disallowed_char};

    #[test]
    fn the_word_at_a_time_scan_finds_what_a_scan_of_every_character_finds() {
        let body = "{\"customer\":\"customer-42\",\"amount\":1999}";
        let odd = [
            '\u{0}',
            '\u{8}',
            '\u{1f}',
            ' ',
            '\u{7f}',
            'é',
            '€',
            '\u{FFFE}',
            '\u{1F600}',
            '\t',
        ];
        for at in 0..=body.len() {
            for c in odd {
                for repeat in [1, 2, 9] {
                    let mut text = body.to_owned();
                    text.insert_str(at, &c.to_string().repeat(repeat));
                    let expected = text.chars().find(|c| !allowed_char(*c));
                    assert_eq!(disallowed_char(&text), expected, "{c:?} x{repeat} at {at}");
                }
            }
        }
    }

    #[test]
    fn control_characters_are_found_wherever_they_are_and_tabs_and_newlines_pass() {
        let body = "{\"customer\":\"customer-42\",\"amount\":1999}\t\r\n".repeat(3);
        assert_eq!(disallowed_char(&body), None);
        for at in 0..body.len() {
            let mut bad = body.clone();
            bad.insert(at, '\u{1}');
            assert_eq!(disallowed_char(&bad), Some('\u{1}'), "at {at}");
        }
        assert_eq!(disallowed_char("\u{1f}"), Some('\u{1f}'));
        assert_eq!(disallowed_char("~ \u{7f}"), None);
        assert_eq!(disallowed_char("é\u{0}"), Some('\u{0}'));
        assert_eq!(disallowed_char("é\u{FFFE}"), Some('\u{FFFE}'));
    }
}
