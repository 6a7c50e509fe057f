//! `closeout-notify`: runs the notify service until SIGTERM or Ctrl-C.

use clap::Parser;
use closeout_notify::{NotifyConfig, SERVICE, start};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = NotifyConfig::parse();
    let log_format = config.common.log_format;
    closeout_service::run_main(&SERVICE, log_format, |signal| start(config, signal)).await
}
