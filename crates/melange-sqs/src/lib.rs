//! # melange-sqs
//!
//! The Amazon SQS + SNS backend of [melange](https://docs.rs/melange), wire-compatible with
//! Python Melange 7.2.0: a Rust service and a Python service can publish to and consume from
//! the same queues and topics.
//!
//! - [`SqsBackend`] (alias [`AwsBackend`]) on AWS: [`SqsBackend::from_env`] reads the
//!   standard configuration chain (environment, profile, container or instance role);
//!   [`SqsBackend::from_sdk_config`] and [`SqsBackend::from_clients`] take what you built.
//! - [`ElasticMqBackend`] on a local server (ElasticMQ, moto, LocalStack):
//!   `ElasticMqBackend::new("localhost", 9324)?`.
//!
//! TLS is on for every endpoint that is not local: an endpoint URL (given to
//! [`ElasticMqBackend`], or in the AWS configuration as `AWS_ENDPOINT_URL`) must be
//! `https://` unless its host is loopback; plain HTTP to another host is refused with
//! [`EndpointError::PlainHttp`] unless opted in with
//! [`ElasticMqBackendBuilder::allow_plain_http`]. Endpoints the SDK resolves from the region
//! are `https://`.
//! - [`wire`]: the message format, as pure functions (usable without a server).
//!
//! Queues are addressed by name; the backend caches queue URLs and topic ARNs. Queues whose
//! name ends in `.fifo` are FIFO queues. Subscribing a queue to a topic also lets the topic
//! send to the queue (its access policy) and sets the manifest filter, in the `Subscribe` call
//! itself so that a new subscription is never unfiltered (a filter SNS would refuse is
//! refused before any call). Publishing checks the size limits (1 MiB for SQS, 256 KiB for
//! SNS) before sending; batch calls send up to ten entries per request and report one result
//! per entry. Failed calls are retried by the SDK (standard mode, exponential backoff) before
//! surfacing as a typed
//! [`BackendError`](melange_core::BackendError) that keeps the SDK error as its source
//! (inside an [`UncodedResponse`] naming the HTTP status when the answer had no AWS error
//! code, such as a proxy's error page; a 5xx one is transient).
//!
//! SQS counts time in whole seconds: a receive's wait time is rounded down (at most 20 s),
//! visibility timeouts are rounded up (at most 12 hours).
//!
//! ```no_run
//! use melange_core::{Message, MessagingBackendFactory, QueuePublisher, SerializerRegistry};
//! use melange_sqs::AwsBackend;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct OrderCreated { order_id: u64 }
//! impl Message for OrderCreated { const MANIFEST: &'static str = "OrderCreated"; }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = AwsBackend::from_env().await?;
//! MessagingBackendFactory::new(backend.clone())
//!     .init_queue("payments")
//!     .subscribed_to(["orders"])
//!     .dead_letter_queue("payments-dlq")
//!     .await?;
//!
//! let publisher = QueuePublisher::new(SerializerRegistry::default(), backend);
//! publisher
//!     .publish("payments", &OrderCreated { order_id: 42 })
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod backend;
mod endpoint;
mod error;
mod local;
mod policy;
pub mod wire;

pub use backend::{
    AwsBackend, IncompleteResponse, SqsBackend, default_retry_config, default_timeout_config,
};
pub use endpoint::{EndpointError, check_endpoint, is_loopback_host};
pub use error::{BatchEntryError, UncodedResponse};
pub use local::{ElasticMqBackend, ElasticMqBackendBuilder, LOCAL_REGION};

/// The SQS SDK crate this backend is built on, for [`SqsBackend::sqs_client`].
pub use aws_sdk_sqs;

/// The SNS SDK crate this backend is built on, for [`SqsBackend::sns_client`].
pub use aws_sdk_sns;

/// The AWS configuration loader crate, for [`SqsBackend::from_sdk_config`].
pub use aws_config;
