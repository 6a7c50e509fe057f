//! Reading and writing the `items` table (the current state of each item)
//! and reading `item_events` (the history). Appending events lives in
//! `journal`, which also writes the new state here in the same transaction.

use crate::error::TrackerError;
use chrono::{DateTime, NaiveDate, Utc};
use closeout_proto as pb;
use closeout_service::paging::Page;
use prost::Message;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

/// Columns of `items`, in [`ItemRow`] order (a macro, so that the
/// statements below are built once, at compile time).
macro_rules! item_columns {
    () => {
        "id, organisation_id, finding_id, inspection_id, kind, pillar, \
         question, text, status, owner, due_date, overdue, version, opened_at, updated_at, \
         closure_reference, evidence, carried_from_item_id, superseded_by_item_id"
    };
}
/// GetItem's statement (and a command's read); public for the bench's
/// ceiling.
pub const GET_ITEM: &str = concat!("SELECT ", item_columns!(), " FROM items WHERE id = $1");
/// A command's statement: the item, locked until its transaction ends.
const LOCK_ITEM: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM items WHERE id = $1 FOR UPDATE"
);

/// One row of `items`.
struct ItemRow {
    id: Uuid,
    organisation_id: String,
    finding_id: String,
    inspection_id: String,
    kind: i16,
    pillar: String,
    question: String,
    text: String,
    status: i16,
    owner: String,
    due_date: Option<NaiveDate>,
    overdue: bool,
    version: i64,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closure_reference: String,
    evidence: Vec<Vec<u8>>,
    carried_from_item_id: String,
    superseded_by_item_id: String,
}

/// Read by position, in `item_columns!` order: sqlx's derived `FromRow`
/// looks each column up by name (a hash of the name per column per row),
/// which a page of 50 items does ~1,000 times.
impl<'r> FromRow<'r, PgRow> for ItemRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(ItemRow {
            id: row.try_get(0)?,
            organisation_id: row.try_get(1)?,
            finding_id: row.try_get(2)?,
            inspection_id: row.try_get(3)?,
            kind: row.try_get(4)?,
            pillar: row.try_get(5)?,
            question: row.try_get(6)?,
            text: row.try_get(7)?,
            status: row.try_get(8)?,
            owner: row.try_get(9)?,
            due_date: row.try_get(10)?,
            overdue: row.try_get(11)?,
            version: row.try_get(12)?,
            opened_at: row.try_get(13)?,
            updated_at: row.try_get(14)?,
            closure_reference: row.try_get(15)?,
            evidence: row.try_get(16)?,
            carried_from_item_id: row.try_get(17)?,
            superseded_by_item_id: row.try_get(18)?,
        })
    }
}

impl TryFrom<ItemRow> for pb::TrackedItem {
    type Error = TrackerError;

    fn try_from(r: ItemRow) -> Result<Self, TrackerError> {
        let evidence = r
            .evidence
            .iter()
            .map(|bytes| pb::Evidence::decode(bytes.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrackerError::Corrupt(format!("evidence of item {}: {e}", r.id)))?;
        Ok(pb::TrackedItem {
            id: r.id.to_string(),
            organisation_id: r.organisation_id,
            finding_id: r.finding_id,
            inspection_id: r.inspection_id,
            kind: i32::from(r.kind),
            pillar: r.pillar,
            question: r.question,
            text: r.text,
            status: i32::from(r.status),
            owner: r.owner,
            due_date: r.due_date.map(calendar_date),
            overdue: r.overdue,
            version: r.version as u64,
            opened_at: Some(timestamp(r.opened_at)),
            updated_at: Some(timestamp(r.updated_at)),
            closure_reference: r.closure_reference,
            evidence,
            carried_from_item_id: r.carried_from_item_id,
            superseded_by_item_id: r.superseded_by_item_id,
        })
    }
}

/// A wire timestamp.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// A time from a wire timestamp (the epoch when it is out of range).
pub fn from_timestamp(at: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default()
}

// Wire dates ↔ calendar days: the domain's one conversion.
pub use closeout_domain::wire::{calendar_date, date as naive_date};

/// Parses an item id; a malformed one is INVALID_ARGUMENT naming `field`.
pub fn parse_item_id(field: &str, value: &str) -> Result<Uuid, TrackerError> {
    check_id(field, value)?;
    Uuid::parse_str(value.trim())
        .map_err(|_| TrackerError::invalid(field, format!("{value:?} is not an item id (a UUID)")))
}

/// The checks every id field gets before it is parsed (and echoed in an
/// error): present, one line of at most `MAX_ID` characters, no control,
/// bidirectional or only-invisible characters.
pub fn check_id(field: &str, value: &str) -> Result<(), TrackerError> {
    use closeout_domain::text::{MAX_ID, check_line};
    if value.trim().is_empty() {
        return Err(TrackerError::invalid(field, "is required"));
    }
    check_line(value, MAX_ID).map_err(|problem| TrackerError::invalid(field, problem.to_string()))
}

/// The current state of one item (on a pool or one connection).
pub async fn get_item<'c>(
    db: impl PgExecutor<'c>,
    id: Uuid,
) -> Result<pb::TrackedItem, TrackerError> {
    let row: Option<ItemRow> = sqlx::query_as(GET_ITEM).bind(id).fetch_optional(db).await?;
    row.ok_or_else(|| TrackerError::item_not_found(id.to_string()))?
        .try_into()
}

/// The current state of one item, or None (a command's read: it decides
/// on it and writes only if the version is unchanged).
pub async fn read_item(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<pb::TrackedItem>, TrackerError> {
    fetch_item(conn, GET_ITEM, id).await
}

/// The current state of one item, locked until `tx` ends, so that one
/// command at a time changes it.
pub async fn lock_item(
    tx: &mut PgConnection,
    id: Uuid,
) -> Result<Option<pb::TrackedItem>, TrackerError> {
    fetch_item(tx, LOCK_ITEM, id).await
}

/// One item read by `statement` (its columns `item_columns!`, `$1` the id).
async fn fetch_item(
    conn: &mut PgConnection,
    statement: &'static str,
    id: Uuid,
) -> Result<Option<pb::TrackedItem>, TrackerError> {
    let row: Option<ItemRow> = sqlx::query_as(statement)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(TryInto::try_into).transpose()
}

/// Writes an item's new state (inserting it if it is new).
pub async fn save_item(tx: &mut PgConnection, item: &pb::TrackedItem) -> Result<(), TrackerError> {
    let id = Uuid::parse_str(&item.id)
        .map_err(|_| TrackerError::Corrupt(format!("item id {:?} is not a UUID", item.id)))?;
    let evidence: Vec<Vec<u8>> = item.evidence.iter().map(Message::encode_to_vec).collect();
    sqlx::query(
        "INSERT INTO items (id, organisation_id, finding_id, inspection_id, kind, pillar, \
         question, text, status, owner, due_date, overdue, version, opened_at, updated_at, \
         closure_reference, evidence, carried_from_item_id, superseded_by_item_id) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, owner = EXCLUDED.owner, \
         due_date = EXCLUDED.due_date, overdue = EXCLUDED.overdue, version = EXCLUDED.version, \
         updated_at = EXCLUDED.updated_at, closure_reference = EXCLUDED.closure_reference, \
         evidence = EXCLUDED.evidence, superseded_by_item_id = EXCLUDED.superseded_by_item_id",
    )
    .bind(id)
    .bind(&item.organisation_id)
    .bind(&item.finding_id)
    .bind(&item.inspection_id)
    .bind(item.kind as i16)
    .bind(&item.pillar)
    .bind(&item.question)
    .bind(&item.text)
    .bind(item.status as i16)
    .bind(&item.owner)
    .bind(item.due_date.as_ref().and_then(naive_date))
    .bind(item.overdue)
    .bind(item.version as i64)
    .bind(from_timestamp(item.opened_at.as_ref()))
    .bind(from_timestamp(item.updated_at.as_ref()))
    .bind(&item.closure_reference)
    .bind(&evidence)
    .bind(&item.carried_from_item_id)
    .bind(&item.superseded_by_item_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// Inserts new items (none of which exists yet) with one statement;
/// `ids[i]` is `items[i]`'s id, already parsed by the caller.
pub async fn insert_new_items(
    tx: &mut PgConnection,
    ids: &[Uuid],
    items: &[pb::TrackedItem],
) -> Result<(), TrackerError> {
    let n = items.len();
    let mut organisations = Vec::with_capacity(n);
    let mut findings = Vec::with_capacity(n);
    let mut inspections = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut pillars = Vec::with_capacity(n);
    let mut questions = Vec::with_capacity(n);
    let mut texts = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut due_dates = Vec::with_capacity(n);
    let mut overdue = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut opened = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    let mut references = Vec::with_capacity(n);
    let mut carried = Vec::with_capacity(n);
    let mut superseded = Vec::with_capacity(n);
    for item in items {
        if !item.evidence.is_empty() {
            return Err(TrackerError::Corrupt(format!(
                "new item {} already has evidence",
                item.id
            )));
        }
        organisations.push(item.organisation_id.as_str());
        findings.push(item.finding_id.as_str());
        inspections.push(item.inspection_id.as_str());
        kinds.push(item.kind as i16);
        pillars.push(item.pillar.as_str());
        questions.push(item.question.as_str());
        texts.push(item.text.as_str());
        statuses.push(item.status as i16);
        owners.push(item.owner.as_str());
        due_dates.push(item.due_date.as_ref().and_then(naive_date));
        overdue.push(item.overdue);
        versions.push(item.version as i64);
        opened.push(from_timestamp(item.opened_at.as_ref()));
        updated.push(from_timestamp(item.updated_at.as_ref()));
        references.push(item.closure_reference.as_str());
        carried.push(item.carried_from_item_id.as_str());
        superseded.push(item.superseded_by_item_id.as_str());
    }
    sqlx::query(
        "INSERT INTO items (id, organisation_id, finding_id, inspection_id, kind, pillar, \
         question, text, status, owner, due_date, overdue, version, opened_at, updated_at, \
         closure_reference, evidence, carried_from_item_id, superseded_by_item_id) \
         SELECT id, org, finding, inspection, kind, pillar, question, text, status, owner, due, \
                overdue, version, opened, updated, reference, '{}'::bytea[], carried, superseded \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::text[], \
                     $7::text[], $8::text[], $9::smallint[], $10::text[], $11::date[], \
                     $12::bool[], $13::bigint[], $14::timestamptz[], $15::timestamptz[], \
                     $16::text[], $17::text[], $18::text[]) \
              AS i(id, org, finding, inspection, kind, pillar, question, text, status, owner, \
                   due, overdue, version, opened, updated, reference, carried, superseded)",
    )
    .bind(ids)
    .bind(&organisations)
    .bind(&findings)
    .bind(&inspections)
    .bind(&kinds)
    .bind(&pillars)
    .bind(&questions)
    .bind(&texts)
    .bind(&statuses)
    .bind(&owners)
    .bind(&due_dates)
    .bind(&overdue)
    .bind(&versions)
    .bind(&opened)
    .bind(&updated)
    .bind(&references)
    .bind(&carried)
    .bind(&superseded)
    .execute(tx)
    .await?;
    Ok(())
}

/// Filters of ListItems, already validated.
#[derive(Debug, Default)]
pub struct ItemFilter {
    /// Only this organisation's items ("" for all).
    pub organisation_id: String,
    /// Only items in one of these statuses (empty for all).
    pub statuses: Vec<i16>,
    /// Only this kind of finding.
    pub kind: Option<i16>,
    /// Only this inspection's items ("" for all).
    pub inspection_id: String,
    /// Only items past due and still open (not closed or superseded).
    pub overdue_only: bool,
}

/// Lists items, oldest first, one page at a time.
pub async fn list_items<'c>(
    db: impl PgExecutor<'c>,
    filter: &ItemFilter,
    page: Page,
) -> Result<(Vec<pb::TrackedItem>, String), TrackerError> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(concat!(
        "SELECT ",
        item_columns!(),
        " FROM items WHERE true"
    ));
    if !filter.organisation_id.is_empty() {
        query
            .push(" AND organisation_id = ")
            .push_bind(&filter.organisation_id);
    }
    if !filter.statuses.is_empty() {
        query
            .push(" AND status = ANY(")
            .push_bind(&filter.statuses)
            .push(")");
    }
    if let Some(kind) = filter.kind {
        query.push(" AND kind = ").push_bind(kind);
    }
    if !filter.inspection_id.is_empty() {
        query
            .push(" AND inspection_id = ")
            .push_bind(&filter.inspection_id);
    }
    if filter.overdue_only {
        query
            .push(" AND overdue AND status = ANY(")
            .push_bind(open_statuses())
            .push(")");
    }
    query
        .push(" ORDER BY opened_at, id LIMIT ")
        .push_bind(page.fetch())
        .push(" OFFSET ")
        .push_bind(page.offset);
    let rows: Vec<ItemRow> = query.build_query_as().fetch_all(db).await?;
    let mut items = rows
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<Vec<pb::TrackedItem>, _>>()?;
    let next = page.finish(&mut items);
    Ok((items, next))
}

/// Statuses in which an item is still being worked on.
pub fn open_statuses() -> Vec<i16> {
    vec![
        pb::ItemStatus::Open as i16,
        pb::ItemStatus::InProgress as i16,
        pb::ItemStatus::AwaitingVerification as i16,
    ]
}

/// One page of an item's history, oldest first. An unknown item is NOT_FOUND.
pub async fn history(
    pool: &PgPool,
    id: Uuid,
    page: Page,
) -> Result<(Vec<pb::EventEnvelope>, String), TrackerError> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT version FROM items WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Err(TrackerError::item_not_found(id.to_string()));
    }
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT envelope FROM item_events WHERE item_id = $1 ORDER BY version LIMIT $2 OFFSET $3",
    )
    .bind(id)
    .bind(page.fetch())
    .bind(page.offset)
    .fetch_all(pool)
    .await?;
    let mut events = rows
        .iter()
        .map(|bytes| pb::EventEnvelope::decode(bytes.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrackerError::Corrupt(format!("history of item {id}: {e}")))?;
    let next = page.finish(&mut events);
    Ok((events, next))
}
