//! Generic messages and generic consumers.

use std::marker::PhantomData;

use melange::{Consumer, Message};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct Batch<T> {
    items: Vec<T>,
}

#[derive(Serialize, Deserialize, Message)]
struct Ping;

trait Store: Send + Sync + 'static {}

struct Memory;
impl Store for Memory {}

struct Relay<M, S> {
    store: S,
    _message: PhantomData<fn() -> M>,
}

#[melange::listener]
impl<M, S> Relay<M, S>
where
    M: Message,
    S: Store,
{
    async fn on_message(&self, _message: M) {}

    async fn on_ping(&self, _ping: Ping) {}

    #[listener(manifest = "json")]
    async fn on_json(&self, _payload: serde_json::Value) {}
}

/// An empty listener takes nothing.
struct Nothing;

#[melange::listener]
impl Nothing {}

fn main() {
    assert_eq!(Batch::<u32>::MANIFEST, "Batch");
    let relay = Relay::<Batch<u32>, Memory> { store: Memory, _message: PhantomData };
    let _ = &relay.store;
    assert_eq!(relay.name(), "Relay");
    assert!(relay.accepts(Some("Batch")));
    assert!(relay.accepts(Some("Ping")));
    assert!(relay.accepts(Some("json")));
    assert!(!relay.accepts(None));
    assert!(!Nothing.accepts(Some("Ping")));
}
