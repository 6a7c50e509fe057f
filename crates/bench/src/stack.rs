//! The services under measurement: a running stack named by addresses and
//! a bearer token (like the `closeout` command line), or a private one
//! started in this process on databases and a stream of its own (the
//! testkit's), removed at the end.

use closeout_service::config::{AuthConfig, CommonConfig, LogFormat};
use closeout_testkit::{Caller, TestBus, TestDatabase};
use tonic::transport::{Channel, Endpoint};

/// Where the services are and how to call them.
pub struct Stack {
    pub findings: Channel,
    pub tracker: Channel,
    /// None until the metrics service is started (a private stack starts
    /// it late, to measure it draining a backlog).
    pub metrics: Option<Channel>,
    token: String,
    /// The private services, if this process started them.
    pub private: Option<Private>,
}

/// A stack this process started.
pub struct Private {
    pub findings_db: TestDatabase,
    pub tracker_db: TestDatabase,
    pub metrics_db: TestDatabase,
    pub bus: TestBus,
    running: Vec<closeout_service::Running>,
}

/// Connects to `addr` (`host:port` or a URL).
pub async fn connect(addr: &str) -> anyhow::Result<Channel> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri.clone())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {uri}: {e}"))
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

impl Stack {
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
            metrics: Some(connect(metrics).await?),
            token,
            private: None,
        })
    }

    /// Starts findings and tracker in this process on fresh databases and
    /// a private stream; metrics waits for [`Stack::start_metrics`].
    pub async fn private() -> anyhow::Result<Stack> {
        let findings_db = TestDatabase::create().await;
        let tracker_db = TestDatabase::create().await;
        let metrics_db = TestDatabase::create().await;
        let bus = TestBus::new();
        // Creates the stream before either service publishes.
        drop(bus.connect().await);
        let findings = closeout_findings::start(
            closeout_findings::FindingsConfig {
                common: common(&findings_db, &bus)?,
                metrics_http_addr: "127.0.0.1:0".parse()?,
                max_report_bytes: 8 * 1024 * 1024,
            },
            std::future::pending(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("starting findings: {e}"))?;
        let mut config = closeout_tracker::TrackerConfig::new(common(&tracker_db, &bus)?);
        config.metrics_http_addr = "127.0.0.1:0".parse()?;
        let tracker = closeout_tracker::start(config, std::future::pending())
            .await
            .map_err(|e| anyhow::anyhow!("starting tracker: {e}"))?;
        let stack = Stack {
            findings: connect(&findings.addr.to_string()).await?,
            tracker: connect(&tracker.addr.to_string()).await?,
            metrics: None,
            token: Caller::inspectorate().subject("bench:closeout").token(),
            private: Some(Private {
                findings_db,
                tracker_db,
                metrics_db,
                bus,
                running: vec![findings, tracker],
            }),
        };
        Ok(stack)
    }

    /// Starts the private stack's metrics service (an external stack has
    /// one already).
    pub async fn start_metrics(&mut self) -> anyhow::Result<()> {
        let Some(private) = self.private.as_mut() else {
            return Ok(());
        };
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
        private.running.push(metrics);
        Ok(())
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
        if let Some(private) = self.private {
            for running in private.running.into_iter().rev() {
                if let Err(e) = running.stop().await {
                    eprintln!("closeout-bench: stopping a service: {e}");
                }
            }
            private.bus.cleanup().await;
            private.findings_db.drop_database().await;
            private.tracker_db.drop_database().await;
            private.metrics_db.drop_database().await;
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
