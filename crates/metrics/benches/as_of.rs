//! `as_of` answers at a history of a few hundred thousand events: from
//! the nearest checkpoint and the dated deltas between it and the day, as
//! the service answers (`crate::dated`: the checkpoint's days-to-close
//! histograms in place of its closings), beside the same read taking the
//! checkpoint's closings (as it answered before the histograms; runs
//! alternated with the first), summing every dated delta up to the day and
//! folding the stored history (`store::load_history`), in the same run on
//! the same database, with the answers checked equal.
//!
//! The history: 87 organisations with ten inspections each, 1,000 items
//! each and `CLOSEOUT_BENCH_ITEMS` (default 15,000) in force00 (about
//! 270,000 events); every item gets a status change recorded later, every
//! third is closed by a verification (every ninth back-dated by an
//! effective date, every ninth closed by the next inspection), and each
//! organisation's reports arrive after its items, so every item is
//! recomputed when its report's date becomes known. `CLOSEOUT_BENCH_RUNS`
//! (default 100, so that the 99th percentile is a sample's) sets the runs
//! of each checkpointed read; every delta and the fold run three times.
//!
//! `cargo bench -p closeout-metrics --bench as_of`. Needs the development
//! PostgreSQL. `CLOSEOUT_BENCH_KEEP=1` keeps the database (its name is
//! printed); `CLOSEOUT_BENCH_DATABASE=<name>` reads a kept one again
//! (migrated to this build's schema) without applying the history.

use chrono::NaiveDate;
use closeout_bus::Payload;
use closeout_bus::consumer::BatchHandler;
use closeout_metrics::consume::Projector;
use closeout_metrics::measure_as_of as measure;
use closeout_proto::{self as pb, EventEnvelope};
use closeout_testkit::TestDatabase;
use std::time::{Duration, Instant};
use uuid::Uuid;

const ORGANISATIONS: usize = 87;

fn envelope(org: &str, aggregate: &str, version: u64, at: i64, payload: Payload) -> EventEnvelope {
    closeout_bus::recorded_at(org, aggregate, version, at, payload)
}

fn history(big: usize) -> Vec<EventEnvelope> {
    let base = 1_550_000_000i64; // 2019-02-12
    let day = 86_400i64;
    let mut out = Vec::new();
    let orgs: Vec<String> = (0..ORGANISATIONS).map(|n| format!("force{n:02}")).collect();
    for (n, org) in orgs.iter().enumerate() {
        let group: Vec<String> = (1..=7)
            .map(|k| orgs[(n + k) % ORGANISATIONS].clone())
            .collect();
        out.push(envelope(
            org,
            org,
            1,
            base,
            Payload::OrganisationRegistered(pb::OrganisationRegistered {
                organisation: Some(pb::Organisation {
                    id: org.clone(),
                    name: org.clone(),
                    kind: 1,
                    most_similar_group: group,
                }),
            }),
        ));
        let inspections: Vec<String> = (0..10).map(|_| Uuid::now_v7().to_string()).collect();
        let items = if n == 0 { big } else { 1000 };
        let mut item_events = Vec::new();
        for k in 0..items {
            let item = Uuid::now_v7().to_string();
            let inspection = &inspections[k % 10];
            // Imported over 2019–2024, whatever the report's date.
            let opened_at = base + (k % 2000) as i64 * day;
            item_events.push(envelope(
                org,
                &item,
                1,
                opened_at,
                Payload::ItemOpened(pb::ItemOpened {
                    item_id: item.clone(),
                    organisation_id: org.clone(),
                    inspection_id: inspection.clone(),
                    kind: 1 + (k % 3) as i32,
                    pillar: ["Effectiveness", "Efficiency", "Legitimacy"][k % 3].into(),
                    question: "Q".into(),
                    status: pb::ItemStatus::Open as i32,
                    due_date: Some(pb::CalendarDate::new(2018 + (k % 6) as i32, 3, 31)),
                    ..Default::default()
                }),
            ));
            let started_at = opened_at + (k % 300) as i64 * day;
            item_events.push(envelope(
                org,
                &item,
                2,
                started_at,
                Payload::StatusChanged(pb::StatusChanged {
                    item_id: item.clone(),
                    from_status: pb::ItemStatus::Open as i32,
                    to_status: pb::ItemStatus::InProgress as i32,
                    ..Default::default()
                }),
            ));
            if k % 3 == 0 {
                let closed_at = started_at + (k % 700) as i64 * day;
                item_events.push(envelope(
                    org,
                    &item,
                    3,
                    closed_at,
                    Payload::ItemVerified(pb::ItemVerified {
                        item_id: item.clone(),
                        closure_reference: "letter".into(),
                        effective_date: (k % 9 == 0).then(|| {
                            pb::CalendarDate::new(2015 + (k % 7) as i32, 1 + (k % 12) as u32, 1)
                        }),
                        closed_by_inspection_id: if k % 9 == 3 {
                            inspections[(k + 1) % 10].clone()
                        } else {
                            String::new()
                        },
                    }),
                ));
                item_events.push(envelope(
                    org,
                    &item,
                    4,
                    closed_at,
                    Payload::StatusChanged(pb::StatusChanged {
                        item_id: item.clone(),
                        from_status: pb::ItemStatus::InProgress as i32,
                        to_status: pb::ItemStatus::Closed as i32,
                        ..Default::default()
                    }),
                ));
            }
        }
        out.extend(item_events);
        // The reports arrive after their items, so every item is redated.
        for (year, inspection) in inspections.iter().enumerate() {
            out.push(envelope(
                org,
                inspection,
                1,
                base + 2500 * day,
                Payload::InspectionPublished(pb::InspectionPublished {
                    inspection_id: inspection.clone(),
                    organisation_id: org.clone(),
                    programme: "PEEL".into(),
                    period: format!("{}", 2014 + year),
                    published: format!("{}-0{}", 2014 + year, 1 + year % 9),
                    title: "PEEL".into(),
                    ..Default::default()
                }),
            ));
        }
    }
    out
}

struct Figures {
    min: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

fn figures(mut samples: Vec<Duration>) -> Figures {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // The nearest-rank percentile.
    let rank = |p: f64| ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
    Figures {
        min: ms(samples[0]),
        p50: ms(samples[rank(0.5)]),
        p99: ms(samples[rank(0.99)]),
        max: ms(samples[samples.len() - 1]),
    }
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> (Figures, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples: Vec<Duration> = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(f().await);
        samples.push(started.elapsed());
    }
    (figures(samples), last.expect("at least one run"))
}

/// The two checkpointed reads run turn about, `runs` times each.
async fn alternated<F, G, FutF, FutG, T>(
    runs: usize,
    mut f: F,
    mut g: G,
) -> (Figures, T, Figures, T)
where
    F: FnMut() -> FutF,
    G: FnMut() -> FutG,
    FutF: std::future::Future<Output = T>,
    FutG: std::future::Future<Output = T>,
{
    let (mut a, mut b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let (mut last_a, mut last_b) = (None, None);
    for _ in 0..runs {
        let started = Instant::now();
        last_a = Some(f().await);
        a.push(started.elapsed());
        let started = Instant::now();
        last_b = Some(g().await);
        b.push(started.elapsed());
    }
    (
        figures(a),
        last_a.expect("at least one run"),
        figures(b),
        last_b.expect("at least one run"),
    )
}

fn line(what: &str, dated: &Figures, closings: &Figures, every: &Figures, folded: &Figures) {
    let f = |x: &Figures| format!("{:.1}/{:.1}/{:.1}/{:.1}", x.min, x.p50, x.p99, x.max);
    println!(
        "{what}: histograms min/p50/p99/max {} ms | checkpoint closings {} ms ({:.1}x p50) | every delta {} ms | fold {} ms",
        f(dated),
        f(closings),
        closings.p50 / dated.p50.max(1e-9),
        f(every),
        f(folded),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let big = setting("CLOSEOUT_BENCH_ITEMS", 15_000);
    let runs = setting("CLOSEOUT_BENCH_RUNS", 100).max(1);
    // A database kept by an earlier run (`CLOSEOUT_BENCH_KEEP=1`): the
    // reads alone, without applying the history again.
    let (db, pool) = match std::env::var("CLOSEOUT_BENCH_DATABASE").ok() {
        Some(name) => {
            println!("reusing database {name} (no history applied)");
            (None, closeout_testkit::connect_kept(&name).await)
        }
        None => {
            let db = TestDatabase::create().await;
            let pool = db.pool().clone();
            (Some(db), pool)
        }
    };
    // A kept database is brought to this build's schema too.
    closeout_metrics::MIGRATOR
        .run(&pool)
        .await
        .expect("migrate");
    if db.is_some() {
        apply_history(&pool, big).await;
    }
    // Quarter ends (next to a checkpoint) and a day mid-quarter (~45 days
    // from either: the most deltas an answer sums).
    for (y, m, d) in [(2019, 6, 30), (2022, 3, 31), (2023, 5, 16), (2024, 12, 31)] {
        let day = NaiveDate::from_ymd_opt(y, m, d).expect("day");
        let (dated, dated_answer, closings, closings_answer) = alternated(
            runs,
            || measure::scorecard_dated(&pool, "force00", day),
            || measure::scorecard_closings(&pool, "force00", day),
        )
        .await;
        let (every, every_answer) =
            time(3, || measure::scorecard_every_delta(&pool, "force00", day)).await;
        let (folded, folded_answer) =
            time(3, || measure::scorecard_folded(&pool, "force00", day)).await;
        let dated_answer = dated_answer
            .expect("dated scorecard")
            .expect("force00 is known");
        let folded_answer = folded_answer
            .expect("folded scorecard")
            .expect("force00 is known");
        assert_eq!(dated_answer, folded_answer, "scorecard as of {day}");
        for (how, answer) in [("closings", closings_answer), ("every-delta", every_answer)] {
            assert_eq!(
                answer.expect("scorecard").as_ref(),
                Some(&folded_answer),
                "{how} scorecard as of {day}"
            );
        }
        line(
            &format!(
                "scorecard force00 ({big} items) as of {day}, {} items counted",
                dated_answer.total_items
            ),
            &dated,
            &closings,
            &every,
            &folded,
        );
        let (dated, dated_answer, closings, closings_answer) = alternated(
            runs,
            || measure::peers_dated(&pool, "force01", day),
            || measure::peers_closings(&pool, "force01", day),
        )
        .await;
        let (every, every_answer) =
            time(3, || measure::peers_every_delta(&pool, "force01", day)).await;
        let (folded, folded_answer) =
            time(3, || measure::peers_folded(&pool, "force01", day)).await;
        let folded_answer = folded_answer.expect("folded peers");
        for (how, answer) in [
            ("histograms", dated_answer),
            ("closings", closings_answer),
            ("every-delta", every_answer),
        ] {
            assert_eq!(
                answer.expect("peers"),
                folded_answer,
                "{how} peers as of {day}"
            );
        }
        line(
            &format!("peers across {ORGANISATIONS} as of {day}"),
            &dated,
            &closings,
            &every,
            &folded,
        );
    }
    pool.close().await;
    match db {
        Some(db) if std::env::var("CLOSEOUT_BENCH_KEEP").is_ok_and(|v| v == "1") => {
            println!("database kept: {}", db.url());
            std::mem::forget(db); // its Drop would drop it
        }
        Some(db) => db.drop_database().await,
        None => {}
    }
}

/// Applies the generated history through the consumer's handler, as the
/// service would, and prints what it took.
async fn apply_history(pool: &sqlx::PgPool, big: usize) {
    let events = history(big);
    println!(
        "history: {} events, {} items in force00, {} organisations",
        events.len(),
        big,
        ORGANISATIONS
    );
    let started = Instant::now();
    for chunk in events.chunks(2000) {
        let mut tx = pool.begin().await.expect("begin");
        Projector.handle_batch(&mut tx, chunk).await.expect("apply");
        tx.commit().await.expect("commit");
    }
    let applied = started.elapsed();
    let count = |table: &str| {
        let pool = pool.clone();
        let sql = format!("SELECT count(*) FROM {table}");
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    println!(
        "applied through the consumer's handler (live tallies, dated deltas, checkpoints): {:.1} s ({:.0} events/s); dated_tallies rows: {}, dated_checkpoints rows: {}",
        applied.as_secs_f64(),
        events.len() as f64 / applied.as_secs_f64(),
        count("dated_tallies").await,
        count("dated_checkpoints").await,
    );
}
