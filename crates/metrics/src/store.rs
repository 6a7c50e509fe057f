//! The metrics database: the event history and the live read models.
//!
//! Writes happen inside the consumer's transaction ([`record`] then
//! [`apply`]), reads build a [`Snapshot`] for the pure queries: from the
//! read-model tables ([`load_live`]) or by folding the history up to a
//! moment ([`load_history`]). Runtime queries only.

use crate::model::{
    self, Content, ContentChange, Fact, InspectionMeta, InspectionState, ItemState,
    OrganisationState, Snapshot, Target,
};
use chrono::{DateTime, NaiveDate, Utc};
use closeout_proto::EventEnvelope;
use closeout_proto::event_envelope::Payload;
use prost::Message;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// Every read-model table, dropped by a rebuild.
pub const READ_MODEL_TABLES: &[&str] = &[
    "events",
    "organisations",
    "inspections",
    "judgments",
    "indicators",
    "items",
];

fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn db_version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores an event in the history. Returns false if it was there already
/// (then nothing else must change).
pub async fn record(
    tx: &mut PgConnection,
    event_id: Uuid,
    envelope: &EventEnvelope,
    fact: &Fact,
) -> Result<bool, sqlx::Error> {
    let aggregate_id = match fact.target() {
        Target::Organisation(id) | Target::Inspection(id) | Target::Item(id) => id,
        Target::HistoryOnly => fact.aggregate_id.clone(),
    };
    let inserted = sqlx::query(
        "INSERT INTO events (event_id, occurred_at, organisation_id, aggregate_type, \
         aggregate_id, aggregate_version, event_type, envelope) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(fact.occurred_at)
    .bind(&fact.organisation_id)
    .bind(&envelope.aggregate_type)
    .bind(&aggregate_id)
    .bind(db_version(fact.version))
    .bind(&envelope.event_type)
    .bind(envelope.encode_to_vec())
    .execute(tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Folds a recorded event into the live read models.
pub async fn apply(tx: &mut PgConnection, fact: &Fact) -> Result<(), sqlx::Error> {
    match fact.target() {
        Target::Organisation(id) => apply_organisation(tx, &id, fact).await,
        Target::Inspection(id) => apply_inspection(tx, &id, fact).await,
        Target::Item(id) => apply_item(tx, &id, fact).await,
        Target::HistoryOnly => Ok(()),
    }
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

async fn apply_inspection(tx: &mut PgConnection, id: &str, fact: &Fact) -> Result<(), sqlx::Error> {
    let row = sqlx::query("SELECT * FROM inspections WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut meta = match row {
        Some(row) => inspection_from(&row)?,
        None => InspectionMeta {
            inspection_id: id.to_string(),
            ..Default::default()
        },
    };
    let change = model::apply_inspection(&mut meta, fact);
    sqlx::query(
        "INSERT INTO inspections (id, organisation_id, programme, period, title, published, \
         published_version, announced, content_version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) \
         ON CONFLICT (id) DO UPDATE SET organisation_id = EXCLUDED.organisation_id, \
         programme = EXCLUDED.programme, period = EXCLUDED.period, title = EXCLUDED.title, \
         published = EXCLUDED.published, published_version = EXCLUDED.published_version, \
         announced = EXCLUDED.announced, content_version = EXCLUDED.content_version",
    )
    .bind(id)
    .bind(&meta.organisation_id)
    .bind(&meta.programme)
    .bind(&meta.period)
    .bind(&meta.title)
    .bind(&meta.published)
    .bind(db_version(meta.published_version))
    .bind(meta.announced)
    .bind(db_version(meta.content_version))
    .execute(&mut *tx)
    .await?;
    let content = match change {
        ContentChange::Keep => None,
        ContentChange::Add(content) => Some(content),
        ContentChange::Replace(content) => {
            for table in ["judgments", "indicators"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE inspection_id = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            content
        }
    };
    match content {
        None => {}
        Some(Content::Judgment(j)) => {
            sqlx::query(
                "INSERT INTO judgments (inspection_id, judgment_id, pillar, question, grade, \
                 scale, carried_over, last_inspected) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(&j.judgment_id)
            .bind(&j.pillar)
            .bind(&j.question)
            .bind(j.grade as i16)
            .bind(j.scale as i16)
            .bind(j.carried_over)
            .bind(&j.last_inspected)
            .execute(&mut *tx)
            .await?;
        }
        Some(Content::Indicator(n)) => {
            sqlx::query(
                "INSERT INTO indicators (inspection_id, indicator_id, measure, period, value, \
                 unit, comparator, comparator_value, comparator_period) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(&n.indicator_id)
            .bind(&n.measure)
            .bind(&n.period)
            .bind(n.value)
            .bind(&n.unit)
            .bind(&n.comparator)
            .bind(n.comparator_value)
            .bind(&n.comparator_period)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

async fn apply_item(tx: &mut PgConnection, id: &str, fact: &Fact) -> Result<(), sqlx::Error> {
    let row = sqlx::query("SELECT * FROM items WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut state = match row {
        Some(row) => item_from(&row)?,
        None => ItemState::default(),
    };
    if model::item_applies_in_order(state.version, fact.version) {
        state.apply(fact);
    } else {
        // Out of order, repeated or with a gap: fold the whole history
        // (which already holds this event) in version order.
        let history = item_history(tx, id).await?;
        state = model::fold_item(&history);
    }
    if state.item_id.is_empty() {
        state.item_id = id.to_string();
    }
    sqlx::query(
        "INSERT INTO items (id, organisation_id, inspection_id, finding_id, kind, pillar, \
         question, status, opened, opened_at, closed_at, due_date, overdue, \
         closed_by_inspection_id, version, verified_on) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) \
         ON CONFLICT (id) DO UPDATE SET organisation_id = EXCLUDED.organisation_id, \
         inspection_id = EXCLUDED.inspection_id, finding_id = EXCLUDED.finding_id, \
         kind = EXCLUDED.kind, pillar = EXCLUDED.pillar, question = EXCLUDED.question, \
         status = EXCLUDED.status, opened = EXCLUDED.opened, opened_at = EXCLUDED.opened_at, \
         closed_at = EXCLUDED.closed_at, due_date = EXCLUDED.due_date, \
         overdue = EXCLUDED.overdue, closed_by_inspection_id = EXCLUDED.closed_by_inspection_id, \
         version = EXCLUDED.version, verified_on = EXCLUDED.verified_on",
    )
    .bind(id)
    .bind(&state.organisation_id)
    .bind(&state.inspection_id)
    .bind(&state.finding_id)
    .bind(state.kind as i16)
    .bind(&state.pillar)
    .bind(&state.question)
    .bind(state.status as i16)
    .bind(state.opened)
    .bind(state.opened_at)
    .bind(state.closed_at)
    .bind(state.due_date)
    .bind(state.overdue)
    .bind(&state.closed_by_inspection_id)
    .bind(db_version(state.version))
    .bind(state.verified_on)
    .execute(tx)
    .await?;
    Ok(())
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

/// How much of the live read model a query needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    /// One organisation's items and inspections, or everyone's.
    pub organisation: Option<&'a str>,
    /// Whether to load judgments and indicators.
    pub content: bool,
}

/// The live read models (within `scope`) as a snapshot.
pub async fn load_live(pool: &PgPool, scope: Scope<'_>) -> Result<Snapshot, sqlx::Error> {
    let mut snapshot = Snapshot::default();
    let org = scope.organisation;
    for row in sqlx::query("SELECT * FROM organisations WHERE ($1::text IS NULL OR id = $1)")
        .bind(org)
        .fetch_all(pool)
        .await?
    {
        let state = organisation_from(&row)?;
        snapshot.organisations.insert(state.id.clone(), state);
    }
    for row in sqlx::query("SELECT * FROM items WHERE ($1::text IS NULL OR organisation_id = $1)")
        .bind(org)
        .fetch_all(pool)
        .await?
    {
        let state = item_from(&row)?;
        snapshot.items.insert(state.item_id.clone(), state);
    }
    for row in
        sqlx::query("SELECT * FROM inspections WHERE ($1::text IS NULL OR organisation_id = $1)")
            .bind(org)
            .fetch_all(pool)
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
             (SELECT inspection_id FROM items WHERE organisation_id = $1 \
              UNION SELECT closed_by_inspection_id FROM items WHERE organisation_id = $1)",
        )
        .bind(org)
        .fetch_all(pool)
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
        let join = "JOIN inspections i ON i.id = c.inspection_id \
                    WHERE ($1::text IS NULL OR i.organisation_id = $1)";
        for row in sqlx::query(&format!("SELECT c.* FROM judgments c {join}"))
            .bind(org)
            .fetch_all(pool)
            .await?
        {
            let id: String = row.try_get("inspection_id")?;
            if let Some(inspection) = snapshot.inspections.get_mut(&id) {
                inspection.judgments.push(model::Judgment {
                    judgment_id: row.try_get("judgment_id")?,
                    pillar: row.try_get("pillar")?,
                    question: row.try_get("question")?,
                    grade: i32::from(row.try_get::<i16, _>("grade")?),
                    scale: i32::from(row.try_get::<i16, _>("scale")?),
                    carried_over: row.try_get("carried_over")?,
                    last_inspected: row.try_get("last_inspected")?,
                });
            }
        }
        for row in sqlx::query(&format!("SELECT c.* FROM indicators c {join}"))
            .bind(org)
            .fetch_all(pool)
            .await?
        {
            let id: String = row.try_get("inspection_id")?;
            if let Some(inspection) = snapshot.inspections.get_mut(&id) {
                inspection.indicators.push(model::Indicator {
                    indicator_id: row.try_get("indicator_id")?,
                    measure: row.try_get("measure")?,
                    period: row.try_get("period")?,
                    value: row.try_get("value")?,
                    unit: row.try_get("unit")?,
                    comparator: row.try_get("comparator")?,
                    comparator_value: row.try_get("comparator_value")?,
                    comparator_period: row.try_get("comparator_period")?,
                });
            }
        }
    }
    snapshot.normalise();
    Ok(snapshot)
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

/// Empties every read model and the history, and forgets which events the
/// given consumers applied, in one transaction.
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
    tx.commit().await
}
