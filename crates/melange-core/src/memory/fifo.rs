//! FIFO queues: message groups (order and the in-flight lock per group) and the
//! five-minute deduplication window.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::state::MessageNumber;

/// How long SQS and SNS remember a deduplication id: five minutes.
pub const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The visible messages of a FIFO queue, by message group.
///
/// A group is *ready* when none of its messages is in flight and it has a visible message;
/// receives serve ready groups in the order of their oldest message, and take messages of a
/// group in order. A group with a message in flight is locked: none of its messages is
/// delivered until the in-flight ones are acknowledged or become visible again.
#[derive(Debug, Default)]
pub(super) struct FifoGroups {
    groups: HashMap<Arc<str>, Group>,
    /// Ready groups keyed by (sequence number of their oldest message, group).
    ready: BTreeSet<(u64, Arc<str>)>,
}

#[derive(Debug, Default)]
struct Group {
    /// Sequence numbers of the group's visible messages.
    visible: BTreeSet<u64>,
    /// How many of the group's messages are in flight.
    in_flight: u32,
    /// The key under which the group sits in `ready`, if it does.
    ready_key: Option<u64>,
}

impl FifoGroups {
    /// A message of `group` became visible (sent, or back from flight with `from_flight`).
    pub(super) fn push_visible(&mut self, group: &Arc<str>, seq: u64, from_flight: bool) {
        let entry = self.groups.entry(group.clone()).or_default();
        entry.visible.insert(seq);
        if from_flight {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
        self.sync(group);
    }

    /// An in-flight message of `group` was deleted or moved away.
    pub(super) fn finish_flight(&mut self, group: &Arc<str>) {
        if let Some(entry) = self.groups.get_mut(group) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
        self.sync(group);
    }

    /// A visible message of `group` was deleted (acknowledged after its timeout ran out).
    pub(super) fn remove_visible(&mut self, group: &Arc<str>, seq: u64) {
        if let Some(entry) = self.groups.get_mut(group) {
            entry.visible.remove(&seq);
        }
        self.sync(group);
    }

    /// The ready group whose oldest message is the oldest, if any.
    pub(super) fn first_ready(&self) -> Option<Arc<str>> {
        self.ready.first().map(|(_, group)| group.clone())
    }

    /// Takes the oldest visible message of `group` for delivery, counting it as in flight.
    /// Call [`sync`](Self::sync) when done taking from the group.
    pub(super) fn take_next(&mut self, group: &Arc<str>) -> Option<u64> {
        let entry = self.groups.get_mut(group)?;
        if let Some(key) = entry.ready_key.take() {
            self.ready.remove(&(key, group.clone()));
        }
        let seq = entry.visible.pop_first()?;
        entry.in_flight += 1;
        Some(seq)
    }

    /// Undoes the in-flight count of [`take_next`](Self::take_next) for a message that was
    /// not delivered after all (moved to the dead-letter queue).
    pub(super) fn untake(&mut self, group: &Arc<str>) {
        if let Some(entry) = self.groups.get_mut(group) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
    }

    /// Puts `group` in the ready set if it is ready, and forgets it once it is empty.
    pub(super) fn sync(&mut self, group: &Arc<str>) {
        let Some(entry) = self.groups.get_mut(group) else {
            return;
        };
        if let Some(key) = entry.ready_key.take() {
            self.ready.remove(&(key, group.clone()));
        }
        if entry.in_flight == 0 {
            match entry.visible.first() {
                Some(&head) => {
                    entry.ready_key = Some(head);
                    self.ready.insert((head, group.clone()));
                }
                None => {
                    self.groups.remove(group);
                }
            }
        }
    }

    /// How many groups have a message in flight (and are therefore locked).
    pub(super) fn locked_groups(&self) -> usize {
        self.groups.values().filter(|g| g.in_flight > 0).count()
    }
}

/// What a message is deduplicated on: its deduplication id, or its body under content-based
/// deduplication. SQS and SNS hash the body with SHA-256; keeping the content itself (shared
/// with the stored message) gives the same answer without collisions.
///
/// A direct send and a copy from a topic are deduplicated on different bodies, as on AWS:
/// SQS hashes the body melange-sqs sends, `{"Message": ...}`, while a topic copy arrives
/// with the deduplication id SNS passes on, the hash of the bare content. So a direct send
/// and a topic copy of the same content are not duplicates of each other; an explicit id is
/// the same id whoever hands it to SQS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum DedupKey {
    /// An explicit deduplication id, the sender's or the one SNS passes on.
    Id(Box<str>),
    /// The content of a direct send (SQS hashes the `{"Message": ...}` body around it).
    Content(Arc<str>),
    /// The content of a topic publish and its copies (SNS hashes the bare content).
    TopicContent(Arc<str>),
}

/// The deduplication ids seen in the last five minutes, with the message id each was
/// first published under.
#[derive(Debug, Default)]
pub(super) struct DedupWindow {
    seen: HashMap<DedupKey, (MessageNumber, Instant)>,
    /// Keys in the order they expire.
    expiry: VecDeque<(Instant, DedupKey)>,
}

impl DedupWindow {
    /// Forgets the keys whose window has passed.
    pub(super) fn prune(&mut self, now: Instant) {
        while let Some((until, _)) = self.expiry.front() {
            if *until > now {
                break;
            }
            if let Some((until, key)) = self.expiry.pop_front()
                && self.seen.get(&key).is_some_and(|(_, u)| *u == until)
            {
                self.seen.remove(&key);
            }
        }
    }

    /// The message id a key was published under within the window.
    pub(super) fn get(&mut self, key: &DedupKey, now: Instant) -> Option<MessageNumber> {
        self.prune(now);
        self.seen.get(key).map(|(id, _)| *id)
    }

    /// Remembers that `key` was published as message `id`.
    pub(super) fn record(&mut self, key: DedupKey, id: MessageNumber, now: Instant) {
        let until = now + DEDUPLICATION_WINDOW;
        self.expiry.push_back((until, key.clone()));
        self.seen.insert(key, (id, until));
    }
}
