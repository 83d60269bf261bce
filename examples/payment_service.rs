//! A payment service, after Python Melange's `payment_service` example: a consumer app reacts
//! to `OrderCreated` events on its queue and publishes `PaymentProcessed` or `PaymentFailed`
//! to the order service's queue; a triggerer sends orders.
//!
//! In one process, on the embedded backend (sends two orders, processes them, prints the
//! payment events the order service receives, and exits):
//!
//! ```sh
//! cargo run --example payment_service
//! ```
//!
//! As separate processes on a local SQS server:
//!
//! ```sh
//! export MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324
//! cargo run --example payment_service -- app                # consumes until Ctrl-C
//! cargo run --example payment_service -- trigger ORD-1 4200 # another terminal: reference, cents
//! cargo run --example payment_service -- results            # prints the payment events, exits
//! ```
//!
//! Orders above 1,000.00 are refused (`PaymentFailed`).
mod common;

use std::time::Duration;

use melange::{
    AnyBackend, ConsumerOptions, MessageContext, MessagingBackendFactory, QueuePublisher,
    SerializerRegistry, Shutdown, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};

/// Published by the order service (here: the triggerer) when a customer places an order.
#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct OrderCreated {
    order_id: String,
    reference: String,
    amount_cents: u64,
}

/// The payment went through.
#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct PaymentProcessed {
    order_id: String,
    payment_id: String,
    reference: String,
}

/// The payment was refused.
#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct PaymentFailed {
    order_id: String,
    reference: String,
    reason: String,
}

/// The largest amount the service pays, in cents.
const LIMIT_CENTS: u64 = 100_000;

/// The payment service's consumer: one handler per event type it reacts to.
struct PaymentConsumer {
    publisher: QueuePublisher<AnyBackend>,
    order_updates: String,
}

#[melange::listener]
impl PaymentConsumer {
    async fn on_order_created(
        &self,
        order: OrderCreated,
        ctx: MessageContext<'_>,
    ) -> Result<(), melange::PublishError> {
        if order.amount_cents > LIMIT_CENTS {
            let reason = format!(
                "amount {} exceeds the limit of {LIMIT_CENTS}",
                order.amount_cents
            );
            println!("Order {} payment failed: {reason}", order.reference);
            let event = PaymentFailed {
                order_id: order.order_id,
                reference: order.reference,
                reason,
            };
            self.publisher.publish(&self.order_updates, &event).await?;
        } else {
            let payment_id = format!("pay-{}", ctx.message_id());
            println!(
                "Order {} paid successfully ({} cents)",
                order.reference, order.amount_cents
            );
            let event = PaymentProcessed {
                order_id: order.order_id,
                payment_id,
                reference: order.reference,
            };
            self.publisher.publish(&self.order_updates, &event).await?;
        }
        // An error from `publish` fails the handler: the order comes back and is retried.
        Ok(())
    }
}

/// The order service's side, to show the outcome.
struct OrderUpdates;

#[melange::listener]
impl OrderUpdates {
    async fn on_paid(&self, event: PaymentProcessed) {
        println!("order-updates: PaymentProcessed for {}", event.reference);
    }

    async fn on_failed(&self, event: PaymentFailed) {
        println!("order-updates: PaymentFailed for {}", event.reference);
    }
}

struct Names {
    payment_updates: String,
    order_updates: String,
}

async fn declare(backend: &AnyBackend, names: &Names) -> Result<(), Box<dyn std::error::Error>> {
    let factory = MessagingBackendFactory::new(backend.clone());
    factory
        .init_queue(names.payment_updates.as_str())
        .dead_letter_queue(format!("{}-dlq", names.payment_updates))
        .await?;
    factory.init_queue(names.order_updates.as_str()).await?;
    Ok(())
}

async fn trigger(
    backend: &AnyBackend,
    names: &Names,
    reference: &str,
    amount_cents: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    let order = OrderCreated {
        order_id: format!("order-{reference}"),
        reference: reference.to_owned(),
        amount_cents,
    };
    publisher.publish(&names.payment_updates, &order).await?;
    println!("Order with reference {reference} sent.");
    Ok(())
}

fn app(backend: &AnyBackend, names: &Names) -> SimpleConsumerHandler<PaymentConsumer, AnyBackend> {
    let consumer = PaymentConsumer {
        publisher: QueuePublisher::new(SerializerRegistry::default(), backend.clone()),
        order_updates: names.order_updates.clone(),
    };
    SimpleConsumerHandler::new(consumer, SerializerRegistry::default(), backend.clone())
}

fn results(backend: &AnyBackend) -> SimpleConsumerHandler<OrderUpdates, AnyBackend> {
    SimpleConsumerHandler::new(OrderUpdates, SerializerRegistry::default(), backend.clone())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = common::backend().await?;
    let names = Names {
        payment_updates: common::name("payment-updates"),
        order_updates: common::name("order-updates"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();

    match args.first().map(String::as_str) {
        Some("app") => {
            common::require_server("app")?;
            declare(&backend, &names).await?;
            println!("Consuming {} (Ctrl-C to stop)...", names.payment_updates);
            let summary = app(&backend, &names)
                .with_shutdown(Shutdown::on_ctrl_c_or_sigterm())
                .consume_loop(&names.payment_updates)
                .await?;
            println!("Stopped after {} messages.", summary.received);
        }
        Some("trigger") => {
            common::require_server("trigger")?;
            let reference = args
                .get(1)
                .ok_or("usage: trigger REFERENCE [AMOUNT_CENTS]")?;
            let amount = args.get(2).map_or(Ok(4200), |a| a.parse())?;
            declare(&backend, &names).await?;
            trigger(&backend, &names, reference, amount).await?;
        }
        Some("results") => {
            common::require_server("results")?;
            declare(&backend, &names).await?;
            results(&backend).drain(&names.order_updates).await?;
        }
        Some(other) => {
            return Err(format!("unknown command {other:?}: use app, trigger or results").into());
        }
        None => {
            declare(&backend, &names).await?;
            println!(
                "Queues {} and {} ready.",
                names.payment_updates, names.order_updates
            );
            trigger(&backend, &names, "ORD-1", 4200).await?;
            trigger(&backend, &names, "ORD-2", 250_000).await?;
            println!("Consuming {}...", names.payment_updates);
            let idle = ConsumerOptions::default().stop_when_idle(Duration::from_millis(300));
            app(&backend, &names)
                .with_options(idle.clone())
                .consume_loop(&names.payment_updates)
                .await?;
            results(&backend)
                .with_options(idle)
                .consume_loop(&names.order_updates)
                .await?;
            println!("Done.");
        }
    }
    Ok(())
}
