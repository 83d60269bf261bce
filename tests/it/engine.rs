//! The production consumer engine on the in-memory backend, mostly under tokio's paused clock:
//! concurrency, heartbeats, retries, poison messages, batched acknowledgements, graceful
//! shutdown, FIFO groups, events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use melange::backend::{BatchResult, Received};
use melange::{
    BackendError, ConsumerEvent, ConsumerOptions, Failure, InMemoryBackend, MessageContext,
    MessagingBackend, MessagingBackendFactory, NoRetryOutcome, OutgoingMessage, PoisonOutcome,
    PublishOptions, QueuePublisher, ReceiptHandle, ReceiveOptions, RetryBackoff,
    SerializerRegistry, Shutdown, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize, melange::Message)]
struct Job {
    id: u64,
    /// How long the handler works on it, in milliseconds.
    work_ms: u64,
    /// `"ok"`, `"fail"`, `"panic"`, `"no-retry"`, `"retry-later"` (60 s), `"retry-tomorrow"`.
    behaviour: String,
}

impl Job {
    fn new(id: u64, work_ms: u64, behaviour: &str) -> Self {
        Self {
            id,
            work_ms,
            behaviour: behaviour.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, melange::Message)]
struct Step {
    group: String,
    seq: u64,
    fail_first_time: bool,
}

/// Records every run: job id, start and end instants, receive count.
#[derive(Default)]
struct Worker {
    running: AtomicUsize,
    max_running: AtomicUsize,
    runs: Mutex<Vec<(u64, Instant, Instant, u32)>>,
    steps: Mutex<Vec<(String, u64, u32)>>,
}

impl Worker {
    fn runs_of(&self, id: u64) -> Vec<(Instant, Instant, u32)> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == id)
            .map(|r| (r.1, r.2, r.3))
            .collect()
    }

    fn completed(&self) -> usize {
        self.runs.lock().unwrap().len()
    }
}

#[melange::listener]
impl Worker {
    async fn on_job(&self, job: Job, ctx: MessageContext<'_>) -> Result<(), Failure> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(job.work_ms)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.runs
            .lock()
            .unwrap()
            .push((job.id, started, Instant::now(), ctx.receive_count()));
        match job.behaviour.as_str() {
            "fail" => Err(Failure::new(format!("job {} failed", job.id))),
            "panic" => panic!("job {} panicked", job.id),
            "no-retry" => Err(Failure::no_retry("hopeless")),
            "retry-later" => Err(Failure::retry_after(Duration::from_secs(60), "later")),
            "retry-tomorrow" => Err(Failure::retry_after(
                Duration::from_secs(24 * 3600),
                "tomorrow",
            )),
            _ => Ok(()),
        }
    }

    async fn on_step(&self, step: Step, ctx: MessageContext<'_>) -> Result<(), Failure> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.steps
            .lock()
            .unwrap()
            .push((step.group.clone(), step.seq, ctx.receive_count()));
        if step.fail_first_time && ctx.receive_count() == 1 {
            return Err(Failure::new("first try fails"));
        }
        Ok(())
    }
}

/// Wraps a backend and records the calls the engine makes.
#[derive(Clone)]
struct Recorder {
    inner: InMemoryBackend,
    calls: Arc<Mutex<Vec<(Instant, String, usize)>>>,
    /// Receipt → instant it was acknowledged; and visibility changes with their instants.
    acked: Arc<Mutex<HashMap<String, Instant>>>,
    visibility: Arc<Mutex<Vec<(Instant, String, Duration)>>>,
    /// Faults to inject: this many visibility batches fail as if the server were
    /// unreachable; this many publishes to this queue fail likewise.
    failing_visibility_batches: Arc<AtomicUsize>,
    failing_publishes: Arc<Mutex<Option<(String, usize)>>>,
}

impl Recorder {
    fn new(inner: InMemoryBackend) -> Self {
        Self {
            inner,
            calls: Arc::default(),
            acked: Arc::default(),
            visibility: Arc::default(),
            failing_visibility_batches: Arc::default(),
            failing_publishes: Arc::default(),
        }
    }

    fn unavailable(target: &str) -> BackendError {
        BackendError::Unavailable {
            target: target.to_owned(),
            source: "injected fault".into(),
        }
    }

    fn record(&self, call: &str, entries: usize) {
        self.calls
            .lock()
            .unwrap()
            .push((Instant::now(), call.to_owned(), entries));
    }

    fn count(&self, call: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.1 == call)
            .count()
    }
}

impl MessagingBackend for Recorder {
    // The batch publishes stay the trait's defaults, as they were: one single publish per
    // message, unrecorded either way.
    crate::forward::forward_backend!(
        inner,
        except receive, acknowledge, acknowledge_batch, change_visibility,
        change_visibility_batch, publish_to_queue, publish_batch_to_queue, publish_batch_to_topic
    );

    async fn publish_to_queue(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        if let Some((target, left)) = &mut *self.failing_publishes.lock().unwrap()
            && target == queue
            && *left > 0
        {
            *left -= 1;
            return Err(Self::unavailable(queue));
        }
        self.inner.publish_to_queue(queue, message).await
    }

    async fn receive(
        &self,
        queue: &str,
        options: &ReceiveOptions,
    ) -> Result<Received, BackendError> {
        let received = self.inner.receive(queue, options).await;
        self.record("receive", received.as_ref().map_or(0, Vec::len));
        received
    }
    async fn acknowledge(&self, queue: &str, receipt: &ReceiptHandle) -> Result<(), BackendError> {
        self.record("acknowledge", 1);
        self.acked
            .lock()
            .unwrap()
            .insert(receipt.as_str().to_owned(), Instant::now());
        self.inner.acknowledge(queue, receipt).await
    }
    async fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchResult<()>, BackendError> {
        self.record("acknowledge_batch", receipts.len());
        for receipt in receipts {
            self.acked
                .lock()
                .unwrap()
                .insert(receipt.as_str().to_owned(), Instant::now());
        }
        self.inner.acknowledge_batch(queue, receipts).await
    }
    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        self.record("change_visibility", 1);
        self.visibility.lock().unwrap().push((
            Instant::now(),
            receipt.as_str().to_owned(),
            timeout,
        ));
        self.inner.change_visibility(queue, receipt, timeout).await
    }
    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchResult<()>, BackendError> {
        self.record("change_visibility_batch", entries.len());
        let failing = &self.failing_visibility_batches;
        if failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Self::unavailable(queue));
        }
        for (receipt, timeout) in entries {
            self.visibility.lock().unwrap().push((
                Instant::now(),
                receipt.as_str().to_owned(),
                *timeout,
            ));
        }
        self.inner.change_visibility_batch(queue, entries).await
    }
}

const QUEUE: &str = "jobs";

async fn backend_with_queue(visibility: Duration) -> InMemoryBackend {
    let backend = InMemoryBackend::new();
    MessagingBackendFactory::new(backend.clone())
        .init_queue(QUEUE)
        .dead_letter_queue("jobs-dlq")
        .visibility_timeout(visibility)
        .await
        .unwrap();
    backend
}

async fn publish_jobs(backend: &InMemoryBackend, jobs: impl IntoIterator<Item = Job>) {
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    let jobs: Vec<Job> = jobs.into_iter().collect();
    for chunk in jobs.chunks(10) {
        for result in publisher.publish_batch(QUEUE, chunk).await.unwrap() {
            result.unwrap();
        }
    }
}

fn handler<B: MessagingBackend>(
    worker: &Arc<Worker>,
    backend: B,
    options: ConsumerOptions,
) -> SimpleConsumerHandler<Arc<Worker>, B> {
    SimpleConsumerHandler::new(worker.clone(), SerializerRegistry::default(), backend)
        .with_options(options)
}

async fn queue_is_empty(backend: &InMemoryBackend, queue: &str) -> bool {
    let options = ReceiveOptions {
        wait_time: Duration::ZERO,
        ..ReceiveOptions::default()
    };
    backend.receive(queue, &options).await.unwrap().is_empty()
}

#[tokio::test(start_paused = true)]
async fn one_slow_handler_does_not_hold_back_the_fast_ones() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    let mut jobs = vec![Job::new(0, 10_000, "ok")];
    jobs.extend((1..=20).map(|id| Job::new(id, 50, "ok")));
    publish_jobs(&backend, jobs).await;

    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .max_in_flight(8)
        .stop_when_idle(Duration::from_secs(1));
    let summary = handler(&worker, backend.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();

    let slow_end = worker.runs_of(0)[0].1;
    for id in 1..=20 {
        let (_, end, _) = worker.runs_of(id)[0];
        assert!(end < slow_end, "fast job {id} finished after the slow one");
    }
    assert_eq!((summary.succeeded, summary.acknowledged), (21, 21));
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_and_prefetch_never_exceeds_free_capacity() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, (0..200).map(|id| Job::new(id, 100, "ok"))).await;
    let recorder = Recorder::new(backend.clone());

    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .max_in_flight(16)
        .stop_when_idle(Duration::from_secs(1));
    let consume = handler(&worker, recorder.clone(), options);
    let run = tokio::spawn(async move { consume.consume_loop(QUEUE).await });
    let mut max_unfinished = 0;
    while !run.is_finished() {
        let stats = backend.queue_stats(QUEUE).unwrap();
        max_unfinished = max_unfinished.max(stats.in_flight);
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.succeeded, 200);
    assert_eq!(worker.max_running.load(Ordering::SeqCst), 16);
    // Received but unacknowledged messages: the 16 running plus at most one flush window of
    // finished ones awaiting their batched acknowledgement.
    assert!(
        max_unfinished <= 16 + 16,
        "{max_unfinished} messages held at once"
    );
    // Several receives ran in parallel (16 slots, batches of 10).
    let receives = recorder.count("receive");
    assert!(receives >= 20, "{receives} receives for 200 messages");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_long_handler_from_running_twice_and_stop_with_the_ack() {
    let backend = backend_with_queue(Duration::from_secs(10)).await;
    publish_jobs(&backend, [Job::new(1, 35_000, "ok")]).await;
    let recorder = Recorder::new(backend.clone());
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .max_in_flight(4)
        .stop_when_idle(Duration::from_secs(20));

    // A second consumer polls the same queue the whole time: it must never see the message.
    let rival = Arc::new(Worker::default());
    let rival_handler = handler(
        &rival,
        backend.clone(),
        ConsumerOptions::default().stop_when_idle(Duration::from_secs(20)),
    );
    let consume = handler(&worker, recorder.clone(), options);
    let (summary, rival_summary) = tokio::join!(consume.consume_loop(QUEUE), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rival_handler.consume_loop(QUEUE).await
    });
    assert_eq!(summary.unwrap().succeeded, 1);
    assert_eq!(rival_summary.unwrap().received, 0);
    assert_eq!(worker.completed(), 1);

    let changes = recorder.visibility.lock().unwrap().clone();
    assert!(
        changes.len() >= 6,
        "35 s at a 10 s timeout needs about 7 heartbeats, saw {}",
        changes.len()
    );
    let acked = recorder.acked.lock().unwrap().clone();
    for (at, receipt, timeout) in changes {
        assert_eq!(timeout, Duration::from_secs(10));
        assert!(
            at <= acked[&receipt],
            "heartbeat sent after the acknowledgement"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn without_heartbeats_a_handler_slower_than_the_timeout_runs_twice() {
    let backend = backend_with_queue(Duration::from_secs(10)).await;
    publish_jobs(&backend, [Job::new(1, 15_000, "ok")]).await;
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .heartbeat(None)
        .max_in_flight(4)
        .stop_when_idle(Duration::from_secs(20));
    handler(&worker, backend.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    let runs = worker.runs_of(1);
    // The documented duplicate: the message came back while the first run was still going.
    assert!(runs.len() >= 2, "{runs:?}");
    assert_eq!(runs[1].2, 2);
    assert!(
        runs[1].0 < runs[0].1,
        "the second run started before the first ended"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_with_growing_backoff_then_dead_lettered() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(1, 0, "fail")]).await;
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default().stop_when_idle(Duration::from_secs(20));
    let summary = handler(&worker, backend.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();

    let runs = worker.runs_of(1);
    assert_eq!(runs.len(), 4, "max receives of the redrive policy");
    let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1].0 - w[0].1).collect();
    for (n, gap) in gaps.iter().enumerate() {
        let full = Duration::from_secs(1 << n);
        assert!(
            *gap >= full / 2 && *gap <= full + Duration::from_millis(300),
            "gap {n}: {gap:?}"
        );
    }
    assert_eq!(summary.retried, 4);
    assert!(queue_is_empty(&backend, QUEUE).await);
    assert!(!queue_is_empty(&backend, "jobs-dlq").await);
}

#[tokio::test(start_paused = true)]
async fn a_handler_can_refuse_retries_or_ask_for_a_delay() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(
        &backend,
        [Job::new(1, 0, "no-retry"), Job::new(2, 0, "retry-later")],
    )
    .await;
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default().stop_when_idle(Duration::from_secs(20));
    let summary = handler(&worker, backend.clone(), options.clone())
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!(summary.dead_lettered, 1);
    assert_eq!(worker.runs_of(1).len(), 1);
    assert_eq!(
        worker.runs_of(2).len(),
        1,
        "job 2 waits 60 s, longer than the idle time"
    );

    let first_end = worker.runs_of(2)[0].1;
    // An idle stop waits at most 20 s (SQS's longest poll): loop until the retry arrives.
    for _ in 0..4 {
        if worker.runs_of(2).len() > 1 {
            break;
        }
        handler(&worker, backend.clone(), options.clone())
            .consume_loop(QUEUE)
            .await
            .unwrap();
    }
    let rerun = worker.runs_of(2)[1].0;
    let delay = rerun - first_end;
    assert!(
        delay >= Duration::from_secs(60) && delay < Duration::from_secs(61),
        "retried after {delay:?}"
    );

    // Discard instead of dead-lettering.
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(3, 0, "no-retry")]).await;
    let options = ConsumerOptions::default()
        .no_retry(NoRetryOutcome::Discard)
        .stop_when_idle(Duration::from_secs(1));
    let summary = handler(&worker, backend.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!((summary.dead_lettered, summary.acknowledged), (0, 1));
    assert!(queue_is_empty(&backend, "jobs-dlq").await);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_a_failure_and_the_loop_goes_on() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(1, 0, "panic"), Job::new(2, 0, "ok")]).await;
    let worker = Arc::new(Worker::default());
    let later = RetryBackoff {
        base: Duration::from_secs(10),
        max: Duration::from_secs(10),
    };
    let options = ConsumerOptions::default()
        .retry_backoff(Some(later))
        .stop_when_idle(Duration::from_secs(1));
    let summary = handler(&worker, backend.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!(summary.panicked, 1);
    assert_eq!(summary.succeeded, 1);
    assert_eq!(summary.retried, 1);
}

#[tokio::test(start_paused = true)]
async fn poison_messages_are_settled_without_holding_a_slot() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(1, 60_000, "ok")]).await;
    for i in 0..30 {
        let manifest = if i % 2 == 0 { "Unknown" } else { "Job" };
        let serializer = if i % 3 == 0 { 42 } else { 1 };
        backend
            .publish_to_queue(
                QUEUE,
                OutgoingMessage::new("{not json", manifest.to_owned(), serializer),
            )
            .await
            .unwrap();
    }
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .max_in_flight(2)
        .undecodable(PoisonOutcome::Discard)
        .unknown_manifest(PoisonOutcome::Discard)
        .stop_when_idle(Duration::from_secs(70));
    let poison_done = Arc::new(Mutex::new(None));
    let recorded = poison_done.clone();
    let poisoned = Arc::new(AtomicUsize::new(0));
    let counter = poisoned.clone();
    let consume = handler(&worker, backend.clone(), options).on_event(move |event| {
        if let ConsumerEvent::Poison { .. } = event
            && counter.fetch_add(1, Ordering::SeqCst) + 1 == 30
        {
            *recorded.lock().unwrap() = Some(Instant::now());
        }
    });
    let started = Instant::now();
    let summary = consume.consume_loop(QUEUE).await.unwrap();
    assert_eq!(summary.poison, 30);
    let all_poison_settled = poison_done.lock().unwrap().expect("30 poison events") - started;
    assert!(
        all_poison_settled < Duration::from_secs(5),
        "took {all_poison_settled:?} behind a 60 s handler"
    );
    assert_eq!(summary.acknowledged, 31);
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_are_batched_and_flushed_on_a_timer() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, (0..40).map(|id| Job::new(id, 10, "ok"))).await;
    let recorder = Recorder::new(backend.clone());
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .max_in_flight(10)
        .stop_when_idle(Duration::from_secs(1));
    let summary = handler(&worker, recorder.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!(summary.acknowledged, 40);
    assert_eq!(recorder.count("acknowledge"), 0);
    let batches = recorder.count("acknowledge_batch");
    assert!(batches <= 6, "{batches} delete calls for 40 messages");

    // A lone message is acknowledged within the flush interval, not at shutdown.
    publish_jobs(&backend, [Job::new(99, 0, "ok")]).await;
    let options = ConsumerOptions::default().stop_when_idle(Duration::from_secs(5));
    let started = Instant::now();
    handler(&worker, recorder.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    let acked_at = recorder
        .calls
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c.1 == "acknowledge_batch")
        .unwrap()
        .0;
    assert!(
        acked_at - started <= Duration::from_millis(250),
        "acked after {:?}",
        acked_at - started
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_handlers_finish_flushes_and_returns() {
    let backend = backend_with_queue(Duration::from_secs(60)).await;
    publish_jobs(&backend, (0..6).map(|id| Job::new(id, 5_000, "ok"))).await;
    let worker = Arc::new(Worker::default());
    let shutdown = Shutdown::new();
    let consume = handler(&worker, backend.clone(), ConsumerOptions::default())
        .with_shutdown(shutdown.clone());
    let run = tokio::spawn(async move { consume.consume_loop(QUEUE).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.trigger();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(
        (summary.succeeded, summary.acknowledged, summary.released),
        (6, 6, 0)
    );
    assert!(queue_is_empty(&backend, QUEUE).await);
}

/// Counts the jobs it handles, without waiting on anything: every handler finishes on its
/// first poll, and on a busy in-memory queue every receive and acknowledgement does too.
#[derive(Default)]
struct Tally {
    handled: AtomicUsize,
}

#[melange::listener]
impl Tally {
    async fn on_job(&self, _job: Job) -> Result<(), Failure> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_seen_while_a_busy_queue_never_runs_dry() {
    const BACKLOG: usize = 30_000;
    let backend = backend_with_queue(Duration::from_secs(600)).await;
    publish_jobs(
        &backend,
        (0..BACKLOG as u64).map(|id| Job::new(id, 0, "ok")),
    )
    .await;
    let tally = Arc::new(Tally::default());
    let shutdown = Shutdown::new();
    let consume = SimpleConsumerHandler::new(
        tally.clone(),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_shutdown(shutdown.clone());
    let run = tokio::spawn(async move { consume.consume_loop(QUEUE).await });
    while tally.handled.load(Ordering::SeqCst) < 100 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    shutdown.trigger();
    let summary = run.await.unwrap().unwrap();
    let handled = tally.handled.load(Ordering::SeqCst);
    assert!(
        handled < BACKLOG / 2,
        "the loop stopped only after handling {handled} of {BACKLOG} messages"
    );
    assert_eq!(summary.acknowledged as usize, handled);
}

#[tokio::test(start_paused = true)]
async fn shutdown_past_the_deadline_releases_unfinished_messages_at_once() {
    let backend = backend_with_queue(Duration::from_secs(600)).await;
    let mut jobs: Vec<Job> = (0..4).map(|id| Job::new(id, 100, "ok")).collect();
    jobs.extend((4..10).map(|id| Job::new(id, 60_000, "ok")));
    publish_jobs(&backend, jobs).await;
    let worker = Arc::new(Worker::default());
    let shutdown = Shutdown::new();
    let consume = handler(
        &worker,
        backend.clone(),
        ConsumerOptions::default().shutdown_deadline(Duration::from_secs(2)),
    )
    .with_shutdown(shutdown.clone());
    let run = tokio::spawn(async move { consume.consume_loop(QUEUE).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.trigger();
    let summary = run.await.unwrap().unwrap();
    assert_eq!((summary.succeeded, summary.released), (4, 6));

    // Released means visible now, not after the 600 s visibility timeout; the next consumer
    // handles exactly the unfinished ones.
    let next = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .stop_when_idle(Duration::ZERO)
        .max_in_flight(10);
    let started = Instant::now();
    let mut jobs_quick: Vec<u64> = Vec::new();
    let summary = handler(&next, backend.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!(summary.received, 6);
    assert!(Instant::now() - started <= Duration::from_secs(61));
    jobs_quick.extend(next.runs.lock().unwrap().iter().map(|r| r.0));
    jobs_quick.sort_unstable();
    assert_eq!(jobs_quick, (4..10).collect::<Vec<_>>());
    assert_eq!(
        worker.completed() + next.completed(),
        10,
        "nothing lost, nothing twice"
    );
}

#[tokio::test(start_paused = true)]
async fn fifo_groups_run_in_parallel_in_order_and_a_failure_holds_its_group_back() {
    let backend = InMemoryBackend::new();
    MessagingBackendFactory::new(backend.clone())
        .init_queue("steps.fifo")
        .dead_letter_queue("steps-dlq.fifo")
        .await
        .unwrap();
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    for seq in 0..5 {
        for group in ["a", "b", "c"] {
            let step = Step {
                group: group.into(),
                seq,
                fail_first_time: group == "b" && seq == 1,
            };
            let options = PublishOptions::default()
                .message_group_id(group)
                .deduplication_id(format!("{group}-{seq}"));
            publisher
                .publish_with("steps.fifo", &step, options)
                .await
                .unwrap();
        }
    }
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .max_in_flight(10)
        .stop_when_idle(Duration::from_secs(20));
    let consume = SimpleConsumerHandler::new(
        worker.clone(),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_options(options);
    let summary = consume.consume_loop("steps.fifo").await.unwrap();
    assert_eq!(summary.failed, 1);

    let steps = worker.steps.lock().unwrap().clone();
    for group in ["a", "b", "c"] {
        let seqs: Vec<u64> = steps
            .iter()
            .filter(|s| s.0 == group && !(s.0 == "b" && s.1 == 1 && s.2 == 1))
            .map(|s| s.1)
            .collect();
        assert_eq!(
            seqs,
            [0, 1, 2, 3, 4],
            "group {group} out of order: {steps:?}"
        );
    }
    // b/1 failed once; b/2..b/4 were not processed before its retry.
    let b_first_failure = steps.iter().position(|s| s.0 == "b" && s.1 == 1).unwrap();
    let b_two = steps.iter().position(|s| s.0 == "b" && s.1 == 2).unwrap();
    let b_retry = steps.iter().rposition(|s| s.0 == "b" && s.1 == 1).unwrap();
    assert!(b_first_failure < b_retry && b_retry < b_two);
    // Groups ran in parallel.
    assert!(worker.max_running.load(Ordering::SeqCst) >= 2);
}

#[test]
fn metrics_count_what_the_loop_does_per_queue() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let backend = backend_with_queue(Duration::from_secs(30)).await;
            publish_jobs(
                &backend,
                [
                    Job::new(1, 0, "ok"),
                    Job::new(2, 0, "ok"),
                    Job::new(3, 0, "fail"),
                ],
            )
            .await;
            let worker = Arc::new(Worker::default());
            let later = RetryBackoff {
                base: Duration::from_secs(60),
                max: Duration::from_secs(60),
            };
            let options = ConsumerOptions::default()
                .retry_backoff(Some(later))
                .stop_when_idle(Duration::from_secs(1));
            handler(&worker, backend, options)
                .consume_loop(QUEUE)
                .await
                .unwrap();
        });
    });

    let mut counters = HashMap::new();
    let mut handler_seconds = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        assert_eq!(labels, ["queue=jobs"], "{key:?}");
        match value {
            DebugValue::Counter(count) => {
                counters.insert(key.key().name().to_owned(), count);
            }
            DebugValue::Histogram(samples)
                if key.key().name() == "melange_handler_duration_seconds" =>
            {
                handler_seconds = samples.len();
            }
            _ => {}
        }
    }
    assert_eq!(counters["melange_messages_received_total"], 3);
    assert_eq!(counters["melange_messages_handled_total"], 2);
    assert_eq!(counters["melange_messages_failed_total"], 1);
    assert_eq!(counters["melange_messages_retried_total"], 1);
    assert_eq!(handler_seconds, 3);
}

#[tokio::test(start_paused = true)]
async fn options_set_to_never_do_not_overflow_the_clock() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, (0..3).map(|id| Job::new(id, 2_000, "ok"))).await;
    let worker = Arc::new(Worker::default());
    let shutdown = Shutdown::new();
    let options = ConsumerOptions::default()
        .shutdown_deadline(Duration::MAX)
        .ack_flush_interval(Duration::MAX)
        .error_backoff(Duration::MAX);
    let consume = handler(&worker, backend.clone(), options).with_shutdown(shutdown.clone());
    let run = tokio::spawn(async move { consume.consume_loop(QUEUE).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Stopping adds the deadline to the clock: with "never" the handlers finish.
    shutdown.trigger();
    let summary = run.await.unwrap().unwrap();
    assert_eq!((summary.succeeded, summary.acknowledged), (3, 3));
    assert!(queue_is_empty(&backend, QUEUE).await);
}

#[tokio::test(start_paused = true)]
async fn a_retry_delay_past_the_twelve_hour_limit_is_shortened_not_refused() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    // The handler works 1 s, then asks for 24 h: SQS refuses a visibility change ending
    // more than 12 h after the receive.
    publish_jobs(&backend, [Job::new(1, 1_000, "retry-tomorrow")]).await;
    let worker = Arc::new(Worker::default());
    let retry_in = Arc::new(Mutex::new(None));
    let recorded = retry_in.clone();
    let options = ConsumerOptions::default().stop_when_idle(Duration::from_secs(20));
    let summary = handler(&worker, backend.clone(), options.clone())
        .on_event(move |event| {
            if let ConsumerEvent::Failed { retry_in, .. } = event {
                *recorded.lock().unwrap() = *retry_in;
            }
        })
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!(summary.retried, 1);
    let retry_in = retry_in.lock().unwrap().expect("a retry delay");
    assert!(
        retry_in > Duration::from_secs(11 * 3600) && retry_in < Duration::from_secs(12 * 3600),
        "retry in {retry_in:?}"
    );

    // Not back after the 30 s visibility timeout, as it would be had the change been refused.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(queue_is_empty(&backend, QUEUE).await, "came back early");
    assert_eq!(worker.runs_of(1).len(), 1);
    // Back within the 12 hours.
    tokio::time::sleep(Duration::from_secs(12 * 3600)).await;
    handler(&worker, backend.clone(), options)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!(worker.runs_of(1).len(), 2);
}

mod billing {
    /// Counts what it handles; named `Audit`, as `super::reports::Audit` is.
    #[derive(Default)]
    pub struct Audit {
        pub handled: std::sync::atomic::AtomicUsize,
    }

    #[melange::listener]
    impl Audit {
        async fn on_job(&self, _job: super::Job) {
            self.handled
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

mod reports {
    /// Counts what it handles.
    #[derive(Default)]
    pub struct Audit {
        pub handled: std::sync::atomic::AtomicUsize,
    }

    #[melange::listener]
    impl Audit {
        async fn on_job(&self, _job: super::Job) {
            self.handled
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn consumers_that_share_a_name_each_handle_a_message_under_de_duplication() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(1, 0, "ok")]).await;
    let (billing, reports) = (
        Arc::new(billing::Audit::default()),
        Arc::new(reports::Audit::default()),
    );
    let mut consume = melange::ConsumerHandler::new(SerializerRegistry::default(), backend.clone());
    consume
        .attach_consumer(billing.clone())
        .attach_consumer(reports.clone());
    let consume = consume.with_deduplication_cache(melange::InMemoryDeduplicationCache::default());
    let summary = consume.drain(QUEUE).await.unwrap();
    assert_eq!(summary.duplicates, 0);
    assert_eq!(billing.handled.load(Ordering::SeqCst), 1);
    assert_eq!(
        reports.handled.load(Ordering::SeqCst),
        1,
        "skipped as billing's duplicate"
    );
}

/// Refuses every retry of a job.
struct Refuser;

#[melange::listener]
impl Refuser {
    async fn on_job(&self, _job: Job) -> Result<(), Failure> {
        Err(Failure::no_retry("never again"))
    }
}

/// Fails a job on its first receive only, and counts its runs.
#[derive(Default)]
struct Flaky {
    runs: AtomicUsize,
}

#[melange::listener]
impl Flaky {
    async fn on_job(&self, _job: Job, ctx: MessageContext<'_>) -> Result<(), Failure> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if ctx.receive_count() == 1 {
            return Err(Failure::new("not yet"));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn one_consumer_refusing_a_retry_does_not_take_it_from_another() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(1, 0, "ok")]).await;
    let flaky = Arc::new(Flaky::default());
    let mut consume = melange::ConsumerHandler::new(SerializerRegistry::default(), backend.clone());
    consume
        .attach_consumer(Refuser)
        .attach_consumer(flaky.clone());
    let consume =
        consume.with_options(ConsumerOptions::default().no_retry(NoRetryOutcome::Discard));
    let first = consume.drain(QUEUE).await.unwrap();
    assert_eq!((first.retried, first.acknowledged), (1, 0), "{first:?}");
    tokio::time::sleep(Duration::from_secs(60)).await;
    consume.drain(QUEUE).await.unwrap();
    assert_eq!(
        flaky.runs.load(Ordering::SeqCst),
        2,
        "its retry was discarded"
    );
    assert!(queue_is_empty(&backend, QUEUE).await);
}

/// Panics on every job.
struct Panicker;

#[melange::listener]
impl Panicker {
    async fn on_job(&self, job: Job) {
        panic!("job {} is cursed", job.id);
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_names_its_consumer_and_the_others_still_run() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(7, 0, "ok")]).await;
    let worker = Arc::new(Worker::default());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let recorded = errors.clone();
    let mut consume = melange::ConsumerHandler::new(SerializerRegistry::default(), backend.clone());
    consume
        .attach_consumer(Panicker)
        .attach_consumer(worker.clone());
    let consume = consume.on_event(move |event| {
        if let ConsumerEvent::Failed { error, .. } = event {
            recorded.lock().unwrap().push(error.to_string());
        }
    });
    let summary = consume.drain(QUEUE).await.unwrap();
    assert_eq!((summary.panicked, summary.failed), (1, 1));
    assert_eq!(
        worker.runs_of(7).len(),
        1,
        "the consumer after the panic did not run"
    );
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("Panicker") && errors[0].contains("job 7 is cursed"),
        "{errors:?}"
    );
}

/// A FIFO queue with a dead-letter queue, and `messages` published to it in group `a`.
async fn fifo_queue_with(backend: &InMemoryBackend, messages: Vec<OutgoingMessage>) {
    MessagingBackendFactory::new(backend.clone())
        .init_queue("steps.fifo")
        .dead_letter_queue("steps-dlq.fifo")
        .visibility_timeout(Duration::from_secs(30))
        .await
        .unwrap();
    for (seq, mut message) in messages.into_iter().enumerate() {
        message.message_group_id = Some("a".to_owned());
        message.deduplication_id = Some(format!("a-{seq}"));
        backend
            .publish_to_queue("steps.fifo", message)
            .await
            .unwrap();
    }
}

/// An unprocessable message (no consumer takes its manifest) then a step, in one group.
fn unknown_then_step() -> Vec<OutgoingMessage> {
    let step = serde_json::to_string(&Step {
        group: "a".into(),
        seq: 1,
        fail_first_time: false,
    })
    .unwrap();
    vec![
        OutgoingMessage::new("{}".to_owned(), "UnknownEvent".to_owned(), 1),
        OutgoingMessage::new(step, "Step".to_owned(), 1),
    ]
}

#[tokio::test(start_paused = true)]
async fn an_unprocessable_message_left_on_a_fifo_queue_holds_its_group_back() {
    let backend = InMemoryBackend::new();
    fifo_queue_with(&backend, unknown_then_step()).await;
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .unknown_manifest(PoisonOutcome::Redrive)
        .stop_when_idle(Duration::from_secs(1));
    let consume = SimpleConsumerHandler::new(
        worker.clone(),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_options(options);
    let summary = consume.consume_loop("steps.fifo").await.unwrap();
    assert_eq!(summary.poison, 1);
    assert!(
        worker.steps.lock().unwrap().is_empty(),
        "the step ran ahead of the message before it in its group"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fifo_group_waits_for_its_dead_lettered_message_to_leave() {
    let backend = InMemoryBackend::new();
    fifo_queue_with(&backend, unknown_then_step()).await;
    let recorder = Recorder::new(backend.clone());
    *recorder.failing_publishes.lock().unwrap() = Some(("steps-dlq.fifo".to_owned(), 1));
    let worker = Arc::new(Worker::default());
    let options = ConsumerOptions::default()
        .unknown_manifest(PoisonOutcome::DeadLetter)
        .stop_when_idle(Duration::from_secs(1));
    let consume = SimpleConsumerHandler::new(
        worker.clone(),
        SerializerRegistry::default(),
        recorder.clone(),
    )
    .with_options(options.clone());
    // The dead-letter copy fails: the message stays, and so does the step behind it.
    let first = consume.consume_loop("steps.fifo").await.unwrap();
    assert_eq!(first.dead_lettered, 0);
    assert!(
        worker.steps.lock().unwrap().is_empty(),
        "the step ran while the message before it was still on the queue"
    );
    // It comes back after its visibility timeout and is moved; then the step runs.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let second = consume.consume_loop("steps.fifo").await.unwrap();
    assert_eq!(second.dead_lettered, 1);
    assert_eq!(worker.steps.lock().unwrap().len(), 1);
    let options = ReceiveOptions {
        wait_time: Duration::ZERO,
        ..ReceiveOptions::default()
    };
    let dead = backend.receive("steps-dlq.fifo", &options).await.unwrap();
    assert_eq!(dead.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_heartbeat_is_sent_again_before_the_visibility_runs_out() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(1, 45_000, "ok")]).await;
    let recorder = Recorder::new(backend.clone());
    recorder
        .failing_visibility_batches
        .store(1, Ordering::SeqCst);
    let worker = Arc::new(Worker::default());
    let started = Instant::now();
    let consume = handler(
        &worker,
        recorder.clone(),
        ConsumerOptions::default().stop_when_idle(Duration::from_secs(20)),
    );
    // A rival polls the same queue: the message must never be visible to it.
    let rival = Arc::new(Worker::default());
    let rival_handler = handler(
        &rival,
        backend.clone(),
        ConsumerOptions::default().stop_when_idle(Duration::from_secs(20)),
    );
    let (summary, rival_summary) = tokio::join!(consume.consume_loop(QUEUE), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rival_handler.consume_loop(QUEUE).await
    });
    assert_eq!(summary.unwrap().succeeded, 1);
    assert_eq!(
        rival_summary.unwrap().received,
        0,
        "the message was received twice"
    );
    assert_eq!(worker.completed() + rival.completed(), 1);
    // The first heartbeat (at 15 s) failed; the next extension went out within seconds,
    // not at the 30 s the message's visibility ran out.
    let extended = recorder.visibility.lock().unwrap().clone();
    let first = extended.first().expect("an extension").0 - started;
    assert!(
        first < Duration::from_secs(20),
        "first extension at {first:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_event_hook_that_panics_does_not_stop_the_loop() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, (0..3).map(|id| Job::new(id, 10, "ok"))).await;
    let worker = Arc::new(Worker::default());
    let summary = handler(
        &worker,
        backend.clone(),
        ConsumerOptions::default().stop_when_idle(Duration::from_secs(1)),
    )
    .on_event(|event| {
        if let ConsumerEvent::Handled { message_id, .. } = event {
            panic!("hook bug on {message_id}");
        }
    })
    .consume_loop(QUEUE)
    .await
    .unwrap();
    assert_eq!((summary.succeeded, summary.acknowledged), (3, 3));
    assert!(queue_is_empty(&backend, QUEUE).await);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_that_fired_before_the_loop_started_receives_nothing() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, (0..5).map(|id| Job::new(id, 0, "ok"))).await;
    let worker = Arc::new(Worker::default());
    let shutdown = Shutdown::new();
    shutdown.trigger();
    let summary = handler(&worker, backend.clone(), ConsumerOptions::default())
        .with_shutdown(shutdown)
        .consume_loop(QUEUE)
        .await
        .unwrap();
    assert_eq!(summary.received, 0, "{summary:?}");
    assert_eq!(worker.completed(), 0);
    assert_eq!(backend.queue_stats(QUEUE).unwrap().visible, 5);
}

#[tokio::test(start_paused = true)]
async fn a_missing_dead_letter_queue_does_not_stop_the_loop() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    backend.delete_queue("jobs-dlq").await.unwrap();
    publish_jobs(&backend, [Job::new(1, 0, "no-retry"), Job::new(2, 0, "ok")]).await;
    let worker = Arc::new(Worker::default());
    let events = Arc::new(Mutex::new(Vec::new()));
    let recorded = events.clone();
    let summary = handler(
        &worker,
        backend.clone(),
        ConsumerOptions::default().stop_when_idle(Duration::from_secs(1)),
    )
    .on_event(move |event| {
        if let ConsumerEvent::DeadLettered { message_id, .. } = event {
            recorded.lock().unwrap().push(message_id.to_string());
        }
    })
    .consume_loop(QUEUE)
    .await
    .expect("a dead-letter queue that is gone is not the consumed queue");
    assert_eq!(worker.runs_of(2).len(), 1);
    assert_eq!(summary.dead_lettered, 0);
    assert!(
        events.lock().unwrap().is_empty(),
        "DeadLettered reported for a move that failed"
    );
}

#[tokio::test(start_paused = true)]
async fn every_received_batch_is_reported_once_taken_in() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, (0..25).map(|id| Job::new(id, 0, "ok"))).await;
    let worker = Arc::new(Worker::default());
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let recorded = sizes.clone();
    let summary = handler(&worker, backend.clone(), ConsumerOptions::default())
        .on_event(move |event| {
            if let ConsumerEvent::BatchDone { size } = event {
                recorded.lock().unwrap().push(*size);
            }
        })
        .drain(QUEUE)
        .await
        .unwrap();
    let sizes = sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 25, "{sizes:?}");
    assert_eq!(summary.received, 25);
}

#[tokio::test(start_paused = true)]
async fn a_failure_left_to_the_visibility_timeout_is_reported_as_retried() {
    // Without a backoff (Python Melange's behaviour) the message comes back when its
    // visibility runs out: that is a retry, with a known delay.
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    publish_jobs(&backend, [Job::new(1, 5_000, "fail")]).await;
    let worker = Arc::new(Worker::default());
    let retry_in = Arc::new(Mutex::new(None));
    let recorded = retry_in.clone();
    let summary = handler(
        &worker,
        backend.clone(),
        ConsumerOptions::default().retry_backoff(None),
    )
    .on_event(move |event| {
        if let ConsumerEvent::Failed { retry_in, .. } = event {
            *recorded.lock().unwrap() = Some(*retry_in);
        }
    })
    .drain(QUEUE)
    .await
    .unwrap();
    assert_eq!((summary.failed, summary.retried), (1, 1));
    let retry_in = retry_in.lock().unwrap().expect("a Failed event");
    // Received at 0 with a 30 s timeout, failed at 5 s.
    assert_eq!(retry_in, Some(Duration::from_secs(25)));
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_message_names_the_consumer_that_could_not_decode_it() {
    let backend = backend_with_queue(Duration::from_secs(30)).await;
    backend
        .publish_to_queue(
            QUEUE,
            OutgoingMessage::new("{not json", "Job".to_owned(), 1),
        )
        .await
        .unwrap();
    let worker = Arc::new(Worker::default());
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let recorded = reasons.clone();
    let summary = handler(
        &worker,
        backend.clone(),
        ConsumerOptions::default().undecodable(PoisonOutcome::Discard),
    )
    .on_event(move |event| {
        if let ConsumerEvent::Poison { reason, .. } = event {
            recorded.lock().unwrap().push(reason.to_string());
        }
    })
    .drain(QUEUE)
    .await
    .unwrap();
    assert_eq!(summary.poison, 1);
    let reasons = reasons.lock().unwrap().clone();
    assert!(
        reasons.len() == 1 && reasons[0].contains("consumer `Worker`"),
        "{reasons:?}"
    );
}
