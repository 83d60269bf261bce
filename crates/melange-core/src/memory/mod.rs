//! The embedded backend: queues and topics in memory, following the rules of Amazon SQS and
//! SNS so code tested against it behaves the same on AWS.
//!
//! [`InMemoryBackend`] needs no server. It is what the tutorial runs on, and the test double
//! of melange's own tests: cheap to clone (clones share the same queues), deterministic, and
//! driven by tokio's clock, so tests under `#[tokio::test(start_paused = true)]` control
//! visibility timeouts, long polls and deduplication windows.
//!
//! # What it does as SQS and SNS do
//!
//! - **Names**: queues take 1 to 80 characters (topics 1 to 256) of alphanumerics, `-` and
//!   `_`, plus an optional `.fifo` suffix, which makes a FIFO queue or topic.
//! - **Visibility timeout**: a received message is hidden for the receive's visibility
//!   timeout (else the queue's, else the backend's 30 s) and comes back, with its receive
//!   count increased on the next receive, unless it is acknowledged first.
//!   [`change_visibility`](MessagingBackend::change_visibility) counts from now; zero
//!   releases at once; a message cannot stay hidden more than 12 hours after it was received.
//! - **Receipts**: every receive issues a fresh receipt. Acknowledging works with the latest
//!   receipt of a message, even after its timeout ran out if nobody received it again;
//!   changing visibility needs the message to be in flight under that receipt.
//! - **Redrive**: when a receive meets a message already received `max_receive_count` times,
//!   it moves the message (same message id, same receive count) to the dead-letter queue
//!   instead of delivering it. A dead-letter queue must be of the same kind (FIFO or
//!   standard) as its source; if it was deleted, messages stay where they are.
//! - **FIFO**: messages need a group id; a group's messages are delivered in order, and none
//!   while another of the group is in flight (one receive may return several of a group, in
//!   order). A deduplication id, or the body under content-based deduplication, is remembered
//!   for [`DEDUPLICATION_WINDOW`] (5 minutes): a duplicate publish succeeds, returns the
//!   original message id and enqueues nothing. FIFO topics deduplicate the same way, and
//!   pass their deduplication id on: a direct send and a topic copy of the same body are
//!   not duplicates (SQS hashes the `{"Message": ...}` body of a direct send, SNS the bare
//!   content), while an explicit id is the same id either way.
//! - **Topics**: a publish fans out a copy, with its own message id, to every subscribed queue
//!   whose manifest filter accepts it; a message without a manifest passes no filter. A
//!   standard topic cannot deliver to a FIFO queue.
//! - **Limits**: messages up to 1 MiB to a queue and 256 KiB to a topic, measured as
//!   melange-sqs measures what it sends ([`wire_size`](crate::OutgoingMessage::wire_size):
//!   the `{"Message": ...}` body with the content JSON-escaped;
//!   [`topic_wire_size`](crate::OutgoingMessage::topic_wire_size): the content and the
//!   subject; both plus every attribute's name, type and value); any content to a queue
//!   (melange-sqs sends it JSON-escaped), non-empty content of XML characters to a topic; at
//!   most 10 attributes (`manifest` and `serializer_id` included) with valid names and
//!   non-empty values; topic subjects as
//!   [`check_subject`](crate::envelope::check_subject) checks them (printable ASCII, less
//!   than 100 characters); receives of 1 to 10 messages waiting at most 20 s;
//!   visibility timeouts up to 12 hours; `maxReceiveCount` 1 to 1,000; manifest filters of
//!   1 to 150 manifests.
//! - **Long polling**: a waiting receive wakes as soon as a message can be received (a
//!   publish, a released or expired message, an unlocked FIFO group), without polling.
//!
//! # Where it differs
//!
//! - **Exact and ordered**: counts in [`QueueStats`] are exact (SQS's are approximate); a
//!   standard queue delivers in enqueue order and never twice at once (SQS only tries to);
//!   receives always see every message (no sampling of servers, so no empty short polls).
//! - **Strict receipts**: a receipt stops working once the message is received again
//!   (SQS sometimes still accepts an old receipt); unknown receipts fail with
//!   [`InvalidReceipt`](BackendError::InvalidReceipt) rather than being ignored.
//! - **Batches** take any number of entries (a wire backend splits them into batches of 10
//!   and the 1 MiB total); each entry is checked on its own, and a missing queue fails the
//!   whole call.
//! - **Declaring again** an existing queue keeps its messages and applies the spec's settings
//!   (visibility timeout and dead-letter policy when given, content-based deduplication),
//!   like Python Melange's declare-then-set-attributes; SQS `CreateQueue` would refuse
//!   different attributes.
//! - **No I/O**: calls complete without a network round trip; a receive that finds nothing
//!   with a zero wait time returns at once, without yielding, so a consumer that loops on
//!   empty receives spins (under a paused clock, time then never advances).
//! - **Not modelled**: message retention (messages never expire), delay queues and message
//!   timers, in-flight limits, the SNS JSON envelope (queues receive the raw body, as with
//!   raw message delivery; the subject is checked, then dropped), FIFO receive-attempt ids
//!   and per-message-group deduplication scope.

mod deadlines;
mod fifo;
mod ids;
mod manifests;
mod queue;
mod receipt;
mod state;
mod topic;
mod validate;
mod visible;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use tokio::time::Instant;

pub use fifo::DEDUPLICATION_WINDOW;
pub(crate) use receipt::text as receipt_text;

use crate::backend::{
    BatchResult, MAX_VISIBILITY_TIMEOUT, MessagingBackend, QueueInfo, QueueSpec, Received,
    is_fifo_name,
};
use crate::envelope::{OutgoingMessage, ReceiptHandle, ReceiveOptions};
use crate::error::BackendError;
use state::{Config, Ids, Poll, Prepared, State};

/// The largest message a queue accepts by default: 1 MiB, as SQS.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1_048_576;

/// The largest message a topic accepts by default: 256 KiB (262,144 bytes), as SNS.
pub const DEFAULT_MAX_TOPIC_MESSAGE_SIZE: usize = 262_144;

/// Attempts at a contended lock before sleeping on it: the first `LOCK_SPIN_ROUNDS` after
/// spinning 1, 2, 4, ... times, the others after yielding the thread.
const LOCK_ROUNDS: u32 = 16;
const LOCK_SPIN_ROUNDS: u32 = 8;

/// The visibility timeout of queues declared without one: 30 seconds, as SQS.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

/// Queues and topics in memory, with the semantics of SQS and SNS (see the
/// [module docs](self) for the rules and the differences).
///
/// Clones share the same state, so a publisher and a consumer built from clones of one
/// backend talk to each other.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use melange_core::{InMemoryBackend, MessagingBackend, OutgoingMessage, QueueSpec, ReceiveOptions};
///
/// let backend = InMemoryBackend::new();
/// backend.declare_queue(&QueueSpec::new("orders")).await?;
/// backend
///     .publish_to_queue("orders", OutgoingMessage::new(r#"{"id":1}"#, "OrderCreated", 1))
///     .await?;
/// assert_eq!(backend.queue_stats("orders")?.visible, 1);
///
/// let received = backend.receive("orders", &ReceiveOptions::default()).await?;
/// let envelope = received.into_iter().next().unwrap()?;
/// backend.acknowledge("orders", &envelope.delivery.receipt).await?;
/// assert!(backend.queue_stats("orders")?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryBackend {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    /// The state's id maker, used outside the lock.
    ids: Arc<Ids>,
    state: Mutex<State>,
}

impl Default for InMemoryBackend {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl InMemoryBackend {
    /// A new, empty backend with the defaults of SQS and SNS: 1 MiB messages to queues,
    /// 256 KiB to topics, 30 s visibility timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder to set the backend's limits and defaults.
    pub fn builder() -> InMemoryBackendBuilder {
        InMemoryBackendBuilder {
            config: Config {
                max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                max_topic_message_size: DEFAULT_MAX_TOPIC_MESSAGE_SIZE,
                default_visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            },
        }
    }

    /// The largest message a queue accepts, in bytes as [`OutgoingMessage::wire_size`]
    /// counts them.
    pub fn max_message_size(&self) -> usize {
        self.shared.config.max_message_size
    }

    /// The largest message a topic accepts, in bytes as
    /// [`OutgoingMessage::topic_wire_size`] counts them.
    pub fn max_topic_message_size(&self) -> usize {
        self.shared.config.max_topic_message_size
    }

    /// The visibility timeout of queues declared without one.
    pub fn default_visibility_timeout(&self) -> Duration {
        self.shared.config.default_visibility_timeout
    }

    /// Counts of a queue's messages, for tests: every message sent to it is, at any time, in
    /// exactly one of visible, in flight, acknowledged or dead-lettered, so
    /// `enqueued == visible + in_flight + acknowledged + dead_lettered`.
    ///
    /// Messages whose visibility timeout ran out count as visible. A message due to move to
    /// the dead-letter queue still counts as visible until a receive moves it, as on SQS.
    pub fn queue_stats(&self, queue: &str) -> Result<QueueStats, BackendError> {
        self.lock().queue_stats(queue, Instant::now())
    }

    /// The queues subscribed to a topic, with their manifest filters, sorted by queue name.
    pub fn subscriptions(&self, topic: &str) -> Result<Vec<Subscription>, BackendError> {
        self.lock().subscriptions(topic)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is held for a microsecond or two, but a publisher and a consumer on two
        // threads meet on it often; waiting a little before sleeping in the kernel saves a
        // sleep and a wake-up (a system call each, and a context switch) per meeting.
        for round in 0..LOCK_ROUNDS {
            match self.shared.state.try_lock() {
                Ok(guard) => return guard,
                // No operation panics half-way, so a poisoned state is still consistent.
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                // Spin briefly first (the holder is likely running on another core), then
                // yield (it may be waiting for this core).
                Err(TryLockError::WouldBlock) if round < LOCK_SPIN_ROUNDS => {
                    for _ in 0..(1_u32 << round) {
                        std::hint::spin_loop();
                    }
                }
                Err(TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds an [`InMemoryBackend`] with other limits than SQS's defaults.
///
/// ```
/// use std::time::Duration;
/// use melange_core::InMemoryBackend;
///
/// let backend = InMemoryBackend::builder()
///     .max_message_size(256 * 1024)
///     .max_topic_message_size(64 * 1024)
///     .default_visibility_timeout(Duration::from_secs(5))
///     .build();
/// assert_eq!(backend.max_message_size(), 262_144);
/// assert_eq!(backend.max_topic_message_size(), 65_536);
/// ```
#[derive(Debug, Clone)]
#[must_use = "call `build` to get the backend"]
pub struct InMemoryBackendBuilder {
    config: Config,
}

impl InMemoryBackendBuilder {
    /// The largest message a queue accepts, in bytes ([`DEFAULT_MAX_MESSAGE_SIZE`] by
    /// default). Topics have their own limit,
    /// [`max_topic_message_size`](Self::max_topic_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// The largest message a topic accepts, in bytes ([`DEFAULT_MAX_TOPIC_MESSAGE_SIZE`],
    /// SNS's limit, by default). A copy a topic delivers to a queue is not held to the
    /// queue's limit: SNS never delivers more than SQS accepts.
    pub fn max_topic_message_size(mut self, bytes: usize) -> Self {
        self.config.max_topic_message_size = bytes;
        self
    }

    /// The visibility timeout of queues declared without one ([`DEFAULT_VISIBILITY_TIMEOUT`]
    /// by default); capped at 12 hours, the most SQS allows.
    pub fn default_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.config.default_visibility_timeout = timeout.min(MAX_VISIBILITY_TIMEOUT);
        self
    }

    /// The backend, empty.
    pub fn build(self) -> InMemoryBackend {
        let state = State::new();
        InMemoryBackend {
            shared: Arc::new(Shared {
                config: self.config,
                ids: state.ids(),
                state: Mutex::new(state),
            }),
        }
    }
}

/// Exact counts of one queue's messages, from [`InMemoryBackend::queue_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueueStats {
    /// Messages that a receive could return (FIFO: including those held back behind an
    /// in-flight message of their group).
    pub visible: usize,
    /// Messages received and neither acknowledged nor visible again yet.
    pub in_flight: usize,
    /// FIFO queues: message groups with a message in flight, whose other messages wait.
    pub locked_groups: usize,
    /// Messages ever added: sent (duplicates excepted), fanned out from topics, or moved
    /// here from a queue this one is the dead-letter queue of.
    pub enqueued: u64,
    /// Messages deleted by an acknowledgement.
    pub acknowledged: u64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u64,
}

impl QueueStats {
    /// Whether no message is visible or in flight.
    pub fn is_empty(&self) -> bool {
        self.visible == 0 && self.in_flight == 0
    }
}

/// A queue's subscription to a topic, from [`InMemoryBackend::subscriptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// The subscribed queue.
    pub queue: String,
    /// The manifests let through; `None` lets every message through.
    pub manifest_filter: Option<Vec<String>>,
}

impl MessagingBackend for InMemoryBackend {
    async fn declare_queue(&self, spec: &QueueSpec) -> Result<QueueInfo, BackendError> {
        self.lock().declare_queue(spec, &self.shared.config)
    }

    async fn get_queue(&self, name: &str) -> Result<QueueInfo, BackendError> {
        self.lock().get_queue(name)
    }

    async fn delete_queue(&self, name: &str) -> Result<(), BackendError> {
        self.lock().delete_queue(name)
    }

    async fn declare_topic(&self, name: &str) -> Result<(), BackendError> {
        self.lock().declare_topic(name)
    }

    async fn delete_topic(&self, name: &str) -> Result<(), BackendError> {
        self.lock().delete_topic(name)
    }

    async fn subscribe(
        &self,
        queue: &str,
        topic: &str,
        manifest_filter: Option<&[String]>,
    ) -> Result<(), BackendError> {
        self.lock().subscribe(queue, topic, manifest_filter)
    }

    async fn publish_to_queue(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        let results = self.publish_batch_to_queue(queue, vec![message]).await?;
        single(results, queue)
    }

    async fn publish_batch_to_queue(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        // The checks, copies and message ids that need nothing from the queue's state are made
        // before the lock is taken, so a publisher holds it only to enqueue (a consumer waits
        // on it meanwhile).
        let config = &self.shared.config;
        let to = validate::Destination {
            target: queue,
            fifo: is_fifo_name(queue),
            content_based_deduplication: false, // not read by `message_alone`
            topic: false,
            max_size: config.max_message_size,
        };
        let ids = &self.shared.ids;
        let first = ids.reserve(messages.len() as u64);
        let prepared: Vec<_> = messages
            .into_iter()
            .zip(0..)
            .map(|(message, offset)| {
                validate::message_alone(to, &message)?;
                Ok(Prepared::new(message).with_id(first.plus(offset)))
            })
            .collect();
        let now = Instant::now();
        let (numbers, notify) = self.lock().publish_to_queue(queue, prepared, now, config)?;
        // Woken after the lock is released: waking may cost a system call.
        notify.notify_waiters();
        Ok(numbers
            .into_iter()
            .map(|number| number.map(|number| ids.owned(number)))
            .collect())
    }

    async fn publish_to_topic(
        &self,
        topic: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        let results = self.publish_batch_to_topic(topic, vec![message]).await?;
        single(results, topic)
    }

    async fn publish_batch_to_topic(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        let now = Instant::now();
        self.lock()
            .publish_to_topic(topic, messages, now, &self.shared.config)
    }

    async fn receive(
        &self,
        queue: &str,
        options: &ReceiveOptions,
    ) -> Result<Received, BackendError> {
        validate::receive_options(queue, options)?;
        let start = Instant::now();
        let deadline = start + options.wait_time;
        // First look without registering for wake-ups: when messages are there (the busy
        // case) a receive takes the lock once and touches no `Notify`.
        let (incarnation, notify) = match self.lock().try_receive(queue, None, options, start)? {
            Poll::Ready(received) => return Ok(received),
            Poll::Wait {
                incarnation,
                notify,
                ..
            } => (incarnation, notify),
        };
        if options.wait_time.is_zero() {
            return Ok(Vec::new());
        }
        loop {
            // Register for wake-ups before looking again, so a publish since the last look is
            // not missed.
            let notified = notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let poll = self
                .lock()
                .try_receive(queue, Some(incarnation), options, now);
            let next_visible = match poll? {
                Poll::Ready(received) => return Ok(received),
                Poll::Wait { next_visible, .. } => next_visible,
            };
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake_at = next_visible.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn acknowledge(&self, queue: &str, receipt: &ReceiptHandle) -> Result<(), BackendError> {
        let results = self
            .acknowledge_batch(queue, std::slice::from_ref(receipt))
            .await?;
        single(results, queue)
    }

    async fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchResult<()>, BackendError> {
        // The deleted messages are freed, and waiting receives woken, after the lock is
        // released, so the publisher and the consumer hold it as briefly as they can.
        let mut deleted = Vec::with_capacity(receipts.len());
        let (results, wake) = self.lock().acknowledge(queue, receipts, &mut deleted)?;
        drop(deleted);
        if let Some(notify) = wake {
            notify.notify_waiters();
        }
        Ok(results)
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        let results = self
            .change_visibility_batch(queue, &[(receipt.clone(), timeout)])
            .await?;
        single(results, queue)
    }

    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchResult<()>, BackendError> {
        let now = Instant::now();
        self.lock().change_visibility(queue, entries, now)
    }
}

/// The one result of a one-entry batch.
fn single<T>(results: BatchResult<T>, target: &str) -> Result<T, BackendError> {
    results.into_iter().next().unwrap_or_else(|| {
        Err(validate::invalid(
            target,
            "the backend returned no result for the entry",
        ))
    })
}
