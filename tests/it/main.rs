//! Integration tests, one binary.
#[cfg(feature = "redis")]
mod redis;
