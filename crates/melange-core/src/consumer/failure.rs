use std::time::Duration;

use crate::error::BoxError;

/// A handler error that also says what should happen to the message.
///
/// Return it from a handler (`Result<(), Failure>`) to override the retry schedule:
///
/// ```
/// use std::time::Duration;
/// use melange_core::consumer::Failure;
///
/// fn check(amount: i64) -> Result<(), Failure> {
///     if amount < 0 {
///         // A bad message will not get better: dead-letter it now.
///         return Err(Failure::no_retry(format!("negative amount {amount}")));
///     }
///     if amount > 1_000_000 {
///         // The fraud service is slow for big amounts: come back in a minute.
///         return Err(Failure::retry_after(Duration::from_secs(60), "fraud check pending"));
///     }
///     Ok(())
/// }
/// # assert!(check(1).is_ok());
/// ```
///
/// Any other error type retries with the consumer's backoff.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct Failure {
    retry: Retry,
    #[source]
    source: BoxError,
}

/// What a [`Failure`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// Retry with the consumer's backoff.
    WithBackoff,
    /// Retry after this delay.
    After(Duration),
    /// Do not retry: dead-letter or discard the message, as the consumer is configured.
    Never,
}

impl Failure {
    /// A failure retried with the consumer's backoff.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self {
            retry: Retry::WithBackoff,
            source: error.into(),
        }
    }

    /// A failure retried after `delay` (capped at SQS's 12-hour maximum).
    pub fn retry_after(delay: Duration, error: impl Into<BoxError>) -> Self {
        Self {
            retry: Retry::After(delay),
            source: error.into(),
        }
    }

    /// A failure that is not retried.
    pub fn no_retry(error: impl Into<BoxError>) -> Self {
        Self {
            retry: Retry::Never,
            source: error.into(),
        }
    }

    /// What this failure asks for.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// Finds the retry directive in a handler's error: [`Retry::WithBackoff`] unless the error
    /// is a [`Failure`].
    pub fn retry_of(error: &(dyn std::error::Error + 'static)) -> Retry {
        error
            .downcast_ref::<Failure>()
            .map_or(Retry::WithBackoff, Failure::retry)
    }
}
