//! The reliability and fault-injection suite (issue 6): every scenario publishes numbered
//! messages, runs consumers through a fault, and accounts for every message. Results are in
//! RELIABILITY.md; each scenario prints its row as a `RELIABILITY |...|` line.

mod fuzz_corpus;
mod harness;
mod memory;
mod process;
mod props;
mod security;
mod sqs;
mod sqs_poison;
