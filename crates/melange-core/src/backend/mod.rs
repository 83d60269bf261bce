//! The pluggable backend: every operation melange needs from a message broker.
//!
//! [`MessagingBackend`] is implemented by [`InMemoryBackend`](crate::memory::InMemoryBackend)
//! and by `melange-sqs`. Use it generically (`QueuePublisher<B>`), or erase the type with
//! [`AnyBackend`] to choose a backend at run time.

mod any;

pub use any::AnyBackend;

use std::future::Future;
use std::time::Duration;

use crate::envelope::{Envelope, MalformedMessage, OutgoingMessage, ReceiptHandle, ReceiveOptions};
use crate::error::BackendError;

/// The outcome of a receive: envelopes ready for dispatch, and messages whose body or
/// attributes could not be read (they still need acknowledging or releasing).
pub type Received = Vec<Result<Envelope, MalformedMessage>>;

/// One result per entry of a batch call, in the order of the entries.
pub type BatchResult<T> = Vec<Result<T, BackendError>>;

/// How a queue should be declared.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueSpec {
    /// The queue's name. A name ending in `.fifo` declares a FIFO queue.
    pub name: String,
    /// Where messages go after too many receives.
    pub dead_letter: Option<DeadLetterPolicy>,
    /// The queue's default visibility timeout; the backend's default when `None`.
    pub visibility_timeout: Option<Duration>,
    /// FIFO queues: deduplicate on a hash of the content when a message has no
    /// deduplication id (on by default, as Python Melange declares FIFO queues).
    pub content_based_deduplication: bool,
}

impl QueueSpec {
    /// A queue with the backend's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            dead_letter: None,
            visibility_timeout: None,
            content_based_deduplication: true,
        }
    }

    /// Moves messages to `queue` once they were received `max_receive_count` times.
    pub fn dead_letter_queue(mut self, queue: impl Into<String>, max_receive_count: u32) -> Self {
        self.dead_letter = Some(DeadLetterPolicy {
            queue: queue.into(),
            max_receive_count,
        });
        self
    }

    /// Sets the queue's default visibility timeout.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    /// Turns content-based deduplication of a FIFO queue on or off.
    pub fn content_based_deduplication(mut self, enabled: bool) -> Self {
        self.content_based_deduplication = enabled;
        self
    }

    /// Checks the dead-letter settings as SQS does, before a backend declares anything: the
    /// dead-letter queue is of the queue's kind (FIFO or standard) and not the queue itself,
    /// and the receive count is 1 to 1,000. Both backends make this check first, so a spec
    /// SQS would refuse leaves no dead-letter queue behind.
    pub fn check_dead_letter(&self) -> Result<(), BackendError> {
        let Some(policy) = &self.dead_letter else {
            return Ok(());
        };
        let (queue, dead_letter) = (self.name.as_str(), policy.queue.as_str());
        let invalid = |reason: String| BackendError::InvalidRequest {
            target: queue.to_owned(),
            reason,
            source: None,
        };
        if queue == dead_letter {
            return Err(invalid(
                "a queue cannot be its own dead-letter queue".to_owned(),
            ));
        }
        match (is_fifo_name(queue), is_fifo_name(dead_letter)) {
            (true, false) => {
                return Err(invalid(format!(
                    "the dead-letter queue `{dead_letter}` of a FIFO queue must be a FIFO queue"
                )));
            }
            (false, true) => {
                return Err(invalid(format!(
                    "the dead-letter queue `{dead_letter}` of a standard queue must be a \
                     standard queue"
                )));
            }
            _ => {}
        }
        let count = policy.max_receive_count;
        if !(1..=1000).contains(&count) {
            return Err(invalid(format!(
                "max receive count must be 1 to 1000, not {count}"
            )));
        }
        Ok(())
    }

    /// Whether this declares a FIFO queue (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        is_fifo_name(&self.name)
    }
}

/// Whether a queue or topic name is a FIFO one: SQS and SNS mark them with a `.fifo` suffix.
pub fn is_fifo_name(name: &str) -> bool {
    name.ends_with(".fifo")
}

/// The redrive policy of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterPolicy {
    /// The dead-letter queue's name.
    pub queue: String,
    /// Receives after which a message is moved there.
    pub max_receive_count: u32,
}

/// What a backend knows about an existing queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// Whether it is a FIFO queue.
    pub fifo: bool,
    /// Its default visibility timeout.
    pub visibility_timeout: Duration,
    /// Its redrive policy.
    pub dead_letter: Option<DeadLetterPolicy>,
}

impl QueueInfo {
    /// Describes a queue.
    pub fn new(
        name: impl Into<String>,
        visibility_timeout: Duration,
        dead_letter: Option<DeadLetterPolicy>,
    ) -> Self {
        let name = name.into();
        Self {
            fifo: is_fifo_name(&name),
            name,
            visibility_timeout,
            dead_letter,
        }
    }
}

/// The longest visibility timeout SQS allows: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// A message broker melange can publish to and consume from.
///
/// Every method is async and returns a `Send` future, so implementors write plain `async fn`.
/// Queue and topic names are plain strings; a backend that needs another handle (an SQS
/// queue URL) resolves and caches it itself.
///
/// Batch methods have default implementations that call the single-message method for each
/// entry; backends with native batching override them.
pub trait MessagingBackend: Send + Sync + 'static {
    /// Creates a queue, or returns the existing one. Declaring a queue with a dead-letter
    /// policy also declares the dead-letter queue.
    fn declare_queue(
        &self,
        spec: &QueueSpec,
    ) -> impl Future<Output = Result<QueueInfo, BackendError>> + Send;

    /// Describes an existing queue; [`BackendError::QueueDoesNotExist`] otherwise.
    fn get_queue(&self, name: &str)
    -> impl Future<Output = Result<QueueInfo, BackendError>> + Send;

    /// Deletes a queue and every message in it.
    fn delete_queue(&self, name: &str) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Creates a topic, or does nothing if it exists.
    fn declare_topic(&self, name: &str) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Deletes a topic and its subscriptions.
    fn delete_topic(&self, name: &str) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Subscribes a queue to a topic. With a manifest filter, only messages whose manifest is
    /// in the list reach the queue. Subscribing again replaces the filter.
    fn subscribe(
        &self,
        queue: &str,
        topic: &str,
        manifest_filter: Option<&[String]>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Sends a message to a queue; returns its message id.
    fn publish_to_queue(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> impl Future<Output = Result<String, BackendError>> + Send;

    /// Sends messages to a queue; one result (the message id) per message, in order.
    fn publish_batch_to_queue(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> impl Future<Output = Result<BatchResult<String>, BackendError>> + Send {
        async move {
            let mut results = Vec::with_capacity(messages.len());
            for message in messages {
                results.push(self.publish_to_queue(queue, message).await);
            }
            Ok(results)
        }
    }

    /// Publishes a message to a topic, which delivers it to every subscribed queue whose
    /// filter accepts it; returns its message id.
    fn publish_to_topic(
        &self,
        topic: &str,
        message: OutgoingMessage,
    ) -> impl Future<Output = Result<String, BackendError>> + Send;

    /// Publishes messages to a topic; one result per message, in order.
    fn publish_batch_to_topic(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> impl Future<Output = Result<BatchResult<String>, BackendError>> + Send {
        async move {
            let mut results = Vec::with_capacity(messages.len());
            for message in messages {
                results.push(self.publish_to_topic(topic, message).await);
            }
            Ok(results)
        }
    }

    /// Receives up to `options.max_messages` messages, waiting up to `options.wait_time` for
    /// the first one. Received messages stay invisible to other receivers for the visibility
    /// timeout, and come back if not acknowledged by then.
    fn receive(
        &self,
        queue: &str,
        options: &ReceiveOptions,
    ) -> impl Future<Output = Result<Received, BackendError>> + Send;

    /// Deletes a received message so it is not delivered again.
    fn acknowledge(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Deletes received messages; one result per receipt, in order.
    fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> impl Future<Output = Result<BatchResult<()>, BackendError>> + Send {
        async move {
            let mut results = Vec::with_capacity(receipts.len());
            for receipt in receipts {
                results.push(self.acknowledge(queue, receipt).await);
            }
            Ok(results)
        }
    }

    /// Makes a received message visible again after `timeout` from now: zero releases it at
    /// once, a longer time extends the hold on it.
    fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Changes the visibility of several received messages; one result per entry, in order.
    fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> impl Future<Output = Result<BatchResult<()>, BackendError>> + Send {
        async move {
            let mut results = Vec::with_capacity(entries.len());
            for (receipt, timeout) in entries {
                results.push(self.change_visibility(queue, receipt, *timeout).await);
            }
            Ok(results)
        }
    }
}
