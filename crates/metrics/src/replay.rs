//! A rebuild's replay, in two steps, so that a million events take seconds
//! rather than minutes.
//!
//! 1. [`replay_history`] reads each consumer's subjects from the stream's
//!    start with an ordered consumer (no acks, no applied-event records:
//!    the history's key keeps each event once) and stores every event in
//!    the history a few thousand per transaction, folding registrations
//!    and inspections as the live consumers do
//!    ([`store::apply_registrations`]) but leaving items and everything
//!    counted from them alone: for the tracker's events (most of them)
//!    that is the history's insert and nothing else, done with `COPY`.
//!    The history's secondary indexes are dropped before and built once
//!    after ([`HISTORY_INDEXES`]). The service's durable consumers are
//!    then created to start after the last message read
//!    ([`crate::consume::create_after`]).
//! 2. [`fold_items`] then folds every item from the history in one pass
//!    and one transaction, writes the items a few thousand per statement,
//!    and derives the tallies from them once, in memory, writing each
//!    table with one statement ([`refill_derived`]).
//!
//! Why the result is what the live consumers produce: a live item is, after
//! any arrival order, the fold of all its stored events in version order
//! ([`model::fold_item`]; an event out of order makes the consumer refold
//! the history), which is what step 2 computes; the tallies are by
//! definition the counts of the items' states, which the live consumers
//! move by differences with the same [`Tallies::add`]. Registrations and
//! inspections are folded in stream order (per subject, as live) by the
//! same code as live.
//!
//! Why a crash is repaired: step 2 is one transaction that empties what it
//! writes first, and the rebuild marks itself pending until step 2 has
//! committed ([`mark_pending`]): a rerun starts from scratch, and a service
//! started instead finishes step 2 before it consumes
//! ([`finish_if_pending`]); its consumers, not created yet, then start
//! from the stream's start, and skip what the history holds. A failed
//! replay commits nothing after it returns (a write committing after a
//! service's fold would hide its events from it). A service running
//! during step 1 is harmless too: its consumers fold whichever events
//! they store first into items, and step 2 locks the tables and redoes
//! them all from the history.

use crate::model::{self, Fact, ItemState, Target};
use crate::store;
use crate::tally::Tallies;
use closeout_bus::Bus;
use closeout_proto::EventEnvelope;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use uuid::Uuid;

/// Items written per statement, and refolded per query.
const CHUNK: usize = 5_000;

/// Events stored (and their registrations folded) per transaction in step 1.
const EVENTS_PER_WRITE: usize = 4_096;

/// What step 1 did, for the rebuild's breakdown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Per subject filter (in [`crate::consume::CONSUMERS`]' order), the
    /// stream sequence of the last message read (0: none).
    pub last_sequences: Vec<u64>,
    /// Time spent in the writers' transactions, summed over the filters
    /// (the rest of step 1 they waited for messages).
    pub writing: Duration,
    /// Messages skipped because they cannot be applied (the live consumers
    /// dead-lettered them).
    pub skipped: u64,
}

/// Messages read and checked, waiting to be stored: `heads[i]` is
/// `facts[i]`'s id and envelope.
#[derive(Default)]
struct Chunk {
    heads: Vec<(Uuid, EventEnvelope)>,
    facts: Vec<Fact>,
}

impl Chunk {
    fn with_capacity(n: usize) -> Chunk {
        Chunk {
            heads: Vec::with_capacity(n),
            facts: Vec::with_capacity(n),
        }
    }
}

/// Step 1: reads every message on each filter subject from the stream's
/// start up to its goal (a stream sequence from the stream's leader) with
/// an ordered consumer (no acks: a gap makes the client re-create it from
/// the last sequence seen, so nothing is skipped), and stores them in the
/// history [`EVENTS_PER_WRITE`] at a time, folding registrations and
/// inspections in the same transaction, in stream order per filter. The
/// next messages are read while a write runs. Each write commits without
/// waiting for the disk (see [`crate::rebuild`], which ends with a durable
/// commit). Fails at `deadline`; what was written stays (a rerun starts
/// from scratch, a service started finishes from the history).
pub async fn replay_history(
    pool: &PgPool,
    bus: &Bus,
    subjects: &[String],
    goals: &[u64],
    deadline: Instant,
) -> Result<Replayed, String> {
    // Set when any part fails: no write commits after that (one
    // committing after a service's fold of the items would hide its events
    // from that service), and the other readers stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (subject, goal) in subjects.iter().zip(goals) {
        let (send, receive) = mpsc::channel(2);
        let (bus, subject, goal, stop_reading) =
            (bus.clone(), subject.clone(), *goal, stop.clone());
        let reader = tokio::spawn(async move {
            let read = tokio::time::timeout_at(
                deadline.into(),
                read(bus, subject, goal, send, &stop_reading),
            )
            .await
            .unwrap_or_else(|_| Err("the replay did not reach the stream's end in time".into()));
            if read.is_err() {
                stop_reading.store(true, Ordering::SeqCst);
            }
            read
        });
        let writer = tokio::spawn(write(pool.clone(), receive, stop.clone()));
        tasks.push((reader, writer));
    }
    let mut done = Replayed::default();
    let mut failed = None;
    for (reader, writer) in tasks {
        let read = reader.await.map_err(|e| e.to_string()).and_then(|r| r);
        let written = writer
            .await
            .map_err(|e| e.to_string())
            .and_then(|w| w.map_err(|e| format!("storing the history: {e}")));
        match (read, written) {
            (Ok((last, skipped)), Ok(writing)) => {
                done.last_sequences.push(last);
                done.skipped += skipped;
                done.writing += writing;
            }
            (Err(e), _) | (_, Err(e)) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None if stop.load(Ordering::SeqCst) => Err("the replay stopped".to_string()),
        None => Ok(done),
    }
}

/// Reads `subject` from the stream's start until the message at or after
/// `goal`, sending the checked events in chunks. Returns the last stream
/// sequence read and how many messages it skipped. Opening the consumer
/// and reading are retried until the caller's deadline: a cluster that
/// lost a node answers nothing while it elects the stream's leader, and
/// the ordered consumer resumes after the last message it handed over.
async fn read(
    bus: Bus,
    subject: String,
    goal: u64,
    chunks: mpsc::Sender<Chunk>,
    stop: &AtomicBool,
) -> Result<(u64, u64), String> {
    if goal == 0 {
        return Ok((0, 0));
    }
    let mut messages = retrying(&format!("opening {subject}"), || open(&bus, &subject)).await;
    let mut skipped = 0;
    let mut chunk = Chunk::with_capacity(EVENTS_PER_WRITE);
    loop {
        let message = match messages.next().await {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                tracing::warn!(subject, error = %e, "replay: reading failed; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
                continue;
            }
            None => {
                messages = retrying(&format!("reopening {subject}"), || open(&bus, &subject)).await;
                continue;
            }
        };
        let last = message
            .info()
            .map_err(|e| format!("reading {subject}: {e}"))?
            .stream_sequence;
        match check(&message.payload) {
            Ok((id, envelope, fact)) => {
                chunk.heads.push((id, envelope));
                chunk.facts.push(fact);
            }
            Err(reason) => {
                tracing::warn!(
                    sequence = last,
                    reason,
                    "replay: skipping an event that cannot be applied"
                );
                skipped += 1;
            }
        }
        let done = last >= goal;
        if done || chunk.facts.len() >= EVENTS_PER_WRITE {
            let full = std::mem::replace(&mut chunk, Chunk::with_capacity(EVENTS_PER_WRITE));
            if stop.load(Ordering::SeqCst) || chunks.send(full).await.is_err() {
                return Err("stopped: another part of the replay failed".to_string());
            }
        }
        if done {
            return Ok((last, skipped));
        }
    }
}

/// Pause between two attempts of a step that failed while the stream's
/// leader was away.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Runs `attempt` until it succeeds, logging each failure; the caller's
/// deadline ([`replay_history`]'s timeout) bounds it.
pub(crate) async fn retrying<
    T,
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    loop {
        match attempt().await {
            Ok(done) => return done,
            Err(e) => {
                tracing::warn!(error = %e, "replay: {what} failed; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}

/// An ordered consumer of `subject` from the stream's start, and its
/// messages.
async fn open(
    bus: &Bus,
    subject: &str,
) -> Result<async_nats::jetstream::consumer::pull::Ordered, String> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .map_err(|e| format!("getting stream {}: {e}", bus.config().stream_name))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject.to_string(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    consumer.messages().await.map_err(|e| e.to_string())
}

/// A message as the live consumers check it: a decodable envelope
/// ([`crate::consume::check_event`]).
fn check(payload: &[u8]) -> Result<(Uuid, EventEnvelope, Fact), String> {
    let envelope =
        EventEnvelope::decode(payload).map_err(|e| format!("undecodable event envelope: {e}"))?;
    let (id, fact) = crate::consume::check_event(&envelope)?;
    Ok((id, envelope, fact))
}

/// Stores each chunk in the history and folds its registrations and
/// inspections, one transaction per chunk; returns the time spent in them.
async fn write(
    pool: PgPool,
    mut chunks: mpsc::Receiver<Chunk>,
    stop: Arc<AtomicBool>,
) -> Result<Duration, sqlx::Error> {
    let mut busy = Duration::ZERO;
    while let Some(chunk) = chunks.recv().await {
        if stop.load(Ordering::SeqCst) {
            continue;
        }
        let started = Instant::now();
        let written = write_chunk(&pool, chunk, &stop).await;
        if written.is_err() {
            stop.store(true, Ordering::SeqCst);
        }
        written?;
        busy += started.elapsed();
    }
    Ok(busy)
}

/// One chunk in one transaction, committed unless the replay has stopped.
async fn write_chunk(pool: &PgPool, chunk: Chunk, stop: &AtomicBool) -> Result<(), sqlx::Error> {
    let heads: Vec<(Uuid, &EventEnvelope)> = chunk.heads.iter().map(|(id, e)| (*id, e)).collect();
    let mut tx = begin_unflushed(pool).await?;
    // A chunk that folds nothing here (the tracker's events: items are
    // folded in step 2) is copied into the history, which costs the
    // server less than an insert that skips conflicts; one holding an
    // event stored before (a duplicate publish, or a service running
    // meanwhile) fails and takes the insert below instead.
    if folds_nothing(&chunk.facts)
        && let Some(rows) = copy_rows(&heads, &chunk.facts)
    {
        match copy_history(&mut tx, &rows).await {
            Ok(()) => return commit_unless_stopped(tx, stop).await,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                tx = begin_unflushed(pool).await?;
            }
            Err(e) => return Err(e),
        }
    }
    // Only events not there before are folded.
    let fresh = store::record_batch(&mut tx, &heads, chunk.facts).await?;
    store::apply_registrations(&mut tx, &fresh).await?;
    commit_unless_stopped(tx, stop).await
}

/// A transaction that commits without waiting for the disk (see
/// [`crate::rebuild`], which ends with a durable commit).
async fn begin_unflushed(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin_with("BEGIN; SET LOCAL synchronous_commit = off")
        .await
}

async fn commit_unless_stopped(
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    stop: &AtomicBool,
) -> Result<(), sqlx::Error> {
    if stop.load(Ordering::SeqCst) {
        // Dropping `tx` rolls it back.
        return Ok(());
    }
    tx.commit().await
}

/// True when [`store::apply_registrations`] does nothing with `facts`:
/// no registration, inspection or rename among them.
fn folds_nothing(facts: &[Fact]) -> bool {
    facts.iter().all(|fact| {
        matches!(fact.target(), Target::Item(_) | Target::HistoryOnly)
            && !matches!(
                fact.payload,
                closeout_proto::event_envelope::Payload::OrganisationRenamed(_)
            )
    })
}

/// The history's rows for `COPY ... (FORMAT binary)`, with the values
/// [`store::record_batch`] binds; `None` if a time is out of PostgreSQL's
/// range (the insert then refuses it as the live consumers do).
fn copy_rows(heads: &[(Uuid, &EventEnvelope)], facts: &[Fact]) -> Option<Vec<u8>> {
    let mut rows = CopyRows::with_capacity(heads.len() * 256);
    for ((id, envelope), fact) in heads.iter().zip(facts) {
        rows.row(8);
        rows.bytes(id.as_bytes());
        rows.time(fact.occurred_at);
        rows.text(&fact.organisation_id);
        rows.text(&envelope.aggregate_type);
        rows.text(&store::history_aggregate(fact));
        rows.int8(i64::try_from(fact.version).unwrap_or(i64::MAX));
        rows.text(&envelope.event_type);
        rows.encoded(*envelope);
    }
    rows.finish()
}

/// Rows in `COPY ... (FORMAT binary)`'s format, built field by field in
/// the table's column order (the replay's history, the as-of refill's
/// tables).
pub(crate) struct CopyRows {
    out: Vec<u8>,
    /// A value PostgreSQL cannot hold (a field over 2 GB, a time out of
    /// range): [`CopyRows::finish`] then gives nothing.
    refused: bool,
}

impl CopyRows {
    pub(crate) fn with_capacity(n: usize) -> CopyRows {
        let mut out = Vec::with_capacity(64 + n);
        out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        out.extend_from_slice(&0i32.to_be_bytes()); // flags
        out.extend_from_slice(&0i32.to_be_bytes()); // header extension
        CopyRows {
            out,
            refused: false,
        }
    }

    /// Starts a row of `fields` fields.
    pub(crate) fn row(&mut self, fields: i16) {
        self.out.extend_from_slice(&fields.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        match i32::try_from(value.len()) {
            Ok(n) => {
                self.out.extend_from_slice(&n.to_be_bytes());
                self.out.extend_from_slice(value);
            }
            Err(_) => self.refused = true,
        }
    }

    pub(crate) fn text(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    pub(crate) fn int2(&mut self, value: i16) {
        self.bytes(&value.to_be_bytes());
    }

    pub(crate) fn int4(&mut self, value: i32) {
        self.bytes(&value.to_be_bytes());
    }

    pub(crate) fn int8(&mut self, value: i64) {
        self.bytes(&value.to_be_bytes());
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.bytes(&[u8::from(value)]);
    }

    /// A message's encoding, without copying it first.
    pub(crate) fn encoded(&mut self, message: &impl Message) {
        let Ok(n) = i32::try_from(message.encoded_len()) else {
            self.refused = true;
            return;
        };
        self.out.extend_from_slice(&n.to_be_bytes());
        self.refused |= message.encode(&mut self.out).is_err();
    }

    /// A `date`: days since 2000-01-01 (PostgreSQL's epoch, day 730,120
    /// of the common era); `None` is NULL.
    pub(crate) fn date(&mut self, value: Option<chrono::NaiveDate>) {
        use chrono::Datelike;
        match value {
            Some(day) => self.int4(day.num_days_from_ce() - 730_120),
            None => self.out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    /// A `timestamptz`: microseconds since 2000-01-01 UTC, as sqlx
    /// encodes it.
    pub(crate) fn time(&mut self, value: chrono::DateTime<chrono::Utc>) {
        const EPOCH_MICROS: i64 = 946_684_800_000_000;
        match value.timestamp_micros().checked_sub(EPOCH_MICROS) {
            Some(micros) => self.int8(micros),
            None => self.refused = true,
        }
    }

    /// The rows with the trailer; `None` if a value was refused.
    pub(crate) fn finish(mut self) -> Option<Vec<u8>> {
        self.out.extend_from_slice(&(-1i16).to_be_bytes());
        (!self.refused).then_some(self.out)
    }
}

/// Copies [`copy_rows`] into the history.
async fn copy_history(tx: &mut PgConnection, rows: &[u8]) -> Result<(), sqlx::Error> {
    copy_in(
        tx,
        "COPY events (event_id, occurred_at, organisation_id, aggregate_type, \
         aggregate_id, aggregate_version, event_type, envelope) FROM STDIN (FORMAT binary)",
        rows,
    )
    .await
}

/// Runs `statement`, a `COPY ... FROM STDIN (FORMAT binary)`, with
/// [`CopyRows`]' rows, sent a few megabytes per message.
pub(crate) async fn copy_in(
    tx: &mut PgConnection,
    statement: &str,
    rows: &[u8],
) -> Result<(), sqlx::Error> {
    let mut copy = tx.copy_in_raw(statement).await?;
    for part in rows.chunks(4 << 20) {
        if let Err(e) = copy.send(part).await {
            // The connection may still be in the copy: end it before the error.
            let _ = copy.abort("the copy failed").await;
            return Err(e);
        }
    }
    copy.finish().await?;
    Ok(())
}

/// The tables step 2 empties and writes: the items and everything derived
/// from them. (The registrations, inspections and their content, and the
/// inspections' dates in `tally_dates`, were folded during the replay.)
pub const DERIVED_TABLES: &[&str] = &[
    "items",
    "tally_counts",
    "tally_inspections",
    "tally_open",
    "tally_due",
    "tally_closed",
    "tally_totals",
    "tally_open_inspections",
    "tally_closing",
    "tally_days",
    "tally_days_all",
];

/// Records, in the reset's transaction, that the items are not folded
/// until [`fold_items`] commits.
pub async fn mark_pending(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO rebuild_pending DEFAULT VALUES ON CONFLICT DO NOTHING")
        .execute(tx)
        .await?;
    Ok(())
}

/// Runs step 2 if a rebuild stopped before it (the service's start-up:
/// its consumers would otherwise continue on items never folded), with
/// the history's indexes first (the rebuild may have stopped without them).
pub async fn finish_if_pending(pool: &PgPool) -> Result<(), sqlx::Error> {
    let pending: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rebuild_pending)")
        .fetch_one(pool)
        .await?;
    if pending {
        tracing::warn!("a rebuild stopped before folding the items; folding them now");
        create_history_indexes(pool).await?;
        fold_items(pool).await?;
    }
    Ok(())
}

/// The history's secondary indexes, as migration 0001 creates them. A
/// rebuild drops them before its replay and builds each once after it,
/// which costs less than keeping them up to date row by row; they are
/// missing only while a rebuild is pending ([`mark_pending`]), and
/// [`finish_if_pending`] builds them. The primary key stays: it keeps each
/// event once.
const HISTORY_INDEXES: [(&str, &str); 3] = [
    (
        "events_by_aggregate",
        "events (aggregate_id, aggregate_version)",
    ),
    ("events_by_time", "events (occurred_at)"),
    (
        "events_by_organisation",
        "events (organisation_id, occurred_at)",
    ),
];

/// Drops [`HISTORY_INDEXES`] (after the reset that marked the rebuild
/// pending).
pub async fn drop_history_indexes(pool: &PgPool) -> Result<(), sqlx::Error> {
    let names: Vec<&str> = HISTORY_INDEXES.iter().map(|(name, _)| *name).collect();
    sqlx::query(&format!("DROP INDEX IF EXISTS {}", names.join(", ")))
        .execute(pool)
        .await?;
    Ok(())
}

/// Builds those of [`HISTORY_INDEXES`] that are missing, side by side (a
/// build takes a lock that lets the others build, and reads).
pub async fn create_history_indexes(pool: &PgPool) -> Result<(), sqlx::Error> {
    let builds = HISTORY_INDEXES.map(|(name, on)| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut connection = pool.acquire().await?;
            // Sorts in memory up to this (the default, 64 MB, spills a
            // million rows to disk); this session only.
            sqlx::query("SET maintenance_work_mem = '256MB'")
                .execute(&mut *connection)
                .await?;
            let built = sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}"))
                .execute(&mut *connection)
                .await;
            sqlx::query("RESET maintenance_work_mem")
                .execute(&mut *connection)
                .await?;
            built.map(|_| ())
        })
    });
    for build in builds {
        build
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("building an index: {e}")))??;
    }
    Ok(())
}

/// Step 2: folds every item from the history, writes them, derives the
/// tables that count them, and clears the pending mark, in one
/// transaction. Returns the number of items.
pub async fn fold_items(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Writers (a service's consumers) wait until this commits, then move
    // the tallies incrementally from here; EXCLUSIVE still lets readers in.
    let mut locked = vec!["events"];
    locked.extend(DERIVED_TABLES);
    sqlx::query(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        locked.join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("TRUNCATE {}", DERIVED_TABLES.join(", ")))
        .execute(&mut *tx)
        .await?;
    let items = fold_history(&mut tx).await?;
    let mut states: Vec<&ItemState> = items.values().collect();
    states.sort_by(|a, b| a.item_id.cmp(&b.item_id));
    for chunk in states.chunks(CHUNK) {
        store::save_items(&mut tx, chunk).await?;
    }
    refill_derived(&mut tx, &states).await?;
    sqlx::query("DELETE FROM rebuild_pending")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(items.len())
}

/// Every item's state from the history: one pass in storage order (the
/// order the consumers stored them, so nearly always each item's version
/// order) applying each event that follows its item's version; an item
/// with an event out of order, repeated or after a gap is then folded
/// from its whole history, as the live consumer does.
async fn fold_history(tx: &mut PgConnection) -> Result<HashMap<String, ItemState>, sqlx::Error> {
    let mut items: HashMap<String, ItemState> = HashMap::new();
    let mut refold: BTreeSet<String> = BTreeSet::new();
    {
        let mut rows =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT envelope FROM events").fetch(&mut *tx);
        while let Some(bytes) = rows.next().await {
            let Some(fact) = decode(&bytes?) else {
                continue;
            };
            let Target::Item(id) = fact.target() else {
                continue;
            };
            if refold.contains(&id) {
                continue;
            }
            let state = items.entry(id.clone()).or_default();
            if model::item_applies_in_order(state.version, fact.version) {
                state.apply(&fact);
                if state.item_id.is_empty() {
                    state.item_id = id;
                }
            } else {
                refold.insert(id);
            }
        }
    }
    let refold: Vec<String> = refold.into_iter().collect();
    for chunk in refold.chunks(CHUNK) {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT aggregate_id, envelope FROM events WHERE aggregate_id = ANY($1)",
        )
        .bind(chunk)
        .fetch_all(&mut *tx)
        .await?;
        let mut histories: HashMap<String, Vec<Fact>> = HashMap::new();
        for (id, bytes) in rows {
            if let Some(fact) = decode(&bytes)
                && fact.target() == Target::Item(id.clone())
            {
                histories.entry(id).or_default().push(fact);
            }
        }
        for id in chunk {
            let mut state = model::fold_item(histories.get(id).into_iter().flatten());
            if state.item_id.is_empty() {
                state.item_id.clone_from(id);
            }
            items.insert(id.clone(), state);
        }
    }
    Ok(items)
}

/// A stored envelope as a fact; only checked envelopes are stored, so one
/// that does not decode is skipped (as the history's readers do).
fn decode(bytes: &[u8]) -> Option<Fact> {
    let envelope = EventEnvelope::decode(bytes).ok()?;
    Fact::from_envelope(&envelope).ok()
}

/// Fills the tables derived from the items (empty when called) from the
/// items' states, with the live consumers' own code: each item counted
/// once where [`Tallies::add`] counts it, written by [`store::save_tallies`]
/// (one statement per table). A table added later that is derived from the
/// items or the inspections is filled here too, so that a rebuild covers it
/// (`tests/rebuild.rs` compares every read-model table with the live
/// consumers').
pub async fn refill_derived(
    tx: &mut PgConnection,
    items: &[&ItemState],
) -> Result<(), sqlx::Error> {
    let mut tallies = Tallies::default();
    for item in items {
        tallies.add(item, 1);
    }
    store::save_tallies(tx, tallies.without_zeros()).await
}
