//! The tracker service: one tracked item per area for improvement, cause of
//! concern and recommendation, per organisation it is directed at, followed
//! through its lifecycle.
//!
//! - `consumer`: opens items from the findings service's events.
//! - `inspections`: what reconciliation keeps of each inspection (its
//!   findings and follow-up statements) and the matcher's inputs.
//! - `reconciliation`: proposals for earlier items on InspectionPublished,
//!   and the automatic-acceptance policy.
//! - `proposals`: listing, accepting and rejecting proposals.
//! - `lineage`: links across inspections and an item's lineage.
//! - `connections`: GetItem's and ListItems' connections, reused without
//!   sqlx's release ping.
//! - `commands`: lifecycle commands, checked by the domain state machine,
//!   the caller's role and organisation, and the expected version.
//! - `writer`: group commit of the commands' writes.
//! - `journal`: the event-sourced write path (history, current state,
//!   outbox and watch notification in one transaction).
//! - `store`: the current-state table and history queries.
//! - `watch`: the resumable WatchItems stream.
//! - `overdue`: the scheduler raising ItemOverdue once per missed due date.
//! - `grpc`: the TrackerService surface.
//!
//! Its parts, declared on the shared host (`closeout_service::host`,
//! which owns start-up and shutdown order): the outbox relay, the consumer
//! of findings events, the overdue scheduler, the WatchItems streams (ended
//! as soon as shutdown is asked for) and TrackerService.

pub(crate) mod commands;
pub(crate) mod connections;
pub(crate) mod consumer;
pub(crate) mod error;
pub(crate) mod grpc;
pub(crate) mod inspections;
pub(crate) mod journal;
pub(crate) mod lineage;
pub mod overdue;
pub(crate) mod proposals;
pub(crate) mod reconciliation;
pub(crate) mod renames;
pub(crate) mod store;
pub(crate) mod watch;
pub(crate) mod writer;

use clap::Parser;
use closeout_proto::tracker_service_server::TrackerServiceServer;
use closeout_service::{CommonConfig, Host, ServiceSpec, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// Name of the gRPC service, for health checks.
pub const SERVICE_NAME: &str = "closeout.v1.TrackerService";

/// A command's two statements (the read, then the write), for the bench's
/// ceiling.
pub use journal::{APPEND_IF_UNCHANGED, APPEND_MANY_IF_UNCHANGED};
pub use store::GET_ITEM;

/// Migrations of the tracker database, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The tracker service: gRPC on 50052 and Prometheus on 9092 by default.
pub const SERVICE: ServiceSpec = ServiceSpec::new("tracker", 50052, 9092, &MIGRATOR);

/// Default durable name of the consumer of findings events.
pub const DEFAULT_CONSUMER_NAME: &str = "tracker-findings";
/// Default seconds between runs of the overdue scheduler.
pub const DEFAULT_OVERDUE_INTERVAL_SECS: u64 = 60;
/// Default milliseconds between the back-stop polls of WatchItems streams.
pub const DEFAULT_WATCH_POLL_MS: u64 = 1000;
/// Default days an inspected body may move a due date by itself.
pub const DEFAULT_MAX_DUE_DATE_EXTENSION_DAYS: u32 = 90;

/// Configuration of `closeout-tracker`.
#[derive(Clone, Debug, Parser)]
#[command(name = "closeout-tracker", version, about = "Closeout tracker service")]
pub struct TrackerConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Durable name of the consumer of findings events.
    #[arg(long, env = "CLOSEOUT_TRACKER_CONSUMER", default_value = DEFAULT_CONSUMER_NAME)]
    pub consumer_name: String,

    /// Seconds between runs of the overdue scheduler.
    #[arg(long, env = "CLOSEOUT_OVERDUE_INTERVAL", default_value_t = DEFAULT_OVERDUE_INTERVAL_SECS)]
    pub overdue_interval_secs: u64,

    /// The date the overdue scheduler takes as today (YYYY-MM-DD), for
    /// tests and rehearsals; the UTC date when unset.
    #[arg(long, env = "CLOSEOUT_OVERDUE_TODAY")]
    pub overdue_today: Option<chrono::NaiveDate>,

    /// Milliseconds between the back-stop polls of WatchItems streams.
    #[arg(long, env = "CLOSEOUT_WATCH_POLL_MS", default_value_t = DEFAULT_WATCH_POLL_MS)]
    pub watch_poll_ms: u64,

    /// Organisations whose reconciliation proposals are accepted
    /// automatically at or above a score, e.g. `hertfordshire=0.95,kent=0.9`
    /// (stored in `reconciliation_policy`; empty: every proposal waits for
    /// a person).
    #[arg(long, env = "CLOSEOUT_AUTO_ACCEPT", default_value = "")]
    pub auto_accept: String,

    /// Days past the current due date (or today) an inspected body may
    /// move a due date by itself; later dates need the inspectorate.
    #[arg(long, env = "CLOSEOUT_MAX_DUE_DATE_EXTENSION_DAYS", default_value_t = DEFAULT_MAX_DUE_DATE_EXTENSION_DAYS)]
    pub max_due_date_extension_days: u32,

    /// Address of the Prometheus text endpoint (`GET /metrics`).
    #[arg(long, env = "CLOSEOUT_METRICS_HTTP_ADDR", default_value_t = SERVICE.default_metrics_http_addr)]
    pub metrics_http_addr: SocketAddr,
}

impl TrackerConfig {
    /// A configuration with every tracker option at its default.
    pub fn new(common: CommonConfig) -> Self {
        TrackerConfig {
            common,
            consumer_name: DEFAULT_CONSUMER_NAME.into(),
            overdue_interval_secs: DEFAULT_OVERDUE_INTERVAL_SECS,
            overdue_today: None,
            watch_poll_ms: DEFAULT_WATCH_POLL_MS,
            auto_accept: String::new(),
            max_due_date_extension_days: DEFAULT_MAX_DUE_DATE_EXTENSION_DAYS,
            metrics_http_addr: SERVICE.default_metrics_http_addr,
        }
    }
}

/// A running tracker service (used by `main` and by tests).
pub type RunningTracker = closeout_service::Running;

/// Starts the service; it runs until `stop` or until `signal` resolves.
pub async fn start(
    config: TrackerConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningTracker, StartError> {
    let policy = reconciliation::parse_policy(&config.auto_accept)
        .map_err(|e| StartError::Config(format!("CLOSEOUT_AUTO_ACCEPT: {e}")))?;
    let mut host = Host::connect(&SERVICE, &config.common, config.metrics_http_addr).await?;
    let pool = host.pool().clone();
    reconciliation::install_policy(&pool, &policy).await?;
    host.publish_outbox();
    let consumer = consumer::spawn(pool.clone(), host.bus().clone(), &config.consumer_name)?;
    host.consumer(&config.consumer_name, consumer);
    let scheduler = overdue::spawn(
        pool.clone(),
        overdue::Schedule {
            every: Duration::from_secs(config.overdue_interval_secs.max(1)),
            today: config.overdue_today,
        },
    );
    host.stop_after_serving(scheduler.stop());
    let (watchers, watchers_handle) = watch::start(
        pool.clone(),
        Duration::from_millis(config.watch_poll_ms.max(10)),
    );
    // Open WatchItems streams never end on their own.
    host.on_shutdown_signal(move || watchers_handle.stop());
    host.serve(TrackerServiceServer::new(
        grpc::TrackerApi::new(pool, watchers)
            .with_max_due_date_extension(config.max_due_date_extension_days),
    ));
    host.start(signal).await
}
