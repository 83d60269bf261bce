//! `#[listener]` consumers driven by hand: dispatch by manifest, context, explicit manifests,
//! fallback, and the errors `consume` reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use melange::serializer::{DeserializeFn, erased_serde};
use melange::{
    BoxError, ConsumeError, Consumer, Delivery, Envelope, JsonSerializer, MessageContext,
    ReceiptHandle, SerializationError, Serializer, SerializerRegistry,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, melange::Message)]
struct OrderCreated {
    order_id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, melange::Message)]
#[melange(manifest = "orders.Cancelled")]
struct OrderCancelled {
    order_id: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Legacy {
    kind: String,
}

#[derive(Debug, thiserror::Error)]
#[error("order {0} is cursed")]
struct Cursed(u64);

/// What each handler saw, in order.
#[derive(Default)]
struct Orders {
    seen: Mutex<Vec<String>>,
}

impl Orders {
    fn record(&self, entry: String) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(entry);
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }
}

#[melange::listener]
impl Orders {
    const CURSED: u64 = 13;

    async fn on_created(&self, event: OrderCreated) -> Result<(), Cursed> {
        if event.order_id == Self::CURSED {
            return Err(Cursed(event.order_id));
        }
        self.record(format!("created {}", event.order_id));
        Ok(())
    }

    async fn on_cancelled(&self, event: OrderCancelled, ctx: MessageContext<'_>) {
        self.record(format!(
            "cancelled {} id={} queue={} count={} group={:?} trace={:?}",
            event.order_id,
            ctx.message_id(),
            ctx.queue(),
            ctx.receive_count(),
            ctx.message_group_id(),
            ctx.attributes().get("trace"),
        ));
    }

    #[listener(manifest = "json")]
    async fn on_legacy(&self, payload: Legacy) {
        self.record(format!("legacy {}", self.describe(&payload)));
    }

    #[listener(skip)]
    fn describe(&self, payload: &Legacy) -> String {
        payload.kind.to_uppercase()
    }
}

/// Takes two message types and everything else.
#[derive(Default)]
struct CatchAll {
    seen: Mutex<Vec<String>>,
}

#[melange::listener]
impl CatchAll {
    async fn on_created(&self, event: OrderCreated) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("created {}", event.order_id));
        }
    }

    #[listener(fallback)]
    async fn on_any(&self, payload: serde_json::Value, ctx: MessageContext<'_>) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("any {payload} manifest={:?}", ctx.manifest()));
        }
    }
}

/// A generic consumer: the handler's message type comes from the impl block.
struct Relay<M> {
    seen: Mutex<Vec<M>>,
}

#[melange::listener]
impl<M: melange::Message + Clone> Relay<M> {
    async fn on_message(&self, message: M) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(message);
        }
    }
}

/// Handlers under `#[cfg]`: `#[cfg(any())]` is never compiled, `#[cfg(not(any()))]` always.
#[derive(Default)]
struct Configured {
    seen: Mutex<Vec<String>>,
}

#[melange::listener]
impl Configured {
    #[cfg(any())]
    async fn on_created_off(&self, event: OrderCreated) {
        self.record(format!("off {}", event.order_id));
    }

    #[cfg(not(any()))]
    async fn on_created_on(&self, event: OrderCreated) {
        self.record(format!("on {}", event.order_id));
    }

    #[cfg(any())]
    #[listener(fallback)]
    async fn on_any(&self, _payload: serde_json::Value) {
        self.record("any".to_owned());
    }

    #[listener(skip)]
    fn record(&self, entry: String) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(entry);
        }
    }
}

fn envelope(manifest: Option<&str>, content: &str) -> Envelope {
    Envelope {
        message_id: Arc::from("m-1"),
        content: Arc::from(content),
        manifest: manifest.map(Arc::from),
        serializer_id: manifest.map(|_| 1),
        delivery: Delivery {
            queue: Arc::from("orders"),
            receipt: ReceiptHandle::new("r-1"),
            receive_count: 3,
            message_group_id: Some(Arc::from("g-1")),
            attributes: HashMap::from([("trace".to_owned(), "t-9".to_owned())]),
        },
    }
}

async fn consume<C: Consumer>(
    consumer: &C,
    manifest: Option<&str>,
    content: &str,
) -> Result<(), ConsumeError> {
    let envelope = envelope(manifest, content);
    let serializers = SerializerRegistry::default();
    consumer
        .consume(MessageContext::new(&envelope, &serializers))
        .await
}

#[test]
fn name_and_accepts() {
    let orders = Orders::default();
    assert_eq!(orders.name(), "Orders");
    assert!(orders.accepts(Some("OrderCreated")));
    assert!(orders.accepts(Some("orders.Cancelled")));
    assert!(orders.accepts(Some("json")));
    assert!(!orders.accepts(Some("OrderCancelled")));
    assert!(!orders.accepts(Some("Refund")));
    assert!(!orders.accepts(None));

    let catch_all = CatchAll::default();
    assert_eq!(catch_all.name(), "CatchAll");
    assert!(catch_all.accepts(Some("Refund")));
    assert!(catch_all.accepts(None));
}

#[tokio::test]
async fn dispatches_by_manifest_to_the_right_handler() -> Result<(), ConsumeError> {
    let orders = Orders::default();
    consume(&orders, Some("OrderCreated"), r#"{"order_id":1}"#).await?;
    consume(&orders, Some("orders.Cancelled"), r#"{"order_id":2}"#).await?;
    consume(&orders, Some("OrderCreated"), r#"{"order_id":3}"#).await?;
    assert_eq!(
        orders.seen(),
        [
            "created 1",
            "cancelled 2 id=m-1 queue=orders count=3 group=Some(\"g-1\") trace=Some(\"t-9\")",
            "created 3",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn explicit_manifest_only_needs_deserialize() -> Result<(), ConsumeError> {
    let orders = Orders::default();
    consume(&orders, Some("json"), r#"{"kind":"refund"}"#).await?;
    assert_eq!(orders.seen(), ["legacy REFUND"]);
    Ok(())
}

#[tokio::test]
async fn fallback_takes_the_rest_including_no_manifest() -> Result<(), ConsumeError> {
    let consumer = CatchAll::default();
    consume(&consumer, Some("OrderCreated"), r#"{"order_id":5}"#).await?;
    consume(&consumer, Some("Refund"), r#"{"amount":3}"#).await?;
    consume(&consumer, None, r#"[1,2]"#).await?;
    let seen = consumer.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        seen,
        [
            "created 5",
            r#"any {"amount":3} manifest=Some("Refund")"#,
            "any [1,2] manifest=None",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn undecodable_content_is_a_decode_error() {
    let orders = Orders::default();
    let result = consume(&orders, Some("OrderCreated"), r#"{"order":"one"}"#).await;
    // JSON is decoded in the generated code itself; its error still names manifest and
    // serializer, as the registry's does.
    match &result {
        Err(ConsumeError::Decode(SerializationError::Decode {
            manifest,
            serializer_id,
            ..
        })) => {
            assert_eq!(manifest.as_deref(), Some("OrderCreated"));
            assert_eq!(*serializer_id, 1);
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(orders.seen().is_empty());
}

/// Reads and writes `{"order_id": N}` as `order_id=N`: a serializer other than JSON.
struct KeyValue;

impl Serializer for KeyValue {
    fn identifier(&self) -> u32 {
        77
    }
    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<String, BoxError> {
        let json = serde_json::to_value(value)?;
        Ok(format!("order_id={}", json["order_id"]))
    }
    fn deserialize(&self, content: &str, visit: DeserializeFn<'_>) -> Result<(), BoxError> {
        let id = content
            .strip_prefix("order_id=")
            .ok_or("expected order_id=")?;
        let json = format!(r#"{{"order_id":{id}}}"#);
        let mut de = serde_json::Deserializer::from_str(&json);
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
        Ok(())
    }
}

#[tokio::test]
async fn a_message_reaches_its_handler_through_the_serializer_its_id_names() {
    let serializers = SerializerRegistry::builder()
        .serializer("json", JsonSerializer)
        .serializer("kv", KeyValue)
        .build()
        .expect("a valid registry");
    let orders = Orders::default();
    let mut kv = envelope(Some("OrderCreated"), "order_id=8");
    kv.serializer_id = Some(77);
    let json = envelope(Some("OrderCreated"), r#"{"order_id":9}"#);
    for envelope in [&kv, &json] {
        orders
            .consume(MessageContext::new(envelope, &serializers))
            .await
            .expect("decoded and handled");
    }
    assert_eq!(orders.seen(), ["created 8", "created 9"]);
    // The same content under JSON's id is JSON that does not parse.
    kv.serializer_id = Some(1);
    let result = orders.consume(MessageContext::new(&kv, &serializers)).await;
    assert!(
        matches!(
            result,
            Err(ConsumeError::Decode(SerializationError::Decode {
                serializer_id: 1,
                ..
            }))
        ),
        "got {result:?}"
    );
}

#[tokio::test]
async fn handler_error_names_the_handler() {
    let orders = Orders::default();
    let result = consume(&orders, Some("OrderCreated"), r#"{"order_id":13}"#).await;
    match result {
        Err(ConsumeError::Handler(error)) => {
            assert_eq!(error.handler, "Orders::on_created");
            assert_eq!(error.source.to_string(), "order 13 is cursed");
        }
        other => panic!("expected a handler error, got {other:?}"),
    }
}

#[tokio::test]
async fn unaccepted_manifest_is_reported() {
    let orders = Orders::default();
    match consume(&orders, Some("Refund"), "{}").await {
        Err(ConsumeError::Unaccepted { consumer, manifest }) => {
            assert_eq!(consumer, "Orders");
            assert_eq!(manifest.as_deref(), Some("Refund"));
        }
        other => panic!("expected Unaccepted, got {other:?}"),
    }
    match consume(&orders, None, "{}").await {
        Err(ConsumeError::Unaccepted { manifest, .. }) => assert_eq!(manifest, None),
        other => panic!("expected Unaccepted, got {other:?}"),
    }
}

#[tokio::test]
async fn cfg_gated_handlers_follow_their_cfg() -> Result<(), ConsumeError> {
    let consumer = Configured::default();
    assert!(consumer.accepts(Some("OrderCreated")));
    assert!(!consumer.accepts(Some("Refund")));
    assert!(!consumer.accepts(None));
    consume(&consumer, Some("OrderCreated"), r#"{"order_id":4}"#).await?;
    // The fallback is not compiled: other manifests are not taken.
    match consume(&consumer, Some("Refund"), "{}").await {
        Err(ConsumeError::Unaccepted { consumer, manifest }) => {
            assert_eq!(consumer, "Configured");
            assert_eq!(manifest.as_deref(), Some("Refund"));
        }
        other => panic!("expected Unaccepted, got {other:?}"),
    }
    let seen = consumer.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen, ["on 4"]);
    Ok(())
}

#[tokio::test]
async fn generic_consumer() -> Result<(), ConsumeError> {
    let relay = Relay::<OrderCreated> {
        seen: Mutex::new(Vec::new()),
    };
    assert_eq!(relay.name(), "Relay");
    assert!(relay.accepts(Some("OrderCreated")));
    assert!(!relay.accepts(Some("orders.Cancelled")));
    consume(&relay, Some("OrderCreated"), r#"{"order_id":8}"#).await?;
    let seen = relay.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen, [OrderCreated { order_id: 8 }]);
    Ok(())
}

// Many handlers with manifests that share prefixes (of one, eight, nine and seventeen bytes,
// two differing in their last byte only), declared through macro_rules!: each message must
// reach its own handler.
macro_rules! numbered {
    ($($name:ident = $manifest:literal),* $(,)?) => {$(
        #[derive(Debug, Serialize, Deserialize, melange::Message)]
        #[melange(manifest = $manifest)]
        struct $name {
            n: u64,
        }
    )*};
}

numbered!(
    One = "a",
    Eight = "abcdefgh",
    EightToo = "abcdefgi",
    Nine = "abcdefgh.",
    Seventeen = "abcdefgh.ijklmnop",
);

/// Which handler saw which number.
#[derive(Default)]
struct Many {
    seen: Mutex<Vec<String>>,
}

impl Many {
    fn record(&self, handler: &str, n: u64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("{handler} {n}"));
        }
    }
}

#[melange::listener]
impl Many {
    async fn on_one(&self, m: One) {
        self.record("one", m.n);
    }
    async fn on_eight(&self, m: Eight) {
        self.record("eight", m.n);
    }
    async fn on_eight_too(&self, m: EightToo) {
        self.record("eight_too", m.n);
    }
    async fn on_nine(&self, m: Nine) {
        self.record("nine", m.n);
    }
    async fn on_seventeen(&self, m: Seventeen) {
        self.record("seventeen", m.n);
    }
    #[listener(manifest = "legacy.Order")]
    async fn on_legacy(&self, payload: serde_json::Value) {
        self.record("legacy", payload["n"].as_u64().unwrap_or(0));
    }
}

/// The same routes plus a fallback.
#[derive(Default)]
struct ManyWithFallback {
    seen: Mutex<Vec<String>>,
}

#[melange::listener]
impl ManyWithFallback {
    async fn on_one(&self, m: One) {
        self.record("one", m.n);
    }
    async fn on_eight(&self, m: Eight) {
        self.record("eight", m.n);
    }
    async fn on_eight_too(&self, m: EightToo) {
        self.record("eight_too", m.n);
    }
    async fn on_seventeen(&self, m: Seventeen) {
        self.record("seventeen", m.n);
    }
    #[listener(fallback)]
    async fn on_other(&self, payload: serde_json::Value, ctx: MessageContext<'_>) {
        let manifest = ctx.manifest().unwrap_or("-").to_owned();
        self.record(&manifest, payload["n"].as_u64().unwrap_or(0));
    }
}

impl ManyWithFallback {
    fn record(&self, handler: &str, n: u64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("{handler} {n}"));
        }
    }
}

const NEAR_MISSES: [&str; 7] = [
    "",
    "A",
    "abcdefg",
    "abcdefgj",
    "abcdefghi",
    "abcdefgh.ijklmnoq",
    "abcdefgh.ijklmnop.",
];

#[tokio::test]
async fn many_handlers_each_manifest_reaches_its_own() -> Result<(), ConsumeError> {
    let many = Many::default();
    let routes = [
        ("a", "one"),
        ("abcdefgh", "eight"),
        ("abcdefgi", "eight_too"),
        ("abcdefgh.", "nine"),
        ("abcdefgh.ijklmnop", "seventeen"),
        ("legacy.Order", "legacy"),
    ];
    for (n, (manifest, _)) in routes.iter().enumerate() {
        assert!(many.accepts(Some(manifest)), "{manifest}");
        consume(&many, Some(manifest), &format!(r#"{{"n":{n}}}"#)).await?;
    }
    let expected: Vec<String> = routes
        .iter()
        .enumerate()
        .map(|(n, (_, handler))| format!("{handler} {n}"))
        .collect();
    let seen = many.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen, expected);

    for manifest in NEAR_MISSES {
        assert!(!many.accepts(Some(manifest)), "{manifest:?}");
        match consume(&many, Some(manifest), r#"{"n":0}"#).await {
            Err(ConsumeError::Unaccepted {
                consumer,
                manifest: reported,
            }) => {
                assert_eq!(consumer, "Many");
                assert_eq!(reported.as_deref(), Some(manifest));
            }
            other => panic!("{manifest:?}: expected Unaccepted, got {other:?}"),
        }
    }
    assert!(!many.accepts(None));
    Ok(())
}

#[tokio::test]
async fn many_handlers_with_a_fallback_route_the_rest_to_it() -> Result<(), ConsumeError> {
    let consumer = ManyWithFallback::default();
    consume(&consumer, Some("abcdefgi"), r#"{"n":1}"#).await?;
    consume(&consumer, Some("abcdefgh.ijklmnop"), r#"{"n":2}"#).await?;
    for manifest in NEAR_MISSES {
        assert!(consumer.accepts(Some(manifest)));
        consume(&consumer, Some(manifest), r#"{"n":3}"#).await?;
    }
    let seen = consumer.seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut expected = vec!["eight_too 1".to_owned(), "seventeen 2".to_owned()];
    expected.extend(NEAR_MISSES.iter().map(|m| format!("{m} 3")));
    assert_eq!(seen, expected);
    Ok(())
}
