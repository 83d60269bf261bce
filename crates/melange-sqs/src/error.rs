//! Mapping SQS and SNS errors onto [`BackendError`], keeping the SDK error as the source.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use aws_sdk_sqs::config::http::HttpResponse;
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
        | "KMSAccessDeniedException"
        // As the SDKs report them: SQS's query code and SNS's.
        | "KMS.AccessDeniedException"
        | "KMSAccessDenied" => Class::AccessDenied,
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottled"
        | "AWS.SimpleQueueService.RequestThrottled"
        | "KmsThrottled"
        | "KMSThrottlingException"
        // As the SDKs report them: SQS's query code and SNS's.
        | "KMS.ThrottlingException"
        | "KMSThrottling"
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
/// service errors go by their code, and by their HTTP status when the code is unknown or
/// missing (a proxy's 502 page has none): a 5xx is the server's fault and worth retrying.
pub(crate) fn classify<E>(error: &SdkError<E, HttpResponse>) -> Class
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
            let status = service.raw().status();
            match err.code() {
                Some(code) => match classify_code(code, err.message()) {
                    Class::Service(_) if status.is_server_error() => Class::Unavailable,
                    class => class,
                },
                None => classify_status(status.as_u16()),
            }
        }
        _ => Class::Service("Unknown".to_owned()),
    }
}

/// Classifies a service error response that carried no error code, by its HTTP status.
fn classify_status(status: u16) -> Class {
    match status {
        429 => Class::Throttled,
        500..=599 => Class::Unavailable,
        _ => Class::Service(format!("HTTP {status}")),
    }
}

/// A service error response without an error code (an empty body, or a proxy's HTML page),
/// named by its HTTP status, since the SDK error alone says only "service error".
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status} response without an AWS error code")]
pub struct UncodedResponse {
    /// The HTTP status of the response.
    pub status: u16,
    /// The SDK error.
    #[source]
    source: BoxError,
}

/// Classifies an SDK error and boxes it as the source of the [`BackendError`], wrapped in
/// [`UncodedResponse`] when the response had no error code.
fn classify_boxed<E>(error: SdkError<E, HttpResponse>) -> (Class, BoxError)
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let class = classify(&error);
    let uncoded = match &error {
        SdkError::ServiceError(service) if service.err().code().is_none() => {
            Some(service.raw().status().as_u16())
        }
        _ => None,
    };
    let source: BoxError = match uncoded {
        Some(status) => Box::new(UncodedResponse {
            status,
            source: Box::new(error),
        }),
        None => Box::new(error),
    };
    (class, source)
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
pub(crate) fn map_sdk<E>(error: SdkError<E, HttpResponse>, target: Target<'_>) -> BackendError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let (class, source) = classify_boxed(error);
    build(class, target, source)
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
    pub(crate) fn new<E>(error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let (class, source) = classify_boxed(error);
        Self {
            class,
            shared: SharedError(Arc::from(source)),
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
    use aws_sdk_sns::operation::publish::PublishError;
    use aws_sdk_sqs::error::ErrorMetadata;
    use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;

    use super::*;

    /// An HTTP response as the SDK hands it over with a service error.
    fn response(status: u16, body: &str) -> HttpResponse {
        let status = status.try_into().expect("a valid HTTP status");
        HttpResponse::new(status, body.into())
    }

    /// A `ReceiveMessage` error with this code (if any), as the SDK builds it.
    fn sqs_error(
        code: Option<&str>,
        status: u16,
        body: &str,
    ) -> SdkError<ReceiveMessageError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code).message("slow down");
        }
        SdkError::service_error(
            ReceiveMessageError::generic(meta.build()),
            response(status, body),
        )
    }

    /// A `Publish` error with this code, as the SDK builds it.
    fn sns_error(code: &str, status: u16) -> SdkError<PublishError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).build();
        SdkError::service_error(PublishError::generic(meta), response(status, ""))
    }

    /// The messages of an error and of its sources, outermost first.
    fn chain(error: &(dyn StdError + 'static)) -> Vec<String> {
        std::iter::successors(Some(error), |e| (*e).source())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn kms_throttling_as_the_sdks_report_it_is_transient() {
        // SQS reports its query code (from `x-amzn-query-error`), SNS its own code.
        let sqs = map_sdk(
            sqs_error(Some("KMS.ThrottlingException"), 400, ""),
            Target::Queue("orders"),
        );
        assert!(
            matches!(&sqs, BackendError::Throttled { target, .. } if target == "orders"),
            "{sqs:?}"
        );
        assert!(sqs.is_transient());
        let sns = map_sdk(sns_error("KMSThrottling", 400), Target::Topic("events"));
        assert!(
            matches!(&sns, BackendError::Throttled { target, .. } if target == "events"),
            "{sns:?}"
        );
        assert!(sns.is_transient());
        assert_eq!(
            classify_code("KMS.AccessDeniedException", None),
            Class::AccessDenied
        );
        assert_eq!(classify_code("KMSAccessDenied", None), Class::AccessDenied);
    }

    #[test]
    fn server_errors_without_a_code_are_transient_and_name_their_status() {
        for (status, body) in [(503, ""), (502, "<html><h1>502 Bad Gateway</h1></html>")] {
            let error = map_sdk(sqs_error(None, status, body), Target::Queue("orders"));
            assert!(
                matches!(&error, BackendError::Unavailable { target, .. } if target == "orders"),
                "{error:?}"
            );
            assert!(error.is_transient());
            let messages = chain(&error);
            assert!(
                messages
                    .iter()
                    .any(|m| m.contains(&format!("HTTP {status}"))),
                "{messages:?}"
            );
            let uncoded = StdError::source(&error)
                .and_then(|source| source.downcast_ref::<UncodedResponse>())
                .expect("the source names the status");
            assert_eq!(uncoded.status, status);
        }
        // The same through a batch call's shared failure.
        let failure = SharedFailure::new(sqs_error(None, 500, ""));
        let error = failure.to_error(Target::Queue("orders"));
        assert!(error.is_transient(), "{error:?}");
        assert!(chain(&error).iter().any(|m| m.contains("HTTP 500")));

        let throttled = map_sdk(sqs_error(None, 429, ""), Target::Queue("q"));
        assert!(
            matches!(throttled, BackendError::Throttled { .. }),
            "{throttled:?}"
        );
        // A client error without a code is still permanent, named by its status.
        let forbidden = map_sdk(sqs_error(None, 403, "<html/>"), Target::Queue("q"));
        assert!(
            matches!(&forbidden, BackendError::Service { code, .. } if code == "HTTP 403"),
            "{forbidden:?}"
        );
        assert!(!forbidden.is_transient());
    }

    #[test]
    fn unknown_codes_are_transient_only_from_server_errors() {
        let server = map_sdk(
            sqs_error(Some("Brand.NewFault"), 500, ""),
            Target::Queue("q"),
        );
        assert!(server.is_transient(), "{server:?}");
        let client = map_sdk(
            sqs_error(Some("Brand.NewFault"), 400, ""),
            Target::Queue("q"),
        );
        assert!(
            matches!(&client, BackendError::Service { code, .. } if code == "Brand.NewFault"),
            "{client:?}"
        );
        // A known permanent code stays permanent whatever the status.
        let missing = map_sdk(
            sqs_error(Some("AWS.SimpleQueueService.NonExistentQueue"), 500, ""),
            Target::Queue("q"),
        );
        assert!(
            matches!(missing, BackendError::QueueDoesNotExist { .. }),
            "{missing:?}"
        );
    }

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
