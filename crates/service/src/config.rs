//! Configuration shared by the services, read once from flags and
//! environment variables (flags win). Each service adds its own options by
//! flattening [`CommonConfig`] into its clap parser.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Options every service has.
#[derive(Clone, Debug, Args)]
pub struct CommonConfig {
    /// PostgreSQL URL of this service's own database.
    #[arg(long, env = "CLOSEOUT_DATABASE_URL")]
    pub database_url: String,

    /// NATS server URL, or the nodes of a cluster separated by commas.
    #[arg(
        long,
        env = "CLOSEOUT_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "CLOSEOUT_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,

    /// JetStream stream holding every Closeout event.
    #[arg(long, env = "CLOSEOUT_STREAM", default_value = "CLOSEOUT")]
    pub stream_name: String,

    /// First token of every event subject.
    #[arg(long, env = "CLOSEOUT_SUBJECT_PREFIX", default_value = "closeout")]
    pub subject_prefix: String,

    /// Maximum connections in the PostgreSQL pool.
    #[arg(long, env = "CLOSEOUT_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Log format.
    #[arg(long, env = "CLOSEOUT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Bearer-token verification.
    #[command(flatten)]
    pub auth: AuthConfig,

    /// TLS and credentials for gRPC, NATS and PostgreSQL.
    #[command(flatten)]
    pub tls: TlsConfig,

    /// Address gRPC server reflection (and health) is served on, apart
    /// from the API; none: reflection is off. Keep it on a private
    /// interface (e.g. 127.0.0.1:50151).
    #[arg(long, env = "CLOSEOUT_REFLECTION_ADDR")]
    pub reflection_addr: Option<SocketAddr>,
}

/// How callers prove who they are: the public keys bearer tokens are
/// verified against, the issuers and audiences accepted, and which claims
/// hold the role and organisation (for an organisation's own OIDC
/// provider). A service with no key refuses to start: there is no
/// anonymous or default caller.
#[derive(Clone, Debug, Default, Args)]
pub struct AuthConfig {
    /// Public keys tokens are verified against: PEM files (Ed25519 or
    /// P-256; the file stem is the key id) and/or JWKS files (`.json`).
    /// Several at once for rotation; comma-separated in the environment.
    #[arg(
        long = "auth-public-key",
        env = "CLOSEOUT_AUTH_PUBLIC_KEYS",
        value_delimiter = ','
    )]
    pub public_keys: Vec<PathBuf>,

    /// Accepted token issuers (`iss`); default `closeout`.
    #[arg(
        long = "auth-issuer",
        env = "CLOSEOUT_AUTH_ISSUERS",
        value_delimiter = ','
    )]
    pub issuers: Vec<String>,

    /// Accepted token audiences (`aud`); default `closeout`.
    #[arg(
        long = "auth-audience",
        env = "CLOSEOUT_AUTH_AUDIENCES",
        value_delimiter = ','
    )]
    pub audiences: Vec<String>,

    /// Claim naming the subject (OIDC: e.g. `email`); default `sub`.
    #[arg(long = "auth-subject-claim", env = "CLOSEOUT_AUTH_SUBJECT_CLAIM")]
    pub subject_claim: Option<String>,

    /// Claim holding the role (a string or a list, e.g. `groups`); default `role`.
    #[arg(long = "auth-role-claim", env = "CLOSEOUT_AUTH_ROLE_CLAIM")]
    pub role_claim: Option<String>,

    /// Claim holding an inspected body's organisation; default `org`.
    #[arg(
        long = "auth-organisation-claim",
        env = "CLOSEOUT_AUTH_ORGANISATION_CLAIM"
    )]
    pub organisation_claim: Option<String>,

    /// Claim holding a viewer's organisations; default `orgs`.
    #[arg(
        long = "auth-organisations-claim",
        env = "CLOSEOUT_AUTH_ORGANISATIONS_CLAIM"
    )]
    pub organisations_claim: Option<String>,

    /// Role claim values and the Closeout roles they mean, as
    /// `VALUE=ROLE` (e.g. `closeout-editors=inspected-body`), tried in
    /// order; none: the claim holds Closeout role names.
    #[arg(
        long = "auth-role-map",
        env = "CLOSEOUT_AUTH_ROLE_MAP",
        value_delimiter = ','
    )]
    pub role_map: Vec<String>,
}

impl AuthConfig {
    /// Trusting exactly the keys in `public_keys`, Closeout's own claims.
    pub fn trusting(public_keys: Vec<PathBuf>) -> AuthConfig {
        AuthConfig {
            public_keys,
            ..AuthConfig::default()
        }
    }

    /// The verifier this configuration describes, or what is wrong with it.
    pub fn verifier(&self) -> Result<closeout_auth::Verifier, String> {
        if self.public_keys.is_empty() {
            return Err(
                "no token keys: set --auth-public-key or CLOSEOUT_AUTH_PUBLIC_KEYS (closeout dev generates a development key)"
                    .into(),
            );
        }
        let mut keys = closeout_auth::KeySet::new();
        for path in &self.public_keys {
            keys.add_file(path).map_err(|e| e.to_string())?;
        }
        let mut config = closeout_auth::VerifierConfig::default();
        if !self.issuers.is_empty() {
            config.issuers.clone_from(&self.issuers);
        }
        if !self.audiences.is_empty() {
            config.audiences.clone_from(&self.audiences);
        }
        let mapping = &mut config.mapping;
        for (field, value) in [
            (&mut mapping.subject, &self.subject_claim),
            (&mut mapping.role, &self.role_claim),
            (&mut mapping.organisation, &self.organisation_claim),
            (&mut mapping.organisations, &self.organisations_claim),
        ] {
            if let Some(value) = value {
                field.clone_from(value);
            }
        }
        for entry in &self.role_map {
            let (value, role) = entry
                .split_once('=')
                .ok_or_else(|| format!("--auth-role-map {entry:?} is not VALUE=ROLE"))?;
            let role = closeout_auth::parse_role(role)
                .ok_or_else(|| format!("--auth-role-map {entry:?}: {role:?} is not a role"))?;
            mapping.role_values.push((value.to_string(), role));
        }
        Ok(closeout_auth::Verifier::new(keys, config))
    }
}

/// Encryption and credentials for the three connections: gRPC served over
/// TLS (rustls; client certificates optional), NATS user credentials or an
/// nkey and TLS, PostgreSQL TLS. All off unless configured.
#[derive(Clone, Debug, Default, Args)]
pub struct TlsConfig {
    /// PEM certificate chain gRPC is served with (turns TLS on; needs
    /// --grpc-tls-key).
    #[arg(long, env = "CLOSEOUT_GRPC_TLS_CERT", requires = "grpc_tls_key")]
    pub grpc_tls_cert: Option<PathBuf>,

    /// PEM private key of --grpc-tls-cert.
    #[arg(long, env = "CLOSEOUT_GRPC_TLS_KEY", requires = "grpc_tls_cert")]
    pub grpc_tls_key: Option<PathBuf>,

    /// PEM CA certificate(s) clients must present a certificate from
    /// (mutual TLS); none: client certificates are not asked for.
    #[arg(long, env = "CLOSEOUT_GRPC_TLS_CLIENT_CA", requires = "grpc_tls_cert")]
    pub grpc_tls_client_ca: Option<PathBuf>,

    /// NATS user credentials file (`.creds`: JWT and nkey seed).
    #[arg(long, env = "CLOSEOUT_NATS_CREDENTIALS")]
    pub nats_credentials: Option<PathBuf>,

    /// File holding a NATS nkey seed (`SU…`), for nkey authentication.
    #[arg(long, env = "CLOSEOUT_NATS_NKEY", conflicts_with = "nats_credentials")]
    pub nats_nkey: Option<PathBuf>,

    /// Require TLS to NATS.
    #[arg(long, env = "CLOSEOUT_NATS_TLS", default_value_t = false)]
    pub nats_tls: bool,

    /// PEM CA certificate(s) the NATS server's certificate is checked against.
    #[arg(long, env = "CLOSEOUT_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,

    /// PEM client certificate for NATS (with --nats-tls-key).
    #[arg(long, env = "CLOSEOUT_NATS_TLS_CERT", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,

    /// PEM private key of --nats-tls-cert.
    #[arg(long, env = "CLOSEOUT_NATS_TLS_KEY", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,

    /// PostgreSQL sslmode (disable, allow, prefer, require, verify-ca,
    /// verify-full); overrides the URL's.
    #[arg(long, env = "CLOSEOUT_DATABASE_SSL_MODE")]
    pub database_ssl_mode: Option<String>,

    /// PEM root certificate PostgreSQL's server certificate is checked
    /// against (verify-ca, verify-full).
    #[arg(long, env = "CLOSEOUT_DATABASE_SSL_ROOT_CERT")]
    pub database_ssl_root_cert: Option<PathBuf>,
}
