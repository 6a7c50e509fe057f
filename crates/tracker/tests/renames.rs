//! OrganisationRenamed: the tracker moves what it keeps under the old id —
//! the whole organisation, or one inspection's items — each item with an
//! ItemOrganisationChanged, keeps an item whose finding already has one
//! under the new id where it is, and moves nothing on a second rename.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use pb::FindingKind::{AreaForImprovement, NationalRecommendation};
use pb::OrganisationKind::{FireAndRescueService, PoliceForce};
use std::collections::BTreeMap;
use support::{World, finding_recorded, findings_event, organisation_registered};

fn renamed(old: &str, new: &str, inspection: &str) -> pb::EventEnvelope {
    findings_event(
        new,
        "organisation",
        new,
        Payload::OrganisationRenamed(pb::OrganisationRenamed {
            old_id: old.into(),
            new_id: new.into(),
            inspection_id: inspection.into(),
        }),
    )
}

async fn items_of(world: &World, organisation: &str) -> Vec<pb::TrackedItem> {
    world
        .items(pb::ListItemsRequest {
            organisation_id: organisation.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
}

/// Publishes a finding for a sentinel organisation and waits for its item:
/// everything published before has been applied by then.
async fn barrier(world: &World, n: usize) {
    world
        .publish(&[finding_recorded(
            "sentinel",
            "s",
            AreaForImprovement,
            "barrier",
            None,
        )])
        .await;
    world.wait_for_items("sentinel", n).await;
}

/// Each item's history length, by item id.
async fn histories(world: &World, items: &[pb::TrackedItem]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for item in items {
        out.insert(item.id.clone(), world.history(&item.id).await.len());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_move_whole_organisations_or_one_inspection_once() {
    let world = World::new().await;
    world
        .publish(&[
            organisation_registered("kent", FireAndRescueService),
            organisation_registered("kent-fire", FireAndRescueService),
            organisation_registered("essex", PoliceForce),
            // Of a kind the national recommendation below does not reach,
            // so the barrier counts only its own items.
            organisation_registered("sentinel", PoliceForce),
            finding_recorded("kent", "k-1", AreaForImprovement, "Kent one", None),
            finding_recorded("kent", "k-1", AreaForImprovement, "Kent two", None),
            finding_recorded(
                "hmicfrs",
                "n-1",
                NationalRecommendation,
                "All fire and rescue services should review on-call competence.",
                None,
            ),
            finding_recorded("essex", "e-peel", AreaForImprovement, "Police", None),
            finding_recorded("essex", "e-frs", AreaForImprovement, "Fire one", None),
            finding_recorded("essex", "e-frs", AreaForImprovement, "Fire two", None),
        ])
        .await;
    barrier(&world, 1).await;
    assert_eq!(
        items_of(&world, "kent").await.len(),
        3,
        "two and the national"
    );
    assert_eq!(items_of(&world, "kent-fire").await.len(), 1, "the national");
    let essex = items_of(&world, "essex").await;
    assert_eq!(essex.len(), 3);

    world
        .publish(&[
            renamed("kent", "kent-fire", ""),
            renamed("essex", "essex-fire", "e-frs"),
        ])
        .await;
    barrier(&world, 2).await;

    // Kent's own items moved; its national recommendation item stays, since
    // kent-fire has one of that finding already.
    let kent_fire = items_of(&world, "kent-fire").await;
    assert_eq!(kent_fire.len(), 3);
    let kent = items_of(&world, "kent").await;
    assert_eq!(kent.len(), 1);
    assert_eq!(kent[0].kind, NationalRecommendation as i32);
    for item in kent_fire.iter().filter(|i| i.inspection_id == "k-1") {
        assert_eq!(item.version, 2);
        let history = world.history(&item.id).await;
        let last = history.last().expect("events");
        assert_eq!(last.organisation_id, "kent-fire");
        assert!(
            matches!(&last.payload, Some(Payload::ItemOrganisationChanged(c))
                if c.previous_organisation_id == "kent" && c.organisation_id == "kent-fire"
                    && c.reason == "organisation kent renamed kent-fire"),
            "{last:?}"
        );
    }
    // Only the fire inspection left Essex.
    let essex_fire = items_of(&world, "essex-fire").await;
    assert_eq!(essex_fire.len(), 2);
    assert!(essex_fire.iter().all(|i| i.inspection_id == "e-frs"));
    let essex = items_of(&world, "essex").await;
    assert_eq!(essex.len(), 1);
    assert_eq!(essex[0].inspection_id, "e-peel");
    assert_eq!(essex[0].version, 1, "untouched");

    // The same renames again (new events): nothing moves, no event.
    let moved: Vec<pb::TrackedItem> = kent_fire.iter().chain(&essex_fire).cloned().collect();
    let lengths = histories(&world, &moved).await;
    world
        .publish(&[
            renamed("kent", "kent-fire", ""),
            renamed("essex", "essex-fire", "e-frs"),
        ])
        .await;
    barrier(&world, 3).await;
    assert_eq!(histories(&world, &moved).await, lengths);
    assert_eq!(items_of(&world, "kent-fire").await.len(), 3);
    assert_eq!(items_of(&world, "essex-fire").await.len(), 2);
    assert_eq!(items_of(&world, "essex").await.len(), 1);
    world.finish().await;
}
