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
    async fn on_any<M: Message>(&self, event: M) {}

    async fn on_created<'a>(&'a self, event: OrderCreated) where Self: Sync {}
}

fn main() {}
