//! Every handler form, helpers beside handlers, and items passing through.

use melange::{Consumer, Message, MessageContext};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Serialize, Deserialize, melange::Message)]
#[melange(manifest = "orders.Cancelled")]
enum OrderCancelled {
    ByCustomer { order_id: u64 },
    ByShop(u64),
}

#[derive(Deserialize)]
struct Legacy {
    kind: String,
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

impl std::error::Error for Failure {}

struct Orders {
    prefix: &'static str,
}

#[melange::listener]
impl Orders {
    const LIMIT: u64 = 10;

    async fn on_created(&self, event: OrderCreated) -> Result<(), Failure> {
        if event.order_id > Self::LIMIT { Err(Failure) } else { Ok(()) }
    }

    async fn on_cancelled<'a>(&'a self, _event: OrderCancelled, ctx: MessageContext<'_>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.log(ctx.message_id());
        Ok(())
    }

    #[melange::listener(manifest = "json")]
    async fn on_legacy(&self, payload: Legacy) -> Result<(), String> {
        self.log(&payload.kind);
        Ok(())
    }

    #[listener(fallback)]
    pub async fn on_any(&self, _payload: serde_json::Value, _ctx: MessageContext<'_>) {}

    /// A helper, not a handler.
    #[listener(skip)]
    fn log(&self, text: &str) {
        println!("{}{text}", self.prefix);
    }

    #[listener(skip)]
    async fn helper_async(&self) -> u32 {
        7
    }
}

/// Helpers can also live in a plain impl block.
impl Orders {
    fn new() -> Self {
        Self { prefix: "> " }
    }
}

fn assert_consumer<C: Consumer>(_: &C) {}

fn main() {
    let orders = Orders::new();
    assert_consumer(&orders);
    assert_eq!(orders.name(), "Orders");
    assert!(orders.accepts(Some("OrderCreated")));
    assert!(orders.accepts(Some("orders.Cancelled")));
    assert!(orders.accepts(None));
    assert_eq!(OrderCancelled::MANIFEST, "orders.Cancelled");
    let _ = OrderCancelled::ByShop(1);
    let _ = OrderCancelled::ByCustomer { order_id: 1 };
    let _ = orders.helper_async();
}
