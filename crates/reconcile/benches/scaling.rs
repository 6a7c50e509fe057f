//! Reconciliation as an organisation's history grows: `propose` with the
//! indexed search against the exhaustive one (every item against every
//! clause, new finding and rival: the matcher before issue 13), in the same
//! process on the same inputs, checking that both give the same proposals.
//!
//! - `national`: the sample PEEL report against its own findings as open
//!   items of 1 … 9 earlier years (what `closeout-bench --national` makes
//!   the tracker do for each force's tenth report);
//! - `distinct`: the sample against N different open items (12 words each
//!   from the report's vocabulary, so they share words with it and each
//!   other as real items do);
//! - `repeated`: the `--million` shape: the sample with M extra areas for
//!   improvement worded alike ("The force should review arrangement P-K
//!   for victims of crime …"; the numbers are not terms), against N open
//!   items worded the same way.
//!
//! `cargo bench -p closeout-reconcile --bench scaling` (add `-- --quick`
//! for smaller sizes).

// The later inspection as the tracker builds it from the report's events,
// the same way the evaluation tests read the sample.
#[path = "../tests/common/mod.rs"]
mod common;

use closeout_reconcile::{
    ItemKind, LaterInspection, MatchConfig, OpenItem, Proposal, Search, propose_with,
};
use std::time::{Duration, Instant};

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let later = common::later_from_parser(SAMPLE);
    println!(
        "sample: {} follow-ups, {} findings, {} KB of text",
        later.follow_ups.len(),
        later.findings.len(),
        later.source_text.len() / 1024
    );
    println!(
        "{:<40} {:>12} {:>12} {:>8}",
        "case", "indexed", "exhaustive", "ratio"
    );

    for years in [1, 9] {
        let items = national_items(&later, years);
        compare(
            &format!("national, {} items", items.len()),
            &items,
            &later,
            true,
        );
    }

    let sizes: &[(usize, bool)] = if quick {
        &[(1_000, true), (10_000, false)]
    } else {
        &[
            (1_000, true),
            (4_000, true),
            (100_000, false),
            (1_000_000, false),
        ]
    };
    let vocabulary = vocabulary(SAMPLE);
    for &(n, exhaustive) in sizes {
        let items = distinct_items(&vocabulary, n);
        compare(&format!("distinct, {n} items"), &items, &later, exhaustive);
    }

    let shapes: &[(usize, usize, bool)] = if quick {
        &[(200, 200, true), (10_000, 4_000, false)]
    } else {
        &[(300, 300, true), (960_000, 40_000, false)]
    };
    for &(n, m, exhaustive) in shapes {
        let later = common::later_from_parser(&repeated_report(m));
        let items = repeated_items(n);
        compare(
            &format!("repeated, {n} items, {m} findings"),
            &items,
            &later,
            exhaustive,
        );
    }
}

fn compare(name: &str, items: &[OpenItem], later: &LaterInspection, exhaustive: bool) {
    let config = MatchConfig::default();
    let (indexed, fast) = timed(|| propose_with(items, later, &config, Search::Indexed));
    if !exhaustive {
        println!("{name:<40} {:>12} {:>12} {:>8}", show(fast), "not run", "—");
        return;
    }
    let (reference, slow) = timed(|| propose_with(items, later, &config, Search::Exhaustive));
    let same = indexed == reference;
    println!(
        "{name:<40} {:>12} {:>12} {:>8.3}{}",
        show(fast),
        show(slow),
        fast.as_secs_f64() / slow.as_secs_f64().max(1e-9),
        if same { "" } else { "  DIFFERENT PROPOSALS" }
    );
    if !same {
        std::process::exit(1);
    }
}

/// The best of up to 5 runs of at most ~2 s together.
fn timed(f: impl Fn() -> Vec<Proposal>) -> (Vec<Proposal>, Duration) {
    let started = Instant::now();
    let out = f();
    let mut best = started.elapsed();
    for _ in 0..4 {
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
        let t = Instant::now();
        let again = f();
        best = best.min(t.elapsed());
        drop(again);
    }
    (out, best)
}

fn show(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// The later report's findings as open items of `years` earlier years.
fn national_items(later: &LaterInspection, years: usize) -> Vec<OpenItem> {
    let mut items = Vec::new();
    for y in 0..years {
        let period = format!("{}/{:02}", 2009 + y, (10 + y) % 100);
        for f in later
            .findings
            .iter()
            .filter(|f| f.kind != ItemKind::NoteworthyPractice)
        {
            items.push(OpenItem {
                id: format!("{y}-{}", f.id),
                kind: f.kind,
                pillar: f.pillar.clone(),
                question: f.question.clone(),
                text: f.text.clone(),
                inspection_period: period.clone(),
                ..Default::default()
            });
        }
    }
    items
}

/// Words of five letters or more of the report, each once.
fn vocabulary(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 5)
        .map(str::to_ascii_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words
}

fn distinct_items(vocabulary: &[String], n: usize) -> Vec<OpenItem> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let questions = ["Investigating crime", "Protecting vulnerable people", ""];
    (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..12)
                .map(|_| vocabulary[(next() % vocabulary.len() as u64) as usize].as_str())
                .collect();
            OpenItem {
                id: format!("d{i}"),
                kind: ItemKind::AreaForImprovement,
                pillar: "Effectiveness".into(),
                question: questions[i % questions.len()].into(),
                text: format!("The force should {}.", words.join(" ")),
                inspection_period: format!("{}", 2010 + i % 8),
                ..Default::default()
            }
        })
        .collect()
}

fn repeated_line(part: usize, k: usize) -> String {
    format!(
        "The force should review arrangement {part}-{k} for victims of crime and report on its \
         progress."
    )
}

fn repeated_items(n: usize) -> Vec<OpenItem> {
    (0..n)
        .map(|k| OpenItem {
            id: format!("r{k}"),
            kind: ItemKind::AreaForImprovement,
            pillar: "Effectiveness".into(),
            question: "Investigating crime".into(),
            text: repeated_line(2, k),
            inspection_period: "2018/19".into(),
            ..Default::default()
        })
        .collect()
}

/// The sample with `extra` areas for improvement added to its first list,
/// as `closeout-bench --million` makes them.
fn repeated_report(extra: usize) -> String {
    const FIRST_AFI: &str = "- The force needs to develop a cyber strategy and delivery plan to \
                             support criminal investigations and safeguard victims.\n";
    let mut bullets = String::from(FIRST_AFI);
    for k in 0..extra {
        bullets.push_str(&format!("- {}\n", repeated_line(1, k)));
    }
    SAMPLE.replacen(FIRST_AFI, &bullets, 1)
}
