//! The client side of gRPC over TLS, shared by the command line and the web
//! console: which CA to trust, an optional client certificate, and the name
//! the server's certificate must carry. An `https://` address selects TLS;
//! a bare `host:port` selects it when any TLS setting is given; `http://`
//! with TLS settings is refused rather than silently sent in the clear.
//! Without a CA the system's root certificates are trusted (a server with
//! a publicly issued certificate); with one, only that CA is.

use std::path::PathBuf;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// How a client reaches a service over TLS. Empty: plain HTTP/2 unless the
/// address says `https://`, which then trusts the system's root
/// certificates.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// PEM file of the CA that signed the servers' certificates; when
    /// given, the only CA trusted (the system's roots are not).
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for servers that ask for one.
    pub cert: Option<PathBuf>,
    /// PEM private key of [`ClientTls::cert`].
    pub key: Option<PathBuf>,
    /// The name to expect in the server's certificate, when it differs from
    /// the address's host (e.g. calling `127.0.0.1` with a certificate for
    /// `tracker`).
    pub domain: Option<String>,
}

impl ClientTls {
    /// Whether any TLS setting is given.
    pub fn is_configured(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.domain.is_some()
    }

    /// The full URI for `addr` (`host:port` gets `https://` when TLS is
    /// configured, `http://` otherwise) and whether it uses TLS.
    pub fn uri(&self, addr: &str) -> Result<(String, bool), String> {
        let addr = addr.trim();
        if let Some(rest) = addr.strip_prefix("https://") {
            Ok((format!("https://{rest}"), true))
        } else if addr.starts_with("http://") {
            if self.is_configured() {
                Err(format!(
                    "{addr}: TLS settings are given but the address says http://; use https://"
                ))
            } else {
                Ok((addr.to_string(), false))
            }
        } else if addr.contains("://") {
            Err(format!("{addr}: only http:// and https:// addresses"))
        } else if self.is_configured() {
            Ok((format!("https://{addr}"), true))
        } else {
            Ok((format!("http://{addr}"), false))
        }
    }

    /// The rustls settings, reading the files now so that a wrong path is
    /// reported naming it.
    pub fn config(&self) -> Result<ClientTlsConfig, String> {
        let read = |what: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
        };
        let mut config = match &self.ca {
            Some(ca) => {
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("TLS CA", ca)?))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read("TLS client certificate", cert)?,
                    read("TLS client key", key)?,
                ));
            }
            (None, None) => {}
            _ => return Err("the TLS client certificate and key go together".into()),
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }

    /// An endpoint for `addr`, with TLS when the address or the settings
    /// select it.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, String> {
        crate::tls::install_crypto_provider();
        let (uri, tls) = self.uri(addr)?;
        let endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| format!("{uri}: {e}"))?
            .connect_timeout(Duration::from_secs(5));
        if !tls {
            return Ok(endpoint);
        }
        endpoint.tls_config(self.config()?).map_err(|e| {
            if self.ca.is_none() {
                // Typically no system roots installed (a bare container).
                format!("{uri}: TLS with the system's root certificates: {e}; give the CA that signed the server's certificate with --tls-ca / CLOSEOUT_TLS_CA")
            } else {
                format!("{uri}: TLS: {e}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_choose_tls() {
        let plain = ClientTls::default();
        assert_eq!(
            plain.uri("127.0.0.1:1").unwrap(),
            ("http://127.0.0.1:1".into(), false)
        );
        assert_eq!(
            plain.uri("https://tracker:1").unwrap(),
            ("https://tracker:1".into(), true)
        );
        let tls = ClientTls {
            ca: Some("ca.pem".into()),
            ..ClientTls::default()
        };
        assert_eq!(
            tls.uri("127.0.0.1:1").unwrap(),
            ("https://127.0.0.1:1".into(), true)
        );
        assert!(
            tls.uri("http://127.0.0.1:1")
                .unwrap_err()
                .contains("https://")
        );
        assert!(plain.uri("ftp://x:1").is_err());
        // https:// without a CA trusts the system's roots: no file to
        // read, and where none are installed the error says what to give.
        assert!(plain.config().is_ok());
        if let Err(e) = plain.endpoint("https://x:1") {
            assert!(e.contains("--tls-ca"), "{e}");
        }
        let half = ClientTls {
            ca: Some("/nonexistent/ca.pem".into()),
            cert: Some("c.pem".into()),
            ..ClientTls::default()
        };
        assert!(half.config().unwrap_err().contains("/nonexistent/ca.pem"));
    }
}
