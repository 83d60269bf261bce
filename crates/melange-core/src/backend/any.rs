//! Type erasure for [`MessagingBackend`]: a backend chosen at run time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::{BatchResult, MessagingBackend, QueueInfo, QueueSpec, Received};
use crate::envelope::{OutgoingMessage, ReceiptHandle, ReceiveOptions};
use crate::error::BackendError;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// Any [`MessagingBackend`], behind one type: pick the backend from configuration and pass
/// the same publishers and consumers around. Cheap to clone.
///
/// ```
/// use melange_core::{AnyBackend, InMemoryBackend};
///
/// fn backend_from_config(kind: &str) -> AnyBackend {
///     match kind {
///         // "sqs" => AnyBackend::new(melange_sqs::ElasticMqBackend::new("127.0.0.1", 9324).expect("loopback")),
///         _ => AnyBackend::new(InMemoryBackend::new()),
///     }
/// }
/// let backend = backend_from_config("memory");
/// # let _ = backend;
/// ```
#[derive(Clone)]
pub struct AnyBackend(Arc<dyn DynBackend>);

impl AnyBackend {
    /// Erases a backend's type.
    pub fn new(backend: impl MessagingBackend) -> Self {
        Self(Arc::new(backend))
    }
}

impl std::fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnyBackend")
    }
}

/// The object-safe twin of [`MessagingBackend`], implemented for every backend.
trait DynBackend: Send + Sync + 'static {
    fn declare_queue<'a>(&'a self, spec: &'a QueueSpec) -> BoxFuture<'a, QueueInfo>;
    fn get_queue<'a>(&'a self, name: &'a str) -> BoxFuture<'a, QueueInfo>;
    fn delete_queue<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
    fn declare_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()>;
    fn subscribe<'a>(
        &'a self,
        queue: &'a str,
        topic: &'a str,
        filter: Option<&'a [String]>,
    ) -> BoxFuture<'a, ()>;
    fn publish_to_queue<'a>(
        &'a self,
        queue: &'a str,
        message: OutgoingMessage,
    ) -> BoxFuture<'a, String>;
    fn publish_batch_to_queue<'a>(
        &'a self,
        queue: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, BatchResult<String>>;
    fn publish_to_topic<'a>(
        &'a self,
        topic: &'a str,
        message: OutgoingMessage,
    ) -> BoxFuture<'a, String>;
    fn publish_batch_to_topic<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, BatchResult<String>>;
    fn receive<'a>(
        &'a self,
        queue: &'a str,
        options: &'a ReceiveOptions,
    ) -> BoxFuture<'a, Received>;
    fn acknowledge<'a>(&'a self, queue: &'a str, receipt: &'a ReceiptHandle) -> BoxFuture<'a, ()>;
    fn acknowledge_batch<'a>(
        &'a self,
        queue: &'a str,
        receipts: &'a [ReceiptHandle],
    ) -> BoxFuture<'a, BatchResult<()>>;
    fn change_visibility<'a>(
        &'a self,
        queue: &'a str,
        receipt: &'a ReceiptHandle,
        timeout: Duration,
    ) -> BoxFuture<'a, ()>;
    fn change_visibility_batch<'a>(
        &'a self,
        queue: &'a str,
        entries: &'a [(ReceiptHandle, Duration)],
    ) -> BoxFuture<'a, BatchResult<()>>;
}

impl<B: MessagingBackend> DynBackend for B {
    fn declare_queue<'a>(&'a self, spec: &'a QueueSpec) -> BoxFuture<'a, QueueInfo> {
        Box::pin(MessagingBackend::declare_queue(self, spec))
    }
    fn get_queue<'a>(&'a self, name: &'a str) -> BoxFuture<'a, QueueInfo> {
        Box::pin(MessagingBackend::get_queue(self, name))
    }
    fn delete_queue<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(MessagingBackend::delete_queue(self, name))
    }
    fn declare_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(MessagingBackend::declare_topic(self, name))
    }
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(MessagingBackend::delete_topic(self, name))
    }
    fn subscribe<'a>(
        &'a self,
        queue: &'a str,
        topic: &'a str,
        filter: Option<&'a [String]>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(MessagingBackend::subscribe(self, queue, topic, filter))
    }
    fn publish_to_queue<'a>(
        &'a self,
        queue: &'a str,
        message: OutgoingMessage,
    ) -> BoxFuture<'a, String> {
        Box::pin(MessagingBackend::publish_to_queue(self, queue, message))
    }
    fn publish_batch_to_queue<'a>(
        &'a self,
        queue: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, BatchResult<String>> {
        Box::pin(MessagingBackend::publish_batch_to_queue(
            self, queue, messages,
        ))
    }
    fn publish_to_topic<'a>(
        &'a self,
        topic: &'a str,
        message: OutgoingMessage,
    ) -> BoxFuture<'a, String> {
        Box::pin(MessagingBackend::publish_to_topic(self, topic, message))
    }
    fn publish_batch_to_topic<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, BatchResult<String>> {
        Box::pin(MessagingBackend::publish_batch_to_topic(
            self, topic, messages,
        ))
    }
    fn receive<'a>(
        &'a self,
        queue: &'a str,
        options: &'a ReceiveOptions,
    ) -> BoxFuture<'a, Received> {
        Box::pin(MessagingBackend::receive(self, queue, options))
    }
    fn acknowledge<'a>(&'a self, queue: &'a str, receipt: &'a ReceiptHandle) -> BoxFuture<'a, ()> {
        Box::pin(MessagingBackend::acknowledge(self, queue, receipt))
    }
    fn acknowledge_batch<'a>(
        &'a self,
        queue: &'a str,
        receipts: &'a [ReceiptHandle],
    ) -> BoxFuture<'a, BatchResult<()>> {
        Box::pin(MessagingBackend::acknowledge_batch(self, queue, receipts))
    }
    fn change_visibility<'a>(
        &'a self,
        queue: &'a str,
        receipt: &'a ReceiptHandle,
        timeout: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(MessagingBackend::change_visibility(
            self, queue, receipt, timeout,
        ))
    }
    fn change_visibility_batch<'a>(
        &'a self,
        queue: &'a str,
        entries: &'a [(ReceiptHandle, Duration)],
    ) -> BoxFuture<'a, BatchResult<()>> {
        Box::pin(MessagingBackend::change_visibility_batch(
            self, queue, entries,
        ))
    }
}

impl MessagingBackend for AnyBackend {
    async fn declare_queue(&self, spec: &QueueSpec) -> Result<QueueInfo, BackendError> {
        self.0.declare_queue(spec).await
    }
    async fn get_queue(&self, name: &str) -> Result<QueueInfo, BackendError> {
        self.0.get_queue(name).await
    }
    async fn delete_queue(&self, name: &str) -> Result<(), BackendError> {
        self.0.delete_queue(name).await
    }
    async fn declare_topic(&self, name: &str) -> Result<(), BackendError> {
        self.0.declare_topic(name).await
    }
    async fn delete_topic(&self, name: &str) -> Result<(), BackendError> {
        self.0.delete_topic(name).await
    }
    async fn subscribe(
        &self,
        queue: &str,
        topic: &str,
        manifest_filter: Option<&[String]>,
    ) -> Result<(), BackendError> {
        self.0.subscribe(queue, topic, manifest_filter).await
    }
    async fn publish_to_queue(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        self.0.publish_to_queue(queue, message).await
    }
    async fn publish_batch_to_queue(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        self.0.publish_batch_to_queue(queue, messages).await
    }
    async fn publish_to_topic(
        &self,
        topic: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        self.0.publish_to_topic(topic, message).await
    }
    async fn publish_batch_to_topic(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        self.0.publish_batch_to_topic(topic, messages).await
    }
    async fn receive(
        &self,
        queue: &str,
        options: &ReceiveOptions,
    ) -> Result<Received, BackendError> {
        self.0.receive(queue, options).await
    }
    async fn acknowledge(&self, queue: &str, receipt: &ReceiptHandle) -> Result<(), BackendError> {
        self.0.acknowledge(queue, receipt).await
    }
    async fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchResult<()>, BackendError> {
        self.0.acknowledge_batch(queue, receipts).await
    }
    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        self.0.change_visibility(queue, receipt, timeout).await
    }
    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchResult<()>, BackendError> {
        self.0.change_visibility_batch(queue, entries).await
    }
}
