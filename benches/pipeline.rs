//! In-process benchmarks, run by `bench/run` (not a criterion harness; `cargo bench --bench
//! pipeline` runs a short version of everything). Prints one JSON object per line.
//!
//! `MELANGE_BENCH` selects what runs (comma-separated; all when unset):
//! - `pipeline`: publish → `InMemoryBackend` → consumer engine (`SimpleConsumerHandler`) →
//!   handler → acknowledge, at concurrency (`max_in_flight`) 1, 8 and 64, against the same
//!   messages through a bounded tokio mpsc channel decoded with `serde_json`. Both have at most
//!   `WINDOW` messages between publisher and handler. Throughput and publish-to-handler latency.
//! - `floors`: melange's pipeline at concurrency 8 against the channel and two diagnostic
//!   floors (`direct` and `leased`, below), interleaved; where melange's cost lies between
//!   what any design that can redeliver pays and what it pays itself.
//! - `latency`: the in-memory backend behind a wrapper that sleeps `MELANGE_BENCH_LATENCY_MS`
//!   (20) per receive and per delete call; throughput against `receivers × 10 / latency`.
//! - `rss_idle`, `rss_backlog`: peak RSS (VmHWM) of a consumer idle on an empty queue, or
//!   draining a backlog of `MELANGE_BENCH_BACKLOG` (100,000) messages. Run one per process.
//! - `stages`: on one thread, the CPU per message of each part of the pipeline: `serde_json`
//!   encode and decode (what the channel does), publishing, receiving and acknowledging
//!   through the backend alone, and the whole pipeline at concurrency 8, melange's (the rest
//!   of it is the consumer engine, decoding and the handler) and the channel's; where
//!   melange's cost per message goes (`MELANGE_BENCH_ROUNDS`, 5, rounds).
//!
//! `MELANGE_BENCH_N` sets the messages per pipeline run (200,000; 20,000 when unset),
//! `MELANGE_BENCH_ROUNDS` the interleaved rounds (9; 1 when unset) and
//! `MELANGE_BENCH_CONCURRENCY` the concurrency settings (`1,8,64`).
//! `MELANGE_BENCH_RUNTIME=current_thread` runs everything on one thread, and
//! `MELANGE_BENCH_WORKERS` sets the multi-threaded runtime's workers (2; the publisher runs
//! on the main thread beside them). `MELANGE_BENCH_CONTENDER=melange` (or `channel`) runs one
//! contender alone (for profiling), and so can the two diagnostic contenders of `floors`:
//! `direct` (melange's publisher and in-memory backend, consumed by a hand-written receive,
//! decode, acknowledge loop instead of the engine) and `leased` (the smallest at-least-once
//! queue: a mutex, a ready queue and an in-flight table, batches of ten; what this machine
//! allows any design that can redeliver).
//!
//! `pipeline_mimalloc` runs the same with mimalloc as the global allocator: under glibc's
//! malloc, memory freed on the consumer's thread and reused on the publisher's costs the
//! bare channel about half its speed on some machines, which flatters the ratio.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

// The forwarding half of the latency model's backend, shared with the tests.
#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/forward.rs"]
mod forward;
#[path = "support/inprocess.rs"]
mod inprocess;

fn main() {
    inprocess::run("system");
}
