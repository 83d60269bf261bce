//! Topic fan-out with manifest filters: one `orders` topic, three subscribed queues.
//!
//! - `billing` takes only `OrderCreated` (manifest filter);
//! - `shipping` takes only `OrderPaid`;
//! - `audit` takes everything, and logs it with a `#[listener(fallback)]` handler.
//!
//! In one process, on the embedded backend (publishes three events, then drains each queue):
//!
//! ```sh
//! cargo run --example fanout
//! ```
//!
//! As separate processes on a local SQS server:
//!
//! ```sh
//! export MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324
//! cargo run --example fanout -- consume billing    # one terminal per queue, until Ctrl-C
//! cargo run --example fanout -- consume shipping
//! cargo run --example fanout -- consume audit
//! cargo run --example fanout -- publish            # another terminal
//! ```
mod common;

use std::time::Duration;

use melange::{
    AnyBackend, ConsumerHandler, ConsumerOptions, MessageContext, MessagingBackendFactory,
    SerializerRegistry, Shutdown, TopicPublisher,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct OrderCreated {
    reference: String,
}

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct OrderPaid {
    reference: String,
}

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct OrderCancelled {
    reference: String,
}

struct Billing;

#[melange::listener]
impl Billing {
    async fn on_created(&self, event: OrderCreated, ctx: MessageContext<'_>) {
        println!("{}: invoice for {}", ctx.queue(), event.reference);
    }
}

struct Shipping;

#[melange::listener]
impl Shipping {
    async fn on_paid(&self, event: OrderPaid, ctx: MessageContext<'_>) {
        println!("{}: ship {}", ctx.queue(), event.reference);
    }
}

/// Takes every message, whatever its type, as JSON.
struct Audit;

#[melange::listener]
impl Audit {
    #[listener(fallback)]
    async fn on_any(&self, content: serde_json::Value, ctx: MessageContext<'_>) {
        let manifest = ctx.manifest().unwrap_or("-");
        println!("{}: {manifest} {content}", ctx.queue());
    }
}

const QUEUES: [&str; 3] = ["billing", "shipping", "audit"];

async fn declare(backend: &AnyBackend) -> Result<(), Box<dyn std::error::Error>> {
    let factory = MessagingBackendFactory::new(backend.clone());
    let topic = common::name("orders");
    factory
        .init_queue(common::name("billing"))
        .subscribed_to([topic.as_str()])
        .manifest_filter(["OrderCreated"])
        .await?;
    factory
        .init_queue(common::name("shipping"))
        .subscribed_to([topic.as_str()])
        .manifest_filter(["OrderPaid"])
        .await?;
    factory
        .init_queue(common::name("audit"))
        .subscribed_to([topic.as_str()])
        .await?;
    Ok(())
}

async fn publish(backend: &AnyBackend) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = TopicPublisher::new(SerializerRegistry::default(), backend.clone());
    let topic = common::name("orders");
    let reference = || "ORD-1".to_owned();
    publisher
        .publish(
            &topic,
            &OrderCreated {
                reference: reference(),
            },
        )
        .await?;
    println!("published OrderCreated");
    publisher
        .publish(
            &topic,
            &OrderPaid {
                reference: reference(),
            },
        )
        .await?;
    println!("published OrderPaid");
    publisher
        .publish(
            &topic,
            &OrderCancelled {
                reference: reference(),
            },
        )
        .await?;
    println!("published OrderCancelled");
    Ok(())
}

/// The consumer of one of the three queues.
fn handler(backend: &AnyBackend, queue: &str) -> Result<ConsumerHandler<AnyBackend>, String> {
    let mut handler = ConsumerHandler::new(SerializerRegistry::default(), backend.clone());
    match queue {
        "billing" => handler.attach_consumer(Billing),
        "shipping" => handler.attach_consumer(Shipping),
        "audit" => handler.attach_consumer(Audit),
        other => {
            return Err(format!(
                "unknown queue {other:?}: use billing, shipping or audit"
            ));
        }
    };
    Ok(handler)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = common::backend().await?;
    let args: Vec<String> = std::env::args().skip(1).collect();

    match args.first().map(String::as_str) {
        Some("publish") => {
            common::require_server("publish")?;
            declare(&backend).await?;
            publish(&backend).await?;
        }
        Some("consume") => {
            common::require_server("consume")?;
            let queue = args.get(1).ok_or("usage: consume billing|shipping|audit")?;
            let handler = handler(&backend, queue)?;
            declare(&backend).await?;
            let name = common::name(queue);
            println!("Consuming {name} (Ctrl-C to stop)...");
            handler
                .with_shutdown(Shutdown::on_ctrl_c_or_sigterm())
                .consume_loop(&name)
                .await?;
        }
        Some(other) => {
            return Err(format!("unknown command {other:?}: use publish or consume").into());
        }
        None => {
            declare(&backend).await?;
            publish(&backend).await?;
            for queue in QUEUES {
                let summary = handler(&backend, queue)?
                    .with_options(
                        ConsumerOptions::default().stop_when_idle(Duration::from_millis(200)),
                    )
                    .consume_loop(&common::name(queue))
                    .await?;
                println!("{queue}: {} message(s)", summary.succeeded);
            }
        }
    }
    Ok(())
}
