//! Rebuild: dropping the read models and replaying the stream from the
//! start gives exactly the answers the incremental read models gave.

mod scenario;

use scenario::Harness;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_answers_exactly_as_before() {
    let mut h = Harness::new().await;
    let ids = scenario::new_ids();
    let events = scenario::history(&ids);
    h.start().await;
    h.publish(&events).await;
    for event in events.iter().step_by(7) {
        h.publish_duplicate(event).await;
    }
    h.caught_up().await;
    let before = scenario::all_answers(&h).await;
    assert!(
        before
            .iter()
            .any(|a| a.contains("hertfordshire None scorecard Ok")),
        "the scenario answers something"
    );
    h.stop().await;

    let rebuilt = closeout_metrics::rebuild(&h.config, Duration::from_secs(60))
        .await
        .expect("rebuild");
    assert_eq!(rebuilt.events as usize, events.len());

    h.start().await;
    let after = scenario::all_answers(&h).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }

    // The replay starts from scratch: the read models were emptied, and a
    // second rebuild with the service running changes nothing either.
    let rebuilt = closeout_metrics::rebuild(&h.config, Duration::from_secs(60))
        .await
        .expect("second rebuild");
    assert_eq!(rebuilt.events as usize, events.len());
    h.caught_up().await;
    assert_eq!(scenario::all_answers(&h).await, before);
    h.cleanup().await;
}
