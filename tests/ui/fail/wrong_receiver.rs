#![allow(unused)]

use melange::{listener, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Serialize, Deserialize, Message)]
struct A;
#[derive(Serialize, Deserialize, Message)]
struct B;
#[derive(Serialize, Deserialize, Message)]
struct C;

struct Orders;

#[listener]
impl Orders {
    async fn by_value(self, event: OrderCreated) {}

    async fn by_mut(&mut self, event: A) {}

    async fn no_receiver(event: B) {}

    async fn boxed(self: Box<Self>, event: C) {}
}

fn main() {}
