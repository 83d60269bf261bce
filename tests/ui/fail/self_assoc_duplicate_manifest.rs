#![allow(unused)]

//! Message types that name `Self` are in the check that manifests are distinct, which runs
//! where the listener is defined.

use melange::{listener, Message};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
#[melange(manifest = "OrderCreated")]
struct OrderCreatedV2 {
    order_id: u64,
}

trait Schema {
    type Created: Message;
}

struct Orders;

impl Schema for Orders {
    type Created = OrderCreated;
}

#[listener]
impl Orders {
    async fn on_created(&self, event: <Self as Schema>::Created) {}

    async fn on_created_v2(&self, event: OrderCreatedV2) {}
}

fn main() {}
