//! The backend's whole state behind one lock: queues, topics and id counters, and the
//! operations on them. Every method runs under the lock and never waits; the async layer in
//! `mod.rs` does the waiting.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::fifo::DedupKey;
use super::ids::{AsciiBuf, write_hex};
use super::queue::{ChangeRefused, MessageText, Queue, StoredMessage};
use super::topic::Topic;
use super::validate::{self, Destination};
use super::{QueueStats, Subscription};
use crate::backend::{BatchResult, QueueInfo, QueueSpec, Received, is_fifo_name};
use crate::envelope::{OutgoingMessage, ReceiptHandle, ReceiveOptions};
use crate::error::BackendError;
use crate::id_hash::BuildIdHasher;

/// The limits and defaults a backend was built with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    /// The largest message a queue accepts, as [`OutgoingMessage::wire_size`] counts it.
    pub(super) max_message_size: usize,
    /// The largest message a topic accepts, as [`OutgoingMessage::topic_wire_size`] counts
    /// it.
    pub(super) max_topic_message_size: usize,
    pub(super) default_visibility_timeout: Duration,
}

/// Hands out message ids. Shared with the backend outside its lock, so a publish to a queue
/// makes its message ids before taking the lock.
///
/// Publishers write its counter on every publish call, so it sits on cache lines of its own
/// (128 bytes: x86 fetches lines in pairs), and only publishers write it: receipt nonces,
/// made by consumers on every delivery, come from [`State`]'s counter under the lock. When
/// both came from this one, publisher and consumer threads took its line from each other on
/// every message.
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct Ids {
    last: AtomicU64,
    /// The part of every message id that comes from a seed random per backend (so two
    /// backends do not hand out the same message ids): `xxxxxxxx-xxxx-4xxx-`.
    prefix: [u8; ID_PREFIX],
}

/// The length of a message id's seed part, up to the fourth group.
const ID_PREFIX: usize = 19;
/// The length of a message id, shaped like a UUID.
const ID_LEN: usize = 36;

impl Ids {
    pub(super) fn new(seed: u64) -> Self {
        let mut text = AsciiBuf::new();
        text.push_hex(seed >> 32, 8);
        text.push("-");
        text.push_hex(seed >> 16, 4);
        text.push("-4");
        text.push_hex(seed, 3);
        text.push("-");
        let mut prefix = [b'0'; ID_PREFIX];
        for (slot, byte) in prefix.iter_mut().zip(text.as_str().bytes()) {
            *slot = byte;
        }
        Self {
            last: AtomicU64::new(0),
            prefix,
        }
    }

    /// The numbers of `count` new messages: the returned one and the `count - 1` after it.
    /// One atomic operation for a whole batch.
    pub(super) fn reserve(&self, count: u64) -> MessageNumber {
        MessageNumber(self.last.fetch_add(count, Ordering::Relaxed) + 1)
    }

    /// The id of message `n`, shaped like the UUIDs SQS and SNS hand out:
    /// `{seed part}{0x8000 | n >> 48 & 0x3fff:04x}-{n:012x}`. Written in place from the
    /// precomputed seed part.
    fn text(&self, MessageNumber(n): MessageNumber) -> [u8; ID_LEN] {
        let mut text = [b'-'; ID_LEN];
        text[..ID_PREFIX].copy_from_slice(&self.prefix);
        write_hex(
            &mut text[ID_PREFIX..ID_PREFIX + 4],
            0x8000 | ((n >> 48) & 0x3fff),
        );
        write_hex(&mut text[ID_PREFIX + 5..], n);
        text
    }

    /// The id of message `n`, for an envelope.
    pub(super) fn shared(&self, n: MessageNumber) -> Arc<str> {
        // Only ASCII was written.
        Arc::from(std::str::from_utf8(&self.text(n)).unwrap_or_default())
    }

    /// The id of message `n`, for a publisher.
    pub(super) fn owned(&self, n: MessageNumber) -> String {
        String::from(std::str::from_utf8(&self.text(n)).unwrap_or_default())
    }
}

/// A message as the backend numbers it; its id is written out from the number (and the
/// backend's seed) only where one is handed out. Publishers make the number and consumers
/// the text of an envelope's id, so no message id allocation passes from one thread to the
/// other (one that did was the most expensive cache miss of a delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MessageNumber(u64);

impl MessageNumber {
    /// The number `offset` after this one.
    pub(super) fn plus(self, offset: u64) -> Self {
        Self(self.0 + offset)
    }
}

/// What a receive found.
#[derive(Debug)]
pub(super) enum Poll {
    /// Messages were received.
    Ready(Received),
    /// Nothing to receive now; wait for a notification or until the next in-flight message
    /// becomes visible again.
    Wait {
        /// When the next in-flight message becomes visible again.
        next_visible: Option<Instant>,
        /// The incarnation of the queue looked at, for the next look.
        incarnation: u64,
        /// Wakes receives waiting on the queue.
        notify: Arc<Notify>,
    },
}

/// A validated outgoing message, its strings shared between the queues it fans out to.
#[derive(Clone)]
pub(super) struct Prepared {
    /// Made before the lock is taken (a publish to a queue); otherwise when enqueued.
    id: Option<MessageNumber>,
    content: Arc<str>,
    /// Made an `Arc` by the queue it goes to, which shares one between its messages.
    manifest: Option<Cow<'static, str>>,
    serializer_id: Option<u32>,
    attributes: HashMap<String, String>,
    group: Option<Arc<str>>,
    deduplication_id: Option<Box<str>>,
    /// Published to a topic: content-based deduplication is SNS's, not SQS's.
    via_topic: bool,
}

impl Prepared {
    pub(super) fn new(message: OutgoingMessage) -> Self {
        let serializer_id = message.manifest.is_some().then_some(message.serializer_id);
        Self {
            id: None,
            content: message.content.into(),
            manifest: message.manifest,
            serializer_id,
            attributes: message.attributes,
            group: message.message_group_id.map(Arc::from),
            deduplication_id: message.deduplication_id.map(Box::from),
            via_topic: false,
        }
    }

    /// The same, published to a topic.
    pub(super) fn via_topic(self) -> Self {
        Self {
            via_topic: true,
            ..self
        }
    }

    /// The same, with its message id made already.
    pub(super) fn with_id(self, id: MessageNumber) -> Self {
        Self {
            id: Some(id),
            ..self
        }
    }

    /// What a FIFO queue or topic deduplicates this message on.
    fn dedup_key(&self) -> DedupKey {
        match (&self.deduplication_id, self.via_topic) {
            (Some(id), _) => DedupKey::Id(id.clone()),
            (None, false) => DedupKey::Content(self.content.clone()),
            (None, true) => DedupKey::TopicContent(self.content.clone()),
        }
    }

    fn into_stored(self, id: MessageNumber, queue: &mut Queue) -> StoredMessage {
        let manifest = self.manifest.map(|manifest| queue.manifest(&manifest));
        StoredMessage::new(
            id,
            self.content,
            manifest,
            self.serializer_id,
            self.attributes,
            self.group,
        )
    }
}

fn queue_missing(name: &str) -> BackendError {
    BackendError::QueueDoesNotExist {
        name: name.to_owned(),
        source: None,
    }
}

fn topic_missing(name: &str) -> BackendError {
    BackendError::TopicDoesNotExist {
        name: name.to_owned(),
        source: None,
    }
}

fn invalid_receipt(queue: &str) -> BackendError {
    BackendError::InvalidReceipt {
        queue: queue.to_owned(),
        source: None,
    }
}

/// Sends a prepared message to a queue, applying its deduplication; returns the message id
/// (the original one for a duplicate).
fn enqueue(queue: &mut Queue, ids: &Ids, mut message: Prepared, now: Instant) -> MessageNumber {
    let key = queue.fifo.then(|| message.dedup_key());
    if let Some(key) = &key
        && let Some(original) = queue.dedup.get(key, now)
    {
        return original;
    }
    let id = message.id.take().unwrap_or_else(|| ids.reserve(1));
    if let Some(key) = key {
        queue.dedup.record(key, id, now);
    }
    let stored = message.into_stored(id, queue);
    queue.enqueue(stored);
    id
}

/// Everything the backend holds.
#[derive(Debug)]
pub(super) struct State {
    /// Looked up on every call: hashed with the cheap id hasher rather than SipHash (names
    /// are the application's own, at most 80 or 256 characters).
    queues: HashMap<String, Queue, BuildIdHasher>,
    topics: HashMap<String, Topic, BuildIdHasher>,
    ids: Arc<Ids>,
    serials: Serials,
}

/// Hands out queue incarnations and receipt nonces, under the lock: unique in the backend,
/// never 0.
#[derive(Debug, Default)]
struct Serials {
    last: u64,
}

impl Serials {
    fn next(&mut self) -> u64 {
        self.last += 1;
        self.last
    }
}

impl State {
    /// An empty backend.
    pub(super) fn new() -> Self {
        Self {
            queues: HashMap::default(),
            topics: HashMap::default(),
            ids: Arc::new(Ids::new(RandomState::new().hash_one(0_u8))),
            serials: Serials::default(),
        }
    }

    /// The id maker, for use outside the lock.
    pub(super) fn ids(&self) -> Arc<Ids> {
        self.ids.clone()
    }

    fn queue_mut(&mut self, name: &str) -> Result<&mut Queue, BackendError> {
        self.queues.get_mut(name).ok_or_else(|| queue_missing(name))
    }

    pub(super) fn declare_queue(
        &mut self,
        spec: &QueueSpec,
        config: &Config,
    ) -> Result<QueueInfo, BackendError> {
        validate::queue_name(&spec.name)?;
        if let Some(timeout) = spec.visibility_timeout {
            validate::visibility_timeout(&spec.name, timeout)?;
        }
        spec.check_dead_letter()?;
        if let Some(policy) = &spec.dead_letter {
            validate::queue_name(&policy.queue)?;
            if !self.queues.contains_key(&policy.queue) {
                self.insert_queue(&QueueSpec::new(policy.queue.clone()), config);
            }
        }
        if let Some(queue) = self.queues.get_mut(&spec.name) {
            if let Some(timeout) = spec.visibility_timeout {
                queue.visibility_timeout = timeout;
            }
            if let Some(policy) = &spec.dead_letter {
                queue.dead_letter = Some(policy.clone());
            }
            queue.content_based_deduplication = spec.content_based_deduplication;
            return Ok(queue.info());
        }
        Ok(self.insert_queue(spec, config))
    }

    fn insert_queue(&mut self, spec: &QueueSpec, config: &Config) -> QueueInfo {
        let queue = Queue::new(
            self.serials.next(),
            &spec.name,
            spec.is_fifo(),
            spec.visibility_timeout
                .unwrap_or(config.default_visibility_timeout),
            spec.dead_letter.clone(),
            spec.content_based_deduplication,
        );
        let info = queue.info();
        self.queues.insert(spec.name.clone(), queue);
        info
    }

    pub(super) fn get_queue(&self, name: &str) -> Result<QueueInfo, BackendError> {
        self.queues
            .get(name)
            .map(Queue::info)
            .ok_or_else(|| queue_missing(name))
    }

    pub(super) fn delete_queue(&mut self, name: &str) -> Result<(), BackendError> {
        let queue = self
            .queues
            .remove(name)
            .ok_or_else(|| queue_missing(name))?;
        for topic in self.topics.values_mut() {
            topic.subscriptions.remove(name);
        }
        // Receives waiting on it find it gone and fail.
        queue.notify.notify_waiters();
        Ok(())
    }

    pub(super) fn declare_topic(&mut self, name: &str) -> Result<(), BackendError> {
        validate::topic_name(name)?;
        self.topics
            .entry(name.to_owned())
            .or_insert_with(|| Topic::new(is_fifo_name(name)));
        Ok(())
    }

    pub(super) fn delete_topic(&mut self, name: &str) -> Result<(), BackendError> {
        self.topics
            .remove(name)
            .map(drop)
            .ok_or_else(|| topic_missing(name))
    }

    pub(super) fn subscribe(
        &mut self,
        queue: &str,
        topic: &str,
        filter: Option<&[String]>,
    ) -> Result<(), BackendError> {
        let fifo_queue = self
            .queues
            .get(queue)
            .map(|q| q.fifo)
            .ok_or_else(|| queue_missing(queue))?;
        let entry = self
            .topics
            .get_mut(topic)
            .ok_or_else(|| topic_missing(topic))?;
        if fifo_queue && !entry.fifo {
            return Err(validate::invalid(
                topic,
                format!("a standard topic cannot deliver to the FIFO queue `{queue}`"),
            ));
        }
        if let Some(filter) = filter {
            validate::manifest_filter(topic, filter)?;
        }
        entry
            .subscriptions
            .insert(queue.to_owned(), filter.map(<[String]>::to_vec));
        Ok(())
    }

    pub(super) fn subscriptions(&self, topic: &str) -> Result<Vec<Subscription>, BackendError> {
        let topic_state = self.topics.get(topic).ok_or_else(|| topic_missing(topic))?;
        Ok(topic_state
            .subscriptions
            .iter()
            .map(|(queue, filter)| Subscription {
                queue: queue.clone(),
                manifest_filter: filter.clone(),
            })
            .collect())
    }

    /// Enqueues messages already checked by [`validate::message_alone`] (an `Err` entry is
    /// a message that failed those checks); returns their message ids and the queue's
    /// wake-up handle, to notify once the lock is released.
    pub(super) fn publish_to_queue(
        &mut self,
        name: &str,
        messages: Vec<Result<Prepared, BackendError>>,
        now: Instant,
        config: &Config,
    ) -> Result<(BatchResult<MessageNumber>, Arc<Notify>), BackendError> {
        let Self { queues, ids, .. } = self;
        let queue = queues.get_mut(name).ok_or_else(|| queue_missing(name))?;
        let to = Destination {
            target: name,
            fifo: queue.fifo,
            content_based_deduplication: queue.content_based_deduplication,
            topic: false,
            max_size: config.max_message_size,
        };
        let results = messages
            .into_iter()
            .map(|message| {
                let message = message?;
                validate::deduplication(to, message.deduplication_id.is_some())?;
                Ok(enqueue(queue, ids, message, now))
            })
            .collect();
        Ok((results, queue.notify.clone()))
    }

    pub(super) fn publish_to_topic(
        &mut self,
        name: &str,
        messages: Vec<OutgoingMessage>,
        now: Instant,
        config: &Config,
    ) -> Result<BatchResult<String>, BackendError> {
        let Self {
            queues,
            topics,
            ids,
            ..
        } = self;
        let topic = topics.get_mut(name).ok_or_else(|| topic_missing(name))?;
        let to = Destination {
            target: name,
            fifo: topic.fifo,
            content_based_deduplication: true,
            topic: true,
            max_size: config.max_topic_message_size,
        };
        let mut notify: Vec<Arc<Notify>> = Vec::new();
        let results = messages
            .into_iter()
            .map(|message| {
                validate::message(to, &message)?;
                let message = Prepared::new(message).via_topic();
                let key = topic.fifo.then(|| message.dedup_key());
                if let Some(key) = &key
                    && let Some(original) = topic.dedup.get(key, now)
                {
                    return Ok(ids.owned(original));
                }
                let id = ids.reserve(1);
                if let Some(key) = key {
                    topic.dedup.record(key, id, now);
                }
                for recipient in topic.recipients(message.manifest.as_deref()) {
                    if let Some(queue) = queues.get_mut(recipient) {
                        enqueue(queue, ids, message.clone(), now);
                        if !notify.iter().any(|n| Arc::ptr_eq(n, &queue.notify)) {
                            notify.push(queue.notify.clone());
                        }
                    }
                }
                Ok(ids.owned(id))
            })
            .collect();
        for n in notify {
            n.notify_waiters();
        }
        Ok(results)
    }

    /// Receives what is receivable now from the queue, which must still be the `incarnation`
    /// seen by an earlier look when there was one.
    pub(super) fn try_receive(
        &mut self,
        name: &str,
        incarnation: Option<u64>,
        options: &ReceiveOptions,
        now: Instant,
    ) -> Result<Poll, BackendError> {
        let Self {
            queues,
            serials,
            ids,
            ..
        } = self;
        let queue = queues
            .get(name)
            .filter(|q| incarnation.is_none_or(|seen| q.incarnation == seen))
            .ok_or_else(|| queue_missing(name))?;
        // Redrive only to a dead-letter queue that exists, as SQS does.
        let dead_letter = queue
            .dead_letter
            .clone()
            .filter(|policy| queues.contains_key(&policy.queue));
        let queue = queues.get_mut(name).ok_or_else(|| queue_missing(name))?;
        queue.expire(now);
        let visibility = options
            .visibility_timeout
            .unwrap_or(queue.visibility_timeout);
        let (delivered, moved) = queue.receive(
            now,
            options.max_messages as usize,
            visibility,
            dead_letter.as_ref().map(|policy| policy.max_receive_count),
            &mut || serials.next(),
            ids,
        );
        let next_deadline = queue.next_deadline();
        if let Some(policy) = dead_letter
            && !moved.is_empty()
            && let Some(target) = queues.get_mut(&policy.queue)
        {
            for message in moved {
                target.enqueue(message);
            }
            target.notify.notify_waiters();
        }
        if delivered.is_empty() {
            let queue = queues.get(name).ok_or_else(|| queue_missing(name))?;
            Ok(Poll::Wait {
                next_visible: next_deadline,
                incarnation: queue.incarnation,
                notify: queue.notify.clone(),
            })
        } else {
            Ok(Poll::Ready(delivered))
        }
    }

    /// Deletes the messages the receipts name, moving their ids and bodies into `deleted`
    /// for the caller to drop once the lock is released. Returns the queue's wake-up handle
    /// when waiting receives must be notified.
    pub(super) fn acknowledge(
        &mut self,
        name: &str,
        receipts: &[ReceiptHandle],
        deleted: &mut Vec<MessageText>,
    ) -> Result<(BatchResult<()>, Option<Arc<Notify>>), BackendError> {
        let queue = self.queue_mut(name)?;
        let results: BatchResult<()> = receipts
            .iter()
            .map(|receipt| match queue.acknowledge(receipt) {
                Ok(message) => {
                    deleted.push(message.into_text());
                    Ok(())
                }
                Err(_) => Err(invalid_receipt(name)),
            })
            .collect();
        // Deleting a message of a FIFO group may unlock the group.
        let wake = (queue.fifo && !deleted.is_empty()).then(|| queue.notify.clone());
        Ok((results, wake))
    }

    pub(super) fn change_visibility(
        &mut self,
        name: &str,
        entries: &[(ReceiptHandle, Duration)],
        now: Instant,
    ) -> Result<BatchResult<()>, BackendError> {
        let queue = self.queue_mut(name)?;
        queue.expire(now);
        let results = entries
            .iter()
            .map(|(receipt, timeout)| {
                validate::visibility_timeout(name, *timeout)?;
                queue
                    .change_visibility(receipt, now, *timeout)
                    .map_err(|refused| match refused {
                        ChangeRefused::Receipt => invalid_receipt(name),
                        ChangeRefused::BeyondMaximum => validate::invalid(
                            name,
                            "a message stays invisible at most 12 hours after it was received",
                        ),
                    })
            })
            .collect();
        // Released messages are receivable, and waiting receives must re-plan their sleep.
        queue.notify.notify_waiters();
        Ok(results)
    }

    pub(super) fn queue_stats(
        &mut self,
        name: &str,
        now: Instant,
    ) -> Result<QueueStats, BackendError> {
        let queue = self.queue_mut(name)?;
        queue.expire(now);
        Ok(queue.stats())
    }
}

#[cfg(test)]
mod ids_tests {
    use super::*;

    /// The id as it was written before the seed part was precomputed.
    fn reference(seed: u64, n: u64) -> String {
        let mut id = AsciiBuf::new();
        id.push_hex(seed >> 32, 8);
        id.push("-");
        id.push_hex(seed >> 16, 4);
        id.push("-4");
        id.push_hex(seed, 3);
        id.push("-");
        id.push_hex(0x8000 | ((n >> 48) & 0x3fff), 4);
        id.push("-");
        id.push_hex(n, 12);
        id.as_str().to_owned()
    }

    #[test]
    fn message_ids_keep_their_uuid_shape() {
        for seed in [0, 0x0123_4567_89ab_cdef, u64::MAX] {
            let ids = Ids::new(seed);
            ids.last.store((1 << 52) - 3, Ordering::Relaxed);
            for count in [1, 1, 3, 1, 2] {
                let first = ids.reserve(count);
                for offset in 0..count {
                    let n = first.plus(offset);
                    let id = ids.owned(n);
                    assert_eq!(id, reference(seed, n.0), "seed {seed:x}");
                    assert_eq!(id.len(), ID_LEN);
                    assert_eq!(*ids.shared(n), id);
                }
                assert_eq!(first.plus(count - 1).0, ids.last.load(Ordering::Relaxed));
            }
        }
    }
}
