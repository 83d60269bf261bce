#![allow(unused)]

//! The check that manifests are distinct takes in the handlers that are compiled.

use melange::{listener, Message};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
#[melange(manifest = "OrderCreated")]
struct OrderCreatedV2 {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
#[melange(manifest = "OrderCreated")]
struct OrderCreatedV3 {
    order_id: u64,
}

struct Orders;

#[listener]
impl Orders {
    async fn on_created(&self, event: OrderCreated) {}

    /// Not compiled: no duplicate.
    #[cfg(any())]
    async fn on_created_v2(&self, event: OrderCreatedV2) {}

    #[cfg(all())]
    async fn on_created_v3(&self, event: OrderCreatedV3) {}
}

fn main() {}
