//! Message types that name `Self`, in a listener that is not generic: the check that manifests
//! are distinct must run where `Self` exists.

use melange::{Consumer, Message};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
struct OrderCancelled {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
struct Refund {
    order_id: u64,
}

trait Schema {
    type Created: Message;
    type Cancelled: Message;
}

struct Orders;

impl Schema for Orders {
    type Created = OrderCreated;
    type Cancelled = OrderCancelled;
}

#[melange::listener]
impl Orders {
    async fn on_created(&self, _event: <Self as Schema>::Created) {}

    async fn on_cancelled(&self, _event: <Self as Schema>::Cancelled) {}

    async fn on_refund(&self, _event: Refund) {}

    #[cfg(any())]
    async fn on_never(&self, _event: Option<<Self as Schema>::Created>) {}

    #[listener(manifest = "json")]
    async fn on_json(&self, _payload: serde_json::Value) {}
}

/// `Self` spelled as the type itself, for a second listener of the same schema.
struct Audit;

impl Schema for Audit {
    type Created = OrderCreated;
    type Cancelled = OrderCancelled;
}

#[melange::listener]
impl Audit {
    async fn on_created(&self, _event: <Self as Schema>::Created) {}

    async fn on_cancelled(&self, _event: <Audit as Schema>::Cancelled) {}
}

fn assert_consumer<C: Consumer>(_: &C) {}

fn main() {
    assert_consumer(&Orders);
    assert!(Orders.accepts(Some("OrderCreated")));
    assert!(Orders.accepts(Some("OrderCancelled")));
    assert!(Orders.accepts(Some("Refund")));
    assert!(Orders.accepts(Some("json")));
    assert!(!Orders.accepts(None));
    assert!(Audit.accepts(Some("OrderCreated")));
    assert!(Audit.accepts(Some("OrderCancelled")));
}
