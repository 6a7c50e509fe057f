//! History is measured from the inspection, not from the import (issue
//! 14), through the real findings, tracker and metrics services:
//!
//! * ten years of reports (Barsetshire's and Wessex's PEEL chains from 2016
//!   to 2025, Hertfordshire's 2017 reports and the reference 2018/19
//!   report, a revisit letter) imported in order into one set of services
//!   and in a shuffled order into another give the same answer to every
//!   metrics question (scorecard, closure statistics, grade history, peers,
//!   indicator series), live and as of several days;
//! * the README's `closeout scorecard hertfordshire --as-of 2020-03-31`
//!   answers, with ages counted from the report's publication; a day before
//!   anything is known answers an empty scorecard;
//! * a verification recorded today with the closure letter's effective date
//!   closes the item as of that date; an impossible or future effective
//!   date is refused naming the field and changes nothing;
//! * indicator points name their measure, a measure matches whatever its
//!   case, a date is never a comparator;
//! * closure statistics, grade history and indicator series are paged;
//! * no next inspection: nothing is "closed by the next inspection"; a most
//!   similar group of forces nobody has heard of counts no organisations.

use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb, ItemStatus};
use closeout_testkit::{TestBus, TestDatabase};
use std::collections::BTreeMap;
// Every call carries a token (a viewer's unless the request has its own).
use closeout_testkit::AuthChannel as Channel;

mod support;

use support::{SAMPLE, eventually, inspectorate, start_findings, start_metrics, start_tracker};

macro_rules! corpus {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!("../../crates/report/tests/fixtures/corpus/", $path)),
        )
    };
}

/// The documents, oldest first.
fn documents() -> Vec<(&'static str, &'static str)> {
    vec![
        corpus!("peel-2014-17/barsetshire-effectiveness-2016.txt"),
        corpus!("peel-2014-17/wessex-efficiency-2016.txt"),
        (
            "synthetic-hertfordshire-2017-effectiveness.txt",
            include_str!("../fixtures/synthetic-hertfordshire-2017-effectiveness.txt"),
        ),
        (
            "synthetic-hertfordshire-2017-efficiency.txt",
            include_str!("../fixtures/synthetic-hertfordshire-2017-efficiency.txt"),
        ),
        corpus!("peel-2018-19/barsetshire-2018-19.txt"),
        corpus!("peel-2018-19/wessex-2018-19.txt"),
        ("peel-2018-19-hertfordshire.txt", SAMPLE),
        corpus!("peel-2021-22/barsetshire-2021-22.txt"),
        corpus!("peel-2021-22/wessex-2021-22.txt"),
        corpus!("peel-2023-25/barsetshire-2023-25.txt"),
        corpus!("peel-2023-25/wessex-2023-25.txt"),
        corpus!("letter-revisit/wessex-2025-revisit.txt"),
    ]
}

/// A national report (recommendations to every force known when it is
/// imported): imported last in every stack, since which forces it reaches
/// depends on which are known (the tracker's rule, not history).
fn national() -> (&'static str, &'static str) {
    corpus!("national/police-digital-evidence-2024.txt")
}

/// The same documents in another order: newest first, with the middle
/// swapped round.
fn shuffled() -> Vec<(&'static str, &'static str)> {
    let mut docs = documents();
    docs.reverse();
    docs.swap(2, 7);
    docs.swap(4, 9);
    docs
}

const ORGANISATIONS: [&str; 3] = ["barsetshire", "hertfordshire", "wessex"];

/// The days every answer is compared on (plus live).
const DAYS: [&str; 11] = [
    "2014-03-31",
    "2017-03-31",
    "2018-01-15",
    "2019-03-31",
    "2019-09-30",
    "2020-03-31",
    "2022-12-31",
    "2024-03-11",
    "2024-03-12",
    "2025-03-31",
    "2026-01-01",
];

fn date(day: &str) -> pb::CalendarDate {
    let parts: Vec<i32> = day.split('-').map(|p| p.parse().unwrap()).collect();
    pb::CalendarDate::new(parts[0], parts[1] as u32, parts[2] as u32)
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    closeout_testkit::connect_authenticated(addr).await
}

/// Findings, tracker and metrics with their own databases on one private
/// stream.
struct Stack {
    bus: TestBus,
    dbs: Vec<TestDatabase>,
    findings: closeout_findings::RunningFindings,
    tracker: closeout_tracker::RunningTracker,
    metrics: closeout_metrics::RunningMetrics,
    f: FindingsServiceClient<Channel>,
    t: TrackerServiceClient<Channel>,
    m: MetricsServiceClient<Channel>,
}

impl Stack {
    async fn start() -> Stack {
        let bus = TestBus::new();
        let dbs = vec![
            TestDatabase::create().await,
            TestDatabase::create().await,
            TestDatabase::create().await,
        ];
        let findings = start_findings(&dbs[0], &bus).await;
        let tracker = start_tracker(&dbs[1], &bus).await;
        let metrics = start_metrics(&dbs[2], &bus).await;
        let f = FindingsServiceClient::new(channel(findings.addr).await);
        let t = TrackerServiceClient::new(channel(tracker.addr).await);
        let m = MetricsServiceClient::new(channel(metrics.addr).await);
        Stack {
            bus,
            dbs,
            findings,
            tracker,
            metrics,
            f,
            t,
            m,
        }
    }

    async fn import(&mut self, docs: &[(&str, &str)]) {
        for (name, text) in docs {
            let imported = self
                .f
                .import_report(inspectorate(pb::ImportReportRequest {
                    text: (*text).into(),
                    source_name: (*name).into(),
                    replace: false,
                    ..Default::default()
                }))
                .await
                .unwrap_or_else(|e| panic!("import {name}: {e:?}"))
                .into_inner();
            assert!(imported.created, "{name}");
        }
    }

    async fn items(&self, organisation: &str) -> Vec<pb::TrackedItem> {
        let mut client = self.t.clone();
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_items(inspectorate(pb::ListItemsRequest {
                    organisation_id: organisation.into(),
                    page_size: 500,
                    page_token: token,
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner();
            out.extend(page.items);
            if page.next_page_token.is_empty() {
                return out;
            }
            token = page.next_page_token;
        }
    }

    /// Waits until the tracker has read every import and the metrics
    /// service counts each organisation's items by status as the tracker
    /// does.
    async fn settled(&self) {
        let bus = self.bus.connect().await;
        eventually("the tracker to read every import", || {
            let bus = bus.clone();
            async move {
                (closeout_service::bus_metrics::pending(&bus, "tracker-findings").await == Some(0))
                    .then_some(())
            }
        })
        .await;
        for organisation in ORGANISATIONS {
            eventually("metrics to count what the tracker holds", || async move {
                let items = self.items(organisation).await;
                let mut expected: BTreeMap<i32, u32> = BTreeMap::new();
                for item in &items {
                    *expected.entry(item.status).or_default() += 1;
                }
                let card = self
                    .m
                    .clone()
                    .get_scorecard(pb::GetScorecardRequest {
                        organisation_id: organisation.into(),
                        as_of: None,
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .scorecard?;
                let counted: BTreeMap<i32, u32> = card
                    .by_status
                    .iter()
                    .filter(|s| s.count > 0)
                    .map(|s| (s.status, s.count))
                    .collect();
                (!items.is_empty() && counted == expected).then_some(())
            })
            .await;
        }
    }

    /// Inspection id → "organisation period title (published)", the same
    /// in every stack.
    async fn labels(&self) -> BTreeMap<String, String> {
        let inspections = self
            .f
            .clone()
            .list_inspections(pb::ListInspectionsRequest {
                page_size: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .inspections;
        inspections
            .into_iter()
            .map(|i| {
                (
                    i.id,
                    format!(
                        "{} {} {} ({})",
                        i.organisation_id, i.period, i.title, i.published
                    ),
                )
            })
            .collect()
    }

    /// Every metrics answer for every organisation, live and as of each
    /// day, with inspection ids replaced by their labels.
    async fn answers(&self) -> BTreeMap<String, String> {
        let labels = self.labels().await;
        let relabel = |text: String| {
            labels
                .iter()
                .fold(text, |text, (id, label)| text.replace(id.as_str(), label))
        };
        let mut m = self.m.clone();
        let mut out = BTreeMap::new();
        let days: Vec<Option<&str>> = std::iter::once(None)
            .chain(DAYS.iter().map(|d| Some(*d)))
            .collect();
        for day in days {
            let as_of = day.map(date);
            let when = day.unwrap_or("live");
            for organisation in ORGANISATIONS {
                let key = |what: &str| format!("{organisation} {when} {what}");
                let org = organisation.to_string();
                let scorecard = m
                    .get_scorecard(pb::GetScorecardRequest {
                        organisation_id: org.clone(),
                        as_of,
                    })
                    .await
                    .map(|r| r.into_inner());
                out.insert(key("scorecard"), relabel(format!("{scorecard:?}")));
                let closure = m
                    .get_closure_stats(pb::GetClosureStatsRequest {
                        organisation_id: org.clone(),
                        as_of,
                        page_size: 500,
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.into_inner());
                out.insert(key("closure"), relabel(format!("{closure:?}")));
                let grades = m
                    .get_grade_history(pb::GetGradeHistoryRequest {
                        organisation_id: org.clone(),
                        as_of,
                        page_size: 500,
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.into_inner());
                out.insert(key("grades"), relabel(format!("{grades:?}")));
                let peers = m
                    .get_peer_comparison(pb::GetPeerComparisonRequest {
                        organisation_id: org.clone(),
                        as_of,
                    })
                    .await
                    .map(|r| r.into_inner());
                out.insert(key("peers"), relabel(format!("{peers:?}")));
                let series = m
                    .get_indicator_series(pb::GetIndicatorSeriesRequest {
                        organisation_id: org.clone(),
                        as_of,
                        page_size: 500,
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.into_inner());
                out.insert(key("indicators"), relabel(format!("{series:?}")));
            }
            let everyone = m
                .get_closure_stats(pb::GetClosureStatsRequest {
                    as_of,
                    page_size: 500,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner());
            out.insert(
                format!("everyone {when} closure"),
                relabel(format!("{everyone:?}")),
            );
        }
        out
    }

    async fn stop(self) {
        let Stack {
            bus,
            dbs,
            findings,
            tracker,
            metrics,
            ..
        } = self;
        metrics.stop().await.unwrap();
        tracker.stop().await.unwrap();
        findings.stop().await.unwrap();
        bus.cleanup().await;
        for db in dbs {
            db.drop_database().await;
        }
    }
}

/// The item of `organisation` whose text contains `words`.
async fn item_with(stack: &Stack, organisation: &str, words: &str) -> pb::TrackedItem {
    let items = stack.items(organisation).await;
    let mut found: Vec<pb::TrackedItem> = items
        .into_iter()
        .filter(|i| i.text.contains(words))
        .collect();
    assert_eq!(found.len(), 1, "one {organisation} item with {words:?}");
    found.remove(0)
}

/// The same people's actions in every stack, recorded today: one item
/// closed by a letter of 2018-01-15, one started.
async fn act(stack: &mut Stack, first_afi: &str) {
    let item = item_with(stack, "barsetshire", first_afi).await;
    stack
        .t
        .verify_item(inspectorate(pb::VerifyItemRequest {
            item_id: item.id.clone(),
            expected_version: item.version,
            closure_reference: "Closure letter of 15 January 2018".into(),
            effective_date: Some(date("2018-01-15")),
        }))
        .await
        .expect("verified with an effective date");
    let herts = stack.items("hertfordshire").await;
    let started = herts
        .iter()
        .filter(|i| i.status == ItemStatus::Open as i32)
        .min_by_key(|i| i.text.clone())
        .expect("an open Hertfordshire item");
    stack
        .t
        .start_item(as_force(pb::StartItemRequest {
            item_id: started.id.clone(),
            expected_version: started.version,
            note: "Work started".into(),
        }))
        .await
        .expect("started");
}

fn as_force<T>(message: T) -> tonic::Request<T> {
    support::as_role("inspected-body", "hertfordshire", message)
}

async fn scorecard(stack: &Stack, organisation: &str, day: Option<&str>) -> pb::Scorecard {
    stack
        .m
        .clone()
        .get_scorecard(pb::GetScorecardRequest {
            organisation_id: organisation.into(),
            as_of: day.map(date),
        })
        .await
        .unwrap_or_else(|e| panic!("scorecard of {organisation} as of {day:?}: {e:?}"))
        .into_inner()
        .scorecard
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_years_imported_in_any_order_give_the_same_answers() {
    let mut in_order = Stack::start().await;
    in_order.import(&documents()).await;
    in_order.import(&[national()]).await;
    in_order.settled().await;

    // The first area for improvement of Barsetshire's 2016 report.
    let first_afi = {
        let items = in_order.items("barsetshire").await;
        let labels = in_order.labels().await;
        let mut afis: Vec<&pb::TrackedItem> = items
            .iter()
            .filter(|i| {
                i.kind == pb::FindingKind::AreaForImprovement as i32
                    && labels
                        .get(&i.inspection_id)
                        .is_some_and(|l| l.contains(" 2016 "))
            })
            .collect();
        afis.sort_by_key(|i| i.text.clone());
        afis.first()
            .expect("a 2016 area for improvement")
            .text
            .chars()
            .take(60)
            .collect::<String>()
    };
    act(&mut in_order, &first_afi).await;
    in_order.settled().await;

    let mut out_of_order = Stack::start().await;
    out_of_order.import(&shuffled()).await;
    out_of_order.import(&[national()]).await;
    out_of_order.settled().await;
    act(&mut out_of_order, &first_afi).await;
    out_of_order.settled().await;

    let expected = in_order.answers().await;
    let actual = out_of_order.answers().await;
    println!(
        "compared {} answers for {:?}, live and as of {}",
        expected.len(),
        ORGANISATIONS,
        DAYS.join(", ")
    );
    assert_eq!(expected.len(), actual.len());
    for (key, answer) in &expected {
        assert_eq!(Some(answer), actual.get(key), "{key}");
    }

    // The answers are about history, not empty: each organisation has
    // items before 2020 and a day before anything is known answers zeros.
    for organisation in ORGANISATIONS {
        let early = scorecard(&in_order, organisation, Some("2014-03-31")).await;
        assert_eq!(early.total_items, 0, "{organisation}");
        assert!(early.by_status.iter().all(|s| s.count == 0));
        assert!(early.grades.is_empty() && early.indicators.is_empty());
        let card = scorecard(&in_order, organisation, Some("2019-09-30")).await;
        assert!(card.total_items > 0, "{organisation} as of 2019-09-30");
        assert!(card.median_open_age_days > 0.0, "{organisation}");
    }

    // The national report's recommendations count from its publication
    // (12 March 2024), and are overdue after their deadline clause.
    let national_count = |card: &pb::Scorecard| {
        card.by_kind
            .iter()
            .find(|k| k.kind == pb::FindingKind::NationalRecommendation as i32)
            .map_or(0, |k| k.count)
    };
    let before = scorecard(&in_order, "barsetshire", Some("2024-03-11")).await;
    let after = scorecard(&in_order, "barsetshire", Some("2024-03-12")).await;
    assert_eq!(national_count(&before), 0);
    assert!(national_count(&after) > 0, "{after:?}");
    assert_eq!(
        after.total_items,
        before.total_items + national_count(&after)
    );
    let later = scorecard(&in_order, "barsetshire", Some("2025-03-31")).await;
    assert!(
        later.overdue > before.overdue,
        "due 31 October 2024: {later:?}"
    );

    // Closure statistics of everyone, in pages of two.
    let closure = |page_token: String| {
        let mut m = in_order.m.clone();
        async move {
            m.get_closure_stats(pb::GetClosureStatsRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let whole = in_order
        .m
        .clone()
        .get_closure_stats(pb::GetClosureStatsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(whole.inspections.len() > 4 && whole.next_page_token.is_empty());
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = closure(token).await;
        assert!(page.inspections.len() <= 2);
        paged.extend(page.inspections);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, whole.inspections);

    in_order.stop().await;
    out_of_order.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_report_counts_from_september_2019() {
    let mut stack = Stack::start().await;
    stack
        .import(&[("peel-2018-19-hertfordshire.txt", SAMPLE)])
        .await;
    let bus = stack.bus.connect().await;
    eventually("the tracker to read the import", || {
        let bus = bus.clone();
        async move {
            (closeout_service::bus_metrics::pending(&bus, "tracker-findings").await == Some(0))
                .then_some(())
        }
    })
    .await;
    // Items, grades and indicators reach metrics in their own batches: wait
    // for all three before reading as of a date.
    let items = eventually("seven items, grades and indicators in metrics", || async {
        let card = stack
            .m
            .clone()
            .get_scorecard(pb::GetScorecardRequest {
                organisation_id: "hertfordshire".into(),
                as_of: None,
            })
            .await
            .ok()?
            .into_inner()
            .scorecard?;
        (card.total_items == 7 && !card.grades.is_empty() && !card.indicators.is_empty())
            .then_some(card.total_items)
    })
    .await;
    assert_eq!(items, 7);

    // The README's example: as of 2020-03-31, seven areas for improvement
    // published in September 2019 (counted from 2019-09-01), 212 days old.
    let card = scorecard(&stack, "hertfordshire", Some("2020-03-31")).await;
    assert_eq!(card.total_items, 7);
    assert_eq!(card.median_open_age_days, 212.0);
    assert_eq!(card.p90_open_age_days, 212.0);
    assert!(!card.grades.is_empty() && !card.indicators.is_empty());
    // Before the report: known, but nothing yet.
    let before = scorecard(&stack, "hertfordshire", Some("2019-08-31")).await;
    assert_eq!(before.total_items, 0);
    assert!(before.grades.is_empty());
    let nobody = stack
        .m
        .clone()
        .get_scorecard(pb::GetScorecardRequest {
            organisation_id: "nobody".into(),
            as_of: Some(date("2020-03-31")),
        })
        .await
        .expect_err("never heard of");
    assert_eq!(nobody.code(), tonic::Code::NotFound);

    // A closure letter of 2020-01-15 recorded today.
    let items = stack.items("hertfordshire").await;
    let item = items
        .iter()
        .find(|i| i.text.contains("cyber"))
        .or_else(|| items.first())
        .cloned()
        .unwrap();
    for (bad, why) in [
        (pb::CalendarDate::new(2020, 2, 30), "is not a calendar date"),
        (pb::CalendarDate::new(2999, 1, 1), "must not be after today"),
    ] {
        let refused = stack
            .t
            .verify_item(inspectorate(pb::VerifyItemRequest {
                item_id: item.id.clone(),
                expected_version: item.version,
                closure_reference: "letter".into(),
                effective_date: Some(bad),
            }))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().contains("effective_date") && refused.message().contains(why),
            "{}",
            refused.message()
        );
    }
    let unchanged = item_with(&stack, "hertfordshire", &item.text).await;
    assert_eq!(unchanged.version, item.version, "a refusal changes nothing");
    stack
        .t
        .verify_item(inspectorate(pb::VerifyItemRequest {
            item_id: item.id.clone(),
            expected_version: item.version,
            closure_reference: "Closure letter 2020-01".into(),
            effective_date: Some(date("2020-01-15")),
        }))
        .await
        .expect("verified");
    let closed_count = |card: &pb::Scorecard| {
        card.by_status
            .iter()
            .find(|s| s.status == ItemStatus::Closed as i32)
            .map_or(0, |s| s.count)
    };
    eventually("the closure in metrics", || async {
        let card = scorecard(&stack, "hertfordshire", None).await;
        (closed_count(&card) == 1).then_some(())
    })
    .await;
    let day_before = scorecard(&stack, "hertfordshire", Some("2020-01-14")).await;
    assert_eq!(closed_count(&day_before), 0);
    let that_day = scorecard(&stack, "hertfordshire", Some("2020-01-15")).await;
    assert_eq!(closed_count(&that_day), 1);
    assert_eq!(
        that_day.median_days_to_close, 136.0,
        "2019-09-01 to 2020-01-15"
    );
    let live = scorecard(&stack, "hertfordshire", None).await;
    assert_eq!(
        live.median_days_to_close, 136.0,
        "not the day it was recorded"
    );

    // Closure statistics: no next inspection, so nothing closed by it.
    let stats = stack
        .m
        .clone()
        .get_closure_stats(pb::GetClosureStatsRequest {
            organisation_id: "hertfordshire".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.inspections.len(), 1);
    let only = &stats.inspections[0];
    assert_eq!((only.items, only.closed_by_next_inspection), (7, 0));
    assert_eq!(only.next_inspection_id, "");
    assert_eq!(only.days_to_close, vec![136]);

    // Peers: the report names a most similar group nobody has imported.
    let peers = stack
        .m
        .clone()
        .get_peer_comparison(pb::GetPeerComparisonRequest {
            organisation_id: "hertfordshire".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    let group = peers.most_similar_group.unwrap();
    assert_eq!(
        (group.organisations, group.open_items, group.closed_items),
        (0, 0, 0)
    );
    assert_eq!(peers.all_organisations.unwrap().organisations, 1);

    // Indicator points name their measure; case does not matter; no
    // comparator is a date.
    let series = |measure: &str, page_size: i32, page_token: &str| {
        let mut m = stack.m.clone();
        let request = pb::GetIndicatorSeriesRequest {
            organisation_id: "hertfordshire".into(),
            measure: measure.into(),
            page_size,
            page_token: page_token.into(),
            ..Default::default()
        };
        async move { m.get_indicator_series(request).await }
    };
    let all = series("", 500, "").await.unwrap().into_inner();
    assert!(all.points.len() > 1);
    assert!(all.points.iter().all(|p| !p.measure.is_empty()));
    for point in &all.points {
        assert!(
            !point.comparator.chars().any(|c| c.is_ascii_digit()),
            "a date as comparator: {point:?}"
        );
    }
    assert!(
        all.points
            .iter()
            .any(|p| p.comparator_period == "31 March 2014" && p.comparator == "same organisation"),
        "the workforce table compares the force with itself in 2014: {:?}",
        all.points
    );
    let measure = all.points[0].measure.clone();
    let exact = series(&measure, 500, "").await.unwrap().into_inner().points;
    let shouted = series(&measure.to_uppercase(), 500, "")
        .await
        .unwrap()
        .into_inner()
        .points;
    assert!(!exact.is_empty());
    assert!(exact.iter().all(|p| p.measure == measure));
    assert_eq!(exact, shouted);

    // Paging: pages of two put together are the whole answer.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = series("", 2, &token).await.unwrap().into_inner();
        assert!(page.points.len() <= 2);
        paged.extend(page.points);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, all.points);
    let grades = |page_size: i32, page_token: &str| {
        let mut m = stack.m.clone();
        let request = pb::GetGradeHistoryRequest {
            organisation_id: "hertfordshire".into(),
            page_size,
            page_token: page_token.into(),
            ..Default::default()
        };
        async move { m.get_grade_history(request).await }
    };
    let first = grades(3, "").await.unwrap().into_inner();
    assert_eq!(first.points.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let rest = grades(500, &first.next_page_token)
        .await
        .unwrap()
        .into_inner();
    let whole = grades(500, "").await.unwrap().into_inner();
    assert_eq!(
        [first.points, rest.points].concat(),
        whole.points,
        "two pages are the whole history"
    );
    assert!(rest.next_page_token.is_empty());
    let bad = grades(10, "not-a-token").await.expect_err("bad token");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("page_token"), "{}", bad.message());
    let closure_page = stack
        .m
        .clone()
        .get_closure_stats(pb::GetClosureStatsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("negative page size");
    assert_eq!(closure_page.code(), tonic::Code::InvalidArgument);

    stack.stop().await;
}
