//! The outbox relay: publishes committed outbox rows to JetStream.
//!
//! One task per service process. It wakes on the outbox's in-process signal
//! ([`outbox::wakes`](crate::outbox::wakes), raised when this process
//! appends events and again when it commits them) and polls every
//! `poll_interval` as a back-stop (events written by another process). A
//! signal raised before the commit finds nothing yet, so after a signal the
//! relay looks again after 1, 2, 4, … ms ([`CHASE`]) until a pass finds
//! nothing new and the steps run out. Each pass first asks whether
//! anything is unsent (one cheap query), then, inside one transaction:
//!
//! 1. takes a transaction-scoped advisory lock, so that of several replicas
//!    sharing the database only one publishes at a time: two relays working
//!    on the same rows could interleave them out of order;
//! 2. reads the oldest unsent rows by `seq`;
//! 3. sends them all in order without waiting, then awaits the JetStream
//!    acks in order (one round trip for the batch instead of one per
//!    event); the rows before the first failure are the ones published;
//! 4. marks those as sent (the failed row gets `attempts` and
//!    `last_error`), sends one `NOTIFY closeout_outbox` for followers in
//!    other processes if anything was published, and commits without
//!    waiting for the disk (`synchronous_commit = off` for this
//!    transaction: a lost mark only means a duplicate publish).
//!
//! Steps 1–2 (with the `BEGIN`) go to PostgreSQL as one simple query, and
//! so does step 4 (with the `COMMIT`): a pass is three round trips to the
//! database and one to NATS, where it was six and one. Under load every
//! round trip waits for both processes to be scheduled, and the events of
//! the commands that commit meanwhile wait for the pass before them. The
//! pass runs on a connection the relay keeps; one that fails, or is
//! dropped mid-pass, is closed rather than returned to the pool (it may be
//! inside the pass's transaction).
//!
//! A publish whose ack was lost is simply published again; the event id is
//! the `Nats-Msg-Id`, so JetStream drops the copy within its duplicate
//! window and answers `duplicate: true`, which counts as success. While NATS
//! is away, passes fail and are retried with exponential backoff up to
//! `max_backoff`; the events wait in the outbox.
//!
//! Ordering caveat: rows are published in `seq` order, which is insertion
//! order. Two concurrent transactions may commit in the opposite order of
//! their `seq`; the relay publishes whatever is committed, so the later
//! `seq` can go first. And when one message of a batch fails while later
//! ones in flight with it were stored, those later ones are in the stream
//! before it (they are sent again after it, as duplicates). Changes to the
//! same aggregate are serialised by the service's own row locks, and
//! consumers use `aggregate_version` for everything else.

use crate::bus::{Bus, event_headers};
use crate::error::{BusError, Result};
use crate::outbox::{NOTIFY_CHANNEL, prune_sent};
use bytes::Bytes;
use sqlx::pool::PoolConnection;
use sqlx::{Executor, PgConnection, PgPool, Postgres, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// Advisory lock key: one publishing relay per database at a time.
const RELAY_LOCK_KEY: i64 = 0x636c_6f73_6552_4c59; // "closeRLY"

/// After an outbox signal, how long to wait before each further look for
/// events whose transaction had not committed yet.
pub const CHASE: [Duration; 7] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(4),
    Duration::from_millis(8),
    Duration::from_millis(16),
    Duration::from_millis(32),
    Duration::from_millis(64),
];

/// How often sent rows older than `retain_sent` are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Tuning of the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// Back-stop poll when no notification arrives.
    pub poll_interval: Duration,
    /// Rows read (and published) per pass, per transaction.
    pub batch_size: usize,
    /// First retry delay after a failed pass; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Sent rows older than this are deleted; `None` keeps them forever.
    pub retain_sent: Option<Duration>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            retain_sent: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// Counters of a relay, for the Prometheus endpoint.
#[derive(Debug, Default)]
pub struct RelayStats {
    published: AtomicU64,
    failures: AtomicU64,
}

impl RelayStats {
    /// Events acked by JetStream (duplicates included) and marked sent.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Failed passes (publish or database errors).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    Run,
    Drain,
    Stop,
}

/// Starts relays.
pub struct Relay;

impl Relay {
    /// Spawns the relay task on the current Tokio runtime.
    pub fn spawn(pool: PgPool, bus: Bus, config: RelayConfig) -> RelayHandle {
        let (control, control_rx) = watch::channel(Control::Run);
        let stats = Arc::new(RelayStats::default());
        let worker = Worker {
            read_sql: read_sql(config.batch_size),
            pool,
            bus,
            config,
            stats: stats.clone(),
            conn: None,
        };
        let task = tokio::spawn(worker.run(control_rx));
        RelayHandle {
            control,
            task: Some(task),
            stats,
        }
    }
}

/// A running relay. Dropping it stops the relay (without draining).
pub struct RelayHandle {
    control: watch::Sender<Control>,
    task: Option<JoinHandle<bool>>,
    stats: Arc<RelayStats>,
}

impl RelayHandle {
    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// Graceful shutdown: publishes everything pending, then stops. Gives
    /// up after `timeout` (NATS away). Returns true if the outbox was empty
    /// when the relay stopped; what is left is published at the next start.
    pub async fn drain_and_stop(mut self, timeout: Duration) -> bool {
        self.control.send_replace(Control::Drain);
        let Some(mut task) = self.task.take() else {
            return false;
        };
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(drained)) => drained,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "outbox relay task failed");
                false
            }
            Err(_) => {
                tracing::warn!(?timeout, "outbox relay did not drain in time; stopping");
                self.control.send_replace(Control::Stop);
                // Stop interrupts waits; abort covers a hung publish.
                task.abort();
                let _ = task.await;
                false
            }
        }
    }

    /// Stops at once (after the current pass); pending rows stay in the
    /// outbox for the next start.
    pub async fn stop(mut self) {
        self.control.send_replace(Control::Stop);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.control.send_replace(Control::Stop);
    }
}

enum Pass {
    /// Published `sent` events; `more` if the batch was full.
    Published { sent: usize, more: bool },
    /// Another relay holds the lock.
    Busy,
}

struct Worker {
    pool: PgPool,
    bus: Bus,
    config: RelayConfig,
    stats: Arc<RelayStats>,
    /// The simple query that begins a pass (see [`read_sql`]).
    read_sql: String,
    /// The connection passes run on, kept between them; closed, never
    /// returned to the pool, when dropped (it may be mid-transaction).
    conn: Option<PoolConnection<Postgres>>,
}

/// Opens a pass's transaction, takes the lock and, if it was free, reads
/// the oldest unsent rows: one simple query (constants only, no binds).
/// Its first row is the lock's answer; the outbox rows follow. The rows are
/// read by a statement of their own, after the lock is taken, so that they
/// are read with a snapshot taken after the replica before released it.
fn read_sql(batch_size: usize) -> String {
    format!(
        "BEGIN;
         SELECT set_config('synchronous_commit', 'off', true),
                set_config('closeout.relay_locked', pg_try_advisory_xact_lock({RELAY_LOCK_KEY})::text, true);
         SELECT seq, event_id, subject, event_type, traceparent, payload
         FROM closeout_outbox
         WHERE sent_at IS NULL AND current_setting('closeout.relay_locked')::boolean
         ORDER BY seq LIMIT {}",
        batch_size.max(1)
    )
}

/// Marks `sent` (never empty) as sent, notifies followers in other
/// processes (delivered at commit; only the relay notifies, so writers
/// never queue on NOTIFY's lock) and commits: one simple query. The
/// sequence numbers are integers read from the table.
fn mark_sql(sent: &[i64]) -> String {
    let seqs: Vec<String> = sent.iter().map(i64::to_string).collect();
    format!(
        "UPDATE closeout_outbox SET sent_at = now(), attempts = attempts + 1
         WHERE seq = ANY('{{{}}}'::bigint[]);
         SELECT pg_notify('{NOTIFY_CHANNEL}', '');
         COMMIT",
        seqs.join(",")
    )
}

impl Worker {
    /// Runs until stopped; returns true if it stopped because a drain
    /// found the outbox empty.
    async fn run(mut self, mut control: watch::Receiver<Control>) -> bool {
        // This database's signal; unknown (the database is away at start):
        // the poll back-stop alone.
        let database = crate::outbox::database_name(&self.pool)
            .await
            .unwrap_or_default();
        let mut wakes = crate::outbox::wakes(&database);
        let mut backoff = self.config.initial_backoff;
        let mut last_prune: Option<Instant> = None;
        // The next step of chasing a commit after a signal; None: not chasing.
        let mut chase: Option<usize> = None;
        loop {
            let mode = *control.borrow();
            if mode == Control::Stop {
                return false;
            }
            // Seen before the pass, so a signal during it runs another.
            wakes.borrow_and_update();
            match self.pass().await {
                Ok(Pass::Published { sent, more }) => {
                    backoff = self.config.initial_backoff;
                    if more {
                        continue;
                    }
                    if mode == Control::Drain {
                        return true;
                    }
                    if sent > 0 && chase.is_some() {
                        // Commits are arriving: keep looking closely.
                        chase = Some(0);
                    }
                    self.maybe_prune(&mut last_prune).await;
                }
                Ok(Pass::Busy) => {
                    // Another replica is publishing; try again soon.
                    let wait = if mode == Control::Drain {
                        Duration::from_millis(50)
                    } else {
                        self.config.poll_interval
                    };
                    if sleep_or_control(wait, &mut control).await {
                        return false;
                    }
                    continue;
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay pass failed");
                    if sleep_or_control(backoff, &mut control).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    continue;
                }
            }
            // Idle: wait for a signal, the next chase step or the poll
            // interval, or a control change (drain or stop).
            let wait = match chase {
                Some(step) if step < CHASE.len() => {
                    chase = Some(step + 1);
                    CHASE[step]
                }
                _ => {
                    chase = None;
                    self.config.poll_interval
                }
            };
            tokio::select! {
                changed = wakes.changed() => {
                    if changed.is_ok() {
                        chase = Some(0);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
                _ = control.changed() => {}
            }
        }
    }

    async fn maybe_prune(&self, last_prune: &mut Option<Instant>) {
        let Some(retain) = self.config.retain_sent else {
            return;
        };
        if last_prune.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        *last_prune = Some(Instant::now());
        match prune_sent(&self.pool, retain).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "pruned sent outbox rows"),
            Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
        }
    }

    /// One pass on the relay's connection (taken from the pool if it has
    /// none). After a database error the connection is closed: it may be
    /// inside the pass's transaction.
    async fn pass(&mut self) -> Result<Pass> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let mut conn = self.pool.acquire().await?;
                conn.close_on_drop();
                conn
            }
        };
        let outcome = self.pass_on(&mut conn).await;
        if !matches!(outcome, Err(BusError::Database(_))) {
            self.conn = Some(conn);
        }
        outcome
    }

    async fn pass_on(&self, conn: &mut PgConnection) -> Result<Pass> {
        // Most signals find nothing new (another database's events, or a
        // commit not yet made): one query, no transaction.
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM closeout_outbox WHERE sent_at IS NULL)",
        )
        .fetch_one(&mut *conn)
        .await?;
        if !pending {
            return Ok(Pass::Published {
                sent: 0,
                more: false,
            });
        }
        // Begin, lock and read in one round trip. The commit that marks rows
        // sent need not wait for the disk (set there too): a mark lost in a
        // crash only publishes the rows again, which JetStream drops as
        // duplicates by their Nats-Msg-Id and consumers skip as applied.
        // (The executor's own methods: their futures are boxed, which keeps
        // the relay's future `Send` for any lifetime.)
        let mut rows = conn
            .fetch_all(sqlx::raw_sql(&self.read_sql))
            .await?
            .into_iter();
        let locked = match rows.next() {
            Some(row) => row.try_get::<String, _>(1)? == "true",
            None => false,
        };
        if !locked {
            conn.execute(sqlx::raw_sql("ROLLBACK")).await?;
            return Ok(Pass::Busy);
        }
        let fetched = rows.len();

        // Send the whole batch in order, then collect the acks in order.
        let mut in_flight = Vec::with_capacity(fetched);
        let mut send_failure: Option<(i64, BusError)> = None;
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            let event_id: Uuid = row.try_get("event_id")?;
            let subject: String = row.try_get("subject")?;
            let event_type: String = row.try_get("event_type")?;
            let traceparent: String = row.try_get("traceparent")?;
            let payload: Vec<u8> = row.try_get("payload")?;
            let headers = event_headers(&event_id.to_string(), &event_type, &traceparent);
            match self
                .bus
                .send(self.bus.subject(&subject), headers, Bytes::from(payload))
                .await
            {
                Ok(ack) => in_flight.push((seq, event_id, ack)),
                Err(e) => {
                    send_failure = Some((seq, e));
                    break;
                }
            }
        }
        let mut sent: Vec<i64> = Vec::with_capacity(in_flight.len());
        let mut failure: Option<(i64, BusError)> = None;
        for (seq, event_id, ack) in in_flight {
            match ack.acked().await {
                Ok(ack) => {
                    if ack.duplicate {
                        tracing::debug!(%event_id, "publish was a duplicate; already in the stream");
                    }
                    sent.push(seq);
                }
                Err(e) => {
                    // Rows after it stay unsent, even if stored: they are
                    // sent again after it, as duplicates.
                    failure = Some((seq, e));
                    break;
                }
            }
        }
        let failure = failure.or(send_failure);
        if let Some((seq, error)) = &failure {
            sqlx::query(
                "UPDATE closeout_outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1",
            )
            .bind(seq)
            .bind(error.to_string())
            .execute(&mut *conn)
            .await?;
        }
        let finish = if sent.is_empty() {
            "COMMIT".to_string()
        } else {
            mark_sql(&sent)
        };
        conn.execute(sqlx::raw_sql(&finish)).await?;
        self.stats
            .published
            .fetch_add(sent.len() as u64, Ordering::Relaxed);
        match failure {
            Some((_, error)) => Err(error),
            None => Ok(Pass::Published {
                sent: sent.len(),
                more: fetched == self.config.batch_size.max(1),
            }),
        }
    }
}

/// Sleeps for `duration` unless told to stop; returns true on stop.
async fn sleep_or_control(duration: Duration, control: &mut watch::Receiver<Control>) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if *control.borrow() == Control::Stop {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return false,
            changed = control.changed() => {
                if changed.is_err() {
                    return true;
                }
            }
        }
    }
}
