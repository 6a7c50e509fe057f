//! The overdue scheduler marks each item past its due date once: one
//! ItemOverdue event, also across a restart and with two replicas.

mod support;

use chrono::NaiveDate;
use closeout_proto as pb;
use support::{World, open_one};

fn overdue_events(history: &[pb::EventEnvelope]) -> usize {
    history
        .iter()
        .filter(|e| e.event_type == "closeout.v1.ItemOverdue")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_fires_once_across_restarts_and_replicas() {
    let today = NaiveDate::from_ymd_opt(2030, 1, 1).expect("date");
    let mut world = World::with(|config| {
        config.overdue_today = Some(today);
        config.overdue_interval_secs = 1;
    })
    .await;
    let late = open_one(&world, "kent", Some(pb::CalendarDate::new(2029, 12, 31))).await;
    let due_today = open_one(&world, "kent", Some(pb::CalendarDate::new(2030, 1, 1))).await;
    let undated = open_one(&world, "kent", None).await;

    // A second replica on the same database.
    let mut config = support::config(&world.db, &world.test_bus);
    config.overdue_today = Some(today);
    config.overdue_interval_secs = 1;
    let (replica, _) = support::start(config.clone()).await;

    let overdue = support::eventually(|| async {
        let items = world
            .items(pb::ListItemsRequest {
                overdue_only: true,
                ..Default::default()
            })
            .await;
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].id, late.id);
    assert_eq!(overdue[0].version, 2);

    // Restart the first instance; both keep running their schedules.
    world
        .tracker
        .take()
        .expect("running")
        .stop()
        .await
        .expect("stop");
    let (restarted, client) = support::start(config).await;
    world.tracker = Some(restarted);
    world.client = client;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    replica.stop().await.expect("replica stops");

    let history = world.history(&late.id).await;
    assert_eq!(overdue_events(&history), 1, "{history:?}");
    match history.last().and_then(|e| e.payload.as_ref()) {
        Some(pb::event_envelope::Payload::ItemOverdue(o)) => {
            assert_eq!(o.due_date, Some(pb::CalendarDate::new(2029, 12, 31)));
        }
        other => panic!("expected ItemOverdue, got {other:?}"),
    }
    assert_eq!(overdue_events(&world.history(&due_today.id).await), 0);
    assert_eq!(overdue_events(&world.history(&undated.id).await), 0);
    let marked: i64 = sqlx::query_scalar("SELECT count(*) FROM item_events WHERE event_type = $1")
        .bind("closeout.v1.ItemOverdue")
        .fetch_one(world.db.pool())
        .await
        .expect("count");
    assert_eq!(marked, 1);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_mark_each_item_once() {
    let world = World::new().await;
    let due = pb::CalendarDate::new(2029, 12, 31);
    let events: Vec<pb::EventEnvelope> = (0..20)
        .map(|n| {
            support::finding_recorded(
                "kent",
                "i-1",
                pb::FindingKind::AreaForImprovement,
                &format!("AFI {n}"),
                Some(due),
            )
        })
        .collect();
    world.publish(&events).await;
    world.wait_for_items("kent", 20).await;

    // Four runs at once, as four replicas would: each item once in all.
    let today = NaiveDate::from_ymd_opt(2030, 1, 1).expect("date");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let pool = world.db.pool().clone();
            tokio::spawn(async move { closeout_tracker::overdue::run_once(&pool, today).await })
        })
        .collect();
    let mut total = 0;
    for run in runs {
        total += run.await.expect("task").expect("run");
    }
    total += closeout_tracker::overdue::run_once(world.db.pool(), today)
        .await
        .expect("run");
    assert_eq!(total, 20);
    assert_eq!(
        closeout_tracker::overdue::run_once(world.db.pool(), today)
            .await
            .expect("run"),
        0
    );
    let marked: i64 = sqlx::query_scalar("SELECT count(*) FROM item_events WHERE event_type = $1")
        .bind("closeout.v1.ItemOverdue")
        .fetch_one(world.db.pool())
        .await
        .expect("count");
    assert_eq!(marked, 20);
    world.finish().await;
}
