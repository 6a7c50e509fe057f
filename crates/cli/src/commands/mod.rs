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
pub mod token;
pub mod watch;

use crate::error::CliError;
use closeout_proto as pb;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use tonic::transport::{Channel, Endpoint};

/// Who the command line acts as: a bearer token, from `--token`, else
/// `CLOSEOUT_TOKEN`, else the credentials file `closeout dev` writes (the
/// inspectorate's entry unless `--as-role` picks another). No default
/// identity: without a token a command stops and says how to get one.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Identity {
    /// Bearer token to call with.
    #[arg(long, env = "CLOSEOUT_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Which credentials-file token to use: inspectorate (the default),
    /// inspected-body or viewer.
    #[arg(long = "as-role", env = "CLOSEOUT_AS_ROLE", global = true)]
    pub as_role: Option<String>,
    /// Credentials file (default $XDG_CONFIG_HOME/closeout/credentials.toml
    /// or ~/.config/closeout/credentials.toml).
    #[arg(long, env = "CLOSEOUT_CREDENTIALS", global = true)]
    pub credentials: Option<std::path::PathBuf>,
}

impl Identity {
    /// The identity of exactly `token`.
    pub fn with_token(token: impl Into<String>) -> Identity {
        Identity {
            token: Some(token.into()),
            ..Identity::default()
        }
    }

    /// The bearer token this identity calls with.
    pub fn token(&self) -> Result<String, CliError> {
        token::resolve(
            self.token.as_deref(),
            self.as_role.as_deref(),
            self.credentials.as_deref(),
        )
    }

    /// Wraps a request with `authorization: Bearer <token>`.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, CliError> {
        let token = self.token()?;
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::Usage("the token must be ASCII text".into()))?;
        request.metadata_mut().insert("authorization", value);
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
