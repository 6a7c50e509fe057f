//! Turning [`TlsConfig`] into what each client or server builder takes:
//! rustls server settings for gRPC (optionally asking for client
//! certificates), credentials and TLS for NATS, sslmode and root
//! certificate for PostgreSQL. Files are read here, at start-up, so a
//! wrong path stops the service with a message naming it.

use crate::config::{CommonConfig, TlsConfig};
use closeout_bus::NatsSecurity;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::str::FromStr;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Makes ring rustls's process-wide crypto provider, once. The workspace
/// enables ring only (the browser test's WebDriver client has no TLS, which
/// once brought aws-lc-rs in); choosing explicitly keeps a dependency that
/// enables a second provider from making the first TLS configuration panic.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(what: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// The gRPC server's TLS settings, or `None` when TLS is off.
pub fn server_config(tls: &TlsConfig) -> Result<Option<ServerTlsConfig>, String> {
    let (cert, key) = match (&tls.grpc_tls_cert, &tls.grpc_tls_key) {
        (None, None) => {
            return match &tls.grpc_tls_client_ca {
                None => Ok(None),
                Some(_) => {
                    Err("--grpc-tls-client-ca needs --grpc-tls-cert and --grpc-tls-key".into())
                }
            };
        }
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err("--grpc-tls-cert and --grpc-tls-key go together".into()),
    };
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
        read("gRPC TLS certificate", cert)?,
        read("gRPC TLS key", key)?,
    ));
    if let Some(ca) = &tls.grpc_tls_client_ca {
        config = config.client_ca_root(Certificate::from_pem(read("gRPC client CA", ca)?));
    }
    Ok(Some(config))
}

/// NATS credentials and TLS from configuration.
pub fn nats_security(tls: &TlsConfig) -> Result<NatsSecurity, String> {
    let nkey_seed = match &tls.nats_nkey {
        None => None,
        Some(path) => {
            let text = String::from_utf8(read("NATS nkey seed", path)?)
                .map_err(|_| format!("NATS nkey seed {}: not text", path.display()))?;
            let seed = text.trim().to_string();
            if !seed.starts_with('S') {
                return Err(format!(
                    "NATS nkey seed {}: not a seed (S…)",
                    path.display()
                ));
            }
            Some(seed)
        }
    };
    let client_certificate = match (&tls.nats_tls_cert, &tls.nats_tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => return Err("--nats-tls-cert and --nats-tls-key go together".into()),
    };
    Ok(NatsSecurity {
        credentials_file: tls.nats_credentials.clone(),
        nkey_seed,
        require_tls: tls.nats_tls || tls.nats_tls_ca.is_some() || client_certificate.is_some(),
        root_certificates: tls.nats_tls_ca.clone(),
        client_certificate,
    })
}

/// PostgreSQL connection options: the URL, with sslmode and root
/// certificate from configuration when given.
pub fn database_options(common: &CommonConfig) -> Result<PgConnectOptions, String> {
    let mut options = PgConnectOptions::from_str(&common.database_url)
        .map_err(|e| format!("database URL: {e}"))?;
    if let Some(mode) = &common.tls.database_ssl_mode {
        let mode = PgSslMode::from_str(mode).map_err(|_| {
            format!(
                "database sslmode {mode:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )
        })?;
        options = options.ssl_mode(mode);
    }
    if let Some(root) = &common.tls.database_ssl_root_cert {
        if !root.is_file() {
            return Err(format!(
                "database SSL root certificate {}: not a file",
                root.display()
            ));
        }
        options = options.ssl_root_cert(root);
    }
    Ok(options)
}
