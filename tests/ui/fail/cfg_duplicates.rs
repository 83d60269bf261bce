#![allow(unused)]

//! Handlers under different `#[cfg]`s are duplicates where both are compiled.

use melange::{listener, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

struct Orders;

#[listener]
impl Orders {
    #[cfg(not(any()))]
    async fn on_created(&self, event: OrderCreated) {}

    async fn on_created_again(&self, event: OrderCreated, ctx: MessageContext<'_>) {}

    #[cfg(any())]
    async fn on_created_never(&self, event: OrderCreated) {}

    #[cfg(all())]
    #[listener(manifest = "json")]
    async fn on_json(&self, payload: serde_json::Value) {}

    #[cfg(not(any()))]
    #[listener(manifest = "json")]
    async fn on_json_again(&self, payload: serde_json::Value) {}

    #[cfg(not(any()))]
    #[listener(fallback)]
    async fn on_any(&self, payload: serde_json::Value) {}

    #[listener(fallback)]
    async fn on_rest(&self, payload: serde_json::Value) {}
}

fn main() {}
