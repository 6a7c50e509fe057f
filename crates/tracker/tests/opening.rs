//! Items opened from the findings service's events: one per area for
//! improvement, cause of concern and recommendation; national
//! recommendations fanned out to every force, including forces learned
//! later; nothing for noteworthy practice; nothing new on replay.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use pb::FindingKind::*;
use pb::OrganisationKind::{FireAndRescueService, PoliceForce};
use support::{World, finding_recorded, organisation_registered};

/// Publishes an area for improvement for `organisation` and waits for its
/// item: everything published before has been consumed by then.
async fn barrier(world: &World, organisation: &str) {
    let before = world
        .items(pb::ListItemsRequest {
            organisation_id: organisation.into(),
            ..Default::default()
        })
        .await
        .len();
    world
        .publish(&[finding_recorded(
            organisation,
            "barrier",
            AreaForImprovement,
            "barrier",
            None,
        )])
        .await;
    world.wait_for_items(organisation, before + 1).await;
}

fn organisations(items: &[pb::TrackedItem]) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|i| i.organisation_id.clone()).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_opens_items_for_its_organisation_and_replays_open_nothing() {
    let world = World::new().await;
    let due = pb::CalendarDate::new(2099, 3, 31);
    let events = vec![
        organisation_registered("kent", PoliceForce),
        finding_recorded("kent", "i-1", AreaForImprovement, "AFI", None),
        finding_recorded("kent", "i-1", CauseOfConcern, "Cause", None),
        finding_recorded("kent", "i-1", Recommendation, "Rec", Some(due)),
        finding_recorded("kent", "i-1", NoteworthyPractice, "Good", None),
    ];
    world.publish(&events).await;
    barrier(&world, "sentinel").await;
    let items = world
        .items(pb::ListItemsRequest {
            organisation_id: "kent".into(),
            ..Default::default()
        })
        .await;
    let kinds: Vec<i32> = items.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [
            AreaForImprovement as i32,
            CauseOfConcern as i32,
            Recommendation as i32
        ]
    );
    assert_eq!(items[2].due_date, Some(due));
    assert!(
        items
            .iter()
            .all(|i| i.status == pb::ItemStatus::Open as i32 && i.version == 1)
    );
    let kind_filtered = world
        .items(pb::ListItemsRequest {
            kind: Recommendation as i32,
            ..Default::default()
        })
        .await;
    assert_eq!(kind_filtered.len(), 1);

    // The same events again (a duplicate publish is dropped by JetStream,
    // or by the applied-events table), and the same findings under new
    // event ids (a re-import): nothing new.
    world.publish(&events).await;
    let reissued: Vec<pb::EventEnvelope> = events
        .iter()
        .map(|e| pb::EventEnvelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            ..e.clone()
        })
        .collect();
    world.publish(&reissued).await;
    barrier(&world, "sentinel").await;

    // A new consumer replays the whole stream from the start.
    let mut world = world;
    world
        .tracker
        .take()
        .expect("running")
        .stop()
        .await
        .expect("stop");
    let mut config = support::config(&world.db, &world.test_bus);
    config.consumer_name = "tracker-replay".into();
    let (tracker, client) = support::start(config).await;
    world.tracker = Some(tracker);
    world.client = client;
    barrier(&world, "sentinel").await;
    let after = world
        .items(pb::ListItemsRequest {
            organisation_id: "kent".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(after, items);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_recommendation_reaches_every_force_including_later_ones() {
    let world = World::new().await;
    world
        .publish(&[
            organisation_registered("kent", PoliceForce),
            organisation_registered("essex", PoliceForce),
            organisation_registered("kent-fire", FireAndRescueService),
            // Learned only from a finding.
            finding_recorded("surrey", "i-0", AreaForImprovement, "AFI", None),
        ])
        .await;
    let national = finding_recorded(
        "kent",
        "i-1",
        NationalRecommendation,
        "All forces should review their vetting.",
        Some(pb::CalendarDate::new(2020, 6, 30)),
    );
    let finding_id = match &national.payload {
        Some(Payload::FindingRecorded(f)) => f.finding_id.clone(),
        _ => unreachable!("built as a FindingRecorded"),
    };
    world.publish(&[national]).await;
    let by_finding = |items: Vec<pb::TrackedItem>| -> Vec<pb::TrackedItem> {
        items
            .into_iter()
            .filter(|i| i.finding_id == finding_id)
            .collect()
    };
    let opened = support::eventually(|| async {
        let items = by_finding(world.items(pb::ListItemsRequest::default()).await);
        (items.len() >= 3).then_some(items)
    })
    .await;
    assert_eq!(organisations(&opened), ["essex", "kent", "surrey"]);
    assert!(
        opened
            .iter()
            .all(|i| i.kind == NationalRecommendation as i32)
    );

    // Forces learned later get it too, once; a fire service does not.
    world
        .publish(&[
            organisation_registered("hertfordshire", PoliceForce),
            organisation_registered("kent", PoliceForce),
            finding_recorded("norfolk", "i-2", AreaForImprovement, "AFI", None),
            organisation_registered("essex-fire", FireAndRescueService),
        ])
        .await;
    barrier(&world, "sentinel").await;
    let all = by_finding(world.items(pb::ListItemsRequest::default()).await);
    assert_eq!(
        organisations(&all),
        [
            "essex",
            "hertfordshire",
            "kent",
            "norfolk",
            "sentinel",
            "surrey"
        ]
    );
    // The sentinel, learned from a finding, is a force of unknown kind
    // and so gets it as well; each force exactly one item.
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_can_never_be_applied_is_set_aside() {
    let world = World::new().await;
    world
        .publish(&[finding_recorded(
            "Not A Slug!",
            "i-1",
            AreaForImprovement,
            "AFI",
            None,
        )])
        .await;
    // The consumer moves on past it, and opened nothing for it.
    barrier(&world, "sentinel").await;
    let all = world.items(pb::ListItemsRequest::default()).await;
    assert_eq!(organisations(&all), ["sentinel"]);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_finding_leaves_a_note_on_its_open_items_once() {
    let world = World::new().await;
    let recorded = finding_recorded("kent", "i-9", AreaForImprovement, "Withdrawn later", None);
    let Some(Payload::FindingRecorded(finding)) = recorded.payload.clone() else {
        unreachable!("finding_recorded builds a FindingRecorded");
    };
    world.publish(&[recorded]).await;
    let items = world.wait_for_items("kent", 1).await;
    let withdrawn = support::findings_event(
        "kent",
        "finding",
        &finding.finding_id,
        Payload::FindingWithdrawn(pb::FindingWithdrawn {
            finding_id: finding.finding_id.clone(),
            inspection_id: "i-9".into(),
            organisation_id: "kent".into(),
            reason: "no longer in the replacement document".into(),
        }),
    );
    // Published twice: the stream keeps one copy (same Nats-Msg-Id), so
    // one note; redelivery of an applied event is covered in closeout-bus.
    world.publish(&[withdrawn.clone(), withdrawn]).await;
    barrier(&world, "sentinel").await;
    let history = world.history(&items[0].id).await;
    let notes: Vec<&pb::ProgressNoted> = history
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::ProgressNoted(note)) => Some(note),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "{history:?}");
    assert!(notes[0].note.contains("withdrawn"));
    assert!(notes[0].note.contains("replacement document"));
    let item = world
        .items(pb::ListItemsRequest {
            organisation_id: "kent".into(),
            ..Default::default()
        })
        .await
        .remove(0);
    assert_eq!(
        item.status,
        pb::ItemStatus::Open as i32,
        "not closed silently"
    );
    assert_eq!(item.version, 2);
    world.finish().await;
}
