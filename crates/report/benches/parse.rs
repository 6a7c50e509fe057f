//! Parses the reference report many times and prints the time per parse (mean,
//! median, p99), next to baselines measured in the same run on the same text:
//! splitting it into lines, and one pass over every character (a full read).
//! The ratios say how much the parser costs relative to merely reading the
//! text, which stays meaningful on a slower or busier machine.
//!
//! Run with `cargo bench -p closeout-report` (release profile). The budget is
//! "well under 10 ms" per parse; the bench exits non-zero if the median is
//! above it. `PARSE_BENCH_ITERATIONS` overrides the number of parses.
//!
//! Then issue 13's figure: a 5 MB report (the sample repeated, as
//! `closeout-bench --only parse` makes it) parsed `PARSE_BENCH_LARGE_RUNS`
//! times (default 5), in MB/s beside splitting it into lines.
//! `PARSE_BENCH_ONLY_LARGE=1` parses only the large report once, for a
//! profiler (`valgrind --tool=callgrind`, which counts instructions and so
//! repeats on a busy machine).

use std::hint::black_box;
use std::time::{Duration, Instant};

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");
const BUDGET: Duration = Duration::from_millis(10);

struct Figures {
    mean: Duration,
    median: Duration,
    p99: Duration,
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Figures {
    // Warm up caches and the allocator.
    for _ in 0..iterations.min(20) {
        f();
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    let total: Duration = times.iter().sum();
    let count = u32::try_from(times.len().max(1)).unwrap_or(u32::MAX);
    let at = |q: f64| {
        // Nearest-rank percentile.
        let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len().max(1));
        times.get(rank - 1).copied().unwrap_or_default()
    };
    Figures {
        mean: total / count,
        median: at(0.5),
        p99: at(0.99),
    }
}

fn show(name: &str, f: &Figures) {
    println!(
        "{name:<28} mean {:>10.3} µs   median {:>10.3} µs   p99 {:>10.3} µs",
        f.mean.as_secs_f64() * 1e6,
        f.median.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6
    );
}

/// The sample repeated to at least `bytes`, as `closeout-bench` makes its
/// 5 MB report.
fn large_report(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + SAMPLE.len());
    while text.len() < bytes {
        text.push_str(SAMPLE);
        text.push('\n');
    }
    text
}

/// MB/s of parsing the 5 MB report against splitting it into lines.
fn large(runs: usize) {
    let text = large_report(5_000_000);
    let mb = text.len() as f64 / 1e6;
    let mut parse = Vec::new();
    let mut split = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        black_box(closeout_report::parse(black_box(&text)).is_ok());
        parse.push(mb / started.elapsed().as_secs_f64());
        let started = Instant::now();
        black_box(black_box(&text).lines().count());
        split.push(mb / started.elapsed().as_secs_f64());
    }
    let spread = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let (parse_min, parse_median, parse_max) = spread(&mut parse);
    let (_, split_median, _) = spread(&mut split);
    println!(
        "parse {mb:.1} MB (the sample repeated), {runs} runs: min {parse_min:.1}  median \
         {parse_median:.1}  max {parse_max:.1} MB/s;   str::lines median {split_median:.0} MB/s;   \
         ratio {:.3}",
        parse_median / split_median
    );
}

fn main() {
    if std::env::var_os("PARSE_BENCH_ONLY_LARGE").is_some() {
        let text = large_report(5_000_000);
        black_box(closeout_report::parse(black_box(&text)).is_ok());
        return;
    }
    let iterations: usize = std::env::var("PARSE_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    println!(
        "closeout-report parse bench: {} bytes, {} lines, {iterations} iterations",
        SAMPLE.len(),
        SAMPLE.lines().count()
    );

    let lines = measure(iterations, || {
        black_box(black_box(SAMPLE).lines().count());
    });
    let read = measure(iterations, || {
        let mut sum = 0u32;
        for c in black_box(SAMPLE).chars() {
            sum = sum.wrapping_add(c as u32);
        }
        black_box(sum);
    });
    let mut outcome = None;
    let parse = measure(iterations, || {
        outcome = Some(black_box(closeout_report::parse(black_box(SAMPLE))).is_ok());
    });
    let summary_report = closeout_report::parse(SAMPLE).ok();
    let render = measure(iterations, || {
        if let Some(report) = &summary_report {
            black_box(closeout_report::render_summary(black_box(report)));
        }
    });

    show("baseline: split into lines", &lines);
    show("baseline: read every char", &read);
    show("parse", &parse);
    show("render_summary", &render);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
    println!(
        "parse / split-into-lines: {:.1}x (median)   parse / read-every-char: {:.1}x (median)",
        ratio(parse.median, lines.median),
        ratio(parse.median, read.median)
    );
    println!(
        "budget {} ms per parse: median is {:.1}% of it",
        BUDGET.as_millis(),
        100.0 * ratio(parse.median, BUDGET)
    );
    let runs: usize = std::env::var("PARSE_BENCH_LARGE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    large(runs);
    if outcome != Some(true) {
        eprintln!("the reference report did not parse");
        std::process::exit(1);
    }
    if parse.median > BUDGET {
        eprintln!(
            "parse median {:?} is over the {:?} budget",
            parse.median, BUDGET
        );
        std::process::exit(1);
    }
}
