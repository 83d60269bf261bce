use std::time::Duration;

/// When a consumer handler acknowledges (deletes) a message, as in Python Melange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AckPolicy {
    /// After every consumer that accepts the message succeeded; a failure leaves it to be
    /// delivered again (and, past the queue's max receives, dead-lettered).
    #[default]
    AfterSuccess,
    /// After processing, whatever the outcome (Python Melange's `always_ack`): a failed
    /// message is not retried.
    Always,
    /// Before processing: at-most-once delivery. A crash or failure loses the message.
    Early,
}

/// What happens to a message that cannot be processed at all: its body or attributes are
/// malformed, it names an unknown serializer, it cannot be decoded into the handler's type,
/// or no consumer accepts its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PoisonOutcome {
    /// Leave it unacknowledged: it comes back after the visibility timeout, and the queue's
    /// redrive policy moves it to the dead-letter queue after its max receives. Nothing is
    /// lost; without a dead-letter queue it is retried until it expires.
    #[default]
    Redrive,
    /// Acknowledge (delete) it, as Python Melange does. It is logged and gone.
    Discard,
}

/// How a consumer handler receives and acknowledges.
///
/// ```
/// use std::time::Duration;
/// use melange_core::{AckPolicy, ConsumerOptions, PoisonOutcome};
///
/// let options = ConsumerOptions::default()
///     .ack_policy(AckPolicy::Always)
///     .unknown_manifest(PoisonOutcome::Discard)
///     .wait_time(Duration::from_secs(5));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerOptions {
    pub(crate) ack_policy: AckPolicy,
    pub(crate) undecodable: PoisonOutcome,
    pub(crate) unknown_manifest: PoisonOutcome,
    pub(crate) batch_size: u32,
    pub(crate) wait_time: Duration,
    pub(crate) visibility_timeout: Option<Duration>,
    pub(crate) stop_when_idle: Option<Duration>,
    pub(crate) error_backoff: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            ack_policy: AckPolicy::default(),
            undecodable: PoisonOutcome::default(),
            unknown_manifest: PoisonOutcome::default(),
            batch_size: 10,
            wait_time: Duration::from_secs(20),
            visibility_timeout: None,
            stop_when_idle: None,
            error_backoff: Duration::from_secs(1),
        }
    }
}

impl ConsumerOptions {
    /// When to acknowledge; [`AckPolicy::AfterSuccess`] by default.
    pub fn ack_policy(mut self, policy: AckPolicy) -> Self {
        self.ack_policy = policy;
        self
    }

    /// What to do with a message that is malformed, names an unknown serializer, or does not
    /// decode into the handler's type; [`PoisonOutcome::Redrive`] by default.
    pub fn undecodable(mut self, outcome: PoisonOutcome) -> Self {
        self.undecodable = outcome;
        self
    }

    /// What to do with a message no consumer accepts; [`PoisonOutcome::Redrive`] by default.
    pub fn unknown_manifest(mut self, outcome: PoisonOutcome) -> Self {
        self.unknown_manifest = outcome;
        self
    }

    /// Messages per receive, 1 to 10 (clamped); 10 by default.
    pub fn batch_size(mut self, size: u32) -> Self {
        self.batch_size = size.clamp(1, 10);
        self
    }

    /// Long-poll wait per receive, up to 20 s (clamped); 20 s by default.
    pub fn wait_time(mut self, wait: Duration) -> Self {
        self.wait_time = wait.min(Duration::from_secs(20));
        self
    }

    /// Visibility timeout requested on receive; the queue's own by default.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    /// Return from `consume_loop` once the queue has had nothing to receive for `idle`
    /// (a receive that waited that long came back empty), instead of running until the
    /// shutdown signal: for batch jobs, tests and single-process demos.
    pub fn stop_when_idle(mut self, idle: Duration) -> Self {
        self.stop_when_idle = Some(idle.min(Duration::from_secs(20)));
        self
    }

    /// Pause after a transient backend error (unreachable, throttled) before receiving again;
    /// 1 s by default, doubled on each consecutive error up to 30 s.
    pub fn error_backoff(mut self, backoff: Duration) -> Self {
        self.error_backoff = backoff;
        self
    }
}
