//! The first steps of every service's start-up, in one place: connect to
//! its PostgreSQL database, apply its migrations and the outbox schema,
//! connect to NATS and make sure the event stream exists; and the health
//! watch that follows both.

use crate::config::CommonConfig;
use crate::host::StartError;
use closeout_bus::{Bus, BusConfig};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// A pooled connection idle this long is pinged before it is used.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The pool (migrated, with the outbox tables) and the bus (stream
/// ensured) of `service` ("findings", …).
pub async fn connect(
    common: &CommonConfig,
    migrator: &Migrator,
    service: &str,
) -> Result<(PgPool, Bus), StartError> {
    // Every process that connects comes through here (`rebuild` included,
    // which starts no Host): PostgreSQL and NATS may be over TLS.
    crate::tls::install_crypto_provider();
    let options = crate::tls::database_options(common).map_err(StartError::Config)?;
    let security = crate::tls::nats_security(&common.tls).map_err(StartError::Config)?;
    let pool = PgPoolOptions::new()
        .max_connections(common.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out: one more round trip
        // per call, as much as GetItem's own query. A connection in steady
        // use is known alive; only one idle for a while (the database may
        // have restarted meanwhile) is pinged, and replaced if it fails.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    migrator.run(&pool).await?;
    closeout_bus::outbox::install_schema(&pool).await?;
    let bus = Bus::connect(BusConfig {
        nats_url: common.nats_url.clone(),
        stream_name: common.stream_name.clone(),
        subject_prefix: common.subject_prefix.clone(),
        client_name: format!("closeout-{service}"),
        security,
        ..Default::default()
    })
    .await?;
    bus.ensure_stream().await?;
    Ok((pool, bus))
}

/// Keeps each of `service_names`' health SERVING exactly while PostgreSQL
/// answers and NATS is connected (checked every two seconds).
pub fn watch_health(
    reporter: tonic_health::server::HealthReporter,
    service_names: Vec<&'static str>,
    pool: PgPool,
    bus: Bus,
) -> tokio::task::JoinHandle<()> {
    crate::server::spawn_health_watch(reporter, service_names, Duration::from_secs(2), move || {
        let pool = pool.clone();
        let bus = bus.clone();
        async move {
            let database = sqlx::query("SELECT 1").execute(&pool).await.is_ok();
            database && bus.is_healthy()
        }
    })
}
