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

/// Every read-model table, row by row, as text in a fixed order: the
/// columns a replay cannot reproduce (when a row was received) left out,
/// and counts of zero (a live tally a key once had) left out too; and the
/// tables' indexes (a rebuild drops the history's and builds them again).
async fn tables(pool: &sqlx::PgPool) -> Vec<(String, Vec<String>)> {
    let names: Vec<&str> = closeout_metrics::READ_MODEL_TABLES.to_vec();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
         AND tablename = ANY($1) ORDER BY 1",
    )
    .bind(&names)
    .fetch_all(pool)
    .await
    .expect("reading the indexes");
    assert!(
        indexes.iter().any(|i| i.contains("events_by_aggregate")),
        "the history's indexes are there: {indexes:#?}"
    );
    let mut out = vec![("indexes".to_string(), indexes)];
    for table in closeout_metrics::READ_MODEL_TABLES {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT r::text FROM (SELECT to_jsonb(t) - 'received_at' AS r FROM {table} t) x \
             WHERE NOT r @> '{{\"n\": 0}}' \
             AND NOT r @> '{{\"opened\": 0, \"open\": 0, \"closed\": 0}}' ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"));
        out.push((table.to_string(), rows));
    }
    out
}

fn assert_same_tables(live: &[(String, Vec<String>)], rebuilt: &[(String, Vec<String>)]) {
    assert_eq!(live.len(), rebuilt.len());
    for ((table, a), (_, b)) in live.iter().zip(rebuilt) {
        let only_live: Vec<&String> = a.iter().filter(|r| !b.contains(r)).collect();
        let only_rebuilt: Vec<&String> = b.iter().filter(|r| !a.contains(r)).collect();
        assert!(
            a == b,
            "{table} differs: only live {only_live:#?}, only rebuilt {only_rebuilt:#?}"
        );
    }
}

/// The rebuild folds items and derives their tallies its own way
/// (`replay`): every table must hold exactly what the live consumers wrote
/// from the same events, out of order and duplicated; and a rebuild stopped
/// part way (here by its timeout) leaves a state that starting the service
/// completes, and that a rerun repairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_writes_every_table_as_the_live_consumers_do() {
    let mut h = Harness::new().await;
    let ids = scenario::new_ids();
    let events = scenario::history(&ids);
    h.start().await;
    h.publish(&events).await;
    for event in events.iter().step_by(5) {
        h.publish_duplicate(event).await;
    }
    h.caught_up().await;
    h.stop().await;
    let pool = h.db.pool().clone();
    let live = tables(&pool).await;
    assert!(
        live.iter()
            .any(|(t, rows)| t == "items" && !rows.is_empty())
            && live
                .iter()
                .any(|(t, rows)| t == "tally_closing" && !rows.is_empty()),
        "the scenario has items and closures"
    );

    closeout_metrics::rebuild(&h.config, Duration::from_secs(60))
        .await
        .expect("rebuild");
    assert_same_tables(&live, &tables(&pool).await);

    // Interrupted: no time to catch up (or, if it did, a complete rebuild).
    let _ = closeout_metrics::rebuild(&h.config, Duration::ZERO).await;
    h.start().await;
    h.caught_up().await;
    h.stop().await;
    assert_same_tables(&live, &tables(&pool).await);

    let _ = closeout_metrics::rebuild(&h.config, Duration::ZERO).await;
    closeout_metrics::rebuild(&h.config, Duration::from_secs(60))
        .await
        .expect("rerun");
    assert_same_tables(&live, &tables(&pool).await);
    h.cleanup().await;
}
