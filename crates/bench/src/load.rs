//! Driving a call at a fixed number in flight and summarising what it
//! took: calls per second, p50 and p99 latency. Also the repeat-and-
//! interleave of a figure with its ceiling, so the ratio of the two is
//! measured under the same noise (min / median / max over the runs).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one measured run did.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// Operations completed.
    pub ops: usize,
    /// Operations per second.
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Stats {
    /// Summarises `latencies` of operations completed in `elapsed`.
    pub fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
        latencies.sort_unstable();
        let ops = latencies.len();
        Stats {
            ops,
            rate: ops as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
        }
    }

    /// A run of `ops` operations of `bytes_each` that took `elapsed`, with
    /// no per-operation latencies (the rate is in operations per second).
    pub fn throughput(ops: usize, elapsed: Duration) -> Stats {
        let each = elapsed / u32::try_from(ops.max(1)).unwrap_or(u32::MAX);
        Stats {
            ops,
            rate: ops as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: each,
            p99: each,
        }
    }
}

/// The `q` quantile of sorted `values` (zero when empty).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs `total` calls of `call`, `in_flight` at a time; worker `w` makes
/// calls `w, w + in_flight, …`. The first error stops the run.
pub async fn run<F, Fut>(in_flight: usize, total: usize, call: F) -> anyhow::Result<Stats>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let in_flight = in_flight.max(1);
    let call = Arc::new(call);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(in_flight);
    for worker in 0..in_flight {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker;
            while i < total {
                let t = Instant::now();
                call(i).await?;
                latencies.push(t.elapsed());
                i += in_flight;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::with_capacity(total);
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(Stats::of(all, started.elapsed()))
}

/// Medians and the spread of the ratio over interleaved runs of a figure
/// and its ceiling.
pub struct Compared {
    pub figure: Stats,
    pub ceiling: Stats,
    /// (min, median, max) of figure rate / ceiling rate.
    pub ratio: (f64, f64, f64),
    pub runs: usize,
}

/// The run with the median rate.
fn median_run(mut runs: Vec<Stats>) -> Stats {
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    runs[runs.len() / 2]
}

/// Summarises pairs of (figure, ceiling) runs made one after the other.
pub fn compare(pairs: Vec<(Stats, Stats)>) -> Compared {
    let runs = pairs.len().max(1);
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|(f, c)| f.rate / c.rate.max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let (figures, ceilings): (Vec<Stats>, Vec<Stats>) = pairs.into_iter().unzip();
    let empty = Stats::throughput(0, Duration::from_secs(1));
    Compared {
        figure: if figures.is_empty() {
            empty
        } else {
            median_run(figures)
        },
        ceiling: if ceilings.is_empty() {
            empty
        } else {
            median_run(ceilings)
        },
        ratio: match ratios.as_slice() {
            [] => (0.0, 0.0, 0.0),
            r => (r[0], r[r.len() / 2], r[r.len() - 1]),
        },
        runs,
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_ratios() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        let s = |rate| Stats {
            ops: 1,
            rate,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
        };
        let c = compare(vec![(s(1.0), s(4.0)), (s(3.0), s(4.0)), (s(2.0), s(2.0))]);
        assert_eq!(c.ratio, (0.25, 0.75, 1.0));
        assert_eq!(c.figure.rate, 2.0);
        assert_eq!(c.ceiling.rate, 4.0);
    }

    #[tokio::test]
    async fn runs_every_call_once() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let stats = run(4, 10, move |i| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push(i);
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(stats.ops, 10);
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
}
