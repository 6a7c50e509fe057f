//! Reconciliation across the inspectorate's corpus, through the tracker's
//! consumer: a counted statement closes every cause of concern of its
//! period and their recommendations; a summary statement never closes; a
//! successor organisation's report is reconciled against its predecessor's
//! open items and lineage shows the hand-over; a corrected document
//! withdraws the pending proposals (ProposalWithdrawn) and proposes again
//! from the new text; national recommendations fan out by the kind of
//! organisation they are addressed to.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use prost::Message;
use support::{World, eventually, findings_event, inspectorate, organisation_registered};

/// FindingRecorded with everything the tests vary.
fn finding(
    organisation: &str,
    inspection: &str,
    kind: pb::FindingKind,
    text: &str,
    parent: &str,
    period: &str,
) -> (String, pb::EventEnvelope) {
    let finding_id = uuid::Uuid::now_v7().to_string();
    let event = findings_event(
        organisation,
        "finding",
        &finding_id,
        Payload::FindingRecorded(pb::FindingRecorded {
            finding_id: finding_id.clone(),
            inspection_id: inspection.into(),
            organisation_id: organisation.into(),
            kind: kind as i32,
            pillar: "People".into(),
            question: String::new(),
            text: text.into(),
            parent_finding_id: parent.into(),
            addressed_to_all: kind == pb::FindingKind::NationalRecommendation,
            line_start: 10,
            line_end: 11,
            period: period.into(),
            published: format!("{}-06", &period[..4]),
            ..Default::default()
        }),
    );
    (finding_id, event)
}

/// FollowUpRecorded under inspection version `version`.
fn follow_up(
    organisation: &str,
    inspection: &str,
    version: u64,
    text: &str,
    scope: pb::FollowUpScope,
    kind: pb::FindingKind,
    count: u32,
) -> pb::EventEnvelope {
    let id = uuid::Uuid::now_v7().to_string();
    let mut event = findings_event(
        organisation,
        "inspection",
        inspection,
        Payload::FollowUpRecorded(pb::FollowUpRecorded {
            follow_up_id: id,
            inspection_id: inspection.into(),
            organisation_id: organisation.into(),
            referenced_period: "2018/19".into(),
            text: text.into(),
            line_start: 30,
            line_end: 31,
            referenced_kind: kind as i32,
            scope: scope as i32,
            stated_count: count,
            ..Default::default()
        }),
    );
    event.aggregate_version = version;
    event
}

fn published(organisation: &str, inspection: &str) -> pb::EventEnvelope {
    findings_event(
        organisation,
        "inspection",
        inspection,
        Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: inspection.into(),
            organisation_id: organisation.into(),
            programme: "Fire and rescue".into(),
            period: "2021/22".into(),
            title: "Fire and rescue service inspection 2021/22".into(),
            published: "2022-07".into(),
            ..Default::default()
        }),
    )
}

/// Every item of `organisation`, as the inspectorate sees them.
async fn items(world: &World, organisation: &str) -> Vec<pb::TrackedItem> {
    world
        .client
        .clone()
        .list_items(inspectorate(pb::ListItemsRequest {
            organisation_id: organisation.into(),
            page_size: 100,
            ..Default::default()
        }))
        .await
        .expect("list items")
        .into_inner()
        .items
}

/// Waits until `organisation` has at least `count` items; returns them.
async fn wait_for_items(world: &World, organisation: &str, count: usize) -> Vec<pb::TrackedItem> {
    eventually(|| async {
        let all = items(world, organisation).await;
        (all.len() >= count).then_some(all)
    })
    .await
}

/// An item's history.
async fn history(world: &World, item_id: &str) -> Vec<pb::EventEnvelope> {
    world
        .client
        .clone()
        .get_item_history(inspectorate(pb::GetItemHistoryRequest {
            item_id: item_id.into(),
            ..Default::default()
        }))
        .await
        .expect("history")
        .into_inner()
        .events
}

async fn proposals(world: &World, inspection: &str) -> Vec<pb::ReconciliationProposal> {
    world
        .client
        .clone()
        .list_proposals(inspectorate(pb::ListProposalsRequest {
            inspection_id: inspection.into(),
            page_size: 100,
            ..Default::default()
        }))
        .await
        .expect("list proposals")
        .into_inner()
        .proposals
}

async fn outbox(world: &World) -> Vec<pb::EventEnvelope> {
    let pool = sqlx::PgPool::connect(world.db.url()).await.expect("db");
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM closeout_outbox ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("outbox");
    pool.close().await;
    rows.iter()
        .map(|b| pb::EventEnvelope::decode(b.as_slice()).expect("envelope"))
        .collect()
}

fn by_text<'a>(
    items: &'a [pb::TrackedItem],
    proposals: &'a [pb::ReconciliationProposal],
    fragment: &str,
) -> &'a pb::ReconciliationProposal {
    let item = items
        .iter()
        .find(|i| i.text.contains(fragment))
        .unwrap_or_else(|| panic!("an item about {fragment}"));
    proposals
        .iter()
        .find(|p| p.item_id == item.id)
        .unwrap_or_else(|| panic!("a proposal for {fragment}"))
}

const CAUSE_1: &str = "The service doesn't have a risk-based inspection programme.";
const REC_1: &str = "By 31 March 2019, the service should audit its highest-risk premises.";
const CAUSE_2: &str = "Staff don't feel able to challenge bullying at stations.";
const REC_2: &str = "The service should give staff a confidential way to raise concerns.";
const AFI: &str = "The service should make sure appraisals happen for every member of staff.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counted_statement_closes_every_cause_of_its_period_and_their_recommendations() {
    let world = World::new().await;
    let org = "loamshire";
    let earlier = uuid::Uuid::now_v7().to_string();
    let (c1, e1) = finding(
        org,
        &earlier,
        pb::FindingKind::CauseOfConcern,
        CAUSE_1,
        "",
        "2018/19",
    );
    let (_, e2) = finding(
        org,
        &earlier,
        pb::FindingKind::Recommendation,
        REC_1,
        &c1,
        "2018/19",
    );
    let (c2, e3) = finding(
        org,
        &earlier,
        pb::FindingKind::CauseOfConcern,
        CAUSE_2,
        "",
        "2018/19",
    );
    let (_, e4) = finding(
        org,
        &earlier,
        pb::FindingKind::Recommendation,
        REC_2,
        &c2,
        "2018/19",
    );
    let (_, e5) = finding(
        org,
        &earlier,
        pb::FindingKind::AreaForImprovement,
        AFI,
        "",
        "2018/19",
    );
    world.publish(&[e1, e2, e3, e4, e5]).await;
    let items = wait_for_items(&world, org, 5).await;

    let later = uuid::Uuid::now_v7().to_string();
    world
        .publish(&[
            follow_up(
                org,
                &later,
                1,
                "I am delighted that I can now discharge the two causes of concern we found in \
                 our 2018 inspection.",
                pb::FollowUpScope::AllOfKind,
                pb::FindingKind::CauseOfConcern,
                2,
            ),
            follow_up(
                org,
                &later,
                1,
                "The service has addressed most but not all areas for improvement from our \
                 2018 inspection.",
                pb::FollowUpScope::Summary,
                pb::FindingKind::AreaForImprovement,
                0,
            ),
            published(org, &later),
        ])
        .await;
    let made = eventually(|| async {
        let made = proposals(&world, &later).await;
        (made.len() == 5).then_some(made)
    })
    .await;
    for fragment in [CAUSE_1, REC_1, CAUSE_2, REC_2] {
        let p = by_text(&items, &made, fragment);
        assert_eq!(
            p.outcome,
            pb::ProposalOutcome::Addressed as i32,
            "{fragment}: {}",
            p.rule
        );
        assert!(
            p.quotes.iter().any(|q| q.contains("discharge")),
            "{fragment} quotes its sentence: {:?}",
            p.quotes
        );
        assert_eq!(p.status, pb::ProposalStatus::Pending as i32);
    }
    let afi = by_text(&items, &made, AFI);
    assert_eq!(
        afi.outcome,
        pb::ProposalOutcome::PartiallyAddressed as i32,
        "a summary never closes: {}",
        afi.rule
    );
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_answers_for_its_predecessors_items_and_lineage_shows_the_hand_over() {
    let world = World::new().await;
    let (old, new) = ("isle-of-wight", "hampshire-and-isle-of-wight");
    let earlier = uuid::Uuid::now_v7().to_string();
    let afi =
        "The service should make sure it gathers risk information about all high-risk premises.";
    let (_, e) = finding(
        old,
        &earlier,
        pb::FindingKind::AreaForImprovement,
        afi,
        "",
        "2018/19",
    );
    world.publish(&[e]).await;
    let items = wait_for_items(&world, old, 1).await;
    let item = items[0].clone();

    let succeeded = findings_event(
        new,
        "organisation",
        new,
        Payload::OrganisationSucceeded(pb::OrganisationSucceeded {
            predecessor_id: old.into(),
            successor_id: new.into(),
            effective_date: "2021-04-01".into(),
            note: "combined fire authority".into(),
        }),
    );
    // Recorded twice (a replay with a new event id): handed over once.
    let again = pb::EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        ..succeeded.clone()
    };
    world.publish(&[succeeded, again]).await;
    eventually(|| async {
        let history = history(&world, &item.id).await;
        (history.len() >= 2).then_some(())
    })
    .await;

    let later = uuid::Uuid::now_v7().to_string();
    world
        .publish(&[
            follow_up(
                new,
                &later,
                1,
                "The service now has up-to-date risk information about all high-risk premises \
                 on the island, which was an area for improvement at our 2018 inspection.",
                pb::FollowUpScope::Item,
                pb::FindingKind::AreaForImprovement,
                0,
            ),
            published(new, &later),
        ])
        .await;
    let made = eventually(|| async {
        let made = proposals(&world, &later).await;
        (!made.is_empty()).then_some(made)
    })
    .await;
    assert_eq!(made.len(), 1);
    let p = &made[0];
    assert_eq!(p.item_id, item.id, "the predecessor's item");
    assert_eq!(p.organisation_id, new, "proposed by the successor's report");
    assert_eq!(
        p.outcome,
        pb::ProposalOutcome::Addressed as i32,
        "{}",
        p.rule
    );
    assert!(p.rule.contains("handed over"), "{}", p.rule);

    let history = history(&world, &item.id).await;
    let notes = history
        .iter()
        .filter(|e| {
            matches!(&e.payload, Some(Payload::ProgressNoted(n)) if n.note.starts_with("Handed over to hampshire-and-isle-of-wight"))
        })
        .count();
    assert_eq!(notes, 1, "one hand-over note: {history:?}");
    let lineage = world
        .client
        .clone()
        .get_lineage(inspectorate(pb::GetLineageRequest {
            item_id: item.id.clone(),
            ..Default::default()
        }))
        .await
        .expect("lineage")
        .into_inner();
    assert!(
        lineage
            .links
            .iter()
            .any(|l| l.relation == pb::LinkRelation::HandedOverTo as i32 && l.to_item_id == new),
        "{:?}",
        lineage.links
    );
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_document_withdraws_its_proposals_and_proposes_again() {
    let world = World::new().await;
    let org = "midshire";
    let earlier = uuid::Uuid::now_v7().to_string();
    let (_, e) = finding(
        org,
        &earlier,
        pb::FindingKind::AreaForImprovement,
        AFI,
        "",
        "2018/19",
    );
    world.publish(&[e]).await;
    wait_for_items(&world, org, 1).await;

    let later = uuid::Uuid::now_v7().to_string();
    world
        .publish(&[
            follow_up(
                org,
                &later,
                1,
                "Appraisals now happen for every member of staff, which was an area for \
                 improvement at our 2018 inspection.",
                pb::FollowUpScope::Item,
                pb::FindingKind::AreaForImprovement,
                0,
            ),
            published(org, &later),
        ])
        .await;
    let first = eventually(|| async {
        let made = proposals(&world, &later).await;
        (made.len() == 1).then_some(made)
    })
    .await;
    assert_eq!(first[0].outcome, pb::ProposalOutcome::Addressed as i32);

    // The corrected document says the opposite.
    let mut replaced = findings_event(
        org,
        "inspection",
        &later,
        Payload::InspectionReplaced(pb::InspectionReplaced {
            inspection_id: later.clone(),
            organisation_id: org.into(),
            previous_sha256: "aa".into(),
            source_sha256: "bb".into(),
            differences: vec!["document replaced".into()],
        }),
    );
    replaced.aggregate_version = 2;
    world
        .publish(&[
            follow_up(
                org,
                &later,
                2,
                "Appraisals for every member of staff still aren't in place. This remains an \
                 area for improvement.",
                pb::FollowUpScope::Item,
                pb::FindingKind::AreaForImprovement,
                0,
            ),
            replaced,
        ])
        .await;
    let after = eventually(|| async {
        let made = proposals(&world, &later).await;
        (made.len() == 2).then_some(made)
    })
    .await;
    let old = after.iter().find(|p| p.id == first[0].id).expect("old");
    assert_eq!(old.status, pb::ProposalStatus::Withdrawn as i32);
    let new = after.iter().find(|p| p.id != first[0].id).expect("new");
    assert_eq!(new.status, pb::ProposalStatus::Pending as i32);
    assert_eq!(
        new.outcome,
        pb::ProposalOutcome::NotAddressed as i32,
        "{}",
        new.rule
    );
    assert!(
        new.quotes.iter().any(|q| q.contains("still aren't")),
        "{:?}",
        new.quotes
    );
    let withdrawn: Vec<_> = outbox(&world)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::ProposalWithdrawn(w)) => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0].proposal_id, first[0].id);
    assert!(withdrawn[0].reason.contains("replaced"));
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_recommendations_fan_out_to_the_kind_they_are_addressed_to() {
    let world = World::new().await;
    world
        .publish(&[
            organisation_registered("barsetshire", pb::OrganisationKind::PoliceForce),
            organisation_registered("loamshire", pb::OrganisationKind::FireAndRescueService),
        ])
        .await;
    let report = uuid::Uuid::now_v7().to_string();
    // Issued in a police force's report: the force gets only what is
    // addressed to forces.
    let (_, fire) = finding(
        "barsetshire",
        &report,
        pb::FindingKind::NationalRecommendation,
        "By 1 June 2025, chief fire officers should make sure every on-call firefighter is \
         trained.",
        "",
        "2025",
    );
    let (_, police) = finding(
        "barsetshire",
        &report,
        pb::FindingKind::NationalRecommendation,
        "By 31 October 2024, chief constables should make sure digital evidence is reviewed.",
        "",
        "2024",
    );
    world.publish(&[fire, police]).await;
    let police_items = wait_for_items(&world, "barsetshire", 1).await;
    let fire_items = wait_for_items(&world, "loamshire", 1).await;
    // A fire and rescue service learned later gets the fire one only.
    world
        .publish(&[organisation_registered(
            "midshire",
            pb::OrganisationKind::FireAndRescueService,
        )])
        .await;
    let late = wait_for_items(&world, "midshire", 1).await;
    // Give any wrong fan-out the chance to show: a later event is applied
    // after the earlier ones.
    world
        .publish(&[organisation_registered(
            "wessex",
            pb::OrganisationKind::PoliceForce,
        )])
        .await;
    wait_for_items(&world, "wessex", 1).await;
    let police_items_now = items(&world, "barsetshire").await;
    let fire_items_now = items(&world, "loamshire").await;
    let late_now = items(&world, "midshire").await;
    assert_eq!(police_items_now.len(), 1, "{police_items:?}");
    assert!(police_items_now[0].text.contains("chief constables"));
    assert_eq!(fire_items_now.len(), 1, "{fire_items:?}");
    assert!(fire_items_now[0].text.contains("chief fire officers"));
    assert_eq!(late_now.len(), 1, "{late:?}");
    assert!(late_now[0].text.contains("chief fire officers"));
    world.finish().await;
}
