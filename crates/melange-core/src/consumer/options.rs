use std::time::Duration;

/// Longer than any process runs. Durations are capped at it, so "never" can be written as
/// `Duration::MAX` and the consume loop can add any of them to the clock without overflow.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

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
    /// Send it to the queue's dead-letter queue now and delete it from the queue. Falls back
    /// to [`Redrive`](Self::Redrive) when the queue has no dead-letter queue, or the message
    /// is too malformed to copy (its body could not be read).
    DeadLetter,
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
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerOptions {
    pub(crate) ack_policy: AckPolicy,
    pub(crate) undecodable: PoisonOutcome,
    pub(crate) unknown_manifest: PoisonOutcome,
    pub(crate) batch_size: u32,
    pub(crate) wait_time: Duration,
    pub(crate) visibility_timeout: Option<Duration>,
    pub(crate) stop_when_idle: Option<Duration>,
    pub(crate) error_backoff: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) receivers: Option<usize>,
    pub(crate) heartbeat: Option<f64>,
    pub(crate) retry_backoff: Option<RetryBackoff>,
    pub(crate) no_retry: NoRetryOutcome,
    pub(crate) ack_flush_interval: Duration,
    pub(crate) shutdown_deadline: Duration,
}

/// The delay before a failed message is delivered again: `base × 2^(receives − 1)`, capped
/// at `max`, with jitter (a random 50–100 % of it) so failures do not return in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for RetryBackoff {
    /// 1 s, doubling, at most 5 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

/// What happens to a message whose handler said not to retry it ([`Failure::no_retry`]).
///
/// [`Failure::no_retry`]: crate::consumer::Failure::no_retry
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NoRetryOutcome {
    /// Send it to the queue's dead-letter queue now (and delete it from the queue); without a
    /// dead-letter queue, leave it to the visibility timeout.
    #[default]
    DeadLetter,
    /// Delete it.
    Discard,
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
            max_in_flight: 10,
            receivers: None,
            heartbeat: Some(0.5),
            retry_backoff: Some(RetryBackoff::default()),
            no_retry: NoRetryOutcome::default(),
            ack_flush_interval: Duration::from_millis(200),
            shutdown_deadline: Duration::from_secs(30),
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

    /// Long-poll wait per receive, up to 20 s (clamped); 20 s by default. SQS waits whole
    /// seconds: the SQS backend rounds a fraction up (a zero wait is a short poll).
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
        self.error_backoff = backoff.min(FOREVER);
        self
    }

    /// Handlers running at once, across all messages (10 by default). Messages are only
    /// received when there is room for them, so memory stays bounded under any backlog.
    ///
    /// Handlers run concurrently inside the consume loop's task, so their CPU work shares
    /// one thread at a time: a handler that computes for long should move that work to
    /// `tokio::task::spawn_blocking` (its wait then lets the others run), or run one
    /// consume loop per core on the same queue.
    pub fn max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = limit.max(1);
        self
    }

    /// Receives in parallel when there is room for them; by default one per batch of free
    /// capacity (`max_in_flight / batch_size`, rounded up), at most 8.
    pub fn receivers(mut self, receivers: usize) -> Self {
        self.receivers = Some(receivers.max(1));
        self
    }

    /// Extend a message's visibility while its handler runs, each time `fraction` of the
    /// visibility timeout has passed (0.5 by default), up to SQS's 12-hour maximum. `None`
    /// turns heartbeats off: a handler that outlives the timeout then sees its message
    /// delivered again.
    pub fn heartbeat(mut self, fraction: Option<f64>) -> Self {
        self.heartbeat = fraction.map(|f| f.clamp(0.05, 0.95));
        self
    }

    /// The backoff before a failed message comes back; `None` leaves it to the visibility
    /// timeout, as Python Melange does.
    pub fn retry_backoff(mut self, backoff: Option<RetryBackoff>) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// What happens to a message whose handler said not to retry it.
    pub fn no_retry(mut self, outcome: NoRetryOutcome) -> Self {
        self.no_retry = outcome;
        self
    }

    /// Acknowledgements are sent in batches of 10, or after this long (200 ms by default),
    /// whichever comes first, and always on shutdown. `Duration::MAX`: only full batches,
    /// and the rest on shutdown.
    pub fn ack_flush_interval(mut self, interval: Duration) -> Self {
        self.ack_flush_interval = interval.min(FOREVER);
        self
    }

    /// On shutdown, how long running handlers may take to finish before they are cancelled
    /// and their messages released (30 s by default). `Duration::MAX`: never cancelled.
    pub fn shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline.min(FOREVER);
        self
    }

    pub(crate) fn receiver_count(&self) -> usize {
        self.receivers.unwrap_or_else(|| {
            self.max_in_flight
                .div_ceil(self.batch_size as usize)
                .clamp(1, 8)
        })
    }
}
