//! What every example shares: the backend chosen from the environment, and queue names.
//!
//! - `MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324`: a local SQS + SNS server (ElasticMQ, moto,
//!   LocalStack) through `melange::sqs::ElasticMqBackend`;
//! - `MELANGE_BACKEND=aws`: Amazon SQS + SNS with the standard AWS configuration chain
//!   (`AWS_REGION`, `AWS_PROFILE`, ...);
//! - nothing set (or `MELANGE_BACKEND=memory`): the embedded `InMemoryBackend`, which lives
//!   in this process only. Any other value is an error.
//!
//! `MELANGE_EXAMPLE_PREFIX` is prepended to every queue and topic name, so several runs can
//! share one server without seeing each other's messages.
// Each example uses its own part of this module.
#![allow(dead_code)]

use std::future::Future;

use melange::{AnyBackend, BackendError, ConsumeSummary, InMemoryBackend, Shutdown};

/// The backend the environment asks for. A value it cannot use is an error naming the
/// variable: falling back to the embedded backend would keep "published" messages in this
/// process only, and lose them when it exits.
pub async fn backend() -> Result<AnyBackend, Box<dyn std::error::Error>> {
    match chosen()? {
        Chosen::Endpoint(endpoint) => sqs_backend(&endpoint),
        Chosen::Aws => aws_backend().await,
        Chosen::Embedded => Ok(AnyBackend::new(InMemoryBackend::new())),
    }
}

/// What the environment chose.
enum Chosen {
    Endpoint(String),
    Aws,
    Embedded,
}

fn chosen() -> Result<Chosen, String> {
    match std::env::var("MELANGE_SQS_ENDPOINT") {
        Ok(endpoint) => return Ok(Chosen::Endpoint(endpoint)),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err("MELANGE_SQS_ENDPOINT is not valid UTF-8".to_owned());
        }
        Err(std::env::VarError::NotPresent) => {}
    }
    match std::env::var("MELANGE_BACKEND").as_deref() {
        Ok("aws") => Ok(Chosen::Aws),
        Ok("memory") | Err(std::env::VarError::NotPresent) => Ok(Chosen::Embedded),
        Ok(other) => Err(format!(
            "MELANGE_BACKEND={other}: use `aws`, or `memory` for the embedded backend \
             (a local server is chosen with MELANGE_SQS_ENDPOINT)"
        )),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err("MELANGE_BACKEND is not valid UTF-8".to_owned())
        }
    }
}

/// Whether the backend is the embedded one, which only this process can see.
pub fn is_embedded() -> bool {
    matches!(chosen(), Ok(Chosen::Embedded))
}

/// Runs two consume loops until both return. When one fails, `shutdown` (which both must
/// watch) stops the other gracefully, its running handlers finished and acknowledged,
/// rather than dropping it mid-flight as `try_join!` would; the first error is returned.
pub async fn consume_both(
    shutdown: &Shutdown,
    first: impl Future<Output = Result<ConsumeSummary, BackendError>>,
    second: impl Future<Output = Result<ConsumeSummary, BackendError>>,
) -> Result<(ConsumeSummary, ConsumeSummary), BackendError> {
    let stop_on_error = |result: Result<ConsumeSummary, BackendError>| {
        if result.is_err() {
            shutdown.trigger();
        }
        result
    };
    let (first, second) = tokio::join!(async { stop_on_error(first.await) }, async {
        stop_on_error(second.await)
    },);
    Ok((first?, second?))
}

/// Fails with a helpful message when a multi-process command runs on the embedded backend.
pub fn require_server(command: &str) -> Result<(), Box<dyn std::error::Error>> {
    if is_embedded() {
        return Err(format!(
            "`{command}` talks to other processes through a server: set \
             MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324 (or MELANGE_BACKEND=aws)"
        )
        .into());
    }
    Ok(())
}

/// A queue or topic name with the run's prefix (`MELANGE_EXAMPLE_PREFIX`).
pub fn name(base: &str) -> String {
    let prefix = std::env::var("MELANGE_EXAMPLE_PREFIX").unwrap_or_default();
    format!("{prefix}{base}")
}

#[cfg(feature = "sqs")]
fn sqs_backend(endpoint: &str) -> Result<AnyBackend, Box<dyn std::error::Error>> {
    Ok(AnyBackend::new(
        melange::sqs::ElasticMqBackend::from_endpoint(endpoint)?,
    ))
}

#[cfg(feature = "sqs")]
async fn aws_backend() -> Result<AnyBackend, Box<dyn std::error::Error>> {
    Ok(AnyBackend::new(melange::sqs::AwsBackend::from_env().await?))
}

#[cfg(not(feature = "sqs"))]
fn sqs_backend(_endpoint: &str) -> Result<AnyBackend, Box<dyn std::error::Error>> {
    Err("MELANGE_SQS_ENDPOINT needs melange's `sqs` feature".into())
}

#[cfg(not(feature = "sqs"))]
async fn aws_backend() -> Result<AnyBackend, Box<dyn std::error::Error>> {
    Err("MELANGE_BACKEND=aws needs melange's `sqs` feature".into())
}
