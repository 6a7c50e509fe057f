//! The findings service: owns organisations, inspections, judgments,
//! findings, follow-up statements, context indicators and the source
//! documents they came from. Imports reports through the parser, stores
//! them in PostgreSQL and announces every change through the outbox.
//!
//! Start-up: connect to PostgreSQL, apply migrations and the outbox schema,
//! connect to NATS and ensure the stream, start the outbox relay, then serve
//! gRPC (FindingsService, health, reflection). Shutdown: stop accepting,
//! finish in-flight calls, drain the relay.

pub mod error;
pub mod events;
pub mod grpc;
pub mod import;
pub mod record;
pub mod store;

use clap::Parser;
use closeout_proto::findings_service_server::FindingsServiceServer;
use closeout_service::CommonConfig;
use closeout_service::metrics_http::{self, Registry, RpcMetricsLayer};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// Default gRPC address of the findings service.
pub const DEFAULT_GRPC_ADDR: &str = "0.0.0.0:50051";

/// Migrations of the findings database, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Configuration of `closeout-findings`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "closeout-findings",
    version,
    about = "Closeout findings service"
)]
pub struct FindingsConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Address of the Prometheus text endpoint (`GET /metrics`).
    #[arg(
        long,
        env = "CLOSEOUT_METRICS_HTTP_ADDR",
        default_value = "0.0.0.0:9091"
    )]
    pub metrics_http_addr: SocketAddr,
    /// Largest report ImportReport accepts, in bytes.
    #[arg(long, env = "CLOSEOUT_MAX_REPORT_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_report_bytes: usize,
}

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("service task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Backbone(#[from] closeout_service::backbone::BackboneError),
}

/// A running findings service (used by `main` and by tests).
pub type RunningFindings = closeout_service::server::Running<StartError>;

/// Starts the service; it runs until `stop` or until `signal` resolves.
pub async fn start(
    config: FindingsConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningFindings, StartError> {
    let common = &config.common;
    let (pool, bus) = closeout_service::backbone::connect(common, &MIGRATOR, "findings").await?;
    let relay = closeout_bus::Relay::spawn(pool.clone(), bus.clone(), Default::default());

    let registry = Registry::new();
    closeout_service::bus_metrics::watch_outbox(&registry, pool.clone());
    closeout_service::bus_metrics::watch_relay(&registry, relay.stats());
    let prometheus = metrics_http::serve(config.metrics_http_addr, registry.clone())
        .await
        .map_err(|source| StartError::Bind {
            addr: config.metrics_http_addr,
            source,
        })?;
    let metrics_http_addr = prometheus.addr;

    let addr = common
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
        "closeout.v1.FindingsService",
        pool.clone(),
        bus.clone(),
    );
    let reflection = closeout_service::server::reflection_service()?;
    let api = grpc::FindingsApi::new(
        pool.clone(),
        import::ImportPolicy {
            max_report_bytes: config.max_report_bytes,
        },
    );
    // Room above the report limit for the rest of the request, so an
    // oversized report gets our clear error rather than a transport one.
    let max_message = config.max_report_bytes + 1024 * 1024;
    let service = FindingsServiceServer::new(api)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(64 * 1024 * 1024);

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            tokio::select! {
                _ = shutdown_rx => {},
                _ = signal => {},
            }
        };
        tracing::info!(addr = %local, "findings service listening");
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
        // In-flight calls are done; publish what they committed.
        relay.drain_and_stop(Duration::from_secs(10)).await;
        pool.close().await;
        prometheus.stop();
        tracing::info!("findings service stopped");
        served.map_err(StartError::from)
    });
    Ok(RunningFindings::new(
        local,
        metrics_http_addr,
        shutdown_tx,
        task,
    ))
}
