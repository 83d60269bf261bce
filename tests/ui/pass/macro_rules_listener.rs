//! A listener written inside `macro_rules!`, its message and return types passed in as
//! fragments: the locals the expansion declares and uses resolve alike.

use melange::{Consumer, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Deserialize)]
struct Payload {
    kind: String,
}

type Outcome = Result<(), String>;

macro_rules! json_consumer {
    ($name:ident, $payload:ident) => {
        struct $name;

        #[melange::listener]
        impl $name {
            #[listener(manifest = "json")]
            async fn on_json(&self, _p: $payload) {}
        }
    };
}

macro_rules! fallback_consumer {
    ($name:ident, $payload:ident, $ctx:ident) => {
        struct $name;

        #[melange::listener]
        impl $name {
            #[listener(fallback)]
            async fn on_any(&self, _p: $payload, _ctx: $ctx<'_>) {}
        }
    };
}

macro_rules! typed_consumer {
    ($name:ident, $message:ty, $ctx:ty, $outcome:ty) => {
        struct $name;

        #[melange::listener]
        impl $name {
            async fn on_message(&self, _m: $message, _ctx: $ctx) -> $outcome {
                Ok(())
            }

            #[listener(fallback)]
            async fn on_rest(&self, _p: serde_json::Value) -> $outcome {
                Ok(())
            }
        }
    };
}

macro_rules! ident_outcome_consumer {
    ($name:ident, $message:ident, $outcome:ident) => {
        struct $name;

        #[melange::listener]
        impl $name {
            async fn on_message(&self, _m: $message) -> $outcome {
                Ok(())
            }
        }
    };
}

json_consumer!(Legacy, Payload);
fallback_consumer!(CatchAll, Payload, MessageContext);
typed_consumer!(Orders, OrderCreated, MessageContext<'_>, Outcome);
ident_outcome_consumer!(Created, OrderCreated, Outcome);

fn assert_consumer<C: Consumer>(_: &C) {}

fn main() {
    assert_consumer(&Legacy);
    assert!(Legacy.accepts(Some("json")));
    assert!(!Legacy.accepts(None));
    assert!(CatchAll.accepts(None));
    assert!(Orders.accepts(Some("OrderCreated")));
    assert!(Created.accepts(Some("OrderCreated")));
    let _ = |p: Payload| p.kind;
}
