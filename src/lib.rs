//! # melange
//!
//! Typed publish/subscribe messaging for Rust services over Amazon SQS + SNS, wire-compatible
//! with the Python library Melange.
pub use melange_core::*;

#[cfg(feature = "macros")]
#[doc(inline)]
pub use melange_macros::{Message, listener};
