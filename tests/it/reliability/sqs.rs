//! Fault scenarios on a real SQS server (moto_server), in real time: a server that hangs
//! (SIGSTOP) and comes back (SIGCONT), shorter and longer than the client timeouts;
//! connections that drop and a server that refuses connections for a while; handler errors
//! and panics.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melange::sqs::ElasticMqBackend;
use melange::sqs::aws_sdk_sqs::config::timeout::TimeoutConfig;
use melange::{
    BackendError, ConsumeSummary, ConsumerOptions, MessagingBackendFactory, RetryBackoff,
    SerializerRegistry, Shutdown, SimpleConsumerHandler,
};

use super::harness::{Ledger, Probe, Published, Task};
use super::memory::CountingBackend;
use crate::support::{sqs_backend, sqs_endpoint, unique};

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
    let backend = ElasticMqBackend::from_endpoint(&server.endpoint).expect("a loopback endpoint");
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

/// Receives a consumer with one receiver can start in `window` when each receive that fails
/// takes at least `failure` and is followed by the error backoff (`backoff`, doubling): the
/// failed ones, plus the one in flight when the window opens and the one that succeeds.
fn receive_bound(window: Duration, failure: Duration, backoff: Duration) -> usize {
    let mut failed = 0;
    let mut elapsed = Duration::ZERO;
    let mut pause = backoff;
    while elapsed < window {
        failed += 1;
        elapsed += failure + pause;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
    failed + 2
}

/// Waits (at most 2 minutes) until `n` distinct tasks were handled, then shuts the consumer
/// down and returns its result.
async fn finish_when_all_handled(
    run: tokio::task::JoinHandle<Result<ConsumeSummary, BackendError>>,
    ledger: &Ledger,
    n: u64,
    shutdown: &Shutdown,
) -> Result<ConsumeSummary, BackendError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while (ledger.handled_distinct() as u64) < n && !run.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{} of {n} tasks handled after 2 minutes",
            ledger.handled_distinct()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the consumer stops on shutdown")
        .unwrap()
}

/// A hang longer than the client timeouts: a 3 s attempt timeout and a 4 s operation
/// timeout, a moto_server stopped for 12 s. Receives fail as `Unavailable`, the consumer
/// pauses (1 s, doubling) between them, resumes when the server does, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_longer_than_the_client_timeouts_is_backed_off_and_nothing_is_lost() {
    const N: u64 = 30;
    let attempt = Duration::from_secs(3);
    let operation = Duration::from_secs(4);
    let hang = Duration::from_secs(12);
    let visibility = Duration::from_secs(2);
    let test_started = Instant::now();
    let server = OwnServer::start();
    let backend = ElasticMqBackend::from_endpoint(&server.endpoint)
        .unwrap()
        .with_timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .build(),
        );
    let queue = unique("hang-long");
    let dlq = format!("{queue}-dlq");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .dead_letter_queue(&dlq)
        .max_receive_count(10)
        .visibility_timeout(visibility)
        .await
        .unwrap();
    let mut published = Published::default();
    published
        .send_tasks(&backend, &queue, (0..N).map(|id| Task::new(id, 200, "ok")))
        .await;

    let counting = CountingBackend {
        inner: backend.clone(),
        receives: Arc::default(),
        errors: Arc::new(Mutex::new(Vec::new())),
    };
    let ledger = Arc::new(Ledger::default());
    let shutdown = Shutdown::new();
    let error_backoff = Duration::from_secs(1);
    let options = ConsumerOptions::default()
        .max_in_flight(4)
        .receivers(1)
        .error_backoff(error_backoff)
        // The long poll stays below the attempt timeout.
        .wait_time(Duration::from_secs(1));
    let consume = SimpleConsumerHandler::new(
        Probe(ledger.clone()),
        SerializerRegistry::default(),
        counting.clone(),
    )
    .with_options(options)
    .with_shutdown(shutdown.clone());
    let run = tokio::spawn({
        let queue = queue.clone();
        async move { consume.consume_loop(&queue).await }
    });
    while ledger.handled_distinct() < 5 {
        assert!(!run.is_finished(), "the consumer stopped early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal("-STOP");
    let receives_before = counting.receives.load(Ordering::SeqCst);
    tokio::time::sleep(hang).await;
    let receives_during = counting.receives.load(Ordering::SeqCst) - receives_before;
    let errors_during = counting.errors.lock().unwrap().clone();
    let handled_during_hang = ledger.handled_distinct();
    server.signal("-CONT");
    // Not `stop_when_idle`: after the hang the server also answers the receives the client
    // gave up on, and the messages they took stay invisible for a visibility timeout, so an
    // empty receive does not mean the queue is done.
    let summary = finish_when_all_handled(run, &ledger, N, &shutdown)
        .await
        .expect("a hang is not fatal");

    // Drained with the default timeouts: the drain's long poll is longer than 3 s.
    let report = published
        .report(
            "server hang, SIGSTOP 12 s, longer than the 3 s attempt / 4 s operation timeouts \
             (moto)",
            &ElasticMqBackend::from_endpoint(&server.endpoint).unwrap(),
            &queue,
            &dlq,
            &ledger,
            summary.acknowledged,
            &BTreeSet::new(),
            visibility + Duration::from_secs(1),
        )
        .await;
    let bound = receive_bound(hang, operation, error_backoff);
    println!(
        "RELIABILITY hang > timeouts: {receives_during} receives started while stopped (bound \
         {bound}), {} receive errors while stopped: {errors_during:?}; handled twice: {:?}; \
         summary {summary:?}; test {:?}",
        errors_during.len(),
        report.handled_twice,
        test_started.elapsed()
    );
    report.assert_nothing_lost();
    assert_eq!(report.handled_distinct as u64, N);
    assert!(
        handled_during_hang < N as usize,
        "the hang came too late to matter"
    );
    // The timeout path was taken: receives failed, as `Unavailable`, while the server hung...
    assert!(
        !errors_during.is_empty(),
        "no receive failed during a {hang:?} hang: the client timeouts did not fire"
    );
    assert!(
        errors_during
            .iter()
            .all(|e| e.starts_with("backend unreachable")),
        "{errors_during:?}"
    );
    // ... and the consumer backed off between them rather than retrying in a loop.
    assert!(
        receives_during <= bound,
        "{receives_during} receives in {hang:?} while the server hung (bound {bound}): a busy \
         loop"
    );
}

/// A TCP proxy in front of a server: its connections can be cut (established ones dropped,
/// new ones refused) and restored on the same port.
struct Proxy {
    port: u16,
    upstream: std::net::SocketAddr,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    acceptor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = Self {
            port,
            upstream,
            connections: Arc::default(),
            acceptor: Mutex::new(None),
        };
        proxy.restore();
        proxy
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Listens (again) on the proxy's port.
    fn restore(&self) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(([127, 0, 0, 1], self.port).into())
            .unwrap_or_else(|e| panic!("rebinding port {} failed: {e}", self.port));
        let listener = socket.listen(128).unwrap();
        let (upstream, connections) = (self.upstream, self.connections.clone());
        let acceptor = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(task.abort_handle());
            }
        });
        *self.acceptor.lock().unwrap() = Some(acceptor);
    }

    /// Drops every established connection and stops listening: new connections are refused.
    async fn cut(&self) {
        let acceptor = self.acceptor.lock().unwrap().take();
        if let Some(acceptor) = acceptor {
            acceptor.abort();
            let _ = acceptor.await;
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// The connection drops and the server is unreachable for 10 s (a proxy in front of the
/// shared moto_server drops every connection and refuses new ones), then comes back on the
/// same port: requests fail fast, the consumer backs off (1 s, doubling), reconnects, and
/// loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_an_unreachable_server_are_backed_off_and_nothing_is_lost() {
    const N: u64 = 30;
    let outage = Duration::from_secs(10);
    let visibility = Duration::from_secs(2);
    let test_started = Instant::now();
    let upstream: std::net::SocketAddr = sqs_endpoint()
        .trim_start_matches("http://")
        .parse()
        .expect("MELANGE_TEST_SQS_ENDPOINT is http://address:port");
    let proxy = Proxy::start(upstream).await;
    let backend = ElasticMqBackend::from_endpoint(proxy.endpoint()).unwrap();
    let queue = unique("conn-drop");
    let dlq = format!("{queue}-dlq");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .dead_letter_queue(&dlq)
        .max_receive_count(10)
        .visibility_timeout(visibility)
        .await
        .unwrap();
    let mut published = Published::default();
    published
        .send_tasks(&backend, &queue, (0..N).map(|id| Task::new(id, 200, "ok")))
        .await;

    let counting = CountingBackend {
        inner: backend.clone(),
        receives: Arc::default(),
        errors: Arc::new(Mutex::new(Vec::new())),
    };
    let ledger = Arc::new(Ledger::default());
    let shutdown = Shutdown::new();
    let error_backoff = Duration::from_secs(1);
    let options = ConsumerOptions::default()
        .max_in_flight(4)
        .receivers(1)
        .error_backoff(error_backoff)
        .wait_time(Duration::from_secs(1));
    let consume = SimpleConsumerHandler::new(
        Probe(ledger.clone()),
        SerializerRegistry::default(),
        counting.clone(),
    )
    .with_options(options)
    .with_shutdown(shutdown.clone());
    let run = tokio::spawn({
        let queue = queue.clone();
        async move { consume.consume_loop(&queue).await }
    });
    while ledger.handled_distinct() < 5 {
        assert!(!run.is_finished(), "the consumer stopped early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut().await;
    let receives_before = counting.receives.load(Ordering::SeqCst);
    tokio::time::sleep(outage).await;
    let receives_during = counting.receives.load(Ordering::SeqCst) - receives_before;
    let errors_during = counting.errors.lock().unwrap().clone();
    let handled_during_outage = ledger.handled_distinct();
    proxy.restore();
    let summary = finish_when_all_handled(run, &ledger, N, &shutdown)
        .await
        .expect("an outage is not fatal");

    let report = published
        .report(
            "connections dropped, server unreachable 10 s (moto behind a proxy)",
            &backend,
            &queue,
            &dlq,
            &ledger,
            summary.acknowledged,
            &BTreeSet::new(),
            visibility + Duration::from_secs(1),
        )
        .await;
    // A refused connection fails at once; the SDK's own retries (5 attempts, backoff from
    // 0.1 s) are not counted on: the bound assumes each failed receive takes no time.
    let bound = receive_bound(outage, Duration::ZERO, error_backoff);
    println!(
        "RELIABILITY connection drop: {receives_during} receives started while unreachable \
         (bound {bound}), {} receive errors: {errors_during:?}; handled twice: {:?}; summary \
         {summary:?}; test {:?}",
        errors_during.len(),
        report.handled_twice,
        test_started.elapsed()
    );
    report.assert_nothing_lost();
    assert_eq!(report.handled_distinct as u64, N);
    assert!(
        handled_during_outage < N as usize,
        "the outage came too late to matter"
    );
    assert!(
        !errors_during.is_empty(),
        "no receive failed while the server was unreachable"
    );
    assert!(
        errors_during
            .iter()
            .all(|e| e.starts_with("backend unreachable")),
        "{errors_during:?}"
    );
    assert!(
        receives_during <= bound,
        "{receives_during} receives in {outage:?} while the server was unreachable (bound \
         {bound}): a busy loop"
    );
}
