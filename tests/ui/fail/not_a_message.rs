#![allow(unused)]

use melange::{listener, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

struct OrderShipped {
    order_id: u64,
}

struct Orders;

#[listener]
impl Orders {
    async fn on_created(&self, event: OrderCreated) {}

    async fn on_shipped(&self, event: OrderShipped) {}
}

fn main() {}
