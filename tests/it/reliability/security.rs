//! Security checks that can be tested: credentials never show in Debug output or errors,
//! size limits are enforced before network input is parsed, and TLS is on for every endpoint
//! that is not local.

use std::collections::HashMap;

use melange::sqs::aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use melange::sqs::wire::{self, Attribute};
use melange::sqs::{
    ElasticMqBackend, EndpointError, SqsBackend, aws_config, aws_sdk_sns, aws_sdk_sqs,
    check_endpoint,
};
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

    let local = ElasticMqBackend::from_endpoint("http://127.0.0.1:9").unwrap();
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

// ----- TLS for every non-local endpoint -----

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused_unless_opted_in() {
    for endpoint in [
        "http://elasticmq:9324",
        "http://10.0.0.5:4566",
        "http://sqs.internal.example.com",
        "http://[2001:db8::1]:9324",
    ] {
        let error = ElasticMqBackend::from_endpoint(endpoint).expect_err(endpoint);
        assert!(
            matches!(&error, EndpointError::PlainHttp { endpoint: e, .. } if e == endpoint),
            "{error:?}"
        );
        // The message names the endpoint and both fixes.
        let text = error.to_string();
        for part in [endpoint, "https://", "allow_plain_http(true)"] {
            assert!(text.contains(part), "{text} does not mention {part}");
        }
        let opted_in = ElasticMqBackend::builder(endpoint)
            .allow_plain_http(true)
            .build()
            .expect("opted in");
        assert_eq!(opted_in.endpoint(), endpoint);
    }
    // The host/port constructor, with and without a scheme, as Python Melange takes it.
    assert!(matches!(
        ElasticMqBackend::new("elasticmq", 9324),
        Err(EndpointError::PlainHttp { .. })
    ));
    assert!(matches!(
        ElasticMqBackend::new("http://elasticmq", 9324),
        Err(EndpointError::PlainHttp { .. })
    ));
    assert!(matches!(
        ElasticMqBackend::from_endpoint("elasticmq:9324"),
        Err(EndpointError::Invalid { .. })
    ));
}

#[test]
fn loopback_and_https_endpoints_are_accepted() {
    for endpoint in [
        "http://127.0.0.1:9324",
        "http://127.0.0.2:9324",
        "http://localhost:4566",
        "http://[::1]:9324",
        "https://sqs.internal.example.com",
        "https://elasticmq:9324",
    ] {
        let backend = ElasticMqBackend::from_endpoint(endpoint).expect(endpoint);
        assert_eq!(backend.endpoint(), endpoint);
    }
    ElasticMqBackend::new("localhost", 9324).expect("loopback");
}

fn sdk_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"));
    match endpoint {
        Some(endpoint) => builder.endpoint_url(endpoint).build(),
        None => builder.build(),
    }
}

#[test]
fn an_sdk_configuration_with_a_plain_http_remote_endpoint_is_refused() {
    let error = SqsBackend::from_sdk_config(&sdk_config(Some("http://sqs.internal:9324")))
        .expect_err("plain HTTP to a remote host");
    assert!(
        matches!(&error, EndpointError::PlainHttp { host, .. } if host == "sqs.internal"),
        "{error:?}"
    );
    for endpoint in [
        None,
        Some("https://sqs.internal"),
        Some("http://localhost:4566"),
    ] {
        SqsBackend::from_sdk_config(&sdk_config(endpoint))
            .unwrap_or_else(|error| panic!("{endpoint:?}: {error}"));
    }
}

#[tokio::test]
async fn aws_endpoints_resolved_from_the_region_are_https() {
    use aws_sdk_sns::config::endpoint::ResolveEndpoint as _;
    use aws_sdk_sqs::config::endpoint::ResolveEndpoint as _;

    for region in [
        "us-east-1",
        "eu-west-1",
        "ap-southeast-2",
        "cn-north-1",
        "us-gov-west-1",
    ] {
        for (fips, dual_stack) in [(false, false), (true, false), (false, true)] {
            let params = aws_sdk_sqs::config::endpoint::Params::builder()
                .region(region)
                .use_fips(fips)
                .use_dual_stack(dual_stack)
                .build()
                .expect("SQS endpoint parameters");
            let sqs = aws_sdk_sqs::config::endpoint::DefaultResolver::new()
                .resolve_endpoint(&params)
                .await
                .expect("an SQS endpoint");
            let params = aws_sdk_sns::config::endpoint::Params::builder()
                .region(region)
                .use_fips(fips)
                .use_dual_stack(dual_stack)
                .build()
                .expect("SNS endpoint parameters");
            let sns = aws_sdk_sns::config::endpoint::DefaultResolver::new()
                .resolve_endpoint(&params)
                .await
                .expect("an SNS endpoint");
            for url in [sqs.url(), sns.url()] {
                assert!(url.starts_with("https://"), "{region}: {url}");
                check_endpoint(url, false).expect(url);
            }
        }
    }
}
