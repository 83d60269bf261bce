#![allow(unused)]

use melange::{listener, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

struct Orders;

#[listener]
impl Orders {
    #[listener(fallback)]
    async fn on_any(&self, payload: serde_json::Value) {}

    #[listener(fallback)]
    async fn on_rest(&self, payload: serde_json::Value) {}
}

fn main() {}
