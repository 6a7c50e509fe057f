//! What the end-to-end tests share: starting the real services on port 0
//! against their own databases and one private stream, calling as a role,
//! and waiting for eventually-consistent results.

#![allow(dead_code)] // each test binary uses its own part

use closeout_service::config::{CommonConfig, LogFormat};
use closeout_testkit::{TestBus, TestDatabase};

/// The reference report (HMICFRS, OGL v3.0; tests/fixtures/NOTICE.md).
pub const SAMPLE: &str = include_str!("../../fixtures/peel-2018-19-hertfordshire.txt");

/// Service configuration for `db` and the test's stream, on port 0.
pub fn common(db: &TestDatabase, bus: &TestBus) -> CommonConfig {
    let bus = bus.config();
    CommonConfig {
        database_url: db.url().to_string(),
        nats_url: bus.nats_url,
        grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
        stream_name: bus.stream_name,
        subject_prefix: bus.subject_prefix,
        database_max_connections: 5,
        log_format: LogFormat::Text,
        auth: closeout_service::config::AuthConfig::trusting(vec![
            closeout_testkit::token_public_key().to_path_buf(),
        ]),
        tls: Default::default(),
        reflection_addr: None,
    }
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub async fn start_findings(
    db: &TestDatabase,
    bus: &TestBus,
) -> closeout_findings::RunningFindings {
    closeout_findings::start(
        closeout_findings::FindingsConfig {
            common: common(db, bus),
            metrics_http_addr: any_port(),
            max_report_bytes: 5 * 1024 * 1024,
        },
        std::future::pending(),
    )
    .await
    .unwrap()
}

pub async fn start_tracker(db: &TestDatabase, bus: &TestBus) -> closeout_tracker::RunningTracker {
    let mut config = closeout_tracker::TrackerConfig::new(common(db, bus));
    config.metrics_http_addr = any_port();
    closeout_tracker::start(config, std::future::pending())
        .await
        .unwrap()
}

pub async fn start_metrics(db: &TestDatabase, bus: &TestBus) -> closeout_metrics::RunningMetrics {
    closeout_metrics::start(
        closeout_metrics::MetricsConfig {
            common: common(db, bus),
            metrics_http_addr: any_port(),
        },
        std::future::pending(),
    )
    .await
    .unwrap()
}

/// Calling as a role and waiting are the testkit's.
#[allow(unused_imports)] // each test binary uses its own part
pub use closeout_testkit::{as_role, eventually, inspectorate};
