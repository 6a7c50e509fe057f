//! Feeds the known history of `scenario` to the service through a test
//! stream (out of order, with duplicates and a poison message) and checks
//! every figure of every query, live and as of days in the middle: one
//! behaviour per test, each on its own fed service.

mod scenario;

use closeout_proto as pb;
use closeout_testkit::inspectorate;
use pb::FindingKind as K;
use pb::Grade as G;
use pb::GradeTrend as T;
use pb::metrics_service_client::MetricsServiceClient;
use scenario::{Harness, Ids, MEASURE, S, date};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
// Every call carries a token (a viewer's unless the request has its own).
use closeout_testkit::AuthChannel as Channel;

fn statuses(card: &pb::Scorecard) -> Vec<(S, u32)> {
    card.by_status
        .iter()
        .map(|s| (S::try_from(s.status).expect("status"), s.count))
        .collect()
}

fn kinds(card: &pb::Scorecard) -> Vec<(pb::FindingKind, u32)> {
    card.by_kind
        .iter()
        .map(|k| (pb::FindingKind::try_from(k.kind).expect("kind"), k.count))
        .collect()
}

fn pillars(card: &pb::Scorecard) -> Vec<(&str, u32, u32, u32)> {
    card.by_pillar
        .iter()
        .map(|p| (p.pillar.as_str(), p.open, p.closed, p.total))
        .collect()
}

fn grades(
    card: &pb::Scorecard,
) -> Vec<(String, pb::Grade, pb::GradeTrend, pb::Grade, String, bool)> {
    card.grades
        .iter()
        .map(|g| {
            (
                format!("{}/{}", g.pillar, g.question),
                pb::Grade::try_from(g.grade).expect("grade"),
                pb::GradeTrend::try_from(g.trend).expect("trend"),
                pb::Grade::try_from(g.previous_grade).expect("grade"),
                g.previous_period.clone(),
                g.carried_over,
            )
        })
        .collect()
}

async fn scorecard(
    client: &mut pb::metrics_service_client::MetricsServiceClient<Channel>,
    org: &str,
    day: Option<&str>,
) -> pb::Scorecard {
    client
        .get_scorecard(inspectorate(pb::GetScorecardRequest {
            organisation_id: org.into(),
            as_of: day.map(date),
        }))
        .await
        .expect("scorecard")
        .into_inner()
        .scorecard
        .expect("scorecard set")
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("read");
    text
}

type Client = MetricsServiceClient<Channel>;

/// Closure statistics of `org` (empty: every organisation) as of `day`.
async fn closure(client: &Client, org: &str, day: Option<&str>) -> Vec<pb::InspectionClosure> {
    client
        .clone()
        .get_closure_stats(inspectorate(pb::GetClosureStatsRequest {
            organisation_id: org.to_string(),
            programme: String::new(),
            as_of: day.map(date),
            ..Default::default()
        }))
        .await
        .expect("closure stats")
        .into_inner()
        .inspections
}

/// A group's headline figures, to compare in one go.
fn figures(f: &Option<pb::HeadlineFigures>) -> (String, u32, u32, u32, u32, f64, f64) {
    let f = f.clone().expect("figures");
    (
        f.group,
        f.organisations,
        f.open_items,
        f.closed_items,
        f.overdue_items,
        f.closure_rate,
        f.median_days_to_close,
    )
}

/// One point of a grade history: period, question, grade, carried over,
/// published.
type GradePoint = (String, String, pb::Grade, bool, String);

/// Hertfordshire's grade history as of `day`.
async fn history(client: &Client, day: Option<&str>) -> Vec<GradePoint> {
    client
        .clone()
        .get_grade_history(inspectorate(pb::GetGradeHistoryRequest {
            organisation_id: "hertfordshire".into(),
            as_of: day.map(date),
            ..Default::default()
        }))
        .await
        .expect("grade history")
        .into_inner()
        .points
        .into_iter()
        .map(|p| {
            (
                p.period,
                p.question,
                pb::Grade::try_from(p.grade).expect("grade"),
                p.carried_over,
                p.published,
            )
        })
        .collect()
}

/// A grade point as written in the expectations.
fn g(period: &str, question: &str, grade: pb::Grade, carried: bool, published: &str) -> GradePoint {
    (
        period.to_string(),
        question.to_string(),
        grade,
        carried,
        published.to_string(),
    )
}

/// Hertfordshire's series of `measure` (empty: all) as of `day`:
/// published, value, comparator.
async fn series(
    client: &Client,
    day: Option<&str>,
    measure: &str,
) -> Vec<(String, f64, Option<f64>)> {
    client
        .clone()
        .get_indicator_series(inspectorate(pb::GetIndicatorSeriesRequest {
            organisation_id: "hertfordshire".into(),
            measure: measure.to_string(),
            as_of: day.map(date),
            ..Default::default()
        }))
        .await
        .expect("indicator series")
        .into_inner()
        .points
        .into_iter()
        .map(|p| (p.published, p.value, p.comparator_value))
        .collect()
}

/// A service fed the whole scenario as life would feed it: the first half
/// before it starts, the rest while it runs, duplicates under the same and
/// under another message id, and a message that can never be applied.
struct Fed {
    h: Harness,
    ids: Ids,
    events: Vec<pb::EventEnvelope>,
    client: MetricsServiceClient<Channel>,
}

async fn fed() -> Fed {
    let mut h = Harness::new().await;
    let ids = scenario::new_ids();
    let events = scenario::history(&ids);
    // Start with the first half published, the rest while running.
    let (first, rest) = events.split_at(events.len() / 2);
    h.publish(first).await;
    h.start().await;
    h.publish(rest).await;
    // Duplicates: the same message id (dropped by JetStream) and another
    // message id (stored twice, so the consumer must skip it).
    h.publish(&events[3..5]).await;
    for event in events.iter().step_by(5) {
        h.publish_duplicate(event).await;
    }
    // A message that can never be applied: no payload.
    let mut poison = events[2].clone();
    poison.event_id = uuid::Uuid::now_v7().to_string();
    let subject = h.bus.subject_of(&poison).expect("subject");
    poison.payload = None;
    h.bus
        .publish(
            subject,
            closeout_bus::event_headers(&poison.event_id, "closeout.v1.JudgmentRecorded", ""),
            prost::Message::encode_to_vec(&poison).into(),
        )
        .await
        .expect("publish poison");
    h.caught_up().await;
    let client = h.client().await;
    Fed {
        h,
        ids,
        events,
        client,
    }
}

const HERTS: &str = "hertfordshire";

/// Duplicates are skipped and the poison message is not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_stored_once_despite_duplicates_and_poison() {
    let Fed { h, events, .. } = fed().await;

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(h.db.pool())
        .await
        .expect("count");
    assert_eq!(stored as usize, events.len(), "each event stored once");
    h.cleanup().await;
}

/// As of 2019-07-01 only the first inspection is known: A closed, B overdue, C open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scorecard_as_of_the_first_inspection() {
    let Fed { h, mut client, .. } = fed().await;
    let herts = HERTS;
    // days to close count from I1's publication (2018-03-01).
    let card = scorecard(&mut client, herts, Some("2019-07-01")).await;
    assert_eq!(card.as_of, Some(date("2019-07-01")));
    assert_eq!(card.total_items, 3);
    assert_eq!(
        statuses(&card),
        vec![
            (S::Open, 2),
            (S::InProgress, 0),
            (S::AwaitingVerification, 0),
            (S::Closed, 1),
            (S::Superseded, 0)
        ]
    );
    assert_eq!(
        kinds(&card),
        vec![(K::AreaForImprovement, 2), (K::CauseOfConcern, 1)]
    );
    assert_eq!(
        pillars(&card),
        vec![("Effectiveness", 1, 1, 2), ("Legitimacy", 1, 0, 1)]
    );
    assert_eq!(card.overdue, 1);
    assert_eq!(card.median_open_age_days, 487.0);
    assert_eq!(card.p90_open_age_days, 487.0);
    assert_eq!(card.median_days_to_close, 457.0);
    assert_eq!(
        grades(&card),
        vec![
            (
                "Effectiveness/".into(),
                G::Good,
                T::First,
                G::Unspecified,
                String::new(),
                false
            ),
            (
                "Effectiveness/Investigating crime".into(),
                G::RequiresImprovement,
                T::First,
                G::Unspecified,
                String::new(),
                false
            ),
        ]
    );
    assert_eq!(card.indicators.len(), 1);
    assert_eq!(card.indicators[0].measure, MEASURE);
    assert_eq!(card.indicators[0].value, 150.0);
    assert_eq!(card.indicators[0].comparator_value, Some(170.0));
    assert_eq!(card.indicators[0].comparator, "England and Wales");
    h.cleanup().await;
}

/// As of 2019-10-05 the second inspection is known in its first version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scorecard_as_of_the_second_inspection_before_its_replacement() {
    let Fed { h, mut client, .. } = fed().await;
    let herts = HERTS;
    // document always said so); B closed by I2 as of I2's publication.
    let card = scorecard(&mut client, herts, Some("2019-10-05")).await;
    assert_eq!(card.total_items, 5);
    assert_eq!(
        statuses(&card),
        vec![
            (S::Open, 3),
            (S::InProgress, 0),
            (S::AwaitingVerification, 0),
            (S::Closed, 2),
            (S::Superseded, 0)
        ]
    );
    assert_eq!(
        kinds(&card),
        vec![
            (K::AreaForImprovement, 3),
            (K::CauseOfConcern, 1),
            (K::Recommendation, 1)
        ]
    );
    assert_eq!(
        pillars(&card),
        vec![
            ("Effectiveness", 2, 1, 3),
            ("Efficiency", 1, 0, 1),
            ("Legitimacy", 0, 1, 1)
        ]
    );
    assert_eq!(card.overdue, 0, "B closed, D not yet due");
    assert_eq!(card.median_open_age_days, 34.0);
    assert_eq!(card.p90_open_age_days, 583.0);
    assert_eq!(card.median_days_to_close, 503.0);
    assert_eq!(
        grades(&card),
        vec![
            (
                "Effectiveness/".into(),
                G::Good,
                T::Unchanged,
                G::Good,
                "2017".into(),
                false
            ),
            (
                "Effectiveness/Investigating crime".into(),
                G::Outstanding,
                T::Improved,
                G::RequiresImprovement,
                "2017".into(),
                false
            ),
            (
                "Effectiveness/Protecting vulnerable people".into(),
                G::Good,
                T::First,
                G::Unspecified,
                String::new(),
                true
            ),
        ]
    );
    assert_eq!(card.indicators[0].value, 144.0);
    h.cleanup().await;
}

/// As of 2023-01-01 everything has happened; grades of the two scales are not compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scorecard_once_everything_has_happened() {
    let Fed { h, mut client, .. } = fed().await;
    let herts = HERTS;
    let card = scorecard(&mut client, herts, Some("2023-01-01")).await;
    assert_eq!(card.total_items, 6);
    assert_eq!(
        statuses(&card),
        vec![
            (S::Open, 1),
            (S::InProgress, 2),
            (S::AwaitingVerification, 0),
            (S::Closed, 2),
            (S::Superseded, 1)
        ]
    );
    assert_eq!(
        kinds(&card),
        vec![
            (K::AreaForImprovement, 4),
            (K::CauseOfConcern, 1),
            (K::Recommendation, 1)
        ]
    );
    assert_eq!(
        pillars(&card),
        vec![
            ("Effectiveness", 2, 1, 4),
            ("Efficiency", 1, 0, 1),
            ("Legitimacy", 0, 1, 1)
        ]
    );
    assert_eq!(card.overdue, 1, "D, overdue again after its new due date");
    assert_eq!(card.median_open_age_days, 1218.0);
    assert_eq!(card.p90_open_age_days, 1218.0);
    assert_eq!(card.median_days_to_close, 503.0);
    assert_eq!(
        grades(&card),
        vec![
            (
                "Effectiveness/Investigating crime".into(),
                G::Adequate,
                T::NotComparable,
                G::Outstanding,
                "2018/19".into(),
                false
            ),
            (
                "Effectiveness/".into(),
                G::Good,
                T::Unchanged,
                G::Good,
                "2017".into(),
                false
            ),
            (
                "Effectiveness/Protecting vulnerable people".into(),
                G::Good,
                T::First,
                G::Unspecified,
                String::new(),
                true
            ),
        ]
    );
    assert_eq!(card.grades[0].scale, pb::GradeScale::FiveTier as i32);
    assert_eq!(
        card.grades[0].previous_scale,
        pb::GradeScale::FourTier as i32
    );
    assert_eq!(card.grades[0].period, "2021/22");
    assert_eq!(card.indicators[0].value, 144.0, "the replacement's value");
    h.cleanup().await;
}

/// The live scorecard has the final counts; its ages run to today.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scorecard_is_the_fold_of_the_history() {
    let Fed { h, mut client, .. } = fed().await;
    let herts = HERTS;
    let card = scorecard(&mut client, herts, Some("2023-01-01")).await;
    let live = scorecard(&mut client, herts, None).await;
    let today = chrono::Utc::now().date_naive();
    let today_text = today.format("%Y-%m-%d").to_string();
    let as_of_today = scorecard(&mut client, herts, Some(&today_text)).await;
    assert_eq!(live, as_of_today, "live read model = fold of the history");
    assert_eq!(live.by_status, card.by_status);
    assert_eq!(live.by_pillar, card.by_pillar);
    assert_eq!(live.grades, card.grades);
    assert_eq!(live.indicators, card.indicators);
    assert_eq!(live.overdue, card.overdue);
    assert!(live.median_open_age_days > 1218.0);
    h.cleanup().await;
}

/// Closure statistics: what each inspection's items became by the next one; live equals the final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closure_statistics_follow_each_inspection_to_the_next() {
    let Fed { h, ids, client, .. } = fed().await;
    let herts = HERTS;
    let stats = closure(&client, herts, Some("2023-01-01")).await;
    let summary: Vec<_> = stats
        .iter()
        .map(|s| {
            (
                s.inspection_id.clone(),
                s.period.clone(),
                s.items,
                s.closed_by_next_inspection,
                s.next_inspection_id.clone(),
                s.days_to_close.clone(),
                s.median_days_to_close,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                ids.i1.clone(),
                "2017".into(),
                3,
                2,
                ids.i2.clone(),
                vec![457, 549],
                503.0
            ),
            (
                ids.i2.clone(),
                "2018/19".into(),
                2,
                0,
                ids.i3.clone(),
                vec![],
                0.0
            ),
            (
                ids.i3.clone(),
                "2021/22".into(),
                1,
                0,
                String::new(),
                vec![],
                0.0
            ),
        ]
    );
    assert_eq!(closure(&client, herts, None).await, stats, "live = final");
    h.cleanup().await;
}

/// Closure statistics as of a day before the next inspection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closure_statistics_as_of_an_early_day() {
    let Fed { h, client, .. } = fed().await;
    let herts = HERTS;
    let early = closure(&client, herts, Some("2019-07-01")).await;
    assert_eq!(early.len(), 1);
    assert_eq!(
        (early[0].items, early[0].closed_by_next_inspection),
        (3, 0),
        "no next inspection yet"
    );
    assert_eq!(early[0].next_inspection_id, "");
    assert_eq!(early[0].days_to_close, vec![457]);
    h.cleanup().await;
}

/// Closure statistics of every organisation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closure_statistics_of_every_organisation() {
    let Fed { h, client, .. } = fed().await;
    let everyone = closure(&client, "", None).await;
    assert_eq!(everyone.len(), 4, "three of Hertfordshire's and Kent's");
    let kent = everyone
        .iter()
        .find(|s| s.organisation_id == "kent")
        .expect("kent");
    assert_eq!(
        (
            kent.items,
            kent.closed_by_next_inspection,
            kent.days_to_close.clone()
        ),
        (2, 0, vec![41]),
        "no next inspection of Kent"
    );
    h.cleanup().await;
}

/// Closure statistics of a programme with no inspections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closure_statistics_of_another_programme_are_empty() {
    let Fed { h, mut client, .. } = fed().await;
    let herts = HERTS;
    let other = client
        .get_closure_stats(inspectorate(pb::GetClosureStatsRequest {
            organisation_id: herts.into(),
            programme: "Crime data integrity".into(),
            as_of: None,
            ..Default::default()
        }))
        .await
        .expect("closure stats")
        .into_inner();
    assert!(other.inspections.is_empty());
    h.cleanup().await;
}

/// Peer comparison: the organisation, its most similar group, everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_comparison_live() {
    let Fed { h, mut client, .. } = fed().await;
    let herts = HERTS;
    let peers = client
        .get_peer_comparison(inspectorate(pb::GetPeerComparisonRequest {
            organisation_id: herts.into(),
            as_of: None,
        }))
        .await
        .expect("peers")
        .into_inner();
    assert_eq!(
        figures(&peers.organisation),
        (herts.into(), 1, 3, 2, 1, 0.4, 503.0)
    );
    assert_eq!(
        figures(&peers.most_similar_group),
        ("most-similar-group".into(), 2, 2, 1, 1, 1.0 / 3.0, 41.0)
    );
    assert_eq!(
        figures(&peers.all_organisations),
        ("all".into(), 3, 5, 3, 2, 0.375, 457.0)
    );
    h.cleanup().await;
}

/// Peer comparison as of 2019-07-01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_comparison_as_of_an_early_day() {
    let Fed { h, mut client, .. } = fed().await;
    let herts = HERTS;
    let early = client
        .get_peer_comparison(inspectorate(pb::GetPeerComparisonRequest {
            organisation_id: herts.into(),
            as_of: Some(date("2019-07-01")),
        }))
        .await
        .expect("peers")
        .into_inner();
    assert_eq!(
        figures(&early.organisation),
        (herts.into(), 1, 2, 1, 1, 1.0 / 3.0, 457.0)
    );
    assert_eq!(
        figures(&early.most_similar_group),
        ("most-similar-group".into(), 1, 1, 1, 1, 0.5, 41.0),
        "Essex is not known before 2020"
    );
    assert_eq!(
        figures(&early.all_organisations),
        ("all".into(), 2, 3, 2, 2, 0.4, 249.0)
    );
    h.cleanup().await;
}

/// Grade history: every published grade, carried-over ones marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grade_history_live() {
    let Fed { h, client, .. } = fed().await;
    assert_eq!(
        history(&client, None).await,
        vec![
            g("2017", "", G::Good, false, "2018-03"),
            g(
                "2017",
                "Investigating crime",
                G::RequiresImprovement,
                false,
                "2018-03"
            ),
            g("2018/19", "", G::Good, false, "2019-09"),
            g(
                "2018/19",
                "Investigating crime",
                G::Outstanding,
                false,
                "2019-09"
            ),
            g(
                "2018/19",
                "Protecting vulnerable people",
                G::Good,
                true,
                "2019-09"
            ),
            g(
                "2021/22",
                "Investigating crime",
                G::Adequate,
                false,
                "2022-06"
            ),
        ]
    );
    h.cleanup().await;
}

/// Grade history as of a day before the 2018/19 report was replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grade_history_as_of_before_a_replacement() {
    let Fed { h, client, .. } = fed().await;
    assert_eq!(
        history(&client, Some("2019-10-05")).await,
        vec![
            g("2017", "", G::Good, false, "2018-03"),
            g(
                "2017",
                "Investigating crime",
                G::RequiresImprovement,
                false,
                "2018-03"
            ),
            g("2018/19", "", G::Good, false, "2019-09"),
            g(
                "2018/19",
                "Investigating crime",
                G::Outstanding,
                false,
                "2019-09"
            ),
            g(
                "2018/19",
                "Protecting vulnerable people",
                G::Good,
                true,
                "2019-09"
            ),
        ]
    );
    h.cleanup().await;
}

/// Indicator series: the replacement's value live, the first value before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indicator_series_live_and_before_a_replacement() {
    let Fed { h, client, .. } = fed().await;
    assert_eq!(
        series(&client, None, MEASURE).await,
        vec![
            ("2018-03".into(), 150.0, Some(170.0)),
            ("2019-09".into(), 144.0, Some(175.0))
        ]
    );
    assert_eq!(
        series(&client, Some("2019-09-30"), MEASURE).await,
        vec![
            ("2018-03".into(), 150.0, Some(170.0)),
            ("2019-09".into(), 144.0, Some(175.0))
        ]
    );
    h.cleanup().await;
}

/// Indicator series: an empty measure means all, an unknown one none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indicator_series_filters_by_measure() {
    let Fed { h, client, .. } = fed().await;
    assert_eq!(
        series(&client, None, "").await.len(),
        2,
        "empty measure: all of them"
    );
    assert!(series(&client, None, "no such measure").await.is_empty());
    h.cleanup().await;
}

/// Prometheus: consumers, dead letters, RPC counts by method and code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_dead_letters_lag_and_calls() {
    let Fed {
        h,
        events,
        mut client,
        ..
    } = fed().await;
    // One call that answers and one that does not.
    scorecard(&mut client, HERTS, None).await;
    let _ = client
        .get_scorecard(inspectorate(pb::GetScorecardRequest {
            organisation_id: "nobody".into(),
            as_of: None,
        }))
        .await;
    let prometheus = h.service.as_ref().expect("running").metrics_http_addr;
    let text = scrape(prometheus).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("closeout_events_dead_lettered_total{consumer=\"metrics-findings\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("closeout_consumer_lag{consumer=\"metrics-tracker\"} 0\n"),
        "{text}"
    );
    for (consumer, count) in [("metrics-findings", 1), ("metrics-tracker", 0)] {
        let line = format!("closeout_dead_letters{{consumer=\"{consumer}\"}} {count}\n");
        assert!(text.contains(&line), "{line} in {text}");
    }
    assert!(
        text.contains("closeout_rpc_requests_total{method=\"/closeout.v1.MetricsService/GetScorecard\",code=\"NOT_FOUND\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("closeout_rpc_duration_seconds_bucket{method=\"/closeout.v1.MetricsService/GetScorecard\",code=\"OK\",le=\"+Inf\"}"), "{text}");
    assert!(
        text.contains(&format!(
            "closeout_metrics_history_events {}\n",
            events.len()
        )),
        "{text}"
    );
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field_and_unknown_organisations_are_not_found() {
    let mut h = Harness::new().await;
    h.start().await;
    let mut client = h.client().await;
    let missing = client
        .get_scorecard(inspectorate(pb::GetScorecardRequest {
            organisation_id: String::new(),
            as_of: Some(pb::CalendarDate::new(2021, 2, 29)),
        }))
        .await
        .expect_err("invalid");
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(
        missing.message().contains("organisation_id"),
        "{}",
        missing.message()
    );
    assert!(missing.message().contains("as_of"), "{}", missing.message());
    for status in [
        client
            .get_peer_comparison(inspectorate(pb::GetPeerComparisonRequest {
                organisation_id: "nobody".into(),
                as_of: None,
            }))
            .await
            .expect_err("unknown"),
        client
            .get_grade_history(inspectorate(pb::GetGradeHistoryRequest {
                organisation_id: "nobody".into(),
                as_of: Some(pb::CalendarDate::new(2020, 1, 1)),
                ..Default::default()
            }))
            .await
            .expect_err("unknown"),
    ] {
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    }
    let empty = client
        .get_closure_stats(inspectorate(pb::GetClosureStatsRequest::default()))
        .await
        .expect("closure stats of nothing")
        .into_inner();
    assert!(empty.inspections.is_empty());
    h.cleanup().await;
}
