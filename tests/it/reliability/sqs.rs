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
    ConsumerOptions, MessagingBackendFactory, SerializerRegistry, SimpleConsumerHandler,
};

use super::harness::{Ledger, Probe, Published, Task};
use super::memory::CountingBackend;
use crate::support::unique;

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
