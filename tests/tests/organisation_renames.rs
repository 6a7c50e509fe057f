//! Organisation renames reach every service, through the real findings,
//! tracker and metrics services.
//!
//! Before findings' migration 0018 a fire and rescue service's id was its
//! place alone, so the tracker and metrics hold what they learned then
//! under the old id. Here two fire reports reach them that way: Loamshire's
//! as `loamshire` (a whole organisation under an old id), Midshire's under
//! the police force `barsetshire` (one inspection under another body's id).
//! Their events are the findings service's own, re-addressed to the old
//! ids. Then the renames are recorded as migration 0018 records them, and
//! findings restarts (two replicas at once): each rename is announced
//! once, the tracker moves the items (each with its ItemOrganisationChanged,
//! a started one keeping its state), and metrics shows the scorecard under
//! the new id, nothing under the old, and a rebuild from the stream gives
//! the same read models.

use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb, ItemStatus, event_envelope::Payload};
use closeout_testkit::AuthChannel as Channel;
use closeout_testkit::{TestBus, TestDatabase};
use prost::Message;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;

mod support;

use support::{eventually, inspectorate, start_findings, start_metrics, start_tracker};

const LOAMSHIRE: &str =
    include_str!("../../crates/report/tests/fixtures/corpus/frs-2018-19/loamshire-2018-19.txt");
const MIDSHIRE: &str =
    include_str!("../../crates/report/tests/fixtures/corpus/frs-2018-19/midshire-2018-19.txt");
const BARSETSHIRE: &str =
    include_str!("../../crates/report/tests/fixtures/corpus/peel-2018-19/barsetshire-2018-19.txt");

async fn channel(addr: std::net::SocketAddr) -> Channel {
    closeout_testkit::connect_authenticated(addr).await
}

/// `event` as findings announced it before fire and rescue ids ended in
/// "-fire": every organisation id `from` reads `to`, under a new event id.
fn addressed_to(mut event: pb::EventEnvelope, from: &str, to: &str) -> pb::EventEnvelope {
    let swap = |id: &mut String| {
        if id == from {
            *id = to.to_string();
        }
    };
    swap(&mut event.organisation_id);
    swap(&mut event.aggregate_id);
    match event.payload.as_mut() {
        Some(Payload::OrganisationRegistered(r)) => {
            if let Some(o) = r.organisation.as_mut() {
                swap(&mut o.id);
            }
        }
        Some(Payload::InspectionPublished(p)) => swap(&mut p.organisation_id),
        Some(Payload::JudgmentRecorded(p)) => swap(&mut p.organisation_id),
        Some(Payload::FindingRecorded(p)) => swap(&mut p.organisation_id),
        Some(Payload::FollowUpRecorded(p)) => swap(&mut p.organisation_id),
        Some(Payload::IndicatorRecorded(p)) => swap(&mut p.organisation_id),
        _ => {}
    }
    event.event_id = uuid::Uuid::now_v7().to_string();
    event
}

async fn import(client: &mut FindingsServiceClient<Channel>, name: &str, text: &str) -> String {
    let imported = client
        .import_report(inspectorate(pb::ImportReportRequest {
            text: text.into(),
            source_name: name.into(),
            ..Default::default()
        }))
        .await
        .unwrap_or_else(|e| panic!("importing {name}: {e}"))
        .into_inner();
    imported.inspection_id
}

/// Every item of `organisation`, by id.
async fn items(
    client: &TrackerServiceClient<Channel>,
    organisation: &str,
) -> BTreeMap<String, pb::TrackedItem> {
    let mut client = client.clone();
    client
        .list_items(pb::ListItemsRequest {
            organisation_id: organisation.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("items of {organisation}: {e}"))
        .into_inner()
        .items
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect()
}

/// Waits until `organisation` has `n` items in the tracker.
async fn items_counted(
    client: &TrackerServiceClient<Channel>,
    organisation: &str,
    n: usize,
) -> BTreeMap<String, pb::TrackedItem> {
    eventually(&format!("{n} items of {organisation}"), || async move {
        let found = items(client, organisation).await;
        (found.len() == n).then_some(found)
    })
    .await
}

async fn scorecard(
    client: &MetricsServiceClient<Channel>,
    organisation: &str,
) -> Result<pb::Scorecard, tonic::Status> {
    let mut client = client.clone();
    client
        .get_scorecard(pb::GetScorecardRequest {
            organisation_id: organisation.into(),
            as_of: None,
        })
        .await
        .map(|r| r.into_inner().scorecard.unwrap_or_default())
}

/// Waits until metrics counts `n` items of `organisation`.
async fn scorecard_counted(
    client: &MetricsServiceClient<Channel>,
    organisation: &str,
    n: u32,
) -> pb::Scorecard {
    eventually(
        &format!("a scorecard of {n} items for {organisation}"),
        || async move {
            scorecard(client, organisation)
                .await
                .ok()
                .filter(|c| c.total_items == n)
        },
    )
    .await
}

async fn renames_announced(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM closeout_outbox WHERE event_type = 'closeout.v1.OrganisationRenamed'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn renamed_organisations_move_in_the_tracker_and_metrics() {
    let bus = TestBus::new();
    let (findings_db, tracker_db, metrics_db) = (
        TestDatabase::create().await,
        TestDatabase::create().await,
        TestDatabase::create().await,
    );

    // The reports as findings stores them now, imported on a stream of
    // their own: their events are re-addressed below.
    let (loamshire, midshire) = {
        let scratch = TestBus::new();
        let findings = start_findings(&findings_db, &scratch).await;
        let mut client = FindingsServiceClient::new(channel(findings.addr).await);
        import(&mut client, "barsetshire-2018-19.txt", BARSETSHIRE).await;
        let loamshire = import(&mut client, "loamshire-2018-19.txt", LOAMSHIRE).await;
        let midshire = import(&mut client, "midshire-2018-19.txt", MIDSHIRE).await;
        findings.stop().await.unwrap();
        scratch.cleanup().await;
        (loamshire, midshire)
    };
    // Their events under the old ids, to be announced again (Midshire's
    // registration dropped: the id was the force's).
    let pool = findings_db.pool();
    let sent: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM closeout_outbox ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap();
    let old_style: Vec<pb::EventEnvelope> = sent
        .iter()
        .map(|bytes| pb::EventEnvelope::decode(bytes.as_slice()).unwrap())
        .filter(|e| {
            !(e.organisation_id == "midshire-fire"
                && matches!(e.payload, Some(Payload::OrganisationRegistered(_))))
        })
        .map(|e| addressed_to(e, "loamshire-fire", "loamshire"))
        .map(|e| addressed_to(e, "midshire-fire", "barsetshire"))
        .collect();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("DELETE FROM closeout_outbox")
        .execute(&mut *tx)
        .await
        .unwrap();
    closeout_bus::outbox::append(&mut tx, &old_style)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let tracker = start_tracker(&tracker_db, &bus).await;
    let mut metrics = start_metrics(&metrics_db, &bus).await;
    let findings = start_findings(&findings_db, &bus).await;
    assert_eq!(renames_announced(pool).await, 0, "nothing recorded yet");
    let mut t = TrackerServiceClient::new(channel(tracker.addr).await);
    let mut m = MetricsServiceClient::new(channel(metrics.addr).await);

    // Under the old ids: 13 items of Loamshire's report, and Barsetshire's
    // 7 with Midshire's 14.
    let before = items_counted(&t, "loamshire", 13).await;
    let barsetshire_before = items_counted(&t, "barsetshire", 21).await;
    let from_midshire: Vec<&String> = barsetshire_before
        .iter()
        .filter(|(_, i)| i.inspection_id == midshire)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(from_midshire.len(), 14);
    // One of Loamshire's items is started before the rename.
    let first = before.values().next().unwrap().clone();
    let started = t
        .start_item(inspectorate(pb::StartItemRequest {
            item_id: first.id.clone(),
            expected_version: first.version,
            note: "Started under the old id".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    let card_before = eventually("the started item in the old id's scorecard", || {
        let m = &m;
        async move {
            let card = scorecard(m, "loamshire").await.ok()?;
            let in_progress = card
                .by_status
                .iter()
                .any(|s| s.status == ItemStatus::InProgress as i32 && s.count == 1);
            (card.total_items == 13 && in_progress).then_some(card)
        }
    })
    .await;
    scorecard_counted(&m, "barsetshire", 21).await;
    // Everything of the old ids published before findings stops.
    let published = closeout_testkit::wait_until(Duration::from_secs(60), || async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM closeout_outbox WHERE sent_at IS NULL")
            .fetch_one(pool)
            .await
            .is_ok_and(|n| n == 0)
    })
    .await;
    assert!(published, "findings' outbox drained");
    findings.stop().await.unwrap();

    // Migration 0018's record of the renames, then two replicas start.
    sqlx::query(
        "INSERT INTO organisation_renames (old_id, new_id, inspection_id) \
         VALUES ('loamshire', 'loamshire-fire', NULL), ('barsetshire', 'midshire-fire', $1::uuid)",
    )
    .bind(&midshire)
    .execute(pool)
    .await
    .unwrap();
    let (one, two) = tokio::join!(
        start_findings(&findings_db, &bus),
        start_findings(&findings_db, &bus)
    );
    assert_eq!(
        renames_announced(pool).await,
        2,
        "each rename announced once"
    );
    let unannounced: i64 =
        sqlx::query_scalar("SELECT count(*) FROM organisation_renames WHERE announced_at IS NULL")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(unannounced, 0);

    // The tracker: the same items under the new ids, none left under the
    // old; the started one still in progress, one version on, its history
    // saying why.
    let after = items_counted(&t, "loamshire-fire", 13).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert!(items(&t, "loamshire").await.is_empty());
    for (id, item) in &after {
        let was = if *id == first.id {
            &started
        } else {
            &before[id]
        };
        assert_eq!(item.organisation_id, "loamshire-fire");
        assert_eq!(item.inspection_id, loamshire);
        assert_eq!(item.status, was.status, "{id} keeps its state");
        assert_eq!(item.version, was.version + 1, "{id}: one event more");
    }
    assert_eq!(after[&first.id].status, ItemStatus::InProgress as i32);
    let history = t
        .get_item_history(pb::GetItemHistoryRequest {
            item_id: first.id.clone(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let last = history.last().unwrap();
    assert_eq!(last.organisation_id, "loamshire-fire");
    match &last.payload {
        Some(Payload::ItemOrganisationChanged(c)) => {
            assert_eq!(
                (
                    c.previous_organisation_id.as_str(),
                    c.organisation_id.as_str()
                ),
                ("loamshire", "loamshire-fire")
            );
        }
        other => panic!("last event {other:?}"),
    }
    // Only Midshire's inspection left Barsetshire.
    let midshire_items = items_counted(&t, "midshire-fire", 14).await;
    assert!(midshire_items.values().all(|i| i.inspection_id == midshire));
    let barsetshire_after = items(&t, "barsetshire").await;
    assert_eq!(barsetshire_after.len(), 7);
    assert!(
        barsetshire_after
            .values()
            .all(|i| i.inspection_id != midshire)
    );

    // Metrics: the scorecard under the new id is the old one's; the old id
    // is unknown; Barsetshire keeps its own report.
    let card_after = eventually("the scorecard under the new id", || {
        let m = &m;
        async move {
            let card = scorecard(m, "loamshire-fire").await.ok()?;
            let gone = scorecard(m, "loamshire")
                .await
                .is_err_and(|s| s.code() == tonic::Code::NotFound);
            (card.total_items == 13 && gone).then_some(card)
        }
    })
    .await;
    let same = |card: &pb::Scorecard| pb::Scorecard {
        organisation_id: String::new(),
        ..card.clone()
    };
    assert_eq!(same(&card_after), same(&card_before));
    assert!(!card_after.grades.is_empty(), "the inspection moved too");
    let midshire_card = scorecard_counted(&m, "midshire-fire", 14).await;
    assert!(!midshire_card.grades.is_empty());
    let barsetshire_card = scorecard_counted(&m, "barsetshire", 7).await;

    // A restart announces nothing again.
    one.stop().await.unwrap();
    two.stop().await.unwrap();
    let again = start_findings(&findings_db, &bus).await;
    assert_eq!(renames_announced(pool).await, 2);

    // A rebuild of metrics from the stream gives the same read models.
    let all_moved = closeout_testkit::wait_until(Duration::from_secs(60), || {
        let metrics_pool = metrics_db.pool().clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE event_type = 'closeout.v1.ItemOrganisationChanged'",
            )
            .fetch_one(&metrics_pool)
            .await
            .unwrap_or(0);
            n == 27
        }
    })
    .await;
    assert!(all_moved, "metrics stored the 27 moves");
    metrics.stop().await.unwrap();
    let live = support::metrics_read_models(metrics_db.pool()).await;
    let rebuilt = closeout_metrics::rebuild(
        &closeout_metrics::MetricsConfig {
            common: support::common(&metrics_db, &bus),
            metrics_http_addr: "127.0.0.1:0".parse().unwrap(),
        },
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    assert!(rebuilt.events > 0);
    let replayed = support::metrics_read_models(metrics_db.pool()).await;
    // The history is compared by the faults suite; here the read models.
    for (table, rows) in live.iter().filter(|(table, _)| *table != "events") {
        assert_eq!(rows, &replayed[table], "{table} after a rebuild");
    }
    let items_table = &replayed["items"];
    assert!(
        !items_table
            .iter()
            .any(|r| r.contains("\"organisation_id\": \"loamshire\""))
    );
    metrics = start_metrics(&metrics_db, &bus).await;
    m = MetricsServiceClient::new(channel(metrics.addr).await);
    assert_eq!(
        scorecard(&m, "loamshire-fire").await.unwrap(),
        card_after,
        "rebuilt"
    );
    assert_eq!(
        scorecard(&m, "barsetshire").await.unwrap(),
        barsetshire_card
    );
    println!(
        "organisation renames: 2 announced once by two replicas, 27 items moved, \
         {} metrics tables equal after a rebuild of {} events",
        live.len(),
        rebuilt.events
    );

    t = TrackerServiceClient::new(channel(tracker.addr).await);
    assert!(items(&t, "loamshire").await.is_empty());
    metrics.stop().await.unwrap();
    again.stop().await.unwrap();
    tracker.stop().await.unwrap();
    bus.cleanup().await;
    for db in [findings_db, tracker_db, metrics_db] {
        db.drop_database().await;
    }
}
