#![allow(unused)]

use melange::Message;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
#[melange(manifest = OrderCreated)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
#[melange(manifest = "")]
struct OrderCancelled {
    order_id: u64,
}

fn main() {}
