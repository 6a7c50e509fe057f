//! The services under measurement: a running stack named by addresses and
//! a bearer token (like the `closeout` command line), or a private one on
//! databases and a stream of its own (the testkit's), removed at the end.
//! A private stack runs in this process, or, with `--processes`, as the
//! service binaries beside the bench's own (so each service's memory and
//! CPU can be seen, and profiled, on its own).

use closeout_service::config::{AuthConfig, CommonConfig, LogFormat};
use closeout_testkit::{Caller, TestBus, TestDatabase};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// Where the services are and how to call them.
pub struct Stack {
    pub findings: Channel,
    pub tracker: Channel,
    /// The tracker's address, for streams on connections of their own.
    pub tracker_addr: String,
    /// None until the metrics service is started (a private stack starts
    /// it late, to measure it draining a backlog).
    pub metrics: Option<Channel>,
    token: String,
    /// The private services, if this process started them.
    pub private: Option<Private>,
}

/// Which private databases [`Stack::analyse`] gathers statistics of.
#[derive(Clone, Copy, Debug)]
pub enum Filled {
    /// Findings and the tracker, once the tracker has opened the data's items.
    Tracker,
    /// Metrics, once it has caught up.
    Metrics,
}

/// A stack this process started.
pub struct Private {
    pub findings_db: TestDatabase,
    pub tracker_db: TestDatabase,
    pub metrics_db: TestDatabase,
    pub bus: TestBus,
    /// Findings, tracker, then metrics once started.
    services: Vec<Service>,
    /// Where the service binaries are, when they run as processes.
    binaries: Option<PathBuf>,
    /// Where the service processes write their logs.
    log_dir: PathBuf,
}

/// One private service: in this process or a child process.
enum Service {
    InProcess(closeout_service::Running),
    Process {
        name: &'static str,
        child: tokio::process::Child,
    },
}

/// Resident memory of a process: (now, peak), in MB.
pub fn resident_mb(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Connects to `addr` (`host:port` or a URL).
pub async fn connect(addr: &str) -> anyhow::Result<Channel> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri.clone())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {uri}: {e}"))
}

/// Connects to a service process that is starting: retries until its
/// gRPC port answers (migrations run first) or `limit` passes.
async fn connect_when_up(addr: &str, limit: Duration) -> anyhow::Result<Channel> {
    let deadline = Instant::now() + limit;
    loop {
        match connect(addr).await {
            Ok(channel) => return Ok(channel),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn common(db: &TestDatabase, bus: &TestBus) -> anyhow::Result<CommonConfig> {
    let bus = bus.config();
    Ok(CommonConfig {
        database_url: db.url().to_string(),
        nats_url: bus.nats_url,
        grpc_addr: Some("127.0.0.1:0".parse()?),
        stream_name: bus.stream_name,
        subject_prefix: bus.subject_prefix,
        database_max_connections: 20,
        log_format: LogFormat::Text,
        auth: AuthConfig::trusting(vec![closeout_testkit::token_public_key().to_path_buf()]),
        tls: Default::default(),
        reflection_addr: None,
    })
}

/// A free local port (bound and released; the service binds it next).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The largest report the private findings service accepts: room for the
/// `--million` generator's reports.
const MAX_REPORT_BYTES: usize = 8 * 1024 * 1024;

impl Private {
    /// The environment a service process reads its configuration from.
    fn environment(&self, db: &TestDatabase, port: u16) -> Vec<(String, String)> {
        let bus = self.bus.config();
        let mut env = vec![
            ("CLOSEOUT_DATABASE_URL", db.url().to_string()),
            ("CLOSEOUT_NATS_URL", bus.nats_url),
            ("CLOSEOUT_GRPC_ADDR", format!("127.0.0.1:{port}")),
            ("CLOSEOUT_STREAM", bus.stream_name),
            ("CLOSEOUT_SUBJECT_PREFIX", bus.subject_prefix),
            ("CLOSEOUT_DATABASE_MAX_CONNECTIONS", "20".into()),
            ("CLOSEOUT_METRICS_HTTP_ADDR", "127.0.0.1:0".into()),
            ("CLOSEOUT_MAX_REPORT_BYTES", MAX_REPORT_BYTES.to_string()),
            (
                "CLOSEOUT_AUTH_PUBLIC_KEYS",
                closeout_testkit::token_public_key().display().to_string(),
            ),
        ];
        if std::env::var_os("RUST_LOG").is_none() {
            env.push(("RUST_LOG", "warn".into()));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Starts `binary` (closeout-findings, …) on `db`, with `args`;
    /// returns the child and its gRPC address.
    fn spawn(
        &self,
        binary: &'static str,
        db: &TestDatabase,
        args: &[&str],
    ) -> anyhow::Result<(tokio::process::Child, String)> {
        let dir = self
            .binaries
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no service binaries"))?;
        let path = dir.join(binary);
        let port = free_port()?;
        let log_name = if args.is_empty() {
            format!("{binary}.log")
        } else {
            format!("{binary}-{}.log", args.join("-"))
        };
        let log = std::fs::File::create(self.log_dir.join(log_name))?;
        let child = tokio::process::Command::new(&path)
            .args(args)
            .envs(self.environment(db, port))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "starting {} (build it with `cargo build --release -p {binary}`): {e}",
                    path.display()
                )
            })?;
        Ok((child, format!("127.0.0.1:{port}")))
    }
}

impl Stack {
    /// Gathers the planner's statistics of the private databases the bench
    /// has just filled (`filled`): a production server's autovacuum would
    /// have analysed tables that grew this much, but a server run with
    /// `autovacuum = off` (this machine's CI server) never does, and the
    /// reads would then be measured with plans made for empty tables.
    /// Returns the server's `autovacuum` setting; a running stack's
    /// databases are left alone.
    pub async fn analyse(&self, filled: Filled) -> anyhow::Result<Option<String>> {
        let Some(private) = &self.private else {
            return Ok(None);
        };
        let databases = match filled {
            Filled::Tracker => vec![&private.findings_db, &private.tracker_db],
            Filled::Metrics => vec![&private.metrics_db],
        };
        for database in databases {
            sqlx::raw_sql("ANALYZE").execute(database.pool()).await?;
        }
        let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(private.tracker_db.pool())
            .await?;
        Ok(Some(autovacuum))
    }

    /// A running stack at these addresses, called with `token`.
    pub async fn external(
        findings: &str,
        tracker: &str,
        metrics: &str,
        token: String,
    ) -> anyhow::Result<Stack> {
        Ok(Stack {
            findings: connect(findings).await?,
            tracker: connect(tracker).await?,
            tracker_addr: tracker.to_string(),
            metrics: Some(connect(metrics).await?),
            token,
            private: None,
        })
    }

    /// Starts findings and tracker on fresh databases and a private stream
    /// (in this process, or as the binaries in `binaries`); metrics waits
    /// for [`Stack::start_metrics`].
    pub async fn private(binaries: Option<PathBuf>) -> anyhow::Result<Stack> {
        let findings_db = TestDatabase::create().await;
        let tracker_db = TestDatabase::create().await;
        let metrics_db = TestDatabase::create().await;
        let bus = TestBus::new();
        // Creates the stream before either service publishes.
        drop(bus.connect().await);
        let log_dir =
            std::env::temp_dir().join(format!("closeout-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&log_dir)?;
        let mut private = Private {
            findings_db,
            tracker_db,
            metrics_db,
            bus,
            services: Vec::new(),
            binaries,
            log_dir,
        };
        let (findings, tracker, tracker_addr) = if private.binaries.is_some() {
            eprintln!(
                "closeout-bench: service processes log to {}",
                private.log_dir.display()
            );
            let (child, findings) =
                private.spawn("closeout-findings", &private.findings_db, &[])?;
            private.services.push(Service::Process {
                name: "findings",
                child,
            });
            let (child, tracker) = private.spawn("closeout-tracker", &private.tracker_db, &[])?;
            private.services.push(Service::Process {
                name: "tracker",
                child,
            });
            (
                connect_when_up(&findings, Duration::from_secs(60)).await?,
                connect_when_up(&tracker, Duration::from_secs(60)).await?,
                tracker,
            )
        } else {
            let findings = closeout_findings::start(
                closeout_findings::FindingsConfig {
                    common: common(&private.findings_db, &private.bus)?,
                    metrics_http_addr: "127.0.0.1:0".parse()?,
                    max_report_bytes: MAX_REPORT_BYTES,
                },
                std::future::pending(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("starting findings: {e}"))?;
            let mut config =
                closeout_tracker::TrackerConfig::new(common(&private.tracker_db, &private.bus)?);
            config.metrics_http_addr = "127.0.0.1:0".parse()?;
            let tracker = closeout_tracker::start(config, std::future::pending())
                .await
                .map_err(|e| anyhow::anyhow!("starting tracker: {e}"))?;
            let channels = (
                connect(&findings.addr.to_string()).await?,
                connect(&tracker.addr.to_string()).await?,
                tracker.addr.to_string(),
            );
            private.services.push(Service::InProcess(findings));
            private.services.push(Service::InProcess(tracker));
            channels
        };
        Ok(Stack {
            findings,
            tracker,
            tracker_addr,
            metrics: None,
            token: Caller::inspectorate().subject("bench:closeout").token(),
            private: Some(private),
        })
    }

    /// Starts the private stack's metrics service (an external stack has
    /// one already).
    pub async fn start_metrics(&mut self) -> anyhow::Result<()> {
        let Some(private) = self.private.as_mut() else {
            return Ok(());
        };
        if private.binaries.is_some() {
            let (child, addr) = private.spawn("closeout-metrics", &private.metrics_db, &[])?;
            private.services.push(Service::Process {
                name: "metrics",
                child,
            });
            self.metrics = Some(connect_when_up(&addr, Duration::from_secs(60)).await?);
            return Ok(());
        }
        let metrics = closeout_metrics::start(
            closeout_metrics::MetricsConfig {
                common: common(&private.metrics_db, &private.bus)?,
                metrics_http_addr: "127.0.0.1:0".parse()?,
            },
            std::future::pending(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("starting metrics: {e}"))?;
        self.metrics = Some(connect(&metrics.addr.to_string()).await?);
        private.services.push(Service::InProcess(metrics));
        Ok(())
    }

    /// Stops the private metrics service and runs `closeout-metrics
    /// rebuild` on its database (the binary, or the same function in this
    /// process); returns (events in the history afterwards, wall time, the
    /// rebuild process's peak resident MB when it was a process).
    pub async fn rebuild_metrics(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<(i64, Duration, Option<f64>)> {
        let private = self
            .private
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("only a private stack's metrics are rebuilt"))?;
        let metrics = (private.services.len() == 3)
            .then(|| private.services.pop())
            .flatten();
        if let Some(service) = metrics {
            stop(service).await;
        }
        self.metrics = None;
        if private.binaries.is_some() {
            let timeout_secs = timeout.as_secs().to_string();
            let (mut child, _) = private.spawn(
                "closeout-metrics",
                &private.metrics_db,
                &["rebuild", "--timeout-secs", &timeout_secs],
            )?;
            let started = Instant::now();
            let mut peak: f64 = 0.0;
            let status = loop {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                if let Some((_, hwm)) = child.id().and_then(resident_mb) {
                    peak = peak.max(hwm);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let took = started.elapsed();
            anyhow::ensure!(
                status.success(),
                "closeout-metrics rebuild failed ({status}); its log is in {}",
                private.log_dir.display()
            );
            let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(private.metrics_db.pool())
                .await
                .unwrap_or(-1);
            return Ok((events, took, Some(peak)));
        }
        let config = closeout_metrics::MetricsConfig {
            common: common(&private.metrics_db, &private.bus)?,
            metrics_http_addr: "127.0.0.1:0".parse()?,
        };
        let started = Instant::now();
        let done = closeout_metrics::rebuild(&config, timeout)
            .await
            .map_err(|e| anyhow::anyhow!("rebuild: {e}"))?;
        Ok((done.events, started.elapsed(), None))
    }

    /// Resident memory of each private service process (name, now MB,
    /// peak MB); in-process services are one row, this process.
    pub fn resident(&self) -> Vec<(String, f64, f64)> {
        let Some(private) = &self.private else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for service in &private.services {
            if let Service::Process { name, child } = service
                && let Some((now, peak)) = child.id().and_then(resident_mb)
            {
                rows.push((name.to_string(), now, peak));
            }
        }
        if private.binaries.is_none()
            && let Some((now, peak)) = resident_mb(std::process::id())
        {
            rows.push((
                "bench process with findings, tracker and metrics in it".to_string(),
                now,
                peak,
            ));
        }
        rows
    }

    /// The process ids of the private service processes, by name.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        let Some(private) = &self.private else {
            return Vec::new();
        };
        private
            .services
            .iter()
            .filter_map(|s| match s {
                Service::Process { name, child } => child.id().map(|pid| (*name, pid)),
                Service::InProcess(_) => None,
            })
            .collect()
    }

    /// `message` with this stack's bearer token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        with_token(&self.token, message)
    }

    /// The token, for tasks that outlive a borrow of the stack.
    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// Stops the private services and removes their databases and stream.
    pub async fn shut_down(self) {
        if let Some(mut private) = self.private {
            while let Some(service) = private.services.pop() {
                stop(service).await;
            }
            private.bus.cleanup().await;
            private.findings_db.drop_database().await;
            private.tracker_db.drop_database().await;
            private.metrics_db.drop_database().await;
            let _ = std::fs::remove_dir_all(&private.log_dir);
        }
    }
}

/// Stops a service: in process through its handle, a process with
/// SIGTERM (then SIGKILL after 10 s).
async fn stop(service: Service) {
    match service {
        Service::InProcess(running) => {
            if let Err(e) = running.stop().await {
                eprintln!("closeout-bench: stopping a service: {e}");
            }
        }
        Service::Process { name, mut child } => {
            if let Some(pid) = child.id() {
                let _ = tokio::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("closeout-bench: {name} did not stop in 10 s; killing it");
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// `message` carrying `token` as `authorization: Bearer`.
pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}
