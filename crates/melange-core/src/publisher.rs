//! Publishers: serialize typed messages and send them to a queue or a topic.

use std::collections::HashMap;

use crate::backend::{BatchResult, MessagingBackend, is_fifo_name};
use crate::envelope::OutgoingMessage;
use crate::error::{BackendError, SerializationError};
use crate::message::Message;
use crate::serializer::SerializerRegistry;

/// Per-message publishing options: FIFO group and deduplication ids, extra attributes, and a
/// topic subject.
///
/// ```
/// use melange_core::PublishOptions;
///
/// let options = PublishOptions::default()
///     .message_group_id("customer-42")
///     .deduplication_id("order-1001")
///     .attribute("tenant", "acme");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    message_group_id: Option<String>,
    deduplication_id: Option<String>,
    attributes: HashMap<String, String>,
    subject: Option<String>,
}

impl PublishOptions {
    /// FIFO queues and topics: the message group (ordered, one in flight at a time).
    pub fn message_group_id(mut self, id: impl Into<String>) -> Self {
        self.message_group_id = Some(id.into());
        self
    }

    /// FIFO queues and topics: the deduplication id. Without one the publisher gives each
    /// publish a fresh id, as Python Melange does: two messages with the same content are
    /// two messages, where the queue's content-based deduplication would keep only the
    /// first of those sent within five minutes. Set one (an order number, say) to have
    /// SQS drop a message published again.
    pub fn deduplication_id(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }

    /// An extra string attribute sent with the message.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Topics: the notification subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    fn apply(self, message: &mut OutgoingMessage) {
        message.message_group_id = self.message_group_id;
        message.deduplication_id = self.deduplication_id;
        message.attributes = self.attributes;
        message.subject = self.subject;
    }
}

/// Publishing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The message could not be serialized.
    #[error(transparent)]
    Serialization(#[from] SerializationError),
    /// The backend refused or could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Serializes a message with its options; `fifo`: for a FIFO queue or topic.
fn encode<T: Message>(
    serializers: &SerializerRegistry,
    fifo: bool,
    message: &T,
    options: PublishOptions,
) -> Result<OutgoingMessage, SerializationError> {
    let mut outgoing = serializers.serialize(message)?;
    options.apply(&mut outgoing);
    if fifo && outgoing.deduplication_id.is_none() {
        outgoing.deduplication_id = Some(fresh_deduplication_id());
    }
    Ok(outgoing)
}

fn encode_all<'m, T: Message>(
    serializers: &SerializerRegistry,
    target: &str,
    messages: impl IntoIterator<Item = (&'m T, PublishOptions)>,
) -> Result<Vec<OutgoingMessage>, SerializationError> {
    // Collecting into `Result<Vec<_>, _>` loses the size hint and grows the vector a few
    // times per batch; reserve once instead.
    let messages = messages.into_iter();
    let mut outgoing = Vec::with_capacity(messages.size_hint().0);
    let fifo = is_fifo_name(target);
    for (message, options) in messages {
        outgoing.push(encode(serializers, fifo, message, options)?);
    }
    Ok(outgoing)
}

/// A deduplication id no other publish uses: 128 random bits in hex (Python Melange sends a
/// random UUID). The SDK's own retries resend the same request, id included, so a retried
/// send is still dropped as the duplicate it is.
fn fresh_deduplication_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// Publishes typed messages to queues, as Python Melange's `QueuePublisher`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use melange_core::{InMemoryBackend, Message, MessagingBackendFactory, QueuePublisher,
///     SerializerRegistry};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Greeting { text: String }
/// impl Message for Greeting { const MANIFEST: &'static str = "Greeting"; }
///
/// let backend = InMemoryBackend::new();
/// MessagingBackendFactory::new(backend.clone()).init_queue("greetings").await?;
/// let publisher = QueuePublisher::new(SerializerRegistry::default(), backend);
/// let id = publisher.publish("greetings", &Greeting { text: "hi".into() }).await?;
/// assert!(!id.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct QueuePublisher<B> {
    serializers: SerializerRegistry,
    backend: B,
}

impl<B: MessagingBackend> QueuePublisher<B> {
    /// A publisher serializing with `serializers` and sending through `backend`.
    pub fn new(serializers: SerializerRegistry, backend: B) -> Self {
        Self {
            serializers,
            backend,
        }
    }

    /// Publishes a message; returns its message id.
    pub async fn publish<T: Message>(
        &self,
        queue: &str,
        message: &T,
    ) -> Result<String, PublishError> {
        self.publish_with(queue, message, PublishOptions::default())
            .await
    }

    /// Publishes a message with options (FIFO group and deduplication ids, attributes).
    pub async fn publish_with<T: Message>(
        &self,
        queue: &str,
        message: &T,
        options: PublishOptions,
    ) -> Result<String, PublishError> {
        let outgoing = encode(&self.serializers, is_fifo_name(queue), message, options)?;
        Ok(self.backend.publish_to_queue(queue, outgoing).await?)
    }

    /// Publishes messages in batches (the backend's batch size); one result per message, in
    /// order. Nothing is sent if any message fails to serialize.
    pub async fn publish_batch<'m, T: Message>(
        &self,
        queue: &str,
        messages: impl IntoIterator<Item = &'m T>,
    ) -> Result<BatchResult<String>, PublishError> {
        let messages = messages.into_iter().map(|m| (m, PublishOptions::default()));
        self.publish_batch_with(queue, messages).await
    }

    /// Publishes messages with per-message options; one result per message, in order.
    pub async fn publish_batch_with<'m, T: Message>(
        &self,
        queue: &str,
        messages: impl IntoIterator<Item = (&'m T, PublishOptions)>,
    ) -> Result<BatchResult<String>, PublishError> {
        let outgoing = encode_all(&self.serializers, queue, messages)?;
        Ok(self.backend.publish_batch_to_queue(queue, outgoing).await?)
    }
}

/// Publishes typed messages to topics, as Python Melange's `TopicPublisher`: every queue
/// subscribed to the topic (and whose manifest filter accepts the message) gets a copy.
#[derive(Debug, Clone)]
pub struct TopicPublisher<B> {
    serializers: SerializerRegistry,
    backend: B,
}

impl<B: MessagingBackend> TopicPublisher<B> {
    /// A publisher serializing with `serializers` and sending through `backend`.
    pub fn new(serializers: SerializerRegistry, backend: B) -> Self {
        Self {
            serializers,
            backend,
        }
    }

    /// Publishes a message; returns its message id.
    pub async fn publish<T: Message>(
        &self,
        topic: &str,
        message: &T,
    ) -> Result<String, PublishError> {
        self.publish_with(topic, message, PublishOptions::default())
            .await
    }

    /// Publishes a message with options (subject, attributes, FIFO ids).
    pub async fn publish_with<T: Message>(
        &self,
        topic: &str,
        message: &T,
        options: PublishOptions,
    ) -> Result<String, PublishError> {
        let outgoing = encode(&self.serializers, is_fifo_name(topic), message, options)?;
        Ok(self.backend.publish_to_topic(topic, outgoing).await?)
    }

    /// Publishes messages in batches; one result per message, in order. Nothing is sent if
    /// any message fails to serialize.
    pub async fn publish_batch<'m, T: Message>(
        &self,
        topic: &str,
        messages: impl IntoIterator<Item = &'m T>,
    ) -> Result<BatchResult<String>, PublishError> {
        let messages = messages.into_iter().map(|m| (m, PublishOptions::default()));
        self.publish_batch_with(topic, messages).await
    }

    /// Publishes messages with per-message options; one result per message, in order.
    pub async fn publish_batch_with<'m, T: Message>(
        &self,
        topic: &str,
        messages: impl IntoIterator<Item = (&'m T, PublishOptions)>,
    ) -> Result<BatchResult<String>, PublishError> {
        let outgoing = encode_all(&self.serializers, topic, messages)?;
        Ok(self.backend.publish_batch_to_topic(topic, outgoing).await?)
    }
}
