//! Who may do what, through the real findings and tracker services (issue
//! 12): every call needs a valid bearer token; forged, expired, foreign,
//! wrong-audience and unsigned tokens are UNAUTHENTICATED and write
//! nothing; an inspected body cannot see or touch another organisation's
//! items (NOT_FOUND, as if they did not exist) nor import, verify or
//! decide; a viewer reads and writes nothing; WatchItems carries only the
//! caller's organisation; due-date revisions by an inspected body are
//! bounded and need a reason; the history's "who" is the token's subject.

use base64::Engine;
use closeout_auth::{Claims, Role, SigningKey, generate_ed25519, mint};
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb};
use closeout_testkit::{Caller, TestBus, TestDatabase, token_signing_key, with_token};
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

mod support;

use support::{SAMPLE, eventually, inspectorate, start_findings, start_tracker};

const BARSETSHIRE: &str =
    include_str!("../../crates/report/tests/fixtures/corpus/peel-2018-19/barsetshire-2018-19.txt");

/// The current year (UTC), from the clock.
fn this_year() -> i32 {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default();
    // Good enough for "a few years from now": 365.2425 days a year.
    1970 + (days as f64 / 365.2425) as i32
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn import(findings: &mut FindingsServiceClient<Channel>, text: &str, name: &str) -> String {
    findings
        .import_report(inspectorate(pb::ImportReportRequest {
            text: text.into(),
            source_name: name.into(),
            ..Default::default()
        }))
        .await
        .expect("the inspectorate imports")
        .into_inner()
        .organisation_id
}

async fn items(
    tracker: &mut TrackerServiceClient<Channel>,
    caller: &Caller,
    organisation: &str,
) -> Result<Vec<pb::TrackedItem>, tonic::Status> {
    tracker
        .list_items(caller.request(pb::ListItemsRequest {
            organisation_id: organisation.into(),
            page_size: 500,
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().items)
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(status) => status.code(),
    }
}

/// Tokens that must not verify, each named.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let hour = Duration::from_secs(3600);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut expired = Claims::new("test:old", Role::Inspectorate, None, hour);
    expired.iat -= 7200;
    expired.exp -= 7200;
    let mut other_audience = Claims::new("test:aud", Role::Inspectorate, None, hour);
    other_audience.aud = "another-system".into();
    let stranger = generate_ed25519(closeout_testkit::TEST_KEY_ID).unwrap();
    let stranger = SigningKey::from_pem(
        stranger.private_pem.as_bytes(),
        Some(closeout_testkit::TEST_KEY_ID.into()),
    )
    .unwrap();
    let good = Caller::viewer().token();
    let parts: Vec<&str> = good.split('.').collect();
    let promoted = b64.encode(
        serde_json::to_vec(&Claims::new("test:viewer", Role::Inspectorate, None, hour)).unwrap(),
    );
    let unsigned_header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    vec![
        ("expired", mint(token_signing_key(), &expired).unwrap()),
        (
            "wrong audience",
            mint(token_signing_key(), &other_audience).unwrap(),
        ),
        (
            "wrong key",
            mint(
                &stranger,
                &Claims::new("test:x", Role::Inspectorate, None, hour),
            )
            .unwrap(),
        ),
        (
            "forged claims",
            format!("{}.{promoted}.{}", parts[0], parts[2]),
        ),
        ("alg none", format!("{unsigned_header}.{promoted}.")),
        ("garbage", "not-a-token".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_are_proved_and_scoped() {
    let findings_db = TestDatabase::create().await;
    let tracker_db = TestDatabase::create().await;
    let bus = TestBus::new();
    let findings_service = start_findings(&findings_db, &bus).await;
    let tracker_service = start_tracker(&tracker_db, &bus).await;
    let mut findings = FindingsServiceClient::new(channel(findings_service.addr).await)
        .max_encoding_message_size(64 * 1024 * 1024);
    let mut tracker = TrackerServiceClient::new(channel(tracker_service.addr).await);

    let herts = import(&mut findings, SAMPLE, "herts.txt").await;
    let barset = import(&mut findings, BARSETSHIRE, "barset.txt").await;
    assert_ne!(herts, barset);
    // Items open in batches: read them once the tracker has applied (and
    // acknowledged) every event of both imports, not at the first batch.
    let connection = bus.connect().await;
    eventually("the tracker to apply both imports", || {
        let connection = connection.clone();
        async move {
            (closeout_service::bus_metrics::pending(
                &connection,
                closeout_tracker::DEFAULT_CONSUMER_NAME,
            )
            .await
                == Some(0))
            .then_some(())
        }
    })
    .await;
    let inspectorate_caller = Caller::inspectorate();
    let herts_items = eventually("Hertfordshire's items", || {
        let mut tracker = tracker.clone();
        let caller = inspectorate_caller.clone();
        let herts = herts.clone();
        async move {
            items(&mut tracker, &caller, &herts)
                .await
                .ok()
                .filter(|i| !i.is_empty())
        }
    })
    .await;
    let barset_items = eventually("Barsetshire's items", || {
        let mut tracker = tracker.clone();
        let caller = inspectorate_caller.clone();
        let barset = barset.clone();
        async move {
            items(&mut tracker, &caller, &barset)
                .await
                .ok()
                .filter(|i| !i.is_empty())
        }
    })
    .await;
    let item = herts_items[0].clone();
    let mut refused = 0;

    // No token, and tokens that prove nothing: UNAUTHENTICATED everywhere.
    let anonymous = tracker
        .list_items(pb::ListItemsRequest::default())
        .await
        .map(|_| ());
    assert_eq!(code(anonymous), Code::Unauthenticated);
    let anonymous = findings
        .list_organisations(pb::ListOrganisationsRequest::default())
        .await
        .map(|_| ());
    assert_eq!(code(anonymous), Code::Unauthenticated);
    refused += 2;
    for (what, token) in bad_tokens() {
        let listing = tracker
            .list_items(with_token(&token, pb::ListItemsRequest::default()))
            .await
            .map(|_| ());
        assert_eq!(code(listing), Code::Unauthenticated, "{what}");
        let verify = tracker
            .verify_item(with_token(
                &token,
                pb::VerifyItemRequest {
                    item_id: item.id.clone(),
                    expected_version: item.version,
                    closure_reference: "forged".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ());
        assert_eq!(code(verify), Code::Unauthenticated, "{what}");
        let import = findings
            .import_report(with_token(
                &token,
                pb::ImportReportRequest {
                    text: SAMPLE.into(),
                    source_name: "again.txt".into(),
                    replace: true,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ());
        assert_eq!(code(import), Code::Unauthenticated, "{what}");
        refused += 3;
    }

    // Another organisation's item does not exist for an inspected body.
    let barset_body = Caller::inspected_body(&barset);
    let get = tracker
        .get_item(barset_body.request(pb::GetItemRequest {
            item_id: item.id.clone(),
        }))
        .await
        .map(|_| ());
    assert_eq!(code(get), Code::NotFound);
    let history = tracker
        .get_item_history(barset_body.request(pb::GetItemHistoryRequest {
            item_id: item.id.clone(),
            ..Default::default()
        }))
        .await
        .map(|_| ());
    assert_eq!(code(history), Code::NotFound);
    let start = tracker
        .start_item(barset_body.request(pb::StartItemRequest {
            item_id: item.id.clone(),
            expected_version: item.version,
            note: "not ours".into(),
        }))
        .await
        .map(|_| ());
    assert_eq!(code(start), Code::NotFound);
    let listing = items(&mut tracker, &barset_body, &herts).await;
    assert_eq!(code(listing), Code::PermissionDenied);
    let own = items(&mut tracker, &barset_body, "").await.unwrap();
    assert_eq!(own.len(), barset_items.len());
    assert!(own.iter().all(|i| i.organisation_id == barset));
    refused += 4;

    // An inspected body neither imports, parses, verifies nor decides.
    let herts_body = Caller::inspected_body(&herts).subject("jo@herts.example");
    let import = findings
        .import_report(herts_body.request(pb::ImportReportRequest {
            text: SAMPLE.into(),
            source_name: "mine.txt".into(),
            replace: true,
            ..Default::default()
        }))
        .await
        .map(|_| ());
    assert_eq!(code(import), Code::PermissionDenied);
    let parse = findings
        .parse_report(herts_body.request(pb::ParseReportRequest {
            text: SAMPLE.into(),
            ..Default::default()
        }))
        .await
        .map(|_| ());
    assert_eq!(code(parse), Code::PermissionDenied);
    let verify = tracker
        .verify_item(herts_body.request(pb::VerifyItemRequest {
            item_id: item.id.clone(),
            expected_version: item.version,
            closure_reference: "self-closed".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ());
    assert_eq!(code(verify), Code::PermissionDenied);
    refused += 3;

    // A viewer reads, and writes nothing; scoped to Barsetshire, it does
    // not see Hertfordshire's items.
    let viewer = Caller::viewer();
    assert!(
        !items(&mut tracker, &viewer, &herts)
            .await
            .unwrap()
            .is_empty()
    );
    let start = tracker
        .start_item(viewer.request(pb::StartItemRequest {
            item_id: item.id.clone(),
            expected_version: item.version,
            note: String::new(),
        }))
        .await
        .map(|_| ());
    assert_eq!(code(start), Code::PermissionDenied);
    let mut scoped = Claims::new(
        "test:scoped-viewer",
        Role::Viewer,
        None,
        Duration::from_secs(600),
    );
    scoped.orgs = vec![barset.clone()];
    let scoped = mint(token_signing_key(), &scoped).unwrap();
    let get = tracker
        .get_item(with_token(
            &scoped,
            pb::GetItemRequest {
                item_id: item.id.clone(),
            },
        ))
        .await
        .map(|_| ());
    assert_eq!(code(get), Code::NotFound);
    refused += 2;

    // Due dates: an inspected body may not push one years away, nor give
    // "." as its reason; the inspectorate may.
    let far = pb::CalendarDate {
        year: this_year() + 3,
        month: 6,
        day: 30,
    };
    let current = item.due_date;
    let set = |caller: &Caller, due_date: pb::CalendarDate, reason: &str, version: u64| {
        caller.request(pb::SetDueDateRequest {
            item_id: item.id.clone(),
            expected_version: version,
            due_date: Some(due_date),
            reason: reason.into(),
        })
    };
    let too_far = tracker
        .set_due_date(set(&herts_body, far, "need more time", item.version))
        .await
        .map(|_| ());
    assert_eq!(code(too_far), Code::PermissionDenied);
    if let Some(current) = &current {
        let later = pb::CalendarDate {
            year: current.year,
            month: current.month,
            day: if current.day < 28 { current.day + 1 } else { 1 },
        };
        let dot = tracker
            .set_due_date(set(&herts_body, later, ".", item.version))
            .await
            .map(|_| ());
        assert_eq!(code(dot), Code::InvalidArgument);
        refused += 1;
    }
    refused += 1;
    let after = tracker
        .get_item(inspectorate(pb::GetItemRequest {
            item_id: item.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    assert_eq!(after.version, item.version, "a refusal changed the item");

    // WatchItems: Barsetshire's stream, opened from the beginning, carries
    // only Barsetshire even though Hertfordshire changed first.
    let started = tracker
        .start_item(herts_body.request(pb::StartItemRequest {
            item_id: item.id.clone(),
            expected_version: item.version,
            note: "board meets in March".into(),
        }))
        .await
        .expect("Hertfordshire starts its own item")
        .into_inner()
        .item
        .unwrap();
    let barset_item = &barset_items[0];
    tracker
        .start_item(barset_body.request(pb::StartItemRequest {
            item_id: barset_item.id.clone(),
            expected_version: barset_item.version,
            note: String::new(),
        }))
        .await
        .expect("Barsetshire starts its own item");
    let mut stream = tracker
        .watch_items(barset_body.request(pb::WatchItemsRequest::default()))
        .await
        .expect("watching")
        .into_inner();
    let mut seen = 0;
    loop {
        let change = stream
            .message()
            .await
            .expect("stream")
            .expect("stream open");
        let changed = change.item.expect("item");
        assert_eq!(
            changed.organisation_id, barset,
            "another organisation leaked"
        );
        seen += 1;
        if changed.id == barset_item.id && changed.status == pb::ItemStatus::InProgress as i32 {
            break;
        }
    }
    let foreign = tracker
        .watch_items(barset_body.request(pb::WatchItemsRequest {
            organisation_id: herts.clone(),
            ..Default::default()
        }))
        .await
        .map(|_| ());
    assert_eq!(code(foreign), Code::PermissionDenied);
    refused += 1;

    // The history's "who" is the token's subject.
    let history = tracker
        .get_item_history(herts_body.request(pb::GetItemHistoryRequest {
            item_id: started.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    let last = history.last().expect("history");
    let actor = last.actor.as_ref().expect("actor");
    assert_eq!(actor.subject, "jo@herts.example");
    assert_eq!(actor.organisation_id, herts);

    println!("authorisation: {refused} refused calls, {seen} watched changes, all scoped");
    tracker_service.stop().await.unwrap();
    findings_service.stop().await.unwrap();
    findings_db.drop_database().await;
    tracker_db.drop_database().await;
    bus.cleanup().await;
}
