//! How fast the metrics service applies events, against baselines measured
//! in the same run on the same database server:
//!
//! 1. **raw insert**: one transaction per event inserting the envelope into
//!    a bare table — the floor cost of a durable write per event;
//! 2. **projector**: one transaction per event doing what the consumer does
//!    (the applied-events row, the history row, the read-model fold);
//! 3. **end to end**: events published to a test stream and consumed by the
//!    running service until both consumers have nothing pending;
//! 4. **rebuild**: `closeout_metrics::rebuild` replaying that stream from
//!    the start (what `closeout-metrics rebuild` does), with the time of
//!    its last step (folding the items from the history) apart. Step 3 is
//!    what the rebuild did before it had a replay of its own: the same
//!    consumers and fold as the service.
//!
//! `cargo bench -p closeout-metrics --bench apply` (set
//! `CLOSEOUT_BENCH_EVENTS` to change the number of events, default 3000;
//! `CLOSEOUT_BENCH_REBUILD_ONLY=1` skips steps 1 and 2, one transaction per
//! event, for large counts; `RUST_LOG=info` prints the rebuild's log, with
//! the as-of refill's steps). Needs the PostgreSQL and NATS of the
//! development machine.

use closeout_bus::{EventHandler, Payload};
use closeout_metrics::consume::Projector;
use closeout_proto::{self as pb, EventEnvelope};
use closeout_service::CommonConfig;
use closeout_service::config::LogFormat;
use closeout_testkit::{TestBus, TestDatabase};
use prost::Message;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Items of ten events each, plus inspections of ten judgments each.
fn events(n: usize) -> Vec<EventEnvelope> {
    let mut out = Vec::with_capacity(n);
    let base = 1_600_000_000i64;
    let mut k = 0i64;
    let mut envelope = |org: &str, aggregate: &str, version: u64, payload: Payload| {
        k += 1;
        closeout_bus::recorded_at(org, aggregate, version, base + k * 3600, payload)
    };
    while out.len() < n {
        let org = format!("org{}", out.len() % 43);
        let inspection = Uuid::now_v7().to_string();
        for _ in 0..10 {
            out.push(envelope(
                &org,
                &inspection,
                1,
                Payload::JudgmentRecorded(pb::JudgmentRecorded {
                    judgment_id: Uuid::now_v7().to_string(),
                    inspection_id: inspection.clone(),
                    organisation_id: org.clone(),
                    pillar: "Effectiveness".into(),
                    question: "Investigating crime".into(),
                    grade: pb::Grade::Good as i32,
                    scale: pb::GradeScale::FourTier as i32,
                    published: "2019-09".into(),
                    period: "2018/19".into(),
                    ..Default::default()
                }),
            ));
        }
        for _ in 0..4 {
            let item = Uuid::now_v7().to_string();
            out.push(envelope(
                &org,
                &item,
                1,
                Payload::ItemOpened(pb::ItemOpened {
                    item_id: item.clone(),
                    organisation_id: org.clone(),
                    inspection_id: inspection.clone(),
                    kind: pb::FindingKind::AreaForImprovement as i32,
                    pillar: "Effectiveness".into(),
                    status: pb::ItemStatus::Open as i32,
                    ..Default::default()
                }),
            ));
            let statuses = [
                pb::ItemStatus::InProgress,
                pb::ItemStatus::AwaitingVerification,
                pb::ItemStatus::InProgress,
                pb::ItemStatus::AwaitingVerification,
                pb::ItemStatus::Closed,
            ];
            for (i, to) in statuses.iter().enumerate() {
                out.push(envelope(
                    &org,
                    &item,
                    i as u64 + 2,
                    Payload::StatusChanged(pb::StatusChanged {
                        item_id: item.clone(),
                        to_status: *to as i32,
                        ..Default::default()
                    }),
                ));
            }
        }
    }
    out.truncate(n);
    out
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // RUST_LOG set: the rebuild's own log lines too (the replay's and the
    // as-of refill's steps).
    let _telemetry = std::env::var_os("RUST_LOG")
        .map(|_| closeout_service::telemetry::init(LogFormat::Text, "metrics-bench"));
    let n: usize = std::env::var("CLOSEOUT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let events = events(n);
    let baselines = std::env::var("CLOSEOUT_BENCH_REBUILD_ONLY").map_or(true, |v| v != "1");

    let (raw, projected) = if baselines {
        baseline_rates(&events).await
    } else {
        (Duration::ZERO, Duration::ZERO)
    };

    // 3. End to end through JetStream and the running service
    // (`CLOSEOUT_BENCH_NO_LIVE=1` skips it: the rebuild alone).
    let live = std::env::var("CLOSEOUT_BENCH_NO_LIVE").map_or(true, |v| v != "1");
    let db = TestDatabase::create().await;
    let test_bus = TestBus::new();
    let bus = test_bus.connect().await;
    publish(&bus, &events).await;
    let mut end_to_end = None;
    if live {
        let metrics = metrics_config(&db, &test_bus);
        let started = Instant::now();
        let service = closeout_metrics::start(metrics, std::future::pending())
            .await
            .expect("start");
        let caught_up =
            closeout_metrics::wait_caught_up(&bus, Instant::now() + Duration::from_secs(600)).await;
        end_to_end = Some(started.elapsed());
        service.stop().await.expect("stop");
        assert!(caught_up, "the service did not catch up");
    }

    // 4. A rebuild of what it built.
    let rebuilt = rebuild(&db, &test_bus).await;
    test_bus.cleanup().await;
    db.drop_database().await;

    println!("events: {n}");
    if let (true, Some(end_to_end)) = (baselines, end_to_end) {
        println!("raw insert (baseline):  {:>8.0} events/s", rate(n, raw));
        println!(
            "projector:              {:>8.0} events/s  ({:.0}% of baseline)",
            rate(n, projected),
            100.0 * rate(n, projected) / rate(n, raw)
        );
        println!(
            "end to end (JetStream): {:>8.0} events/s  ({:.0}% of baseline)",
            rate(n, end_to_end),
            100.0 * rate(n, end_to_end) / rate(n, raw)
        );
    } else if let Some(end_to_end) = end_to_end {
        println!(
            "end to end (JetStream): {:>8.0} events/s  (the service's consumers from the start)",
            rate(n, end_to_end)
        );
    }
    print_rebuild(n, rebuilt);
}

/// Steps 1 and 2: (raw inserts, projector) wall times.
async fn baseline_rates(events: &[EventEnvelope]) -> (Duration, Duration) {
    // 1. Raw inserts.
    let db = TestDatabase::create().await;
    let pool = db.pool().clone();
    sqlx::query("CREATE TABLE raw (id UUID PRIMARY KEY, body BYTEA NOT NULL)")
        .execute(&pool)
        .await
        .expect("raw table");
    let started = Instant::now();
    for event in events {
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO raw (id, body) VALUES ($1, $2)")
            .bind(Uuid::parse_str(&event.event_id).expect("uuid"))
            .bind(event.encode_to_vec())
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }
    let raw = started.elapsed();

    // 2. The projector in the consumer's transaction shape.
    closeout_metrics::MIGRATOR
        .run(&pool)
        .await
        .expect("migrate");
    closeout_bus::outbox::install_schema(&pool)
        .await
        .expect("schema");
    let projector = Projector;
    let started = Instant::now();
    for event in events {
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO closeout_applied_events (consumer, event_id) VALUES ($1, $2)")
            .bind("bench")
            .bind(Uuid::parse_str(&event.event_id).expect("uuid"))
            .execute(&mut *tx)
            .await
            .expect("applied");
        projector.handle(&mut tx, event).await.expect("apply");
        tx.commit().await.expect("commit");
    }
    let projected = started.elapsed();
    db.drop_database().await;
    (raw, projected)
}

/// Publishes the events, up to 256 awaiting their acks at once.
async fn publish(bus: &closeout_bus::Bus, events: &[EventEnvelope]) {
    for chunk in events.chunks(256) {
        let mut pending = Vec::with_capacity(chunk.len());
        for event in chunk {
            let subject = bus.subject_of(event).expect("subject");
            let headers = closeout_bus::event_headers(
                &event.event_id,
                &event.event_type,
                &closeout_bus::trace::traceparent_for(event),
            );
            pending.push(
                bus.send(subject, headers, event.encode_to_vec().into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in pending {
            ack.acked().await.expect("publish ack");
        }
    }
}

/// Times a rebuild; returns what it reports and the wall time.
async fn rebuild(db: &TestDatabase, test_bus: &TestBus) -> (closeout_metrics::Rebuilt, Duration) {
    let started = Instant::now();
    let done = closeout_metrics::rebuild(&metrics_config(db, test_bus), Duration::from_secs(3600))
        .await
        .expect("rebuild");
    (done, started.elapsed())
}

fn print_rebuild(n: usize, (done, took): (closeout_metrics::Rebuilt, Duration)) {
    println!(
        "rebuild:                {:>8.0} events/s  ({} events in the history, {:.1} s; \
         1,000,000 at this rate: {:.0} s)",
        rate(n, took),
        done.events,
        took.as_secs_f64(),
        1_000_000.0 / rate(n, took).max(1e-9)
    );
    let share = |d: Duration| 100.0 * d.as_secs_f64() / took.as_secs_f64().max(1e-9);
    println!(
        "  replay (step 1):      {:>6.1} s  {:>3.0}%  (its writers in transactions: {:.1} s summed)",
        done.replay_took.as_secs_f64(),
        share(done.replay_took),
        done.replay_writing.as_secs_f64()
    );
    println!(
        "  history's indexes:    {:>6.1} s  {:>3.0}%",
        done.indexes_took.as_secs_f64(),
        share(done.indexes_took)
    );
    println!(
        "  fold and refill:      {:>6.1} s  {:>3.0}%  (side by side: fold {} items {:.1} s, \
         as-of refill {:.1} s)",
        done.derived_took.as_secs_f64(),
        share(done.derived_took),
        done.items,
        done.fold_took.as_secs_f64(),
        done.refill_took.as_secs_f64()
    );
    let rest = took.saturating_sub(done.replay_took + done.indexes_took + done.derived_took);
    println!(
        "  the rest (reset, consumers, checks): {:.1} s  {:.0}%",
        rest.as_secs_f64(),
        share(rest)
    );
}

fn metrics_config(db: &TestDatabase, test_bus: &TestBus) -> closeout_metrics::MetricsConfig {
    let config = test_bus.config();
    closeout_metrics::MetricsConfig {
        common: CommonConfig {
            database_url: db.url().to_string(),
            nats_url: config.nats_url.clone(),
            grpc_addr: Some("127.0.0.1:0".parse().expect("address")),
            stream_name: config.stream_name.clone(),
            subject_prefix: config.subject_prefix.clone(),
            database_max_connections: 5,
            log_format: LogFormat::Text,
            auth: closeout_service::config::AuthConfig::trusting(vec![
                closeout_testkit::token_public_key().to_path_buf(),
            ]),
            tls: Default::default(),
            reflection_addr: None,
        },
        metrics_http_addr: "127.0.0.1:0".parse().expect("address"),
    }
}
