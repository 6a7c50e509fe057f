//! One module per group of subcommands, and what they share: who acts
//! ([`Identity`]), how the connection is secured ([`TlsArgs`]), connecting
//! to a service, and where the tracker is ([`TrackerServer`], used by
//! items, lifecycle, watch and proposals).

pub mod certs;
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
use closeout_service::client_tls::ClientTls;
use std::path::PathBuf;
use tonic::transport::Channel;

/// TLS towards the services. An `https://` address selects TLS; a bare
/// `host:port` does when any of these is given. The CA may also come from
/// the credentials file's `tls_ca`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// CA certificate (PEM) that signed the servers' certificates.
    #[arg(long = "tls-ca", env = "CLOSEOUT_TLS_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require one.
    #[arg(
        long = "tls-cert",
        env = "CLOSEOUT_TLS_CERT",
        global = true,
        requires = "key"
    )]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long = "tls-key",
        env = "CLOSEOUT_TLS_KEY",
        global = true,
        requires = "cert"
    )]
    pub key: Option<PathBuf>,
    /// Name expected in the server's certificate, when the address's host
    /// differs (e.g. 127.0.0.1 for a certificate issued to `tracker`).
    #[arg(long = "tls-domain", env = "CLOSEOUT_TLS_DOMAIN", global = true)]
    pub domain: Option<String>,
}

impl TlsArgs {
    /// The client TLS settings; `fallback_ca` (the credentials file's)
    /// when no CA is given.
    pub fn client_tls(&self, fallback_ca: Option<PathBuf>) -> ClientTls {
        ClientTls {
            ca: self.ca.clone().or(fallback_ca),
            cert: self.cert.clone(),
            key: self.key.clone(),
            domain: self.domain.clone(),
        }
    }
}

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
    #[command(flatten)]
    pub tls: TlsArgs,
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

    /// TLS towards the services: the flags, with the credentials file's
    /// CA when none is given.
    pub fn client_tls(&self) -> ClientTls {
        let fallback = || {
            let path = self
                .credentials
                .clone()
                .or_else(token::default_credentials_path)?;
            path.is_file()
                .then(|| token::Credentials::load(&path).ok())
                .flatten()?
                .tls_ca
        };
        let ca = if self.tls.ca.is_some() {
            None
        } else {
            fallback()
        };
        self.tls.client_tls(ca)
    }

    /// Connects to the service at `addr` with this identity's TLS settings.
    pub async fn connect(&self, addr: &str) -> Result<Channel, CliError> {
        connect(addr, &self.client_tls_for(addr)).await
    }

    /// [`Identity::client_tls`] for `addr`: an address that says `http://`
    /// asks for plain HTTP/2, so the credentials file's CA (written by
    /// `closeout dev --tls`) does not apply to it; a CA given as a flag or
    /// in the environment still refuses it as before.
    pub fn client_tls_for(&self, addr: &str) -> ClientTls {
        let mut tls = self.client_tls();
        if self.tls.ca.is_none() && addr.trim().starts_with("http://") {
            tls.ca = None;
        }
        tls
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

/// Connects to a gRPC server: `https://` (or a bare `host:port` with TLS
/// settings) over TLS, otherwise plain HTTP/2.
pub async fn connect(addr: &str, tls: &ClientTls) -> Result<Channel, CliError> {
    let endpoint = tls.endpoint(addr).map_err(CliError::Usage)?;
    let uri = endpoint.uri().to_string();
    endpoint.connect().await.map_err(|e| CliError::Connect {
        addr: uri,
        reason: transport_reason(&e),
    })
}

/// The whole chain of a transport error: tonic's own message is only
/// "transport error"; the cause (a refused certificate, a closed port) is
/// in its sources. Causes that repeat what is already said are left out.
pub fn transport_reason(error: &dyn std::error::Error) -> String {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = cause.source();
    }
    reason
}

/// Where the tracker service is, who acts, and how to print.
#[derive(clap::Args, Clone, Debug)]
pub struct TrackerServer {
    /// Tracker service address (host:port: TLS when a CA is known, from
    /// --tls-ca or the credentials file; or http://… / https://…).
    #[arg(long, env = "CLOSEOUT_TRACKER_ADDR", default_value = "127.0.0.1:50052")]
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
        Ok(TrackerServiceClient::new(
            self.identity.connect(&self.addr).await?,
        ))
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
