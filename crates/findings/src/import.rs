//! ImportReport: parse a report, store everything it says in one
//! transaction, and append the events announcing it to the outbox in that
//! same transaction — so an import is either wholly stored and announced or
//! not at all.
//!
//! Identity of an inspection is (organisation, programme, period, title):
//! before 2018/19 PEEL published a report per pillar in the same year. The
//! same document (same sha256) again is a no-op; a different document for
//! an existing inspection is refused unless the caller asks to replace it,
//! in which case only the differences are stored and announced, and ids of
//! unchanged findings are kept so tracked items stay attached.

use crate::error::FindingsError;
use crate::events::EventBatch;
use closeout_proto::{self as pb, event_envelope::Payload};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// Limits and policy for imports.
#[derive(Clone, Debug)]
pub struct ImportPolicy {
    /// Largest report accepted, in bytes.
    pub max_report_bytes: usize,
}

impl Default for ImportPolicy {
    fn default() -> Self {
        ImportPolicy {
            max_report_bytes: 5 * 1024 * 1024,
        }
    }
}

/// Hex sha256 of a document.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A document as a request gives it: text, or bytes with a media type, and
/// the values supplied for what it does not state.
#[derive(Clone, Copy, Debug)]
pub struct Document<'a> {
    pub text: &'a str,
    pub content: &'a [u8],
    pub media_type: &'a str,
    pub source_name: &'a str,
    pub overrides: Option<&'a pb::ReportOverrides>,
}

impl<'a> Document<'a> {
    pub fn of_import(request: &'a pb::ImportReportRequest) -> Self {
        Document {
            text: &request.text,
            content: &request.content,
            media_type: &request.media_type,
            source_name: &request.source_name,
            overrides: request.overrides.as_ref(),
        }
    }

    pub fn of_parse(request: &'a pb::ParseReportRequest) -> Self {
        Document {
            text: &request.text,
            content: &request.content,
            media_type: &request.media_type,
            source_name: &request.source_name,
            overrides: request.overrides.as_ref(),
        }
    }
}

/// A document read: the text the parser read (stored, so line numbers
/// point into it), the sha256 of the document as given, its media type,
/// the original bytes when they are not that text, and the parsed report.
#[derive(Debug)]
pub struct ReadReport {
    pub text: String,
    pub sha256: String,
    pub media_type: String,
    pub original: Option<Vec<u8>>,
    pub report: pb::ParsedReport,
}

/// Checks a document and its fields, turns it into text
/// (`closeout-document`) and parses it with the supplied overrides; nothing
/// is written. ParseReport stops here; ImportReport also needs the report to
/// say who and what was inspected ([`parse_request`]).
pub fn read_report(
    document: Document<'_>,
    policy: &ImportPolicy,
) -> Result<ReadReport, FindingsError> {
    let mut violations = closeout_service::error::Violations::default();
    let (field, bytes) = if document.content.is_empty() {
        ("text", document.text.as_bytes())
    } else {
        ("content", document.content)
    };
    if !document.text.is_empty() && !document.content.is_empty() {
        violations.add("content", "give the report as text or as content, not both");
    } else if bytes.len() > policy.max_report_bytes {
        violations.add(
            field,
            format!(
                "report is {} bytes, larger than the limit of {} bytes",
                bytes.len(),
                policy.max_report_bytes
            ),
        );
    } else if bytes.iter().all(u8::is_ascii_whitespace) {
        violations.add(
            "text",
            "must contain the report's text (or give content with its media_type)",
        );
    }
    if document.source_name.chars().count() > 1024 {
        violations.add("source_name", "must be at most 1024 characters");
    }
    if document.source_name.chars().any(char::is_control) {
        violations.add("source_name", "must not contain control characters");
    }
    if document.media_type.chars().count() > 255
        || document.media_type.chars().any(char::is_control)
    {
        violations.add("media_type", "must be a media type such as application/pdf");
    }
    violations.into_result()?;

    let media_type = if !document.media_type.trim().is_empty() {
        document.media_type.trim().to_string()
    } else if document.content.is_empty() {
        closeout_document::TEXT_PLAIN.to_string()
    } else {
        closeout_document::media_type_of(std::path::Path::new(document.source_name), bytes)
            .to_string()
    };
    let text = closeout_document::to_text(bytes, &media_type).map_err(|e| match e {
        closeout_document::DocumentError::UnsupportedMediaType(_) => {
            FindingsError::invalid("media_type", e.to_string())
        }
        other => FindingsError::invalid(field, format!("cannot read the document: {other}")),
    })?;
    let overrides = document.overrides.cloned().unwrap_or_default();
    let given = |value: &str| {
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_string())
    };
    let options = closeout_report::ParseOptions {
        published: given(&overrides.published),
        period: given(&overrides.period),
        organisation: given(&overrides.organisation),
    };
    let report = closeout_report::parse_with(&text, &options).map_err(|e| match e {
        closeout_report::ParseError::BadOption { option, .. } => {
            FindingsError::invalid(format!("overrides.{option}"), e.to_string())
        }
        other => FindingsError::invalid(field, format!("not a readable report: {other}")),
    })?;
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let original = (essence != closeout_document::TEXT_PLAIN).then(|| bytes.to_vec());
    Ok(ReadReport {
        sha256: sha256_hex(bytes),
        text,
        media_type: essence,
        original,
        report,
    })
}

/// The organisation a national or thematic report is stored under: the
/// inspectorate that issued it. Its recommendations are addressed to every
/// force or service, and the tracker opens them for each.
pub const NATIONAL_ISSUER: &str = "hmicfrs";

/// A national report (profile "national") names no inspected organisation
/// and no inspection programme: it is stored under the inspectorate, in the
/// programme "national", with a warning saying so. An organisation supplied
/// with `--organisation` still wins.
fn national_issuer(report: &mut pb::ParsedReport) {
    if report.profile != "national" {
        return;
    }
    if report.organisation.as_ref().is_none_or(|o| o.id.is_empty()) {
        report.organisation = Some(pb::ParsedOrganisation {
            id: NATIONAL_ISSUER.to_string(),
            name: "HM Inspectorate of Constabulary and Fire & Rescue Services".to_string(),
            kind: pb::OrganisationKind::Unspecified as i32,
        });
        report.warnings.push(format!(
            "a national report: stored under the inspectorate ({NATIONAL_ISSUER}); its \
             recommendations are addressed to every force or service"
        ));
    }
    let inspection = report.inspection.get_or_insert_with(Default::default);
    if inspection.programme.is_empty() {
        inspection.programme = "national".to_string();
    }
}

/// What an import needs that a report may not state, and the override that
/// supplies it.
const REQUIRED: [(&str, &str, &str); 3] = [
    (
        "does not name the inspected organisation",
        "--organisation ID",
        "organisation",
    ),
    (
        "does not state its inspection period",
        "--period 2018/19",
        "period",
    ),
    (
        "does not state its publication date",
        "--published YYYY-MM-DD",
        "published",
    ),
];

/// Checks an import request and parses its report; nothing is written.
/// Where the report does not say who or what was inspected, the error names
/// the flag and field that supply it.
pub fn parse_request(
    request: &pb::ImportReportRequest,
    policy: &ImportPolicy,
) -> Result<ReadReport, FindingsError> {
    let mut read = read_report(Document::of_import(request), policy)?;
    national_issuer(&mut read.report);
    let organisation = read.report.organisation.clone().unwrap_or_default();
    let inspection = read.report.inspection.clone().unwrap_or_default();
    let mut violations = closeout_service::error::Violations::default();
    let missing = [
        organisation.id.is_empty(),
        inspection.period.is_empty(),
        inspection.published.is_empty(),
    ];
    for ((problem, flag, field), missing) in REQUIRED.iter().zip(missing) {
        if missing {
            violations.add(
                format!("overrides.{field}"),
                format!(
                    "the report {problem}; pass {flag} (ImportReportRequest.overrides.{field})"
                ),
            );
        }
    }
    if inspection.programme.is_empty() {
        violations.add(
            "text",
            "the report does not state its inspection programme (PEEL, or a fire and rescue \
             service inspection); it may not be an inspection report",
        );
    }
    violations.into_result()?;
    Ok(read)
}

/// Stores a parsed report; see the module documentation for the rules.
///
/// A new inspection (the common case) is stored by one statement that
/// commits on its own ([`import_new`]): one round trip and one WAL flush.
/// Anything else — the inspection already stored, an organisation of
/// another kind under the id, an organisation registered meanwhile — finds
/// that statement changing nothing and takes the transaction below, which
/// reads what is there and decides.
pub async fn import(
    pool: &PgPool,
    request: &pb::ImportReportRequest,
    read: &ReadReport,
    batch: EventBatch,
) -> Result<pb::ImportReportResponse, FindingsError> {
    if let Some(response) = import_new(pool, request, read, batch.fresh()).await? {
        closeout_bus::outbox::committed(pool);
        return Ok(response);
    }
    import_in_transaction(pool, request, read, batch).await
}

/// What every import replies, before it knows what it stored.
fn response_of(read: &ReadReport) -> pb::ImportReportResponse {
    let report = &read.report;
    pb::ImportReportResponse {
        organisation_id: report
            .organisation
            .as_ref()
            .map(|o| o.id.clone())
            .unwrap_or_default(),
        judgment_count: (report.pillars.len() + report.judgments.len()) as u32,
        finding_count: report.findings.len() as u32,
        follow_up_count: report.follow_ups.len() as u32,
        indicator_count: report.indicators.len() as u32,
        warnings: report.warnings.clone(),
        media_type: read.media_type.clone(),
        profile: report.profile.clone(),
        ..Default::default()
    }
}

/// Stores a report of an inspection not yet stored, and its events, in one
/// statement committed on its own ([`IMPORT_NEW_SQL`]); `None` if that
/// statement stored nothing, and the caller must decide in a transaction.
///
/// The statement registers the organisation if it is new (its event
/// appended only then), queues on the inspection's advisory lock as
/// [`import_in_transaction`] does, and inserts the inspection unless its
/// identity is taken (`ON CONFLICT DO NOTHING` sees rows committed after
/// the statement began, so a concurrent import of the same inspection is
/// never doubled) or the organisation is of another kind; the document,
/// the children and every other event are written only if it was.
async fn import_new(
    pool: &PgPool,
    request: &pb::ImportReportRequest,
    read: &ReadReport,
    mut batch: EventBatch,
) -> Result<Option<pb::ImportReportResponse>, FindingsError> {
    let report = &read.report;
    let organisation = report.organisation.clone().unwrap_or_default();
    let inspection = report.inspection.clone().unwrap_or_default();
    let group = most_similar_group(report);
    // Pushed first, as the transaction would; appended only if the
    // statement registers the organisation.
    batch.push(
        &organisation.id,
        "organisation",
        organisation.id.clone(),
        1,
        Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(pb::Organisation {
                id: organisation.id.clone(),
                name: organisation.name.clone(),
                kind: organisation.kind,
                most_similar_group: group.clone(),
            }),
        }),
    );
    let registered_event = batch
        .events()
        .first()
        .map(|e| e.event_id.clone())
        .unwrap_or_default();
    let registered_event = Uuid::parse_str(&registered_event).map_err(|_| {
        FindingsError::Outbox(format!("event id {registered_event:?} is not a UUID"))
    })?;
    let id = Uuid::now_v7();
    let context = Context::new(id, &organisation.id, &inspection, 1);
    let children = Children::of_new(&context, report, &mut batch);
    batch.push(
        &organisation.id,
        "inspection",
        id.to_string(),
        1,
        Payload::InspectionPublished(published_event(&context, report, &read.sha256)),
    );
    let outbox = batch.outbox_columns()?;
    let new = NewInspection {
        request,
        read,
        inspection: &inspection,
    };
    let (created,): (bool,) = children
        .bind(sqlx::query_as(IMPORT_NEW_SQL), &context, Some(new))
        .bind(&organisation.name)
        .bind(organisation.kind as i16)
        .bind(&group)
        .bind(inspection_lock_key(&organisation.id, &inspection))
        .bind(&outbox.id)
        .bind(&outbox.organisation_id)
        .bind(&outbox.subject)
        .bind(&outbox.event_type)
        .bind(&outbox.traceparent)
        .bind(&outbox.payload)
        .bind(registered_event)
        .fetch_one(pool)
        .await?;
    if !created {
        return Ok(None);
    }
    let mut response = response_of(read);
    response.created = true;
    response.inspection_id = id.to_string();
    Ok(Some(response))
}

/// The key of the advisory lock imports of one inspection queue on.
fn inspection_lock_key(organisation_id: &str, inspection: &pb::ParsedInspection) -> String {
    format!(
        "inspection:{}:{}:{}:{}",
        organisation_id, inspection.programme, inspection.period, inspection.title
    )
}

/// The organisation's most similar group, as slugs.
fn most_similar_group(report: &pb::ParsedReport) -> Vec<String> {
    report
        .most_similar_group
        .iter()
        .map(|name| closeout_domain::slug_from_name(name).to_string())
        .collect()
}

/// Stores a report in one transaction, deciding from what is stored:
/// nothing to do (the same document), a conflict, a replacement, or a new
/// inspection (when [`import_new`] found the organisation registered
/// meanwhile).
async fn import_in_transaction(
    pool: &PgPool,
    request: &pb::ImportReportRequest,
    read: &ReadReport,
    mut batch: EventBatch,
) -> Result<pb::ImportReportResponse, FindingsError> {
    let report = &read.report;
    let sha = read.sha256.clone();
    let organisation = report.organisation.clone().unwrap_or_default();
    let inspection = report.inspection.clone().unwrap_or_default();
    let mut tx = pool.begin().await?;
    // Imports of the same inspection queue behind each other; others run on.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(inspection_lock_key(&organisation.id, &inspection))
        .execute(&mut *tx)
        .await?;
    // Checked (and registered) first, so a report about another body under
    // the same id is refused whether or not the inspection exists.
    // The existing inspection is read in the same round trip, after the
    // lock, so an earlier import of it that committed meanwhile is seen.
    let existing = register_organisation(&mut tx, report, &mut batch).await?;

    let mut response = response_of(read);

    let inspection_id = match existing {
        Some((id, Some(existing_sha), _)) if existing_sha == sha => {
            // Same document: nothing to store, nothing to announce.
            tx.rollback().await?;
            response.inspection_id = id.to_string();
            return Ok(response);
        }
        Some((id, existing_sha, _)) if !request.replace => {
            return Err(FindingsError::Conflict(format!(
                "inspection {} {} of {} ({id}) was already imported from a different document \
                 (sha256 {}); import with replace to replace it",
                inspection.programme,
                inspection.period,
                organisation.id,
                existing_sha.unwrap_or_else(|| "none: recorded by hand".into())
            )));
        }
        Some((id, previous_sha, version)) => {
            store_source(&mut tx, request, read).await?;
            replace(
                &mut tx,
                id,
                version,
                previous_sha.unwrap_or_default(),
                &sha,
                request,
                report,
                &mut batch,
            )
            .await?;
            response.replaced = true;
            id
        }
        None => {
            let id = Uuid::now_v7();
            let context = Context::new(id, &organisation.id, &inspection, 1);
            let children = Children::of_new(&context, report, &mut batch);
            // The document and the inspection's row go in the children's
            // statement: one round trip for everything the import stores.
            let new = NewInspection {
                request,
                read,
                inspection: &inspection,
            };
            children.write(&mut tx, &context, Some(new)).await?;
            // Announced last: a consumer that sees it has seen the rest.
            batch.push(
                &organisation.id,
                "inspection",
                id.to_string(),
                1,
                Payload::InspectionPublished(published_event(&context, report, &sha)),
            );
            response.created = true;
            id
        }
    };
    batch.append(&mut tx).await?;
    tx.commit().await?;
    closeout_bus::outbox::committed(pool);
    response.inspection_id = inspection_id.to_string();
    Ok(response)
}

/// Facts about the inspection that every child row and event repeats.
struct Context {
    id: Uuid,
    organisation_id: String,
    period: String,
    published: String,
    version: u64,
}

impl Context {
    fn new(
        id: Uuid,
        organisation_id: &str,
        inspection: &pb::ParsedInspection,
        version: u64,
    ) -> Self {
        Context {
            id,
            organisation_id: organisation_id.to_string(),
            period: inspection.period.clone(),
            published: inspection.published.clone(),
            version,
        }
    }
}

fn published_event(
    context: &Context,
    report: &pb::ParsedReport,
    sha: &str,
) -> pb::InspectionPublished {
    let inspection = report.inspection.clone().unwrap_or_default();
    pb::InspectionPublished {
        inspection_id: context.id.to_string(),
        organisation_id: context.organisation_id.clone(),
        programme: inspection.programme,
        period: inspection.period,
        title: inspection.title,
        published: inspection.published,
        source_sha256: sha.to_string(),
        finding_count: report.findings.len() as u32,
        judgment_count: (report.pillars.len() + report.judgments.len()) as u32,
        follow_up_count: report.follow_ups.len() as u32,
        indicator_count: report.indicators.len() as u32,
        inspected_questions: report
            .judgments
            .iter()
            .filter(|j| !j.carried_over)
            .map(|j| j.question.clone())
            .collect(),
    }
}

/// Pillar judgments (question empty) followed by question judgments.
fn judgments_of(report: &pb::ParsedReport) -> Vec<pb::QuestionJudgment> {
    let period = report
        .inspection
        .as_ref()
        .map(|i| i.period.clone())
        .unwrap_or_default();
    report
        .pillars
        .iter()
        .map(|p| pb::QuestionJudgment {
            pillar: p.pillar.clone(),
            question: String::new(),
            grade: p.grade,
            scale: p.scale,
            last_inspected: period.clone(),
            carried_over: false,
        })
        .chain(report.judgments.iter().cloned())
        .collect()
}

/// Keeps the document: the text the parser read, and the original bytes
/// when they were a web page or a PDF.
async fn store_source(
    tx: &mut PgConnection,
    request: &pb::ImportReportRequest,
    read: &ReadReport,
) -> Result<(), FindingsError> {
    let size = read.original.as_ref().map_or(read.text.len(), Vec::len);
    sqlx::query(
        "INSERT INTO source_documents (sha256, source_name, body, size_bytes, media_type, original) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&read.sha256)
    .bind(&request.source_name)
    .bind(&read.text)
    .bind(i32::try_from(size).unwrap_or(i32::MAX))
    .bind(&read.media_type)
    .bind(read.original.as_deref())
    .execute(tx)
    .await?;
    Ok(())
}

/// Inserts the organisation if it is new, announcing it; an existing one
/// learns its most similar group if it had none. An existing organisation
/// of another kind under the same id is a different body (a force and a
/// service of one place): the import is refused, never merged into it.
/// Returns the report's inspection if it is already stored (id, document
/// sha256, version).
async fn register_organisation(
    tx: &mut PgConnection,
    report: &pb::ParsedReport,
    batch: &mut EventBatch,
) -> Result<Option<(Uuid, Option<String>, i64)>, FindingsError> {
    let parsed = report.organisation.clone().unwrap_or_default();
    let inspection = report.inspection.clone().unwrap_or_default();
    let group = most_similar_group(report);
    // One round trip: the row inserted, or the one already there, and the
    // inspection if it exists. Always one row (NULLs where nothing matched).
    type Found = (
        Option<bool>,
        Option<String>,
        Option<i16>,
        Option<Uuid>,
        Option<String>,
        Option<i64>,
    );
    let (inserted, name, kind, existing_id, existing_sha, existing_version): Found =
        sqlx::query_as(
            "WITH inserted AS ( \
                 INSERT INTO organisations (id, name, kind, most_similar_group) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING name, kind), \
             found AS ( \
                 SELECT true AS inserted, name, kind FROM inserted \
                 UNION ALL \
                 SELECT false, name, kind FROM organisations \
                 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM inserted)) \
             SELECT f.inserted, f.name, f.kind, i.id, i.source_sha256, i.version \
             FROM (SELECT 1) AS one \
             LEFT JOIN found AS f ON true \
             LEFT JOIN inspections AS i ON i.organisation_id = $1 AND i.programme = $5 \
                 AND i.period = $6 AND i.title = $7",
        )
        .bind(&parsed.id)
        .bind(&parsed.name)
        .bind(parsed.kind as i16)
        .bind(&group)
        .bind(&inspection.programme)
        .bind(&inspection.period)
        .bind(&inspection.title)
        .fetch_one(&mut *tx)
        .await?;
    let existing = existing_id.map(|id| (id, existing_sha, existing_version.unwrap_or(1)));
    let found = match (inserted, name, kind) {
        (Some(inserted), Some(name), Some(kind)) => Some((inserted, name, kind)),
        _ => None,
    };
    let (inserted, existing_name, existing_kind) = match found {
        Some(row) => row,
        // Inserted by a concurrent import after this statement's snapshot.
        None => {
            let (name, kind): (String, i16) =
                sqlx::query_as("SELECT name, kind FROM organisations WHERE id = $1")
                    .bind(&parsed.id)
                    .fetch_one(&mut *tx)
                    .await?;
            (false, name, kind)
        }
    };
    let unspecified = pb::OrganisationKind::Unspecified as i32;
    let existing_kind = i32::from(existing_kind);
    if !inserted
        && existing_kind != parsed.kind
        && existing_kind != unspecified
        && parsed.kind != unspecified
    {
        let words = crate::successions::kind_words;
        return Err(FindingsError::Conflict(format!(
            "the report is about {} ({}), but organisation {} is {} ({}): one id never names two \
             bodies, so the report was not imported",
            parsed.name,
            words(parsed.kind),
            parsed.id,
            existing_name,
            words(existing_kind),
        )));
    }
    if inserted {
        batch.push(
            &parsed.id,
            "organisation",
            parsed.id.clone(),
            1,
            Payload::OrganisationRegistered(pb::OrganisationRegistered {
                organisation: Some(pb::Organisation {
                    id: parsed.id.clone(),
                    name: parsed.name.clone(),
                    kind: parsed.kind,
                    most_similar_group: group,
                }),
            }),
        );
    } else if !group.is_empty() {
        sqlx::query(
            "UPDATE organisations SET most_similar_group = $2 \
             WHERE id = $1 AND cardinality(most_similar_group) = 0",
        )
        .bind(&parsed.id)
        .bind(&group)
        .execute(&mut *tx)
        .await?;
    }
    Ok(existing)
}

/// Derives the due date of a finding from its deadline clause and the
/// publication date. An unrecognised clause leaves the date unset (the
/// clause is kept as written) rather than refusing a real report.
pub fn due_date_of(deadline: &str, published: &str) -> Option<chrono::NaiveDate> {
    if deadline.trim().is_empty() {
        return None;
    }
    let published = closeout_domain::PublishedDate::parse(published).ok()?;
    closeout_domain::due_date(deadline, published)
        .ok()
        .flatten()
}

/// An inspection's child rows, gathered column by column and written by one
/// statement (a multi-row `UNNEST` insert per table): an import is a
/// handful of round trips whatever the report's length, instead of one per
/// judgment, finding, follow-up and indicator.
#[derive(Default)]
struct Children {
    judgments: JudgmentColumns,
    findings: FindingColumns,
    follow_ups: FollowUpColumns,
    indicators: IndicatorColumns,
}

#[derive(Default)]
struct JudgmentColumns {
    id: Vec<Uuid>,
    ordinal: Vec<i32>,
    pillar: Vec<String>,
    question: Vec<String>,
    grade: Vec<i16>,
    scale: Vec<i16>,
    last_inspected: Vec<String>,
    carried_over: Vec<bool>,
}

#[derive(Default)]
struct FindingColumns {
    id: Vec<Uuid>,
    ordinal: Vec<i32>,
    kind: Vec<i16>,
    pillar: Vec<String>,
    question: Vec<String>,
    text: Vec<String>,
    deadline: Vec<String>,
    due_date: Vec<Option<chrono::NaiveDate>>,
    parent: Vec<Option<Uuid>>,
    addressed_to_all: Vec<bool>,
    line_start: Vec<i32>,
    line_end: Vec<i32>,
}

#[derive(Default)]
struct FollowUpColumns {
    id: Vec<Uuid>,
    ordinal: Vec<i32>,
    referenced_period: Vec<String>,
    referenced_report: Vec<String>,
    text: Vec<String>,
    outcome: Vec<i16>,
    pillar: Vec<String>,
    question: Vec<String>,
    line_start: Vec<i32>,
    line_end: Vec<i32>,
}

#[derive(Default)]
struct IndicatorColumns {
    id: Vec<Uuid>,
    ordinal: Vec<i32>,
    measure: Vec<String>,
    period: Vec<String>,
    value: Vec<f64>,
    unit: Vec<String>,
    comparator: Vec<String>,
    comparator_value: Vec<Option<f64>>,
    comparator_period: Vec<String>,
}

impl Children {
    /// The rows of a new inspection (version 1) and their events.
    fn of_new(context: &Context, report: &pb::ParsedReport, batch: &mut EventBatch) -> Self {
        let mut children = Children::default();
        let mut parents = HashMap::new();
        for (ordinal, judgment) in judgments_of(report).iter().enumerate() {
            children.judgment(context, ordinal, judgment, batch);
        }
        for (ordinal, finding) in report.findings.iter().enumerate() {
            children.finding(context, ordinal, finding, &mut parents, None, batch);
        }
        for (ordinal, follow_up) in report.follow_ups.iter().enumerate() {
            children.follow_up(context, ordinal, follow_up, batch);
        }
        for (ordinal, indicator) in report.indicators.iter().enumerate() {
            children.indicator(context, ordinal, indicator, batch);
        }
        children
    }

    /// Adds a judgment and its JudgmentRecorded event.
    fn judgment(
        &mut self,
        context: &Context,
        ordinal: usize,
        j: &pb::QuestionJudgment,
        batch: &mut EventBatch,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let rows = &mut self.judgments;
        rows.id.push(id);
        rows.ordinal.push(ordinal as i32);
        rows.pillar.push(j.pillar.clone());
        rows.question.push(j.question.clone());
        rows.grade.push(j.grade as i16);
        rows.scale.push(j.scale as i16);
        rows.last_inspected.push(j.last_inspected.clone());
        rows.carried_over.push(j.carried_over);
        batch.push(
            &context.organisation_id,
            "inspection",
            context.id.to_string(),
            context.version,
            Payload::JudgmentRecorded(pb::JudgmentRecorded {
                judgment_id: id.to_string(),
                inspection_id: context.id.to_string(),
                organisation_id: context.organisation_id.clone(),
                pillar: j.pillar.clone(),
                question: j.question.clone(),
                grade: j.grade,
                scale: j.scale,
                last_inspected: j.last_inspected.clone(),
                carried_over: j.carried_over,
                published: context.published.clone(),
                period: context.period.clone(),
            }),
        );
        id
    }

    /// Adds a finding (keeping `keep_id` when a replacement keeps it, and
    /// then announcing nothing) and its FindingRecorded event. A
    /// recommendation names its cause of concern by text; causes of concern
    /// come first in a report, so `parents` already holds it.
    #[allow(clippy::too_many_arguments)]
    fn finding(
        &mut self,
        context: &Context,
        ordinal: usize,
        f: &pb::ParsedFinding,
        parents: &mut HashMap<String, Uuid>,
        keep_id: Option<Uuid>,
        batch: &mut EventBatch,
    ) -> Uuid {
        let id = keep_id.unwrap_or_else(Uuid::now_v7);
        let due = due_date_of(&f.deadline, &context.published);
        let parent = if f.parent.is_empty() {
            None
        } else {
            parents.get(&f.parent).copied()
        };
        let addressed_to_all = f.kind == pb::FindingKind::NationalRecommendation as i32;
        let rows = &mut self.findings;
        rows.id.push(id);
        rows.ordinal.push(ordinal as i32);
        rows.kind.push(f.kind as i16);
        rows.pillar.push(f.pillar.clone());
        rows.question.push(f.question.clone());
        rows.text.push(f.text.clone());
        rows.deadline.push(f.deadline.clone());
        rows.due_date.push(due);
        rows.parent.push(parent);
        rows.addressed_to_all.push(addressed_to_all);
        rows.line_start.push(f.line_start as i32);
        rows.line_end.push(f.line_end as i32);
        if f.kind == pb::FindingKind::CauseOfConcern as i32 {
            parents.insert(f.text.clone(), id);
        }
        if keep_id.is_none() {
            batch.push(
                &context.organisation_id,
                "finding",
                id.to_string(),
                1,
                Payload::FindingRecorded(pb::FindingRecorded {
                    finding_id: id.to_string(),
                    inspection_id: context.id.to_string(),
                    organisation_id: context.organisation_id.clone(),
                    kind: f.kind,
                    pillar: f.pillar.clone(),
                    question: f.question.clone(),
                    text: f.text.clone(),
                    deadline: f.deadline.clone(),
                    due_date: due.map(crate::store::calendar_date),
                    parent_finding_id: parent.map(|p| p.to_string()).unwrap_or_default(),
                    addressed_to_all,
                    line_start: f.line_start,
                    line_end: f.line_end,
                    period: context.period.clone(),
                    published: context.published.clone(),
                }),
            );
        }
        id
    }

    /// Adds a follow-up statement and its FollowUpRecorded event.
    fn follow_up(
        &mut self,
        context: &Context,
        ordinal: usize,
        u: &pb::ParsedFollowUp,
        batch: &mut EventBatch,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let rows = &mut self.follow_ups;
        rows.id.push(id);
        rows.ordinal.push(ordinal as i32);
        rows.referenced_period.push(u.referenced_period.clone());
        rows.referenced_report.push(u.referenced_report.clone());
        rows.text.push(u.text.clone());
        rows.outcome.push(u.outcome as i16);
        rows.pillar.push(u.pillar.clone());
        rows.question.push(u.question.clone());
        rows.line_start.push(u.line_start as i32);
        rows.line_end.push(u.line_end as i32);
        batch.push(
            &context.organisation_id,
            "inspection",
            context.id.to_string(),
            context.version,
            Payload::FollowUpRecorded(pb::FollowUpRecorded {
                follow_up_id: id.to_string(),
                inspection_id: context.id.to_string(),
                organisation_id: context.organisation_id.clone(),
                referenced_period: u.referenced_period.clone(),
                referenced_report: u.referenced_report.clone(),
                text: u.text.clone(),
                outcome: u.outcome,
                line_start: u.line_start,
                line_end: u.line_end,
                pillar: u.pillar.clone(),
                question: u.question.clone(),
                referenced_kind: u.referenced_kind,
                scope: u.scope,
                stated_count: u.stated_count,
                quoted_item: u.quoted_item.clone(),
                rule: u.rule.clone(),
            }),
        );
        id
    }

    /// Adds a context indicator and its IndicatorRecorded event.
    fn indicator(
        &mut self,
        context: &Context,
        ordinal: usize,
        n: &pb::ParsedIndicator,
        batch: &mut EventBatch,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let rows = &mut self.indicators;
        rows.id.push(id);
        rows.ordinal.push(ordinal as i32);
        rows.measure.push(n.measure.clone());
        rows.period.push(n.period.clone());
        rows.value.push(n.value);
        rows.unit.push(n.unit.clone());
        rows.comparator.push(n.comparator.clone());
        rows.comparator_value.push(n.comparator_value);
        rows.comparator_period.push(n.comparator_period.clone());
        batch.push(
            &context.organisation_id,
            "inspection",
            context.id.to_string(),
            context.version,
            Payload::IndicatorRecorded(pb::IndicatorRecorded {
                indicator_id: id.to_string(),
                inspection_id: context.id.to_string(),
                organisation_id: context.organisation_id.clone(),
                measure: n.measure.clone(),
                period: n.period.clone(),
                value: n.value,
                unit: n.unit.clone(),
                comparator: n.comparator.clone(),
                comparator_value: n.comparator_value,
                published: context.published.clone(),
                comparator_period: n.comparator_period.clone(),
            }),
        );
        id
    }

    /// Every gathered row of `context`'s inspection, bound to `query` as
    /// $1..$41 of [`children_ctes`] (and, with `new`, its document and
    /// inspection row as $42..$51): one statement writes them all.
    fn bind<'q, Q: Bind<'q>>(
        &'q self,
        query: Q,
        context: &'q Context,
        new: Option<NewInspection<'q>>,
    ) -> Q {
        let (j, f, u, n) = (
            &self.judgments,
            &self.findings,
            &self.follow_ups,
            &self.indicators,
        );
        let mut query = query
            .bind(context.id)
            .bind(&context.organisation_id)
            .bind(&j.id)
            .bind(&j.ordinal)
            .bind(&j.pillar)
            .bind(&j.question)
            .bind(&j.grade)
            .bind(&j.scale)
            .bind(&j.last_inspected)
            .bind(&j.carried_over)
            .bind(&f.id)
            .bind(&f.ordinal)
            .bind(&f.kind)
            .bind(&f.pillar)
            .bind(&f.question)
            .bind(&f.text)
            .bind(&f.deadline)
            .bind(&f.due_date)
            .bind(&f.parent)
            .bind(&f.addressed_to_all)
            .bind(&f.line_start)
            .bind(&f.line_end)
            .bind(&u.id)
            .bind(&u.ordinal)
            .bind(&u.referenced_period)
            .bind(&u.referenced_report)
            .bind(&u.text)
            .bind(&u.outcome)
            .bind(&u.pillar)
            .bind(&u.question)
            .bind(&u.line_start)
            .bind(&u.line_end)
            .bind(&n.id)
            .bind(&n.ordinal)
            .bind(&n.measure)
            .bind(&n.period)
            .bind(&n.value)
            .bind(&n.unit)
            .bind(&n.comparator)
            .bind(&n.comparator_value)
            .bind(&n.comparator_period);
        if let Some(new) = new {
            let read = new.read;
            let size = read.original.as_ref().map_or(read.text.len(), Vec::len);
            query = query
                .bind(&read.sha256)
                .bind(&new.request.source_name)
                .bind(&read.text)
                .bind(i32::try_from(size).unwrap_or(i32::MAX))
                .bind(&read.media_type)
                .bind(read.original.as_deref())
                .bind(&new.inspection.programme)
                .bind(&new.inspection.period)
                .bind(&new.inspection.title)
                .bind(&new.inspection.published);
        }
        query
    }

    /// Writes every gathered row of `context`'s inspection in one
    /// statement: a data-modifying `WITH` per table (each runs once, even
    /// with no rows), so an import pays one round trip for all its children
    /// (and, with `new`, for its document and inspection row too).
    /// A recommendation's parent is in the same statement as it;
    /// PostgreSQL checks the reference at the statement's end.
    async fn write(
        &self,
        tx: &mut PgConnection,
        context: &Context,
        new: Option<NewInspection<'_>>,
    ) -> Result<(), FindingsError> {
        let sql = if new.is_some() {
            NEW_INSPECTION_SQL
        } else {
            CHILDREN_SQL
        };
        self.bind(sqlx::query(sql), context, new)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// `bind` of a query, whatever it returns.
trait Bind<'q>: Sized {
    fn bind<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>;
}

impl<'q> Bind<'q> for sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn bind<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query::Query::bind(self, value)
    }
}

impl<'q, O> Bind<'q> for sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    fn bind<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query::QueryAs::bind(self, value)
    }
}

/// The children's data-modifying `WITH` items ($1 the inspection id, $2
/// the organisation id, $3..$41 the columns); shared by the two statements.
macro_rules! children_ctes {
    ($only_if:literal) => {
        concat!(
        "judgment_rows AS ( \
                 INSERT INTO judgments (id, inspection_id, organisation_id, ordinal, pillar, \
                 question, grade, scale, last_inspected, carried_over) \
                 SELECT id, $1, $2, ord, pillar, question, grade, scale, last_inspected, carried \
                 FROM UNNEST($3::uuid[], $4::int4[], $5::text[], $6::text[], $7::int2[], \
                 $8::int2[], $9::text[], $10::bool[]) \
                 AS r(id, ord, pillar, question, grade, scale, last_inspected, carried)", $only_if, "), \
             finding_rows AS ( \
                 INSERT INTO findings (id, inspection_id, organisation_id, ordinal, kind, pillar, \
                 question, text, deadline, due_date, parent_finding_id, addressed_to_all, \
                 line_start, line_end) \
                 SELECT id, $1, $2, ord, kind, pillar, question, text, deadline, due, parent, \
                 everyone, line_start, line_end \
                 FROM UNNEST($11::uuid[], $12::int4[], $13::int2[], $14::text[], $15::text[], \
                 $16::text[], $17::text[], $18::date[], $19::uuid[], $20::bool[], $21::int4[], \
                 $22::int4[]) \
                 AS r(id, ord, kind, pillar, question, text, deadline, due, parent, everyone, \
                 line_start, line_end)", $only_if, "), \
             follow_up_rows AS ( \
                 INSERT INTO follow_ups (id, inspection_id, organisation_id, ordinal, \
                 referenced_period, referenced_report, text, outcome, pillar, question, \
                 line_start, line_end) \
                 SELECT id, $1, $2, ord, ref_period, ref_report, text, outcome, pillar, question, \
                 line_start, line_end \
                 FROM UNNEST($23::uuid[], $24::int4[], $25::text[], $26::text[], $27::text[], \
                 $28::int2[], $29::text[], $30::text[], $31::int4[], $32::int4[]) \
                 AS r(id, ord, ref_period, ref_report, text, outcome, pillar, question, \
                 line_start, line_end)", $only_if, "), \
             indicator_rows AS ( \
                 INSERT INTO indicators (id, inspection_id, organisation_id, ordinal, measure, \
                 period, value, unit, comparator, comparator_value, comparator_period) \
                 SELECT id, $1, $2, ord, measure, period, value, unit, comparator, compared, \
                 compared_period \
                 FROM UNNEST($33::uuid[], $34::int4[], $35::text[], $36::text[], $37::float8[], \
                 $38::text[], $39::text[], $40::float8[], $41::text[]) \
                 AS r(id, ord, measure, period, value, unit, comparator, compared, \
                 compared_period)", $only_if, ")"
        )
    };
}

/// Writes the children of an inspection whose row exists (a replacement).
const CHILDREN_SQL: &str = concat!("WITH ", children_ctes!(""), " SELECT 1");

/// Writes a new inspection: its document ($42..$47, kept if already
/// stored), its row ($48..$51) and its children, in one statement.
const NEW_INSPECTION_SQL: &str = concat!(
    "WITH source_row AS ( \
         INSERT INTO source_documents (sha256, source_name, body, size_bytes, media_type, \
         original) VALUES ($42, $43, $44, $45, $46, $47) ON CONFLICT (sha256) DO NOTHING), \
     inspection_row AS ( \
         INSERT INTO inspections (id, organisation_id, programme, period, title, published, \
         source_sha256, source_name) VALUES ($1, $2, $48, $49, $50, $51, $42, $43)), ",
    children_ctes!(""),
    " SELECT 1"
);

/// A new inspection, its organisation if new, document, children and
/// events in one statement committed on its own (see [`import_new`]).
/// $1..$51 as in [`NEW_INSPECTION_SQL`]; $52..$54 the organisation's name,
/// kind and most similar group; $55 the inspection's lock key; $56..$61
/// the outbox columns; $62 the id of the OrganisationRegistered event.
/// An organisation of another kind (neither unspecified, 0) stores
/// nothing. Returns whether the inspection was stored.
const IMPORT_NEW_SQL: &str = concat!(
    "WITH organisation_before AS ( \
         SELECT kind FROM organisations WHERE id = $2), \
     organisation_row AS ( \
         INSERT INTO organisations (id, name, kind, most_similar_group) \
         VALUES ($2, $52, $53, $54) ON CONFLICT (id) DO NOTHING RETURNING id), \
     same_body AS ( \
         SELECT 1 FROM organisation_before WHERE kind = $53 OR kind = 0 OR $53 = 0), \
     group_row AS ( \
         UPDATE organisations SET most_similar_group = $54 \
         WHERE id = $2 AND cardinality(most_similar_group) = 0 \
         AND cardinality($54::text[]) > 0 AND EXISTS (SELECT 1 FROM same_body)), \
     inspection_row AS ( \
         INSERT INTO inspections (id, organisation_id, programme, period, title, published, \
         source_sha256, source_name) \
         SELECT $1, $2, $48, $49, $50, $51, $42, $43 \
         FROM (SELECT pg_advisory_xact_lock(hashtextextended($55, 0))) AS queued \
         WHERE EXISTS (SELECT 1 FROM organisation_row) OR EXISTS (SELECT 1 FROM same_body) \
         ON CONFLICT DO NOTHING RETURNING id), \
     source_row AS ( \
         INSERT INTO source_documents (sha256, source_name, body, size_bytes, media_type, \
         original) SELECT $42, $43, $44, $45, $46, $47 \
         WHERE EXISTS (SELECT 1 FROM inspection_row) ON CONFLICT (sha256) DO NOTHING), \
     outbox_rows AS ( \
         INSERT INTO closeout_outbox \
         (event_id, organisation_id, subject, event_type, traceparent, payload) \
         SELECT id, org, subj, typ, tp, body \
         FROM UNNEST($56::uuid[], $57::text[], $58::text[], $59::text[], $60::text[], \
         $61::bytea[]) WITH ORDINALITY AS e(id, org, subj, typ, tp, body, ord) \
         WHERE CASE WHEN e.id = $62 THEN EXISTS (SELECT 1 FROM organisation_row) \
         ELSE EXISTS (SELECT 1 FROM inspection_row) END \
         ORDER BY ord), ",
    children_ctes!(" WHERE EXISTS (SELECT 1 FROM inspection_row)"),
    " SELECT EXISTS (SELECT 1 FROM inspection_row)"
);

/// What a new inspection stores besides its children.
struct NewInspection<'a> {
    request: &'a pb::ImportReportRequest,
    read: &'a ReadReport,
    inspection: &'a pb::ParsedInspection,
}

/// Replaces an inspection's content with a corrected document. Findings
/// whose (kind, pillar, question, text) are unchanged keep their ids and are
/// not announced again; new ones are recorded, vanished ones withdrawn.
/// Judgments, follow-ups and indicators are re-stored and re-announced
/// under the inspection's next version, so read models take the newer one.
#[allow(clippy::too_many_arguments)]
async fn replace(
    tx: &mut PgConnection,
    id: Uuid,
    version: i64,
    previous_sha: String,
    sha: &str,
    request: &pb::ImportReportRequest,
    report: &pb::ParsedReport,
    batch: &mut EventBatch,
) -> Result<(), FindingsError> {
    let organisation_id = report
        .organisation
        .as_ref()
        .map(|o| o.id.clone())
        .unwrap_or_default();
    let inspection = report.inspection.clone().unwrap_or_default();
    let next_version = version + 1;
    let context = Context::new(id, &organisation_id, &inspection, next_version as u64);
    let mut differences = Vec::new();

    let old_findings: Vec<(Uuid, i16, String, String, String)> = sqlx::query_as(
        "SELECT id, kind, pillar, question, text FROM findings WHERE inspection_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let mut old_by_key: HashMap<(i16, String, String, String), Uuid> = old_findings
        .into_iter()
        .map(|(fid, kind, pillar, question, text)| ((kind, pillar, question, text), fid))
        .collect();

    // Children are re-inserted in the new document's order; findings
    // first detach from their parents so deletes and re-inserts commute.
    sqlx::query("UPDATE findings SET parent_finding_id = NULL WHERE inspection_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for table in ["findings", "judgments", "follow_ups", "indicators"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE inspection_id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE inspections SET title = $2, published = $3, source_sha256 = $4, source_name = $5, \
         version = $6, imported_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&inspection.title)
    .bind(&inspection.published)
    .bind(sha)
    .bind(&request.source_name)
    .bind(next_version)
    .execute(&mut *tx)
    .await?;

    let mut children = Children::default();
    let mut parents = HashMap::new();
    for (ordinal, f) in report.findings.iter().enumerate() {
        let key = (
            f.kind as i16,
            f.pillar.clone(),
            f.question.clone(),
            f.text.clone(),
        );
        let kept = old_by_key.remove(&key);
        if kept.is_none() {
            differences.push(format!("finding added: {}", f.text));
        }
        children.finding(&context, ordinal, f, &mut parents, kept, batch);
    }
    for ((_, _, _, text), finding_id) in old_by_key {
        differences.push(format!("finding withdrawn: {text}"));
        batch.push(
            &organisation_id,
            "finding",
            finding_id.to_string(),
            2,
            Payload::FindingWithdrawn(pb::FindingWithdrawn {
                finding_id: finding_id.to_string(),
                inspection_id: id.to_string(),
                organisation_id: organisation_id.clone(),
                reason: "no longer in the replacement document".into(),
            }),
        );
    }
    for (ordinal, j) in judgments_of(report).iter().enumerate() {
        children.judgment(&context, ordinal, j, batch);
    }
    for (ordinal, u) in report.follow_ups.iter().enumerate() {
        children.follow_up(&context, ordinal, u, batch);
    }
    for (ordinal, n) in report.indicators.iter().enumerate() {
        children.indicator(&context, ordinal, n, batch);
    }
    children.write(&mut *tx, &context, None).await?;
    differences.push(format!(
        "document replaced: sha256 {previous_sha} -> {sha}; {} judgments, {} follow-ups, {} indicators re-recorded",
        report.pillars.len() + report.judgments.len(),
        report.follow_ups.len(),
        report.indicators.len()
    ));
    batch.push(
        &organisation_id,
        "inspection",
        id.to_string(),
        context.version,
        Payload::InspectionReplaced(pb::InspectionReplaced {
            inspection_id: id.to_string(),
            organisation_id: organisation_id.clone(),
            previous_sha256: previous_sha,
            source_sha256: sha.to_string(),
            differences,
        }),
    );
    Ok(())
}
