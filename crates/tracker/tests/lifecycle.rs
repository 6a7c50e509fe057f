//! Lifecycle commands over gRPC: every transition with the right roles,
//! refusals that write nothing, and optimistic concurrency.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use support::{World, body, inspectorate, open_one};
use tonic::Code;
use tonic_types::StatusExt;

const FORCE: &str = "hertfordshire";

fn status_of(item: &pb::TrackedItem) -> pb::ItemStatus {
    pb::ItemStatus::try_from(item.status).expect("a status")
}

fn evidence() -> pb::Evidence {
    pb::Evidence {
        description: "Crime investigation review, board minutes".into(),
        uri: "https://example.org/review.pdf".into(),
        sha256: "a".repeat(64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_goes_through_every_transition() {
    // Far-off due dates below: let the force set them itself (the bound on
    // an inspected body's extensions is tested in tests/authorisation.rs).
    let world = World::with(|c| c.max_due_date_extension_days = 40_000).await;
    // SERVING once PostgreSQL and NATS answer.
    let addr = world.tracker.as_ref().expect("running").addr;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    support::eventually(|| {
        let mut health = health.clone();
        async move {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: closeout_tracker::SERVICE_NAME.into(),
                })
                .await
                .ok()?
                .into_inner()
                .status;
            (status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
                .then_some(())
        }
    })
    .await;
    let opened = open_one(&world, FORCE, None).await;
    assert_eq!(status_of(&opened), pb::ItemStatus::Open);
    assert_eq!(opened.version, 1);
    let id = opened.id.clone();
    let mut c = world.client.clone();

    let item = c
        .assign_owner(body(
            pb::AssignOwnerRequest {
                item_id: id.clone(),
                expected_version: 1,
                owner: "DCI Smith".into(),
            },
            FORCE,
        ))
        .await
        .expect("assign")
        .into_inner()
        .item
        .expect("item");
    assert_eq!((item.version, item.owner.as_str()), (2, "DCI Smith"));

    let item = c
        .set_due_date(body(
            pb::SetDueDateRequest {
                item_id: id.clone(),
                expected_version: 2,
                due_date: Some(pb::CalendarDate::new(2099, 6, 30)),
                reason: String::new(),
            },
            FORCE,
        ))
        .await
        .expect("first due date needs no reason")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(item.version, 3);
    let item = c
        .set_due_date(inspectorate(pb::SetDueDateRequest {
            item_id: id.clone(),
            expected_version: 3,
            due_date: Some(pb::CalendarDate::new(2099, 12, 31)),
            reason: "agreed extension".into(),
        }))
        .await
        .expect("revision with a reason")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(item.due_date, Some(pb::CalendarDate::new(2099, 12, 31)));

    let item = c
        .start_item(body(
            pb::StartItemRequest {
                item_id: id.clone(),
                expected_version: 4,
                note: "Work begins".into(),
            },
            FORCE,
        ))
        .await
        .expect("start")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (status_of(&item), item.version),
        (pb::ItemStatus::InProgress, 6)
    );

    let item = c
        .note_progress(body(
            pb::NoteProgressRequest {
                item_id: id.clone(),
                expected_version: 6,
                note: "Half the teams trained".into(),
            },
            FORCE,
        ))
        .await
        .expect("note")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(item.version, 7);

    let claim = |version: u64| {
        body(
            pb::ClaimCompletionRequest {
                item_id: id.clone(),
                expected_version: version,
                evidence: Some(evidence()),
                note: "Done".into(),
            },
            FORCE,
        )
    };
    let item = c
        .claim_completion(claim(7))
        .await
        .expect("claim")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (status_of(&item), item.version),
        (pb::ItemStatus::AwaitingVerification, 9)
    );
    assert_eq!(item.evidence, vec![evidence()]);

    let item = c
        .reject_claim(inspectorate(pb::RejectClaimRequest {
            item_id: id.clone(),
            expected_version: 9,
            reason: "Evidence does not cover all districts".into(),
        }))
        .await
        .expect("reject")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (status_of(&item), item.version),
        (pb::ItemStatus::InProgress, 11)
    );

    let item = c
        .claim_completion(claim(11))
        .await
        .expect("claim again")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(item.evidence.len(), 2);

    let item = c
        .verify_item(inspectorate(pb::VerifyItemRequest {
            item_id: id.clone(),
            expected_version: 13,
            closure_reference: "Closure letter 2020/17".into(),
            ..Default::default()
        }))
        .await
        .expect("verify")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (status_of(&item), item.version),
        (pb::ItemStatus::Closed, 15)
    );
    assert_eq!(item.closure_reference, "Closure letter 2020/17");

    let reopen = |version: u64| {
        inspectorate(pb::ReopenItemRequest {
            item_id: id.clone(),
            expected_version: version,
            reason: "Revisit found the problem again".into(),
        })
    };
    let item = c
        .reopen_item(reopen(15))
        .await
        .expect("reopen")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (status_of(&item), item.version),
        (pb::ItemStatus::InProgress, 17)
    );
    assert!(item.closure_reference.is_empty());

    // Superseded by a later finding of the same force (an unknown one is
    // refused: tests/contract.rs).
    let newer = open_one(&world, FORCE, None).await;
    let item = c
        .supersede_item(inspectorate(pb::SupersedeItemRequest {
            item_id: id.clone(),
            expected_version: 17,
            superseding_finding_id: newer.finding_id.clone(),
            reason: "Re-raised by the 2021/22 inspection".into(),
        }))
        .await
        .expect("supersede")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (status_of(&item), item.version),
        (pb::ItemStatus::Superseded, 19)
    );
    assert_eq!(item.superseded_by_item_id, newer.id);

    let item = c
        .reopen_item(reopen(19))
        .await
        .expect("reopen superseded")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (status_of(&item), item.version),
        (pb::ItemStatus::InProgress, 21)
    );

    // What GetItem says is what the commands returned.
    let stored = c
        .get_item(pb::GetItemRequest {
            item_id: id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(stored, item);

    // The history: every event, in order, one version each.
    let history = world.history(&id).await;
    assert_eq!(history.len(), 21);
    for (i, event) in history.iter().enumerate() {
        assert_eq!(event.aggregate_version, i as u64 + 1);
        assert_eq!(event.aggregate_id, id);
        assert_eq!(event.organisation_id, FORCE);
        assert_eq!(event.source_service, "tracker");
    }
    let names: Vec<&str> = history
        .iter()
        .map(|e| e.event_type.trim_start_matches("closeout.v1."))
        .collect();
    assert_eq!(
        names,
        [
            "ItemOpened",
            "OwnerAssigned",
            "DueDateChanged",
            "DueDateChanged",
            "ProgressNoted",
            "StatusChanged",
            "ProgressNoted",
            "CompletionClaimed",
            "StatusChanged",
            "ClaimRejected",
            "StatusChanged",
            "CompletionClaimed",
            "StatusChanged",
            "ItemVerified",
            "StatusChanged",
            "ItemReopened",
            "StatusChanged",
            "ItemSuperseded",
            "StatusChanged",
            "ItemReopened",
            "StatusChanged",
        ]
    );
    let transitions: Vec<(i32, i32, String)> = history
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::StatusChanged(s)) => {
                Some((s.from_status, s.to_status, s.command.clone()))
            }
            _ => None,
        })
        .collect();
    use pb::ItemStatus::*;
    let expected: Vec<(i32, i32, String)> = [
        (Open, InProgress, "Start"),
        (InProgress, AwaitingVerification, "ClaimCompletion"),
        (AwaitingVerification, InProgress, "RejectClaim"),
        (InProgress, AwaitingVerification, "ClaimCompletion"),
        (AwaitingVerification, Closed, "Verify"),
        (Closed, InProgress, "Reopen"),
        (InProgress, Superseded, "Supersede"),
        (Superseded, InProgress, "Reopen"),
    ]
    .into_iter()
    .map(|(f, t, c)| (f as i32, t as i32, c.to_string()))
    .collect();
    assert_eq!(transitions, expected);
    match &history[3].payload {
        Some(Payload::DueDateChanged(d)) => {
            assert_eq!(d.reason, "agreed extension");
            assert_eq!(
                d.previous_due_date,
                Some(pb::CalendarDate::new(2099, 6, 30))
            );
        }
        other => panic!("expected DueDateChanged, got {other:?}"),
    }
    let who: Vec<String> = history
        .iter()
        .map(|e| {
            e.actor
                .as_ref()
                .map(|a| a.subject.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(who[0], "service:tracker");
    assert_eq!(who[1], "test:inspected-body");
    assert_eq!(who[13], "test:inspectorate");

    // Every event reached the stream, on a subject naming the organisation.
    let prefix = world.test_bus.config().subject_prefix;
    let stream = world
        .bus
        .jetstream()
        .get_stream(world.test_bus.config().stream_name)
        .await
        .expect("stream");
    let filter = format!("{prefix}.tracker.v1.item.*.{FORCE}");
    // The item's 21 events and the opening of the item that superseded it.
    let expected = 21 + world.history(&newer.id).await.len() as u64;
    support::eventually(|| {
        let stream = stream.clone();
        let filter = filter.clone();
        async move {
            let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::Config {
                    filter_subject: filter,
                    ..Default::default()
                })
                .await
                .ok()?;
            let pending = consumer.info().await.ok()?.num_pending;
            (pending == expected).then_some(())
        }
    })
    .await;

    world.finish().await;
}

fn bad_request_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_change_nothing() {
    let world = World::new().await;
    let item = open_one(&world, FORCE, None).await;
    let id = item.id.clone();
    let mut c = world.client.clone();
    let start = |version: u64| pb::StartItemRequest {
        item_id: id.clone(),
        expected_version: version,
        note: String::new(),
    };

    // Illegal transitions name the state and the command.
    let error = c
        .claim_completion(body(
            pb::ClaimCompletionRequest {
                item_id: id.clone(),
                expected_version: 1,
                evidence: Some(evidence()),
                note: String::new(),
            },
            FORCE,
        ))
        .await
        .expect_err("claim from OPEN");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert!(
        error.message().contains("ClaimCompletion") && error.message().contains("OPEN"),
        "{}",
        error.message()
    );
    let error = c
        .reopen_item(inspectorate(pb::ReopenItemRequest {
            item_id: id.clone(),
            expected_version: 1,
            reason: "why not".into(),
        }))
        .await
        .expect_err("reopen an open item");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert!(error.message().contains("Reopen") && error.message().contains("OPEN"));

    // A stale version.
    let error = c
        .start_item(body(start(7), FORCE))
        .await
        .expect_err("stale");
    assert_eq!(error.code(), Code::Aborted);

    // Wrong role or organisation; no identity at all.
    let error = c
        .start_item(support::as_role(start(1), "viewer", ""))
        .await
        .expect_err("viewer");
    assert_eq!(error.code(), Code::PermissionDenied);
    // Another force's item does not exist for this one.
    let error = c
        .start_item(body(start(1), "kent"))
        .await
        .expect_err("other force");
    assert_eq!(error.code(), Code::NotFound);
    let error = c
        .verify_item(body(
            pb::VerifyItemRequest {
                item_id: id.clone(),
                expected_version: 1,
                closure_reference: "self-certified".into(),
                ..Default::default()
            },
            FORCE,
        ))
        .await
        .expect_err("an inspected body cannot verify");
    assert_eq!(error.code(), Code::PermissionDenied);
    // Without the test client's default token.
    let tracker_addr = world.tracker.as_ref().expect("running").addr;
    let error =
        pb::tracker_service_client::TrackerServiceClient::connect(format!("http://{tracker_addr}"))
            .await
            .expect("connect")
            .start_item(tonic::Request::new(start(1)))
            .await
            .expect_err("anonymous");
    assert_eq!(error.code(), Code::Unauthenticated);

    // Bad fields name the field.
    let error = c
        .note_progress(body(
            pb::NoteProgressRequest {
                item_id: id.clone(),
                expected_version: 1,
                note: "  ".into(),
            },
            FORCE,
        ))
        .await
        .expect_err("empty note");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(bad_request_fields(&error), ["note"]);
    let error = c
        .set_due_date(inspectorate(pb::SetDueDateRequest {
            item_id: id.clone(),
            expected_version: 1,
            due_date: Some(pb::CalendarDate::new(2021, 2, 30)),
            reason: String::new(),
        }))
        .await
        .expect_err("no such date");
    assert_eq!(bad_request_fields(&error), ["due_date"]);
    let error = c
        .assign_owner(inspectorate(pb::AssignOwnerRequest {
            item_id: "not-an-id".into(),
            expected_version: 1,
            owner: "x".into(),
        }))
        .await
        .expect_err("bad id");
    assert_eq!(bad_request_fields(&error), ["item_id"]);
    let error = c
        .assign_owner(inspectorate(pb::AssignOwnerRequest {
            item_id: uuid::Uuid::now_v7().to_string(),
            expected_version: 1,
            owner: "x".into(),
        }))
        .await
        .expect_err("unknown id");
    assert_eq!(error.code(), Code::NotFound);

    // Nothing was written by any of them.
    assert_eq!(world.history(&id).await.len(), 1);

    // Evidence is checked once the claim is legal.
    c.start_item(body(start(1), FORCE)).await.expect("start");
    let error = c
        .claim_completion(body(
            pb::ClaimCompletionRequest {
                item_id: id.clone(),
                expected_version: 2,
                evidence: Some(pb::Evidence {
                    sha256: "not hex".into(),
                    ..evidence()
                }),
                note: String::new(),
            },
            FORCE,
        ))
        .await
        .expect_err("bad digest");
    assert_eq!(bad_request_fields(&error), ["evidence.sha256"]);
    let error = c
        .claim_completion(inspectorate(pb::ClaimCompletionRequest {
            item_id: id.clone(),
            expected_version: 2,
            evidence: Some(evidence()),
            note: String::new(),
        }))
        .await
        .expect_err("only the inspected body claims");
    assert_eq!(error.code(), Code::PermissionDenied);
    let history = world.history(&id).await;
    assert_eq!(history.len(), 2);
    let item = c
        .get_item(pb::GetItemRequest {
            item_id: id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(
        (item.version, status_of(&item)),
        (2, pb::ItemStatus::InProgress)
    );

    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_updates_on_one_version_exactly_one_wins() {
    let world = World::new().await;
    let item = open_one(&world, FORCE, None).await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let mut client = world.client.clone();
        let id = item.id.clone();
        tasks.push(tokio::spawn(async move {
            client
                .assign_owner(inspectorate(pb::AssignOwnerRequest {
                    item_id: id,
                    expected_version: 1,
                    owner: format!("owner {n}"),
                }))
                .await
        }));
    }
    let mut won = 0;
    let mut aborted = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(status) if status.code() == Code::Aborted => aborted += 1,
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    assert_eq!((won, aborted), (1, 7));
    let history = world.history(&item.id).await;
    assert_eq!(history.len(), 2);
    world.finish().await;
}
