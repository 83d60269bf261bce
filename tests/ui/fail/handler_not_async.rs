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
    fn on_created(&self, event: OrderCreated) {
        let _ = event;
    }
}

fn main() {}
