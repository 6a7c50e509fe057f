//! `closeout dev`: the whole system on one machine, for trying it out.
//! Checks PostgreSQL and NATS, creates each service's database, starts the
//! four service binaries (found next to this one; notify with its log-only
//! sink on, so deliveries show in the log) and the web console as child
//! processes with their logs prefixed, imports the sample report, prints
//! its scorecard, the addresses to connect to and a web sign-in link per
//! role (the console's address last), and stops everything cleanly on
//! Ctrl-C.
//! Running it again reuses the databases; the import is then a no-op.
//!
//! Identity: a development Ed25519 key pair is generated once in the state
//! directory (`$XDG_STATE_HOME/closeout/dev`, else
//! `~/.local/state/closeout/dev`); the services trust its public key, and
//! one token per role (inspectorate, inspected body of the sample's
//! organisation, viewer) is written to the credentials file the CLI reads
//! and printed. Reflection answers on loopback ports of its own.
//!
//! Everything listens on 127.0.0.1 only, in plain HTTP/2 and HTTP by
//! default. `--tls` serves gRPC and the console over TLS instead, with
//! development material (`closeout dev-certs`) kept in `<state>/certs`; the
//! CA goes into the credentials file, so the CLI's default addresses
//! (`host:port`, no scheme) switch to TLS with no flags.

use crate::commands::{Identity, connect};
use crate::error::CliError;
use clap::Args;
use closeout_proto as pb;
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_service::client_tls::ClientTls;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The reference report, shipped inside the binary so `dev` works from any
/// directory. HMICFRS, Open Government Licence v3.0 (tests/fixtures/NOTICE.md).
const SAMPLE_REPORT: &str =
    include_str!("../../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

#[derive(Args)]
pub struct DevArgs {
    /// PostgreSQL server (any database; each service gets its own).
    #[arg(
        long,
        env = "CLOSEOUT_DEV_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// NATS server with JetStream.
    #[arg(
        long,
        env = "CLOSEOUT_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    /// First of four consecutive gRPC ports (findings, tracker, metrics,
    /// notify).
    #[arg(long, default_value_t = 50051)]
    base_port: u16,
    /// First of four consecutive Prometheus ports.
    #[arg(long, default_value_t = 9091)]
    base_metrics_port: u16,
    /// Port of the web console (closeout-web) on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    web_port: u16,
    /// Import this report instead of the built-in sample.
    #[arg(long)]
    report: Option<String>,
    /// Start, import, print, then stop instead of waiting for Ctrl-C.
    #[arg(long)]
    once: bool,
    /// Where the development key pair is kept (default
    /// $XDG_STATE_HOME/closeout/dev or ~/.local/state/closeout/dev).
    #[arg(long, env = "CLOSEOUT_DEV_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Credentials file to write the tokens to (default
    /// $XDG_CONFIG_HOME/closeout/credentials.toml).
    #[arg(long, env = "CLOSEOUT_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Serve gRPC and the web console over TLS, with DEVELOPMENT-ONLY
    /// certificates made once in <state dir>/certs (as `closeout dev-certs`
    /// does); the CA is written to the credentials file, so the CLI trusts
    /// it with no flags. Off by default: everything then listens on
    /// 127.0.0.1 only, in plain HTTP.
    #[arg(long)]
    tls: bool,
}

/// How long the tokens `closeout dev` prints are valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(7 * 86_400);

/// The development key pair: where the public key is, and the signing key.
struct DevKey {
    public_key: PathBuf,
    signing: closeout_auth::SigningKey,
}

fn state_dir(args: &DevArgs) -> Result<PathBuf, CliError> {
    if let Some(dir) = &args.state_dir {
        return Ok(dir.clone());
    }
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("state"))
        })
        .map(|base| base.join("closeout").join("dev"))
        .ok_or_else(|| CliError::Usage("no state directory: pass --state-dir".into()))
}

/// The development key pair in `dir` (`dev.pem`, `dev.pub.pem`), made on
/// first use. Development only: anyone with the state directory can mint
/// tokens for these services.
fn dev_key(dir: &Path) -> Result<DevKey, CliError> {
    let private = dir.join("dev.pem");
    let public_key = dir.join("dev.pub.pem");
    let file_error = |path: &Path, e: &dyn std::fmt::Display| CliError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if !private.exists() || !public_key.exists() {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, &e))?;
        let pair =
            closeout_auth::generate_ed25519("dev").map_err(|e| CliError::Other(e.to_string()))?;
        crate::commands::token::write_private(&private, pair.private_pem.as_bytes())
            .map_err(|e| file_error(&private, &e))?;
        std::fs::write(&public_key, &pair.public_pem).map_err(|e| file_error(&public_key, &e))?;
        println!("generated a development signing key in {}", dir.display());
    }
    let signing = closeout_auth::SigningKey::from_file(&private)
        .map_err(|e| CliError::Other(e.to_string()))?;
    Ok(DevKey {
        public_key,
        signing,
    })
}

/// A development token for `role` (of `org` for an inspected body).
fn dev_token(key: &DevKey, role: &str, org: Option<&str>) -> Result<String, CliError> {
    let claims = crate::commands::token::claims(role, org, &format!("dev:{role}"), DEV_TOKEN_TTL)?;
    closeout_auth::mint(&key.signing, &claims).map_err(|e| CliError::Other(e.to_string()))
}

/// The development TLS material `--tls` serves with (absolute paths: they
/// go into the credentials file and the children's environment).
struct DevTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Makes (first time) or reuses the development TLS material in `dir`,
/// through the `dev-certs` command itself so both always agree.
fn dev_tls(dir: &Path) -> Result<DevTls, CliError> {
    use clap::{Args as _, FromArgMatches as _};
    let dir_text = dir
        .to_str()
        .ok_or_else(|| CliError::Usage(format!("{}: not UTF-8", dir.display())))?;
    let matches =
        crate::commands::certs::DevCertsArgs::augment_args(clap::Command::new("dev-certs"))
            .try_get_matches_from(["dev-certs", "--out", dir_text])
            .map_err(|e| CliError::Other(format!("development certificates: {e}")))?;
    let certs = crate::commands::certs::DevCertsArgs::from_arg_matches(&matches)
        .map_err(|e| CliError::Other(format!("development certificates: {e}")))?;
    crate::commands::certs::run(certs)?;
    let absolute = |name: &str| {
        std::path::absolute(dir.join(name)).map_err(|e| CliError::File {
            path: dir.join(name).display().to_string(),
            reason: e.to_string(),
        })
    };
    Ok(DevTls {
        ca: absolute("ca.pem")?,
        cert: absolute("server.pem")?,
        key: absolute("server.key")?,
    })
}

/// `http` or `https`, as the services and the console are served.
fn scheme(tls: Option<&DevTls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// How `closeout dev` itself calls the services.
fn client_tls(tls: Option<&DevTls>) -> ClientTls {
    ClientTls {
        ca: tls.map(|t| t.ca.clone()),
        ..ClientTls::default()
    }
}

struct Service {
    name: &'static str,
    binary: &'static str,
    database: &'static str,
    port: u16,
    metrics_port: u16,
}

/// host:port of a URL like `nats://host:port` or `postgres://u@host:port/db`.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
    if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:{default_port}")
    }
}

async fn reachable(address: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(address)).await,
        Ok(Ok(_))
    )
}

/// URL of database `name` on the same server as `postgres_url`.
fn database_url(postgres_url: &str, name: &str) -> String {
    let (base, query) = match postgres_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (postgres_url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

async fn create_database(postgres_url: &str, name: &str) -> Result<(), CliError> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(postgres_url)
        .await
        .map_err(|e| CliError::Other(format!("connecting to {postgres_url}: {e}")))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .map_err(|e| CliError::Other(format!("checking database {name}: {e}")))?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .map_err(|e| CliError::Other(format!("creating database {name}: {e}")))?;
        println!("created database {name}");
    }
    Ok(())
}

fn sibling_binary(name: &str) -> Result<PathBuf, CliError> {
    let me = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("locating this program: {e}")))?;
    let path = me.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(CliError::Other(format!(
            "{} not found next to {}: build every binary first with `cargo build --release`",
            name,
            me.display()
        )))
    }
}

/// The command starting `service`: loopback addresses, its database, the
/// development key, and TLS when `tls` (nothing inherited decides it).
fn service_command(
    service: &Service,
    binary: &Path,
    args: &DevArgs,
    public_key: &Path,
    tls: Option<&DevTls>,
) -> Command {
    let mut command = Command::new(binary);
    for variable in [
        "CLOSEOUT_GRPC_TLS_CERT",
        "CLOSEOUT_GRPC_TLS_KEY",
        "CLOSEOUT_GRPC_TLS_CLIENT_CA",
    ] {
        command.env_remove(variable);
    }
    if let Some(tls) = tls {
        command
            .env("CLOSEOUT_GRPC_TLS_CERT", &tls.cert)
            .env("CLOSEOUT_GRPC_TLS_KEY", &tls.key);
    }
    command
        .env("CLOSEOUT_AUTH_PUBLIC_KEYS", public_key)
        .env(
            "CLOSEOUT_REFLECTION_ADDR",
            format!("127.0.0.1:{}", service.port + 100),
        )
        .env(
            "CLOSEOUT_DATABASE_URL",
            database_url(&args.postgres_url, service.database),
        )
        .env("CLOSEOUT_NATS_URL", &args.nats_url)
        .env("CLOSEOUT_GRPC_ADDR", format!("127.0.0.1:{}", service.port))
        .env(
            "CLOSEOUT_METRICS_HTTP_ADDR",
            format!("127.0.0.1:{}", service.metrics_port),
        )
        // The notify service also writes every delivery to its log, and
        // accepts plain-http webhooks to this machine.
        .env("CLOSEOUT_NOTIFY_LOG_SINK", "true")
        .env("CLOSEOUT_NOTIFY_ALLOW_LOOPBACK_HTTP", "true");
    command
}

fn spawn(
    service: &Service,
    binary: &Path,
    args: &DevArgs,
    public_key: &Path,
    tls: Option<&DevTls>,
) -> Result<Child, CliError> {
    let mut child = service_command(service, binary, args, public_key, tls)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CliError::Other(format!("starting {}: {e}", binary.display())))?;
    pipe_logs(&mut child, service.name);
    Ok(child)
}

/// The command starting the web console in front of `services` (findings,
/// tracker, metrics), trusting the development key; with `tls` it serves
/// HTTPS and calls the services over TLS trusting the development CA.
fn web_command(
    binary: &Path,
    args: &DevArgs,
    services: &[Service],
    public_key: &Path,
    tls: Option<&DevTls>,
) -> Command {
    let mut command = Command::new(binary);
    for variable in [
        "CLOSEOUT_TLS_CA",
        "CLOSEOUT_TLS_CERT",
        "CLOSEOUT_TLS_KEY",
        "CLOSEOUT_TLS_DOMAIN",
        "CLOSEOUT_WEB_TLS_CERT",
        "CLOSEOUT_WEB_TLS_KEY",
    ] {
        command.env_remove(variable);
    }
    if let Some(tls) = tls {
        command
            .env("CLOSEOUT_TLS_CA", &tls.ca)
            .env("CLOSEOUT_WEB_TLS_CERT", &tls.cert)
            .env("CLOSEOUT_WEB_TLS_KEY", &tls.key);
    }
    for (variable, service) in [
        ("CLOSEOUT_FINDINGS_ADDR", &services[0]),
        ("CLOSEOUT_TRACKER_ADDR", &services[1]),
        ("CLOSEOUT_METRICS_ADDR", &services[2]),
    ] {
        command.env(
            variable,
            format!("{}://127.0.0.1:{}", scheme(tls), service.port),
        );
    }
    command
        .env("CLOSEOUT_AUTH_PUBLIC_KEYS", public_key)
        .env("CLOSEOUT_WEB_ADDR", format!("127.0.0.1:{}", args.web_port));
    command
}

fn spawn_web(
    binary: &Path,
    args: &DevArgs,
    services: &[Service],
    public_key: &Path,
    tls: Option<&DevTls>,
) -> Result<Child, CliError> {
    let mut child = web_command(binary, args, services, public_key, tls)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CliError::Other(format!("starting {}: {e}", binary.display())))?;
    pipe_logs(&mut child, "web");
    Ok(child)
}

/// Copies a child's output to ours, each line prefixed with its name.
fn pipe_logs(child: &mut Child, name: &str) {
    let prefix = format!("[{name:<8}]");
    if let Some(out) = child.stdout.take() {
        let prefix = prefix.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("{prefix} {line}");
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{prefix} {line}");
            }
        });
    }
}

async fn wait_serving(
    name: &str,
    addr: &str,
    tls: &ClientTls,
    children: &mut [Child],
) -> Result<(), CliError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(CliError::Other(format!(
                    "a service exited while starting ({status}); see its log above"
                )));
            }
        }
        if let Ok(channel) = connect(addr, tls).await {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await;
            if answer.is_ok_and(|a| a.into_inner().status == ServingStatus::Serving as i32) {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "{name} at {addr} did not become healthy in 60 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn stop_all(children: &mut Vec<Child>) {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            // SIGTERM: each service drains its outbox and stops cleanly.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    children.clear();
}

pub async fn run(args: DevArgs) -> Result<(), CliError> {
    let pg = host_port(&args.postgres_url, 5432);
    let nats = host_port(&args.nats_url, 4222);
    let mut missing = Vec::new();
    if !reachable(&pg).await {
        missing.push(format!(
            "PostgreSQL is not reachable at {pg}. Start it with:\n  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        ));
    }
    if !reachable(&nats).await {
        missing.push(format!(
            "NATS is not reachable at {nats}. Start it (with JetStream) with:\n  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
        ));
    }
    if !missing.is_empty() {
        return Err(CliError::Other(format!(
            "{}\nOr run everything in containers: docker compose -f deploy/docker-compose.yml up",
            missing.join("\n")
        )));
    }
    let services = [
        Service {
            name: "findings",
            binary: "closeout-findings",
            database: "closeout_findings",
            port: args.base_port,
            metrics_port: args.base_metrics_port,
        },
        Service {
            name: "tracker",
            binary: "closeout-tracker",
            database: "closeout_tracker",
            port: args.base_port + 1,
            metrics_port: args.base_metrics_port + 1,
        },
        Service {
            name: "metrics",
            binary: "closeout-metrics",
            database: "closeout_metrics",
            port: args.base_port + 2,
            metrics_port: args.base_metrics_port + 2,
        },
        Service {
            name: "notify",
            binary: "closeout-notify",
            database: "closeout_notify",
            port: args.base_port + 3,
            metrics_port: args.base_metrics_port + 3,
        },
    ];
    let binaries = services
        .iter()
        .map(|s| sibling_binary(s.binary))
        .collect::<Result<Vec<_>, _>>()?;
    let web_binary = sibling_binary("closeout-web")?;
    for service in &services {
        create_database(&args.postgres_url, service.database).await?;
    }
    let state = state_dir(&args)?;
    let key = dev_key(&state)?;
    let tls = if args.tls {
        Some(dev_tls(&state.join("certs"))?)
    } else {
        None
    };
    let mut children = Vec::new();
    for (service, binary) in services.iter().zip(&binaries) {
        children.push(spawn(
            service,
            binary,
            &args,
            &key.public_key,
            tls.as_ref(),
        )?);
    }
    children.push(spawn_web(
        &web_binary,
        &args,
        &services,
        &key.public_key,
        tls.as_ref(),
    )?);
    let result = run_started(&args, &services, &mut children, &key, tls.as_ref()).await;
    stop_all(&mut children).await;
    println!("closeout dev: stopped");
    result
}

async fn run_started(
    args: &DevArgs,
    services: &[Service],
    children: &mut [Child],
    key: &DevKey,
    tls: Option<&DevTls>,
) -> Result<(), CliError> {
    let scheme = scheme(tls);
    let client_tls = client_tls(tls);
    for service in services {
        wait_serving(
            service.name,
            &format!("{scheme}://127.0.0.1:{}", service.port),
            &client_tls,
            children,
        )
        .await?;
    }
    let (text, source) = match &args.report {
        Some(path) => (crate::commands::report::read_report(path)?, path.clone()),
        None => (
            SAMPLE_REPORT.to_string(),
            "peel-2018-19-hertfordshire.txt (built in)".to_string(),
        ),
    };
    let identity = Identity::with_token(dev_token(key, "inspectorate", None)?);
    let findings_addr = format!("{scheme}://127.0.0.1:{}", services[0].port);
    let tracker_addr = format!("{scheme}://127.0.0.1:{}", services[1].port);
    let metrics_addr = format!("{scheme}://127.0.0.1:{}", services[2].port);
    let mut findings = FindingsServiceClient::new(connect(&findings_addr, &client_tls).await?)
        .max_encoding_message_size(64 * 1024 * 1024);
    let imported = findings
        .import_report(identity.request(pb::ImportReportRequest {
            text,
            source_name: source.clone(),
            replace: false,
            ..Default::default()
        })?)
        .await?
        .into_inner();
    println!(
        "{} {source}: inspection {} of {} ({} findings)",
        if imported.created {
            "imported"
        } else {
            "already imported"
        },
        imported.inspection_id,
        imported.organisation_id,
        imported.finding_count
    );
    let organisation = imported.organisation_id.clone();

    // The tracker opens items from the events; the metrics service counts
    // them. Wait until the scorecard shows every tracked item.
    let mut tracker = TrackerServiceClient::new(connect(&tracker_addr, &client_tls).await?);
    let mut metrics = MetricsServiceClient::new(connect(&metrics_addr, &client_tls).await?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let card = loop {
        let items = tracker
            .list_items(identity.request(pb::ListItemsRequest {
                organisation_id: organisation.clone(),
                page_size: 500,
                ..Default::default()
            })?)
            .await
            .map(|r| r.into_inner().items.len())
            .unwrap_or(0);
        let card = metrics
            .get_scorecard(identity.request(pb::GetScorecardRequest {
                organisation_id: organisation.clone(),
                as_of: None,
            })?)
            .await
            .ok()
            .and_then(|r| r.into_inner().scorecard);
        if let Some(card) = card {
            if items > 0 && card.total_items as usize >= items {
                break card;
            }
            if tokio::time::Instant::now() > deadline {
                break card;
            }
        } else if tokio::time::Instant::now() > deadline {
            return Err(CliError::Other(
                "the metrics service gave no scorecard in 30 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!();
    print!("{}", crate::commands::metrics::render_scorecard(&card));
    println!();
    println!("Closeout is running:");
    println!("  findings  {findings_addr}   (CLOSEOUT_FINDINGS_ADDR)");
    println!("  tracker   {tracker_addr}   (CLOSEOUT_TRACKER_ADDR)");
    println!("  metrics   {metrics_addr}   (CLOSEOUT_METRICS_ADDR)");
    println!(
        "  notify    {scheme}://127.0.0.1:{}   (CLOSEOUT_NOTIFY_ADDR; deliveries in its log)",
        services[3].port
    );
    if let Some(tls) = tls {
        println!(
            "  TLS: DEVELOPMENT-ONLY certificates from the CA {} (CLOSEOUT_TLS_CA)",
            tls.ca.display()
        );
    }
    println!(
        "  Prometheus: http://127.0.0.1:{}/metrics, :{}, :{}, :{}",
        services[0].metrics_port,
        services[1].metrics_port,
        services[2].metrics_port,
        services[3].metrics_port
    );
    println!("  NATS      {}   (events on closeout.>)", args.nats_url);
    println!(
        "  reflection (grpcurl -plaintext): 127.0.0.1:{}, :{}, :{}, :{}",
        services[0].port + 100,
        services[1].port + 100,
        services[2].port + 100,
        services[3].port + 100
    );
    let mut credentials = crate::commands::token::Credentials {
        tls_ca: tls.map(|t| t.ca.clone()),
        ..Default::default()
    };
    for (role, org) in [
        ("inspectorate", None),
        ("inspected-body", Some(organisation.as_str())),
        ("viewer", None),
    ] {
        credentials
            .tokens
            .insert(role.to_string(), dev_token(key, role, org)?);
    }
    let credentials_path = match &args.credentials {
        Some(path) => Some(path.clone()),
        None => crate::commands::token::default_credentials_path(),
    };
    println!();
    println!(
        "Development tokens (valid 7 days; signed by {}):",
        key.public_key.display()
    );
    for (role, token) in &credentials.tokens {
        let who = if role == "inspected-body" {
            format!("{role} ({organisation})")
        } else {
            role.clone()
        };
        println!("  {who}:\n    {token}");
    }
    match &credentials_path {
        Some(path) => {
            credentials.save(path)?;
            println!(
                "Written to {}: the CLI uses the inspectorate token; --as-role inspected-body or --as-role viewer picks another.",
                path.display()
            );
            if tls.is_some() {
                println!(
                    "With it the CLI's default addresses (host:port) trust the development CA over TLS."
                );
            }
        }
        None => println!("No credentials file (no $HOME): pass --token or set CLOSEOUT_TOKEN."),
    }
    println!("Try: closeout items --org {organisation}    closeout watch --org {organisation}");
    let web = format!("{scheme}://127.0.0.1:{}", args.web_port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !reachable(&format!("127.0.0.1:{}", args.web_port)).await {
        if tokio::time::Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "the web console did not listen on {web} in 30 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!();
    println!("Sign in to the web console as:");
    for (role, token) in &credentials.tokens {
        println!("  {role:<15} {web}/login?token={token}");
    }
    if let Some(tls) = tls {
        println!(
            "Browsers do not know the development CA: import {} or accept the warning.",
            tls.ca.display()
        );
    }
    if !args.once {
        println!("Press Ctrl-C to stop.");
    }
    println!("Web console: {web}");
    if args.once {
        return Ok(());
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        status = wait_any(children) => Err(CliError::Other(format!("a service stopped unexpectedly ({status}); see its log above"))),
    }
}

async fn wait_any(children: &mut [Child]) -> String {
    loop {
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return status.to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn dev_args(extra: &[&str]) -> DevArgs {
        use clap::{Args as _, FromArgMatches as _};
        let matches = DevArgs::augment_args(clap::Command::new("dev"))
            .try_get_matches_from(std::iter::once("dev").chain(extra.iter().copied()))
            .unwrap();
        DevArgs::from_arg_matches(&matches).unwrap()
    }

    /// The variables a command sets (`Some`) or removes (`None`).
    fn envs(command: &Command) -> HashMap<String, Option<String>> {
        command
            .as_std()
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    fn set<'a>(envs: &'a HashMap<String, Option<String>>, name: &str) -> Option<&'a str> {
        envs.get(name).and_then(|v| v.as_deref())
    }

    #[test]
    fn tls_is_off_by_default_and_on_with_the_flag() {
        assert!(!dev_args(&[]).tls);
        assert!(dev_args(&["--tls"]).tls);
    }

    #[test]
    fn tls_material_is_made_once_and_the_children_are_told_to_use_it() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let tls = dev_tls(&certs).unwrap();
        for path in [&tls.ca, &tls.cert, &tls.key] {
            assert!(path.is_absolute() && path.is_file(), "{}", path.display());
        }
        let ca = std::fs::read_to_string(&tls.ca).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        // A second run keeps the set: running services keep their CA.
        dev_tls(&certs).unwrap();
        assert_eq!(std::fs::read_to_string(&tls.ca).unwrap(), ca);

        let args = dev_args(&["--tls", "--base-port", "41000", "--web-port", "41100"]);
        let service = Service {
            name: "tracker",
            binary: "closeout-tracker",
            database: "closeout_tracker",
            port: 41001,
            metrics_port: 41101,
        };
        let key = dir.path().join("dev.pub.pem");
        let path = |p: &Path| p.to_str().unwrap().to_string();
        let on = envs(&service_command(
            &service,
            Path::new("x"),
            &args,
            &key,
            Some(&tls),
        ));
        assert_eq!(
            set(&on, "CLOSEOUT_GRPC_TLS_CERT"),
            Some(path(&tls.cert).as_str())
        );
        assert_eq!(
            set(&on, "CLOSEOUT_GRPC_TLS_KEY"),
            Some(path(&tls.key).as_str())
        );
        assert_eq!(set(&on, "CLOSEOUT_GRPC_ADDR"), Some("127.0.0.1:41001"));
        let off = envs(&service_command(
            &service,
            Path::new("x"),
            &args,
            &key,
            None,
        ));
        // Plain: nothing inherited turns TLS on behind the addresses printed.
        assert_eq!(off.get("CLOSEOUT_GRPC_TLS_CERT"), Some(&None));
        assert_eq!(off.get("CLOSEOUT_GRPC_TLS_CLIENT_CA"), Some(&None));

        let services = [41000, 41001, 41002].map(|port| Service {
            name: "s",
            binary: "b",
            database: "d",
            port,
            metrics_port: 0,
        });
        let web = envs(&web_command(
            Path::new("x"),
            &args,
            &services,
            &key,
            Some(&tls),
        ));
        assert_eq!(
            set(&web, "CLOSEOUT_FINDINGS_ADDR"),
            Some("https://127.0.0.1:41000")
        );
        assert_eq!(
            set(&web, "CLOSEOUT_METRICS_ADDR"),
            Some("https://127.0.0.1:41002")
        );
        assert_eq!(set(&web, "CLOSEOUT_TLS_CA"), Some(path(&tls.ca).as_str()));
        assert_eq!(
            set(&web, "CLOSEOUT_WEB_TLS_CERT"),
            Some(path(&tls.cert).as_str())
        );
        assert_eq!(set(&web, "CLOSEOUT_WEB_ADDR"), Some("127.0.0.1:41100"));
        let plain = envs(&web_command(Path::new("x"), &args, &services, &key, None));
        assert_eq!(
            set(&plain, "CLOSEOUT_TRACKER_ADDR"),
            Some("http://127.0.0.1:41001")
        );
        assert_eq!(plain.get("CLOSEOUT_TLS_CA"), Some(&None));
        assert_eq!(plain.get("CLOSEOUT_WEB_TLS_CERT"), Some(&None));
    }

    #[test]
    fn the_credentials_file_with_the_ca_makes_default_addresses_use_tls() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dev_tls(&dir.path().join("certs")).unwrap();
        let file = dir.path().join("credentials.toml");
        let credentials = crate::commands::token::Credentials {
            tls_ca: Some(tls.ca.clone()),
            ..Default::default()
        };
        credentials.save(&file).unwrap();
        let identity = Identity {
            credentials: Some(file.clone()),
            ..Identity::default()
        };
        // The CLI's default address form: host:port.
        let chosen = identity.client_tls_for("127.0.0.1:50052");
        assert_eq!(chosen.ca.as_deref(), Some(tls.ca.as_path()));
        assert_eq!(
            chosen.uri("127.0.0.1:50052").unwrap(),
            ("https://127.0.0.1:50052".to_string(), true)
        );
        assert!(chosen.endpoint("127.0.0.1:50052").is_ok());
        // An address that says http:// asks for plain; the file's CA does
        // not turn that into a refusal.
        let plain = identity.client_tls_for("http://127.0.0.1:50052");
        assert_eq!(
            plain.uri("http://127.0.0.1:50052").unwrap(),
            ("http://127.0.0.1:50052".to_string(), false)
        );
        // A CA given as a flag still refuses http://.
        let mut flagged = identity.clone();
        flagged.tls.ca = Some(tls.ca.clone());
        assert!(
            flagged
                .client_tls_for("http://127.0.0.1:50052")
                .uri("http://127.0.0.1:50052")
                .is_err()
        );
        // `closeout dev` without --tls writes no CA: plain again.
        crate::commands::token::Credentials::default()
            .save(&file)
            .unwrap();
        assert_eq!(
            identity
                .client_tls_for("127.0.0.1:50052")
                .uri("127.0.0.1:50052")
                .unwrap(),
            ("http://127.0.0.1:50052".to_string(), false)
        );
    }

    #[test]
    fn derives_addresses_and_database_urls() {
        assert_eq!(host_port("nats://127.0.0.1:4222", 4222), "127.0.0.1:4222");
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/postgres", 5432),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("postgres://db/x", 5432), "db:5432");
        assert_eq!(
            database_url(
                "postgres://postgres@127.0.0.1:5432/postgres",
                "closeout_tracker"
            ),
            "postgres://postgres@127.0.0.1:5432/closeout_tracker"
        );
        assert_eq!(
            database_url("postgres://u:p@h:1/x?sslmode=disable", "d"),
            "postgres://u:p@h:1/d?sslmode=disable"
        );
    }
}
