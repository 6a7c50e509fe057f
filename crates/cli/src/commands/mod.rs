//! One module per group of subcommands, and what they share: who acts
//! ([`Identity`]), connecting to a service, and where the tracker is
//! ([`TrackerServer`], used by items, lifecycle, watch and proposals).

pub mod dev;
pub mod findings;
pub mod health;
pub mod import;
pub mod items;
pub mod lifecycle;
pub mod metrics;
pub mod proposals;
pub mod report;
pub mod subscriptions;
pub mod successions;
pub mod watch;

use crate::error::CliError;
use closeout_proto as pb;
use closeout_proto::tracker_service_client::TrackerServiceClient;
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

/// Where the tracker service is, who acts, and how to print.
#[derive(clap::Args, Clone, Debug)]
pub struct TrackerServer {
    /// Tracker service address.
    #[arg(
        long,
        env = "CLOSEOUT_TRACKER_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    pub addr: String,
    /// Print canonical JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub identity: Identity,
}

impl TrackerServer {
    /// A client of the tracker service.
    pub async fn client(&self) -> Result<TrackerServiceClient<Channel>, CliError> {
        Ok(TrackerServiceClient::new(connect(&self.addr).await?))
    }

    /// The tracked item `id`.
    pub async fn item(&self, id: &str) -> Result<pb::TrackedItem, CliError> {
        let request = self.identity.request(pb::GetItemRequest {
            item_id: id.trim().to_string(),
        })?;
        self.client()
            .await?
            .get_item(request)
            .await?
            .into_inner()
            .item
            .ok_or_else(|| CliError::Other("the server answered without the item".into()))
    }
}

/// Every entry of a paged listing: `page` is called with each page token in
/// turn, from the first (empty), and answers that page's entries and the
/// next token, until the server answers no next token.
pub async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>, CliError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), CliError>>,
{
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let (entries, next) = page(token).await?;
        all.extend(entries);
        if next.is_empty() {
            return Ok(all);
        }
        token = next;
    }
}
