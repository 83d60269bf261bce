//! The pickle format against Python Melange 7.2.0: the captured vector, and live round trips
//! with the real Python library (`$MELANGE_TEST_PYTHON`, set by `scripts/test`); and a hostile
//! pickle on a queue, which a consumer dead-letters.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use melange::SerializerRegistry;
use melange::serializer::pickle::{PickleSerializer, PythonClass, datetime};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
}

impl PythonClass for Line {
    const PYTHON_CLASS: &'static str = "pickle_events.Line";
}

/// The derive names the Python class its pickles become.
#[derive(Debug, PartialEq, Serialize, Deserialize, melange::Message)]
#[melange(python = "pickle_events.OrderCreated")]
struct OrderCreated {
    order_id: u64,
    #[serde(default)]
    lines: Vec<Line>,
    #[serde(with = "datetime")]
    occurred_on: String,
    metadata: HashMap<String, String>,
    correlation_id: Option<String>,
}

/// The derive names the Python class its pickles become.
#[derive(Debug, PartialEq, Serialize, Deserialize, melange::Message)]
#[melange(python = "pickle_events.OrderCancelled")]
struct OrderCancelled {
    order_id: u64,
    reason: String,
    #[serde(with = "datetime")]
    occurred_on: String,
    metadata: HashMap<String, String>,
    correlation_id: Option<String>,
}

/// Either event; the variant is picked by the Python class of the pickled object.
#[derive(Debug, PartialEq, Deserialize)]
enum OrderEvent {
    OrderCreated(OrderCreated),
    OrderCancelled(OrderCancelled),
}

fn registry() -> SerializerRegistry {
    let pickle = PickleSerializer::builder()
        .class::<OrderCreated>()
        .class::<OrderCancelled>()
        .class::<Line>()
        .build()
        .unwrap();
    SerializerRegistry::builder()
        .serializer("json", melange::JsonSerializer)
        .serializer("pickle", pickle)
        .bind::<OrderCreated>("pickle")
        .bind::<OrderCancelled>("pickle")
        .build()
        .unwrap()
}

#[test]
fn golden_vector_from_python_melange_decodes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/python-melange-7.2.0/queue-pickle.json");
    let vector: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let message = &vector["sqs_messages"][0];
    let body: serde_json::Value = serde_json::from_str(message["Body"].as_str().unwrap()).unwrap();
    let content = body["Message"].as_str().unwrap();
    let attributes = &message["MessageAttributes"];
    let manifest = attributes["manifest"]["StringValue"].as_str().unwrap();
    let serializer_id: u32 = attributes["serializer_id"]["StringValue"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((manifest, serializer_id), ("OrderCreated", 2));

    let event: OrderCreated = registry()
        .deserialize(content, Some(serializer_id), Some(manifest))
        .unwrap();
    assert_eq!(
        event,
        OrderCreated {
            order_id: 42,
            lines: vec![],
            occurred_on: "2026-11-28T11:40:15.771213+00:00".into(),
            metadata: HashMap::new(),
            correlation_id: None,
        }
    );
    // The capture's own rendering of the state (`str(datetime)`) agrees.
    let expected = &vector["expected_object_state"];
    assert_eq!(expected["order_id"], 42);
    assert_eq!(
        expected["occurred_on"].as_str().unwrap().replace(' ', "T"),
        event.occurred_on
    );
}

/// The Python with Melange 7.2.0 that `scripts/test` installs.
fn python() -> String {
    std::env::var("MELANGE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "MELANGE_TEST_PYTHON is not set: run the interop tests through scripts/test, which \
             installs Python Melange 7.2.0 and points MELANGE_TEST_PYTHON at it"
        )
    })
}

fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs a script under `$MELANGE_TEST_PYTHON`, feeding `stdin`, and returns its JSON lines.
fn run_python(name: &str, stdin: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(python())
        .arg(script(name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run $MELANGE_TEST_PYTHON (see scripts/test): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed:\n{stderr}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn python_melange_pickles_decode_in_rust() {
    let wire = run_python("pickle_publish.py", "");
    assert_eq!(wire.len(), 2);
    let registry = registry();
    let decode = |w: &serde_json::Value| -> (String, u32, String) {
        (
            w["content"].as_str().unwrap().to_owned(),
            u32::try_from(w["serializer_id"].as_u64().unwrap()).unwrap(),
            w["manifest"].as_str().unwrap().to_owned(),
        )
    };

    let (content, id, manifest) = decode(&wire[0]);
    assert_eq!((id, manifest.as_str()), (2, "OrderCreated"));
    let created: OrderCreated = registry
        .deserialize(&content, Some(id), Some(&manifest))
        .unwrap();
    assert_eq!(
        created,
        OrderCreated {
            order_id: 7,
            lines: vec![
                Line {
                    sku: "sku-1".into(),
                    quantity: 2
                },
                Line {
                    sku: "sku-2".into(),
                    quantity: 70_000
                },
            ],
            occurred_on: "2026-11-28T11:40:15.771213+00:00".into(),
            metadata: HashMap::from([("source".into(), "python".into())]),
            correlation_id: Some("c-7".into()),
        }
    );

    let (content, id, manifest) = decode(&wire[1]);
    assert_eq!(manifest, "OrderCancelled");
    let cancelled: OrderCancelled = registry
        .deserialize(&content, Some(id), Some(&manifest))
        .unwrap();
    assert_eq!(cancelled.reason, "out of stock");
    assert_eq!(cancelled.occurred_on, "2026-11-28T12:00:00-05:00");
    assert_eq!(cancelled.correlation_id, None);

    // One enum over both: the Python class picks the variant.
    let either: OrderEvent = registry
        .deserialize(&content, Some(id), Some(&manifest))
        .unwrap();
    assert_eq!(either, OrderEvent::OrderCancelled(cancelled));
}

#[test]
fn rust_pickles_dispatch_to_python_typed_handlers() {
    let registry = registry();
    let created = OrderCreated {
        order_id: 42,
        lines: vec![Line {
            sku: "from-rust".into(),
            quantity: 3,
        }],
        occurred_on: "2026-11-28T11:40:15.5+00:00".into(),
        metadata: HashMap::from([("source".into(), "rust".into())]),
        correlation_id: Some("c-42".into()),
    };
    let cancelled = OrderCancelled {
        order_id: 43,
        reason: "changed mind".into(),
        occurred_on: "2026-11-28T12:00:00+05:30".into(),
        metadata: HashMap::new(),
        correlation_id: None,
    };
    let mut stdin = String::new();
    for outgoing in [
        registry.serialize(&created).unwrap(),
        registry.serialize(&cancelled).unwrap(),
    ] {
        assert_eq!(outgoing.serializer_id, 2);
        let line = serde_json::json!({
            "content": outgoing.content,
            "manifest": outgoing.manifest.as_deref(),
            "serializer_id": outgoing.serializer_id,
        });
        stdin.push_str(&line.to_string());
        stdin.push('\n');
    }

    let received = run_python("pickle_consume.py", &stdin);
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(
        received[0],
        serde_json::json!({
            "handler": "on_order_created",
            "class": "pickle_events.OrderCreated",
            "order_id": 42,
            "lines": [["from-rust", 3]],
            "line_class": ["Line"],
            "occurred_on": {
                "type": "datetime",
                "iso": "2026-11-28T11:40:15.500000+00:00",
                "utcoffset": 0.0,
            },
            "metadata": {"source": "rust"},
            "correlation_id": "c-42",
        })
    );
    assert_eq!(
        received[1],
        serde_json::json!({
            "handler": "on_order_cancelled",
            "class": "pickle_events.OrderCancelled",
            "order_id": 43,
            "reason": "changed mind",
            "occurred_on": {
                "type": "datetime",
                "iso": "2026-11-28T12:00:00+05:30",
                "utcoffset": 19800.0,
            },
            "correlation_id": null,
        })
    );
}

/// Runs tests/python/pickle_sqs.py against the test SQS server; returns its JSON lines.
fn run_pickle_sqs(args: &[&str]) -> Vec<serde_json::Value> {
    let output = Command::new(python())
        .arg(script("pickle_sqs.py"))
        .arg(crate::support::sqs_endpoint())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run $MELANGE_TEST_PYTHON (see scripts/test): {e}"));
    assert!(
        output.status.success(),
        "pickle_sqs.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Collects the `OrderCreated` events a Rust listener receives.
#[derive(Default)]
struct Received {
    orders: std::sync::Mutex<Vec<OrderCreated>>,
}

#[melange::listener]
impl Received {
    async fn on_order_created(&self, event: OrderCreated) {
        self.orders.lock().unwrap().push(event);
    }
}

/// A hostile pickle: a `pickle_events.OrderCreated` whose state is the object itself. The
/// reader once followed that cycle until the stack overflowed, which aborts the whole consumer
/// process (and, redelivered, every restart of it). It is now an undecodable message like any
/// other: dead-lettered at once, while the order behind it is handled.
#[tokio::test(start_paused = true)]
async fn a_self_referencing_pickle_is_dead_lettered_and_the_consumer_keeps_going() {
    use melange::{
        ConsumerOptions, InMemoryBackend, MessagingBackend, MessagingBackendFactory, PoisonOutcome,
        QueuePublisher, SimpleConsumerHandler,
    };
    const HOSTILE: &str = "gASMDXBpY2tsZV9ldmVudHOUjAxPcmRlckNyZWF0ZWSUk5QpgZRoA2Iu";

    let backend = InMemoryBackend::new();
    MessagingBackendFactory::new(backend.clone())
        .init_queue("orders")
        .dead_letter_queue("orders-dlq")
        .await
        .unwrap();
    let order = |order_id| OrderCreated {
        order_id,
        lines: Vec::new(),
        occurred_on: "2026-12-06T18:00:00+00:00".into(),
        metadata: HashMap::new(),
        correlation_id: None,
    };
    // The hostile body goes out under the real message's manifest and serializer id.
    let mut hostile = registry().serialize(&order(0)).unwrap();
    hostile.content = HOSTILE.into();
    backend.publish_to_queue("orders", hostile).await.unwrap();
    QueuePublisher::new(registry(), backend.clone())
        .publish("orders", &order(7))
        .await
        .unwrap();

    let handler = SimpleConsumerHandler::new(Received::default(), registry(), backend.clone())
        .with_options(
            ConsumerOptions::default()
                .undecodable(PoisonOutcome::DeadLetter)
                .stop_when_idle(std::time::Duration::from_secs(1)),
        );
    let summary = handler.consume_loop("orders").await.unwrap();
    assert_eq!((summary.poison, summary.succeeded), (1, 1));
    let handled: Vec<u64> = handler
        .consumer()
        .orders
        .lock()
        .unwrap()
        .iter()
        .map(|order| order.order_id)
        .collect();
    assert_eq!(handled, [7]);
    assert!(backend.queue_stats("orders").unwrap().is_empty());
    let dead: Vec<_> = crate::support::receive_envelopes(
        &backend,
        "orders-dlq",
        1,
        std::time::Duration::from_secs(1),
    )
    .await
    .into_iter()
    .map(|envelope| envelope.content.to_string())
    .collect();
    assert_eq!(dead, [HOSTILE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_pickles_reach_a_rust_listener_through_sqs() {
    let queue = crate::support::unique("pickle-py-to-rust");
    let backend = crate::support::sqs_backend();
    melange::MessagingBackendFactory::new(backend.clone())
        .init_queue(queue.clone())
        .await
        .unwrap();
    let python_queue = queue.clone();
    tokio::task::spawn_blocking(move || run_pickle_sqs(&["publish", &python_queue, "11"]))
        .await
        .unwrap();

    let handler = melange::SimpleConsumerHandler::new(Received::default(), registry(), backend)
        .with_options(
            melange::ConsumerOptions::default().stop_when_idle(std::time::Duration::from_secs(2)),
        );
    let summary = handler.consume_loop(&queue).await.unwrap();
    assert_eq!((summary.succeeded, summary.acknowledged), (1, 1));
    let orders = handler.consumer().orders.lock().unwrap();
    assert_eq!(orders[0].order_id, 11);
    assert_eq!(
        orders[0].lines,
        [Line {
            sku: "sku-9".into(),
            quantity: 3
        }]
    );
    assert_eq!(orders[0].occurred_on, "2026-11-28T09:30:00+00:00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_pickles_reach_a_python_single_dispatch_consumer_through_sqs() {
    let queue = crate::support::unique("pickle-rust-to-py");
    let backend = crate::support::sqs_backend();
    melange::MessagingBackendFactory::new(backend.clone())
        .init_queue(queue.clone())
        .await
        .unwrap();
    let event = OrderCreated {
        order_id: 12,
        lines: vec![Line {
            sku: "sku-4".into(),
            quantity: 5,
        }],
        occurred_on: "2026-11-28T10:00:00+00:00".into(),
        metadata: HashMap::new(),
        correlation_id: None,
    };
    melange::QueuePublisher::new(registry(), backend)
        .publish(&queue, &event)
        .await
        .unwrap();

    let received =
        tokio::task::spawn_blocking(move || run_pickle_sqs(&["consume", &queue, "1", "20"]))
            .await
            .unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["handler"], "on_order_created");
    assert_eq!(received[0]["class"], "pickle_events.OrderCreated");
    assert_eq!(received[0]["order_id"], 12);
    assert_eq!(received[0]["lines"], serde_json::json!([["sku-4", 5]]));
    assert_eq!(received[0]["occurred_on"], "2026-11-28T10:00:00+00:00");
}

/// A Rust name other than the Python class's, and a nested Python class.
#[derive(Serialize, Deserialize, melange::Message)]
#[melange(python = "pickle_events.OrderShipped")]
struct ShippedV2 {
    order_id: u64,
}

#[derive(Serialize, Deserialize, melange::Message)]
#[melange(python = "pickle_events:Events.Refunded")]
struct Refund {
    order_id: u64,
}

#[derive(Serialize, Deserialize, melange::Message)]
#[melange(python = "pickle_events.Renamed", manifest = "legacy.Renamed")]
struct Renamed {
    order_id: u64,
}

#[test]
fn the_manifest_of_a_python_class_is_its_qualname_as_python_melange_writes_it() {
    use melange::Message as _;
    // Python Melange dispatches a pickle by `__qualname__`: a manifest taken from the Rust
    // name would leave every message published by the Python service unaccepted.
    assert_eq!(ShippedV2::MANIFEST, "OrderShipped");
    assert_eq!(Refund::MANIFEST, "Events.Refunded");
    assert_eq!(
        Renamed::MANIFEST,
        "legacy.Renamed",
        "an explicit manifest wins"
    );
}
