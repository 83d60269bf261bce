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
    #[listener(manifst = "json")]
    async fn on_created(&self, event: OrderCreated) {}

    #[listener(manifest = 42)]
    async fn on_number(&self, event: serde_json::Value) {}
}

fn main() {}
