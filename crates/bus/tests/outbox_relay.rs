//! The outbox and relay against the shared PostgreSQL and NATS: committed
//! events are published once each, in order, with their headers; rolled
//! back ones never are.

mod common;

use closeout_bus::event::{
    HEADER_EVENT_TYPE, HEADER_MSG_ID, HEADER_TRACEPARENT, is_valid_traceparent,
};
use closeout_bus::{EventEnvelope, Relay, RelayConfig, outbox, subject};
use closeout_testkit::{TestBus, TestDatabase};
use common::{count, sample_event, wait_until};
use futures::StreamExt;
use prost::Message;
use std::time::Duration;

fn fast_relay() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(200),
        batch_size: 50,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        retain_sent: None,
    }
}

#[tokio::test]
async fn committed_events_are_published_once_with_headers_and_rolled_back_ones_never() {
    let db = TestDatabase::create().await;
    let test_bus = TestBus::new();
    let bus = test_bus.connect().await;
    outbox::install_schema(db.pool()).await.expect("schema");
    // Twice: the schema is idempotent.
    outbox::install_schema(db.pool())
        .await
        .expect("schema again");

    // An independent subscriber on everything under the test prefix.
    let watcher = async_nats::connect(&test_bus.config().nats_url)
        .await
        .expect("watcher connects");
    let mut seen = watcher
        .subscribe(format!("{}.>", test_bus.config().subject_prefix))
        .await
        .expect("subscribe");
    watcher.flush().await.expect("flush");

    let committed: Vec<EventEnvelope> = (0..6)
        .map(|n| {
            sample_event(
                n,
                if n < 3 {
                    "hertfordshire"
                } else {
                    "Avon and Somerset"
                },
            )
        })
        .collect();
    let mut tx = db.pool().begin().await.expect("begin");
    outbox::append(&mut tx, &committed[..4])
        .await
        .expect("append");
    tx.commit().await.expect("commit");

    let rolled_back: Vec<EventEnvelope> = (10..13).map(|n| sample_event(n, "kent")).collect();
    let mut tx = db.pool().begin().await.expect("begin");
    outbox::append(&mut tx, &rolled_back).await.expect("append");
    tx.rollback().await.expect("rollback");

    let mut tx = db.pool().begin().await.expect("begin");
    outbox::append(&mut tx, &committed[4..])
        .await
        .expect("append");
    tx.commit().await.expect("commit");

    let relay = Relay::spawn(db.pool().clone(), bus.clone(), fast_relay());

    let mut received = Vec::new();
    let collect = async {
        while received.len() < committed.len() {
            match seen.next().await {
                Some(message) => received.push(message),
                None => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("every committed event arrives");
    // Nothing more comes (no duplicate, nothing rolled back).
    let extra = tokio::time::timeout(Duration::from_millis(700), seen.next()).await;
    assert!(extra.is_err(), "unexpected extra message: {extra:?}");

    for (message, original) in received.iter().zip(&committed) {
        let expected_subject = format!(
            "{}.{}",
            test_bus.config().subject_prefix,
            subject::relative_subject(
                original.payload.as_ref().expect("payload"),
                &original.organisation_id
            )
        );
        assert_eq!(message.subject.as_str(), expected_subject);
        let headers = message.headers.as_ref().expect("headers");
        assert_eq!(
            headers.get(HEADER_MSG_ID).map(|v| v.as_str()),
            Some(original.event_id.as_str())
        );
        assert_eq!(
            headers.get(HEADER_EVENT_TYPE).map(|v| v.as_str()),
            Some(original.event_type.as_str())
        );
        let tp = headers.get(HEADER_TRACEPARENT).expect("traceparent");
        assert!(is_valid_traceparent(tp.as_str()), "{tp}");
        let decoded = EventEnvelope::decode(message.payload.clone()).expect("decodes");
        assert_eq!(&decoded, original);
    }
    assert!(received[3].subject.ends_with(".avon-and-somerset"));

    // The stream holds exactly the committed events, in commit order.
    let mut stream = bus
        .jetstream()
        .get_stream(&test_bus.config().stream_name)
        .await
        .expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 6);
    assert_eq!(outbox::backlog(db.pool()).await.expect("backlog"), 0);
    assert_eq!(relay.stats().published(), 6);
    assert_eq!(
        count(
            db.pool(),
            "SELECT count(*) FROM closeout_outbox WHERE sent_at IS NOT NULL"
        )
        .await,
        6
    );

    // Graceful shutdown publishes what was committed just before it.
    let mut tx = db.pool().begin().await.expect("begin");
    outbox::append(&mut tx, &[sample_event(20, "kent")])
        .await
        .expect("append");
    tx.commit().await.expect("commit");
    assert!(relay.drain_and_stop(Duration::from_secs(5)).await);
    assert_eq!(outbox::backlog(db.pool()).await.expect("backlog"), 0);

    test_bus.cleanup().await;
    db.drop_database().await;
}

#[tokio::test]
async fn replicas_publish_in_outbox_order() {
    let db = TestDatabase::create().await;
    let test_bus = TestBus::new();
    let bus = test_bus.connect().await;
    outbox::install_schema(db.pool()).await.expect("schema");

    // Three relays on one database, as three replicas of a service would.
    let relays: Vec<_> = (0..3)
        .map(|_| Relay::spawn(db.pool().clone(), bus.clone(), fast_relay()))
        .collect();
    let mut ids = Vec::new();
    for batch in 0..40u64 {
        let events: Vec<_> = (0..5)
            .map(|i| sample_event(batch * 5 + i, ["a", "b", "c"][(i % 3) as usize]))
            .collect();
        ids.extend(events.iter().map(|e| e.event_id.clone()));
        let mut tx = db.pool().begin().await.expect("begin");
        outbox::append(&mut tx, &events).await.expect("append");
        tx.commit().await.expect("commit");
    }
    let pool = db.pool().clone();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let pool = pool.clone();
            async move {
                outbox::backlog(&pool)
                    .await
                    .map(|n| n == 0)
                    .unwrap_or(false)
            }
        })
        .await,
        "relays published everything"
    );
    let total: u64 = relays.iter().map(|r| r.stats().published()).sum();
    assert_eq!(total, 200, "each row published once across replicas");
    for relay in relays {
        relay.stop().await;
    }

    // Read the stream back in sequence order and compare with the outbox.
    let stream = bus
        .jetstream()
        .get_stream(&test_bus.config().stream_name)
        .await
        .expect("stream");
    let mut order = Vec::new();
    for sequence in 1..=200u64 {
        let message = stream.get_raw_message(sequence).await.expect("message");
        let id = message
            .headers
            .get(HEADER_MSG_ID)
            .expect("msg id")
            .as_str()
            .to_string();
        order.push(id);
    }
    assert_eq!(order, ids, "stream order is outbox order");

    test_bus.cleanup().await;
    db.drop_database().await;
}
