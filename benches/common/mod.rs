//! What every benchmark here shares: the criterion settings, and the interleaved ratio
//! report that sets each of our figures beside the physical limit measured in the same run.
//!
//! Criterion's own numbers come one operation after another, minutes apart, so a machine
//! that speeds up or slows down (turbo, another process) moves them differently. The ratio
//! report instead runs every operation in turn, round after round, and keeps the median
//! rate of each: drift hits them all alike and the ratios stay honest.

// Each bench binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use criterion::Criterion;

/// The criterion settings of every bench: 1 s warm-up, 3 s of measurement, then whatever
/// the command line says (`-- --quick`, a filter, ...).
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args()
}

/// The median of `v` (the upper one for an even count). `v` must not be empty.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Calls of `op` per second over at least `window`, calling it `batch` times between
/// looks at the clock (so that reading the clock costs nothing next to the work).
pub(crate) fn rate(window: Duration, batch: u64, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < window {
        for _ in 0..batch {
            op();
        }
        n += batch;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Runs each of `count` operations for `window`, in turn, `rounds` times (`run(i)` performs
/// operation `i` once), and returns the median rate (calls per second) of each, in order.
pub(crate) fn interleaved(
    rounds: usize,
    window: Duration,
    batch: u64,
    count: usize,
    mut run: impl FnMut(usize),
) -> Vec<f64> {
    let mut rates = vec![Vec::with_capacity(rounds); count];
    for _ in 0..rounds {
        for (i, rates) in rates.iter_mut().enumerate() {
            rates.push(rate(window, batch, || run(i)));
        }
    }
    rates.into_iter().map(median).collect()
}
