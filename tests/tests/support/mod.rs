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

/// Every read-model table of the metrics database (all but the bus's own
/// tables and the migrations'), as sorted JSON rows, without the
/// `received_at` column (when metrics received an event) and without
/// tallies of zero.
pub async fn metrics_read_models(
    pool: &sqlx::PgPool,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename NOT LIKE 'closeout\\_%' AND tablename NOT LIKE '\\_sqlx%' \
         ORDER BY tablename",
    )
    .fetch_all(pool)
    .await
    .expect("listing metrics' tables");
    let mut models = std::collections::BTreeMap::new();
    for table in tables {
        // A tally (or a dated delta or checkpoint of one) the live service
        // decremented to zero keeps its row; a rebuild never makes it. Both
        // answer the same. (A tally's count is its column n, else all its
        // bigint columns.)
        let zero = if table.starts_with("tally_")
            || table == "dated_tallies"
            || table == "dated_checkpoints"
        {
            let counts: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1 AND data_type = 'bigint'",
            )
            .bind(&table)
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("columns of {table}: {e}"));
            if counts.iter().any(|c| c == "n") {
                // A count keyed by other bigint columns (days to close).
                "WHERE t.n <> 0".to_string()
            } else if counts.is_empty() {
                String::new()
            } else {
                let all_zero: Vec<String> =
                    counts.iter().map(|c| format!("t.\"{c}\" = 0")).collect();
                format!("WHERE NOT ({})", all_zero.join(" AND "))
            }
        } else {
            String::new()
        };
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT (to_jsonb(t) - 'received_at')::text AS row FROM \"{table}\" AS t {zero} \
             ORDER BY row"
        ))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"));
        models.insert(table, rows);
    }
    models
}
