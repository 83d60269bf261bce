//! A consumer with a dead-letter queue and retries.
//!
//! The `invoices` queue has a dead-letter queue, `invoices-dlq`, that takes a message after 3
//! receives. The consumer:
//!
//! - pays a valid invoice at once;
//! - rejects an invoice with a negative amount with `Failure::no_retry`: it goes to the
//!   dead-letter queue now, without waiting for more receives;
//! - fails an invoice whose bank is `flaky` on its first two attempts (an ordinary error,
//!   retried after the consumer's backoff), and pays it on the third;
//! - always fails an invoice whose bank is `down`: after 3 receives the queue's redrive
//!   policy moves it to the dead-letter queue.
//!
//! A second consumer reads the dead-letter queue. Events (`on_event`) print each failure.
//!
//! In one process, on the embedded backend (exits once both queues are idle):
//!
//! ```sh
//! cargo run --example dead_letter
//! ```
//!
//! As separate processes on a local SQS server:
//!
//! ```sh
//! export MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324
//! cargo run --example dead_letter -- app       # consumes both queues until Ctrl-C
//! cargo run --example dead_letter -- trigger   # another terminal: sends the four invoices
//! ```
//!
//! On SQS, retry delays are whole seconds and the redrive happens on a receive, so the
//! dead-lettering takes a few seconds.
mod common;

use std::time::Duration;

use melange::consumer::Failure;
use melange::{
    AnyBackend, ConsumerEvent, ConsumerOptions, MessageContext, MessagingBackendFactory,
    QueuePublisher, RetryBackoff, SerializerRegistry, Shutdown, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, melange::Message)]
struct InvoiceDue {
    number: String,
    amount_cents: i64,
    bank: String,
}

struct Invoices;

#[melange::listener]
impl Invoices {
    async fn on_invoice(
        &self,
        invoice: InvoiceDue,
        ctx: MessageContext<'_>,
    ) -> Result<(), Failure> {
        let attempt = ctx.receive_count();
        if invoice.amount_cents < 0 {
            return Err(Failure::no_retry(format!(
                "invoice {} has a negative amount",
                invoice.number
            )));
        }
        match invoice.bank.as_str() {
            "flaky" if attempt < 3 => Err(Failure::new(format!(
                "bank timeout paying invoice {} (attempt {attempt})",
                invoice.number
            ))),
            "down" => Err(Failure::new(format!(
                "bank down paying invoice {} (attempt {attempt})",
                invoice.number
            ))),
            _ => {
                println!("invoice {} paid (attempt {attempt})", invoice.number);
                Ok(())
            }
        }
    }
}

/// Reads what ended in the dead-letter queue.
struct DeadLetters;

#[melange::listener]
impl DeadLetters {
    async fn on_invoice(&self, invoice: InvoiceDue, ctx: MessageContext<'_>) {
        println!(
            "dead letter: invoice {} (received {} times)",
            invoice.number,
            ctx.receive_count()
        );
    }
}

fn print_event(event: &ConsumerEvent<'_>) {
    match event {
        ConsumerEvent::Failed {
            error, retry_in, ..
        } => match retry_in {
            Some(_) => println!("failed, will retry: {error}"),
            None => println!("failed, not retried: {error}"),
        },
        ConsumerEvent::DeadLettered {
            dead_letter_queue, ..
        } => println!("moved to {dead_letter_queue}"),
        _ => {}
    }
}

async fn declare(backend: &AnyBackend) -> Result<(), Box<dyn std::error::Error>> {
    MessagingBackendFactory::new(backend.clone())
        .init_queue(common::name("invoices"))
        .dead_letter_queue(common::name("invoices-dlq"))
        .max_receive_count(3)
        .await?;
    Ok(())
}

async fn trigger(backend: &AnyBackend) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    let invoices = [
        ("INV-1", 1200, "good"),
        ("INV-2", -5, "good"),
        ("INV-3", 800, "flaky"),
        ("INV-4", 300, "down"),
    ];
    for (number, amount_cents, bank) in invoices {
        let invoice = InvoiceDue {
            number: number.into(),
            amount_cents,
            bank: bank.into(),
        };
        publisher
            .publish(&common::name("invoices"), &invoice)
            .await?;
        println!("sent invoice {number} ({amount_cents} cents, bank {bank})");
    }
    Ok(())
}

fn options() -> ConsumerOptions {
    ConsumerOptions::default().retry_backoff(Some(RetryBackoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = common::backend().await?;
    let serializers = SerializerRegistry::default();
    let queue = common::name("invoices");
    let dlq = common::name("invoices-dlq");
    let invoices = |options: ConsumerOptions| {
        SimpleConsumerHandler::new(Invoices, serializers.clone(), backend.clone())
            .with_options(options)
            .on_event(print_event)
    };
    let dead_letters = |options: ConsumerOptions| {
        SimpleConsumerHandler::new(DeadLetters, serializers.clone(), backend.clone())
            .with_options(options)
    };

    match std::env::args().nth(1).as_deref() {
        Some("app") => {
            common::require_server("app")?;
            declare(&backend).await?;
            println!("Consuming {queue} and {dlq} (Ctrl-C to stop)...");
            let shutdown = Shutdown::on_ctrl_c_or_sigterm();
            let main = invoices(options()).with_shutdown(shutdown.clone());
            let dead = dead_letters(options()).with_shutdown(shutdown.clone());
            common::consume_both(
                &shutdown,
                main.consume_loop(&queue),
                dead.consume_loop(&dlq),
            )
            .await?;
        }
        Some("trigger") => {
            common::require_server("trigger")?;
            declare(&backend).await?;
            trigger(&backend).await?;
        }
        Some(other) => {
            return Err(format!("unknown command {other:?}: use app or trigger").into());
        }
        None => {
            declare(&backend).await?;
            trigger(&backend).await?;
            // Idle longer than the retry backoff, so retries are waited for.
            let summary = invoices(options().stop_when_idle(Duration::from_secs(1)))
                .consume_loop(&queue)
                .await?;
            println!(
                "{queue}: {} received, {} paid, {} failed, {} dead-lettered by the consumer",
                summary.received, summary.succeeded, summary.failed, summary.dead_lettered
            );
            let summary = dead_letters(ConsumerOptions::default()).drain(&dlq).await?;
            println!("{dlq}: {} message(s)", summary.succeeded);
        }
    }
    Ok(())
}
