use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{CacheFuture, DeduplicationCache};

/// A [`DeduplicationCache`] in Redis, shared by every replica of a consumer: a message
/// redelivered to another process is still recognised. Keys expire after the time to live.
///
/// ```no_run
/// # async fn run() -> Result<(), redis::RedisError> {
/// use std::time::Duration;
/// use melange_core::consumer::RedisDeduplicationCache;
///
/// let cache = RedisDeduplicationCache::connect("redis://127.0.0.1:6379/", Duration::from_secs(3600))
///     .await?
///     .namespace("payments");
/// # let _ = cache;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisDeduplicationCache {
    connection: ConnectionManager,
    ttl_seconds: u64,
    namespace: String,
}

impl std::fmt::Debug for RedisDeduplicationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDeduplicationCache")
            .field("ttl_seconds", &self.ttl_seconds)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisDeduplicationCache {
    /// Connects to the Redis server at `url` (`redis://host:port/db`); the connection is
    /// re-established by itself if it drops. Each command gives up after a few seconds, so
    /// an unreachable server slows a consumer down (the message is then processed without
    /// de-duplication, and a warning logged) but never stalls it.
    pub async fn connect(url: &str, ttl: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            ttl_seconds: ttl.min(super::MAX_TTL).as_secs().max(1),
            namespace: "melange".to_owned(),
        })
    }

    /// Prefixes every key with `namespace:` (`melange:` by default), to share a Redis
    /// database with other applications.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.namespace)
    }
}

impl DeduplicationCache for RedisDeduplicationCache {
    fn contains<'a>(&'a self, key: &'a str) -> CacheFuture<'a, bool> {
        let mut connection = self.connection.clone();
        let key = self.key(key);
        Box::pin(async move { Ok(connection.exists::<_, bool>(key).await?) })
    }

    fn store<'a>(&'a self, key: &'a str) -> CacheFuture<'a, ()> {
        let mut connection = self.connection.clone();
        let key = self.key(key);
        let ttl = self.ttl_seconds;
        Box::pin(async move { Ok(connection.set_ex::<_, _, ()>(key, 1u8, ttl).await?) })
    }
}
