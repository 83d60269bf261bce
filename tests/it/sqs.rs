//! The SQS + SNS backend against the server `scripts/test` starts (moto_server): the wire
//! format as Python Melange writes it, queue and topic declarations, caches, typed errors,
//! batch partial failures; and the golden vectors captured from Python Melange 7.2.0.

// Test helpers too: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::error::Error as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use melange::sqs::aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use melange::sqs::wire::{self, Attribute, BodyFormat, SQS_MAX_MESSAGE_SIZE};
use melange::sqs::{BatchEntryError, ElasticMqBackend};
use melange::{
    BackendError, MessagingBackend, OutgoingMessage, QueueSpec, ReceiptHandle, ReceiveOptions,
};
use serde_json::{Value, json};

use crate::support::{assert_empty, receive_all, receive_envelopes, sqs_backend, unique};

const LONG: Duration = Duration::from_secs(20);

fn message(content: &str, manifest: &'static str) -> OutgoingMessage {
    OutgoingMessage::new(content, manifest, 1)
}

async fn queue_attributes(
    backend: &ElasticMqBackend,
    queue: &str,
) -> HashMap<QueueAttributeName, String> {
    let url = backend.queue_url(queue).await.unwrap();
    backend
        .sqs_client()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

// ----- the wire format -----

#[tokio::test]
async fn queue_messages_are_written_as_python_melange_writes_them() {
    let backend = sqs_backend();
    let queue = unique("sqs-wire");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let content = r#"{"kind": "h\u00e9llo", "n": 1}"#;
    backend
        .publish_to_queue(&queue, message(content, "json"))
        .await
        .unwrap();

    // Read it back with the plain SDK, as Python Melange would.
    let url = backend.queue_url(&queue).await.unwrap();
    let output = backend
        .sqs_client()
        .receive_message()
        .queue_url(url)
        .message_attribute_names("All")
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let raw = &output.messages.unwrap()[0];
    let body: Value = serde_json::from_str(raw.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!({ "Message": content }));
    let attributes = raw.message_attributes.as_ref().unwrap();
    assert_eq!(attributes["manifest"].data_type, "String");
    assert_eq!(attributes["manifest"].string_value.as_deref(), Some("json"));
    assert_eq!(attributes["serializer_id"].data_type, "Number");
    assert_eq!(
        attributes["serializer_id"].string_value.as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn topic_messages_arrive_in_the_sns_envelope_with_subject() {
    let backend = sqs_backend();
    let topic = unique("sqs-subject");
    let queue = unique("sqs-subject-q");
    backend.declare_topic(&topic).await.unwrap();
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.subscribe(&queue, &topic, None).await.unwrap();
    let mut outgoing = message(r#"{"a":1}"#, "json");
    outgoing.subject = Some("hello".into());
    backend.publish_to_topic(&topic, outgoing).await.unwrap();

    let url = backend.queue_url(&queue).await.unwrap();
    let output = backend
        .sqs_client()
        .receive_message()
        .queue_url(url)
        .wait_time_seconds(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let raw = &output.messages.unwrap()[0];
    let envelope: Value = serde_json::from_str(raw.body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["Subject"], "hello");
    assert_eq!(envelope["Message"], r#"{"a":1}"#);
    assert_eq!(envelope["MessageAttributes"]["manifest"]["Value"], "json");
    assert_eq!(
        envelope["MessageAttributes"]["serializer_id"]["Type"],
        "Number"
    );

    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(&*received[0].content, r#"{"a":1}"#);
    assert_eq!(received[0].manifest.as_deref(), Some("json"));
    assert_eq!(received[0].serializer_id, Some(1));
}

#[tokio::test]
async fn raw_message_delivery_is_read_from_the_copied_attributes() {
    let backend = sqs_backend();
    let topic = unique("sqs-raw");
    let queue = unique("sqs-raw-q");
    backend.declare_topic(&topic).await.unwrap();
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.subscribe(&queue, &topic, None).await.unwrap();
    let topic_arn = backend.topic_arn(&topic).await.unwrap();
    let subscriptions = backend
        .sns_client()
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .send()
        .await
        .unwrap();
    let subscription = subscriptions.subscriptions.unwrap()[0]
        .subscription_arn
        .clone()
        .unwrap();
    backend
        .sns_client()
        .set_subscription_attributes()
        .subscription_arn(subscription)
        .attribute_name("RawMessageDelivery")
        .attribute_value("true")
        .send()
        .await
        .unwrap();

    backend
        .publish_to_topic(&topic, message(r#"{"raw":true}"#, "RawThing"))
        .await
        .unwrap();
    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(&*received[0].content, r#"{"raw":true}"#);
    assert_eq!(received[0].manifest.as_deref(), Some("RawThing"));
    assert_eq!(received[0].serializer_id, Some(1));
}

#[tokio::test]
async fn malformed_messages_are_reported_with_their_receipt() {
    let backend = sqs_backend();
    let queue = unique("sqs-malformed");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let url = backend.queue_url(&queue).await.unwrap();
    let client = backend.sqs_client();
    client
        .send_message()
        .queue_url(&url)
        .message_body(r#"{"Message": 5}"#)
        .send()
        .await
        .unwrap();
    client
        .send_message()
        .queue_url(&url)
        .message_body(r#"{"Message": "x"}"#)
        .message_attributes("serializer_id", string_attribute("one"))
        .send()
        .await
        .unwrap();

    let received = receive_all(&backend, &queue, 2, LONG).await;
    assert_eq!(received.len(), 2);
    let mut errors = Vec::new();
    for result in received {
        let malformed = result.expect_err("a malformed message");
        assert_eq!(&*malformed.delivery.queue, queue);
        assert!(malformed.to_string().contains(&queue));
        errors.push(malformed.error.clone());
        backend
            .acknowledge(&queue, &malformed.delivery.receipt)
            .await
            .unwrap();
    }
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, wire::WireError::InvalidBody { .. }))
    );
    assert!(errors.iter().any(
        |e| matches!(e, wire::WireError::InvalidAttribute { name, .. } if name == "serializer_id")
    ));
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
}

// ----- declarations -----

#[tokio::test]
async fn declare_get_and_delete_queues() {
    let backend = sqs_backend();
    let queue = unique("sqs-declare");
    let spec = QueueSpec::new(&queue).visibility_timeout(Duration::from_secs(45));
    let info = backend.declare_queue(&spec).await.unwrap();
    assert_eq!(info.visibility_timeout, Duration::from_secs(45));
    assert_eq!(info.dead_letter, None);
    // Declaring again is fine, and so is declaring with other settings.
    backend.declare_queue(&spec).await.unwrap();
    let changed = QueueSpec::new(&queue).visibility_timeout(Duration::from_secs(50));
    let info = backend.declare_queue(&changed).await.unwrap();
    assert_eq!(info.visibility_timeout, Duration::from_secs(50));
    assert_eq!(backend.get_queue(&queue).await.unwrap(), info);

    backend.delete_queue(&queue).await.unwrap();
    let error = backend.get_queue(&queue).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::QueueDoesNotExist { name, source: Some(_) } if *name == queue),
        "{error:?}"
    );
    assert!(error.to_string().contains(&queue));

    let error = backend
        .declare_queue(&QueueSpec::new("no spaces allowed"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::InvalidName { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn fifo_queues_get_their_attributes_and_group_ids() {
    let backend = sqs_backend();
    let queue = format!("{}.fifo", unique("sqs-fifo"));
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let attributes = queue_attributes(&backend, &queue).await;
    assert_eq!(attributes[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(
        attributes[&QueueAttributeName::ContentBasedDeduplication],
        "true"
    );

    // Content-based deduplication: the same body twice is one message.
    for _ in 0..2 {
        let mut outgoing = message(r#"{"same":true}"#, "json");
        outgoing.message_group_id = Some("g".into());
        backend.publish_to_queue(&queue, outgoing).await.unwrap();
    }
    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].delivery.message_group_id.as_deref(), Some("g"));
    backend
        .acknowledge(&queue, &received[0].delivery.receipt)
        .await
        .unwrap();
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;

    let strict = format!("{}.fifo", unique("sqs-fifo-strict"));
    backend
        .declare_queue(&QueueSpec::new(&strict).content_based_deduplication(false))
        .await
        .unwrap();
    let attributes = queue_attributes(&backend, &strict).await;
    assert_eq!(
        attributes[&QueueAttributeName::ContentBasedDeduplication],
        "false"
    );
}

#[tokio::test]
async fn dead_letter_queues_get_a_redrive_policy() {
    let backend = sqs_backend();
    let queue = unique("sqs-dlq");
    let dlq = format!("{queue}-dead");
    backend
        .declare_queue(&QueueSpec::new(&queue).dead_letter_queue(&dlq, 3))
        .await
        .unwrap();
    let attributes = queue_attributes(&backend, &queue).await;
    let redrive: Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{dlq}"))
    );
    assert_eq!(redrive["maxReceiveCount"], 3);
    let info = backend.get_queue(&queue).await.unwrap();
    assert_eq!(info.dead_letter.unwrap().max_receive_count, 3);
}

#[tokio::test]
async fn subscriptions_merge_queue_policies_and_set_filters() {
    let backend = sqs_backend();
    let queue = unique("sqs-policy");
    let first = unique("sqs-policy-t1");
    let second = unique("sqs-policy-t2");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.declare_topic(&first).await.unwrap();
    backend.declare_topic(&second).await.unwrap();
    backend
        .subscribe(&queue, &first, Some(&["A".to_owned(), "B".to_owned()]))
        .await
        .unwrap();
    backend.subscribe(&queue, &second, None).await.unwrap();
    // Subscribing again changes nothing in the policy.
    backend.subscribe(&queue, &second, None).await.unwrap();

    let attributes = queue_attributes(&backend, &queue).await;
    let policy: Value = serde_json::from_str(&attributes[&QueueAttributeName::Policy]).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let sources: Vec<&str> = statements
        .iter()
        .map(|s| {
            s["Condition"]["ArnEquals"]["aws:SourceArn"]
                .as_str()
                .unwrap()
        })
        .collect();
    let first_arn = backend.topic_arn(&first).await.unwrap();
    let second_arn = backend.topic_arn(&second).await.unwrap();
    assert_eq!(sources, vec![first_arn.as_str(), second_arn.as_str()]);
    assert!(statements.iter().all(|s| s["Action"] == "sqs:SendMessage"));

    let subscriptions = backend
        .sns_client()
        .list_subscriptions_by_topic()
        .topic_arn(&first_arn)
        .send()
        .await
        .unwrap()
        .subscriptions
        .unwrap();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].protocol.as_deref(), Some("sqs"));
    let subscription_attributes = backend
        .sns_client()
        .get_subscription_attributes()
        .subscription_arn(subscriptions[0].subscription_arn.clone().unwrap())
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let filter: Value = serde_json::from_str(&subscription_attributes["FilterPolicy"]).unwrap();
    assert_eq!(filter, json!({ "manifest": ["A", "B"] }));
}

/// The subscriptions of a topic: (subscription ARN, its `FilterPolicy` if any).
async fn topic_subscriptions(
    backend: &ElasticMqBackend,
    topic: &str,
) -> Vec<(String, Option<Value>)> {
    let topic_arn = backend.topic_arn(topic).await.unwrap();
    let subscriptions = backend
        .sns_client()
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .send()
        .await
        .unwrap()
        .subscriptions
        .unwrap_or_default();
    let mut found = Vec::new();
    for subscription in subscriptions {
        let arn = subscription.subscription_arn.unwrap();
        let attributes = backend
            .sns_client()
            .get_subscription_attributes()
            .subscription_arn(&arn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let filter = attributes
            .get("FilterPolicy")
            .filter(|policy| !policy.is_empty())
            .map(|policy| serde_json::from_str(policy).unwrap());
        found.push((arn, filter));
    }
    found
}

#[tokio::test]
async fn filters_sns_would_refuse_leave_no_subscription() {
    let backend = sqs_backend();
    let queue = unique("sqs-badfilter");
    let topic = unique("sqs-badfilter-t");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.declare_topic(&topic).await.unwrap();
    let too_many: Vec<String> = (0..151).map(|i| format!("M{i}")).collect();
    for filter in [Vec::new(), too_many] {
        let error = backend
            .subscribe(&queue, &topic, Some(&filter))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &error,
                BackendError::InvalidRequest { target, reason, .. }
                    if *target == topic && reason.contains(&queue)
            ),
            "{error:?}"
        );
        // Nothing subscribed: an unfiltered subscription would flood the queue.
        assert_eq!(topic_subscriptions(&backend, &topic).await, Vec::new());
    }
    backend
        .publish_to_topic(&topic, message("{}", "json"))
        .await
        .unwrap();
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn subscribing_again_replaces_the_filter_of_the_one_subscription() {
    let backend = sqs_backend();
    let queue = unique("sqs-refilter");
    let topic = unique("sqs-refilter-t");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.declare_topic(&topic).await.unwrap();
    let only = |manifests: &[&str]| {
        manifests
            .iter()
            .map(|m| (*m).to_owned())
            .collect::<Vec<_>>()
    };

    backend
        .subscribe(&queue, &topic, Some(&only(&["A"])))
        .await
        .unwrap();
    let first = topic_subscriptions(&backend, &topic).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, Some(json!({ "manifest": ["A"] })));
    // Idempotent.
    backend
        .subscribe(&queue, &topic, Some(&only(&["A"])))
        .await
        .unwrap();
    assert_eq!(topic_subscriptions(&backend, &topic).await, first);

    backend
        .subscribe(&queue, &topic, Some(&only(&["B", "C"])))
        .await
        .unwrap();
    let changed = topic_subscriptions(&backend, &topic).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, first[0].0);
    assert_eq!(changed[0].1, Some(json!({ "manifest": ["B", "C"] })));
    backend
        .publish_to_topic(&topic, message("{}", "A"))
        .await
        .unwrap();
    backend
        .publish_to_topic(&topic, message("{}", "B"))
        .await
        .unwrap();
    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(received[0].manifest.as_deref(), Some("B"));

    backend.subscribe(&queue, &topic, None).await.unwrap();
    let cleared = topic_subscriptions(&backend, &topic).await;
    assert_eq!(cleared.len(), 1);
    assert!(
        cleared[0]
            .1
            .as_ref()
            .is_none_or(|filter| *filter == json!({})),
        "{cleared:?}"
    );
}

#[tokio::test]
async fn topics_are_declared_found_and_deleted() {
    let backend = sqs_backend();
    let topic = unique("sqs-topic");
    backend.declare_topic(&topic).await.unwrap();
    backend.declare_topic(&topic).await.unwrap();
    // A fresh backend has to find the topic by listing.
    let fresh = sqs_backend();
    let arn = fresh.topic_arn(&topic).await.unwrap();
    assert!(arn.ends_with(&format!(":{topic}")));
    fresh.delete_topic(&topic).await.unwrap();
    let error = fresh
        .publish_to_topic(&topic, message("{}", "json"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::TopicDoesNotExist { name, .. } if *name == topic),
        "{error:?}"
    );
    // The other backend's cached ARN is dropped when SNS says the topic is gone.
    let error = backend
        .publish_to_topic(&topic, message("{}", "json"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::TopicDoesNotExist { .. }),
        "{error:?}"
    );

    let fifo = format!("{}.fifo", unique("sqs-topic"));
    backend.declare_topic(&fifo).await.unwrap();
    let mut outgoing = message("{}", "json");
    outgoing.message_group_id = Some("g".into());
    backend.publish_to_topic(&fifo, outgoing).await.unwrap();
}

// ----- caches and errors -----

#[tokio::test]
async fn queue_urls_are_cached_and_dropped_when_the_queue_is_gone() {
    let backend = sqs_backend();
    let queue = unique("sqs-cache");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    assert!(backend.is_queue_cached(&queue));
    let url = backend.queue_url(&queue).await.unwrap();

    // Deleted behind the backend's back: the next call says so and forgets the URL.
    backend
        .sqs_client()
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    let error = backend
        .publish_to_queue(&queue, message("{}", "json"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::QueueDoesNotExist { name, source: Some(_) } if *name == queue),
        "{error:?}"
    );
    assert!(error.source().is_some());
    assert!(!backend.is_queue_cached(&queue));

    // A fresh backend looks the URL up once.
    let other = unique("sqs-cache");
    backend
        .declare_queue(&QueueSpec::new(&other))
        .await
        .unwrap();
    let fresh = sqs_backend();
    assert!(!fresh.is_queue_cached(&other));
    fresh
        .publish_to_queue(&other, message("{}", "json"))
        .await
        .unwrap();
    assert!(fresh.is_queue_cached(&other));
    fresh.clear_cache();
    assert!(!fresh.is_queue_cached(&other));
}

#[tokio::test]
async fn missing_queues_are_named_in_errors() {
    let backend = sqs_backend();
    let queue = unique("sqs-missing");
    let error = backend
        .receive(&queue, &melange::ReceiveOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::QueueDoesNotExist { name, .. } if *name == queue),
        "{error:?}"
    );
    assert!(error.to_string().contains(&queue));
    let error = backend
        .publish_batch_to_queue(&queue, vec![message("{}", "json")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::QueueDoesNotExist { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn too_large_messages_are_refused_before_sending() {
    let backend = sqs_backend();
    // The queue does not even exist: the size is checked first.
    let queue = unique("sqs-large");
    let huge = "x".repeat(SQS_MAX_MESSAGE_SIZE);
    let error = backend
        .publish_to_queue(&queue, message(&huge, "json"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::MessageTooLarge { target, limit: 1_048_576, size }
            if *target == queue && *size > 1_048_576),
        "{error:?}"
    );
    let topic = unique("sqs-large-topic");
    let error = backend
        .publish_to_topic(&topic, message(&"y".repeat(262_144), "json"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::MessageTooLarge { limit: 262_144, .. }),
        "{error:?}"
    );

    // Just under the limit goes through.
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let fits = "z".repeat(SQS_MAX_MESSAGE_SIZE - 200);
    backend
        .publish_to_queue(&queue, message(&fits, "json"))
        .await
        .unwrap();
    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    assert_eq!(received[0].content.len(), fits.len());
}

#[tokio::test]
async fn batch_failures_are_reported_per_entry_in_order() {
    let backend = sqs_backend();
    let queue = unique("sqs-batch");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    let too_large = "x".repeat(SQS_MAX_MESSAGE_SIZE);
    let messages = vec![
        message(r#"{"n":0}"#, "json"),
        message(&too_large, "json"),
        message(r#"{"n":2}"#, "json"),
    ];
    let results = backend
        .publish_batch_to_queue(&queue, messages)
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(BackendError::MessageTooLarge { .. })),
        "{results:?}"
    );

    // Acknowledge a good receipt and a bogus one in one batch.
    let received = receive_envelopes(&backend, &queue, 2, LONG).await;
    assert_eq!(received.len(), 2);
    let receipts = vec![
        received[0].delivery.receipt.clone(),
        ReceiptHandle::new("bogus-receipt"),
        received[1].delivery.receipt.clone(),
    ];
    let acks = backend.acknowledge_batch(&queue, &receipts).await.unwrap();
    assert_eq!(acks.len(), 3);
    assert!(acks[0].is_ok() && acks[2].is_ok(), "{acks:?}");
    let error = acks[1].as_ref().unwrap_err();
    assert!(
        matches!(error, BackendError::InvalidReceipt { queue: q, .. } if *q == queue),
        "{error:?}"
    );
    let entry = error
        .source()
        .and_then(|s| s.downcast_ref::<BatchEntryError>())
        .expect("the batch entry's error as source");
    assert!(entry.sender_fault);
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn topic_batches_fan_out() {
    let backend = sqs_backend();
    let topic = unique("sqs-topic-batch");
    let queue = unique("sqs-topic-batch-q");
    backend.declare_topic(&topic).await.unwrap();
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend.subscribe(&queue, &topic, None).await.unwrap();
    let messages: Vec<OutgoingMessage> = (0..12)
        .map(|i| message(&format!(r#"{{"n":{i}}}"#), "json"))
        .collect();
    let results = backend
        .publish_batch_to_topic(&topic, messages)
        .await
        .unwrap();
    assert_eq!(results.len(), 12);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let received = receive_envelopes(&backend, &queue, 12, Duration::from_secs(60)).await;
    let mut numbers: Vec<i64> = received
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.content).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers, (0..12).collect::<Vec<_>>());
}

#[tokio::test]
async fn visibility_changes_and_invalid_receipts() {
    let backend = sqs_backend();
    let queue = unique("sqs-visibility");
    backend
        .declare_queue(&QueueSpec::new(&queue))
        .await
        .unwrap();
    backend
        .publish_to_queue(&queue, message("{}", "json"))
        .await
        .unwrap();
    let received = receive_envelopes(&backend, &queue, 1, LONG).await;
    let receipt = &received[0].delivery.receipt;
    backend
        .change_visibility(&queue, receipt, Duration::from_secs(60))
        .await
        .unwrap();
    assert_empty(&backend, &queue, Duration::from_secs(1)).await;
    let error = backend
        .change_visibility(
            &queue,
            receipt,
            melange::backend::MAX_VISIBILITY_TIMEOUT * 2,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::InvalidRequest { .. }),
        "{error:?}"
    );
    let error = backend
        .change_visibility(&queue, &ReceiptHandle::new("bogus"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::InvalidReceipt { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn unreachable_servers_are_unavailable() {
    // Nothing listens on port 9 (discard) here; retries run out quickly.
    let backend = ElasticMqBackend::new("127.0.0.1", 9).unwrap();
    let error = backend.get_queue("anything").await.unwrap_err();
    assert!(
        matches!(error, BackendError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_wait_under_a_second_is_a_one_second_long_poll_not_a_short_poll() {
    let (endpoint, requests) = scripted_server(|head, _| Canned {
        status: "200 OK",
        content_type: "application/x-amz-json-1.0",
        extra_header: "",
        body: if head.contains("x-amz-target: amazonsqs.getqueueurl") {
            r#"{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/orders"}"#
        } else {
            r#"{"Messages":[]}"#
        }
        .to_owned(),
    })
    .await;
    let backend = ElasticMqBackend::from_endpoint(endpoint).unwrap();
    for (wait, sent) in [
        (Duration::from_millis(200), 1),
        (Duration::from_millis(1500), 2),
        (Duration::ZERO, 0),
        (Duration::from_secs(60), 20),
    ] {
        let options = ReceiveOptions {
            wait_time: wait,
            ..ReceiveOptions::default()
        };
        backend.receive("orders", &options).await.unwrap();
        let (_, body) = requests.lock().unwrap().pop().unwrap();
        let request: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(request["WaitTimeSeconds"], sent, "{wait:?}: {body}");
    }
}

/// An HTTP response of a [`scripted_server`].
struct Canned {
    status: &'static str,
    content_type: &'static str,
    extra_header: &'static str,
    body: String,
}

/// A request a [`scripted_server`] received: its head (lowercased) and its body.
type Request = (String, String);

/// A server that answers each request with what `answer` makes of it (head lowercased,
/// body), to see how the SDK reports what only AWS (or a proxy in front of it) sends; its
/// endpoint URL, and the requests it received.
async fn scripted_server(
    answer: impl Fn(&str, &str) -> Canned + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (answer, received) = (Arc::new(answer), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (answer, received) = (answer.clone(), received.clone());
            tokio::spawn(async move {
                // Read the request head and its body, then answer and close.
                let mut request = Vec::new();
                let mut chunk = [0; 4096];
                let head_end = loop {
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&request[head_end..]).into_owned();
                let canned = answer(&head, &body);
                received.lock().unwrap().push((head, body));
                let response = format!(
                    "HTTP/1.1 {}\r\ncontent-type: {}\r\n{}content-length: {}\r\n\
                     connection: close\r\n\r\n{}",
                    canned.status,
                    canned.content_type,
                    canned.extra_header,
                    canned.body.len(),
                    canned.body
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), requests)
}

/// A server that answers every request with one canned HTTP response; its endpoint URL.
async fn canned_server(
    status: &'static str,
    content_type: &'static str,
    extra_header: &'static str,
    body: &'static str,
) -> String {
    let (endpoint, _) = scripted_server(move |_, _| Canned {
        status,
        content_type,
        extra_header,
        body: body.to_owned(),
    })
    .await;
    endpoint
}

/// A server speaking just enough SQS and SNS for `subscribe`, answering `Subscribe` as AWS
/// does when the subscription exists with other attributes, and listing the topic's
/// subscriptions as `existing` (a `<member>` list).
async fn refusing_subscribe_server(existing: &'static str) -> (String, Arc<Mutex<Vec<Request>>>) {
    const SNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
    scripted_server(move |head, body| {
        let ok = |content_type, body: String| Canned {
            status: "200 OK",
            content_type,
            extra_header: "",
            body,
        };
        let sns = |action: &str, result: &str| {
            ok(
                "text/xml",
                format!(
                    "<{action}Response xmlns=\"{SNS}\"><{action}Result>{result}</{action}Result>\
                     <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>\
                     </{action}Response>"
                ),
            )
        };
        if head.contains("x-amz-target: amazonsqs.getqueueurl") {
            ok(
                "application/x-amz-json-1.0",
                r#"{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/orders"}"#
                    .to_owned(),
            )
        } else if head.contains("x-amz-target: amazonsqs.getqueueattributes") {
            ok(
                "application/x-amz-json-1.0",
                r#"{"Attributes":{"QueueArn":"arn:aws:sqs:us-east-1:123456789012:orders"}}"#
                    .to_owned(),
            )
        } else if head.contains("x-amz-target: amazonsqs.") {
            ok("application/x-amz-json-1.0", "{}".to_owned())
        } else if body.contains("Action=ListTopics") {
            sns(
                "ListTopics",
                "<Topics><member><TopicArn>arn:aws:sns:us-east-1:123456789012:events</TopicArn>\
                 </member></Topics>",
            )
        } else if body.contains("Action=Subscribe") {
            Canned {
                status: "400 Bad Request",
                content_type: "text/xml",
                extra_header: "",
                body: format!(
                    "<ErrorResponse xmlns=\"{SNS}\"><Error><Type>Sender</Type>\
                     <Code>InvalidParameter</Code><Message>Invalid parameter: Attributes \
                     Reason: Subscription already exists with different attributes</Message>\
                     </Error><RequestId>1</RequestId></ErrorResponse>"
                ),
            }
        } else if body.contains("Action=ListSubscriptionsByTopic") {
            sns(
                "ListSubscriptionsByTopic",
                &format!("<Subscriptions>{existing}</Subscriptions>"),
            )
        } else if body.contains("Action=SetSubscriptionAttributes") {
            ok(
                "text/xml",
                format!(
                    "<SetSubscriptionAttributesResponse xmlns=\"{SNS}\"><ResponseMetadata>\
                     <RequestId>1</RequestId></ResponseMetadata>\
                     </SetSubscriptionAttributesResponse>"
                ),
            )
        } else {
            Canned {
                status: "400 Bad Request",
                content_type: "text/plain",
                extra_header: "",
                body: "unexpected request".to_owned(),
            }
        }
    })
    .await
}

/// The SNS actions among these requests, in order.
fn sns_actions(requests: &Mutex<Vec<Request>>) -> Vec<String> {
    requests
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, body)| {
            body.split('&')
                .find_map(|pair| pair.strip_prefix("Action="))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn a_changed_filter_on_aws_goes_to_the_existing_subscription() {
    let existing = "<member><TopicArn>arn:aws:sns:us-east-1:123456789012:events</TopicArn>\
        <Protocol>sqs</Protocol><SubscriptionArn>arn:aws:sns:us-east-1:123456789012:events:\
        0b4d</SubscriptionArn><Owner>123456789012</Owner><Endpoint>arn:aws:sqs:us-east-1:\
        123456789012:orders</Endpoint></member>";
    let (endpoint, requests) = refusing_subscribe_server(existing).await;
    let backend = ElasticMqBackend::from_endpoint(endpoint).unwrap();
    backend
        .subscribe("orders", "events", Some(&["B".to_owned()]))
        .await
        .unwrap();
    assert_eq!(
        sns_actions(&requests),
        [
            "ListTopics",
            "Subscribe",
            "ListSubscriptionsByTopic",
            "SetSubscriptionAttributes"
        ]
    );
    let requests = requests.lock().unwrap();
    let body_of = |action: &str| {
        requests
            .iter()
            .map(|(_, body)| body.as_str())
            .find(|body| body.contains(&format!("Action={action}&")))
            .unwrap()
            .to_owned()
    };
    // The filter went with Subscribe, then to the existing subscription.
    let subscribe = body_of("Subscribe");
    assert!(
        subscribe.contains("Attributes.entry.1.key=FilterPolicy"),
        "{subscribe}"
    );
    let set = body_of("SetSubscriptionAttributes");
    assert!(set.contains("events%3A0b4d"), "{set}");
    assert!(set.contains("AttributeName=FilterPolicy"), "{set}");
    assert!(set.contains("%22B%22"), "{set}");
}

#[tokio::test]
async fn a_refused_subscribe_without_a_subscription_is_an_error() {
    let (endpoint, requests) = refusing_subscribe_server("").await;
    let backend = ElasticMqBackend::from_endpoint(endpoint).unwrap();
    let error = backend
        .subscribe("orders", "events", Some(&["B".to_owned()]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            BackendError::InvalidRequest { target, reason, .. }
                if target == "events" && reason.contains("different attributes")
        ),
        "{error:?}"
    );
    assert_eq!(
        sns_actions(&requests),
        ["ListTopics", "Subscribe", "ListSubscriptionsByTopic"]
    );
}

/// The messages of an error and of its sources, outermost first.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(error), |e| (*e).source())
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn kms_throttling_is_transient_as_the_sdks_report_it() {
    // SQS answers in JSON and names the query code in `x-amzn-query-error`.
    let sqs = canned_server(
        "400 Bad Request",
        "application/x-amz-json-1.0",
        "x-amzn-query-error: KMS.ThrottlingException;Sender\r\n",
        r#"{"__type":"com.amazonaws.sqs#KmsThrottled","message":"Rate exceeded"}"#,
    )
    .await;
    let backend = ElasticMqBackend::from_endpoint(sqs).unwrap();
    let error = backend.get_queue("orders").await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Throttled { target, .. } if target == "orders"),
        "{error:?}"
    );
    assert!(error.is_transient());

    // SNS answers in XML with its own code.
    let sns = canned_server(
        "400 Bad Request",
        "text/xml",
        "",
        r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>KMSThrottling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"#,
    )
    .await;
    let backend = ElasticMqBackend::from_endpoint(sns).unwrap();
    let error = backend
        .publish_to_topic("events", message("{}", "json"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::Throttled { target, .. } if target == "events"),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_proxys_error_page_is_transient_and_names_its_status() {
    let proxy = canned_server(
        "502 Bad Gateway",
        "text/html",
        "",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    )
    .await;
    let backend = ElasticMqBackend::from_endpoint(proxy).unwrap();
    let error = backend.get_queue("orders").await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Unavailable { target, .. } if target == "orders"),
        "{error:?}"
    );
    assert!(error.is_transient());
    let messages = error_chain(&error);
    assert!(
        messages.iter().any(|m| m.contains("HTTP 502")),
        "{messages:?}"
    );
    let error = backend
        .publish_to_topic("events", message("{}", "json"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::Unavailable { target, .. } if target == "events"),
        "{error:?}"
    );
}

// ----- golden vectors -----

fn vectors() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/python-melange-7.2.0");
    let mut vectors: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    vectors.sort_by(|a, b| a.0.cmp(&b.0));
    vectors
}

fn decode_vector_message(raw: &Value) -> wire::WireMessage {
    let attributes: HashMap<String, Attribute> = raw["MessageAttributes"]
        .as_object()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, a)| {
                    (
                        name.clone(),
                        Attribute {
                            data_type: a["DataType"].as_str().unwrap().to_owned(),
                            string_value: a["StringValue"].as_str().map(str::to_owned),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    wire::decode(
        raw["Body"].as_str().unwrap(),
        &attributes,
        SQS_MAX_MESSAGE_SIZE,
    )
    .unwrap()
}

/// What each captured message decodes to: (content, manifest, serializer id, format).
fn expected(file: &str, index: usize, vector: &Value) -> (Value, &'static str, u32, BodyFormat) {
    match (file, index) {
        ("queue-json.json", 0) => (
            vector["expected_content"].clone(),
            "json",
            1,
            BodyFormat::Melange,
        ),
        ("fifo-queue.json", n) => (
            json!({ "kind": "fifo", "seq": n + 1 }),
            "json",
            1,
            BodyFormat::Melange,
        ),
        ("topic-envelope.json", 0) => (
            json!({ "kind": "via-topic" }),
            "json",
            1,
            BodyFormat::SnsNotification,
        ),
        ("topic-envelope.json", 1) => (
            json!({ "kind": "via-topic-subject" }),
            "json",
            1,
            BodyFormat::SnsNotification,
        ),
        ("topic-envelope.json", 2) => (Value::Null, "OrderCreated", 2, BodyFormat::SnsNotification),
        ("queue-pickle.json", 0) => (Value::Null, "OrderCreated", 2, BodyFormat::Melange),
        other => panic!("no expectation for vector {other:?}: add one"),
    }
}

#[test]
fn python_melange_vectors_decode() {
    let vectors = vectors();
    assert!(vectors.len() >= 4, "vectors missing: {vectors:?}");
    let registry = melange::SerializerRegistry::default();
    for (file, vector) in &vectors {
        let messages = vector["sqs_messages"].as_array().unwrap();
        assert!(!messages.is_empty(), "{file}");
        for (index, raw) in messages.iter().enumerate() {
            let decoded = decode_vector_message(raw);
            let (content, manifest, serializer_id, format) = expected(file, index, vector);
            assert_eq!(
                decoded.manifest.as_deref(),
                Some(manifest),
                "{file} #{index}"
            );
            assert_eq!(
                decoded.serializer_id,
                Some(serializer_id),
                "{file} #{index}"
            );
            assert_eq!(decoded.format, format, "{file} #{index}");
            if serializer_id == 1 {
                let value: Value = registry
                    .deserialize(
                        &decoded.content,
                        decoded.serializer_id,
                        decoded.manifest.as_deref(),
                    )
                    .unwrap();
                assert_eq!(value, content, "{file} #{index}");
            } else {
                // Pickles travel as base64 text, unchanged.
                assert!(decoded.content.starts_with("gASV"), "{file} #{index}");
            }
            // The message id an envelope carries is the SQS one.
            assert!(raw["MessageId"].as_str().is_some_and(|id| !id.is_empty()));
        }
    }
}

#[test]
fn rust_queue_bodies_match_python_melange_byte_for_byte_in_meaning() {
    // Python's json.dumps escapes non-ASCII; the meaning is what counts on the wire.
    let vector = &vectors()
        .into_iter()
        .find(|(name, _)| name == "queue-json.json")
        .unwrap()
        .1;
    let raw = &vector["sqs_messages"][0];
    let python_body: Value = serde_json::from_str(raw["Body"].as_str().unwrap()).unwrap();
    let content = python_body["Message"].as_str().unwrap();
    let rust_body: Value = serde_json::from_str(&wire::queue_body(content)).unwrap();
    assert_eq!(rust_body, python_body);
}
