//! Following items across inspections, end to end: two earlier (2017)
//! reports of Hertfordshire are imported through the findings service, the
//! tracker opens their areas for improvement, then the real 2018/19 report
//! is imported and the tracker proposes what happened to each earlier item,
//! quoting the report. Accepting a proposal closes the item and links it to
//! the later inspection.

use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb, ItemStatus, LinkRelation, ProposalOutcome};
use closeout_testkit::{TestBus, TestDatabase};
use std::collections::BTreeMap;

mod support;

use support::{SAMPLE as LATER, eventually, inspectorate, start_findings, start_tracker};
const EFFECTIVENESS_2017: &str =
    include_str!("../fixtures/synthetic-hertfordshire-2017-effectiveness.txt");
const EFFICIENCY_2017: &str =
    include_str!("../fixtures/synthetic-hertfordshire-2017-efficiency.txt");

fn import(text: &str, name: &str) -> tonic::Request<pb::ImportReportRequest> {
    inspectorate(pb::ImportReportRequest {
        text: text.into(),
        source_name: name.into(),
        replace: false,
        ..Default::default()
    })
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_later_report_reconciles_the_earlier_items_and_acceptance_closes_them() {
    let bus = TestBus::new();
    let (findings_db, tracker_db) = (TestDatabase::create().await, TestDatabase::create().await);
    let findings = start_findings(&findings_db, &bus).await;
    let tracker = start_tracker(&tracker_db, &bus).await;
    let mut findings_client =
        FindingsServiceClient::new(closeout_testkit::connect_authenticated(findings.addr).await);
    let mut tracker_client =
        TrackerServiceClient::new(closeout_testkit::connect_authenticated(tracker.addr).await);

    // The 2017 effectiveness and efficiency reports: same programme and
    // year, two inspections.
    let effectiveness = findings_client
        .import_report(import(EFFECTIVENESS_2017, "2017-effectiveness.txt"))
        .await
        .unwrap()
        .into_inner();
    let efficiency = findings_client
        .import_report(import(EFFICIENCY_2017, "2017-efficiency.txt"))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(effectiveness.inspection_id, efficiency.inspection_id);
    let list = |client: &TrackerServiceClient<closeout_testkit::AuthChannel>| {
        let mut client = client.clone();
        async move {
            client
                .list_items(pb::ListItemsRequest {
                    organisation_id: "hertfordshire".into(),
                    page_size: 100,
                    ..Default::default()
                })
                .await
                .ok()
                .map(|r| r.into_inner().items)
        }
    };
    let earlier = eventually("six 2017 items", || async {
        list(&tracker_client).await.filter(|items| items.len() == 6)
    })
    .await;

    let later = findings_client
        .import_report(import(LATER, "peel-2018-19-hertfordshire.txt"))
        .await
        .unwrap()
        .into_inner();
    let proposals = eventually("a proposal for each earlier item", || {
        let mut client = tracker_client.clone();
        let inspection_id = later.inspection_id.clone();
        async move {
            let proposals = client
                .list_proposals(pb::ListProposalsRequest {
                    organisation_id: "hertfordshire".into(),
                    inspection_id,
                    page_size: 100,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .proposals;
            (proposals.len() == 6).then_some(proposals)
        }
    })
    .await;

    // What the 2018/19 report says of each 2017 item.
    let text_of: BTreeMap<&str, &str> = earlier
        .iter()
        .map(|i| (i.id.as_str(), i.text.as_str()))
        .collect();
    let outcome_of = |fragment: &str| -> &pb::ReconciliationProposal {
        proposals
            .iter()
            .find(|p| text_of[p.item_id.as_str()].contains(fragment))
            .unwrap_or_else(|| panic!("a proposal for the item about {fragment}"))
    };
    let expected = [
        (
            "Code of Practice for Victims of Crime",
            ProposalOutcome::Addressed,
        ),
        ("body-worn video", ProposalOutcome::Addressed),
        ("risk assessments", ProposalOutcome::Addressed),
        (
            "skills and capabilities of its workforce",
            ProposalOutcome::Addressed,
        ),
        ("leadership skills", ProposalOutcome::PartiallyAddressed),
        ("talent management", ProposalOutcome::PartiallyAddressed),
    ];
    let later_words = words(LATER);
    for (fragment, outcome) in expected {
        let proposal = outcome_of(fragment);
        assert_eq!(
            proposal.outcome, outcome as i32,
            "{fragment}: {} ({})",
            proposal.rule, proposal.score
        );
        assert_eq!(
            proposal.status,
            pb::ProposalStatus::Pending as i32,
            "nothing closed silently"
        );
        assert!(!proposal.quotes.is_empty(), "{fragment}: quotes the report");
        assert!(
            proposal
                .quotes
                .iter()
                .any(|q| later_words.contains(&words(q))),
            "{fragment}: a quote is the report's own words: {:?}",
            proposal.quotes
        );
        assert!(proposal.line_start > 0 && proposal.line_end as usize <= LATER.lines().count());
    }
    // Nothing moved before a person decided.
    let before = list(&tracker_client).await.unwrap();
    assert!(
        before
            .iter()
            .filter(|i| i.inspection_id != later.inspection_id)
            .all(|i| i.status == ItemStatus::Open as i32)
    );

    // The inspectorate accepts the Code of Practice proposal.
    let proposal = outcome_of("Code of Practice for Victims of Crime").clone();
    let accepted = tracker_client
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: proposal.id.clone(),
            expected_version: proposal.version,
            note: "Agreed: the 2018/19 inspection found it addressed".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let item = accepted.item.unwrap();
    assert_eq!(item.status, ItemStatus::Closed as i32);
    let lineage = tracker_client
        .get_lineage(pb::GetLineageRequest {
            item_id: proposal.item_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        lineage
            .links
            .iter()
            .any(|l| l.relation == LinkRelation::ClosedBy as i32
                && l.inspection_id == later.inspection_id),
        "{:?}",
        lineage.links
    );
    // Accepting twice is refused and changes nothing.
    let status = tracker_client
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: proposal.id.clone(),
            expected_version: accepted.proposal.unwrap().version,
            note: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);

    tracker.stop().await.unwrap();
    findings.stop().await.unwrap();
    bus.cleanup().await;
    findings_db.drop_database().await;
    tracker_db.drop_database().await;
}
