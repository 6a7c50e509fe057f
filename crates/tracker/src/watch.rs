//! WatchItems: a resumable stream of item changes read from `item_events`.
//!
//! Each stream first replays the rows after the client's sequence, then
//! follows new ones. A single LISTEN connection per process wakes every
//! stream when a transaction that appended item events commits (the
//! NOTIFY is sent inside that transaction); a poll interval is the
//! back-stop if a notification is lost (a dropped LISTEN connection). Every
//! wake-up re-reads `sequence > last sent`, so nothing is missed and
//! nothing is sent twice, and since the stream reads only the database it
//! works the same on every replica.

use crate::error::TrackerError;
use closeout_proto as pb;
use prost::Message;
use sqlx::postgres::PgListener;
use sqlx::{FromRow, PgPool};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// PostgreSQL channel notified whenever item events are committed.
pub const CHANNEL: &str = "closeout_tracker_item_events";

/// Rows read per query; a full batch is followed at once by the next.
const BATCH: i64 = 500;

/// What a watcher asked for, validated.
#[derive(Clone, Debug, Default)]
pub struct WatchFilter {
    /// Only this organisation's items ("" for all).
    pub organisation_id: String,
    /// Only changes of items in one of these statuses before or after the
    /// change (empty for all).
    pub statuses: Vec<i16>,
    /// Resume after this sequence.
    pub after_sequence: u64,
}

/// Wake-ups shared by every stream of one process, and the signal that
/// ends them all at shutdown.
#[derive(Clone)]
pub struct Watchers {
    pool: PgPool,
    wake: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    poll: Duration,
}

/// Owns the LISTEN task; dropping or calling `stop` ends every stream.
pub struct WatchersHandle {
    stop: watch::Sender<bool>,
    listener: tokio::task::JoinHandle<()>,
}

impl WatchersHandle {
    /// Ends every open stream and the LISTEN task.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        self.listener.abort();
    }
}

impl Drop for WatchersHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the LISTEN task; `poll` is the back-stop interval.
pub fn start(pool: PgPool, poll: Duration) -> (Watchers, WatchersHandle) {
    let (wake_tx, wake) = watch::channel(0u64);
    let (stop_tx, stop) = watch::channel(false);
    let listener = tokio::spawn(listen(pool.clone(), wake_tx));
    (
        Watchers {
            pool,
            wake,
            stop,
            poll,
        },
        WatchersHandle {
            stop: stop_tx,
            listener,
        },
    )
}

/// Forwards every notification on [`CHANNEL`] as a wake-up; reconnects
/// after a failure (the poll back-stop covers the gap).
async fn listen(pool: PgPool, wake: watch::Sender<u64>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "LISTEN failed; retrying");
                } else {
                    // Anything committed while we were not listening.
                    wake.send_modify(|n| *n += 1);
                    loop {
                        match listener.recv().await {
                            Ok(_) => wake.send_modify(|n| *n += 1),
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
    sequence: i64,
    envelope: Vec<u8>,
    item_after: Vec<u8>,
}

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

    async fn follow(
        mut self,
        filter: WatchFilter,
        tx: &mpsc::Sender<Result<pb::WatchItemsResponse, tonic::Status>>,
    ) -> Result<(), TrackerError> {
        let mut last = i64::try_from(filter.after_sequence).unwrap_or(i64::MAX);
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            // Seen before reading, so a commit during the read wakes us again.
            self.wake.borrow_and_update();
            let rows = self.read(&filter, last).await?;
            let full = rows.len() as i64 == BATCH;
            for row in rows {
                let response = pb::WatchItemsResponse {
                    sequence: row.sequence as u64,
                    event: Some(decode(&row.envelope, row.sequence)?),
                    item: Some(decode(&row.item_after, row.sequence)?),
                };
                if tx.send(Ok(response)).await.is_err() {
                    return Ok(()); // the client went away
                }
                last = row.sequence;
            }
            if full {
                continue;
            }
            tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        // The LISTEN task is gone: poll only.
                        tokio::time::sleep(self.poll).await;
                    }
                }
                _ = tokio::time::sleep(self.poll) => {}
                _ = self.stop.changed() => {}
                _ = tx.closed() => return Ok(()),
            }
        }
    }

    async fn read(&self, filter: &WatchFilter, last: i64) -> Result<Vec<ChangeRow>, TrackerError> {
        Ok(sqlx::query_as(
            "SELECT sequence, envelope, item_after FROM item_events \
             WHERE sequence > $1 \
               AND ($2 = '' OR organisation_id = $2) \
               AND (cardinality($3::smallint[]) = 0 \
                    OR status_before = ANY($3) OR status_after = ANY($3)) \
             ORDER BY sequence LIMIT $4",
        )
        .bind(last)
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
