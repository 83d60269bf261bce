//! What every example shares: the backend chosen from the environment, and queue names.
//!
//! - `MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324`: a local SQS + SNS server (ElasticMQ, moto,
//!   LocalStack) through `melange::sqs::ElasticMqBackend`;
//! - `MELANGE_BACKEND=aws`: Amazon SQS + SNS with the standard AWS configuration chain
//!   (`AWS_REGION`, `AWS_PROFILE`, ...);
//! - nothing set: the embedded `InMemoryBackend`, which lives in this process only.
//!
//! `MELANGE_EXAMPLE_PREFIX` is prepended to every queue and topic name, so several runs can
//! share one server without seeing each other's messages.
// Each example uses its own part of this module.
#![allow(dead_code)]

use melange::{AnyBackend, InMemoryBackend};

/// The backend the environment asks for.
pub async fn backend() -> Result<AnyBackend, Box<dyn std::error::Error>> {
    if let Ok(endpoint) = std::env::var("MELANGE_SQS_ENDPOINT") {
        return sqs_backend(&endpoint);
    }
    if std::env::var("MELANGE_BACKEND").is_ok_and(|kind| kind == "aws") {
        return aws_backend().await;
    }
    Ok(AnyBackend::new(InMemoryBackend::new()))
}

/// Whether the backend is the embedded one, which only this process can see.
pub fn is_embedded() -> bool {
    std::env::var_os("MELANGE_SQS_ENDPOINT").is_none()
        && !std::env::var("MELANGE_BACKEND").is_ok_and(|kind| kind == "aws")
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
