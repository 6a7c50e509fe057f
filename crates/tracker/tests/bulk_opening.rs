//! A report's findings arriving together are applied in bulk (several
//! findings per statement) with the same effect as one at a time: one item
//! per tracked finding and organisation, each with exactly one ItemOpened
//! in its history and on the outbox, in the order the findings came;
//! nothing for noteworthy practice; a repeated finding opens nothing more;
//! an invalid finding in the middle is set aside alone; every inspection
//! is remembered once with its period and publication.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use pb::FindingKind::*;
use prost::Message;
use support::{World, finding_recorded};

/// Sends every event before waiting for any ack, so that they arrive
/// together and the consumer takes them in large batches.
async fn publish_together(world: &World, events: &[pb::EventEnvelope]) {
    let mut acks = Vec::with_capacity(events.len());
    for event in events {
        let subject = world.bus.subject_of(event).expect("subject");
        let headers = closeout_bus::event_headers(
            &event.event_id,
            &event.event_type,
            &closeout_bus::trace::traceparent_for(event),
        );
        acks.push(
            world
                .bus
                .send(subject, headers, event.encode_to_vec().into())
                .await
                .expect("send"),
        );
    }
    for ack in acks {
        ack.acked().await.expect("ack");
    }
}

async fn count(world: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(world.db.pool())
        .await
        .expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_arriving_together_open_one_item_each_in_order() {
    let world = World::new().await;
    let mut events = Vec::new();
    let mut tracked = Vec::new();
    for i in 0..240 {
        let organisation = if i % 3 == 0 { "essex" } else { "kent" };
        let kind = match i % 4 {
            0 => AreaForImprovement,
            1 => CauseOfConcern,
            2 => Recommendation,
            _ => NoteworthyPractice,
        };
        let event = finding_recorded(organisation, "peel-2019", kind, &format!("f{i}"), None);
        if kind != NoteworthyPractice {
            tracked.push(event.aggregate_id.clone());
        }
        events.push(event);
        if i == 100 {
            // Not an organisation id: set aside, the rest still applied.
            events.push(finding_recorded(
                "Not A Slug!",
                "x",
                AreaForImprovement,
                "bad",
                None,
            ));
        }
        if i == 150 {
            // The same finding again under another event id: nothing more.
            let mut again = events[10].clone();
            again.event_id = uuid::Uuid::now_v7().to_string();
            events.push(again);
        }
    }
    publish_together(&world, &events).await;
    let kent = world.wait_for_items("kent", 1).await;
    assert!(!kent.is_empty());
    // Wait for the last tracked finding's item.
    let last = tracked.last().cloned().expect("tracked findings");
    support::eventually(|| async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM items WHERE finding_id = $1")
            .bind(&last)
            .fetch_one(world.db.pool())
            .await
            .ok()?;
        (n == 1).then_some(())
    })
    .await;
    assert_eq!(
        count(&world, "SELECT count(*) FROM items").await,
        tracked.len() as i64,
        "one item per tracked finding"
    );
    assert_eq!(
        count(
            &world,
            "SELECT count(*) FROM (SELECT finding_id FROM items GROUP BY finding_id \
             HAVING count(*) > 1) d"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &world,
            "SELECT count(*) FROM item_events WHERE version <> 1 OR event_type NOT LIKE '%ItemOpened'"
        )
        .await,
        0,
        "each item has exactly its opening event"
    );
    assert_eq!(
        count(&world, "SELECT count(*) FROM item_events").await,
        tracked.len() as i64
    );
    assert_eq!(
        count(&world, "SELECT count(*) FROM inspection_findings").await,
        240,
        "every valid finding kept once, noteworthy practice included"
    );
    let (period, published): (String, String) =
        sqlx::query_as("SELECT period, published FROM inspections WHERE id = 'peel-2019'")
            .fetch_one(world.db.pool())
            .await
            .expect("the inspection");
    assert_eq!(
        (period.as_str(), published.as_str()),
        ("2018/19", "2019-09")
    );

    // The outbox announces the items in the order their findings came.
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM closeout_outbox WHERE event_type LIKE '%ItemOpened' ORDER BY seq",
    )
    .fetch_all(world.db.pool())
    .await
    .expect("outbox");
    let findings: Vec<String> = envelopes
        .iter()
        .map(|bytes| match pb::EventEnvelope::decode(bytes.as_slice()) {
            Ok(pb::EventEnvelope {
                payload: Some(Payload::ItemOpened(opened)),
                ..
            }) => opened.finding_id,
            other => panic!("not an ItemOpened: {other:?}"),
        })
        .collect();
    assert_eq!(findings, tracked);
    world.finish().await;
}
