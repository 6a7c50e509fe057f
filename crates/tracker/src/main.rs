//! `closeout-tracker`: runs the tracker service until SIGTERM or Ctrl-C.

use clap::Parser;
use closeout_tracker::{SERVICE, TrackerConfig, start};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = TrackerConfig::parse();
    let log_format = config.common.log_format;
    closeout_service::run_main(&SERVICE, log_format, |signal| start(config, signal)).await
}
