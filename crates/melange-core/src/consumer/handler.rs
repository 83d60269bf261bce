use std::sync::Arc;
use std::time::Duration;

use super::engine::Engine;
use super::events::ConsumerEvent;
use crate::backend::MessagingBackend;
use crate::consumer::{Consumer, ConsumerOptions, DeduplicationCache, DynConsumer};
use crate::error::BackendError;
use crate::serializer::SerializerRegistry;
use crate::shutdown::Shutdown;

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
    /// Failed messages scheduled for another delivery after a backoff.
    pub retried: u64,
    /// Messages moved to the dead-letter queue by this handler.
    pub dead_lettered: u64,
    /// Messages received but not finished when the loop stopped, made visible again at once.
    pub released: u64,
    /// Handler runs that panicked (counted as failures too).
    pub panicked: u64,
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

        /// Stops [`consume_loop`](Self::consume_loop) gracefully when `shutdown` fires: it
        /// stops receiving, lets running handlers finish (up to
        /// [`ConsumerOptions::shutdown_deadline`]), flushes acknowledgements and releases every
        /// message it received but did not finish. Without it, the loop runs until the
        /// process ends or, with [`ConsumerOptions::stop_when_idle`], until the queue is idle.
        pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
            self.engine.shutdown = shutdown;
            self
        }

        /// Calls `hook` for every [`ConsumerEvent`]: handled, failed, unprocessable,
        /// dead-lettered messages. It runs on the consume loop: keep it short. A panic in it
        /// is logged and the loop goes on.
        pub fn on_event(
            mut self,
            hook: impl Fn(&ConsumerEvent<'_>) + Send + Sync + 'static,
        ) -> Self {
            self.engine.hook = Some(Arc::new(hook));
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
        /// Up to [`ConsumerOptions::max_in_flight`] handlers run at once; a slow one never
        /// holds back the others. Handler failures, panics and unprocessable messages never
        /// stop the loop; they are logged with the queue, message id and manifest, and get the
        /// configured outcome. Transient backend errors (unreachable, throttled) are retried
        /// with a growing pause; any other backend error, such as the queue not existing, stops
        /// the loop gracefully and is returned.
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
