//! # melange
//!
//! Typed publish/subscribe messaging for Rust services over Amazon SQS + SNS, wire-compatible
//! with the Python library Melange.
pub use melange_core::*;

#[cfg(feature = "macros")]
#[doc(inline)]
pub use melange_macros::{Message, listener};

/// The Amazon SQS + SNS backend ([`sqs::SqsBackend`], [`sqs::AwsBackend`],
/// [`sqs::ElasticMqBackend`]), wire-compatible with Python Melange (feature `sqs`, on by
/// default).
#[cfg(feature = "sqs")]
pub use melange_sqs as sqs;
