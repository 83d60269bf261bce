//! Property tests: network input never panics the decoders, and the in-memory backend keeps
//! every message in exactly one place. The same decoders are the `cargo fuzz` targets in
//! fuzz/ (see RELIABILITY.md); this runs in CI.

use std::collections::HashMap;
use std::time::Duration;

use melange::sqs::wire::{self, Attribute};
use melange::{
    InMemoryBackend, MessagingBackend, MessagingBackendFactory, OutgoingMessage, ReceiptHandle,
    ReceiveOptions, SerializerRegistry,
};
use proptest::prelude::*;

use super::harness::Task;

fn attribute() -> impl Strategy<Value = Attribute> {
    (
        prop_oneof![
            Just("String".to_owned()),
            Just("Number".to_owned()),
            Just("Binary".to_owned()),
            Just("Number.int".to_owned()),
            ".{0,12}",
        ],
        proptest::option::of(prop_oneof![".{0,20}", "-?[0-9]{1,25}", Just(String::new())]),
    )
        .prop_map(|(data_type, string_value)| Attribute {
            data_type,
            string_value,
        })
}

fn attributes() -> impl Strategy<Value = HashMap<String, Attribute>> {
    proptest::collection::hash_map(
        prop_oneof![
            Just("manifest".to_owned()),
            Just("serializer_id".to_owned()),
            "[a-z_]{1,10}",
        ],
        attribute(),
        0..4,
    )
}

/// Bodies: anything, JSON-looking text, Melange and SNS envelopes with arbitrary parts.
fn body() -> impl Strategy<Value = String> {
    let json_value = prop_oneof![
        Just("null".to_owned()),
        "-?[0-9]{1,30}".prop_map(|n| n),
        ".{0,30}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("{}".to_owned()),
        Just("[1,2]".to_owned()),
    ];
    prop_oneof![
        ".{0,200}",
        "[{}\\[\\]\":,0-9a-zA-Z ]{0,80}",
        (json_value.clone(), json_value.clone(), json_value).prop_map(|(m, t, a)| format!(
            r#"{{"Type":{t},"Message":{m},"MessageAttributes":{{"manifest":{{"Type":"String","Value":{a}}},"serializer_id":{{"Type":"Number","Value":{a}}}}}}}"#
        )),
        ".{0,40}".prop_map(|inner| format!(
            r#"{{"Type":"Notification","Message":{},"MessageAttributes":{{}}}}"#,
            serde_json::to_string(&inner).unwrap()
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bodies and attributes are decoded or rejected with an error, never a panic,
    /// and the size limit is enforced whatever the content.
    #[test]
    fn wire_decode_never_panics(body in body(), attributes in attributes(), limit in 0usize..400) {
        let size = wire::message_size(&body, attributes.iter().map(|(k, v)| (k.as_str(), v)));
        match wire::decode(&body, &attributes, limit) {
            Ok(_) => prop_assert!(size <= limit),
            Err(melange::envelope::WireError::TooLarge { .. }) => prop_assert!(size > limit),
            Err(_) => {}
        }
        let _ = wire::decode(&body, &attributes, wire::SQS_MAX_MESSAGE_SIZE);
    }

    /// Serializer lookup and decoding: any id, any content.
    #[test]
    fn serializer_deserialize_never_panics(
        content in prop_oneof![".{0,100}", body()],
        id in proptest::option::of(prop_oneof![0u32..4, any::<u32>()]),
        manifest in proptest::option::of("[A-Za-z.]{0,10}"),
    ) {
        let registry = SerializerRegistry::default();
        let _ = registry.deserialize::<Task>(&content, id, manifest.as_deref());
        let _ = registry.deserialize::<serde_json::Value>(&content, id, manifest.as_deref());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Receive(u8),
    Ack(usize),
    ChangeVisibility(usize, u8),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..5).prop_map(Op::Publish),
        (1u8..11).prop_map(Op::Receive),
        any::<usize>().prop_map(Op::Ack),
        (any::<usize>(), 0u8..20).prop_map(|(i, s)| Op::ChangeVisibility(i, s)),
        (0u16..15_000).prop_map(Op::Advance),
    ]
}

const PQ: &str = "prop";
const PDLQ: &str = "prop-dlq";

async fn check(backend: &InMemoryBackend, published: u64) -> Result<(), TestCaseError> {
    let stats = backend.queue_stats(PQ).unwrap();
    let dlq = backend.queue_stats(PDLQ).unwrap();
    prop_assert_eq!(stats.enqueued, published);
    prop_assert_eq!(
        stats.enqueued,
        stats.visible as u64 + stats.in_flight as u64 + stats.acknowledged + stats.dead_lettered,
        "{:?}",
        stats
    );
    prop_assert_eq!(dlq.enqueued, stats.dead_lettered);
    prop_assert_eq!(
        dlq.enqueued,
        dlq.visible as u64 + dlq.in_flight as u64 + dlq.acknowledged + dlq.dead_lettered
    );
    Ok(())
}

async fn run_ops(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let backend = InMemoryBackend::new();
    MessagingBackendFactory::new(backend.clone())
        .init_queue(PQ)
        .dead_letter_queue(PDLQ)
        .visibility_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    let mut published = 0u64;
    let mut receipts: Vec<ReceiptHandle> = Vec::new();
    for op in ops {
        match op {
            Op::Publish(n) => {
                for _ in 0..n {
                    let body = format!(r#"{{"n":{published}}}"#);
                    backend
                        .publish_to_queue(PQ, OutgoingMessage::new(body, "N", 1))
                        .await
                        .unwrap();
                    published += 1;
                }
            }
            Op::Receive(n) => {
                let options = ReceiveOptions {
                    max_messages: u32::from(n),
                    wait_time: Duration::ZERO,
                    visibility_timeout: None,
                };
                for received in backend.receive(PQ, &options).await.unwrap() {
                    receipts.push(received.unwrap().delivery.receipt);
                }
            }
            Op::Ack(i) if !receipts.is_empty() => {
                let receipt = receipts.swap_remove(i % receipts.len());
                // A stale receipt is refused or ignored; neither may lose a message.
                let _ = backend.acknowledge(PQ, &receipt).await;
            }
            Op::ChangeVisibility(i, seconds) if !receipts.is_empty() => {
                let receipt = &receipts[i % receipts.len()];
                let _ = backend
                    .change_visibility(PQ, receipt, Duration::from_secs(u64::from(seconds)))
                    .await;
            }
            Op::Advance(ms) => tokio::time::advance(Duration::from_millis(u64::from(ms))).await,
            Op::Ack(_) | Op::ChangeVisibility(..) => {}
        }
        check(&backend, published).await?;
    }
    // In the end every message can be found: drained now, acknowledged or dead-lettered.
    tokio::time::advance(Duration::from_secs(60)).await;
    let options = ReceiveOptions {
        max_messages: 10,
        wait_time: Duration::ZERO,
        visibility_timeout: Some(Duration::from_secs(600)),
    };
    let mut drained = 0u64;
    loop {
        let batch = backend.receive(PQ, &options).await.unwrap();
        if batch.is_empty() {
            break;
        }
        drained += batch.len() as u64;
    }
    let stats = backend.queue_stats(PQ).unwrap();
    prop_assert_eq!(drained, stats.in_flight as u64);
    prop_assert_eq!(
        drained + stats.acknowledged + stats.dead_lettered,
        published
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random publish / receive / acknowledge / change-visibility / clock sequences: every
    /// message is always in exactly one of visible, in flight, acknowledged, dead-lettered.
    #[test]
    fn in_memory_backend_accounts_for_every_message(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(run_ops(ops))?;
    }
}
