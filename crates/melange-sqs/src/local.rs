//! [`ElasticMqBackend`]: the SQS backend pointed at a local server.

use std::ops::Deref;
use std::time::Duration;

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use melange_core::backend::{BatchResult, MessagingBackend, QueueInfo, QueueSpec, Received};
use melange_core::envelope::{OutgoingMessage, ReceiptHandle, ReceiveOptions};
use melange_core::error::BackendError;

use crate::backend::{SqsBackend, default_retry_config, default_timeout_config};
use crate::endpoint::{EndpointError, check_endpoint, redact};

/// The region local servers are addressed with, as Python Melange's `LocalSQSBackend` does.
pub const LOCAL_REGION: &str = "us-east-1";

/// The SQS backend on a local SQS + SNS server (ElasticMQ, moto, LocalStack), like Python
/// Melange's `ElasticMQBackend` / `LocalSQSBackend`: one endpoint for both SQS and SNS, region
/// `us-east-1`, dummy static credentials.
///
/// It dereferences to [`SqsBackend`] and implements [`MessagingBackend`] the same way.
///
/// Plain `http://` is accepted only on a loopback host (`localhost`, `127.0.0.0/8`, `::1`);
/// any other host needs `https://`, or an explicit
/// [`allow_plain_http`](ElasticMqBackendBuilder::allow_plain_http) for a server on a trusted
/// private network (a docker-compose service such as `http://elasticmq:9324`). Otherwise the
/// constructors fail with [`EndpointError::PlainHttp`].
///
/// ```
/// use melange_sqs::{ElasticMqBackend, EndpointError};
///
/// let backend = ElasticMqBackend::new("localhost", 9324)?;
/// assert_eq!(backend.endpoint(), "http://localhost:9324");
///
/// // Another host on plain HTTP: refused, unless opted in.
/// assert!(matches!(
///     ElasticMqBackend::from_endpoint("http://elasticmq:9324"),
///     Err(EndpointError::PlainHttp { .. })
/// ));
/// let compose = ElasticMqBackend::builder("http://elasticmq:9324")
///     .allow_plain_http(true)
///     .build()?;
/// # let _ = (backend, compose);
/// # Ok::<(), EndpointError>(())
/// ```
#[derive(Clone)]
pub struct ElasticMqBackend {
    backend: SqsBackend,
    endpoint: String,
}

/// Shows the endpoint without any user information it holds, as the errors do.
impl std::fmt::Debug for ElasticMqBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticMqBackend")
            .field("backend", &self.backend)
            .field("endpoint", &redact(&self.endpoint))
            .finish()
    }
}

/// Builds an [`ElasticMqBackend`]: [`ElasticMqBackend::builder`].
#[derive(Clone)]
#[must_use = "call `build` to get the backend"]
pub struct ElasticMqBackendBuilder {
    endpoint: String,
    allow_plain_http: bool,
}

/// Shows the endpoint without any user information it holds, as the errors do.
impl std::fmt::Debug for ElasticMqBackendBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticMqBackendBuilder")
            .field("endpoint", &redact(&self.endpoint))
            .field("allow_plain_http", &self.allow_plain_http)
            .finish()
    }
}

impl ElasticMqBackendBuilder {
    /// Accepts a plain `http://` endpoint on a host that is not a loopback address (default
    /// `false`). Requests, signed with the dummy credentials, then cross the network
    /// unencrypted: use it only for a server on a trusted private network, such as a
    /// docker-compose service (`http://elasticmq:9324`).
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Checks the endpoint ([`check_endpoint`]) and builds the backend.
    pub fn build(self) -> Result<ElasticMqBackend, EndpointError> {
        check_endpoint(&self.endpoint, self.allow_plain_http)?;
        Ok(ElasticMqBackend::connect(self.endpoint))
    }
}

impl ElasticMqBackend {
    /// A backend on `http://host:port`. A `host` that already has a scheme (`http://localhost`,
    /// as Python Melange takes it) is used as is. Fails with [`EndpointError::PlainHttp`] for
    /// plain HTTP to a host that is not loopback (see [`builder`](Self::builder)).
    pub fn new(host: &str, port: u16) -> Result<Self, EndpointError> {
        let host = host.trim_end_matches('/');
        if host.contains("://") {
            Self::from_endpoint(format!("{host}:{port}"))
        } else {
            Self::from_endpoint(format!("http://{host}:{port}"))
        }
    }

    /// A backend on this endpoint URL (`http://127.0.0.1:4566`), for both SQS and SNS. Fails
    /// with [`EndpointError::PlainHttp`] for plain HTTP to a host that is not loopback (see
    /// [`builder`](Self::builder)).
    pub fn from_endpoint(endpoint: impl Into<String>) -> Result<Self, EndpointError> {
        Self::builder(endpoint).build()
    }

    /// Starts a backend on this endpoint URL, with options.
    pub fn builder(endpoint: impl Into<String>) -> ElasticMqBackendBuilder {
        ElasticMqBackendBuilder {
            endpoint: endpoint.into(),
            allow_plain_http: false,
        }
    }

    fn connect(endpoint: String) -> Self {
        let credentials = Credentials::new("x", "x", None, None, "melange-local");
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(
                default_timeout_config()
                    .operation_attempt_timeout()
                    .unwrap_or(Duration::from_secs(30)),
            )
            .operation_timeout(
                default_timeout_config()
                    .operation_timeout()
                    .unwrap_or(Duration::from_secs(60)),
            )
            .build();
        let sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(LOCAL_REGION))
            .credentials_provider(credentials.clone())
            .endpoint_url(&endpoint)
            .retry_config(default_retry_config())
            .timeout_config(timeouts.clone())
            .build();
        let sns = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(LOCAL_REGION))
            .credentials_provider(credentials)
            .endpoint_url(&endpoint)
            .retry_config(default_retry_config())
            .timeout_config(timeouts)
            .build();
        Self {
            backend: SqsBackend::from_clients(
                aws_sdk_sqs::Client::from_conf(sqs),
                aws_sdk_sns::Client::from_conf(sns),
            ),
            endpoint,
        }
    }

    /// The same backend with other client timeouts (see [`SqsBackend::with_timeout_config`]);
    /// the fields `timeouts` leaves unset keep their values (2 s to connect, 30 s per
    /// attempt, 60 s per operation).
    pub fn with_timeout_config(self, timeouts: TimeoutConfig) -> Self {
        Self {
            backend: self.backend.with_timeout_config(timeouts),
            endpoint: self.endpoint,
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The underlying [`SqsBackend`].
    pub fn into_inner(self) -> SqsBackend {
        self.backend
    }
}

impl Deref for ElasticMqBackend {
    type Target = SqsBackend;

    fn deref(&self) -> &SqsBackend {
        &self.backend
    }
}

impl From<ElasticMqBackend> for SqsBackend {
    fn from(local: ElasticMqBackend) -> Self {
        local.backend
    }
}

impl MessagingBackend for ElasticMqBackend {
    async fn declare_queue(&self, spec: &QueueSpec) -> Result<QueueInfo, BackendError> {
        self.backend.declare_queue(spec).await
    }

    async fn get_queue(&self, name: &str) -> Result<QueueInfo, BackendError> {
        self.backend.get_queue(name).await
    }

    async fn delete_queue(&self, name: &str) -> Result<(), BackendError> {
        self.backend.delete_queue(name).await
    }

    async fn declare_topic(&self, name: &str) -> Result<(), BackendError> {
        self.backend.declare_topic(name).await
    }

    async fn delete_topic(&self, name: &str) -> Result<(), BackendError> {
        self.backend.delete_topic(name).await
    }

    async fn subscribe(
        &self,
        queue: &str,
        topic: &str,
        manifest_filter: Option<&[String]>,
    ) -> Result<(), BackendError> {
        self.backend.subscribe(queue, topic, manifest_filter).await
    }

    async fn publish_to_queue(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        self.backend.publish_to_queue(queue, message).await
    }

    async fn publish_batch_to_queue(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        self.backend.publish_batch_to_queue(queue, messages).await
    }

    async fn publish_to_topic(
        &self,
        topic: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        self.backend.publish_to_topic(topic, message).await
    }

    async fn publish_batch_to_topic(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        self.backend.publish_batch_to_topic(topic, messages).await
    }

    async fn receive(
        &self,
        queue: &str,
        options: &ReceiveOptions,
    ) -> Result<Received, BackendError> {
        self.backend.receive(queue, options).await
    }

    async fn acknowledge(&self, queue: &str, receipt: &ReceiptHandle) -> Result<(), BackendError> {
        self.backend.acknowledge(queue, receipt).await
    }

    async fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchResult<()>, BackendError> {
        self.backend.acknowledge_batch(queue, receipts).await
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        self.backend
            .change_visibility(queue, receipt, timeout)
            .await
    }

    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchResult<()>, BackendError> {
        self.backend.change_visibility_batch(queue, entries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_user_information() {
        let builder = ElasticMqBackend::builder("http://key:secret@127.0.0.1:9324");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("key"),
            "{shown}"
        );
        let backend = builder.build().unwrap();
        let shown = format!("{backend:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("key"),
            "{shown}"
        );
        assert!(shown.contains("***@127.0.0.1:9324"), "{shown}");
    }

    #[test]
    fn timeouts_can_be_replaced_field_by_field() {
        let backend = ElasticMqBackend::from_endpoint("http://127.0.0.1:9")
            .unwrap()
            .with_timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(7))
                    .build(),
            );
        assert_eq!(backend.endpoint(), "http://127.0.0.1:9");
        let sqs = backend.sqs_client().config().timeout_config().cloned();
        let sns = backend.sns_client().config().timeout_config().cloned();
        for timeouts in [sqs, sns] {
            let Some(timeouts) = timeouts else {
                panic!("no timeout configuration");
            };
            assert_eq!(
                timeouts.operation_attempt_timeout(),
                Some(Duration::from_secs(3))
            );
            assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(7)));
            // Not given: kept.
            assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(2)));
        }
    }
}
