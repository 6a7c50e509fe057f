//! WatchItems routes: a stream of one organisation is sent that
//! organisation's batches only, and the tail's passes are spaced while
//! streams are open. Streams of one organisation, of every organisation
//! and resuming in the middle, opened (and some closed) at any moment while
//! writers run, each still get exactly their share of the log, in order.

mod support;

use closeout_proto as pb;
use std::time::Duration;
use support::{World, last_sequence, open_one, spawn_owner_writers};
use tonic::Streaming;

/// Takes exactly `n` changes from the stream (10 s at most for each).
async fn take(stream: &mut Streaming<pb::WatchItemsResponse>, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a change within 10 s")
            .expect("stream ok")
            .expect("stream open");
        out.push(next.sequence as i64);
    }
    out
}

/// Nothing more has arrived (after the caller waited a while).
async fn quiet(stream: &mut Streaming<pb::WatchItemsResponse>) {
    let next = tokio::time::timeout(Duration::from_millis(1), stream.message()).await;
    assert!(next.is_err(), "unexpected change: {next:?}");
}

/// A stream of `organisation` ("" for every one) after `after`, opened as
/// its own watcher (streams per caller are limited).
async fn open(
    world: &World,
    n: usize,
    organisation: &str,
    after: i64,
) -> Streaming<pb::WatchItemsResponse> {
    let watcher = closeout_testkit::Caller::viewer().subject(&format!("watcher-{n}"));
    let request = watcher.request(pb::WatchItemsRequest {
        organisation_id: organisation.into(),
        after_sequence: after as u64,
        ..Default::default()
    });
    world
        .client
        .clone()
        .watch_items(request)
        .await
        .expect("watch")
        .into_inner()
}

/// What a stream of `organisation` resuming after `after` must send, in
/// the log's order.
async fn expected(world: &World, organisation: &str, after: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT e.sequence FROM item_events e, item_events a \
         WHERE a.sequence = $2 AND (e.watch_xid, e.sequence) > (a.watch_xid, a.sequence) \
           AND ($1 = '' OR e.organisation_id = $1) \
         ORDER BY e.watch_xid, e.sequence",
    )
    .bind(organisation)
    .bind(after)
    .fetch_all(world.db.pool())
    .await
    .expect("log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_opened_at_any_moment_get_their_organisations_changes_in_order() {
    let world = World::new().await;
    let organisations = ["kent", "essex", "surrey"];
    let mut items = Vec::new();
    for n in 0..9 {
        items.push(open_one(&world, organisations[n % 3], None).await);
    }
    let start = last_sequence(&world).await as i64;

    // Writers: each item's owner assigned eight times, all items at once.
    const ROUNDS: u64 = 8;
    let writers = spawn_owner_writers(&world, items, ROUNDS, Duration::from_millis(3));

    // Meanwhile streams open every few milliseconds: from the start and from
    // wherever the log is, for kent, essex and everyone (surrey's changes
    // are nobody's but the latter's); each round, a kent stream opened in
    // the round before is closed, so kent's route is left and made again.
    let mut streams = Vec::new();
    let mut closing: Option<Streaming<pb::WatchItemsResponse>> = None;
    let mut n = 0;
    for _ in 0..8 {
        for organisation in ["kent", "essex", ""] {
            let now = last_sequence(&world).await as i64;
            for after in [start, now] {
                streams.push((
                    organisation,
                    after,
                    open(&world, n, organisation, after).await,
                ));
                n += 1;
            }
        }
        drop(closing.take());
        closing = Some(open(&world, n, "kent", start).await);
        n += 1;
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    drop(closing);

    for (organisation, after, stream) in &mut streams {
        let want = expected(&world, organisation, *after).await;
        let seen = take(stream, want.len()).await;
        assert_eq!(
            seen, want,
            "stream of {organisation:?} after {after}: every change, in the log's order"
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    for (_, _, stream) in &mut streams {
        quiet(stream).await;
    }
    assert_eq!(
        expected(&world, "", start).await.len(),
        9 * ROUNDS as usize,
        "every write logged"
    );
    world.finish().await;
}
