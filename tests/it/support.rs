//! Helpers shared by the backend tests: the test server, unique names, receive loops.

// Test helpers too: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use melange::envelope::MalformedMessage;
use melange::sqs::ElasticMqBackend;
use melange::{Envelope, MessagingBackend, ReceiveOptions};

/// The SQS + SNS endpoint `scripts/test` starts (moto_server). Panics, so the test fails
/// rather than skips, when it is missing.
pub fn sqs_endpoint() -> String {
    std::env::var("MELANGE_TEST_SQS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MELANGE_TEST_SQS_ENDPOINT is not set: run the tests with `scripts/test`, which \
             starts moto_server and points MELANGE_TEST_SQS_ENDPOINT at it"
        )
    })
}

/// The Python interpreter with Python Melange 7.2.0 that `scripts/test` installs.
pub fn python() -> String {
    std::env::var("MELANGE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "MELANGE_TEST_PYTHON is not set: run the tests with `scripts/test`, which installs \
             Python Melange 7.2.0 and points MELANGE_TEST_PYTHON at it"
        )
    })
}

/// A backend on the test server (plain HTTP allowed: the server may be a docker-compose
/// service rather than on this machine).
pub fn sqs_backend() -> ElasticMqBackend {
    ElasticMqBackend::builder(sqs_endpoint())
        .allow_plain_http(true)
        .build()
        .expect("the test server's endpoint is a valid URL")
}

/// A queue or topic name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Receive options: long-poll `wait`, hold received messages `visibility`.
pub fn options(wait: Duration, visibility: Option<Duration>) -> ReceiveOptions {
    ReceiveOptions {
        max_messages: 10,
        wait_time: wait,
        visibility_timeout: visibility,
    }
}

/// Receives until `count` messages arrived or `timeout` passed, holding them for 30 s.
pub async fn receive_all<B: MessagingBackend>(
    backend: &B,
    queue: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Result<Envelope, MalformedMessage>> {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while received.len() < count && Instant::now() < deadline {
        let batch = backend
            .receive(
                queue,
                &options(Duration::from_secs(1), Some(Duration::from_secs(30))),
            )
            .await
            .unwrap_or_else(|e| panic!("receive from `{queue}` failed: {e}"));
        received.extend(batch);
    }
    received
}

/// Like [`receive_all`], for well-formed messages only.
pub async fn receive_envelopes<B: MessagingBackend>(
    backend: &B,
    queue: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Envelope> {
    receive_all(backend, queue, count, timeout)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("malformed message on `{queue}`: {e}")))
        .collect()
}

/// Asserts that nothing can be received from `queue` for `wait`.
pub async fn assert_empty<B: MessagingBackend>(backend: &B, queue: &str, wait: Duration) {
    let received = backend
        .receive(queue, &options(wait, None))
        .await
        .unwrap_or_else(|e| panic!("receive from `{queue}` failed: {e}"));
    assert!(
        received.is_empty(),
        "`{queue}` should be empty, received {received:?}"
    );
}
