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
    #[listener(skip, manifest = "json")]
    fn helper(&self) {}

    #[listener(manifest = "json", fallback)]
    async fn on_any(&self, payload: serde_json::Value) {}

    #[listener(manifest = "")]
    async fn on_empty(&self, payload: serde_json::Value) {}
}

fn main() {}
