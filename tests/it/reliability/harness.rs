//! The accounting harness: every published message is numbered, and after the fault every
//! number must be found handled, in the dead-letter queue, or still in the queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use melange::{
    Failure, MessageContext, MessagingBackend, OutgoingMessage, ReceiveOptions, SerializerRegistry,
};
use serde::{Deserialize, Serialize};

/// The message every scenario publishes: a number and what the handler should do with it.
#[derive(Debug, Clone, Serialize, Deserialize, melange::Message)]
pub struct Task {
    pub id: u64,
    /// How long the handler works, in milliseconds.
    pub work_ms: u64,
    /// `ok`, `fail` (always), `fail-twice` (the first two receives), `panic-once`, `panic`.
    pub behaviour: String,
}

impl Task {
    pub fn new(id: u64, work_ms: u64, behaviour: &str) -> Self {
        Self {
            id,
            work_ms,
            behaviour: behaviour.to_owned(),
        }
    }

    pub fn outgoing(&self) -> OutgoingMessage {
        SerializerRegistry::default().serialize(self).unwrap()
    }
}

/// Everything the handlers did, shared between the handler and the test.
#[derive(Default)]
pub struct Ledger {
    /// Logical id → completed successful runs.
    pub handled: Mutex<BTreeMap<u64, u32>>,
    /// Handler runs started (successful, failed or panicked).
    pub attempts: AtomicU64,
    /// Logical ids whose handler started, in order (for "mid-batch" signals).
    pub started: Mutex<Vec<u64>>,
}

impl Ledger {
    pub fn handled_distinct(&self) -> usize {
        self.handled.lock().unwrap().len()
    }

    pub fn handled_total(&self) -> u64 {
        self.handled
            .lock()
            .unwrap()
            .values()
            .map(|&n| u64::from(n))
            .sum()
    }

    pub fn twice(&self) -> Vec<u64> {
        self.handled
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The handler of [`Task`]s; runs on the real consumer engine through `#[listener]`.
pub struct Probe(pub Arc<Ledger>);

#[melange::listener]
impl Probe {
    async fn on_task(&self, task: Task, ctx: MessageContext<'_>) -> Result<(), Failure> {
        self.0.attempts.fetch_add(1, Ordering::SeqCst);
        self.0.started.lock().unwrap().push(task.id);
        if task.work_ms > 0 {
            tokio::time::sleep(Duration::from_millis(task.work_ms)).await;
        }
        match task.behaviour.as_str() {
            "fail" => return Err(Failure::new(format!("task {} fails", task.id))),
            "fail-twice" if ctx.receive_count() <= 2 => {
                return Err(Failure::new(format!("task {} fails for now", task.id)));
            }
            "panic" => panic!("task {} panics", task.id),
            "panic-once" if ctx.receive_count() == 1 => panic!("task {} panics once", task.id),
            _ => {}
        }
        *self.0.handled.lock().unwrap().entry(task.id).or_default() += 1;
        Ok(())
    }
}

/// Where a scenario's messages ended up.
#[derive(Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub published: usize,
    pub handled_distinct: usize,
    pub handled_total: u64,
    pub acknowledged: u64,
    pub dead_lettered: BTreeSet<u64>,
    pub still_queued: BTreeSet<u64>,
    pub missing: BTreeSet<u64>,
    pub handled_twice: Vec<u64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            self.scenario,
            self.published,
            self.handled_distinct,
            self.handled_total,
            self.acknowledged,
            self.dead_lettered.len(),
            self.still_queued.len(),
            self.missing.len()
        )
    }
}

impl Report {
    /// Prints the report (a RELIABILITY.md table row) and fails when a message is lost.
    pub fn assert_nothing_lost(&self) {
        println!("RELIABILITY {self}");
        assert!(
            self.missing.is_empty(),
            "{}: messages lost (neither handled, dead-lettered nor queued): {:?}",
            self.scenario,
            self.missing
        );
    }
}

/// The numbers of the messages published for a scenario, by the backend's message id too,
/// so messages whose content cannot be read back (poison) are still accounted for.
#[derive(Default)]
pub struct Published {
    pub ids: BTreeSet<u64>,
    pub by_message_id: HashMap<String, u64>,
}

impl Published {
    pub async fn send<B: MessagingBackend>(
        &mut self,
        backend: &B,
        queue: &str,
        id: u64,
        message: OutgoingMessage,
    ) {
        let message_id = backend
            .publish_to_queue(queue, message)
            .await
            .unwrap_or_else(|e| panic!("publishing message {id} to `{queue}` failed: {e}"));
        self.ids.insert(id);
        self.by_message_id.insert(message_id, id);
    }

    /// Publishes tasks in batches of 10.
    pub async fn send_tasks<B: MessagingBackend>(
        &mut self,
        backend: &B,
        queue: &str,
        tasks: impl IntoIterator<Item = Task>,
    ) {
        let tasks: Vec<Task> = tasks.into_iter().collect();
        for chunk in tasks.chunks(10) {
            let results = backend
                .publish_batch_to_queue(queue, chunk.iter().map(Task::outgoing).collect())
                .await
                .unwrap();
            for (task, result) in chunk.iter().zip(results) {
                let message_id = result.unwrap();
                self.ids.insert(task.id);
                self.by_message_id.insert(message_id, task.id);
            }
        }
    }

    /// Reads a logical id back from a received message: `"id":N` or `id=N` in its content,
    /// else its message id.
    fn identify(&self, message_id: &str, content: Option<&str>) -> Option<u64> {
        content
            .and_then(|c| number_after(c, "\"id\":").or_else(|| number_after(c, "id=")))
            .or_else(|| self.by_message_id.get(message_id).copied())
    }

    /// Receives (and deletes) everything left in `queue`, returning the logical ids.
    pub async fn drain<B: MessagingBackend>(
        &self,
        backend: &B,
        queue: &str,
        wait: Duration,
    ) -> BTreeSet<u64> {
        let mut ids = BTreeSet::new();
        let options = ReceiveOptions {
            max_messages: 10,
            wait_time: wait,
            visibility_timeout: Some(Duration::from_secs(60)),
        };
        loop {
            let batch = backend
                .receive(queue, &options)
                .await
                .unwrap_or_else(|e| panic!("draining `{queue}` failed: {e}"));
            if batch.is_empty() {
                return ids;
            }
            for received in batch {
                let (id, receipt) = match &received {
                    Ok(envelope) => (
                        self.identify(&envelope.message_id, Some(&envelope.content)),
                        envelope.delivery.receipt.clone(),
                    ),
                    Err(malformed) => (
                        self.identify(&malformed.message_id, None),
                        malformed.delivery.receipt.clone(),
                    ),
                };
                if let Some(id) = id {
                    ids.insert(id);
                } else {
                    eprintln!("unaccounted message on `{queue}`: {received:?}");
                }
                backend.acknowledge(queue, &receipt).await.unwrap();
            }
        }
    }

    /// The report: drains the queue and its dead-letter queue and looks for lost messages.
    /// `also_done` are logical ids settled otherwise (discarded poison, by design).
    #[allow(clippy::too_many_arguments)]
    pub async fn report<B: MessagingBackend>(
        &self,
        scenario: &str,
        backend: &B,
        queue: &str,
        dead_letter_queue: &str,
        ledger: &Ledger,
        acknowledged: u64,
        also_done: &BTreeSet<u64>,
        wait: Duration,
    ) -> Report {
        let still_queued = self.drain(backend, queue, wait).await;
        let dead_lettered = self.drain(backend, dead_letter_queue, wait).await;
        let handled: BTreeSet<u64> = ledger.handled.lock().unwrap().keys().copied().collect();
        let missing = self
            .ids
            .iter()
            .copied()
            .filter(|id| {
                !handled.contains(id)
                    && !dead_lettered.contains(id)
                    && !still_queued.contains(id)
                    && !also_done.contains(id)
            })
            .collect();
        Report {
            scenario: scenario.to_owned(),
            published: self.ids.len(),
            handled_distinct: ledger.handled_distinct(),
            handled_total: ledger.handled_total(),
            acknowledged,
            dead_lettered,
            still_queued,
            missing,
            handled_twice: ledger.twice(),
        }
    }
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
