#![allow(unused)]

use melange::Message;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
#[melange(manifest = "orders.Created", version = 2)]
struct OrderCreated {
    order_id: u64,
}

fn main() {}
