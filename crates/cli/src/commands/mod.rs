//! One module per group of subcommands.

pub mod dev;
pub mod findings;
pub mod health;
pub mod metrics;
pub mod proposals;
pub mod report;
pub mod tracker;

use crate::error::CliError;
use closeout_service::auth::{ORGANISATION_HEADER, ROLE_HEADER, SUBJECT_HEADER};
use tonic::transport::{Channel, Endpoint};

/// Who the command line acts as, sent as request metadata.
#[derive(clap::Args, Clone, Debug)]
pub struct Identity {
    /// Role to act in: inspectorate, inspected-body or viewer.
    #[arg(
        long,
        env = "CLOSEOUT_ROLE",
        default_value = "inspectorate",
        global = true
    )]
    pub role: String,
    /// Organisation an inspected body acts for.
    #[arg(
        long = "as-org",
        env = "CLOSEOUT_ORGANISATION",
        default_value = "",
        global = true
    )]
    pub organisation: String,
    /// Who is acting, for the audit trail.
    #[arg(
        long = "as",
        env = "CLOSEOUT_SUBJECT",
        default_value = "",
        global = true
    )]
    pub subject: String,
}

impl Identity {
    /// Wraps a request with the identity metadata.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, CliError> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        let mut put = |key: &'static str, value: &str| -> Result<(), CliError> {
            if value.is_empty() {
                return Ok(());
            }
            let value = value
                .parse()
                .map_err(|_| CliError::Usage(format!("{key} must be ASCII: {value:?}")))?;
            metadata.insert(key, value);
            Ok(())
        };
        put(ROLE_HEADER, &self.role)?;
        put(ORGANISATION_HEADER, &self.organisation)?;
        let subject = if self.subject.is_empty() {
            std::env::var("USER").unwrap_or_default()
        } else {
            self.subject.clone()
        };
        put(SUBJECT_HEADER, &subject)?;
        Ok(request)
    }
}

/// Connects to a gRPC server; `host:port` gets `http://` in front.
pub async fn connect(addr: &str) -> Result<Channel, CliError> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri.clone()).map_err(|e| CliError::Connect {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| CliError::Connect {
            addr: uri,
            reason: e.to_string(),
        })
}
