//! The metrics database: the event history and the live read models.
//!
//! Writes happen inside the consumer's transaction ([`record_batch`] then
//! [`apply`]), reads build a [`Snapshot`] for the pure queries: from the
//! read-model tables ([`load_live`]) or by folding the history up to a
//! moment ([`load_history`]). Runtime queries only.

use crate::model::{
    self, Fact, InspectionMeta, InspectionState, ItemState, OrganisationState, Snapshot, Target,
};
use crate::tally::{self, ClosedKey, ClosingKey, DateMap, DaysToClose, Tallies, Totals};
use chrono::{DateTime, NaiveDate, Utc};
use closeout_proto::EventEnvelope;
use closeout_proto::event_envelope::Payload;
use closeout_service::connections::{Connections, Lease};
use prost::Message;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, Row};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// Every read-model table, dropped by a rebuild.
pub const READ_MODEL_TABLES: &[&str] = &[
    "events",
    "organisations",
    "inspections",
    "judgments",
    "indicators",
    "items",
    "tally_counts",
    "tally_inspections",
    "tally_open",
    "tally_due",
    "tally_closed",
    "tally_totals",
    "tally_open_inspections",
    "tally_closing",
    "tally_dates",
    "tally_days",
    "tally_days_all",
    "dated_tallies",
    "dated_items",
    "dated_item_heads",
    "dated_refs",
    "dated_inspections",
    "dated_fill",
    "dated_checkpoints",
    "dated_checkpoint_days",
];

fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn db_version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores a batch of checked events (`heads[i]` is `facts[i]`'s id and
/// envelope) in the history with one statement. Returns the facts not
/// there before, in the batch's order (each once).
pub async fn record_batch(
    tx: &mut PgConnection,
    heads: &[(Uuid, &EventEnvelope)],
    facts: Vec<Fact>,
) -> Result<Vec<Fact>, sqlx::Error> {
    let events = heads.iter().zip(&facts);
    let mut ids = Vec::with_capacity(events.len());
    let mut at = Vec::with_capacity(events.len());
    let mut orgs = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut aggregates = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut event_types = Vec::with_capacity(events.len());
    let mut envelopes = Vec::with_capacity(events.len());
    for ((id, envelope), fact) in events {
        ids.push(*id);
        at.push(fact.occurred_at);
        orgs.push(fact.organisation_id.clone());
        types.push(envelope.aggregate_type.clone());
        aggregates.push(history_aggregate(fact));
        versions.push(db_version(fact.version));
        event_types.push(envelope.event_type.clone());
        envelopes.push(envelope.encode_to_vec());
    }
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO events (event_id, occurred_at, organisation_id, aggregate_type, \
         aggregate_id, aggregate_version, event_type, envelope) \
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], \
         $5::text[], $6::bigint[], $7::text[], $8::bytea[]) \
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    .bind(&ids)
    .bind(&at)
    .bind(&orgs)
    .bind(&types)
    .bind(&aggregates)
    .bind(&versions)
    .bind(&event_types)
    .bind(&envelopes)
    .fetch_all(&mut *tx)
    .await?;
    let mut fresh: HashSet<Uuid> = inserted.into_iter().collect();
    Ok(heads
        .iter()
        .zip(facts)
        .filter(|((id, _), _)| fresh.remove(id))
        .map(|(_, fact)| fact)
        .collect())
}

/// The history's `aggregate_id` of an event: what it folds into, or the
/// envelope's aggregate for an event that folds into nothing.
pub(crate) fn history_aggregate(fact: &Fact) -> String {
    match fact.target() {
        Target::Organisation(id) | Target::Inspection(id) | Target::Item(id) => id,
        Target::HistoryOnly => fact.aggregate_id.clone(),
    }
}

/// Folds recorded events (in the order given) into the live read models:
/// the batch's items are read once, folded in memory and written back with
/// one statement, and their tallies move by the difference.
pub async fn apply(tx: &mut PgConnection, facts: &[Fact]) -> Result<(), sqlx::Error> {
    let mut item_ids: Vec<String> = facts
        .iter()
        .filter_map(|f| match f.target() {
            Target::Item(id) => Some(id),
            _ => None,
        })
        .collect();
    item_ids.sort();
    item_ids.dedup();
    // The as-of upkeep's locks come before any item's (crate::dated).
    let upkeep = crate::dated::prepare(tx, facts).await?;
    apply_registrations(tx, facts).await?;
    let mut items = load_items(tx, &item_ids).await?;
    let mut tallies = Tallies::default();
    let mut folded: HashMap<String, crate::dated::Touched> = HashMap::new();
    for fact in facts {
        match fact.target() {
            Target::Item(id) => {
                let state = items.entry(id.clone()).or_default();
                let before = state.clone();
                let seen = folded
                    .entry(id.clone())
                    .or_insert_with(|| crate::dated::Touched {
                        before: before.clone(),
                        in_order: true,
                    });
                if model::item_applies_in_order(state.version, fact.version) {
                    state.apply(fact);
                } else {
                    // Out of order, repeated or with a gap: fold the whole
                    // history (which already holds this event) in version
                    // order.
                    seen.in_order = false;
                    let history = item_history(tx, &id).await?;
                    *state = model::fold_item(&history);
                }
                if state.item_id.is_empty() {
                    state.item_id = id;
                }
                tallies.change(&before, state);
            }
            // Folded above: they touch no item.
            Target::Organisation(_) | Target::Inspection(_) | Target::HistoryOnly => {}
        }
    }
    let touched: Vec<&ItemState> = item_ids.iter().filter_map(|id| items.get(id)).collect();
    save_items(tx, &touched).await?;
    save_tallies(tx, tallies.without_zeros()).await?;
    // The as-of deltas of what this batch touched (crate::dated).
    crate::dated::apply(tx, facts, upkeep, &folded).await
}

/// Folds registrations, inspections and their content, and renames, in
/// the batch's order ([`apply`] does this first; a rebuild's replay does
/// only this, [`crate::replay`]). Between two renames the inspections are
/// read once, folded in memory and written back with a few statements; a
/// rename moves stored rows, so what comes before it is written first.
pub async fn apply_registrations(tx: &mut PgConnection, facts: &[Fact]) -> Result<(), sqlx::Error> {
    let mut start = 0;
    for (i, fact) in facts.iter().enumerate() {
        if matches!(fact.payload, Payload::OrganisationRenamed(_)) {
            fold_registrations(tx, &facts[start..i]).await?;
            crate::rename::apply(tx, fact).await?;
            start = i + 1;
        }
    }
    fold_registrations(tx, &facts[start..]).await?;
    redate_days_to_close(tx, facts).await
}

/// An inspection being folded: its meta and the content to add (first of
/// each id wins, as `ON CONFLICT DO NOTHING` gives when inserted one by
/// one), and whether its stored content is replaced.
#[derive(Default)]
struct PendingInspection {
    state: InspectionState,
    replaced: bool,
}

/// [`apply_registrations`] between renames: registrations (rare) one by
/// one, inspections read, folded and written together.
async fn fold_registrations(tx: &mut PgConnection, facts: &[Fact]) -> Result<(), sqlx::Error> {
    let mut ids: Vec<String> = facts
        .iter()
        .filter_map(|f| match f.target() {
            Target::Inspection(id) => Some(id),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    let mut inspections: BTreeMap<String, PendingInspection> = BTreeMap::new();
    if !ids.is_empty() {
        let rows =
            sqlx::query("SELECT * FROM inspections WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        for row in rows {
            let meta = inspection_from(&row)?;
            let state = InspectionState {
                meta,
                ..Default::default()
            };
            inspections.insert(
                state.meta.inspection_id.clone(),
                PendingInspection {
                    state,
                    replaced: false,
                },
            );
        }
    }
    for fact in facts {
        match fact.target() {
            Target::Organisation(id) => apply_organisation(tx, &id, fact).await?,
            Target::Inspection(id) => {
                let pending = inspections.entry(id.clone()).or_insert_with(|| {
                    let mut pending = PendingInspection::default();
                    pending.state.meta.inspection_id = id;
                    pending
                });
                // The content is replaced exactly when a newer version
                // moves `content_version` (model::apply_inspection).
                let before = pending.state.meta.content_version;
                pending.state.apply(fact);
                pending.replaced |= pending.state.meta.content_version > before;
            }
            Target::Item(_) | Target::HistoryOnly => {}
        }
    }
    save_inspections(tx, &inspections).await
}

/// Writes folded inspections: their meta (one statement), the stored
/// content of those replaced removed, the new content added (one statement
/// per table).
async fn save_inspections(
    tx: &mut PgConnection,
    inspections: &BTreeMap<String, PendingInspection>,
) -> Result<(), sqlx::Error> {
    if inspections.is_empty() {
        return Ok(());
    }
    let metas: Vec<(&String, &InspectionMeta)> = inspections
        .iter()
        .map(|(id, p)| (id, &p.state.meta))
        .collect();
    let text = |f: fn(&InspectionMeta) -> &String| {
        metas
            .iter()
            .map(|(_, m)| f(m).as_str())
            .collect::<Vec<&str>>()
    };
    sqlx::query(
        "INSERT INTO inspections (id, organisation_id, programme, period, title, published, \
         published_version, announced, content_version) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::bigint[], $8::bool[], $9::bigint[]) \
         ON CONFLICT (id) DO UPDATE SET organisation_id = EXCLUDED.organisation_id, \
         programme = EXCLUDED.programme, period = EXCLUDED.period, title = EXCLUDED.title, \
         published = EXCLUDED.published, published_version = EXCLUDED.published_version, \
         announced = EXCLUDED.announced, content_version = EXCLUDED.content_version",
    )
    .bind(
        metas
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<&str>>(),
    )
    .bind(text(|m| &m.organisation_id))
    .bind(text(|m| &m.programme))
    .bind(text(|m| &m.period))
    .bind(text(|m| &m.title))
    .bind(text(|m| &m.published))
    .bind(
        metas
            .iter()
            .map(|(_, m)| db_version(m.published_version))
            .collect::<Vec<i64>>(),
    )
    .bind(
        metas
            .iter()
            .map(|(_, m)| m.announced)
            .collect::<Vec<bool>>(),
    )
    .bind(
        metas
            .iter()
            .map(|(_, m)| db_version(m.content_version))
            .collect::<Vec<i64>>(),
    )
    .execute(&mut *tx)
    .await?;
    let replaced: Vec<&str> = inspections
        .iter()
        .filter(|(_, p)| p.replaced)
        .map(|(id, _)| id.as_str())
        .collect();
    if !replaced.is_empty() {
        for table in ["judgments", "indicators"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE inspection_id = ANY($1)"
            ))
            .bind(&replaced)
            .execute(&mut *tx)
            .await?;
        }
    }
    let judgments: Vec<(&str, &model::Judgment)> = inspections
        .iter()
        .flat_map(|(id, p)| p.state.judgments.iter().map(move |j| (id.as_str(), j)))
        .collect();
    if !judgments.is_empty() {
        sqlx::query(
            "INSERT INTO judgments (inspection_id, judgment_id, pillar, question, grade, \
             scale, carried_over, last_inspected) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
             $5::smallint[], $6::smallint[], $7::bool[], $8::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(judgments.iter().map(|(id, _)| *id).collect::<Vec<&str>>())
        .bind(
            judgments
                .iter()
                .map(|(_, j)| j.judgment_id.as_str())
                .collect::<Vec<&str>>(),
        )
        .bind(
            judgments
                .iter()
                .map(|(_, j)| j.pillar.as_str())
                .collect::<Vec<&str>>(),
        )
        .bind(
            judgments
                .iter()
                .map(|(_, j)| j.question.as_str())
                .collect::<Vec<&str>>(),
        )
        .bind(
            judgments
                .iter()
                .map(|(_, j)| j.grade as i16)
                .collect::<Vec<i16>>(),
        )
        .bind(
            judgments
                .iter()
                .map(|(_, j)| j.scale as i16)
                .collect::<Vec<i16>>(),
        )
        .bind(
            judgments
                .iter()
                .map(|(_, j)| j.carried_over)
                .collect::<Vec<bool>>(),
        )
        .bind(
            judgments
                .iter()
                .map(|(_, j)| j.last_inspected.as_str())
                .collect::<Vec<&str>>(),
        )
        .execute(&mut *tx)
        .await?;
    }
    let indicators: Vec<(&str, &model::Indicator)> = inspections
        .iter()
        .flat_map(|(id, p)| p.state.indicators.iter().map(move |n| (id.as_str(), n)))
        .collect();
    if !indicators.is_empty() {
        let text = |f: fn(&model::Indicator) -> &String| {
            indicators
                .iter()
                .map(|(_, n)| f(n).as_str())
                .collect::<Vec<&str>>()
        };
        sqlx::query(
            "INSERT INTO indicators (inspection_id, indicator_id, measure, period, value, \
             unit, comparator, comparator_value, comparator_period) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
             $5::float8[], $6::text[], $7::text[], $8::float8[], $9::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(indicators.iter().map(|(id, _)| *id).collect::<Vec<&str>>())
        .bind(text(|n| &n.indicator_id))
        .bind(text(|n| &n.measure))
        .bind(text(|n| &n.period))
        .bind(
            indicators
                .iter()
                .map(|(_, n)| n.value)
                .collect::<Vec<f64>>(),
        )
        .bind(text(|n| &n.unit))
        .bind(text(|n| &n.comparator))
        .bind(
            indicators
                .iter()
                .map(|(_, n)| n.comparator_value)
                .collect::<Vec<Option<f64>>>(),
        )
        .bind(text(|n| &n.comparator_period))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn apply_organisation(
    tx: &mut PgConnection,
    id: &str,
    fact: &Fact,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query("SELECT * FROM organisations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut state = match row {
        Some(row) => organisation_from(&row)?,
        None => OrganisationState::default(),
    };
    if !model::apply_organisation(&mut state, fact) {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO organisations (id, name, kind, most_similar_group, version) \
         VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
         kind = EXCLUDED.kind, most_similar_group = EXCLUDED.most_similar_group, \
         version = EXCLUDED.version",
    )
    .bind(id)
    .bind(&state.name)
    .bind(state.kind as i16)
    .bind(&state.most_similar_group)
    .bind(db_version(state.version))
    .execute(tx)
    .await?;
    Ok(())
}

/// The stored states of these items, locked for the transaction.
async fn load_items(
    tx: &mut PgConnection,
    ids: &[String],
) -> Result<HashMap<String, ItemState>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query("SELECT * FROM items WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .fetch_all(tx)
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let state = item_from(&row)?;
        out.insert(state.item_id.clone(), state);
    }
    Ok(out)
}

/// Writes items' states with one statement.
pub(crate) async fn save_items(
    tx: &mut PgConnection,
    items: &[&ItemState],
) -> Result<(), sqlx::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&ItemState) -> String| items.iter().map(|i| f(i)).collect::<Vec<String>>();
    let small = |f: fn(&ItemState) -> i32| {
        items
            .iter()
            .map(|i| i16::try_from(f(i)).unwrap_or(i16::MAX))
            .collect::<Vec<i16>>()
    };
    sqlx::query(
        "INSERT INTO items (id, organisation_id, inspection_id, finding_id, kind, pillar, \
         question, status, opened, opened_at, closed_at, due_date, overdue, \
         closed_by_inspection_id, version, verified_on) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], \
         $6::text[], $7::text[], $8::smallint[], $9::bool[], $10::timestamptz[], \
         $11::timestamptz[], $12::date[], $13::bool[], $14::text[], $15::bigint[], $16::date[]) \
         ON CONFLICT (id) DO UPDATE SET organisation_id = EXCLUDED.organisation_id, \
         inspection_id = EXCLUDED.inspection_id, finding_id = EXCLUDED.finding_id, \
         kind = EXCLUDED.kind, pillar = EXCLUDED.pillar, question = EXCLUDED.question, \
         status = EXCLUDED.status, opened = EXCLUDED.opened, opened_at = EXCLUDED.opened_at, \
         closed_at = EXCLUDED.closed_at, due_date = EXCLUDED.due_date, \
         overdue = EXCLUDED.overdue, closed_by_inspection_id = EXCLUDED.closed_by_inspection_id, \
         version = EXCLUDED.version, verified_on = EXCLUDED.verified_on",
    )
    .bind(col(|i| i.item_id.clone()))
    .bind(col(|i| i.organisation_id.clone()))
    .bind(col(|i| i.inspection_id.clone()))
    .bind(col(|i| i.finding_id.clone()))
    .bind(small(|i| i.kind))
    .bind(col(|i| i.pillar.clone()))
    .bind(col(|i| i.question.clone()))
    .bind(small(|i| i.status))
    .bind(items.iter().map(|i| i.opened).collect::<Vec<bool>>())
    .bind(items.iter().map(|i| i.opened_at).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.closed_at).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.due_date).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.overdue).collect::<Vec<bool>>())
    .bind(col(|i| i.closed_by_inspection_id.clone()))
    .bind(
        items
            .iter()
            .map(|i| db_version(i.version))
            .collect::<Vec<i64>>(),
    )
    .bind(items.iter().map(|i| i.verified_on).collect::<Vec<_>>())
    .execute(tx)
    .await?;
    Ok(())
}

fn small(v: i32) -> i16 {
    i16::try_from(v).unwrap_or(i16::MAX)
}

/// Adds counts keyed by organisation and one more column to `table`
/// (`tally_inspections`, `tally_open_inspections`, `tally_due`,
/// `tally_days`: the same shape), one statement.
async fn add_counts_by_organisation<B>(
    tx: &mut PgConnection,
    table: &'static str,
    (column, column_type): (&'static str, &'static str),
    counts: BTreeMap<(String, B), i64>,
) -> Result<(), sqlx::Error>
where
    Vec<B>: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    B: 'static,
{
    if counts.is_empty() {
        return Ok(());
    }
    let (mut org, mut other, mut n) = (vec![], vec![], vec![]);
    for ((o, b), c) in counts {
        org.push(o);
        other.push(b);
        n.push(c);
    }
    sqlx::query(&format!(
        "INSERT INTO {table} AS t (organisation_id, {column}, n) \
         SELECT * FROM UNNEST($1::text[], $2::{column_type}[], $3::bigint[]) \
         ON CONFLICT (organisation_id, {column}) DO UPDATE SET n = t.n + EXCLUDED.n"
    ))
    .bind(org)
    .bind(other)
    .bind(n)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

const BY_INSPECTION: (&str, &str) = ("inspection_id", "text");

/// Adds tallies to the stored ones, one statement per table (keys in
/// order, so concurrent writers lock rows in the same order).
pub(crate) async fn save_tallies(tx: &mut PgConnection, t: Tallies) -> Result<(), sqlx::Error> {
    // Dated after the closings are written (see `DAYS_LOCK`).
    let days = (!t.closing.is_empty()).then(|| t.closing.clone());
    if !t.counts.is_empty() {
        let (mut org, mut status, mut kind, mut pillar, mut n) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((o, s, k, p), c) in t.counts {
            org.push(o);
            status.push(small(s));
            kind.push(small(k));
            pillar.push(p);
            n.push(c);
        }
        sqlx::query(
            "INSERT INTO tally_counts AS t (organisation_id, status, kind, pillar, n) \
             SELECT * FROM UNNEST($1::text[], $2::smallint[], $3::smallint[], $4::text[], \
             $5::bigint[]) ON CONFLICT (organisation_id, status, kind, pillar) \
             DO UPDATE SET n = t.n + EXCLUDED.n",
        )
        .bind(org)
        .bind(status)
        .bind(kind)
        .bind(pillar)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    }
    add_counts_by_organisation(tx, "tally_inspections", BY_INSPECTION, t.inspections).await?;
    if !t.open.is_empty() {
        let (mut org, mut inspection, mut day, mut n) = (vec![], vec![], vec![], vec![]);
        for ((o, i, d), c) in t.open {
            org.push(o);
            inspection.push(i);
            day.push(d);
            n.push(c);
        }
        sqlx::query(
            "INSERT INTO tally_open AS t (organisation_id, inspection_id, opened_day, n) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::date[], $4::bigint[]) \
             ON CONFLICT (organisation_id, inspection_id, opened_day) \
             DO UPDATE SET n = t.n + EXCLUDED.n",
        )
        .bind(org)
        .bind(inspection)
        .bind(day)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    }
    add_counts_by_organisation(tx, "tally_due", ("due_date", "date"), t.due).await?;
    if !t.totals.is_empty() {
        let (mut org, mut opened, mut open, mut closed) = (vec![], vec![], vec![], vec![]);
        for (o, c) in t.totals {
            org.push(o);
            opened.push(c.opened);
            open.push(c.open);
            closed.push(c.closed);
        }
        sqlx::query(
            "INSERT INTO tally_totals AS t (organisation_id, opened, open, closed) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) \
             ON CONFLICT (organisation_id) DO UPDATE SET opened = t.opened + EXCLUDED.opened, \
             open = t.open + EXCLUDED.open, closed = t.closed + EXCLUDED.closed",
        )
        .bind(org)
        .bind(opened)
        .bind(open)
        .bind(closed)
        .execute(&mut *tx)
        .await?;
    }
    add_counts_by_organisation(
        tx,
        "tally_open_inspections",
        BY_INSPECTION,
        t.open_inspections,
    )
    .await?;
    if !t.closing.is_empty() {
        let (mut org, mut inspection, mut by, mut verified, mut day, mut n) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (k, c) in t.closing {
            org.push(k.organisation_id);
            inspection.push(k.inspection_id);
            by.push(k.closed_by_inspection_id);
            verified.push(k.verified);
            day.push(k.closing_day);
            n.push(c);
        }
        sqlx::query(
            "INSERT INTO tally_closing AS t (organisation_id, inspection_id, \
             closed_by_inspection_id, verified, closing_day, n) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::date[], \
             $6::bigint[]) \
             ON CONFLICT (organisation_id, inspection_id, closed_by_inspection_id, verified, \
             closing_day) DO UPDATE SET n = t.n + EXCLUDED.n",
        )
        .bind(org)
        .bind(inspection)
        .bind(by)
        .bind(verified)
        .bind(day)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    }
    if !t.closed.is_empty() {
        let (mut org, mut inspection, mut opened, mut verified, mut by, mut closed, mut n) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (k, c) in t.closed {
            org.push(k.organisation_id);
            inspection.push(k.inspection_id);
            opened.push(k.opened_day);
            verified.push(k.verified_on);
            by.push(k.closed_by_inspection_id);
            closed.push(k.closed_day);
            n.push(c);
        }
        sqlx::query(
            "INSERT INTO tally_closed AS t (organisation_id, inspection_id, opened_day, \
             verified_on, closed_by_inspection_id, closed_day, n) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[], $5::text[], \
             $6::date[], $7::bigint[]) \
             ON CONFLICT (organisation_id, inspection_id, opened_day, verified_on, \
             closed_by_inspection_id, closed_day) DO UPDATE SET n = t.n + EXCLUDED.n",
        )
        .bind(org)
        .bind(inspection)
        .bind(opened)
        .bind(verified)
        .bind(by)
        .bind(closed)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(closing) = days {
        lock_days(&mut *tx).await?;
        let mut ids: Vec<String> = closing
            .keys()
            .flat_map(|k| [&k.inspection_id, &k.closed_by_inspection_id])
            .filter(|id| !id.is_empty())
            .cloned()
            .collect();
        ids.sort();
        ids.dedup();
        let dates = sync_dates(tx, &ids, &closing).await?;
        save_days(tx, DaysToClose::of(&closing, &dates)).await?;
    }
    Ok(())
}

/// Serialises the two writers of the days-to-close histograms: a batch
/// dating new closings by `tally_dates` (the tracker's consumer) and a
/// batch re-dating stored closings when an inspection's date changes
/// (findings'). Without it each could miss the other's uncommitted rows
/// and a closing would never be counted. Held to commit; taken only by
/// batches that close items or bring inspections, after their closings
/// are written (so never while waiting for a rebuild's table locks with
/// it held) and before the as-of tables' lock (crate::dated).
const DAYS_LOCK: i64 = 0x6461_7973;

async fn lock_days(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(DAYS_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Brings `tally_dates` up to the inspections table for these inspections
/// and returns their dates. An inspection whose date arrived, changed or
/// went (or that has no row yet: after a rebuild's reset, say) moves the
/// stored closings it dates from the days its old date gave to those the
/// new one gives; `pending` are closings this transaction has written but
/// not yet dated, left out of the move. Called under [`lock_days`].
async fn sync_dates(
    tx: &mut PgConnection,
    ids: &[String],
    pending: &BTreeMap<ClosingKey, i64>,
) -> Result<DateMap, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, Option<NaiveDate>)> = sqlx::query_as(
        "SELECT i.id, i.published, d.published, d.day FROM inspections i \
         LEFT JOIN tally_dates d ON d.inspection_id = i.id WHERE i.id = ANY($1) ORDER BY i.id",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut dates = DateMap::new();
    let (mut seen_id, mut seen_text, mut seen_day) = (vec![], vec![], vec![]);
    let mut changed: Vec<(String, Option<NaiveDate>)> = Vec::new();
    for (id, published, assumed_text, assumed_day) in rows {
        let day = if assumed_text.as_deref() == Some(published.as_str()) {
            assumed_day
        } else {
            let day = model::published_on(&published);
            if day != assumed_day {
                changed.push((id.clone(), day));
            }
            seen_id.push(id.clone());
            seen_text.push(published);
            seen_day.push(day);
            day
        };
        if let Some(day) = day {
            dates.insert(id, day);
        }
    }
    if !changed.is_empty() {
        let moved: Vec<String> = changed.iter().map(|(id, _)| id.clone()).collect();
        let (closings, before) = closings_touching(&mut *tx, &moved, None).await?;
        // The stored closings, as they were before this transaction's.
        let mut stored: BTreeMap<ClosingKey, i64> = closings.into_iter().collect();
        for (key, n) in pending {
            if let Some(m) = stored.get_mut(key) {
                *m -= n;
            }
        }
        let mut after = before.clone();
        for (id, day) in changed {
            match day {
                Some(day) => after.insert(id, day),
                None => after.remove(&id),
            };
        }
        let mut days = DaysToClose::default();
        days.redate(&stored, &before, &after);
        save_days(tx, days).await?;
    }
    if !seen_id.is_empty() {
        sqlx::query(
            "INSERT INTO tally_dates AS t (inspection_id, published, day) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::date[]) \
             ON CONFLICT (inspection_id) DO UPDATE SET published = EXCLUDED.published, \
             day = EXCLUDED.day",
        )
        .bind(seen_id)
        .bind(seen_text)
        .bind(seen_day)
        .execute(&mut *tx)
        .await?;
    }
    Ok(dates)
}

/// Adds to the days-to-close histograms, one statement per table (keys in
/// order).
async fn save_days(tx: &mut PgConnection, days: DaysToClose) -> Result<(), sqlx::Error> {
    let days = days.without_zeros();
    add_counts_by_organisation(tx, "tally_days", ("days", "bigint"), days.by_organisation).await?;
    if !days.all.is_empty() {
        let (d, n): (Vec<i64>, Vec<i64>) = days.all.into_iter().unzip();
        sqlx::query(
            "INSERT INTO tally_days_all AS t (days, n) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[]) \
             ON CONFLICT (days) DO UPDATE SET n = t.n + EXCLUDED.n",
        )
        .bind(d)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The closings (of one organisation, or everyone's) that either of these
/// inspections dates, and the dates `tally_dates` holds for their
/// inspections.
async fn closings_touching<'c, E>(
    executor: E,
    ids: &[String],
    org: Option<&str>,
) -> Result<(Vec<(ClosingKey, i64)>, DateMap), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let by_org = if org.is_some() {
        "c.organisation_id = $2"
    } else {
        "$2::text IS NULL"
    };
    type Row = (
        String,
        String,
        String,
        bool,
        Option<NaiveDate>,
        i64,
        Option<NaiveDate>,
        Option<NaiveDate>,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT c.organisation_id, c.inspection_id, c.closed_by_inspection_id, c.verified, \
         c.closing_day, c.n, a.day, b.day FROM tally_closing c \
         LEFT JOIN tally_dates a ON a.inspection_id = c.inspection_id \
         LEFT JOIN tally_dates b ON b.inspection_id = c.closed_by_inspection_id \
         WHERE c.n <> 0 AND {by_org} AND (c.inspection_id = ANY($1) \
         OR (c.closed_by_inspection_id <> '' AND c.closed_by_inspection_id = ANY($1)))"
    ))
    .bind(ids)
    .bind(org)
    .fetch_all(executor)
    .await?;
    let mut dates = DateMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (o, i, by, verified, day, n, opened, closed_by) in rows {
        if let Some(d) = opened {
            dates.insert(i.clone(), d);
        }
        if let Some(d) = closed_by {
            dates.insert(by.clone(), d);
        }
        out.push((
            ClosingKey {
                organisation_id: o,
                inspection_id: i,
                closed_by_inspection_id: by,
                verified,
                closing_day: day,
            },
            n,
        ));
    }
    Ok((out, dates))
}

/// Re-dates the days-to-close histograms for the inspections of this
/// batch whose date arrived, changed or went ([`sync_dates`]), in the
/// batch's transaction before [`save_tallies`], which dates the batch's
/// own closings with the new dates.
pub(crate) async fn redate_days_to_close(
    tx: &mut PgConnection,
    facts: &[Fact],
) -> Result<(), sqlx::Error> {
    let mut ids: Vec<String> = facts
        .iter()
        .filter_map(|f| match f.target() {
            Target::Inspection(id) => Some(id),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort();
    ids.dedup();
    lock_days(&mut *tx).await?;
    sync_dates(tx, &ids, &BTreeMap::new()).await?;
    Ok(())
}

/// What a live counted answer reads: the snapshot within `scope` without
/// its items, the summary tallies that stand for them, and the detail
/// tallies of the inspections the snapshot gives no date; counting only
/// the inspections published by `today` when given (a report published
/// later dates nothing yet).
pub async fn load_counted_until(
    from: impl Into<Source<'_>>,
    scope: Scope<'_>,
    today: Option<NaiveDate>,
) -> Result<(Snapshot, Tallies), sqlx::Error> {
    let from = from.into();
    // Two statements at once on two connections: the snapshot, the
    // summaries.
    let (mut snapshot, (mut tallies, _, _, ahead)) = tokio::try_join!(
        load_snapshot_from(from, scope.organisation, scope.content),
        async {
            let mut held = from.acquire().await?;
            let read = load_summaries(held.connection(), scope.organisation, true, Days::No).await;
            held.settle(read)
        }
    )?;
    published_by(&mut snapshot, today);
    let undated = tally::undated_inspections(&snapshot, &tallies);
    let mut details = Tallies::default();
    details_of(from, scope.organisation, &undated, ahead, &mut details).await?;
    tallies.open = details.open;
    tallies.closed = details.closed;
    Ok((snapshot, tallies))
}

/// What a live scorecard of `organisation_id` reads: [`load_counted_until`]
/// with its content, but the organisation's days-to-close histogram in
/// place of its closings (corrected for the inspections whose date the
/// answer reads differently, [`correct_days`]).
pub async fn load_scorecard(
    from: impl Into<Source<'_>>,
    organisation_id: &str,
    today: Option<NaiveDate>,
) -> Result<(Snapshot, Tallies), sqlx::Error> {
    let from = from.into();
    let org = Some(organisation_id);
    let (snapshot, mut tallies, found) =
        read_live(from, org, true, Days::Own(organisation_id), today).await?;
    let days = details_and_days(from, org, &snapshot, &mut tallies, found).await?;
    tallies.peer_days = Some(days.own_days(organisation_id));
    Ok((snapshot, tallies))
}

/// The first reads of a live scorecard or peer comparison: two statements
/// at once on two connections, the snapshot (with `content` or not) beside
/// the summaries and the `days` histograms; the inspections published after
/// `today` taken out of the snapshot.
async fn read_live(
    from: Source<'_>,
    org: Option<&str>,
    content: bool,
    days: Days<'_>,
    today: Option<NaiveDate>,
) -> Result<(Snapshot, Tallies, Found), sqlx::Error> {
    let (mut snapshot, (tallies, days, suspect, ahead)) =
        tokio::try_join!(load_snapshot_from(from, org, content), async {
            let mut held = from.acquire().await?;
            let read = load_summaries(held.connection(), org, false, days).await;
            held.settle(read)
        })?;
    let later = published_by(&mut snapshot, today);
    let found = Found {
        days,
        suspect,
        later,
        ahead,
    };
    Ok((snapshot, tallies, found))
}

/// What a live scorecard and peer comparison read after the summaries, at
/// once: the details of the inspections with no date, into `tallies`, and
/// the histograms corrected for the answer's dates ([`correct_days`]).
async fn details_and_days(
    from: Source<'_>,
    org: Option<&str>,
    snapshot: &Snapshot,
    tallies: &mut Tallies,
    found: Found,
) -> Result<DaysToClose, sqlx::Error> {
    let Found {
        mut days,
        suspect,
        later,
        ahead,
    } = found;
    let undated = tally::undated_inspections(snapshot, tallies);
    let answer = tally::answer_dates(snapshot);
    let mut details = Tallies::default();
    let detail = details_of(from, org, &undated, ahead, &mut details);
    let correction = correct_days(from, org, suspect, later, &answer, &mut days);
    tokio::try_join!(detail, correction)?;
    tallies.open = details.open;
    tallies.closed = details.closed;
    Ok(days)
}

/// What the summaries' statement found beside the summary tallies: the
/// histograms, the inspections they may have dated differently, the
/// inspections this answer leaves out (`later`, [`published_by`]) and the
/// details read ahead.
struct Found {
    days: DaysToClose,
    suspect: Vec<String>,
    later: Vec<String>,
    ahead: Ahead,
}

/// The detail tallies the summaries' statement read ahead: those of every
/// inspection whose publication text the consumer found no date in
/// (`tally_dates.day` NULL), which are usually the ones an answer finds
/// undated, so that it needs no second round trip.
#[derive(Default)]
struct Ahead {
    /// The inspections whose details these are (all of each one's rows).
    inspections: HashSet<String>,
    details: Tallies,
}

/// Adds to `into` the details of the `undated` inspections: those read
/// ahead, and the others (an inspection the consumer dated that this
/// answer does not, or left out as published later) read now.
async fn details_of(
    from: Source<'_>,
    org: Option<&str>,
    undated: &[String],
    ahead: Ahead,
    into: &mut Tallies,
) -> Result<(), sqlx::Error> {
    let wanted: HashSet<&str> = undated.iter().map(String::as_str).collect();
    for (key, n) in ahead.details.open {
        if wanted.contains(key.1.as_str()) {
            into.open.insert(key, n);
        }
    }
    for (key, n) in ahead.details.closed {
        if wanted.contains(key.inspection_id.as_str()) {
            into.closed.insert(key, n);
        }
    }
    let missing: Vec<String> = undated
        .iter()
        .filter(|i| !ahead.inspections.contains(i.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut held = from.acquire().await?;
    let read = load_details(held.connection(), org, &missing, into).await;
    held.settle(read)
}

/// Moves the closings of the `suspect` inspections (whose publication text
/// is not the one the histograms were dated by) and of the `later` ones
/// (left out of this answer) from the days the histograms gave them to
/// those the answer's dates give. Usually both are empty: no statement.
async fn correct_days(
    from: Source<'_>,
    org: Option<&str>,
    suspect: Vec<String>,
    later: Vec<String>,
    answer: &DateMap,
    days: &mut DaysToClose,
) -> Result<(), sqlx::Error> {
    let mut ids = suspect;
    ids.extend(later);
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort();
    ids.dedup();
    let mut held = from.acquire().await?;
    let read = closings_touching(held.connection(), &ids, org).await;
    let (closings, assumed) = held.settle(read)?;
    days.redate(closings.iter().map(|(k, n)| (k, n)), &assumed, answer);
    Ok(())
}

/// Leaves out the inspections published after `today`, when given, and
/// returns their ids.
fn published_by(snapshot: &mut Snapshot, today: Option<NaiveDate>) -> Vec<String> {
    let mut later = Vec::new();
    if let Some(today) = today {
        snapshot.inspections.retain(|id, i| {
            let by = model::published_on(&i.meta.published).is_none_or(|d| d <= today);
            if !by {
                later.push(id.clone());
            }
            by
        });
    }
    later
}

/// What the peer comparison of `organisation_id` reads: everyone's
/// snapshot without items and summary tallies, but instead of everyone's
/// closings the days-to-close histograms of the organisation, of its
/// registered group and of everyone ([`tally::DaysToClose`], corrected by
/// [`correct_days`]); details for the undated inspections.
pub async fn load_peers(
    from: impl Into<Source<'_>>,
    organisation_id: &str,
    today: Option<NaiveDate>,
) -> Result<(Snapshot, Tallies), sqlx::Error> {
    let from = from.into();
    let (snapshot, mut tallies, found) =
        read_live(from, None, false, Days::Peers(organisation_id), today).await?;
    let group = tally::peer_group(&snapshot, &tallies, organisation_id);
    let days = details_and_days(from, None, &snapshot, &mut tallies, found).await?;
    tallies.peer_days = Some(days.peer_days(organisation_id, &group));
    Ok((snapshot, tallies))
}

/// Which days-to-close histograms [`load_summaries`] reads besides.
#[derive(Clone, Copy)]
enum Days<'a> {
    No,
    /// The organisation's.
    Own(&'a str),
    /// The organisation's, its registered group's and everyone's.
    Peers(&'a str),
}

/// The summary tallies of one organisation, or those everyone's answers
/// read (totals, inspections, due dates and, with `closing`, closings; not
/// the counts by status, kind and pillar, nor the open items per
/// inspection, which only a scorecard reads). Non-zero counts only; no
/// details.
///
/// One statement and one round trip (a scorecard read six): a single row
/// holding each table's rows as parallel arrays. The aggregates of one
/// subquery see its rows in the same order, so the arrays line up.
///
/// With `days`, also the histograms it names and the inspections whose
/// publication text is not the one the histograms were dated by (or that
/// they have no date for): the suspects [`correct_days`] re-dates.
async fn load_summaries<'c, E>(
    executor: E,
    org: Option<&str>,
    closing: bool,
    days: Days<'_>,
) -> Result<(Tallies, DaysToClose, Vec<String>, Ahead), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    // Two statements rather than `$1 IS NULL OR …`, whose generic plan
    // cannot use the organisation index.
    let by_org = if org.is_some() {
        "organisation_id = $1"
    } else {
        "$1::text IS NULL"
    };
    let mut parts = vec![format!(
        "(SELECT array_agg(organisation_id) AS t_o, array_agg(opened) AS t_opened, \
         array_agg(open) AS t_open, array_agg(closed) AS t_closed \
         FROM tally_totals WHERE {by_org}) t"
    )];
    let nonzero = |alias: &str, columns: &[&str], table: &str| {
        let aggregates: Vec<String> = columns
            .iter()
            .map(|c| format!("array_agg({c}) AS {alias}_{c}"))
            .collect();
        format!(
            "(SELECT {} FROM {table} WHERE n <> 0 AND {by_org}) {alias}",
            aggregates.join(", ")
        )
    };
    let keyed = ["organisation_id", "inspection_id", "n"];
    parts.push(nonzero("i", &keyed, "tally_inspections"));
    parts.push(nonzero(
        "d",
        &["organisation_id", "due_date", "n"],
        "tally_due",
    ));
    if org.is_some() {
        parts.push(nonzero(
            "c",
            &["organisation_id", "status", "kind", "pillar", "n"],
            "tally_counts",
        ));
        parts.push(nonzero("oi", &keyed, "tally_open_inspections"));
    }
    if closing {
        parts.push(nonzero(
            "cl",
            &[
                "organisation_id",
                "inspection_id",
                "closed_by_inspection_id",
                "verified",
                "closing_day",
                "n",
            ],
            "tally_closing",
        ));
    }
    let histograms = match days {
        Days::No => None,
        Days::Own(of) => Some((of, "organisation_id = $2")),
        Days::Peers(of) => Some((
            of,
            "(organisation_id = $2 OR organisation_id = ANY(ARRAY(\
             SELECT unnest(most_similar_group) FROM organisations WHERE id = $2)))",
        )),
    };
    if let Some((_, whose)) = histograms {
        parts.push(format!(
            "(SELECT array_agg(organisation_id) AS h_organisation_id, array_agg(days) AS h_days, \
             array_agg(n) AS h_n FROM tally_days WHERE n <> 0 AND {whose}) h"
        ));
        parts.push(
            "(SELECT array_agg(i.id) AS s_id FROM inspections i \
             LEFT JOIN tally_dates d ON d.inspection_id = i.id \
             WHERE d.published IS DISTINCT FROM i.published) s"
                .to_string(),
        );
    }
    if let Days::Peers(_) = days {
        parts.push(
            "(SELECT array_agg(days) AS ha_days, array_agg(n) AS ha_n \
             FROM tally_days_all WHERE n <> 0) ha"
                .to_string(),
        );
    }
    // The details of the inspections the consumer found no date in, read
    // ahead ([`Ahead`]): open rows have no closer (NULL).
    let undated = "inspection_id IN (SELECT inspection_id FROM tally_dates WHERE day IS NULL)";
    parts.push(
        "(SELECT array_agg(inspection_id) AS u_id FROM tally_dates WHERE day IS NULL) u"
            .to_string(),
    );
    parts.push(format!(
        "(SELECT array_agg(organisation_id) AS ud_o, array_agg(inspection_id) AS ud_i, \
         array_agg(opened_day) AS ud_opened, array_agg(verified_on) AS ud_verified, \
         array_agg(closed_by) AS ud_by, array_agg(closed_day) AS ud_closed, \
         array_agg(n) AS ud_n FROM (\
         SELECT organisation_id, inspection_id, opened_day, NULL::date AS verified_on, \
         NULL::text AS closed_by, NULL::date AS closed_day, n FROM tally_open \
         WHERE n <> 0 AND {by_org} AND {undated} UNION ALL \
         SELECT organisation_id, inspection_id, opened_day, verified_on, \
         closed_by_inspection_id, closed_day, n FROM tally_closed \
         WHERE n <> 0 AND {by_org} AND {undated}) x) ud"
    ));
    let sql = format!("SELECT * FROM {}", parts.join(", "));
    let mut query = sqlx::query(&sql).bind(org);
    if let Some((of, _)) = histograms {
        query = query.bind(of);
    }
    let row = query.fetch_one(executor).await?;
    let mut histogram = DaysToClose::default();
    let mut suspect = Vec::new();
    if histograms.is_some() {
        for ((o, d), n) in array::<String>(&row, "h_organisation_id")?
            .into_iter()
            .zip(array::<i64>(&row, "h_days")?)
            .zip(array::<i64>(&row, "h_n")?)
        {
            histogram.by_organisation.insert((o, d), n);
        }
        suspect = array::<String>(&row, "s_id")?;
    }
    if let Days::Peers(_) = days {
        for (d, n) in array::<i64>(&row, "ha_days")?
            .into_iter()
            .zip(array::<i64>(&row, "ha_n")?)
        {
            histogram.all.insert(d, n);
        }
    }
    let mut t = Tallies::default();
    for (o, ((opened, open), closed)) in array::<String>(&row, "t_o")?.into_iter().zip(
        array(&row, "t_opened")?
            .into_iter()
            .zip(array(&row, "t_open")?)
            .zip(array(&row, "t_closed")?),
    ) {
        let totals = Totals {
            opened,
            open,
            closed,
        };
        if totals != Totals::default() {
            t.totals.insert(o, totals);
        }
    }
    for ((o, i), n) in array::<String>(&row, "i_organisation_id")?
        .into_iter()
        .zip(array::<String>(&row, "i_inspection_id")?)
        .zip(array(&row, "i_n")?)
    {
        t.inspections.insert((o, i), n);
    }
    for ((o, d), n) in array::<String>(&row, "d_organisation_id")?
        .into_iter()
        .zip(array::<NaiveDate>(&row, "d_due_date")?)
        .zip(array(&row, "d_n")?)
    {
        t.due.insert((o, d), n);
    }
    if org.is_some() {
        for ((((o, s), k), p), n) in array::<String>(&row, "c_organisation_id")?
            .into_iter()
            .zip(array::<i16>(&row, "c_status")?)
            .zip(array::<i16>(&row, "c_kind")?)
            .zip(array::<String>(&row, "c_pillar")?)
            .zip(array(&row, "c_n")?)
        {
            t.counts.insert((o, i32::from(s), i32::from(k), p), n);
        }
        for ((o, i), n) in array::<String>(&row, "oi_organisation_id")?
            .into_iter()
            .zip(array::<String>(&row, "oi_inspection_id")?)
            .zip(array(&row, "oi_n")?)
        {
            t.open_inspections.insert((o, i), n);
        }
    }
    if closing {
        for (((((o, i), by), verified), day), n) in array::<String>(&row, "cl_organisation_id")?
            .into_iter()
            .zip(array::<String>(&row, "cl_inspection_id")?)
            .zip(array::<String>(&row, "cl_closed_by_inspection_id")?)
            .zip(array::<bool>(&row, "cl_verified")?)
            .zip(array::<Option<NaiveDate>>(&row, "cl_closing_day")?)
            .zip(array(&row, "cl_n")?)
        {
            t.closing.insert(
                ClosingKey {
                    organisation_id: o,
                    inspection_id: i,
                    closed_by_inspection_id: by,
                    verified,
                    closing_day: day,
                },
                n,
            );
        }
    }
    let mut ahead = Ahead {
        inspections: array::<String>(&row, "u_id")?.into_iter().collect(),
        details: Tallies::default(),
    };
    let details = &mut ahead.details;
    for ((((((o, i), opened), verified), by), closed), n) in array::<String>(&row, "ud_o")?
        .into_iter()
        .zip(array::<String>(&row, "ud_i")?)
        .zip(array::<Option<NaiveDate>>(&row, "ud_opened")?)
        .zip(array::<Option<NaiveDate>>(&row, "ud_verified")?)
        .zip(array::<Option<String>>(&row, "ud_by")?)
        .zip(array::<Option<NaiveDate>>(&row, "ud_closed")?)
        .zip(array::<i64>(&row, "ud_n")?)
    {
        put_detail(details, (o, i, opened, verified, by, closed, n));
    }
    Ok((t, histogram, suspect, ahead))
}

/// One `array_agg` column of [`load_summaries`]' row: NULL when the table
/// had no rows.
fn array<T>(row: &PgRow, column: &str) -> Result<Vec<T>, sqlx::Error>
where
    T: sqlx::Type<sqlx::Postgres> + for<'r> sqlx::Decode<'r, sqlx::Postgres>,
    Vec<T>: sqlx::Type<sqlx::Postgres> + for<'r> sqlx::Decode<'r, sqlx::Postgres>,
{
    Ok(row
        .try_get::<Option<Vec<T>>, _>(column)?
        .unwrap_or_default())
}

/// Adds the detail tallies (open and closed items by the day they were
/// opened) of these inspections, for one organisation or everyone.
async fn load_details(
    connection: &mut PgConnection,
    org: Option<&str>,
    inspections: &[String],
    t: &mut Tallies,
) -> Result<(), sqlx::Error> {
    let filter = if org.is_some() {
        "WHERE n <> 0 AND organisation_id = $1 AND inspection_id = ANY($2)"
    } else {
        "WHERE n <> 0 AND $1::text IS NULL AND inspection_id = ANY($2)"
    };
    // Both tables in one statement: open rows have no closer (NULL).
    let rows: Vec<DetailRow> = sqlx::query_as(&format!(
        "SELECT organisation_id, inspection_id, opened_day, NULL::date, NULL::text, \
         NULL::date, n FROM tally_open {filter} UNION ALL \
         SELECT organisation_id, inspection_id, opened_day, verified_on, \
         closed_by_inspection_id, closed_day, n FROM tally_closed {filter}"
    ))
    .bind(org)
    .bind(inspections)
    .fetch_all(connection)
    .await?;
    for row in rows {
        put_detail(t, row);
    }
    Ok(())
}

/// A detail tally's row: organisation, inspection, day opened, day
/// verified, closing inspection (none for an open item), closing day, count.
type DetailRow = (
    String,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<String>,
    Option<NaiveDate>,
    i64,
);

/// Files a detail row under the open or the closed items.
fn put_detail(t: &mut Tallies, (o, i, opened, verified, by, closed, n): DetailRow) {
    match by {
        None => {
            t.open.insert((o, i, opened), n);
        }
        Some(by) => {
            t.closed.insert(
                ClosedKey {
                    organisation_id: o,
                    inspection_id: i,
                    opened_day: opened,
                    verified_on: verified,
                    closed_by_inspection_id: by,
                    closed_day: closed,
                },
                n,
            );
        }
    }
}

async fn item_history(tx: &mut PgConnection, id: &str) -> Result<Vec<Fact>, sqlx::Error> {
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM events WHERE aggregate_id = $1")
            .bind(id)
            .fetch_all(tx)
            .await?;
    Ok(decode_all(rows)
        .into_iter()
        .filter(|f| f.target() == Target::Item(id.to_string()))
        .collect())
}

fn decode_all(rows: Vec<Vec<u8>>) -> Vec<Fact> {
    rows.into_iter()
        .filter_map(|bytes| {
            // Only checked envelopes are stored; skip rather than fail.
            let envelope = EventEnvelope::decode(bytes.as_slice()).ok()?;
            Fact::from_envelope(&envelope).ok()
        })
        .collect()
}

fn organisation_from(row: &PgRow) -> Result<OrganisationState, sqlx::Error> {
    Ok(OrganisationState {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: i32::from(row.try_get::<i16, _>("kind")?),
        most_similar_group: row.try_get("most_similar_group")?,
        version: version(row.try_get("version")?),
    })
}

fn inspection_from(row: &PgRow) -> Result<InspectionMeta, sqlx::Error> {
    Ok(InspectionMeta {
        inspection_id: row.try_get("id")?,
        organisation_id: row.try_get("organisation_id")?,
        programme: row.try_get("programme")?,
        period: row.try_get("period")?,
        title: row.try_get("title")?,
        published: row.try_get("published")?,
        published_version: version(row.try_get("published_version")?),
        announced: row.try_get("announced")?,
        content_version: version(row.try_get("content_version")?),
    })
}

fn item_from(row: &PgRow) -> Result<ItemState, sqlx::Error> {
    Ok(ItemState {
        item_id: row.try_get("id")?,
        organisation_id: row.try_get("organisation_id")?,
        inspection_id: row.try_get("inspection_id")?,
        finding_id: row.try_get("finding_id")?,
        kind: i32::from(row.try_get::<i16, _>("kind")?),
        pillar: row.try_get("pillar")?,
        question: row.try_get("question")?,
        status: i32::from(row.try_get::<i16, _>("status")?),
        opened: row.try_get("opened")?,
        opened_at: row.try_get::<Option<DateTime<Utc>>, _>("opened_at")?,
        closed_at: row.try_get::<Option<DateTime<Utc>>, _>("closed_at")?,
        due_date: row.try_get::<Option<NaiveDate>, _>("due_date")?,
        overdue: row.try_get("overdue")?,
        closed_by_inspection_id: row.try_get("closed_by_inspection_id")?,
        verified_on: row.try_get::<Option<NaiveDate>, _>("verified_on")?,
        version: version(row.try_get("version")?),
    })
}

/// Where a live read takes its connections: the service's request-path
/// connections (handed back without sqlx's release ping, see
/// `closeout_service::connections`), or a pool (the benches, the tests).
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Pool(&'a PgPool),
    Connections(&'a Connections),
}

impl<'a> From<&'a PgPool> for Source<'a> {
    fn from(pool: &'a PgPool) -> Self {
        Source::Pool(pool)
    }
}

impl<'a> From<&'a Connections> for Source<'a> {
    fn from(connections: &'a Connections) -> Self {
        Source::Connections(connections)
    }
}

impl Source<'_> {
    /// One connection for one read.
    async fn acquire(self) -> Result<Held, sqlx::Error> {
        Ok(match self {
            Source::Pool(pool) => Held::Pooled(pool.acquire().await?),
            Source::Connections(connections) => Held::Leased(connections.acquire().await?),
        })
    }
}

/// A connection held for one read.
enum Held {
    Pooled(PoolConnection<Postgres>),
    Leased(Lease),
}

impl Held {
    fn connection(&mut self) -> &mut PgConnection {
        match self {
            Held::Pooled(connection) => connection,
            Held::Leased(lease) => lease.connection(),
        }
    }

    /// Hands the connection back as the read's outcome says (a lease after
    /// a failure is pinged first), and passes the outcome on.
    fn settle<T>(self, read: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Held::Leased(lease) = self {
            lease.settle(&read);
        }
        read
    }
}

/// How much of the live read model a query needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    /// One organisation's items and inspections, or everyone's.
    pub organisation: Option<&'a str>,
    /// Whether to load judgments and indicators.
    pub content: bool,
    /// Whether to load the items themselves (the tallies answer without).
    pub items: bool,
}

/// The live read models (within `scope`) as a snapshot.
pub async fn load_live(
    from: impl Into<Source<'_>>,
    scope: Scope<'_>,
) -> Result<Snapshot, sqlx::Error> {
    let mut held = from.into().acquire().await?;
    let read = live_on(held.connection(), scope).await;
    held.settle(read)
}

/// [`load_live`]'s statements, one after another on one connection.
async fn live_on(connection: &mut PgConnection, scope: Scope<'_>) -> Result<Snapshot, sqlx::Error> {
    let mut snapshot = Snapshot::default();
    let org = scope.organisation;
    // One statement per scope (`= $1`, or `$1 IS NULL` alone): the generic
    // plan of `$1 IS NULL OR … = $1` cannot use the organisation's index.
    let one = |column: &str| {
        if org.is_some() {
            format!("{column} = $1")
        } else {
            "$1::text IS NULL".to_string()
        }
    };
    for row in sqlx::query(&format!("SELECT * FROM organisations WHERE {}", one("id")))
        .bind(org)
        .fetch_all(&mut *connection)
        .await?
    {
        let state = organisation_from(&row)?;
        snapshot.organisations.insert(state.id.clone(), state);
    }
    if scope.items {
        for row in sqlx::query(&format!(
            "SELECT * FROM items WHERE {}",
            one("organisation_id")
        ))
        .bind(org)
        .fetch_all(&mut *connection)
        .await?
        {
            let state = item_from(&row)?;
            snapshot.items.insert(state.item_id.clone(), state);
        }
    }
    for row in sqlx::query(&format!(
        "SELECT * FROM inspections WHERE {}",
        one("organisation_id")
    ))
    .bind(org)
    .fetch_all(&mut *connection)
    .await?
    {
        let meta = inspection_from(&row)?;
        snapshot.inspections.insert(
            meta.inspection_id.clone(),
            InspectionState {
                meta,
                ..Default::default()
            },
        );
    }
    // Inspections of other organisations that opened this one's items (a
    // national report) or closed them: only their dates, to date the items.
    if org.is_some() {
        let rows = sqlx::query(
            "SELECT id, published FROM inspections WHERE organisation_id <> $1 AND id IN \
             (SELECT inspection_id FROM tally_inspections WHERE organisation_id = $1 AND n <> 0 \
              UNION SELECT closed_by_inspection_id FROM tally_closing \
              WHERE organisation_id = $1 AND n <> 0)",
        )
        .bind(org)
        .fetch_all(&mut *connection)
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let published: String = row.try_get("published")?;
            if let Some(day) = model::published_on(&published) {
                snapshot.dating.insert(id, day);
            }
        }
    }
    if scope.content {
        load_content(connection, org).await?.attach(&mut snapshot);
    }
    snapshot.normalise();
    Ok(snapshot)
}

/// [`load_snapshot`]'s one statement on a connection of `from` (the live
/// answers' and the as-of answers' snapshot, where [`load_live`] reads table
/// by table).
pub(crate) async fn load_snapshot_from(
    from: impl Into<Source<'_>>,
    org: Option<&str>,
    content: bool,
) -> Result<Snapshot, sqlx::Error> {
    let mut held = from.into().acquire().await?;
    let read = load_snapshot(held.connection(), org, content).await;
    held.settle(read)
}

/// The rows of [`load_snapshot`]'s statement, by what they hold.
const SNAPSHOT_ORGANISATION: i16 = 0;
const SNAPSHOT_INSPECTION: i16 = 1;
const SNAPSHOT_DATING: i16 = 2;
const SNAPSHOT_JUDGMENT: i16 = 3;
const SNAPSHOT_INDICATOR: i16 = 4;

/// The live snapshot a counted answer reads, without items: what
/// [`load_live`] and [`load_content`] read in up to five statements, in
/// one (a round trip each was most of a scorecard's time on a busy
/// machine). The tables' rows share one shape, `tag` saying which table
/// (`SNAPSHOT_*`), and are decoded by position.
async fn load_snapshot(
    connection: &mut PgConnection,
    org: Option<&str>,
    content: bool,
) -> Result<Snapshot, sqlx::Error> {
    // `= $1`, or `$1 IS NULL` alone: the generic plan of
    // `$1 IS NULL OR … = $1` cannot use the organisation's index.
    let one = |column: &str| {
        if org.is_some() {
            format!("{column} = $1")
        } else {
            "$1::text IS NULL".to_string()
        }
    };
    // tag, t1..t7 text, i1 i2 bigint, b boolean, f1 f2 float8, arr text[]
    let mut parts = vec![
        format!(
            "SELECT {SNAPSHOT_ORGANISATION}::int2 AS tag, id AS t1, name AS t2, NULL::text AS t3, \
             NULL::text AS t4, NULL::text AS t5, NULL::text AS t6, NULL::text AS t7, \
             kind::int8 AS i1, version AS i2, NULL::boolean AS b, NULL::float8 AS f1, \
             NULL::float8 AS f2, most_similar_group AS arr FROM organisations WHERE {}",
            one("id")
        ),
        format!(
            "SELECT {SNAPSHOT_INSPECTION}::int2, id, organisation_id, programme, period, title, \
             published, NULL, published_version, content_version, announced, NULL, NULL, NULL \
             FROM inspections WHERE {}",
            one("organisation_id")
        ),
    ];
    // Inspections of other organisations that opened this one's items (a
    // national report) or closed them: only their dates, to date the items.
    if org.is_some() {
        parts.push(format!(
            "SELECT {SNAPSHOT_DATING}::int2, id, published, NULL, NULL, NULL, NULL, NULL, NULL, \
             NULL, NULL, NULL, NULL, NULL FROM inspections WHERE organisation_id <> $1 AND id IN \
             (SELECT inspection_id FROM tally_inspections WHERE organisation_id = $1 AND n <> 0 \
              UNION SELECT closed_by_inspection_id FROM tally_closing \
              WHERE organisation_id = $1 AND n <> 0)"
        ));
    }
    if content {
        let whose = one("i.organisation_id");
        parts.push(format!(
            "SELECT {SNAPSHOT_JUDGMENT}::int2, c.inspection_id, c.judgment_id, c.pillar, \
             c.question, c.last_inspected, NULL, NULL, c.grade::int8, c.scale::int8, \
             c.carried_over, NULL, NULL, NULL \
             FROM judgments c JOIN inspections i ON i.id = c.inspection_id WHERE {whose}"
        ));
        parts.push(format!(
            "SELECT {SNAPSHOT_INDICATOR}::int2, c.inspection_id, c.indicator_id, c.measure, \
             c.period, c.unit, c.comparator, c.comparator_period, NULL, NULL, NULL, c.value, \
             c.comparator_value, NULL \
             FROM indicators c JOIN inspections i ON i.id = c.inspection_id WHERE {whose}"
        ));
    }
    let rows = sqlx::query(&parts.join(" UNION ALL "))
        .bind(org)
        .fetch_all(connection)
        .await?;
    let mut snapshot = Snapshot::default();
    let mut content = LoadedContent::default();
    for row in rows {
        let text = |i: usize| -> Result<String, sqlx::Error> {
            Ok(row.try_get::<Option<String>, _>(i)?.unwrap_or_default())
        };
        let int = |i: usize| -> Result<i64, sqlx::Error> {
            Ok(row.try_get::<Option<i64>, _>(i)?.unwrap_or_default())
        };
        let flag = |i: usize| -> Result<bool, sqlx::Error> {
            Ok(row.try_get::<Option<bool>, _>(i)?.unwrap_or_default())
        };
        let small = |i: usize| -> Result<i32, sqlx::Error> {
            i32::try_from(int(i)?).map_err(|e| sqlx::Error::ColumnDecode {
                index: i.to_string(),
                source: Box::new(e),
            })
        };
        match row.try_get::<i16, _>(0)? {
            SNAPSHOT_ORGANISATION => {
                let state = OrganisationState {
                    id: text(1)?,
                    name: text(2)?,
                    kind: small(8)?,
                    most_similar_group: row
                        .try_get::<Option<Vec<String>>, _>(13)?
                        .unwrap_or_default(),
                    version: version(int(9)?),
                };
                snapshot.organisations.insert(state.id.clone(), state);
            }
            SNAPSHOT_INSPECTION => {
                let meta = InspectionMeta {
                    inspection_id: text(1)?,
                    organisation_id: text(2)?,
                    programme: text(3)?,
                    period: text(4)?,
                    title: text(5)?,
                    published: text(6)?,
                    published_version: version(int(8)?),
                    announced: flag(10)?,
                    content_version: version(int(9)?),
                };
                snapshot.inspections.insert(
                    meta.inspection_id.clone(),
                    InspectionState {
                        meta,
                        ..Default::default()
                    },
                );
            }
            SNAPSHOT_DATING => {
                if let Some(day) = model::published_on(&text(2)?) {
                    snapshot.dating.insert(text(1)?, day);
                }
            }
            SNAPSHOT_JUDGMENT => content.judgments.push((
                text(1)?,
                model::Judgment {
                    judgment_id: text(2)?,
                    pillar: text(3)?,
                    question: text(4)?,
                    grade: small(8)?,
                    scale: small(9)?,
                    carried_over: flag(10)?,
                    last_inspected: text(5)?,
                },
            )),
            SNAPSHOT_INDICATOR => content.indicators.push((
                text(1)?,
                model::Indicator {
                    indicator_id: text(2)?,
                    measure: text(3)?,
                    period: text(4)?,
                    value: row.try_get::<Option<f64>, _>(11)?.unwrap_or_default(),
                    unit: text(5)?,
                    comparator: text(6)?,
                    comparator_value: row.try_get::<Option<f64>, _>(12)?,
                    comparator_period: text(7)?,
                },
            )),
            _ => {}
        }
    }
    content.attach(&mut snapshot);
    snapshot.normalise();
    Ok(snapshot)
}

/// The judgments and indicators of the inspections of one organisation
/// (or everyone's), by inspection.
#[derive(Default)]
struct LoadedContent {
    judgments: Vec<(String, model::Judgment)>,
    indicators: Vec<(String, model::Indicator)>,
}

impl LoadedContent {
    /// Adds them to the snapshot's inspections (others are dropped, as
    /// when the two are read together); the caller normalises.
    fn attach(self, snapshot: &mut Snapshot) {
        for (id, judgment) in self.judgments {
            if let Some(inspection) = snapshot.inspections.get_mut(&id) {
                inspection.judgments.push(judgment);
            }
        }
        for (id, indicator) in self.indicators {
            if let Some(inspection) = snapshot.inspections.get_mut(&id) {
                inspection.indicators.push(indicator);
            }
        }
    }
}

async fn load_content(
    connection: &mut PgConnection,
    org: Option<&str>,
) -> Result<LoadedContent, sqlx::Error> {
    let mut content = LoadedContent::default();
    let join = if org.is_some() {
        "JOIN inspections i ON i.id = c.inspection_id WHERE i.organisation_id = $1"
    } else {
        "JOIN inspections i ON i.id = c.inspection_id WHERE $1::text IS NULL"
    };
    for row in sqlx::query(&format!("SELECT c.* FROM judgments c {join}"))
        .bind(org)
        .fetch_all(&mut *connection)
        .await?
    {
        content.judgments.push((
            row.try_get("inspection_id")?,
            model::Judgment {
                judgment_id: row.try_get("judgment_id")?,
                pillar: row.try_get("pillar")?,
                question: row.try_get("question")?,
                grade: i32::from(row.try_get::<i16, _>("grade")?),
                scale: i32::from(row.try_get::<i16, _>("scale")?),
                carried_over: row.try_get("carried_over")?,
                last_inspected: row.try_get("last_inspected")?,
            },
        ));
    }
    for row in sqlx::query(&format!("SELECT c.* FROM indicators c {join}"))
        .bind(org)
        .fetch_all(&mut *connection)
        .await?
    {
        content.indicators.push((
            row.try_get("inspection_id")?,
            model::Indicator {
                indicator_id: row.try_get("indicator_id")?,
                measure: row.try_get("measure")?,
                period: row.try_get("period")?,
                value: row.try_get("value")?,
                unit: row.try_get("unit")?,
                comparator: row.try_get("comparator")?,
                comparator_value: row.try_get("comparator_value")?,
                comparator_period: row.try_get("comparator_period")?,
            },
        ));
    }
    Ok(content)
}

/// The snapshot as things stood at the end of `day`, folded from the
/// stored history (one organisation's events and the events of the other
/// organisations' inspections its items refer to, or everyone's) and dated
/// by what the events record ([`Snapshot::as_of`]), not by when they were
/// received. Content is folded whatever the scope says.
pub async fn load_history(
    pool: &PgPool,
    day: NaiveDate,
    organisation: Option<&str>,
) -> Result<Snapshot, sqlx::Error> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT envelope FROM events WHERE ($1::text IS NULL OR organisation_id = $1)",
    )
    .bind(organisation)
    .fetch_all(pool)
    .await?;
    let mut facts = decode_all(rows);
    if organisation.is_some() {
        let mut referred: Vec<String> = facts
            .iter()
            .flat_map(|f| match &f.payload {
                Payload::ItemOpened(o) => vec![o.inspection_id.clone()],
                Payload::ItemVerified(v) => vec![v.closed_by_inspection_id.clone()],
                _ => Vec::new(),
            })
            .filter(|id| !id.is_empty())
            .collect();
        referred.sort();
        referred.dedup();
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT envelope FROM events WHERE aggregate_id = ANY($1) \
             AND organisation_id IS DISTINCT FROM $2 AND event_type LIKE '%InspectionPublished'",
        )
        .bind(&referred)
        .bind(organisation)
        .fetch_all(pool)
        .await?;
        // Only their dates: folded into `dating`, not counted as the
        // organisation's inspections.
        let others = decode_all(rows);
        let mut snapshot = Snapshot::as_of(facts.drain(..).chain(others.iter().cloned()), day);
        for fact in &others {
            if let Payload::InspectionPublished(p) = &fact.payload
                && p.organisation_id != organisation.unwrap_or_default()
            {
                snapshot.inspections.remove(&p.inspection_id);
            }
        }
        return Ok(snapshot);
    }
    Ok(Snapshot::as_of(facts, day))
}

/// Number of events in the history (for the Prometheus endpoint).
pub async fn event_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
}

/// Empties every read model and the history, forgets which events the
/// given consumers applied, and marks a rebuild pending
/// ([`crate::replay`]), in one transaction.
pub async fn reset(pool: &PgPool, consumers: &[&str]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("TRUNCATE {}", READ_MODEL_TABLES.join(", ")))
        .execute(&mut *tx)
        .await?;
    let names: Vec<String> = consumers.iter().map(|c| c.to_string()).collect();
    sqlx::query("DELETE FROM closeout_applied_events WHERE consumer = ANY($1)")
        .bind(&names)
        .execute(&mut *tx)
        .await?;
    crate::replay::mark_pending(&mut tx).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests;
