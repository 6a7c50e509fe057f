//! HTTPS for the console's own listener: a certificate and key (PEM) read
//! at start-up, and a listener that hands axum only connections whose TLS
//! handshake finished. Handshakes run in tasks of their own with a time
//! limit, so a client that connects and stalls holds up no one else; a
//! failed handshake (plain HTTP to this port, an untrusting client) closes
//! that connection and is logged at debug level.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The certificate (chain) and private key the console serves HTTPS with.
#[derive(Clone, Debug)]
pub struct WebTls {
    /// PEM certificate chain, the console's own certificate first.
    pub cert: PathBuf,
    /// PEM private key of [`WebTls::cert`].
    pub key: PathBuf,
}

/// How long a client has to finish its handshake.
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const READY_BACKLOG: usize = 64;

impl WebTls {
    /// The rustls settings, reading the files now so that a wrong path or
    /// a key that is not PEM stops start-up with a message naming the file.
    pub fn server_config(&self) -> Result<ServerConfig, String> {
        closeout_service::tls::install_crypto_provider();
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
        };
        let cert_pem = read("web TLS certificate", &self.cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("web TLS certificate {}: {e}", self.cert.display()))?;
        if chain.is_empty() {
            return Err(format!(
                "web TLS certificate {}: no certificate in it",
                self.cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&read("web TLS key", &self.key)?)
            .map_err(|e| format!("web TLS key {}: {e}", self.key.display()))?;
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                format!(
                    "web TLS certificate {} and key {}: {e}",
                    self.cert.display(),
                    self.key.display()
                )
            })?;
        // axum serves HTTP/1.1 here (the http1 feature only).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A listener yielding connections that completed a TLS handshake.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`; stops when this value is dropped.
    pub(crate) fn new(listener: TcpListener, config: ServerConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(READY_BACKLOG);
        tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(TlsListener { ready, addr })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "web console: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept loop ends only once this listener is dropped, so
            // this is not reached while serving; wait rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_material_is_named() {
        let tls = WebTls {
            cert: "/nonexistent/web.pem".into(),
            key: "/nonexistent/web.key".into(),
        };
        let error = tls.server_config().unwrap_err();
        assert!(error.contains("/nonexistent/web.pem"), "{error}");
        let dir = std::env::temp_dir().join(format!("closeout-web-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let tls = WebTls {
            cert: empty.clone(),
            key: empty.clone(),
        };
        let error = tls.server_config().unwrap_err();
        assert!(error.contains("no certificate"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
