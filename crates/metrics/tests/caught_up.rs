//! The goals a rebuild waits for come from the stream itself: for each
//! consumer, the sequence of the last message on its subjects (a wildcard
//! "last by subject" get, answered by the stream's leader), not the
//! stream's last sequence, which the other consumer's subjects may hold.

use closeout_bus::Bus;
use closeout_metrics::consume::{self, Goal};
use closeout_testkit::TestBus;

async fn publish(bus: &Bus, relative: &str) -> u64 {
    bus.publish(
        bus.subject(relative),
        async_nats::HeaderMap::new(),
        Default::default(),
    )
    .await
    .expect("publish")
    .sequence
}

#[tokio::test]
async fn goals_are_the_last_sequence_on_each_consumers_subjects() {
    let test_bus = TestBus::new();
    let bus = test_bus.connect().await;
    bus.ensure_stream().await.expect("stream");

    // Nothing published yet: nothing to wait for.
    let empty = consume::goals(&bus, &[]).await.expect("goals");
    assert_eq!(empty, vec![Goal::default(); 2]);

    publish(&bus, "findings.v1.a").await;
    let findings_last = publish(&bus, "findings.v1.b").await;
    let tracker_last = publish(&bus, "tracker.v1.c").await;
    // Messages outside both filters (a dead letter) move neither goal.
    publish(&bus, "dlq.metrics-tracker").await;

    let goals = consume::goals(&bus, &[Some(7), None]).await.expect("goals");
    assert_eq!(
        goals,
        vec![
            Goal {
                last_sequence: findings_last,
                replaced: Some(7),
            },
            Goal {
                last_sequence: tracker_last,
                replaced: None,
            },
        ]
    );
    test_bus.cleanup().await;
}
