//! The in-process benchmarks (pipeline, latency model, memory), shared by the `pipeline` and
//! `pipeline_mimalloc` bench binaries, which differ only in their global allocator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use melange::backend::{BatchResult, Received};
use melange::envelope::{ReceiptHandle, ReceiveOptions};
use melange::{
    BackendError, ConsumerOptions, InMemoryBackend, MessagingBackend, MessagingBackendFactory,
    QueuePublisher, SerializerRegistry, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{Semaphore, mpsc};

use crate::cpu::{cpu_seconds, main_thread_cpu_seconds};

/// Messages allowed between publisher and handler (publisher back-pressure).
const WINDOW: usize = 256;

#[derive(Serialize, Deserialize, melange::Message)]
struct OrderCreated {
    seq: u64,
    sent_ns: u64,
    customer: String,
    amount_cents: u64,
}

fn order(seq: u64, base: Instant) -> OrderCreated {
    OrderCreated {
        seq,
        sent_ns: base.elapsed().as_nanos() as u64,
        customer: "customer-42".into(),
        amount_cents: 1999,
    }
}

/// What every handler records: a latency per message and when the last one arrived.
struct Probe {
    base: Instant,
    expected: u64,
    handled: AtomicU64,
    latencies: Vec<AtomicU64>,
    done_ns: AtomicU64,
    window: Option<Arc<Semaphore>>,
}

impl Probe {
    fn new(base: Instant, expected: u64, window: Option<Arc<Semaphore>>) -> Arc<Self> {
        Arc::new(Self {
            base,
            expected,
            handled: AtomicU64::new(0),
            latencies: (0..expected).map(|_| AtomicU64::new(0)).collect(),
            done_ns: AtomicU64::new(0),
            window,
        })
    }

    fn record(&self, message: &OrderCreated) {
        let now = self.base.elapsed().as_nanos() as u64;
        if let Some(slot) = self.latencies.get(message.seq as usize) {
            slot.store(now.saturating_sub(message.sent_ns), Ordering::Relaxed);
        }
        if let Some(window) = &self.window {
            window.add_permits(1);
        }
        if self.handled.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            self.done_ns.store(now, Ordering::Release);
        }
    }

    fn percentiles(&self) -> (f64, f64) {
        let mut all: Vec<u64> = self
            .latencies
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect();
        all.sort_unstable();
        let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize] as f64 / 1_000.0;
        (at(0.50), at(0.99))
    }
}

struct Bench {
    probe: Arc<Probe>,
}

#[melange::listener]
impl Bench {
    async fn on_order_created(&self, message: OrderCreated) {
        self.probe.record(&message);
    }
}

/// A consumer handler running [`Bench`] over `backend` with `options`, without heartbeats
/// (its handler returns at once).
fn bench_handler<B: MessagingBackend>(
    probe: &Arc<Probe>,
    serializers: SerializerRegistry,
    backend: B,
    options: ConsumerOptions,
) -> SimpleConsumerHandler<Bench, B> {
    let bench = Bench {
        probe: probe.clone(),
    };
    SimpleConsumerHandler::new(bench, serializers, backend).with_options(options.heartbeat(None))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn emit(value: serde_json::Value) {
    println!("{value}");
}

/// CPU nanoseconds per message since `start` (a [`cpu_seconds`] reading).
fn cpu_per_message(start: f64, n: u64) -> f64 {
    (cpu_seconds() - start) * 1e9 / n as f64
}

/// CPU readings at the start of a pipeline run: the whole process, and its main thread.
#[derive(Clone, Copy)]
struct CpuMark {
    process: f64,
    main_thread: f64,
}

impl CpuMark {
    fn now() -> Self {
        Self {
            process: cpu_seconds(),
            main_thread: main_thread_cpu_seconds(),
        }
    }

    /// CPU nanoseconds per message since this mark, one reading of each: the process's and
    /// its main thread's.
    fn per_message(self, n: u64) -> Self {
        let now = Self::now();
        let per_message = |seconds: f64| seconds * 1e9 / n as f64;
        Self {
            process: per_message(now.process - self.process),
            main_thread: per_message(now.main_thread - self.main_thread),
        }
    }
}

/// A pipeline run's line: throughput up to the last handled message, publish-to-handler
/// latency percentiles and CPU per message since `start`. On a multi-threaded runtime the
/// CPU is also split by side: every contender publishes from the future `block_on` runs (the
/// main thread) and consumes in a spawned task (the runtime's workers). Once the window is
/// full the consuming side sets the rate, so its CPU per message is what tells designs apart.
fn pipeline_result(
    contender: &str,
    concurrency: usize,
    probe: &Probe,
    start: CpuMark,
) -> serde_json::Value {
    let n = probe.expected;
    // Both readings before the percentiles: sorting the latencies is the bench's work, and
    // it runs on the main thread.
    let CpuMark {
        process: cpu,
        main_thread: publishing,
    } = start.per_message(n);
    let elapsed = probe.done_ns.load(Ordering::Acquire) as f64 / 1e9;
    let (p50, p99) = probe.percentiles();
    let mut result = serde_json::json!({
        "bench": "pipeline", "contender": contender, "concurrency": concurrency, "messages": n,
        "msgs_per_s": n as f64 / elapsed, "p50_us": p50, "p99_us": p99, "cpu_ns_per_msg": cpu,
    });
    if tokio::runtime::Handle::current().runtime_flavor() != RuntimeFlavor::CurrentThread {
        result["publisher_cpu_ns_per_msg"] = publishing.into();
        result["consumer_cpu_ns_per_msg"] = (cpu - publishing).into();
    }
    result
}

/// A fresh in-memory backend with `queue` declared, and a probe expecting `n` messages that
/// gives a handled message's place in the window back.
async fn windowed_queue(queue: &str, n: u64) -> (InMemoryBackend, Arc<Semaphore>, Arc<Probe>) {
    let backend = InMemoryBackend::new();
    MessagingBackendFactory::new(backend.clone())
        .init_queue(queue)
        .await
        .unwrap();
    let window = Arc::new(Semaphore::new(WINDOW));
    let probe = Probe::new(Instant::now(), n, Some(window.clone()));
    (backend, window, probe)
}

async fn melange_pipeline(n: u64, concurrency: usize) -> serde_json::Value {
    let (backend, window, probe) = windowed_queue("pipeline", n).await;
    let serializers = SerializerRegistry::default();
    let cpu = CpuMark::now();
    let base = probe.base;
    let handler = bench_handler(
        &probe,
        serializers.clone(),
        backend.clone(),
        ConsumerOptions::default()
            .max_in_flight(concurrency)
            .stop_when_idle(Duration::from_millis(300)),
    );
    let consumer = tokio::spawn(async move { handler.consume_loop("pipeline").await });
    let publisher = QueuePublisher::new(serializers, backend);
    publish_orders(&publisher, "pipeline", (0, n), base, Some(&window)).await;
    let summary = consumer.await.unwrap().unwrap();
    let mut result = pipeline_result("melange", concurrency, &probe, cpu);
    assert_eq!(probe.handled.load(Ordering::Acquire), n);
    result["acknowledged"] = summary.acknowledged.into();
    result
}

async fn channel_pipeline(n: u64, concurrency: usize) -> serde_json::Value {
    let (tx, mut rx) = mpsc::channel::<String>(WINDOW);
    let probe = Probe::new(Instant::now(), n, None);
    let cpu = CpuMark::now();
    let base = probe.base;
    let receiver_probe = probe.clone();
    let receiver = tokio::spawn(async move {
        while let Some(body) = rx.recv().await {
            let message: OrderCreated = serde_json::from_str(&body).unwrap();
            receiver_probe.record(&message);
        }
    });
    for seq in 0..n {
        tx.send(serde_json::to_string(&order(seq, base)).unwrap())
            .await
            .unwrap();
    }
    drop(tx);
    receiver.await.unwrap();
    pipeline_result("channel", concurrency, &probe, cpu)
}

/// The smallest at-least-once in-process queue: what any pipeline that can redeliver must do
/// beyond the channel. Bodies are encoded with `serde_json` and published ten at a time under
/// a mutex; the consumer takes up to ten, keeps each body in an in-flight table by id until it
/// is acknowledged (so it could be delivered again), decodes it and calls the handler, then
/// deletes the ids in one locked pass. No receipts, timeouts, ids as text or dispatch: a floor
/// for the work melange's in-memory backend and engine do, not a rival.
async fn leased_pipeline(n: u64, concurrency: usize) -> serde_json::Value {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;
    #[derive(Default)]
    struct Inner {
        ready: VecDeque<(u64, Arc<str>)>,
        in_flight: HashMap<u64, Arc<str>>,
        next: u64,
        closed: bool,
    }
    let shared = Arc::new((Mutex::new(Inner::default()), tokio::sync::Notify::new()));
    let window = Arc::new(Semaphore::new(WINDOW));
    let probe = Probe::new(Instant::now(), n, Some(window.clone()));
    let cpu = CpuMark::now();
    let base = probe.base;
    let consumer_shared = shared.clone();
    let consumer_probe = probe.clone();
    let consumer = tokio::spawn(async move {
        let (lock, notify) = &*consumer_shared;
        loop {
            let notified = notify.notified();
            let batch: Vec<(u64, Arc<str>)> = {
                let mut inner = lock.lock().unwrap();
                let take = inner.ready.len().min(10);
                let batch: Vec<_> = inner.ready.drain(..take).collect();
                for (id, body) in &batch {
                    inner.in_flight.insert(*id, body.clone());
                }
                if batch.is_empty() && inner.closed {
                    return;
                }
                batch
            };
            if batch.is_empty() {
                notified.await;
                continue;
            }
            let mut done = Vec::with_capacity(batch.len());
            for (id, body) in batch {
                let message: OrderCreated = serde_json::from_str(&body).unwrap();
                consumer_probe.record(&message);
                done.push(id);
            }
            let mut inner = lock.lock().unwrap();
            for id in done {
                inner.in_flight.remove(&id);
            }
        }
    });
    let (lock, notify) = &*shared;
    let mut seq = 0;
    while seq < n {
        let batch = (n - seq).min(10);
        window.acquire_many(batch as u32).await.unwrap().forget();
        let bodies: Vec<Arc<str>> = (seq..seq + batch)
            .map(|s| Arc::from(serde_json::to_string(&order(s, base)).unwrap()))
            .collect();
        {
            let mut inner = lock.lock().unwrap();
            for body in bodies {
                let id = inner.next;
                inner.next += 1;
                inner.ready.push_back((id, body));
            }
        }
        notify.notify_one();
        seq += batch;
    }
    lock.lock().unwrap().closed = true;
    notify.notify_one();
    consumer.await.unwrap();
    pipeline_result("leased", concurrency, &probe, cpu)
}

/// melange's publisher and in-memory backend with a hand-written consumer loop instead of the
/// engine: receive ten, decode with `serde_json`, call the handler, acknowledge the batch.
async fn direct_pipeline(n: u64, concurrency: usize) -> serde_json::Value {
    let (backend, window, probe) = windowed_queue("direct", n).await;
    let cpu = CpuMark::now();
    let base = probe.base;
    let consumer_backend = backend.clone();
    let consumer_probe = probe.clone();
    let consumer = tokio::spawn(async move {
        let options = ReceiveOptions {
            max_messages: 10,
            wait_time: Duration::from_millis(200),
            visibility_timeout: None,
        };
        let mut handled = 0;
        while handled < n {
            let batch = consumer_backend.receive("direct", &options).await.unwrap();
            let mut receipts = Vec::with_capacity(batch.len());
            for envelope in batch {
                let envelope = envelope.unwrap();
                let message: OrderCreated = serde_json::from_str(&envelope.content).unwrap();
                consumer_probe.record(&message);
                receipts.push(envelope.delivery.receipt);
            }
            handled += receipts.len() as u64;
            consumer_backend
                .acknowledge_batch("direct", &receipts)
                .await
                .unwrap();
        }
    });
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend);
    publish_orders(&publisher, "direct", (0, n), base, Some(&window)).await;
    consumer.await.unwrap();
    pipeline_result("direct", concurrency, &probe, cpu)
}

/// The pipeline contenders, by the names `MELANGE_BENCH_CONTENDER` and the results use.
const CONTENDERS: [&str; 4] = ["melange", "direct", "leased", "channel"];

/// Runs the pipeline of the contender named `contender` (one of [`CONTENDERS`]).
async fn pipeline_of(contender: &str, n: u64, concurrency: usize) -> serde_json::Value {
    match contender {
        "melange" => melange_pipeline(n, concurrency).await,
        "direct" => direct_pipeline(n, concurrency).await,
        "leased" => leased_pipeline(n, concurrency).await,
        "channel" => channel_pipeline(n, concurrency).await,
        other => panic!("unknown pipeline contender `{other}`"),
    }
}

/// Publishes `count` orders to `queue`, numbered from `first`, in batches of ten; with a
/// window, each batch once the window has room for it.
async fn publish_orders(
    publisher: &QueuePublisher<InMemoryBackend>,
    queue: &str,
    (first, count): (u64, u64),
    base: Instant,
    window: Option<&Semaphore>,
) {
    let mut seq = first;
    while seq < first + count {
        let batch = (first + count - seq).min(10);
        if let Some(window) = window {
            window.acquire_many(batch as u32).await.unwrap().forget();
        }
        let messages: Vec<OrderCreated> = (seq..seq + batch).map(|s| order(s, base)).collect();
        publisher.publish_batch(queue, &messages).await.unwrap();
        seq += batch;
    }
}

/// Receives and acknowledges everything visible through the backend alone, ten at a time;
/// returns how many.
async fn receive_and_acknowledge(backend: &InMemoryBackend) -> u64 {
    let options = ReceiveOptions {
        max_messages: 10,
        wait_time: Duration::ZERO,
        visibility_timeout: None,
    };
    let mut count = 0;
    loop {
        let batch = backend.receive("stages", &options).await.unwrap();
        if batch.is_empty() {
            return count;
        }
        let receipts: Vec<ReceiptHandle> = batch
            .into_iter()
            .map(|envelope| envelope.unwrap().delivery.receipt)
            .collect();
        count += receipts.len() as u64;
        backend
            .acknowledge_batch("stages", &receipts)
            .await
            .unwrap();
    }
}

/// What a message costs on one thread (CPU ns per message), part by part: encoding and
/// decoding it with `serde_json` (the channel's work), publishing it, receiving and
/// acknowledging it through the backend alone (`WINDOW` messages at a time, as the pipeline
/// holds), and the whole pipeline at concurrency 8, melange's and the channel's. What
/// melange's whole costs beyond publishing, receiving and acknowledging is the consumer
/// engine, decoding and the handler.
async fn stages(n: u64) -> serde_json::Value {
    let base = Instant::now();
    let cpu = cpu_seconds();
    for seq in 0..n {
        let body = serde_json::to_string(&order(seq, base)).unwrap();
        let decoded: OrderCreated = serde_json::from_str(&body).unwrap();
        std::hint::black_box(decoded);
    }
    let codec = cpu_per_message(cpu, n);

    let backend = InMemoryBackend::new();
    MessagingBackendFactory::new(backend.clone())
        .init_queue("stages")
        .await
        .unwrap();
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    let (mut publish, mut receive_ack) = (0.0, 0.0);
    let mut seq = 0;
    while seq < n {
        let count = (n - seq).min(WINDOW as u64);
        let cpu = cpu_seconds();
        publish_orders(&publisher, "stages", (seq, count), base, None).await;
        let published = cpu_seconds();
        assert_eq!(receive_and_acknowledge(&backend).await, count);
        publish += published - cpu;
        receive_ack += cpu_seconds() - published;
        seq += count;
    }
    let per_message = |seconds: f64| seconds * 1e9 / n as f64;
    let cpu_of = |run: serde_json::Value| run["cpu_ns_per_msg"].as_f64().unwrap_or(f64::NAN);
    let whole = cpu_of(melange_pipeline(n, 8).await);
    let channel = cpu_of(channel_pipeline(n, 8).await);
    serde_json::json!({
        "bench": "stages", "messages": n, "codec_ns": codec,
        "publish_ns": per_message(publish), "receive_ack_ns": per_message(receive_ack),
        "pipeline_ns": whole, "channel_pipeline_ns": channel,
        "engine_decode_handler_ns": whole - per_message(publish) - per_message(receive_ack),
    })
}

/// The in-memory backend with a fixed latency added to every receive and delete call.
#[derive(Clone)]
struct Slow {
    inner: InMemoryBackend,
    latency: Duration,
    calls: Arc<AtomicU64>,
}

impl Slow {
    async fn pause(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
    }
}

impl MessagingBackend for Slow {
    // `publish_batch_to_topic` stays the trait's default, as it was: one `publish_to_topic`
    // per message (nothing here publishes to a topic).
    crate::forward::forward_backend!(
        inner,
        except receive, acknowledge, acknowledge_batch, change_visibility,
        change_visibility_batch, publish_batch_to_topic
    );

    async fn receive(
        &self,
        queue: &str,
        options: &ReceiveOptions,
    ) -> Result<Received, BackendError> {
        self.pause().await;
        self.inner.receive(queue, options).await
    }
    async fn acknowledge(&self, queue: &str, receipt: &ReceiptHandle) -> Result<(), BackendError> {
        self.pause().await;
        self.inner.acknowledge(queue, receipt).await
    }
    async fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchResult<()>, BackendError> {
        self.pause().await;
        self.inner.acknowledge_batch(queue, receipts).await
    }
    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        self.pause().await;
        self.inner.change_visibility(queue, receipt, timeout).await
    }
    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchResult<()>, BackendError> {
        self.pause().await;
        self.inner.change_visibility_batch(queue, entries).await
    }
}

async fn backlog(backend: &InMemoryBackend, queue: &str, n: u64, base: Instant) {
    MessagingBackendFactory::new(backend.clone())
        .init_queue(queue)
        .await
        .unwrap();
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    publish_orders(&publisher, queue, (0, n), base, None).await;
}

async fn latency_model(receivers: usize, latency: Duration, seconds: f64) -> serde_json::Value {
    let bound = receivers as f64 * 10.0 / latency.as_secs_f64();
    let n = (bound * seconds).ceil() as u64;
    let inner = InMemoryBackend::new();
    let base = Instant::now();
    backlog(&inner, "slow", n, base).await;
    let calls = Arc::new(AtomicU64::new(0));
    let backend = Slow {
        inner,
        latency,
        calls: calls.clone(),
    };
    let start = Instant::now();
    let probe = Probe::new(start, n, None);
    let handler = bench_handler(
        &probe,
        SerializerRegistry::default(),
        backend,
        ConsumerOptions::default()
            .max_in_flight(receivers * 10)
            .receivers(receivers)
            .wait_time(Duration::from_millis(100))
            .stop_when_idle(Duration::from_millis(100)),
    );
    let summary = handler.consume_loop("slow").await.unwrap();
    assert_eq!(probe.handled.load(Ordering::Acquire), n);
    let elapsed = probe.done_ns.load(Ordering::Acquire) as f64 / 1e9;
    let throughput = n as f64 / elapsed;
    serde_json::json!({
        "bench": "latency_model", "receivers": receivers, "max_in_flight": receivers * 10,
        "latency_ms": latency.as_secs_f64() * 1e3, "messages": n, "msgs_per_s": throughput,
        "bound_msgs_per_s": bound, "ratio": throughput / bound,
        "backend_calls": calls.load(Ordering::Relaxed), "acknowledged": summary.acknowledged,
    })
}

fn status_kb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

async fn rss(backlog_size: u64) -> serde_json::Value {
    let backend = InMemoryBackend::new();
    let base = Instant::now();
    backlog(&backend, "rss", backlog_size, base).await;
    let before_consume_mb = status_kb("VmRSS:") / 1024.0;
    let probe = Probe::new(base, backlog_size, None);
    let handler = bench_handler(
        &probe,
        SerializerRegistry::default(),
        backend,
        ConsumerOptions::default()
            .max_in_flight(64)
            .stop_when_idle(Duration::from_millis(if backlog_size == 0 {
                1000
            } else {
                200
            })),
    );
    let cpu = cpu_seconds();
    let summary = handler.consume_loop("rss").await.unwrap();
    // The drain's CPU per message: the cost of a deep queue, which the pipeline (a few hundred
    // messages between publisher and handler) does not see.
    let drain_cpu_ns_per_msg = (backlog_size > 0).then(|| cpu_per_message(cpu, backlog_size));
    serde_json::json!({
        "bench": if backlog_size == 0 { "rss_idle" } else { "rss_backlog" },
        "backlog": backlog_size, "acknowledged": summary.acknowledged,
        "rss_before_consume_mb": before_consume_mb,
        "peak_rss_mb": status_kb("VmHWM:") / 1024.0,
        "rss_after_mb": status_kb("VmRSS:") / 1024.0,
        "drain_cpu_ns_per_msg": drain_cpu_ns_per_msg,
    })
}

/// Runs what `MELANGE_BENCH` selects; `allocator` names the bench binary's global allocator
/// and is written into every pipeline line.
pub fn run(allocator: &str) {
    let selected = std::env::var("MELANGE_BENCH").ok();
    let quick = selected.is_none();
    // Messages per pipeline run, for every mode that runs one.
    let n = env_u64("MELANGE_BENCH_N", if quick { 20_000 } else { 200_000 });
    let wants = |name: &str| {
        selected
            .as_deref()
            .is_none_or(|s| s.split(',').any(|x| x.trim() == name))
    };
    // Multi-threaded as a service runs it; `MELANGE_BENCH_RUNTIME=current_thread` measures the
    // CPU cost alone, without cross-thread wake-ups (for profiling).
    let runtime = if std::env::var("MELANGE_BENCH_RUNTIME").as_deref() == Ok("current_thread") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(env_u64("MELANGE_BENCH_WORKERS", 2) as usize)
            .enable_all()
            .build()
            .unwrap()
    };
    runtime.block_on(async {
        if wants("pipeline") {
            let rounds = env_u64("MELANGE_BENCH_ROUNDS", if quick { 1 } else { 9 });
            let concurrencies: Vec<usize> = std::env::var("MELANGE_BENCH_CONCURRENCY")
                .map(|list| {
                    list.split(',')
                        .filter_map(|c| c.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_else(|_| vec![1, 8, 64]);
            // Interleaved: each round runs every contender once, alternating which goes first;
            // the report pairs the two of a round and concurrency (the machine's speed drifts).
            let alone = std::env::var("MELANGE_BENCH_CONTENDER").ok();
            for round in 0..rounds {
                for &concurrency in &concurrencies {
                    let order = match alone.as_deref() {
                        Some(name) if CONTENDERS.contains(&name) => vec![name],
                        _ if round % 2 == 0 => vec!["melange", "channel"],
                        _ => vec!["channel", "melange"],
                    };
                    for contender in order {
                        let mut result = pipeline_of(contender, n, concurrency).await;
                        result["round"] = round.into();
                        result["allocator"] = allocator.into();
                        emit(result);
                    }
                }
            }
        }
        if wants("floors") {
            // melange against the two diagnostic floors and the channel, at concurrency 8,
            // interleaved (each round in another order, the machine's speed drifts).
            let rounds = env_u64("MELANGE_BENCH_ROUNDS", if quick { 1 } else { 9 });
            for round in 0..rounds {
                for k in 0..CONTENDERS.len() {
                    let contender = CONTENDERS[(k + round as usize) % CONTENDERS.len()];
                    let mut result = pipeline_of(contender, n, 8).await;
                    result["bench"] = "floors".into();
                    result["round"] = round.into();
                    result["allocator"] = allocator.into();
                    emit(result);
                }
            }
        }
        if wants("latency") {
            let latency = Duration::from_millis(env_u64("MELANGE_BENCH_LATENCY_MS", 20));
            let seconds = if quick { 0.5 } else { 3.0 };
            for receivers in [1, 2, 4, 8] {
                emit(latency_model(receivers, latency, seconds).await);
            }
        }
        // Peak RSS is per process: only when asked for explicitly.
        if selected.as_deref() == Some("rss_idle") {
            emit(rss(0).await);
        }
        if selected.as_deref() == Some("rss_backlog") {
            emit(rss(env_u64("MELANGE_BENCH_BACKLOG", 100_000)).await);
        }
    });
    if wants("stages") {
        // One thread by definition: the costs without any handoff between threads.
        let one_thread = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for round in 0..env_u64("MELANGE_BENCH_ROUNDS", if quick { 1 } else { 5 }) {
            let mut result = one_thread.block_on(stages(n));
            result["round"] = round.into();
            result["allocator"] = allocator.into();
            emit(result);
        }
    }
}
