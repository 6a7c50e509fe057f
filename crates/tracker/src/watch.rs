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
//! **Idle streams hold no connection, and are not woken by others'
//! changes.** One tail task per process follows the log: woken by this
//! process's outbox signal (every journal append writes the outbox, and
//! every commit that appended raises `closeout_bus::outbox::committed`), by
//! the relay's NOTIFY for events written by other replicas (the LISTEN
//! connection has its own one-connection pool, outside the service's) or
//! by the poll back-stop, it reads the newly released rows once, in one
//! statement with the horizon, and routes them: each batch goes to the
//! streams of every organisation, and the changes of each organisation to
//! the streams of that organisation only (`Routes`), so a stream is woken
//! by the changes it may send, not by every commit. While streams are
//! open, passes are at least `WATCHED_SPACING` apart: one pass serves the
//! commits of that while (a change reaches its streams at most that much
//! later), where one pass per commit group, each reading
//! `pg_stat_activity`, halved the commands' rate beside 1,000 streams.
//! Each stream filters its batches by status in memory; it queries the
//! database (with a pooled connection, released after the query) only to
//! replay history on open, or when it fell behind its route. So a thousand
//! idle streams cost a thousand small tasks and their routes' channels,
//! and work the same on every replica.

use crate::error::TrackerError;
use closeout_proto as pb;
use prost::Message;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{FromRow, PgPool};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

/// Rows read per query; a full batch is followed at once by the next.
const BATCH: i64 = 500;

/// Batches kept for the streams of every organisation that are slow to
/// take them; a stream further behind catches up from the database.
const BROADCAST_CAPACITY: usize = 1024;

/// The same for one organisation's streams: smaller, as there may be a
/// route per organisation, and a batch reaches it only when it names the
/// organisation.
const ROUTE_CAPACITY: usize = 64;

/// Shortest wait before looking again for rows held back by a transaction
/// still running; doubles up to the poll interval.
const HELD_BACK_RETRY: Duration = Duration::from_millis(2);

/// Least time between two passes of the tail while no stream is open. A
/// pass then only moves the published position (two statements), but,
/// woken by every commit, it ran back to back under write load; a stream
/// opened meanwhile starts from a position at most this old and reads the
/// rest from the database (see `follow`).
const IDLE_SPACING: Duration = Duration::from_millis(50);

/// Least time between two passes while streams are open: a change reaches
/// its streams at most this much later than one pass per commit would send
/// it, and the tail's statement (which reads `pg_stat_activity`) runs at
/// most 200 times a second whatever the commit rate.
const WATCHED_SPACING: Duration = Duration::from_millis(5);

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

/// Changes in `(from, to]` of the order: on the route of every
/// organisation all of them, on an organisation's route all of its own.
struct Batch {
    from: Key,
    to: Key,
    changes: Vec<Arc<Change>>,
}

/// One broadcast channel of batches and what its streams have been
/// promised.
struct Route {
    sender: broadcast::Sender<Arc<Batch>>,
    /// The `to` of the last batch sent here: the route's changes after it
    /// will all come in its next batches (set to the published key when a
    /// first stream subscribes, as nothing sent before concerns it).
    sent_to: Key,
}

impl Route {
    fn new(capacity: usize, published: Key) -> Route {
        Route {
            sender: broadcast::channel(capacity).0,
            sent_to: published,
        }
    }

    fn send(&mut self, to: Key, changes: Vec<Arc<Change>>) {
        // No receiver left is fine: the promise still moves.
        let _ = self.sender.send(Arc::new(Batch {
            from: self.sent_to,
            to,
            changes,
        }));
        self.sent_to = to;
    }

    fn watched(&self) -> bool {
        self.sender.receiver_count() > 0
    }
}

/// Where the tail sends what it reads. Changed only under its lock, by the
/// tail (publishing) and by a stream subscribing, so a stream's starting
/// point and its route's promise are read together.
struct Routes {
    /// The last key the tail has published; None until it has started.
    published: Option<Key>,
    /// Streams of every organisation.
    all: Route,
    /// Streams of one organisation, by its id; removed once none is left.
    organisations: HashMap<String, Route>,
}

impl Routes {
    fn watched(&self) -> bool {
        self.all.watched() || self.organisations.values().any(Route::watched)
    }

    /// Publishes `changes`, the whole of `(published, to]`.
    fn publish(&mut self, to: Key, changes: Vec<Arc<Change>>) {
        self.published = Some(to);
        self.organisations.retain(|_, route| route.watched());
        if !self.organisations.is_empty() {
            let mut by_organisation: HashMap<&str, Vec<Arc<Change>>> = HashMap::new();
            for change in &changes {
                if self.organisations.contains_key(&change.organisation_id) {
                    by_organisation
                        .entry(change.organisation_id.as_str())
                        .or_default()
                        .push(change.clone());
                }
            }
            for (organisation, changes) in by_organisation {
                if let Some(route) = self.organisations.get_mut(organisation) {
                    route.send(to, changes);
                }
            }
        }
        self.all.send(to, changes);
    }
}

type Shared = Arc<Mutex<Routes>>;

fn lock(routes: &Shared) -> MutexGuard<'_, Routes> {
    // The lock is never held across anything that can panic halfway.
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wake-ups shared by every stream of one process, and the signal that
/// ends them all at shutdown.
#[derive(Clone)]
pub struct Watchers {
    pool: PgPool,
    routes: Shared,
    /// True once the tail has published its first position.
    started: watch::Receiver<bool>,
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
    let (started_tx, started) = watch::channel(false);
    let routes: Shared = Arc::new(Mutex::new(Routes {
        published: None,
        all: Route::new(BROADCAST_CAPACITY, (0, 0)),
        organisations: HashMap::new(),
    }));
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
            routes: routes.clone(),
            started: started_tx,
            poll,
        }
        .run(wake),
    );
    (
        Watchers {
            pool,
            routes,
            started,
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

/// A row of the tail's statement: whether committed rows are held back,
/// and one released change, if any.
#[derive(FromRow)]
struct PassRow {
    held_back: bool,
    watch_xid: Option<i64>,
    sequence: Option<i64>,
    organisation_id: Option<String>,
    status_after: Option<i16>,
    envelope: Option<Vec<u8>>,
    item_after: Option<Vec<u8>>,
}

impl PassRow {
    fn change(self) -> Option<ChangeRow> {
        Some(ChangeRow {
            watch_xid: self.watch_xid?,
            sequence: self.sequence?,
            organisation_id: self.organisation_id?,
            status_after: self.status_after?,
            envelope: self.envelope?,
            item_after: self.item_after?,
        })
    }
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
const HORIZON: &str = "WITH n AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next) \
     SELECT least(n.next, \
                  min(n.next + ((a.backend_xid::text::bigint - (n.next & 4294967295) \
                                 + 2147483648) & 4294967295) - 2147483648)) AS horizon \
     FROM n LEFT JOIN pg_stat_activity a \
       ON a.datname = current_database() AND a.backend_xid IS NOT NULL \
     GROUP BY n.next";

/// What one pass of the tail found.
struct Pass {
    /// Streams were open: the changes were read and routed.
    watched: bool,
    /// Committed rows are still held back by an older transaction.
    held_back: bool,
}

/// The one reader of newly released rows in a process.
struct Tail {
    pool: PgPool,
    routes: Shared,
    started: watch::Sender<bool>,
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
        lock(&self.routes).published = Some(position);
        self.started.send_replace(true);
        let mut retry = HELD_BACK_RETRY;
        loop {
            // Seen before reading, so a commit during the read wakes us again.
            wake.borrow_and_update();
            appended.borrow_and_update();
            let began = Instant::now();
            let (spacing, pause) = match self.advance(&mut position).await {
                // Rows committed but not released yet: look again soon.
                Ok(Pass {
                    held_back: true, ..
                }) => {
                    let pause = retry;
                    retry = (retry * 2).min(self.poll);
                    (WATCHED_SPACING, pause)
                }
                Ok(Pass { watched, .. }) => {
                    retry = HELD_BACK_RETRY;
                    let spacing = if watched {
                        WATCHED_SPACING
                    } else {
                        IDLE_SPACING
                    };
                    (spacing, self.poll)
                }
                Err(error) => {
                    tracing::warn!(%error, "WatchItems cannot read the log; retrying");
                    (IDLE_SPACING, self.poll)
                }
            };
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
            // One pass serves every commit of the spacing: wakes meanwhile
            // are kept by the channels.
            tokio::time::sleep_until(began + spacing.min(self.poll)).await;
        }
    }

    /// Publishes everything released after `position`.
    async fn advance(&self, position: &mut Key) -> Result<Pass, TrackerError> {
        loop {
            if !lock(&self.routes).watched() {
                // Nobody listens: move on without reading the changes.
                let end = self.released_end().await?;
                let mut routes = lock(&self.routes);
                if routes.watched() {
                    // A stream subscribed meanwhile, promised every change
                    // after the published key: read them.
                    continue;
                }
                if end > *position {
                    *position = end;
                    routes.published = Some(end);
                }
                return Ok(Pass {
                    watched: false,
                    held_back: false,
                });
            }
            let rows: Vec<PassRow> = sqlx::query_as(&format!(
                "WITH h AS (SELECT x.horizon::text::xid8 AS horizon FROM ({HORIZON}) x) \
                 SELECT (SELECT true FROM item_events \
                         WHERE item_events.watch_xid >= h.horizon \
                         ORDER BY item_events.watch_xid LIMIT 1) IS NOT NULL AS held_back, \
                        r.* \
                 FROM h LEFT JOIN LATERAL ( \
                     SELECT {COLUMNS} FROM item_events \
                     WHERE (item_events.watch_xid, sequence) > ($1::text::xid8, $2) \
                       AND item_events.watch_xid < h.horizon \
                     ORDER BY item_events.watch_xid, item_events.sequence LIMIT $3) r ON true"
            ))
            .bind(position.0.to_string())
            .bind(position.1)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
            let held_back = rows.first().is_some_and(|row| row.held_back);
            let changes = rows
                .into_iter()
                .filter_map(PassRow::change)
                .map(|row| row.decode().map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            let full = changes.len() as i64 == BATCH;
            if let Some(last) = changes.last() {
                let to = last.key;
                lock(&self.routes).publish(to, changes);
                *position = to;
            }
            if !full {
                return Ok(Pass {
                    watched: true,
                    held_back,
                });
            }
        }
    }

    /// The release horizon (`HORIZON`).
    async fn horizon(&self) -> Result<i64, TrackerError> {
        Ok(sqlx::query_scalar(HORIZON).fetch_one(&self.pool).await?)
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

    /// Subscribes to the route of `organisation` ("" for every one): its
    /// batches, and the published key, which the first batch starts at or
    /// before. None before the tail has started.
    fn subscribe(&self, organisation: &str) -> Option<(broadcast::Receiver<Arc<Batch>>, Key)> {
        let mut routes = lock(&self.routes);
        let published = routes.published?;
        let route = if organisation.is_empty() {
            &mut routes.all
        } else {
            routes
                .organisations
                .entry(organisation.to_string())
                .or_insert_with(|| Route::new(ROUTE_CAPACITY, published))
        };
        if !route.watched() {
            // Nobody took what was sent: promise only what comes next.
            route.sent_to = published;
        }
        Some((route.sender.subscribe(), published))
    }

    fn published(&self) -> Key {
        lock(&self.routes).published.unwrap_or_default()
    }

    async fn follow(mut self, filter: WatchFilter, tx: &Sink) -> Result<(), TrackerError> {
        let mut cursor = self.resume_key(filter.after_sequence).await?;
        let mut started = self.started.clone();
        tokio::select! {
            started = started.wait_for(|started| *started) => {
                if started.is_err() {
                    return Ok(()); // shut down before the tail started
                }
            }
            _ = self.stop.changed() => return Ok(()),
            _ = tx.closed() => return Ok(()),
        }
        let Some((mut batches, mut upto)) = self.subscribe(&filter.organisation_id) else {
            return Ok(());
        };
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            if !self.catch_up(&filter, &mut cursor, upto, tx).await? {
                return Ok(());
            }
            let batch = tokio::select! {
                biased;
                batch = batches.recv() => batch,
                _ = self.stop.changed() => return Ok(()),
                _ = tx.closed() => return Ok(()),
            };
            let batch = match batch {
                Ok(batch) => batch,
                // Fell behind: read the gap from the database.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    upto = self.published();
                    continue;
                }
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
