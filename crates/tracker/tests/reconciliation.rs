//! Reconciliation across inspections, end to end through the tracker: the
//! 2016/2017 Hertfordshire items of the labelled set (crates/reconcile's
//! fixture) are announced as earlier inspections, then the PEEL 2018/19
//! report as the findings service announces it (built from
//! `closeout_report::parse` of the sample: findings, follow-ups, and
//! InspectionPublished last). The proposals are checked against the labels;
//! then accepting, rejecting, replaying and the automatic-acceptance policy.

mod support;

#[path = "../../reconcile/tests/common/mod.rs"]
mod labelled;

use closeout_proto::{self as pb, event_envelope::Payload};
use closeout_reconcile::{ItemKind, ProposalOutcome};
use labelled::Labelled;
use prost::Message;
use std::collections::BTreeMap;
use std::time::Instant;
use support::{World, body, eventually, findings_event, inspectorate};
use tonic::Code;

const FORCE: &str = "hertfordshire";
const REPORT: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

/// The labelled items, their earlier inspections' events, and the later
/// report's events.
struct Scenario {
    items: Vec<Labelled>,
    /// finding id → index in `items`.
    finding_of: BTreeMap<String, usize>,
    earlier: Vec<pb::EventEnvelope>,
    later: Vec<pb::EventEnvelope>,
    later_id: String,
    /// The later report's findings: finding id → text.
    new_findings: BTreeMap<String, String>,
}

fn kind_of(kind: ItemKind) -> pb::FindingKind {
    match kind {
        ItemKind::AreaForImprovement => pb::FindingKind::AreaForImprovement,
        ItemKind::CauseOfConcern => pb::FindingKind::CauseOfConcern,
        ItemKind::Recommendation => pb::FindingKind::Recommendation,
        ItemKind::NationalRecommendation => pb::FindingKind::NationalRecommendation,
        ItemKind::NoteworthyPractice => pb::FindingKind::NoteworthyPractice,
        ItemKind::Other => pb::FindingKind::Unspecified,
    }
}

/// An earlier inspection's programme, title and publication month.
fn earlier_inspection(period: &str, report: &str) -> (String, String, String) {
    let published = match (period, report) {
        ("2016", _) => "2017-03",
        (_, "efficiency") => "2017-11",
        (_, "legitimacy") => "2017-12",
        (_, "crime data integrity") => "2017-11",
        _ => "2018-03",
    };
    if report == "crime data integrity" {
        (
            "Crime data integrity".into(),
            format!("Crime Data Integrity inspection {period}: Hertfordshire Constabulary"),
            published.into(),
        )
    } else {
        (
            "PEEL".into(),
            format!("PEEL: Police {report} {period}: An inspection of Hertfordshire Constabulary"),
            published.into(),
        )
    }
}

fn scenario() -> Scenario {
    let items = labelled::items(include_str!(
        "../../reconcile/tests/fixtures/hertfordshire-earlier.items.txt"
    ));
    let mut earlier = vec![findings_event(
        FORCE,
        "organisation",
        FORCE,
        Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(pb::Organisation {
                id: FORCE.into(),
                name: "Hertfordshire Constabulary".into(),
                kind: pb::OrganisationKind::PoliceForce as i32,
                most_similar_group: Vec::new(),
            }),
        }),
    )];
    // One earlier inspection per (period, report); each announced before
    // its findings so that announcing it proposes nothing for the others.
    let mut inspections: BTreeMap<(String, String), String> = BTreeMap::new();
    for l in &items {
        let key = (
            l.item.inspection_period.clone(),
            l.item.inspection_report.clone(),
        );
        inspections
            .entry(key)
            .or_insert_with(|| uuid::Uuid::now_v7().to_string());
    }
    for ((period, report), id) in &inspections {
        let (programme, title, published) = earlier_inspection(period, report);
        earlier.push(findings_event(
            FORCE,
            "inspection",
            id,
            Payload::InspectionPublished(pb::InspectionPublished {
                inspection_id: id.clone(),
                organisation_id: FORCE.into(),
                programme,
                period: period.clone(),
                title,
                published,
                ..Default::default()
            }),
        ));
    }
    let mut finding_of = BTreeMap::new();
    for (i, l) in items.iter().enumerate() {
        let key = (
            l.item.inspection_period.clone(),
            l.item.inspection_report.clone(),
        );
        let inspection_id = inspections[&key].clone();
        let (_, _, published) = earlier_inspection(&key.0, &key.1);
        let finding_id = uuid::Uuid::now_v7().to_string();
        let kind = kind_of(l.item.kind);
        finding_of.insert(finding_id.clone(), i);
        earlier.push(findings_event(
            FORCE,
            "finding",
            &finding_id,
            Payload::FindingRecorded(pb::FindingRecorded {
                finding_id: finding_id.clone(),
                inspection_id,
                organisation_id: FORCE.into(),
                kind: kind as i32,
                pillar: l.item.pillar.clone(),
                question: l.item.question.clone(),
                text: l.item.text.clone(),
                addressed_to_all: kind == pb::FindingKind::NationalRecommendation,
                period: l.item.inspection_period.clone(),
                published,
                ..Default::default()
            }),
        ));
    }

    let report = closeout_report::parse(REPORT).expect("the sample report parses");
    let inspection = report.inspection.clone().unwrap_or_default();
    let later_id = uuid::Uuid::now_v7().to_string();
    let mut later = Vec::new();
    let mut new_findings = BTreeMap::new();
    for f in &report.findings {
        let finding_id = uuid::Uuid::now_v7().to_string();
        new_findings.insert(finding_id.clone(), f.text.clone());
        later.push(findings_event(
            FORCE,
            "finding",
            &finding_id,
            Payload::FindingRecorded(pb::FindingRecorded {
                finding_id: finding_id.clone(),
                inspection_id: later_id.clone(),
                organisation_id: FORCE.into(),
                kind: f.kind,
                pillar: f.pillar.clone(),
                question: f.question.clone(),
                text: f.text.clone(),
                deadline: f.deadline.clone(),
                addressed_to_all: f.kind == pb::FindingKind::NationalRecommendation as i32,
                line_start: f.line_start,
                line_end: f.line_end,
                period: inspection.period.clone(),
                published: inspection.published.clone(),
                ..Default::default()
            }),
        ));
    }
    for f in &report.follow_ups {
        let id = uuid::Uuid::now_v7().to_string();
        later.push(findings_event(
            FORCE,
            "follow_up",
            &id,
            Payload::FollowUpRecorded(pb::FollowUpRecorded {
                follow_up_id: id.clone(),
                inspection_id: later_id.clone(),
                organisation_id: FORCE.into(),
                referenced_period: f.referenced_period.clone(),
                referenced_report: f.referenced_report.clone(),
                text: f.text.clone(),
                outcome: f.outcome,
                line_start: f.line_start,
                line_end: f.line_end,
                pillar: f.pillar.clone(),
                question: f.question.clone(),
                referenced_kind: f.referenced_kind,
                scope: f.scope,
                stated_count: f.stated_count,
                quoted_item: f.quoted_item.clone(),
                rule: f.rule.clone(),
            }),
        ));
    }
    let mut inspected = Vec::new();
    for j in report.judgments.iter().filter(|j| !j.carried_over) {
        if !j.question.is_empty() && !inspected.contains(&j.question) {
            inspected.push(j.question.clone());
        }
    }
    later.push(findings_event(
        FORCE,
        "inspection",
        &later_id,
        Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: later_id.clone(),
            organisation_id: FORCE.into(),
            programme: inspection.programme.clone(),
            period: inspection.period.clone(),
            title: inspection.title.clone(),
            published: inspection.published.clone(),
            finding_count: report.findings.len() as u32,
            follow_up_count: report.follow_ups.len() as u32,
            inspected_questions: inspected,
            ..Default::default()
        }),
    ));
    Scenario {
        items,
        finding_of,
        earlier,
        later,
        later_id,
        new_findings,
    }
}

/// The same events announced again with new event ids (a re-import).
fn reannounced(events: &[pb::EventEnvelope]) -> Vec<pb::EventEnvelope> {
    events
        .iter()
        .map(|e| pb::EventEnvelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            ..e.clone()
        })
        .collect()
}

/// Every proposal of the later inspection, with its item.
async fn proposals(world: &World, inspection: &str) -> Vec<pb::ReconciliationProposal> {
    let mut client = world.client.clone();
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_proposals(pb::ListProposalsRequest {
                organisation_id: FORCE.into(),
                inspection_id: inspection.into(),
                page_size: 10,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list proposals")
            .into_inner();
        all.extend(page.proposals);
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

/// Imports the earlier items and the later report; returns the proposals
/// of the later inspection, keyed by the labelled item's id.
async fn import(
    world: &World,
    s: &Scenario,
) -> (
    BTreeMap<String, pb::ReconciliationProposal>,
    BTreeMap<String, pb::TrackedItem>,
) {
    world.publish(&s.earlier).await;
    let items = world.wait_for_items(FORCE, s.items.len()).await;
    world.publish(&s.later).await;
    let made = eventually(|| async {
        let made = proposals(world, &s.later_id).await;
        (!made.is_empty()).then_some(made)
    })
    .await;
    let mut by_label = BTreeMap::new();
    let mut item_of = BTreeMap::new();
    for item in items {
        let Some(&i) = s.finding_of.get(&item.finding_id) else {
            continue;
        };
        let label = s.items[i].item.id.clone();
        if let Some(p) = made.iter().find(|p| p.item_id == item.id) {
            by_label.insert(label.clone(), p.clone());
        }
        item_of.insert(label, item);
    }
    (by_label, item_of)
}

fn outcome_of(p: &pb::ReconciliationProposal) -> ProposalOutcome {
    let name = pb::ProposalOutcome::try_from(p.outcome)
        .expect("an outcome")
        .as_str_name();
    ProposalOutcome::parse(name.trim_start_matches("PROPOSAL_OUTCOME_")).expect("known outcome")
}

/// The words of `text` (links reduced to their words, punctuation and list
/// markers dropped): the parser joins a list to its lead-in sentence.
fn words(text: &str) -> String {
    text.replace("](#)", " ")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of the report's lines `start..=end`.
fn report_words(start: u32, end: u32) -> String {
    let lines: Vec<&str> = REPORT.lines().collect();
    let from = (start.max(1) - 1) as usize;
    let to = (end as usize).min(lines.len());
    words(&lines[from.min(to)..to].join(" "))
}

async fn get_item(world: &World, id: &str) -> pb::TrackedItem {
    world
        .client
        .clone()
        .get_item(pb::GetItemRequest { item_id: id.into() })
        .await
        .expect("get item")
        .into_inner()
        .item
        .expect("item")
}

/// Event types and payloads the tracker put in its outbox.
async fn outbox(world: &World) -> Vec<pb::EventEnvelope> {
    let pool = sqlx::PgPool::connect(world.db.url()).await.expect("db");
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM closeout_outbox ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("outbox");
    pool.close().await;
    rows.iter()
        .map(|b| pb::EventEnvelope::decode(b.as_slice()).expect("envelope"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_inspection_proposes_and_people_decide() {
    let started = Instant::now();
    let s = scenario();
    let world = World::new().await;
    let (made, items) = import(&world, &s).await;
    println!("imported and proposed in {:?}", started.elapsed());

    // One proposal per labelled item, and none for the new report's items.
    assert_eq!(made.len(), s.items.len(), "one proposal per earlier item");
    let all = proposals(&world, &s.later_id).await;
    assert_eq!(all.len(), s.items.len());

    // Against the labels (definitions as in crates/reconcile's evaluation).
    let (mut acted, mut acted_ok, mut assessed, mut assessed_ok) = (0, 0, 0, 0);
    for l in &s.items {
        let p = &made[&l.item.id];
        let outcome = outcome_of(p);
        println!(
            "{} {:<5} label {:<19} proposed {:<19} score {:.2}",
            if outcome == l.label { "ok" } else { "XX" },
            l.item.id,
            l.label.as_str(),
            outcome.as_str(),
            p.score
        );
        if outcome != ProposalOutcome::NotAssessed {
            acted += 1;
            acted_ok += usize::from(outcome == l.label);
        }
        if l.label != ProposalOutcome::NotAssessed {
            assessed += 1;
            assessed_ok += usize::from(outcome == l.label);
        }
        if outcome == ProposalOutcome::Addressed {
            assert_eq!(
                l.label,
                ProposalOutcome::Addressed,
                "{}: false ADDRESSED",
                l.item.id
            );
        }
        if outcome != ProposalOutcome::NotAssessed {
            assert!(!p.quotes.is_empty(), "{}: no quote", l.item.id);
            assert!(
                p.line_start >= 1 && p.line_start <= p.line_end,
                "{}",
                l.item.id
            );
        }
        // Quotes are the report's words, within the proposal's line span.
        let span = report_words(p.line_start, p.line_end);
        for q in &p.quotes {
            assert!(
                span.contains(&words(q)),
                "{}: quote not in lines {}-{}: {q}",
                l.item.id,
                p.line_start,
                p.line_end
            );
        }
        assert_eq!(p.status, pb::ProposalStatus::Pending as i32);
        assert_eq!(p.version, 1);
        assert!(!p.rule.is_empty());
    }
    let precision = acted_ok as f64 / acted.max(1) as f64;
    let recall = assessed_ok as f64 / assessed.max(1) as f64;
    println!("precision {precision:.3} over {acted}, recall {recall:.3} over {assessed}");
    assert!(precision >= 0.9, "precision {precision:.3}");
    assert!(recall >= 0.9, "recall {recall:.3}");

    // ProposalMade for each, through the outbox.
    let events = outbox(&world).await;
    let made_events = events
        .iter()
        .filter(|e| matches!(e.payload, Some(Payload::ProposalMade(_))))
        .count();
    assert_eq!(made_events, s.items.len());
    assert!(events.iter().any(|e| e.aggregate_type == "proposal"
        && e.aggregate_version == 1
        && e.organisation_id == FORCE));

    let mut c = world.client.clone();

    // Accept an ADDRESSED one: the item closes, the later inspection is the
    // closure reference, and the lineage says CLOSED_BY.
    let addressed = &made["H01"];
    assert_eq!(outcome_of(addressed), ProposalOutcome::Addressed);
    let denied = c
        .accept_proposal(body(
            pb::AcceptProposalRequest {
                proposal_id: addressed.id.clone(),
                expected_version: 1,
                note: String::new(),
            },
            FORCE,
        ))
        .await
        .expect_err("an inspected body may not accept");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let stale = c
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: addressed.id.clone(),
            expected_version: 7,
            note: String::new(),
        }))
        .await
        .expect_err("stale version");
    assert_eq!(stale.code(), Code::Aborted);
    let accepted = c
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: addressed.id.clone(),
            expected_version: 1,
            note: "Agreed on reading the report".into(),
        }))
        .await
        .expect("accept")
        .into_inner();
    let proposal = accepted.proposal.expect("proposal");
    let item = accepted.item.expect("item");
    assert_eq!(proposal.status, pb::ProposalStatus::Accepted as i32);
    assert_eq!(proposal.version, 2);
    assert_eq!(
        proposal.decided_by.as_ref().map(|a| a.role),
        Some(pb::Role::Inspectorate as i32)
    );
    assert_eq!(item.status, pb::ItemStatus::Closed as i32);
    assert!(item.closure_reference.contains(&s.later_id));
    let history = world.history(&item.id).await;
    let verified = history
        .iter()
        .find_map(|e| match &e.payload {
            Some(Payload::ItemVerified(v)) => Some(v.clone()),
            _ => None,
        })
        .expect("ItemVerified");
    assert_eq!(verified.closed_by_inspection_id, s.later_id);
    let lineage = c
        .get_lineage(pb::GetLineageRequest {
            item_id: item.id.clone(),
            ..Default::default()
        })
        .await
        .expect("lineage")
        .into_inner();
    assert_eq!(lineage.items.len(), 1);
    assert_eq!(lineage.links.len(), 1);
    assert_eq!(lineage.links[0].relation, pb::LinkRelation::ClosedBy as i32);
    assert_eq!(lineage.links[0].to_item_id, s.later_id);

    // Accepting it again is refused.
    let twice = c
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: addressed.id.clone(),
            expected_version: 2,
            note: String::new(),
        }))
        .await
        .expect_err("already decided");
    assert_eq!(twice.code(), Code::FailedPrecondition);

    // Accept a SUPERSEDED one: superseded by the new finding's item, linked
    // both ways.
    let superseded = &made["D02"];
    assert_eq!(outcome_of(superseded), ProposalOutcome::Superseded);
    let newer_finding = superseded.matched_finding_id.clone();
    assert!(s.new_findings.contains_key(&newer_finding));
    let accepted = c
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: superseded.id.clone(),
            expected_version: 1,
            note: String::new(),
        }))
        .await
        .expect("accept superseded")
        .into_inner();
    let old = accepted.item.expect("item");
    assert_eq!(old.status, pb::ItemStatus::Superseded as i32);
    let newer = world
        .items(pb::ListItemsRequest {
            organisation_id: FORCE.into(),
            inspection_id: s.later_id.clone(),
            ..Default::default()
        })
        .await
        .into_iter()
        .find(|i| i.finding_id == newer_finding)
        .expect("the new finding's item");
    assert_eq!(old.superseded_by_item_id, newer.id);
    for from in [&old.id, &newer.id] {
        let lineage = c
            .get_lineage(pb::GetLineageRequest {
                item_id: from.clone(),
                ..Default::default()
            })
            .await
            .expect("lineage")
            .into_inner();
        let ids: Vec<&str> = lineage.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![old.id.as_str(), newer.id.as_str()],
            "oldest first"
        );
        let mut relations: Vec<(String, String, i32)> = lineage
            .links
            .iter()
            .map(|l| (l.from_item_id.clone(), l.to_item_id.clone(), l.relation))
            .collect();
        relations.sort();
        let mut expected = vec![
            (
                old.id.clone(),
                newer.id.clone(),
                pb::LinkRelation::SupersededBy as i32,
            ),
            (
                newer.id.clone(),
                old.id.clone(),
                pb::LinkRelation::CarriedFrom as i32,
            ),
        ];
        expected.sort();
        assert_eq!(relations, expected);
    }

    // Accept a PARTIALLY_ADDRESSED one: a note with the quote, still open.
    let partial = &made["H06"];
    assert_eq!(outcome_of(partial), ProposalOutcome::PartiallyAddressed);
    let item = c
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: partial.id.clone(),
            expected_version: 1,
            note: String::new(),
        }))
        .await
        .expect("accept partial")
        .into_inner()
        .item
        .expect("item");
    assert_eq!(item.status, pb::ItemStatus::Open as i32);
    let noted = world.history(&item.id).await;
    assert!(noted.iter().any(|e| matches!(&e.payload,
        Some(Payload::ProgressNoted(n)) if n.note.contains(&partial.quotes[0]))));

    // Reject one: the reason is stored, the item is unchanged.
    let rejected_one = &made["H05"];
    let before = get_item(&world, &rejected_one.item_id).await;
    let empty = c
        .reject_proposal(inspectorate(pb::RejectProposalRequest {
            proposal_id: rejected_one.id.clone(),
            expected_version: 1,
            reason: "  ".into(),
        }))
        .await
        .expect_err("a reason is needed");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let rejected = c
        .reject_proposal(inspectorate(pb::RejectProposalRequest {
            proposal_id: rejected_one.id.clone(),
            expected_version: 1,
            reason: "The leadership programme is not what the 2017 item meant".into(),
        }))
        .await
        .expect("reject")
        .into_inner()
        .proposal
        .expect("proposal");
    assert_eq!(rejected.status, pb::ProposalStatus::Rejected as i32);
    assert!(rejected.decision_reason.contains("leadership programme"));
    assert_eq!(get_item(&world, &rejected_one.item_id).await, before);
    let again = c
        .reject_proposal(inspectorate(pb::RejectProposalRequest {
            proposal_id: rejected_one.id.clone(),
            expected_version: 2,
            reason: "again".into(),
        }))
        .await
        .expect_err("already decided");
    assert_eq!(again.code(), Code::FailedPrecondition);

    // An item changed since its proposal: the state machine refuses.
    let changed = &made["H02"];
    c.verify_item(inspectorate(pb::VerifyItemRequest {
        item_id: changed.item_id.clone(),
        expected_version: items["H02"].version,
        closure_reference: "closure letter".into(),
        ..Default::default()
    }))
    .await
    .expect("closed by hand");
    let refused = c
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: changed.id.clone(),
            expected_version: 1,
            note: String::new(),
        }))
        .await
        .expect_err("the item is closed already");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    let events = outbox(&world).await;
    let decisions: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::ProposalAccepted(a)) if !a.automatic => Some("accepted"),
            Some(Payload::ProposalRejected(_)) => Some("rejected"),
            _ => None,
        })
        .collect();
    assert_eq!(
        decisions,
        vec!["accepted", "accepted", "accepted", "rejected"]
    );

    // Replaying (same events) and re-announcing (new event ids) the later
    // report opens and proposes nothing new.
    let force_items = pb::ListItemsRequest {
        organisation_id: FORCE.into(),
        ..Default::default()
    };
    let item_count = world.items(force_items.clone()).await.len();
    world.publish(&s.later).await;
    world.publish(&reannounced(&s.later)).await;
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
    assert_eq!(world.items(force_items).await.len(), item_count);
    assert_eq!(proposals(&world, "").await.len(), s.items.len());
    println!("whole test in {:?}", started.elapsed());
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_automatic_acceptance_policy_is_recorded_as_such() {
    let started = Instant::now();
    let s = scenario();
    let world = World::with(|c| c.auto_accept = format!("{FORCE}=0.95")).await;
    let (made, _) = import(&world, &s).await;
    let mut automatic = 0;
    for (label, p) in &made {
        let outcome = outcome_of(p);
        let expected = if outcome != ProposalOutcome::NotAssessed && p.score >= 0.95 {
            automatic += 1;
            pb::ProposalStatus::AutoAccepted
        } else {
            pb::ProposalStatus::Pending
        };
        assert_eq!(p.status, expected as i32, "{label}");
        if expected == pb::ProposalStatus::AutoAccepted {
            let actor = p.decided_by.clone().expect("decided by");
            assert_eq!(actor.role, pb::Role::System as i32, "{label}");
            let item = get_item(&world, &p.item_id).await;
            let status = match outcome {
                ProposalOutcome::Addressed => pb::ItemStatus::Closed,
                ProposalOutcome::Superseded => pb::ItemStatus::Superseded,
                _ => pb::ItemStatus::Open,
            };
            assert_eq!(item.status, status as i32, "{label}");
        }
    }
    assert!(automatic > 0, "some proposals score 0.95 or more");
    assert_eq!(
        made["H01"].status,
        pb::ProposalStatus::AutoAccepted as i32,
        "H01 scores 1.00"
    );
    let events = outbox(&world).await;
    let flagged = events
        .iter()
        .filter(|e| matches!(&e.payload, Some(Payload::ProposalAccepted(a)) if a.automatic))
        .count();
    assert_eq!(flagged, automatic);
    // Already decided by the policy: a person cannot accept it again.
    let twice = world
        .client
        .clone()
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: made["H01"].id.clone(),
            expected_version: 2,
            note: String::new(),
        }))
        .await
        .expect_err("already decided");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    println!("whole test in {:?}", started.elapsed());
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_proposals_are_refused() {
    let world = World::new().await;
    let mut c = world.client.clone();
    let missing = c
        .accept_proposal(inspectorate(pb::AcceptProposalRequest {
            proposal_id: uuid::Uuid::now_v7().to_string(),
            expected_version: 1,
            note: String::new(),
        }))
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = c
        .reject_proposal(inspectorate(pb::RejectProposalRequest {
            proposal_id: "nope".into(),
            expected_version: 1,
            reason: "x".into(),
        }))
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    let lineage = c
        .get_lineage(pb::GetLineageRequest {
            item_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("unknown item");
    assert_eq!(lineage.code(), Code::NotFound);
    let status = c
        .list_proposals(pb::ListProposalsRequest {
            status: 42,
            ..Default::default()
        })
        .await
        .expect_err("bad status");
    assert_eq!(status.code(), Code::InvalidArgument);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_report_imported_later_proposes_nothing_for_newer_items() {
    let world = World::new().await;
    // An item of a 2019 inspection (support's findings are published 2019-09).
    world
        .publish(&[support::finding_recorded(
            FORCE,
            &uuid::Uuid::now_v7().to_string(),
            pb::FindingKind::AreaForImprovement,
            "The force should improve how it investigates crime.",
            None,
        )])
        .await;
    world.wait_for_items(FORCE, 1).await;
    let older = uuid::Uuid::now_v7().to_string();
    let newer = uuid::Uuid::now_v7().to_string();
    let announce = |id: &str, published: &str| {
        findings_event(
            FORCE,
            "inspection",
            id,
            Payload::InspectionPublished(pb::InspectionPublished {
                inspection_id: id.into(),
                organisation_id: FORCE.into(),
                programme: "PEEL".into(),
                published: published.into(),
                inspected_questions: vec!["Investigating crime".into()],
                ..Default::default()
            }),
        )
    };
    // A 2017 report imported now says nothing about a 2019 item; a 2021
    // one considers it (NOT_ASSESSED: it says nothing either).
    world
        .publish(&[announce(&older, "2017-03"), announce(&newer, "2021-05-12")])
        .await;
    let made = eventually(|| async {
        let made = proposals(&world, "").await;
        (!made.is_empty()).then_some(made)
    })
    .await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].inspection_id, newer);
    assert_eq!(made[0].outcome, pb::ProposalOutcome::NotAssessed as i32);
    assert!(made[0].quotes.is_empty());
    world.finish().await;
}
