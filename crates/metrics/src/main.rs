//! `closeout-metrics`: runs the metrics service until SIGTERM or Ctrl-C;
//! `closeout-metrics rebuild` drops its read models and replays the stream.

use clap::{Parser, Subcommand};
use closeout_metrics::{MetricsConfig, rebuild, start};
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
    let cli = Cli::parse();
    let _telemetry = closeout_service::telemetry::init(cli.config.common.log_format, "metrics");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Rebuild { timeout_secs } => {
            match rebuild(&cli.config, Duration::from_secs(timeout_secs)).await {
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
        Command::Serve => {
            let running = match start(cli.config, closeout_service::server::shutdown_signal()).await
            {
                Ok(running) => running,
                Err(error) => {
                    tracing::error!(%error, "metrics service failed to start");
                    return ExitCode::FAILURE;
                }
            };
            match running.wait().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "metrics service failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
