//! The whole chain on the reference report: findings imports it, the
//! tracker opens its areas for improvement as items, people move two of
//! them, and the metrics service's scorecard shows what you would count by
//! hand. Three real services in one process, each with its own database,
//! sharing one private stream on the shared NATS.

use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb, FindingKind, Grade, ItemStatus};
use closeout_testkit::{TestBus, TestDatabase};
use std::collections::BTreeMap;
// Every call carries a token (a viewer's unless the request has its own).
use closeout_testkit::AuthChannel as Channel;

mod support;

use support::{SAMPLE, as_role, eventually, start_findings, start_metrics, start_tracker};

async fn channel(addr: std::net::SocketAddr) -> Channel {
    closeout_testkit::connect_authenticated(addr).await
}

#[tokio::test]
async fn the_sample_report_flows_from_import_to_scorecard() {
    let bus = TestBus::new();
    let (findings_db, tracker_db, metrics_db) = (
        TestDatabase::create().await,
        TestDatabase::create().await,
        TestDatabase::create().await,
    );
    let findings = start_findings(&findings_db, &bus).await;
    let tracker = start_tracker(&tracker_db, &bus).await;
    let metrics = start_metrics(&metrics_db, &bus).await;

    let mut findings_client = FindingsServiceClient::new(channel(findings.addr).await);
    let mut tracker_client = TrackerServiceClient::new(channel(tracker.addr).await);
    let metrics_client = MetricsServiceClient::new(channel(metrics.addr).await);

    let imported = findings_client
        .import_report(as_role(
            "inspectorate",
            "",
            pb::ImportReportRequest {
                text: SAMPLE.into(),
                source_name: "peel-2018-19-hertfordshire.txt".into(),
                replace: false,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.finding_count, 7);

    // The tracker opens one item per area for improvement.
    let items = eventually("seven tracked items", || {
        let mut client = tracker_client.clone();
        async move {
            let items = client
                .list_items(pb::ListItemsRequest {
                    organisation_id: "hertfordshire".into(),
                    page_size: 100,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .items;
            (items.len() == 7).then_some(items)
        }
    })
    .await;
    assert!(
        items
            .iter()
            .all(|i| i.kind == FindingKind::AreaForImprovement as i32
                && i.status == ItemStatus::Open as i32
                && i.inspection_id == imported.inspection_id)
    );

    // The force closes the cyber strategy item with evidence; the
    // inspectorate verifies it. The vetting item is started.
    let cyber = items
        .iter()
        .find(|i| i.text.contains("cyber strategy"))
        .unwrap();
    let vetting = items.iter().find(|i| i.text.contains("vetting")).unwrap();
    let started = tracker_client
        .start_item(as_role(
            "inspected-body",
            "hertfordshire",
            pb::StartItemRequest {
                item_id: cyber.id.clone(),
                expected_version: cyber.version,
                note: "Cyber crime strategy drafted".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    let claimed = tracker_client
        .claim_completion(as_role(
            "inspected-body",
            "hertfordshire",
            pb::ClaimCompletionRequest {
                item_id: cyber.id.clone(),
                expected_version: started.version,
                evidence: Some(pb::Evidence {
                    description:
                        "Cyber strategy and delivery plan approved by the chief officer group"
                            .into(),
                    uri: "https://example.org/herts/cyber-strategy.pdf".into(),
                    sha256: "a".repeat(64),
                }),
                note: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    let closed = tracker_client
        .verify_item(as_role(
            "inspectorate",
            "",
            pb::VerifyItemRequest {
                item_id: cyber.id.clone(),
                expected_version: claimed.version,
                closure_reference: "HMICFRS closure letter 2020-01".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .item
        .unwrap();
    assert_eq!(closed.status, ItemStatus::Closed as i32);
    tracker_client
        .start_item(as_role(
            "inspected-body",
            "hertfordshire",
            pb::StartItemRequest {
                item_id: vetting.id.clone(),
                expected_version: vetting.version,
                note: String::new(),
            },
        ))
        .await
        .unwrap();

    // The scorecard, as counted by hand: 7 areas for improvement; one
    // closed (Effectiveness), one in progress (Legitimacy), five open.
    // The findings events (indicators) and the tracker's reach the metrics
    // service by two consumers: wait for both.
    let indicator_count = imported.indicator_count as usize;
    let card = eventually("the scorecard to show both changes", || {
        let mut client = metrics_client.clone();
        async move {
            let card = client
                .get_scorecard(pb::GetScorecardRequest {
                    organisation_id: "hertfordshire".into(),
                    as_of: None,
                })
                .await
                .ok()?
                .into_inner()
                .scorecard?;
            let status: BTreeMap<i32, u32> =
                card.by_status.iter().map(|s| (s.status, s.count)).collect();
            (status.get(&(ItemStatus::Closed as i32)) == Some(&1)
                && status.get(&(ItemStatus::InProgress as i32)) == Some(&1)
                && card.indicators.len() == indicator_count)
                .then_some(card)
        }
    })
    .await;
    assert_eq!(card.total_items, 7);
    let status: BTreeMap<i32, u32> = card.by_status.iter().map(|s| (s.status, s.count)).collect();
    assert_eq!(status.get(&(ItemStatus::Open as i32)), Some(&5));
    assert_eq!(
        card.by_kind
            .iter()
            .map(|k| (k.kind, k.count))
            .collect::<Vec<_>>(),
        vec![(FindingKind::AreaForImprovement as i32, 7)]
    );
    let pillars: BTreeMap<&str, (u32, u32, u32)> = card
        .by_pillar
        .iter()
        .map(|p| (p.pillar.as_str(), (p.open, p.closed, p.total)))
        .collect();
    assert_eq!(pillars["Effectiveness"], (1, 1, 2));
    assert_eq!(pillars["Efficiency"], (2, 0, 2));
    assert_eq!(pillars["Legitimacy"], (3, 0, 3));
    assert_eq!(card.overdue, 0);

    // Grades: the ten questions of the Overall summary, first inspection.
    let questions: Vec<&pb::QuestionGrade> = card
        .grades
        .iter()
        .filter(|g| !g.question.is_empty())
        .collect();
    assert_eq!(questions.len(), 10);
    for grade in &questions {
        let expected = if grade.question == "Armed response capability" {
            Grade::Ungraded
        } else {
            Grade::Good
        };
        assert_eq!(grade.grade, expected as i32, "{}", grade.question);
    }
    // Context indicators against their comparators.
    let parsed = closeout_report::parse(SAMPLE).unwrap();
    assert_eq!(card.indicators.len(), parsed.indicators.len());
    let calls = card
        .indicators
        .iter()
        .find(|i| i.measure.starts_with("999 calls"))
        .unwrap();
    assert_eq!(
        (
            calls.value,
            calls.comparator.as_str(),
            calls.comparator_value
        ),
        (143.0, "England and Wales", Some(175.0))
    );

    metrics.stop().await.unwrap();
    tracker.stop().await.unwrap();
    findings.stop().await.unwrap();
    bus.cleanup().await;
    for db in [findings_db, tracker_db, metrics_db] {
        db.drop_database().await;
    }
}
