//! The examples: every single-process mode on the embedded backend, and the payment service's
//! multi-process mode against the local SQS server (`MELANGE_TEST_SQS_ENDPOINT`).
//!
//! The example binaries are built once per test run with `cargo build --examples`, into the
//! same target directory and with the same features as this test binary.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The directory holding this build's example binaries, after building them once.
fn examples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This binary is `<target>/<profile>/deps/it-<hash>`.
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test binary lives in <target>/<profile>/deps");
        let profile = profile_dir
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("debug");
        let target_dir = profile_dir.parent().expect("a target directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // The features this binary was built with: the examples then share its build of
        // melange (no second build with other features), and `worker` gets Redis with them.
        let features: Vec<&str> = [
            ("macros", cfg!(feature = "macros")),
            ("sqs", cfg!(feature = "sqs")),
            ("pickle", cfg!(feature = "pickle")),
            ("redis", cfg!(feature = "redis")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--examples", "--no-default-features"])
            .arg(format!("--features={}", features.join(",")))
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .env("CARGO_TARGET_DIR", target_dir);
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cargo build --examples failed");
        profile_dir.join("examples")
    })
}

/// A command running the example `name`, with no backend configured.
pub(crate) fn example(name: &str) -> Command {
    let mut command = Command::new(examples_dir().join(name));
    command
        .env_remove("MELANGE_SQS_ENDPOINT")
        .env_remove("MELANGE_BACKEND")
        .env_remove("MELANGE_EXAMPLE_PREFIX");
    command
}

/// Runs an example to completion (at most 60 s) and returns its stdout lines.
fn run(mut command: Command) -> Vec<String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "the example failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

#[track_caller]
fn assert_lines(output: &[String], expected: &[&str]) {
    for line in expected {
        assert!(
            output.iter().any(|l| l == line),
            "missing line {line:?} in the output:\n{}",
            output.join("\n")
        );
    }
}

#[test]
fn tutorial_prints_hello_world() {
    let output = run(example("tutorial"));
    assert_eq!(output, ["Hello World!"]);
}

#[test]
fn tutorial_subcommands_need_a_server() {
    let output = example("tutorial")
        .arg("consume")
        .output()
        .expect("the example runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("MELANGE_SQS_ENDPOINT"));
}

#[test]
fn a_backend_the_examples_cannot_use_is_an_error_not_the_embedded_one() {
    // A typo must not quietly keep "sent" messages in a process about to exit.
    let output = example("worker")
        .args(["enqueue", "5"])
        .env("MELANGE_BACKEND", "AWS")
        .output()
        .expect("the example runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MELANGE_BACKEND=AWS:"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("sent"));
}

#[test]
fn payment_service_in_one_process() {
    let output = run(example("payment_service"));
    assert_lines(
        &output,
        &[
            "Order with reference ORD-1 sent.",
            "Order with reference ORD-2 sent.",
            "Order ORD-1 paid successfully (4200 cents)",
            "Order ORD-2 payment failed: amount 250000 exceeds the limit of 100000",
            "order-updates: PaymentProcessed for ORD-1",
            "order-updates: PaymentFailed for ORD-2",
            "Done.",
        ],
    );
}

#[test]
fn saga_in_one_process() {
    let output = run(example("saga"));
    assert_lines(
        &output,
        &[
            "Saga saga-order-ORD-1 started: sending payment for order ORD-1",
            "Saga saga-order-ORD-2 started: sending payment for order ORD-2",
            "Payment for order ORD-1 accepted",
            "Payment for order ORD-2 refused",
            "Saga saga-order-ORD-1 COMPLETED: order ORD-1 paid",
            "Saga saga-order-ORD-2 FAILED (amount over the limit): cancelling order ORD-2",
            "Sagas: saga-order-ORD-1: Completed, saga-order-ORD-2: Failed",
        ],
    );
}

#[test]
fn fanout_in_one_process() {
    let output = run(example("fanout"));
    assert_lines(
        &output,
        &[
            "billing: invoice for ORD-1",
            "billing: 1 message(s)",
            "shipping: ship ORD-1",
            "shipping: 1 message(s)",
            r#"audit: OrderCreated {"reference":"ORD-1"}"#,
            r#"audit: OrderPaid {"reference":"ORD-1"}"#,
            r#"audit: OrderCancelled {"reference":"ORD-1"}"#,
            "audit: 3 message(s)",
        ],
    );
}

#[test]
fn dead_letter_in_one_process() {
    let output = run(example("dead_letter"));
    assert_lines(
        &output,
        &[
            "invoice INV-1 paid (attempt 1)",
            "failed, not retried: handler `Invoices::on_invoice` failed: invoice INV-2 has a \
             negative amount",
            "invoice INV-3 paid (attempt 3)",
            "invoices: 8 received, 2 paid, 6 failed, 1 dead-lettered by the consumer",
            "dead letter: invoice INV-2 (received 1 times)",
            "dead letter: invoice INV-4 (received 4 times)",
            "invoices-dlq: 2 message(s)",
        ],
    );
}

#[test]
fn worker_in_one_process() {
    let output = run(example("worker"));
    assert_lines(
        &output,
        &[
            "20 jobs sent to jobs",
            "job 0 started (receive 1)",
            "job 19 done",
            "worker: stopped; 20 jobs done, 20 acknowledged, 0 skipped as duplicates, 0 released",
        ],
    );
}

fn sqs_endpoint() -> String {
    std::env::var("MELANGE_TEST_SQS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MELANGE_TEST_SQS_ENDPOINT is not set: run the tests with `scripts/test`, which \
             starts moto_server and points MELANGE_TEST_SQS_ENDPOINT at it"
        )
    })
}

/// A queue-name prefix no other test run uses.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("ex{}{nanos}-{test}-", std::process::id())
}

/// A child process whose stdout lines arrive on a channel; killed when dropped.
struct App {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl App {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the app starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line equal to `expected`.
    fn expect_line(&mut self, expected: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == expected => {
                    self.seen.push(line);
                    return;
                }
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "the app did not print {expected:?} within {within:?}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn payment_service_as_separate_processes_on_sqs() {
    let endpoint = sqs_endpoint();
    let prefix = unique_prefix("pay");
    let on_server = |mut command: Command| {
        command
            .env("MELANGE_SQS_ENDPOINT", &endpoint)
            .env("MELANGE_EXAMPLE_PREFIX", &prefix);
        command
    };

    let mut app = {
        let mut command = on_server(example("payment_service"));
        command.arg("app");
        App::spawn(command)
    };
    app.expect_line(
        &format!("Consuming {prefix}payment-updates (Ctrl-C to stop)..."),
        Duration::from_secs(20),
    );

    let mut trigger = on_server(example("payment_service"));
    trigger.args(["trigger", "ORD-7", "1234"]);
    assert_lines(&run(trigger), &["Order with reference ORD-7 sent."]);

    app.expect_line(
        "Order ORD-7 paid successfully (1234 cents)",
        Duration::from_secs(30),
    );

    let mut results = on_server(example("payment_service"));
    results.arg("results");
    assert_lines(
        &run(results),
        &["order-updates: PaymentProcessed for ORD-7"],
    );
}
