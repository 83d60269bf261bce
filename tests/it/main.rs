//! Integration tests, one binary.
#[cfg(feature = "redis")]
mod redis;
mod listener;
#[cfg(feature = "pickle")]
mod pickle;
mod ui;
mod conformance;
mod support;
mod sqs;
mod python_interop;
