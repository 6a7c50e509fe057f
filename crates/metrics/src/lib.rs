//! The metrics service: read models built only from events.
//!
//! It consumes every event of the stream (one durable consumer per source
//! service), stores each in an append-only history and folds it into
//! current-state read models, idempotently and version-aware; it answers
//! scorecards, closure statistics, peer comparisons and grade and indicator
//! series over gRPC, live or as of any date (folding the history up to the
//! end of that day). The folds ([`model`]) and the answers ([`queries`])
//! are pure; [`store`] and [`consume`] do the I/O.
//!
//! Its parts, declared on the shared host (`closeout_service::host`,
//! which owns start-up and shutdown order): the consumers (one per source
//! service), the size of the history as a Prometheus figure, and
//! MetricsService. It publishes no events, so it runs no relay.
//!
//! [`rebuild`] drops the read models and replays the stream from the start
//! ([`replay`]: the history first, then the items folded from it).

pub mod consume;
pub(crate) mod dated;
#[doc(hidden)]
pub use dated::measure as measure_as_of;
pub(crate) mod error;
pub(crate) mod grpc;
pub(crate) mod model;
pub(crate) mod queries;
pub(crate) mod rename;
pub(crate) mod replay;
pub(crate) mod stats;
pub(crate) mod store;
pub(crate) mod tally;

use clap::Args;
use closeout_proto::metrics_service_server::MetricsServiceServer;
use closeout_service::{CommonConfig, Host, ServiceSpec, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Every read-model table (for tests comparing a rebuild with the live
/// consumers). Not an API.
#[doc(hidden)]
pub use store::READ_MODEL_TABLES;

/// Migrations of the metrics database, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The metrics service: gRPC on 50053 and Prometheus on 9093 by default.
pub const SERVICE: ServiceSpec = ServiceSpec::new("metrics", 50053, 9093, &MIGRATOR);

/// Configuration of `closeout-metrics`.
#[derive(Clone, Debug, Args)]
pub struct MetricsConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Address of the Prometheus endpoint, `GET /metrics` (port 0 picks a
    /// free port).
    #[arg(long, env = "CLOSEOUT_METRICS_HTTP_ADDR", default_value_t = SERVICE.default_metrics_http_addr)]
    pub metrics_http_addr: SocketAddr,
}

/// A running metrics service (used by `main` and by tests).
pub type RunningMetrics = closeout_service::Running;

/// Starts the service; it runs until `stop` or until `signal` resolves.
pub async fn start(
    config: MetricsConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningMetrics, StartError> {
    let mut host = Host::connect(&SERVICE, &config.common, config.metrics_http_addr).await?;
    let pool = host.pool().clone();
    // A rebuild stopped before folding the items: finish it first.
    replay::finish_if_pending(&pool).await?;
    dated::fill_if_pending(&pool).await?;
    let consumers = consume::Consumers::spawn(&pool, host.bus())?;
    for (name, stats) in consumers.stats() {
        host.watch_consumer(name, stats);
    }
    host.stop_after_serving(consumers.stop());
    let history = host.prometheus().gauge(
        "closeout_metrics_history_events",
        "Events stored in the metrics history.",
    );
    let counted = pool.clone();
    host.prometheus().refresh_before_scrape(move || {
        let (history, pool) = (history.clone(), counted.clone());
        async move {
            if let Ok(n) = store::event_count(&pool).await {
                history.set(n);
            }
        }
    });
    host.serve(MetricsServiceServer::new(grpc::MetricsApi::new(pool)));
    host.start(signal).await
}

/// What a rebuild did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// Events in the history afterwards.
    pub events: i64,
    pub took: Duration,
    /// The replay of the stream into the history (step 1), and the time
    /// its writers spent in transactions (summed over the two subjects).
    pub replay_took: Duration,
    pub replay_writing: Duration,
    /// Building the history's secondary indexes after the replay.
    pub indexes_took: Duration,
    /// Items folded after the replay, and how long that took.
    pub items: usize,
    pub fold_took: Duration,
    /// The as-of deltas' refill, beside the fold.
    pub refill_took: Duration,
    /// The fold and the refill side by side, from the start of the first
    /// to the end of the last.
    pub derived_took: Duration,
}

/// Drops the read models, the history and the consumers' applied-event
/// records, deletes the durable consumers, and replays the stream from the
/// start up to every message it held on the consumers' subjects when the
/// rebuild began (or fails at `timeout`), storing the history and folding
/// registrations and inspections; re-creates the durable consumers after
/// what it read; builds the history's indexes; then folds the items from
/// the history and derives their tallies in one transaction ([`replay`]),
/// beside the as-of deltas' refill.
///
/// Run it with the service stopped. (Were one running, nothing would be
/// lost: the tables are emptied before the consumers are deleted, so any
/// event applied in between is recorded and the replay skips it.)
pub async fn rebuild(config: &MetricsConfig, timeout: Duration) -> Result<Rebuilt, StartError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let (pool, bus) =
        closeout_service::backbone::connect(&config.common, &MIGRATOR, SERVICE.name).await?;
    let names: Vec<&str> = consume::CONSUMERS.iter().map(|(name, _)| *name).collect();
    // The consumers about to be deleted, so an answer from one of them
    // (a node that has not yet applied the deletion) is not taken for the
    // new one's.
    let replaced = consume::created_times(&bus).await;
    store::reset(&pool, &names).await?;
    // Built once after the replay instead of row by row (while the
    // rebuild is marked pending).
    replay::drop_history_indexes(&pool).await?;
    consume::delete_consumers(&bus)
        .await
        .map_err(|e| StartError::Service(format!("rebuild: {e}")))?;
    let goals = goals_until(&bus, &replaced, deadline)
        .await
        .ok_or_else(|| {
            StartError::Service("rebuild: the stream's leader did not answer".to_string())
        })?;
    let postgres_started = postgres_started(&pool).await?;
    let replay_started = Instant::now();
    let last: Vec<u64> = goals.iter().map(|g| g.last_sequence).collect();
    let replayed = replay::replay_history(
        &pool,
        &bus,
        &consume::filter_subjects(&bus),
        &last,
        deadline,
    )
    .await
    .map_err(|e| StartError::Service(format!("rebuild: {e}")))?;
    // The service's consumers continue after what the history holds.
    tokio::time::timeout_at(
        deadline.into(),
        replay::retrying("creating the consumers", || {
            consume::create_after(&bus, &replayed.last_sequences)
        }),
    )
    .await
    .map_err(|_| {
        StartError::Service(format!(
            "rebuild: the service's consumers could not be created within {timeout:?}"
        ))
    })?;
    // No wait for the durable consumers to reach the goals: the replay read
    // every subject up to its goal itself, and the consumers start after
    // it (or, made meanwhile by a running service, skip what the history
    // holds). Their state, read from a cluster electing a leader, proved
    // nothing more and could time out.
    let replay_took = replay_started.elapsed();
    tracing::info!(
        last_sequences = ?replayed.last_sequences,
        writing = ?replayed.writing,
        skipped = replayed.skipped,
        took = ?replay_took,
        "rebuild: history replayed"
    );
    let indexes_started = Instant::now();
    replay::create_history_indexes(&pool).await?;
    let indexes_took = indexes_started.elapsed();
    // Step 2 of the replay, the items and what counts them, beside the
    // as-of deltas' refill: both only read the history, and write tables
    // of their own.
    let derived_started = Instant::now();
    let fold = async {
        let started = Instant::now();
        let items = replay::fold_items(&pool).await?;
        Ok::<_, sqlx::Error>((items, started.elapsed()))
    };
    let refill = async {
        let started = Instant::now();
        dated::refill(&pool).await?;
        Ok::<_, sqlx::Error>(((), started.elapsed()))
    };
    let ((items, fold_took), ((), refill_took)) = tokio::try_join!(fold, refill)?;
    let derived_took = derived_started.elapsed();
    // The replay committed without waiting for the disk: one durable
    // commit flushes all of it, and a PostgreSQL restarted in between may
    // have lost writes the replay took as done.
    if durable_commit(&pool).await? != postgres_started {
        return Err(StartError::Service(
            "rebuild: PostgreSQL restarted during the replay; run the rebuild again".to_string(),
        ));
    }
    let events = store::event_count(&pool).await?;
    pool.close().await;
    Ok(Rebuilt {
        events,
        took: started.elapsed(),
        replay_took,
        replay_writing: replayed.writing,
        indexes_took,
        items,
        fold_took,
        refill_took,
        derived_took,
    })
}

/// Waits until every consumer exists and has acknowledged every message
/// the stream holds on its subjects now (the last sequence as the stream's
/// leader answers it), with nothing pending. See [`consume::caught_up`].
pub async fn wait_caught_up(bus: &closeout_bus::Bus, deadline: Instant) -> bool {
    match goals_until(bus, &[], deadline).await {
        Some(goals) => wait_for_goals(bus, &goals, deadline).await,
        None => false,
    }
}

const POLL: Duration = Duration::from_millis(50);

/// When the PostgreSQL server started (`pg_postmaster_start_time`).
async fn postgres_started(pool: &sqlx::PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_postmaster_start_time()::text")
        .fetch_one(pool)
        .await
}

/// Commits a transaction that has an id, with `synchronous_commit` on, so
/// its commit record, and the WAL of every commit before it, is flushed;
/// returns when the server started, read in that transaction.
async fn durable_commit(pool: &sqlx::PgPool) -> Result<String, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = on")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT txid_current()")
        .execute(&mut *tx)
        .await?;
    let started = sqlx::query_scalar("SELECT pg_postmaster_start_time()::text")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(started)
}

async fn goals_until(
    bus: &closeout_bus::Bus,
    replaced: &[Option<i128>],
    deadline: Instant,
) -> Option<Vec<consume::Goal>> {
    loop {
        if let Some(goals) = consume::goals(bus, replaced).await {
            return Some(goals);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_for_goals(
    bus: &closeout_bus::Bus,
    goals: &[consume::Goal],
    deadline: Instant,
) -> bool {
    loop {
        if consume::reached(bus, goals).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The live counted answers two ways, for the bench (`benches/tallies.rs`):
/// from the tallies, as the service answers, and by loading every item and
/// folding them as the service did before the tallies (the baseline and the
/// tests' oracle). Not an API.
#[doc(hidden)]
pub mod measure {
    use crate::store::{self, Scope};
    use crate::{queries, tally};
    use chrono::NaiveDate;
    use closeout_proto as pb;
    use sqlx::PgPool;

    /// Scorecard from the tallies.
    pub async fn scorecard_tallied(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::Scorecard>, sqlx::Error> {
        let (snapshot, tallies) = store::load_scorecard(pool, org, None).await?;
        Ok(tally::scorecard(&snapshot, &tallies, org, day).ok())
    }

    /// Scorecard by loading the organisation's items.
    pub async fn scorecard_folded(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::Scorecard>, sqlx::Error> {
        let scope = Scope {
            organisation: Some(org),
            content: true,
            items: true,
        };
        let snapshot = store::load_live(pool, scope).await?;
        Ok(queries::scorecard(&snapshot, org, day).ok())
    }

    /// Peer comparison from everyone's tallies, as the service reads them.
    pub async fn peers_tallied(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::GetPeerComparisonResponse>, sqlx::Error> {
        let (snapshot, tallies) = store::load_peers(pool, org, None).await?;
        Ok(tally::peer_comparison(&snapshot, &tallies, org, day).ok())
    }

    /// Peer comparison by loading every item.
    pub async fn peers_folded(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::GetPeerComparisonResponse>, sqlx::Error> {
        let scope = Scope {
            items: true,
            ..Scope::default()
        };
        let snapshot = store::load_live(pool, scope).await?;
        Ok(queries::peer_comparison(&snapshot, org, day).ok())
    }
}
