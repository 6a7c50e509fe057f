//! The live reads ([`load_scorecard`], [`load_peers`],
//! [`load_counted_until`]) answer as the fold of the same read models'
//! items does, on every path their details take: an inspection whose date
//! does not read (its details read ahead with the summaries), one never
//! announced and a report published after today (their details read
//! after), and an inspection whose text is not the one the histograms were
//! dated by.

use super::*;
use crate::queries;
use closeout_proto as pb;
use closeout_testkit::TestDatabase;

fn envelope(
    org: &str,
    aggregate: &str,
    version: u64,
    day: &str,
    payload: Payload,
) -> EventEnvelope {
    let at = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .expect("a day")
        .and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_utc()
        .timestamp();
    EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: closeout_bus::subject::event_type_of(&payload),
        organisation_id: org.to_string(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: at,
            nanos: 0,
        }),
        aggregate_type: "x".into(),
        aggregate_id: aggregate.to_string(),
        aggregate_version: version,
        payload: Some(payload),
        ..Default::default()
    }
}

fn registered(org: &str, group: &[&str]) -> EventEnvelope {
    envelope(
        org,
        org,
        1,
        "2019-01-01",
        Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(pb::Organisation {
                id: org.into(),
                name: org.into(),
                kind: 1,
                most_similar_group: group.iter().map(|g| g.to_string()).collect(),
            }),
        }),
    )
}

fn published(org: &str, id: &str, published: &str) -> EventEnvelope {
    envelope(
        org,
        id,
        1,
        "2019-01-02",
        Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: id.into(),
            organisation_id: org.into(),
            programme: "PEEL".into(),
            period: "2019/20".into(),
            published: published.into(),
            title: id.into(),
            ..Default::default()
        }),
    )
}

/// An item of `org` opened from `inspection` on `opened`, and when
/// `closed` is given, verified (by `by`, effective `effective`) and closed
/// on that day.
fn item(
    org: &str,
    id: &str,
    inspection: &str,
    opened: &str,
    closed: Option<(&str, &str, Option<pb::CalendarDate>)>,
) -> Vec<EventEnvelope> {
    let mut out = vec![envelope(
        org,
        id,
        1,
        opened,
        Payload::ItemOpened(pb::ItemOpened {
            item_id: id.into(),
            organisation_id: org.into(),
            inspection_id: inspection.into(),
            kind: 1,
            pillar: "Effectiveness".into(),
            question: "Q".into(),
            status: pb::ItemStatus::Open as i32,
            due_date: Some(pb::CalendarDate::new(2020, 6, 30)),
            ..Default::default()
        }),
    )];
    if let Some((day, by, effective)) = closed {
        out.push(envelope(
            org,
            id,
            2,
            day,
            Payload::ItemVerified(pb::ItemVerified {
                item_id: id.into(),
                closure_reference: "letter".into(),
                effective_date: effective,
                closed_by_inspection_id: by.into(),
            }),
        ));
        out.push(envelope(
            org,
            id,
            3,
            day,
            Payload::StatusChanged(pb::StatusChanged {
                item_id: id.into(),
                from_status: pb::ItemStatus::Open as i32,
                to_status: pb::ItemStatus::Closed as i32,
                ..Default::default()
            }),
        ));
    }
    out
}

/// herts's items: from a dated report, from one never announced
/// ("silent") and from one whose date does not read, closed by kent's
/// reports; from a national report; from a report published after today.
fn history() -> Vec<EventEnvelope> {
    let mut out = vec![
        registered("herts", &["kent"]),
        registered("kent", &["herts"]),
        published("herts", "h1", "2019-09"),
        published("herts", "hx", "not a date"),
        published("herts", "hlater", "2099-01-01"),
        published("kent", "k1", "2021-07"),
        published("kent", "k2", "2022-01-15"),
        published("national", "n1", "2020-03-05"),
        envelope(
            "herts",
            "h1",
            1,
            "2019-09-02",
            Payload::JudgmentRecorded(pb::JudgmentRecorded {
                judgment_id: "h1-j".into(),
                inspection_id: "h1".into(),
                organisation_id: "herts".into(),
                pillar: "Effectiveness".into(),
                grade: 2,
                scale: pb::GradeScale::FourTier as i32,
                published: "2019-09".into(),
                period: "2019/20".into(),
                ..Default::default()
            }),
        ),
        envelope(
            "herts",
            "h1",
            1,
            "2019-09-02",
            Payload::IndicatorRecorded(pb::IndicatorRecorded {
                indicator_id: "h1-i".into(),
                inspection_id: "h1".into(),
                organisation_id: "herts".into(),
                measure: "Crime".into(),
                period: "12 months to March".into(),
                value: 61.5,
                unit: "per 1,000".into(),
                comparator: "England and Wales".into(),
                comparator_value: None,
                published: "2019-09".into(),
                comparator_period: String::new(),
            }),
        ),
    ];
    let effective = Some(pb::CalendarDate::new(2021, 2, 1));
    out.extend(item(
        "herts",
        "a",
        "h1",
        "2019-10-01",
        Some(("2021-08-01", "k1", None)),
    ));
    out.extend(item(
        "herts",
        "b",
        "silent",
        "2019-11-01",
        Some(("2021-09-01", "k1", None)),
    ));
    out.extend(item("herts", "c", "n1", "2020-04-01", None));
    out.extend(item(
        "herts",
        "d",
        "hlater",
        "2020-05-01",
        Some(("2022-02-01", "k2", None)),
    ));
    out.extend(item(
        "herts",
        "e",
        "hx",
        "2020-06-01",
        Some(("2022-03-01", "k2", None)),
    ));
    out.extend(item(
        "herts",
        "f",
        "h1",
        "2019-12-01",
        Some(("2021-03-01", "k2", effective)),
    ));
    out.extend(item("herts", "g", "silent", "2020-01-01", None));
    out.extend(item(
        "kent",
        "k-a",
        "k1",
        "2021-08-01",
        Some(("2022-01-20", "k2", None)),
    ));
    out.extend(item("kent", "k-b", "k2", "2022-02-01", None));
    out
}

async fn apply_all(pool: &PgPool, envelopes: &[EventEnvelope]) {
    let (mut heads, mut facts) = (Vec::new(), Vec::new());
    for e in envelopes {
        facts.push(Fact::from_envelope(e).expect("a checked envelope"));
        heads.push((Uuid::parse_str(&e.event_id).expect("a UUID"), e));
    }
    let mut tx = pool.begin().await.expect("begin");
    let fresh = record_batch(&mut tx, &heads, facts).await.expect("record");
    apply(&mut tx, &fresh).await.expect("apply");
    tx.commit().await.expect("commit");
}

/// The read models with their items, counting only what is published by
/// `today`, as the service folded them before the tallies.
async fn folded(pool: &PgPool, organisation: Option<&str>, today: NaiveDate) -> Snapshot {
    let scope = Scope {
        organisation,
        content: organisation.is_some(),
        items: true,
    };
    let mut snapshot = load_live(pool, scope).await.expect("load");
    published_by(&mut snapshot, Some(today));
    snapshot
}

async fn assert_live_answers_as_the_fold(pool: &PgPool, what: &str) {
    let today = Utc::now().date_naive();
    let all = folded(pool, None, today).await;
    let herts = folded(pool, Some("herts"), today).await;
    // From the pool (the benches) and from the request path's connections
    // (the service).
    let connections = Connections::beside(pool);
    for from in [Source::from(pool), Source::from(&connections)] {
        for org in ["herts", "kent"] {
            let one = folded(pool, Some(org), today).await;
            let (snapshot, tallies) = load_scorecard(from, org, Some(today))
                .await
                .expect("scorecard");
            assert_eq!(
                tally::scorecard(&snapshot, &tallies, org, today).expect("known"),
                queries::scorecard(&one, org, today).expect("known"),
                "{what}: scorecard of {org}"
            );
            let (snapshot, tallies) = load_peers(from, org, Some(today)).await.expect("peers");
            assert_eq!(
                tally::peer_comparison(&snapshot, &tallies, org, today).expect("known"),
                queries::peer_comparison(&all, org, today).expect("known"),
                "{what}: peers of {org}"
            );
        }
        for (org, fold) in [("herts", &herts), ("", &all)] {
            let scope = Scope {
                organisation: Some(org).filter(|o| !o.is_empty()),
                content: false,
                items: false,
            };
            let (snapshot, tallies) = load_counted_until(from, scope, Some(today))
                .await
                .expect("closure stats");
            assert_eq!(
                tally::closure_stats(&snapshot, &tallies, org, ""),
                queries::closure_stats(fold, org, ""),
                "{what}: closure stats of {org:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reads_answer_as_the_fold_of_the_items() {
    let db = TestDatabase::create().await;
    let pool = db.pool().clone();
    crate::MIGRATOR.run(&pool).await.expect("migrate");
    apply_all(&pool, &history()).await;

    // The snapshot's statement dates herts's items by the national report
    // and by kent's reports closing them, and holds herts's content.
    let (snapshot, _) = load_scorecard(&pool, "herts", Some(Utc::now().date_naive()))
        .await
        .expect("scorecard");
    assert!(snapshot.dating.contains_key("n1"));
    assert!(snapshot.dating.contains_key("k1"), "silent's closer dated");
    assert!(
        snapshot.dating.contains_key("k2"),
        "hx's and hlater's closer dated"
    );
    assert!(
        !snapshot.inspections.contains_key("hlater"),
        "published after today"
    );
    let h1 = &snapshot.inspections["h1"];
    assert_eq!((h1.judgments.len(), h1.indicators.len()), (1, 1));
    // The summaries' statement reads ahead the details of "hx", whose date
    // does not read, and only of it: "silent" was never announced and
    // "hlater" is dated, so theirs are read after.
    for (org, days) in [
        (Some("herts"), Days::Own("herts")),
        (None, Days::Peers("herts")),
    ] {
        let (.., ahead) = load_summaries(&pool, org, false, days)
            .await
            .expect("summaries");
        assert_eq!(
            ahead.inspections,
            HashSet::from(["hx".to_string()]),
            "{org:?}"
        );
        let open = ahead.details.open.keys().map(|k| k.1.as_str());
        let closed = ahead
            .details
            .closed
            .keys()
            .map(|k| k.inspection_id.as_str());
        assert!(open.chain(closed).all(|i| i == "hx"), "{org:?}");
        assert_eq!(ahead.details.closed.len(), 1, "e, closed: {org:?}");
    }
    assert_live_answers_as_the_fold(&pool, "as applied").await;

    // The histograms' assumed text no longer the inspection's (as after a
    // migration that could not read it): the closings it dates are read
    // and re-dated by the answer's date.
    let changed =
        sqlx::query("UPDATE tally_dates SET published = 'July 2021' WHERE inspection_id = 'k1'")
            .execute(&pool)
            .await
            .expect("update")
            .rows_affected();
    assert_eq!(changed, 1);
    assert_live_answers_as_the_fold(&pool, "k1 suspect").await;
    db.drop_database().await;
}
