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
    async fn on_created(&self, event: OrderCreated) -> Result<(), String> {
        Ok(())
    }

    #[listener(manifest = "json")]
    async fn on_json(&self, payload: serde_json::Value) -> u32 {
        0
    }
}

fn main() {}
