//! A known history of three organisations, published straight to a test
//! stream (out of order, with duplicates), and the service under test.
//!
//! Hertfordshire (most similar group: Kent, Essex):
//! * I1, PEEL 2017, published 2018-03: Effectiveness Good, "Investigating
//!   crime" Requires improvement; 999 calls 150 (E&W 170).
//! * I2, PEEL 2018/19, published 2019-09 (on 2019-09-27): Effectiveness Good,
//!   Investigating crime Good, "Protecting vulnerable people" Good carried
//!   over; 999 calls 143 (175). Replaced on 2019-10-10 (version 2):
//!   Investigating crime Outstanding, 999 calls 144. The version-2 events
//!   are published *before* the version-1 ones, and one late version-1
//!   judgment after them.
//! * I3, PEEL 2021/22, published 2022-06: Investigating crime Adequate
//!   (five-tier).
//! * Items: A (I1, AFI, Effectiveness) opened 2018-04-01, started, closed
//!   2019-06-01; B (I1, AFI, Legitimacy, due 2018-09-30) opened 2018-04-01,
//!   overdue 2018-10-01, closed by I2 on 2019-10-20; C (I1, cause of
//!   concern, Effectiveness) superseded 2019-10-20; D (I2, AFI,
//!   Effectiveness, due 2020-03-31) opened 2019-10-01, started, overdue, new
//!   due date 2020-12-31, overdue again 2021-01-01;
//!   E (I2, recommendation, Efficiency) opened 2019-10-01, claimed, closed
//!   2020-03-01, reopened 2020-06-01; F (I3, AFI, Effectiveness) opened
//!   2022-07-01.
//!
//! Kent (most similar group: Hertfordshire): inspection K published
//! 2018-12; K1 opened 2019-01-01 closed 2019-01-11; K2 (due 2019-05-31)
//! opened 2019-01-01, overdue 2019-06-01.
//!
//! The days above are the days events were recorded; the figures count
//! from the documents' dates (an item from its report's publication, B's
//! closure from I2's) as the metrics define history. Essex (never registered): X1 opened 2020-01-01.

#![allow(dead_code)]

use closeout_bus::{Bus, Payload, route_of};
use closeout_metrics::{MetricsConfig, RunningMetrics};
use closeout_proto::{self as pb, EventEnvelope};
use closeout_service::CommonConfig;
use closeout_service::config::LogFormat;
use closeout_testkit::{TestBus, TestDatabase};
use prost::Message;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub use pb::ItemStatus as S;

/// Ids of the scenario's aggregates.
pub struct Ids {
    pub i1: String,
    pub i2: String,
    pub i3: String,
    pub k: String,
    pub items: [String; 6],
}

impl Ids {
    fn new() -> Ids {
        let id = || Uuid::now_v7().to_string();
        Ids {
            i1: id(),
            i2: id(),
            i3: id(),
            k: id(),
            items: [id(), id(), id(), id(), id(), id()],
        }
    }
}

/// Noon UTC of a `YYYY-MM-DD` day.
pub fn noon(day: &str) -> prost_types::Timestamp {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("test day");
    let at = date.and_hms_opt(12, 0, 0).expect("noon").and_utc();
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 123_456_789,
    }
}

pub fn date(day: &str) -> pb::CalendarDate {
    let parts: Vec<i32> = day.split('-').map(|p| p.parse().expect("number")).collect();
    pb::CalendarDate {
        year: parts[0],
        month: parts[1],
        day: parts[2],
    }
}

fn envelope(
    org: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    version: u64,
    day: &str,
    payload: Payload,
) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: closeout_bus::subject::event_type_of(&payload),
        source_service: route_of(&payload).service.to_string(),
        organisation_id: org.to_string(),
        occurred_at: Some(noon(day)),
        aggregate_type: aggregate_type.to_string(),
        aggregate_id: aggregate_id.to_string(),
        aggregate_version: version,
        correlation_id: "scenario".into(),
        causation_id: "scenario".into(),
        actor: None,
        payload: Some(payload),
    }
}

fn registered(org: &str, name: &str, group: &[&str], day: &str) -> EventEnvelope {
    envelope(
        org,
        "organisation",
        org,
        1,
        day,
        Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(pb::Organisation {
                id: org.into(),
                name: name.into(),
                kind: pb::OrganisationKind::PoliceForce as i32,
                most_similar_group: group.iter().map(|g| g.to_string()).collect(),
            }),
        }),
    )
}

fn published(org: &str, inspection: &str, period: &str, when: &str, day: &str) -> EventEnvelope {
    envelope(
        org,
        "inspection",
        inspection,
        1,
        day,
        Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: inspection.into(),
            organisation_id: org.into(),
            programme: "PEEL".into(),
            period: period.into(),
            title: format!("PEEL {period}"),
            published: when.into(),
            ..Default::default()
        }),
    )
}

struct JudgmentSpec<'a> {
    pillar: &'a str,
    question: &'a str,
    grade: pb::Grade,
    scale: pb::GradeScale,
    carried_over: bool,
}

#[allow(clippy::too_many_arguments)]
fn judgment(
    org: &str,
    inspection: &str,
    version: u64,
    period: &str,
    when: &str,
    day: &str,
    j: JudgmentSpec<'_>,
) -> EventEnvelope {
    envelope(
        org,
        "inspection",
        inspection,
        version,
        day,
        Payload::JudgmentRecorded(pb::JudgmentRecorded {
            judgment_id: Uuid::now_v7().to_string(),
            inspection_id: inspection.into(),
            organisation_id: org.into(),
            pillar: j.pillar.into(),
            question: j.question.into(),
            grade: j.grade as i32,
            scale: j.scale as i32,
            last_inspected: period.into(),
            carried_over: j.carried_over,
            published: when.into(),
            period: period.into(),
        }),
    )
}

pub const MEASURE: &str = "999 calls per 1,000 population";

fn indicator(
    org: &str,
    inspection: &str,
    version: u64,
    when: &str,
    day: &str,
    value: f64,
    comparator: f64,
) -> EventEnvelope {
    envelope(
        org,
        "inspection",
        inspection,
        version,
        day,
        Payload::IndicatorRecorded(pb::IndicatorRecorded {
            indicator_id: Uuid::now_v7().to_string(),
            inspection_id: inspection.into(),
            organisation_id: org.into(),
            measure: MEASURE.into(),
            period: "12 months to March".into(),
            value,
            unit: "per 1,000".into(),
            comparator: "England and Wales".into(),
            comparator_value: Some(comparator),
            published: when.into(),
            comparator_period: String::new(),
        }),
    )
}

/// Builds the events of one item, numbering versions from 1.
struct ItemEvents {
    org: String,
    id: String,
    events: Vec<EventEnvelope>,
}

impl ItemEvents {
    fn open(
        org: &str,
        id: &str,
        inspection: &str,
        kind: pb::FindingKind,
        pillar: &str,
        day: &str,
    ) -> ItemEvents {
        let mut item = ItemEvents {
            org: org.into(),
            id: id.into(),
            events: Vec::new(),
        };
        item.push(
            day,
            Payload::ItemOpened(pb::ItemOpened {
                item_id: id.into(),
                organisation_id: org.into(),
                finding_id: Uuid::now_v7().to_string(),
                inspection_id: inspection.into(),
                kind: kind as i32,
                pillar: pillar.into(),
                question: String::new(),
                text: "The force should…".into(),
                due_date: None,
                status: S::Open as i32,
                carried_from_item_id: String::new(),
            }),
        );
        item
    }

    fn push(&mut self, day: &str, payload: Payload) -> &mut Self {
        let version = self.events.len() as u64 + 1;
        self.events
            .push(envelope(&self.org, "item", &self.id, version, day, payload));
        self
    }

    fn status(&mut self, day: &str, from: S, to: S) -> &mut Self {
        let id = self.id.clone();
        self.push(
            day,
            Payload::StatusChanged(pb::StatusChanged {
                item_id: id,
                from_status: from as i32,
                to_status: to as i32,
                command: String::new(),
                reason: String::new(),
            }),
        )
    }

    fn verified(&mut self, day: &str, by_inspection: &str) -> &mut Self {
        let id = self.id.clone();
        self.push(
            day,
            Payload::ItemVerified(pb::ItemVerified {
                item_id: id,
                closure_reference: "letter".into(),
                closed_by_inspection_id: by_inspection.into(),
                ..Default::default()
            }),
        )
    }

    /// Sets the due date the item was opened with.
    fn due(&mut self, day: &str) -> &mut Self {
        if let Some(Payload::ItemOpened(opened)) =
            self.events.first_mut().and_then(|e| e.payload.as_mut())
        {
            opened.due_date = Some(date(day));
        }
        self
    }

    fn overdue(&mut self, day: &str) -> &mut Self {
        let id = self.id.clone();
        self.push(
            day,
            Payload::ItemOverdue(pb::ItemOverdue {
                item_id: id,
                due_date: None,
            }),
        )
    }
}

/// The whole history, in the order it is published: per aggregate out of
/// order in places.
pub fn history(ids: &Ids) -> Vec<EventEnvelope> {
    use pb::FindingKind as K;
    use pb::Grade as G;
    use pb::GradeScale::{FiveTier, FourTier};
    let h = "hertfordshire";
    let spec = |pillar, question, grade, scale, carried_over| JudgmentSpec {
        pillar,
        question,
        grade,
        scale,
        carried_over,
    };
    let mut out = vec![
        registered(
            h,
            "Hertfordshire Constabulary",
            &["kent", "essex"],
            "2018-03-01",
        ),
        registered("kent", "Kent Police", &["hertfordshire"], "2018-03-01"),
    ];
    // I1, in order.
    out.push(judgment(
        h,
        &ids.i1,
        1,
        "2017",
        "2018-03",
        "2018-03-22",
        spec("Effectiveness", "", G::Good, FourTier, false),
    ));
    out.push(judgment(
        h,
        &ids.i1,
        1,
        "2017",
        "2018-03",
        "2018-03-22",
        spec(
            "Effectiveness",
            "Investigating crime",
            G::RequiresImprovement,
            FourTier,
            false,
        ),
    ));
    out.push(indicator(
        h,
        &ids.i1,
        1,
        "2018-03",
        "2018-03-22",
        150.0,
        170.0,
    ));
    out.push(published(h, &ids.i1, "2017", "2018-03", "2018-03-22"));
    // I2: the replacement (version 2) arrives before the original.
    let v1 = [
        judgment(
            h,
            &ids.i2,
            1,
            "2018/19",
            "2019-09",
            "2019-09-27",
            spec("Effectiveness", "", G::Good, FourTier, false),
        ),
        judgment(
            h,
            &ids.i2,
            1,
            "2018/19",
            "2019-09",
            "2019-09-27",
            spec(
                "Effectiveness",
                "Investigating crime",
                G::Good,
                FourTier,
                false,
            ),
        ),
        judgment(
            h,
            &ids.i2,
            1,
            "2018/19",
            "2019-09",
            "2019-09-27",
            spec(
                "Effectiveness",
                "Protecting vulnerable people",
                G::Good,
                FourTier,
                true,
            ),
        ),
        indicator(h, &ids.i2, 1, "2019-09", "2019-09-27", 143.0, 175.0),
        published(h, &ids.i2, "2018/19", "2019-09", "2019-09-27"),
    ];
    let v2 = [
        judgment(
            h,
            &ids.i2,
            2,
            "2018/19",
            "2019-09",
            "2019-10-10",
            spec("Effectiveness", "", G::Good, FourTier, false),
        ),
        judgment(
            h,
            &ids.i2,
            2,
            "2018/19",
            "2019-09",
            "2019-10-10",
            spec(
                "Effectiveness",
                "Investigating crime",
                G::Outstanding,
                FourTier,
                false,
            ),
        ),
        judgment(
            h,
            &ids.i2,
            2,
            "2018/19",
            "2019-09",
            "2019-10-10",
            spec(
                "Effectiveness",
                "Protecting vulnerable people",
                G::Good,
                FourTier,
                true,
            ),
        ),
        indicator(h, &ids.i2, 2, "2019-09", "2019-10-10", 144.0, 175.0),
        envelope(
            h,
            "inspection",
            &ids.i2,
            2,
            "2019-10-10",
            Payload::InspectionReplaced(pb::InspectionReplaced {
                inspection_id: ids.i2.clone(),
                organisation_id: h.into(),
                ..Default::default()
            }),
        ),
    ];
    let (late, early) = v1.split_at(1);
    out.extend(v2);
    out.extend(early.iter().cloned());
    out.extend(late.iter().cloned());
    // I3 and Kent's inspection.
    out.push(judgment(
        h,
        &ids.i3,
        1,
        "2021/22",
        "2022-06",
        "2022-06-15",
        spec(
            "Effectiveness",
            "Investigating crime",
            G::Adequate,
            FiveTier,
            false,
        ),
    ));
    out.push(published(h, &ids.i3, "2021/22", "2022-06", "2022-06-15"));
    out.push(published("kent", &ids.k, "2018", "2018-12", "2018-12-05"));

    let [a, b, c, d, e, f] = &ids.items;
    let mut items = Vec::new();
    let mut item = ItemEvents::open(
        h,
        a,
        &ids.i1,
        K::AreaForImprovement,
        "Effectiveness",
        "2018-04-01",
    );
    item.status("2018-05-01", S::Open, S::InProgress)
        .verified("2019-06-01", "")
        .status("2019-06-01", S::InProgress, S::Closed);
    items.push(item);
    let mut item = ItemEvents::open(
        h,
        b,
        &ids.i1,
        K::AreaForImprovement,
        "Legitimacy",
        "2018-04-01",
    );
    item.due("2018-09-30")
        .overdue("2018-10-01")
        .verified("2019-10-20", &ids.i2)
        .status("2019-10-20", S::Open, S::Closed);
    items.push(item);
    let mut item = ItemEvents::open(
        h,
        c,
        &ids.i1,
        K::CauseOfConcern,
        "Effectiveness",
        "2018-04-01",
    );
    item.push(
        "2019-10-20",
        Payload::ItemSuperseded(pb::ItemSuperseded {
            item_id: c.clone(),
            ..Default::default()
        }),
    )
    .status("2019-10-20", S::Open, S::Superseded);
    items.push(item);
    let mut item = ItemEvents::open(
        h,
        d,
        &ids.i2,
        K::AreaForImprovement,
        "Effectiveness",
        "2019-10-01",
    );
    item.due("2020-03-31")
        .status("2019-11-01", S::Open, S::InProgress)
        .overdue("2020-04-01")
        .push(
            "2020-05-01",
            Payload::DueDateChanged(pb::DueDateChanged {
                item_id: d.clone(),
                due_date: Some(date("2020-12-31")),
                previous_due_date: None,
                reason: "revised".into(),
            }),
        )
        .overdue("2021-01-01");
    items.push(item);
    let mut item = ItemEvents::open(h, e, &ids.i2, K::Recommendation, "Efficiency", "2019-10-01");
    item.push(
        "2020-02-01",
        Payload::CompletionClaimed(pb::CompletionClaimed {
            item_id: e.clone(),
            ..Default::default()
        }),
    )
    .status("2020-02-01", S::Open, S::AwaitingVerification)
    .verified("2020-03-01", "")
    .status("2020-03-01", S::AwaitingVerification, S::Closed)
    .push(
        "2020-06-01",
        Payload::ItemReopened(pb::ItemReopened {
            item_id: e.clone(),
            reason: "evidence withdrawn".into(),
        }),
    )
    .status("2020-06-01", S::Closed, S::InProgress);
    items.push(item);
    items.push(ItemEvents::open(
        h,
        f,
        &ids.i3,
        K::AreaForImprovement,
        "Effectiveness",
        "2022-07-01",
    ));

    let k1 = Uuid::now_v7().to_string();
    let k2 = Uuid::now_v7().to_string();
    let mut item = ItemEvents::open(
        "kent",
        &k1,
        &ids.k,
        K::AreaForImprovement,
        "Effectiveness",
        "2019-01-01",
    );
    item.status("2019-01-11", S::Open, S::Closed);
    items.push(item);
    let mut item = ItemEvents::open(
        "kent",
        &k2,
        &ids.k,
        K::AreaForImprovement,
        "Legitimacy",
        "2019-01-01",
    );
    item.due("2019-05-31").overdue("2019-06-01");
    items.push(item);
    let x1 = Uuid::now_v7().to_string();
    items.push(ItemEvents::open(
        "essex",
        &x1,
        "",
        K::AreaForImprovement,
        "Efficiency",
        "2020-01-01",
    ));

    // Out of order: every item's events reversed, one item's shuffled.
    for (n, item) in items.into_iter().enumerate() {
        let mut events = item.events;
        match n % 3 {
            0 => events.reverse(),
            1 => events.rotate_left(1),
            _ => {}
        }
        out.extend(events);
    }
    out
}

/// A database, a stream and the service, for one test.
pub struct Harness {
    pub db: TestDatabase,
    pub test_bus: TestBus,
    pub bus: Bus,
    pub config: MetricsConfig,
    pub service: Option<RunningMetrics>,
}

impl Harness {
    pub async fn new() -> Harness {
        let db = TestDatabase::create().await;
        let test_bus = TestBus::new();
        let bus = test_bus.connect().await;
        let bus_config = test_bus.config();
        let config = MetricsConfig {
            common: CommonConfig {
                database_url: db.url().to_string(),
                nats_url: bus_config.nats_url.clone(),
                grpc_addr: Some("127.0.0.1:0".parse().expect("address")),
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
            metrics_http_addr: "127.0.0.1:0".parse().expect("address"),
        };
        Harness {
            db,
            test_bus,
            bus,
            config,
            service: None,
        }
    }

    pub async fn start(&mut self) {
        let running = closeout_metrics::start(self.config.clone(), std::future::pending())
            .await
            .expect("metrics service starts");
        self.service = Some(running);
    }

    pub async fn stop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop().await.expect("metrics service stops cleanly");
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.service.as_ref().expect("service running").addr
    }

    pub async fn client(
        &self,
    ) -> pb::metrics_service_client::MetricsServiceClient<closeout_testkit::AuthChannel> {
        pb::metrics_service_client::MetricsServiceClient::new(
            closeout_testkit::connect_authenticated(self.addr()).await,
        )
    }

    /// Publishes events as they are, each with its id as message id.
    pub async fn publish(&self, events: &[EventEnvelope]) {
        for event in events {
            self.bus.publish_event(event).await.expect("publish");
        }
    }

    /// Publishes an event again under another message id, so JetStream
    /// stores it twice and the consumer must see it as a duplicate.
    pub async fn publish_duplicate(&self, event: &EventEnvelope) {
        let subject = self.bus.subject_of(event).expect("subject");
        let headers =
            closeout_bus::event_headers(&format!("dup-{}", event.event_id), &event.event_type, "");
        self.bus
            .publish(subject, headers, event.encode_to_vec().into())
            .await
            .expect("publish duplicate");
    }

    /// Waits until both consumers have applied everything.
    pub async fn caught_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(
            closeout_metrics::wait_caught_up(&self.bus, deadline).await,
            "consumers did not catch up"
        );
    }

    pub async fn cleanup(mut self) {
        self.stop().await;
        self.test_bus.cleanup().await;
        self.db.drop_database().await;
    }
}

/// Everything the service answers for Hertfordshire and Kent, live and as
/// of a few days, for comparing two runs.
pub async fn all_answers(h: &Harness) -> Vec<String> {
    let mut client = h.client().await;
    let mut out = Vec::new();
    let days = [
        None,
        Some("2019-07-01"),
        Some("2019-10-05"),
        Some("2023-01-01"),
    ];
    for org in ["hertfordshire", "kent", "essex"] {
        for day in days {
            let as_of = day.map(date);
            let scorecard = client
                .get_scorecard(pb::GetScorecardRequest {
                    organisation_id: org.into(),
                    as_of,
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|s| (s.code(), s.message().to_string()));
            out.push(format!("{org} {day:?} scorecard {scorecard:?}"));
            let closure = client
                .get_closure_stats(pb::GetClosureStatsRequest {
                    organisation_id: org.into(),
                    programme: String::new(),
                    as_of,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|s| (s.code(), s.message().to_string()));
            out.push(format!("{org} {day:?} closure {closure:?}"));
            let peers = client
                .get_peer_comparison(pb::GetPeerComparisonRequest {
                    organisation_id: org.into(),
                    as_of,
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|s| (s.code(), s.message().to_string()));
            out.push(format!("{org} {day:?} peers {peers:?}"));
            let grades = client
                .get_grade_history(pb::GetGradeHistoryRequest {
                    organisation_id: org.into(),
                    as_of,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|s| (s.code(), s.message().to_string()));
            out.push(format!("{org} {day:?} grades {grades:?}"));
            let series = client
                .get_indicator_series(pb::GetIndicatorSeriesRequest {
                    organisation_id: org.into(),
                    measure: MEASURE.into(),
                    as_of,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|s| (s.code(), s.message().to_string()));
            out.push(format!("{org} {day:?} series {series:?}"));
        }
    }
    out
}

pub fn new_ids() -> Ids {
    Ids::new()
}
