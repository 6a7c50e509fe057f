//! Dated tallies: `as_of` answers summed from dated deltas, not folded
//! from the whole history.
//!
//! Why deltas, and why per item: [`Snapshot::as_of`] dates every item event
//! by what it records ([`crate::model::effective_days`]), so an item's state
//! as of a day is the fold of its events whose effective day has come, and
//! a later-recorded event (a verification with an effective date years
//! back, a report imported late) changes the past. The state therefore
//! changes only on the item's distinct effective days: its *timeline*
//! ([`timeline`]). Each step of the timeline moves the item's tally
//! contribution ([`Tallies::add`], the live tallies' own keys) from the
//! state before to the state after, and that change is recorded as signed
//! counts under the day it takes effect (`dated_tallies`, summed over items).
//! The tallies as of D are the sums of the deltas dated up to D, and the
//! live answers ([`crate::tally`]) computed from them equal the fold's
//! answers ([`crate::queries`]) by the property the tally module already
//! holds, and by the test here that the summed deltas equal the tallies of
//! the folded snapshot for any day.
//!
//! Snapshots every so often would also be exact, but a late event
//! invalidates every snapshot after its effective day, which for a back-dated
//! closure is all of them; a delta is only rewritten for the items the
//! event touches.
//!
//! Keeping them: an item is recomputed from its whole stored history
//! whenever one of its events is applied, when the date of an inspection
//! it names changes (a publication date read or corrected later), or when
//! the item that superseded it is opened; its previous timeline
//! (`dated_items`) is taken away and the new one added. What an item's
//! days depend on is kept in `dated_refs`. Inspection dates
//! (`dated_inspections`) are the fold's: the newest publication date, else
//! the day the inspection's first event was recorded.
//!
//! An organisation rename moves an item by `ItemOrganisationChanged`, which
//! the model dates from the item's opening day, so a renamed
//! organisation's earlier items count under its new id at every day;
//! inspections and registrations come from the live tables, which
//! [`crate::rename`] has moved.

use crate::model::{self, Fact, InspectionState, ItemState, Snapshot, Target, fold_order};
use crate::store::{self, Scope};
use crate::tally::{ClosedKey, ClosingKey, Tallies};
use chrono::{NaiveDate, NaiveTime};
use closeout_proto::EventEnvelope;
use closeout_proto::event_envelope::Payload;
use prost::Message;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Serialises the upkeep of the dated tables between the two consumers
/// (and a start-up fill): an item's timeline is read, diffed and rewritten,
/// and an inspection's date change must see every item naming it. Taken at
/// the end of a batch's transaction, so it is held only for this part and
/// the commit. (Arbitrary constant: "dated" in ASCII.)
const DATED_LOCK: i64 = 0x64_6174_6564;

/// Items recomputed per statement group when filling.
const FILL_CHUNK: usize = 2_000;

// ------------------------------------------------------------ pure part

/// An item's states on each of its distinct effective days (only those on
/// which it is opened), in day order: the state on a day is the fold, in
/// version order, of its events effective by then ([`Snapshot::as_of`]).
/// `facts` are one item's events in any order (duplicates count once).
pub fn timeline(
    facts: &[Fact],
    dates: &BTreeMap<String, NaiveDate>,
    item_inspection: &HashMap<&str, &str>,
) -> Vec<(NaiveDate, ItemState)> {
    let mut seen = HashSet::new();
    let mut facts: Vec<&Fact> = facts
        .iter()
        .filter(|f| seen.insert(f.event_id.as_str()))
        .collect();
    facts.sort_by(|a, b| fold_order(a, b));
    let days = model::effective_days(&facts, dates, item_inspection);
    let distinct: BTreeSet<NaiveDate> = days.iter().copied().collect();
    let mut out: Vec<(NaiveDate, ItemState)> = Vec::with_capacity(distinct.len());
    for day in distinct {
        let mut state = ItemState::default();
        for (fact, effective) in facts.iter().zip(&days) {
            if *effective <= day {
                state.apply(fact);
            }
        }
        if state.opened && out.last().is_none_or(|(_, before)| *before != state) {
            out.push((day, state));
        }
    }
    out
}

/// Adds `by` times a timeline's deltas: on each day, the state of that day
/// in and the one before out.
pub fn add_deltas(
    deltas: &mut BTreeMap<NaiveDate, Tallies>,
    timeline: &[(NaiveDate, ItemState)],
    by: i64,
) {
    let mut before: Option<&ItemState> = None;
    for (day, state) in timeline {
        let tallies = deltas.entry(*day).or_default();
        if let Some(before) = before {
            tallies.add(before, -by);
        }
        tallies.add(state, by);
        before = Some(state);
    }
}

/// The sum of the deltas dated up to `day` (what `load_as_of` asks the
/// database for).
#[cfg(test)]
pub fn tallies_as_of(deltas: &BTreeMap<NaiveDate, Tallies>, day: NaiveDate) -> Tallies {
    let mut sum = Tallies::default();
    for tallies in deltas.range(..=day).map(|(_, t)| t) {
        for (k, n) in &tallies.counts {
            *sum.counts.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &tallies.inspections {
            *sum.inspections.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &tallies.open {
            *sum.open.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &tallies.due {
            *sum.due.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &tallies.closed {
            *sum.closed.entry(k.clone()).or_default() += n;
        }
        for (k, t) in &tallies.totals {
            let s = sum.totals.entry(k.clone()).or_default();
            s.opened += t.opened;
            s.open += t.open;
            s.closed += t.closed;
        }
        for (k, n) in &tallies.open_inspections {
            *sum.open_inspections.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &tallies.closing {
            *sum.closing.entry(k.clone()).or_default() += n;
        }
    }
    sum.without_zeros()
}

/// Every inspection's date as [`Snapshot::as_of`] gives it, from the
/// inspections' events: the newest publication date, else the day the
/// first was recorded.
pub fn inspection_dates<'a>(
    facts: impl IntoIterator<Item = &'a Fact>,
) -> BTreeMap<String, NaiveDate> {
    let mut by_id: BTreeMap<String, Vec<&Fact>> = BTreeMap::new();
    for fact in facts {
        if let Target::Inspection(id) = fact.target() {
            by_id.entry(id).or_default().push(fact);
        }
    }
    by_id
        .into_iter()
        .filter_map(|(id, mut facts)| {
            let mut seen = HashSet::new();
            facts.retain(|f| seen.insert(f.event_id.as_str()));
            facts.sort_by(|a, b| fold_order(a, b));
            let first = facts.iter().map(|f| f.occurred_at.date_naive()).min();
            let mut state = InspectionState::default();
            for fact in &facts {
                state.apply(fact);
            }
            model::published_on(&state.meta.published)
                .or(first)
                .map(|d| (id, d))
        })
        .collect()
}

/// What an item's effective days depend on: the inspections its events
/// name and the items that superseded it.
fn refs_of(facts: &[Fact]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut inspections = BTreeSet::new();
    let mut superseding = BTreeSet::new();
    for fact in facts {
        match &fact.payload {
            Payload::ItemOpened(o) => {
                inspections.insert(o.inspection_id.clone());
            }
            Payload::ItemVerified(v) => {
                inspections.insert(v.closed_by_inspection_id.clone());
            }
            Payload::ItemSuperseded(s) => {
                superseding.insert(s.superseding_item_id.clone());
            }
            _ => {}
        }
    }
    inspections.remove("");
    superseding.remove("");
    (inspections, superseding)
}

// ------------------------------------------------------------ row form

const COUNTS: i16 = 0;
const INSPECTIONS: i16 = 1;
const OPEN: i16 = 2;
const DUE: i16 = 3;
const CLOSED: i16 = 4;
const TOTAL_OPENED: i16 = 5;
const TOTAL_OPEN: i16 = 6;
const TOTAL_CLOSED: i16 = 7;
const OPEN_INSPECTIONS: i16 = 8;
const CLOSING: i16 = 9;

/// One tally key and count as a `dated_tallies` row (without its day).
#[derive(Clone, Debug, Default, PartialEq)]
struct DeltaRow {
    organisation_id: String,
    tally: i16,
    inspection_id: String,
    other: String,
    a: i32,
    b: i32,
    d1: Option<NaiveDate>,
    d2: Option<NaiveDate>,
    d3: Option<NaiveDate>,
    n: i64,
}

fn rows_of(t: &Tallies) -> Vec<DeltaRow> {
    let mut out = Vec::new();
    let row = |organisation_id: &str, tally: i16, n: i64| DeltaRow {
        organisation_id: organisation_id.to_string(),
        tally,
        n,
        ..Default::default()
    };
    for ((org, status, kind, pillar), n) in &t.counts {
        out.push(DeltaRow {
            a: *status,
            b: *kind,
            other: pillar.clone(),
            ..row(org, COUNTS, *n)
        });
    }
    for ((org, inspection), n) in &t.inspections {
        out.push(DeltaRow {
            inspection_id: inspection.clone(),
            ..row(org, INSPECTIONS, *n)
        });
    }
    for ((org, inspection, opened), n) in &t.open {
        out.push(DeltaRow {
            inspection_id: inspection.clone(),
            d1: *opened,
            ..row(org, OPEN, *n)
        });
    }
    for ((org, due), n) in &t.due {
        out.push(DeltaRow {
            d1: Some(*due),
            ..row(org, DUE, *n)
        });
    }
    for (k, n) in &t.closed {
        out.push(DeltaRow {
            inspection_id: k.inspection_id.clone(),
            other: k.closed_by_inspection_id.clone(),
            d1: k.opened_day,
            d2: k.verified_on,
            d3: k.closed_day,
            ..row(&k.organisation_id, CLOSED, *n)
        });
    }
    for (org, totals) in &t.totals {
        out.push(row(org, TOTAL_OPENED, totals.opened));
        out.push(row(org, TOTAL_OPEN, totals.open));
        out.push(row(org, TOTAL_CLOSED, totals.closed));
    }
    for ((org, inspection), n) in &t.open_inspections {
        out.push(DeltaRow {
            inspection_id: inspection.clone(),
            ..row(org, OPEN_INSPECTIONS, *n)
        });
    }
    for (k, n) in &t.closing {
        out.push(DeltaRow {
            inspection_id: k.inspection_id.clone(),
            other: k.closed_by_inspection_id.clone(),
            a: i32::from(k.verified),
            d1: k.closing_day,
            ..row(&k.organisation_id, CLOSING, *n)
        });
    }
    out.retain(|r| r.n != 0);
    out
}

fn add_row(t: &mut Tallies, r: DeltaRow) {
    let org = r.organisation_id;
    match r.tally {
        COUNTS => *t.counts.entry((org, r.a, r.b, r.other)).or_default() += r.n,
        INSPECTIONS => *t.inspections.entry((org, r.inspection_id)).or_default() += r.n,
        OPEN => *t.open.entry((org, r.inspection_id, r.d1)).or_default() += r.n,
        DUE => {
            if let Some(due) = r.d1 {
                *t.due.entry((org, due)).or_default() += r.n;
            }
        }
        CLOSED => {
            let key = ClosedKey {
                organisation_id: org,
                inspection_id: r.inspection_id,
                opened_day: r.d1,
                verified_on: r.d2,
                closed_by_inspection_id: r.other,
                closed_day: r.d3,
            };
            *t.closed.entry(key).or_default() += r.n;
        }
        TOTAL_OPENED => t.totals.entry(org).or_default().opened += r.n,
        TOTAL_OPEN => t.totals.entry(org).or_default().open += r.n,
        TOTAL_CLOSED => t.totals.entry(org).or_default().closed += r.n,
        OPEN_INSPECTIONS => {
            *t.open_inspections
                .entry((org, r.inspection_id))
                .or_default() += r.n;
        }
        CLOSING => {
            let key = ClosingKey {
                organisation_id: org,
                inspection_id: r.inspection_id,
                closed_by_inspection_id: r.other,
                verified: r.a != 0,
                closing_day: r.d1,
            };
            *t.closing.entry(key).or_default() += r.n;
        }
        _ => {}
    }
}

/// A day at midnight UTC: the stored states keep only the days
/// [`Tallies::add`] reads of `opened_at` and `closed_at`.
fn midnight(day: Option<NaiveDate>) -> Option<chrono::DateTime<chrono::Utc>> {
    day.map(|d| d.and_time(NaiveTime::MIN).and_utc())
}

// ------------------------------------------------------------ upkeep

fn decode(rows: Vec<Vec<u8>>) -> Vec<Fact> {
    rows.into_iter()
        .filter_map(|bytes| {
            // Only checked envelopes are stored; skip rather than fail.
            let envelope = EventEnvelope::decode(bytes.as_slice()).ok()?;
            Fact::from_envelope(&envelope).ok()
        })
        .collect()
}

/// Keeps the dated tables up to date with a batch of events just applied
/// (called once, at the end of [`store::apply`], in its transaction).
pub async fn apply(tx: &mut PgConnection, facts: &[Fact]) -> Result<(), sqlx::Error> {
    if facts.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(DATED_LOCK)
        .execute(&mut *tx)
        .await?;
    let mut inspections: Vec<String> = Vec::new();
    let mut items: BTreeSet<String> = BTreeSet::new();
    let mut opened: Vec<String> = Vec::new();
    for fact in facts {
        match fact.target() {
            Target::Inspection(id) => inspections.push(id),
            Target::Item(id) => {
                if matches!(fact.payload, Payload::ItemOpened(_)) {
                    opened.push(id.clone());
                }
                items.insert(id);
            }
            _ => {}
        }
    }
    inspections.sort();
    inspections.dedup();
    let mut changed = redate_inspections(tx, &inspections).await?;
    // An opened item dates the supersession of the items it superseded.
    changed.extend(opened);
    if !changed.is_empty() {
        let dependants: Vec<String> =
            sqlx::query_scalar("SELECT item_id FROM dated_refs WHERE ref_id = ANY($1)")
                .bind(&changed)
                .fetch_all(&mut *tx)
                .await?;
        items.extend(dependants);
    }
    let items: Vec<String> = items.into_iter().collect();
    recompute_items(tx, &items).await
}

/// Recomputes the dates of `ids` from their events; returns those whose
/// date changed.
async fn redate_inspections(
    tx: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM events WHERE aggregate_id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
    let facts = decode(rows);
    let dates = inspection_dates(&facts);
    let before: HashMap<String, NaiveDate> = sqlx::query_as(
        "SELECT inspection_id, day FROM dated_inspections WHERE inspection_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let changed: Vec<(String, NaiveDate)> = dates
        .into_iter()
        .filter(|(id, day)| ids.contains(id) && before.get(id) != Some(day))
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let (changed_ids, days): (Vec<String>, Vec<NaiveDate>) = changed.into_iter().unzip();
    sqlx::query(
        "INSERT INTO dated_inspections (inspection_id, day) \
         SELECT * FROM UNNEST($1::text[], $2::date[]) \
         ON CONFLICT (inspection_id) DO UPDATE SET day = excluded.day",
    )
    .bind(&changed_ids)
    .bind(&days)
    .execute(&mut *tx)
    .await?;
    Ok(changed_ids)
}

/// Recomputes the timelines of `ids` from their whole histories, moves the
/// dated tallies by the difference and stores the new timelines and refs.
async fn recompute_items(tx: &mut PgConnection, ids: &[String]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM events WHERE aggregate_id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
    let mut histories: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    for fact in decode(rows) {
        if let Target::Item(id) = fact.target() {
            histories.entry(id).or_default().push(fact);
        }
    }
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut named_inspections: BTreeSet<String> = BTreeSet::new();
    let mut superseding: BTreeSet<String> = BTreeSet::new();
    // (superseding item, item it superseded)
    let mut superseded_by: Vec<(String, String)> = Vec::new();
    for (id, facts) in &histories {
        let (inspections, items) = refs_of(facts);
        for r in inspections.iter().chain(&items) {
            refs.push((r.clone(), id.clone()));
        }
        named_inspections.extend(inspections);
        superseded_by.extend(items.iter().map(|x| (x.clone(), id.clone())));
        superseding.extend(items);
    }
    // The superseding items' inspections (their ItemOpened).
    let superseding: Vec<String> = superseding.into_iter().collect();
    let mut opened_from: HashMap<String, String> = HashMap::new();
    if !superseding.is_empty() {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT envelope FROM events WHERE aggregate_id = ANY($1) \
             AND event_type LIKE '%ItemOpened'",
        )
        .bind(&superseding)
        .fetch_all(&mut *tx)
        .await?;
        for fact in decode(rows) {
            if let (Target::Item(id), Payload::ItemOpened(o)) = (fact.target(), &fact.payload) {
                named_inspections.insert(o.inspection_id.clone());
                opened_from.insert(id, o.inspection_id.clone());
            }
        }
    }
    // A supersession is dated by the superseding item's inspection, so a
    // date arriving or changing there recomputes the superseded item too.
    for (by, id) in superseded_by {
        if let Some(inspection) = opened_from.get(&by) {
            refs.push((inspection.clone(), id));
        }
    }
    let named: Vec<String> = named_inspections.into_iter().collect();
    let dates: BTreeMap<String, NaiveDate> = sqlx::query_as(
        "SELECT inspection_id, day FROM dated_inspections WHERE inspection_id = ANY($1)",
    )
    .bind(&named)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let item_inspection: HashMap<&str, &str> = opened_from
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut deltas: BTreeMap<NaiveDate, Tallies> = BTreeMap::new();
    // Take the old timelines away.
    let old = load_timelines(tx, ids).await?;
    for timeline in old.values() {
        add_deltas(&mut deltas, timeline, -1);
    }
    let mut new: Vec<(String, Vec<(NaiveDate, ItemState)>)> = Vec::with_capacity(histories.len());
    for (id, facts) in &histories {
        let timeline = timeline(facts, &dates, &item_inspection);
        add_deltas(&mut deltas, &timeline, 1);
        new.push((id.clone(), timeline));
    }
    save_deltas(tx, deltas).await?;
    sqlx::query("DELETE FROM dated_items WHERE item_id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    save_timelines(tx, &new).await?;
    sqlx::query("DELETE FROM dated_refs WHERE item_id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    let (ref_ids, ref_items): (Vec<String>, Vec<String>) = refs.into_iter().unzip();
    sqlx::query(
        "INSERT INTO dated_refs (ref_id, item_id) SELECT * FROM UNNEST($1::text[], $2::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&ref_ids)
    .bind(&ref_items)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn load_timelines(
    tx: &mut PgConnection,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<(NaiveDate, ItemState)>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT item_id, day, organisation_id, inspection_id, status, kind, pillar, opened_day, \
         due_date, verified_on, closed_by_inspection_id, closed_day \
         FROM dated_items WHERE item_id = ANY($1) ORDER BY item_id, day",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut out: BTreeMap<String, Vec<(NaiveDate, ItemState)>> = BTreeMap::new();
    for row in rows {
        let id: String = row.try_get(0)?;
        let state = ItemState {
            item_id: id.clone(),
            organisation_id: row.try_get(2)?,
            inspection_id: row.try_get(3)?,
            status: row.try_get(4)?,
            kind: row.try_get(5)?,
            pillar: row.try_get(6)?,
            opened: true,
            opened_at: midnight(row.try_get(7)?),
            due_date: row.try_get(8)?,
            verified_on: row.try_get(9)?,
            closed_by_inspection_id: row.try_get(10)?,
            closed_at: midnight(row.try_get(11)?),
            ..Default::default()
        };
        out.entry(id).or_default().push((row.try_get(1)?, state));
    }
    Ok(out)
}

async fn save_timelines(
    tx: &mut PgConnection,
    timelines: &[(String, Vec<(NaiveDate, ItemState)>)],
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::new();
    let mut days = Vec::new();
    let mut orgs = Vec::new();
    let mut inspections = Vec::new();
    let mut statuses = Vec::new();
    let mut kinds = Vec::new();
    let mut pillars = Vec::new();
    let mut opened = Vec::new();
    let mut due = Vec::new();
    let mut verified = Vec::new();
    let mut closed_by = Vec::new();
    let mut closed = Vec::new();
    for (id, timeline) in timelines {
        for (day, s) in timeline {
            ids.push(id.clone());
            days.push(*day);
            orgs.push(s.organisation_id.clone());
            inspections.push(s.inspection_id.clone());
            statuses.push(s.status);
            kinds.push(s.kind);
            pillars.push(s.pillar.clone());
            opened.push(s.opened_at.map(|t| t.date_naive()));
            due.push(s.due_date);
            verified.push(s.verified_on);
            closed_by.push(s.closed_by_inspection_id.clone());
            closed.push(s.closed_at.map(|t| t.date_naive()));
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO dated_items (item_id, day, organisation_id, inspection_id, status, kind, \
         pillar, opened_day, due_date, verified_on, closed_by_inspection_id, closed_day) \
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::text[], $4::text[], $5::int[], \
         $6::int[], $7::text[], $8::date[], $9::date[], $10::date[], $11::text[], $12::date[])",
    )
    .bind(&ids)
    .bind(&days)
    .bind(&orgs)
    .bind(&inspections)
    .bind(&statuses)
    .bind(&kinds)
    .bind(&pillars)
    .bind(&opened)
    .bind(&due)
    .bind(&verified)
    .bind(&closed_by)
    .bind(&closed)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn save_deltas(
    tx: &mut PgConnection,
    deltas: BTreeMap<NaiveDate, Tallies>,
) -> Result<(), sqlx::Error> {
    let mut cols = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (day, tallies) in deltas {
        for r in rows_of(&tallies.without_zeros()) {
            cols.0.push(r.organisation_id);
            cols.1.push(day);
            cols.2.push(r.tally);
            cols.3.push(r.inspection_id);
            cols.4.push(r.other);
            cols.5.push(r.a);
            cols.6.push(r.b);
            cols.7.push(r.d1);
            cols.8.push(r.d2);
            cols.9.push(r.d3);
            cols.10.push(r.n);
        }
    }
    if cols.0.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO dated_tallies (organisation_id, day, tally, inspection_id, other, a, b, \
         d1, d2, d3, n) \
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::smallint[], $4::text[], $5::text[], \
         $6::int[], $7::int[], $8::date[], $9::date[], $10::date[], $11::bigint[]) \
         ON CONFLICT (organisation_id, day, tally, inspection_id, other, a, b, d1, d2, d3) \
         DO UPDATE SET n = dated_tallies.n + excluded.n",
    )
    .bind(&cols.0)
    .bind(&cols.1)
    .bind(&cols.2)
    .bind(&cols.3)
    .bind(&cols.4)
    .bind(&cols.5)
    .bind(&cols.6)
    .bind(&cols.7)
    .bind(&cols.8)
    .bind(&cols.9)
    .bind(&cols.10)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Fills the dated tables from the stored history when they are not known
/// to be filled: the first start after migration 0007 on a database that
/// already held events, or after a rebuild emptied them (`dated_fill` is a
/// read-model table, so a reset leaves no row) and did not get as far as
/// [`refill`]. Otherwise nothing.
pub async fn fill_if_pending(pool: &PgPool) -> Result<(), sqlx::Error> {
    refill_when(pool, false).await
}

/// Recomputes the dated tables from the stored history (a rebuild, after
/// its replay: it may fold items without the consumers' upkeep).
pub async fn refill(pool: &PgPool) -> Result<(), sqlx::Error> {
    refill_when(pool, true).await
}

async fn refill_when(pool: &PgPool, always: bool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(DATED_LOCK)
        .execute(&mut *tx)
        .await?;
    let filled: Option<bool> = sqlx::query_scalar("SELECT filled FROM dated_fill FOR UPDATE")
        .fetch_optional(&mut *tx)
        .await?;
    if filled == Some(true) && !always {
        return tx.commit().await;
    }
    fill(&mut tx).await?;
    sqlx::query(
        "INSERT INTO dated_fill (filled) VALUES (TRUE) \
         ON CONFLICT (singleton) DO UPDATE SET filled = TRUE",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Recomputes every dated table from the history alone (in the caller's
/// transaction, holding the upkeep lock): every inspection with an event
/// dated, every item with an `ItemOpened` recomputed (one never opened
/// counts nothing until its opening is applied).
async fn fill(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("TRUNCATE dated_tallies, dated_items, dated_refs, dated_inspections")
        .execute(&mut *tx)
        .await?;
    let inspections: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE event_type LIKE ANY \
         (ARRAY['%InspectionPublished', '%InspectionReplaced', '%JudgmentRecorded', \
         '%IndicatorRecorded', '%FollowUpRecorded']) ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    for chunk in inspections.chunks(FILL_CHUNK) {
        redate_inspections(tx, chunk).await?;
    }
    let items: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE event_type LIKE '%ItemOpened' ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    for chunk in items.chunks(FILL_CHUNK) {
        recompute_items(tx, chunk).await?;
    }
    Ok(())
}

// ------------------------------------------------------------ reading

/// A `dated_tallies` key with its sum up to a day.
type SummedRow = (
    String,
    i16,
    String,
    String,
    i32,
    i32,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    i64,
);

/// What an as-of question reads: the content (registrations, and the
/// inspections published by the end of `day` with their judgments and
/// indicators) from the live tables, and the tallies summed from the dated
/// deltas up to `day`, of one organisation or everyone. The snapshot holds
/// no items: the tallies stand for them ([`crate::tally`]'s answers).
pub async fn load_as_of(
    pool: &PgPool,
    scope: Scope<'_>,
    day: NaiveDate,
) -> Result<(Snapshot, Tallies), sqlx::Error> {
    let scope = Scope {
        items: false,
        ..scope
    };
    let organisation = scope.organisation;
    let (snapshot, rows) = tokio::try_join!(store::load_live(pool, scope), async {
        let sql = format!(
            "SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, \
             sum(n)::bigint FROM dated_tallies t WHERE {} AND day <= $2 \
             AND (tally NOT IN ({OPEN}, {CLOSED}) OR NOT EXISTS \
             (SELECT 1 FROM dated_inspections d WHERE d.inspection_id = t.inspection_id)) \
             GROUP BY organisation_id, tally, inspection_id, other, a, b, d1, d2, d3 \
             HAVING sum(n) <> 0",
            if organisation.is_some() {
                "organisation_id = $1"
            } else {
                "$1::text IS NULL"
            }
        );
        sqlx::query_as::<_, SummedRow>(&sql)
            .bind(organisation)
            .bind(day)
            .fetch_all(pool)
            .await
    })?;
    let mut snapshot = snapshot;
    let mut tallies = Tallies::default();
    for (organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, n) in rows {
        add_row(
            &mut tallies,
            DeltaRow {
                organisation_id,
                tally,
                inspection_id,
                other,
                a,
                b,
                d1,
                d2,
                d3,
                n,
            },
        );
    }
    date_content(pool, &mut snapshot, &tallies, day).await?;
    Ok((snapshot, tallies))
}

/// The live content as of the end of `day`: only inspections dated by then
/// count, every inspection the answer names is dated (`dating`), and
/// anything known at any time stays known ([`Snapshot::as_of`]).
pub async fn date_content(
    pool: &PgPool,
    snapshot: &mut Snapshot,
    tallies: &Tallies,
    day: NaiveDate,
) -> Result<(), sqlx::Error> {
    snapshot.ever_known = snapshot.organisation_ids().into_iter().collect();
    let mut named: BTreeSet<&str> = snapshot.inspections.keys().map(String::as_str).collect();
    named.extend(tallies.inspections.keys().map(|(_, i)| i.as_str()));
    named.extend(tallies.open_inspections.keys().map(|(_, i)| i.as_str()));
    named.extend(tallies.open.keys().map(|(_, i, _)| i.as_str()));
    for k in tallies.closing.keys() {
        named.insert(&k.inspection_id);
        named.insert(&k.closed_by_inspection_id);
    }
    for k in tallies.closed.keys() {
        named.insert(&k.inspection_id);
        named.insert(&k.closed_by_inspection_id);
    }
    let named: Vec<String> = named
        .into_iter()
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .collect();
    let dates: BTreeMap<String, NaiveDate> = sqlx::query_as(
        "SELECT inspection_id, day FROM dated_inspections WHERE inspection_id = ANY($1)",
    )
    .bind(&named)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    snapshot.inspections.retain(|id, i| {
        dates
            .get(id)
            .copied()
            .or_else(|| model::published_on(&i.meta.published))
            .is_none_or(|d| d <= day)
    });
    snapshot.dating = dates;
    Ok(())
}

#[cfg(test)]
mod tests;

/// The as-of answers two ways, for the bench (`benches/as_of.rs`) and the
/// tests: summed from the dated deltas, as the service answers, and by
/// folding the stored history ([`store::load_history`], as it did before).
/// Not an API.
#[doc(hidden)]
pub mod measure {
    use crate::store::{self, Scope};
    use crate::{queries, tally};
    use chrono::NaiveDate;
    use closeout_proto as pb;
    use sqlx::PgPool;

    fn one(org: &str) -> Scope<'_> {
        Scope {
            organisation: Some(org),
            content: true,
            items: false,
        }
    }

    /// Scorecard as of `day` from the dated deltas.
    pub async fn scorecard_dated(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::Scorecard>, sqlx::Error> {
        let (snapshot, tallies) = super::load_as_of(pool, one(org), day).await?;
        Ok(tally::scorecard(&snapshot, &tallies, org, day).ok())
    }

    /// Scorecard as of `day` by folding the organisation's history.
    pub async fn scorecard_folded(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::Scorecard>, sqlx::Error> {
        let snapshot = store::load_history(pool, day, Some(org)).await?;
        Ok(queries::scorecard(&snapshot, org, day).ok())
    }

    /// Peer comparison as of `day` from the dated deltas.
    pub async fn peers_dated(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::GetPeerComparisonResponse>, sqlx::Error> {
        let (snapshot, tallies) = super::load_as_of(pool, Scope::default(), day).await?;
        Ok(tally::peer_comparison(&snapshot, &tallies, org, day).ok())
    }

    /// Peer comparison as of `day` by folding everyone's history.
    pub async fn peers_folded(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::GetPeerComparisonResponse>, sqlx::Error> {
        let snapshot = store::load_history(pool, day, None).await?;
        Ok(queries::peer_comparison(&snapshot, org, day).ok())
    }
}
