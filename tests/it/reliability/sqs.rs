//! Fault scenarios on a real SQS server (moto_server), in real time: a server that hangs
//! (SIGSTOP) and comes back (SIGCONT).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melange::sqs::ElasticMqBackend;
use melange::{
    ConsumerOptions, MessagingBackendFactory, RetryBackoff, SerializerRegistry,
    SimpleConsumerHandler,
};

use super::harness::{Ledger, Probe, Published, Task};
use super::memory::CountingBackend;
use crate::support::{sqs_backend, unique};

/// A moto_server of this test's own (so it can be stopped), killed on drop.
struct OwnServer {
    child: Child,
    endpoint: String,
}

impl OwnServer {
    fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let moto = root.join(".venv-test/moto/bin/moto_server");
        assert!(
            moto.exists(),
            "{} is missing: run the tests with `scripts/test`, which installs moto_server \
             into .venv-test/moto",
            moto.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_waited_out_without_a_busy_loop_and_nothing_is_lost() {
    let server = OwnServer::start();
    let backend = ElasticMqBackend::from_endpoint(&server.endpoint);
    let queue = unique("hang");
    let dlq = format!("{queue}-dlq");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .dead_letter_queue(&dlq)
        .visibility_timeout(Duration::from_secs(2))
        .await
        .unwrap();
    let mut published = Published::default();
    published
        .send_tasks(&backend, &queue, (0..30).map(|id| Task::new(id, 200, "ok")))
        .await;

    let counting = CountingBackend {
        inner: backend.clone(),
        receives: Arc::default(),
        errors: Arc::new(Mutex::new(Vec::new())),
    };
    let ledger = Arc::new(Ledger::default());
    let options = ConsumerOptions::default()
        .max_in_flight(4)
        .wait_time(Duration::from_secs(1))
        .stop_when_idle(Duration::from_secs(3));
    let consume = SimpleConsumerHandler::new(
        Probe(ledger.clone()),
        SerializerRegistry::default(),
        counting.clone(),
    )
    .with_options(options);
    let run = tokio::spawn({
        let queue = queue.clone();
        async move { consume.consume_loop(&queue).await }
    });
    while ledger.handled_distinct() < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Hang the server for 8 s, mid-batch.
    server.signal("-STOP");
    let receives_before = counting.receives.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let receives_during = counting.receives.load(Ordering::SeqCst) - receives_before;
    server.signal("-CONT");
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the consumer resumes and finishes")
        .unwrap()
        .expect("a hang is not fatal");

    let report = published
        .report(
            "server hang, SIGSTOP 8 s (moto)",
            &backend,
            &queue,
            &dlq,
            &ledger,
            summary.acknowledged,
            &BTreeSet::new(),
            Duration::from_secs(1),
        )
        .await;
    let errors = counting.errors.lock().unwrap().clone();
    println!(
        "RELIABILITY hang: {receives_during} receives started while stopped; receive errors: \
         {errors:?}; handled twice: {:?}",
        report.handled_twice
    );
    report.assert_nothing_lost();
    assert_eq!(report.handled_distinct, 30);
    assert!(
        receives_during <= 20,
        "{receives_during} receives in 8 s while the server hung: a busy loop"
    );
}

/// The moto twin of the in-memory errors + panics scenario, smaller: 50 tasks, max receives
/// 3, a 5 s visibility timeout and a short retry backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_and_panics_are_retried_then_dead_lettered_on_sqs() {
    const N: u64 = 50;
    const MAX_RECEIVES: u32 = 3;
    let test_started = Instant::now();
    let backend = sqs_backend();
    let queue = unique("rel-errors");
    let dlq = format!("{queue}-dlq");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .dead_letter_queue(&dlq)
        .max_receive_count(MAX_RECEIVES)
        .visibility_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    let behaviour = |id: u64| match id % 10 {
        3 => "fail",
        5 => "panic",
        7 => "panic-once",
        9 => "fail-twice",
        _ => "ok",
    };
    let mut published = Published::default();
    published
        .send_tasks(
            &backend,
            &queue,
            (0..N).map(|id| Task::new(id, 20, behaviour(id))),
        )
        .await;
    let ledger = Arc::new(Ledger::default());
    let options = ConsumerOptions::default()
        .max_in_flight(8)
        .wait_time(Duration::from_secs(1))
        // 0.2 s doubling, at most 1 s; SQS rounds a visibility up to whole seconds.
        .retry_backoff(Some(RetryBackoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(1),
        }))
        // Longer than any retry delay: a failed message is back before the loop goes idle.
        .stop_when_idle(Duration::from_secs(4));
    let consume = SimpleConsumerHandler::new(
        Probe(ledger.clone()),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_options(options);
    let consume_started = Instant::now();
    let summary = tokio::time::timeout(Duration::from_secs(180), consume.consume_loop(&queue))
        .await
        .expect("the consumer goes idle")
        .expect("the loop survives failures and panics");
    let consume_time = consume_started.elapsed();

    let report = published
        .report(
            "errors (10 %) + panics (20 %, half of them once), max receives 3 (moto)",
            &backend,
            &queue,
            &dlq,
            &ledger,
            summary.acknowledged,
            &BTreeSet::new(),
            Duration::from_secs(1),
        )
        .await;
    println!(
        "RELIABILITY errors + panics (moto): consumed in {consume_time:?}, test {:?}; \
         summary {summary:?}",
        test_started.elapsed()
    );
    report.assert_nothing_lost();
    let doomed: BTreeSet<u64> = (0..N).filter(|id| matches!(id % 10, 3 | 5)).collect();
    assert_eq!(
        report.dead_lettered, doomed,
        "always-failing tasks end in the DLQ"
    );
    assert_eq!(report.handled_distinct as u64, N - doomed.len() as u64);
    assert!(
        report.handled_twice.is_empty(),
        "{:?}",
        report.handled_twice
    );
    assert!(report.still_queued.is_empty(), "{:?}", report.still_queued);
    assert_eq!(report.acknowledged, N - doomed.len() as u64);
    let per_kind = N / 10;
    let receives = u64::from(MAX_RECEIVES);
    // Always panicking: every receive; panicking once: the first.
    assert_eq!(summary.panicked, per_kind * receives + per_kind);
    // fail and panic: every receive; panic-once: one; fail-twice: two.
    assert_eq!(
        summary.failed,
        2 * per_kind * receives + per_kind + 2 * per_kind
    );
    assert_eq!(summary.dead_lettered, 0, "the server's redrive moves them");
    assert_eq!(
        ledger.attempts.load(Ordering::SeqCst),
        (N - 4 * per_kind) + 2 * per_kind * receives + 2 * per_kind + 3 * per_kind
    );
}
