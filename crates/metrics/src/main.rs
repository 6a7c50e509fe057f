//! `closeout-metrics`: runs the metrics service until SIGTERM or Ctrl-C;
//! `closeout-metrics rebuild` drops its read models and replays the stream.

use clap::{Parser, Subcommand};
use closeout_metrics::{MetricsConfig, SERVICE, rebuild, start};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "closeout-metrics", version, about = "Closeout metrics service")]
struct Cli {
    #[command(flatten)]
    config: MetricsConfig,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC and Prometheus (the default).
    Serve,
    /// Drop the read models and replay every event from the start of the
    /// stream, then exit. Stop the service first.
    Rebuild {
        /// Give up if the replay has not caught up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { config, command } = Cli::parse();
    let log_format = config.common.log_format;
    match command.unwrap_or(Command::Serve) {
        Command::Serve => {
            closeout_service::run_main(&SERVICE, log_format, |signal| start(config, signal)).await
        }
        Command::Rebuild { timeout_secs } => {
            let _telemetry = closeout_service::telemetry::init(log_format, SERVICE.name);
            match rebuild(&config, Duration::from_secs(timeout_secs)).await {
                Ok(done) => {
                    tracing::info!(events = done.events, took = ?done.took, "rebuild complete");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    tracing::error!(%error, "rebuild failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
