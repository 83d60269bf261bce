#![allow(unused)]

use melange::{listener, Message, MessageContext};
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

struct Orders;

#[listener]
impl Orders {
    async fn on_created(&self, event: OrderCreated) {}

    async fn on_created_v2(&self, event: OrderCreatedV2) {}

    #[listener(manifest = "json")]
    async fn on_json(&self, payload: serde_json::Value) {}
}

fn main() {}
