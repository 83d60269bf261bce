//! Poison on the real SQS server (moto_server): messages no melange publisher would write,
//! sent with raw `SendMessage` calls and mixed into a healthy stream. Every kind gets its
//! documented outcome, the healthy messages flow while the poison is still circulating, and
//! every message is accounted for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melange::sqs::ElasticMqBackend;
use melange::sqs::aws_sdk_sqs::primitives::Blob;
use melange::sqs::aws_sdk_sqs::types::MessageAttributeValue;
use melange::sqs::wire::{self, SQS_MAX_MESSAGE_SIZE};
use melange::{
    BackendError, ConsumerEvent, ConsumerOptions, MessagingBackend, MessagingBackendFactory,
    OutgoingMessage, PoisonOutcome, SerializerRegistry, SimpleConsumerHandler,
};
use serde_json::json;

use super::harness::{Ledger, Probe, Published, Task};
use crate::support::{sqs_backend, unique};

/// The visibility timeout of the scenario's queue: a redriven message comes back this soon.
const VISIBILITY: Duration = Duration::from_secs(2);
/// The queue's max receives before the server moves a message to the dead-letter queue.
const MAX_RECEIVES: u32 = 3;
/// Healthy messages.
const HEALTHY: u64 = 50;
/// Messages of each poison kind.
const PER_KIND: u64 = 3;

/// What the consumer (undecodable → `DeadLetter`, unknown manifest → `Discard`) must do with
/// a kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Decoded off the wire, undecodable by the handler: copied to the DLQ at once, after one
    /// receive.
    DeadLetterNow,
    /// Malformed on the wire (`wire::decode` fails, `MalformedMessage`): there is no envelope
    /// to copy, so `DeadLetter` falls back to `Redrive`: received `MAX_RECEIVES` times, then
    /// moved to the DLQ by the server's redrive policy.
    Redrive,
    /// No consumer accepts it: acknowledged and gone, after one receive.
    Discard,
    /// Not poison after all: handled.
    Handled,
}

impl Expect {
    fn describe(self) -> &'static str {
        match self {
            Expect::DeadLetterNow => "DLQ at once (engine copy)",
            Expect::Redrive => "redriven, DLQ by the server after max receives",
            Expect::Discard => "discarded (acknowledged)",
            Expect::Handled => "handled",
        }
    }
}

/// A raw message: its body and its message attributes.
type Raw = (String, Vec<(&'static str, MessageAttributeValue)>);

/// One kind of message put on the queue by a foreign producer.
struct Kind {
    name: &'static str,
    expect: Expect,
    /// Part of the poison reason the consumer reports, when it is stable.
    reason: Option<&'static str>,
    /// The body and attributes of message number `id`.
    build: fn(u64) -> Raw,
}

fn string(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

fn number(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(value)
        .build()
        .unwrap()
}

fn binary(value: &[u8]) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(Blob::new(value))
        .build()
        .unwrap()
}

/// The attributes Python Melange writes for a `Task`.
fn melange_attributes() -> Vec<(&'static str, MessageAttributeValue)> {
    vec![("manifest", string("Task")), ("serializer_id", number("1"))]
}

fn task_json(id: u64) -> String {
    serde_json::to_string(&Task::new(id, 0, "ok")).unwrap()
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "body not JSON",
            expect: Expect::DeadLetterNow,
            reason: None,
            build: |id| (format!("id={id} not json"), melange_attributes()),
        },
        Kind {
            name: "JSON of the wrong shape",
            expect: Expect::DeadLetterNow,
            reason: None,
            build: |id| {
                (
                    wire::queue_body(&format!(r#"{{"id":{id},"shape":"wrong"}}"#)),
                    melange_attributes(),
                )
            },
        },
        Kind {
            name: "unknown manifest",
            expect: Expect::Discard,
            reason: Some("no consumer accepts"),
            build: |id| {
                (
                    wire::queue_body(&task_json(id)),
                    vec![
                        ("manifest", string("NoSuchManifest")),
                        ("serializer_id", number("1")),
                    ],
                )
            },
        },
        Kind {
            name: "unknown serializer id (42)",
            expect: Expect::DeadLetterNow,
            reason: Some("42"),
            build: |id| {
                (
                    wire::queue_body(&task_json(id)),
                    vec![
                        ("manifest", string("Task")),
                        ("serializer_id", number("42")),
                    ],
                )
            },
        },
        Kind {
            name: "missing attributes (no manifest, no serializer_id)",
            expect: Expect::Discard,
            reason: Some("no consumer accepts"),
            build: |id| (wire::queue_body(&task_json(id)), Vec::new()),
        },
        Kind {
            name: "missing serializer_id (manifest present)",
            expect: Expect::Handled,
            reason: None,
            build: |id| {
                (
                    wire::queue_body(&task_json(id)),
                    vec![("manifest", string("Task"))],
                )
            },
        },
        Kind {
            name: "manifest mistyped as Number",
            expect: Expect::Discard,
            reason: Some("no consumer accepts"),
            build: |id| {
                (
                    wire::queue_body(&task_json(id)),
                    vec![("manifest", number("7")), ("serializer_id", number("1"))],
                )
            },
        },
        Kind {
            name: "serializer_id a non-number String",
            expect: Expect::Redrive,
            reason: Some("invalid attribute `serializer_id`"),
            build: |id| {
                (
                    wire::queue_body(&task_json(id)),
                    vec![
                        ("manifest", string("Task")),
                        ("serializer_id", string("json")),
                    ],
                )
            },
        },
        Kind {
            name: "manifest as Binary (invalid UTF-8)",
            expect: Expect::Redrive,
            reason: Some("invalid attribute `manifest`"),
            build: |id| {
                (
                    wire::queue_body(&task_json(id)),
                    vec![
                        ("manifest", binary(&[0xff, 0xfe, b'T', 0xc3])),
                        ("serializer_id", number("1")),
                    ],
                )
            },
        },
        Kind {
            name: "SNS envelope, inner message not JSON",
            expect: Expect::DeadLetterNow,
            reason: None,
            build: |id| {
                let body = json!({
                    "Type": "Notification",
                    "MessageId": format!("sns-{id}"),
                    "Message": format!("id={id} not json"),
                    "MessageAttributes": {
                        "manifest": {"Type": "String", "Value": "Task"},
                        "serializer_id": {"Type": "Number", "Value": "1"},
                    },
                });
                (body.to_string(), Vec::new())
            },
        },
        Kind {
            name: "SNS envelope, Message not a string",
            expect: Expect::Redrive,
            reason: Some("invalid body"),
            build: |id| {
                let body = json!({
                    "Type": "Notification",
                    "Message": {"id": id},
                    "MessageAttributes": {
                        "manifest": {"Type": "String", "Value": "Task"},
                    },
                });
                (body.to_string(), Vec::new())
            },
        },
        Kind {
            name: "SNS envelope, attribute value not a string",
            expect: Expect::Redrive,
            reason: Some("invalid attribute `serializer_id`"),
            build: |id| {
                let body = json!({
                    "Type": "Notification",
                    "Message": task_json(id),
                    "MessageAttributes": {
                        "manifest": {"Type": "String", "Value": "Task"},
                        "serializer_id": {"Type": "Number", "Value": 1},
                    },
                });
                (body.to_string(), Vec::new())
            },
        },
    ]
}

/// Sends one message with the plain SDK and returns its message id.
async fn send_raw(
    backend: &ElasticMqBackend,
    url: &str,
    body: String,
    attributes: Vec<(&'static str, MessageAttributeValue)>,
) -> String {
    let mut request = backend
        .sqs_client()
        .send_message()
        .queue_url(url)
        .message_body(body);
    for (name, value) in attributes {
        request = request.message_attributes(name, value);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("raw SendMessage failed: {e:?}"))
        .message_id
        .unwrap()
}

/// What became of the messages of one kind.
#[derive(Default)]
struct Row {
    count: u64,
    /// Poison receives per message (the distinct values).
    receives: BTreeSet<usize>,
    /// Copied to the DLQ by the consumer.
    copied: u64,
    /// Found in the DLQ.
    in_dlq: u64,
    handled: u64,
    reasons: BTreeSet<String>,
}

/// What the event hook saw, with times (for ordering only).
#[derive(Default)]
struct Seen {
    /// Message id → poison reasons, one per receive.
    poison: HashMap<String, Vec<String>>,
    /// Message ids the engine copied to the dead-letter queue.
    dead_lettered: Vec<String>,
    /// When each message was handled.
    handled: HashMap<String, Instant>,
    first_poison: Option<Instant>,
    last_poison: Option<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_sent_raw_gets_its_outcome_while_healthy_messages_flow_on_sqs() {
    let test_started = Instant::now();
    let backend = sqs_backend();
    let queue = unique("rel-poison");
    let dlq = format!("{queue}-dlq");
    MessagingBackendFactory::new(backend.clone())
        .init_queue(&queue)
        .dead_letter_queue(&dlq)
        .max_receive_count(MAX_RECEIVES)
        .visibility_timeout(VISIBILITY)
        .await
        .unwrap();
    let url = backend.queue_url(&queue).await.unwrap();

    // Oversize, through melange: refused before it is sent, with a typed error.
    let refused = backend
        .publish_to_queue(
            &queue,
            OutgoingMessage::new("x".repeat(SQS_MAX_MESSAGE_SIZE), "Task", 1),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(BackendError::MessageTooLarge { limit, .. }) if limit == SQS_MAX_MESSAGE_SIZE
        ),
        "{refused:?}"
    );

    // Healthy messages in batches of 10, with a round of every poison kind after each of the
    // first batches.
    let kinds = kinds();
    let mut published = Published::default();
    // Message id → (kind index, logical id).
    let mut poison: HashMap<String, (usize, u64)> = HashMap::new();
    for round in 0..HEALTHY / 10 {
        published
            .send_tasks(
                &backend,
                &queue,
                (round * 10..round * 10 + 10).map(|id| Task::new(id, 50, "ok")),
            )
            .await;
        if round < PER_KIND {
            for (index, kind) in kinds.iter().enumerate() {
                let id = 1000 + 100 * index as u64 + round;
                let (body, attributes) = (kind.build)(id);
                let message_id = send_raw(&backend, &url, body, attributes).await;
                published.ids.insert(id);
                published.by_message_id.insert(message_id.clone(), id);
                poison.insert(message_id, (index, id));
            }
        }
    }
    // Oversize on receive: moto checks only the body's length in characters against the
    // 1 MiB limit, so a body of exactly 1 MiB with its attributes is accepted, and is over the
    // limit (body plus attributes) that `wire::decode` enforces on receive.
    let oversize_kind = kinds.len();
    let oversize_id = 1000 + 100 * oversize_kind as u64;
    let prefix = format!("id={oversize_id} ");
    let body = format!(
        "{prefix}{}",
        "x".repeat(SQS_MAX_MESSAGE_SIZE - prefix.len())
    );
    let oversize_message_id = send_raw(&backend, &url, body, melange_attributes()).await;
    published.ids.insert(oversize_id);
    published
        .by_message_id
        .insert(oversize_message_id.clone(), oversize_id);
    poison.insert(oversize_message_id, (oversize_kind, oversize_id));
    let expect_of = |index: usize| {
        if index == oversize_kind {
            Expect::Redrive
        } else {
            kinds[index].expect
        }
    };
    let name_of = |index: usize| {
        if index == oversize_kind {
            "oversize (1 MiB body + attributes), on receive"
        } else {
            kinds[index].name
        }
    };

    let seen = Arc::new(Mutex::new(Seen::default()));
    let ledger = Arc::new(Ledger::default());
    let options = ConsumerOptions::default()
        .max_in_flight(16)
        .wait_time(Duration::from_secs(1))
        .undecodable(PoisonOutcome::DeadLetter)
        .unknown_manifest(PoisonOutcome::Discard)
        // Longer than the visibility timeout: redriven poison comes back before idle.
        .stop_when_idle(VISIBILITY * 2);
    let hook_seen = seen.clone();
    let consume = SimpleConsumerHandler::new(
        Probe(ledger.clone()),
        SerializerRegistry::default(),
        backend.clone(),
    )
    .with_options(options)
    .on_event(move |event| {
        let now = Instant::now();
        let mut seen = hook_seen.lock().unwrap();
        match event {
            ConsumerEvent::Poison {
                message_id, reason, ..
            } => {
                seen.poison
                    .entry((*message_id).to_owned())
                    .or_default()
                    .push((*reason).to_owned());
                seen.first_poison.get_or_insert(now);
                seen.last_poison = Some(now);
            }
            ConsumerEvent::DeadLettered { message_id, .. } => {
                seen.dead_lettered.push((*message_id).to_owned());
            }
            ConsumerEvent::Handled { message_id, .. } => {
                seen.handled.insert((*message_id).to_owned(), now);
            }
            _ => {}
        }
    });
    let consume_started = Instant::now();
    let summary = tokio::time::timeout(Duration::from_secs(180), consume.consume_loop(&queue))
        .await
        .expect("the consumer goes idle")
        .expect("poison never stops the loop");
    let consume_time = consume_started.elapsed();

    let discarded: BTreeSet<u64> = poison
        .values()
        .filter(|(index, _)| expect_of(*index) == Expect::Discard)
        .map(|(_, id)| *id)
        .collect();
    let report = published
        .report(
            "poison mix sent raw (12 kinds × 3 + 1 oversize) + 50 healthy (moto)",
            &backend,
            &queue,
            &dlq,
            &ledger,
            summary.acknowledged,
            &discarded,
            Duration::from_secs(1),
        )
        .await;
    let seen = seen.lock().unwrap();

    // Per kind: what was observed.
    let mut rows: BTreeMap<usize, Row> = BTreeMap::new();
    let mut problems = Vec::new();
    for (message_id, (index, id)) in &poison {
        let expect = expect_of(*index);
        let reasons = seen.poison.get(message_id).cloned().unwrap_or_default();
        let copied = seen.dead_lettered.iter().any(|m| m == message_id);
        let in_dlq = report.dead_lettered.contains(id);
        let handled = ledger.handled.lock().unwrap().contains_key(id);
        let row = rows.entry(*index).or_default();
        row.count += 1;
        row.receives.insert(reasons.len());
        row.copied += u64::from(copied);
        row.in_dlq += u64::from(in_dlq);
        row.handled += u64::from(handled);
        row.reasons.extend(reasons.iter().cloned());
        let (receives, want_copied, want_in_dlq, want_handled) = match expect {
            Expect::DeadLetterNow => (1, true, true, false),
            Expect::Redrive => (MAX_RECEIVES as usize, false, true, false),
            Expect::Discard => (1, false, false, false),
            Expect::Handled => (0, false, false, true),
        };
        if reasons.len() != receives
            || copied != want_copied
            || in_dlq != want_in_dlq
            || handled != want_handled
        {
            problems.push(format!(
                "{} (#{id}): {} poison receives (want {receives}), copied to the DLQ {copied} \
                 (want {want_copied}), in the DLQ {in_dlq} (want {want_in_dlq}), handled \
                 {handled} (want {want_handled}); reasons {reasons:?}",
                name_of(*index),
                reasons.len()
            ));
        }
        let want_reason = if *index == oversize_kind {
            Some("exceeds the limit of 1048576 bytes")
        } else {
            kinds[*index].reason
        };
        if let Some(want) = want_reason
            && !reasons.iter().all(|r| r.contains(want))
        {
            problems.push(format!(
                "{} (#{id}): reasons {reasons:?} do not mention `{want}`",
                name_of(*index)
            ));
        }
    }
    for (index, row) in &rows {
        let Row {
            count,
            receives,
            copied,
            in_dlq,
            handled,
            reasons,
        } = row;
        let reason = reasons.iter().next().map_or("", String::as_str);
        let reason: String = reason.chars().take(110).collect();
        println!(
            "RELIABILITY poison kind | {} | {count} | {} | receives {receives:?} | engine DLQ \
             copies {copied} | in DLQ {in_dlq} | handled {handled} | {reason} |",
            name_of(*index),
            expect_of(*index).describe(),
        );
    }
    let healthy_ids: BTreeSet<u64> = (0..HEALTHY).collect();
    let last_healthy = published
        .by_message_id
        .iter()
        .filter(|(_, id)| healthy_ids.contains(id))
        .filter_map(|(message_id, _)| seen.handled.get(message_id).copied())
        .max();
    println!(
        "RELIABILITY poison (moto): consumed in {consume_time:?}, test {:?}; summary {summary:?}; \
         last healthy handled {:?} after the first poison, last poison {:?} after the first",
        test_started.elapsed(),
        last_healthy.zip(seen.first_poison).map(|(h, p)| h - p),
        seen.last_poison.zip(seen.first_poison).map(|(l, p)| l - p),
    );
    report.assert_nothing_lost();
    assert!(problems.is_empty(), "{problems:#?}");

    let count = |expect: Expect| {
        poison
            .values()
            .filter(|(index, _)| expect_of(*index) == expect)
            .count() as u64
    };
    let healthy = HEALTHY + count(Expect::Handled);
    assert_eq!(report.handled_distinct as u64, healthy);
    // At a 2 s visibility timeout a loaded server can hand a healthy message out again
    // before its acknowledgement lands: at-least-once, counted, not a failure.
    if !report.handled_twice.is_empty() {
        println!(
            "RELIABILITY poison (moto): handled twice (redelivered before the ack): {:?}",
            report.handled_twice
        );
    }
    assert!(report.still_queued.is_empty(), "{:?}", report.still_queued);
    let to_dlq: BTreeSet<u64> = poison
        .values()
        .filter(|(index, _)| matches!(expect_of(*index), Expect::DeadLetterNow | Expect::Redrive))
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(report.dead_lettered, to_dlq);
    assert_eq!(
        summary.poison,
        count(Expect::DeadLetterNow) + count(Expect::Discard) + count(Expect::Redrive) * 3
    );
    assert_eq!(summary.dead_lettered, count(Expect::DeadLetterNow));
    let expected_acks = healthy + count(Expect::Discard);
    let redelivered = report.handled_twice.len() as u64;
    assert!(
        (expected_acks..=expected_acks + redelivered).contains(&summary.acknowledged),
        "acknowledged {}, expected {expected_acks} (+ up to {redelivered} redelivered)",
        summary.acknowledged
    );
    assert_eq!(summary.panicked + summary.failed, 0);
    // The healthy messages did not wait for the poison: the poison was already being received
    // before the last healthy message was handled, and was still coming back (redriven) after.
    let (Some(last_healthy), Some(first_poison), Some(last_poison)) =
        (last_healthy, seen.first_poison, seen.last_poison)
    else {
        panic!("no healthy or no poison events");
    };
    assert!(
        first_poison < last_healthy && last_healthy < last_poison,
        "healthy messages waited for the poison: first poison {first_poison:?}, last healthy \
         {last_healthy:?}, last poison {last_poison:?}"
    );
}
