//! `closeout dev`: the whole system on one machine, for trying it out.
//! Checks PostgreSQL and NATS, creates each service's database, starts the
//! four service binaries (found next to this one; notify with its log-only
//! sink on, so deliveries show in the log) as child processes with
//! their logs prefixed, imports the sample report, prints its scorecard and
//! the addresses to connect to, and stops everything cleanly on Ctrl-C.
//! Running it again reuses the databases; the import is then a no-op.

use crate::commands::{Identity, connect};
use crate::error::CliError;
use clap::Args;
use closeout_proto as pb;
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
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
    /// Import this report instead of the built-in sample.
    #[arg(long)]
    report: Option<String>,
    /// Start, import, print, then stop instead of waiting for Ctrl-C.
    #[arg(long)]
    once: bool,
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

fn spawn(service: &Service, binary: &Path, args: &DevArgs) -> Result<Child, CliError> {
    let mut child = Command::new(binary)
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
        .env("CLOSEOUT_NOTIFY_ALLOW_LOOPBACK_HTTP", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CliError::Other(format!("starting {}: {e}", binary.display())))?;
    let prefix = format!("[{:<8}]", service.name);
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
    Ok(child)
}

async fn wait_serving(name: &str, addr: &str, children: &mut [Child]) -> Result<(), CliError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(CliError::Other(format!(
                    "a service exited while starting ({status}); see its log above"
                )));
            }
        }
        if let Ok(channel) = connect(addr).await {
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
    for service in &services {
        create_database(&args.postgres_url, service.database).await?;
    }
    let mut children = Vec::new();
    for (service, binary) in services.iter().zip(&binaries) {
        children.push(spawn(service, binary, &args)?);
    }
    let result = run_started(&args, &services, &mut children).await;
    stop_all(&mut children).await;
    println!("closeout dev: stopped");
    result
}

async fn run_started(
    args: &DevArgs,
    services: &[Service],
    children: &mut [Child],
) -> Result<(), CliError> {
    for service in services {
        wait_serving(
            service.name,
            &format!("http://127.0.0.1:{}", service.port),
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
    let identity = Identity {
        role: "inspectorate".into(),
        organisation: String::new(),
        subject: "closeout-dev".into(),
    };
    let findings_addr = format!("http://127.0.0.1:{}", services[0].port);
    let tracker_addr = format!("http://127.0.0.1:{}", services[1].port);
    let metrics_addr = format!("http://127.0.0.1:{}", services[2].port);
    let mut findings = FindingsServiceClient::new(connect(&findings_addr).await?)
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
    let mut tracker = TrackerServiceClient::new(connect(&tracker_addr).await?);
    let mut metrics = MetricsServiceClient::new(connect(&metrics_addr).await?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let card = loop {
        let items = tracker
            .list_items(pb::ListItemsRequest {
                organisation_id: organisation.clone(),
                page_size: 500,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().items.len())
            .unwrap_or(0);
        let card = metrics
            .get_scorecard(pb::GetScorecardRequest {
                organisation_id: organisation.clone(),
                as_of: None,
            })
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
        "  notify    http://127.0.0.1:{}   (CLOSEOUT_NOTIFY_ADDR; deliveries in its log)",
        services[3].port
    );
    println!(
        "  Prometheus: http://127.0.0.1:{}/metrics, :{}, :{}, :{}",
        services[0].metrics_port,
        services[1].metrics_port,
        services[2].metrics_port,
        services[3].metrics_port
    );
    println!("  NATS      {}   (events on closeout.>)", args.nats_url);
    println!("Try: closeout items --org {organisation}    closeout watch --org {organisation}");
    if args.once {
        return Ok(());
    }
    println!("Press Ctrl-C to stop.");
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
