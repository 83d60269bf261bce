//! Errors, typed so callers can match on what went wrong, with sources kept.

/// A boxed error, the currency between user code (handlers, custom serializers) and melange.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Encoding or decoding a message failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerializationError {
    /// A received message names a serializer identifier the registry does not know.
    #[error("no serializer with identifier {id} is registered")]
    UnknownSerializer {
        /// The identifier the message carried.
        id: u32,
    },
    /// A message could not be serialized.
    #[error("serializer {serializer_id} could not encode a `{manifest}`: {source}")]
    Encode {
        /// The manifest of the message type.
        manifest: &'static str,
        /// The serializer used.
        serializer_id: u32,
        /// The serializer's error.
        #[source]
        source: BoxError,
    },
    /// Received content could not be deserialized.
    #[error(
        "serializer {serializer_id} could not decode a message with manifest {manifest:?}: {source}"
    )]
    Decode {
        /// The manifest the message carried.
        manifest: Option<String>,
        /// The serializer used.
        serializer_id: u32,
        /// The serializer's error.
        #[source]
        source: BoxError,
    },
}

/// A backend operation failed.
///
/// Backends map their native errors onto these variants so callers can react the same way on
/// every backend; the native error stays available as the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The queue does not exist (or was deleted).
    #[error("queue `{name}` does not exist")]
    QueueDoesNotExist {
        /// The queue's name.
        name: String,
        /// The backend's error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The topic does not exist (or was deleted).
    #[error("topic `{name}` does not exist")]
    TopicDoesNotExist {
        /// The topic's name.
        name: String,
        /// The backend's error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A queue or topic name the backend does not accept.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A request the backend rejects as malformed (for example, a FIFO message without a group
    /// id, or a visibility timeout over the maximum).
    #[error("invalid request on `{target}`: {reason}")]
    InvalidRequest {
        /// The queue or topic addressed.
        target: String,
        /// Why.
        reason: String,
        /// The backend's error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The message is larger than the backend accepts; checked before sending.
    #[error("message of {size} bytes for `{target}` exceeds the {limit}-byte limit")]
    MessageTooLarge {
        /// The queue or topic addressed.
        target: String,
        /// The message's size in bytes.
        size: usize,
        /// The backend's limit in bytes.
        limit: usize,
    },
    /// The receipt is unknown or expired (the message was already deleted, or its visibility
    /// timeout ran out and another consumer received it).
    #[error(
        "receipt is not valid on queue `{queue}` (already acknowledged, or visibility expired)"
    )]
    InvalidReceipt {
        /// The queue.
        queue: String,
        /// The backend's error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The credentials in use may not do this.
    #[error("access denied on `{target}`")]
    AccessDenied {
        /// The queue or topic addressed.
        target: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// The backend asked us to slow down and retries were exhausted.
    #[error("throttled on `{target}`")]
    Throttled {
        /// The queue or topic addressed.
        target: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// The backend could not be reached or did not answer in time.
    #[error("backend unreachable while working on `{target}`")]
    Unavailable {
        /// The queue or topic addressed.
        target: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// Any other error the backend reported.
    #[error("backend error on `{target}`: {code}")]
    Service {
        /// The queue or topic addressed.
        target: String,
        /// The backend's error code.
        code: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl BackendError {
    /// Whether retrying the same call later may succeed (the backend was unreachable or
    /// throttled), as opposed to a mistake that will fail again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Unavailable { .. })
    }
}

/// A message handler failed. The message is not acknowledged (under the default policy) and
/// will be delivered again.
#[derive(Debug, thiserror::Error)]
#[error("handler `{handler}` failed: {source}")]
pub struct HandlerError {
    /// The handler, as `Consumer::method`.
    pub handler: &'static str,
    /// What the handler returned.
    #[source]
    pub source: BoxError,
}

/// Consuming one message with one consumer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The content could not be decoded into the handler's type.
    #[error(transparent)]
    Decode(#[from] SerializationError),
    /// The handler ran and failed.
    #[error(transparent)]
    Handler(#[from] HandlerError),
    /// The consumer was handed a message it does not accept (its `accepts` said no).
    #[error("consumer `{consumer}` has no handler for manifest {manifest:?}")]
    Unaccepted {
        /// The consumer.
        consumer: &'static str,
        /// The message's manifest.
        manifest: Option<String>,
    },
}

/// An error with its sources, `outer: cause: root cause`, for logs: a backend error's own
/// message names the queue at fault ("backend unreachable while working on `jobs`"), and
/// only its sources say why (a refused connection, no credentials, an HTTP 503).
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_shows_every_source() {
        let error = BackendError::Unavailable {
            target: "jobs".to_owned(),
            source: "dispatch failure: no credentials in the environment".into(),
        };
        assert_eq!(
            ErrorChain(&error).to_string(),
            "backend unreachable while working on `jobs`: dispatch failure: no credentials in \
             the environment"
        );
    }
}
