//! The message model: what a type must provide to be published and consumed.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A type that can travel through melange.
///
/// The [`MANIFEST`](Message::MANIFEST) is the stable name written next to the serialized content
/// (the `manifest` message attribute on SQS/SNS). Consumers use it to pick the handler for a
/// message without deserializing it first, so it must not change once messages are in flight.
///
/// Derive it with `#[derive(melange::Message)]`: the manifest is then the type's name, which is
/// what Python Melange's `PickleSerializer` writes (`__qualname__`), and
/// `#[melange(manifest = "...")]` overrides it.
///
/// ```
/// # use melange_core::Message;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct OrderCreated { order_id: u64 }
///
/// impl Message for OrderCreated {
///     const MANIFEST: &'static str = "OrderCreated";
/// }
/// assert_eq!(OrderCreated::MANIFEST, "OrderCreated");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a melange message",
    label = "this type does not implement `melange::Message`",
    note = "derive it: `#[derive(serde::Serialize, serde::Deserialize, melange::Message)]`",
    note = "or bind the handler to an explicit manifest: `#[listener(manifest = \"...\")]`, which only needs `serde::Deserialize`"
)]
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name this type is published under and dispatched by.
    const MANIFEST: &'static str;
}
