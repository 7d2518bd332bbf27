//! Fuzz and property targets (proptest, stable Rust): the config parser and validator, the log
//! endpoints' query parameters, every `/proc`, cgroup and netlink parser, and the SSE decoder.
//! Each target feeds arbitrary input (never a panic, errors name what is wrong) and, where there
//! is an oracle, generated valid input whose parse must give back what was generated.
//!
//! Bounded by case count or time (see CONTRIBUTING.md's "Fuzzing" section):
//!
//! ```text
//! cargo test --release --test fuzz                                  # 1000 cases per target
//! PROPTEST_CASES=100000 cargo test --release --test fuzz -- --nocapture
//! LEAKWATCH_FUZZ_SECONDS=180 cargo test --release --test fuzz -- --nocapture --test-threads 1 sse::
//! ```
//!
//! Every finding is kept as a plain regression test next to the code it fixed.

mod config;
mod procfs;
mod query;
mod ring;
mod sse;
mod tail;

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Cases per target when neither `PROPTEST_CASES` nor `LEAKWATCH_FUZZ_SECONDS` is set: enough to
/// catch a regression in `tests/run.sh`, cheap enough for CI.
const DEFAULT_CASES: u32 = 1000;
/// Cases per round when running for a time budget.
const ROUND: u32 = 500;

/// How long or how many: `LEAKWATCH_FUZZ_SECONDS` (a time budget per target) wins over
/// `PROPTEST_CASES`.
fn budget() -> (Option<Duration>, u32) {
    let env = |name| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    match env("LEAKWATCH_FUZZ_SECONDS") {
        Some(secs) => (Some(Duration::from_secs(secs)), ROUND),
        None => (None, env("PROPTEST_CASES").map_or(DEFAULT_CASES, |n| u32::try_from(n).unwrap_or(u32::MAX))),
    }
}

/// Runs `test` on values of `strategy` for the configured budget; a failure panics with the
/// shrunk input. Prints the cases run and the time taken (`--nocapture` shows it).
pub fn check<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let (time, cases) = budget();
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 4096, ..Config::default() };
    let started = Instant::now();
    let mut total: u64 = 0;
    loop {
        // A runner runs its case count once: a fresh one (with a fresh random seed) per round.
        match TestRunner::new(config.clone()).run(&strategy, &test) {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => panic!("{name}: {reason}\nminimal failing input: {input:?}"),
            Err(TestError::Abort(reason)) => panic!("{name}: aborted: {reason}"),
        }
        total += u64::from(cases);
        match time {
            Some(t) if started.elapsed() < t => continue,
            _ => break,
        }
    }
    eprintln!("fuzz {name}: {total} cases in {:.1?}", started.elapsed());
}

/// `prop_assert!` for a condition with a message built only on failure.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(proptest::test_runner::TestCaseError::fail(format!($($fmt)+)));
        }
    };
}
