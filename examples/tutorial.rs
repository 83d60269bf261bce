//! The Python Melange tutorial in Rust: create a queue, publish "Hello World!", consume it.
//!
//! In one process, on the embedded in-memory backend (prints `Hello World!` and exits):
//!
//! ```sh
//! cargo run --example tutorial
//! ```
//!
//! As separate processes on a local SQS server, as in the Python tutorial:
//!
//! ```sh
//! export MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324
//! cargo run --example tutorial -- create-queue   # once
//! cargo run --example tutorial -- consume        # prints messages until Ctrl-C
//! cargo run --example tutorial -- publish        # in another terminal, as often as you like
//! ```
//!
//! Without a subcommand it does all three in one process on whichever backend the
//! environment names (`MELANGE_SQS_ENDPOINT`, `MELANGE_BACKEND=aws`, or the embedded one).
mod common;

use std::time::Duration;

use melange::{
    AnyBackend, ConsumerOptions, MessagingBackendFactory, QueuePublisher, SerializerRegistry,
    Shutdown, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, melange::Message)]
struct MyTestMessage {
    message: String,
}

struct MyConsumer;

#[melange::listener]
impl MyConsumer {
    async fn on_my_test_message_received(&self, event: MyTestMessage) {
        println!("{}", event.message);
    }
}

async fn create_queue(backend: &AnyBackend, queue: &str) -> Result<(), Box<dyn std::error::Error>> {
    let factory = MessagingBackendFactory::new(backend.clone());
    factory.init_queue(queue).await?;
    Ok(())
}

async fn publish(backend: &AnyBackend, queue: &str) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    let message = MyTestMessage {
        message: "Hello World!".into(),
    };
    publisher.publish(queue, &message).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = common::backend().await?;
    let queue = common::name("melangetutorial-queue");
    let command = std::env::args().nth(1);

    match command.as_deref() {
        Some("create-queue") => {
            common::require_server("create-queue")?;
            create_queue(&backend, &queue).await?;
            println!("Queue {queue} created.");
        }
        Some("publish") => {
            common::require_server("publish")?;
            publish(&backend, &queue).await?;
            println!("Message sent to {queue}.");
        }
        Some("consume") => {
            common::require_server("consume")?;
            println!("Consuming {queue} (Ctrl-C to stop)...");
            let handler =
                SimpleConsumerHandler::new(MyConsumer, SerializerRegistry::default(), backend)
                    .with_shutdown(Shutdown::on_ctrl_c_or_sigterm());
            handler.consume_loop(&queue).await?;
            println!("Stopped.");
        }
        Some(other) => {
            return Err(
                format!("unknown command {other:?}: use create-queue, publish or consume").into(),
            );
        }
        None => {
            // All three in one process; stop once the queue has been idle for a moment.
            create_queue(&backend, &queue).await?;
            publish(&backend, &queue).await?;
            let handler =
                SimpleConsumerHandler::new(MyConsumer, SerializerRegistry::default(), backend)
                    .with_options(
                        ConsumerOptions::default().stop_when_idle(Duration::from_millis(200)),
                    );
            handler.consume_loop(&queue).await?;
        }
    }
    Ok(())
}
