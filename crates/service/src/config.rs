//! Configuration shared by the three services, read once from flags and
//! environment variables (flags win). Each service adds its own options by
//! flattening [`CommonConfig`] into its clap parser.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Options every service has.
#[derive(Clone, Debug, Args)]
pub struct CommonConfig {
    /// PostgreSQL URL of this service's own database.
    #[arg(long, env = "CLOSEOUT_DATABASE_URL")]
    pub database_url: String,

    /// NATS server URL.
    #[arg(
        long,
        env = "CLOSEOUT_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "CLOSEOUT_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,

    /// JetStream stream holding every Closeout event.
    #[arg(long, env = "CLOSEOUT_STREAM", default_value = "CLOSEOUT")]
    pub stream_name: String,

    /// First token of every event subject.
    #[arg(long, env = "CLOSEOUT_SUBJECT_PREFIX", default_value = "closeout")]
    pub subject_prefix: String,

    /// Maximum connections in the PostgreSQL pool.
    #[arg(long, env = "CLOSEOUT_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Log format.
    #[arg(long, env = "CLOSEOUT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}
