#![allow(unused)]

use melange::{listener, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

#[listener]
struct Orders;

#[listener]
async fn on_created(event: OrderCreated) {}

fn main() {}
