//! A consumer as a separate OS process (the `worker` example) on the SQS server (moto),
//! stopped by SIGTERM mid-batch, or killed by SIGKILL mid-batch and replaced (with the Redis
//! de-duplication cache). The worker prints `job N started` / `job N done` around each
//! handler run, line by line, and the test accounts for every job from those lines, the
//! worker's summary, the queue and the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use melange::sqs::ElasticMqBackend;
use melange::sqs::aws_sdk_sqs::types::QueueAttributeName;
use melange::{
    MessagingBackend, MessagingBackendFactory, QueuePublisher, ReceiveOptions, SerializerRegistry,
};
use serde::{Deserialize, Serialize};

use super::harness::{Published, Report};
use crate::examples::example;
use crate::support::{sqs_backend, sqs_endpoint, unique};

/// Jobs per scenario; each takes 100 to 300 ms.
const JOBS: u64 = 150;
/// The worker's `WORKER_CONCURRENCY`: handlers in flight at once.
const CONCURRENCY: usize = 12;
/// The worker's `WORKER_SHUTDOWN_DEADLINE`, in seconds.
const SHUTDOWN_DEADLINE: u64 = 10;

/// The worker example's message (same manifest, `Job`, and fields).
#[derive(Serialize, Deserialize, melange::Message)]
struct Job {
    id: u64,
    work_ms: u64,
}

/// What a worker printed.
#[derive(Debug, Default)]
struct Log {
    /// Job ids whose handler started, one entry per run.
    started: Vec<u64>,
    /// Job ids whose handler returned, one entry per run.
    done: Vec<u64>,
    /// The final line's counts: jobs done, acknowledged, skipped as duplicates, released.
    summary: Option<[u64; 4]>,
}

impl Log {
    fn parse(lines: &[String]) -> Self {
        let mut log = Log::default();
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["job", id, "started", ..] => log.started.push(id.parse().unwrap()),
                ["job", id, "done"] => log.done.push(id.parse().unwrap()),
                ["worker:", "stopped;", ..] => {
                    let numbers: Vec<u64> = words
                        .iter()
                        .filter_map(|w| w.trim_end_matches(',').parse().ok())
                        .collect();
                    log.summary =
                        Some(numbers.try_into().unwrap_or_else(|n| {
                            panic!("unexpected summary line {line:?} ({n:?})")
                        }));
                }
                _ => {}
            }
        }
        log
    }

    fn started_distinct(&self) -> BTreeSet<u64> {
        self.started.iter().copied().collect()
    }

    fn done_distinct(&self) -> BTreeSet<u64> {
        self.done.iter().copied().collect()
    }

    fn acknowledged(&self) -> u64 {
        self.summary.expect("the worker printed its summary")[1]
    }

    #[cfg(feature = "redis")]
    fn duplicates(&self) -> u64 {
        self.summary.expect("the worker printed its summary")[2]
    }
}

/// A running `worker -- work` process whose stdout lines are collected; killed on drop.
struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(prefix: &str, redis_url: Option<&str>) -> Self {
        let mut command: Command = example("worker");
        command
            .arg("work")
            .env("MELANGE_SQS_ENDPOINT", sqs_endpoint())
            .env("MELANGE_EXAMPLE_PREFIX", prefix)
            .env("WORKER_CONCURRENCY", CONCURRENCY.to_string())
            .env("WORKER_SHUTDOWN_DEADLINE", SHUTDOWN_DEADLINE.to_string())
            .env_remove("WORKER_REDIS_URL");
        if let Some(url) = redis_url {
            command.env("WORKER_REDIS_URL", url);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the worker starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = std::thread::spawn({
            let lines = lines.clone();
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn log(&self) -> Log {
        Log::parse(&self.lines.lock().unwrap())
    }

    /// Waits until the worker has finished `count` handler runs.
    async fn wait_for_done(&mut self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.log().done.len() < count {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the worker exited ({status}) early: {:?}", self.lines);
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not finish {count} jobs within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit (failing after `within`), then returns its exit status
    /// and everything it printed.
    async fn exit(mut self, within: Duration) -> (ExitStatus, Log) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // The pipe closes with the process: the reader has every line.
        self.reader.take().unwrap().join().unwrap();
        (status, self.log())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh queue (with a dead-letter queue) named as the worker names it, and `JOBS` jobs in
/// it. Returns the worker's name prefix, the queue, its dead-letter queue and the jobs.
async fn queue_with_jobs(
    backend: &ElasticMqBackend,
    visibility: Duration,
) -> (String, String, String, Published) {
    let prefix = format!("{}-", unique("proc"));
    let queue = format!("{prefix}jobs");
    let dlq = format!("{queue}-dlq");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .dead_letter_queue(&dlq)
        .visibility_timeout(visibility)
        .await
        .unwrap();
    let jobs: Vec<Job> = (0..JOBS)
        .map(|id| Job {
            id,
            work_ms: 100 + id * 37 % 201,
        })
        .collect();
    let results = QueuePublisher::new(SerializerRegistry::default(), backend.clone())
        .publish_batch(&queue, &jobs)
        .await
        .unwrap();
    let mut published = Published::default();
    for (job, result) in jobs.iter().zip(results) {
        published.ids.insert(job.id);
        published.by_message_id.insert(result.unwrap(), job.id);
    }
    (prefix, queue, dlq, published)
}

/// The queue's (visible, in flight) message counts; moto's are exact.
async fn counts(backend: &ElasticMqBackend, queue: &str) -> (u64, u64) {
    let url = backend.queue_url(queue).await.unwrap();
    let output = backend
        .sqs_client()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attributes = output.attributes().unwrap();
    let count = |name: QueueAttributeName| -> u64 { attributes[&name].parse().unwrap() };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Receives every message in `queue` that is visible now, and makes them all visible again.
async fn visible_now(
    backend: &ElasticMqBackend,
    queue: &str,
    published: &Published,
) -> BTreeSet<u64> {
    let options = ReceiveOptions {
        max_messages: 10,
        wait_time: Duration::from_millis(500),
        visibility_timeout: Some(Duration::from_secs(60)),
    };
    let mut ids = BTreeSet::new();
    let mut receipts = Vec::new();
    loop {
        let batch = backend.receive(queue, &options).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for envelope in batch {
            let envelope = envelope.unwrap();
            ids.insert(published.by_message_id[envelope.message_id.as_ref()]);
            receipts.push((envelope.delivery.receipt.clone(), Duration::ZERO));
        }
    }
    for chunk in receipts.chunks(10) {
        for result in backend.change_visibility_batch(queue, chunk).await.unwrap() {
            result.unwrap();
        }
    }
    ids
}

/// Waits until every job was handled (by either run) and the queue is empty.
async fn wait_until_settled(
    backend: &ElasticMqBackend,
    queue: &str,
    worker: &Worker,
    handled_before: &BTreeSet<u64>,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut handled = worker.log().done_distinct();
        handled.extend(handled_before);
        if handled.len() as u64 == JOBS && counts(backend, queue).await == (0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "within 90 s: {} of {JOBS} jobs handled, queue counts {:?}",
            handled.len(),
            counts(backend, queue).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn per_id(runs: &[u64]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for id in runs {
        *counts.entry(*id).or_default() += 1;
    }
    counts
}

/// The scenario's row: every job handled, in the dead-letter queue or still queued.
async fn report(
    scenario: &str,
    backend: &ElasticMqBackend,
    queue: &str,
    dlq: &str,
    published: &Published,
    logs: [&Log; 2],
    acknowledged: u64,
) -> Report {
    let still_queued = published
        .drain(backend, queue, Duration::from_secs(1))
        .await;
    let dead_lettered = published.drain(backend, dlq, Duration::from_secs(1)).await;
    let runs: Vec<u64> = logs.iter().flat_map(|log| log.done.clone()).collect();
    let handled = per_id(&runs);
    let missing = published
        .ids
        .iter()
        .copied()
        .filter(|id| {
            !handled.contains_key(id) && !dead_lettered.contains(id) && !still_queued.contains(id)
        })
        .collect();
    Report {
        scenario: scenario.to_owned(),
        published: published.ids.len(),
        handled_distinct: handled.len(),
        handled_total: runs.len() as u64,
        acknowledged,
        dead_lettered,
        still_queued,
        missing,
        handled_twice: handled
            .iter()
            .filter(|(_, runs)| **runs > 1)
            .map(|(id, _)| *id)
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_batch_drains_the_running_jobs_and_releases_the_rest() {
    let backend = sqs_backend();
    // SQS's default visibility timeout: a message left in flight would stay hidden 30 s.
    let (prefix, queue, dlq, published) = queue_with_jobs(&backend, Duration::from_secs(30)).await;

    let mut first = Worker::spawn(&prefix, None);
    first.wait_for_done(30).await;
    let at_signal = first.log();
    first.sigterm();
    let signalled = Instant::now();
    let (status, log1) = first
        .exit(Duration::from_secs(SHUTDOWN_DEADLINE + 20))
        .await;
    let shutdown_took = signalled.elapsed();
    assert!(status.success(), "the worker failed on SIGTERM: {status}");
    let done1 = log1.done_distinct();
    assert!(
        (done1.len() as u64) < JOBS,
        "SIGTERM came after the last job: not mid-batch"
    );
    // Every handler that started finished, once, and its message was acknowledged.
    assert_eq!(
        per_id(&log1.started),
        per_id(&log1.done),
        "a started job did not finish"
    );
    assert_eq!(log1.acknowledged(), log1.done.len() as u64);

    // Right after the exit: nothing in flight; exactly the jobs not done are visible.
    assert_eq!(
        counts(&backend, &queue).await,
        (JOBS - done1.len() as u64, 0),
        "(visible, in flight) right after the worker exited"
    );
    let expected: BTreeSet<u64> = published.ids.difference(&done1).copied().collect();
    assert_eq!(visible_now(&backend, &queue, &published).await, expected);

    // A second worker drains the rest.
    let second = Worker::spawn(&prefix, None);
    wait_until_settled(&backend, &queue, &second, &done1).await;
    second.sigterm();
    let (status, log2) = second
        .exit(Duration::from_secs(SHUTDOWN_DEADLINE + 20))
        .await;
    assert!(status.success(), "the second worker failed: {status}");
    let rerun: Vec<u64> = log2
        .started_distinct()
        .intersection(&done1)
        .copied()
        .collect();
    assert!(
        rerun.is_empty(),
        "jobs done before SIGTERM ran again: {rerun:?}"
    );

    let report = report(
        "SIGTERM mid-batch, worker process (moto)",
        &backend,
        &queue,
        &dlq,
        &published,
        [&log1, &log2],
        log1.acknowledged() + log2.acknowledged(),
    )
    .await;
    println!(
        "RELIABILITY sigterm: {} running at SIGTERM, {} done by the first worker (exit {:?} \
         after SIGTERM), {} by the second",
        at_signal.started.len() - at_signal.done.len(),
        done1.len(),
        shutdown_took,
        log2.done.len()
    );
    report.assert_nothing_lost();
    assert_eq!(report.handled_distinct as u64, JOBS);
    assert!(
        report.handled_twice.is_empty(),
        "{:?}",
        report.handled_twice
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_a_new_worker_with_the_redis_cache_runs_no_recorded_job_again() {
    use melange::DeduplicationCache;
    use melange::consumer::RedisDeduplicationCache;

    let redis_url = crate::redis::redis_url();
    let backend = sqs_backend();
    // A short visibility timeout: the killed worker's messages come back within 4 s.
    let (prefix, queue, dlq, published) = queue_with_jobs(&backend, Duration::from_secs(4)).await;

    let mut first = Worker::spawn(&prefix, Some(&redis_url));
    first.wait_for_done(40).await;
    first.child.kill().unwrap();
    let (_, log1) = first.exit(Duration::from_secs(10)).await;
    let started1 = log1.started_distinct();
    let done1 = log1.done_distinct();
    assert!(
        (done1.len() as u64) < JOBS,
        "SIGKILL came after the last job: not mid-batch"
    );

    // D: the jobs the first worker recorded in the cache as completed (the worker's keys are
    // `<prefix>worker:Jobs.<message id>`).
    let cache = RedisDeduplicationCache::connect(&redis_url, Duration::from_secs(600))
        .await
        .unwrap()
        .namespace(format!("{prefix}worker"));
    let mut recorded = BTreeSet::new();
    for (message_id, id) in &published.by_message_id {
        if cache.contains(&format!("Jobs.{message_id}")).await.unwrap() {
            recorded.insert(*id);
        }
    }
    assert!(
        recorded.is_subset(&done1),
        "recorded jobs that never finished: {:?}",
        recorded.difference(&done1).collect::<Vec<_>>()
    );
    // Held at the kill: started and not recorded (running, or between the handler's end and
    // the cache write); at most one per handler slot.
    let held: BTreeSet<u64> = started1.difference(&recorded).copied().collect();
    assert!(
        held.len() <= CONCURRENCY,
        "{} jobs started and not recorded: more than the {CONCURRENCY} slots",
        held.len()
    );
    // What the first worker acknowledged, from the queue (nothing else touches it now). A
    // delete it sent just before the kill may still be on its way to the server: let it land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (visible, in_flight) = counts(&backend, &queue).await;
    let acknowledged1 = JOBS - visible - in_flight;
    assert!(
        acknowledged1 <= recorded.len() as u64,
        "acknowledged {acknowledged1} jobs, recorded only {}",
        recorded.len()
    );

    let second = Worker::spawn(&prefix, Some(&redis_url));
    wait_until_settled(&backend, &queue, &second, &done1).await;
    second.sigterm();
    let (status, log2) = second
        .exit(Duration::from_secs(SHUTDOWN_DEADLINE + 20))
        .await;
    assert!(status.success(), "the second worker failed: {status}");
    let started2 = log2.started_distinct();

    // The de-duplication claim: no recorded job ran again...
    let rerun: Vec<u64> = started2.intersection(&recorded).copied().collect();
    assert!(rerun.is_empty(), "recorded jobs ran again: {rerun:?}");
    // ...and every recorded job the first worker had not acknowledged was redelivered and
    // skipped as a duplicate.
    assert_eq!(
        log2.duplicates(),
        recorded.len() as u64 - acknowledged1,
        "duplicates skipped by the second worker"
    );
    // Jobs killed mid-handler were redelivered and handled.
    let killed: BTreeSet<u64> = started1.difference(&done1).copied().collect();
    assert!(killed.is_subset(&log2.done_distinct()));
    // The documented window: finished, killed before the cache write, run again.
    let twice: Vec<u64> = done1
        .difference(&recorded)
        .filter(|id| started2.contains(id))
        .copied()
        .collect();
    assert!(twice.len() <= held.len());

    let report = report(
        "SIGKILL mid-batch + new worker process, Redis de-dup (moto)",
        &backend,
        &queue,
        &dlq,
        &published,
        [&log1, &log2],
        acknowledged1 + log2.acknowledged(),
    )
    .await;
    println!(
        "RELIABILITY sigkill: first worker: {} started, {} done, {} recorded in Redis, {} \
         acknowledged, {} killed mid-handler; second worker: {} handled, {} recorded jobs \
         skipped as duplicates, {} recorded jobs run again; run twice outside the record \
         (done, killed before the cache write): {twice:?}",
        started1.len(),
        done1.len(),
        recorded.len(),
        acknowledged1,
        killed.len(),
        log2.done.len(),
        log2.duplicates(),
        rerun.len(),
    );
    report.assert_nothing_lost();
    assert_eq!(report.handled_distinct as u64, JOBS);
    let unexpected: Vec<&u64> = report
        .handled_twice
        .iter()
        .filter(|id| !twice.contains(id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "handled twice outside the window: {unexpected:?}"
    );
}
