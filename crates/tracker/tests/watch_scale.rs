//! WatchItems under load: many writers on different items at once (there
//! is no global lock, yet the stream has every change exactly once in one
//! resumable order), and more open streams than the pool has connections
//! (idle streams hold none).

mod support;

use closeout_proto as pb;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::{World, last_sequence, open_one, spawn_owner_writers};
use tonic::Streaming;

/// Takes exactly `n` changes from the stream (10 s at most for each).
async fn take(
    stream: &mut Streaming<pb::WatchItemsResponse>,
    n: usize,
) -> Vec<pb::WatchItemsResponse> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a change within 10 s")
            .expect("stream ok")
            .expect("stream open");
        out.push(next);
    }
    out
}

/// Nothing more arrives within a short while.
async fn quiet(stream: &mut Streaming<pb::WatchItemsResponse>) {
    let next = tokio::time::timeout(Duration::from_millis(400), stream.message()).await;
    assert!(next.is_err(), "unexpected change: {next:?}");
}

async fn watch_after(world: &World, after_sequence: u64) -> Streaming<pb::WatchItemsResponse> {
    world
        .client
        .clone()
        .watch_items(pb::WatchItemsRequest {
            after_sequence,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner()
}

/// Assigns an owner to each item `rounds` times, one writer per item, all
/// at once.
async fn write_concurrently(world: &World, items: Vec<pb::TrackedItem>, rounds: u64) {
    for writer in spawn_owner_writers(world, items, rounds, Duration::ZERO) {
        writer.await.expect("writer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writers_are_streamed_once_in_a_resumable_order() {
    let world = World::new().await;
    let mut items = Vec::new();
    for n in 0..16 {
        let organisation = if n % 2 == 0 { "kent" } else { "essex" };
        items.push(open_one(&world, organisation, None).await);
    }
    let start = last_sequence(&world).await;
    let mut stream = watch_after(&world, start).await;
    const ROUNDS: u64 = 8;
    let expected = items.len() * ROUNDS as usize;
    let writing = write_concurrently(&world, items, ROUNDS);
    let (seen, ()) = tokio::join!(take(&mut stream, expected), writing);
    quiet(&mut stream).await;

    // Every change exactly once, in the order of the log.
    let sequences: Vec<i64> = seen.iter().map(|c| c.sequence as i64).collect();
    let unique: HashSet<i64> = sequences.iter().copied().collect();
    assert_eq!(unique.len(), expected, "no change twice");
    let logged: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM item_events WHERE sequence > $1 ORDER BY watch_xid, sequence",
    )
    .bind(start as i64)
    .fetch_all(world.db.pool())
    .await
    .expect("log");
    assert_eq!(sequences, logged, "no gap, log order");
    // Each item's changes in version order, each with its item.
    let mut versions: HashMap<String, u64> = HashMap::new();
    for change in &seen {
        let event = change.event.as_ref().expect("event");
        let item = change.item.as_ref().expect("item");
        assert_eq!(event.aggregate_id, item.id);
        assert_eq!(event.aggregate_version, item.version);
        let previous = versions.insert(item.id.clone(), item.version).unwrap_or(1);
        assert_eq!(
            item.version,
            previous + 1,
            "versions of {} in order",
            item.id
        );
    }

    // Resuming from the middle gives exactly the rest.
    let middle = expected / 2;
    let mut resumed = watch_after(&world, seen[middle].sequence).await;
    let rest = take(&mut resumed, expected - middle - 1).await;
    quiet(&mut resumed).await;
    let rest: Vec<u64> = rest.iter().map(|c| c.sequence).collect();
    let expected_rest: Vec<u64> = seen[middle + 1..].iter().map(|c| c.sequence).collect();
    assert_eq!(rest, expected_rest);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_streams_than_pooled_connections_all_receive_changes() {
    let world = World::with(|config| config.common.database_max_connections = 5).await;
    let a = open_one(&world, "kent", None).await;
    let b = open_one(&world, "essex", None).await;
    let start = last_sequence(&world).await;
    let mut streams = Vec::new();
    for n in 0..50 {
        // Streams per caller are limited: fifty watchers, one stream each.
        let watcher = closeout_testkit::Caller::viewer().subject(&format!("watcher-{n}"));
        let request = watcher.request(pb::WatchItemsRequest {
            after_sequence: start,
            ..Default::default()
        });
        let stream = world.client.clone().watch_items(request).await;
        streams.push(stream.expect("watch").into_inner());
    }
    // The open streams leave the pool to the commands.
    write_concurrently(&world, vec![a, b], 3).await;
    let logged: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM item_events WHERE sequence > $1 ORDER BY watch_xid, sequence",
    )
    .bind(start as i64)
    .fetch_all(world.db.pool())
    .await
    .expect("log");
    assert_eq!(logged.len(), 6);
    for stream in &mut streams {
        let seen: Vec<i64> = take(stream, 6)
            .await
            .iter()
            .map(|c| c.sequence as i64)
            .collect();
        assert_eq!(seen, logged);
    }
    world.finish().await;
}
