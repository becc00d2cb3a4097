//! A load generator over the query module: many questions, several threads,
//! and the figures an administrator measures a deployment by (queries per
//! second and latency percentiles).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::QueryType;
use crate::query::Query;
use crate::report::{self, Outcome};

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub qtype: QueryType,
    pub address: Vec<u8>,
    pub ip: Vec<u8>,
}

/// How much load: every job `repeat` times, on `concurrency` threads.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub repeat: u64,
    pub concurrency: usize,
}

/// Where a run is, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// Latency percentiles (nearest rank) of the answered and failed queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latencies {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    /// From unsorted samples; all zero when there are none.
    pub fn from_samples(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        let rank = |p: u64| -> Duration {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let n = samples.len() as u64;
            // Nearest rank: the smallest sample with at least p% at or below it.
            let k = (p * n).div_ceil(100).clamp(1, n);
            samples[(k - 1) as usize]
        };
        Latencies {
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub queries: u64,
    pub errors: u64,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// How many answers of each outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// The first error, for the message (errors never carry secrets).
    pub first_error: Option<String>,
}

impl LoadReport {
    pub fn queries_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.queries as f64 / secs
        } else {
            0.0
        }
    }
}

/// What one thread saw; merged at the end.
#[derive(Default)]
struct Tally {
    samples: Vec<Duration>,
    outcomes: BTreeMap<Outcome, u64>,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, mut other: Tally) {
        self.samples.append(&mut other.samples);
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Ask every job `repeat` times, spread over `concurrency` threads.
/// `progress` is called about once a second from the calling thread while
/// the run lasts (not at all for runs under a second).
pub fn run(
    query: &Query,
    jobs: &[Job],
    opts: LoadOptions,
    mut progress: impl FnMut(Progress),
) -> LoadReport {
    let total = opts.repeat.saturating_mul(jobs.len() as u64);
    let threads = opts.concurrency.max(1);
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let running = AtomicUsize::new(threads);
    let merged = Mutex::new(Tally::default());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let job = &jobs[(i % jobs.len() as u64) as usize];
                    let t0 = Instant::now();
                    let result = query.ask(job.qtype, &job.address, &job.ip);
                    tally.samples.push(t0.elapsed());
                    let outcome = report::outcome(job.qtype, &job.address, &result);
                    *tally.outcomes.entry(outcome).or_default() += 1;
                    if let Err(e) = &result {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tally.first_error.get_or_insert_with(|| {
                            format!(
                                "{}: {}",
                                String::from_utf8_lossy(&job.address),
                                report::error_text(e)
                            )
                        });
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                merged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .merge(tally);
                running.fetch_sub(1, Ordering::Release);
            });
        }
        let mut next_report = Duration::from_secs(1);
        while running.load(Ordering::Acquire) > 0 {
            std::thread::sleep(Duration::from_millis(20));
            let elapsed = started.elapsed();
            if elapsed >= next_report && running.load(Ordering::Acquire) > 0 {
                progress(Progress {
                    done: done.load(Ordering::Relaxed),
                    total,
                    errors: errors.load(Ordering::Relaxed),
                    elapsed,
                });
                next_report += Duration::from_secs(1);
            }
        }
    });
    let elapsed = started.elapsed();
    let tally = merged.into_inner().unwrap_or_else(|e| e.into_inner());
    LoadReport {
        queries: tally.samples.len() as u64,
        errors: errors.into_inner(),
        concurrency: threads,
        elapsed,
        latencies: Latencies::from_samples(tally.samples),
        outcomes: tally.outcomes,
        first_error: tally.first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |n: u64| Duration::from_millis(n);
        let l = Latencies::from_samples((1..=100).rev().map(ms).collect());
        assert_eq!(
            (l.p50, l.p90, l.p99, l.max),
            (ms(50), ms(90), ms(99), ms(100))
        );
        let l = Latencies::from_samples(vec![ms(7)]);
        assert_eq!((l.p50, l.p99, l.max), (ms(7), ms(7), ms(7)));
        assert_eq!(Latencies::from_samples(vec![]), Latencies::default());
    }
}
