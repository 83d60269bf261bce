//! Mapping SQS and SNS errors onto [`BackendError`], keeping the SDK error as the source.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use melange_core::error::{BackendError, BoxError};

/// What a queue or topic operation addressed, to name it in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Queue(&'a str),
    Topic(&'a str),
}

impl Target<'_> {
    fn name(&self) -> String {
        match self {
            Target::Queue(name) | Target::Topic(name) => (*name).to_owned(),
        }
    }
}

/// How an error should surface, decided from the SDK error once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    NotFound,
    AccessDenied,
    Throttled,
    Unavailable,
    InvalidReceipt,
    InvalidRequest(String),
    Service(String),
}

/// Classifies an AWS error code (both the SQS JSON `__type` short names and the legacy query
/// codes, which SQS sends in `x-amzn-query-error` and the SDK reports).
pub(crate) fn classify_code(code: &str, message: Option<&str>) -> Class {
    let reason = || message.map_or_else(|| code.to_owned(), |m| format!("{code}: {m}"));
    match code {
        "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist"
        | "NonExistentQueue"
        | "NotFound"
        | "NotFoundException" => Class::NotFound,
        "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "InvalidClientTokenId"
        | "InvalidSecurity"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException"
        | "MissingAuthenticationToken"
        | "ExpiredToken"
        | "KmsAccessDenied"
        | "KMSAccessDeniedException" => Class::AccessDenied,
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottled"
        | "AWS.SimpleQueueService.RequestThrottled"
        | "KmsThrottled"
        | "KMSThrottlingException"
        | "OverLimit"
        | "TooManyRequestsException" => Class::Throttled,
        "ServiceUnavailable"
        | "InternalError"
        | "InternalFailure"
        | "InternalErrorException"
        | "RequestTimeout" => Class::Unavailable,
        "ReceiptHandleIsInvalid"
        | "InvalidReceiptHandle"
        | "MessageNotInflight"
        | "AWS.SimpleQueueService.MessageNotInflight" => Class::InvalidReceipt,
        "InvalidParameterValue"
        | "InvalidParameterValueException"
        | "InvalidParameter"
        | "InvalidParameterException"
        | "InvalidAttributeName"
        | "InvalidAttributeValue"
        | "InvalidAddress"
        | "MissingParameter"
        | "InvalidMessageContents"
        | "UnsupportedOperation"
        | "AWS.SimpleQueueService.UnsupportedOperation"
        | "ValidationError"
        | "ValidationException"
        | "InvalidIdFormat"
        | "InvalidBatchEntryId"
        | "AWS.SimpleQueueService.InvalidBatchEntryId"
        | "BatchEntryIdsNotDistinct"
        | "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
        | "TooManyEntriesInBatchRequest"
        | "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
        | "EmptyBatchRequest"
        | "AWS.SimpleQueueService.EmptyBatchRequest"
        | "BatchRequestTooLong"
        | "AWS.SimpleQueueService.BatchRequestTooLong"
        | "QueueNameExists"
        | "QueueAlreadyExists"
        | "QueueDeletedRecently"
        | "AWS.SimpleQueueService.QueueDeletedRecently"
        | "PurgeQueueInProgress"
        | "AWS.SimpleQueueService.PurgeQueueInProgress"
        | "InvalidSubject" => Class::InvalidRequest(reason()),
        other => Class::Service(other.to_owned()),
    }
}

/// Classifies an SDK error: transport problems and timeouts are [`Class::Unavailable`],
/// service errors go by their code.
pub(crate) fn classify<E, R>(error: &SdkError<E, R>) -> Class
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Class::Unavailable
        }
        SdkError::ConstructionFailure(_) => {
            Class::InvalidRequest("the request could not be built".to_owned())
        }
        SdkError::ServiceError(service) => {
            let err = service.err();
            match err.code() {
                Some(code) => classify_code(code, err.message()),
                None => Class::Service("Unknown".to_owned()),
            }
        }
        _ => Class::Service("Unknown".to_owned()),
    }
}

/// Builds the [`BackendError`] of a class, with `source` kept.
pub(crate) fn build(class: Class, target: Target<'_>, source: BoxError) -> BackendError {
    match class {
        Class::NotFound => match target {
            Target::Queue(name) => BackendError::QueueDoesNotExist {
                name: name.to_owned(),
                source: Some(source),
            },
            Target::Topic(name) => BackendError::TopicDoesNotExist {
                name: name.to_owned(),
                source: Some(source),
            },
        },
        Class::AccessDenied => BackendError::AccessDenied {
            target: target.name(),
            source,
        },
        Class::Throttled => BackendError::Throttled {
            target: target.name(),
            source,
        },
        Class::Unavailable => BackendError::Unavailable {
            target: target.name(),
            source,
        },
        Class::InvalidReceipt => BackendError::InvalidReceipt {
            queue: target.name(),
            source: Some(source),
        },
        Class::InvalidRequest(reason) => BackendError::InvalidRequest {
            target: target.name(),
            reason,
            source: Some(source),
        },
        Class::Service(code) => BackendError::Service {
            target: target.name(),
            code,
            source,
        },
    }
}

/// Maps an SDK error onto a [`BackendError`], keeping it as the source.
pub(crate) fn map_sdk<E, R>(error: SdkError<E, R>, target: Target<'_>) -> BackendError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let class = classify(&error);
    build(class, target, Box::new(error))
}

/// An error shared by several entries of a batch call that failed as a whole.
#[derive(Debug, Clone)]
pub(crate) struct SharedError(pub(crate) Arc<dyn StdError + Send + Sync + 'static>);

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// A batch call's whole-request failure, mapped once and copied to each affected entry.
pub(crate) struct SharedFailure {
    class: Class,
    shared: SharedError,
}

impl SharedFailure {
    /// Classifies an SDK error of a batch call.
    pub(crate) fn new<E, R>(error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        Self {
            class: classify(&error),
            shared: SharedError(Arc::new(error)),
        }
    }

    /// One entry's error.
    pub(crate) fn to_error(&self, target: Target<'_>) -> BackendError {
        build(self.class.clone(), target, Box::new(self.shared.clone()))
    }
}

/// One entry of a batch call that the service refused (`BatchResultErrorEntry`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch entry refused with {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
pub struct BatchEntryError {
    /// The service's error code.
    pub code: String,
    /// The service's message, if any.
    pub message: Option<String>,
    /// Whether the request was at fault (as opposed to the service).
    pub sender_fault: bool,
}

impl BatchEntryError {
    /// Maps the entry's failure onto a [`BackendError`], keeping itself as the source.
    pub(crate) fn into_backend_error(self, target: Target<'_>) -> BackendError {
        let class = match classify_code(&self.code, self.message.as_deref()) {
            // An unknown code the service blames on itself is worth retrying.
            Class::Service(_) if !self.sender_fault => Class::Unavailable,
            class => class,
        };
        build(class, target, Box::new(self))
    }
}

/// A request this backend refuses before sending, because a value cannot be represented.
pub(crate) fn invalid(target: Target<'_>, reason: impl Into<String>) -> BackendError {
    BackendError::InvalidRequest {
        target: target.name(),
        reason: reason.into(),
        source: None,
    }
}

/// A request whose SDK builder refused a value.
pub(crate) fn build_failed(
    target: Target<'_>,
    error: aws_sdk_sqs::error::BuildError,
) -> BackendError {
    BackendError::InvalidRequest {
        target: target.name(),
        reason: "the request could not be built".to_owned(),
        source: Some(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_both_protocols_classify_alike() {
        assert_eq!(
            classify_code("AWS.SimpleQueueService.NonExistentQueue", None),
            Class::NotFound
        );
        assert_eq!(classify_code("QueueDoesNotExist", None), Class::NotFound);
        assert_eq!(
            classify_code("AuthorizationError", None),
            Class::AccessDenied
        );
        assert_eq!(
            classify_code("ReceiptHandleIsInvalid", None),
            Class::InvalidReceipt
        );
        assert_eq!(classify_code("ThrottlingException", None), Class::Throttled);
        assert!(matches!(
            classify_code("Weird", None),
            Class::Service(code) if code == "Weird"
        ));
    }

    #[test]
    fn batch_entries_keep_their_code_as_source() {
        let entry = BatchEntryError {
            code: "ReceiptHandleIsInvalid".to_owned(),
            message: Some("nope".to_owned()),
            sender_fault: true,
        };
        let error = entry.clone().into_backend_error(Target::Queue("q"));
        assert!(matches!(error, BackendError::InvalidReceipt { ref queue, .. } if queue == "q"));
        let source = StdError::source(&error).unwrap();
        assert_eq!(source.to_string(), entry.to_string());
    }
}
