//! The sample report (PEEL 2018/19, Hertfordshire): its seven areas for
//! improvement, announced as the findings service would, open seven items.

mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use support::{World, findings_event};

const REPORT: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

/// The events an import of `report` publishes: the organisation, each
/// finding, then the inspection.
fn import_events(report: &pb::ParsedReport) -> Vec<pb::EventEnvelope> {
    let organisation = report.organisation.clone().unwrap_or_default();
    let inspection = report.inspection.clone().unwrap_or_default();
    let inspection_id = uuid::Uuid::now_v7().to_string();
    let published = closeout_domain::PublishedDate::parse(&inspection.published).ok();
    let mut events = vec![findings_event(
        &organisation.id,
        "organisation",
        &organisation.id,
        Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(pb::Organisation {
                id: organisation.id.clone(),
                name: organisation.name.clone(),
                kind: organisation.kind,
                most_similar_group: Vec::new(),
            }),
        }),
    )];
    for finding in &report.findings {
        let finding_id = uuid::Uuid::now_v7().to_string();
        let due_date = published
            .and_then(|p| {
                closeout_domain::due_date(&finding.deadline, p)
                    .ok()
                    .flatten()
            })
            .map(|d| {
                use chrono::Datelike;
                pb::CalendarDate::new(d.year(), d.month(), d.day())
            });
        events.push(findings_event(
            &organisation.id,
            "finding",
            &finding_id,
            Payload::FindingRecorded(pb::FindingRecorded {
                finding_id: finding_id.clone(),
                inspection_id: inspection_id.clone(),
                organisation_id: organisation.id.clone(),
                kind: finding.kind,
                pillar: finding.pillar.clone(),
                question: finding.question.clone(),
                text: finding.text.clone(),
                deadline: finding.deadline.clone(),
                due_date,
                parent_finding_id: String::new(),
                addressed_to_all: finding.kind == pb::FindingKind::NationalRecommendation as i32,
                line_start: finding.line_start,
                line_end: finding.line_end,
                period: inspection.period.clone(),
                published: inspection.published.clone(),
            }),
        ));
    }
    events.push(findings_event(
        &organisation.id,
        "inspection",
        &inspection_id,
        Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: inspection_id.clone(),
            organisation_id: organisation.id.clone(),
            programme: inspection.programme.clone(),
            period: inspection.period.clone(),
            title: inspection.title.clone(),
            published: inspection.published.clone(),
            finding_count: report.findings.len() as u32,
            ..Default::default()
        }),
    ));
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_reports_areas_for_improvement_open_seven_items() {
    let report = closeout_report::parse(REPORT).expect("the sample report parses");
    let organisation = report.organisation.clone().unwrap_or_default().id;
    assert_eq!(organisation, "hertfordshire");
    let afis: Vec<&pb::ParsedFinding> = report
        .findings
        .iter()
        .filter(|f| f.kind == pb::FindingKind::AreaForImprovement as i32)
        .collect();
    assert_eq!(afis.len(), 7);

    let world = World::new().await;
    let events = import_events(&report);
    world.publish(&events).await;
    let items = world.wait_for_items(&organisation, 7).await;
    assert_eq!(items.len(), 7);
    assert!(
        items
            .iter()
            .all(|i| i.kind == pb::FindingKind::AreaForImprovement as i32
                && i.status == pb::ItemStatus::Open as i32)
    );
    let mut texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let mut expected: Vec<&str> = afis.iter().map(|f| f.text.as_str()).collect();
    texts.sort_unstable();
    expected.sort_unstable();
    assert_eq!(texts, expected);

    // Importing it again announces the same findings: nothing new opens.
    world.publish(&events).await;
    world
        .publish(&[support::finding_recorded(
            "sentinel",
            "x",
            pb::FindingKind::AreaForImprovement,
            "barrier",
            None,
        )])
        .await;
    world.wait_for_items("sentinel", 1).await;
    assert_eq!(world.wait_for_items(&organisation, 7).await.len(), 7);
    world.finish().await;
}
