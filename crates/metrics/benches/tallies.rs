//! The live scorecard and peer comparison at national scale, and the
//! replay rate a rebuild gets, each beside a baseline measured in the same
//! run on the same database:
//!
//! * **replay**: the consumer's batch handler over the synthetic history in
//!   transactions of `CLOSEOUT_BENCH_BATCH` events (default 2000), against
//!   a bare multi-row insert of the same envelopes (the floor);
//! * **scorecard** of the organisation with a million items and **peers**
//!   across 87 organisations: answered from the tallies (as the service
//!   does) against loading the items and folding them (as it did before).
//!   The two answers are checked equal.
//!
//! `cargo bench -p closeout-metrics --bench tallies` (`CLOSEOUT_BENCH_ITEMS`
//! sets the big organisation's items, default 1,000,000; the other 86 have
//! 1,000 each; every third item is also closed). `CLOSEOUT_BENCH_MIXED=1`
//! varies how closures are dated (a verification's effective date, the
//! next inspection closing it) to check the answers on more kinds of
//! closure, and publishes force00's first inspection without a date until
//! the end of the history (its date then arrives and its closings are
//! re-dated); the figures in BENCHMARKS.md are without it.
//! `CLOSEOUT_BENCH_KEEP=1` keeps the database (its name is printed) for
//! looking at the statements by hand; `CLOSEOUT_BENCH_DATABASE=<name>`
//! reads a kept one again without the replay. Needs the development
//! PostgreSQL.

use closeout_bus::Payload;
use closeout_bus::consumer::BatchHandler;
use closeout_metrics::consume::Projector;
use closeout_metrics::measure;
use closeout_proto::{self as pb, EventEnvelope};
use closeout_testkit::TestDatabase;
use prost::Message;
use std::time::{Duration, Instant};
use uuid::Uuid;

const ORGANISATIONS: usize = 87;

fn envelope(org: &str, aggregate: &str, version: u64, at: i64, payload: Payload) -> EventEnvelope {
    closeout_bus::recorded_at(org, aggregate, version, at, payload)
}

/// Registrations, ten inspections per organisation, then items (every
/// third closed by a verification and a status change).
fn history(big: usize, mixed: bool) -> Vec<EventEnvelope> {
    let base = 1_550_000_000i64;
    let mut out = Vec::new();
    let mut last = Vec::new();
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
        for (year, inspection) in inspections.iter().enumerate() {
            let published = |version: u64, published: String| {
                envelope(
                    org,
                    inspection,
                    version,
                    base,
                    Payload::InspectionPublished(pb::InspectionPublished {
                        inspection_id: inspection.clone(),
                        organisation_id: org.clone(),
                        programme: "PEEL".into(),
                        period: format!("{}", 2014 + year),
                        published,
                        title: "PEEL".into(),
                        ..Default::default()
                    }),
                )
            };
            let day = format!("{}-0{}", 2014 + year, 1 + year % 9);
            if mixed && n == 0 && year == 0 {
                // Dated only once every closing of it is in.
                out.push(published(1, "to be confirmed".into()));
                last.push(published(2, day));
            } else {
                out.push(published(1, day));
            }
        }
        let items = if n == 0 { big } else { 1000 };
        for k in 0..items {
            let item = Uuid::now_v7().to_string();
            let inspection = &inspections[k % 10];
            let opened_at = base + (k % 2000) as i64 * 86_400;
            out.push(envelope(
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
            if k % 3 == 0 {
                let closed_at = opened_at + (k % 700) as i64 * 86_400;
                out.push(envelope(
                    org,
                    &item,
                    2,
                    closed_at,
                    Payload::ItemVerified(pb::ItemVerified {
                        item_id: item.clone(),
                        closure_reference: "letter".into(),
                        effective_date: (mixed && k % 9 == 0).then(|| {
                            pb::CalendarDate::new(2015 + (k % 7) as i32, 1 + (k % 12) as u32, 1)
                        }),
                        closed_by_inspection_id: if mixed && k % 9 == 3 {
                            inspections[(k + 1) % 10].clone()
                        } else {
                            String::new()
                        },
                    }),
                ));
                out.push(envelope(
                    org,
                    &item,
                    3,
                    closed_at,
                    Payload::StatusChanged(pb::StatusChanged {
                        item_id: item.clone(),
                        from_status: pb::ItemStatus::Open as i32,
                        to_status: pb::ItemStatus::Closed as i32,
                        ..Default::default()
                    }),
                ));
            }
        }
    }
    out.extend(last);
    out
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| {
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1000.0
    };
    (at(50.0), at(99.0))
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> (f64, f64, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(f().await);
        samples.push(started.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    (p50, p99, last.expect("at least one run"))
}

/// Builds the read models of the synthetic history by the consumer's
/// batch handler, timed beside a bare multi-row insert of the same
/// envelopes, and prints both.
async fn replay(pool: &sqlx::PgPool, big: usize) {
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let batch = setting("CLOSEOUT_BENCH_BATCH", 2000).max(1);
    let mixed = setting("CLOSEOUT_BENCH_MIXED", 0) == 1;
    let events = history(big, mixed);
    println!(
        "history: {} events, {} items in force00, {} organisations, batch {batch}",
        events.len(),
        big,
        ORGANISATIONS
    );

    closeout_metrics::MIGRATOR.run(pool).await.expect("migrate");

    // Floor: the same envelopes, multi-row inserts into a bare table.
    sqlx::query("CREATE TABLE raw (id UUID PRIMARY KEY, body BYTEA NOT NULL)")
        .execute(pool)
        .await
        .expect("raw table");
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let ids: Vec<Uuid> = chunk
            .iter()
            .map(|e| Uuid::parse_str(&e.event_id).expect("uuid"))
            .collect();
        let bodies: Vec<Vec<u8>> = chunk.iter().map(|e| e.encode_to_vec()).collect();
        sqlx::query("INSERT INTO raw SELECT * FROM UNNEST($1::uuid[], $2::bytea[])")
            .bind(ids)
            .bind(bodies)
            .execute(pool)
            .await
            .expect("raw insert");
    }
    let raw = started.elapsed();

    // The consumer's batch handler, one transaction per batch.
    let projector = Projector;
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let mut tx = pool.begin().await.expect("begin");
        projector.handle_batch(&mut tx, chunk).await.expect("apply");
        tx.commit().await.expect("commit");
    }
    let replay = started.elapsed();
    let per_second = |d: Duration| events.len() as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "replay: {:.1} s ({:.0} events/s, {:.1} s per million) | bare multi-row insert {:.1} s ({:.0}/s) | ratio {:.2}",
        replay.as_secs_f64(),
        per_second(replay),
        1e6 / per_second(replay),
        raw.as_secs_f64(),
        per_second(raw),
        per_second(replay) / per_second(raw)
    );
    sqlx::query("VACUUM ANALYZE")
        .execute(pool)
        .await
        .expect("analyze");
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
    let big = setting("CLOSEOUT_BENCH_ITEMS", 1_000_000);
    // A database kept by an earlier run (`CLOSEOUT_BENCH_KEEP=1`): the
    // reads alone, without rebuilding the history (minutes at 1M items).
    let reuse = std::env::var("CLOSEOUT_BENCH_DATABASE").ok();
    let (db, pool) = match &reuse {
        Some(name) => {
            let pool = closeout_testkit::connect_kept(name).await;
            println!("reusing database {name} (no replay)");
            (None, pool)
        }
        None => {
            let db = TestDatabase::create().await;
            let pool = db.pool().clone();
            replay(&pool, big).await;
            (Some(db), pool)
        }
    };
    let day = chrono::Utc::now().date_naive();
    let runs = setting("CLOSEOUT_BENCH_RUNS", 200);
    let baseline_runs = setting("CLOSEOUT_BENCH_BASELINE_RUNS", 3);
    let org = "force00";
    let (p50, p99, tallied) = time(runs, || async {
        measure::scorecard_tallied(&pool, org, day)
            .await
            .expect("scorecard")
    })
    .await;
    let (b50, b99, folded) = time(baseline_runs, || async {
        measure::scorecard_folded(&pool, org, day)
            .await
            .expect("scorecard")
    })
    .await;
    assert_eq!(tallied, folded, "the two scorecards differ");
    println!(
        "scorecard ({big} items): tallies p50 {p50:.2} ms p99 {p99:.2} ms ({runs} runs) | folding the items p50 {b50:.0} ms p99 {b99:.0} ms ({baseline_runs} runs) | {:.0}x",
        b50 / p50.max(1e-9)
    );
    let (p50, p99, tallied) = time(runs, || async {
        measure::peers_tallied(&pool, "force01", day)
            .await
            .expect("peers")
    })
    .await;
    let (b50, b99, folded) = time(baseline_runs, || async {
        measure::peers_folded(&pool, "force01", day)
            .await
            .expect("peers")
    })
    .await;
    assert_eq!(tallied, folded, "the two peer comparisons differ");
    println!(
        "peers ({ORGANISATIONS} organisations): tallies p50 {p50:.2} ms p99 {p99:.2} ms ({runs} runs) | folding the items p50 {b50:.0} ms p99 {b99:.0} ms ({baseline_runs} runs) | {:.0}x",
        b50 / p50.max(1e-9)
    );
    match db {
        Some(db) if setting("CLOSEOUT_BENCH_KEEP", 0) == 1 => {
            // For EXPLAIN by hand or CLOSEOUT_BENCH_DATABASE; drop it
            // yourself (DROP DATABASE ... WITH (FORCE)).
            println!("kept database {}", db.name());
            std::mem::forget(db);
        }
        Some(db) => db.drop_database().await,
        None => {}
    }
}
