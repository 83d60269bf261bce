//! The in-process benchmarks of `pipeline` (see there for what runs and how to select it),
//! with mimalloc as the global allocator instead of the system's (glibc's) malloc.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The forwarding half of the latency model's backend, shared with the tests.
#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/forward.rs"]
mod forward;
#[path = "support/inprocess.rs"]
mod inprocess;

fn main() {
    inprocess::run("mimalloc");
}
