//! Consumers, and the handlers that feed them: receive, decode, dispatch, acknowledge.
//!
//! A [`Consumer`] decides by manifest whether it takes a message and processes it; the
//! `#[listener]` macro writes one from an `impl` block of handler methods. A
//! [`ConsumerHandler`] (many consumers) or [`SimpleConsumerHandler`] (one) runs the loop.

mod context;
mod dedup;
mod engine;
mod events;
mod failure;
mod handler;
mod options;

pub use context::MessageContext;
#[cfg(feature = "redis")]
pub use dedup::RedisDeduplicationCache;
pub use dedup::{CacheFuture, DeduplicationCache, InMemoryDeduplicationCache};
pub use events::ConsumerEvent;
pub use failure::{Failure, Retry};
pub use handler::{ConsumeSummary, ConsumerHandler, SimpleConsumerHandler};
pub use options::{AckPolicy, ConsumerOptions, NoRetryOutcome, PoisonOutcome, RetryBackoff};

use std::future::Future;
use std::pin::Pin;

use crate::error::ConsumeError;

/// Processes the messages it accepts.
///
/// Usually written by `#[melange::listener]` from handler methods; implement it by hand for
/// full control, as with Python Melange's `Consumer.accepts` / `Consumer.process`.
///
/// ```
/// use melange_core::{Consumer, MessageContext, ConsumeError};
///
/// /// Prints the raw content of every message.
/// struct Printer;
///
/// impl Consumer for Printer {
///     fn accepts(&self, _manifest: Option<&str>) -> bool {
///         true
///     }
///
///     async fn consume(&self, ctx: MessageContext<'_>) -> Result<(), ConsumeError> {
///         println!("{}: {}", ctx.message_id(), ctx.content());
///         Ok(())
///     }
/// }
/// ```
pub trait Consumer: Send + Sync + 'static {
    /// A name for logs and de-duplication keys; the type's path by default.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// Whether this consumer takes messages with this manifest (`None`: the message carried
    /// none).
    fn accepts(&self, manifest: Option<&str>) -> bool;

    /// Decodes and processes one accepted message. An `Err` leaves the message
    /// unacknowledged (under the default [`AckPolicy`]).
    fn consume<'a>(
        &'a self,
        ctx: MessageContext<'a>,
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send + 'a;
}

type ConsumeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ConsumeError>> + Send + 'a>>;

/// The object-safe twin of [`Consumer`], so a [`ConsumerHandler`] can hold consumers of
/// different types.
pub(crate) trait DynConsumer: Send + Sync + 'static {
    fn dyn_name(&self) -> &'static str;
    fn dyn_accepts(&self, manifest: Option<&str>) -> bool;
    fn dyn_consume<'a>(&'a self, ctx: MessageContext<'a>) -> ConsumeFuture<'a>;
}

impl<C: Consumer> DynConsumer for C {
    fn dyn_name(&self) -> &'static str {
        self.name()
    }
    fn dyn_accepts(&self, manifest: Option<&str>) -> bool {
        self.accepts(manifest)
    }
    fn dyn_consume<'a>(&'a self, ctx: MessageContext<'a>) -> ConsumeFuture<'a> {
        Box::pin(self.consume(ctx))
    }
}

/// A shared consumer: keep an `Arc` to inspect or reuse it while a handler runs it.
impl<C: Consumer> Consumer for std::sync::Arc<C> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn accepts(&self, manifest: Option<&str>) -> bool {
        (**self).accepts(manifest)
    }
    fn consume<'a>(
        &'a self,
        ctx: MessageContext<'a>,
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send + 'a {
        (**self).consume(ctx)
    }
}

impl Consumer for Box<dyn DynConsumer> {
    fn name(&self) -> &'static str {
        (**self).dyn_name()
    }
    fn accepts(&self, manifest: Option<&str>) -> bool {
        (**self).dyn_accepts(manifest)
    }
    fn consume<'a>(
        &'a self,
        ctx: MessageContext<'a>,
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send + 'a {
        (**self).dyn_consume(ctx)
    }
}
