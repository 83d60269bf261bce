//! The consume loop. One task receives, runs handlers concurrently, extends visibility,
//! schedules retries, acknowledges in batches and shuts down gracefully.
//!
//! Everything that touches an in-flight message happens in that one task, on owned state:
//! a message's lease leaves the lease table before its acknowledgement is queued, and
//! heartbeats are only ever sent for leases in the table, so a heartbeat after an
//! acknowledgement cannot be issued.
//!
//! Handlers, receives and backend calls are polled once where they start: on a busy
//! in-memory queue they all complete at once, and a message then goes from receive to
//! acknowledgement without a lease in the table or a trip through a set of futures.

use std::cmp::Reverse;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

use super::events::{ConsumerEvent, EventHook, Metrics};
use super::failure::{Failure, Retry};
use super::options::{AckPolicy, ConsumerOptions, NoRetryOutcome, PoisonOutcome, RetryBackoff};
use super::{ConsumeSummary, Consumer, DeduplicationCache, MessageContext};
use crate::backend::{MAX_VISIBILITY_TIMEOUT, MessagingBackend, QueueInfo, Received};
use crate::envelope::{Envelope, OutgoingMessage, ReceiptHandle, ReceiveOptions};
use crate::error::{BackendError, ConsumeError, ErrorChain, HandlerError};
use crate::id_hash::BuildIdHasher;
use crate::serializer::SerializerRegistry;
use crate::shutdown::Shutdown;

/// The longest pause between receives after consecutive transient backend errors.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(30);
/// Entries per batch call, as SQS allows.
const BATCH: usize = 10;
/// Pause after an empty receive that did not wait (short polling), so it does not spin.
const EMPTY_POLL_PAUSE: Duration = Duration::from_millis(100);
/// How soon a heartbeat that failed for a reason that may pass (throttled, unreachable) is
/// sent again: waiting for the next regular one could let the message's visibility lapse.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The consumers and settings a handler runs with.
pub(crate) struct Engine<C, B> {
    pub consumers: Vec<C>,
    pub serializers: SerializerRegistry,
    pub backend: B,
    pub options: ConsumerOptions,
    pub dedup: Option<Arc<dyn DeduplicationCache>>,
    pub shutdown: Shutdown,
    pub hook: Option<EventHook>,
}

/// What became of one message with all its consumers.
#[derive(Debug)]
enum Outcome {
    Succeeded,
    Failed {
        error: ConsumeError,
        retry: Retry,
    },
    /// No consumer failed, but `consumer` could not decode the message.
    Undecodable {
        consumer: &'static str,
        error: ConsumeError,
    },
}

struct Processed {
    outcome: Outcome,
    duplicates: u64,
    panicked: u64,
}

/// A handler run that ended, with the envelope handed back for what follows.
struct Finished {
    id: u64,
    envelope: Envelope,
    processed: Processed,
}

/// A message received and not yet settled: running, or waiting behind its FIFO group.
struct Lease {
    receipt: ReceiptHandle,
    received_at: Instant,
    /// When its handlers started (FIFO: a waiting message gets it when its turn comes).
    started: Instant,
    next_heartbeat: Option<Instant>,
    /// When it becomes visible again unless settled: the receive's timeout, moved by each
    /// heartbeat sent.
    visible_at: Instant,
    group: Option<Arc<str>>,
}

/// A backend call made on the side, and what it achieved.
enum IoDone {
    Acknowledged(u64),
    /// A message was dead-lettered (`Ok`) or not; its FIFO group waited for the outcome.
    DeadLettered {
        result: Result<(), BackendError>,
        message_id: Arc<str>,
        dead_letter_queue: String,
        group: Option<Arc<str>>,
    },
    Failed(BackendError),
    /// Heartbeats sent; the leases whose extension failed for a reason that may pass.
    Extended {
        retry: Vec<u64>,
    },
    Done,
}

/// Whether a message that was settled left the queue, which decides what its FIFO group
/// does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Acknowledged: the group goes on.
    Yes,
    /// It stays on the queue and will be delivered again first: the messages of its group
    /// behind it must not run before it.
    No,
    /// A dead-letter call is on its way; its outcome continues the group.
    Pending,
}

/// A receive that completed: the slots it had reserved, what it got, and how many of those
/// were acknowledged on receipt (early acknowledgement).
struct ReceiveDone {
    reserved: usize,
    /// Nothing was in hand or unsettled when the receive started, so an empty answer means
    /// the queue had nothing (rather than FIFO groups locked by our own messages).
    started_settled: bool,
    received: Result<Received, BackendError>,
    acknowledged_early: u64,
}

struct Stop {
    deadline: Instant,
    error: Option<BackendError>,
}

impl<C: Consumer, B: MessagingBackend> Engine<C, B> {
    pub fn new(consumers: Vec<C>, serializers: SerializerRegistry, backend: B) -> Self {
        Self {
            consumers,
            serializers,
            backend,
            options: ConsumerOptions::default(),
            dedup: None,
            shutdown: Shutdown::new(),
            hook: None,
        }
    }

    /// Consumes `queue` until shutdown, a fatal backend error, or (with `idle`) until nothing
    /// arrived for that long.
    pub async fn run(
        &self,
        queue: &str,
        idle: Option<Duration>,
    ) -> Result<ConsumeSummary, BackendError> {
        let info = self.backend.get_queue(queue).await?;
        let mut run = Run::new(self, queue, info, idle);
        run.drive().await
    }

    /// Calls the event hook. A hook that panics loses its event, not the consume loop (and
    /// with it the acknowledgements it holds and the handlers it runs).
    fn emit(&self, event: ConsumerEvent<'_>) {
        if let Some(hook) = &self.hook
            && let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| hook(&event)))
        {
            tracing::error!(
                panic = panic_message(payload),
                ?event,
                "event hook panicked"
            );
        }
    }

    /// Runs every accepting consumer on one message. A consumer that panics is a failure
    /// of that consumer: the others still run.
    async fn process(&self, envelope: &Envelope) -> Processed {
        let ctx = MessageContext::new(envelope, &self.serializers);
        let manifest = ctx.manifest();
        let mut failure: Option<(ConsumeError, Retry)> = None;
        let mut undecodable = None;
        let (mut duplicates, mut panicked) = (0, 0);
        for (index, consumer) in self.consumers.iter().enumerate() {
            if !consumer.accepts(manifest) {
                continue;
            }
            let ran = AssertUnwindSafe(self.run_consumer(index, consumer, ctx))
                .catch_unwind()
                .await;
            let error = match ran {
                Ok(Ran::Done) => continue,
                Ok(Ran::Duplicate) => {
                    duplicates += 1;
                    continue;
                }
                Ok(Ran::Failed(error)) => error,
                Err(payload) => {
                    panicked += 1;
                    let panic = panic_message(payload);
                    tracing::error!(consumer = consumer.name(), panic, "handler panicked");
                    ConsumeError::Handler(HandlerError {
                        handler: consumer.name(),
                        source: format!("handler panicked: {panic}").into(),
                    })
                }
            };
            if let ConsumeError::Decode(_) = error {
                tracing::error!(consumer = consumer.name(), %error, "cannot decode message");
                undecodable.get_or_insert((consumer.name(), error));
                continue;
            }
            tracing::error!(consumer = consumer.name(), %error, "handler failed");
            let retry = match &error {
                ConsumeError::Handler(HandlerError { source, .. }) => {
                    Failure::retry_of(source.as_ref())
                }
                _ => Retry::WithBackoff,
            };
            // One consumer refusing a retry must not take it from another that asked for
            // one: the message is retried if any failed consumer wants it.
            if failure
                .as_ref()
                .is_none_or(|(_, kept)| retry_outranks(retry, *kept))
            {
                failure = Some((error, retry));
            }
        }
        let outcome = match (failure, undecodable) {
            (Some((error, retry)), _) => Outcome::Failed { error, retry },
            (None, Some((consumer, error))) => Outcome::Undecodable { consumer, error },
            (None, None) => Outcome::Succeeded,
        };
        Processed {
            outcome,
            duplicates,
            panicked,
        }
    }

    /// Runs one consumer on one message, skipping it when the de-duplication cache says it
    /// already completed the message, and recording it there when it completes.
    async fn run_consumer(&self, index: usize, consumer: &C, ctx: MessageContext<'_>) -> Ran {
        let key = self
            .dedup
            .as_ref()
            .map(|cache| (cache, self.dedup_key(index, ctx.message_id())));
        if let Some((cache, key)) = &key {
            match cache.contains(key).await {
                Ok(true) => {
                    tracing::info!(
                        consumer = consumer.name(),
                        "already processed; skipping the duplicate"
                    );
                    return Ran::Duplicate;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "de-duplication cache lookup failed; processing anyway");
                }
            }
        }
        if let Err(error) = consumer.consume(ctx).await {
            return Ran::Failed(error);
        }
        if let Some((cache, key)) = &key
            && let Err(error) = cache.store(key).await
        {
            tracing::warn!(%error, "could not record the message in the de-duplication cache");
        }
        Ran::Done
    }

    /// The de-duplication key of consumer `index` for a message: `<name>.<message id>`, as
    /// Python Melange writes it. Consumers of one handler that share a name (a listener's
    /// name is its type's last path segment) are told apart by their place among those
    /// namesakes, `<name>#2.<message id>` for the second: one key for both would skip the
    /// second on every message the first completed.
    fn dedup_key(&self, index: usize, message_id: &str) -> String {
        let name = self.consumers[index].name();
        let namesakes_before = self.consumers[..index]
            .iter()
            .filter(|consumer| consumer.name() == name)
            .count();
        if namesakes_before == 0 {
            format!("{name}.{message_id}")
        } else {
            format!("{name}#{}.{message_id}", namesakes_before + 1)
        }
    }
}

/// What one consumer did with a message.
enum Ran {
    Done,
    Duplicate,
    Failed(ConsumeError),
}

/// Whether a consumer's `retry` should decide the message's fate over the `kept` one of an
/// earlier failed consumer: any retry over none, the backoff over a fixed delay (it is at
/// capped, and was configured for this consumer), and the shorter of two fixed delays.
fn retry_outranks(retry: Retry, kept: Retry) -> bool {
    match (retry, kept) {
        (Retry::Never, _) | (_, Retry::WithBackoff) => false,
        (_, Retry::Never) | (Retry::WithBackoff, _) => true,
        (Retry::After(delay), Retry::After(kept)) => delay < kept,
    }
}

/// The state of one consume loop.
struct Run<'e, C, B> {
    engine: &'e Engine<C, B>,
    options: &'e ConsumerOptions,
    queue: &'e str,
    info: QueueInfo,
    visibility: Duration,
    idle: Option<Duration>,
    metrics: Metrics,
    summary: ConsumeSummary,

    receives: FuturesUnordered<BoxFuture<'e, ReceiveDone>>,
    reserved: usize,
    handlers: FuturesUnordered<BoxFuture<'e, Finished>>,
    /// Handlers that finished on their first poll, settled at the end of the turn, with
    /// their lease when it never went into the table (a standard queue's message).
    finished_at_once: VecDeque<(Finished, Option<Lease>)>,
    /// The consume loop's own waker, for the first polls of handlers, receives and calls.
    waker: Waker,
    io: FuturesUnordered<BoxFuture<'e, IoDone>>,

    next_id: u64,
    leases: HashMap<u64, Lease, BuildIdHasher>,
    heartbeats: BinaryHeap<Reverse<(Instant, u64)>>,
    /// FIFO: for each group with a running message, the messages waiting behind it.
    groups: HashMap<Arc<str>, VecDeque<(u64, Envelope)>>,
    /// FIFO: groups whose first message in the batch being taken in stays on the queue
    /// unsettled. The server delivers it again first, so the rest of its group in the batch
    /// is handed back rather than run ahead of it.
    held_back: Vec<Arc<str>>,

    acks: Vec<ReceiptHandle>,
    acks_since: Option<Instant>,
    releases: Vec<(ReceiptHandle, Duration)>,

    paused_until: Option<Instant>,
    error_backoff: Duration,
    idle_seen: bool,
    stop: Option<Stop>,
}

impl<'e, C: Consumer, B: MessagingBackend> Run<'e, C, B> {
    fn new(
        engine: &'e Engine<C, B>,
        queue: &'e str,
        info: QueueInfo,
        idle: Option<Duration>,
    ) -> Self {
        let options = &engine.options;
        Self {
            engine,
            options,
            queue,
            visibility: options
                .visibility_timeout
                .unwrap_or(info.visibility_timeout),
            info,
            idle,
            metrics: Metrics::new(queue),
            summary: ConsumeSummary::default(),
            receives: FuturesUnordered::new(),
            reserved: 0,
            handlers: FuturesUnordered::new(),
            finished_at_once: VecDeque::new(),
            waker: Waker::noop().clone(),
            io: FuturesUnordered::new(),
            next_id: 0,
            leases: HashMap::default(),
            heartbeats: BinaryHeap::new(),
            groups: HashMap::new(),
            held_back: Vec::new(),
            acks: Vec::new(),
            acks_since: None,
            releases: Vec::new(),
            paused_until: None,
            error_backoff: options.error_backoff,
            idle_seen: false,
            stop: None,
        }
    }

    async fn drive(&mut self) -> Result<ConsumeSummary, BackendError> {
        let shutdown = self.engine.shutdown.wait();
        let mut shutdown = std::pin::pin!(shutdown);
        // One timer, moved only when the next deadline changes: registering a new one on
        // every turn of the loop costs more than the rest of the turn.
        let timer_sleep = sleep_until(Instant::now());
        let mut timer_sleep = std::pin::pin!(timer_sleep);
        let mut armed = None;
        // A shutdown that fired before the loop started: no receive at all (on SQS one would
        // long-poll, then hand back what it got, a receive count spent on each message).
        if self.engine.shutdown.is_triggered() {
            self.begin_stop(None);
        }
        loop {
            // The waker this loop is polled with now, for first polls (whoever
            // polls `consume_loop` may change it between turns).
            std::future::poll_fn(|cx| {
                if !self.waker.will_wake(cx.waker()) {
                    self.waker = cx.waker().clone();
                }
                Poll::Ready(())
            })
            .await;
            let received_at_once = self.start_receives();
            if self.finished() {
                break;
            }
            let timer = self.next_timer();
            if timer != armed {
                if let Some(at) = timer {
                    timer_sleep.as_mut().reset(at);
                }
                armed = timer;
            }
            // The clock as read during this turn, if it was: reading it is a visible share of
            // a turn, so what follows reuses it.
            let mut clock = None;
            tokio::select! {
                biased;
                () = &mut shutdown, if self.stop.is_none() => self.begin_stop(None),
                Some(finished) = self.handlers.next(), if !self.handlers.is_empty() => {
                    let now = Instant::now();
                    clock = Some(now);
                    self.on_finished(finished, now);
                    // Settle every handler that is already done before receiving again, so
                    // the freed slots go into one full receive rather than many small ones.
                    while let Some(Some(finished)) = self.handlers.next().now_or_never() {
                        self.on_finished(finished, now);
                    }
                }
                // Before receives: while receives complete at once (a busy queue), a branch
                // after them is never polled, and acknowledgements would wait for the queue
                // to run dry (the backend holding every handled message until then).
                Some(done) = self.io.next(), if !self.io.is_empty() => self.on_io(done),
                // Before receives too: heartbeats that keep long handlers' messages invisible
                // must not wait for a busy queue to run dry.
                () = &mut timer_sleep, if timer.is_some() => {
                    // Fired: the next deadline must be set again, even if it is the same.
                    armed = None;
                    self.on_timer();
                }
                Some(done) = self.receives.next(), if !self.receives.is_empty() => {
                    self.on_receive_done(done);
                }
                // Receives that completed at once above: nothing else is ready, so the turn
                // ends here to settle their messages, and the next one receives again.
                () = std::future::ready(()), if received_at_once => {}
                else => break,
            }
            self.settle_finished_at_once(&mut clock);
            self.flush(false, clock);
            self.metrics.in_flight.set(self.leases.len() as f64);
        }
        self.settle_finished_at_once(&mut None);
        self.flush(true, None);
        while let Some(done) = self.io.next().await {
            self.on_io(done);
        }
        self.metrics.in_flight.set(0.0);
        match self.stop.take().and_then(|stop| stop.error) {
            Some(error) => Err(error),
            None => Ok(std::mem::take(&mut self.summary)),
        }
    }

    /// Settles the handlers that finished on their first poll; `clock` is read if it was
    /// not during this turn.
    fn settle_finished_at_once(&mut self, clock: &mut Option<Instant>) {
        if self.finished_at_once.is_empty() {
            return;
        }
        let now = *clock.get_or_insert_with(Instant::now);
        // Settling may start the next message of a FIFO group, which may finish at once.
        while let Some((finished, lease)) = self.finished_at_once.pop_front() {
            match lease {
                Some(lease) => self.settle(finished, lease, now),
                None => self.on_finished(finished, now),
            }
        }
    }

    fn finished(&mut self) -> bool {
        if self.stop.is_none()
            && self.idle_seen
            && self.leases.is_empty()
            && self.handlers.is_empty()
        {
            self.begin_stop(None);
        }
        self.stop.is_some()
            && self.handlers.is_empty()
            && self.leases.is_empty()
            && self.receives.is_empty()
    }

    fn next_timer(&self) -> Option<Instant> {
        let flush = self
            .acks_since
            .map(|since| since + self.options.ack_flush_interval);
        let heartbeat = self.heartbeats.peek().map(|Reverse((at, _))| *at);
        // Each only while firing would still do something: a deadline or pause that passed
        // and stays armed fires on every turn, spinning the loop (and, ahead of receives in
        // the select, starving them).
        let pause = self
            .paused_until
            .filter(|_| self.stop.is_none() && !self.idle_seen);
        let deadline = self
            .stop
            .as_ref()
            .filter(|_| !self.handlers.is_empty() || !self.leases.is_empty())
            .map(|stop| stop.deadline);
        [flush, heartbeat, pause, deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Starts receives while there is room, never asking for more than the free capacity,
    /// and at most as many as may run at once. Returns whether one completed here.
    fn start_receives(&mut self) -> bool {
        if self.stop.is_some()
            || self.idle_seen
            || self
                .paused_until
                .is_some_and(|until| until > Instant::now())
        {
            return false;
        }
        self.paused_until = None;
        let batch = self.options.batch_size as usize;
        // A receive costs a round trip whatever it brings: wait for room for half a batch,
        // unless nothing is in hand at all.
        let worth_a_receive = (batch.min(self.options.max_in_flight) / 2).max(1);
        let receivers = self.options.receiver_count();
        let mut completed = false;
        // Bounded by starts, not only by receives in flight: those that complete at once
        // (a busy in-memory queue) leave room for more, and the turn must end to settle.
        for _ in 0..receivers {
            if self.receives.len() >= receivers || self.stop.is_some() {
                break;
            }
            let used = self.leases.len() + self.reserved + self.finished_at_once.len();
            let free = self.options.max_in_flight.saturating_sub(used);
            if free == 0 || (free < worth_a_receive && used > 0) {
                break;
            }
            let count = free.min(batch);
            self.reserved += count;
            let options = ReceiveOptions {
                max_messages: count as u32,
                wait_time: self.idle.unwrap_or(self.options.wait_time),
                visibility_timeout: self.options.visibility_timeout,
            };
            let (backend, queue) = (&self.engine.backend, self.queue);
            let early = self.options.ack_policy == AckPolicy::Early;
            let started_settled = self.leases.is_empty()
                && self.finished_at_once.is_empty()
                && self.acks.is_empty()
                && self.releases.is_empty()
                && self.io.is_empty();
            let mut receive: BoxFuture<'e, ReceiveDone> = Box::pin(async move {
                let received = backend.receive(queue, &options).await;
                match received {
                    Ok(batch) if early => {
                        let batch = acknowledge_early(backend, queue, batch).await;
                        ReceiveDone {
                            reserved: count,
                            started_settled,
                            acknowledged_early: batch.len() as u64,
                            received: Ok(batch),
                        }
                    }
                    received => ReceiveDone {
                        reserved: count,
                        started_settled,
                        received,
                        acknowledged_early: 0,
                    },
                }
            });
            // The first poll here, as for handlers: a receive that completes at once is
            // taken in without a trip through the set of receives.
            match receive.as_mut().poll(&mut Context::from_waker(&self.waker)) {
                Poll::Ready(done) => {
                    completed = true;
                    self.on_receive_done(done);
                }
                Poll::Pending => self.receives.push(receive),
            }
        }
        completed
    }

    fn on_receive_done(&mut self, done: ReceiveDone) {
        self.summary.acknowledged += done.acknowledged_early;
        self.on_received(done.reserved, done.started_settled, done.received);
    }

    fn on_received(
        &mut self,
        reserved: usize,
        started_settled: bool,
        received: Result<Received, BackendError>,
    ) {
        self.reserved -= reserved;
        if self.stop.is_some() && self.options.ack_policy != AckPolicy::Early {
            self.release_received(received);
            return;
        }
        let batch = match received {
            Ok(batch) => batch,
            Err(error) if error.is_transient() => {
                let pause = self.error_backoff;
                tracing::warn!(queue = self.queue, error = %ErrorChain(&error), ?pause, "receive failed; retrying after a pause");
                self.paused_until = Some(Instant::now() + pause);
                self.error_backoff = pause.saturating_mul(2).min(MAX_ERROR_BACKOFF);
                return;
            }
            Err(error) => {
                tracing::error!(queue = self.queue, error = %ErrorChain(&error), "receive failed; stopping");
                self.begin_stop(Some(error));
                return;
            }
        };
        self.error_backoff = self.options.error_backoff;
        if batch.is_empty() {
            // Idle means nothing to receive and nothing in hand: while messages are in hand,
            // an empty receive may only mean their FIFO groups are locked, or retries are
            // pending, so keep polling.
            let wait = self.idle.unwrap_or(self.options.wait_time);
            if self.idle.is_some() && started_settled && self.leases.is_empty() {
                self.idle_seen = true;
            } else if wait.is_zero() {
                self.paused_until = Some(Instant::now() + EMPTY_POLL_PAUSE);
            }
            return;
        }
        self.idle_seen = false;
        self.summary.received += batch.len() as u64;
        self.metrics.received.increment(batch.len() as u64);
        let now = Instant::now();
        let size = batch.len();
        self.held_back.clear();
        for item in batch {
            let delivery = match &item {
                Ok(envelope) => &envelope.delivery,
                Err(malformed) => &malformed.delivery,
            };
            let group = delivery.message_group_id.clone().filter(|_| self.info.fifo);
            if let Some(group) = &group
                && self.held_back.contains(group)
            {
                self.summary.released += 1;
                self.releases
                    .push((delivery.receipt.clone(), Duration::ZERO));
                continue;
            }
            let left = match item {
                Ok(envelope) => self.admit(envelope, group.clone(), now),
                Err(malformed) => {
                    let reason = malformed.error.to_string();
                    self.poison(
                        &malformed.message_id,
                        None,
                        malformed.delivery.receipt,
                        None,
                        self.options.undecodable,
                        &reason,
                    )
                }
            };
            if let (Left::No, Some(group)) = (left, group) {
                self.held_back.push(group);
            }
        }
        self.engine.emit(ConsumerEvent::BatchDone { size });
    }

    /// Takes a received message: poison is settled at once, without taking a slot; the rest
    /// gets a lease and runs, or waits behind the running message of its FIFO group.
    /// Returns `Left::No` only for poison that stays on the queue.
    fn admit(&mut self, envelope: Envelope, group: Option<Arc<str>>, now: Instant) -> Left {
        let manifest = envelope.manifest.as_deref();
        let reason = if !self.engine.consumers.iter().any(|c| c.accepts(manifest)) {
            Some((
                "no consumer accepts this manifest".to_owned(),
                self.options.unknown_manifest,
            ))
        } else if let Some(id) = envelope.serializer_id
            && let Err(error) = self.engine.serializers.by_id(id)
        {
            Some((error.to_string(), self.options.undecodable))
        } else {
            None
        };
        if let Some((reason, outcome)) = reason {
            let receipt = envelope.delivery.receipt.clone();
            let id = envelope.message_id.clone();
            let manifest = envelope.manifest.clone();
            // While it is being dead-lettered, its group is taken: the messages behind it
            // wait for the outcome (a free group is taken for that time only).
            let free_group = group.filter(|group| !self.groups.contains_key(group));
            if let Some(group) = &free_group {
                self.groups.insert(group.clone(), VecDeque::new());
            }
            let left = self.poison(
                &id,
                manifest.as_deref(),
                receipt,
                Some(envelope),
                outcome,
                &reason,
            );
            if let Some(group) = free_group
                && left != Left::Pending
            {
                self.groups.remove(&group);
            }
            return left;
        }

        let id = self.next_id;
        self.next_id += 1;
        let lease = Lease {
            receipt: envelope.delivery.receipt.clone(),
            received_at: now,
            started: now,
            next_heartbeat: None,
            visible_at: now + self.visibility,
            group: group.clone(),
        };
        let Some(group) = group else {
            // A standard queue's message runs now. Its lease goes into the table (with a
            // heartbeat) only if its handlers wait, so one they finish at once costs neither.
            match self.launch(id, envelope) {
                Some(finished) => self.finished_at_once.push_back((finished, Some(lease))),
                None => self.hold(id, lease),
            }
            return Left::Yes;
        };
        // A FIFO message's lease goes into the table at once: it may wait behind its group,
        // and the table is what releases it if the group's running message is not settled.
        self.hold(id, lease);
        match self.groups.entry(group) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push_back((id, envelope)),
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::new());
                self.start(id, envelope);
            }
        }
        Left::Yes
    }

    /// Puts a lease into the table, with its first heartbeat scheduled.
    fn hold(&mut self, id: u64, mut lease: Lease) {
        if let Some(fraction) = self.options.heartbeat
            && self.options.ack_policy != AckPolicy::Early
        {
            let at = lease.received_at + self.visibility.mul_f64(fraction);
            lease.next_heartbeat = Some(at);
            self.heartbeats.push(Reverse((at, id)));
        }
        self.leases.insert(id, lease);
        // Settled leases leave their heartbeats in the heap until they are due; drop them
        // once they outnumber the live ones, so the heap stays as small as what is in hand.
        if self.heartbeats.len() > 2 * self.leases.len() + 1024 {
            let leases = &self.leases;
            self.heartbeats.retain(|Reverse((at, id))| {
                leases
                    .get(id)
                    .is_some_and(|lease| lease.next_heartbeat == Some(*at))
            });
        }
    }

    /// Starts a held message's handlers (its lease is in the table).
    fn start(&mut self, id: u64, envelope: Envelope) {
        if let Some(finished) = self.launch(id, envelope) {
            self.finished_at_once.push_back((finished, None));
        }
    }

    /// Runs a message's handlers up to their first wait. Returns what they did if they
    /// finished; otherwise they join the running handlers.
    fn launch(&mut self, id: u64, envelope: Envelope) -> Option<Finished> {
        let engine = self.engine;
        let span = tracing::info_span!(
            "melange.message",
            queue = self.queue,
            message_id = %envelope.message_id,
            manifest = envelope.manifest.as_deref(),
            receive_count = envelope.delivery.receive_count,
        );
        let mut handler: BoxFuture<'e, Finished> = Box::pin(
            async move {
                let processed = engine.process(&envelope).await;
                Finished {
                    id,
                    envelope,
                    processed,
                }
            }
            .instrument(span),
        );
        // The first poll here: a handler that does not wait (CPU work, an in-memory
        // backend) finishes without a trip through the set of running handlers (a task
        // allocation, a wake-up queue and a second poll). One that waits joins the set,
        // which polls it again with its own waker right away.
        match handler.as_mut().poll(&mut Context::from_waker(&self.waker)) {
            Poll::Ready(finished) => Some(finished),
            Poll::Pending => {
                self.handlers.push(handler);
                None
            }
        }
    }

    /// Settles a message whose handlers returned; `now` is read once per batch of them.
    fn on_finished(&mut self, finished: Finished, now: Instant) {
        // Removing the lease ends its heartbeats before anything settles the message.
        if let Some(lease) = self.leases.remove(&finished.id) {
            self.settle(finished, lease, now);
        }
    }

    /// Settles a message by what its handlers did, its lease out of the table.
    fn settle(&mut self, finished: Finished, lease: Lease, now: Instant) {
        let Finished {
            envelope,
            processed,
            ..
        } = finished;
        let elapsed = now.saturating_duration_since(lease.started);
        self.metrics.handler_seconds.record(elapsed.as_secs_f64());
        self.summary.duplicates += processed.duplicates;
        self.summary.panicked += processed.panicked;
        let settled = match processed.outcome {
            Outcome::Succeeded => {
                self.summary.succeeded += 1;
                self.metrics.handled.increment(1);
                self.engine.emit(ConsumerEvent::Handled {
                    message_id: &envelope.message_id,
                    manifest: envelope.manifest.as_deref(),
                    elapsed,
                });
                self.acknowledge(lease.receipt.clone());
                Left::Yes
            }
            Outcome::Undecodable { consumer, error } => {
                // The reason goes to the logs and hook: name the consumer that could not
                // decode it (several on one queue may expect different types).
                let reason = format!("consumer `{consumer}`: {error}");
                // Reference-counted ids: the envelope itself moves into `poison`.
                let (message_id, manifest) =
                    (envelope.message_id.clone(), envelope.manifest.clone());
                self.poison(
                    &message_id,
                    manifest.as_deref(),
                    lease.receipt.clone(),
                    Some(envelope),
                    self.options.undecodable,
                    &reason,
                )
            }
            Outcome::Failed { error, retry } => self.fail(&envelope, &lease, &error, retry, now),
        };
        if let Some(group) = lease.group {
            match settled {
                Left::Yes => self.continue_group(group, true),
                Left::No => self.continue_group(group, false),
                Left::Pending => {}
            }
        }
    }

    /// Settles a failed message; returns whether it left the queue.
    fn fail(
        &mut self,
        envelope: &Envelope,
        lease: &Lease,
        error: &ConsumeError,
        retry: Retry,
        now: Instant,
    ) -> Left {
        self.summary.failed += 1;
        self.metrics.failed.increment(1);
        let receive_count = envelope.delivery.receive_count;
        // A delay to set on the message's visibility; without one a message left on the
        // queue comes back when its visibility runs out.
        let mut delay = None;
        let settled = match (self.options.ack_policy, retry) {
            (AckPolicy::Always, _) => {
                self.acknowledge(lease.receipt.clone());
                Left::Yes
            }
            (AckPolicy::Early, _) => Left::Yes,
            (AckPolicy::AfterSuccess, Retry::Never) => match self.options.no_retry {
                NoRetryOutcome::Discard => {
                    self.acknowledge(lease.receipt.clone());
                    Left::Yes
                }
                NoRetryOutcome::DeadLetter => self.dead_letter(envelope.clone()),
            },
            (AckPolicy::AfterSuccess, Retry::After(after)) => {
                delay = Some(after);
                Left::No
            }
            (AckPolicy::AfterSuccess, Retry::WithBackoff) => {
                delay = self
                    .options
                    .retry_backoff
                    .map(|backoff| retry_delay(backoff, receive_count, &envelope.message_id));
                Left::No
            }
        };
        // The server refuses a visibility change ending more than 12 hours after the
        // receive, and the message would then come back at its current deadline, within
        // seconds: a longer delay is shortened to what is left of the 12 hours.
        let delay = delay.map(|delay| delay.min(visibility_left(lease.received_at, now)));
        if let Some(delay) = delay {
            self.releases.push((lease.receipt.clone(), delay));
        }
        // Left on the queue, it is retried: after the delay, or when its visibility runs
        // out (no backoff, as Python Melange; or dead-lettering with no dead-letter queue).
        let retry_in = (settled == Left::No)
            .then(|| delay.unwrap_or_else(|| lease.visible_at.saturating_duration_since(now)));
        if retry_in.is_some() {
            self.summary.retried += 1;
            self.metrics.retried.increment(1);
        }
        tracing::warn!(
            queue = self.queue,
            message_id = %envelope.message_id,
            manifest = envelope.manifest.as_deref(),
            receive_count,
            ?retry_in,
            %error,
            "message failed"
        );
        self.engine.emit(ConsumerEvent::Failed {
            message_id: &envelope.message_id,
            manifest: envelope.manifest.as_deref(),
            receive_count,
            error,
            retry_in,
        });
        settled
    }

    /// Settles a message that cannot be processed; returns whether it left the queue.
    fn poison(
        &mut self,
        message_id: &str,
        manifest: Option<&str>,
        receipt: ReceiptHandle,
        envelope: Option<Envelope>,
        outcome: PoisonOutcome,
        reason: &str,
    ) -> Left {
        self.summary.poison += 1;
        self.metrics.poison.increment(1);
        tracing::error!(
            queue = self.queue,
            message_id,
            manifest,
            reason,
            ?outcome,
            "unprocessable message"
        );
        self.engine.emit(ConsumerEvent::Poison {
            message_id,
            manifest,
            reason,
        });
        match (self.options.ack_policy, outcome, envelope) {
            (AckPolicy::Early, _, _) => Left::Yes,
            (AckPolicy::Always, _, _) | (_, PoisonOutcome::Discard, _) => {
                self.acknowledge(receipt);
                Left::Yes
            }
            (_, PoisonOutcome::DeadLetter, Some(envelope)) => self.dead_letter(envelope),
            _ => Left::No,
        }
    }

    /// FIFO: after a message of `group` settles, start the next one if the message left the
    /// queue; otherwise it will be delivered again first, so release the ones behind it.
    fn continue_group(&mut self, group: Arc<str>, settled: bool) {
        let Some(waiting) = self.groups.get_mut(&group) else {
            return;
        };
        if settled && let Some((id, envelope)) = waiting.pop_front() {
            if let Some(lease) = self.leases.get_mut(&id) {
                lease.started = Instant::now();
            }
            self.start(id, envelope);
            return;
        }
        if let Some(waiting) = self.groups.remove(&group) {
            for (id, _) in waiting {
                self.release_lease(id);
            }
        }
        // A batch being taken in may hold more of the group (a dead-letter call that
        // failed at once, while its batch is admitted).
        if !settled {
            self.held_back.push(group);
        }
    }

    /// Makes a leased message visible at once and forgets it.
    fn release_lease(&mut self, id: u64) {
        if let Some(lease) = self.leases.remove(&id) {
            self.summary.released += 1;
            self.releases.push((lease.receipt, Duration::ZERO));
        }
    }

    fn acknowledge(&mut self, receipt: ReceiptHandle) {
        if self.options.ack_policy == AckPolicy::Early {
            return;
        }
        self.acks.push(receipt);
        self.acks_since.get_or_insert_with(Instant::now);
    }

    /// Copies the message to the dead-letter queue, then deletes it; its FIFO group goes on
    /// when that is done. Returns `Left::No` (and leaves the message to the visibility
    /// timeout) when the queue has none.
    fn dead_letter(&mut self, envelope: Envelope) -> Left {
        let Some(policy) = self.info.dead_letter.clone() else {
            tracing::warn!(queue = self.queue, message_id = %envelope.message_id, "no dead-letter queue; the message is left to its visibility timeout");
            return Left::No;
        };
        let group = envelope
            .delivery
            .message_group_id
            .clone()
            .filter(|_| self.info.fifo);
        let (backend, queue) = (&self.engine.backend, self.queue);
        self.call(Box::pin(async move {
            let receipt = envelope.delivery.receipt.clone();
            let copy = dead_letter_copy(&envelope, &policy.queue);
            let result = match backend.publish_to_queue(&policy.queue, copy).await {
                Ok(_) => backend.acknowledge(queue, &receipt).await,
                Err(error) => Err(error),
            };
            IoDone::DeadLettered {
                result,
                message_id: envelope.message_id,
                dead_letter_queue: policy.queue,
                group,
            }
        }));
        Left::Pending
    }

    /// Makes a backend call on the side. Its first poll is here: a call that completes at
    /// once (an in-memory backend) is done without a trip through the set of calls.
    fn call(&mut self, mut call: BoxFuture<'e, IoDone>) {
        match call.as_mut().poll(&mut Context::from_waker(&self.waker)) {
            Poll::Ready(done) => self.on_io(done),
            Poll::Pending => self.io.push(call),
        }
    }

    fn on_io(&mut self, done: IoDone) {
        match done {
            IoDone::Acknowledged(count) => self.summary.acknowledged += count,
            IoDone::DeadLettered {
                result,
                message_id,
                dead_letter_queue,
                group,
            } => {
                let moved = result.is_ok();
                match result {
                    Ok(()) => {
                        self.summary.dead_lettered += 1;
                        self.metrics.dead_lettered.increment(1);
                        self.engine.emit(ConsumerEvent::DeadLettered {
                            message_id: &message_id,
                            dead_letter_queue: &dead_letter_queue,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(
                            queue = self.queue,
                            %message_id,
                            dead_letter_queue,
                            error = %ErrorChain(&error),
                            "could not dead-letter the message; it stays on the queue"
                        );
                    }
                }
                if let Some(group) = group {
                    self.continue_group(group, moved);
                }
            }
            // The consumed queue is gone; another one (a dead-letter queue) is not a reason
            // to stop consuming this one.
            IoDone::Failed(error @ BackendError::QueueDoesNotExist { .. }) if matches!(&error, BackendError::QueueDoesNotExist { name, .. } if name == self.queue) =>
            {
                tracing::error!(queue = self.queue, error = %ErrorChain(&error), "queue gone; stopping");
                if self.stop.is_none() {
                    self.begin_stop(Some(error));
                }
            }
            IoDone::Failed(error) => {
                tracing::warn!(queue = self.queue, error = %ErrorChain(&error), "backend call failed; affected messages will be delivered again");
            }
            IoDone::Extended { retry } => self.retry_heartbeats(retry),
            IoDone::Done => {}
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.stop.as_ref().is_some_and(|stop| stop.deadline <= now) {
            self.cancel_handlers();
        }
        self.send_heartbeats(now);
        // Flushing on the timer happens in `flush`, called after every event.
    }

    /// Extends the visibility of every lease whose heartbeat is due, in batches.
    fn send_heartbeats(&mut self, now: Instant) {
        let Some(fraction) = self.options.heartbeat else {
            return;
        };
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = self.heartbeats.peek().copied() {
            if at > now {
                break;
            }
            self.heartbeats.pop();
            let Some(lease) = self.leases.get_mut(&id) else {
                continue;
            };
            if lease.next_heartbeat != Some(at) {
                continue;
            }
            let timeout = self.visibility.min(visibility_left(lease.received_at, now));
            if timeout.is_zero() {
                lease.next_heartbeat = None;
                continue;
            }
            let next = now + timeout.mul_f64(fraction);
            lease.next_heartbeat = Some(next);
            lease.visible_at = now + timeout;
            self.heartbeats.push(Reverse((next, id)));
            due.push((id, lease.receipt.clone(), timeout));
        }
        for chunk in due.chunks(BATCH) {
            self.extend(chunk.to_vec());
        }
    }

    /// Sends one batch of heartbeats; the leases whose extension may succeed if sent again
    /// come back in `IoDone::Extended`.
    fn extend(&mut self, due: Vec<(u64, ReceiptHandle, Duration)>) {
        let (backend, queue) = (&self.engine.backend, self.queue);
        self.call(Box::pin(async move {
            let entries: Vec<(ReceiptHandle, Duration)> = due
                .iter()
                .map(|(_, receipt, timeout)| (receipt.clone(), *timeout))
                .collect();
            let retry = match backend.change_visibility_batch(queue, &entries).await {
                Ok(results) => due
                    .iter()
                    .zip(results)
                    .filter_map(|((id, _, _), result)| {
                        let error = result.err()?;
                        tracing::warn!(queue, error = %ErrorChain(&error), "heartbeat failed");
                        error.is_transient().then_some(*id)
                    })
                    .collect(),
                Err(error) => {
                    tracing::warn!(queue, error = %ErrorChain(&error), "heartbeats failed");
                    if error.is_transient() {
                        due.iter().map(|(id, _, _)| *id).collect()
                    } else {
                        Vec::new()
                    }
                }
            };
            IoDone::Extended { retry }
        }));
    }

    /// Heartbeats that failed for a reason that may pass are sent again soon, rather than
    /// a whole heartbeat interval later, when the visibility may have run out.
    fn retry_heartbeats(&mut self, ids: Vec<u64>) {
        let at = Instant::now() + HEARTBEAT_RETRY;
        for id in ids {
            if let Some(lease) = self.leases.get_mut(&id)
                && lease.next_heartbeat.is_some_and(|next| next > at)
            {
                lease.next_heartbeat = Some(at);
                self.heartbeats.push(Reverse((at, id)));
            }
        }
    }

    fn change_visibility(&mut self, entries: Vec<(ReceiptHandle, Duration)>) {
        let (backend, queue) = (&self.engine.backend, self.queue);
        self.call(Box::pin(async move {
            match backend.change_visibility_batch(queue, &entries).await {
                Ok(results) => {
                    for error in results.into_iter().filter_map(Result::err) {
                        tracing::warn!(queue, error = %ErrorChain(&error), "visibility change failed");
                    }
                    IoDone::Done
                }
                Err(error) => IoDone::Failed(error),
            }
        }));
    }

    /// Sends buffered acknowledgements and visibility changes: full batches at once, the rest
    /// when the flush interval has passed, everything when `all`. `now` is the clock if it
    /// was just read.
    fn flush(&mut self, all: bool, now: Option<Instant>) {
        let due = all
            || self.acks_since.is_some_and(|since| {
                since + self.options.ack_flush_interval <= now.unwrap_or_else(Instant::now)
            });
        while self.acks.len() >= BATCH || (due && !self.acks.is_empty()) {
            let take = self.acks.len().min(BATCH);
            let receipts: Vec<ReceiptHandle> = self.acks.drain(..take).collect();
            let (backend, queue) = (&self.engine.backend, self.queue);
            self.call(Box::pin(async move {
                match backend.acknowledge_batch(queue, &receipts).await {
                    Ok(results) => {
                        let mut acknowledged = 0;
                        for result in results {
                            match result {
                                Ok(()) => acknowledged += 1,
                                Err(error) => tracing::warn!(queue, error = %ErrorChain(&error), "acknowledgement failed; the message will be delivered again"),
                            }
                        }
                        IoDone::Acknowledged(acknowledged)
                    }
                    Err(error) => IoDone::Failed(error),
                }
            }));
        }
        if self.acks.is_empty() {
            self.acks_since = None;
        }
        // Retry delays and releases matter as soon as they are known: send them now.
        while !self.releases.is_empty() {
            let take = self.releases.len().min(BATCH);
            let entries: Vec<_> = self.releases.drain(..take).collect();
            self.change_visibility(entries);
        }
    }

    /// Stops receiving (cancelling the receives in flight), releases the messages that were
    /// waiting behind their FIFO group, and gives running handlers until the deadline.
    fn begin_stop(&mut self, error: Option<BackendError>) {
        if self.stop.is_some() {
            return;
        }
        self.stop = Some(Stop {
            deadline: Instant::now() + self.options.shutdown_deadline,
            error,
        });
        // Receives already sent are not dropped, even past the deadline: the server hands
        // their messages out whether or not anyone still listens (and a long poll left
        // running on the server would take the messages released below). They are waited
        // for (at most the long-poll wait) and what they bring is released at once.
        let waiting: Vec<u64> = self
            .groups
            .drain()
            .flat_map(|(_, waiting)| waiting.into_iter().map(|(id, _)| id))
            .collect();
        for id in waiting {
            self.release_lease(id);
        }
    }

    /// Shutting down: a receive sent before the stop brought messages no handler will take;
    /// make them visible again at once.
    fn release_received(&mut self, received: Result<Received, BackendError>) {
        let Ok(batch) = received else {
            return;
        };
        self.summary.received += batch.len() as u64;
        self.metrics.received.increment(batch.len() as u64);
        for item in batch {
            let receipt = match item {
                Ok(envelope) => envelope.delivery.receipt,
                Err(malformed) => malformed.delivery.receipt,
            };
            self.summary.released += 1;
            self.releases.push((receipt, Duration::ZERO));
        }
    }

    /// The shutdown deadline passed: cancel the handlers still running and release their
    /// messages so another consumer takes them at once.
    fn cancel_handlers(&mut self) {
        let cancelled = self.handlers.len();
        self.handlers = FuturesUnordered::new();

        self.groups.clear();
        let ids: Vec<u64> = self.leases.keys().copied().collect();
        for id in ids {
            self.release_lease(id);
        }
        if cancelled > 0 {
            tracing::warn!(
                queue = self.queue,
                cancelled,
                "shutdown deadline passed; cancelled running handlers and released their messages"
            );
        }
    }
}

/// Early acknowledgement: delete the batch before processing it, and keep only the
/// messages whose deletion succeeded (the others will be delivered again).
async fn acknowledge_early<B: MessagingBackend>(
    backend: &B,
    queue: &str,
    batch: Received,
) -> Received {
    let receipts: Vec<ReceiptHandle> = batch
        .iter()
        .map(|item| match item {
            Ok(envelope) => envelope.delivery.receipt.clone(),
            Err(malformed) => malformed.delivery.receipt.clone(),
        })
        .collect();
    let mut results = Vec::with_capacity(receipts.len());
    for chunk in receipts.chunks(BATCH) {
        match backend.acknowledge_batch(queue, chunk).await {
            Ok(chunk_results) => results.extend(chunk_results.into_iter().map(|r| r.is_ok())),
            Err(error) => {
                tracing::warn!(queue, error = %ErrorChain(&error), "early acknowledgement failed; the messages will be delivered again");
                results.extend(std::iter::repeat_n(false, chunk.len()));
            }
        }
    }
    batch
        .into_iter()
        .zip(results)
        .filter_map(|(item, acked)| acked.then_some(item))
        .collect()
}

/// How far from `now` a received message's visibility can still be set: SQS counts its
/// 12-hour limit from the receive, which the server saw a little before `received_at` (the
/// response's trip), so a margin keeps a change near the limit from being refused.
fn visibility_left(received_at: Instant, now: Instant) -> Duration {
    const MARGIN: Duration = Duration::from_secs(30);
    (received_at + MAX_VISIBILITY_TIMEOUT)
        .saturating_duration_since(now)
        .saturating_sub(MARGIN)
}

/// The delay before retry number `receive_count`: exponential, capped, with jitter derived
/// from the message id (so it differs between messages without a random number generator).
fn retry_delay(backoff: RetryBackoff, receive_count: u32, message_id: &str) -> Duration {
    let exponent = receive_count.saturating_sub(1).min(30);
    let delay = backoff.base.saturating_mul(1 << exponent).min(backoff.max);
    let mut hasher = DefaultHasher::new();
    (message_id, receive_count).hash(&mut hasher);
    let jitter = 0.5 + (hasher.finish() % 1000) as f64 / 2000.0;
    delay.min(MAX_VISIBILITY_TIMEOUT).mul_f64(jitter)
}

/// The message as it goes to the dead-letter queue: the same content and attributes.
fn dead_letter_copy(envelope: &Envelope, dead_letter_queue: &str) -> OutgoingMessage {
    let mut copy = OutgoingMessage::new(
        envelope.content.to_string(),
        envelope.manifest.as_deref().unwrap_or_default().to_owned(),
        envelope.serializer_id.unwrap_or(1),
    );
    if envelope.manifest.is_none() {
        copy.manifest = None;
    }
    copy.attributes = envelope.delivery.attributes.clone();
    if crate::backend::is_fifo_name(dead_letter_queue) {
        copy.message_group_id = Some(
            envelope
                .delivery
                .message_group_id
                .as_deref()
                .unwrap_or("melange-dead-letter")
                .to_owned(),
        );
        copy.deduplication_id = Some(envelope.message_id.to_string());
    }
    copy
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::QueueSpec;
    use crate::memory::InMemoryBackend;

    /// A consumer for tests that drive the loop's bookkeeping by hand.
    struct Nobody;

    impl Consumer for Nobody {
        fn accepts(&self, _: Option<&str>) -> bool {
            false
        }

        fn consume<'a>(
            &'a self,
            _: MessageContext<'a>,
        ) -> impl Future<Output = Result<(), ConsumeError>> + Send + 'a {
            std::future::ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn heartbeats_of_settled_leases_do_not_pile_up() {
        let backend = InMemoryBackend::new();
        backend
            .declare_queue(&QueueSpec::new("jobs"))
            .await
            .unwrap();
        let info = backend.get_queue("jobs").await.unwrap();
        let engine = Engine::new(vec![Nobody], SerializerRegistry::default(), backend);
        let mut run = Run::new(&engine, "jobs", info, None);
        let now = Instant::now();
        // A long-running consumer: ten messages in hand at a time, a hundred thousand
        // settled long before their first heartbeat would be due.
        for id in 0..100_000_u64 {
            let lease = Lease {
                receipt: ReceiptHandle::new(format!("r-{id}")),
                received_at: now,
                started: now,
                next_heartbeat: None,
                visible_at: now,
                group: None,
            };
            run.hold(id, lease);
            if let Some(settled) = id.checked_sub(10) {
                run.leases.remove(&settled);
            }
        }
        assert_eq!(run.leases.len(), 10);
        assert!(
            run.heartbeats.len() <= 2 * run.leases.len() + 1025,
            "{} heartbeats scheduled for {} leases",
            run.heartbeats.len(),
            run.leases.len()
        );
        let scheduled: std::collections::HashSet<u64> =
            run.heartbeats.iter().map(|Reverse((_, id))| *id).collect();
        assert!(
            run.leases.keys().all(|id| scheduled.contains(id)),
            "a lease in hand lost its heartbeat"
        );
    }

    #[test]
    fn retry_delay_grows_with_receives_is_capped_and_jittered() {
        let backoff = RetryBackoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        let delays: Vec<Duration> = (1..=10).map(|n| retry_delay(backoff, n, "m-1")).collect();
        for (n, delay) in delays.iter().enumerate() {
            let full = Duration::from_secs(1 << n).min(Duration::from_secs(60));
            assert!(
                *delay >= full / 2 && *delay <= full,
                "receive {}: {delay:?} vs {full:?}",
                n + 1
            );
        }
        assert_ne!(
            retry_delay(backoff, 3, "m-1"),
            retry_delay(backoff, 3, "m-2")
        );
        assert!(retry_delay(backoff, u32::MAX, "m") <= Duration::from_secs(60));
    }
}
