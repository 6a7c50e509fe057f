//! The contract an outside client relies on, through the real service:
//! SupersedeItem names an item of the same organisation and shows in
//! lineage (paged); arguments are judged before the version; errors carry
//! machine-readable details; WatchItems refuses what could only be a
//! silent empty stream and filters on the status after a change.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use support::{World, body, inspectorate, open_one};
use tonic::Code;
use tonic_types::StatusExt;

const FORCE: &str = "hertfordshire";
const OTHER: &str = "essex";

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn supersede(item: &pb::TrackedItem, by: &str) -> tonic::Request<pb::SupersedeItemRequest> {
    inspectorate(pb::SupersedeItemRequest {
        item_id: item.id.clone(),
        expected_version: item.version,
        superseding_finding_id: by.into(),
        reason: "carried into the 2023 inspection".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_names_an_item_of_the_same_organisation_and_shows_in_lineage() {
    let world = World::new().await;
    let older = open_one(&world, FORCE, None).await;
    let newer = open_one(&world, FORCE, None).await;
    let elsewhere = open_one(&world, OTHER, None).await;
    let mut c = world.client.clone();

    for (named, what) in [
        ("abc", "an unknown finding"),
        (
            elsewhere.finding_id.as_str(),
            "another organisation's finding",
        ),
        (elsewhere.id.as_str(), "another organisation's item"),
        (older.finding_id.as_str(), "the item's own finding"),
    ] {
        let error = c
            .supersede_item(supersede(&older, named))
            .await
            .expect_err(what);
        assert_eq!(error.code(), Code::InvalidArgument, "{what}: {error:?}");
        assert_eq!(fields(&error), ["superseding_finding_id"], "{what}");
    }
    let unchanged = c
        .get_item(inspectorate(pb::GetItemRequest {
            item_id: older.id.clone(),
        }))
        .await
        .expect("get")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(unchanged.version, older.version, "a refusal writes nothing");

    // Named by its finding id: accepted, and linked both ways.
    let superseded = c
        .supersede_item(supersede(&older, &newer.finding_id))
        .await
        .expect("supersede")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(superseded.status, pb::ItemStatus::Superseded as i32);
    assert_eq!(superseded.superseded_by_item_id, newer.id);

    let lineage = |page_size: i32, page_token: String| {
        let mut c = world.client.clone();
        let item_id = older.id.clone();
        async move {
            c.get_lineage(inspectorate(pb::GetLineageRequest {
                item_id,
                page_size,
                page_token,
            }))
            .await
            .expect("lineage")
            .into_inner()
        }
    };
    let whole = lineage(0, String::new()).await;
    let ids: Vec<_> = whole.items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, [older.id.clone(), newer.id.clone()]);
    assert!(whole.next_page_token.is_empty());
    assert!(whole.links.iter().any(|l| l.from_item_id == older.id
        && l.to_item_id == newer.id
        && l.relation == pb::LinkRelation::SupersededBy as i32));

    // One item a page: the chain in two pages, each with its own links.
    let first = lineage(1, String::new()).await;
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].id, older.id);
    assert!(!first.next_page_token.is_empty());
    assert!(first.links.iter().all(|l| l.from_item_id == older.id));
    let second = lineage(1, first.next_page_token.clone()).await;
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].id, newer.id);
    assert!(second.next_page_token.is_empty());
    assert!(
        second
            .links
            .iter()
            .any(|l| l.from_item_id == newer.id
                && l.relation == pb::LinkRelation::CarriedFrom as i32)
    );

    let bad_token = c
        .get_lineage(inspectorate(pb::GetLineageRequest {
            item_id: older.id.clone(),
            page_size: 0,
            page_token: "xyz".into(),
        }))
        .await
        .expect_err("bad paging");
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert_eq!(fields(&bad_token), ["page_token"]);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_are_judged_before_the_version_and_errors_carry_details() {
    let world = World::new().await;
    let item = open_one(&world, FORCE, None).await;
    let mut c = world.client.clone();

    // A date that does not exist: INVALID_ARGUMENT whatever the version.
    for expected_version in [item.version, item.version + 7, 0, item.version + 7] {
        let error = c
            .set_due_date(body(
                pb::SetDueDateRequest {
                    item_id: item.id.clone(),
                    expected_version,
                    due_date: Some(pb::CalendarDate::new(2031, 2, 30)),
                    reason: String::new(),
                },
                FORCE,
            ))
            .await
            .expect_err("no 30 February");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
        assert_eq!(fields(&error), ["due_date"]);
    }

    // ABORTED names the current version.
    let stale = c
        .assign_owner(body(
            pb::AssignOwnerRequest {
                item_id: item.id.clone(),
                expected_version: item.version + 3,
                owner: "DCI Smith".into(),
            },
            FORCE,
        ))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    let details = stale.get_error_details();
    let info = details.error_info().expect("error info");
    assert_eq!(info.reason, "STALE_VERSION");
    assert_eq!(info.metadata["current_version"], item.version.to_string());
    assert!(details.precondition_failure().is_some());

    // FAILED_PRECONDITION names the status and what it allows.
    let refused = c
        .claim_completion(body(
            pb::ClaimCompletionRequest {
                item_id: item.id.clone(),
                expected_version: item.version,
                evidence: Some(pb::Evidence {
                    description: "Board minutes".into(),
                    uri: String::new(),
                    sha256: "a".repeat(64),
                }),
                ..Default::default()
            },
            FORCE,
        ))
        .await
        .expect_err("not started");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let info = refused
        .get_error_details()
        .error_info()
        .cloned()
        .expect("error info");
    assert_eq!(info.reason, "ILLEGAL_TRANSITION");
    assert_eq!(info.metadata["status"], "ITEM_STATUS_OPEN");
    assert_eq!(info.metadata["command"], "ClaimCompletion");
    let allowed: Vec<&str> = info.metadata["allowed_commands"].split(',').collect();
    assert!(allowed.contains(&"StartItem") && allowed.contains(&"VerifyItem"));
    assert!(!allowed.contains(&"ClaimCompletion") && !allowed.contains(&"ReopenItem"));

    // NOT_FOUND names the resource.
    let missing_id = uuid::Uuid::now_v7().to_string();
    let missing = c
        .get_item(inspectorate(pb::GetItemRequest {
            item_id: missing_id.clone(),
        }))
        .await
        .expect_err("no such item");
    assert_eq!(missing.code(), Code::NotFound);
    let resource = missing
        .get_error_details()
        .resource_info()
        .cloned()
        .expect("resource info");
    assert_eq!(
        (
            resource.resource_type.as_str(),
            resource.resource_name.as_str()
        ),
        ("item", missing_id.as_str())
    );
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_refuses_empty_promises_and_filters_on_the_status_after() {
    let world = World::new().await;
    let a = open_one(&world, FORCE, None).await;
    let b = open_one(&world, FORCE, None).await;
    let mut c = world.client.clone();

    let unknown = c
        .watch_items(inspectorate(pb::WatchItemsRequest {
            organisation_id: "nowhere".into(),
            ..Default::default()
        }))
        .await
        .expect_err("unknown organisation");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let beyond = c
        .watch_items(inspectorate(pb::WatchItemsRequest {
            after_sequence: 1_000_000_000,
            ..Default::default()
        }))
        .await
        .expect_err("beyond the end");
    assert_eq!(beyond.code(), Code::InvalidArgument);
    assert_eq!(fields(&beyond), ["after_sequence"]);

    let mut in_progress = c
        .watch_items(inspectorate(pb::WatchItemsRequest {
            organisation_id: FORCE.into(),
            statuses: vec![pb::ItemStatus::InProgress as i32],
            after_sequence: 0,
        }))
        .await
        .expect("watch")
        .into_inner();
    // a: started (to IN_PROGRESS), then claimed (from IN_PROGRESS: not
    // shown); then b started.
    let start = |item: &pb::TrackedItem, version: u64| {
        body(
            pb::StartItemRequest {
                item_id: item.id.clone(),
                expected_version: version,
                ..Default::default()
            },
            FORCE,
        )
    };
    let a = c
        .start_item(start(&a, a.version))
        .await
        .expect("start a")
        .into_inner()
        .item
        .expect("item");
    c.claim_completion(body(
        pb::ClaimCompletionRequest {
            item_id: a.id.clone(),
            expected_version: a.version,
            evidence: Some(pb::Evidence {
                description: "Board minutes".into(),
                uri: String::new(),
                sha256: "b".repeat(64),
            }),
            ..Default::default()
        },
        FORCE,
    ))
    .await
    .expect("claim a");
    c.start_item(start(&b, b.version)).await.expect("start b");

    // Every change shown leaves its item IN_PROGRESS; the claim's status
    // change (to AWAITING_VERIFICATION) is not shown.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let change = in_progress
            .message()
            .await
            .expect("stream")
            .expect("a change");
        let item = change.item.expect("the item after");
        assert_eq!(item.status, pb::ItemStatus::InProgress as i32, "{item:?}");
        if let Some(Payload::StatusChanged(s)) = change.event.and_then(|e| e.payload) {
            assert_eq!(s.to_status, pb::ItemStatus::InProgress as i32);
            seen.push(s.item_id);
        }
    }
    assert_eq!(seen, [a.id.clone(), b.id.clone()]);
    world.finish().await;
}
