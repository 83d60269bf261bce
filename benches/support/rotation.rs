//! Contenders timed pass by pass in rotation, for ratios a shared machine does not skew.
//!
//! Criterion measures each benchmark for seconds, one after the other; on a shared machine
//! the same code's time moves ±20% between such runs, and a ratio of two means inherits that.
//! Here every round runs every contender once (which goes first rotates too), so a drift of
//! the machine's speed hits all of them alike, and a ratio is the median of the per-round
//! ratios. Shared by the benches through `#[path]`.

use std::time::Instant;

/// Runs each side once per round, `rounds` times after a tenth as many rounds of warm-up;
/// returns the nanoseconds of every side's passes, round by round.
pub fn rotate(sides: &mut [&mut dyn FnMut()], rounds: usize) -> Vec<Vec<f64>> {
    let count = sides.len();
    let warm_up = rounds / 10;
    let mut times = vec![Vec::with_capacity(rounds); count];
    let mut took = vec![0.0; count];
    for round in 0..warm_up + rounds {
        for step in 0..count {
            let side = (round + step) % count;
            let start = Instant::now();
            sides[side]();
            took[side] = start.elapsed().as_nanos() as f64;
        }
        if round >= warm_up {
            for (side, time) in took.iter().enumerate() {
                times[side].push(*time);
            }
        }
    }
    times
}

/// The median of the per-round ratios of side `of`'s time to side `to`'s.
pub fn median_ratio(times: &[Vec<f64>], of: usize, to: usize) -> f64 {
    let mut ratios: Vec<f64> = times[of]
        .iter()
        .zip(&times[to])
        .map(|(a, b)| a / b)
        .collect();
    median(&mut ratios)
}

/// The median pass of `side`, divided by the operations a pass makes.
pub fn per_operation(times: &[Vec<f64>], side: usize, operations: usize) -> f64 {
    median(&mut times[side].clone()) / operations as f64
}

/// Prints the JSON line `bench/run` reads for a micro benchmark timed against its
/// `serde_json` floor (side 0: melange, side 1: the floor; `operations` per pass).
pub fn print_micro(name: &str, times: &[Vec<f64>], operations: usize) {
    println!(
        "{{\"bench\":\"micro_paired\",\"name\":\"{name}\",\"rounds\":{},\"ratio\":{:.4},\
         \"melange_ns\":{:.1},\"serde_json_ns\":{:.1}}}",
        times[0].len(),
        median_ratio(times, 0, 1),
        per_operation(times, 0, operations),
        per_operation(times, 1, operations),
    );
}

/// A bench's `main`: `MELANGE_BENCH=paired` runs `paired`, anything else `criterion`.
pub fn paired_or(paired: fn(), criterion: fn()) {
    if std::env::var("MELANGE_BENCH").as_deref() == Ok("paired") {
        paired();
    } else {
        criterion();
    }
}

/// `MELANGE_BENCH_ROUNDS`, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("MELANGE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
