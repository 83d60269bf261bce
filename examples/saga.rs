//! A saga by choreography, after Python Melange's `saga_pattern` example: an order saga
//! orchestrator and a payment service exchange events through a topic and queues.
//!
//! - The triggerer publishes `OrderCreated` to the `orders` topic.
//! - The orchestrator consumes `saga-updates` (subscribed to the `orders` and `payments`
//!   topics): on `OrderCreated` it starts a saga and sends a `DoPayment` command to the
//!   `payment-commands` queue; on `PaymentProcessed` it completes the saga; on `PaymentFailed`
//!   it fails it and compensates (publishes `OrderCancelled` to `orders`).
//! - The payment service consumes `payment-commands` and publishes `PaymentProcessed` or
//!   `PaymentFailed` to the `payments` topic.
//!
//! In one process, on the embedded backend (two orders, both services, exits when idle):
//!
//! ```sh
//! cargo run --example saga
//! ```
//!
//! As separate processes on a local SQS server:
//!
//! ```sh
//! export MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324
//! cargo run --example saga -- orchestrator           # terminal 1, until Ctrl-C
//! cargo run --example saga -- payments               # terminal 2, until Ctrl-C
//! cargo run --example saga -- trigger ORD-1 4200     # terminal 3: reference, amount in cents
//! ```
mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use melange::{
    AckPolicy, AnyBackend, ConsumerOptions, MessagingBackendFactory, QueuePublisher,
    SerializerRegistry, Shutdown, SimpleConsumerHandler, TopicPublisher,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct OrderCreated {
    order_id: String,
    reference: String,
    amount_cents: u64,
}

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct OrderCancelled {
    order_id: String,
    reference: String,
}

/// A command: the orchestrator asks the payment service to pay an order.
#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct DoPayment {
    order_id: String,
    reference: String,
    amount_cents: u64,
    correlation_id: String,
}

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct PaymentProcessed {
    order_id: String,
    correlation_id: String,
}

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct PaymentFailed {
    order_id: String,
    correlation_id: String,
    reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SagaState {
    Running,
    Completed,
    Failed,
}

#[derive(Debug)]
struct Saga {
    reference: String,
    state: SagaState,
}

struct Names {
    orders: String,
    payments: String,
    saga_updates: String,
    payment_commands: String,
}

impl Names {
    fn new() -> Self {
        Self {
            orders: common::name("orders"),
            payments: common::name("payments"),
            saga_updates: common::name("saga-updates"),
            payment_commands: common::name("payment-commands"),
        }
    }
}

/// The order saga orchestrator.
struct SagaConsumer {
    sagas: Mutex<HashMap<String, Saga>>,
    commands: QueuePublisher<AnyBackend>,
    events: TopicPublisher<AnyBackend>,
    payment_commands: String,
    orders: String,
}

type HandlerResult = Result<(), melange::PublishError>;

#[melange::listener]
impl SagaConsumer {
    async fn on_order_created(&self, event: OrderCreated) -> HandlerResult {
        let saga_id = format!("saga-{}", event.order_id);
        println!(
            "Saga {saga_id} started: sending payment for order {}",
            event.reference
        );
        self.set(&saga_id, event.reference.clone(), SagaState::Running);
        let command = DoPayment {
            order_id: event.order_id,
            reference: event.reference,
            amount_cents: event.amount_cents,
            correlation_id: saga_id,
        };
        self.commands
            .publish(&self.payment_commands, &command)
            .await?;
        Ok(())
    }

    async fn on_payment_processed(&self, event: PaymentProcessed) {
        if let Some(reference) = self.finish(&event.correlation_id, SagaState::Completed) {
            println!(
                "Saga {} COMPLETED: order {reference} paid",
                event.correlation_id
            );
        }
    }

    async fn on_payment_failed(&self, event: PaymentFailed) -> HandlerResult {
        let Some(reference) = self.finish(&event.correlation_id, SagaState::Failed) else {
            return Ok(());
        };
        println!(
            "Saga {} FAILED ({}): cancelling order {reference}",
            event.correlation_id, event.reason
        );
        let cancel = OrderCancelled {
            order_id: event.order_id,
            reference,
        };
        self.events.publish(&self.orders, &cancel).await?;
        Ok(())
    }

    #[listener(skip)]
    fn set(&self, saga_id: &str, reference: String, state: SagaState) {
        let mut sagas = self.sagas.lock().unwrap_or_else(|e| e.into_inner());
        sagas.insert(saga_id.to_owned(), Saga { reference, state });
    }

    /// Moves a running saga to `state`; `None` if it is unknown or already finished (a
    /// redelivered event).
    #[listener(skip)]
    fn finish(&self, saga_id: &str, state: SagaState) -> Option<String> {
        let mut sagas = self.sagas.lock().unwrap_or_else(|e| e.into_inner());
        let saga = sagas.get_mut(saga_id)?;
        if saga.state != SagaState::Running {
            return None;
        }
        saga.state = state;
        Some(saga.reference.clone())
    }
}

/// The payment service.
struct PaymentService {
    events: TopicPublisher<AnyBackend>,
    payments: String,
}

#[melange::listener]
impl PaymentService {
    async fn on_do_payment(&self, command: DoPayment) -> HandlerResult {
        if command.amount_cents > 100_000 {
            println!("Payment for order {} refused", command.reference);
            let event = PaymentFailed {
                order_id: command.order_id,
                correlation_id: command.correlation_id,
                reason: "amount over the limit".into(),
            };
            self.events.publish(&self.payments, &event).await?;
        } else {
            println!("Payment for order {} accepted", command.reference);
            let event = PaymentProcessed {
                order_id: command.order_id,
                correlation_id: command.correlation_id,
            };
            self.events.publish(&self.payments, &event).await?;
        }
        Ok(())
    }
}

async fn declare(backend: &AnyBackend, names: &Names) -> Result<(), Box<dyn std::error::Error>> {
    let factory = MessagingBackendFactory::new(backend.clone());
    factory
        .init_queue(names.saga_updates.as_str())
        .subscribed_to([names.orders.as_str(), names.payments.as_str()])
        .manifest_filter(["OrderCreated", "PaymentProcessed", "PaymentFailed"])
        .dead_letter_queue(format!("{}-dlq", names.saga_updates))
        .await?;
    factory
        .init_queue(names.payment_commands.as_str())
        .dead_letter_queue(format!("{}-dlq", names.payment_commands))
        .await?;
    Ok(())
}

fn orchestrator(
    backend: &AnyBackend,
    names: &Names,
) -> SimpleConsumerHandler<SagaConsumer, AnyBackend> {
    let consumer = SagaConsumer {
        sagas: Mutex::new(HashMap::new()),
        commands: QueuePublisher::new(SerializerRegistry::default(), backend.clone()),
        events: TopicPublisher::new(SerializerRegistry::default(), backend.clone()),
        payment_commands: names.payment_commands.clone(),
        orders: names.orders.clone(),
    };
    // `main` runs it with `AckPolicy::Always`, as the Python example does (`always_ack=True`):
    // a failed saga step is not retried.
    SimpleConsumerHandler::new(consumer, SerializerRegistry::default(), backend.clone())
}

fn payments(
    backend: &AnyBackend,
    names: &Names,
) -> SimpleConsumerHandler<PaymentService, AnyBackend> {
    let service = PaymentService {
        events: TopicPublisher::new(SerializerRegistry::default(), backend.clone()),
        payments: names.payments.clone(),
    };
    SimpleConsumerHandler::new(service, SerializerRegistry::default(), backend.clone())
}

async fn trigger(
    backend: &AnyBackend,
    names: &Names,
    reference: &str,
    amount_cents: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let order = OrderCreated {
        order_id: format!("order-{reference}"),
        reference: reference.to_owned(),
        amount_cents,
    };
    TopicPublisher::new(SerializerRegistry::default(), backend.clone())
        .publish(&names.orders, &order)
        .await?;
    println!("Order with reference {reference} sent.");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = common::backend().await?;
    let names = Names::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let always_ack = ConsumerOptions::default().ack_policy(AckPolicy::Always);

    match args.first().map(String::as_str) {
        Some("orchestrator") => {
            common::require_server("orchestrator")?;
            declare(&backend, &names).await?;
            println!(
                "Orchestrator consuming {} (Ctrl-C to stop)...",
                names.saga_updates
            );
            orchestrator(&backend, &names)
                .with_options(always_ack)
                .with_shutdown(Shutdown::on_ctrl_c_or_sigterm())
                .consume_loop(&names.saga_updates)
                .await?;
        }
        Some("payments") => {
            common::require_server("payments")?;
            declare(&backend, &names).await?;
            println!(
                "Payment service consuming {} (Ctrl-C to stop)...",
                names.payment_commands
            );
            payments(&backend, &names)
                .with_shutdown(Shutdown::on_ctrl_c_or_sigterm())
                .consume_loop(&names.payment_commands)
                .await?;
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
        Some(other) => {
            return Err(format!(
                "unknown command {other:?}: use orchestrator, payments or trigger"
            )
            .into());
        }
        None => {
            declare(&backend, &names).await?;
            trigger(&backend, &names, "ORD-1", 4200).await?;
            trigger(&backend, &names, "ORD-2", 250_000).await?;
            // Both services in this process, each until its queue has been idle for a moment.
            let idle = Duration::from_millis(500);
            let shutdown = Shutdown::new();
            let saga = orchestrator(&backend, &names)
                .with_options(always_ack.stop_when_idle(idle))
                .with_shutdown(shutdown.clone());
            let pay = payments(&backend, &names)
                .with_options(ConsumerOptions::default().stop_when_idle(idle))
                .with_shutdown(shutdown.clone());
            let (saga_summary, _) = common::consume_both(
                &shutdown,
                saga.consume_loop(&names.saga_updates),
                pay.consume_loop(&names.payment_commands),
            )
            .await?;
            let sagas = saga
                .consumer()
                .sagas
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut finished: Vec<_> = sagas
                .iter()
                .map(|(id, s)| format!("{id}: {:?}", s.state))
                .collect();
            finished.sort();
            println!("Sagas: {}", finished.join(", "));
            println!("Done ({} saga events handled).", saga_summary.succeeded);
        }
    }
    Ok(())
}
