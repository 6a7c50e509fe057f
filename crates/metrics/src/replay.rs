//! A rebuild's replay, in two steps, so that a million events take seconds
//! rather than minutes.
//!
//! 1. While the stream replays, [`crate::consume::Replay`] stores every
//!    event in the history and folds registrations and inspections as the
//!    live consumers do ([`store::apply_registrations`]), but leaves items
//!    and everything counted from them alone: per batch that is the
//!    history's insert and nothing else for the tracker's events (most of
//!    them).
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
//! move by differences with the same [`Tallies::add`]. Registrations and inspections are folded in
//! stream order by the same code as live.
//!
//! Why a crash is repaired: step 2 is one transaction that empties what it
//! writes first, and the rebuild marks itself pending until step 2 has
//! committed ([`mark_pending`]): a rerun starts from scratch, and a service
//! started instead finishes step 2 before it consumes
//! ([`finish_if_pending`]). A service running during step 1 is harmless
//! too: its consumers fold whichever events they take into items (from the
//! history, out of order), and step 2 locks the tables and redoes them all
//! from the history.

use crate::model::{self, Fact, ItemState, Target};
use crate::store;
use crate::tally::Tallies;
use closeout_proto::EventEnvelope;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap};
use tokio_stream::StreamExt;

/// Items written per statement, and refolded per query.
const CHUNK: usize = 5_000;

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
/// its consumers would otherwise continue on items never folded).
pub async fn finish_if_pending(pool: &PgPool) -> Result<(), sqlx::Error> {
    let pending: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rebuild_pending)")
        .fetch_one(pool)
        .await?;
    if pending {
        tracing::warn!("a rebuild stopped before folding the items; folding them now");
        fold_items(pool).await?;
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
