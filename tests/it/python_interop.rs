//! Python Melange 7.2.0 and the Rust SQS backend on the same server: each side publishes, the
//! other consumes, and queues declared by one are consumed by the other. The Python side is
//! tests/python/sqs_interop.py, run with `$MELANGE_TEST_PYTHON` (see `scripts/test`).

// Test helpers too: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use melange::sqs::ElasticMqBackend;
use melange::{
    Message, MessagingBackend, MessagingBackendFactory, QueuePublisher, SerializerRegistry,
    TopicPublisher,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::support::{python, receive_envelopes, sqs_backend, sqs_endpoint, unique};

const LONG: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct OrderCreated {
    order_id: u64,
    customer: String,
}

impl Message for OrderCreated {
    const MANIFEST: &'static str = "OrderCreated";
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    from: String,
}

impl Message for Note {
    const MANIFEST: &'static str = "Note";
}

/// Runs tests/python/sqs_interop.py with these arguments; returns its stdout lines as JSON.
async fn run_python(args: Vec<String>) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sqs_interop.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .arg(sqs_endpoint())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run $MELANGE_TEST_PYTHON (see scripts/test): {e}"))
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "sqs_interop.py failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Receives `count` messages and decodes each with the default registry, acknowledging them.
async fn receive_decoded(backend: &ElasticMqBackend, queue: &str, count: usize) -> Vec<Value> {
    let registry = SerializerRegistry::default();
    let mut decoded = Vec::new();
    for envelope in receive_envelopes(backend, queue, count, LONG).await {
        assert_eq!(envelope.manifest.as_deref(), Some("json"));
        assert_eq!(envelope.serializer_id, Some(1));
        decoded.push(
            registry
                .deserialize::<Value>(
                    &envelope.content,
                    envelope.serializer_id,
                    envelope.manifest.as_deref(),
                )
                .unwrap(),
        );
        backend
            .acknowledge(queue, &envelope.delivery.receipt)
            .await
            .unwrap();
    }
    decoded.sort_by_key(|value| value.to_string());
    decoded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publishers_reach_rust() {
    let backend = sqs_backend();
    let queue = unique("py-to-rust");
    let topic = unique("py-to-rust-topic");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .subscribed_to([topic.clone()])
        .await
        .unwrap();

    let to_queue = json!({ "from": "python-queue", "text": "h\u{e9}llo \"quoted\"", "n": 1 });
    let to_topic = json!({ "from": "python-topic", "nested": { "a": [1, 2, 3] } });
    run_python(vec![
        "publish-queue".into(),
        queue.clone(),
        to_queue.to_string(),
    ])
    .await;
    run_python(vec![
        "publish-topic".into(),
        topic.clone(),
        to_topic.to_string(),
    ])
    .await;

    let decoded = receive_decoded(&backend, &queue, 2).await;
    assert_eq!(decoded, vec![to_queue, to_topic]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_publishers_reach_the_python_dispatcher() {
    let backend = sqs_backend();
    let queue = unique("rust-to-py");
    let topic = unique("rust-to-py-topic");
    // Declared by Rust: dead-letter queue and topic subscription.
    let info = MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .subscribed_to([topic.clone()])
        .dead_letter_queue(format!("{queue}-dlq"))
        .await
        .unwrap();
    assert_eq!(info.dead_letter.unwrap().max_receive_count, 4);

    let registry = SerializerRegistry::default();
    QueuePublisher::new(registry.clone(), backend.clone())
        .publish(
            &queue,
            &OrderCreated {
                order_id: 1,
                customer: "via queue".into(),
            },
        )
        .await
        .unwrap();
    TopicPublisher::new(registry, backend.clone())
        .publish(
            &topic,
            &OrderCreated {
                order_id: 2,
                customer: "via topic".into(),
            },
        )
        .await
        .unwrap();

    let mut received = run_python(vec![
        "consume".into(),
        queue.clone(),
        "2".into(),
        "40".into(),
    ])
    .await;
    received.sort_by_key(|value| value["order_id"].as_u64());
    assert_eq!(
        received,
        vec![
            json!({ "order_id": 1, "customer": "via queue" }),
            json!({ "order_id": 2, "customer": "via topic" }),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_declared_by_python_are_consumed_by_rust() {
    let backend = sqs_backend();
    let queue = unique("py-declared");
    let topic = unique("py-declared-topic");
    let dlq = format!("{queue}-dlq");
    run_python(vec![
        "init-queue".into(),
        queue.clone(),
        topic.clone(),
        dlq.clone(),
    ])
    .await;

    // Python writes maxReceiveCount as a string; Rust reads it.
    let info = backend.get_queue(&queue).await.unwrap();
    let dead_letter = info.dead_letter.expect("the redrive policy Python set");
    assert_eq!(
        (dead_letter.queue.as_str(), dead_letter.max_receive_count),
        (dlq.as_str(), 4)
    );

    // Rust publishes to the topic Python created and subscribed the queue to (its ARN is
    // found by listing), and Python publishes too; Rust consumes both.
    TopicPublisher::new(SerializerRegistry::default(), backend.clone())
        .publish(
            &topic,
            &Note {
                from: "rust".into(),
            },
        )
        .await
        .unwrap();
    run_python(vec![
        "publish-topic".into(),
        topic.clone(),
        json!({ "from": "python" }).to_string(),
    ])
    .await;
    let registry = SerializerRegistry::default();
    let mut decoded = Vec::new();
    for envelope in receive_envelopes(&backend, &queue, 2, LONG).await {
        decoded.push(
            registry
                .deserialize::<Value>(&envelope.content, envelope.serializer_id, None)
                .unwrap(),
        );
        backend
            .acknowledge(&queue, &envelope.delivery.receipt)
            .await
            .unwrap();
    }
    decoded.sort_by_key(|value| value.to_string());
    assert_eq!(
        decoded,
        vec![json!({ "from": "python" }), json!({ "from": "rust" })]
    );
}

/// Collects what the consumer engine hands it.
#[derive(Default)]
struct Collect {
    seen: std::sync::Mutex<Vec<String>>,
}

#[melange::listener]
impl Collect {
    async fn on_order_created(&self, event: OrderCreated) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("{} {}", event.order_id, event.customer));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_engine_runs_on_sqs_with_python_messages() {
    let backend = sqs_backend();
    let queue = unique("engine-on-sqs");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .await
        .unwrap();
    // One message from Python (manifest `json`, no handler for it: discarded) and three
    // from Rust.
    run_python(vec![
        "publish-queue".into(),
        queue.clone(),
        json!({ "order_id": 0, "customer": "python" }).to_string(),
    ])
    .await;
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    for order_id in 1..=3 {
        publisher
            .publish(
                &queue,
                &OrderCreated {
                    order_id,
                    customer: "rust".into(),
                },
            )
            .await
            .unwrap();
    }

    let handler = melange::SimpleConsumerHandler::new(
        Collect::default(),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_options(
        melange::ConsumerOptions::default()
            .unknown_manifest(melange::PoisonOutcome::Discard)
            .wait_time(Duration::from_secs(2))
            .stop_when_idle(Duration::from_secs(2)),
    );
    let summary = handler.consume_loop(&queue).await.unwrap();
    let mut seen = handler.consumer().seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, vec!["1 rust", "2 rust", "3 rust"]);
    assert!(summary.received >= 4, "{summary:?}");
    crate::support::assert_empty(&backend, &queue, Duration::from_secs(1)).await;
}
