//! Hostile input against the real findings, tracker and metrics services
//! (issue 12): every family an attacker tried gets its status and writes
//! nothing. Families:
//!
//! * tokens: none, garbage, forged (payload changed after signing),
//!   expired, signed with another key, for another audience, `alg: none`,
//!   a validly signed one with a 7,000-character subject; WatchItems and
//!   ParseReport without a valid token;
//! * organisations: an inspected body reading or writing another
//!   organisation's item (NOT_FOUND), doing what only the inspectorate may
//!   (PERMISSION_DENIED), a viewer writing;
//! * limits and Unicode hygiene: bidi controls, zero-width-only notes,
//!   over-long fields, `javascript:`/`data:` evidence, absurd due-date years,
//!   organisation ids `-` and `a--b`, a 7,000-character `x-request-id`,
//!   a malformed protobuf frame to each of the three services
//!   (INVALID_ARGUMENT, not INTERNAL), too many WatchItems streams for one
//!   caller (RESOURCE_EXHAUSTED); a report whose organisation name hides
//!   U+202E or U+200B imports as the same organisation;
//! * the stream: undecodable and foreign events on the tracker's subjects go
//!   to its dead-letter subject.
//!
//! After each, the target item's version and history are unchanged. The
//! test prints its counts.

use closeout_auth::{Claims, Role};
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb};
use closeout_testkit::{Caller, TestBus, TestDatabase};
use std::time::Duration;
use tonic::Code;

mod support;

use support::{SAMPLE, eventually, start_findings, start_metrics, start_tracker};

type Channel = tonic::transport::Channel;

const STREAMS_PER_CALLER: usize = 3;

/// A second organisation's report, for cross-organisation calls.
const OTHER: &str =
    include_str!("../../crates/report/tests/fixtures/corpus/peel-2018-19/barsetshire-2018-19.txt");

fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    closeout_testkit::with_token(token, message)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(role: Role, organisation: Option<&str>) -> Claims {
    Claims::new("test:hostile", role, organisation, Duration::from_secs(600))
}

fn mint(claims: &Claims) -> String {
    closeout_auth::mint(closeout_testkit::token_signing_key(), claims).unwrap()
}

/// Tokens that must all be refused UNAUTHENTICATED, by name.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let good = Caller::inspectorate().token();
    let parts: Vec<&str> = good.split('.').collect();
    // Forged: the payload says viewer→inspectorate of another subject,
    // the signature is the original's.
    let mut forged_claims = claims(Role::Inspectorate, None);
    forged_claims.sub = "inspector:hm-chief-inspector".into();
    let forged_payload = b64(&serde_json::to_vec(&forged_claims).unwrap());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let mut expired = claims(Role::Inspectorate, None);
    expired.iat -= 7200;
    expired.exp = expired.iat + 60;
    let other_key = closeout_auth::generate_ed25519("someone-else").unwrap();
    let other_key =
        closeout_auth::SigningKey::from_pem(other_key.private_pem.as_bytes(), Some("test".into()))
            .unwrap();
    let wrong_key = closeout_auth::mint(&other_key, &claims(Role::Inspectorate, None)).unwrap();
    let mut audience = claims(Role::Inspectorate, None);
    audience.aud = "some-other-service".into();
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(&serde_json::to_vec(&claims(Role::Inspectorate, None)).unwrap())
    );
    vec![
        ("garbage", "not-a-jwt".to_string()),
        ("forged", forged),
        ("expired", mint(&expired)),
        ("wrong key", wrong_key),
        ("wrong audience", mint(&audience)),
        ("alg none", alg_none),
        ("oversized", "a".repeat(9000)),
    ]
}

struct Stack {
    bus: TestBus,
    dbs: Vec<TestDatabase>,
    _findings: closeout_findings::RunningFindings,
    _tracker: closeout_tracker::RunningTracker,
    _metrics: closeout_metrics::RunningMetrics,
    f: FindingsServiceClient<Channel>,
    t: TrackerServiceClient<Channel>,
    m: MetricsServiceClient<Channel>,
    tracker_addr: std::net::SocketAddr,
    findings_addr: std::net::SocketAddr,
    metrics_addr: std::net::SocketAddr,
}

/// What a refused call must leave as it was: the item and its history.
#[derive(Debug, PartialEq)]
struct Snapshot {
    version: u64,
    status: i32,
    history: usize,
    items: usize,
}

impl Stack {
    async fn snapshot(&self, item: &str) -> Snapshot {
        let inspectorate = Caller::inspectorate();
        let found = self
            .t
            .clone()
            .get_item(inspectorate.request(pb::GetItemRequest {
                item_id: item.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .item
            .unwrap();
        let history = self
            .t
            .clone()
            .get_item_history(inspectorate.request(pb::GetItemHistoryRequest {
                item_id: item.into(),
                page_size: 500,
                page_token: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .events
            .len();
        let items = self
            .t
            .clone()
            .list_items(inspectorate.request(pb::ListItemsRequest {
                page_size: 500,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .items
            .len();
        Snapshot {
            version: found.version,
            status: found.status,
            history,
            items,
        }
    }
}

/// Counts of the families, printed at the end.
#[derive(Default)]
struct Tally {
    cases: usize,
    by_code: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    fn expect<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        result: Result<T, tonic::Status>,
        code: Code,
        field: Option<&str>,
    ) {
        let status = match result {
            Ok(answer) => panic!("{what}: accepted ({answer:?}), expected {code:?}"),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "{what}: {status:?}");
        if let Some(field) = field {
            let details = format!("{} {:?}", status.message(), status.details());
            assert!(
                details.contains(field),
                "{what}: the refusal names {field}: {status:?}"
            );
        }
        self.cases += 1;
        *self.by_code.entry(format!("{code:?}")).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_its_status_and_writes_nothing() {
    // SAFETY: set before any service of this test process starts; no other
    // thread reads the environment yet.
    unsafe {
        std::env::set_var(
            "CLOSEOUT_MAX_STREAMS_PER_IDENTITY",
            STREAMS_PER_CALLER.to_string(),
        );
    }
    let bus = TestBus::new();
    let dbs = vec![
        TestDatabase::create().await,
        TestDatabase::create().await,
        TestDatabase::create().await,
    ];
    let findings = start_findings(&dbs[0], &bus).await;
    let tracker = start_tracker(&dbs[1], &bus).await;
    let metrics = start_metrics(&dbs[2], &bus).await;
    let connect = |addr: std::net::SocketAddr| async move {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let stack = Stack {
        f: FindingsServiceClient::new(connect(findings.addr).await),
        t: TrackerServiceClient::new(connect(tracker.addr).await),
        m: MetricsServiceClient::new(connect(metrics.addr).await),
        tracker_addr: tracker.addr,
        findings_addr: findings.addr,
        metrics_addr: metrics.addr,
        _findings: findings,
        _tracker: tracker,
        _metrics: metrics,
        bus,
        dbs,
    };
    let inspectorate = Caller::inspectorate();
    for (name, text) in [("hertfordshire.txt", SAMPLE), ("barsetshire.txt", OTHER)] {
        stack
            .f
            .clone()
            .import_report(inspectorate.request(pb::ImportReportRequest {
                text: text.into(),
                source_name: name.into(),
                ..Default::default()
            }))
            .await
            .unwrap();
    }
    let items_of = |organisation: &'static str| {
        let t = stack.t.clone();
        async move {
            t.clone()
                .list_items(Caller::inspectorate().request(pb::ListItemsRequest {
                    organisation_id: organisation.into(),
                    page_size: 500,
                    ..Default::default()
                }))
                .await
                .ok()
                .map(|r| r.into_inner().items)
                .filter(|items| !items.is_empty())
        }
    };
    let herts = eventually("hertfordshire's items", || items_of("hertfordshire")).await;
    eventually("barsetshire's items", || items_of("barsetshire")).await;
    let item = herts[0].id.clone();
    let version = herts[0].version;
    let before = stack.snapshot(&item).await;
    let mut tally = Tally::default();
    let t = || stack.t.clone();

    // Tokens.
    let note = |token: &str| {
        with_token(
            token,
            pb::NoteProgressRequest {
                item_id: item.clone(),
                expected_version: version,
                note: "progress".into(),
            },
        )
    };
    tally.expect(
        "no token",
        t().note_progress(pb::NoteProgressRequest {
            item_id: item.clone(),
            expected_version: version,
            note: "x".into(),
        })
        .await,
        Code::Unauthenticated,
        None,
    );
    for (name, token) in bad_tokens() {
        tally.expect(
            &format!("{name} token, write"),
            t().note_progress(note(&token)).await,
            Code::Unauthenticated,
            None,
        );
        tally.expect(
            &format!("{name} token, read"),
            t().get_item(with_token(
                &token,
                pb::GetItemRequest {
                    item_id: item.clone(),
                },
            ))
            .await,
            Code::Unauthenticated,
            None,
        );
        tally.expect(
            &format!("{name} token, findings"),
            stack
                .f
                .clone()
                .list_organisations(with_token(&token, pb::ListOrganisationsRequest::default()))
                .await,
            Code::Unauthenticated,
            None,
        );
        tally.expect(
            &format!("{name} token, metrics"),
            stack
                .m
                .clone()
                .get_scorecard(with_token(
                    &token,
                    pb::GetScorecardRequest {
                        organisation_id: "hertfordshire".into(),
                        as_of: None,
                    },
                ))
                .await,
            Code::Unauthenticated,
            None,
        );
    }

    // Organisations.
    let barsetshire = Caller::inspected_body("barsetshire");
    tally.expect(
        "another organisation's item, read",
        t().get_item(barsetshire.request(pb::GetItemRequest {
            item_id: item.clone(),
        }))
        .await,
        Code::NotFound,
        None,
    );
    tally.expect(
        "another organisation's history",
        t().get_item_history(barsetshire.request(pb::GetItemHistoryRequest {
            item_id: item.clone(),
            page_size: 10,
            page_token: String::new(),
        }))
        .await,
        Code::NotFound,
        None,
    );
    tally.expect(
        "another organisation's item, write",
        t().note_progress(barsetshire.request(pb::NoteProgressRequest {
            item_id: item.clone(),
            expected_version: version,
            note: "ours now".into(),
        }))
        .await,
        Code::NotFound,
        None,
    );
    tally.expect(
        "another organisation's list",
        t().list_items(barsetshire.request(pb::ListItemsRequest {
            organisation_id: "hertfordshire".into(),
            ..Default::default()
        }))
        .await,
        Code::PermissionDenied,
        None,
    );
    tally.expect(
        "an inspected body verifying its own item",
        t().verify_item(
            Caller::inspected_body("hertfordshire").request(pb::VerifyItemRequest {
                item_id: item.clone(),
                expected_version: version,
                closure_reference: "self-certified".into(),
                ..Default::default()
            }),
        )
        .await,
        Code::PermissionDenied,
        None,
    );
    tally.expect(
        "a viewer writing",
        t().note_progress(Caller::viewer().request(pb::NoteProgressRequest {
            item_id: item.clone(),
            expected_version: version,
            note: "x".into(),
        }))
        .await,
        Code::PermissionDenied,
        None,
    );
    tally.expect(
        "an inspected body importing",
        stack
            .f
            .clone()
            .import_report(barsetshire.request(pb::ImportReportRequest {
                text: SAMPLE.into(),
                source_name: "x.txt".into(),
                replace: true,
                ..Default::default()
            }))
            .await,
        Code::PermissionDenied,
        None,
    );

    // Limits and Unicode hygiene.
    let herts_body = Caller::inspected_body("hertfordshire");
    for (what, text) in [
        ("bidi override", "done\u{202E}enod".to_string()),
        ("bidi isolate", "a\u{2066}b\u{2069}".to_string()),
        ("zero-width only", "\u{200B}\u{200C}\u{FEFF}".to_string()),
        ("word joiners only", "\u{2060} \u{200D}".to_string()),
        ("over-long", "x".repeat(10_001)),
        ("control", "a\u{7}b".to_string()),
    ] {
        tally.expect(
            &format!("note: {what}"),
            t().note_progress(herts_body.request(pb::NoteProgressRequest {
                item_id: item.clone(),
                expected_version: version,
                note: text.clone(),
            }))
            .await,
            Code::InvalidArgument,
            Some("note"),
        );
        tally.expect(
            &format!("reason: {what}"),
            t().reject_claim(inspectorate.request(pb::RejectClaimRequest {
                item_id: item.clone(),
                expected_version: version,
                reason: text,
            }))
            .await,
            Code::InvalidArgument,
            Some("reason"),
        );
    }
    for uri in [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "JaVaScRiPt:alert(1)",
        "file:///etc/passwd",
        "not an address",
    ] {
        tally.expect(
            &format!("evidence {uri}"),
            t().claim_completion(herts_body.request(pb::ClaimCompletionRequest {
                item_id: item.clone(),
                expected_version: version,
                evidence: Some(pb::Evidence {
                    description: "the policy".into(),
                    uri: uri.into(),
                    ..Default::default()
                }),
                note: String::new(),
            }))
            .await,
            Code::InvalidArgument,
            Some("evidence.uri"),
        );
    }
    tally.expect(
        "evidence description zero-width",
        t().claim_completion(herts_body.request(pb::ClaimCompletionRequest {
            item_id: item.clone(),
            expected_version: version,
            evidence: Some(pb::Evidence {
                description: "\u{200B}".into(),
                uri: "https://example.org/policy.pdf".into(),
                ..Default::default()
            }),
            note: String::new(),
        }))
        .await,
        Code::InvalidArgument,
        Some("evidence.description"),
    );
    for (who, caller, year) in [
        ("inspected body", &herts_body, 9999),
        ("inspectorate", &inspectorate, 0),
        ("inspectorate", &inspectorate, -1),
        ("inspectorate", &inspectorate, 2201),
    ] {
        tally.expect(
            &format!("{who} due date year {year}"),
            t().set_due_date(caller.request(pb::SetDueDateRequest {
                item_id: item.clone(),
                expected_version: version,
                due_date: Some(pb::CalendarDate {
                    year,
                    month: 12,
                    day: 31,
                }),
                reason: "later".into(),
            }))
            .await,
            Code::InvalidArgument,
            Some("due_date"),
        );
    }
    tally.expect(
        "owner over-long",
        t().assign_owner(inspectorate.request(pb::AssignOwnerRequest {
            item_id: item.clone(),
            expected_version: version,
            owner: "o".repeat(201),
        }))
        .await,
        Code::InvalidArgument,
        Some("owner"),
    );
    for id in ["-", "a--b", "-a", "x".repeat(65).as_str()] {
        tally.expect(
            &format!("organisation id {id:?}, tracker"),
            t().list_items(inspectorate.request(pb::ListItemsRequest {
                organisation_id: id.into(),
                ..Default::default()
            }))
            .await,
            Code::InvalidArgument,
            Some("organisation_id"),
        );
        tally.expect(
            &format!("organisation id {id:?}, findings"),
            stack
                .f
                .clone()
                .get_organisation(inspectorate.request(pb::GetOrganisationRequest {
                    organisation_id: id.into(),
                }))
                .await,
            Code::InvalidArgument,
            Some("organisation_id"),
        );
    }
    tally.expect(
        "item id not an id",
        t().get_item(inspectorate.request(pb::GetItemRequest {
            item_id: "x".repeat(7000),
        }))
        .await,
        Code::InvalidArgument,
        Some("item_id"),
    );

    // Identity strings: a validly signed token whose subject is 7,000
    // characters, and a 7,000-character request id on a write.
    let long_subject = {
        let mut c = claims(Role::Inspectorate, None);
        c.sub = "s".repeat(7000);
        mint(&c)
    };
    tally.expect(
        "signed token, 7,000-character subject",
        t().note_progress(note(&long_subject)).await,
        Code::Unauthenticated,
        None,
    );
    let long_request_id = {
        let mut request = herts_body.request(pb::NoteProgressRequest {
            item_id: item.clone(),
            expected_version: version,
            note: "progress".into(),
        });
        request
            .metadata_mut()
            .insert("x-request-id", "r".repeat(7000).parse().unwrap());
        t().note_progress(request).await
    };
    tally.expect(
        "7,000-character x-request-id",
        long_request_id,
        Code::InvalidArgument,
        Some("x-request-id"),
    );
    // Watch and ParseReport need a verified caller too.
    for (name, token) in [
        ("no", None),
        (
            "expired",
            bad_tokens()
                .into_iter()
                .find(|(name, _)| *name == "expired")
                .map(|(_, token)| token),
        ),
    ] {
        let request = pb::WatchItemsRequest {
            organisation_id: String::new(),
            statuses: vec![],
            after_sequence: 0,
        };
        let request = match &token {
            Some(token) => with_token(token, request),
            None => tonic::Request::new(request),
        };
        tally.expect(
            &format!("{name} token, watch"),
            t().watch_items(request).await.map(|_| ()),
            Code::Unauthenticated,
            None,
        );
        let parse = pb::ParseReportRequest {
            text: SAMPLE.into(),
            ..Default::default()
        };
        let parse = match &token {
            Some(token) => with_token(token, parse),
            None => tonic::Request::new(parse),
        };
        tally.expect(
            &format!("{name} token, parse report"),
            stack.f.clone().parse_report(parse).await,
            Code::Unauthenticated,
            None,
        );
    }
    // A malformed frame: a CalendarDate's varint where GetItem expects a
    // string.
    let malformed = {
        let mut grpc = tonic::client::Grpc::new(connect(stack.tracker_addr).await);
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<pb::CalendarDate, pb::GetItemResponse>::default();
        grpc.unary(
            inspectorate.request(pb::CalendarDate {
                year: 2020,
                month: 1,
                day: 1,
            }),
            "/closeout.v1.TrackerService/GetItem".parse().unwrap(),
            codec,
        )
        .await
    };
    tally.expect("malformed protobuf", malformed, Code::InvalidArgument, None);
    for (service, addr, path) in [
        (
            "findings",
            stack.findings_addr,
            "/closeout.v1.FindingsService/GetOrganisation",
        ),
        (
            "metrics",
            stack.metrics_addr,
            "/closeout.v1.MetricsService/GetScorecard",
        ),
    ] {
        let mut grpc = tonic::client::Grpc::new(connect(addr).await);
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<pb::CalendarDate, pb::GetItemResponse>::default();
        let answer = grpc
            .unary(
                inspectorate.request(pb::CalendarDate {
                    year: 2020,
                    month: 1,
                    day: 1,
                }),
                path.parse().unwrap(),
                codec,
            )
            .await;
        tally.expect(
            &format!("malformed protobuf, {service}"),
            answer,
            Code::InvalidArgument,
            None,
        );
    }

    // Watch streams per caller.
    let watch = |caller: &Caller| {
        let request = caller.request(pb::WatchItemsRequest {
            organisation_id: String::new(),
            statuses: vec![],
            after_sequence: 0,
        });
        let mut t = t();
        async move { t.watch_items(request).await }
    };
    let mut open = Vec::new();
    for _ in 0..STREAMS_PER_CALLER {
        open.push(watch(&inspectorate).await.unwrap());
    }
    tally.expect(
        "one stream too many",
        watch(&inspectorate).await.map(|_| ()),
        Code::ResourceExhausted,
        None,
    );
    let viewer_stream = watch(&Caller::viewer()).await;
    assert!(viewer_stream.is_ok(), "another caller still watches");
    drop(open.pop());
    let again = closeout_testkit::poll(Duration::from_secs(10), || async {
        watch(&inspectorate).await.ok()
    })
    .await;
    assert!(again.is_some(), "a closed stream frees its slot");
    drop(open);

    // Undecodable and foreign events on the tracker's subjects.
    let bus = stack.bus.connect().await;
    let dead_before = closeout_service::bus_metrics::dead_letters(&bus, "tracker-findings")
        .await
        .unwrap_or(0);
    let subject = bus.subject("findings.v1.report.imported.hertfordshire");
    let undecodable = bytes_of(&[0xff, 0xff, 0xff, 0x01]);
    let not_ours = prost::Message::encode_to_vec(&pb::EventEnvelope {
        event_id: "not-a-uuid".into(),
        organisation_id: "hertfordshire".into(),
        ..Default::default()
    });
    for payload in [undecodable, not_ours] {
        bus.jetstream()
            .publish(subject.clone(), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let dead_after = eventually("both events dead-lettered", || {
        let bus = bus.clone();
        async move {
            let n = closeout_service::bus_metrics::dead_letters(&bus, "tracker-findings").await?;
            (n >= dead_before + 2).then_some(n)
        }
    })
    .await;

    let after = stack.snapshot(&item).await;
    assert_eq!(before, after, "nothing hostile wrote anything");
    // Look-alike organisation names import as the same organisation (the
    // import itself is allowed: it is the inspectorate's).
    let organisations_before = stack
        .f
        .clone()
        .list_organisations(inspectorate.request(pb::ListOrganisationsRequest {
            page_size: 500,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .organisations
        .len();
    for hidden in ['\u{202E}', '\u{200B}'] {
        let look_alike = SAMPLE.replace("Hertfordshire", &format!("Hertford{hidden}shire"));
        let imported = stack
            .f
            .clone()
            .import_report(inspectorate.request(pb::ImportReportRequest {
                text: look_alike,
                source_name: "look-alike.txt".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            imported.organisation_id, "hertfordshire",
            "U+{:04X} in the name",
            hidden as u32
        );
    }
    let organisations_after = stack
        .f
        .clone()
        .list_organisations(inspectorate.request(pb::ListOrganisationsRequest {
            page_size: 500,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .organisations
        .len();
    assert_eq!(organisations_before, organisations_after);

    println!(
        "hostile: {} refusals ({}), dead letters {} -> {}, item version {} history {} items {} unchanged",
        tally.cases,
        tally
            .by_code
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        dead_before,
        dead_after,
        after.version,
        after.history,
        after.items,
    );
    let _ = after.status;
    drop(stack.t);
    stack.bus.cleanup().await;
    for db in stack.dbs {
        db.drop_database().await;
    }
}

fn bytes_of(raw: &[u8]) -> Vec<u8> {
    raw.to_vec()
}
