//! The Python Melange tutorial in Rust: create a queue, publish "Hello World!", consume it.
//!
//! `cargo run --example tutorial` runs it in one process on the embedded in-memory backend.
use std::time::Duration;

use melange::{
    ConsumerOptions, InMemoryBackend, MessagingBackendFactory, QueuePublisher, SerializerRegistry,
    SimpleConsumerHandler,
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

const QUEUE: &str = "melangetutorial-queue";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = InMemoryBackend::new();
    let serializer = SerializerRegistry::default();

    // create_queue
    let factory = MessagingBackendFactory::new(backend.clone());
    factory.init_queue(QUEUE).await?;

    // publish
    let publisher = QueuePublisher::new(serializer.clone(), backend.clone());
    let message = MyTestMessage {
        message: "Hello World!".into(),
    };
    publisher.publish(QUEUE, &message).await?;

    // consume: in one process, stop once the queue has been idle for a moment.
    let handler = SimpleConsumerHandler::new(MyConsumer, serializer, backend)
        .with_options(ConsumerOptions::default().stop_when_idle(Duration::from_millis(200)));
    handler.consume_loop(QUEUE).await?;
    Ok(())
}
