//! End-to-end tests of the findings service over gRPC: a real server on an
//! ephemeral port, its own fresh database and its own stream on the shared
//! NATS, and an independent NATS subscriber that decodes events with only
//! the .proto files.

use closeout_findings::{FindingsConfig, RunningFindings, start};
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::{self as pb};
use closeout_service::config::{CommonConfig, LogFormat};
use closeout_testkit::{TestBus, TestDatabase};
use futures::StreamExt;
use prost_reflect::{DescriptorPool, DynamicMessage};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

struct Harness {
    db: TestDatabase,
    bus: TestBus,
    running: RunningFindings,
    client: FindingsServiceClient<closeout_testkit::AuthChannel>,
    events: async_nats::Subscriber,
}

impl Harness {
    async fn start(max_report_bytes: usize) -> Harness {
        let db = TestDatabase::create().await;
        let bus = TestBus::new();
        let bus_config = bus.config();
        let nats = async_nats::connect(&bus_config.nats_url).await.unwrap();
        let events = nats
            .subscribe(format!("{}.>", bus_config.subject_prefix))
            .await
            .unwrap();
        nats.flush().await.unwrap();
        let config = FindingsConfig {
            common: CommonConfig {
                database_url: db.url().to_string(),
                nats_url: bus_config.nats_url.clone(),
                grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
                stream_name: bus_config.stream_name.clone(),
                subject_prefix: bus_config.subject_prefix.clone(),
                database_max_connections: 5,
                log_format: LogFormat::Text,
                auth: closeout_service::config::AuthConfig::trusting(vec![
                    closeout_testkit::token_public_key().to_path_buf(),
                ]),
                tls: Default::default(),
                reflection_addr: None,
            },
            metrics_http_addr: "127.0.0.1:0".parse().unwrap(),
            max_report_bytes,
        };
        let running = start(config, std::future::pending()).await.unwrap();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let client = FindingsServiceClient::new(closeout_testkit::authenticated(channel))
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        Harness {
            db,
            bus,
            running,
            client,
            events,
        }
    }

    async fn stop(self) {
        self.running.stop().await.unwrap();
        self.bus.cleanup().await;
        self.db.drop_database().await;
    }

    fn prefix(&self) -> String {
        self.bus.config().subject_prefix
    }

    /// Receives events until `count` arrived or `wait` passed.
    async fn receive(&mut self, count: usize, wait: Duration) -> Vec<async_nats::Message> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while got.len() < count {
            match tokio::time::timeout_at(deadline, self.events.next()).await {
                // The known successions, announced at every first start.
                Ok(Some(message)) if message.subject.contains(".organisation.succeeded.") => {}
                Ok(Some(message)) => got.push(message),
                _ => break,
            }
        }
        got
    }

    async fn table_counts(&self) -> BTreeMap<&'static str, i64> {
        let mut counts = BTreeMap::new();
        for table in [
            "organisations",
            "inspections",
            "judgments",
            "findings",
            "follow_ups",
            "indicators",
            "source_documents",
            "closeout_outbox",
        ] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(self.db.pool())
                .await
                .unwrap();
            counts.insert(table, n);
        }
        counts
    }
}

/// The testkit's `as_role`, for no particular organisation.
fn as_role<T>(role: &str, message: T) -> tonic::Request<T> {
    closeout_testkit::as_role(role, "", message)
}

fn import_request(text: &str) -> pb::ImportReportRequest {
    pb::ImportReportRequest {
        text: text.to_string(),
        source_name: "peel-2018-19-hertfordshire.txt".into(),
        replace: false,
        ..Default::default()
    }
}

/// The descriptor pool compiled from the .proto files alone, as an
/// outside subscriber would have it.
fn proto_pool() -> DescriptorPool {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files: Vec<String> = ["common", "events", "findings", "tracker", "metrics"]
        .iter()
        .map(|f| format!("{root}/closeout/v1/{f}.proto"))
        .collect();
    let fds = protox::compile(&files, [root]).unwrap();
    DescriptorPool::from_file_descriptor_set(fds).unwrap()
}

#[tokio::test]
async fn imports_the_sample_reads_it_back_and_announces_each_change_once() {
    let mut h = Harness::start(5 * 1024 * 1024).await;
    let parsed = closeout_report::parse(SAMPLE).unwrap();

    let reply = h
        .client
        .import_report(as_role("inspectorate", import_request(SAMPLE)))
        .await
        .unwrap();
    assert_eq!(
        reply
            .metadata()
            .get("x-closeout-version")
            .map(|v| v.to_str().unwrap()),
        Some(closeout_service::server::VERSION),
        "every reply names the version that served it"
    );
    let imported = reply.into_inner();
    assert!(imported.created);
    assert_eq!(imported.organisation_id, "hertfordshire");
    assert_eq!(imported.finding_count, 7);
    assert_eq!(imported.judgment_count, 13);
    assert_eq!(imported.follow_up_count as usize, parsed.follow_ups.len());
    assert_eq!(imported.indicator_count as usize, parsed.indicators.len());

    // Read everything back and compare with what the parser found.
    let inspection = h
        .client
        .get_inspection(pb::GetInspectionRequest {
            inspection_id: imported.inspection_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .inspection
        .unwrap();
    assert_eq!(inspection.programme, "PEEL");
    assert_eq!(inspection.period, "2018/19");
    assert_eq!(inspection.published, "2019-09");
    assert_eq!(inspection.finding_count, 7);
    assert_eq!(inspection.source_sha256.len(), 64);

    let organisation = h
        .client
        .get_organisation(pb::GetOrganisationRequest {
            organisation_id: "hertfordshire".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();
    assert_eq!(organisation.name, "Hertfordshire Constabulary");
    assert_eq!(organisation.most_similar_group.len(), 7);
    assert!(
        organisation
            .most_similar_group
            .contains(&"thames-valley".to_string())
    );

    let findings = h
        .client
        .list_findings(pb::ListFindingsRequest {
            inspection_id: imported.inspection_id.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .findings;
    assert_eq!(findings.len(), parsed.findings.len());
    for (stored, parsed) in findings.iter().zip(&parsed.findings) {
        assert_eq!(stored.text, parsed.text);
        assert_eq!(stored.kind, parsed.kind);
        assert_eq!(stored.pillar, parsed.pillar);
        assert_eq!(stored.question, parsed.question);
        assert_eq!(stored.line_start, parsed.line_start);
        assert_eq!(stored.line_end, parsed.line_end);
        let one = h
            .client
            .get_finding(pb::GetFindingRequest {
                finding_id: stored.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .finding
            .unwrap();
        assert_eq!(&one, stored);
    }

    let judgments = h
        .client
        .list_judgments(pb::ListJudgmentsRequest {
            organisation_id: "hertfordshire".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .judgments;
    assert_eq!(judgments.len(), 13);
    for parsed in &parsed.judgments {
        let stored = judgments
            .iter()
            .find(|j| j.question == parsed.question)
            .unwrap_or_else(|| panic!("judgment for {} stored", parsed.question));
        assert_eq!(stored.grade, parsed.grade);
        assert_eq!(stored.last_inspected, parsed.last_inspected);
        assert_eq!(stored.carried_over, parsed.carried_over);
    }

    let indicators = h
        .client
        .list_indicators(pb::ListIndicatorsRequest {
            inspection_id: imported.inspection_id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .indicators;
    assert_eq!(indicators.len(), parsed.indicators.len());
    for (stored, parsed) in indicators.iter().zip(&parsed.indicators) {
        assert_eq!(stored.measure, parsed.measure);
        assert_eq!(stored.value, parsed.value);
        assert_eq!(stored.comparator, parsed.comparator);
        assert_eq!(stored.comparator_value, parsed.comparator_value);
        assert_eq!(stored.comparator_period, parsed.comparator_period);
    }
    let officers = indicators
        .iter()
        .find(|i| i.measure == "Hertfordshire workforce: Police Officer")
        .expect("workforce indicator");
    assert_eq!(
        (
            officers.comparator.as_str(),
            officers.comparator_period.as_str()
        ),
        ("same organisation", "31 March 2014")
    );
    let calls = indicators
        .iter()
        .find(|i| i.measure.starts_with("999 calls"))
        .expect("999 calls indicator");
    assert_eq!((calls.value, calls.comparator_value), (143.0, Some(175.0)));

    let follow_ups = h
        .client
        .list_follow_ups(pb::ListFollowUpsRequest {
            inspection_id: imported.inspection_id.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .follow_ups;
    assert_eq!(follow_ups.len(), parsed.follow_ups.len());

    // Every change was announced once, on the right subject, decodable
    // with only the .proto files.
    let expected = 1 + 13 + 7 + parsed.follow_ups.len() + parsed.indicators.len() + 1;
    let messages = h.receive(expected, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), expected, "events received");
    let pool = proto_pool();
    let envelope_type = pool
        .get_message_by_name("closeout.v1.EventEnvelope")
        .unwrap();
    let mut ids = HashSet::new();
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    let prefix = h.prefix();
    for message in &messages {
        let envelope = DynamicMessage::decode(envelope_type.clone(), message.payload.clone())
            .expect("decodes with the .proto files alone");
        let event_id = envelope
            .get_field_by_name("event_id")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        assert!(ids.insert(event_id.clone()), "event {event_id} seen twice");
        let headers = message.headers.as_ref().expect("headers");
        assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), event_id);
        assert!(headers.get("traceparent").is_some());
        let event_type = envelope
            .get_field_by_name("event_type")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        let (entity, verb) = match event_type.as_str() {
            "closeout.v1.OrganisationRegistered" => ("organisation", "registered"),
            "closeout.v1.InspectionPublished" => ("inspection", "published"),
            "closeout.v1.JudgmentRecorded" => ("judgment", "recorded"),
            "closeout.v1.FindingRecorded" => ("finding", "recorded"),
            "closeout.v1.FollowUpRecorded" => ("follow-up", "recorded"),
            "closeout.v1.IndicatorRecorded" => ("indicator", "recorded"),
            other => panic!("unexpected event type {other}"),
        };
        assert_eq!(
            message.subject.as_str(),
            format!("{prefix}.findings.v1.{entity}.{verb}.hertfordshire")
        );
        *by_type.entry(event_type).or_default() += 1;
    }
    assert_eq!(by_type["closeout.v1.FindingRecorded"], 7);
    assert_eq!(by_type["closeout.v1.JudgmentRecorded"], 13);
    assert_eq!(by_type["closeout.v1.InspectionPublished"], 1);
    // The inspection is announced after its contents.
    let last =
        DynamicMessage::decode(envelope_type, messages.last().unwrap().payload.clone()).unwrap();
    assert_eq!(
        last.get_field_by_name("event_type").unwrap().as_str(),
        Some("closeout.v1.InspectionPublished")
    );

    // Importing the same document again changes and announces nothing.
    let before = h.table_counts().await;
    let again = h
        .client
        .import_report(as_role("inspectorate", import_request(SAMPLE)))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.inspection_id, imported.inspection_id);
    assert_eq!(h.table_counts().await, before);
    assert!(h.receive(1, Duration::from_millis(1500)).await.is_empty());

    // The Prometheus endpoint counts the calls and shows the relay's work.
    let scrape = scrape(h.running.metrics_http_addr).await;
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("closeout_rpc_requests_total")
                && l.contains("ImportReport")
                && l.contains("code=\"OK\"")
                && l.ends_with(" 2")),
        "{scrape}"
    );
    assert!(scrape.contains("closeout_outbox_backlog 0"), "{scrape}");
    // The import's events and the known successions' announcements.
    let known = closeout_findings::successions::known(closeout_findings::successions::KNOWN)
        .unwrap()
        .len();
    assert!(
        scrape.contains(&format!(
            "closeout_outbox_published_total {}",
            expected + known
        )),
        "{scrape}"
    );

    h.stop().await;
}

/// GET /metrics over a plain TCP connection.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

fn field_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

#[tokio::test]
async fn refuses_bad_input_with_the_right_code_and_writes_nothing() {
    let mut h = Harness::start(200_000).await;
    h.client
        .import_report(as_role("inspectorate", import_request(SAMPLE)))
        .await
        .unwrap();
    let _ = h.receive(10_000, Duration::from_secs(3)).await;
    let before = h.table_counts().await;

    // Empty report.
    let status = h
        .client
        .import_report(as_role("inspectorate", import_request("   ")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_of(&status), "text");

    // Larger than the configured limit.
    let big = SAMPLE.repeat(3);
    let status = h
        .client
        .import_report(as_role("inspectorate", import_request(&big)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("limit"), "{}", status.message());

    // Not a report at all.
    let status = h
        .client
        .import_report(as_role(
            "inspectorate",
            import_request("Shopping list\n\nEggs\nMilk\n"),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_of(&status), "text");

    // No identity; a viewer; an inspected body.
    let status = FindingsServiceClient::connect(format!("http://{}", h.running.addr))
        .await
        .unwrap()
        .import_report(tonic::Request::new(import_request(SAMPLE)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = h
        .client
        .import_report(as_role("viewer", import_request(SAMPLE)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // A different document for the same inspection.
    let amended = SAMPLE.replace(
        "The force should develop a comprehensive skills strategy",
        "The force should develop a complete skills strategy",
    );
    assert_ne!(amended, SAMPLE);
    let status = h
        .client
        .import_report(as_role("inspectorate", import_request(&amended)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("replace"));

    // Ids and filters.
    let status = h
        .client
        .get_finding(pb::GetFindingRequest {
            finding_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_of(&status), "finding_id");
    let status = h
        .client
        .get_inspection(pb::GetInspectionRequest {
            inspection_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = h
        .client
        .get_organisation(pb::GetOrganisationRequest {
            organisation_id: "atlantis".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = h
        .client
        .list_findings(pb::ListFindingsRequest {
            organisation_id: "Not A Slug".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&status), "organisation_id");
    let status = h
        .client
        .list_findings(pb::ListFindingsRequest {
            page_token: "forged".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&status), "page_token");
    let status = h
        .client
        .list_findings(pb::ListFindingsRequest {
            kind: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&status), "kind");
    let status = h
        .client
        .record_finding(as_role(
            "inspectorate",
            pb::RecordFindingRequest {
                inspection_id: uuid::Uuid::now_v7().to_string(),
                kind: pb::FindingKind::Recommendation as i32,
                text: "The force should act.".into(),
                deadline: "sometime soon".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // None of that wrote or announced anything.
    assert_eq!(h.table_counts().await, before);
    assert!(h.receive(1, Duration::from_millis(1000)).await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn replacing_a_document_records_and_announces_only_the_differences() {
    let mut h = Harness::start(5 * 1024 * 1024).await;
    let first = h
        .client
        .import_report(as_role("inspectorate", import_request(SAMPLE)))
        .await
        .unwrap()
        .into_inner();
    let _ = h.receive(10_000, Duration::from_secs(3)).await;
    let list = |client: &mut FindingsServiceClient<closeout_testkit::AuthChannel>| {
        let mut client = client.clone();
        let id = first.inspection_id.clone();
        async move {
            client
                .list_findings(pb::ListFindingsRequest {
                    inspection_id: id,
                    page_size: 100,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .findings
        }
    };
    let before = list(&mut h.client).await;

    let amended = SAMPLE.replace(
        "The force should develop a comprehensive skills strategy",
        "The force should develop a complete skills strategy",
    );
    let mut request = import_request(&amended);
    request.replace = true;
    let replaced = h
        .client
        .import_report(as_role("inspectorate", request))
        .await
        .unwrap()
        .into_inner();
    assert!(replaced.replaced);
    assert_eq!(replaced.inspection_id, first.inspection_id);

    let after = list(&mut h.client).await;
    assert_eq!(after.len(), 7);
    let kept: Vec<_> = after
        .iter()
        .filter(|f| before.iter().any(|b| b.id == f.id))
        .collect();
    assert_eq!(kept.len(), 6, "unchanged findings keep their ids");

    let messages = h.receive(10_000, Duration::from_secs(4)).await;
    let types: Vec<String> = messages
        .iter()
        .map(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get("Closeout-Event-Type"))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| t.ends_with("FindingRecorded"))
            .count(),
        1
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| t.ends_with("FindingWithdrawn"))
            .count(),
        1
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| t.ends_with("InspectionReplaced"))
            .count(),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn a_callers_trace_continues_into_the_events_of_its_call() {
    let _telemetry = closeout_service::telemetry::init(LogFormat::Text, "findings");
    let mut h = Harness::start(5 * 1024 * 1024).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = as_role("inspectorate", import_request(SAMPLE));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    h.client.import_report(request).await.unwrap();
    let messages = h.receive(1, Duration::from_secs(10)).await;
    let traceparent = messages[0]
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_string())
        .unwrap();
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(trace_id),
        "{traceparent}"
    );
    h.stop().await;
}

#[tokio::test]
async fn records_by_hand_and_pages_through_lists() {
    let h = Harness::start(5 * 1024 * 1024).await;
    let mut client = h.client.clone();
    let organisation = client
        .record_organisation(as_role(
            "inspectorate",
            pb::RecordOrganisationRequest {
                organisation: Some(pb::Organisation {
                    id: "essex".into(),
                    name: "Essex Police".into(),
                    kind: pb::OrganisationKind::PoliceForce as i32,
                    most_similar_group: vec![],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(organisation.created);
    let inspection = client
        .record_inspection(as_role(
            "inspectorate",
            pb::RecordInspectionRequest {
                organisation_id: "essex".into(),
                programme: "PEEL".into(),
                period: "2017".into(),
                title: "PEEL: Police effectiveness 2017".into(),
                published: "2018-03".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .inspection
        .unwrap();
    let cause = client
        .record_finding(as_role(
            "inspectorate",
            pb::RecordFindingRequest {
                inspection_id: inspection.id.clone(),
                kind: pb::FindingKind::CauseOfConcern as i32,
                pillar: "Effectiveness".into(),
                question: "Protecting vulnerable people".into(),
                text: "The force's response to missing children is putting them at risk.".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .finding
        .unwrap();
    let recommendation = client
        .record_finding(as_role(
            "inspectorate",
            pb::RecordFindingRequest {
                inspection_id: inspection.id.clone(),
                kind: pb::FindingKind::Recommendation as i32,
                pillar: "Effectiveness".into(),
                question: "Protecting vulnerable people".into(),
                text: "Within six months, the force should review how it records missing children."
                    .into(),
                deadline: "within six months".into(),
                parent_finding_id: cause.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .finding
        .unwrap();
    assert_eq!(recommendation.parent_finding_id, cause.id);
    assert_eq!(
        recommendation.due_date,
        Some(pb::CalendarDate::new(2018, 9, 30))
    );

    // A deadline Closeout cannot read is refused, naming the field.
    let status = client
        .record_finding(as_role(
            "inspectorate",
            pb::RecordFindingRequest {
                inspection_id: inspection.id.clone(),
                kind: pb::FindingKind::Recommendation as i32,
                text: "The force should act.".into(),
                deadline: "when convenient".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&status), "deadline");

    for n in 0..5 {
        client
            .record_finding(as_role(
                "inspectorate",
                pb::RecordFindingRequest {
                    inspection_id: inspection.id.clone(),
                    kind: pb::FindingKind::AreaForImprovement as i32,
                    text: format!("The force should improve area {n}."),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_findings(pb::ListFindingsRequest {
                organisation_id: "essex".into(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.findings.into_iter().map(|f| f.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
    h.stop().await;
}

const FIRE_SAMPLE: &str = include_str!("../../../tests/fixtures/pairs/fenmoor-2018-19.txt");

#[tokio::test]
async fn a_force_and_a_service_of_one_place_are_two_organisations() {
    let mut h = Harness::start(5 * 1024 * 1024).await;
    let fire = FIRE_SAMPLE.replace("Fenmoor", "Hertfordshire");
    let service = h
        .client
        .import_report(as_role("inspectorate", import_request(&fire)))
        .await
        .unwrap()
        .into_inner();
    let force = h
        .client
        .import_report(as_role("inspectorate", import_request(SAMPLE)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(service.organisation_id, "hertfordshire-fire");
    assert_eq!(force.organisation_id, "hertfordshire");
    assert!(service.created && force.created);
    for (id, kind) in [
        (
            "hertfordshire-fire",
            pb::OrganisationKind::FireAndRescueService,
        ),
        ("hertfordshire", pb::OrganisationKind::PoliceForce),
    ] {
        let organisation = h
            .client
            .get_organisation(pb::GetOrganisationRequest {
                organisation_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .organisation
            .unwrap();
        assert_eq!(organisation.kind(), kind, "{id}");
    }
    let findings_of = |id: &str| pb::ListFindingsRequest {
        organisation_id: id.into(),
        ..Default::default()
    };
    let fire_findings = h
        .client
        .list_findings(findings_of("hertfordshire-fire"))
        .await
        .unwrap()
        .into_inner()
        .findings;
    assert!(!fire_findings.is_empty());
    assert!(
        fire_findings
            .iter()
            .all(|f| f.inspection_id == service.inspection_id)
    );

    // Recording a service by hand under the force's id: refused, naming both.
    let status = h
        .client
        .record_organisation(as_role(
            "inspectorate",
            pb::RecordOrganisationRequest {
                organisation: Some(pb::Organisation {
                    id: "hertfordshire".into(),
                    name: "Hertfordshire Fire and Rescue Service".into(),
                    kind: pb::OrganisationKind::FireAndRescueService as i32,
                    most_similar_group: Vec::new(),
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    for words in [
        "Hertfordshire Constabulary",
        "a police force",
        "a fire and rescue service",
    ] {
        assert!(
            status.message().contains(words),
            "{words}: {}",
            status.message()
        );
    }

    // An id already held by a body of the other kind: refused, naming both,
    // and nothing written or announced.
    h.client
        .record_organisation(as_role(
            "inspectorate",
            pb::RecordOrganisationRequest {
                organisation: Some(pb::Organisation {
                    id: "loamshire".into(),
                    name: "Loamshire Fire and Rescue Service (recorded by hand)".into(),
                    kind: pb::OrganisationKind::FireAndRescueService as i32,
                    most_similar_group: Vec::new(),
                }),
            },
        ))
        .await
        .unwrap();
    h.receive(usize::MAX, Duration::from_secs(3)).await;
    let before = h.table_counts().await;
    let status = h
        .client
        .import_report(as_role(
            "inspectorate",
            import_request(&SAMPLE.replace("Hertfordshire", "Loamshire")),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    for words in [
        "Loamshire Constabulary",
        "a police force",
        "Loamshire Fire and Rescue Service (recorded by hand)",
        "a fire and rescue service",
        "loamshire",
    ] {
        assert!(
            status.message().contains(words),
            "{words}: {}",
            status.message()
        );
    }
    assert_eq!(h.table_counts().await, before);
    assert!(h.receive(1, Duration::from_millis(1000)).await.is_empty());
    h.stop().await;
}
