#![allow(unused)]

use melange::{listener, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

struct Orders;

trait Handlers {
    async fn on_created(&self, event: OrderCreated);
}

#[listener]
impl Handlers for Orders {
    async fn on_created(&self, event: OrderCreated) {}
}

fn main() {}
