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
//! - `commands`: lifecycle commands, checked by the domain state machine,
//!   the caller's role and organisation, and the expected version.
//! - `journal`: the event-sourced write path (history, current state,
//!   outbox and watch notification in one transaction).
//! - `store`: the current-state table and history queries.
//! - `watch`: the resumable WatchItems stream.
//! - `overdue`: the scheduler raising ItemOverdue once per missed due date.
//! - `grpc`: the TrackerService surface.
//!
//! Start-up: connect to PostgreSQL, apply migrations and the outbox schema,
//! connect to NATS and ensure the stream, start the relay, the consumer, the
//! overdue scheduler and the LISTEN task, then serve gRPC (TrackerService,
//! health, reflection). Shutdown: stop accepting and end watch streams,
//! finish in-flight calls, stop the consumer and the scheduler, drain the
//! relay.

pub mod commands;
pub mod consumer;
pub mod error;
pub mod grpc;
pub mod inspections;
pub mod journal;
pub mod lineage;
pub mod overdue;
pub mod proposals;
pub mod reconciliation;
pub mod store;
pub mod watch;

use clap::Parser;
use closeout_proto::tracker_service_server::TrackerServiceServer;
use closeout_service::CommonConfig;
use closeout_service::metrics_http::{self, Registry, RpcMetricsLayer};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// Default gRPC address of the tracker service.
pub const DEFAULT_GRPC_ADDR: &str = "0.0.0.0:50052";

/// Name of the gRPC service, for health checks.
pub const SERVICE_NAME: &str = "closeout.v1.TrackerService";

/// Migrations of the tracker database, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Configuration of `closeout-tracker`.
#[derive(Clone, Debug, Parser)]
#[command(name = "closeout-tracker", version, about = "Closeout tracker service")]
pub struct TrackerConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Durable name of the consumer of findings events.
    #[arg(
        long,
        env = "CLOSEOUT_TRACKER_CONSUMER",
        default_value = "tracker-findings"
    )]
    pub consumer_name: String,

    /// Seconds between runs of the overdue scheduler.
    #[arg(long, env = "CLOSEOUT_OVERDUE_INTERVAL", default_value_t = 60)]
    pub overdue_interval_secs: u64,

    /// The date the overdue scheduler takes as today (YYYY-MM-DD), for
    /// tests and rehearsals; the UTC date when unset.
    #[arg(long, env = "CLOSEOUT_OVERDUE_TODAY")]
    pub overdue_today: Option<chrono::NaiveDate>,

    /// Milliseconds between the back-stop polls of WatchItems streams.
    #[arg(long, env = "CLOSEOUT_WATCH_POLL_MS", default_value_t = 1000)]
    pub watch_poll_ms: u64,

    /// Organisations whose reconciliation proposals are accepted
    /// automatically at or above a score, e.g. `hertfordshire=0.95,kent=0.9`
    /// (stored in `reconciliation_policy`; empty: every proposal waits for
    /// a person).
    #[arg(long, env = "CLOSEOUT_AUTO_ACCEPT", default_value = "")]
    pub auto_accept: String,

    /// Address of the Prometheus text endpoint (`GET /metrics`).
    #[arg(
        long,
        env = "CLOSEOUT_METRICS_HTTP_ADDR",
        default_value = "0.0.0.0:9092"
    )]
    pub metrics_http_addr: SocketAddr,
}

impl TrackerConfig {
    /// A configuration with every tracker option at its default.
    pub fn new(common: CommonConfig) -> Self {
        TrackerConfig {
            common,
            consumer_name: "tracker-findings".into(),
            overdue_interval_secs: 60,
            overdue_today: None,
            watch_poll_ms: 1000,
            auto_accept: String::new(),
            metrics_http_addr: SocketAddr::from(([0, 0, 0, 0], 9092)),
        }
    }
}

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("event bus: {0}")]
    Bus(#[from] closeout_bus::BusError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("service task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Backbone(#[from] closeout_service::backbone::BackboneError),
    #[error("configuration: {0}")]
    Config(String),
}

/// A running tracker service (used by `main` and by tests).
pub type RunningTracker = closeout_service::server::Running<StartError>;

/// Starts the service; it runs until `stop` or until `signal` resolves.
pub async fn start(
    config: TrackerConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningTracker, StartError> {
    let common = &config.common;
    let policy = reconciliation::parse_policy(&config.auto_accept)
        .map_err(|e| StartError::Config(format!("CLOSEOUT_AUTO_ACCEPT: {e}")))?;
    let addr = common
        .grpc_addr
        .unwrap_or_else(|| DEFAULT_GRPC_ADDR.parse().expect("constant address parses"));
    let listener = closeout_service::server::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let reflection = closeout_service::server::reflection_service()?;
    let (pool, bus) = closeout_service::backbone::connect(common, &MIGRATOR, "tracker").await?;
    reconciliation::install_policy(&pool, &policy).await?;
    let relay = closeout_bus::Relay::spawn(pool.clone(), bus.clone(), Default::default());
    let consumer = consumer::spawn(pool.clone(), bus.clone(), &config.consumer_name)?;

    let registry = Registry::new();
    closeout_service::bus_metrics::watch_outbox(&registry, pool.clone());
    closeout_service::bus_metrics::watch_relay(&registry, relay.stats());
    closeout_service::bus_metrics::watch_consumer(
        &registry,
        bus.clone(),
        &config.consumer_name,
        &[&config.consumer_name],
        consumer.stats(),
    );
    let prometheus = metrics_http::serve(config.metrics_http_addr, registry.clone())
        .await
        .map_err(|source| StartError::Bind {
            addr: config.metrics_http_addr,
            source,
        })?;
    let metrics_http_addr = prometheus.addr;
    let scheduler = overdue::spawn(
        pool.clone(),
        overdue::Schedule {
            every: Duration::from_secs(config.overdue_interval_secs.max(1)),
            today: config.overdue_today,
        },
    );
    let (watchers, watchers_handle) = watch::start(
        pool.clone(),
        Duration::from_millis(config.watch_poll_ms.max(10)),
    );

    let (reporter, health) = tonic_health::server::health_reporter();
    let health_task =
        closeout_service::backbone::watch_health(reporter, SERVICE_NAME, pool.clone(), bus.clone());
    let service = TrackerServiceServer::new(grpc::TrackerApi::new(pool.clone(), watchers));

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            tokio::select! {
                _ = shutdown_rx => {},
                _ = signal => {},
            }
            // Open WatchItems streams never end on their own.
            watchers_handle.stop();
        };
        tracing::info!(addr = %local, "tracker service listening");
        let served = tonic::transport::Server::builder()
            .trace_fn(closeout_service::telemetry::grpc_request_span)
            .layer(RpcMetricsLayer::new(registry))
            .layer(closeout_service::server::VersionLayer)
            .add_service(health)
            .add_service(reflection)
            .add_service(service)
            .serve_with_incoming_shutdown(closeout_service::server::incoming(listener), stop)
            .await;
        health_task.abort();
        consumer.stop().await;
        scheduler.stop().await;
        // In-flight calls are done; publish what they committed.
        relay.drain_and_stop(Duration::from_secs(10)).await;
        pool.close().await;
        prometheus.stop();
        tracing::info!("tracker service stopped");
        served.map_err(StartError::from)
    });
    Ok(RunningTracker::new(
        local,
        metrics_http_addr,
        shutdown_tx,
        task,
    ))
}
