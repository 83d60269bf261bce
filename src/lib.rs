//! # melange
//!
//! Typed publish/subscribe messaging for Rust services over Amazon SQS + SNS, wire-compatible
//! with the Python library [Melange](https://pypi.org/project/melange/): a Rust service and a
//! Python service can share queues and topics.
//!
//! You annotate handler methods with [`#[listener]`](listener); melange runs the loop that
//! receives, deserializes, dispatches by message type and acknowledges, against a pluggable
//! [backend](MessagingBackend). The embedded [`InMemoryBackend`] needs no server and behaves
//! like SQS (visibility timeouts, redrive, FIFO groups, topic fan-out), so the same code runs
//! in tests, in one process, and on SQS.
//!
//! ## The tutorial
//!
//! Create a queue with the factory, publish a typed message, consume it with a listener:
//!
//! ```
//! use std::time::Duration;
//! use melange::{ConsumerOptions, InMemoryBackend, MessagingBackendFactory, QueuePublisher,
//!     SerializerRegistry, SimpleConsumerHandler};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, melange::Message)]
//! struct MyTestMessage { message: String }
//!
//! struct MyConsumer;
//!
//! #[melange::listener]
//! impl MyConsumer {
//!     async fn on_my_test_message_received(&self, event: MyTestMessage) {
//!         println!("{}", event.message);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = InMemoryBackend::new();
//! let serializer = SerializerRegistry::default();
//!
//! // create_queue
//! let factory = MessagingBackendFactory::new(backend.clone());
//! factory.init_queue("melangetutorial-queue").await?;
//!
//! // publish
//! let publisher = QueuePublisher::new(serializer.clone(), backend.clone());
//! publisher
//!     .publish("melangetutorial-queue", &MyTestMessage { message: "Hello World!".into() })
//!     .await?;
//!
//! // consume (here: until the queue is idle; by default, until a shutdown signal)
//! let handler = SimpleConsumerHandler::new(MyConsumer, serializer, backend)
//!     .with_options(ConsumerOptions::default().stop_when_idle(Duration::from_millis(100)));
//! let summary = handler.consume_loop("melangetutorial-queue").await?;
//! assert_eq!(summary.acknowledged, 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## Where things are
//!
//! - Messages: [`Message`] (derive it), [`Envelope`] (a received message before decoding).
//! - Serialization: [`SerializerRegistry`], [`JsonSerializer`] (identifier 1, as in Python
//!   Melange), the [`Serializer`] trait for your own formats.
//! - Publishing: [`QueuePublisher`], [`TopicPublisher`], [`PublishOptions`].
//! - Declaring: [`MessagingBackendFactory`] (`init_queue`, `init_topic`).
//! - Consuming: [`listener`], [`Consumer`], [`SimpleConsumerHandler`], [`ConsumerHandler`],
//!   [`ConsumerOptions`] (acknowledgement policy, outcome of unprocessable messages),
//!   [`DeduplicationCache`], [`Shutdown`].
//! - Backends: [`MessagingBackend`], [`InMemoryBackend`], [`AnyBackend`] (chosen at run
//!   time).

pub use melange_core::*;

#[cfg(feature = "macros")]
#[doc(inline)]
pub use melange_macros::{Message, listener};

/// The Amazon SQS + SNS backend ([`sqs::SqsBackend`], [`sqs::AwsBackend`],
/// [`sqs::ElasticMqBackend`]), wire-compatible with Python Melange (feature `sqs`, on by
/// default).
#[cfg(feature = "sqs")]
pub use melange_sqs as sqs;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide's pages (`docs/`), their code blocks compiled and run as doctests.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../docs/getting-started.md")]
    pub struct GettingStarted;
    #[doc = include_str!("../docs/publishers.md")]
    pub struct Publishers;
    #[doc = include_str!("../docs/consumers-and-listener.md")]
    pub struct ConsumersAndListener;
    #[doc = include_str!("../docs/serialization.md")]
    pub struct Serialization;
    #[doc = include_str!("../docs/backends.md")]
    pub struct Backends;
    #[doc = include_str!("../docs/factory.md")]
    pub struct Factory;
    #[doc = include_str!("../docs/deduplication.md")]
    pub struct Deduplication;
    #[doc = include_str!("../docs/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../docs/operating.md")]
    pub struct Operating;
    #[doc = include_str!("../docs/python-melange.md")]
    pub struct PythonMelange;
}
