//! Reconciliation through the running tracker, as an organisation's history
//! grows: each report's findings and InspectionPublished are published to
//! the tracker's stream, and the time is from the publish to the last
//! proposal of that inspection stored (one per earlier open item, NOT_ASSESSED
//! included, each with ProposalMade in the outbox).
//!
//! - `history`: one organisation, reports of `findings` areas for
//!   improvement each, imported oldest first, so report r proposes for the
//!   (r − 1) × `findings` items before it;
//! - `national`: 20 organisations × 5 small reports (10 findings each),
//!   interleaved as `closeout-bench --national` imports them.
//!
//! `cargo bench -p closeout-tracker --bench reconciliation` (add `-- --quick`
//! for a short run). Needs the PostgreSQL and NATS the tests use.

#[path = "../tests/support/mod.rs"]
mod support;

use closeout_proto::{self as pb, event_envelope::Payload};
use std::time::{Duration, Instant};
use support::{World, findings_event, organisation_registered};

const WORDS: &[&str] = &[
    "victims",
    "custody",
    "vetting",
    "safeguarding",
    "neighbourhood",
    "investigations",
    "supervision",
    "records",
    "missing children",
    "domestic abuse",
];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (reports, findings) = if quick { (4, 300) } else { (6, 2_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(reports, findings, if quick { 6 } else { 20 }));
}

async fn run(reports: usize, findings: usize, organisations: usize) {
    let world = World::new().await;
    println!("# closeout-tracker reconciliation");
    println!("\n## history: one organisation, {findings} findings per report, oldest first");
    println!("report | open items before | proposals | ms to the last proposal | proposals/s");
    for r in 0..reports {
        let events = report("growing", r, findings);
        let inspection = inspection_of(&events);
        let before = r * findings;
        let started = Instant::now();
        world.publish(&events).await;
        wait_for(&world, &inspection, before).await;
        let elapsed = started.elapsed();
        println!(
            "{} | {before} | {before} | {:.0} | {:.0}",
            r + 1,
            elapsed.as_secs_f64() * 1e3,
            before as f64 / elapsed.as_secs_f64()
        );
    }

    println!(
        "\n## national: {organisations} organisations × 5 reports of 10 findings, interleaved"
    );
    let mut events = Vec::new();
    let mut last = Vec::new();
    for r in 0..5 {
        for o in 0..organisations {
            let org = format!("force{o:02}");
            let mut one = report(&org, r, 10);
            if r == 0 {
                one.insert(
                    0,
                    organisation_registered(&org, pb::OrganisationKind::PoliceForce),
                );
            }
            if r == 4 {
                last.push(inspection_of(&one));
            }
            events.extend(one);
        }
    }
    let items = organisations * 5 * 10;
    let started = Instant::now();
    world.publish(&events).await;
    for inspection in &last {
        wait_for(&world, inspection, 40).await;
    }
    let elapsed = started.elapsed();
    let proposals: i64 = sqlx::query_scalar("SELECT count(*) FROM proposals")
        .fetch_one(world.db.pool())
        .await
        .expect("count");
    println!(
        "{items} items, {proposals} proposals in all, {:.2} s: {:.0} items/s, {:.1} ms per report",
        elapsed.as_secs_f64(),
        items as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / (organisations * 5) as f64
    );
    world.finish().await;
}

fn inspection_of(events: &[pb::EventEnvelope]) -> String {
    events
        .iter()
        .find_map(|e| match &e.payload {
            Some(Payload::InspectionPublished(p)) => Some(p.inspection_id.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Report `r` of `organisation` (published in 2000 + r): `findings` areas
/// for improvement, then InspectionPublished.
fn report(organisation: &str, r: usize, findings: usize) -> Vec<pb::EventEnvelope> {
    let inspection = uuid::Uuid::now_v7().to_string();
    let year = 2000 + r;
    let period = format!("{year}/{:02}", (year + 1) % 100);
    let published = format!("{}-06", year + 1);
    let mut events: Vec<pb::EventEnvelope> = (0..findings)
        .map(|i| {
            let finding_id = uuid::Uuid::now_v7().to_string();
            findings_event(
                organisation,
                "finding",
                &finding_id,
                Payload::FindingRecorded(pb::FindingRecorded {
                    finding_id: finding_id.clone(),
                    inspection_id: inspection.clone(),
                    organisation_id: organisation.into(),
                    kind: pb::FindingKind::AreaForImprovement as i32,
                    pillar: "Effectiveness".into(),
                    question: "Investigating crime".into(),
                    text: format!(
                        "The force should improve its arrangements for {} ({r}-{i}).",
                        WORDS[i % WORDS.len()]
                    ),
                    line_start: 1,
                    line_end: 2,
                    period: period.clone(),
                    published: published.clone(),
                    ..Default::default()
                }),
            )
        })
        .collect();
    events.push(findings_event(
        organisation,
        "inspection",
        &inspection,
        Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: inspection.clone(),
            organisation_id: organisation.into(),
            programme: "PEEL".into(),
            period,
            title: format!("Police effectiveness {year}"),
            published,
            finding_count: findings as u32,
            ..Default::default()
        }),
    ));
    events
}

/// Waits until `inspection` has `count` proposals.
async fn wait_for(world: &World, inspection: &str, count: usize) {
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM proposals WHERE inspection_id = $1")
            .bind(inspection)
            .fetch_one(world.db.pool())
            .await
            .expect("count");
        if n as usize >= count {
            // The report with nothing before it proposes nothing: wait for
            // its items instead.
            if count == 0 {
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM inspections WHERE id = $1 AND announced",
                )
                .bind(inspection)
                .fetch_one(world.db.pool())
                .await
                .unwrap_or(0);
                if open == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
