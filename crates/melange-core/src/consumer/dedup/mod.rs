use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::BoxError;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::RedisDeduplicationCache;

/// A boxed future returned by [`DeduplicationCache`] methods.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// Remembers which consumer completed which message, so a redelivered message (SQS is
/// at-least-once) does not run a completed handler twice.
///
/// Keys are `"<consumer name>.<message id>"`, as in Python Melange. The handler records a
/// key after the consumer succeeded and before the message is acknowledged, so a crash
/// between the two does not run the consumer again on redelivery.
///
/// The methods return boxed futures so a handler can hold any cache as a trait object.
pub trait DeduplicationCache: Send + Sync + 'static {
    /// Whether the key was recorded (and has not expired).
    fn contains<'a>(&'a self, key: &'a str) -> CacheFuture<'a, bool>;

    /// Records the key.
    fn store<'a>(&'a self, key: &'a str) -> CacheFuture<'a, ()>;
}

/// The longest time to live: a century, so "for ever" adds to the clock without overflow
/// (and is a number of seconds Redis takes).
pub(crate) const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A [`DeduplicationCache`] in process memory, with a time to live per key and a bound on
/// the number of keys (the oldest are forgotten first).
///
/// It only de-duplicates within one process; use a shared cache across replicas.
#[derive(Debug)]
pub struct InMemoryDeduplicationCache {
    ttl: Duration,
    capacity: usize,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    expiry: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl InMemoryDeduplicationCache {
    /// A cache that remembers each key for `ttl`, and at most `capacity` keys.
    /// `Duration::MAX`: keys are forgotten only to make room.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl: ttl.min(MAX_TTL),
            capacity: capacity.max(1),
            state: Mutex::new(CacheState::default()),
        }
    }

    /// Number of keys currently remembered (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.lock().expiry.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // The state stays consistent across a panic elsewhere: every update is one insert
        // or one remove, so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for InMemoryDeduplicationCache {
    /// One hour, 100,000 keys.
    fn default() -> Self {
        Self::new(Duration::from_secs(3600), 100_000)
    }
}

impl CacheState {
    fn evict(&mut self, now: Instant, capacity: usize) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now && self.order.len() <= capacity {
                break;
            }
            if let Some((expires, key)) = self.order.pop_front() {
                // Only forget the key if this entry is its latest record.
                if self.expiry.get(&key) == Some(&expires) {
                    self.expiry.remove(&key);
                }
            }
        }
    }
}

impl DeduplicationCache for InMemoryDeduplicationCache {
    fn contains<'a>(&'a self, key: &'a str) -> CacheFuture<'a, bool> {
        let now = Instant::now();
        let found = self
            .lock()
            .expiry
            .get(key)
            .is_some_and(|&expires| expires > now);
        Box::pin(std::future::ready(Ok(found)))
    }

    fn store<'a>(&'a self, key: &'a str) -> CacheFuture<'a, ()> {
        let now = Instant::now();
        let expires = now + self.ttl;
        let mut state = self.lock();
        state.expiry.insert(key.to_owned(), expires);
        state.order.push_back((expires, key.to_owned()));
        state.evict(now, self.capacity);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keys_expire_after_their_ttl() {
        let cache = InMemoryDeduplicationCache::new(Duration::from_secs(60), 10);
        cache.store("C.m1").await.unwrap();
        assert!(cache.contains("C.m1").await.unwrap());
        assert!(!cache.contains("C.m2").await.unwrap());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!cache.contains("C.m1").await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_ttl_of_for_ever_does_not_overflow_the_clock() {
        let cache = InMemoryDeduplicationCache::new(Duration::MAX, 2);
        cache.store("C.m1").await.unwrap();
        tokio::time::advance(Duration::from_secs(10 * 365 * 24 * 3600)).await;
        assert!(cache.contains("C.m1").await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_bounds_memory_oldest_first() {
        let cache = InMemoryDeduplicationCache::new(Duration::from_secs(60), 3);
        for i in 0..5 {
            cache.store(&format!("C.m{i}")).await.unwrap();
        }
        assert_eq!(cache.len(), 3);
        assert!(!cache.contains("C.m0").await.unwrap());
        assert!(!cache.contains("C.m1").await.unwrap());
        assert!(cache.contains("C.m4").await.unwrap());
    }
}
