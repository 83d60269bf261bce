//! What a consumer handler reports: events for a user hook, `tracing` logs, `metrics`.

use std::sync::Arc;
use std::time::Duration;

use crate::error::ConsumeError;

/// Something that happened to a message, passed to the hook set with `on_event` (in the
/// spirit of Python Melange's `on_exception` / `after_consume` callbacks).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConsumerEvent<'a> {
    /// Every accepting consumer processed the message.
    Handled {
        /// The message id.
        message_id: &'a str,
        /// Its manifest.
        manifest: Option<&'a str>,
        /// How long its handlers took.
        elapsed: Duration,
    },
    /// A handler failed (or panicked); the message will be retried after `retry_in` (a
    /// delay it was given, or what is left of its visibility timeout), or is acknowledged,
    /// dead-lettered or discarded when `retry_in` is `None`.
    Failed {
        /// The message id.
        message_id: &'a str,
        /// Its manifest.
        manifest: Option<&'a str>,
        /// How often it has been received.
        receive_count: u32,
        /// What went wrong.
        error: &'a ConsumeError,
        /// When it becomes visible again, if it stays on the queue.
        retry_in: Option<Duration>,
    },
    /// The message could not be processed at all (malformed, unknown manifest or serializer,
    /// undecodable).
    Poison {
        /// The message id.
        message_id: &'a str,
        /// Its manifest.
        manifest: Option<&'a str>,
        /// Why.
        reason: &'a str,
    },
    /// The message was copied to the dead-letter queue and deleted from its own (sent once
    /// both calls succeeded).
    DeadLettered {
        /// The message id.
        message_id: &'a str,
        /// The dead-letter queue.
        dead_letter_queue: &'a str,
    },
    /// A received batch has been taken in: each of its messages started, waits behind its
    /// FIFO group, or was settled as poison (Python Melange's `after_consume`).
    BatchDone {
        /// Messages in the batch.
        size: usize,
    },
}

/// A shared event hook.
pub(crate) type EventHook = Arc<dyn Fn(&ConsumerEvent<'_>) + Send + Sync>;

/// The metric handles of one consume loop, registered once per loop with the queue as label.
pub(crate) struct Metrics {
    pub received: metrics::Counter,
    pub handled: metrics::Counter,
    pub failed: metrics::Counter,
    pub retried: metrics::Counter,
    pub poison: metrics::Counter,
    pub dead_lettered: metrics::Counter,
    pub handler_seconds: metrics::Histogram,
    pub in_flight: metrics::Gauge,
}

impl Metrics {
    pub fn new(queue: &str) -> Self {
        let label = || [("queue", queue.to_owned())];
        Self {
            received: metrics::counter!("melange_messages_received_total", &label()),
            handled: metrics::counter!("melange_messages_handled_total", &label()),
            failed: metrics::counter!("melange_messages_failed_total", &label()),
            retried: metrics::counter!("melange_messages_retried_total", &label()),
            poison: metrics::counter!("melange_messages_poison_total", &label()),
            dead_lettered: metrics::counter!("melange_messages_dead_lettered_total", &label()),
            handler_seconds: metrics::histogram!("melange_handler_duration_seconds", &label()),
            in_flight: metrics::gauge!("melange_messages_in_flight", &label()),
        }
    }
}
