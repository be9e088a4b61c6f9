//! How long a lesson's experiment or exercise would take, estimated before anything runs, so `lint` can refuse one
//! that would run for hours (or years) instead of letting a learner press `r` on it.
//!
//! The estimate is the time of one sequential run: tasks × a per-task cost for the workload and its size. The
//! per-unit costs were measured with the release build on a 2-core x86-64 VM (2025) and rounded down, so the
//! estimate is a lower bound on a machine of that class: a refused block would really take at least that long.
//! A sequential run is what every comparison includes (and what `lint --verify` and exercise checks measure
//! against), so it bounds what pressing `c` or `x` costs.

use crate::experiment::Workload;
use crate::workload::{LOG_LINES_PER_READ, LOG_READ_MS};

/// The longest sequential run a lesson may ask for.
pub(crate) const MAX_SEQUENTIAL_NS: f64 = 10.0 * 60.0 * 1e9;

// Nanoseconds per unit of work, rounded down from measurements (fib:32 1.8 ns a call, squares 0.57 ns and count
// 0.41 ns an item, pi 4.4 ns a sample, primes 1.7 ns a unit of n^1.5 / ln n, logs 56 ns a line, tiny 12 ns a task).
const NS_PER_FIB_CALL: f64 = 1.5;
const NS_PER_SQUARE: f64 = 0.4;
const NS_PER_COUNT: f64 = 0.3;
const NS_PER_PI_SAMPLE: f64 = 3.0;
const NS_PER_PRIME_UNIT: f64 = 1.2;
const NS_PER_LOG_LINE: f64 = 40.0;
const NS_PER_TINY_TASK: f64 = 5.0;

/// Calls made by the naive recursive `fib(n)`: 2·fib(n+1) − 1.
fn fib_calls(n: u32) -> f64 {
    let (mut a, mut b) = (0f64, 1f64);
    for _ in 0..=n {
        (a, b) = (b, a + b);
    }
    2.0 * a - 1.0
}

/// Nanoseconds one task of `workload` takes, whose index picks `fib`'s argument in a range.
fn fib_range_ns(lo: u32, hi: u32, tasks: u64) -> f64 {
    let span = u64::from(hi - lo + 1);
    let per_cycle: f64 = (lo..=hi).map(fib_calls).sum();
    let rest: f64 = (0..(tasks % span) as u32).map(|i| fib_calls(lo + i)).sum();
    ((tasks / span) as f64 * per_cycle + rest) * NS_PER_FIB_CALL
}

/// Estimated nanoseconds of one sequential run of `tasks` tasks of `workload` (a lower bound, see the module doc).
pub(crate) fn sequential_ns(workload: Workload, tasks: u64) -> f64 {
    let t = tasks as f64;
    match workload {
        Workload::Fib { lo, hi } => fib_range_ns(lo, hi, tasks),
        Workload::Squares(n) => t * n as f64 * NS_PER_SQUARE,
        Workload::Count(n) => t * n as f64 * NS_PER_COUNT,
        Workload::Pi(n) => t * n as f64 * NS_PER_PI_SAMPLE,
        // Trial division up to sqrt(k) for the primes, which dominate: about n^1.5 / ln n divisions in all.
        Workload::Primes(n) => {
            let n = n as f64;
            t * (n + n.powf(1.5) / n.ln().max(1.0)) * NS_PER_PRIME_UNIT
        }
        Workload::Tiny => t * NS_PER_TINY_TASK,
        Workload::Sleep(ms) => t * ms as f64 * 1e6,
        Workload::Logs(n) => {
            let reads = n.div_ceil(LOG_LINES_PER_READ) as f64;
            t * (n as f64 * NS_PER_LOG_LINE + reads * LOG_READ_MS as f64 * 1e6)
        }
    }
}

/// A duration for messages: `850 ms`, `1.3 s`, `42 s`, `3.5 minutes`, `2.1 hours`, `4 days`, `12 years`.
pub(crate) fn human(ns: f64) -> String {
    let tenths = |v: f64, unit: &str| {
        let t = format!("{v:.1}");
        format!("{} {unit}", t.strip_suffix(".0").unwrap_or(&t))
    };
    let s = ns / 1e9;
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 10.0 {
        tenths(s, "s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 2.0 * 3600.0 {
        tenths(s / 60.0, "minutes")
    } else if s < 2.0 * 86_400.0 {
        tenths(s / 3600.0, "hours")
    } else if s < 2.0 * 365.0 * 86_400.0 {
        tenths(s / 86_400.0, "days")
    } else {
        format!("{:.0} years", s / (365.25 * 86_400.0))
    }
}

/// Refuses a run whose sequential estimate is over the limit; `what` is "experiment" or "exercise".
pub(crate) fn check(what: &str, workload: Workload, tasks: u64) -> Result<(), String> {
    let ns = sequential_ns(workload, tasks);
    if ns <= MAX_SEQUENTIAL_NS {
        return Ok(());
    }
    let per_task = ns / tasks.max(1) as f64;
    Err(format!(
        "this {what} would take at least {} to run sequentially ({workload} × {tasks}, about {} a task on a 2-core \
         x86-64 machine); the limit is {}: use fewer tasks or a smaller size",
        human(ns),
        human(per_task),
        human(MAX_SEQUENTIAL_NS)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Workload {
        s.parse().unwrap()
    }

    #[test]
    fn fib_counts_its_calls() {
        assert_eq!(fib_calls(0), 1.0);
        assert_eq!(fib_calls(1), 1.0);
        assert_eq!(fib_calls(2), 3.0);
        assert_eq!(fib_calls(5), 15.0);
        // A range cycles through its sizes: 3 tasks of fib:1..2 are fib(1), fib(2), fib(1).
        assert_eq!(fib_range_ns(1, 2, 3), 5.0 * NS_PER_FIB_CALL);
    }

    #[test]
    fn estimates_grow_with_size_and_tasks_and_sleep_is_its_wall_time() {
        assert!(sequential_ns(w("fib:42"), 1) > 1e9, "fib:42 takes over a second");
        assert!(sequential_ns(w("fib:33"), 8) > sequential_ns(w("fib:32"), 8));
        assert_eq!(sequential_ns(w("sleep:100"), 8), 800.0 * 1e6);
        assert!(sequential_ns(w("primes:50000000"), 1) > sequential_ns(w("primes:200000"), 100));
        assert!(sequential_ns(w("logs:100000"), 1) >= 2.0 * 1e6, "two simulated reads of 1 ms");
    }

    #[test]
    fn runs_for_years_are_refused_with_the_estimate_and_the_limit() {
        let e = check("experiment", w("sleep:60000"), 10_000_000).unwrap_err();
        assert!(e.starts_with("this experiment would take at least 19 years to run sequentially"), "{e}");
        assert!(e.contains("(sleep:60000 × 10000000, about 60 s a task"), "{e}");
        assert!(e.ends_with("the limit is 10 minutes: use fewer tasks or a smaller size"), "{e}");
        assert!(check("exercise", w("fib:42"), 10_000).unwrap_err().contains("about 1.3 s a task"));
        assert!(check("experiment", w("fib:35"), 8).is_ok());
        assert!(check("experiment", w("tiny"), 10_000_000).is_ok());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(0.85e9), "850 ms");
        assert_eq!(human(42e9), "42 s");
        assert_eq!(human(210e9), "3.5 minutes");
        assert_eq!(human(3.0 * 86_400e9), "3 days");
        assert_eq!(human(5.0 * 3600e9), "5 hours");
    }
}
