//! Integration tests, one binary.
#[cfg(feature = "redis")]
mod redis;
mod listener;
mod ui;
