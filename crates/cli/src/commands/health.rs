//! `closeout health --addr ADDR [--service NAME]`: asks a server's standard
//! gRPC health service; exits 0 only when it answers SERVING. Used by the
//! compose health checks.

use crate::commands::{TlsArgs, connect};
use crate::error::CliError;
use clap::Args;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Args)]
pub struct HealthArgs {
    /// Server address, e.g. http://127.0.0.1:50051.
    #[arg(long, env = "CLOSEOUT_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Service to ask about; empty means the whole server.
    #[arg(long, default_value = "")]
    service: String,
    #[command(flatten)]
    tls: TlsArgs,
}

pub async fn run(args: HealthArgs) -> Result<(), CliError> {
    let channel = connect(&args.addr, &args.tls.client_tls(None)).await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service,
        })
        .await?
        .into_inner();
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    println!("{}", status.as_str_name());
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(CliError::Other(format!(
            "{} is {}",
            args.addr,
            status.as_str_name()
        )))
    }
}
