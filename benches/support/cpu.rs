//! CPU time of the whole bench process, shared by the benches through `#[path]`.

/// CPU time of this process's threads so far, in seconds, with nanosecond precision: the sum
/// of `/proc/self/task/*/schedstat` (time on a CPU; `/proc/self/stat` counts 10 ms ticks, too
/// coarse for short runs, and `getrusage` would need `unsafe`). Threads that already exited
/// are not counted: the runtime's workers live for the whole run. Linux only, 0 elsewhere.
pub fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| on_cpu_ns(&task.path()))
        .sum();
    nanos as f64 / 1e9
}

/// CPU time of the process's main thread so far, in seconds (see [`cpu_seconds`]). A bench
/// that runs its runtime with `block_on` from `main` does that future's work on this thread,
/// and its spawned tasks' on the runtime's workers: the two sides of a pipeline, apart.
#[allow(dead_code, reason = "the SQS bench does not use it")]
pub fn main_thread_cpu_seconds() -> f64 {
    let main = std::path::Path::new("/proc/self/task").join(std::process::id().to_string());
    on_cpu_ns(&main).map_or(0.0, |nanos| nanos as f64 / 1e9)
}

/// The first field of a thread's `schedstat`: nanoseconds on a CPU.
fn on_cpu_ns(task: &std::path::Path) -> Option<u64> {
    let stat = std::fs::read_to_string(task.join("schedstat")).ok()?;
    stat.split_whitespace().next()?.parse().ok()
}
