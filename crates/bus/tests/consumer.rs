//! Consumers against the shared PostgreSQL and NATS: an event is applied
//! once however often it arrives; what can never be applied goes to the
//! dead-letter subject and is counted.

mod common;

use async_nats::HeaderMap;
use closeout_bus::event::{
    HEADER_DLQ_CONSUMER, HEADER_DLQ_DELIVERED, HEADER_DLQ_ERROR, HEADER_DLQ_EVENT_ID,
    HEADER_DLQ_SUBJECT, HEADER_MSG_ID,
};
use closeout_bus::{Bus, Consumer, ConsumerConfig, outbox};
use closeout_testkit::{TestBus, TestDatabase};
use common::{Effects, Mode, count, create_effects_table, sample_event, wait_until};
use futures::StreamExt;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    db: TestDatabase,
    test_bus: TestBus,
    bus: Bus,
}

async fn setup() -> Setup {
    let db = TestDatabase::create().await;
    let test_bus = TestBus::new();
    let bus = test_bus.connect().await;
    outbox::install_schema(db.pool()).await.expect("schema");
    create_effects_table(db.pool()).await;
    Setup { db, test_bus, bus }
}

impl Setup {
    async fn teardown(self) {
        self.test_bus.cleanup().await;
        self.db.drop_database().await;
    }
}

fn fast_config(durable: &str, filters: &[&str]) -> ConsumerConfig {
    ConsumerConfig {
        max_failures: 3,
        retry_delay: Duration::from_millis(50),
        max_retry_delay: Duration::from_millis(200),
        ack_wait: Duration::from_secs(5),
        ..ConsumerConfig::new(durable, filters)
    }
}

/// Publishes `payload` with an explicit message id, bypassing the relay.
async fn publish_raw(bus: &Bus, subject: String, msg_id: &str, payload: Vec<u8>) {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_MSG_ID, msg_id);
    bus.publish(subject, headers, payload.into())
        .await
        .expect("publish");
}

#[tokio::test]
async fn the_same_event_delivered_twice_is_applied_once() {
    let s = setup().await;
    let handler = Arc::new(Effects::new(Mode::Apply));
    let consumer = Consumer::spawn(
        s.db.pool().clone(),
        s.bus.clone(),
        fast_config("projector", &["findings.>", "tracker.>"]),
        handler.clone(),
    )
    .expect("consumer");

    let event = sample_event(2, "hertfordshire");
    let other = sample_event(3, "hertfordshire");
    let subject = s.bus.subject_of(&event).expect("subject");
    // Two stream messages (different message ids) carrying one event.
    publish_raw(&s.bus, subject.clone(), "copy-1", event.encode_to_vec()).await;
    publish_raw(&s.bus, subject, "copy-2", event.encode_to_vec()).await;
    s.bus.publish_event(&other).await.expect("publish other");
    // The same message id again: JetStream drops it as a duplicate.
    let ack = s.bus.publish_event(&other).await.expect("publish again");
    assert!(ack.duplicate);

    let stats = consumer.stats();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let stats = stats.clone();
            async move { stats.applied() + stats.duplicates() >= 3 }
        })
        .await,
        "all three messages handled: {stats:?}"
    );
    // A moment for anything unexpected to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats.applied(), 2);
    assert_eq!(stats.duplicates(), 1);
    assert_eq!(handler.calls(), 2);
    assert_eq!(count(s.db.pool(), "SELECT count(*) FROM effects").await, 2);
    assert_eq!(
        count(
            s.db.pool(),
            "SELECT count(*) FROM closeout_applied_events WHERE consumer = 'projector'"
        )
        .await,
        2
    );

    // A restarted consumer (same durable) re-applies nothing.
    consumer.stop().await;
    let again = Consumer::spawn(
        s.db.pool().clone(),
        s.bus.clone(),
        fast_config("projector", &["findings.>", "tracker.>"]),
        handler.clone(),
    )
    .expect("consumer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(handler.calls(), 2);
    again.stop().await;
    s.teardown().await;
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_the_consumer_goes_on() {
    let s = setup().await;
    let dlq_watch = async_nats::connect(&s.test_bus.config().nats_url)
        .await
        .expect("connect");
    let mut dead = dlq_watch
        .subscribe(s.bus.dlq_subject("projector"))
        .await
        .expect("subscribe");
    dlq_watch.flush().await.expect("flush");

    let handler = Arc::new(Effects::new(Mode::Apply));
    let consumer = Consumer::spawn(
        s.db.pool().clone(),
        s.bus.clone(),
        fast_config("projector", &["findings.>"]),
        handler.clone(),
    )
    .expect("consumer");

    let garbage_subject = s.bus.subject("findings.v1.finding.recorded.hertfordshire");
    publish_raw(
        &s.bus,
        garbage_subject.clone(),
        "garbage-1",
        vec![0xff, 0xff, 0xff, 0x01],
    )
    .await;
    let good = sample_event(4, "hertfordshire");
    s.bus.publish_event(&good).await.expect("publish");

    let letter = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("a dead letter arrives")
        .expect("subscription open");
    let headers = letter.headers.as_ref().expect("headers");
    assert_eq!(
        headers.get(HEADER_DLQ_SUBJECT).map(|v| v.as_str()),
        Some(garbage_subject.as_str())
    );
    assert!(
        headers
            .get(HEADER_DLQ_ERROR)
            .is_some_and(|v| v.as_str().contains("undecodable")),
        "{headers:?}"
    );
    assert_eq!(
        headers.get(HEADER_DLQ_CONSUMER).map(|v| v.as_str()),
        Some("projector")
    );
    assert!(headers.get(HEADER_DLQ_EVENT_ID).is_none());
    assert_eq!(letter.payload.as_ref(), &[0xff, 0xff, 0xff, 0x01]);

    let stats = consumer.stats();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let stats = stats.clone();
            async move { stats.applied() == 1 }
        })
        .await,
        "the good event after the bad one is applied: {stats:?}"
    );
    assert_eq!(stats.dead_lettered(), 1);
    assert_eq!(handler.calls(), 1);
    consumer.stop().await;
    s.teardown().await;
}

#[tokio::test]
async fn a_handler_that_always_fails_ends_in_the_dead_letter_subject() {
    let s = setup().await;
    let dlq_watch = async_nats::connect(&s.test_bus.config().nats_url)
        .await
        .expect("connect");
    let mut dead = dlq_watch
        .subscribe(s.bus.dlq_subject("failing"))
        .await
        .expect("subscribe");
    dlq_watch.flush().await.expect("flush");

    let handler = Arc::new(Effects::new(Mode::AlwaysTransient));
    let consumer = Consumer::spawn(
        s.db.pool().clone(),
        s.bus.clone(),
        fast_config("failing", &["tracker.>"]),
        handler.clone(),
    )
    .expect("consumer");
    let event = sample_event(5, "kent");
    s.bus.publish_event(&event).await.expect("publish");

    let letter = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("a dead letter arrives")
        .expect("subscription open");
    let headers = letter.headers.as_ref().expect("headers");
    assert_eq!(
        headers.get(HEADER_DLQ_DELIVERED).map(|v| v.as_str()),
        Some("3")
    );
    assert_eq!(
        headers.get(HEADER_DLQ_EVENT_ID).map(|v| v.as_str()),
        Some(event.event_id.as_str())
    );
    assert!(
        headers
            .get(HEADER_DLQ_ERROR)
            .is_some_and(|v| v.as_str().contains("not ready")),
        "{headers:?}"
    );
    let stats = consumer.stats();
    assert!(
        wait_until(Duration::from_secs(5), || {
            let stats = stats.clone();
            async move { stats.dead_lettered() == 1 }
        })
        .await
    );
    // Acked after dead-lettering: no further delivery.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(handler.calls(), 3);
    assert_eq!(stats.failures(), 3);
    assert_eq!(stats.applied(), 0);
    assert_eq!(
        count(s.db.pool(), "SELECT count(*) FROM closeout_applied_events").await,
        0
    );
    consumer.stop().await;
    s.teardown().await;
}

#[tokio::test]
async fn a_permanent_error_is_dead_lettered_at_once() {
    let s = setup().await;
    let handler = Arc::new(Effects::new(Mode::Permanent));
    let consumer = Consumer::spawn(
        s.db.pool().clone(),
        s.bus.clone(),
        fast_config("strict", &["findings.>"]),
        handler.clone(),
    )
    .expect("consumer");
    s.bus
        .publish_event(&sample_event(6, "kent"))
        .await
        .expect("publish");
    let stats = consumer.stats();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let stats = stats.clone();
            async move { stats.dead_lettered() == 1 }
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handler.calls(), 1);

    // The dead letter is in the stream, outside every service filter.
    let mut stream = s
        .bus
        .jetstream()
        .get_stream(&s.test_bus.config().stream_name)
        .await
        .expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, 2);
    let letter = stream
        .get_last_raw_message_by_subject(&s.bus.dlq_subject("strict"))
        .await
        .expect("dead letter stored");
    assert!(
        letter
            .headers
            .get(HEADER_DLQ_ERROR)
            .is_some_and(|v| v.as_str().contains("never apply"))
    );
    consumer.stop().await;
    s.teardown().await;
}
