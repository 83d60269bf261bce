//! The same behaviour on every backend: each case is a generic async function over
//! `B: MessagingBackend`, run once against `InMemoryBackend` and once against the SQS backend
//! on the server `scripts/test` starts, so a failure names the backend.

// Test helpers too: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use melange::sqs::ElasticMqBackend;
use melange::sqs::aws_sdk_sqs::types::MessageAttributeValue;
use melange::{
    BackendError, InMemoryBackend, MessagingBackend, OutgoingMessage, PublishOptions,
    QueuePublisher, QueueSpec, SerializerRegistry,
};

use crate::support::{assert_empty, options, receive_all, receive_envelopes, unique};

const LONG: Duration = Duration::from_secs(20);

/// What a conformance case needs beyond the trait: a way to put a message on a queue that
/// melange itself would never write.
trait Harness: MessagingBackend + Clone {
    /// Puts a message whose body no serializer can decode on `queue`.
    async fn inject_undecodable(&self, queue: &str);
}

impl Harness for InMemoryBackend {
    async fn inject_undecodable(&self, queue: &str) {
        self.publish_to_queue(queue, OutgoingMessage::new("<not json>", "Greeting", 1))
            .await
            .unwrap();
    }
}

impl Harness for ElasticMqBackend {
    async fn inject_undecodable(&self, queue: &str) {
        // A foreign producer: a raw body that is not JSON, straight through the SDK.
        let url = self.queue_url(queue).await.unwrap();
        self.sqs_client()
            .send_message()
            .queue_url(url)
            .message_body("<not json>")
            .message_attributes(
                "manifest",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("Greeting")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "serializer_id",
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value("1")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}

fn greeting(text: &str) -> OutgoingMessage {
    OutgoingMessage::new(
        serde_json::json!({ "text": text }).to_string(),
        "Greeting",
        1,
    )
}

async fn publish_and_consume<B: Harness>(backend: B) {
    let queue = unique("conf-basic");
    let info = backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    assert_eq!(info.name, queue);
    assert!(!info.fifo);
    let mut message = greeting("hello");
    message.attributes.insert("tenant".into(), "acme".into());
    let id = backend.publish_to_queue(&queue, message).await.unwrap();

    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(received.len(), 1);
    let envelope = &received[0];
    assert_eq!(&*envelope.message_id, id);
    assert_eq!(envelope.manifest.as_deref(), Some("Greeting"));
    assert_eq!(envelope.serializer_id, Some(1));
    assert_eq!(envelope.delivery.receive_count, 1);
    assert_eq!(
        envelope
            .delivery
            .attributes
            .get("tenant")
            .map(String::as_str),
        Some("acme")
    );
    assert_eq!(&*envelope.delivery.queue, queue);
    let value: serde_json::Value = SerializerRegistry::default()
        .deserialize(
            &envelope.content,
            envelope.serializer_id,
            envelope.manifest.as_deref(),
        )
        .unwrap();
    assert_eq!(value, serde_json::json!({ "text": "hello" }));

    backend
        .acknowledge(&queue, &envelope.delivery.receipt)
        .await
        .unwrap();
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
    backend.delete_queue(&queue).await.unwrap();
}

async fn redelivery_after_visibility_timeout<B: Harness>(backend: B) {
    let queue = unique("conf-redeliver");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let id = backend
        .publish_to_queue(&queue, greeting("again"))
        .await
        .unwrap();

    let first = backend
        .receive(&queue, &options(LONG, Some(Duration::from_secs(1))))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Hidden while the timeout runs...
    assert_empty(&backend, &queue, Duration::ZERO).await;
    // ... and back, with its receive count increased, once it ran out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(second.len(), 1);
    assert_eq!(&*second[0].message_id, id);
    assert_eq!(second[0].delivery.receive_count, 2);

    // Releasing at once with a zero visibility timeout.
    backend
        .change_visibility(&queue, &second[0].delivery.receipt, Duration::ZERO)
        .await
        .unwrap();
    let third = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(&*third[0].message_id, id);
    assert_eq!(third[0].delivery.receive_count, 3);
    backend
        .acknowledge(&queue, &third[0].delivery.receipt)
        .await
        .unwrap();
}

async fn redrive_to_dead_letter_queue<B: Harness>(backend: B) {
    let queue = unique("conf-redrive");
    let dlq = format!("{queue}-dlq");
    let info = backend
        .declare_queue(&QueueSpec::new(&queue).dead_letter_queue(&dlq, 1))
        .await
        .unwrap();
    let dead_letter = info.dead_letter.expect("a redrive policy");
    assert_eq!(
        (dead_letter.queue.as_str(), dead_letter.max_receive_count),
        (dlq.as_str(), 1)
    );
    assert_eq!(
        backend.get_queue(&queue).await.unwrap().dead_letter,
        Some(dead_letter)
    );
    backend.get_queue(&dlq).await.unwrap();

    let id = backend
        .publish_to_queue(&queue, greeting("doomed"))
        .await
        .unwrap();
    let first = backend
        .receive(&queue, &options(LONG, Some(Duration::from_secs(1))))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Received once already: the next receive moves it to the dead-letter queue.
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
    let dead = receive_envelopes(&backend, &dlq, 1, LONG).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(&*dead[0].message_id, id);
    assert_eq!(dead[0].manifest.as_deref(), Some("Greeting"));
    backend
        .acknowledge(&dlq, &dead[0].delivery.receipt)
        .await
        .unwrap();
}

async fn fifo_order<B: Harness>(backend: B) {
    let queue = format!("{}.fifo", unique("conf-fifo"));
    let info = backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    assert!(info.fifo);
    let messages: Vec<OutgoingMessage> = (0..5)
        .map(|i| {
            let mut message = greeting(&format!("m{i}"));
            message.message_group_id = Some("group-a".into());
            message.deduplication_id = Some(format!("dedup-{i}"));
            message
        })
        .collect();
    for message in messages.clone() {
        backend.publish_to_queue(&queue, message).await.unwrap();
    }
    // A duplicate deduplication id enqueues nothing.
    backend
        .publish_to_queue(&queue, messages[0].clone())
        .await
        .unwrap();

    let mut texts = Vec::new();
    while texts.len() < 5 {
        let received = receive_envelopes(&backend, &queue, 1, LONG).await;
        assert!(!received.is_empty(), "FIFO queue ran dry after {texts:?}");
        for envelope in received {
            assert_eq!(
                envelope.delivery.message_group_id.as_deref(),
                Some("group-a")
            );
            texts.push(envelope.content.to_string());
            backend
                .acknowledge(&queue, &envelope.delivery.receipt)
                .await
                .unwrap();
        }
    }
    let expected: Vec<String> = messages.iter().map(|m| m.content.clone()).collect();
    assert_eq!(texts, expected);
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
}

/// What Python Melange does: a publish without a deduplication id is never dropped as a
/// duplicate of an earlier message with the same content, while one that reuses an id is.
async fn fifo_publisher_keeps_equal_messages<B: Harness>(backend: B) {
    #[derive(serde::Serialize, serde::Deserialize, melange::Message)]
    struct Increment {
        by: u32,
    }
    let queue = format!("{}.fifo", unique("conf-fifo-pub"));
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    let group = PublishOptions::default().message_group_id("counter");
    for _ in 0..2 {
        publisher
            .publish_with(&queue, &Increment { by: 1 }, group.clone())
            .await
            .unwrap();
    }
    let same_id = group.deduplication_id("increment-once");
    for _ in 0..2 {
        publisher
            .publish_with(&queue, &Increment { by: 2 }, same_id.clone())
            .await
            .unwrap();
    }
    let mut contents = Vec::new();
    while contents.len() < 3 {
        let received = receive_envelopes(&backend, &queue, 1, LONG).await;
        assert!(
            !received.is_empty(),
            "FIFO queue ran dry after {contents:?}"
        );
        for envelope in received {
            contents.push(envelope.content.to_string());
            backend
                .acknowledge(&queue, &envelope.delivery.receipt)
                .await
                .unwrap();
        }
    }
    assert_eq!(contents, [r#"{"by":1}"#, r#"{"by":1}"#, r#"{"by":2}"#]);
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
}

/// A subject SNS would refuse is refused before anything is sent, with the rule it breaks.
async fn topic_subjects_sns_refuses_are_refused<B: Harness>(backend: B) {
    let topic = unique("conf-subject");
    backend.declare_topic(&topic).await.unwrap();
    for (subject, rule) in [
        ("two\nlines", "line breaks"),
        (" leading space", "start with"),
        ("x".repeat(100).as_str(), "less than 100"),
    ] {
        let mut message = greeting("hi");
        message.subject = Some(subject.to_owned());
        let error = backend.publish_to_topic(&topic, message).await.unwrap_err();
        assert!(
            matches!(&error, BackendError::InvalidRequest { target, reason, .. }
                if *target == topic && reason.contains(rule)),
            "{subject:?}: {error:?}"
        );
    }
    let mut fine = greeting("hi");
    fine.subject = Some("Order #42: created".to_owned());
    backend.publish_to_topic(&topic, fine).await.unwrap();
}

/// Declaring a queue again sets what SQS lets change (content-based deduplication of a FIFO
/// queue), and a dead-letter setting SQS refuses is refused before anything is created.
async fn declarations_apply_alike<B: Harness>(backend: B) {
    let queue = format!("{}.fifo", unique("conf-redeclare"));
    backend
        .declare_queue(&QueueSpec::new(&queue).content_based_deduplication(false))
        .await
        .unwrap();
    let mut grouped = greeting("no id");
    grouped.message_group_id = Some("g".into());
    let refused = backend.publish_to_queue(&queue, grouped.clone()).await;
    assert!(
        matches!(refused, Err(BackendError::InvalidRequest { .. })),
        "{refused:?}"
    );
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.publish_to_queue(&queue, grouped).await.unwrap();

    let fifo = format!("{}.fifo", unique("conf-dlq-kind"));
    let standard_dlq = unique("conf-dlq-standard");
    for spec in [
        QueueSpec::new(&fifo).dead_letter_queue(&standard_dlq, 3),
        QueueSpec::new(unique("conf-dlq-count")).dead_letter_queue(&standard_dlq, 0),
    ] {
        let error = backend.declare_queue(&spec).await.unwrap_err();
        assert!(
            matches!(&error, BackendError::InvalidRequest { target, .. } if *target == spec.name),
            "{error:?}"
        );
    }
    let left = backend.get_queue(&standard_dlq).await;
    assert!(
        matches!(left, Err(BackendError::QueueDoesNotExist { .. })),
        "a refused declaration left its dead-letter queue behind: {left:?}"
    );
}

async fn topic_fan_out_with_filter<B: Harness>(backend: B) {
    let topic = unique("conf-topic");
    let filtered = unique("conf-filtered");
    let all = unique("conf-all");
    backend.declare_topic(&topic).await.unwrap();
    backend
        .declare_queue(&QueueSpec::new(&filtered))
        .await
        .unwrap();
    backend.declare_queue(&QueueSpec::new(&all)).await.unwrap();
    backend
        .subscribe(&filtered, &topic, Some(&["OrderCreated".to_owned()]))
        .await
        .unwrap();
    backend.subscribe(&all, &topic, None).await.unwrap();

    let created = OutgoingMessage::new(r#"{"order_id":1}"#, "OrderCreated", 1);
    let cancelled = OutgoingMessage::new(r#"{"order_id":2}"#, "OrderCancelled", 1);
    backend.publish_to_topic(&topic, created).await.unwrap();
    backend.publish_to_topic(&topic, cancelled).await.unwrap();

    let mut everything: Vec<(String, String)> = receive_envelopes(&backend, &all, 2, LONG)
        .await
        .into_iter()
        .map(|e| {
            (
                e.manifest.as_deref().unwrap_or_default().to_owned(),
                e.content.to_string(),
            )
        })
        .collect();
    everything.sort();
    assert_eq!(
        everything,
        vec![
            ("OrderCancelled".to_owned(), r#"{"order_id":2}"#.to_owned()),
            ("OrderCreated".to_owned(), r#"{"order_id":1}"#.to_owned()),
        ]
    );
    let only_created = receive_envelopes(&backend, &filtered, 1, LONG).await;
    assert_eq!(only_created.len(), 1);
    assert_eq!(only_created[0].manifest.as_deref(), Some("OrderCreated"));
    assert_eq!(only_created[0].serializer_id, Some(1));
    assert_eq!(&*only_created[0].content, r#"{"order_id":1}"#);
    assert_empty(&backend, &filtered, Duration::from_secs(1)).await;
}

async fn batch_publish_and_acknowledge<B: Harness>(backend: B) {
    let queue = unique("conf-batch");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let messages: Vec<OutgoingMessage> = (0..23).map(|i| greeting(&format!("b{i}"))).collect();
    let ids = backend
        .publish_batch_to_queue(&queue, messages)
        .await
        .unwrap();
    assert_eq!(ids.len(), 23);
    let ids: Vec<String> = ids.into_iter().map(Result::unwrap).collect();

    let received = receive_envelopes(&backend, &queue, 23, Duration::from_secs(60)).await;
    let mut received_ids: Vec<String> = received.iter().map(|e| e.message_id.to_string()).collect();
    received_ids.sort();
    received_ids.dedup();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(received_ids, expected);

    let receipts: Vec<_> = received
        .iter()
        .map(|e| e.delivery.receipt.clone())
        .collect();
    let acks = backend.acknowledge_batch(&queue, &receipts).await.unwrap();
    assert_eq!(acks.len(), receipts.len());
    assert!(acks.iter().all(Result::is_ok), "{acks:?}");
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;

    // Batches of visibility changes, and empty batches.
    assert!(
        backend
            .acknowledge_batch(&queue, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        backend
            .publish_batch_to_queue(&queue, Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
    backend
        .publish_to_queue(&queue, greeting("v"))
        .await
        .unwrap();
    let held = receive_envelopes(&backend, &queue, 1, LONG).await;
    let changes = vec![(held[0].delivery.receipt.clone(), Duration::ZERO)];
    let changed = backend
        .change_visibility_batch(&queue, &changes)
        .await
        .unwrap();
    assert!(changed[0].is_ok(), "{changed:?}");
    assert_eq!(receive_envelopes(&backend, &queue, 1, LONG).await.len(), 1);
}

async fn unknown_manifest_arrives_intact<B: Harness>(backend: B) {
    let queue = unique("conf-unknown");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let message = OutgoingMessage::new(r#"{"x":1}"#, "com.example.NobodyKnowsMe", 7);
    backend.publish_to_queue(&queue, message).await.unwrap();
    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(
        received[0].manifest.as_deref(),
        Some("com.example.NobodyKnowsMe")
    );
    assert_eq!(received[0].serializer_id, Some(7));
    assert_eq!(&*received[0].content, r#"{"x":1}"#);
    backend
        .acknowledge(&queue, &received[0].delivery.receipt)
        .await
        .unwrap();
}

async fn undecodable_body_can_be_acknowledged<B: Harness>(backend: B) {
    let queue = unique("conf-undecodable");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.inject_undecodable(&queue).await;
    let received = receive_all(&backend, &queue, 1, LONG).await;
    assert_eq!(received.len(), 1);
    let receipt = match &received[0] {
        Ok(envelope) => {
            assert_eq!(envelope.manifest.as_deref(), Some("Greeting"));
            let decoded = SerializerRegistry::default().deserialize::<serde_json::Value>(
                &envelope.content,
                envelope.serializer_id,
                envelope.manifest.as_deref(),
            );
            assert!(decoded.is_err(), "decoded {decoded:?}");
            envelope.delivery.receipt.clone()
        }
        Err(malformed) => malformed.delivery.receipt.clone(),
    };
    backend.acknowledge(&queue, &receipt).await.unwrap();
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(melange::InMemoryBackend::new()).await;
                }
            )*
        }

        mod sqs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::support::sqs_backend()).await;
                }
            )*
        }
    };
}

conformance!(
    publish_and_consume,
    redelivery_after_visibility_timeout,
    redrive_to_dead_letter_queue,
    fifo_order,
    fifo_publisher_keeps_equal_messages,
    topic_subjects_sns_refuses_are_refused,
    declarations_apply_alike,
    topic_fan_out_with_filter,
    batch_publish_and_acknowledge,
    unknown_manifest_arrives_intact,
    undecodable_body_can_be_acknowledged,
);
