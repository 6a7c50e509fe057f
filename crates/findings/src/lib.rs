//! The findings service: owns organisations, inspections, judgments,
//! findings, follow-up statements, context indicators and the source
//! documents they came from. Imports reports through the parser, stores
//! them in PostgreSQL and announces every change through the outbox.
//!
//! Its parts, declared on the shared host (`closeout_service::host`,
//! which owns start-up and shutdown order): the outbox relay and
//! FindingsService.

pub(crate) mod error;
// Public only because `EventBatch::events` is never called (dead code);
// make it pub(crate) once that method goes.
pub mod events;
pub(crate) mod grpc;
pub(crate) mod import;
pub(crate) mod record;
pub(crate) mod renames;
pub(crate) mod store;
pub mod successions;

use clap::Parser;
use closeout_proto::findings_service_server::FindingsServiceServer;
use closeout_service::{CommonConfig, Host, ServiceSpec, StartError};
use std::future::Future;
use std::net::SocketAddr;

/// Migrations of the findings database, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The findings service: gRPC on 50051 and Prometheus on 9091 by default.
pub const SERVICE: ServiceSpec = ServiceSpec::new("findings", 50051, 9091, &MIGRATOR);

/// Largest report ImportReport accepts by default, in bytes.
pub const DEFAULT_MAX_REPORT_BYTES: usize = 5 * 1024 * 1024;

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
    #[arg(long, env = "CLOSEOUT_METRICS_HTTP_ADDR", default_value_t = SERVICE.default_metrics_http_addr)]
    pub metrics_http_addr: SocketAddr,
    /// Largest report ImportReport accepts, in bytes.
    #[arg(long, env = "CLOSEOUT_MAX_REPORT_BYTES", default_value_t = DEFAULT_MAX_REPORT_BYTES)]
    pub max_report_bytes: usize,
}

/// A running findings service (used by `main` and by tests).
pub type RunningFindings = closeout_service::Running;

/// Starts the service; it runs until `stop` or until `signal` resolves.
pub async fn start(
    config: FindingsConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningFindings, StartError> {
    let mut host = Host::connect(&SERVICE, &config.common, config.metrics_http_addr).await?;
    host.publish_outbox();
    // Renames recorded by migrations (0018), announced once, before the
    // known successions so that those name organisations already moved.
    renames::announce(host.pool())
        .await
        .map_err(|e| StartError::Service(format!("announcing organisation renames: {e}")))?;
    // Known successions (data/successions.toml), applied idempotently.
    let known = successions::known(successions::KNOWN)
        .map_err(|e| StartError::Service(format!("known successions: {e}")))?;
    successions::apply_known(host.pool(), &known)
        .await
        .map_err(|e| StartError::Service(format!("applying known successions: {e}")))?;
    let api = grpc::FindingsApi::new(
        host.pool().clone(),
        import::ImportPolicy {
            max_report_bytes: config.max_report_bytes,
        },
    );
    // Room above the report limit for the rest of the request, so an
    // oversized report gets our clear error rather than a transport one.
    let max_message = config.max_report_bytes.saturating_add(1024 * 1024);
    host.serve(
        FindingsServiceServer::new(api)
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(64 * 1024 * 1024),
    );
    host.start(signal).await
}

/// A report parsed as ImportReport parses it, ready for [`store_parsed`].
/// For the bench's ceiling of ImportReport: the same durable SQL with no
/// gRPC, no relay and no consumers around it.
#[doc(hidden)]
pub struct ParsedImport {
    request: closeout_proto::ImportReportRequest,
    read: import::ReadReport,
}

/// Parses `text` as ImportReport would (default limits).
#[doc(hidden)]
pub fn parse_for_import(text: String) -> Result<ParsedImport, String> {
    let request = closeout_proto::ImportReportRequest {
        text,
        source_name: "closeout-bench".into(),
        ..Default::default()
    };
    let read = import::parse_request(&request, &import::ImportPolicy::default())
        .map_err(|e| e.to_string())?;
    Ok(ParsedImport { request, read })
}

/// Stores `parsed` on `pool` (a findings database with the outbox
/// installed) exactly as ImportReport does; true if it made an inspection.
#[doc(hidden)]
pub async fn store_parsed(pool: &sqlx::PgPool, parsed: &ParsedImport) -> Result<bool, String> {
    let batch = events::EventBatch::new(
        closeout_proto::Actor::default(),
        uuid::Uuid::now_v7().to_string(),
    );
    import::import(pool, &parsed.request, &parsed.read, batch)
        .await
        .map(|response| response.created)
        .map_err(|e| e.to_string())
}
