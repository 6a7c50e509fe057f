//! Shared set-up of the tracker's integration tests: a private database
//! and stream per test, the service on a free port, a gRPC client with
//! role metadata, and builders of the findings events the tracker consumes.

#![allow(dead_code)]

use closeout_bus::{Bus, EventMeta, new_event};
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb, event_envelope::Payload};
use closeout_service::CommonConfig;
use closeout_service::config::LogFormat;
use closeout_testkit::{TestBus, TestDatabase};
use closeout_tracker::{RunningTracker, TrackerConfig};
use std::future::Future;
// Every call carries a token (a viewer's unless the request has its own).
use closeout_testkit::AuthChannel as Channel;

/// One test's world: its database, its stream, the service and a client.
pub struct World {
    pub db: TestDatabase,
    pub test_bus: TestBus,
    pub bus: Bus,
    pub tracker: Option<RunningTracker>,
    pub client: TrackerServiceClient<Channel>,
}

/// The tracker configuration for this test's database and stream.
pub fn config(db: &TestDatabase, test_bus: &TestBus) -> TrackerConfig {
    let bus = test_bus.config();
    let mut config = TrackerConfig::new(CommonConfig {
        database_url: db.url().to_string(),
        nats_url: bus.nats_url,
        grpc_addr: Some("127.0.0.1:0".parse().expect("address")),
        stream_name: bus.stream_name,
        subject_prefix: bus.subject_prefix,
        database_max_connections: 10,
        log_format: LogFormat::Text,
        auth: closeout_service::config::AuthConfig::trusting(vec![
            closeout_testkit::token_public_key().to_path_buf(),
        ]),
        tls: Default::default(),
        reflection_addr: None,
    });
    config.watch_poll_ms = 200;
    config.metrics_http_addr = "127.0.0.1:0".parse().expect("address");
    config
}

/// Starts a tracker and connects a client to it.
pub async fn start(config: TrackerConfig) -> (RunningTracker, TrackerServiceClient<Channel>) {
    let tracker = closeout_tracker::start(config, std::future::pending())
        .await
        .expect("tracker starts");
    let client = connect(tracker.addr).await;
    (tracker, client)
}

/// A client of the service at `addr`.
pub async fn connect(addr: std::net::SocketAddr) -> TrackerServiceClient<Channel> {
    TrackerServiceClient::new(closeout_testkit::connect_authenticated(addr).await)
}

impl World {
    /// A fresh database and stream, and a tracker with default options.
    pub async fn new() -> World {
        World::with(|_| {}).await
    }

    /// Like [`World::new`], adjusting the configuration first.
    pub async fn with(adjust: impl FnOnce(&mut TrackerConfig)) -> World {
        let db = TestDatabase::create().await;
        let test_bus = TestBus::new();
        let bus = test_bus.connect().await;
        let mut config = config(&db, &test_bus);
        adjust(&mut config);
        let (tracker, client) = start(config).await;
        World {
            db,
            test_bus,
            bus,
            tracker: Some(tracker),
            client,
        }
    }

    /// Stops the service and removes the database and the stream.
    pub async fn finish(mut self) {
        if let Some(tracker) = self.tracker.take() {
            tracker.stop().await.expect("tracker stops cleanly");
        }
        self.db.drop_database().await;
        self.test_bus.cleanup().await;
    }

    /// Publishes findings events to this test's stream.
    pub async fn publish(&self, events: &[pb::EventEnvelope]) {
        for event in events {
            self.bus.publish_event(event).await.expect("publish");
        }
    }

    /// Every item, all pages.
    pub async fn items(&self, request: pb::ListItemsRequest) -> Vec<pb::TrackedItem> {
        let mut client = self.client.clone();
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_items(pb::ListItemsRequest {
                    page_token: token.clone(),
                    page_size: 3,
                    ..request.clone()
                })
                .await
                .expect("list items")
                .into_inner();
            all.extend(page.items);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }

    /// Waits until `organisation` has `count` items; returns them.
    pub async fn wait_for_items(&self, organisation: &str, count: usize) -> Vec<pb::TrackedItem> {
        let request = pb::ListItemsRequest {
            organisation_id: organisation.into(),
            ..Default::default()
        };
        eventually(|| async {
            let items = self.items(request.clone()).await;
            (items.len() >= count).then_some(items)
        })
        .await
    }

    /// An item's history.
    pub async fn history(&self, item_id: &str) -> Vec<pb::EventEnvelope> {
        self.client
            .clone()
            .get_item_history(pb::GetItemHistoryRequest {
                item_id: item_id.into(),
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner()
            .events
    }
}

#[allow(unused_imports)] // not every test binary calls as the inspectorate
pub use closeout_testkit::inspectorate;

/// The testkit's `eventually`, for a tracker condition.
pub async fn eventually<T, F, Fut>(check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    closeout_testkit::eventually("a tracker condition", check).await
}

/// The testkit's `as_role`, message first as these tests write it.
pub fn as_role<T>(message: T, role: &str, organisation: &str) -> tonic::Request<T> {
    closeout_testkit::as_role(role, organisation, message)
}

/// The testkit's `inspected_body`, message first as these tests write it.
pub fn body<T>(message: T, organisation: &str) -> tonic::Request<T> {
    closeout_testkit::inspected_body(organisation, message)
}

/// An envelope as the findings service would publish it.
pub fn findings_event(
    organisation: &str,
    aggregate: &str,
    id: &str,
    payload: Payload,
) -> pb::EventEnvelope {
    let actor = pb::Actor {
        subject: "inspector:test".into(),
        role: pb::Role::Inspectorate as i32,
        organisation_id: String::new(),
    };
    new_event(
        EventMeta {
            source_service: "findings",
            organisation_id: organisation,
            aggregate_type: aggregate,
            aggregate_id: id,
            aggregate_version: 1,
            actor: &actor,
            correlation_id: "test-import",
            causation_id: "test-import",
        },
        payload,
    )
}

/// OrganisationRegistered for a police force (or another kind).
pub fn organisation_registered(id: &str, kind: pb::OrganisationKind) -> pb::EventEnvelope {
    findings_event(
        id,
        "organisation",
        id,
        Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(pb::Organisation {
                id: id.into(),
                name: format!("{id} constabulary"),
                kind: kind as i32,
                most_similar_group: Vec::new(),
            }),
        }),
    )
}

/// FindingRecorded of `kind` for `organisation`, with a new finding id.
pub fn finding_recorded(
    organisation: &str,
    inspection: &str,
    kind: pb::FindingKind,
    text: &str,
    due: Option<pb::CalendarDate>,
) -> pb::EventEnvelope {
    let finding_id = uuid::Uuid::now_v7().to_string();
    findings_event(
        organisation,
        "finding",
        &finding_id,
        Payload::FindingRecorded(pb::FindingRecorded {
            finding_id: finding_id.clone(),
            inspection_id: inspection.into(),
            organisation_id: organisation.into(),
            kind: kind as i32,
            pillar: "Effectiveness".into(),
            question: "Investigating crime".into(),
            text: text.into(),
            deadline: String::new(),
            due_date: due,
            parent_finding_id: String::new(),
            addressed_to_all: kind == pb::FindingKind::NationalRecommendation,
            line_start: 1,
            line_end: 2,
            period: "2018/19".into(),
            published: "2019-09".into(),
        }),
    )
}

/// Opens one item for `organisation` and returns it.
pub async fn open_one(
    world: &World,
    organisation: &str,
    due: Option<pb::CalendarDate>,
) -> pb::TrackedItem {
    let before = world
        .items(pb::ListItemsRequest {
            organisation_id: organisation.into(),
            ..Default::default()
        })
        .await
        .len();
    world
        .publish(&[finding_recorded(
            organisation,
            &uuid::Uuid::now_v7().to_string(),
            pb::FindingKind::AreaForImprovement,
            "The force should improve how it investigates crime.",
            due,
        )])
        .await;
    let items = world.wait_for_items(organisation, before + 1).await;
    items.last().cloned().expect("an item")
}

/// The last sequence of the log in its order (committed, maybe not yet
/// released to streams).
pub async fn last_sequence(world: &World) -> u64 {
    let last: i64 = sqlx::query_scalar(
        "SELECT sequence FROM item_events ORDER BY watch_xid DESC, sequence DESC LIMIT 1",
    )
    .fetch_one(world.db.pool())
    .await
    .expect("log");
    last as u64
}

/// One writer per item, all at once, each assigning its item's owner
/// `rounds` times from the item's version, `pause` after each.
pub fn spawn_owner_writers(
    world: &World,
    items: Vec<pb::TrackedItem>,
    rounds: u64,
    pause: std::time::Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    items
        .into_iter()
        .map(|item| {
            let mut client = world.client.clone();
            tokio::spawn(async move {
                for version in item.version..item.version + rounds {
                    client
                        .assign_owner(inspectorate(pb::AssignOwnerRequest {
                            item_id: item.id.clone(),
                            expected_version: version,
                            owner: format!("owner {version}"),
                        }))
                        .await
                        .expect("assign");
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            })
        })
        .collect()
}
