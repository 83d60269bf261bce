//! One queue: its stored messages, which of them are visible and which are in flight until
//! when, receipts, redrive and counters.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::QueueStats;
use super::deadlines::{Deadline, Deadlines};
use super::fifo::{DedupWindow, FifoGroups};
use super::manifests::{Manifests, StoredManifest};
use super::receipt::ReceiptKey;
use super::state::{Ids, MessageNumber};
use super::visible::{InOrder, Next};
use crate::backend::{DeadLetterPolicy, MAX_VISIBILITY_TIMEOUT, QueueInfo, Received};
use crate::envelope::{Delivery, Envelope, ReceiptHandle};
use crate::id_hash::BuildIdHasher;

/// A message as a queue holds it.
#[derive(Debug)]
pub(super) struct StoredMessage {
    pub(super) id: MessageNumber,
    pub(super) content: Arc<str>,
    pub(super) manifest: Option<StoredManifest>,
    pub(super) serializer_id: Option<u32>,
    /// `None` when it has none, as most do: a map is 48 bytes inline, and the slots of the
    /// queue's table are what publisher and consumer threads hand each other per message.
    #[expect(
        clippy::box_collection,
        reason = "one pointer inline instead of a whole map"
    )]
    pub(super) attributes: Option<Box<HashMap<String, String>>>,
    pub(super) group: Option<Arc<str>>,
    /// Receives so far; kept when the message moves to a dead-letter queue.
    pub(super) receive_count: u32,
    /// The nonce of the latest receipt issued for it (0: never received here).
    last_receipt: u64,
    /// While in flight: when it becomes visible again.
    invisible_until: Option<Instant>,
    /// While in flight: the ticket of its entry in the queue's deadlines (0: none).
    deadline_ticket: u64,
    /// When it was last received: its visibility can be extended to 12 hours from then.
    received_at: Option<Instant>,
}

impl StoredMessage {
    /// Its body, dropping the rest.
    pub(super) fn into_text(self) -> MessageText {
        self.content
    }

    /// A message not received yet.
    pub(super) fn new(
        id: MessageNumber,
        content: Arc<str>,
        manifest: Option<StoredManifest>,
        serializer_id: Option<u32>,
        attributes: HashMap<String, String>,
        group: Option<Arc<str>>,
    ) -> Self {
        Self {
            id,
            content,
            manifest,
            serializer_id,
            attributes: (!attributes.is_empty()).then(|| Box::new(attributes)),
            group,
            receive_count: 0,
            last_receipt: 0,
            invisible_until: None,
            deadline_ticket: 0,
            received_at: None,
        }
    }
}

/// The body of a deleted message: what it owns alone (its manifest is shared with other
/// messages, attributes are rare), freed after the backend's lock is released. A pointer,
/// so a batch of them stays a small allocation (a batch of whole messages went to the
/// allocator's slow path for large blocks).
pub(super) type MessageText = Arc<str>;

/// The visible messages, in the order they are delivered.
#[derive(Debug)]
enum Visible {
    /// Standard queue: enqueue order.
    Standard(InOrder),
    /// FIFO queue: per message group.
    Fifo(FifoGroups),
}

/// Why a receipt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadReceipt;

/// Why a visibility change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChangeRefused {
    /// The receipt is not the message's current in-flight receipt.
    Receipt,
    /// The message would stay invisible for more than 12 hours after it was received.
    BeyondMaximum,
}

/// One queue.
#[derive(Debug)]
pub(super) struct Queue {
    /// Unique per declaration, so a waiting receive notices a queue that was deleted and
    /// declared again (receipts need not carry it: their nonces are unique in the backend).
    pub(super) incarnation: u64,
    pub(super) name: Arc<str>,
    pub(super) fifo: bool,
    pub(super) visibility_timeout: Duration,
    pub(super) dead_letter: Option<DeadLetterPolicy>,
    pub(super) content_based_deduplication: bool,
    /// Wakes receives waiting on this queue.
    pub(super) notify: Arc<Notify>,
    pub(super) dedup: DedupWindow,
    /// The manifests of its messages, each kept once.
    manifests: Manifests,
    messages: HashMap<u64, StoredMessage, BuildIdHasher>,
    visible: Visible,
    /// In-flight messages by the time they become visible again.
    deadlines: Deadlines,
    next_seq: u64,
    enqueued: u64,
    acknowledged: u64,
    dead_lettered: u64,
}

impl Queue {
    /// An empty queue.
    pub(super) fn new(
        incarnation: u64,
        name: &str,
        fifo: bool,
        visibility_timeout: Duration,
        dead_letter: Option<DeadLetterPolicy>,
        content_based_deduplication: bool,
    ) -> Self {
        Self {
            incarnation,
            name: name.into(),
            fifo,
            visibility_timeout,
            dead_letter,
            content_based_deduplication,
            notify: Arc::new(Notify::new()),
            dedup: DedupWindow::default(),
            manifests: Manifests::default(),
            messages: HashMap::default(),
            visible: if fifo {
                Visible::Fifo(FifoGroups::default())
            } else {
                Visible::Standard(InOrder::default())
            },
            deadlines: Deadlines::default(),
            next_seq: 0,
            enqueued: 0,
            acknowledged: 0,
            dead_lettered: 0,
        }
    }

    /// Describes the queue.
    pub(super) fn info(&self) -> QueueInfo {
        QueueInfo::new(
            &*self.name,
            self.visibility_timeout,
            self.dead_letter.clone(),
        )
    }

    /// How a message sent here stores its manifest.
    pub(super) fn manifest(&mut self, manifest: &str) -> StoredManifest {
        self.manifests.store(manifest)
    }

    /// Adds a message at the back of the queue (of its group, on a FIFO queue), visible.
    /// Does not wake waiting receives: the caller notifies once per call.
    pub(super) fn enqueue(&mut self, mut message: StoredMessage) {
        let seq = self.next_seq;
        self.next_seq += 1;
        message.invisible_until = None;
        message.deadline_ticket = 0;
        message.last_receipt = 0;
        match &mut self.visible {
            // Held by the visible set until its first receive (see `visible`).
            Visible::Standard(visible) => visible.push_fresh(seq, message),
            Visible::Fifo(groups) => {
                groups.push_visible(&group_key(&message), seq, false);
                self.messages.insert(seq, message);
            }
        }
        self.enqueued += 1;
    }

    /// Makes a message of the table visible again after a flight.
    fn make_visible_again(&mut self, seq: u64, group: Option<Arc<str>>) {
        match &mut self.visible {
            Visible::Standard(visible) => visible.push_returned(seq),
            Visible::Fifo(groups) => {
                let group = group.unwrap_or_else(|| Arc::from(""));
                groups.push_visible(&group, seq, true);
            }
        }
    }

    /// Makes the in-flight messages whose visibility timeout ran out visible again, and
    /// drops the stale deadlines ahead of the first live one.
    pub(super) fn expire(&mut self, now: Instant) {
        while let Some(Deadline { until, seq, ticket }) = self.deadlines.first() {
            let Some(message) = self
                .messages
                .get_mut(&seq)
                .filter(|message| message.deadline_ticket == ticket)
            else {
                self.deadlines.pop_first();
                continue;
            };
            if until > now {
                break;
            }
            self.deadlines.pop_first();
            message.invisible_until = None;
            message.deadline_ticket = 0;
            self.deadlines.end();
            let group = message.group.clone();
            self.make_visible_again(seq, group);
        }
    }

    /// When the next in-flight message becomes visible again (call
    /// [`expire`](Self::expire) first: it drops stale deadlines ahead of it).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|deadline| deadline.until)
    }

    /// Keeps the deadlines within a small multiple of the messages in flight.
    fn compact_deadlines(&mut self) {
        if !self.deadlines.needs_compaction() {
            return;
        }
        let messages = &self.messages;
        self.deadlines.retain_live(|deadline| {
            messages
                .get(&deadline.seq)
                .is_some_and(|message| message.deadline_ticket == deadline.ticket)
        });
    }

    /// Receives up to `max` messages, hiding them until `now + visibility`. Messages already
    /// received `redrive_after` times are not delivered but removed and returned in the
    /// second vector, for the dead-letter queue. Call [`expire`](Self::expire) first.
    pub(super) fn receive(
        &mut self,
        now: Instant,
        max: usize,
        visibility: Duration,
        redrive_after: Option<u32>,
        next_nonce: &mut impl FnMut() -> u64,
        ids: &Ids,
    ) -> (Received, Vec<StoredMessage>) {
        let mut delivered = Received::new();
        let mut moved = Vec::new();
        let until = now + visibility;
        let names = Names {
            ids,
            queue: &self.name,
            manifests: &self.manifests,
        };
        // Received as often as the redrive policy allows: it goes to the dead-letter queue.
        let redriven =
            |message: &StoredMessage| redrive_after.is_some_and(|max| message.receive_count >= max);
        match &mut self.visible {
            Visible::Standard(visible) => {
                // One allocation for the batch, none for an empty receive.
                delivered.reserve_exact(max.min(visible.len()));
                while delivered.len() < max {
                    let (seq, message) = match visible.pop_first() {
                        None => break,
                        Some(Next::Fresh(_, message)) if redriven(&message) => {
                            moved.push(leaving(names.manifests, message));
                            continue;
                        }
                        // Into the table, which the consumer's calls alone touch from now.
                        Some(Next::Fresh(seq, message)) => (
                            seq,
                            self.messages.entry(seq).insert_entry(message).into_mut(),
                        ),
                        Some(Next::Returned(seq)) => {
                            if self.messages.get(&seq).is_some_and(redriven) {
                                if let Some(message) = self.messages.remove(&seq) {
                                    moved.push(leaving(names.manifests, message));
                                }
                                continue;
                            }
                            let Some(message) = self.messages.get_mut(&seq) else {
                                continue;
                            };
                            (seq, message)
                        }
                    };
                    let key = ReceiptKey {
                        seq,
                        nonce: next_nonce(),
                    };
                    delivered.push(Ok(deliver(
                        names,
                        key,
                        message,
                        (now, until),
                        &mut self.deadlines,
                    )));
                }
            }
            Visible::Fifo(groups) => {
                while delivered.len() < max {
                    let Some(group) = groups.first_ready() else {
                        break;
                    };
                    while delivered.len() < max {
                        let Some(seq) = groups.take_next(&group) else {
                            break;
                        };
                        let Some(message) = self.messages.get_mut(&seq) else {
                            groups.untake(&group);
                            continue;
                        };
                        if redriven(message) {
                            groups.untake(&group);
                            if let Some(message) = self.messages.remove(&seq) {
                                moved.push(leaving(names.manifests, message));
                            }
                            continue;
                        }
                        let key = ReceiptKey {
                            seq,
                            nonce: next_nonce(),
                        };
                        delivered.push(Ok(deliver(
                            names,
                            key,
                            message,
                            (now, until),
                            &mut self.deadlines,
                        )));
                    }
                    groups.sync(&group);
                }
            }
        }
        self.dead_lettered += moved.len() as u64;
        self.compact_deadlines();
        (delivered, moved)
    }

    /// The message a receipt names, if the receipt is the latest one issued for it.
    fn lookup(&self, receipt: &ReceiptHandle) -> Result<u64, BadReceipt> {
        let key = ReceiptKey::parse(receipt).ok_or(BadReceipt)?;
        let message = self.messages.get(&key.seq).ok_or(BadReceipt)?;
        if !is_current(key, message) {
            return Err(BadReceipt);
        }
        Ok(key.seq)
    }

    /// Deletes the message a receipt names and hands it back. As on SQS, this works after the
    /// visibility timeout ran out as long as nobody received the message again.
    pub(super) fn acknowledge(
        &mut self,
        receipt: &ReceiptHandle,
    ) -> Result<StoredMessage, BadReceipt> {
        let key = ReceiptKey::parse(receipt).ok_or(BadReceipt)?;
        let seq = key.seq;
        // The checks of `lookup`, on one probe of the table (the entry was most likely last
        // written by another thread).
        let Entry::Occupied(entry) = self.messages.entry(seq) else {
            return Err(BadReceipt);
        };
        if !is_current(key, entry.get()) {
            return Err(BadReceipt);
        }
        let message = entry.remove();
        // An in-flight message's deadline goes stale with it.
        match (message.invisible_until, &mut self.visible) {
            (Some(_), Visible::Standard(_)) => self.deadlines.end(),
            (Some(_), Visible::Fifo(groups)) => {
                self.deadlines.end();
                groups.finish_flight(&group_key(&message));
            }
            (None, Visible::Standard(visible)) => visible.remove_returned(seq),
            (None, Visible::Fifo(groups)) => groups.remove_visible(&group_key(&message), seq),
        }
        self.acknowledged += 1;
        self.compact_deadlines();
        Ok(message)
    }

    /// Makes an in-flight message visible again at `now + timeout` (at once for zero).
    /// Refused, as on SQS, when the message is not in flight under this receipt.
    pub(super) fn change_visibility(
        &mut self,
        receipt: &ReceiptHandle,
        now: Instant,
        timeout: Duration,
    ) -> Result<(), ChangeRefused> {
        let seq = self
            .lookup(receipt)
            .map_err(|BadReceipt| ChangeRefused::Receipt)?;
        let message = self.messages.get_mut(&seq).ok_or(ChangeRefused::Receipt)?;
        message.invisible_until.ok_or(ChangeRefused::Receipt)?;
        let until = now + timeout;
        if message
            .received_at
            .is_some_and(|at| until > at + MAX_VISIBILITY_TIMEOUT)
        {
            return Err(ChangeRefused::BeyondMaximum);
        }
        // The message's previous deadline goes stale.
        message.invisible_until = Some(until);
        message.deadline_ticket = self.deadlines.reschedule(until, seq);
        self.compact_deadlines();
        // A zero timeout (or any timeout already passed) releases the message right away.
        self.expire(now);
        Ok(())
    }

    /// The queue's counts (call [`expire`](Self::expire) first).
    pub(super) fn stats(&self) -> QueueStats {
        let in_flight = self.deadlines.in_flight();
        let (visible, locked_groups) = match &self.visible {
            Visible::Standard(visible) => {
                (self.messages.len() + visible.fresh_len() - in_flight, 0)
            }
            Visible::Fifo(groups) => (self.messages.len() - in_flight, groups.locked_groups()),
        };
        QueueStats {
            visible,
            in_flight,
            locked_groups,
            enqueued: self.enqueued,
            acknowledged: self.acknowledged,
            dead_lettered: self.dead_lettered,
        }
    }
}

/// Whether `key` is the latest receipt issued for `message`. Nonces are unique in the
/// backend, so a receipt issued by another queue, or by an earlier declaration of this one,
/// never matches.
fn is_current(key: ReceiptKey, message: &StoredMessage) -> bool {
    key.nonce != 0 && message.last_receipt == key.nonce
}

fn group_key(message: &StoredMessage) -> Arc<str> {
    message.group.clone().unwrap_or_else(|| Arc::from(""))
}

/// A message about to leave for another queue (a dead-letter move), with its manifest
/// readable there.
fn leaving(manifests: &Manifests, mut message: StoredMessage) -> StoredMessage {
    message.manifest = message
        .manifest
        .and_then(|manifest| manifests.detach(manifest));
    message
}

/// What an envelope's names are written from.
#[derive(Clone, Copy)]
struct Names<'a> {
    ids: &'a Ids,
    queue: &'a Arc<str>,
    manifests: &'a Manifests,
}

/// Marks `message` in flight under a fresh receipt, with its deadline, and builds its
/// envelope.
fn deliver(
    Names {
        ids,
        queue,
        manifests,
    }: Names<'_>,
    key: ReceiptKey,
    message: &mut StoredMessage,
    (now, until): (Instant, Instant),
    deadlines: &mut Deadlines,
) -> Envelope {
    message.receive_count = message.receive_count.saturating_add(1);
    message.last_receipt = key.nonce;
    message.invisible_until = Some(until);
    message.received_at = Some(now);
    message.deadline_ticket = deadlines.begin(until, key.seq);
    Envelope {
        message_id: ids.shared(message.id),
        content: message.content.clone(),
        manifest: message
            .manifest
            .as_ref()
            .and_then(|manifest| manifests.shared(manifest)),
        serializer_id: message.serializer_id,
        delivery: Delivery {
            queue: queue.clone(),
            receipt: key.to_receipt(),
            receive_count: message.receive_count,
            message_group_id: message.group.clone(),
            attributes: message.attributes.as_deref().cloned().unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_of(messages: u64) -> Queue {
        let mut queue = Queue::new(1, "q", false, Duration::from_secs(30), None, false);
        let first = Ids::new(0).reserve(messages);
        for n in 0..messages {
            queue.enqueue(StoredMessage::new(
                first.plus(n),
                Arc::from(format!("body-{n}")),
                None,
                None,
                HashMap::new(),
                None,
            ));
        }
        queue
    }

    fn receive(queue: &mut Queue, now: Instant, max: usize, nonce: &mut u64) -> Vec<Envelope> {
        queue.expire(now);
        let mut next_nonce = || {
            *nonce += 1;
            *nonce
        };
        let ids = Ids::new(0);
        let (received, moved) = queue.receive(
            now,
            max,
            Duration::from_secs(30),
            None,
            &mut next_nonce,
            &ids,
        );
        assert!(moved.is_empty());
        received.into_iter().map(|r| r.unwrap()).collect()
    }

    fn bodies(envelopes: &[Envelope]) -> Vec<&str> {
        envelopes.iter().map(|e| &*e.content).collect()
    }

    #[test]
    fn deadlines_stay_bounded_while_messages_are_received_and_acknowledged() {
        let mut queue = queue_of(10_000);
        let now = Instant::now();
        let mut nonce = 0;
        let mut held: Vec<Envelope> = Vec::new();
        while queue.stats().visible > 0 {
            held.extend(receive(&mut queue, now, 10, &mut nonce));
            // Acknowledge all but a few, the oldest first, as a consumer does.
            while held.len() > 5 {
                let envelope = held.remove(0);
                queue.acknowledge(&envelope.delivery.receipt).unwrap();
            }
            assert!(
                queue.deadlines.len() <= 2 * queue.stats().in_flight + 64 + 10,
                "{} deadlines for {} in flight",
                queue.deadlines.len(),
                queue.stats().in_flight
            );
        }
        assert_eq!(queue.stats().in_flight, 5);
        assert_eq!(queue.stats().acknowledged, 9_995);
    }

    #[test]
    fn only_the_latest_deadline_of_a_message_counts_and_extensions_stay_bounded() {
        let mut queue = queue_of(1);
        let start = Instant::now();
        let mut nonce = 0;
        let envelope = receive(&mut queue, start, 1, &mut nonce).remove(0);
        let receipt = &envelope.delivery.receipt;
        // A heartbeat extends it a thousand times; each leaves a stale deadline behind.
        for _ in 0..1_000 {
            queue
                .change_visibility(receipt, start, Duration::from_secs(60))
                .unwrap();
        }
        assert!(queue.deadlines.len() <= 2 + 64 + 1);
        // The first deadline (30 s) went stale: still in flight until 60 s.
        assert!(receive(&mut queue, start + Duration::from_secs(45), 1, &mut nonce).is_empty());
        assert_eq!(queue.stats().in_flight, 1);
        // Shortened: the 60 s deadline goes stale and the 10 s one counts.
        queue
            .change_visibility(receipt, start, Duration::from_secs(10))
            .unwrap();
        let again = receive(&mut queue, start + Duration::from_secs(45), 1, &mut nonce);
        assert_eq!(again[0].delivery.receive_count, 2);
    }

    #[test]
    fn messages_back_from_a_flight_go_before_those_never_received() {
        let mut queue = queue_of(6);
        let now = Instant::now();
        let mut nonce = 0;
        let first = receive(&mut queue, now, 3, &mut nonce);
        assert_eq!(bodies(&first), ["body-0", "body-1", "body-2"]);
        // body-2 and body-0 come back (in that order); body-1 is acknowledged.
        for at in [2, 0] {
            queue
                .change_visibility(&first[at].delivery.receipt, now, Duration::ZERO)
                .unwrap();
        }
        queue.acknowledge(&first[1].delivery.receipt).unwrap();
        let second = receive(&mut queue, now, 10, &mut nonce);
        assert_eq!(
            bodies(&second),
            ["body-0", "body-2", "body-3", "body-4", "body-5"]
        );
        // A visible message that came back can be acknowledged with its last receipt.
        for envelope in &second[..2] {
            queue
                .change_visibility(&envelope.delivery.receipt, now, Duration::ZERO)
                .unwrap();
        }
        queue.acknowledge(&second[0].delivery.receipt).unwrap();
        let third = receive(&mut queue, now, 10, &mut nonce);
        assert_eq!(bodies(&third), ["body-2"]);
        let stats = queue.stats();
        assert_eq!(
            (stats.visible, stats.in_flight, stats.acknowledged),
            (0, 4, 2)
        );
    }
}
