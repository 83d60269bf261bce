//! Integration tests, one binary.
// Tests state their expectations with unwrap and expect, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod conformance;
mod consumer;
mod engine;
mod engine_sqs;
mod examples;
// The forwarding half of the backend wrappers, shared with the benches.
#[path = "../support/forward.rs"]
mod forward;
mod listener;
#[cfg(feature = "pickle")]
mod pickle;
mod python_interop;
#[cfg(feature = "redis")]
mod redis;
mod reliability;
mod sqs;
mod support;
mod ui;
