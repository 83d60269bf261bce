//! Behaviour of the in-memory backend, under tokio's paused clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::{Instant, advance};

use super::*;
use crate::envelope::Envelope;

const QUEUE: &str = "orders";

fn message(content: &str) -> OutgoingMessage {
    OutgoingMessage::new(content, "OrderCreated", 1)
}

fn grouped(content: &str, group: &str) -> OutgoingMessage {
    let mut message = message(content);
    message.message_group_id = Some(group.to_owned());
    message
}

fn now_options(max_messages: u32) -> ReceiveOptions {
    ReceiveOptions {
        max_messages,
        wait_time: Duration::ZERO,
        visibility_timeout: None,
    }
}

async fn receive(backend: &InMemoryBackend, queue: &str, max_messages: u32) -> Vec<Envelope> {
    backend
        .receive(queue, &now_options(max_messages))
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn contents(envelopes: &[Envelope]) -> Vec<&str> {
    envelopes.iter().map(|e| &*e.content).collect()
}

async fn backend_with(spec: QueueSpec) -> InMemoryBackend {
    let backend = InMemoryBackend::new();
    backend.declare_queue(&spec).await.unwrap();
    backend
}

#[tokio::test(start_paused = true)]
async fn redelivers_after_the_visibility_timeout_with_an_increasing_receive_count() {
    let backend =
        backend_with(QueueSpec::new(QUEUE).visibility_timeout(Duration::from_secs(10))).await;
    let id = backend
        .publish_to_queue(QUEUE, message("one"))
        .await
        .unwrap();

    let first = receive(&backend, QUEUE, 10).await;
    assert_eq!(first.len(), 1);
    assert_eq!(&*first[0].message_id, id);
    assert_eq!(first[0].delivery.receive_count, 1);
    assert!(receive(&backend, QUEUE, 10).await.is_empty(), "in flight");
    let stats = backend.queue_stats(QUEUE).unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 1));

    advance(Duration::from_secs(9)).await;
    assert!(receive(&backend, QUEUE, 10).await.is_empty());
    advance(Duration::from_secs(1)).await;
    let second = receive(&backend, QUEUE, 10).await;
    assert_eq!(&*second[0].message_id, id);
    assert_eq!(second[0].delivery.receive_count, 2);
    assert_ne!(second[0].delivery.receipt, first[0].delivery.receipt);

    advance(Duration::from_secs(10)).await;
    let third = receive(&backend, QUEUE, 10).await;
    assert_eq!(third[0].delivery.receive_count, 3);

    // Older receipts are stale; the latest one deletes the message.
    for stale in [&first[0], &second[0]] {
        let error = backend
            .acknowledge(QUEUE, &stale.delivery.receipt)
            .await
            .unwrap_err();
        assert!(matches!(error, BackendError::InvalidReceipt { ref queue, .. } if queue == QUEUE));
    }
    backend
        .acknowledge(QUEUE, &third[0].delivery.receipt)
        .await
        .unwrap();
    let stats = backend.queue_stats(QUEUE).unwrap();
    assert!(stats.is_empty());
    assert_eq!((stats.enqueued, stats.acknowledged), (1, 1));
    advance(Duration::from_secs(60)).await;
    assert!(receive(&backend, QUEUE, 10).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn receive_options_override_the_queue_visibility_timeout() {
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    backend
        .publish_to_queue(QUEUE, message("one"))
        .await
        .unwrap();
    let options = ReceiveOptions {
        visibility_timeout: Some(Duration::from_secs(2)),
        ..now_options(1)
    };
    assert_eq!(backend.receive(QUEUE, &options).await.unwrap().len(), 1);
    advance(Duration::from_secs(2)).await;
    assert_eq!(receive(&backend, QUEUE, 1).await.len(), 1);
    // The backend default (30 s) applies without an override.
    advance(Duration::from_secs(29)).await;
    assert!(receive(&backend, QUEUE, 1).await.is_empty());
    advance(Duration::from_secs(1)).await;
    assert_eq!(receive(&backend, QUEUE, 1).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn acknowledging_after_the_timeout_works_until_the_message_is_received_again() {
    let backend =
        backend_with(QueueSpec::new(QUEUE).visibility_timeout(Duration::from_secs(5))).await;
    backend
        .publish_to_queue(QUEUE, message("one"))
        .await
        .unwrap();
    backend
        .publish_to_queue(QUEUE, message("two"))
        .await
        .unwrap();
    let received = receive(&backend, QUEUE, 10).await;
    advance(Duration::from_secs(6)).await;
    assert_eq!(backend.queue_stats(QUEUE).unwrap().visible, 2);
    // As on SQS: the latest receipt still deletes a message nobody received since.
    backend
        .acknowledge(QUEUE, &received[0].delivery.receipt)
        .await
        .unwrap();
    // But changing its visibility needs it to be in flight.
    let error = backend
        .change_visibility(QUEUE, &received[1].delivery.receipt, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidReceipt { .. }));
    assert_eq!(contents(&receive(&backend, QUEUE, 10).await), ["two"]);
}

#[tokio::test(start_paused = true)]
async fn change_visibility_releases_and_extends() {
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    backend
        .publish_to_queue(QUEUE, message("one"))
        .await
        .unwrap();
    let first = receive(&backend, QUEUE, 1).await.remove(0);

    // Zero releases at once.
    backend
        .change_visibility(QUEUE, &first.delivery.receipt, Duration::ZERO)
        .await
        .unwrap();
    let second = receive(&backend, QUEUE, 1).await.remove(0);
    assert_eq!(second.delivery.receive_count, 2);
    let error = backend
        .change_visibility(QUEUE, &first.delivery.receipt, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidReceipt { .. }));

    // Extending counts from now.
    advance(Duration::from_secs(20)).await;
    backend
        .change_visibility(QUEUE, &second.delivery.receipt, Duration::from_secs(60))
        .await
        .unwrap();
    advance(Duration::from_secs(59)).await;
    assert!(receive(&backend, QUEUE, 1).await.is_empty());
    advance(Duration::from_secs(1)).await;
    let third = receive(&backend, QUEUE, 1).await.remove(0);
    assert_eq!(third.delivery.receive_count, 3);

    // Over 12 hours at once, or 12 hours after the receive in total, is refused.
    let error = backend
        .change_visibility(
            QUEUE,
            &third.delivery.receipt,
            MAX_VISIBILITY_TIMEOUT + Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
    let hours = |h: u64| Duration::from_secs(h * 60 * 60);
    backend
        .change_visibility(QUEUE, &third.delivery.receipt, hours(11))
        .await
        .unwrap();
    advance(hours(10)).await;
    let error = backend
        .change_visibility(QUEUE, &third.delivery.receipt, hours(3))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
    backend
        .change_visibility(QUEUE, &third.delivery.receipt, hours(2))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn redrives_to_the_dead_letter_queue_after_max_receives() {
    let backend = backend_with(
        QueueSpec::new(QUEUE)
            .visibility_timeout(Duration::from_secs(1))
            .dead_letter_queue("orders-dlq", 2),
    )
    .await;
    // The dead-letter queue was declared along.
    let dlq = backend.get_queue("orders-dlq").await.unwrap();
    assert_eq!(dlq.visibility_timeout, DEFAULT_VISIBILITY_TIMEOUT);
    let id = backend
        .publish_to_queue(QUEUE, message("poison"))
        .await
        .unwrap();
    backend
        .publish_to_queue(QUEUE, message("fine"))
        .await
        .unwrap();

    for count in 1..=2 {
        let received = receive(&backend, QUEUE, 1).await;
        assert_eq!(contents(&received), ["poison"]);
        assert_eq!(received[0].delivery.receive_count, count);
        advance(Duration::from_secs(1)).await;
    }
    // The third receive moves it instead, and goes on with the next message.
    assert_eq!(contents(&receive(&backend, QUEUE, 1).await), ["fine"]);
    let stats = backend.queue_stats(QUEUE).unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_lettered),
        (0, 1, 1)
    );
    let dlq_stats = backend.queue_stats("orders-dlq").unwrap();
    assert_eq!((dlq_stats.visible, dlq_stats.enqueued), (1, 1));

    let dead = receive(&backend, "orders-dlq", 10).await;
    assert_eq!(&*dead[0].message_id, id);
    assert_eq!(dead[0].delivery.receive_count, 3);
    assert_eq!(&*dead[0].delivery.queue, "orders-dlq");
}

#[tokio::test(start_paused = true)]
async fn fifo_delivers_groups_in_order_and_locks_a_group_in_flight() {
    let queue = "orders.fifo";
    let backend = backend_with(QueueSpec::new(queue)).await;
    for (content, group) in [
        ("a1", "a"),
        ("b1", "b"),
        ("a2", "a"),
        ("a3", "a"),
        ("b2", "b"),
    ] {
        backend
            .publish_to_queue(queue, grouped(content, group))
            .await
            .unwrap();
    }
    let first = receive(&backend, queue, 1).await;
    assert_eq!(contents(&first), ["a1"]);
    assert_eq!(first[0].delivery.message_group_id.as_deref(), Some("a"));
    // Group a is locked while a1 is in flight; group b is not.
    let others = receive(&backend, queue, 10).await;
    assert_eq!(contents(&others), ["b1", "b2"]);
    assert!(receive(&backend, queue, 10).await.is_empty());
    assert_eq!(backend.queue_stats(queue).unwrap().locked_groups, 2);

    backend
        .acknowledge(queue, &first[0].delivery.receipt)
        .await
        .unwrap();
    // One receive may return several messages of a group, in order.
    let rest = receive(&backend, queue, 10).await;
    assert_eq!(contents(&rest), ["a2", "a3"]);

    // An unacknowledged message comes back first in its group.
    backend
        .change_visibility(queue, &rest[0].delivery.receipt, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        receive(&backend, queue, 10).await.is_empty(),
        "a3 still in flight"
    );
    advance(DEFAULT_VISIBILITY_TIMEOUT).await;
    // Groups are served oldest message first (b1 is older than a2), each in order.
    let again = receive(&backend, queue, 10).await;
    assert_eq!(contents(&again), ["b1", "b2", "a2", "a3"]);
    assert_eq!(again[2].delivery.receive_count, 2);
}

#[tokio::test(start_paused = true)]
async fn fifo_rejects_messages_without_group_or_deduplication() {
    let backend =
        backend_with(QueueSpec::new("strict.fifo").content_based_deduplication(false)).await;
    backend.declare_queue(&QueueSpec::new(QUEUE)).await.unwrap();

    let error = backend
        .publish_to_queue("strict.fifo", message("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::InvalidRequest { ref target, .. } if target == "strict.fifo")
    );
    let error = backend
        .publish_to_queue("strict.fifo", grouped("x", "g"))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
    let mut with_id = grouped("x", "g");
    with_id.deduplication_id = Some("id-1".to_owned());
    backend
        .publish_to_queue("strict.fifo", with_id.clone())
        .await
        .unwrap();
    // A deduplication id is for FIFO queues only.
    let error = backend.publish_to_queue(QUEUE, with_id).await.unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
}

#[tokio::test(start_paused = true)]
async fn fifo_deduplicates_within_five_minutes() {
    let queue = "orders.fifo";
    let backend = backend_with(QueueSpec::new(queue)).await;
    let mut explicit = grouped("body-1", "g");
    explicit.deduplication_id = Some("order-1".to_owned());
    let id = backend
        .publish_to_queue(queue, explicit.clone())
        .await
        .unwrap();
    // Same deduplication id, other body: a duplicate.
    let mut same_id = grouped("body-2", "g");
    same_id.deduplication_id = Some("order-1".to_owned());
    assert_eq!(backend.publish_to_queue(queue, same_id).await.unwrap(), id);
    // Content-based: the same body without an id.
    let content_id = backend
        .publish_to_queue(queue, grouped("body-3", "g"))
        .await
        .unwrap();
    advance(Duration::from_secs(299)).await;
    assert_eq!(
        backend
            .publish_to_queue(queue, grouped("body-3", "other"))
            .await
            .unwrap(),
        content_id
    );
    let stats = backend.queue_stats(queue).unwrap();
    assert_eq!((stats.enqueued, stats.visible), (2, 2));

    // Once the window has passed, the same id is a new message.
    advance(Duration::from_secs(1)).await;
    let new_id = backend.publish_to_queue(queue, explicit).await.unwrap();
    assert_ne!(new_id, id);
    assert_eq!(backend.queue_stats(queue).unwrap().enqueued, 3);
    let received = receive(&backend, queue, 10).await;
    assert_eq!(contents(&received), ["body-1", "body-3", "body-1"]);
}

#[tokio::test(start_paused = true)]
async fn topics_fan_out_through_manifest_filters() {
    let backend = InMemoryBackend::new();
    backend.declare_topic("events").await.unwrap();
    for queue in ["all", "created"] {
        backend.declare_queue(&QueueSpec::new(queue)).await.unwrap();
    }
    backend.subscribe("all", "events", None).await.unwrap();
    let filter = ["OrderCreated".to_owned()];
    backend
        .subscribe("created", "events", Some(&filter))
        .await
        .unwrap();

    let mut no_manifest = message("plain");
    no_manifest.manifest = None;
    let results = backend
        .publish_batch_to_topic(
            "events",
            vec![
                message("created"),
                OutgoingMessage::new("paid", "OrderPaid", 1),
                no_manifest,
            ],
        )
        .await
        .unwrap();
    let topic_ids: Vec<String> = results.into_iter().map(Result::unwrap).collect();

    let all = receive(&backend, "all", 10).await;
    assert_eq!(contents(&all), ["created", "paid", "plain"]);
    assert_eq!(all[2].manifest, None);
    assert_eq!(all[2].serializer_id, None);
    let created = receive(&backend, "created", 10).await;
    assert_eq!(contents(&created), ["created"]);
    // Every copy has its own message id, as SNS → SQS.
    assert_ne!(all[0].message_id, created[0].message_id);
    assert!(!topic_ids.iter().any(|id| **id == *all[0].message_id));

    // Subscribing again replaces the filter.
    let filter = ["OrderPaid".to_owned()];
    backend
        .subscribe("created", "events", Some(&filter))
        .await
        .unwrap();
    backend
        .publish_to_topic("events", message("created-again"))
        .await
        .unwrap();
    assert!(receive(&backend, "created", 10).await.is_empty());
    assert_eq!(backend.subscriptions("events").unwrap().len(), 2);

    // Deleting a queue drops its subscriptions.
    backend.delete_queue("created").await.unwrap();
    let subscriptions = backend.subscriptions("events").unwrap();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].queue, "all");
    assert_eq!(subscriptions[0].manifest_filter, None);
}

#[tokio::test(start_paused = true)]
async fn subscriptions_follow_sns_rules() {
    let backend = InMemoryBackend::new();
    backend.declare_topic("events").await.unwrap();
    backend.declare_topic("events.fifo").await.unwrap();
    backend
        .declare_queue(&QueueSpec::new("orders.fifo"))
        .await
        .unwrap();
    let error = backend
        .subscribe("orders.fifo", "events", None)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
    let error = backend
        .subscribe("orders.fifo", "events.fifo", Some(&[]))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
    backend
        .subscribe("orders.fifo", "events.fifo", None)
        .await
        .unwrap();

    // FIFO topics need a group id, and deduplicate like FIFO queues.
    let error = backend
        .publish_to_topic("events.fifo", message("x"))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
    let first = backend
        .publish_to_topic("events.fifo", grouped("x", "g"))
        .await
        .unwrap();
    let again = backend
        .publish_to_topic("events.fifo", grouped("x", "g"))
        .await
        .unwrap();
    assert_eq!(first, again);
    let received = receive(&backend, "orders.fifo", 10).await;
    assert_eq!(contents(&received), ["x"]);
    assert_eq!(received[0].delivery.message_group_id.as_deref(), Some("g"));
}

#[tokio::test(start_paused = true)]
async fn long_poll_wakes_on_a_publish_from_another_task() {
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    let start = Instant::now();
    let publisher = {
        let backend = backend.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            backend
                .publish_to_queue(QUEUE, message("late"))
                .await
                .unwrap();
        })
    };
    let options = ReceiveOptions {
        wait_time: Duration::from_secs(20),
        ..now_options(10)
    };
    let received = backend.receive(QUEUE, &options).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    publisher.await.unwrap();

    // With a message waiting, a long poll returns at once.
    backend
        .publish_to_queue(QUEUE, message("ready"))
        .await
        .unwrap();
    let start = Instant::now();
    assert_eq!(backend.receive(QUEUE, &options).await.unwrap().len(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // With none, it returns empty after its wait time.
    let received = backend.receive(QUEUE, &options).await.unwrap();
    assert!(received.is_empty());
    assert_eq!(start.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn long_poll_wakes_when_a_message_becomes_visible_again() {
    let backend =
        backend_with(QueueSpec::new(QUEUE).visibility_timeout(Duration::from_secs(5))).await;
    backend
        .publish_to_queue(QUEUE, message("one"))
        .await
        .unwrap();
    let first = receive(&backend, QUEUE, 1).await.remove(0);

    let start = Instant::now();
    let options = ReceiveOptions {
        wait_time: Duration::from_secs(20),
        ..now_options(10)
    };
    let received = backend.receive(QUEUE, &options).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let second = received.into_iter().next().unwrap().unwrap();
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.delivery.receive_count, 2);

    // A release by another task wakes a waiting receive too.
    let releaser = {
        let backend = backend.clone();
        let receipt = second.delivery.receipt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            backend
                .change_visibility(QUEUE, &receipt, Duration::ZERO)
                .await
                .unwrap();
        })
    };
    let start = Instant::now();
    let received = backend.receive(QUEUE, &options).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    releaser.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn long_poll_wakes_when_a_fifo_group_unlocks() {
    let queue = "orders.fifo";
    let backend = backend_with(QueueSpec::new(queue)).await;
    backend
        .publish_to_queue(queue, grouped("a1", "a"))
        .await
        .unwrap();
    backend
        .publish_to_queue(queue, grouped("a2", "a"))
        .await
        .unwrap();
    let first = receive(&backend, queue, 1).await.remove(0);
    let acker = {
        let backend = backend.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            backend
                .acknowledge(queue, &first.delivery.receipt)
                .await
                .unwrap();
        })
    };
    let start = Instant::now();
    let options = ReceiveOptions {
        wait_time: Duration::from_secs(20),
        ..now_options(10)
    };
    let received = backend.receive(queue, &options).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    acker.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_receive_waiting_on_a_deleted_queue_fails() {
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    let deleter = {
        let backend = backend.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            backend.delete_queue(QUEUE).await.unwrap();
            // Declared again: still not the queue the receive was waiting on.
            backend.declare_queue(&QueueSpec::new(QUEUE)).await.unwrap();
        })
    };
    let options = ReceiveOptions {
        wait_time: Duration::from_secs(20),
        ..now_options(10)
    };
    let start = Instant::now();
    let error = backend.receive(QUEUE, &options).await.unwrap_err();
    assert!(matches!(error, BackendError::QueueDoesNotExist { ref name, .. } if name == QUEUE));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    deleter.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn batches_report_one_result_per_entry() {
    let backend = InMemoryBackend::builder().max_message_size(100).build();
    backend.declare_queue(&QueueSpec::new(QUEUE)).await.unwrap();
    let results = backend
        .publish_batch_to_queue(
            QUEUE,
            vec![message("one"), message(&"x".repeat(100)), message("two")],
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(
        results[1],
        Err(BackendError::MessageTooLarge { limit: 100, .. })
    ));

    let received = receive(&backend, QUEUE, 10).await;
    assert_eq!(contents(&received), ["one", "two"]);
    let receipts = [
        received[0].delivery.receipt.clone(),
        ReceiptHandle::new("not-a-receipt"),
        received[1].delivery.receipt.clone(),
        received[0].delivery.receipt.clone(),
    ];
    let entries = [
        (receipts[0].clone(), Duration::from_secs(60)),
        (receipts[1].clone(), Duration::from_secs(60)),
        (receipts[2].clone(), MAX_VISIBILITY_TIMEOUT * 2),
    ];
    let changed = backend
        .change_visibility_batch(QUEUE, &entries)
        .await
        .unwrap();
    assert!(changed[0].is_ok());
    assert!(matches!(
        changed[1],
        Err(BackendError::InvalidReceipt { .. })
    ));
    assert!(matches!(
        changed[2],
        Err(BackendError::InvalidRequest { .. })
    ));

    let results = backend.acknowledge_batch(QUEUE, &receipts).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(
        results[1],
        Err(BackendError::InvalidReceipt { .. })
    ));
    assert!(
        matches!(results[3], Err(BackendError::InvalidReceipt { .. })),
        "already deleted"
    );
    assert!(backend.queue_stats(QUEUE).unwrap().is_empty());
    assert!(
        backend
            .acknowledge_batch(QUEUE, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn envelopes_carry_the_message_and_its_delivery() {
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    let mut outgoing = OutgoingMessage::new(r#"{"id":7}"#, "OrderCreated", 3);
    outgoing
        .attributes
        .insert("trace-id".to_owned(), "abc".to_owned());
    outgoing.message_group_id = Some("customer-1".to_owned());
    outgoing.subject = Some("ignored".to_owned());
    let id = backend.publish_to_queue(QUEUE, outgoing).await.unwrap();
    let mut plain = message("no manifest");
    plain.manifest = None;
    backend.publish_to_queue(QUEUE, plain).await.unwrap();

    let received = receive(&backend, QUEUE, 10).await;
    let envelope = &received[0];
    assert_eq!(&*envelope.message_id, id);
    assert_eq!(&*envelope.content, r#"{"id":7}"#);
    assert_eq!(envelope.manifest.as_deref(), Some("OrderCreated"));
    assert_eq!(envelope.serializer_id, Some(3));
    assert_eq!(&*envelope.delivery.queue, QUEUE);
    assert_eq!(envelope.delivery.receive_count, 1);
    assert_eq!(
        envelope.delivery.message_group_id.as_deref(),
        Some("customer-1")
    );
    assert_eq!(envelope.delivery.attributes.len(), 1);
    assert_eq!(envelope.delivery.attributes["trace-id"], "abc");
    assert_eq!(received[1].manifest, None);
    assert_eq!(received[1].serializer_id, None);
    assert_ne!(received[0].message_id, received[1].message_id);
}

#[tokio::test(start_paused = true)]
async fn missing_queues_and_topics_are_typed_errors() {
    let backend = InMemoryBackend::new();
    let missing_queue = |error: BackendError| {
        assert!(
            matches!(error, BackendError::QueueDoesNotExist { ref name, source: None } if name == "nope"),
            "{error:?}"
        );
    };
    let receipt = ReceiptHandle::new("r");
    missing_queue(backend.get_queue("nope").await.unwrap_err());
    missing_queue(backend.delete_queue("nope").await.unwrap_err());
    missing_queue(
        backend
            .publish_to_queue("nope", message("x"))
            .await
            .unwrap_err(),
    );
    missing_queue(
        backend
            .publish_batch_to_queue("nope", vec![message("x")])
            .await
            .unwrap_err(),
    );
    missing_queue(backend.receive("nope", &now_options(1)).await.unwrap_err());
    missing_queue(backend.acknowledge("nope", &receipt).await.unwrap_err());
    missing_queue(
        backend
            .change_visibility("nope", &receipt, Duration::ZERO)
            .await
            .unwrap_err(),
    );
    missing_queue(backend.queue_stats("nope").unwrap_err());

    let missing_topic = |error: BackendError| {
        assert!(
            matches!(error, BackendError::TopicDoesNotExist { ref name, source: None } if name == "none"),
            "{error:?}"
        );
    };
    backend.declare_queue(&QueueSpec::new(QUEUE)).await.unwrap();
    missing_topic(
        backend
            .publish_to_topic("none", message("x"))
            .await
            .unwrap_err(),
    );
    missing_topic(backend.delete_topic("none").await.unwrap_err());
    missing_topic(backend.subscribe(QUEUE, "none", None).await.unwrap_err());
    missing_topic(backend.subscriptions("none").unwrap_err());
    backend.declare_topic("events").await.unwrap();
    missing_queue(backend.subscribe("nope", "events", None).await.unwrap_err());

    // A deleted topic is gone.
    backend.delete_topic("events").await.unwrap();
    let error = backend
        .publish_to_topic("events", message("x"))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::TopicDoesNotExist { ref name, .. } if name == "events"));
}

#[tokio::test(start_paused = true)]
async fn invalid_requests_are_refused() {
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    let bad_options = [
        now_options(0),
        now_options(11),
        ReceiveOptions {
            wait_time: Duration::from_secs(21),
            ..now_options(1)
        },
        ReceiveOptions {
            visibility_timeout: Some(MAX_VISIBILITY_TIMEOUT + Duration::from_secs(1)),
            ..now_options(1)
        },
    ];
    for options in bad_options {
        let error = backend.receive(QUEUE, &options).await.unwrap_err();
        assert!(
            matches!(error, BackendError::InvalidRequest { ref target, .. } if target == QUEUE),
            "{options:?}: {error:?}"
        );
    }

    // Measured as melange-sqs measures what it sends: the `{"Message": ...}` body plus the
    // attributes' names, types and values.
    let fits =
        message(&"x".repeat(DEFAULT_MAX_MESSAGE_SIZE - QUEUE_BODY_WRAPPER - MELANGE_ATTRIBUTES));
    assert_eq!(fits.wire_size(), DEFAULT_MAX_MESSAGE_SIZE);
    let mut too_large = fits.clone();
    too_large.content.push('x');
    let error = backend
        .publish_to_queue(QUEUE, too_large)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            BackendError::MessageTooLarge { size, limit: DEFAULT_MAX_MESSAGE_SIZE, .. }
                if size == DEFAULT_MAX_MESSAGE_SIZE + 1
        ),
        "{error:?}"
    );
    backend.publish_to_queue(QUEUE, fits).await.unwrap();

    let mut many = message("x");
    for i in 0..9 {
        many.attributes.insert(format!("a{i}"), "v".to_owned());
    }
    let error = backend.publish_to_queue(QUEUE, many).await.unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));
    let mut reserved = message("x");
    reserved
        .attributes
        .insert("AWS.trace".to_owned(), "v".to_owned());
    let error = backend.publish_to_queue(QUEUE, reserved).await.unwrap_err();
    assert!(matches!(error, BackendError::InvalidRequest { .. }));

    for name in ["", ".fifo", "with space", "dotted.name", &"q".repeat(81)] {
        let error = backend
            .declare_queue(&QueueSpec::new(name))
            .await
            .unwrap_err();
        assert!(
            matches!(error, BackendError::InvalidName { .. }),
            "{name:?}"
        );
    }
    backend
        .declare_queue(&QueueSpec::new(format!("{}.fifo", "q".repeat(75))))
        .await
        .unwrap();
    let error = backend.declare_topic("bad topic").await.unwrap_err();
    assert!(matches!(error, BackendError::InvalidName { .. }));

    let refused = [
        QueueSpec::new("a.fifo").dead_letter_queue("a-dlq", 3),
        QueueSpec::new("b").dead_letter_queue("b-dlq.fifo", 3),
        QueueSpec::new("c").dead_letter_queue("c", 3),
        QueueSpec::new("d").dead_letter_queue("d-dlq", 0),
        QueueSpec::new("e").visibility_timeout(MAX_VISIBILITY_TIMEOUT * 2),
    ];
    for spec in refused {
        let error = backend.declare_queue(&spec).await.unwrap_err();
        assert!(
            matches!(error, BackendError::InvalidRequest { .. }),
            "{spec:?}"
        );
        assert!(backend.get_queue(&spec.name).await.is_err(), "{spec:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn declaring_is_idempotent_and_deleting_drops_messages() {
    let backend = InMemoryBackend::new();
    let spec = QueueSpec::new("jobs.fifo")
        .dead_letter_queue("jobs-dlq.fifo", 4)
        .visibility_timeout(Duration::from_secs(45));
    let info = backend.declare_queue(&spec).await.unwrap();
    assert!(info.fifo);
    assert_eq!(info.visibility_timeout, Duration::from_secs(45));
    assert_eq!(info.dead_letter.as_ref().unwrap().max_receive_count, 4);
    assert!(backend.get_queue("jobs-dlq.fifo").await.unwrap().fifo);

    backend
        .publish_to_queue("jobs.fifo", grouped("x", "g"))
        .await
        .unwrap();
    // Declaring again keeps the messages; unset settings keep their values.
    let again = backend
        .declare_queue(&QueueSpec::new("jobs.fifo"))
        .await
        .unwrap();
    assert_eq!(again, info);
    assert_eq!(backend.get_queue("jobs.fifo").await.unwrap(), info);
    assert_eq!(backend.queue_stats("jobs.fifo").unwrap().visible, 1);

    let received = receive(&backend, "jobs.fifo", 1).await;
    backend.delete_queue("jobs.fifo").await.unwrap();
    backend.declare_queue(&spec).await.unwrap();
    let stats = backend.queue_stats("jobs.fifo").unwrap();
    assert!(stats.is_empty());
    assert_eq!(stats.enqueued, 0);
    // A receipt from before the deletion is not valid on the new queue.
    let error = backend
        .acknowledge("jobs.fifo", &received[0].delivery.receipt)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::InvalidReceipt { .. }));
}

/// Runs `task` on its own thread with its own runtime, so the threads really run in parallel.
fn on_thread<T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(task)
    })
}

#[test]
fn concurrent_producers_and_consumers_lose_nothing() {
    const PRODUCERS: usize = 8;
    const PER_PRODUCER: usize = 1_000;
    const TOTAL: usize = PRODUCERS * PER_PRODUCER;
    let backend = InMemoryBackend::new();
    on_thread({
        let backend = backend.clone();
        async move { backend.declare_queue(&QueueSpec::new(QUEUE)).await }
    })
    .join()
    .unwrap()
    .unwrap();
    let acknowledged = Arc::new(AtomicUsize::new(0));

    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let backend = backend.clone();
            let acknowledged = acknowledged.clone();
            on_thread(async move {
                let options = ReceiveOptions {
                    wait_time: Duration::from_millis(50),
                    ..ReceiveOptions::default()
                };
                let mut seen = Vec::new();
                while acknowledged.load(Ordering::SeqCst) < TOTAL {
                    let received = backend.receive(QUEUE, &options).await.unwrap();
                    let envelopes: Vec<Envelope> =
                        received.into_iter().map(Result::unwrap).collect();
                    let receipts: Vec<ReceiptHandle> = envelopes
                        .iter()
                        .map(|e| e.delivery.receipt.clone())
                        .collect();
                    for result in backend.acknowledge_batch(QUEUE, &receipts).await.unwrap() {
                        result.unwrap();
                    }
                    acknowledged.fetch_add(receipts.len(), Ordering::SeqCst);
                    seen.extend(envelopes.into_iter().map(|e| e.content.to_string()));
                }
                seen
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let backend = backend.clone();
            on_thread(async move {
                for i in 0..PER_PRODUCER {
                    backend
                        .publish_to_queue(QUEUE, message(&format!("{p}-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let mut seen = HashSet::new();
    for consumer in consumers {
        for content in consumer.join().unwrap() {
            assert!(seen.insert(content), "received twice");
        }
    }
    assert_eq!(seen.len(), TOTAL);
    let stats = backend.queue_stats(QUEUE).unwrap();
    assert!(stats.is_empty());
    assert_eq!(stats.enqueued, TOTAL as u64);
    assert_eq!(stats.acknowledged, TOTAL as u64);
}

#[tokio::test(start_paused = true)]
async fn a_receipt_acts_only_on_the_queue_declaration_that_issued_it() {
    let backend = backend_with(QueueSpec::new("first")).await;
    backend
        .declare_queue(&QueueSpec::new("second"))
        .await
        .unwrap();
    for queue in ["first", "second"] {
        backend
            .publish_to_queue(queue, message(queue))
            .await
            .unwrap();
    }
    // Both messages are the first of their queue: the receipts differ only by delivery.
    let first = receive(&backend, "first", 1).await.remove(0);
    let second = receive(&backend, "second", 1).await.remove(0);
    let refused = |result: Result<(), BackendError>, queue: &str| {
        assert!(
            matches!(&result, Err(BackendError::InvalidReceipt { queue: q, .. }) if q == queue),
            "{result:?}"
        );
    };
    refused(
        backend.acknowledge("second", &first.delivery.receipt).await,
        "second",
    );
    refused(
        backend
            .change_visibility("second", &first.delivery.receipt, Duration::ZERO)
            .await,
        "second",
    );
    assert_eq!(backend.queue_stats("second").unwrap().in_flight, 1);

    // Deleted and declared again: the old receipt names a message of the earlier queue.
    backend.delete_queue("first").await.unwrap();
    backend
        .declare_queue(&QueueSpec::new("first"))
        .await
        .unwrap();
    backend
        .publish_to_queue("first", message("again"))
        .await
        .unwrap();
    let again = receive(&backend, "first", 1).await.remove(0);
    refused(
        backend.acknowledge("first", &first.delivery.receipt).await,
        "first",
    );
    assert_eq!(backend.queue_stats("first").unwrap().in_flight, 1);
    backend
        .acknowledge("first", &again.delivery.receipt)
        .await
        .unwrap();
    backend
        .acknowledge("second", &second.delivery.receipt)
        .await
        .unwrap();
    for queue in ["first", "second"] {
        assert_eq!(backend.queue_stats(queue).unwrap().in_flight, 0);
    }
}

/// What melange-sqs counts for the `manifest` and `serializer_id` attributes of
/// `message(..)`: each attribute's name, data type and value.
const MELANGE_ATTRIBUTES: usize = ("manifest".len() + "String".len() + "OrderCreated".len())
    + ("serializer_id".len() + "Number".len() + "1".len());

/// `{"Message":""}`: what melange-sqs wraps queue content in.
const QUEUE_BODY_WRAPPER: usize = r#"{"Message":""}"#.len();

#[tokio::test(start_paused = true)]
async fn topic_messages_are_limited_to_256_kib_as_sns_counts_them() {
    let backend = InMemoryBackend::new();
    backend.declare_queue(&QueueSpec::new(QUEUE)).await.unwrap();
    backend.declare_topic("events").await.unwrap();
    backend.subscribe(QUEUE, "events", None).await.unwrap();

    // SNS counts the content, the subject and every attribute's name, type and value.
    let subject = "Order created";
    let mut fits = message(&"x".repeat(262_144 - MELANGE_ATTRIBUTES - subject.len()));
    fits.subject = Some(subject.to_owned());
    let mut too_large = fits.clone();
    too_large.content.push('x');
    backend.publish_to_topic("events", fits).await.unwrap();
    let error = backend
        .publish_to_topic("events", too_large.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            BackendError::MessageTooLarge { target, size: 262_145, limit: 262_144 }
                if target == "events"
        ),
        "{error:?}"
    );
    let results = backend
        .publish_batch_to_topic("events", vec![message("small"), too_large])
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert!(
        matches!(
            &results[1],
            Err(BackendError::MessageTooLarge { limit: 262_144, .. })
        ),
        "{results:?}"
    );
    assert_eq!(backend.queue_stats(QUEUE).unwrap().enqueued, 2);
}

#[tokio::test(start_paused = true)]
async fn the_topic_limit_is_set_apart_from_the_queue_limit() {
    let backend = InMemoryBackend::builder()
        .max_message_size(100)
        .max_topic_message_size(DEFAULT_MAX_MESSAGE_SIZE)
        .build();
    assert_eq!(backend.max_message_size(), 100);
    assert_eq!(backend.max_topic_message_size(), DEFAULT_MAX_MESSAGE_SIZE);
    assert_eq!(
        InMemoryBackend::new().max_topic_message_size(),
        DEFAULT_MAX_TOPIC_MESSAGE_SIZE
    );
    backend.declare_queue(&QueueSpec::new(QUEUE)).await.unwrap();
    backend.declare_topic("events").await.unwrap();
    backend.subscribe(QUEUE, "events", None).await.unwrap();
    let large = message(&"x".repeat(300_000));
    backend
        .publish_to_topic("events", large.clone())
        .await
        .unwrap();
    let error = backend.publish_to_queue(QUEUE, large).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::MessageTooLarge { target, limit: 100, .. } if target == QUEUE),
        "{error:?}"
    );
    assert_eq!(backend.queue_stats(QUEUE).unwrap().enqueued, 1);
}
#[tokio::test(start_paused = true)]
async fn queue_messages_are_measured_as_the_json_body_melange_sqs_sends() {
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    // Quotes and backslashes take two bytes each in `{"Message": "..."}`: 600,000 of them
    // are 1.2 MB on the wire, which SQS refuses.
    let quoted = message(&"\"\\".repeat(300_000));
    let error = backend.publish_to_queue(QUEUE, quoted).await.unwrap_err();
    let expected = QUEUE_BODY_WRAPPER + 1_200_000 + MELANGE_ATTRIBUTES;
    assert!(
        matches!(
            &error,
            BackendError::MessageTooLarge { target, size, limit: DEFAULT_MAX_MESSAGE_SIZE }
                if target == QUEUE && *size == expected
        ),
        "{error:?}"
    );
    // A newline is `\n` and a non-ASCII character its UTF-8 bytes.
    let mut mixed = message(&"é\n".repeat(262_200));
    mixed
        .attributes
        .insert("trace-id".to_owned(), "abc".to_owned());
    let size = QUEUE_BODY_WRAPPER
        + 262_200 * 4
        + MELANGE_ATTRIBUTES
        + ("trace-id".len() + "String".len() + 3);
    assert!(size > DEFAULT_MAX_MESSAGE_SIZE);
    let error = backend.publish_to_queue(QUEUE, mixed).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::MessageTooLarge { size: s, .. } if *s == size),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn topic_subjects_follow_sns_rules() {
    let backend = InMemoryBackend::new();
    backend.declare_topic("events").await.unwrap();
    let with_subject = |subject: &str| {
        let mut outgoing = message("x");
        outgoing.subject = Some(subject.to_owned());
        outgoing
    };
    let too_long = "s".repeat(100);
    for bad in [
        "",
        " leading space",
        "two\nlines",
        "carriage\rreturn",
        "tab\there",
        "bell \u{7}",
        "delete \u{7f}",
        "café",
        "€uro",
        too_long.as_str(),
    ] {
        let error = backend
            .publish_to_topic("events", with_subject(bad))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &error,
                BackendError::InvalidRequest { target, reason, .. }
                    if target == "events" && reason.contains("subject")
            ),
            "{bad:?}: {error:?}"
        );
    }
    let longest = "s".repeat(99);
    for good in [
        "Order created",
        "1 order",
        "[urgent] order #42: paid!",
        "~",
        longest.as_str(),
    ] {
        backend
            .publish_to_topic("events", with_subject(good))
            .await
            .unwrap_or_else(|error| panic!("{good:?}: {error:?}"));
    }
    // A queue has no subject: melange-sqs does not send it.
    let queue = backend_with(QueueSpec::new(QUEUE)).await;
    queue
        .publish_to_queue(QUEUE, with_subject("two\nlines"))
        .await
        .unwrap();
}
#[tokio::test(start_paused = true)]
async fn a_topic_copy_is_not_a_duplicate_of_a_direct_send_of_the_same_body() {
    // SQS deduplicates a direct send on the hash of the body it receives,
    // `{"Message": ...}`, and a copy from an SNS FIFO topic on the deduplication id SNS
    // passes on: the two never meet, though the content is the same.
    let queue = "orders.fifo";
    let backend = backend_with(QueueSpec::new(queue)).await;
    backend.declare_topic("events.fifo").await.unwrap();
    backend.subscribe(queue, "events.fifo", None).await.unwrap();
    backend
        .publish_to_queue(queue, grouped("same", "g"))
        .await
        .unwrap();
    backend
        .publish_to_topic("events.fifo", grouped("same", "g"))
        .await
        .unwrap();
    let mut with_id = grouped("same", "g");
    with_id.deduplication_id = Some("order-1".to_owned());
    backend
        .publish_to_topic("events.fifo", with_id.clone())
        .await
        .unwrap();
    assert_eq!(backend.queue_stats(queue).unwrap().enqueued, 3);

    // Repeats are still duplicates, each of its own kind; an explicit id is the same id
    // whether SNS or the sender hands it to SQS.
    backend
        .publish_to_queue(queue, grouped("same", "g"))
        .await
        .unwrap();
    backend.publish_to_queue(queue, with_id).await.unwrap();
    let mut topic_again = grouped("same", "other");
    topic_again.deduplication_id = None;
    backend
        .publish_to_topic("events.fifo", topic_again)
        .await
        .unwrap();
    assert_eq!(backend.queue_stats(queue).unwrap().enqueued, 3);
}

#[tokio::test(start_paused = true)]
async fn any_content_fits_in_the_json_body_of_a_queue_message() {
    // melange-sqs sends queue content JSON-escaped inside `{"Message": "..."}`: SQS sees a
    // non-empty body of allowed characters whatever the content, and the consumer reads
    // the content back unchanged.
    let backend = backend_with(QueueSpec::new(QUEUE)).await;
    let odd = [
        "",
        "bell \u{7}",
        "nul \u{0}",
        "\u{FFFE}\u{FFFF}",
        "\u{1b}[31mred",
    ];
    for content in odd {
        backend
            .publish_to_queue(QUEUE, message(content))
            .await
            .unwrap_or_else(|error| panic!("{content:?}: {error:?}"));
    }
    let received = receive(&backend, QUEUE, 10).await;
    assert_eq!(contents(&received), odd);

    // SNS takes the content bare, and refuses an empty message.
    backend.declare_topic("events").await.unwrap();
    let error = backend
        .publish_to_topic("events", message(""))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BackendError::InvalidRequest { target, .. } if target == "events"),
        "{error:?}"
    );
}
