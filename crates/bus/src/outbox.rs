//! The transactional outbox, kept in the owning service's own database.
//!
//! A service writes its state change and the events announcing it in one
//! transaction: [`append`] inserts the event rows on the caller's
//! connection. A rolled-back transaction leaves neither the change nor its
//! events, so nothing is ever announced that did not happen, and nothing
//! that happened is lost.
//!
//! **Waking the relay without NOTIFY.** A `NOTIFY` in the writer's
//! transaction takes one database-wide lock from before the commit record
//! is flushed until after, so every notifying commit waits for the
//! previous one's disk flush: group commit is lost (16 writers: 380
//! commits/s with NOTIFY, 2,480 without, pgbench on the development
//! machine). So writers do not NOTIFY. [`append`] raises an in-process
//! signal ([`wakes`]) that the [relay](crate::relay) and other followers of
//! the outbox watch; it is raised before the commit, so a follower that
//! finds nothing new looks again shortly ("chasing" the commit). Writers
//! that commit through [`commit`] (or call [`committed`] after their own
//! commit) raise it again once the rows are visible, so nothing waits for
//! the chase. Followers in other processes (another replica's WatchItems)
//! learn of new events from the relay, which sends one `NOTIFY
//! closeout_outbox` per pass that published something, and from their poll
//! back-stop.
//!
//! Rows store the subject *without* the deployment's prefix
//! (`findings.v1.finding.recorded.hertfordshire`); the relay adds the prefix
//! of the bus it publishes to. So writing an event needs no configuration,
//! and tests with a private prefix need no special code.
//!
//! The same schema has `closeout_applied_events`, where
//! [consumers](crate::consumer) record the events they applied in the
//! transaction of their effect. Services create both tables with
//! [`install_schema`] at start-up, next to their own migrations.

use crate::error::{BusError, Result};
use crate::subject::relative_subject;
use crate::trace::traceparent_for;
use closeout_proto::EventEnvelope;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Channel of the `NOTIFY` the relay sends after each pass that published
/// events (for followers in other processes, e.g. WatchItems).
pub const NOTIFY_CHANNEL: &str = "closeout_outbox";

/// Advisory lock key serialising [`install_schema`] across replicas.
const SCHEMA_LOCK_KEY: i64 = 0x636c_6f73_6553_4348; // "closeSCH"

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS closeout_outbox (
        seq BIGSERIAL PRIMARY KEY,
        event_id UUID NOT NULL UNIQUE,
        organisation_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        event_type TEXT NOT NULL,
        traceparent TEXT NOT NULL,
        payload BYTEA NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        sent_at TIMESTAMPTZ NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NULL
    )",
    // The relay only ever reads unsent rows in order.
    "CREATE INDEX IF NOT EXISTS closeout_outbox_unsent
        ON closeout_outbox (seq) WHERE sent_at IS NULL",
    "CREATE INDEX IF NOT EXISTS closeout_outbox_sent_at
        ON closeout_outbox (sent_at) WHERE sent_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS closeout_applied_events (
        consumer TEXT NOT NULL,
        event_id UUID NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    )",
    // A consumer that commits without waiting for the disk acks a batch
    // only after a durable write here, which flushes the batch's commit too
    // (crate::consumer, `ConsumerConfig::commit_without_flush`).
    "CREATE TABLE IF NOT EXISTS closeout_consumer_flushes (
        consumer TEXT PRIMARY KEY,
        stream_sequence BIGINT NOT NULL,
        flushed_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )",
];

/// Creates the outbox and applied-events tables if they do not exist.
/// Idempotent; replicas starting together are serialised by an advisory
/// lock, since concurrent `CREATE TABLE IF NOT EXISTS` can still collide.
pub async fn install_schema(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    for statement in SCHEMA {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Appends events to the outbox inside the caller's transaction, in the
/// given order, and notifies the relay (delivered at commit). Every event
/// needs a UUID event id and a payload; nothing is written otherwise.
pub async fn append(conn: &mut PgConnection, events: &[EventEnvelope]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut organisations = Vec::with_capacity(events.len());
    let mut subjects = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut traceparents = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    for event in events {
        let id = Uuid::parse_str(&event.event_id).map_err(|_| {
            BusError::InvalidEvent(format!("event id {:?} is not a UUID", event.event_id))
        })?;
        let payload = event.payload.as_ref().ok_or_else(|| {
            BusError::InvalidEvent(format!("event {} has no payload", event.event_id))
        })?;
        ids.push(id);
        organisations.push(event.organisation_id.clone());
        subjects.push(relative_subject(payload, &event.organisation_id));
        types.push(event.event_type.clone());
        traceparents.push(traceparent_for(event));
        payloads.push(event.encode_to_vec());
    }
    // One statement for the batch; ORDER BY the ordinality so `seq`
    // follows the order of `events`. It also names the database, whose
    // followers the signal is for (in the same round trip).
    let database: Option<String> = sqlx::query_scalar(
        "WITH appended AS (
            INSERT INTO closeout_outbox
                (event_id, organisation_id, subject, event_type, traceparent, payload)
            SELECT id, org, subj, typ, tp, body
            FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
                 WITH ORDINALITY AS e(id, org, subj, typ, tp, body, ord)
            ORDER BY ord
            RETURNING 1)
         SELECT current_database()::text FROM appended LIMIT 1",
    )
    .bind(&ids)
    .bind(&organisations)
    .bind(&subjects)
    .bind(&types)
    .bind(&traceparents)
    .bind(&payloads)
    .fetch_optional(&mut *conn)
    .await?;
    // Not committed yet: followers woken now chase the commit.
    signal(database.as_deref());
    Ok(())
}

/// The in-process signals of outbox writes, one per database name: a
/// counter raised by [`append`] (before the commit) and by [`committed`]
/// (after it). Keyed by database so that, when several services share a
/// process (tests, the bench), one's writes do not wake the others.
fn senders() -> &'static Mutex<HashMap<String, watch::Sender<u64>>> {
    static SENDERS: OnceLock<Mutex<HashMap<String, watch::Sender<u64>>>> = OnceLock::new();
    SENDERS.get_or_init(Default::default)
}

/// Raises the signal of `database`, or of every database when unknown.
fn signal(database: Option<&str>) {
    let senders = senders().lock().unwrap_or_else(|e| e.into_inner());
    let bump = |n: &mut u64| *n = n.wrapping_add(1);
    match database {
        Some(name) => {
            if let Some(sender) = senders.get(name) {
                sender.send_modify(bump);
            }
        }
        None => senders.values().for_each(|sender| sender.send_modify(bump)),
    }
}

/// A receiver that changes whenever this process appends events to, or
/// commits events into, the outbox of database `database` (as PostgreSQL
/// names it: `SELECT current_database()`).
pub fn wakes(database: &str) -> watch::Receiver<u64> {
    let mut senders = senders().lock().unwrap_or_else(|e| e.into_inner());
    senders
        .entry(database.to_string())
        .or_insert_with(|| watch::channel(0).0)
        .subscribe()
}

/// The name of the database of `pool`, as [`wakes`] wants it.
pub async fn database_name(pool: &PgPool) -> Result<String> {
    Ok(sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(pool)
        .await?)
}

/// Tells the outbox's followers in this process that a transaction on
/// `pool` which appended events has committed, so they publish without
/// chasing.
pub fn committed(pool: &PgPool) {
    signal(pool.connect_options().get_database());
}

/// Commits `tx` (begun on `pool`, and which appended events) and wakes
/// the outbox's followers.
pub async fn commit(pool: &PgPool, tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<()> {
    tx.commit().await?;
    committed(pool);
    Ok(())
}

/// Number of events not yet published (for metrics and health).
pub async fn backlog(pool: &PgPool) -> Result<u64> {
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM closeout_outbox WHERE sent_at IS NULL")
            .fetch_one(pool)
            .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Deletes rows published more than `older_than` ago; returns how many.
/// The relay calls it periodically when `RelayConfig::retain_sent` is set.
pub async fn prune_sent(pool: &PgPool, older_than: Duration) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM closeout_outbox
         WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)",
    )
    .bind(older_than.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
