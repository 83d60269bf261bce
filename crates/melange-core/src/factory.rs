//! The factory: declares queues and topics the way Python Melange's
//! `MessagingBackendFactory` does.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use crate::backend::{MessagingBackend, QueueInfo, QueueSpec};
use crate::error::BackendError;

/// Receives after which a message moves to the dead-letter queue, as in Python Melange.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 4;

/// Creates queues and topics; every call is idempotent.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use melange_core::{InMemoryBackend, MessagingBackendFactory};
///
/// let factory = MessagingBackendFactory::new(InMemoryBackend::new());
/// factory.init_queue("melangetutorial-queue").await?;
/// let queue = factory
///     .init_queue("payments")
///     .subscribed_to(["orders"])                 // created if missing
///     .manifest_filter(["OrderCreated"])         // only these reach the queue
///     .dead_letter_queue("payments-dlq")         // after 4 receives
///     .await?;
/// assert_eq!(queue.dead_letter.unwrap().max_receive_count, 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MessagingBackendFactory<B> {
    backend: B,
}

impl<B: MessagingBackend> MessagingBackendFactory<B> {
    /// A factory declaring through `backend`.
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    /// Declares a queue; configure it with the returned builder's methods, then `.await` it.
    pub fn init_queue(&self, name: impl Into<String>) -> InitQueue<'_, B> {
        InitQueue {
            backend: &self.backend,
            spec: QueueSpec::new(name),
            topics: Vec::new(),
            manifest_filter: None,
            dead_letter_queue: None,
            max_receive_count: DEFAULT_MAX_RECEIVE_COUNT,
        }
    }

    /// Declares a topic.
    pub async fn init_topic(&self, name: &str) -> Result<(), BackendError> {
        self.backend.declare_topic(name).await
    }
}

/// A queue declaration in the making; `.await` it to declare the queue, its dead-letter
/// queue, its topics and its subscriptions, in that order.
#[must_use = "a queue is declared only when the InitQueue is awaited"]
pub struct InitQueue<'f, B> {
    backend: &'f B,
    spec: QueueSpec,
    topics: Vec<String>,
    manifest_filter: Option<Vec<String>>,
    dead_letter_queue: Option<String>,
    max_receive_count: u32,
}

impl<B> InitQueue<'_, B> {
    /// Subscribes the queue to these topics, creating the ones that do not exist.
    pub fn subscribed_to<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.topics.extend(topics.into_iter().map(Into::into));
        self
    }

    /// Lets only messages with these manifests through the topic subscriptions (Python
    /// Melange's `filter_events`).
    pub fn manifest_filter<S: Into<String>>(
        mut self,
        manifests: impl IntoIterator<Item = S>,
    ) -> Self {
        self.manifest_filter = Some(manifests.into_iter().map(Into::into).collect());
        self
    }

    /// Attaches a dead-letter queue (created if missing) that takes messages received
    /// [`max_receive_count`](Self::max_receive_count) times (4 by default).
    pub fn dead_letter_queue(mut self, name: impl Into<String>) -> Self {
        self.dead_letter_queue = Some(name.into());
        self
    }

    /// Receives before a message moves to the dead-letter queue.
    pub fn max_receive_count(mut self, count: u32) -> Self {
        self.max_receive_count = count;
        self
    }

    /// The queue's default visibility timeout.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.spec = self.spec.visibility_timeout(timeout);
        self
    }
}

impl<'f, B: MessagingBackend> IntoFuture for InitQueue<'f, B> {
    type Output = Result<QueueInfo, BackendError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'f>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut spec = self.spec;
            if let Some(dlq) = self.dead_letter_queue {
                spec = spec.dead_letter_queue(dlq, self.max_receive_count);
            }
            for topic in &self.topics {
                self.backend.declare_topic(topic).await?;
            }
            let info = self.backend.declare_queue(&spec).await?;
            for topic in &self.topics {
                self.backend
                    .subscribe(&spec.name, topic, self.manifest_filter.as_deref())
                    .await?;
            }
            Ok(info)
        })
    }
}
