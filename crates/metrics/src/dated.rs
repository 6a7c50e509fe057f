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
//! So that an answer does not read every delta up to its day, the sums of
//! the summary tallies' deltas dated before the first day of each quarter
//! are kept as checkpoints (`dated_checkpoints`): an answer reads the
//! checkpoint nearest its day and adds the deltas from it to the day, or
//! takes away those from the day to it ([`load_as_of`]): at most about 45
//! days of deltas before this quarter's checkpoint, this quarter's up to
//! the day after it. They stay exact because they are sums too: a batch
//! adds each delta it writes to every checkpoint after the delta's day in
//! the same statement (a back-dated event moves the later checkpoints by
//! the same amount; today's events move none). A quarter's checkpoint is added
//! ([`seal`]) by the first batch that finds it missing, under the upkeep
//! lock held exclusively, so no batch writes deltas it would miss. The
//! details (open and closed items by the day they were opened) are not
//! checkpointed: they are read, from the deltas, only for inspections with
//! no date.
//!
//! Keeping them: each batch's touched items are brought up to date at the
//! end of [`store::apply`]. The common live case — an item's next events,
//! taking effect no earlier than any it had (today's progress, claim,
//! closure) — needs no history: the timeline's last state is the fold of
//! all its events, which is the live item before the batch, so the new
//! entries are that state with the new events applied on their days
//! ([`extend`], from what `dated_item_heads` keeps of its last events: the
//! latest effective day, the last event's version, day and kind, the
//! opening day); a new item's timeline comes from the batch alone.
//! Anything else — an event out of order, one dated before the latest
//! (a back-dated verification), an opening or supersession, no head —
//! recomputes the item from its whole stored history, as do a change to
//! the date of an inspection it names (a publication date read or
//! corrected later) and the opening of the item that superseded it: its
//! previous timeline (`dated_items`) is taken away and the new one added.
//! What an item's days depend on is kept in `dated_refs`. Inspection dates
//! (`dated_inspections`) are the fold's: the newest publication date, else
//! the day the inspection's first event was recorded.
//!
//! Locks, so that batches of both consumers run side by side
//! ([`prepare`], before any item is locked): the deltas are sums, added
//! with one upsert per batch (rows in key order), so they commute; what
//! needs exclusion is an item's timeline (read, diffed, rewritten: under
//! its `items` row lock, which the batch's own items already take, in id
//! order in one statement with the items it recomputes as dependants) and
//! a date that changes while another batch reads it. For the latter each
//! ref (an inspection, or an item as a superseding one) has an advisory
//! lock: a batch takes it exclusively for the inspections it brings and
//! the items it opens (whose dependants it then recomputes), and shared
//! for the refs its new events name (an opening's or a verification's
//! inspection, a superseding item and its inspection), all in key order
//! in one statement before any row lock. So a batch either reads a date
//! after its change committed, or the batch changing it waits for the
//! reader's commit and then finds the reader's refs and recomputes its
//! items. Refs an item had before the batch were committed with it, so
//! the batch changing their date finds the item without a lock. All these
//! locks sit under one upkeep lock taken shared; a fill, or a batch
//! naming too many refs, takes it exclusively instead.
//!
//! An organisation rename moves an item by `ItemOrganisationChanged`, which
//! the model dates from the item's opening day, so a renamed
//! organisation's earlier items count under its new id at every day;
//! inspections and registrations come from the live tables, which
//! [`crate::rename`] has moved.

use crate::model::{self, Fact, InspectionState, ItemState, Snapshot, Target, fold_order};
use crate::store::{self, Scope};
use crate::tally::{self, ClosedKey, ClosingKey, DateMap, DaysToClose, Tallies};
use chrono::{Datelike, NaiveDate, NaiveTime};
use closeout_proto::EventEnvelope;
use closeout_proto::event_envelope::Payload;
use prost::Message;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Taken shared by every batch's upkeep, so batches run side by side, and
/// exclusively by a fill (which rewrites every table) and by a batch
/// naming too many refs to lock them one by one ([`MAX_REF_LOCKS`]).
/// (Arbitrary constant: "dated" in ASCII.)
const DATED_LOCK: i64 = 0x64_6174_6564;

/// Items recomputed per statement group when filling.
const FILL_CHUNK: usize = 2_000;

/// The year of the first checkpoint: earlier deltas are few, and a
/// checkpoint before any delta costs nothing.
const FIRST_CHECKPOINT_YEAR: i32 = 2010;

/// Months between checkpoints: quarterly bounds an answer's deltas to
/// ~45 days (yearly, half a year of everyone's deltas was most of an as-of
/// peer comparison's time), at the cost of four times the checkpoints a
/// back-dated delta moves. Migration 0013 added the quarters to yearly ones.
const CHECKPOINT_MONTHS: u32 = 3;

/// The checkpoint on or before `day` (the first day of its period).
fn checkpoint_of(day: NaiveDate) -> NaiveDate {
    let months = CHECKPOINT_MONTHS;
    let month = (day.month0() / months) * months + 1;
    NaiveDate::from_ymd_opt(day.year(), month, 1).unwrap_or(day)
}

/// The checkpoint after `checkpoint` (`None` past the calendar's end).
fn next_checkpoint(checkpoint: NaiveDate) -> Option<NaiveDate> {
    checkpoint.checked_add_months(chrono::Months::new(CHECKPOINT_MONTHS))
}

// ------------------------------------------------------------ pure part

/// An item's states on each of its distinct effective days (only those on
/// which it is opened), in day order: the state on a day is the fold, in
/// version order, of its events effective by then ([`Snapshot::as_of`]).
/// `facts` are one item's events in any order (duplicates count once).
#[cfg(test)]
pub fn timeline(
    facts: &[Fact],
    dates: &BTreeMap<String, NaiveDate>,
    item_inspection: &HashMap<&str, &str>,
) -> Vec<(NaiveDate, ItemState)> {
    timeline_and_head(facts, dates, item_inspection).0
}

/// [`timeline`], and the item's [`Head`] (`None` until it is opened).
pub fn timeline_and_head(
    facts: &[Fact],
    dates: &BTreeMap<String, NaiveDate>,
    item_inspection: &HashMap<&str, &str>,
) -> (Vec<(NaiveDate, ItemState)>, Option<Head>) {
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
    (out, Head::of(&facts, &days))
}

/// What extending an item's timeline needs of its events so far
/// (`dated_item_heads`), so that a batch of its next events is dated
/// without its history ([`extend`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The version of its last event in fold order.
    pub version: u64,
    /// The latest effective day of any of its events.
    pub last_day: NaiveDate,
    /// The effective day of its last event.
    pub event_day: NaiveDate,
    /// Whether its last event dates the next version's `StatusChanged`
    /// ([`model::effective_days`]).
    pub dates_next: bool,
    /// Its opening's effective day: no event counts before it.
    pub opened_day: NaiveDate,
}

fn dates_next(fact: &Fact) -> bool {
    matches!(
        fact.payload,
        Payload::ItemVerified(_) | Payload::ItemSuperseded(_)
    )
}

impl Head {
    /// From one item's events in fold order and their effective days;
    /// `None` if it was never opened.
    fn of(facts: &[&Fact], days: &[NaiveDate]) -> Option<Head> {
        let opened = facts
            .iter()
            .position(|f| matches!(f.payload, Payload::ItemOpened(_)))?;
        let (last, event_day) = (facts.last()?, *days.last()?);
        Some(Head {
            version: last.version,
            last_day: days.iter().copied().max()?,
            event_day,
            dates_next: dates_next(last),
            opened_day: days[opened],
        })
    }
}

/// The day a verification takes effect before the opening day applies
/// ([`model::effective_days`]).
fn verified_day(
    v: &closeout_proto::ItemVerified,
    dates: &BTreeMap<String, NaiveDate>,
) -> Option<NaiveDate> {
    v.effective_date
        .as_ref()
        .and_then(model::calendar_date)
        .or_else(|| {
            Some(v.closed_by_inspection_id.as_str())
                .filter(|id| !id.is_empty())
                .and_then(|id| dates.get(id).copied())
        })
}

/// An item's timeline extended by `facts`, its next versions in order,
/// without its history: `before` is the fold of every event it had (the
/// live item before them), `head` what [`Head::of`] gave for those.
///
/// Exact when every new event takes effect on or after `head.last_day`:
/// on the days before it, nothing changes; from it on, every stored event
/// counts, and the new ones follow them in version order, so the state of
/// a day is `before` with the new events effective by then applied, and
/// the timeline's last state so far is `before` itself. Returns the
/// entries from `head.last_day` on (one there replaces the stored one of
/// that day) and the new head; `None` when that does not hold (a
/// back-dated event, an opening or supersession, versions not next): the
/// caller then recomputes from the history.
pub fn extend(
    head: &Head,
    before: &ItemState,
    facts: &[&Fact],
    dates: &BTreeMap<String, NaiveDate>,
) -> Option<(Vec<(NaiveDate, ItemState)>, Head)> {
    if before.version != head.version || !before.opened || facts.is_empty() {
        return None;
    }
    let mut days = Vec::with_capacity(facts.len());
    let (mut version, mut next, mut previous) = (head.version, head.dates_next, head.event_day);
    for fact in facts {
        if fact.version != version + 1 {
            return None;
        }
        let recorded = fact.occurred_at.date_naive();
        let day = match &fact.payload {
            // Dated by other items or re-open the item: from the history.
            Payload::ItemOpened(_) | Payload::ItemSuperseded(_) => return None,
            Payload::ItemVerified(v) => verified_day(v, dates).unwrap_or(recorded),
            Payload::StatusChanged(_) if next => previous,
            Payload::ItemOrganisationChanged(_) => head.opened_day,
            _ => recorded,
        }
        .max(head.opened_day);
        if day < head.last_day {
            return None;
        }
        days.push(day);
        (version, next, previous) = (fact.version, dates_next(fact), day);
    }
    let distinct: BTreeSet<NaiveDate> = days.iter().copied().collect();
    let mut entries: Vec<(NaiveDate, ItemState)> = Vec::with_capacity(distinct.len());
    for day in distinct {
        let mut state = before.clone();
        for (fact, effective) in facts.iter().zip(&days) {
            if *effective <= day {
                state.apply(fact);
            }
        }
        if entries.last().map_or(before, |(_, s)| s) != &state {
            entries.push((day, state));
        }
    }
    let head = Head {
        version,
        last_day: days.iter().copied().fold(head.last_day, NaiveDate::max),
        event_day: previous,
        dates_next: next,
        opened_day: head.opened_day,
    };
    Some((entries, head))
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
/// Checkpoint rows only: the closings a checkpoint holds as days-to-close
/// histograms, by organisation (`a`: days to close) and summed over
/// everyone (`organisation_id` ''), under the dates `dated_inspections`
/// holds ([`DaysToClose`]), so that a peer comparison reads a few
/// histograms rather than everyone's closings.
const DAYS: i16 = 10;
const DAYS_ALL: i16 = 11;

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

/// A histogram's rows (checkpoint rows, [`DAYS`] and [`DAYS_ALL`]).
fn days_rows(days: &DaysToClose) -> Vec<DeltaRow> {
    let row = |organisation_id: &str, tally: i16, d: i64, n: i64| DeltaRow {
        organisation_id: organisation_id.to_string(),
        tally,
        a: i32::try_from(d).unwrap_or(i32::MAX),
        n,
        ..Default::default()
    };
    let mut out: Vec<DeltaRow> = days
        .by_organisation
        .iter()
        .map(|((org, d), n)| row(org, DAYS, *d, *n))
        .collect();
    out.extend(days.all.iter().map(|(d, n)| row("", DAYS_ALL, *d, *n)));
    out.retain(|r| r.n != 0);
    out
}

/// Adds a [`DAYS`] or [`DAYS_ALL`] row to a histogram.
fn add_days_row(days: &mut DaysToClose, r: DeltaRow) {
    let d = i64::from(r.a);
    match r.tally {
        DAYS => {
            *days
                .by_organisation
                .entry((r.organisation_id, d))
                .or_default() += r.n
        }
        DAYS_ALL => *days.all.entry(d).or_default() += r.n,
        _ => {}
    }
}

fn closing_key(
    organisation_id: String,
    inspection_id: String,
    other: String,
    a: i32,
    d1: Option<NaiveDate>,
) -> ClosingKey {
    ClosingKey {
        organisation_id,
        inspection_id,
        closed_by_inspection_id: other,
        verified: a != 0,
        closing_day: d1,
    }
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
            let key = closing_key(org, r.inspection_id, r.other, r.a, r.d1);
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

/// The stored events of these aggregates (of the event types `like`
/// matches, when given), decoded, in no particular order.
async fn events_of(
    tx: &mut PgConnection,
    ids: &[String],
    like: Option<&str>,
) -> Result<Vec<Fact>, sqlx::Error> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT envelope FROM events WHERE aggregate_id = ANY($1) \
         AND ($2::text IS NULL OR event_type LIKE $2)",
    )
    .bind(ids)
    .bind(like)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|bytes| {
            // Only checked envelopes are stored; skip rather than fail.
            let envelope = EventEnvelope::decode(bytes.as_slice()).ok()?;
            Fact::from_envelope(&envelope).ok()
        })
        .collect())
}

/// One item of a batch as [`store::apply`] folded it.
#[derive(Clone, Debug)]
pub struct Touched {
    /// The live item before the batch (the fold of its stored events).
    pub before: ItemState,
    /// Every event of it in the batch was its next version.
    pub in_order: bool,
}

/// The locks [`prepare`] took and what it found for [`apply`].
#[derive(Debug, Default)]
pub struct Upkeep {
    /// Whether the batch changes anything dated (else nothing was locked).
    active: bool,
    /// The ref keys held, shared or exclusive; `None` when the upkeep lock
    /// is held exclusively (no ref lock is needed then).
    refs: Option<HashSet<i64>>,
    /// Items recomputed from their history whatever the batch did to them:
    /// those depending on an inspection whose date changed, or superseded
    /// by an item the batch opens.
    dependants: BTreeSet<String>,
    /// This quarter's checkpoint, the last one kept.
    checkpoint: Option<NaiveDate>,
    /// The checkpoints' histograms moved for the inspections whose date
    /// changed, by the day of the closings moved ([`redate_closings`]).
    days: BTreeMap<NaiveDate, DaysToClose>,
}

/// A batch naming more refs than this takes the upkeep lock exclusively
/// instead of one lock per ref: advisory locks take slots of PostgreSQL's
/// shared lock table (`max_locks_per_transaction` × connections).
const MAX_REF_LOCKS: usize = 512;

/// A ref id's advisory lock key (FNV-1a: the same in every process).
fn ref_key(id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Takes ref locks (`true`: exclusive) in key order, one statement.
async fn lock_refs(tx: &mut PgConnection, wanted: &BTreeMap<i64, bool>) -> Result<(), sqlx::Error> {
    if wanted.is_empty() {
        return Ok(());
    }
    let (keys, exclusive): (Vec<i64>, Vec<bool>) = wanted.iter().map(|(k, x)| (*k, *x)).unzip();
    sqlx::query(
        "SELECT CASE WHEN x THEN pg_advisory_xact_lock(k)::text \
         ELSE pg_advisory_xact_lock_shared(k)::text END \
         FROM UNNEST($1::bigint[], $2::bool[]) WITH ORDINALITY AS t(k, x, i) ORDER BY i",
    )
    .bind(&keys)
    .bind(&exclusive)
    .fetch_all(&mut *tx)
    .await?;
    Ok(())
}

/// The inspections of these items' `ItemOpened` events, from the history.
async fn opened_from(
    tx: &mut PgConnection,
    ids: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for fact in events_of(tx, ids, Some("%ItemOpened")).await? {
        if let (Target::Item(id), Payload::ItemOpened(o)) = (fact.target(), &fact.payload) {
            out.insert(id, o.inspection_id.clone());
        }
    }
    Ok(out)
}

/// The first half of the upkeep, called at the start of [`store::apply`]
/// before it locks any item: takes the locks and re-dates the batch's
/// inspections. See "Locks" in the module doc.
pub async fn prepare(tx: &mut PgConnection, facts: &[Fact]) -> Result<Upkeep, sqlx::Error> {
    // ref id -> exclusive?
    let mut wanted: BTreeMap<String, bool> = BTreeMap::new();
    let mut want = |id: &str, exclusive: bool| {
        if !id.is_empty() {
            *wanted.entry(id.to_string()).or_default() |= exclusive;
        }
    };
    let mut inspections: Vec<String> = Vec::new();
    let mut items: BTreeSet<String> = BTreeSet::new();
    let mut opened: Vec<String> = Vec::new();
    let mut superseding: Vec<String> = Vec::new();
    let mut batch_openings: HashMap<String, String> = HashMap::new();
    for fact in facts {
        match fact.target() {
            Target::Inspection(id) => {
                want(&id, true);
                inspections.push(id);
            }
            Target::Item(id) => {
                match &fact.payload {
                    Payload::ItemOpened(o) => {
                        want(&id, true);
                        want(&o.inspection_id, false);
                        batch_openings.insert(id.clone(), o.inspection_id.clone());
                        opened.push(id.clone());
                    }
                    Payload::ItemVerified(v) => want(&v.closed_by_inspection_id, false),
                    Payload::ItemSuperseded(s) => {
                        want(&s.superseding_item_id, false);
                        superseding.push(s.superseding_item_id.clone());
                    }
                    _ => {}
                }
                items.insert(id);
            }
            _ => {}
        }
    }
    if inspections.is_empty() && items.is_empty() {
        return Ok(Upkeep::default());
    }
    // A supersession is dated by the superseding item's inspection: read
    // ahead without locks; a late opening is locked by `recompute_items`.
    superseding.retain(|id| !batch_openings.contains_key(id));
    for inspection in batch_openings.values() {
        want(inspection, false);
    }
    for inspection in opened_from(tx, &superseding).await?.values() {
        want(inspection, false);
    }
    let mut keys: BTreeMap<i64, bool> = BTreeMap::new();
    for (id, exclusive) in &wanted {
        *keys.entry(ref_key(id)).or_default() |= *exclusive;
    }
    // Alone too when this quarter's checkpoint is missing: the batch adds it
    // (checkpoints are added only under the exclusive lock).
    let this_quarter = checkpoint_of(chrono::Utc::now().date_naive());
    let (alone, _): (bool, String) = sqlx::query_as(
        "SELECT x, CASE WHEN x THEN pg_advisory_xact_lock($1)::text \
         ELSE pg_advisory_xact_lock_shared($1)::text END FROM (SELECT $2 OR NOT EXISTS \
         (SELECT 1 FROM dated_checkpoint_days WHERE day = $3) AS x) s",
    )
    .bind(DATED_LOCK)
    .bind(keys.len() > MAX_REF_LOCKS)
    .bind(this_quarter)
    .fetch_one(&mut *tx)
    .await?;
    let refs = if alone {
        seal(tx, this_quarter).await?;
        None
    } else {
        lock_refs(tx, &keys).await?;
        Some(keys.into_keys().collect())
    };
    inspections.sort();
    inspections.dedup();
    let redated = redate_inspections(tx, &inspections).await?;
    let mut changed: Vec<String> = redated.iter().map(|(id, _)| id.clone()).collect();
    // An opened item dates the supersession of the items it superseded.
    changed.extend(opened);
    let mut dependants = BTreeSet::new();
    if !changed.is_empty() {
        let found: Vec<String> =
            sqlx::query_scalar("SELECT item_id FROM dated_refs WHERE ref_id = ANY($1)")
                .bind(&changed)
                .fetch_all(&mut *tx)
                .await?;
        dependants.extend(found);
    }
    if !dependants.is_empty() {
        // Each item is rewritten under its row's lock; with the batch's own
        // in one statement, in id order ([`store::apply`] takes those again).
        let all: Vec<&String> = dependants.union(&items).collect();
        sqlx::query("SELECT 1 FROM items WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&all)
            .fetch_all(&mut *tx)
            .await?;
    }
    // Read after the dependants' locks: a batch still writing closings of
    // them has committed, and dated them by the date before.
    let days = redate_closings(tx, &redated, this_quarter).await?;
    Ok(Upkeep {
        active: true,
        refs,
        dependants,
        checkpoint: Some(this_quarter),
        days,
    })
}

/// What a batch changes in the dated tables, written once at the end.
#[derive(Default)]
struct Changes {
    deltas: BTreeMap<NaiveDate, Tallies>,
    /// Moves of the checkpoints' histograms by the day of the closings
    /// moved, besides those of the deltas' closings ([`save_deltas`]).
    days: BTreeMap<NaiveDate, DaysToClose>,
    /// The last checkpoint kept ([`Upkeep::checkpoint`]).
    checkpoint: Option<NaiveDate>,
    /// Items whose stored timeline and refs are replaced, not extended.
    rewritten: Vec<String>,
    /// Timeline entries written (an entry of a stored day replaces it).
    entries: Vec<(String, NaiveDate, ItemState)>,
    heads: Vec<(String, Head)>,
    /// (ref id, item id)
    refs: Vec<(String, String)>,
}

/// The second half of the upkeep, called at the end of [`store::apply`]
/// with what it folded: each touched item's timeline is extended from its
/// live state when its new events allow ([`extend`]; a new item's from the
/// batch alone), else recomputed from its history, and the dated tallies
/// move by the difference.
pub async fn apply(
    tx: &mut PgConnection,
    facts: &[Fact],
    upkeep: Upkeep,
    touched: &HashMap<String, Touched>,
) -> Result<(), sqlx::Error> {
    if !upkeep.active {
        return Ok(());
    }
    let Upkeep {
        mut refs,
        dependants,
        checkpoint,
        days,
        ..
    } = upkeep;
    let mut batch: BTreeMap<String, Vec<&Fact>> = BTreeMap::new();
    for fact in facts {
        if let Target::Item(id) = fact.target()
            && !dependants.contains(&id)
        {
            batch.entry(id).or_default().push(fact);
        }
    }
    let mut fallback: Vec<String> = dependants.into_iter().collect();
    batch.retain(|id, _| {
        let fast = touched.get(id).is_some_and(|t| t.in_order);
        if !fast {
            fallback.push(id.clone());
        }
        fast
    });
    let ids: Vec<&String> = batch.keys().collect();
    let heads = load_heads(tx, &ids).await?;
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for fact in batch.values().flatten() {
        match &fact.payload {
            Payload::ItemOpened(o) => named.insert(o.inspection_id.as_str()),
            Payload::ItemVerified(v) => named.insert(v.closed_by_inspection_id.as_str()),
            _ => false,
        };
    }
    let dates = load_dates(tx, named.into_iter().filter(|i| !i.is_empty())).await?;
    let mut changes = Changes {
        days,
        checkpoint,
        ..Default::default()
    };
    let no_supersessions = HashMap::new();
    for (id, facts) in &batch {
        let before = &touched[id].before;
        let head = heads.get(id);
        let new_item = before.version == 0 && head.is_none();
        if new_item
            && !facts
                .iter()
                .any(|f| matches!(f.payload, Payload::ItemSuperseded(_)))
        {
            // Every event of the item is in the batch.
            let facts: Vec<Fact> = facts.iter().map(|f| (*f).clone()).collect();
            let (timeline, head) = timeline_and_head(&facts, &dates, &no_supersessions);
            add_deltas(&mut changes.deltas, &timeline, 1);
            changes.add(id, timeline, head, refs_of(&facts).0);
            continue;
        }
        let extended = head.and_then(|head| extend(head, before, facts, &dates));
        let Some((entries, head)) = extended else {
            fallback.push(id.clone());
            continue;
        };
        #[cfg(test)]
        tests::EXTENDED.with(|n| n.set(n.get() + 1));
        let mut from = before;
        for (day, state) in &entries {
            let tallies = changes.deltas.entry(*day).or_default();
            tallies.add(from, -1);
            tallies.add(state, 1);
            from = state;
        }
        let named = facts.iter().filter_map(|f| match &f.payload {
            Payload::ItemVerified(v) => Some(v.closed_by_inspection_id.clone()),
            _ => None,
        });
        changes.add(id, entries, Some(head), named.collect());
    }
    fallback.sort();
    fallback.dedup();
    recompute_items(tx, &fallback, &mut refs, &mut changes).await?;
    changes.save(tx, true).await
}

impl Changes {
    fn add(
        &mut self,
        id: &str,
        entries: Vec<(NaiveDate, ItemState)>,
        head: Option<Head>,
        named: BTreeSet<String>,
    ) {
        self.entries
            .extend(entries.into_iter().map(|(d, s)| (id.to_string(), d, s)));
        if let Some(head) = head {
            self.heads.push((id.to_string(), head));
        }
        self.refs.extend(
            named
                .into_iter()
                .filter(|r| !r.is_empty())
                .map(|r| (r, id.to_string())),
        );
    }

    /// `checkpoints`: whether any may be kept (a fill adds them at its end).
    async fn save(self, tx: &mut PgConnection, checkpoints: bool) -> Result<(), sqlx::Error> {
        let kept = self.checkpoint.filter(|_| checkpoints);
        save_deltas(tx, self.deltas, self.days, kept).await?;
        if !self.rewritten.is_empty() {
            for table in ["dated_items", "dated_item_heads", "dated_refs"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE item_id = ANY($1)"))
                    .bind(&self.rewritten)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        save_timelines(tx, &self.entries).await?;
        save_heads(tx, &self.heads).await?;
        let (ref_ids, ref_items): (Vec<String>, Vec<String>) = self.refs.into_iter().unzip();
        if !ref_ids.is_empty() {
            sqlx::query(
                "INSERT INTO dated_refs (ref_id, item_id) \
                 SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(&ref_ids)
            .bind(&ref_items)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

async fn load_heads(
    tx: &mut PgConnection,
    ids: &[&String],
) -> Result<HashMap<String, Head>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64, NaiveDate, NaiveDate, bool, NaiveDate)> = sqlx::query_as(
        "SELECT item_id, version, last_day, event_day, dates_next, opened_day \
         FROM dated_item_heads WHERE item_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, version, last_day, event_day, dates_next, opened_day)| {
                let head = Head {
                    version: u64::try_from(version).unwrap_or(0),
                    last_day,
                    event_day,
                    dates_next,
                    opened_day,
                };
                (id, head)
            },
        )
        .collect())
}

async fn save_heads(tx: &mut PgConnection, heads: &[(String, Head)]) -> Result<(), sqlx::Error> {
    if heads.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = heads.iter().map(|(id, _)| id.as_str()).collect();
    let version: Vec<i64> = heads
        .iter()
        .map(|(_, h)| i64::try_from(h.version).unwrap_or(i64::MAX))
        .collect();
    let day = |f: fn(&Head) -> NaiveDate| heads.iter().map(|(_, h)| f(h)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO dated_item_heads (item_id, version, last_day, event_day, dates_next, \
         opened_day) SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::date[], $4::date[], \
         $5::bool[], $6::date[]) \
         ON CONFLICT (item_id) DO UPDATE SET version = excluded.version, \
         last_day = excluded.last_day, event_day = excluded.event_day, \
         dates_next = excluded.dates_next, opened_day = excluded.opened_day",
    )
    .bind(&ids)
    .bind(&version)
    .bind(day(|h| h.last_day))
    .bind(day(|h| h.event_day))
    .bind(
        heads
            .iter()
            .map(|(_, h)| h.dates_next)
            .collect::<Vec<bool>>(),
    )
    .bind(day(|h| h.opened_day))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The dates `dated_inspections` holds for these inspections.
async fn load_dates<'a>(
    tx: &mut PgConnection,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, NaiveDate>, sqlx::Error> {
    let ids: Vec<&str> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(sqlx::query_as(
        "SELECT inspection_id, day FROM dated_inspections WHERE inspection_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect())
}

/// Recomputes the dates of `ids` from their events; returns those whose
/// date changed, each with the date it had before (if any).
async fn redate_inspections(
    tx: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<(String, Option<NaiveDate>)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let dates = inspection_dates(&events_of(tx, ids, None).await?);
    let before = load_dates(tx, ids.iter().map(String::as_str)).await?;
    let changed: Vec<(String, NaiveDate)> = dates
        .into_iter()
        .filter(|(id, day)| ids.contains(id) && before.get(id) != Some(day))
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let redated = changed
        .iter()
        .map(|(id, _)| (id.clone(), before.get(id).copied()))
        .collect();
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
    Ok(redated)
}

/// The stored closings either inspection of which was `redated` (with its
/// date before), dated before the last checkpoint, moved from the days to
/// close the old dates gave them to those the new ones give: what the
/// checkpoints after each closing's day move by, as the live histograms
/// move ([`DaysToClose::redate`]). The new dates are written already.
async fn redate_closings(
    tx: &mut PgConnection,
    redated: &[(String, Option<NaiveDate>)],
    checkpoint: NaiveDate,
) -> Result<BTreeMap<NaiveDate, DaysToClose>, sqlx::Error> {
    let mut out: BTreeMap<NaiveDate, DaysToClose> = BTreeMap::new();
    if redated.is_empty() {
        return Ok(out);
    }
    let ids: Vec<&str> = redated.iter().map(|(id, _)| id.as_str()).collect();
    let (closings, after) = closings_with_dates(tx, Stored::Touching(&ids, checkpoint)).await?;
    let mut before = after.clone();
    for (id, day) in redated {
        match day {
            Some(day) => before.insert(id.clone(), *day),
            None => before.remove(id),
        };
    }
    for (day, key, n) in &closings {
        out.entry(*day)
            .or_default()
            .redate([(key, n)], &before, &after);
    }
    Ok(out)
}

/// Which stored closings [`closings_with_dates`] reads.
#[derive(Clone, Copy)]
enum Stored<'a> {
    /// Those either inspection of which is one of these, dated before the
    /// day.
    Touching(&'a [&'a str], NaiveDate),
    /// Those dated from the first day (if any) to before the second.
    Between(Option<NaiveDate>, NaiveDate),
}

/// Stored closings (summed per key and day when `Between`), each with its
/// day, and the dates `dated_inspections` holds for their inspections.
async fn closings_with_dates(
    tx: &mut PgConnection,
    which: Stored<'_>,
) -> Result<(Vec<(NaiveDate, ClosingKey, i64)>, DateMap), sqlx::Error> {
    type Row = (
        NaiveDate,
        String,
        String,
        String,
        i32,
        Option<NaiveDate>,
        i64,
        Option<NaiveDate>,
        Option<NaiveDate>,
    );
    let sql = |day: &str, n: &str, condition: &str, group: &str| {
        format!(
            "SELECT {day}, t.organisation_id, t.inspection_id, t.other, t.a, t.d1, {n}, \
             o.day, b.day FROM dated_tallies t \
             LEFT JOIN dated_inspections o ON o.inspection_id = t.inspection_id \
             LEFT JOIN dated_inspections b ON t.other <> '' AND b.inspection_id = t.other \
             WHERE t.tally = {CLOSING} AND {condition} {group}"
        )
    };
    let rows: Vec<Row> = match which {
        Stored::Touching(ids, before) => {
            let sql = sql(
                "t.day",
                "t.n",
                "t.n <> 0 AND t.day < $2 AND (t.inspection_id = ANY($1) \
                 OR (t.other <> '' AND t.other = ANY($1)))",
                "",
            );
            sqlx::query_as(&sql)
                .bind(ids)
                .bind(before)
                .fetch_all(&mut *tx)
                .await?
        }
        Stored::Between(from, to) => {
            // The first checkpoint's condition apart: `$2 IS NULL OR` would
            // keep a generic plan from the day index.
            let range = if from.is_some() {
                "t.day < $1 AND t.day >= $2"
            } else {
                "t.day < $1 AND $2::date IS NULL"
            };
            let sql = sql(
                "$1::date",
                "sum(t.n)::bigint",
                range,
                "GROUP BY t.organisation_id, t.inspection_id, t.other, t.a, t.d1, o.day, b.day",
            );
            sqlx::query_as(&sql)
                .bind(to)
                .bind(from)
                .fetch_all(&mut *tx)
                .await?
        }
    };
    let mut dates = DateMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (day, org, inspection, other, a, d1, n, opened, closed_by) in rows {
        if let Some(d) = opened {
            dates.insert(inspection.clone(), d);
        }
        if let Some(d) = closed_by {
            dates.insert(other.clone(), d);
        }
        out.push((day, closing_key(org, inspection, other, a, d1), n));
    }
    Ok((out, dates))
}

/// Recomputes the timelines of `ids` from their whole histories into
/// `changes`: the old timelines' deltas out, the new ones' in, their rows,
/// heads and refs replaced. `refs` are the ref locks held (`None`: the
/// upkeep lock is held exclusively).
async fn recompute_items(
    tx: &mut PgConnection,
    ids: &[String],
    refs: &mut Option<HashSet<i64>>,
    changes: &mut Changes,
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut histories: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    for fact in events_of(tx, ids, None).await? {
        if let Target::Item(id) = fact.target() {
            histories.entry(id).or_default().push(fact);
        }
    }
    let mut item_refs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut named_inspections: BTreeSet<String> = BTreeSet::new();
    let mut superseding: BTreeSet<String> = BTreeSet::new();
    // (superseding item, item it superseded)
    let mut superseded_by: Vec<(String, &str)> = Vec::new();
    for (id, facts) in &histories {
        let (inspections, items) = refs_of(facts);
        let refs = item_refs.entry(id.as_str()).or_default();
        refs.extend(inspections.iter().cloned());
        refs.extend(items.iter().cloned());
        named_inspections.extend(inspections);
        superseded_by.extend(items.iter().map(|x| (x.clone(), id.as_str())));
        superseding.extend(items);
    }
    // The superseding items' inspections (their ItemOpened).
    let superseding: Vec<String> = superseding.into_iter().collect();
    let opened_from = opened_from(tx, &superseding).await?;
    // A superseding item's inspection not locked by `prepare` is locked
    // now, out of key order, only if the superseded item's committed refs
    // lack it. One they hold needs no lock: a batch changing its date finds
    // the item by them and waits for the item's row, which this batch
    // holds; locking it here waited for that batch's ref lock while it
    // waited for the row (a deadlock). What is left: an opening committed
    // after `prepare` read ahead (rare; PostgreSQL breaks the deadlock and
    // the consumer retries).
    if let Some(held) = refs {
        let mut late: BTreeMap<i64, bool> = opened_from
            .values()
            .map(|i| ref_key(i))
            .filter(|k| !held.contains(k))
            .map(|k| (k, false))
            .collect();
        if !late.is_empty() {
            let committed: HashSet<(String, String)> =
                sqlx::query_as("SELECT ref_id, item_id FROM dated_refs WHERE item_id = ANY($1)")
                    .bind(ids)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
            let needed: HashSet<i64> = superseded_by
                .iter()
                .filter_map(|(by, id)| {
                    let inspection = opened_from.get(by)?;
                    let known = committed.contains(&(inspection.clone(), id.to_string()));
                    (!known).then(|| ref_key(inspection))
                })
                .collect();
            late.retain(|k, _| needed.contains(k));
        }
        lock_refs(tx, &late).await?;
        held.extend(late.into_keys());
    }
    named_inspections.extend(opened_from.values().cloned());
    // A supersession is dated by the superseding item's inspection, so a
    // date arriving or changing there recomputes the superseded item too.
    for (by, id) in superseded_by {
        if let Some(inspection) = opened_from.get(&by) {
            item_refs.entry(id).or_default().insert(inspection.clone());
        }
    }
    let dates = load_dates(tx, named_inspections.iter().map(String::as_str)).await?;
    let item_inspection: HashMap<&str, &str> = opened_from
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Take the old timelines away.
    let old = load_timelines(tx, ids).await?;
    for timeline in old.values() {
        add_deltas(&mut changes.deltas, timeline, -1);
    }
    changes.rewritten.extend(ids.iter().cloned());
    for (id, facts) in &histories {
        let (timeline, head) = timeline_and_head(facts, &dates, &item_inspection);
        add_deltas(&mut changes.deltas, &timeline, 1);
        let refs = item_refs.remove(id.as_str()).unwrap_or_default();
        changes.add(id, timeline, head, refs);
    }
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
    entries: &[(String, NaiveDate, ItemState)],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&ItemState) -> &String| {
        entries
            .iter()
            .map(|(_, _, s)| f(s).as_str())
            .collect::<Vec<&str>>()
    };
    let date = |f: fn(&ItemState) -> Option<NaiveDate>| {
        entries.iter().map(|(_, _, s)| f(s)).collect::<Vec<_>>()
    };
    sqlx::query(
        "INSERT INTO dated_items (item_id, day, organisation_id, inspection_id, status, kind, \
         pillar, opened_day, due_date, verified_on, closed_by_inspection_id, closed_day) \
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::text[], $4::text[], $5::int[], \
         $6::int[], $7::text[], $8::date[], $9::date[], $10::date[], $11::text[], $12::date[]) \
         ON CONFLICT (item_id, day) DO UPDATE SET organisation_id = excluded.organisation_id, \
         inspection_id = excluded.inspection_id, status = excluded.status, \
         kind = excluded.kind, pillar = excluded.pillar, opened_day = excluded.opened_day, \
         due_date = excluded.due_date, verified_on = excluded.verified_on, \
         closed_by_inspection_id = excluded.closed_by_inspection_id, \
         closed_day = excluded.closed_day",
    )
    .bind(
        entries
            .iter()
            .map(|(id, ..)| id.as_str())
            .collect::<Vec<&str>>(),
    )
    .bind(
        entries
            .iter()
            .map(|(_, d, _)| *d)
            .collect::<Vec<NaiveDate>>(),
    )
    .bind(text(|s| &s.organisation_id))
    .bind(text(|s| &s.inspection_id))
    .bind(
        entries
            .iter()
            .map(|(_, _, s)| s.status)
            .collect::<Vec<i32>>(),
    )
    .bind(entries.iter().map(|(_, _, s)| s.kind).collect::<Vec<i32>>())
    .bind(text(|s| &s.pillar))
    .bind(date(|s| s.opened_at.map(|t| t.date_naive())))
    .bind(date(|s| s.due_date))
    .bind(date(|s| s.verified_on))
    .bind(text(|s| &s.closed_by_inspection_id))
    .bind(date(|s| s.closed_at.map(|t| t.date_naive())))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Adds the deltas, and with `checkpoint` (the last one kept) moves every
/// checkpoint after each delta's day: its summary tallies by the delta,
/// its histograms by the delta's closings dated as `dated_inspections`
/// has them now, and by `days` (histogram moves only, by closing day).
async fn save_deltas(
    tx: &mut PgConnection,
    deltas: BTreeMap<NaiveDate, Tallies>,
    mut days: BTreeMap<NaiveDate, DaysToClose>,
    checkpoint: Option<NaiveDate>,
) -> Result<(), sqlx::Error> {
    let deltas: Vec<(NaiveDate, Tallies)> = deltas
        .into_iter()
        .map(|(day, t)| (day, t.without_zeros()))
        .collect();
    if let Some(checkpoint) = checkpoint {
        // Only closings dated before the last checkpoint move one.
        let moving = || {
            deltas
                .iter()
                .filter(|(day, _)| *day < checkpoint)
                .flat_map(|(day, t)| t.closing.iter().map(move |(k, n)| (*day, k, n)))
        };
        let mut named: BTreeSet<&str> = BTreeSet::new();
        for (_, key, _) in moving() {
            named.insert(&key.inspection_id);
            named.insert(&key.closed_by_inspection_id);
        }
        named.remove("");
        let dates: DateMap = load_dates(tx, named.iter().copied())
            .await?
            .into_iter()
            .collect();
        for (day, key, n) in moving() {
            days.entry(day).or_default().add(key, *n, &dates);
        }
    } else {
        days.clear();
    }
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
    let days = days.into_iter().map(|(day, d)| (day, days_rows(&d)));
    let rows = deltas.iter().map(|(day, t)| (*day, rows_of(t))).chain(days);
    for (day, rows) in rows {
        for r in rows {
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
    let plain = "INSERT INTO dated_tallies (organisation_id, day, tally, inspection_id, other, \
         a, b, d1, d2, d3, n) \
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::smallint[], $4::text[], $5::text[], \
         $6::int[], $7::int[], $8::date[], $9::date[], $10::date[], $11::bigint[]) \
         ON CONFLICT (organisation_id, day, tally, inspection_id, other, a, b, d1, d2, d3) \
         DO UPDATE SET n = dated_tallies.n + excluded.n";
    // Each summary delta moves every checkpoint after its day too, in the
    // same statement (summed per checkpoint and key, in key order); the
    // histograms' rows move checkpoints only.
    let with_checkpoints = format!(
        "WITH u AS (SELECT * FROM UNNEST($1::text[], $2::date[], $3::smallint[], $4::text[], \
         $5::text[], $6::int[], $7::int[], $8::date[], $9::date[], $10::date[], $11::bigint[]) \
         AS u(organisation_id, day, tally, inspection_id, other, a, b, d1, d2, d3, n)), \
         deltas AS (INSERT INTO dated_tallies (organisation_id, day, tally, inspection_id, \
         other, a, b, d1, d2, d3, n) SELECT * FROM u WHERE u.tally < {DAYS} \
         ON CONFLICT (organisation_id, day, tally, inspection_id, other, a, b, d1, d2, d3) \
         DO UPDATE SET n = dated_tallies.n + excluded.n) \
         INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, a, \
         b, d1, d2, d3, n) \
         SELECT c.day, u.organisation_id, u.tally, u.inspection_id, u.other, u.a, u.b, u.d1, \
         u.d2, u.d3, sum(u.n)::bigint FROM u JOIN dated_checkpoint_days c ON c.day > u.day \
         WHERE u.tally NOT IN ({OPEN}, {CLOSED}) GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 \
         HAVING sum(u.n) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 \
         ON CONFLICT (day, organisation_id, tally, inspection_id, other, a, b, d1, d2, d3) \
         DO UPDATE SET n = dated_checkpoints.n + excluded.n"
    );
    sqlx::query(if checkpoint.is_some() {
        &with_checkpoints
    } else {
        plain
    })
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
/// its replay: it may fold items without the consumers' upkeep), in one
/// pass over it ([`fill_in_one_pass`]).
pub async fn refill(pool: &PgPool) -> Result<(), sqlx::Error> {
    refill_when(pool, true).await
}

/// `always`: a rebuild's refill, in one pass over the history; otherwise
/// a start's fill if pending, item by item with the upkeep's own
/// recompute (rare, and its memory does not grow with the history).
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
    if always {
        fill_in_one_pass(&mut tx).await?;
    } else {
        fill(&mut tx).await?;
    }
    sqlx::query(
        "INSERT INTO dated_fill (filled) VALUES (TRUE) \
         ON CONFLICT (singleton) DO UPDATE SET filled = TRUE",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// What [`fill`] writes, from one pass over the history in storage order
/// (in the caller's transaction, holding the upkeep lock): every item's
/// and inspection's events are kept in memory, grouped by id, so no
/// history is read twice (a fill item by item reads each item's events
/// again through the aggregate index, and the inspections' for their
/// dates); the inspections are dated, each item with an `ItemOpened` gets
/// its timeline, head and refs as [`recompute_items`] computes them, and
/// the deltas are summed over all items in memory. The tables, emptied
/// here, are written with `COPY`: no row conflicts with another. Then the
/// checkpoints are sealed from the deltas, as a fill does.
async fn fill_in_one_pass(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    use crate::replay::CopyRows;
    let started = std::time::Instant::now();
    sqlx::query(
        "TRUNCATE dated_tallies, dated_items, dated_item_heads, dated_refs, dated_inspections, \
         dated_checkpoints, dated_checkpoint_days",
    )
    .execute(&mut *tx)
    .await?;
    let mut items: HashMap<String, Vec<Fact>> = HashMap::new();
    let mut inspections: Vec<Fact> = Vec::new();
    {
        let mut rows =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT envelope FROM events").fetch(&mut *tx);
        while let Some(bytes) = tokio_stream::StreamExt::next(&mut rows).await {
            // Only checked envelopes are stored; skip rather than fail.
            let Some(fact) = EventEnvelope::decode(bytes?.as_slice())
                .ok()
                .and_then(|e| Fact::from_envelope(&e).ok())
            else {
                continue;
            };
            match fact.target() {
                Target::Item(id) => items.entry(id).or_default().push(fact),
                Target::Inspection(_) => inspections.push(fact),
                _ => {}
            }
        }
    }
    let read = started.elapsed();
    let dates = inspection_dates(&inspections);
    drop(inspections);
    // Each item's opening inspection: what its supersessions are dated by.
    let mut opened_in: HashMap<&str, &str> = HashMap::new();
    for (id, facts) in &items {
        for fact in facts {
            if let Payload::ItemOpened(o) = &fact.payload {
                opened_in.insert(id.as_str(), o.inspection_id.as_str());
            }
        }
    }
    let mut ids: Vec<&String> = items
        .keys()
        .filter(|id| opened_in.contains_key(id.as_str()))
        .collect();
    ids.sort();
    let mut deltas: BTreeMap<NaiveDate, Tallies> = BTreeMap::new();
    let mut timelines = CopyRows::with_capacity(ids.len() * 6 * 128);
    let mut heads = CopyRows::with_capacity(ids.len() * 96);
    let mut refs = CopyRows::with_capacity(ids.len() * 96);
    for id in ids {
        let facts = &items[id];
        let (timeline, head) = timeline_and_head(facts, &dates, &opened_in);
        add_deltas(&mut deltas, &timeline, 1);
        for (day, s) in &timeline {
            timelines.row(12);
            timelines.text(id);
            timelines.date(Some(*day));
            timelines.text(&s.organisation_id);
            timelines.text(&s.inspection_id);
            timelines.int4(s.status);
            timelines.int4(s.kind);
            timelines.text(&s.pillar);
            timelines.date(s.opened_at.map(|t| t.date_naive()));
            timelines.date(s.due_date);
            timelines.date(s.verified_on);
            timelines.text(&s.closed_by_inspection_id);
            timelines.date(s.closed_at.map(|t| t.date_naive()));
        }
        if let Some(h) = head {
            heads.row(6);
            heads.text(id);
            heads.int8(i64::try_from(h.version).unwrap_or(i64::MAX));
            heads.date(Some(h.last_day));
            heads.date(Some(h.event_day));
            heads.bool(h.dates_next);
            heads.date(Some(h.opened_day));
        }
        // As `recompute_items` keeps them: the inspections it names, the
        // items that superseded it and their opening inspections.
        let (mut named, superseding) = refs_of(facts);
        for by in superseding {
            if let Some(inspection) = opened_in.get(by.as_str()) {
                named.insert(inspection.to_string());
            }
            named.insert(by);
        }
        for r in named.iter().filter(|r| !r.is_empty()) {
            refs.row(2);
            refs.text(r);
            refs.text(id);
        }
    }
    let mut tallies = CopyRows::with_capacity(deltas.len() * 32 * 64);
    for (day, t) in deltas {
        for r in rows_of(&t.without_zeros()) {
            tallies.row(11);
            tallies.text(&r.organisation_id);
            tallies.date(Some(day));
            tallies.int2(r.tally);
            tallies.text(&r.inspection_id);
            tallies.text(&r.other);
            tallies.int4(r.a);
            tallies.int4(r.b);
            tallies.date(r.d1);
            tallies.date(r.d2);
            tallies.date(r.d3);
            tallies.int8(r.n);
        }
    }
    let mut inspection_days = CopyRows::with_capacity(dates.len() * 64);
    for (id, day) in &dates {
        inspection_days.row(2);
        inspection_days.text(id);
        inspection_days.date(Some(*day));
    }
    let computed = started.elapsed();
    let tables = [
        ("dated_inspections (inspection_id, day)", inspection_days),
        (
            "dated_tallies (organisation_id, day, tally, inspection_id, other, a, b, d1, d2, d3, \
             n)",
            tallies,
        ),
        (
            "dated_items (item_id, day, organisation_id, inspection_id, status, kind, pillar, \
             opened_day, due_date, verified_on, closed_by_inspection_id, closed_day)",
            timelines,
        ),
        (
            "dated_item_heads (item_id, version, last_day, event_day, dates_next, opened_day)",
            heads,
        ),
        ("dated_refs (ref_id, item_id)", refs),
    ];
    // The deltas' secondary indexes are built once after the copy, which
    // costs less than keeping them row by row; read from the catalogue, so
    // one added later is built again too.
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = 'dated_tallies'",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .execute(&mut *tx)
            .await?;
    }
    let mut took = Vec::new();
    for (table, rows) in tables {
        let copied = std::time::Instant::now();
        let rows = rows.finish().ok_or_else(|| {
            sqlx::Error::Protocol(format!("a value of {table} out of PostgreSQL's range"))
        })?;
        let statement = format!("COPY {table} FROM STDIN (FORMAT binary)");
        crate::replay::copy_in(tx, &statement, &rows).await?;
        took.push(copied.elapsed());
    }
    let indexed = std::time::Instant::now();
    // Sorts in memory up to this (the default spills to disk); this
    // transaction only.
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    for (_, definition) in &indexes {
        sqlx::query(definition).execute(&mut *tx).await?;
    }
    let indexed = indexed.elapsed();
    let written = started.elapsed();
    // The table was just refilled in this transaction: without statistics
    // the checkpoints' range reads could be planned as whole scans.
    sqlx::query("ANALYZE dated_tallies")
        .execute(&mut *tx)
        .await?;
    seal(tx, checkpoint_of(chrono::Utc::now().date_naive())).await?;
    tracing::info!(
        ?read,
        compute = ?(computed - read),
        write = ?(written - computed),
        copies = ?took,
        ?indexed,
        seal = ?(started.elapsed() - written),
        "as-of refill"
    );
    Ok(())
}

/// Recomputes every dated table from the history alone (in the caller's
/// transaction, holding the upkeep lock): every inspection with an event
/// dated, every item with an `ItemOpened` recomputed (one never opened
/// counts nothing until its opening is applied).
async fn fill(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "TRUNCATE dated_tallies, dated_items, dated_item_heads, dated_refs, dated_inspections, \
         dated_checkpoints, dated_checkpoint_days",
    )
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
        let mut changes = Changes::default();
        recompute_items(tx, chunk, &mut None, &mut changes).await?;
        changes.save(tx, false).await?;
    }
    // The table was just refilled in this transaction: without statistics
    // the checkpoints' range reads could be planned as whole scans.
    sqlx::query("ANALYZE dated_tallies")
        .execute(&mut *tx)
        .await?;
    seal(tx, checkpoint_of(chrono::Utc::now().date_naive())).await
}

/// Adds the checkpoints missing up to `through` (a quarter's first day), each
/// from the one before it and the deltas between, under the upkeep lock
/// held exclusively (a batch writing deltas meanwhile would miss one).
async fn seal(tx: &mut PgConnection, through: NaiveDate) -> Result<(), sqlx::Error> {
    let mut previous: Option<NaiveDate> =
        sqlx::query_scalar("SELECT max(day) FROM dated_checkpoint_days")
            .fetch_one(&mut *tx)
            .await?;
    let mut next = match previous {
        Some(day) => next_checkpoint(day),
        None => NaiveDate::from_ymd_opt(FIRST_CHECKPOINT_YEAR, 1, 1),
    };
    // Each from the one before and the deltas between (a range of the day
    // index), or from every delta before it for the first.
    let sql = |after: &str| {
        format!(
            "INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, \
             a, b, d1, d2, d3, n) \
             SELECT $1, organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, \
             sum(n)::bigint FROM (SELECT organisation_id, tally, inspection_id, other, a, b, \
             d1, d2, d3, n FROM dated_checkpoints WHERE day = $2 \
             UNION ALL SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, n \
             FROM dated_tallies WHERE day < $1 {after} AND tally NOT IN ({OPEN}, {CLOSED})) x \
             GROUP BY organisation_id, tally, inspection_id, other, a, b, d1, d2, d3 \
             HAVING sum(n) <> 0"
        )
    };
    let (first, then) = (sql("AND $2::date IS NULL"), sql("AND day >= $2"));
    while let Some(day) = next.filter(|d| *d <= through) {
        sqlx::query(if previous.is_some() { &then } else { &first })
            .bind(day)
            .bind(previous)
            .execute(&mut *tx)
            .await?;
        // The histograms came with the one before; the closings between
        // are added, dated as they are now.
        let (closings, dates) = closings_with_dates(tx, Stored::Between(previous, day)).await?;
        let days = DaysToClose::of(closings.iter().map(|(_, k, n)| (k, n)), &dates);
        save_checkpoint_days(tx, day, &days).await?;
        sqlx::query("INSERT INTO dated_checkpoint_days (day) VALUES ($1)")
            .bind(day)
            .execute(&mut *tx)
            .await?;
        previous = Some(day);
        next = next_checkpoint(day);
    }
    Ok(())
}

/// Adds a histogram to one checkpoint's (rows in key order).
async fn save_checkpoint_days(
    tx: &mut PgConnection,
    day: NaiveDate,
    days: &DaysToClose,
) -> Result<(), sqlx::Error> {
    let mut rows = days_rows(days);
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_by(|x, y| {
        (&x.organisation_id, x.tally, x.a).cmp(&(&y.organisation_id, y.tally, y.a))
    });
    let orgs: Vec<&str> = rows.iter().map(|r| r.organisation_id.as_str()).collect();
    let tallies: Vec<i16> = rows.iter().map(|r| r.tally).collect();
    let a: Vec<i32> = rows.iter().map(|r| r.a).collect();
    let n: Vec<i64> = rows.iter().map(|r| r.n).collect();
    sqlx::query(
        "INSERT INTO dated_checkpoints (day, organisation_id, tally, inspection_id, other, a, \
         b, d1, d2, d3, n) \
         SELECT $1, o, t, '', '', a, 0, NULL, NULL, NULL, n \
         FROM UNNEST($2::text[], $3::smallint[], $4::int[], $5::bigint[]) AS u(o, t, a, n) \
         ON CONFLICT (day, organisation_id, tally, inspection_id, other, a, b, d1, d2, d3) \
         DO UPDATE SET n = dated_checkpoints.n + excluded.n",
    )
    .bind(day)
    .bind(&orgs)
    .bind(&tallies)
    .bind(&a)
    .bind(&n)
    .execute(&mut *tx)
    .await?;
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
/// indicators) from the live tables, and the tallies as of `day`, of one
/// organisation or everyone: the summaries from the nearest checkpoint and
/// the deltas between it and `day`; the details only for inspections with
/// no date (then summed from every delta up to `day`). The snapshot holds
/// no items: the tallies stand for them ([`crate::tally`]'s answers).
pub async fn load_as_of(
    pool: &PgPool,
    scope: Scope<'_>,
    day: NaiveDate,
) -> Result<(Snapshot, Tallies), sqlx::Error> {
    let (snapshot, tallies, _) = load(pool, scope, day, Closings::Keys).await?;
    Ok((snapshot, tallies))
}

/// What an as-of scorecard of `organisation_id` reads: [`load_as_of`] of
/// the organisation, but the checkpoint's days-to-close histogram of it in
/// place of its closings there.
pub async fn load_scorecard_as_of(
    pool: &PgPool,
    organisation_id: &str,
    day: NaiveDate,
) -> Result<(Snapshot, Tallies), sqlx::Error> {
    let scope = Scope {
        organisation: Some(organisation_id),
        content: true,
        items: false,
    };
    let read = load(pool, scope, day, Closings::Own(organisation_id)).await?;
    Ok(match read {
        (snapshot, mut tallies, Some(days)) => {
            tallies.peer_days = Some(days.own_days(organisation_id));
            tallies.closing.clear();
            (snapshot, tallies)
        }
        (..) => load_as_of(pool, scope, day).await?,
    })
}

/// What an as-of peer comparison of `organisation_id` reads: everyone's
/// snapshot and summaries, but instead of everyone's closings in the
/// checkpoint its histograms of the organisation, of its registered group
/// and of everyone (the deltas' closings after it are dated when asked).
pub async fn load_peers_as_of(
    pool: &PgPool,
    organisation_id: &str,
    day: NaiveDate,
) -> Result<(Snapshot, Tallies), sqlx::Error> {
    let scope = Scope::default();
    let read = load(pool, scope, day, Closings::Peers(organisation_id)).await?;
    Ok(match read {
        (snapshot, mut tallies, Some(days)) => {
            let group = tally::peer_group(&snapshot, &tallies, organisation_id);
            tallies.peer_days = Some(days.peer_days(organisation_id, &group));
            tallies.closing.clear();
            (snapshot, tallies)
        }
        (..) => load_as_of(pool, scope, day).await?,
    })
}

/// How an as-of read takes the checkpoint's closed items.
#[derive(Clone, Copy)]
enum Closings<'a> {
    /// As closings (closure statistics need them by inspection).
    Keys,
    /// As the organisation's days-to-close histogram.
    Own(&'a str),
    /// As the histograms of the organisation, its registered group and
    /// everyone; only the summaries a peer comparison reads.
    Peers(&'a str),
}

/// [`load_as_of`], with the closed items as `closings` says: with
/// histograms, also the days to close of the checkpoint's closings and
/// the deltas' together (`None` with `Keys`, or when the answer dates an
/// inspection otherwise than the histograms assumed: then the caller
/// reads the closings instead).
async fn load(
    pool: &PgPool,
    scope: Scope<'_>,
    day: NaiveDate,
    closings: Closings<'_>,
) -> Result<(Snapshot, Tallies, Option<DaysToClose>), sqlx::Error> {
    let scope = Scope {
        items: false,
        ..scope
    };
    let organisation = scope.organisation;
    // Everyone's answer names nearly every dated inspection: all their
    // dates are read beside the other statements rather than after them.
    let every_date = async {
        match organisation {
            Some(_) => Ok(None),
            None => sqlx::query_as::<_, (String, NaiveDate)>(
                "SELECT inspection_id, day FROM dated_inspections",
            )
            .fetch_all(pool)
            .await
            .map(Some),
        }
    };
    let (mut snapshot, rows, every_date) = tokio::try_join!(
        store::load_snapshot_from(pool, organisation, scope.content),
        summaries_as_of(pool, organisation, day, closings),
        every_date
    )?;
    let mut tallies = Tallies::default();
    let mut days = DaysToClose::default();
    for row in rows {
        match row.1 {
            DAYS | DAYS_ALL => add_days_row(&mut days, summed_row(row)),
            _ => add_row(&mut tallies, summed_row(row)),
        }
    }
    let mut tallies = tallies.without_zeros();
    match every_date {
        Some(all) => {
            let named = named_inspections(&snapshot, &tallies);
            let dates = all
                .into_iter()
                .filter(|(id, _)| named.contains(id.as_str()))
                .collect();
            keep_dated(&mut snapshot, dates, day);
        }
        None => date_content(pool, &mut snapshot, &tallies, day).await?,
    }
    // Every detail key's inspection counts an item in `inspections` too.
    let mut undated: Vec<String> = tallies
        .inspections
        .keys()
        .map(|(_, i)| i)
        .filter(|i| !snapshot.dating.contains_key(*i))
        .cloned()
        .collect();
    if !undated.is_empty() {
        undated.sort();
        undated.dedup();
        let sql = format!(
            "SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, \
             sum(n)::bigint FROM dated_tallies WHERE {} AND day <= $2 \
             AND tally IN ({OPEN}, {CLOSED}) AND inspection_id = ANY($3) \
             GROUP BY organisation_id, tally, inspection_id, other, a, b, d1, d2, d3 \
             HAVING sum(n) <> 0",
            scope_sql(organisation)
        );
        let rows = sqlx::query_as::<_, SummedRow>(&sql)
            .bind(organisation)
            .bind(day)
            .bind(&undated)
            .fetch_all(pool)
            .await?;
        for row in rows {
            add_summed(&mut tallies, row);
        }
        // Their closers are dated as the closings would have named them.
        let closers: BTreeSet<&str> = tallies
            .closed
            .keys()
            .map(|k| k.closed_by_inspection_id.as_str())
            .filter(|i| !i.is_empty() && !snapshot.dating.contains_key(*i))
            .collect();
        let closers = load_dates_from(pool, closers.into_iter().collect()).await?;
        snapshot.dating.extend(closers);
    }
    if matches!(closings, Closings::Keys) || misdated(&snapshot) {
        return Ok((snapshot, tallies, None));
    }
    // The deltas' closings, dated as the answer dates them.
    let answer = tally::answer_dates(&snapshot);
    for (key, n) in &tallies.closing {
        days.add(key, *n, &answer);
    }
    Ok((snapshot, tallies, Some(days.without_zeros())))
}

/// True when the snapshot dates one of its inspections by its publication
/// text otherwise than `dated_inspections` (which the histograms assume):
/// never when the consumers keep both, which they fold from the same
/// events in one transaction.
fn misdated(snapshot: &Snapshot) -> bool {
    snapshot.inspections.iter().any(|(id, i)| {
        model::published_on(&i.meta.published).is_some_and(|d| snapshot.dating.get(id) != Some(&d))
    })
}

/// The dates `dated_inspections` holds for these inspections.
async fn load_dates_from(
    pool: &PgPool,
    ids: Vec<&str>,
) -> Result<BTreeMap<String, NaiveDate>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(sqlx::query_as(
        "SELECT inspection_id, day FROM dated_inspections WHERE inspection_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect())
}

/// `$1`, the organisation or NULL, as a condition on `organisation_id`.
fn scope_sql(organisation: Option<&str>) -> &'static str {
    if organisation.is_some() {
        "organisation_id = $1"
    } else {
        "$1::text IS NULL"
    }
}

fn add_summed(tallies: &mut Tallies, row: SummedRow) {
    add_row(tallies, summed_row(row));
}

fn summed_row(row: SummedRow) -> DeltaRow {
    let (organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, n) = row;
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
    }
}

/// The summary tallies as of `day`, as rows to add up: the checkpoint
/// nearest it, with the deltas from it up to `day` (one on or before `day`)
/// or those after `day` up to it taken away (one after), or every delta up
/// to `day` when there is no checkpoint. The checkpoint's closed items as
/// `closings` says (the deltas' are always closings).
async fn summaries_as_of(
    pool: &PgPool,
    organisation: Option<&str>,
    day: NaiveDate,
    closings: Closings<'_>,
) -> Result<Vec<SummedRow>, sqlx::Error> {
    let (below, above): (Option<NaiveDate>, Option<NaiveDate>) = sqlx::query_as(
        "SELECT (SELECT max(day) FROM dated_checkpoint_days WHERE day <= $1), \
         (SELECT min(day) FROM dated_checkpoint_days WHERE day > $1)",
    )
    .bind(day)
    .fetch_one(pool)
    .await?;
    let after = above.filter(|a| below.is_none_or(|b| *a - day < day - b));
    let (checkpoint, sign, days) = match (after, below) {
        (Some(c), _) => (Some(c), "-", "day > $2 AND day < $3"),
        (None, Some(c)) => (Some(c), "", "day >= $3 AND day <= $2"),
        (None, None) => (None, "", "day <= $2"),
    };
    let scope = scope_sql(organisation);
    // The summary tallies read (a peer comparison reads no counts by
    // status, kind and pillar, nor open items per inspection).
    let summaries = |closing: bool| -> String {
        let mut wanted = vec![INSPECTIONS, DUE, TOTAL_OPENED, TOTAL_OPEN, TOTAL_CLOSED];
        if !matches!(closings, Closings::Peers(_)) {
            wanted.extend([COUNTS, OPEN_INSPECTIONS]);
        }
        if closing {
            wanted.push(CLOSING);
        }
        let wanted: Vec<String> = wanted.iter().map(i16::to_string).collect();
        format!("tally IN ({})", wanted.join(", "))
    };
    let (in_checkpoint, histograms) = match closings {
        Closings::Keys => (summaries(true), String::new()),
        Closings::Own(_) => (
            summaries(false),
            format!(
                " UNION ALL SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, \
                 d3, n FROM dated_checkpoints WHERE day = $3 AND organisation_id = $4 \
                 AND tally = {DAYS}"
            ),
        ),
        Closings::Peers(_) => (
            summaries(false),
            format!(
                " UNION ALL SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, \
                 d3, n FROM dated_checkpoints WHERE day = $3 AND organisation_id = ANY(ARRAY(\
                 SELECT $4 UNION ALL SELECT unnest(most_similar_group) FROM organisations \
                 WHERE id = $4)) AND tally = {DAYS} \
                 UNION ALL SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, \
                 d3, n FROM dated_checkpoints WHERE day = $3 AND organisation_id = '' \
                 AND tally = {DAYS_ALL}"
            ),
        ),
    };
    let of = match closings {
        Closings::Keys => None,
        Closings::Own(of) | Closings::Peers(of) => Some(of),
    };
    // The checkpoint's rows are one per key already: they and the deltas'
    // sums are added up by the caller ([`add_row`]), not grouped here.
    let sql = format!(
        "SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, n \
         FROM dated_checkpoints WHERE day = $3 AND {scope} AND {in_checkpoint} \
         {histograms} \
         UNION ALL SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, \
         {sign}sum(n)::bigint FROM dated_tallies WHERE {days} AND {scope} \
         AND {in_deltas} \
         GROUP BY organisation_id, tally, inspection_id, other, a, b, d1, d2, d3",
        in_deltas = summaries(true),
    );
    let query = sqlx::query_as::<_, SummedRow>(&sql)
        .bind(organisation)
        .bind(day)
        .bind(checkpoint);
    match of {
        Some(of) => query.bind(of).fetch_all(pool).await,
        None => query.fetch_all(pool).await,
    }
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
    let named: Vec<String> = named_inspections(snapshot, tallies)
        .into_iter()
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
    keep_dated(snapshot, dates, day);
    Ok(())
}

/// The inspections an as-of answer names: the snapshot's and the tallies'.
fn named_inspections<'a>(snapshot: &'a Snapshot, tallies: &'a Tallies) -> BTreeSet<&'a str> {
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
    named.remove("");
    named
}

/// Dates the snapshot by `dates` (those of the inspections it names) and
/// keeps the inspections dated by the end of `day`; anything known at any
/// time stays known.
fn keep_dated(snapshot: &mut Snapshot, dates: BTreeMap<String, NaiveDate>, day: NaiveDate) {
    snapshot.ever_known = snapshot.organisation_ids().into_iter().collect();
    snapshot.inspections.retain(|id, i| {
        dates
            .get(id)
            .copied()
            .or_else(|| model::published_on(&i.meta.published))
            .is_none_or(|d| d <= day)
    });
    snapshot.dating = dates;
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

    /// Scorecard as of `day` from the dated deltas, as the service answers
    /// (the checkpoint's histogram of the organisation).
    pub async fn scorecard_dated(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::Scorecard>, sqlx::Error> {
        let (snapshot, tallies) = super::load_scorecard_as_of(pool, org, day).await?;
        Ok(tally::scorecard(&snapshot, &tallies, org, day).ok())
    }

    /// Scorecard as of `day` from the checkpoint's closings (the read
    /// before the checkpoints kept histograms): a baseline.
    pub async fn scorecard_closings(
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

    /// Peer comparison as of `day` from the dated deltas, as the service
    /// answers (the checkpoint's histograms).
    pub async fn peers_dated(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::GetPeerComparisonResponse>, sqlx::Error> {
        let (snapshot, tallies) = super::load_peers_as_of(pool, org, day).await?;
        Ok(tally::peer_comparison(&snapshot, &tallies, org, day).ok())
    }

    /// Peer comparison as of `day` from the checkpoint's closings, every
    /// organisation's (the read before the checkpoints kept histograms):
    /// a baseline.
    pub async fn peers_closings(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::GetPeerComparisonResponse>, sqlx::Error> {
        let (snapshot, tallies) = super::load_as_of(pool, Scope::default(), day).await?;
        Ok(tally::peer_comparison(&snapshot, &tallies, org, day).ok())
    }

    /// The tallies as of `day` summed from every delta up to it, the
    /// details of undated inspections in the same statement (how the
    /// service read them before checkpoints): the bench's baseline.
    pub async fn load_as_of_every_delta(
        pool: &PgPool,
        scope: Scope<'_>,
        day: NaiveDate,
    ) -> Result<(crate::model::Snapshot, crate::tally::Tallies), sqlx::Error> {
        use super::{CLOSED, OPEN, SummedRow};
        let scope = Scope {
            items: false,
            ..scope
        };
        let organisation = scope.organisation;
        let sql = format!(
            "SELECT organisation_id, tally, inspection_id, other, a, b, d1, d2, d3, \
             sum(n)::bigint FROM dated_tallies t WHERE {} AND day <= $2 \
             AND (tally NOT IN ({OPEN}, {CLOSED}) OR NOT EXISTS \
             (SELECT 1 FROM dated_inspections d WHERE d.inspection_id = t.inspection_id)) \
             GROUP BY organisation_id, tally, inspection_id, other, a, b, d1, d2, d3 \
             HAVING sum(n) <> 0",
            super::scope_sql(organisation)
        );
        let (mut snapshot, rows) = tokio::try_join!(store::load_live(pool, scope), async {
            sqlx::query_as::<_, SummedRow>(&sql)
                .bind(organisation)
                .bind(day)
                .fetch_all(pool)
                .await
        })?;
        let mut tallies = crate::tally::Tallies::default();
        for row in rows {
            super::add_summed(&mut tallies, row);
        }
        super::date_content(pool, &mut snapshot, &tallies, day).await?;
        Ok((snapshot, tallies))
    }

    /// Scorecard as of `day` summed from every delta up to it.
    pub async fn scorecard_every_delta(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::Scorecard>, sqlx::Error> {
        let (snapshot, tallies) = load_as_of_every_delta(pool, one(org), day).await?;
        Ok(tally::scorecard(&snapshot, &tallies, org, day).ok())
    }

    /// Peer comparison as of `day` summed from every delta up to it.
    pub async fn peers_every_delta(
        pool: &PgPool,
        org: &str,
        day: NaiveDate,
    ) -> Result<Option<pb::GetPeerComparisonResponse>, sqlx::Error> {
        let (snapshot, tallies) = load_as_of_every_delta(pool, Scope::default(), day).await?;
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
