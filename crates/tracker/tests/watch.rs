//! WatchItems: replay then live changes, filters, and a reconnect that
//! resumes from the last sequence seen with no gap and no duplicate.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use std::time::Duration;
use support::{World, body, inspectorate, open_one};
use tonic::Streaming;

/// Takes exactly `n` changes from the stream (5 s at most for each).
async fn take(
    stream: &mut Streaming<pb::WatchItemsResponse>,
    n: usize,
) -> Vec<pb::WatchItemsResponse> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a change within 5 s")
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

async fn watch(world: &World, request: pb::WatchItemsRequest) -> Streaming<pb::WatchItemsResponse> {
    world
        .client
        .clone()
        .watch_items(request)
        .await
        .expect("watch")
        .into_inner()
}

async fn assign(
    world: &World,
    item: &pb::TrackedItem,
    version: u64,
    owner: &str,
) -> pb::TrackedItem {
    world
        .client
        .clone()
        .assign_owner(inspectorate(pb::AssignOwnerRequest {
            item_id: item.id.clone(),
            expected_version: version,
            owner: owner.into(),
        }))
        .await
        .expect("assign")
        .into_inner()
        .item
        .expect("item")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_every_change_in_order_across_a_reconnect() {
    let world = World::new().await;
    let a = open_one(&world, "kent", None).await;
    let b = open_one(&world, "kent", None).await;
    let e = open_one(&world, "essex", None).await;

    // Replay of what happened so far.
    let mut stream = watch(&world, pb::WatchItemsRequest::default()).await;
    let mut seen = take(&mut stream, 3).await;
    // Then live changes.
    assign(&world, &a, 1, "first owner").await;
    seen.extend(take(&mut stream, 1).await);
    drop(stream);

    // Changes while disconnected.
    let a = assign(&world, &a, 2, "second owner").await;
    world
        .client
        .clone()
        .start_item(body(
            pb::StartItemRequest {
                item_id: b.id.clone(),
                expected_version: 1,
                note: "starting".into(),
            },
            "kent",
        ))
        .await
        .expect("start");
    let last = seen.last().expect("seen").sequence;
    let mut stream = watch(
        &world,
        pb::WatchItemsRequest {
            after_sequence: last,
            ..Default::default()
        },
    )
    .await;
    seen.extend(take(&mut stream, 3).await);
    assign(&world, &e, 1, "essex owner").await;
    seen.extend(take(&mut stream, 1).await);
    quiet(&mut stream).await;

    // Every change once, in the order of the log (the order WatchItems
    // releases it in: `watch_xid`, then `sequence`), each with its item.
    let sequences: Vec<u64> = seen.iter().map(|c| c.sequence).collect();
    let logged: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM item_events ORDER BY watch_xid, sequence")
            .fetch_all(world.db.pool())
            .await
            .expect("log");
    assert_eq!(
        sequences,
        logged.iter().map(|s| *s as u64).collect::<Vec<_>>()
    );
    for change in &seen {
        let event = change.event.as_ref().expect("event");
        let item = change.item.as_ref().expect("item");
        assert_eq!(event.aggregate_id, item.id);
        assert_eq!(event.aggregate_version, item.version);
    }
    let kinds: Vec<&str> = seen
        .iter()
        .map(|c| {
            c.event
                .as_ref()
                .map(|e| e.event_type.as_str())
                .unwrap_or("")
        })
        .map(|t| t.trim_start_matches("closeout.v1."))
        .collect();
    assert_eq!(
        kinds,
        [
            "ItemOpened",
            "ItemOpened",
            "ItemOpened",
            "OwnerAssigned",
            "OwnerAssigned",
            "ProgressNoted",
            "StatusChanged",
            "OwnerAssigned",
        ]
    );
    assert_eq!(
        seen[4].item.as_ref().map(|i| i.owner.as_str()),
        Some("second owner")
    );
    assert_eq!(a.version, 3);

    // Filters: one organisation; one status (before or after the change).
    let mut essex = watch(
        &world,
        pb::WatchItemsRequest {
            organisation_id: "essex".into(),
            ..Default::default()
        },
    )
    .await;
    let changes = take(&mut essex, 2).await;
    assert!(
        changes
            .iter()
            .all(|c| c.item.as_ref().map(|i| i.organisation_id.as_str()) == Some("essex"))
    );
    quiet(&mut essex).await;
    let mut in_progress = watch(
        &world,
        pb::WatchItemsRequest {
            statuses: vec![pb::ItemStatus::InProgress as i32],
            ..Default::default()
        },
    )
    .await;
    let changes = take(&mut in_progress, 1).await;
    match changes[0].event.as_ref().and_then(|e| e.payload.as_ref()) {
        Some(Payload::StatusChanged(s)) => {
            assert_eq!(s.to_status, pb::ItemStatus::InProgress as i32)
        }
        other => panic!("expected the start of b, got {other:?}"),
    }
    quiet(&mut in_progress).await;

    // A bad filter is refused up front.
    let error = world
        .client
        .clone()
        .watch_items(pb::WatchItemsRequest {
            statuses: vec![0],
            ..Default::default()
        })
        .await
        .expect_err("unspecified status");
    assert_eq!(error.code(), tonic::Code::InvalidArgument);

    // Shutdown ends open streams rather than waiting for them.
    world.finish().await;
    assert!(matches!(essex.message().await, Ok(None) | Err(_)));
    drop(in_progress);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_streamed_without_gaps() {
    let world = World::new().await;
    let mut items = Vec::new();
    for _ in 0..4 {
        items.push(open_one(&world, "kent", None).await);
    }
    let start: i64 = sqlx::query_scalar("SELECT max(sequence) FROM item_events")
        .fetch_one(world.db.pool())
        .await
        .expect("log");
    let mut stream = watch(
        &world,
        pb::WatchItemsRequest {
            after_sequence: start as u64,
            ..Default::default()
        },
    )
    .await;
    let writers = support::spawn_owner_writers(&world, items, 10, Duration::ZERO);
    let seen = take(&mut stream, 40).await;
    for writer in writers {
        writer.await.expect("writer");
    }
    quiet(&mut stream).await;
    let logged: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM item_events WHERE sequence > $1 ORDER BY watch_xid, sequence",
    )
    .bind(start)
    .fetch_all(world.db.pool())
    .await
    .expect("log");
    let sequences: Vec<i64> = seen.iter().map(|c| c.sequence as i64).collect();
    assert_eq!(sequences, logged);
    world.finish().await;
}
