//! The metrics service: read models built only from events.
//!
//! It consumes every event of the stream (one durable consumer per source
//! service), stores each in an append-only history and folds it into
//! current-state read models, idempotently and version-aware; it answers
//! scorecards, closure statistics, peer comparisons and grade and indicator
//! series over gRPC, live or as of any date (folding the history up to the
//! end of that day). The folds ([`model`]) and the answers ([`queries`])
//! are pure; [`store`] and [`consume`] do the I/O.
//!
//! Start-up: connect to PostgreSQL, apply migrations and the applied-events
//! schema, connect to NATS and ensure the stream, start the consumers and
//! the Prometheus endpoint, then serve gRPC (MetricsService, health,
//! reflection). Shutdown: stop accepting, finish in-flight calls, stop the
//! consumers after the message in hand.
//!
//! [`rebuild`] drops the read models and replays the stream from the start.

pub mod consume;
pub mod error;
pub mod grpc;
pub mod model;
pub mod queries;
pub mod stats;
pub mod store;

use clap::Args;
use closeout_proto::metrics_service_server::MetricsServiceServer;
use closeout_service::CommonConfig;
use closeout_service::metrics_http::{self, Registry, RpcMetricsLayer};
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Default gRPC address of the metrics service.
pub const DEFAULT_GRPC_ADDR: &str = "0.0.0.0:50053";
/// Default address of its Prometheus endpoint.
pub const DEFAULT_METRICS_HTTP_ADDR: &str = "0.0.0.0:9093";

/// Migrations of the metrics database, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Configuration of `closeout-metrics`.
#[derive(Clone, Debug, Args)]
pub struct MetricsConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Address of the Prometheus endpoint, `GET /metrics` (port 0 picks a
    /// free port).
    #[arg(long, env = "CLOSEOUT_METRICS_HTTP_ADDR", default_value = DEFAULT_METRICS_HTTP_ADDR)]
    pub metrics_http_addr: SocketAddr,
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
    #[error("rebuild: {0}")]
    Rebuild(String),
    #[error("service task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Backbone(#[from] closeout_service::backbone::BackboneError),
}

/// A running metrics service (used by `main` and by tests).
pub type RunningMetrics = closeout_service::server::Running<StartError>;

async fn connect(config: &MetricsConfig) -> Result<(PgPool, closeout_bus::Bus), StartError> {
    Ok(closeout_service::backbone::connect(&config.common, &MIGRATOR, "metrics").await?)
}

/// Registers the service's own figures: per consumer events applied,
/// duplicates, dead letters, failures and lag; the size of the history.
fn watch(
    registry: &Registry,
    pool: &PgPool,
    bus: &closeout_bus::Bus,
    consumers: &consume::Consumers,
) {
    for (name, stats) in consumers.stats() {
        closeout_service::bus_metrics::watch_consumer(registry, bus.clone(), name, &[name], stats);
    }
    let r = registry.clone();
    let pool = pool.clone();
    registry.add_collector(move || {
        let (r, pool) = (r.clone(), pool.clone());
        async move {
            if let Ok(n) = store::event_count(&pool).await {
                r.gauge_set(
                    "closeout_metrics_history_events",
                    "Events stored in the metrics history.",
                    &[],
                    n as f64,
                );
            }
        }
    });
}

/// Starts the service; it runs until `stop` or until `signal` resolves.
pub async fn start(
    config: MetricsConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningMetrics, StartError> {
    let (pool, bus) = connect(&config).await?;
    let consumers = consume::Consumers::spawn(&pool, &bus)?;

    let registry = Registry::new();
    watch(&registry, &pool, &bus, &consumers);
    let prometheus = metrics_http::serve(config.metrics_http_addr, registry.clone())
        .await
        .map_err(|source| StartError::Bind {
            addr: config.metrics_http_addr,
            source,
        })?;
    let metrics_http_addr = prometheus.addr;

    let addr = config
        .common
        .grpc_addr
        .unwrap_or_else(|| DEFAULT_GRPC_ADDR.parse().expect("constant address parses"));
    let listener = closeout_service::server::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;

    let (reporter, health) = tonic_health::server::health_reporter();
    let health_task = closeout_service::backbone::watch_health(
        reporter,
        "closeout.v1.MetricsService",
        pool.clone(),
        bus.clone(),
    );
    let reflection = closeout_service::server::reflection_service()?;
    let service = MetricsServiceServer::new(grpc::MetricsApi::new(pool.clone()));

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            tokio::select! {
                _ = shutdown_rx => {},
                _ = signal => {},
            }
        };
        tracing::info!(addr = %local, prometheus = %metrics_http_addr, "metrics service listening");
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
        consumers.stop().await;
        prometheus.stop();
        pool.close().await;
        tracing::info!("metrics service stopped");
        served.map_err(StartError::from)
    });
    Ok(RunningMetrics::new(
        local,
        metrics_http_addr,
        shutdown_tx,
        task,
    ))
}

/// What a rebuild did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// Events in the history afterwards.
    pub events: i64,
    pub took: Duration,
}

/// Drops the read models, the history and the consumers' applied-event
/// records, deletes the durable consumers, and replays the stream from the
/// start until both consumers have nothing pending (or `timeout`).
///
/// Run it with the service stopped. (Were one running, nothing would be
/// lost: the tables are emptied before the consumers are deleted, so any
/// event applied in between is recorded and the replay skips it.)
pub async fn rebuild(config: &MetricsConfig, timeout: Duration) -> Result<Rebuilt, StartError> {
    let started = Instant::now();
    let (pool, bus) = connect(config).await?;
    let names: Vec<&str> = consume::CONSUMERS.iter().map(|(name, _)| *name).collect();
    store::reset(&pool, &names).await?;
    consume::delete_consumers(&bus)
        .await
        .map_err(StartError::Rebuild)?;
    let consumers = consume::Consumers::spawn(&pool, &bus)?;
    let caught_up = wait_caught_up(&bus, started + timeout).await;
    consumers.stop().await;
    if !caught_up {
        return Err(StartError::Rebuild(format!(
            "replay did not catch up within {timeout:?}"
        )));
    }
    let events = store::event_count(&pool).await?;
    pool.close().await;
    Ok(Rebuilt {
        events,
        took: started.elapsed(),
    })
}

/// Waits until every consumer exists and has nothing pending.
pub async fn wait_caught_up(bus: &closeout_bus::Bus, deadline: Instant) -> bool {
    loop {
        let mut done = true;
        for (name, _) in consume::CONSUMERS {
            if closeout_service::bus_metrics::pending(bus, name).await != Some(0) {
                done = false;
            }
        }
        if done {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
