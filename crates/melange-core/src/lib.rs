//! The core of melange: the message model, serializers, the backend trait and its in-memory
//! implementation, publishers, the factory and the consumer engine. No AWS types live here.
//!
//! Applications depend on the `melange` crate, which re-exports this one with the macros.

pub mod backend;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod factory;
mod id_hash;
pub mod memory;
pub mod message;
pub mod publisher;
pub mod serializer;
pub mod shutdown;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use backend::{AnyBackend, DeadLetterPolicy, MessagingBackend, QueueInfo, QueueSpec};
pub use consumer::{
    AckPolicy, ConsumeSummary, Consumer, ConsumerEvent, ConsumerHandler, ConsumerOptions,
    DeduplicationCache, Failure, InMemoryDeduplicationCache, MessageContext, NoRetryOutcome,
    PoisonOutcome, RetryBackoff, SimpleConsumerHandler,
};
pub use envelope::{Delivery, Envelope, OutgoingMessage, ReceiptHandle, ReceiveOptions};
pub use error::{BackendError, BoxError, ConsumeError, HandlerError, SerializationError};
pub use factory::MessagingBackendFactory;
pub use memory::InMemoryBackend;
pub use message::Message;
pub use publisher::{PublishError, PublishOptions, QueuePublisher, TopicPublisher};
pub use serializer::{JsonSerializer, Serializer, SerializerRegistry};
pub use shutdown::Shutdown;
