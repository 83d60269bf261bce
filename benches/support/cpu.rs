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
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}
