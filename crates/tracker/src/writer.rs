//! Group commit of the caller's commands. Each command reads its item and
//! decides on its own task; its write (see [`journal::PreparedWrite`])
//! then goes to one writer task per process, which runs the writes waiting
//! together as one statement committed on its own
//! ([`journal::write_many`]): one round trip and one WAL flush for all of
//! them, where each command's own statement and commit took one each.
//! PostgreSQL profiles of the per-command writes showed ~90 % of the
//! statement's time waiting on the WAL flush (BENCHMARKS.md, session 6).
//!
//! Each command still gets its own outcome: the version condition is per
//! item, so a command whose item changed since its read is told so (and
//! reads again) while the others are written. A command is answered only
//! after the statement that wrote it committed. Two commands on one item
//! never share a statement (the later waits for the next one), so each
//! item's events keep their order. If the statement fails (a deadlock
//! with another writer of several rows, a value the database refuses), the
//! writes are run again one statement each, so a failure is only the
//! failing command's.

use crate::connections::Connections;
use crate::error::TrackerError;
use crate::journal::{self, PreparedWrite};
use sqlx::PgPool;
use std::collections::{HashSet, VecDeque};
use tokio::sync::{mpsc, oneshot};

/// At most this many commands share a statement.
const MAX_BATCH: usize = 256;

/// One command's write and where its outcome goes: Ok(true) written and
/// committed, Ok(false) the item changed since it was read.
struct Pending {
    write: PreparedWrite,
    outcome: oneshot::Sender<Result<bool, TrackerError>>,
}

/// The sending side of the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Writer {
    /// Spawns the writer task on the current runtime: it writes on
    /// `connections` and wakes the outbox's followers of `pool`'s database
    /// after each commit. It ends when every `Writer` is dropped.
    pub fn spawn(pool: PgPool, connections: Connections) -> Writer {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, connections, waiting));
        Writer { queue }
    }

    /// Writes `write` with whichever commands are waiting; true once it is
    /// committed, false if its item changed since it was read.
    pub async fn write(&self, write: PreparedWrite) -> Result<bool, TrackerError> {
        let (outcome, answer) = oneshot::channel();
        self.queue
            .send(Pending { write, outcome })
            .map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }
}

/// The writer task: takes what is waiting (up to [`MAX_BATCH`], one write
/// per item), writes it, answers, and goes again.
async fn run(
    pool: PgPool,
    connections: Connections,
    mut waiting: mpsc::UnboundedReceiver<Pending>,
) {
    // Writes held back because their item was already in the batch.
    let mut held: VecDeque<Pending> = VecDeque::new();
    loop {
        if held.is_empty() {
            match waiting.recv().await {
                Some(first) => held.push_back(first),
                None => return,
            }
        }
        while held.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => held.push_back(next),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(held.len().min(MAX_BATCH));
        let mut items = HashSet::with_capacity(batch.capacity());
        let mut later = VecDeque::new();
        while let Some(pending) = held.pop_front() {
            if batch.len() < MAX_BATCH && items.insert(pending.write.item_id()) {
                batch.push(pending);
            } else {
                later.push_back(pending);
            }
        }
        held = later;
        write_batch(&pool, &connections, batch).await;
    }
}

/// Writes `batch` (of distinct items) and answers each of its commands.
async fn write_batch(pool: &PgPool, connections: &Connections, batch: Vec<Pending>) {
    // Answers that nobody awaits any more (a cancelled call) are dropped.
    let together = if batch.len() > 1 {
        write_together(connections, &batch).await
    } else {
        Err(())
    };
    match together {
        Ok(written) => {
            pool_committed(pool, written.iter().any(|w| *w));
            for (pending, written) in batch.into_iter().zip(written) {
                let _ = pending.outcome.send(Ok(written));
            }
        }
        Err(()) => {
            // One at a time, so one command's failure is only its own.
            for pending in batch {
                let outcome = write_alone(connections, &pending.write).await;
                pool_committed(pool, matches!(outcome, Ok(true)));
                let _ = pending.outcome.send(outcome);
            }
        }
    }
}

/// The batch in one statement; Err after any failure (logged), when the
/// batch is to be written one command at a time.
async fn write_together(connections: &Connections, batch: &[Pending]) -> Result<Vec<bool>, ()> {
    let mut lease = match connections.acquire().await {
        Ok(lease) => lease,
        Err(e) => {
            tracing::warn!(error = %e, "no connection for a group of commands");
            return Err(());
        }
    };
    let writes: Vec<&PreparedWrite> = batch.iter().map(|p| &p.write).collect();
    let outcome = journal::write_many(lease.connection(), &writes).await;
    lease.settle(&outcome);
    outcome.map_err(|e| {
        tracing::warn!(error = %e, commands = batch.len(), "group of commands failed; writing them one by one");
    })
}

async fn write_alone(
    connections: &Connections,
    write: &PreparedWrite,
) -> Result<bool, TrackerError> {
    let mut lease = connections.acquire().await?;
    let outcome = write.write(lease.connection()).await;
    lease.settle(&outcome);
    outcome
}

fn shutting_down() -> TrackerError {
    TrackerError::Api(closeout_service::ApiError::Unavailable(
        "the tracker is shutting down".into(),
    ))
}

/// Events committed: wake the relay and WatchItems.
fn pool_committed(pool: &PgPool, any: bool) {
    if any {
        closeout_bus::outbox::committed(pool);
    }
}
