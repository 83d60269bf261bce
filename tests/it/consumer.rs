//! Consumer handlers on the in-memory backend: dispatch, acknowledgement policies, outcomes
//! of unprocessable messages, de-duplication, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use melange::{
    AckPolicy, AnyBackend, BackendError, ConsumerHandler, ConsumerOptions, InMemoryBackend,
    InMemoryDeduplicationCache, MessageContext, MessagingBackend, MessagingBackendFactory,
    OutgoingMessage, PoisonOutcome, QueuePublisher, ReceiveOptions, SerializerRegistry, Shutdown,
    SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, melange::Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, melange::Message)]
struct OrderCancelled {
    order_id: u64,
}

/// Records what it handled; fails on the order ids it is told to.
#[derive(Default)]
struct Orders {
    created: AtomicUsize,
    cancelled: AtomicUsize,
    fail_on: Option<u64>,
    contexts: std::sync::Mutex<Vec<(String, u32, String)>>,
}

#[derive(Debug, thiserror::Error)]
#[error("order {0} is cursed")]
struct Cursed(u64);

#[melange::listener]
impl Orders {
    async fn on_created(&self, event: OrderCreated, ctx: MessageContext<'_>) -> Result<(), Cursed> {
        self.created.fetch_add(1, Ordering::SeqCst);
        self.contexts.lock().unwrap().push((
            ctx.queue().to_owned(),
            ctx.receive_count(),
            ctx.message_id().to_owned(),
        ));
        match self.fail_on {
            Some(id) if id == event.order_id => Err(Cursed(id)),
            _ => Ok(()),
        }
    }

    async fn on_cancelled(&self, _event: OrderCancelled) {
        self.cancelled.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts every `OrderCreated`: a second consumer on the same queue.
#[derive(Default)]
struct Audit {
    seen: AtomicUsize,
}

#[melange::listener]
impl Audit {
    async fn on_created(&self, _event: OrderCreated) {
        self.seen.fetch_add(1, Ordering::SeqCst);
    }
}

async fn setup(queue: &str) -> (InMemoryBackend, QueuePublisher<InMemoryBackend>) {
    let backend = InMemoryBackend::new();
    MessagingBackendFactory::new(backend.clone())
        .init_queue(queue)
        .dead_letter_queue(format!("{queue}-dlq"))
        .visibility_timeout(Duration::from_secs(30))
        .await
        .unwrap();
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    (backend, publisher)
}

async fn receive_all(backend: &InMemoryBackend, queue: &str) -> Vec<melange::Envelope> {
    let options = ReceiveOptions {
        wait_time: Duration::ZERO,
        ..ReceiveOptions::default()
    };
    backend
        .receive(queue, &options)
        .await
        .unwrap()
        .into_iter()
        .map(|item| item.unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn dispatches_by_manifest_and_acknowledges_on_success() {
    let (backend, publisher) = setup("orders").await;
    publisher
        .publish("orders", &OrderCreated { order_id: 1 })
        .await
        .unwrap();
    publisher
        .publish("orders", &OrderCancelled { order_id: 1 })
        .await
        .unwrap();

    let orders = Arc::new(Orders::default());
    let handler = SimpleConsumerHandler::new(
        orders.clone(),
        SerializerRegistry::default(),
        backend.clone(),
    );
    let summary = handler.drain("orders").await.unwrap();

    assert_eq!(orders.created.load(Ordering::SeqCst), 1);
    assert_eq!(orders.cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(
        (summary.received, summary.succeeded, summary.acknowledged),
        (2, 2, 2)
    );
    let contexts = orders.contexts.lock().unwrap().clone();
    assert_eq!(contexts[0].0, "orders");
    assert_eq!(contexts[0].1, 1);
    // Acknowledged: nothing comes back after the visibility timeout.
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(receive_all(&backend, "orders").await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_handler_leaves_the_message_for_redelivery_then_the_dlq() {
    let (backend, publisher) = setup("orders").await;
    publisher
        .publish("orders", &OrderCreated { order_id: 13 })
        .await
        .unwrap();
    let orders = Arc::new(Orders {
        fail_on: Some(13),
        ..Orders::default()
    });
    let handler = SimpleConsumerHandler::new(
        orders.clone(),
        SerializerRegistry::default(),
        backend.clone(),
    );

    for attempt in 1..=4 {
        let summary = handler.drain("orders").await.unwrap();
        assert_eq!(
            (summary.failed, summary.acknowledged),
            (1, 0),
            "attempt {attempt}"
        );
        tokio::time::advance(Duration::from_secs(31)).await;
    }
    let receive_counts: Vec<u32> = orders
        .contexts
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.1)
        .collect();
    assert_eq!(receive_counts, [1, 2, 3, 4]);
    // After the fourth receive the redrive policy moves it to the dead-letter queue.
    assert_eq!(handler.drain("orders").await.unwrap().received, 0);
    let dead = receive_all(&backend, "orders-dlq").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].manifest.as_deref(), Some("OrderCreated"));
}

#[tokio::test(start_paused = true)]
async fn every_accepting_consumer_runs_and_the_message_is_acknowledged_only_if_all_succeed() {
    let (backend, publisher) = setup("orders").await;
    publisher
        .publish("orders", &OrderCreated { order_id: 13 })
        .await
        .unwrap();
    let orders = Arc::new(Orders {
        fail_on: Some(13),
        ..Orders::default()
    });
    let audit = Arc::new(Audit::default());
    let mut handler = ConsumerHandler::new(SerializerRegistry::default(), backend.clone());
    handler
        .attach_consumer(orders.clone())
        .attach_consumer(audit.clone());

    let summary = handler.drain("orders").await.unwrap();
    assert_eq!(audit.seen.load(Ordering::SeqCst), 1);
    assert_eq!((summary.failed, summary.acknowledged), (1, 0));
    tokio::time::advance(Duration::from_secs(31)).await;
    handler.drain("orders").await.unwrap();
    // Without a de-duplication cache, the successful consumer runs again on redelivery.
    assert_eq!(audit.seen.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_deduplication_cache_keeps_a_completed_consumer_from_running_twice() {
    let (backend, publisher) = setup("orders").await;
    publisher
        .publish("orders", &OrderCreated { order_id: 13 })
        .await
        .unwrap();
    let orders = Arc::new(Orders {
        fail_on: Some(13),
        ..Orders::default()
    });
    let audit = Arc::new(Audit::default());
    let mut handler = ConsumerHandler::new(SerializerRegistry::default(), backend.clone())
        .with_deduplication_cache(InMemoryDeduplicationCache::default());
    handler
        .attach_consumer(orders.clone())
        .attach_consumer(audit.clone());

    handler.drain("orders").await.unwrap();
    tokio::time::advance(Duration::from_secs(31)).await;
    let summary = handler.drain("orders").await.unwrap();
    assert_eq!(
        audit.seen.load(Ordering::SeqCst),
        1,
        "audit ran again on redelivery"
    );
    assert_eq!(
        orders.created.load(Ordering::SeqCst),
        2,
        "the failed consumer is retried"
    );
    assert_eq!(summary.duplicates, 1);
}

#[tokio::test(start_paused = true)]
async fn always_ack_acknowledges_failures_and_early_ack_acknowledges_before_processing() {
    for policy in [AckPolicy::Always, AckPolicy::Early] {
        let (backend, publisher) = setup("orders").await;
        publisher
            .publish("orders", &OrderCreated { order_id: 13 })
            .await
            .unwrap();
        let orders = Arc::new(Orders {
            fail_on: Some(13),
            ..Orders::default()
        });
        let handler = SimpleConsumerHandler::new(
            orders.clone(),
            SerializerRegistry::default(),
            backend.clone(),
        )
        .with_options(ConsumerOptions::default().ack_policy(policy));
        let summary = handler.drain("orders").await.unwrap();
        assert_eq!((summary.failed, summary.acknowledged), (1, 1), "{policy:?}");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(
            receive_all(&backend, "orders").await.is_empty(),
            "{policy:?}"
        );
    }
}

fn raw(content: &str, manifest: &str) -> OutgoingMessage {
    OutgoingMessage::new(content, manifest.to_owned(), 1)
}

#[tokio::test(start_paused = true)]
async fn unknown_manifests_and_undecodable_messages_are_redriven_by_default() {
    let (backend, _) = setup("orders").await;
    backend
        .publish_to_queue("orders", raw(r#"{"order_id": 1}"#, "Refund"))
        .await
        .unwrap();
    backend
        .publish_to_queue("orders", raw(r#"{"order_id": "x"}"#, "OrderCreated"))
        .await
        .unwrap();
    backend
        .publish_to_queue("orders", OutgoingMessage::new("{}", "OrderCreated", 99))
        .await
        .unwrap();
    let handler = SimpleConsumerHandler::new(
        Orders::default(),
        SerializerRegistry::default(),
        backend.clone(),
    );

    let summary = handler.drain("orders").await.unwrap();
    assert_eq!(
        (summary.received, summary.poison, summary.acknowledged),
        (3, 3, 0)
    );
    for _ in 0..4 {
        tokio::time::advance(Duration::from_secs(31)).await;
        handler.drain("orders").await.unwrap();
    }
    assert_eq!(receive_all(&backend, "orders-dlq").await.len(), 3);
    assert_eq!(handler.consumer().created.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn discard_acknowledges_unprocessable_messages_as_python_melange_does() {
    let (backend, _) = setup("orders").await;
    backend
        .publish_to_queue("orders", raw(r#"{"order_id": 1}"#, "Refund"))
        .await
        .unwrap();
    backend
        .publish_to_queue("orders", raw("not json", "OrderCreated"))
        .await
        .unwrap();
    let options = ConsumerOptions::default()
        .unknown_manifest(PoisonOutcome::Discard)
        .undecodable(PoisonOutcome::Discard);
    let handler = SimpleConsumerHandler::new(
        Orders::default(),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_options(options);

    let summary = handler.drain("orders").await.unwrap();
    assert_eq!((summary.poison, summary.acknowledged), (2, 2));
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(receive_all(&backend, "orders").await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn consume_loop_runs_until_shutdown_and_returns_a_summary() {
    let (backend, publisher) = setup("orders").await;
    let shutdown = Shutdown::new();
    let handler = SimpleConsumerHandler::new(
        Orders::default(),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_shutdown(shutdown.clone());
    let consumer = tokio::spawn(async move {
        let summary = handler.consume_loop("orders").await.unwrap();
        (summary, handler.consumer().created.load(Ordering::SeqCst))
    });
    for order_id in 0..25 {
        publisher
            .publish("orders", &OrderCreated { order_id })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.trigger();
    let (summary, created) = consumer.await.unwrap();
    assert_eq!(created, 25);
    assert_eq!((summary.received, summary.acknowledged), (25, 25));
}

#[tokio::test(start_paused = true)]
async fn a_missing_queue_ends_the_loop_with_a_typed_error() {
    let backend = AnyBackend::new(InMemoryBackend::new());
    let handler =
        SimpleConsumerHandler::new(Orders::default(), SerializerRegistry::default(), backend);
    let error = handler.consume_loop("nope").await.unwrap_err();
    assert!(
        matches!(&error, BackendError::QueueDoesNotExist { name, .. } if name == "nope"),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_when_idle_returns_once_the_queue_is_empty() {
    let (backend, publisher) = setup("orders").await;
    publisher
        .publish("orders", &OrderCreated { order_id: 1 })
        .await
        .unwrap();
    let handler =
        SimpleConsumerHandler::new(Orders::default(), SerializerRegistry::default(), backend)
            .with_options(ConsumerOptions::default().stop_when_idle(Duration::from_secs(1)));
    let started = tokio::time::Instant::now();
    let summary = handler.consume_loop("orders").await.unwrap();
    assert_eq!(summary.succeeded, 1);
    // One idle wait once the message is settled (the first empty receive may overlap it).
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed <= Duration::from_secs(2),
        "{elapsed:?}"
    );
}
