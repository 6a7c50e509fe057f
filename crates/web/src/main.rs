//! `closeout-web`: the web console's binary. Reads its configuration from
//! flags and environment, loads the keys sign-in tokens are verified
//! against, and serves until SIGTERM or Ctrl-C.

use clap::Parser;
use closeout_service::config::{AuthConfig, LogFormat};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "closeout-web", version, about = "Closeout's web console")]
struct Args {
    /// Address to serve HTTP (HTTPS with --tls-cert) on (port 0: any free
    /// port).
    #[arg(long, env = "CLOSEOUT_WEB_ADDR", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Certificate chain (PEM) to serve HTTPS with; the session cookie is
    /// then Secure. Without it the console serves plain HTTP.
    #[arg(long, env = "CLOSEOUT_WEB_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "CLOSEOUT_WEB_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The findings service.
    #[arg(
        long,
        env = "CLOSEOUT_FINDINGS_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    findings_addr: String,
    /// The tracker service.
    #[arg(
        long,
        env = "CLOSEOUT_TRACKER_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    tracker_addr: String,
    /// The metrics service.
    #[arg(
        long,
        env = "CLOSEOUT_METRICS_ADDR",
        default_value = "http://127.0.0.1:50053"
    )]
    metrics_addr: String,
    /// CA certificate (PEM) that signed the services' certificates; with
    /// it (or https:// addresses) the console calls them over TLS.
    #[arg(long, env = "CLOSEOUT_TLS_CA")]
    services_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for services that require one.
    #[arg(long, env = "CLOSEOUT_TLS_CERT", requires = "services_tls_key")]
    services_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "CLOSEOUT_TLS_KEY", requires = "services_tls_cert")]
    services_tls_key: Option<PathBuf>,
    /// Name expected in the services' certificates, when it differs from
    /// the addresses' host.
    #[arg(long, env = "CLOSEOUT_TLS_DOMAIN")]
    services_tls_domain: Option<String>,
    /// How sign-in tokens are verified: the same keys, issuers, audiences
    /// and claim mapping as the services (`--auth-public-key`, …).
    #[command(flatten)]
    auth: AuthConfig,
    /// Mark the session cookie Secure: for a console behind a TLS proxy
    /// (implied by --tls-cert).
    #[arg(long, env = "CLOSEOUT_WEB_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Largest report upload accepted, in bytes.
    #[arg(long, env = "CLOSEOUT_MAX_REPORT_BYTES", default_value_t = closeout_web::DEFAULT_MAX_UPLOAD_BYTES)]
    max_upload_bytes: usize,
    /// Log format.
    #[arg(long, env = "CLOSEOUT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let _telemetry = closeout_service::telemetry::init(args.log_format, "web");
    let verifier = match args.auth.verifier() {
        Ok(verifier) => verifier,
        Err(e) => {
            tracing::error!(error = %e, "cannot verify sign-in tokens");
            return ExitCode::FAILURE;
        }
    };
    let web = closeout_web::WebConfig {
        listen: args.listen,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| closeout_web::WebTls { cert, key }),
        findings_url: args.findings_addr,
        tracker_url: args.tracker_addr,
        metrics_url: args.metrics_addr,
        services_tls: closeout_service::client_tls::ClientTls {
            ca: args.services_tls_ca,
            cert: args.services_tls_cert,
            key: args.services_tls_key,
            domain: args.services_tls_domain,
        },
        verifier,
        secure_cookies: args.secure_cookies,
        max_upload_bytes: args.max_upload_bytes,
    };
    let running = match closeout_web::start(web, closeout_service::server::shutdown_signal()).await
    {
        Ok(running) => running,
        Err(e) => {
            tracing::error!(%e, "failed to start");
            return ExitCode::FAILURE;
        }
    };
    match running.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(%e, "failed");
            ExitCode::FAILURE
        }
    }
}
