//! WatchItems: a resumable stream of item changes read from `item_events`.
//!
//! **Order without a global lock.** Writers take no shared lock; each event
//! row carries `watch_xid`, the id of the transaction that wrote it raised
//! to at least the item's previous event's (so an item's events keep their
//! version order). The stream's order is `(watch_xid, sequence)`, and a row
//! is released to streams only once `watch_xid` is below the release
//! horizon — the least of the next transaction id and the ids of this
//! database's running transactions (`Tail::horizon`; like
//! `pg_snapshot_xmin`, but blind to other databases of the cluster): every
//! transaction that could still commit a row with a smaller key has then
//! ended, so the released rows are a prefix of the order that only grows at
//! its end — nothing released later can sort before something sent.
//! `sequence` stays the public position: resuming after sequence `s` looks
//! up that row's key and continues after it.
//!
//! **Idle streams hold no connection.** One tail task per process follows
//! the log: woken by this process's outbox signal (every journal append
//! writes the outbox, and every commit that appended raises
//! `closeout_bus::outbox::committed`), by the relay's NOTIFY for events
//! written by other replicas (the LISTEN connection has its own
//! one-connection pool, outside the service's) or by the poll back-stop,
//! it reads the newly released
//! rows once and broadcasts them. Each stream filters the broadcast in
//! memory; it queries the database (with a pooled connection, released
//! after the query) only to replay history on open, or when it fell behind
//! the broadcast. So a thousand idle streams cost a thousand small tasks
//! and one query per wake-up, and work the same on every replica.

use crate::error::TrackerError;
use closeout_proto as pb;
use prost::Message;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{FromRow, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// Rows read per query; a full batch is followed at once by the next.
const BATCH: i64 = 500;

/// Batches kept for streams that are slow to take them; a stream further
/// behind catches up from the database.
const BROADCAST_CAPACITY: usize = 1024;

/// Shortest wait before looking again for rows held back by a transaction
/// still running; doubles up to the poll interval.
const HELD_BACK_RETRY: Duration = Duration::from_millis(2);

/// Least time between two passes of the tail while no stream is open. A
/// pass then only moves the published position (two statements), but,
/// woken by every commit, it ran back to back under write load; a stream
/// opened meanwhile starts from a position at most this old and reads the
/// rest from the database (see `follow`).
const IDLE_SPACING: Duration = Duration::from_millis(50);

/// A position in the stream's order: `(watch_xid, sequence)`.
type Key = (i64, i64);

/// What a watcher asked for, validated.
#[derive(Clone, Debug, Default)]
pub struct WatchFilter {
    /// Only this organisation's items ("" for all).
    pub organisation_id: String,
    /// Only changes that leave their item in one of these statuses (the
    /// status after the change; empty for all).
    pub statuses: Vec<i16>,
    /// Resume after this sequence.
    pub after_sequence: u64,
}

impl WatchFilter {
    fn matches(&self, change: &Change) -> bool {
        (self.organisation_id.is_empty() || self.organisation_id == change.organisation_id)
            && (self.statuses.is_empty() || self.statuses.contains(&change.status_after))
    }

    /// Refuses a stream that could only ever be silently empty or wrong: an
    /// organisation the tracker has never heard of (NOT_FOUND) and a resume
    /// point beyond the last recorded change (INVALID_ARGUMENT).
    pub async fn admit(&self, pool: &PgPool) -> Result<(), TrackerError> {
        if !self.organisation_id.is_empty() {
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM organisations WHERE id = $1)")
                    .bind(&self.organisation_id)
                    .fetch_one(pool)
                    .await?;
            if !known {
                return Err(TrackerError::NotFound {
                    what: "organisation",
                    id: self.organisation_id.clone(),
                });
            }
        }
        if self.after_sequence > 0 {
            let last: i64 =
                sqlx::query_scalar("SELECT coalesce(max(sequence), 0) FROM item_events")
                    .fetch_one(pool)
                    .await?;
            if i64::try_from(self.after_sequence).map_or(true, |after| after > last) {
                return Err(TrackerError::invalid(
                    "after_sequence",
                    format!(
                        "{} is beyond the last change ({last}); resume from a sequence this stream sent",
                        self.after_sequence
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One released change, decoded once and shared by every stream.
struct Change {
    key: Key,
    organisation_id: String,
    status_after: i16,
    response: pb::WatchItemsResponse,
}

/// The changes in `(from, to]` of the order (all of them, unfiltered).
struct Batch {
    from: Key,
    to: Key,
    changes: Vec<Arc<Change>>,
}

/// Wake-ups shared by every stream of one process, and the signal that
/// ends them all at shutdown.
#[derive(Clone)]
pub struct Watchers {
    pool: PgPool,
    batches: broadcast::Sender<Arc<Batch>>,
    /// The last key the tail has published; None until it has started.
    published: watch::Receiver<Option<Key>>,
    stop: watch::Receiver<bool>,
}

/// Owns the tail and LISTEN tasks; dropping or calling `stop` ends every
/// stream.
pub struct WatchersHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WatchersHandle {
    /// Ends every open stream, the tail and the LISTEN task.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for WatchersHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the LISTEN and tail tasks; `poll` is the back-stop interval.
pub fn start(pool: PgPool, poll: Duration) -> (Watchers, WatchersHandle) {
    let (wake_tx, wake) = watch::channel(0u64);
    let (stop_tx, stop) = watch::channel(false);
    let (batches, _) = broadcast::channel(BROADCAST_CAPACITY);
    let (published_tx, published) = watch::channel(None);
    // LISTEN keeps its connection for good: give it its own, so the
    // service's pool is left whole for queries.
    let listen_pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .connect_lazy_with((*pool.connect_options()).clone());
    let listener = tokio::spawn(listen(listen_pool, wake_tx));
    let tail = tokio::spawn(
        Tail {
            pool: pool.clone(),
            batches: batches.clone(),
            published: published_tx,
            poll,
        }
        .run(wake),
    );
    (
        Watchers {
            pool,
            batches,
            published,
            stop,
        },
        WatchersHandle {
            stop: stop_tx,
            tasks: vec![listener, tail],
        },
    )
}

/// Forwards every notification on the outbox channel as a wake-up;
/// reconnects after a failure (the poll back-stop covers the gap).
async fn listen(pool: PgPool, wake: watch::Sender<u64>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(closeout_bus::outbox::NOTIFY_CHANNEL).await {
                    tracing::warn!(%error, "LISTEN failed; retrying");
                } else {
                    // Anything committed while we were not listening.
                    wake.send_modify(|n| *n = n.wrapping_add(1));
                    loop {
                        match listener.recv().await {
                            Ok(_) => wake.send_modify(|n| *n = n.wrapping_add(1)),
                            Err(error) => {
                                tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot open the LISTEN connection; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[derive(FromRow)]
struct ChangeRow {
    watch_xid: i64,
    sequence: i64,
    organisation_id: String,
    status_after: i16,
    envelope: Vec<u8>,
    item_after: Vec<u8>,
}

impl ChangeRow {
    fn decode(self) -> Result<Change, TrackerError> {
        Ok(Change {
            key: (self.watch_xid, self.sequence),
            response: pb::WatchItemsResponse {
                sequence: u64::try_from(self.sequence).unwrap_or_default(),
                event: Some(decode(&self.envelope, self.sequence)?),
                item: Some(decode(&self.item_after, self.sequence)?),
            },
            organisation_id: self.organisation_id,
            status_after: self.status_after,
        })
    }
}

const COLUMNS: &str = "watch_xid::text::bigint AS watch_xid, sequence, organisation_id, \
     status_after, envelope, item_after";

/// The one reader of newly released rows in a process.
struct Tail {
    pool: PgPool,
    batches: broadcast::Sender<Arc<Batch>>,
    published: watch::Sender<Option<Key>>,
    poll: Duration,
}

impl Tail {
    async fn run(self, mut wake: watch::Receiver<u64>) {
        let (mut position, database) = loop {
            let start = async {
                let end = self.released_end().await?;
                let database = closeout_bus::outbox::database_name(&self.pool)
                    .await
                    .map_err(|e| TrackerError::Outbox(e.to_string()))?;
                Ok::<_, TrackerError>((end, database))
            };
            match start.await {
                Ok(started) => break started,
                Err(error) => {
                    tracing::warn!(%error, "WatchItems cannot read the log; retrying");
                    tokio::time::sleep(self.poll).await;
                }
            }
        };
        let mut appended = closeout_bus::outbox::wakes(&database);
        self.published.send_replace(Some(position));
        let mut retry = HELD_BACK_RETRY;
        loop {
            // Seen before reading, so a commit during the read wakes us again.
            wake.borrow_and_update();
            appended.borrow_and_update();
            let idle = self.batches.receiver_count() == 0;
            let pause = match self.advance(&mut position).await {
                Ok(false) => {
                    retry = HELD_BACK_RETRY;
                    self.poll
                }
                // Rows committed but not released yet: look again soon.
                Ok(true) => {
                    let pause = retry;
                    retry = (retry * 2).min(self.poll);
                    pause
                }
                Err(error) => {
                    tracing::warn!(%error, "WatchItems cannot read the log; retrying");
                    self.poll
                }
            };
            if idle {
                // Wakes meanwhile are kept by the channels.
                tokio::time::sleep(IDLE_SPACING.min(pause)).await;
            }
            tokio::select! {
                changed = wake.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(pause).await;
                    }
                }
                changed = appended.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(pause).await;
                    }
                }
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Publishes everything released after `position`; true if committed
    /// rows are still held back by an older transaction still running.
    async fn advance(&self, position: &mut Key) -> Result<bool, TrackerError> {
        loop {
            if self.batches.receiver_count() == 0 {
                // Nobody listens: move on without reading the changes.
                let end = self.released_end().await?;
                if end > *position {
                    *position = end;
                    self.published.send_replace(Some(end));
                }
                return Ok(false);
            }
            let horizon = self.horizon().await?;
            let rows: Vec<ChangeRow> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM item_events \
                 WHERE (watch_xid, sequence) > ($1::text::xid8, $2) \
                   AND watch_xid < $3::text::xid8 \
                 ORDER BY watch_xid, sequence LIMIT $4"
            ))
            .bind(position.0.to_string())
            .bind(position.1)
            .bind(horizon.to_string())
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
            let full = rows.len() as i64 == BATCH;
            if let Some(last) = rows.last() {
                let to = (last.watch_xid, last.sequence);
                let changes = rows
                    .into_iter()
                    .map(|row| row.decode().map(Arc::new))
                    .collect::<Result<Vec<_>, _>>()?;
                let batch = Batch {
                    from: *position,
                    to,
                    changes,
                };
                // No receiver left is fine: the position still moves.
                let _ = self.batches.send(Arc::new(batch));
                *position = to;
                self.published.send_replace(Some(to));
            }
            if !full {
                break;
            }
        }
        // Not `EXISTS`: the planner drops an ORDER BY inside it, and when it
        // expects many rows past the position it scans the heap from the
        // start, where they are not (the newest rows are at its end): a
        // read growing with the history. The ordered LIMIT 1 keeps to the
        // index.
        Ok(sqlx::query_scalar(
            "SELECT (SELECT sequence FROM item_events \
                     WHERE (watch_xid, sequence) > ($1::text::xid8, $2) \
                     ORDER BY watch_xid, sequence LIMIT 1) IS NOT NULL",
        )
        .bind(position.0.to_string())
        .bind(position.1)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The release horizon: the least of the snapshot's xmax (one past the
    /// last completed transaction id; every id below it was assigned before
    /// the statement began) and the ids of this database's transactions
    /// still running, read from `pg_stat_activity` after the snapshot was
    /// taken. A row whose `watch_xid` is below it was written by a
    /// transaction that had ended before the query returned, so a query
    /// started afterwards sees it (or nothing, if it aborted); a transaction
    /// starting later gets an id at or above the horizon. Only this
    /// database counts: a long transaction elsewhere in the cluster (which
    /// the snapshot's own xmin would wait for) cannot write here. The
    /// 32-bit ids of `pg_stat_activity` are widened to xid8 around xmax
    /// (running ids may lie a little above it).
    async fn horizon(&self) -> Result<i64, TrackerError> {
        Ok(sqlx::query_scalar(
            "WITH n AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next) \
             SELECT least(n.next, \
                          min(n.next + ((a.backend_xid::text::bigint - (n.next & 4294967295) \
                                         + 2147483648) & 4294967295) - 2147483648)) \
             FROM n LEFT JOIN pg_stat_activity a \
               ON a.datname = current_database() AND a.backend_xid IS NOT NULL \
             GROUP BY n.next",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The key of the last released row ((0, 0) for an empty log).
    async fn released_end(&self) -> Result<Key, TrackerError> {
        let horizon = self.horizon().await?;
        let end: Option<(i64, i64)> = sqlx::query_as(
            // Qualified: a bare `watch_xid` would name the bigint output
            // column, sorting every row instead of reading the index.
            "SELECT watch_xid::text::bigint, sequence FROM item_events \
             WHERE watch_xid < $1::text::xid8 \
             ORDER BY item_events.watch_xid DESC, item_events.sequence DESC LIMIT 1",
        )
        .bind(horizon.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(end.unwrap_or((0, 0)))
    }
}

type Sink = mpsc::Sender<Result<pb::WatchItemsResponse, tonic::Status>>;

impl Watchers {
    /// Opens one stream. It ends when the client goes away, at shutdown, or
    /// after sending an error (the database failed).
    pub fn stream(
        &self,
        filter: WatchFilter,
    ) -> ReceiverStream<Result<pb::WatchItemsResponse, tonic::Status>> {
        let (tx, rx) = mpsc::channel(64);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.follow(filter, &tx).await {
                let _ = tx.send(Err(error.into())).await;
            }
        });
        ReceiverStream::new(rx)
    }

    async fn follow(mut self, filter: WatchFilter, tx: &Sink) -> Result<(), TrackerError> {
        // Subscribed before anything is read, so no batch falls between.
        let mut batches = self.batches.subscribe();
        let mut cursor = self.resume_key(filter.after_sequence).await?;
        let mut published = self.published.clone();
        tokio::select! {
            started = published.wait_for(Option::is_some) => {
                if started.is_err() {
                    return Ok(()); // shut down before the tail started
                }
            }
            _ = self.stop.changed() => return Ok(()),
            _ = tx.closed() => return Ok(()),
        }
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            let published = (*self.published.borrow_and_update()).unwrap_or_default();
            if !self.catch_up(&filter, &mut cursor, published, tx).await? {
                return Ok(());
            }
            // A batch is sent before the position it reaches is published,
            // so it is taken first; a position moved without a batch (no
            // stream was open when the tail moved) is read from the database.
            let batch = tokio::select! {
                biased;
                batch = batches.recv() => batch,
                _ = self.published.changed() => continue,
                _ = self.stop.changed() => return Ok(()),
                _ = tx.closed() => return Ok(()),
            };
            let batch = match batch {
                Ok(batch) => batch,
                // Fell behind: the next round reads the gap from the database.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            };
            if !self.catch_up(&filter, &mut cursor, batch.from, tx).await? {
                return Ok(());
            }
            for change in &batch.changes {
                if change.key > cursor
                    && filter.matches(change)
                    && tx.send(Ok(change.response.clone())).await.is_err()
                {
                    return Ok(()); // the client went away
                }
            }
            cursor = cursor.max(batch.to);
        }
    }

    /// Sends the changes in `(cursor, upto]` from the database (all
    /// released already); false if the client went away.
    async fn catch_up(
        &self,
        filter: &WatchFilter,
        cursor: &mut Key,
        upto: Key,
        tx: &Sink,
    ) -> Result<bool, TrackerError> {
        while *cursor < upto {
            let rows = self.read(filter, *cursor, upto).await?;
            let full = rows.len() as i64 == BATCH;
            for row in rows {
                let change = row.decode()?;
                if tx.send(Ok(change.response)).await.is_err() {
                    return Ok(false);
                }
                *cursor = change.key;
            }
            if !full {
                *cursor = upto;
            }
        }
        Ok(true)
    }

    /// Where a stream resuming after `sequence` continues: that row's key
    /// (for a sequence that names no row, the largest `watch_xid` at or
    /// before it).
    async fn resume_key(&self, sequence: u64) -> Result<Key, TrackerError> {
        let sequence = i64::try_from(sequence).unwrap_or(i64::MAX);
        if sequence == 0 {
            return Ok((0, 0));
        }
        let xid: i64 = sqlx::query_scalar(
            "SELECT coalesce((SELECT watch_xid FROM item_events WHERE sequence = $1), \
                             (SELECT max(watch_xid) FROM item_events WHERE sequence <= $1), \
                             '0')::text::bigint",
        )
        .bind(sequence)
        .fetch_one(&self.pool)
        .await?;
        Ok((xid, sequence))
    }

    async fn read(
        &self,
        filter: &WatchFilter,
        after: Key,
        upto: Key,
    ) -> Result<Vec<ChangeRow>, TrackerError> {
        let organisation = if filter.organisation_id.is_empty() {
            ""
        } else {
            "AND organisation_id = $5 "
        };
        let statuses = if filter.statuses.is_empty() {
            ""
        } else {
            "AND status_after = ANY($6) "
        };
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM item_events \
             WHERE (watch_xid, sequence) > ($1::text::xid8, $2) \
               AND (watch_xid, sequence) <= ($3::text::xid8, $4) \
               {organisation}{statuses}\
             ORDER BY watch_xid, sequence LIMIT $7"
        ))
        .bind(after.0.to_string())
        .bind(after.1)
        .bind(upto.0.to_string())
        .bind(upto.1)
        .bind(&filter.organisation_id)
        .bind(&filter.statuses)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?)
    }
}

fn decode<M: Message + Default>(bytes: &[u8], sequence: i64) -> Result<M, TrackerError> {
    M::decode(bytes).map_err(|e| TrackerError::Corrupt(format!("item event {sequence}: {e}")))
}
