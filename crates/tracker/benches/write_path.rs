//! The tracker's write path and event application, each beside a ceiling
//! measured in the same run on the same database (figures on a shared
//! machine are noisy; the ratios are what to compare):
//!
//! - NoteProgress at 1, 16 and 64 in flight (each writer on its own item)
//!   against the same SQL run directly (lock the item, update it, insert
//!   the event and the outbox row, NOTIFY, commit), and that SQL with the
//!   old global advisory lock added, to show what the lock cost;
//! - opening items from a report's findings (the tracker's consumer) as
//!   the organisation grows, in items per second per stage;
//! - the bus consumer draining a backlog against bare inserts of the same
//!   rows (one row per transaction, and 500 rows per transaction).
//!
//! `cargo bench -p closeout-tracker --bench write_path` (add `-- --quick`
//! for a short run). Needs the PostgreSQL and NATS the tests use.

#[path = "../tests/support/mod.rs"]
mod support;

use closeout_bus::{Consumer, ConsumerConfig, EventEnvelope, EventHandler, HandlerError};
use closeout_proto as pb;
use closeout_testkit::{TestBus, TestDatabase};
use sqlx::{PgConnection, PgPool, Row};
use std::time::{Duration, Instant};
use support::{World, finding_recorded};

/// Arbitrary key of the advisory lock the journal used to take.
const OLD_LOG_LOCK: i64 = 0x0074_726b_2d6c_6f67;

struct Settings {
    duration: Duration,
    stages: Vec<usize>,
    drain: usize,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            duration: Duration::from_millis(800),
            stages: vec![300, 300],
            drain: 2_000,
        }
    } else {
        Settings {
            duration: Duration::from_secs(3),
            stages: vec![2_000, 2_000, 2_000],
            drain: 10_000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(settings));
}

async fn run(settings: Settings) {
    let world = World::with(|config| config.common.database_max_connections = 32).await;
    println!(
        "# closeout-tracker write path (pool 32; {:?} per level)",
        settings.duration
    );

    println!("\n## Opening items from findings (one organisation, growing)");
    println!("stage | items before | opened | seconds | items/s");
    let mut before = 0;
    for (stage, n) in settings.stages.iter().enumerate() {
        let (elapsed, rate) = open_items(&world, "kent", before, *n).await;
        println!(
            "{} | {before} | {n} | {:.2} | {rate:.0}",
            stage + 1,
            elapsed.as_secs_f64()
        );
        before += n;
    }

    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM items ORDER BY id LIMIT 128")
        .fetch_all(world.db.pool())
        .await
        .expect("items");
    let (service_items, direct_items) = ids.split_at(64);
    println!("\n## NoteProgress, each writer on its own item");
    println!(
        "in flight | service cmd/s (p50/p99 ms) | direct SQL tx/s (p50/p99 ms) | ratio | \
         direct + old global lock tx/s | lock's ratio"
    );
    for in_flight in [1usize, 16, 64] {
        let service = note_progress(&world, &service_items[..in_flight], settings.duration).await;
        let direct = direct_sql(
            world.db.pool(),
            &direct_items[..in_flight],
            false,
            settings.duration,
        )
        .await;
        let locked = direct_sql(
            world.db.pool(),
            &direct_items[..in_flight],
            true,
            settings.duration,
        )
        .await;
        println!(
            "{in_flight} | {:.0} ({:.1}/{:.1}) | {:.0} ({:.1}/{:.1}) | {:.2} | {:.0} | {:.2}",
            service.rate,
            service.p50,
            service.p99,
            direct.rate,
            direct.p50,
            direct.p99,
            service.rate / direct.rate,
            locked.rate,
            locked.rate / direct.rate,
        );
    }
    world.finish().await;

    println!("\n## Consumer draining a backlog");
    drain(settings.drain).await;
}

/// Publishes `n` findings for `organisation` and waits until their items
/// are open; the time from the first publish to the last item.
async fn open_items(world: &World, organisation: &str, before: usize, n: usize) -> (Duration, f64) {
    let inspection = uuid::Uuid::now_v7().to_string();
    let events: Vec<EventEnvelope> = (0..n)
        .map(|i| {
            finding_recorded(
                organisation,
                &inspection,
                pb::FindingKind::AreaForImprovement,
                &format!("The force should improve how it handles matter {before}-{i}."),
                None,
            )
        })
        .collect();
    let started = Instant::now();
    world.publish(&events).await;
    let target = (before + n) as i64;
    loop {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM items WHERE organisation_id = $1")
                .bind(organisation)
                .fetch_one(world.db.pool())
                .await
                .expect("count");
        if count >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    (elapsed, n as f64 / elapsed.as_secs_f64())
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    Figures {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// One writer per item, each sending NoteProgress back to back.
async fn note_progress(world: &World, items: &[uuid::Uuid], duration: Duration) -> Figures {
    let token = closeout_testkit::Caller::inspectorate().token();
    let started = Instant::now();
    let writers: Vec<_> = items
        .iter()
        .map(|id| {
            let mut client = world.client.clone();
            let token = token.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut version = client
                    .get_item(closeout_testkit::with_token(
                        &token,
                        pb::GetItemRequest {
                            item_id: id.clone(),
                        },
                    ))
                    .await
                    .expect("get item")
                    .into_inner()
                    .item
                    .map(|item| item.version)
                    .unwrap_or_default();
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    let reply = client
                        .note_progress(closeout_testkit::with_token(
                            &token,
                            pb::NoteProgressRequest {
                                item_id: id.clone(),
                                expected_version: version,
                                note: "progress reviewed at the quarterly board".into(),
                            },
                        ))
                        .await
                        .expect("note progress")
                        .into_inner();
                    latencies.push(sent.elapsed());
                    version = reply.item.map(|i| i.version).unwrap_or(version + 1);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for writer in writers {
        latencies.extend(writer.await.expect("writer"));
    }
    figures(latencies, started.elapsed())
}

/// The statements of one NoteProgress, run directly on the database.
async fn direct_sql(
    pool: &PgPool,
    items: &[uuid::Uuid],
    global_lock: bool,
    duration: Duration,
) -> Figures {
    // A real event and item of the right size, to store again.
    let sample = sqlx::query("SELECT envelope, item_after FROM item_events LIMIT 1")
        .fetch_one(pool)
        .await
        .expect("a sample event");
    let envelope: Vec<u8> = sample.get(0);
    let item_after: Vec<u8> = sample.get(1);
    let started = Instant::now();
    let writers: Vec<_> = items
        .iter()
        .map(|id| {
            let pool = pool.clone();
            let (id, envelope, item_after) = (*id, envelope.clone(), item_after.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    one_direct_command(&pool, id, &envelope, &item_after, global_lock)
                        .await
                        .expect("direct SQL");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for writer in writers {
        latencies.extend(writer.await.expect("writer"));
    }
    figures(latencies, started.elapsed())
}

async fn one_direct_command(
    pool: &PgPool,
    id: uuid::Uuid,
    envelope: &[u8],
    item_after: &[u8],
    global_lock: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT * FROM items WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let version: i64 = sqlx::query_scalar(
        "UPDATE items SET version = version + 1, updated_at = now() WHERE id = $1 RETURNING version",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if global_lock {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(OLD_LOG_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let event_id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO item_events (item_id, version, event_id, event_type, organisation_id, \
         actor_subject, actor_role, occurred_at, status_before, status_after, envelope, \
         item_after, watch_xid) \
         VALUES ($1, $2, $3, 'closeout.v1.ProgressNoted', 'kent', 'bench', 1, now(), 1, 1, $4, $5, \
                 greatest(pg_current_xact_id(), (SELECT watch_xid FROM item_events \
                          WHERE item_id = $1 ORDER BY version DESC LIMIT 1)))",
    )
    .bind(id)
    .bind(version)
    .bind(event_id)
    .bind(envelope)
    .bind(item_after)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO closeout_outbox (event_id, organisation_id, subject, event_type, \
         traceparent, payload) VALUES ($1, 'kent', 'bench.direct', 'closeout.v1.ProgressNoted', \
         '', $2)",
    )
    .bind(event_id)
    .bind(envelope)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify('closeout_outbox', '')")
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Inserts one row per event, like a small read model.
struct Rows;

impl EventHandler for Rows {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO drained (event_id, organisation_id) VALUES ($1, $2)")
            .bind(&event.event_id)
            .bind(&event.organisation_id)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

async fn drain(n: usize) {
    let db = TestDatabase::create().await;
    let test_bus = TestBus::new();
    let bus = test_bus.connect().await;
    let pool = db.pool();
    closeout_bus::outbox::install_schema(pool)
        .await
        .expect("schema");
    for table in ["drained", "plain_single", "plain_batched"] {
        sqlx::query(&format!(
            "CREATE TABLE {table} (event_id text PRIMARY KEY, organisation_id text NOT NULL)"
        ))
        .execute(pool)
        .await
        .expect("table");
    }
    let events: Vec<EventEnvelope> = (0..n)
        .map(|i| {
            finding_recorded(
                "kent",
                "bench",
                pb::FindingKind::AreaForImprovement,
                &format!("finding {i}"),
                None,
            )
        })
        .collect();
    for chunk in events.chunks(200) {
        let mut acks = Vec::new();
        for event in chunk {
            let subject = bus.subject_of(event).expect("subject");
            let payload = prost::Message::encode_to_vec(event);
            acks.push(
                bus.jetstream()
                    .publish(subject, payload.into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in acks {
            ack.await.expect("stored");
        }
    }

    let started = Instant::now();
    let consumer = Consumer::spawn(
        pool.clone(),
        bus.clone(),
        ConsumerConfig {
            batch: 500,
            max_ack_pending: 2000,
            ..ConsumerConfig::new("bench-drain", &["findings.>"])
        },
        Rows,
    )
    .expect("consumer");
    let stats = consumer.stats();
    while stats.applied() < n as u64 && started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let consumed = started.elapsed();
    consumer.stop().await;
    let drained: i64 = sqlx::query_scalar("SELECT count(*) FROM drained")
        .fetch_one(pool)
        .await
        .expect("count");

    // The same rows, one transaction each (what one event per transaction
    // costs), then 500 per transaction with one statement.
    let started = Instant::now();
    for event in &events {
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO closeout_applied_events (consumer, event_id) VALUES ('single', $1::uuid)",
        )
        .bind(&event.event_id)
        .execute(&mut *tx)
        .await
        .expect("insert");
        sqlx::query("INSERT INTO plain_single (event_id, organisation_id) VALUES ($1, $2)")
            .bind(&event.event_id)
            .bind(&event.organisation_id)
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }
    let single = started.elapsed();
    let started = Instant::now();
    for chunk in events.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|e| e.event_id.as_str()).collect();
        let organisations: Vec<&str> = chunk.iter().map(|e| e.organisation_id.as_str()).collect();
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO closeout_applied_events (consumer, event_id) \
             SELECT 'batched', id::uuid FROM UNNEST($1::text[]) AS e(id)",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .expect("insert");
        sqlx::query(
            "INSERT INTO plain_batched (event_id, organisation_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[])",
        )
        .bind(&ids)
        .bind(&organisations)
        .execute(&mut *tx)
        .await
        .expect("insert");
        tx.commit().await.expect("commit");
    }
    let batched = started.elapsed();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("path | events | seconds | events/s | ratio to 500-row transactions");
    println!(
        "consumer (JetStream pull, batches of up to 500, acks) | {drained} | {:.2} | {:.0} | {:.2}",
        consumed.as_secs_f64(),
        rate(consumed),
        rate(consumed) / rate(batched)
    );
    println!(
        "bare inserts, one transaction per event | {n} | {:.2} | {:.0} | {:.2}",
        single.as_secs_f64(),
        rate(single),
        rate(single) / rate(batched)
    );
    println!(
        "bare inserts, 500 per transaction | {n} | {:.2} | {:.0} | 1.00",
        batched.as_secs_f64(),
        rate(batched)
    );
    if drained != n as i64 {
        println!("WARNING: drained {drained} of {n} events");
    }
    test_bus.cleanup().await;
    db.drop_database().await;
}
