//! Batched application: a backlog is applied many events per transaction,
//! each exactly once and in stream order; an event that cannot be applied
//! is dead-lettered alone while the rest of its batch is applied.

mod common;

use closeout_bus::consumer::BatchHandler;
use closeout_bus::{Bus, Consumer, ConsumerConfig, EventEnvelope, HandlerError, Payload, outbox};
use closeout_testkit::{TestBus, TestDatabase};
use common::{Effects, Mode, count, create_effects_table, sample_event, wait_until};
use prost::Message;
use sqlx::PgConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

async fn setup() -> (TestDatabase, TestBus, Bus) {
    let db = TestDatabase::create().await;
    let test_bus = TestBus::new();
    let bus = test_bus.connect().await;
    outbox::install_schema(db.pool()).await.expect("schema");
    create_effects_table(db.pool()).await;
    (db, test_bus, bus)
}

/// Publishes the encoded events in order, a few hundred at a time without
/// waiting for each ack (one connection keeps the order).
async fn publish_all(bus: &Bus, events: &[(String, Vec<u8>)]) {
    for chunk in events.chunks(200) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (subject, payload) in chunk {
            acks.push(
                bus.jetstream()
                    .publish(subject.clone(), payload.clone().into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in acks {
            ack.await.expect("stored");
        }
    }
}

fn config(durable: &str) -> ConsumerConfig {
    ConsumerConfig {
        batch: 500,
        max_ack_pending: 2000,
        max_failures: 2,
        retry_delay: Duration::from_millis(50),
        max_retry_delay: Duration::from_millis(100),
        ..ConsumerConfig::new(durable, &["findings.>"])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_ten_thousand_events_is_drained_once_each_in_order() {
    let (db, test_bus, bus) = setup().await;
    const EVENTS: usize = 10_000;
    const COPIES: usize = 100;
    let events: Vec<EventEnvelope> = (0..EVENTS as u64)
        .map(|n| sample_event(2 * n, "kent"))
        .collect();
    let mut messages: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (bus.subject_of(e).expect("subject"), e.encode_to_vec()))
        .collect();
    // The same event published again: applied once all the same.
    let copies: Vec<(String, Vec<u8>)> = messages.iter().take(COPIES).cloned().collect();
    messages.extend(copies);
    publish_all(&bus, &messages).await;

    let handler = Arc::new(Effects::new(Mode::Apply));
    let started = Instant::now();
    let consumer = Consumer::spawn(
        db.pool().clone(),
        bus.clone(),
        config("backlog"),
        handler.clone(),
    )
    .expect("consumer");
    let stats = consumer.stats();
    assert!(
        wait_until(Duration::from_secs(120), || {
            let stats = stats.clone();
            async move { stats.applied() + stats.duplicates() >= (EVENTS + COPIES) as u64 }
        })
        .await,
        "backlog drained: {stats:?}"
    );
    let elapsed = started.elapsed();
    println!(
        "drained {} messages ({EVENTS} events) in {:.2} s: {:.0} events/s",
        EVENTS + COPIES,
        elapsed.as_secs_f64(),
        EVENTS as f64 / elapsed.as_secs_f64()
    );
    consumer.stop().await;

    assert_eq!(stats.applied(), EVENTS as u64);
    assert_eq!(stats.duplicates(), COPIES as u64);
    assert_eq!(stats.dead_lettered(), 0);
    assert_eq!(handler.calls(), EVENTS as u64);
    let pool = db.pool();
    assert_eq!(
        count(pool, "SELECT count(*) FROM effects").await,
        EVENTS as i64
    );
    assert_eq!(
        count(pool, "SELECT count(DISTINCT event_id) FROM effects").await,
        EVENTS as i64
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM closeout_applied_events WHERE consumer = 'backlog'"
        )
        .await,
        EVENTS as i64
    );
    // Applied in the order published.
    let applied: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM effects ORDER BY applied_seq")
            .fetch_all(pool)
            .await
            .expect("effects");
    let published: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert!(applied == published, "effects in stream order");
    test_bus.cleanup().await;
    db.drop_database().await;
}

/// Applies whole batches with one statement; an event whose finding text
/// says "poison" can never be applied.
struct Poisonable {
    batches: AtomicU64,
}

impl BatchHandler for Poisonable {
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        let poisoned = events.iter().any(|e| {
            matches!(&e.payload, Some(Payload::FindingRecorded(f)) if f.text.contains("poison"))
        });
        if poisoned {
            return Err(HandlerError::permanent("a poisoned finding"));
        }
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        let organisations: Vec<&str> = events.iter().map(|e| e.organisation_id.as_str()).collect();
        sqlx::query(
            "INSERT INTO effects (event_id, organisation_id) \
             SELECT id, org FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS e(id, org, ord) \
             ORDER BY ord",
        )
        .bind(&ids)
        .bind(&organisations)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_in_a_batch_is_dead_lettered_alone() {
    let (db, test_bus, bus) = setup().await;
    let mut events: Vec<EventEnvelope> = (0..50u64).map(|n| sample_event(2 * n, "kent")).collect();
    if let Some(Payload::FindingRecorded(f)) = &mut events[25].payload {
        f.text = "This finding is poison.".into();
    }
    let mut messages: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (bus.subject_of(e).expect("subject"), e.encode_to_vec()))
        .collect();
    // And a message that is not an event at all.
    messages.insert(10, (messages[0].0.clone(), b"not an event".to_vec()));
    publish_all(&bus, &messages).await;

    let handler = Arc::new(Poisonable {
        batches: AtomicU64::new(0),
    });
    let consumer = Consumer::spawn_batched(
        db.pool().clone(),
        bus.clone(),
        config("poison"),
        handler.clone(),
    )
    .expect("consumer");
    let stats = consumer.stats();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let stats = stats.clone();
            async move { stats.applied() >= 49 && stats.dead_lettered() >= 2 }
        })
        .await,
        "all handled: {stats:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.stop().await;
    assert_eq!(stats.applied(), 49);
    assert_eq!(stats.dead_lettered(), 2);
    let applied: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM effects ORDER BY applied_seq")
            .fetch_all(db.pool())
            .await
            .expect("effects");
    let expected: Vec<String> = events
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != 25)
        .map(|(_, e)| e.event_id.clone())
        .collect();
    assert_eq!(applied, expected, "the others applied, in order");
    test_bus.cleanup().await;
    db.drop_database().await;
}

/// Records each batch's events with the batch transaction's
/// `synchronous_commit`.
struct Recording;

impl BatchHandler for Recording {
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        sqlx::query(
            "INSERT INTO effects (event_id, organisation_id) \
             SELECT id, current_setting('synchronous_commit') \
             FROM UNNEST($1::text[]) WITH ORDINALITY AS e(id, ord) ORDER BY ord",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Commits that do not wait for the disk are acked only after a durable
/// write made after them: every event applied once, in order, every
/// message acked, and the flush recorded at the last stream sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committed_without_flushing_is_acked_after_a_durable_write() {
    let (db, test_bus, bus) = setup().await;
    const EVENTS: usize = 600;
    let events: Vec<EventEnvelope> = (0..EVENTS as u64)
        .map(|n| sample_event(2 * n, "kent"))
        .collect();
    let messages: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (bus.subject_of(e).expect("subject"), e.encode_to_vec()))
        .collect();
    // Half before the consumer starts (batches), half one by one after.
    publish_all(&bus, &messages[..EVENTS / 2]).await;
    let consumer = Consumer::spawn_batched(
        db.pool().clone(),
        bus.clone(),
        ConsumerConfig {
            commit_without_flush: true,
            ..config("unflushed")
        },
        Recording,
    )
    .expect("consumer");
    for message in &messages[EVENTS / 2..] {
        publish_all(&bus, std::slice::from_ref(message)).await;
    }
    let stats = consumer.stats();
    let durable = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .expect("stream");
    let last = durable.cached_info().state.last_sequence;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let durable = durable.clone();
            async move {
                durable
                    .consumer_info("unflushed")
                    .await
                    .is_ok_and(|info| info.ack_floor.stream_sequence >= last)
            }
        })
        .await,
        "every message acked: {stats:?}"
    );
    consumer.stop().await;
    assert_eq!(stats.applied(), EVENTS as u64);
    let pool = db.pool();
    let applied: Vec<(String, String)> =
        sqlx::query_as("SELECT event_id, organisation_id FROM effects ORDER BY applied_seq")
            .fetch_all(pool)
            .await
            .expect("effects");
    let published: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert!(
        applied.iter().map(|(id, _)| id).eq(published.iter()),
        "each event once, in stream order"
    );
    assert!(
        applied.iter().all(|(_, setting)| setting == "off"),
        "batches commit without waiting for the disk"
    );
    let flushed: i64 = sqlx::query_scalar(
        "SELECT stream_sequence FROM closeout_consumer_flushes WHERE consumer = 'unflushed'",
    )
    .fetch_one(pool)
    .await
    .expect("a flush recorded");
    assert_eq!(u64::try_from(flushed).ok(), Some(last));
    test_bus.cleanup().await;
    db.drop_database().await;
}
