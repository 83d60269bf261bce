//! Real-server benchmarks (SQS API: moto_server or LocalStack), run by `bench/run`. Not a
//! criterion harness: without `MELANGE_BENCH_ENDPOINT` it prints a note and exits.
//!
//! Environment: `MELANGE_BENCH_ENDPOINT` (`http://127.0.0.1:PORT`), `MELANGE_BENCH_MODE`,
//! `MELANGE_BENCH_QUEUE`, `MELANGE_BENCH_N` (messages), `MELANGE_BENCH_CONCURRENCY` (parallel
//! receives or publishers, each of batches of 10). Modes, each printing one JSON line with the
//! wall-clock `seconds` and the process's CPU time `cpu_s` of the measured part:
//! - `fill`: create the queue and send N messages in Python Melange's queue format with the
//!   raw SDK (`SendMessageBatch`); the setup of every consume run.
//! - `consume_melange`: `SimpleConsumerHandler` + `#[listener]` on `ElasticMqBackend`,
//!   `batch_size` 10, `receivers` = concurrency, `max_in_flight` = 10 × concurrency, long
//!   poll 1 s, on a runtime worker; stops (flushing its acknowledgements) once N messages were
//!   handled. The queue URL is resolved before the clock starts, as for the other contenders.
//! - `consume_sdk`: the hand-written loop: concurrency tasks each `ReceiveMessage` (10, long
//!   poll 1 s) → parse body + content with serde_json → `DeleteMessageBatch`; the clock stops
//!   when the N-th message is deleted (the other tasks' pending receives are dropped).
//! - `delete`: delete the queue (LocalStack keeps every queue until it stops).
//! - `publish_melange` / `publish_sdk`: N messages in batches of 10 with `QueuePublisher::
//!   publish_batch` or raw `SendMessageBatch`, concurrency tasks in parallel.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use melange::sqs::ElasticMqBackend;
use melange::sqs::aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use melange::sqs::aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
use melange::sqs::aws_sdk_sqs::{self, Client};
use melange::{
    ConsumerOptions, MessagingBackendFactory, QueuePublisher, SerializerRegistry, Shutdown,
    SimpleConsumerHandler,
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

async fn publish_sdk(env: &Env) -> (f64, f64) {
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

async fn publish_melange(env: &Env) -> (f64, f64) {
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

async fn consume_melange(env: &Env) -> (f64, f64) {
    let backend = ElasticMqBackend::builder(&env.endpoint)
        .allow_plain_http(true)
        .build()
        .unwrap();
    // Resolve (and cache) the queue URL before the clock starts, as the raw SDK loop and the
    // Node peer do; `consume_loop` still reads the queue's attributes (one call) when it starts.
    backend.queue_url(&env.queue).await.unwrap();
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
    let summary = tokio::spawn(async move { handler.consume_loop(&queue).await })
        .await
        .unwrap()
        .unwrap();
    let measured = clock.stop();
    assert!(summary.acknowledged >= env.n, "{summary:?}");
    measured
}

#[derive(Deserialize)]
struct QueueBody {
    #[serde(rename = "Message")]
    message: String,
}

async fn consume_sdk(env: &Env) -> (f64, f64) {
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

/// CPU time (user + system) of this process so far, in seconds, from `/proc/self/stat`
/// (clock ticks of 10 ms; Linux only, 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may contain spaces:
    // utime and stime are the 14th and 15th fields, so the 12th and 13th after it.
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    ticks / 100.0
}

/// Wall-clock and CPU time of the measured part of a run.
struct Clock {
    wall: Instant,
    cpu: f64,
}

impl Clock {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// (wall seconds, CPU seconds of the whole process) since `start`.
    fn stop(&self) -> (f64, f64) {
        (self.wall.elapsed().as_secs_f64(), cpu_seconds() - self.cpu)
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
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (seconds, cpu) = runtime.block_on(async {
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
                (0.0, 0.0)
            }
            other => panic!("unknown MELANGE_BENCH_MODE {other}"),
        }
    });
    let contender = mode.rsplit('_').next().unwrap_or(&mode);
    println!(
        "{}",
        serde_json::json!({
            "bench": mode, "contender": contender, "messages": env.n,
            "concurrency": env.concurrency, "seconds": seconds,
            "msgs_per_s": env.n as f64 / seconds, "cpu_s": cpu,
        })
    );
}
