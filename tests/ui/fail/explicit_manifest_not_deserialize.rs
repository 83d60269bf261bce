#![allow(unused)]

use melange::{listener, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

struct Legacy;

struct Orders;

#[listener]
impl Orders {
    #[listener(manifest = "json")]
    async fn on_legacy(&self, payload: Legacy) {}
}

fn main() {}
