//! The overdue scheduler: every interval, each item past its due date and
//! still open (as `closeout_domain::is_overdue` says) is marked overdue
//! once, with one ItemOverdue event.
//!
//! Once means once across restarts and replicas: a run holds a
//! transaction-scoped advisory lock (`pg_try_advisory_xact_lock`; a replica
//! that cannot take it skips the run), and each item is marked with a
//! conditional `UPDATE … WHERE overdue = false` in the same transaction as
//! its event, so an item already marked is never marked again. Revising
//! the due date clears the mark (see `journal::project`).

use crate::commands::item_state;
use crate::error::TrackerError;
use crate::journal::{Cause, Journal};
use crate::store;
use chrono::NaiveDate;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Advisory lock key of a scheduler run. Arbitrary, fixed: "trk-ovd".
const RUN_LOCK: i64 = 0x0074_726b_2d6f_7664;

/// Items marked per transaction.
const BATCH: i64 = 200;

/// When the scheduler runs and what it takes as today.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub every: Duration,
    /// Today's date for tests; the UTC date when None.
    pub today: Option<NaiveDate>,
}

/// A running scheduler.
pub struct SchedulerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stops after the run in hand and waits for it.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the scheduler; its first run is immediate.
pub fn spawn(pool: PgPool, schedule: Schedule) -> SchedulerHandle {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let today = schedule
                .today
                .unwrap_or_else(|| chrono::Utc::now().date_naive());
            match run_once(&pool, today).await {
                Ok(0) => {}
                Ok(marked) => tracing::info!(marked, %today, "items marked overdue"),
                Err(error) => tracing::warn!(%error, "overdue run failed; will retry"),
            }
            tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(schedule.every) => {}
            }
        }
    });
    SchedulerHandle { stop, task }
}

/// One run: marks every item overdue on `today` that is not marked yet.
/// Returns how many were marked (0 when another replica holds the run).
pub async fn run_once(pool: &PgPool, today: NaiveDate) -> Result<usize, TrackerError> {
    let mut marked = 0;
    loop {
        let mut tx = pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RUN_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(marked);
        }
        // Every row of the batch is locked before any event is appended
        // (which takes the journal's lock), so a command holding one of
        // them can never wait on us while we wait on it; rows a command
        // holds right now are left for the next run.
        let candidates: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM items WHERE NOT overdue AND due_date < $1 AND status = ANY($2) \
             ORDER BY due_date, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(today)
        .bind(store::open_statuses())
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let batch = candidates.len();
        let marked_before = marked;
        let cause = Cause::new(
            closeout_service::auth::system_actor("tracker"),
            Uuid::now_v7().to_string(),
        );
        for id in candidates {
            let Some(mut item) = store::lock_item(&mut tx, id).await? else {
                continue;
            };
            // The domain's rule: overdue, and not yet announced.
            let Some(change) = closeout_domain::mark_overdue(&item_state(&item)?, today) else {
                continue;
            };
            let updated =
                sqlx::query("UPDATE items SET overdue = true WHERE id = $1 AND overdue = false")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if updated != 1 {
                continue;
            }
            let event = closeout_domain::wire::payload(&item.id, change);
            Journal::append(&mut tx, &mut item, vec![event], &cause).await?;
            marked += 1;
        }
        tx.commit().await?;
        closeout_bus::outbox::committed(pool);
        if (batch as i64) < BATCH || marked == marked_before {
            return Ok(marked);
        }
    }
}
