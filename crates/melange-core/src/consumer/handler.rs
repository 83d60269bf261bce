use std::sync::Arc;
use std::time::Duration;

use crate::backend::MessagingBackend;
use crate::consumer::{
    AckPolicy, Consumer, ConsumerOptions, DeduplicationCache, DynConsumer, MessageContext,
    PoisonOutcome,
};
use crate::envelope::{Envelope, ReceiptHandle, ReceiveOptions};
use crate::error::{BackendError, ConsumeError};
use crate::serializer::SerializerRegistry;
use crate::shutdown::Shutdown;

/// The longest pause between receives after consecutive transient backend errors.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(30);

/// What a consume loop did, returned when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumeSummary {
    /// Messages received (a redelivered message counts each time).
    pub received: u64,
    /// Messages every accepting consumer processed successfully (or had already processed,
    /// according to the de-duplication cache).
    pub succeeded: u64,
    /// Messages for which a handler failed.
    pub failed: u64,
    /// Messages that could not be processed at all: malformed, unknown serializer,
    /// undecodable, or accepted by no consumer.
    pub poison: u64,
    /// Consumer runs skipped because the de-duplication cache had already seen them.
    pub duplicates: u64,
    /// Messages acknowledged (deleted from the queue).
    pub acknowledged: u64,
}

/// Dispatches the messages of a queue to several consumers, as Python Melange's
/// `MessageDispatcher`: each message goes to every attached consumer that accepts its
/// manifest, and is acknowledged once all of them succeeded.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use melange_core::{ConsumeError, Consumer, ConsumerHandler, InMemoryBackend, MessageContext,
///     MessagingBackend, QueueSpec, SerializerRegistry};
///
/// struct Counter(std::sync::atomic::AtomicUsize);
/// impl Consumer for Counter {
///     fn accepts(&self, _manifest: Option<&str>) -> bool { true }
///     async fn consume(&self, _ctx: MessageContext<'_>) -> Result<(), ConsumeError> {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         Ok(())
///     }
/// }
///
/// let backend = InMemoryBackend::new();
/// backend.declare_queue(&QueueSpec::new("orders")).await?;
/// let mut handler = ConsumerHandler::new(SerializerRegistry::default(), backend.clone());
/// handler.attach_consumer(Counter(Default::default()));
/// let summary = handler.drain("orders").await?;
/// assert_eq!(summary.received, 0);
/// # Ok(())
/// # }
/// ```
pub struct ConsumerHandler<B> {
    engine: Engine<Box<dyn DynConsumer>, B>,
}

/// Dispatches the messages of a queue to one consumer, as Python Melange's
/// `SimpleMessageDispatcher`. The consumer is held by value: no dynamic dispatch per message.
pub struct SimpleConsumerHandler<C, B> {
    engine: Engine<C, B>,
}

/// Forwards the builder and loop methods shared by both handlers to their engine.
macro_rules! handler_methods {
    () => {
        /// Sets the receive and acknowledgement options.
        pub fn with_options(mut self, options: ConsumerOptions) -> Self {
            self.engine.options = options;
            self
        }

        /// Stops [`consume_loop`](Self::consume_loop) when `shutdown` fires (after the batch in
        /// hand is processed and acknowledged). Without it, the loop runs until the process
        /// ends or, with [`ConsumerOptions::stop_when_idle`], until the queue is idle.
        pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
            self.engine.shutdown = shutdown;
            self
        }

        /// Skips consumers that already completed a message, according to `cache`.
        pub fn with_deduplication_cache(mut self, cache: impl DeduplicationCache) -> Self {
            self.engine.dedup = Some(Arc::new(cache));
            self
        }

        /// Receives, dispatches and acknowledges messages from `queue` until the shutdown
        /// signal fires (or the queue is idle, with [`ConsumerOptions::stop_when_idle`]).
        ///
        /// Handler failures and unprocessable messages never stop the loop; they are logged
        /// with the queue, message id and manifest, and get the configured outcome. Transient
        /// backend errors (unreachable, throttled) are retried with a growing pause; any
        /// other backend error, such as the queue not existing, ends the loop with that error.
        pub async fn consume_loop(&self, queue: &str) -> Result<ConsumeSummary, BackendError> {
            self.engine
                .run(queue, self.engine.options.stop_when_idle)
                .await
        }

        /// Processes everything currently receivable in `queue`, then returns: the synchronous
        /// draining a unit test of a consumer needs, as Python Melange's
        /// `link_synchronously`. Messages in flight elsewhere are not waited for.
        pub async fn drain(&self, queue: &str) -> Result<ConsumeSummary, BackendError> {
            self.engine.run(queue, Some(Duration::ZERO)).await
        }
    };
}

impl<B: MessagingBackend> ConsumerHandler<B> {
    /// A handler with no consumers yet; attach them with
    /// [`attach_consumer`](Self::attach_consumer).
    pub fn new(serializers: SerializerRegistry, backend: B) -> Self {
        Self {
            engine: Engine::new(Vec::new(), serializers, backend),
        }
    }

    /// Adds a consumer. Every message goes to each consumer that accepts its manifest.
    pub fn attach_consumer(&mut self, consumer: impl Consumer) -> &mut Self {
        self.engine.consumers.push(Box::new(consumer));
        self
    }

    handler_methods!();
}

impl<C: Consumer, B: MessagingBackend> SimpleConsumerHandler<C, B> {
    /// A handler feeding every message of a queue to `consumer`.
    pub fn new(consumer: C, serializers: SerializerRegistry, backend: B) -> Self {
        Self {
            engine: Engine::new(vec![consumer], serializers, backend),
        }
    }

    /// The consumer.
    pub fn consumer(&self) -> &C {
        &self.engine.consumers[0]
    }

    handler_methods!();
}

struct Engine<C, B> {
    consumers: Vec<C>,
    serializers: SerializerRegistry,
    backend: B,
    options: ConsumerOptions,
    dedup: Option<Arc<dyn DeduplicationCache>>,
    shutdown: Shutdown,
}

/// What became of one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Poison(PoisonOutcome),
}

impl<C: Consumer, B: MessagingBackend> Engine<C, B> {
    fn new(consumers: Vec<C>, serializers: SerializerRegistry, backend: B) -> Self {
        Self {
            consumers,
            serializers,
            backend,
            options: ConsumerOptions::default(),
            dedup: None,
            shutdown: Shutdown::new(),
        }
    }

    async fn run(
        &self,
        queue: &str,
        idle: Option<Duration>,
    ) -> Result<ConsumeSummary, BackendError> {
        let options = ReceiveOptions {
            max_messages: self.options.batch_size,
            wait_time: idle.unwrap_or(self.options.wait_time),
            visibility_timeout: self.options.visibility_timeout,
        };
        let mut summary = ConsumeSummary::default();
        let mut backoff = self.options.error_backoff;
        while !self.shutdown.is_triggered() {
            let received = tokio::select! {
                biased;
                () = self.shutdown.wait() => break,
                received = self.backend.receive(queue, &options) => received,
            };
            let batch = match received {
                Ok(batch) => batch,
                Err(error) if error.is_transient() => {
                    tracing::warn!(queue, %error, ?backoff, "receive failed; retrying after a pause");
                    tokio::select! {
                        () = self.shutdown.wait() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_ERROR_BACKOFF);
                    continue;
                }
                Err(error) => return Err(error),
            };
            backoff = self.options.error_backoff;
            if batch.is_empty() {
                if idle.is_some() {
                    break;
                }
                continue;
            }
            summary.received += batch.len() as u64;

            let mut to_acknowledge = Vec::with_capacity(batch.len());
            if self.options.ack_policy == AckPolicy::Early {
                let receipts: Vec<ReceiptHandle> = batch
                    .iter()
                    .map(|item| match item {
                        Ok(envelope) => envelope.delivery.receipt.clone(),
                        Err(malformed) => malformed.delivery.receipt.clone(),
                    })
                    .collect();
                summary.acknowledged += self.acknowledge(queue, &receipts).await?;
            }
            for item in batch {
                let (outcome, receipt) = match item {
                    Ok(envelope) => (
                        self.process(&envelope, &mut summary).await,
                        envelope.delivery.receipt,
                    ),
                    Err(malformed) => {
                        tracing::error!(
                            queue,
                            message_id = %malformed.message_id,
                            error = %malformed.error,
                            outcome = ?self.options.undecodable,
                            "malformed message"
                        );
                        (
                            Outcome::Poison(self.options.undecodable),
                            malformed.delivery.receipt,
                        )
                    }
                };
                match outcome {
                    Outcome::Succeeded => summary.succeeded += 1,
                    Outcome::Failed => summary.failed += 1,
                    Outcome::Poison(_) => summary.poison += 1,
                }
                if self.should_acknowledge(outcome) {
                    to_acknowledge.push(receipt);
                }
            }
            summary.acknowledged += self.acknowledge(queue, &to_acknowledge).await?;
        }
        Ok(summary)
    }

    fn should_acknowledge(&self, outcome: Outcome) -> bool {
        match self.options.ack_policy {
            AckPolicy::Early => false, // already acknowledged on receipt
            AckPolicy::Always => true,
            AckPolicy::AfterSuccess => matches!(
                outcome,
                Outcome::Succeeded | Outcome::Poison(PoisonOutcome::Discard)
            ),
        }
    }

    /// Runs every accepting consumer on one message.
    async fn process(&self, envelope: &Envelope, summary: &mut ConsumeSummary) -> Outcome {
        let ctx = MessageContext::new(envelope, &self.serializers);
        let manifest = ctx.manifest();
        let mut accepted = false;
        let mut failed = false;
        let mut undecodable = false;
        for consumer in &self.consumers {
            if !consumer.accepts(manifest) {
                continue;
            }
            accepted = true;
            let key = self.dedup.as_ref().map(|cache| {
                (
                    cache,
                    format!("{}.{}", consumer.name(), envelope.message_id),
                )
            });
            if let Some((cache, key)) = &key {
                match cache.contains(key).await {
                    Ok(true) => {
                        tracing::info!(
                            queue = ctx.queue(),
                            message_id = ctx.message_id(),
                            consumer = consumer.name(),
                            "already processed; skipping the duplicate"
                        );
                        summary.duplicates += 1;
                        continue;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(queue = ctx.queue(), message_id = ctx.message_id(), %error, "de-duplication cache lookup failed; processing anyway");
                    }
                }
            }
            match consumer.consume(ctx).await {
                Ok(()) => {
                    if let Some((cache, key)) = &key
                        && let Err(error) = cache.store(key).await
                    {
                        tracing::warn!(queue = ctx.queue(), message_id = ctx.message_id(), %error, "could not record the message in the de-duplication cache");
                    }
                }
                Err(ConsumeError::Decode(error)) => {
                    undecodable = true;
                    tracing::error!(queue = ctx.queue(), message_id = ctx.message_id(), manifest, consumer = consumer.name(), %error, outcome = ?self.options.undecodable, "cannot decode message");
                }
                Err(error) => {
                    failed = true;
                    tracing::error!(queue = ctx.queue(), message_id = ctx.message_id(), manifest, receive_count = ctx.receive_count(), %error, "handler failed; the message will be delivered again");
                }
            }
        }
        if !accepted {
            tracing::error!(queue = ctx.queue(), message_id = ctx.message_id(), manifest, outcome = ?self.options.unknown_manifest, "no consumer accepts this manifest");
            Outcome::Poison(self.options.unknown_manifest)
        } else if failed {
            Outcome::Failed
        } else if undecodable {
            Outcome::Poison(self.options.undecodable)
        } else {
            Outcome::Succeeded
        }
    }

    /// Acknowledges a batch; returns how many were acknowledged. A failed entry is logged and
    /// left to be delivered again; only a missing queue is an error.
    async fn acknowledge(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<u64, BackendError> {
        if receipts.is_empty() {
            return Ok(0);
        }
        match self.backend.acknowledge_batch(queue, receipts).await {
            Ok(results) => {
                let mut acknowledged = 0;
                for result in results {
                    match result {
                        Ok(()) => acknowledged += 1,
                        Err(error) => {
                            tracing::warn!(queue, %error, "acknowledgement failed; the message will be delivered again")
                        }
                    }
                }
                Ok(acknowledged)
            }
            Err(error @ BackendError::QueueDoesNotExist { .. }) => Err(error),
            Err(error) => {
                tracing::warn!(queue, %error, count = receipts.len(), "acknowledgement failed; the messages will be delivered again");
                Ok(0)
            }
        }
    }
}
