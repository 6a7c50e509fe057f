//! Reports as people have them, and organisations that change, through the
//! real findings service (its own database and stream): ImportReport and
//! ParseReport take bytes with a media type (a saved web page, a PDF) and
//! overrides for what a report does not state; RecordSuccession and
//! ListSuccessions keep predecessor → successor links, the known ones
//! applied at every start.

use closeout_findings::{FindingsConfig, RunningFindings, start};
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::{self as pb, event_envelope::Payload};
use closeout_service::config::{CommonConfig, LogFormat};
use closeout_testkit::{TestBus, TestDatabase, as_role, inspectorate};
use futures::StreamExt;
use prost::Message;
use std::time::Duration;
use tonic::Code;

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");
const SAMPLE_HTML: &[u8] =
    include_bytes!("../../../tests/fixtures/peel-2018-19-hertfordshire.html");
const SAMPLE_PDF: &[u8] = include_bytes!("../../../tests/fixtures/peel-2018-19-hertfordshire.pdf");

struct Harness {
    db: TestDatabase,
    bus: TestBus,
    running: RunningFindings,
    client: FindingsServiceClient<closeout_testkit::AuthChannel>,
    events: async_nats::Subscriber,
}

fn config(db: &TestDatabase, bus: &TestBus) -> FindingsConfig {
    let bus_config = bus.config();
    FindingsConfig {
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
        max_report_bytes: 5 * 1024 * 1024,
    }
}

async fn client_of(
    running: &RunningFindings,
) -> FindingsServiceClient<closeout_testkit::AuthChannel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FindingsServiceClient::new(closeout_testkit::authenticated(channel))
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024)
}

impl Harness {
    async fn start() -> Harness {
        let db = TestDatabase::create().await;
        let bus = TestBus::new();
        let nats = async_nats::connect(&bus.config().nats_url).await.unwrap();
        let events = nats
            .subscribe(format!("{}.>", bus.config().subject_prefix))
            .await
            .unwrap();
        nats.flush().await.unwrap();
        let running = start(config(&db, &bus), std::future::pending())
            .await
            .unwrap();
        let client = client_of(&running).await;
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

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    /// Rows of every table an import writes, and of the outbox.
    async fn written(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in [
            "organisations",
            "inspections",
            "findings",
            "source_documents",
            "successions",
            "closeout_outbox",
        ] {
            counts.push(self.count(&format!("SELECT count(*) FROM {table}")).await);
        }
        counts
    }

    /// `OrganisationSucceeded` events received within `wait`, with their subjects.
    async fn successions_announced(
        &mut self,
        count: usize,
        wait: Duration,
    ) -> Vec<(String, pb::OrganisationSucceeded)> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while got.len() < count {
            match tokio::time::timeout_at(deadline, self.events.next()).await {
                Ok(Some(message)) => {
                    let envelope = pb::EventEnvelope::decode(message.payload.clone()).unwrap();
                    if let Some(Payload::OrganisationSucceeded(s)) = envelope.payload {
                        got.push((message.subject.to_string(), s));
                    }
                }
                _ => break,
            }
        }
        got
    }
}

/// `message` as a viewer: anyone verified reads findings.
fn viewer<T>(message: T) -> tonic::Request<T> {
    as_role("viewer", "", message)
}

fn document(content: &[u8], source_name: &str) -> pb::ImportReportRequest {
    pb::ImportReportRequest {
        content: content.to_vec(),
        source_name: source_name.into(),
        ..Default::default()
    }
}

fn parse_of(content: &[u8], media_type: &str) -> pb::ParseReportRequest {
    pb::ParseReportRequest {
        content: content.to_vec(),
        media_type: media_type.into(),
        source_name: "download".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn web_pages_and_pdfs_import_as_their_text_does() {
    let mut h = Harness::start().await;

    // ParseReport: the same judgments and findings from all three.
    let text = h
        .client
        .parse_report(inspectorate(pb::ParseReportRequest {
            text: SAMPLE.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let text_report = text.report.unwrap();
    assert_eq!(text.media_type, "text/plain");
    for (content, media_type, expected) in [
        (SAMPLE_HTML, "text/html", "text/html"),
        (SAMPLE_PDF, "application/pdf", "application/pdf"),
        // Recognised from the bytes when the media type is not given.
        (SAMPLE_PDF, "", "application/pdf"),
        (SAMPLE_HTML, "", "text/html"),
    ] {
        let parsed = h
            .client
            .parse_report(inspectorate(parse_of(content, media_type)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(parsed.media_type, expected);
        let report = parsed.report.unwrap();
        assert_eq!(report.judgments, text_report.judgments, "{expected}");
        assert_eq!(report.pillars, text_report.pillars, "{expected}");
        let texts = |r: &pb::ParsedReport| -> Vec<String> {
            r.findings.iter().map(|f| f.text.clone()).collect()
        };
        assert_eq!(texts(&report), texts(&text_report), "{expected}");
    }

    // ImportReport of the PDF: stored with its media type and bytes.
    let imported = h
        .client
        .import_report(inspectorate(document(
            SAMPLE_PDF,
            "peel-2018-19-hertfordshire.pdf",
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(imported.created);
    assert_eq!(imported.media_type, "application/pdf");
    assert_eq!(imported.organisation_id, "hertfordshire");
    assert_eq!(imported.finding_count, text_report.findings.len() as u32);
    let (media_type, original): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT media_type, original FROM source_documents")
            .fetch_one(h.db.pool())
            .await
            .unwrap();
    assert_eq!(media_type, "application/pdf");
    assert_eq!(original.as_deref(), Some(SAMPLE_PDF));

    // The same PDF again: unchanged, same inspection.
    let before = h.written().await;
    let again = h
        .client
        .import_report(inspectorate(document(
            SAMPLE_PDF,
            "peel-2018-19-hertfordshire.pdf",
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created && !again.replaced);
    assert_eq!(again.inspection_id, imported.inspection_id);
    assert_eq!(h.written().await, before);

    // The web page of the same inspection is another document: refused
    // unless it replaces the PDF's content.
    let err = h
        .client
        .import_report(inspectorate(document(SAMPLE_HTML, "hertfordshire.html")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let replaced = h
        .client
        .import_report(inspectorate(pb::ImportReportRequest {
            replace: true,
            ..document(SAMPLE_HTML, "hertfordshire.html")
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(replaced.replaced);
    assert_eq!(replaced.media_type, "text/html");
    assert_eq!(replaced.inspection_id, imported.inspection_id);
    h.stop().await;
}

#[tokio::test]
async fn what_a_report_does_not_state_is_named_with_its_flag_and_accepted_when_given() {
    let mut h = Harness::start().await;
    // The sample without its closing "September 2019 | ©HMICFRS 2019" line
    // states no publication date.
    let undated: String = SAMPLE
        .lines()
        .filter(|l| !l.contains("©HMICFRS"))
        .collect::<Vec<_>>()
        .join("\n");
    let before = h.written().await;
    let err = h
        .client
        .import_report(inspectorate(pb::ImportReportRequest {
            text: undated.clone(),
            source_name: "undated.txt".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains(
            "the report does not state its publication date; pass --published YYYY-MM-DD \
             (ImportReportRequest.overrides.published)"
        ),
        "{}",
        err.message()
    );
    assert_eq!(h.written().await, before, "a refused import writes nothing");

    // A malformed override is refused, naming it.
    let err = h
        .client
        .import_report(inspectorate(pb::ImportReportRequest {
            text: undated.clone(),
            overrides: Some(pb::ReportOverrides {
                published: "20/12/2018".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("overrides.published"),
        "{}",
        err.message()
    );

    // Given, it is used, with a warning.
    let imported = h
        .client
        .import_report(inspectorate(pb::ImportReportRequest {
            text: undated,
            source_name: "undated.txt".into(),
            overrides: Some(pb::ReportOverrides {
                published: "2019-09-26".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(imported.created);
    assert!(
        imported.warnings.iter().any(|w| w.contains("--published")),
        "{:?}",
        imported.warnings
    );
    let inspection = h
        .client
        .get_inspection(viewer(pb::GetInspectionRequest {
            inspection_id: imported.inspection_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .inspection
        .unwrap();
    assert_eq!(inspection.published, "2019-09-26");

    // An override the document contradicts is not used; the document wins.
    let parsed = h
        .client
        .parse_report(inspectorate(pb::ParseReportRequest {
            text: SAMPLE.into(),
            overrides: Some(pb::ReportOverrides {
                period: "2017".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(parsed.inspection.unwrap().period, "2018/19");
    assert!(parsed.warnings.iter().any(|w| w.contains("--period")));
    h.stop().await;
}

#[tokio::test]
async fn a_national_report_is_stored_under_the_inspectorate() {
    let mut h = Harness::start().await;
    let national = include_str!(
        "../../report/tests/fixtures/corpus/national/police-digital-evidence-2024.txt"
    );
    let imported = h
        .client
        .import_report(inspectorate(pb::ImportReportRequest {
            text: national.into(),
            source_name: "police-digital-evidence-2024.txt".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(imported.created);
    assert_eq!(imported.organisation_id, "hmicfrs");
    assert_eq!(imported.profile, "national");
    assert!(imported.finding_count > 0);
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("national report")),
        "{:?}",
        imported.warnings
    );
    let findings = h
        .client
        .list_findings(viewer(pb::ListFindingsRequest {
            inspection_id: imported.inspection_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .findings;
    assert!(findings.iter().all(|f| f.addressed_to_all), "{findings:?}");
    h.stop().await;
}

#[tokio::test]
async fn documents_that_cannot_be_read_are_refused_with_the_reason() {
    let h = Harness::start().await;
    let mut client = h.client.clone();
    let before = h.written().await;
    let cases: Vec<(pb::ImportReportRequest, &str)> = vec![
        (
            pb::ImportReportRequest {
                text: SAMPLE.into(),
                content: SAMPLE.as_bytes().to_vec(),
                ..Default::default()
            },
            "not both",
        ),
        (
            pb::ImportReportRequest {
                content: b"PK\x03\x04\0\0word/document.xml".to_vec(),
                media_type:
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document".into(),
                ..Default::default()
            },
            "media type",
        ),
        (
            pb::ImportReportRequest {
                content: b"PK\x03\x04\0\0word/document.xml".to_vec(),
                media_type: "text/plain".into(),
                ..Default::default()
            },
            "NUL bytes",
        ),
        (
            pb::ImportReportRequest {
                content: b"%PDF-1.7\n1 0 obj <<>> endobj trailer".to_vec(),
                source_name: "broken.pdf".into(),
                ..Default::default()
            },
            "PDF",
        ),
        (
            pb::ImportReportRequest {
                content: b"<!doctype html><html><body><nav>Home</nav></body></html>".to_vec(),
                ..Default::default()
            },
            "no readable text",
        ),
    ];
    for (request, expected) in cases {
        let err = client
            .import_report(inspectorate(request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains(expected),
            "{expected}: {}",
            err.message()
        );
    }
    assert_eq!(h.written().await, before);
    h.stop().await;
}

fn organisation(id: &str, name: &str, kind: pb::OrganisationKind) -> pb::RecordOrganisationRequest {
    pb::RecordOrganisationRequest {
        organisation: Some(pb::Organisation {
            id: id.into(),
            name: name.into(),
            kind: kind as i32,
            most_similar_group: Vec::new(),
        }),
    }
}

fn succession(predecessor: &str, successor: &str, date: &str) -> pb::RecordSuccessionRequest {
    pb::RecordSuccessionRequest {
        predecessor_id: predecessor.into(),
        successor_id: successor.into(),
        effective_date: date.into(),
        note: "Merged.".into(),
    }
}

#[tokio::test]
async fn successions_known_and_recorded() {
    let mut h = Harness::start().await;
    let prefix = h.bus.config().subject_prefix;

    // The known ones are there from the start, announced once each.
    let known = h
        .client
        .list_successions(viewer(pb::ListSuccessionsRequest {
            organisation_id: "hampshire-and-isle-of-wight-fire".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .successions;
    let pairs: Vec<(&str, &str, &str, &str)> = known
        .iter()
        .map(|s| {
            (
                s.predecessor_id.as_str(),
                s.successor_id.as_str(),
                s.effective_date.as_str(),
                s.source.as_str(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            (
                "hampshire-fire",
                "hampshire-and-isle-of-wight-fire",
                "2021-04-01",
                "known"
            ),
            (
                "isle-of-wight-fire",
                "hampshire-and-isle-of-wight-fire",
                "2021-04-01",
                "known"
            ),
        ]
    );
    let announced = h.successions_announced(2, Duration::from_secs(10)).await;
    assert_eq!(announced.len(), 2);
    for (subject, event) in &announced {
        assert_eq!(
            subject,
            &format!(
                "{prefix}.findings.v1.organisation.succeeded.hampshire-and-isle-of-wight-fire"
            )
        );
        assert_eq!(event.effective_date, "2021-04-01");
    }

    // Starting again applies them again: nothing changes.
    let before = h.written().await;
    let second = start(config(&h.db, &h.bus), std::future::pending())
        .await
        .unwrap();
    assert_eq!(h.written().await, before);
    second.stop().await.unwrap();

    // Recording: the inspectorate only, ids checked, organisations known.
    for (id, name, kind) in [
        (
            "north-loamshire",
            "North Loamshire Police",
            pb::OrganisationKind::PoliceForce,
        ),
        (
            "loamshire",
            "Loamshire Police",
            pb::OrganisationKind::PoliceForce,
        ),
        (
            "wessex",
            "Wessex Fire and Rescue Service",
            pb::OrganisationKind::FireAndRescueService,
        ),
    ] {
        h.client
            .record_organisation(inspectorate(organisation(id, name, kind)))
            .await
            .unwrap();
    }
    let before = h.written().await;
    let refusals = [
        (
            as_role(
                "viewer",
                "",
                succession("north-loamshire", "loamshire", "2024-04-01"),
            ),
            Code::PermissionDenied,
        ),
        (
            inspectorate(succession("North Loamshire", "loamshire", "2024-04-01")),
            Code::InvalidArgument,
        ),
        (
            inspectorate(succession("north-loamshire", "loamshire", "1 April 2024")),
            Code::InvalidArgument,
        ),
        (
            inspectorate(succession("loamshire", "loamshire", "2024-04-01")),
            Code::InvalidArgument,
        ),
        (
            inspectorate(succession("south-loamshire", "loamshire", "2024-04-01")),
            Code::NotFound,
        ),
        (
            inspectorate(succession("north-loamshire", "wessex", "2024-04-01")),
            Code::InvalidArgument,
        ),
    ];
    for (request, code) in refusals {
        let err = h.client.record_succession(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
    }
    assert_eq!(h.written().await, before, "refusals change nothing");

    let recorded = h
        .client
        .record_succession(inspectorate(succession(
            "north-loamshire",
            "loamshire",
            "2024-04-01",
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(recorded.created);
    let stored = recorded.succession.unwrap();
    assert_eq!(stored.source, "recorded");
    assert_eq!(stored.note, "Merged.");
    let announced = h.successions_announced(1, Duration::from_secs(10)).await;
    assert_eq!(
        announced,
        vec![(
            format!("{prefix}.findings.v1.organisation.succeeded.loamshire"),
            pb::OrganisationSucceeded {
                predecessor_id: "north-loamshire".into(),
                successor_id: "loamshire".into(),
                effective_date: "2024-04-01".into(),
                note: "Merged.".into(),
            }
        )]
    );

    // Again: nothing new. With another date: refused. Backwards: a cycle.
    let again = h
        .client
        .record_succession(inspectorate(succession(
            "north-loamshire",
            "loamshire",
            "2024-04-01",
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    let err = h
        .client
        .record_succession(inspectorate(succession(
            "north-loamshire",
            "loamshire",
            "2025-04-01",
        )))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = h
        .client
        .record_succession(inspectorate(succession(
            "loamshire",
            "north-loamshire",
            "2025-04-01",
        )))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cycle"), "{}", err.message());

    let all = h
        .client
        .list_successions(viewer(pb::ListSuccessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .successions;
    assert_eq!(all.len(), 3);
    let err = h
        .client
        .list_successions(viewer(pb::ListSuccessionsRequest {
            organisation_id: "Not An Id".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // One announcement per succession stored, none for the repeats.
    let announcements = h
        .count(
            "SELECT count(*) FROM closeout_outbox \
             WHERE event_type = 'closeout.v1.OrganisationSucceeded'",
        )
        .await;
    assert_eq!(announcements, 3);
    h.stop().await;
}
