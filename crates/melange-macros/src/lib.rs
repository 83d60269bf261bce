//! Procedural macros of melange: `#[derive(Message)]` and `#[listener]`.
//!
//! Use them through the `melange` crate, which re-exports both; the generated code names
//! everything through `::melange::__private`.

mod errors;
mod listener;
mod literal;
mod message;

use proc_macro::TokenStream;

/// Derives `melange::Message`: the type's manifest, the name it is published under and
/// dispatched by.
///
/// The manifest is the type's name (`"OrderCreated"` below), which is what Python Melange writes
/// (`__qualname__`). Override it with `#[melange(manifest = "...")]`, for example to match the
/// name a Python service uses. `#[melange(python = "module.Class")]` (or
/// `"module:Outer.Inner"`, feature `pickle`) names the Python class pickles map to, and the
/// manifest is then that class's `__qualname__` (`"Class"`, `"Outer.Inner"`), as Python
/// Melange writes it, unless `manifest` says otherwise. The type must also implement
/// `serde::Serialize` and `serde::Deserialize`. A generic type gets one manifest for all its
/// instances.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use melange::Message;
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct OrderCreated {
///     order_id: u64,
/// }
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[melange(manifest = "orders.Cancelled")]
/// struct OrderCancelled {
///     order_id: u64,
/// }
///
/// assert_eq!(OrderCreated::MANIFEST, "OrderCreated");
/// assert_eq!(OrderCancelled::MANIFEST, "orders.Cancelled");
/// ```
#[proc_macro_derive(Message, attributes(melange))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    message::derive(input.into()).into()
}

/// Turns an inherent `impl` block of handler methods into a `melange::Consumer`.
///
/// Every method of the block is a handler for one manifest, and the generated
/// `Consumer::consume` picks the handler by the received message's manifest, decodes the
/// content into the handler's parameter type and awaits the handler. The impl block itself is
/// kept as written, so the handlers stay callable methods.
///
/// # Handlers
///
/// A handler is an `async fn` taking `&self`, then the message, then optionally the
/// `MessageContext` (message id, queue, receive count, attributes):
///
/// | Form | Receives |
/// |---|---|
/// | `async fn on_x(&self, event: T)` | messages whose manifest is `<T as Message>::MANIFEST` |
/// | `async fn on_x(&self, event: T, ctx: MessageContext<'_>)` | the same, with the context |
/// | `#[listener(manifest = "json")] async fn on_x(&self, payload: P)` | messages with manifest `"json"` (Python Melange's JSON serializer); `P` only needs `serde::Deserialize` |
/// | `#[listener(fallback)] async fn on_x(&self, payload: P)` | every message no other handler takes, including messages without a manifest; at most one per consumer; `P` only needs `serde::Deserialize` |
///
/// A handler returns `()` or `Result<(), E>` where `E` converts into
/// `Box<dyn std::error::Error + Send + Sync>`. An error becomes
/// `ConsumeError::Handler`, naming the handler as `"Type::method"`; content that does not
/// decode becomes `ConsumeError::Decode`; a manifest no handler takes becomes
/// `ConsumeError::Unaccepted`.
///
/// # Methods that are not handlers
///
/// Mark a helper method with `#[listener(skip)]`: it stays in the block as written and is not
/// dispatched to. Or keep helpers in a second, plain `impl` block, which `#[listener]` does not
/// see. Associated constants and types in the block pass through unchanged.
///
/// # One handler per manifest
///
/// Two handlers of the same message type, or with the same explicit manifest, are a compile
/// error at the second one. Two message types that derive the same manifest are caught by a
/// compile-time check of all the handlers' manifests.
///
/// # Handlers under `#[cfg]`
///
/// A handler under `#[cfg(...)]` (or `#[cfg_attr(p, cfg(...))]`) is dispatched to only where it
/// is compiled: everything generated for it is under the same configuration. Two handlers of
/// one manifest, or two fallbacks, under different configurations are an error only where both
/// are compiled, so one handler can replace another behind a feature:
///
/// ```
/// # use melange::{listener, Consumer, Message};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Message)]
/// # struct OrderCreated { order_id: u64 }
/// struct Orders;
///
/// #[listener]
/// impl Orders {
///     #[cfg(feature = "v2")]
///     async fn on_created_v2(&self, event: OrderCreated) {}
///
///     #[cfg(not(feature = "v2"))]
///     async fn on_created(&self, event: OrderCreated) {}
/// }
///
/// assert!(Orders.accepts(Some("OrderCreated")));
/// ```
///
/// # Generics
///
/// A generic impl block (`impl<S: Store> Orders<S>`) gives a generic consumer; the type must be
/// `Send + Sync + 'static`, which the generated impl requires. When a handler's message type
/// is a type parameter (`impl<M: Message> Relay<M>`), the check that manifests are distinct runs
/// for each instance whose `consume` is compiled, so it shows in `cargo build`, not in
/// `cargo check`.
///
/// # Example
///
/// ```
/// use melange::{listener, ConsumeError, Consumer, Message, MessageContext};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct OrderCreated {
///     order_id: u64,
/// }
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct OrderCancelled {
///     order_id: u64,
/// }
///
/// #[derive(Deserialize)]
/// struct Legacy {
///     kind: String,
/// }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("order {0} is unknown")]
/// struct UnknownOrder(u64);
///
/// struct Orders;
///
/// #[listener]
/// impl Orders {
///     async fn on_created(&self, event: OrderCreated, ctx: MessageContext<'_>) {
///         println!("order {} created (message {})", event.order_id, ctx.message_id());
///     }
///
///     async fn on_cancelled(&self, event: OrderCancelled) -> Result<(), UnknownOrder> {
///         if self.is_known(event.order_id) { Ok(()) } else { Err(UnknownOrder(event.order_id)) }
///     }
///
///     #[listener(manifest = "json")]
///     async fn on_legacy(&self, payload: Legacy) {
///         println!("legacy {}", payload.kind);
///     }
///
///     /// Not a handler: a plain method the handlers use.
///     #[listener(skip)]
///     fn is_known(&self, order_id: u64) -> bool {
///         order_id < 100
///     }
/// }
///
/// assert_eq!(Orders.name(), "Orders");
/// assert!(Orders.accepts(Some("OrderCreated")));
/// assert!(Orders.accepts(Some("json")));
/// assert!(!Orders.accepts(Some("Refund")));
/// assert!(!Orders.accepts(None));
/// ```
///
/// Consuming a message by hand (a `SimpleConsumerHandler` normally does this):
///
/// ```
/// # use melange::{listener, Consumer, Message};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Message)]
/// # struct OrderCreated { order_id: u64 }
/// use std::sync::Arc;
/// use melange::{Delivery, Envelope, MessageContext, ReceiptHandle, SerializerRegistry};
///
/// struct Audit;
///
/// #[listener]
/// impl Audit {
///     async fn on_created(&self, event: OrderCreated) {
///         assert_eq!(event.order_id, 7);
///     }
///
///     #[listener(fallback)]
///     async fn on_anything_else(&self, payload: serde_json::Value) {
///         println!("unexpected message: {payload}");
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), melange::ConsumeError> {
/// let envelope = Envelope {
///     message_id: Arc::from("m-1"),
///     content: Arc::from(r#"{"order_id":7}"#),
///     manifest: Some(Arc::from("OrderCreated")),
///     serializer_id: Some(1),
///     delivery: Delivery {
///         queue: Arc::from("orders"),
///         receipt: ReceiptHandle::new("r-1"),
///         receive_count: 1,
///         message_group_id: None,
///         attributes: Default::default(),
///     },
/// };
/// let serializers = SerializerRegistry::default();
/// Audit.consume(MessageContext::new(&envelope, &serializers)).await?;
/// assert!(Audit.accepts(None)); // the fallback takes everything
/// # Ok(())
/// # }
/// ```
#[proc_macro_attribute]
pub fn listener(args: TokenStream, item: TokenStream) -> TokenStream {
    listener::expand(args.into(), item.into()).into()
}
