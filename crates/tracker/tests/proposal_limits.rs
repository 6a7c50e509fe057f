//! Per-field limits of the reconciliation calls (ListProposals,
//! AcceptProposal, RejectProposal, GetLineage): ids, reasons, notes,
//! filters and page tokens that are too long, carry bidirectional or
//! control characters, or are made only of invisible characters are
//! INVALID_ARGUMENT naming the field, answered before anything is looked
//! up, and change nothing (the outbox stays as it was).

mod support;

use closeout_proto as pb;
use support::{World, inspectorate, open_one};
use tonic::Code;
use tonic_types::StatusExt;

const FORCE: &str = "hertfordshire";

/// Values no field may hold, with what is wrong with each.
fn hostile() -> Vec<(&'static str, String)> {
    vec![
        ("too long", "a".repeat(7_000)),
        ("a bidirectional override", "abc\u{202e}def".into()),
        ("only zero-width characters", "\u{200b}\u{200b}".into()),
        ("a control character", "abc\u{7}def".into()),
    ]
}

/// A value too long for an id but fine as free text.
fn long_id() -> String {
    "a".repeat(101)
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn assert_names(status: &tonic::Status, field: &str, what: &str) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{field} {what}: {status:?}"
    );
    assert_eq!(fields(status), [field], "{field} {what}: {status:?}");
    assert!(
        status.message().len() < 2_000,
        "{field} {what}: the value is not echoed back whole"
    );
}

async fn outbox_rows(world: &World) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM closeout_outbox")
        .fetch_one(world.db.pool())
        .await
        .expect("outbox count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_proposals_judges_its_filters_and_page_token() {
    let world = World::new().await;
    let mut c = world.client.clone();
    let mut cases: Vec<(&str, &str, pb::ListProposalsRequest)> = Vec::new();
    for (what, value) in hostile() {
        cases.push((
            "organisation_id",
            what,
            pb::ListProposalsRequest {
                organisation_id: value.clone(),
                ..Default::default()
            },
        ));
        cases.push((
            "inspection_id",
            what,
            pb::ListProposalsRequest {
                inspection_id: value.clone(),
                ..Default::default()
            },
        ));
        cases.push((
            "page_token",
            what,
            pb::ListProposalsRequest {
                page_token: value,
                ..Default::default()
            },
        ));
    }
    cases.push((
        "inspection_id",
        "an over-long id",
        pb::ListProposalsRequest {
            inspection_id: long_id(),
            ..Default::default()
        },
    ));
    cases.push((
        "page_size",
        "negative",
        pb::ListProposalsRequest {
            page_size: -1,
            ..Default::default()
        },
    ));
    for (field, what, request) in cases {
        let error = c
            .list_proposals(inspectorate(request))
            .await
            .expect_err("refused");
        assert_names(&error, field, what);
    }
    // Every wrong field at once.
    let error = c
        .list_proposals(inspectorate(pb::ListProposalsRequest {
            inspection_id: "x\u{202e}".into(),
            page_token: "nope".into(),
            status: 42,
            ..Default::default()
        }))
        .await
        .expect_err("refused");
    assert_eq!(fields(&error), ["inspection_id", "page_token", "status"]);
    // A well-formed request still answers.
    let listed = c
        .list_proposals(inspectorate(pb::ListProposalsRequest {
            organisation_id: FORCE.into(),
            ..Default::default()
        }))
        .await
        .expect("listed");
    assert!(listed.into_inner().proposals.is_empty());
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_proposal_judges_its_id_and_note_and_changes_nothing() {
    let world = World::new().await;
    open_one(&world, FORCE, None).await;
    let before = outbox_rows(&world).await;
    let mut c = world.client.clone();
    let known_shape = uuid::Uuid::now_v7().to_string();
    let mut cases = vec![(
        "proposal_id",
        "an over-long id",
        pb::AcceptProposalRequest {
            proposal_id: long_id(),
            expected_version: 1,
            note: String::new(),
        },
    )];
    for (what, value) in hostile() {
        cases.push((
            "proposal_id",
            what,
            pb::AcceptProposalRequest {
                proposal_id: value.clone(),
                expected_version: 1,
                note: String::new(),
            },
        ));
        if what != "too long" {
            cases.push((
                "note",
                what,
                pb::AcceptProposalRequest {
                    proposal_id: known_shape.clone(),
                    expected_version: 1,
                    note: value,
                },
            ));
        }
    }
    cases.push((
        "note",
        "too long",
        pb::AcceptProposalRequest {
            proposal_id: known_shape.clone(),
            expected_version: 1,
            note: "n".repeat(10_001),
        },
    ));
    for (field, what, request) in cases {
        let error = c
            .accept_proposal(inspectorate(request))
            .await
            .expect_err("refused");
        assert_names(&error, field, what);
    }
    assert_eq!(outbox_rows(&world).await, before, "nothing was written");
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_proposal_judges_its_id_and_reason_and_changes_nothing() {
    let world = World::new().await;
    open_one(&world, FORCE, None).await;
    let before = outbox_rows(&world).await;
    let mut c = world.client.clone();
    let known_shape = uuid::Uuid::now_v7().to_string();
    let mut cases = vec![
        (
            "proposal_id",
            "an over-long id",
            pb::RejectProposalRequest {
                proposal_id: long_id(),
                expected_version: 1,
                reason: "wrong match".into(),
            },
        ),
        (
            "reason",
            "too long",
            pb::RejectProposalRequest {
                proposal_id: known_shape.clone(),
                expected_version: 1,
                reason: "r".repeat(10_001),
            },
        ),
    ];
    for (what, value) in hostile() {
        cases.push((
            "proposal_id",
            what,
            pb::RejectProposalRequest {
                proposal_id: value.clone(),
                expected_version: 1,
                reason: "wrong match".into(),
            },
        ));
        if what != "too long" {
            cases.push((
                "reason",
                what,
                pb::RejectProposalRequest {
                    proposal_id: known_shape.clone(),
                    expected_version: 1,
                    reason: value,
                },
            ));
        }
    }
    for (field, what, request) in cases {
        let error = c
            .reject_proposal(inspectorate(request))
            .await
            .expect_err("refused");
        assert_names(&error, field, what);
    }
    assert_eq!(outbox_rows(&world).await, before, "nothing was written");
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_lineage_judges_its_item_id_and_page_token() {
    let world = World::new().await;
    let item = open_one(&world, FORCE, None).await;
    let mut c = world.client.clone();
    let mut cases = vec![(
        "item_id",
        "an over-long id",
        pb::GetLineageRequest {
            item_id: long_id(),
            ..Default::default()
        },
    )];
    for (what, value) in hostile() {
        cases.push((
            "item_id",
            what,
            pb::GetLineageRequest {
                item_id: value.clone(),
                ..Default::default()
            },
        ));
        cases.push((
            "page_token",
            what,
            pb::GetLineageRequest {
                item_id: item.id.clone(),
                page_token: value,
                ..Default::default()
            },
        ));
    }
    for (field, what, request) in cases {
        let error = c
            .get_lineage(inspectorate(request))
            .await
            .expect_err("refused");
        assert_names(&error, field, what);
    }
    let lineage = c
        .get_lineage(inspectorate(pb::GetLineageRequest {
            item_id: item.id.clone(),
            ..Default::default()
        }))
        .await
        .expect("the item's lineage");
    assert!(!lineage.into_inner().items.is_empty());
    world.finish().await;
}
