//! [`SqsBackend`]: the [`MessagingBackend`] on Amazon SQS + SNS.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sns::types::PublishBatchRequestEntry;
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::error::{BuildError, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use melange_core::backend::{
    BatchResult, MAX_VISIBILITY_TIMEOUT, MessagingBackend, QueueInfo, QueueSpec, Received,
};
use melange_core::envelope::{
    Delivery, Envelope, MalformedMessage, OutgoingMessage, ReceiptHandle, ReceiveOptions,
    check_subject,
};
use melange_core::error::BackendError;

use crate::endpoint::{self, EndpointError};
use crate::error::{BatchEntryError, SharedFailure, Target, build_failed, invalid, map_sdk};
use crate::policy;
use crate::wire::{self, Attribute, SNS_MAX_MESSAGE_SIZE, SQS_MAX_MESSAGE_SIZE};

/// Entries per SQS or SNS batch call.
const BATCH_SIZE: usize = 10;

/// The longest long-poll SQS allows.
const MAX_WAIT_TIME_SECONDS: u64 = 20;

/// The retry policy melange configures on the clients it builds: the SDK's standard mode
/// (exponential backoff with jitter, retry quota), 5 attempts, backoff from 100 ms to 5 s.
pub fn default_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(5))
}

/// The timeouts melange configures on the clients it builds: 3 s to connect, 30 s per
/// attempt (longer than SQS's 20 s long poll) and 60 s per operation, retries included, so
/// a hung server surfaces as [`BackendError::Unavailable`](melange_core::BackendError::Unavailable)
/// within a minute and the consumer backs off, rather than waiting for it forever (or for
/// five attempts of 30 s each).
pub fn default_timeout_config() -> aws_sdk_sqs::config::timeout::TimeoutConfig {
    aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(MAX_WAIT_TIME_SECONDS + 10))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// `timeouts` with each field it leaves unset (neither set nor disabled) taken from
/// [`default_timeout_config`].
fn with_default_timeouts(
    timeouts: Option<&aws_sdk_sqs::config::timeout::TimeoutConfig>,
) -> aws_sdk_sqs::config::timeout::TimeoutConfig {
    let mut timeouts = timeouts
        .cloned()
        .unwrap_or_else(|| aws_sdk_sqs::config::timeout::TimeoutConfig::builder().build());
    timeouts.take_defaults_from(&default_timeout_config());
    timeouts
}

/// The [`MessagingBackend`] on Amazon SQS (queues) and SNS (topics), wire-compatible with
/// Python Melange 7.2.0.
///
/// Cheap to clone: clones share the SDK clients and the name caches (queue name → URL and
/// ARN, topic name → ARN), so publishing does not call `GetQueueUrl` each time. A cached
/// entry is dropped when SQS or SNS says the queue or topic does not exist.
///
/// Build it from the standard AWS configuration chain with [`SqsBackend::from_env`] (also
/// reachable as [`AwsBackend`]), from an [`SdkConfig`] with
/// [`from_sdk_config`](SqsBackend::from_sdk_config), from ready clients with
/// [`from_clients`](SqsBackend::from_clients), or for a local server with
/// [`ElasticMqBackend`](crate::ElasticMqBackend).
#[derive(Clone)]
pub struct SqsBackend {
    inner: Arc<Inner>,
}

/// The backend on AWS, configured from the standard chain: `AwsBackend::from_env().await`.
pub type AwsBackend = SqsBackend;

struct Inner {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    queues: RwLock<HashMap<String, CachedQueue>>,
    topics: RwLock<HashMap<String, Arc<str>>>,
}

#[derive(Clone)]
struct CachedQueue {
    url: Arc<str>,
    arn: Option<Arc<str>>,
}

impl fmt::Debug for SqsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues = self.inner.queues.read().map_or(0, |queues| queues.len());
        let topics = self.inner.topics.read().map_or(0, |topics| topics.len());
        f.debug_struct("SqsBackend")
            .field("cached_queues", &queues)
            .field("cached_topics", &topics)
            .finish_non_exhaustive()
    }
}

/// A response lacked a field the operation needs.
#[derive(Debug, thiserror::Error)]
#[error("{operation} response has no {field}")]
pub struct IncompleteResponse {
    /// The operation.
    pub operation: &'static str,
    /// The missing field.
    pub field: &'static str,
}

fn incomplete(target: Target<'_>, operation: &'static str, field: &'static str) -> BackendError {
    let name = match target {
        Target::Queue(name) | Target::Topic(name) => name.to_owned(),
    };
    BackendError::Service {
        target: name,
        code: "IncompleteResponse".to_owned(),
        source: Box::new(IncompleteResponse { operation, field }),
    }
}

impl SqsBackend {
    /// A backend configured from the standard AWS chain (environment variables, shared config
    /// and credentials files, container and instance roles), with
    /// [`default_retry_config`] and [`default_timeout_config`].
    ///
    /// Fails with [`EndpointError::PlainHttp`] when the configuration names an endpoint URL
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SNS`, `endpoint_url` in
    /// the profile) that is plain `http://` on a host that is not loopback. Without one, the
    /// SDK resolves `https://` AWS endpoints from the region; with no region configured it
    /// fails with [`EndpointError::NoRegion`].
    pub async fn from_env() -> Result<Self, EndpointError> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(default_retry_config())
            .timeout_config(default_timeout_config())
            .load()
            .await;
        Self::from_sdk_config(&config)
    }

    /// A backend using this configuration for both SQS and SNS.
    ///
    /// Timeouts: each timeout the configuration leaves unset is taken from
    /// [`default_timeout_config`], and every one it sets (or disables) is kept. An
    /// `aws_config::load()`ed configuration always has a timeout configuration, but with only
    /// a connect timeout; without melange's attempt and operation timeouts a request on a
    /// half-open connection would wait for minutes instead of failing with
    /// [`BackendError::Unavailable`](melange_core::BackendError::Unavailable) within a minute.
    ///
    /// Retries: the configuration's retry configuration is kept, [`default_retry_config`]
    /// applies only when it has none. `aws_config::load()` always sets one (the SDK's
    /// standard mode with 3 attempts, or what `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` or the
    /// profile say) and it cannot be told from one set on purpose, so it is kept: for
    /// melange's, give `.retry_config(default_retry_config())` to the loader, as
    /// [`from_env`](Self::from_env) does.
    ///
    /// Fails with [`EndpointError::PlainHttp`] when the configuration names a plain `http://`
    /// endpoint URL on a host that is not loopback (see [`from_env`](Self::from_env)), and with
    /// [`EndpointError::NoRegion`] when it has no region.
    pub fn from_sdk_config(config: &SdkConfig) -> Result<Self, EndpointError> {
        if config.region().is_none() {
            return Err(EndpointError::NoRegion);
        }
        endpoint::check_sdk_config(config)?;
        let timeouts = with_default_timeouts(config.timeout_config());
        let mut sqs = aws_sdk_sqs::config::Builder::from(config).timeout_config(timeouts.clone());
        let mut sns = aws_sdk_sns::config::Builder::from(config).timeout_config(timeouts);
        if config.retry_config().is_none() {
            sqs = sqs.retry_config(default_retry_config());
            sns = sns.retry_config(default_retry_config());
        }
        Ok(Self::from_clients(
            aws_sdk_sqs::Client::from_conf(sqs.build()),
            aws_sdk_sns::Client::from_conf(sns.build()),
        ))
    }

    /// A backend using these clients as they are configured. Their endpoint is not checked:
    /// a client configured with a plain `http://` endpoint URL on a remote host sends its
    /// requests unencrypted (the other constructors refuse such an endpoint).
    pub fn from_clients(sqs: aws_sdk_sqs::Client, sns: aws_sdk_sns::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                sqs,
                sns,
                queues: RwLock::new(HashMap::new()),
                topics: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The same backend with other client timeouts, for both SQS and SNS: the fields set in
    /// `timeouts` replace the clients' ones, the others are kept (for a consumer that must
    /// notice a hung server sooner than [`default_timeout_config`]'s 30 s per attempt, set a
    /// shorter `operation_attempt_timeout`, longer than the consumer's long-poll wait, and an
    /// `operation_timeout` bounding all the SDK's retries of a call together).
    ///
    /// The returned backend has new clients and empty name caches; `self` is unchanged.
    ///
    /// ```
    /// use std::time::Duration;
    /// use melange_sqs::ElasticMqBackend;
    /// use melange_sqs::aws_sdk_sqs::config::timeout::TimeoutConfig;
    ///
    /// let backend = ElasticMqBackend::new("localhost", 9324)?.with_timeout_config(
    ///     TimeoutConfig::builder()
    ///         .operation_attempt_timeout(Duration::from_secs(8))
    ///         .operation_timeout(Duration::from_secs(20))
    ///         .build(),
    /// );
    /// # let _ = backend;
    /// # Ok::<(), melange_sqs::EndpointError>(())
    /// ```
    pub fn with_timeout_config(
        &self,
        timeouts: aws_sdk_sqs::config::timeout::TimeoutConfig,
    ) -> Self {
        let sqs = self
            .inner
            .sqs
            .config()
            .to_builder()
            .timeout_config(timeouts.clone())
            .build();
        let sns = self
            .inner
            .sns
            .config()
            .to_builder()
            .timeout_config(timeouts)
            .build();
        Self::from_clients(
            aws_sdk_sqs::Client::from_conf(sqs),
            aws_sdk_sns::Client::from_conf(sns),
        )
    }

    /// The SQS client, for operations melange does not wrap.
    pub fn sqs_client(&self) -> &aws_sdk_sqs::Client {
        &self.inner.sqs
    }

    /// The SNS client, for operations melange does not wrap.
    pub fn sns_client(&self) -> &aws_sdk_sns::Client {
        &self.inner.sns
    }

    /// The URL of a queue, from the cache or from `GetQueueUrl`.
    pub async fn queue_url(&self, name: &str) -> Result<String, BackendError> {
        self.resolve_queue(name).await.map(|url| url.to_string())
    }

    /// The ARN of a topic, from the cache or by listing the account's topics.
    pub async fn topic_arn(&self, name: &str) -> Result<String, BackendError> {
        self.resolve_topic(name).await.map(|arn| arn.to_string())
    }

    /// Forgets every cached queue URL and topic ARN.
    pub fn clear_cache(&self) {
        self.inner
            .queues
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Whether the URL of this queue is cached.
    pub fn is_queue_cached(&self, name: &str) -> bool {
        self.cached_queue(name).is_some()
    }

    // ----- caches -----

    fn cached_queue(&self, name: &str) -> Option<CachedQueue> {
        self.inner
            .queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn cache_queue(&self, name: &str, url: Arc<str>, arn: Option<Arc<str>>) {
        let mut queues = self
            .inner
            .queues
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = queues.entry(name.to_owned()).or_insert(CachedQueue {
            url: url.clone(),
            arn: None,
        });
        if entry.url != url {
            entry.arn = None;
        }
        entry.url = url;
        if arn.is_some() {
            entry.arn = arn;
        }
    }

    fn forget_queue(&self, name: &str) {
        self.inner
            .queues
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    fn forget_topic(&self, name: &str) {
        self.inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Drops the cached URL of a queue that turned out not to exist.
    fn check_queue<T>(
        &self,
        name: &str,
        result: Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        if let Err(BackendError::QueueDoesNotExist { .. }) = &result {
            self.forget_queue(name);
        }
        result
    }

    /// Drops the cached ARN of a topic that turned out not to exist.
    fn check_topic<T>(
        &self,
        name: &str,
        result: Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        if let Err(BackendError::TopicDoesNotExist { .. }) = &result {
            self.forget_topic(name);
        }
        result
    }

    async fn resolve_queue(&self, name: &str) -> Result<Arc<str>, BackendError> {
        if let Some(cached) = self.cached_queue(name) {
            return Ok(cached.url);
        }
        let target = Target::Queue(name);
        let output = self
            .inner
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| map_sdk(e, target))?;
        let url: Arc<str> = output
            .queue_url
            .ok_or_else(|| incomplete(target, "GetQueueUrl", "QueueUrl"))?
            .into();
        self.cache_queue(name, url.clone(), None);
        Ok(url)
    }

    async fn resolve_queue_arn(&self, name: &str) -> Result<Arc<str>, BackendError> {
        if let Some(arn) = self.cached_queue(name).and_then(|cached| cached.arn) {
            return Ok(arn);
        }
        let url = self.resolve_queue(name).await?;
        let attributes = self
            .queue_attributes(name, &url, vec![QueueAttributeName::QueueArn])
            .await?;
        attributes
            .get(&QueueAttributeName::QueueArn)
            .map(|arn| Arc::from(arn.as_str()))
            .ok_or_else(|| incomplete(Target::Queue(name), "GetQueueAttributes", "QueueArn"))
    }

    async fn queue_attributes(
        &self,
        name: &str,
        url: &str,
        names: Vec<QueueAttributeName>,
    ) -> Result<HashMap<QueueAttributeName, String>, BackendError> {
        let result = self
            .inner
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names))
            .send()
            .await
            .map_err(|e| map_sdk(e, Target::Queue(name)));
        let attributes = self
            .check_queue(name, result)?
            .attributes
            .unwrap_or_default();
        if let Some(arn) = attributes.get(&QueueAttributeName::QueueArn) {
            self.cache_queue(name, url.into(), Some(arn.as_str().into()));
        }
        Ok(attributes)
    }

    async fn queue_info(&self, name: &str, url: &str) -> Result<QueueInfo, BackendError> {
        let attributes = self
            .queue_attributes(
                name,
                url,
                vec![
                    QueueAttributeName::QueueArn,
                    QueueAttributeName::VisibilityTimeout,
                    QueueAttributeName::RedrivePolicy,
                ],
            )
            .await?;
        let visibility_timeout = attributes
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|seconds| seconds.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(30), Duration::from_secs);
        let dead_letter = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|redrive| policy::parse_redrive_policy(redrive));
        Ok(QueueInfo::new(name, visibility_timeout, dead_letter))
    }

    async fn resolve_topic(&self, name: &str) -> Result<Arc<str>, BackendError> {
        if let Some(arn) = self
            .inner
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Ok(arn.clone());
        }
        // SNS has no "get topic by name": list the topics (100 per page) and cache them all.
        let target = Target::Topic(name);
        let mut next_token = None;
        loop {
            let output = self
                .inner
                .sns
                .list_topics()
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| map_sdk(e, target))?;
            let mut found = None;
            {
                let mut topics = self
                    .inner
                    .topics
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                for arn in output
                    .topics
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|t| t.topic_arn)
                {
                    let arn: Arc<str> = arn.into();
                    let topic_name = policy::name_of_arn(&arn).to_owned();
                    if topic_name == name {
                        found = Some(arn.clone());
                    }
                    topics.insert(topic_name, arn);
                }
            }
            if let Some(arn) = found {
                return Ok(arn);
            }
            match output.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => {
                    return Err(BackendError::TopicDoesNotExist {
                        name: name.to_owned(),
                        source: None,
                    });
                }
            }
        }
    }

    /// Sets the `FilterPolicy` of a subscription of `topic`.
    async fn set_filter_policy(
        &self,
        topic: &str,
        subscription: String,
        filter: String,
    ) -> Result<(), BackendError> {
        let result = self
            .inner
            .sns
            .set_subscription_attributes()
            .subscription_arn(subscription)
            .attribute_name("FilterPolicy")
            .attribute_value(filter)
            .send()
            .await
            .map_err(|e| map_sdk(e, Target::Topic(topic)));
        self.check_topic(topic, result).map(|_| ())
    }

    /// The ARN of the subscription that delivers `topic` to the queue `queue_arn`, if any.
    async fn find_subscription(
        &self,
        topic: &str,
        topic_arn: &str,
        queue_arn: &str,
    ) -> Result<Option<String>, BackendError> {
        let mut next_token = None;
        loop {
            let result = self
                .inner
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(topic_arn)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| map_sdk(e, Target::Topic(topic)));
            let output = self.check_topic(topic, result)?;
            let found = output.subscriptions().iter().find_map(|subscription| {
                let delivers = subscription.protocol() == Some("sqs")
                    && subscription.endpoint() == Some(queue_arn);
                // A pending subscription's ARN is "PendingConfirmation", not an ARN.
                subscription
                    .subscription_arn()
                    .filter(|arn| delivers && arn.starts_with("arn:"))
            });
            if let Some(arn) = found {
                return Ok(Some(arn.to_owned()));
            }
            match output.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(None),
            }
        }
    }

    // ----- declarations -----

    async fn create_queue(
        &self,
        spec: &QueueSpec,
        dead_letter_arn: Option<&str>,
    ) -> Result<Arc<str>, BackendError> {
        let name = spec.name.as_str();
        let target = Target::Queue(name);
        check_name(name, 80)?;
        let mut attributes = HashMap::new();
        let mut mutable = HashMap::new();
        if spec.is_fifo() {
            attributes.insert(QueueAttributeName::FifoQueue, "true".to_owned());
            // Changeable on an existing FIFO queue, so a declaration sets it as the in-memory
            // backend does.
            mutable.insert(
                QueueAttributeName::ContentBasedDeduplication,
                spec.content_based_deduplication.to_string(),
            );
        }
        if let Some(timeout) = spec.visibility_timeout {
            mutable.insert(
                QueueAttributeName::VisibilityTimeout,
                visibility_seconds(timeout, target)?.to_string(),
            );
        }
        if let (Some(arn), Some(dead_letter)) = (dead_letter_arn, &spec.dead_letter) {
            mutable.insert(
                QueueAttributeName::RedrivePolicy,
                policy::redrive_policy(arn, dead_letter.max_receive_count),
            );
        }
        attributes.extend(mutable.clone());
        let created = self
            .inner
            .sqs
            .create_queue()
            .queue_name(name)
            .set_attributes(Some(attributes))
            .send()
            .await;
        let url: Arc<str> = match created {
            Ok(output) => output
                .queue_url
                .ok_or_else(|| incomplete(target, "CreateQueue", "QueueUrl"))?
                .into(),
            Err(error)
                if matches!(
                    error.code(),
                    Some(
                        "QueueNameExists"
                            | "QueueAlreadyExists"
                            | "AWS.SimpleQueueService.QueueNameExists"
                    )
                ) =>
            {
                // It exists with other attributes: keep it, as Python Melange does, and apply
                // the attributes the spec sets that SQS lets us change.
                self.forget_queue(name);
                let url = self.resolve_queue(name).await?;
                if !mutable.is_empty() {
                    let result = self
                        .inner
                        .sqs
                        .set_queue_attributes()
                        .queue_url(&*url)
                        .set_attributes(Some(mutable))
                        .send()
                        .await
                        .map_err(|e| map_sdk(e, target));
                    self.check_queue(name, result)?;
                }
                url
            }
            Err(error) => return Err(map_sdk(error, target)),
        };
        self.cache_queue(name, url.clone(), None);
        Ok(url)
    }

    // ----- publishing -----

    fn prepare_queue_message(
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<PreparedSqs, BackendError> {
        let attributes = wire::outgoing_attributes(
            message.manifest.as_deref(),
            message.serializer_id,
            &message.attributes,
        );
        let body = wire::queue_body(&message.content);
        let size = wire::message_size(&body, attributes.iter().map(|(k, v)| (k.as_str(), v)));
        if size > SQS_MAX_MESSAGE_SIZE {
            return Err(BackendError::MessageTooLarge {
                target: queue.to_owned(),
                size,
                limit: SQS_MAX_MESSAGE_SIZE,
            });
        }
        let target = Target::Queue(queue);
        let attributes = attributes
            .into_iter()
            .map(|(name, attribute)| Ok((name, sqs_attribute(attribute)?)))
            .collect::<Result<HashMap<_, _>, BuildError>>()
            .map_err(|e| build_failed(target, e))?;
        Ok(PreparedSqs {
            body,
            attributes,
            size,
            group_id: message.message_group_id,
            deduplication_id: message.deduplication_id,
        })
    }

    fn prepare_topic_message(
        topic: &str,
        message: OutgoingMessage,
    ) -> Result<PreparedSns, BackendError> {
        let attributes = wire::outgoing_attributes(
            message.manifest.as_deref(),
            message.serializer_id,
            &message.attributes,
        );
        let size = wire::message_size(
            &message.content,
            attributes.iter().map(|(k, v)| (k.as_str(), v)),
        ) + message.subject.as_ref().map_or(0, String::len);
        if size > SNS_MAX_MESSAGE_SIZE {
            return Err(BackendError::MessageTooLarge {
                target: topic.to_owned(),
                size,
                limit: SNS_MAX_MESSAGE_SIZE,
            });
        }
        let target = Target::Topic(topic);
        // SNS refuses the whole publish for a bad subject; say why before sending it, in the
        // words the in-memory backend uses.
        if let Some(subject) = &message.subject {
            check_subject(subject).map_err(|error| invalid(target, error.to_string()))?;
        }
        let attributes = attributes
            .into_iter()
            .map(|(name, attribute)| Ok((name, sns_attribute(attribute)?)))
            .collect::<Result<HashMap<_, _>, BuildError>>()
            .map_err(|e| build_failed(target, e))?;
        Ok(PreparedSns {
            content: message.content,
            attributes,
            size,
            subject: message.subject,
            group_id: message.message_group_id,
            deduplication_id: message.deduplication_id,
        })
    }

    async fn send_batch_chunk(
        &self,
        queue: &str,
        url: &str,
        chunk: Vec<(usize, PreparedSqs)>,
        results: &mut [Option<Result<String, BackendError>>],
    ) -> Result<(), SharedFailure> {
        let target = Target::Queue(queue);
        let mut entries = Vec::with_capacity(chunk.len());
        let mut indexes = Vec::with_capacity(chunk.len());
        for (index, prepared) in chunk {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(prepared.body)
                .set_message_attributes(Some(prepared.attributes))
                .set_message_group_id(prepared.group_id)
                .set_message_deduplication_id(prepared.deduplication_id)
                .build();
            match entry {
                Ok(entry) => {
                    entries.push(entry);
                    indexes.push(index);
                }
                Err(error) => results[index] = Some(Err(build_failed(target, error))),
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        let output = self
            .inner
            .sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(SharedFailure::new)?;
        for success in output.successful {
            if let Some(index) = entry_index(&success.id, &indexes) {
                results[index] = Some(Ok(success.message_id));
            }
        }
        for failure in output.failed {
            if let Some(index) = entry_index(&failure.id, &indexes) {
                results[index] = Some(Err(BatchEntryError {
                    code: failure.code,
                    message: failure.message,
                    sender_fault: failure.sender_fault,
                }
                .into_backend_error(target)));
            }
        }
        Ok(())
    }

    async fn publish_batch_chunk(
        &self,
        topic: &str,
        arn: &str,
        chunk: Vec<(usize, PreparedSns)>,
        results: &mut [Option<Result<String, BackendError>>],
    ) -> Result<(), SharedFailure> {
        let target = Target::Topic(topic);
        let mut entries = Vec::with_capacity(chunk.len());
        let mut indexes = Vec::with_capacity(chunk.len());
        for (index, prepared) in chunk {
            let entry = PublishBatchRequestEntry::builder()
                .id(index.to_string())
                .message(prepared.content)
                .set_message_attributes(Some(prepared.attributes))
                .set_subject(prepared.subject)
                .set_message_group_id(prepared.group_id)
                .set_message_deduplication_id(prepared.deduplication_id)
                .build();
            match entry {
                Ok(entry) => {
                    entries.push(entry);
                    indexes.push(index);
                }
                Err(error) => results[index] = Some(Err(build_failed(target, error))),
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        let output = self
            .inner
            .sns
            .publish_batch()
            .topic_arn(arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(SharedFailure::new)?;
        for success in output.successful.unwrap_or_default() {
            let Some(id) = success.id else { continue };
            if let Some(index) = entry_index(&id, &indexes) {
                results[index] = Some(
                    success
                        .message_id
                        .ok_or_else(|| incomplete(target, "PublishBatch", "MessageId")),
                );
            }
        }
        for failure in output.failed.unwrap_or_default() {
            if let Some(index) = entry_index(&failure.id, &indexes) {
                results[index] = Some(Err(BatchEntryError {
                    code: failure.code,
                    message: failure.message,
                    sender_fault: failure.sender_fault,
                }
                .into_backend_error(target)));
            }
        }
        Ok(())
    }
}

struct PreparedSqs {
    body: String,
    attributes: HashMap<String, aws_sdk_sqs::types::MessageAttributeValue>,
    size: usize,
    group_id: Option<String>,
    deduplication_id: Option<String>,
}

struct PreparedSns {
    content: String,
    attributes: HashMap<String, aws_sdk_sns::types::MessageAttributeValue>,
    size: usize,
    subject: Option<String>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
}

fn sqs_attribute(
    attribute: Attribute,
) -> Result<aws_sdk_sqs::types::MessageAttributeValue, BuildError> {
    aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type(attribute.data_type)
        .set_string_value(attribute.string_value)
        .build()
}

fn sns_attribute(
    attribute: Attribute,
) -> Result<aws_sdk_sns::types::MessageAttributeValue, BuildError> {
    aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type(attribute.data_type)
        .set_string_value(attribute.string_value)
        .build()
}

/// The position in the caller's list of a batch entry id (ids are those positions).
fn entry_index(id: &str, sent: &[usize]) -> Option<usize> {
    id.parse::<usize>()
        .ok()
        .filter(|index| sent.contains(index))
}

/// Splits prepared entries into batches of at most ten entries and `max_bytes` in total.
fn chunk_by_size<T>(
    entries: Vec<(usize, T)>,
    size: impl Fn(&T) -> usize,
    max_bytes: usize,
) -> Vec<Vec<(usize, T)>> {
    let mut chunks: Vec<Vec<(usize, T)>> = Vec::new();
    let mut current = Vec::new();
    let mut current_bytes = 0;
    for (index, entry) in entries {
        let bytes = size(&entry);
        if !current.is_empty() && (current.len() == BATCH_SIZE || current_bytes + bytes > max_bytes)
        {
            chunks.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += bytes;
        current.push((index, entry));
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Fills in the results of a batch call: entries the service did not report on become
/// errors.
fn finish_batch(
    results: Vec<Option<Result<String, BackendError>>>,
    target: Target<'_>,
    operation: &'static str,
) -> BatchResult<String> {
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(incomplete(target, operation, "entry result"))))
        .collect()
}

/// Checks a queue or topic name: 1 to `max_len` ASCII letters, digits, `-` and `_`, plus an
/// optional `.fifo` suffix.
fn check_name(name: &str, max_len: usize) -> Result<(), BackendError> {
    let reason = if name.is_empty() {
        Some("the name is empty".to_owned())
    } else if name.len() > max_len {
        Some(format!("the name is longer than {max_len} characters"))
    } else if !name
        .strip_suffix(".fifo")
        .unwrap_or(name)
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some(
            "only ASCII letters, digits, `-` and `_` are allowed (and a `.fifo` suffix)".to_owned(),
        )
    } else {
        None
    };
    match reason {
        Some(reason) => Err(BackendError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Whole seconds of a visibility timeout, rounded up (a hold is never shorter than asked).
fn visibility_seconds(timeout: Duration, target: Target<'_>) -> Result<i32, BackendError> {
    if timeout > MAX_VISIBILITY_TIMEOUT {
        return Err(invalid(
            target,
            format!(
                "visibility timeout of {timeout:?} exceeds the maximum of {MAX_VISIBILITY_TIMEOUT:?}"
            ),
        ));
    }
    i32::try_from(whole_seconds_up(timeout))
        .map_err(|_| invalid(target, "visibility timeout out of range"))
}

/// A duration in the whole seconds SQS counts, rounded up.
fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Turns one received SQS message into an envelope, or a malformed message that can still be
/// acknowledged. `None` when it has no receipt handle (nothing can be done with it).
fn to_envelope(
    queue: &Arc<str>,
    message: aws_sdk_sqs::types::Message,
) -> Option<Result<Envelope, MalformedMessage>> {
    let Some(receipt) = message.receipt_handle else {
        tracing::warn!(queue = %queue, message_id = ?message.message_id, "received a message without a receipt handle; skipped");
        return None;
    };
    let message_id: Arc<str> = message.message_id.unwrap_or_default().into();
    let system = message.attributes.unwrap_or_default();
    let receive_count = system
        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|count| count.parse::<u32>().ok())
        .unwrap_or(1);
    let message_group_id = system
        .get(&MessageSystemAttributeName::MessageGroupId)
        .map(|group| Arc::from(group.as_str()));
    let attributes: HashMap<String, Attribute> = message
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            (
                name,
                Attribute {
                    data_type: value.data_type,
                    string_value: value.string_value,
                },
            )
        })
        .collect();
    let body = message.body.unwrap_or_default();
    let mut delivery = Delivery {
        queue: queue.clone(),
        receipt: ReceiptHandle::new(receipt),
        receive_count,
        message_group_id,
        attributes: HashMap::new(),
    };
    Some(
        match wire::decode(&body, &attributes, SQS_MAX_MESSAGE_SIZE) {
            Ok(decoded) => {
                delivery.attributes = decoded.attributes;
                Ok(Envelope {
                    message_id,
                    content: decoded.content.into(),
                    manifest: decoded.manifest.map(Into::into),
                    serializer_id: decoded.serializer_id,
                    delivery,
                })
            }
            Err(error) => {
                delivery.attributes = attributes
                    .into_iter()
                    .filter_map(|(name, attribute)| {
                        attribute.string_value.map(|value| (name, value))
                    })
                    .filter(|(name, _)| {
                        name != wire::MANIFEST_ATTRIBUTE && name != wire::SERIALIZER_ID_ATTRIBUTE
                    })
                    .collect();
                Err(MalformedMessage {
                    message_id,
                    delivery,
                    error,
                })
            }
        },
    )
}

impl MessagingBackend for SqsBackend {
    async fn declare_queue(&self, spec: &QueueSpec) -> Result<QueueInfo, BackendError> {
        // What SQS would refuse of the queue, before its dead-letter queue is created.
        check_name(&spec.name, 80)?;
        spec.check_dead_letter()?;
        let dead_letter_arn = match &spec.dead_letter {
            Some(dead_letter) => {
                let dlq_spec = QueueSpec::new(dead_letter.queue.clone())
                    .content_based_deduplication(spec.content_based_deduplication);
                self.create_queue(&dlq_spec, None).await?;
                Some(self.resolve_queue_arn(&dead_letter.queue).await?)
            }
            None => None,
        };
        let url = self.create_queue(spec, dead_letter_arn.as_deref()).await?;
        self.queue_info(&spec.name, &url).await
    }

    async fn get_queue(&self, name: &str) -> Result<QueueInfo, BackendError> {
        let url = self.resolve_queue(name).await?;
        self.queue_info(name, &url).await
    }

    async fn delete_queue(&self, name: &str) -> Result<(), BackendError> {
        let url = self.resolve_queue(name).await?;
        let result = self
            .inner
            .sqs
            .delete_queue()
            .queue_url(&*url)
            .send()
            .await
            .map_err(|e| map_sdk(e, Target::Queue(name)));
        self.forget_queue(name);
        result.map(|_| ())
    }

    async fn declare_topic(&self, name: &str) -> Result<(), BackendError> {
        let target = Target::Topic(name);
        check_name(name, 256)?;
        let mut request = self.inner.sns.create_topic().name(name);
        if melange_core::backend::is_fifo_name(name) {
            request = request
                .attributes("FifoTopic", "true")
                .attributes("ContentBasedDeduplication", "true");
        }
        let output = request.send().await.map_err(|e| map_sdk(e, target))?;
        let arn = output
            .topic_arn
            .ok_or_else(|| incomplete(target, "CreateTopic", "TopicArn"))?;
        self.inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), arn.into());
        Ok(())
    }

    async fn delete_topic(&self, name: &str) -> Result<(), BackendError> {
        let arn = self.resolve_topic(name).await?;
        let result = self
            .inner
            .sns
            .delete_topic()
            .topic_arn(&*arn)
            .send()
            .await
            .map_err(|e| map_sdk(e, Target::Topic(name)));
        self.forget_topic(name);
        result.map(|_| ())
    }

    async fn subscribe(
        &self,
        queue: &str,
        topic: &str,
        manifest_filter: Option<&[String]>,
    ) -> Result<(), BackendError> {
        let topic_target = Target::Topic(topic);
        // Checked before any call, so a filter SNS refuses cannot leave a subscription behind.
        let filter = manifest_filter
            .map(|manifests| {
                policy::checked_filter_policy(manifests).map_err(|reason| {
                    invalid(
                        topic_target,
                        format!("{reason} (subscribing queue `{queue}`)"),
                    )
                })
            })
            .transpose()?;
        let topic_arn = self.resolve_topic(topic).await?;
        let url = self.resolve_queue(queue).await?;
        let queue_target = Target::Queue(queue);
        let attributes = self
            .queue_attributes(
                queue,
                &url,
                vec![QueueAttributeName::QueueArn, QueueAttributeName::Policy],
            )
            .await?;
        let queue_arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .ok_or_else(|| incomplete(queue_target, "GetQueueAttributes", "QueueArn"))?;

        // Let the topic send to the queue, keeping the statements of other topics.
        let existing = attributes
            .get(&QueueAttributeName::Policy)
            .map(String::as_str);
        let updated = policy::allow_topic(existing, queue_arn, &topic_arn)
            .map_err(|reason| invalid(queue_target, reason))?;
        if let Some(updated) = updated {
            let result = self
                .inner
                .sqs
                .set_queue_attributes()
                .queue_url(&*url)
                .attributes(QueueAttributeName::Policy, updated)
                .send()
                .await
                .map_err(|e| map_sdk(e, queue_target));
            self.check_queue(queue, result)?;
        }

        // The filter goes with the Subscribe call, so a new subscription is filtered from its
        // first message: set afterwards, a failure would leave it unfiltered.
        let mut request = self
            .inner
            .sns
            .subscribe()
            .topic_arn(&*topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .return_subscription_arn(true);
        if let Some(filter) = &filter {
            request = request.attributes("FilterPolicy", filter);
        }
        match request.send().await {
            Ok(output) => {
                let subscription = output
                    .subscription_arn
                    .ok_or_else(|| incomplete(topic_target, "Subscribe", "SubscriptionArn"))?;
                if filter.is_none() {
                    // Subscribe without attributes leaves an existing subscription's as they
                    // are: drop a filter an earlier subscribe set.
                    self.set_filter_policy(topic, subscription, policy::filter_policy(None))
                        .await?;
                }
                Ok(())
            }
            // SNS refuses to subscribe again with attributes other than the existing
            // subscription's ("Subscription already exists with different attributes"):
            // change that subscription's filter instead.
            Err(error) if filter.is_some() && error.code() == Some("InvalidParameter") => {
                let existing = self.find_subscription(topic, &topic_arn, queue_arn).await?;
                match (existing, filter) {
                    (Some(subscription), Some(filter)) => {
                        self.set_filter_policy(topic, subscription, filter).await
                    }
                    _ => Err(map_sdk(error, topic_target)),
                }
            }
            Err(error) => {
                let result = Err(map_sdk(error, topic_target));
                self.check_topic(topic, result)
            }
        }
    }

    async fn publish_to_queue(
        &self,
        queue: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        let prepared = Self::prepare_queue_message(queue, message)?;
        let url = self.resolve_queue(queue).await?;
        let target = Target::Queue(queue);
        let result = self
            .inner
            .sqs
            .send_message()
            .queue_url(&*url)
            .message_body(prepared.body)
            .set_message_attributes(Some(prepared.attributes))
            .set_message_group_id(prepared.group_id)
            .set_message_deduplication_id(prepared.deduplication_id)
            .send()
            .await
            .map_err(|e| map_sdk(e, target));
        self.check_queue(queue, result)?
            .message_id
            .ok_or_else(|| incomplete(target, "SendMessage", "MessageId"))
    }

    async fn publish_batch_to_queue(
        &self,
        queue: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let target = Target::Queue(queue);
        let mut results: Vec<Option<Result<String, BackendError>>> =
            (0..messages.len()).map(|_| None).collect();
        let mut prepared = Vec::with_capacity(messages.len());
        for (index, message) in messages.into_iter().enumerate() {
            match Self::prepare_queue_message(queue, message) {
                Ok(entry) => prepared.push((index, entry)),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        let url = self.resolve_queue(queue).await?;
        let mut chunks = chunk_by_size(prepared, |p| p.size, SQS_MAX_MESSAGE_SIZE).into_iter();
        while let Some(chunk) = chunks.next() {
            let indexes: Vec<usize> = chunk.iter().map(|(index, _)| *index).collect();
            if let Err(failure) = self
                .send_batch_chunk(queue, &url, chunk, &mut results)
                .await
            {
                let nothing_sent = !results.iter().any(|r| matches!(r, Some(Ok(_))));
                let error = failure.to_error(target);
                if let BackendError::QueueDoesNotExist { .. } = error {
                    self.forget_queue(queue);
                }
                if nothing_sent {
                    return Err(error);
                }
                for index in indexes
                    .into_iter()
                    .chain(chunks.by_ref().flatten().map(|(index, _)| index))
                {
                    results[index] = Some(Err(failure.to_error(target)));
                }
                break;
            }
        }
        Ok(finish_batch(results, target, "SendMessageBatch"))
    }

    async fn publish_to_topic(
        &self,
        topic: &str,
        message: OutgoingMessage,
    ) -> Result<String, BackendError> {
        let prepared = Self::prepare_topic_message(topic, message)?;
        let arn = self.resolve_topic(topic).await?;
        let target = Target::Topic(topic);
        let result = self
            .inner
            .sns
            .publish()
            .topic_arn(&*arn)
            .message(prepared.content)
            .set_message_attributes(Some(prepared.attributes))
            .set_subject(prepared.subject)
            .set_message_group_id(prepared.group_id)
            .set_message_deduplication_id(prepared.deduplication_id)
            .send()
            .await
            .map_err(|e| map_sdk(e, target));
        self.check_topic(topic, result)?
            .message_id
            .ok_or_else(|| incomplete(target, "Publish", "MessageId"))
    }

    async fn publish_batch_to_topic(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<BatchResult<String>, BackendError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let target = Target::Topic(topic);
        let mut results: Vec<Option<Result<String, BackendError>>> =
            (0..messages.len()).map(|_| None).collect();
        let mut prepared = Vec::with_capacity(messages.len());
        for (index, message) in messages.into_iter().enumerate() {
            match Self::prepare_topic_message(topic, message) {
                Ok(entry) => prepared.push((index, entry)),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        let arn = self.resolve_topic(topic).await?;
        let mut chunks = chunk_by_size(prepared, |p| p.size, SNS_MAX_MESSAGE_SIZE).into_iter();
        while let Some(chunk) = chunks.next() {
            let indexes: Vec<usize> = chunk.iter().map(|(index, _)| *index).collect();
            if let Err(failure) = self
                .publish_batch_chunk(topic, &arn, chunk, &mut results)
                .await
            {
                let nothing_sent = !results.iter().any(|r| matches!(r, Some(Ok(_))));
                let error = failure.to_error(target);
                if let BackendError::TopicDoesNotExist { .. } = error {
                    self.forget_topic(topic);
                }
                if nothing_sent {
                    return Err(error);
                }
                for index in indexes
                    .into_iter()
                    .chain(chunks.by_ref().flatten().map(|(index, _)| index))
                {
                    results[index] = Some(Err(failure.to_error(target)));
                }
                break;
            }
        }
        Ok(finish_batch(results, target, "PublishBatch"))
    }

    async fn receive(
        &self,
        queue: &str,
        options: &ReceiveOptions,
    ) -> Result<Received, BackendError> {
        let target = Target::Queue(queue);
        let max_messages = i32::try_from(options.max_messages.clamp(1, 10)).unwrap_or(10);
        // SQS waits whole seconds. A fraction is rounded up: rounded down to zero it would be
        // a short poll, which on an empty queue comes back at once (a loop of them spins) and
        // may come back empty while messages wait (one ends a loop stopping when idle).
        let wait_seconds = whole_seconds_up(options.wait_time).min(MAX_WAIT_TIME_SECONDS);
        let wait_seconds = i32::try_from(wait_seconds).unwrap_or(20);
        let visibility = options
            .visibility_timeout
            .map(|timeout| visibility_seconds(timeout, target))
            .transpose()?;
        let url = self.resolve_queue(queue).await?;
        let result = self
            .inner
            .sqs
            .receive_message()
            .queue_url(&*url)
            .max_number_of_messages(max_messages)
            .wait_time_seconds(wait_seconds)
            .set_visibility_timeout(visibility)
            .message_attribute_names("All")
            // Only what `to_envelope` reads: "All" makes the server build and send a dozen
            // attributes per message that are thrown away.
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| map_sdk(e, target));
        let messages = self
            .check_queue(queue, result)?
            .messages
            .unwrap_or_default();
        let queue_name: Arc<str> = queue.into();
        Ok(messages
            .into_iter()
            .filter_map(|message| to_envelope(&queue_name, message))
            .collect())
    }

    async fn acknowledge(&self, queue: &str, receipt: &ReceiptHandle) -> Result<(), BackendError> {
        let url = self.resolve_queue(queue).await?;
        let result = self
            .inner
            .sqs
            .delete_message()
            .queue_url(&*url)
            .receipt_handle(receipt.as_str())
            .send()
            .await
            .map_err(|e| map_sdk(e, Target::Queue(queue)));
        self.check_queue(queue, result).map(|_| ())
    }

    async fn acknowledge_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchResult<()>, BackendError> {
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        let target = Target::Queue(queue);
        let url = self.resolve_queue(queue).await?;
        let mut results: Vec<Option<Result<(), BackendError>>> =
            (0..receipts.len()).map(|_| None).collect();
        for (chunk_index, chunk) in receipts.chunks(BATCH_SIZE).enumerate() {
            let offset = chunk_index * BATCH_SIZE;
            let mut entries = Vec::with_capacity(chunk.len());
            let mut indexes = Vec::with_capacity(chunk.len());
            for (i, receipt) in chunk.iter().enumerate() {
                let index = offset + i;
                match DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt.as_str())
                    .build()
                {
                    Ok(entry) => {
                        entries.push(entry);
                        indexes.push(index);
                    }
                    Err(error) => results[index] = Some(Err(build_failed(target, error))),
                }
            }
            let output = self
                .inner
                .sqs
                .delete_message_batch()
                .queue_url(&*url)
                .set_entries(Some(entries))
                .send()
                .await;
            match output {
                Ok(output) => {
                    for success in output.successful {
                        if let Some(index) = entry_index(&success.id, &indexes) {
                            results[index] = Some(Ok(()));
                        }
                    }
                    for failure in output.failed {
                        if let Some(index) = entry_index(&failure.id, &indexes) {
                            results[index] = Some(Err(BatchEntryError {
                                code: failure.code,
                                message: failure.message,
                                sender_fault: failure.sender_fault,
                            }
                            .into_backend_error(target)));
                        }
                    }
                }
                Err(error) => {
                    let failure = SharedFailure::new(error);
                    let first = failure.to_error(target);
                    if let BackendError::QueueDoesNotExist { .. } = first {
                        self.forget_queue(queue);
                    }
                    if offset == 0 {
                        return Err(first);
                    }
                    for result in results.iter_mut().skip(offset).filter(|r| r.is_none()) {
                        *result = Some(Err(failure.to_error(target)));
                    }
                    break;
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(incomplete(target, "DeleteMessageBatch", "entry result"))
                })
            })
            .collect())
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        let target = Target::Queue(queue);
        let seconds = visibility_seconds(timeout, target)?;
        let url = self.resolve_queue(queue).await?;
        let result = self
            .inner
            .sqs
            .change_message_visibility()
            .queue_url(&*url)
            .receipt_handle(receipt.as_str())
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| map_sdk(e, target));
        self.check_queue(queue, result).map(|_| ())
    }

    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchResult<()>, BackendError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let target = Target::Queue(queue);
        let mut results: Vec<Option<Result<(), BackendError>>> =
            (0..entries.len()).map(|_| None).collect();
        let url = self.resolve_queue(queue).await?;
        for (chunk_index, chunk) in entries.chunks(BATCH_SIZE).enumerate() {
            let offset = chunk_index * BATCH_SIZE;
            let mut request_entries = Vec::with_capacity(chunk.len());
            let mut indexes = Vec::with_capacity(chunk.len());
            for (i, (receipt, timeout)) in chunk.iter().enumerate() {
                let index = offset + i;
                let entry = visibility_seconds(*timeout, target).and_then(|seconds| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(receipt.as_str())
                        .visibility_timeout(seconds)
                        .build()
                        .map_err(|e| build_failed(target, e))
                });
                match entry {
                    Ok(entry) => {
                        request_entries.push(entry);
                        indexes.push(index);
                    }
                    Err(error) => results[index] = Some(Err(error)),
                }
            }
            if request_entries.is_empty() {
                continue;
            }
            let output = self
                .inner
                .sqs
                .change_message_visibility_batch()
                .queue_url(&*url)
                .set_entries(Some(request_entries))
                .send()
                .await;
            match output {
                Ok(output) => {
                    for success in output.successful {
                        if let Some(index) = entry_index(&success.id, &indexes) {
                            results[index] = Some(Ok(()));
                        }
                    }
                    for failure in output.failed {
                        if let Some(index) = entry_index(&failure.id, &indexes) {
                            results[index] = Some(Err(BatchEntryError {
                                code: failure.code,
                                message: failure.message,
                                sender_fault: failure.sender_fault,
                            }
                            .into_backend_error(target)));
                        }
                    }
                }
                Err(error) => {
                    let failure = SharedFailure::new(error);
                    let first = failure.to_error(target);
                    if let BackendError::QueueDoesNotExist { .. } = first {
                        self.forget_queue(queue);
                    }
                    if !results.iter().any(|r| matches!(r, Some(Ok(())))) {
                        return Err(first);
                    }
                    for result in results.iter_mut().filter(|r| r.is_none()) {
                        *result = Some(Err(failure.to_error(target)));
                    }
                    break;
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(incomplete(
                        target,
                        "ChangeMessageVisibilityBatch",
                        "entry result",
                    ))
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_ten_entries_and_respect_the_byte_limit() {
        let entries: Vec<(usize, usize)> = (0..25).map(|i| (i, 1)).collect();
        let chunks = chunk_by_size(entries, |size| *size, 100);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        let entries: Vec<(usize, usize)> = vec![(0, 60), (1, 60), (2, 30), (3, 100)];
        let chunks = chunk_by_size(entries, |size| *size, 100);
        let indexes: Vec<Vec<usize>> = chunks
            .iter()
            .map(|c| c.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(indexes, vec![vec![0], vec![1, 2], vec![3]]);
    }

    #[test]
    fn visibility_rounds_up_and_caps() {
        let target = Target::Queue("q");
        assert_eq!(
            visibility_seconds(Duration::from_millis(1500), target).unwrap(),
            2
        );
        assert_eq!(visibility_seconds(Duration::ZERO, target).unwrap(), 0);
        assert!(
            visibility_seconds(MAX_VISIBILITY_TIMEOUT + Duration::from_secs(1), target).is_err()
        );
    }

    /// The attempt, operation and connect timeouts of both clients.
    fn timeouts(
        backend: &SqsBackend,
    ) -> [(Option<Duration>, Option<Duration>, Option<Duration>); 2] {
        let sqs = backend.sqs_client().config().timeout_config().cloned();
        let sns = backend.sns_client().config().timeout_config().cloned();
        [sqs, sns].map(|timeouts| {
            let timeouts = timeouts.unwrap_or_else(|| panic!("a client without timeouts"));
            (
                timeouts.operation_attempt_timeout(),
                timeouts.operation_timeout(),
                timeouts.connect_timeout(),
            )
        })
    }

    #[tokio::test]
    async fn loaded_sdk_configs_get_melange_timeouts_where_they_set_none() {
        // `load()` sets a timeout configuration with a connect timeout only, and a retry
        // configuration (no network is needed for either).
        let loaded = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_types::region::Region::from_static("us-east-1"))
            .load()
            .await;
        let loaded_timeouts = loaded.timeout_config().unwrap();
        assert_eq!(loaded_timeouts.operation_attempt_timeout(), None);
        assert_eq!(loaded_timeouts.operation_timeout(), None);
        let backend = SqsBackend::from_sdk_config(&loaded).unwrap();
        let defaults = default_timeout_config();
        for (attempt, operation, connect) in timeouts(&backend) {
            assert_eq!(attempt, defaults.operation_attempt_timeout());
            assert_eq!(operation, defaults.operation_timeout());
            assert_eq!(connect, loaded_timeouts.connect_timeout());
        }
        // The loaded retry configuration is kept (it cannot be told from a chosen one).
        let retries = loaded.retry_config().unwrap();
        assert_eq!(backend.sqs_client().config().retry_config(), Some(retries));
        assert_eq!(backend.sns_client().config().retry_config(), Some(retries));
    }

    #[tokio::test]
    async fn timeouts_set_or_disabled_in_the_sdk_config_are_kept() {
        let chosen = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(7))
            .build();
        let loaded = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_types::region::Region::from_static("us-east-1"))
            .timeout_config(chosen)
            .load()
            .await;
        let backend = SqsBackend::from_sdk_config(&loaded).unwrap();
        let defaults = default_timeout_config();
        for (attempt, operation, _) in timeouts(&backend) {
            assert_eq!(operation, Some(Duration::from_secs(7)));
            assert_eq!(attempt, defaults.operation_attempt_timeout());
        }

        let disabled = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
            .disable_operation_attempt_timeout()
            .build();
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_types::region::Region::from_static("us-east-1"))
            .timeout_config(disabled)
            .build();
        let backend = SqsBackend::from_sdk_config(&config).unwrap();
        for (attempt, operation, connect) in timeouts(&backend) {
            assert_eq!(attempt, None);
            assert_eq!(operation, defaults.operation_timeout());
            assert_eq!(connect, defaults.connect_timeout());
        }
        // Without a retry configuration, melange's applies.
        let retries = backend.sqs_client().config().retry_config().unwrap();
        assert_eq!(retries, &default_retry_config());
    }

    #[test]
    fn a_configuration_without_a_region_is_refused_up_front() {
        // Not at the first call, as "unreachable" (the SDK's failure to resolve an endpoint
        // is a dispatch failure), but here, naming what to set.
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let Err(error) = SqsBackend::from_sdk_config(&config) else {
            panic!("a configuration without a region was accepted");
        };
        assert_eq!(error, EndpointError::NoRegion);
        assert!(error.to_string().contains("AWS_REGION"), "{error}");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("orders-1_a.fifo", 80).is_ok());
        assert!(check_name("", 80).is_err());
        assert!(check_name("has space", 80).is_err());
        assert!(check_name(&"a".repeat(81), 80).is_err());
    }
}
