//! Real-server benchmarks (SQS API: moto_server, LocalStack or fauxqs), run by `bench/run`.
//! Not a criterion harness: without `MELANGE_BENCH_ENDPOINT` it prints a note and exits.
//!
//! Environment: `MELANGE_BENCH_ENDPOINT` (`http://127.0.0.1:PORT`), `MELANGE_BENCH_MODE`,
//! `MELANGE_BENCH_QUEUE`, `MELANGE_BENCH_N` (messages), `MELANGE_BENCH_CONCURRENCY` (parallel
//! receives or publishers, each of batches of 10), `MELANGE_BENCH_WORKERS` (the runtime's
//! worker threads, default 2). Modes, each printing one JSON line with the wall-clock
//! `seconds` and the process's CPU time `cpu_s` of the measured part:
//! - `fill`: create the queue and send N messages in Python Melange's queue format with the
//!   raw SDK (`SendMessageBatch`); the setup of every consume run.
//! - `consume_melange`: `SimpleConsumerHandler` + `#[listener]` on `ElasticMqBackend`,
//!   `batch_size` 10, `receivers` = concurrency, `max_in_flight` = 10 × concurrency, long
//!   poll 1 s, on a runtime worker; shuts down once N messages were handled. The clock stops at
//!   the N-th deletion (counted by a wrapper around the backend), as for the other contenders;
//!   `shutdown_s` is the time `consume_loop` took after that to return. The queue URL is
//!   resolved before the clock starts, as for the other contenders.
//! - `consume_sdk`: the hand-written loop: concurrency tasks each `ReceiveMessage` (10, long
//!   poll 1 s) → parse body + content with serde_json → `DeleteMessageBatch`; the clock stops
//!   when the N-th message is deleted (the other tasks' pending receives are dropped).
//! - `delete`: delete the queue (LocalStack and fauxqs keep every queue until they stop).
//! - `publish_melange` / `publish_sdk`: N messages in batches of 10 with `QueuePublisher::
//!   publish_batch` or raw `SendMessageBatch`, concurrency tasks in parallel.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

// The forwarding half of `Deletions`, shared with the tests.
#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/forward.rs"]
mod forward;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use melange::backend::BatchResult;
use melange::envelope::ReceiptHandle;
use melange::sqs::ElasticMqBackend;
use melange::sqs::aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use melange::sqs::aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
use melange::sqs::aws_sdk_sqs::{self, Client};
use melange::{
    BackendError, ConsumerOptions, MessagingBackend, MessagingBackendFactory, QueuePublisher,
    SerializerRegistry, Shutdown, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, melange::Message)]
struct OrderCreated {
    seq: u64,
    customer: String,
    amount_cents: u64,
}

fn order(seq: u64) -> OrderCreated {
    OrderCreated {
        seq,
        customer: "customer-42".into(),
        amount_cents: 1999,
    }
}

struct Env {
    endpoint: String,
    queue: String,
    n: u64,
    concurrency: usize,
}

fn sdk_client(endpoint: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "bench"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

async fn queue_url(client: &Client, queue: &str) -> String {
    client
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

fn sdk_entry(seq: u64) -> SendMessageBatchRequestEntry {
    let content = serde_json::to_string(&order(seq)).unwrap();
    let body = serde_json::json!({ "Message": content }).to_string();
    let string = |v: &str, t: &str| {
        MessageAttributeValue::builder()
            .data_type(t)
            .string_value(v)
            .build()
            .unwrap()
    };
    SendMessageBatchRequestEntry::builder()
        .id(format!("m{}", seq % 10))
        .message_body(body)
        .message_attributes("manifest", string("OrderCreated", "String"))
        .message_attributes("serializer_id", string("1", "Number"))
        .build()
        .unwrap()
}

/// Splits `0..n` into batches of 10, shared by `concurrency` tasks.
async fn in_batches<F, Fut>(n: u64, concurrency: usize, send: F)
where
    F: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = next.clone();
            let send = send.clone();
            tokio::spawn(async move {
                loop {
                    let start = next.fetch_add(10, Ordering::Relaxed);
                    if start >= n {
                        break;
                    }
                    send(start, (start + 10).min(n)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

async fn publish_sdk(env: &Env) -> Measured {
    let client = sdk_client(&env.endpoint);
    let url = queue_url(&client, &env.queue).await;
    let clock = Clock::start();
    in_batches(env.n, env.concurrency, move |from, to| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let out = client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some((from..to).map(sdk_entry).collect()))
                .send()
                .await
                .unwrap();
            assert!(out.failed.is_empty());
        }
    })
    .await;
    clock.stop()
}

async fn publish_melange(env: &Env) -> Measured {
    let backend = ElasticMqBackend::builder(&env.endpoint)
        .allow_plain_http(true)
        .build()
        .unwrap();
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&env.queue)
        .await
        .unwrap();
    let publisher = Arc::new(QueuePublisher::new(SerializerRegistry::default(), backend));
    let queue: Arc<str> = env.queue.as_str().into();
    let clock = Clock::start();
    in_batches(env.n, env.concurrency, move |from, to| {
        let publisher = publisher.clone();
        let queue = queue.clone();
        async move {
            let messages: Vec<OrderCreated> = (from..to).map(order).collect();
            let results = publisher.publish_batch(&queue, &messages).await.unwrap();
            assert!(results.iter().all(Result::is_ok));
        }
    })
    .await;
    clock.stop()
}

struct Bench {
    handled: AtomicU64,
    expected: u64,
    shutdown: Shutdown,
}

#[melange::listener]
impl Bench {
    async fn on_order_created(&self, message: OrderCreated) {
        std::hint::black_box(message);
        if self.handled.fetch_add(1, Ordering::AcqRel) + 1 >= self.expected {
            self.shutdown.trigger();
        }
    }
}

/// The SQS backend, counting successful deletions: the clock stops at the N-th, as for the
/// other contenders (`consume_loop` returns later, after its shutdown: it waits for the
/// receives still on the server, up to the long-poll wait, and releases what they bring).
struct Deletions<B> {
    inner: B,
    count: Arc<DeletionCount>,
}

struct DeletionCount {
    deleted: AtomicU64,
    target: u64,
    done: tokio::sync::Notify,
}

impl<B> Deletions<B> {
    fn count(&self, deleted: u64) {
        let count = &self.count;
        let before = count.deleted.fetch_add(deleted, Ordering::AcqRel);
        if before < count.target && before + deleted >= count.target {
            count.done.notify_one();
        }
    }
}

impl<B: MessagingBackend> MessagingBackend for Deletions<B> {
    crate::forward::forward_backend!(inner, except acknowledge, acknowledge_batch);

    async fn acknowledge(&self, queue: &str, receipt: &ReceiptHandle) -> Result<(), BackendError> {
        self.inner.acknowledge(queue, receipt).await?;
        self.count(1);
        Ok(())
    }
    async fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchResult<()>, BackendError> {
        let results = self.inner.acknowledge_batch(queue, receipts).await?;
        self.count(results.iter().filter(|r| r.is_ok()).count() as u64);
        Ok(results)
    }
}

async fn consume_melange(env: &Env) -> Measured {
    let sqs = ElasticMqBackend::builder(&env.endpoint)
        .allow_plain_http(true)
        .build()
        .unwrap();
    // Resolve (and cache) the queue URL before the clock starts, as the raw SDK loop and the
    // Node peer do; `consume_loop` still reads the queue's attributes (one call) when it starts.
    sqs.queue_url(&env.queue).await.unwrap();
    let count = Arc::new(DeletionCount {
        deleted: AtomicU64::new(0),
        target: env.n,
        done: tokio::sync::Notify::new(),
    });
    let backend = Deletions {
        inner: sqs,
        count: count.clone(),
    };
    let shutdown = Shutdown::new();
    let handler = SimpleConsumerHandler::new(
        Bench {
            handled: AtomicU64::new(0),
            expected: env.n,
            shutdown: shutdown.clone(),
        },
        SerializerRegistry::default(),
        backend,
    )
    .with_shutdown(shutdown)
    .with_options(
        ConsumerOptions::default()
            .batch_size(10)
            .receivers(env.concurrency)
            .max_in_flight(10 * env.concurrency)
            .wait_time(Duration::from_secs(1)),
    );
    let queue = env.queue.clone();
    let clock = Clock::start();
    // On a runtime worker, like the raw SDK loop's tasks (not on the `block_on` thread).
    let run = tokio::spawn(async move { handler.consume_loop(&queue).await });
    count.done.notified().await;
    let mut measured = clock.stop();
    let summary = run.await.unwrap().unwrap();
    measured.shutdown = Some(clock.wall.elapsed().as_secs_f64() - measured.seconds);
    assert!(summary.acknowledged >= env.n, "{summary:?}");
    measured
}

#[derive(Deserialize)]
struct QueueBody {
    #[serde(rename = "Message")]
    message: String,
}

async fn consume_sdk(env: &Env) -> Measured {
    let client = sdk_client(&env.endpoint);
    let url = queue_url(&client, &env.queue).await;
    let handled = Arc::new(AtomicU64::new(0));
    // Signalled by the task whose delete completes the N-th message: the clock stops there,
    // as it does for melange (which cancels its pending receives on shutdown) and Node (which
    // stops on the last deletion), rather than after every task's pending long poll returns.
    let done = Arc::new(tokio::sync::Notify::new());
    let n = env.n;
    let clock = Clock::start();
    let tasks: Vec<_> = (0..env.concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            let (handled, done) = (handled.clone(), done.clone());
            tokio::spawn(async move {
                while handled.load(Ordering::Acquire) < n {
                    let out = client
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .message_attribute_names("All")
                        .send()
                        .await
                        .unwrap();
                    let messages = out.messages.unwrap_or_default();
                    if messages.is_empty() {
                        continue;
                    }
                    let mut entries = Vec::with_capacity(messages.len());
                    for (i, message) in messages.iter().enumerate() {
                        let body: QueueBody =
                            serde_json::from_str(message.body.as_deref().unwrap()).unwrap();
                        let order: OrderCreated = serde_json::from_str(&body.message).unwrap();
                        std::hint::black_box(order);
                        entries.push(
                            DeleteMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(message.receipt_handle.clone().unwrap())
                                .build()
                                .unwrap(),
                        );
                    }
                    let count = entries.len() as u64;
                    let out = client
                        .delete_message_batch()
                        .queue_url(&url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .unwrap();
                    assert!(out.failed.is_empty());
                    if handled.fetch_add(count, Ordering::AcqRel) + count >= n {
                        done.notify_one();
                    }
                }
            })
        })
        .collect();
    done.notified().await;
    let measured = clock.stop();
    for task in tasks {
        task.abort();
    }
    measured
}

/// Wall-clock and CPU time of the measured part of a run.
struct Clock {
    wall: Instant,
    cpu: f64,
}

struct Measured {
    seconds: f64,
    /// CPU seconds of the whole process.
    cpu: f64,
    /// melange: from the N-th deletion until `consume_loop` returned.
    shutdown: Option<f64>,
}

impl Clock {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu::cpu_seconds(),
        }
    }

    fn stop(&self) -> Measured {
        Measured {
            seconds: self.wall.elapsed().as_secs_f64(),
            cpu: cpu::cpu_seconds() - self.cpu,
            shutdown: None,
        }
    }
}

fn main() {
    let Ok(endpoint) = std::env::var("MELANGE_BENCH_ENDPOINT") else {
        println!("sqs bench: set MELANGE_BENCH_ENDPOINT (bench/run does); nothing to do");
        return;
    };
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mode = var("MELANGE_BENCH_MODE", "fill");
    let env = Env {
        endpoint,
        queue: var("MELANGE_BENCH_QUEUE", "melange-bench"),
        n: var("MELANGE_BENCH_N", "200").parse().unwrap(),
        concurrency: var("MELANGE_BENCH_CONCURRENCY", "4").parse().unwrap(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(var("MELANGE_BENCH_WORKERS", "2").parse().unwrap())
        .enable_all()
        .build()
        .unwrap();
    let measured = runtime.block_on(async {
        match mode.as_str() {
            "fill" => publish_sdk(&env).await,
            "publish_sdk" => publish_sdk(&env).await,
            "publish_melange" => publish_melange(&env).await,
            "consume_melange" => consume_melange(&env).await,
            "consume_sdk" => consume_sdk(&env).await,
            "delete" => {
                let client = sdk_client(&env.endpoint);
                let url = queue_url(&client, &env.queue).await;
                client.delete_queue().queue_url(url).send().await.unwrap();
                Clock::start().stop()
            }
            other => panic!("unknown MELANGE_BENCH_MODE {other}"),
        }
    });
    let contender = mode.rsplit('_').next().unwrap_or(&mode);
    println!(
        "{}",
        serde_json::json!({
            "bench": mode, "contender": contender, "messages": env.n,
            "concurrency": env.concurrency, "seconds": measured.seconds,
            "msgs_per_s": env.n as f64 / measured.seconds, "cpu_s": measured.cpu,
            "shutdown_s": measured.shutdown,
        })
    );
}
