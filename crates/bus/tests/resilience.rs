//! The key guarantee: with NATS stopped and restarted while a service keeps
//! committing events, every committed event reaches the consumer's effect
//! exactly once: none lost, none applied twice.
//!
//! A private nats-server (never the shared one) is stopped (SIGTERM) or
//! killed (SIGKILL) for two seconds in the middle of a stream of 300 events
//! appended by a producer task, then started again on the same port and
//! store; the relay, the consumer and the NATS client must all recover by
//! themselves.

mod common;

use closeout_bus::{Consumer, ConsumerConfig, Relay, RelayConfig, outbox};
use closeout_testkit::{PrivateNats, TestBus, TestDatabase};
use common::{Effects, Mode, count, create_effects_table, sample_event, wait_until};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENTS: u64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outage {
    /// SIGTERM: the server shuts down in order, as on a restart.
    Restart,
    /// SIGKILL: the server crashes.
    Crash,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_applied_exactly_once_across_a_nats_restart() {
    run(Outage::Restart).await;
}

async fn run(kind: Outage) {
    let started = Instant::now();
    let mut nats = PrivateNats::start().await;
    let db = TestDatabase::create().await;
    let test_bus = TestBus::with_url(nats.url());
    let bus = test_bus.connect().await;
    outbox::install_schema(db.pool()).await.expect("schema");
    create_effects_table(db.pool()).await;

    let relay = Relay::spawn(
        db.pool().clone(),
        bus.clone(),
        RelayConfig {
            poll_interval: Duration::from_millis(100),
            batch_size: 50,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            retain_sent: None,
        },
    );
    let handler = Arc::new(Effects::new(Mode::Apply));
    let consumer = Consumer::spawn(
        db.pool().clone(),
        bus.clone(),
        ConsumerConfig {
            // A message lost in flight during the outage is redelivered
            // after ack_wait; keep it short so the test stays short.
            ack_wait: Duration::from_secs(3),
            retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(1),
            // Never dead-letter here: the handler itself does not fail.
            max_failures: 1000,
            ..ConsumerConfig::new("resilience", &["findings.>", "tracker.>"])
        },
        handler.clone(),
    )
    .expect("consumer");

    // The producer: one event per transaction, sometimes two, about 4 s.
    let pool = db.pool().clone();
    let producer = tokio::spawn(async move {
        let mut ids = Vec::new();
        let mut n = 0;
        while n < EVENTS {
            let per_tx = if n % 7 == 0 && n + 1 < EVENTS { 2 } else { 1 };
            let events: Vec<_> = (n..n + per_tx)
                .map(|i| sample_event(i, ["hertfordshire", "kent", "essex"][(i % 3) as usize]))
                .collect();
            let mut tx = pool.begin().await.expect("begin");
            outbox::append(&mut tx, &events).await.expect("append");
            tx.commit().await.expect("commit");
            ids.extend(events.into_iter().map(|e| e.event_id));
            n += per_tx;
            tokio::time::sleep(Duration::from_millis(12)).await;
        }
        ids
    });

    // Let traffic flow, then take NATS away for two seconds.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let applied_before_outage = handler.calls();
    match kind {
        Outage::Restart => nats.stop().await,
        Outage::Crash => nats.kill().await,
    }
    let outage = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let backlog_during_outage = outbox::backlog(db.pool()).await.expect("backlog");
    nats.restart().await;
    let outage = outage.elapsed();

    let appended = producer.await.expect("producer");
    assert_eq!(appended.len() as u64, EVENTS);

    let pool = db.pool().clone();
    let all_applied = wait_until(Duration::from_secs(30), || {
        let pool = pool.clone();
        async move { count(&pool, "SELECT count(*) FROM effects").await >= EVENTS as i64 }
    })
    .await;
    // Give a late duplicate the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let effects: Vec<String> = sqlx::query_scalar("SELECT event_id FROM effects")
        .fetch_all(db.pool())
        .await
        .expect("effects");
    let stats = consumer.stats();
    let relay_stats = relay.stats();
    eprintln!(
        "resilience ({kind:?}): outage {outage:?}, applied before outage {applied_before_outage}, \
         backlog during outage {backlog_during_outage}, relay published {} (failed passes {}), \
         consumer applied {} duplicates {} failures {} dead-lettered {}, total {:?}",
        relay_stats.published(),
        relay_stats.failures(),
        stats.applied(),
        stats.duplicates(),
        stats.failures(),
        stats.dead_lettered(),
        started.elapsed()
    );
    assert!(
        all_applied,
        "only {} of {EVENTS} events applied",
        effects.len()
    );
    assert!(
        applied_before_outage > 0,
        "traffic flowed before the outage"
    );
    assert!(
        backlog_during_outage > 0,
        "events were committed while NATS was away"
    );

    // None lost, none twice.
    let expected: HashSet<&String> = appended.iter().collect();
    let got: HashSet<&String> = effects.iter().collect();
    assert_eq!(effects.len(), appended.len(), "no event applied twice");
    assert_eq!(got, expected, "exactly the appended events were applied");
    assert_eq!(handler.calls(), EVENTS, "the handler ran once per event");
    assert_eq!(
        count(db.pool(), "SELECT count(*) FROM closeout_applied_events").await,
        EVENTS as i64
    );
    assert_eq!(stats.applied(), EVENTS);
    assert_eq!(stats.dead_lettered(), 0);
    assert_eq!(outbox::backlog(db.pool()).await.expect("backlog"), 0);

    consumer.stop().await;
    assert!(relay.drain_and_stop(Duration::from_secs(5)).await);
    test_bus.cleanup().await;
    db.drop_database().await;
    nats.stop().await;
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The same with SIGKILL: the consumer's acks recorded just before the
/// crash may be lost, so events come again; they must change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_applied_exactly_once_across_a_nats_crash() {
    run(Outage::Crash).await;
}
