//! `closeout-tracker`: runs the tracker service until SIGTERM or Ctrl-C.

use clap::Parser;
use closeout_tracker::{TrackerConfig, start};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = TrackerConfig::parse();
    let _telemetry = closeout_service::telemetry::init(config.common.log_format, "tracker");
    let running = match start(config, closeout_service::server::shutdown_signal()).await {
        Ok(running) => running,
        Err(error) => {
            tracing::error!(%error, "tracker service failed to start");
            return std::process::ExitCode::FAILURE;
        }
    };
    match running.wait().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "tracker service failed");
            std::process::ExitCode::FAILURE
        }
    }
}
