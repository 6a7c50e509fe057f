//! Reading the findings service's tables: one row type per table, its
//! conversion to the wire message, and the Get/List queries with filters
//! and paging. Writes live in `import` and `record`, inside transactions
//! that also append events to the outbox.

use crate::error::FindingsError;
use closeout_proto as pb;
use closeout_service::paging::Page;
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

#[derive(FromRow)]
pub struct OrganisationRow {
    pub id: String,
    pub name: String,
    pub kind: i16,
    pub most_similar_group: Vec<String>,
}

impl From<OrganisationRow> for pb::Organisation {
    fn from(r: OrganisationRow) -> Self {
        pb::Organisation {
            id: r.id,
            name: r.name,
            kind: i32::from(r.kind),
            most_similar_group: r.most_similar_group,
        }
    }
}

#[derive(FromRow)]
pub struct InspectionRow {
    pub id: Uuid,
    pub organisation_id: String,
    pub programme: String,
    pub period: String,
    pub title: String,
    pub published: String,
    pub source_name: String,
    pub source_sha256: Option<String>,
    pub version: i64,
    pub imported_at: chrono::DateTime<chrono::Utc>,
    pub finding_count: i64,
    pub judgment_count: i64,
    pub follow_up_count: i64,
    pub indicator_count: i64,
}

/// Selects inspections with their child counts.
const INSPECTION_SELECT: &str = "SELECT i.id, i.organisation_id, i.programme, i.period, i.title, \
     i.published, i.source_name, i.source_sha256, i.version, i.imported_at, \
     (SELECT count(*) FROM findings f WHERE f.inspection_id = i.id) AS finding_count, \
     (SELECT count(*) FROM judgments j WHERE j.inspection_id = i.id) AS judgment_count, \
     (SELECT count(*) FROM follow_ups u WHERE u.inspection_id = i.id) AS follow_up_count, \
     (SELECT count(*) FROM indicators n WHERE n.inspection_id = i.id) AS indicator_count \
     FROM inspections i";

pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

impl From<InspectionRow> for pb::Inspection {
    fn from(r: InspectionRow) -> Self {
        pb::Inspection {
            id: r.id.to_string(),
            organisation_id: r.organisation_id,
            programme: r.programme,
            period: r.period,
            title: r.title,
            published: r.published,
            source_name: r.source_name,
            source_sha256: r.source_sha256.unwrap_or_default(),
            imported_at: Some(timestamp(r.imported_at)),
            finding_count: r.finding_count as u32,
            judgment_count: r.judgment_count as u32,
            follow_up_count: r.follow_up_count as u32,
            indicator_count: r.indicator_count as u32,
        }
    }
}

#[derive(FromRow)]
pub struct JudgmentRow {
    pub id: Uuid,
    pub inspection_id: Uuid,
    pub organisation_id: String,
    pub pillar: String,
    pub question: String,
    pub grade: i16,
    pub scale: i16,
    pub last_inspected: String,
    pub carried_over: bool,
}

impl From<JudgmentRow> for pb::Judgment {
    fn from(r: JudgmentRow) -> Self {
        pb::Judgment {
            id: r.id.to_string(),
            inspection_id: r.inspection_id.to_string(),
            organisation_id: r.organisation_id,
            pillar: r.pillar,
            question: r.question,
            grade: i32::from(r.grade),
            scale: i32::from(r.scale),
            last_inspected: r.last_inspected,
            carried_over: r.carried_over,
        }
    }
}

#[derive(FromRow)]
pub struct FindingRow {
    pub id: Uuid,
    pub inspection_id: Uuid,
    pub organisation_id: String,
    pub kind: i16,
    pub pillar: String,
    pub question: String,
    pub text: String,
    pub deadline: String,
    pub due_date: Option<chrono::NaiveDate>,
    pub parent_finding_id: Option<Uuid>,
    pub addressed_to_all: bool,
    pub line_start: i32,
    pub line_end: i32,
}

// Wire form of a calendar date: the domain's one conversion.
pub use closeout_domain::wire::calendar_date;

impl From<FindingRow> for pb::Finding {
    fn from(r: FindingRow) -> Self {
        pb::Finding {
            id: r.id.to_string(),
            inspection_id: r.inspection_id.to_string(),
            organisation_id: r.organisation_id,
            kind: i32::from(r.kind),
            pillar: r.pillar,
            question: r.question,
            text: r.text,
            deadline: r.deadline,
            due_date: r.due_date.map(calendar_date),
            parent_finding_id: r
                .parent_finding_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            addressed_to_all: r.addressed_to_all,
            line_start: r.line_start as u32,
            line_end: r.line_end as u32,
        }
    }
}

#[derive(FromRow)]
pub struct FollowUpRow {
    pub id: Uuid,
    pub inspection_id: Uuid,
    pub organisation_id: String,
    pub referenced_period: String,
    pub referenced_report: String,
    pub text: String,
    pub outcome: i16,
    pub pillar: String,
    pub question: String,
    pub line_start: i32,
    pub line_end: i32,
}

impl From<FollowUpRow> for pb::FollowUp {
    fn from(r: FollowUpRow) -> Self {
        pb::FollowUp {
            id: r.id.to_string(),
            inspection_id: r.inspection_id.to_string(),
            organisation_id: r.organisation_id,
            referenced_period: r.referenced_period,
            referenced_report: r.referenced_report,
            text: r.text,
            outcome: i32::from(r.outcome),
            line_start: r.line_start as u32,
            line_end: r.line_end as u32,
            pillar: r.pillar,
            question: r.question,
        }
    }
}

#[derive(FromRow)]
pub struct IndicatorRow {
    pub id: Uuid,
    pub inspection_id: Uuid,
    pub organisation_id: String,
    pub measure: String,
    pub period: String,
    pub value: f64,
    pub unit: String,
    pub comparator: String,
    pub comparator_value: Option<f64>,
    pub comparator_period: String,
}

impl From<IndicatorRow> for pb::Indicator {
    fn from(r: IndicatorRow) -> Self {
        pb::Indicator {
            id: r.id.to_string(),
            inspection_id: r.inspection_id.to_string(),
            organisation_id: r.organisation_id,
            measure: r.measure,
            period: r.period,
            value: r.value,
            unit: r.unit,
            comparator: r.comparator,
            comparator_value: r.comparator_value,
            comparator_period: r.comparator_period,
        }
    }
}

/// Parses a UUID from a request field, naming the field on failure.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, FindingsError> {
    if value.trim().is_empty() {
        return Err(FindingsError::invalid(field, "is required"));
    }
    Uuid::parse_str(value.trim())
        .map_err(|_| FindingsError::invalid(field, format!("{value:?} is not a UUID")))
}

/// Parses an optional UUID filter ("" = no filter).
pub fn parse_optional_id(field: &str, value: &str) -> Result<Option<Uuid>, FindingsError> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        parse_id(field, value).map(Some)
    }
}

/// Checks an organisation id filter is a plausible slug ("" = no filter).
pub fn check_organisation_filter(field: &str, value: &str) -> Result<(), FindingsError> {
    if value.is_empty() || closeout_domain::OrganisationId::parse(value).is_ok() {
        Ok(())
    } else {
        Err(FindingsError::invalid(
            field,
            format!("{value:?} is not an organisation id (lowercase letters, digits and hyphens)"),
        ))
    }
}

pub async fn get_organisation(pool: &PgPool, id: &str) -> Result<pb::Organisation, FindingsError> {
    sqlx::query_as::<_, OrganisationRow>(
        "SELECT id, name, kind, most_similar_group FROM organisations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(Into::into)
    .ok_or_else(|| FindingsError::not_found("organisation", id))
}

pub async fn list_organisations(
    pool: &PgPool,
    kind: i32,
    page: Page,
) -> Result<(Vec<pb::Organisation>, String), FindingsError> {
    let mut rows = sqlx::query_as::<_, OrganisationRow>(
        "SELECT id, name, kind, most_similar_group FROM organisations \
         WHERE ($1 = 0 OR kind = $1) ORDER BY id LIMIT $2 OFFSET $3",
    )
    .bind(kind as i16)
    .bind(page.fetch())
    .bind(page.offset)
    .fetch_all(pool)
    .await?;
    let next = page.finish(&mut rows);
    Ok((rows.into_iter().map(Into::into).collect(), next))
}

pub async fn get_inspection(pool: &PgPool, id: Uuid) -> Result<pb::Inspection, FindingsError> {
    sqlx::query_as::<_, InspectionRow>(&format!("{INSPECTION_SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(Into::into)
        .ok_or_else(|| FindingsError::not_found("inspection", id.to_string()))
}

pub async fn list_inspections(
    pool: &PgPool,
    organisation_id: &str,
    programme: &str,
    page: Page,
) -> Result<(Vec<pb::Inspection>, String), FindingsError> {
    let mut rows = sqlx::query_as::<_, InspectionRow>(&format!(
        "{INSPECTION_SELECT} WHERE ($1 = '' OR i.organisation_id = $1) \
         AND ($2 = '' OR i.programme = $2) \
         ORDER BY i.organisation_id, i.published, i.id LIMIT $3 OFFSET $4"
    ))
    .bind(organisation_id)
    .bind(programme)
    .bind(page.fetch())
    .bind(page.offset)
    .fetch_all(pool)
    .await?;
    let next = page.finish(&mut rows);
    Ok((rows.into_iter().map(Into::into).collect(), next))
}

/// Filters shared by the child-table List calls.
#[derive(Default)]
pub struct ChildFilter<'a> {
    pub organisation_id: &'a str,
    pub inspection_id: Option<Uuid>,
    /// (column, value) equality filters, values as text.
    pub text: Vec<(&'static str, String)>,
    /// (column, value) equality filters on enum columns.
    pub number: Vec<(&'static str, i16)>,
}

impl<'a> ChildFilter<'a> {
    /// The organisation and inspection filters every child List call has,
    /// validated ("" means no filter).
    pub fn new(organisation_id: &'a str, inspection_id: &str) -> Result<Self, FindingsError> {
        check_organisation_filter("organisation_id", organisation_id)?;
        Ok(ChildFilter {
            organisation_id,
            inspection_id: parse_optional_id("inspection_id", inspection_id)?,
            ..Default::default()
        })
    }

    /// Adds `column = value` unless `value` is empty.
    pub fn with_text(mut self, column: &'static str, value: &str) -> Self {
        if !value.is_empty() {
            self.text.push((column, value.to_string()));
        }
        self
    }

    /// Adds `column = value` for an enum field unless it is 0 (unspecified);
    /// a number that `known` says is no value of the enum is refused.
    pub fn with_enum(
        mut self,
        column: &'static str,
        value: i32,
        known: bool,
        what: &str,
    ) -> Result<Self, FindingsError> {
        if !known {
            return Err(FindingsError::invalid(
                column,
                format!("{value} is not {what}"),
            ));
        }
        if value != 0 {
            self.number.push((column, value as i16));
        }
        Ok(self)
    }
}

/// A table of an inspection's contents (judgments, findings, follow-ups,
/// indicators): where it is, which columns a row has, what the row becomes
/// on the wire. Get and List are written once, for every such table.
pub trait ChildTable: for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin + Sized {
    /// The table's name.
    const TABLE: &'static str;
    /// The row's columns, each prefixed `t.`.
    const COLUMNS: &'static str;
    /// What a NOT_FOUND calls it.
    const WHAT: &'static str;
    /// The wire message of a row.
    type Wire: From<Self>;
}

impl ChildTable for JudgmentRow {
    const TABLE: &'static str = "judgments";
    const COLUMNS: &'static str = "t.id, t.inspection_id, t.organisation_id, t.pillar, \
         t.question, t.grade, t.scale, t.last_inspected, t.carried_over";
    const WHAT: &'static str = "judgment";
    type Wire = pb::Judgment;
}

impl ChildTable for FindingRow {
    const TABLE: &'static str = "findings";
    const COLUMNS: &'static str = "t.id, t.inspection_id, t.organisation_id, t.kind, t.pillar, \
         t.question, t.text, t.deadline, t.due_date, t.parent_finding_id, t.addressed_to_all, \
         t.line_start, t.line_end";
    const WHAT: &'static str = "finding";
    type Wire = pb::Finding;
}

impl ChildTable for FollowUpRow {
    const TABLE: &'static str = "follow_ups";
    const COLUMNS: &'static str = "t.id, t.inspection_id, t.organisation_id, \
         t.referenced_period, t.referenced_report, t.text, t.outcome, t.pillar, t.question, \
         t.line_start, t.line_end";
    const WHAT: &'static str = "follow-up";
    type Wire = pb::FollowUp;
}

impl ChildTable for IndicatorRow {
    const TABLE: &'static str = "indicators";
    const COLUMNS: &'static str = "t.id, t.inspection_id, t.organisation_id, t.measure, \
         t.period, t.value, t.unit, t.comparator, t.comparator_value, t.comparator_period";
    const WHAT: &'static str = "indicator";
    type Wire = pb::Indicator;
}

/// One page of a child table's rows matching `filter`, in report order,
/// and the token of the next page ("" at the end).
pub async fn list<T: ChildTable>(
    pool: &PgPool,
    filter: ChildFilter<'_>,
    page: Page,
) -> Result<(Vec<T::Wire>, String), FindingsError> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {} FROM {} t JOIN inspections i ON i.id = t.inspection_id WHERE true",
        T::COLUMNS,
        T::TABLE
    ));
    if !filter.organisation_id.is_empty() {
        query
            .push(" AND t.organisation_id = ")
            .push_bind(filter.organisation_id.to_string());
    }
    if let Some(id) = filter.inspection_id {
        query.push(" AND t.inspection_id = ").push_bind(id);
    }
    for (column, value) in filter.text {
        query.push(format!(" AND t.{column} = ")).push_bind(value);
    }
    for (column, value) in filter.number {
        query.push(format!(" AND t.{column} = ")).push_bind(value);
    }
    query
        .push(" ORDER BY i.published, i.id, t.ordinal LIMIT ")
        .push_bind(page.fetch())
        .push(" OFFSET ")
        .push_bind(page.offset);
    let mut rows = query.build_query_as::<T>().fetch_all(pool).await?;
    let next = page.finish(&mut rows);
    Ok((rows.into_iter().map(Into::into).collect(), next))
}

/// One child row by id; NOT_FOUND names what it is.
pub async fn get<T: ChildTable>(pool: &PgPool, id: Uuid) -> Result<T::Wire, FindingsError> {
    sqlx::query_as::<_, T>(&format!(
        "SELECT {} FROM {} t WHERE t.id = $1",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(Into::into)
    .ok_or_else(|| FindingsError::not_found(T::WHAT, id.to_string()))
}
