//! Envelope parsing: `melange::sqs::wire::decode` on the three bodies a consumer receives —
//! a Python Melange queue body `{"Message": ...}` with SQS message attributes, an SNS
//! notification envelope (non-raw subscription), and a raw SNS delivery — against the floor
//! of parsing the same body with `serde_json` alone.
//!
//! `MELANGE_BENCH=paired` times each decode and its floor in rotation instead (see
//! `benches/support/rotation.rs`): `bench/run` takes the ratios from it.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "support/rotation.rs"]
mod rotation;

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use melange::sqs::wire::{self, Attribute, SQS_MAX_MESSAGE_SIZE};
use serde::Deserialize;

const CONTENT: &str = r#"{"id":42,"name":"order-42","tags":["new","priority"]}"#;

fn queue_attributes() -> HashMap<String, Attribute> {
    HashMap::from([
        ("manifest".to_owned(), Attribute::string("OrderCreated")),
        ("serializer_id".to_owned(), Attribute::number("1")),
    ])
}

fn sns_envelope() -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
        "Message": CONTENT,
        "Timestamp": "2026-11-28T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {
            "manifest": {"Type": "String", "Value": "OrderCreated"},
            "serializer_id": {"Type": "Number", "Value": "1"}
        }
    })
    .to_string()
}

/// What a hand-written consumer would minimally do with a queue body: read `Message`.
#[derive(Deserialize)]
struct QueueBody<'a> {
    #[serde(rename = "Message", borrow)]
    message: std::borrow::Cow<'a, str>,
}

fn envelope(c: &mut Criterion) {
    let attributes = queue_attributes();
    let empty = HashMap::new();
    let queue_body = wire::queue_body(CONTENT);
    let sns_body = sns_envelope();

    let mut group = c.benchmark_group("envelope");
    group.bench_function("sqs_body/decode", |b| {
        b.iter(|| {
            wire::decode(
                black_box(&queue_body),
                black_box(&attributes),
                SQS_MAX_MESSAGE_SIZE,
            )
            .unwrap()
        })
    });
    group.bench_function("sqs_body/serde_json", |b| {
        b.iter(|| {
            serde_json::from_str::<QueueBody<'_>>(black_box(&queue_body))
                .unwrap()
                .message
                .into_owned()
        })
    });
    group.bench_function("sns_envelope/decode", |b| {
        b.iter(|| {
            wire::decode(
                black_box(&sns_body),
                black_box(&empty),
                SQS_MAX_MESSAGE_SIZE,
            )
            .unwrap()
        })
    });
    group.bench_function("sns_envelope/serde_json_value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&sns_body)).unwrap())
    });
    group.bench_function("raw/decode", |b| {
        b.iter(|| {
            wire::decode(
                black_box(CONTENT),
                black_box(&attributes),
                SQS_MAX_MESSAGE_SIZE,
            )
            .unwrap()
        })
    });
    group.finish();
}

/// Each decode and its `serde_json` floor timed in rotation; one JSON line each.
fn paired() {
    const REPEAT: usize = 1000;
    let attributes = queue_attributes();
    let empty = HashMap::new();
    let queue_body = wire::queue_body(CONTENT);
    let sns_body = sns_envelope();
    let rounds = rotation::rounds(4_000);
    let decode = |body: &str, attributes: &HashMap<String, Attribute>| {
        for _ in 0..REPEAT {
            drop(black_box(
                wire::decode(black_box(body), black_box(attributes), SQS_MAX_MESSAGE_SIZE).unwrap(),
            ));
        }
    };
    let sqs_body = rotation::rotate(
        &mut [&mut || decode(&queue_body, &attributes), &mut || {
            for _ in 0..REPEAT {
                let body = serde_json::from_str::<QueueBody<'_>>(black_box(&queue_body));
                drop(black_box(body.unwrap().message.into_owned()));
            }
        }],
        rounds,
    );
    let sns = rotation::rotate(
        &mut [&mut || decode(&sns_body, &empty), &mut || {
            for _ in 0..REPEAT {
                let value = serde_json::from_str::<serde_json::Value>(black_box(&sns_body));
                drop(black_box(value.unwrap()));
            }
        }],
        rounds,
    );
    rotation::print_micro("envelope_sqs_body", &sqs_body, REPEAT);
    rotation::print_micro("envelope_sns", &sns, REPEAT);
}

criterion_group!(benches, envelope);

fn main() {
    rotation::paired_or(paired, || {
        benches();
        Criterion::default().configure_from_args().final_summary();
    });
}
