//! Handlers under `#[cfg]`: the generated consumer follows the same cfg as each method.
//! `#[cfg(any())]` is always off and `#[cfg(all())]` always on.

use melange::{Consumer, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

/// Shares its manifest with `OrderCreated`, under a handler that is not compiled.
#[derive(Serialize, Deserialize, Message)]
#[melange(manifest = "OrderCreated")]
struct OrderCreatedV2 {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
struct Refund {
    order_id: u64,
}

/// Only exists where its handler does.
#[cfg(any())]
#[derive(Serialize, Deserialize, Message)]
struct Returned {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
struct Shipped {
    order_id: u64,
}

struct Orders;

#[melange::listener]
impl Orders {
    async fn on_created(&self, _event: OrderCreated) {}

    /// Not compiled, so not a second handler of manifest "OrderCreated".
    #[cfg(any())]
    async fn on_created_v2(&self, _event: OrderCreatedV2) {}

    /// Compiled out: neither it nor its route exists.
    #[cfg(any())]
    async fn on_refund(&self, _event: Refund) {}

    #[cfg(any())]
    async fn on_returned(&self, _event: Returned) {}

    #[cfg(all())]
    async fn on_shipped(&self, _event: Shipped, _ctx: MessageContext<'_>) {}

    #[cfg(any())]
    #[listener(manifest = "json")]
    async fn on_json(&self, _payload: serde_json::Value) {}

    /// Several `#[cfg]`s must all hold.
    #[cfg(all())]
    #[cfg(any())]
    #[listener(manifest = "legacy")]
    async fn on_legacy(&self, _payload: serde_json::Value) {}

    /// A `#[cfg]` written through `#[cfg_attr]`.
    #[cfg_attr(all(), cfg(any()))]
    #[listener(manifest = "old")]
    async fn on_old(&self, _payload: serde_json::Value) {}

    #[cfg_attr(any(), cfg(any()))]
    #[listener(manifest = "kept")]
    async fn on_kept(&self, _payload: serde_json::Value) {}
}

/// Two handlers of one type, under mutually exclusive cfgs, are not duplicates.
struct Versioned;

#[melange::listener]
impl Versioned {
    #[cfg(any())]
    async fn on_created_v2(&self, _event: OrderCreated) {}

    #[cfg(not(any()))]
    async fn on_created_v1(&self, _event: OrderCreated) {}

    #[cfg(all())]
    #[listener(manifest = "json")]
    async fn on_json_v2(&self, _payload: serde_json::Value) {}

    #[cfg(not(all()))]
    #[listener(manifest = "json")]
    async fn on_json_v1(&self, _payload: serde_json::Value) {}

    /// A fallback under a cfg that is off takes nothing.
    #[cfg(any())]
    #[listener(fallback)]
    async fn on_any(&self, _payload: serde_json::Value) {}
}

/// A fallback under a cfg that is on takes everything; one that is off is not a second one.
struct WithFallback;

#[melange::listener]
impl WithFallback {
    #[cfg(all())]
    #[listener(fallback)]
    async fn on_any(&self, _payload: serde_json::Value) {}

    #[cfg(any())]
    #[listener(fallback)]
    async fn on_rest(&self, _payload: serde_json::Value) {}
}

/// Generic listeners follow the cfgs too.
struct Relay<M>(std::marker::PhantomData<fn() -> M>);

#[melange::listener]
impl<M: Message> Relay<M> {
    async fn on_message(&self, _message: M) {}

    #[cfg(any())]
    async fn on_refund(&self, _event: Refund) {}

    #[cfg(all())]
    async fn on_shipped(&self, _event: Shipped) {}

    #[cfg(any())]
    async fn on_returned(&self, _event: Returned) {}
}

fn assert_consumer<C: Consumer>(_: &C) {}

fn main() {
    assert_consumer(&Orders);
    assert!(Orders.accepts(Some("OrderCreated")));
    assert!(!Orders.accepts(Some("Refund")));
    assert!(!Orders.accepts(Some("Returned")));
    assert!(Orders.accepts(Some("Shipped")));
    assert!(!Orders.accepts(Some("json")));
    assert!(!Orders.accepts(Some("legacy")));
    assert!(!Orders.accepts(Some("old")));
    assert!(Orders.accepts(Some("kept")));
    assert!(!Orders.accepts(None));

    assert!(Versioned.accepts(Some("OrderCreated")));
    assert!(Versioned.accepts(Some("json")));
    assert!(!Versioned.accepts(Some("Refund")));
    assert!(!Versioned.accepts(None));

    assert!(WithFallback.accepts(None));
    assert!(WithFallback.accepts(Some("Refund")));

    let relay = Relay::<OrderCreated>(std::marker::PhantomData);
    assert!(relay.accepts(Some("OrderCreated")));
    assert!(!relay.accepts(Some("Refund")));
    assert!(relay.accepts(Some("Shipped")));
}
