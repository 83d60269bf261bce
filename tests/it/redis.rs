//! The Redis de-duplication cache against a real redis-server (started by `scripts/test`).

use std::time::Duration;

use melange::DeduplicationCache;
use melange::consumer::RedisDeduplicationCache;

/// The Redis server `scripts/test` starts. Panics, so the test fails rather than skips, when
/// it is missing.
pub(crate) fn redis_url() -> String {
    std::env::var("MELANGE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "MELANGE_TEST_REDIS_URL is not set: run the tests with `scripts/test`, which starts \
             a redis-server, or set it to a Redis URL such as redis://127.0.0.1:6379/"
        )
    })
}

fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

#[tokio::test]
async fn records_keys_and_forgets_them_after_the_ttl() {
    let cache = RedisDeduplicationCache::connect(&redis_url(), Duration::from_secs(1))
        .await
        .unwrap()
        .namespace(unique("ttl"));
    assert!(!cache.contains("Consumer.m1").await.unwrap());
    cache.store("Consumer.m1").await.unwrap();
    assert!(cache.contains("Consumer.m1").await.unwrap());
    assert!(!cache.contains("Consumer.m2").await.unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!cache.contains("Consumer.m1").await.unwrap());
}

#[tokio::test]
async fn two_connections_share_what_was_recorded() {
    let namespace = unique("shared");
    let first = RedisDeduplicationCache::connect(&redis_url(), Duration::from_secs(60))
        .await
        .unwrap()
        .namespace(namespace.clone());
    let second = RedisDeduplicationCache::connect(&redis_url(), Duration::from_secs(60))
        .await
        .unwrap()
        .namespace(namespace);
    first.store("Consumer.m1").await.unwrap();
    assert!(second.contains("Consumer.m1").await.unwrap());
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang() {
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        RedisDeduplicationCache::connect("redis://127.0.0.1:1/", Duration::from_secs(60)),
    )
    .await
    .expect("connecting to a closed port must fail promptly");
    assert!(result.is_err());
}
