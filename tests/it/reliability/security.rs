//! Security checks that can be tested: credentials never show in Debug output or errors,
//! and size limits are enforced before network input is parsed.

use std::collections::HashMap;

use melange::sqs::aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use melange::sqs::wire::{self, Attribute};
use melange::sqs::{ElasticMqBackend, SqsBackend, aws_sdk_sns, aws_sdk_sqs};
use melange::{MessagingBackend, QueueSpec};

const KEY_ID: &str = "AKIAMELANGETESTKEYID";
const SECRET: &str = "melange/TestSecretAccessKey+DoNotPrint";

fn backend_with_secret(endpoint: &str) -> SqsBackend {
    let credentials = Credentials::new(KEY_ID, SECRET, Some("SessionTok".into()), None, "test");
    let sqs = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials.clone())
        .endpoint_url(endpoint)
        .build();
    let sns = aws_sdk_sns::Config::builder()
        .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
        .region(aws_sdk_sns::config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .build();
    SqsBackend::from_clients(
        aws_sdk_sqs::Client::from_conf(sqs),
        aws_sdk_sns::Client::from_conf(sns),
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [KEY_ID, SECRET, "SessionTok"] {
        assert!(!text.contains(secret), "{what} shows a credential: {text}");
    }
}

#[tokio::test]
async fn credentials_never_appear_in_debug_output_or_errors() {
    // Nothing listens on port 9 (discard): every call fails.
    let backend = backend_with_secret("http://127.0.0.1:9");
    assert_no_secret("SqsBackend Debug", &format!("{backend:?}"));
    let error = backend
        .declare_queue(&QueueSpec::new("q"))
        .await
        .expect_err("nothing listens there");
    assert_no_secret("error Display", &error.to_string());
    assert_no_secret("error Debug", &format!("{error:?}"));

    let local = ElasticMqBackend::from_endpoint("http://127.0.0.1:9");
    let debug = format!("{local:?}");
    assert!(!debug.contains("melange-local"), "{debug}");
    assert!(!debug.to_lowercase().contains("secret"), "{debug}");
}

#[test]
fn the_wire_size_limit_is_checked_before_parsing() {
    // A deeply nested body would be costly to parse; over the limit it is not parsed at all.
    let body = format!("{}{}", "[".repeat(300_000), "]".repeat(300_000));
    let error = wire::decode(&body, &HashMap::new(), wire::SQS_MAX_MESSAGE_SIZE / 2)
        .expect_err("over the limit");
    assert!(
        matches!(error, melange::envelope::WireError::TooLarge { .. }),
        "{error:?}"
    );
    // Attributes count toward the limit too.
    let mut attributes = HashMap::new();
    attributes.insert("big".to_owned(), Attribute::string("x".repeat(1000)));
    let error = wire::decode("{}", &attributes, 500).expect_err("attributes over the limit");
    assert!(matches!(
        error,
        melange::envelope::WireError::TooLarge { .. }
    ));
}
