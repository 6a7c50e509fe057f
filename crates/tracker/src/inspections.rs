//! What the tracker keeps of each inspection for reconciliation: its
//! period, programme, title and publication (from FindingRecorded and
//! InspectionPublished), every finding (all kinds) and every follow-up
//! statement — only the fields matching needs. Also turns them back into
//! the matcher's inputs: the later inspection, and an organisation's open
//! items from earlier inspections — its predecessors' too (see
//! `successions`), each recommendation with its cause of concern's item.
//!
//! A corrected document re-records the inspection's follow-ups under the
//! inspection's next version: [`forget_replaced`] drops the older ones, and a
//! withdrawn finding is forgotten, so that proposals made again read only
//! the new text.

use crate::error::TrackerError;
use closeout_proto as pb;
use closeout_reconcile as rec;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// Records (or completes) an inspection's identity. Empty fields never
/// overwrite known ones, and a known inspection is rewritten only when
/// something about it changes: every finding names its inspection, and
/// rewriting the same row for each of a report's findings left a new row
/// version per finding, a chain that grew with the report (and with every
/// report not yet vacuumed away).
pub async fn remember_inspection(
    tx: &mut PgConnection,
    id: &str,
    organisation_id: &str,
    period: &str,
    published: &str,
) -> Result<(), TrackerError> {
    if id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO inspections (id, organisation_id, period, published) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET \
           period = CASE WHEN EXCLUDED.period = '' THEN inspections.period ELSE EXCLUDED.period END, \
           published = CASE WHEN EXCLUDED.published = '' THEN inspections.published \
                            ELSE EXCLUDED.published END \
         WHERE (EXCLUDED.period <> '' AND EXCLUDED.period <> inspections.period) \
            OR (EXCLUDED.published <> '' AND EXCLUDED.published <> inspections.published)",
    )
    .bind(id)
    .bind(organisation_id)
    .bind(period)
    .bind(published)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records InspectionPublished's identity and the questions it judged.
pub async fn inspection_published(
    tx: &mut PgConnection,
    published: &pb::InspectionPublished,
) -> Result<(), TrackerError> {
    if published.inspection_id.is_empty() {
        return Err(TrackerError::invalid("inspection_id", "is empty"));
    }
    remember_inspection(
        tx,
        &published.inspection_id,
        &published.organisation_id,
        &published.period,
        &published.published,
    )
    .await?;
    sqlx::query(
        "UPDATE inspections SET programme = $2, title = $3, inspected_questions = $4, \
         announced = true WHERE id = $1",
    )
    .bind(&published.inspection_id)
    .bind(&published.programme)
    .bind(&published.title)
    .bind(&published.inspected_questions)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Keeps a finding of any kind (a later one may re-raise an earlier item).
pub async fn finding_recorded(
    tx: &mut PgConnection,
    finding: &pb::FindingRecorded,
) -> Result<(), TrackerError> {
    remember_inspection(
        tx,
        &finding.inspection_id,
        &finding.organisation_id,
        &finding.period,
        &finding.published,
    )
    .await?;
    sqlx::query(
        "INSERT INTO inspection_findings (finding_id, inspection_id, organisation_id, kind, \
         pillar, question, text, line_start, line_end, parent_finding_id) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (finding_id) DO NOTHING",
    )
    .bind(&finding.finding_id)
    .bind(&finding.inspection_id)
    .bind(&finding.organisation_id)
    .bind(i16::try_from(finding.kind).unwrap_or(0))
    .bind(&finding.pillar)
    .bind(&finding.question)
    .bind(&finding.text)
    .bind(line(finding.line_start))
    .bind(line(finding.line_end))
    .bind(&finding.parent_finding_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Keeps many findings with one statement ([`finding_recorded`] without
/// the inspection, which the caller remembers once per inspection).
pub async fn findings_recorded(
    tx: &mut PgConnection,
    findings: &[&pb::FindingRecorded],
) -> Result<(), TrackerError> {
    let n = findings.len();
    let mut ids = Vec::with_capacity(n);
    let mut inspections = Vec::with_capacity(n);
    let mut organisations = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut pillars = Vec::with_capacity(n);
    let mut questions = Vec::with_capacity(n);
    let mut texts = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(n);
    let mut parents = Vec::with_capacity(n);
    for finding in findings {
        ids.push(finding.finding_id.as_str());
        inspections.push(finding.inspection_id.as_str());
        organisations.push(finding.organisation_id.as_str());
        kinds.push(i16::try_from(finding.kind).unwrap_or(0));
        pillars.push(finding.pillar.as_str());
        questions.push(finding.question.as_str());
        texts.push(finding.text.as_str());
        starts.push(line(finding.line_start));
        ends.push(line(finding.line_end));
        parents.push(finding.parent_finding_id.as_str());
    }
    // In the given order, so that of two with one id the first is kept, as
    // one statement per finding would.
    sqlx::query(
        "INSERT INTO inspection_findings (finding_id, inspection_id, organisation_id, kind, \
         pillar, question, text, line_start, line_end, parent_finding_id) \
         SELECT id, inspection, org, kind, pillar, question, text, line_start, line_end, parent \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::smallint[], $5::text[], \
                     $6::text[], $7::text[], $8::int[], $9::int[], $10::text[]) \
              WITH ORDINALITY AS f(id, inspection, org, kind, pillar, question, text, \
                                   line_start, line_end, parent, ord) \
         ORDER BY ord \
         ON CONFLICT (finding_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&inspections)
    .bind(&organisations)
    .bind(&kinds)
    .bind(&pillars)
    .bind(&questions)
    .bind(&texts)
    .bind(&starts)
    .bind(&ends)
    .bind(&parents)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Forgets a finding a corrected document no longer contains: a new
/// proposal must not be made from it.
pub async fn finding_withdrawn(
    tx: &mut PgConnection,
    withdrawn: &pb::FindingWithdrawn,
) -> Result<(), TrackerError> {
    sqlx::query("DELETE FROM inspection_findings WHERE finding_id = $1")
        .bind(&withdrawn.finding_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Drops the follow-up statements an inspection's corrected document (its
/// version `version`) re-recorded: those of older versions.
pub async fn forget_replaced(
    tx: &mut PgConnection,
    inspection_id: &str,
    version: u64,
) -> Result<u64, TrackerError> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    Ok(
        sqlx::query("DELETE FROM follow_ups WHERE inspection_id = $1 AND inspection_version < $2")
            .bind(inspection_id)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
    )
}

/// Keeps a follow-up statement, recorded under the inspection's version
/// `inspection_version` (the envelope's aggregate version).
pub async fn follow_up_recorded(
    tx: &mut PgConnection,
    follow_up: &pb::FollowUpRecorded,
    inspection_version: u64,
) -> Result<(), TrackerError> {
    if follow_up.follow_up_id.is_empty() {
        return Err(TrackerError::invalid("follow_up_id", "is empty"));
    }
    remember_inspection(
        tx,
        &follow_up.inspection_id,
        &follow_up.organisation_id,
        "",
        "",
    )
    .await?;
    sqlx::query(
        "INSERT INTO follow_ups (follow_up_id, inspection_id, organisation_id, \
         referenced_period, referenced_report, text, outcome, pillar, question, line_start, \
         line_end, referenced_kind, scope, stated_count, quoted_item, inspection_version) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) \
         ON CONFLICT (follow_up_id) DO NOTHING",
    )
    .bind(&follow_up.follow_up_id)
    .bind(&follow_up.inspection_id)
    .bind(&follow_up.organisation_id)
    .bind(&follow_up.referenced_period)
    .bind(&follow_up.referenced_report)
    .bind(&follow_up.text)
    .bind(i16::try_from(follow_up.outcome).unwrap_or(0))
    .bind(&follow_up.pillar)
    .bind(&follow_up.question)
    .bind(line(follow_up.line_start))
    .bind(line(follow_up.line_end))
    .bind(i16::try_from(follow_up.referenced_kind).unwrap_or(0))
    .bind(i16::try_from(follow_up.scope).unwrap_or(0))
    .bind(i32::try_from(follow_up.stated_count).unwrap_or(0))
    .bind(&follow_up.quoted_item)
    .bind(i64::try_from(inspection_version).unwrap_or(0))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn line(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(0)
}

fn unline(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// An inspection as stored.
#[derive(Debug, Clone, FromRow)]
pub struct InspectionRow {
    pub id: String,
    pub organisation_id: String,
    pub programme: String,
    pub period: String,
    pub title: String,
    pub published: String,
    pub inspected_questions: Vec<String>,
    /// Whether InspectionPublished has arrived.
    pub announced: bool,
}

/// One inspection, if known.
pub async fn inspection(
    tx: &mut PgConnection,
    id: &str,
) -> Result<Option<InspectionRow>, TrackerError> {
    Ok(sqlx::query_as(
        "SELECT id, organisation_id, programme, period, title, published, inspected_questions, \
         announced FROM inspections WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

#[derive(FromRow)]
struct FollowUpRow {
    follow_up_id: String,
    referenced_period: String,
    referenced_report: String,
    text: String,
    outcome: i16,
    pillar: String,
    question: String,
    line_start: i32,
    line_end: i32,
    referenced_kind: i16,
    scope: i16,
    stated_count: i32,
    quoted_item: String,
}

#[derive(FromRow)]
struct FindingRow {
    finding_id: String,
    kind: i16,
    pillar: String,
    question: String,
    text: String,
    line_start: i32,
    line_end: i32,
}

/// The matcher's view of a later inspection: its stored follow-ups and
/// findings (in report order) and the questions it judged. The report's
/// full text is not kept by the tracker: quotes come from the follow-up
/// statements and findings, with their line spans.
pub async fn later_inspection(
    tx: &mut PgConnection,
    inspection: &InspectionRow,
) -> Result<rec::LaterInspection, TrackerError> {
    let organisation: Option<String> =
        sqlx::query_scalar("SELECT name FROM organisations WHERE id = $1")
            .bind(&inspection.organisation_id)
            .fetch_optional(&mut *tx)
            .await?;
    let follow_ups: Vec<FollowUpRow> = sqlx::query_as(
        "SELECT follow_up_id, referenced_period, referenced_report, text, outcome, pillar, \
         question, line_start, line_end, referenced_kind, scope, stated_count, quoted_item \
         FROM follow_ups WHERE inspection_id = $1 \
           AND inspection_version = (SELECT max(inspection_version) FROM follow_ups \
                                     WHERE inspection_id = $1) \
         ORDER BY line_start, follow_up_id",
    )
    .bind(&inspection.id)
    .fetch_all(&mut *tx)
    .await?;
    let findings: Vec<FindingRow> = sqlx::query_as(
        "SELECT finding_id, kind, pillar, question, text, line_start, line_end \
         FROM inspection_findings WHERE inspection_id = $1 ORDER BY line_start, finding_id",
    )
    .bind(&inspection.id)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rec::LaterInspection {
        organisation: organisation.unwrap_or_default(),
        period: inspection.period.clone(),
        published: inspection.published.clone(),
        inspected_questions: inspection.inspected_questions.clone(),
        follow_ups: follow_ups
            .into_iter()
            .map(|f| rec::FollowUp {
                id: f.follow_up_id,
                referenced_period: f.referenced_period,
                referenced_report: f.referenced_report,
                text: f.text,
                outcome: follow_up_outcome(f.outcome),
                pillar: f.pillar,
                question: f.question,
                line_start: unline(f.line_start),
                line_end: unline(f.line_end),
                referenced_kind: match item_kind(f.referenced_kind) {
                    rec::ItemKind::Other => None,
                    kind => Some(kind),
                },
                scope: follow_up_scope(f.scope),
                stated_count: u32::try_from(f.stated_count).unwrap_or(0),
                quoted_item: f.quoted_item,
            })
            .collect(),
        findings: findings
            .into_iter()
            .map(|f| rec::NewFinding {
                id: f.finding_id,
                kind: item_kind(f.kind),
                pillar: f.pillar,
                question: f.question,
                text: f.text,
                line_start: unline(f.line_start),
                line_end: unline(f.line_end),
            })
            .collect(),
        source_text: String::new(),
    })
}

#[derive(FromRow)]
struct OpenItemRow {
    id: Uuid,
    kind: i16,
    pillar: String,
    question: String,
    text: String,
    programme: Option<String>,
    period: Option<String>,
    title: Option<String>,
    parent_item_id: Option<Uuid>,
    organisation_id: String,
}

/// An organisation and every organisation it succeeded, directly or not
/// (a merger of mergers), itself first; cycles and depth are bounded.
pub async fn with_predecessors(
    tx: &mut PgConnection,
    organisation_id: &str,
) -> Result<Vec<String>, TrackerError> {
    Ok(sqlx::query_scalar(
        "WITH RECURSIVE lineage(id, depth) AS ( \
             SELECT $1::text, 0 \
             UNION \
             SELECT s.predecessor_id, l.depth + 1 FROM successions s \
             JOIN lineage l ON s.successor_id = l.id WHERE l.depth < 16) \
         SELECT id FROM lineage GROUP BY id ORDER BY min(depth), id",
    )
    .bind(organisation_id)
    .fetch_all(&mut *tx)
    .await?)
}

/// The open items (not closed or superseded) of the organisation and of
/// every organisation it succeeded, from inspections other than `later` and
/// not published in a later month (publication dates are "YYYY-MM" or
/// "YYYY-MM-DD"), oldest first, as the matcher sees them; with the
/// organisation each belongs to. A recommendation's cause of concern is the
/// one its finding names, else the only cause of concern of its inspection
/// (a letter written without bullets does not link them).
pub async fn open_items_before(
    tx: &mut PgConnection,
    later: &InspectionRow,
) -> Result<Vec<(rec::OpenItem, String)>, TrackerError> {
    let organisations = with_predecessors(tx, &later.organisation_id).await?;
    let rows: Vec<OpenItemRow> = sqlx::query_as(
        "SELECT i.id, i.kind, i.pillar, i.question, i.text, \
                s.programme, s.period, s.title, i.organisation_id, \
                coalesce(p.id, CASE WHEN i.kind = $5 THEN \
                    (SELECT (array_agg(c.id))[1] FROM items c \
                     WHERE c.inspection_id = i.inspection_id \
                       AND c.organisation_id = i.organisation_id AND c.kind = $6 \
                     HAVING count(*) = 1) END) AS parent_item_id \
         FROM items i LEFT JOIN inspections s ON s.id = i.inspection_id \
         LEFT JOIN inspection_findings f ON f.finding_id = i.finding_id \
         LEFT JOIN items p ON f.parent_finding_id <> '' AND p.finding_id = f.parent_finding_id \
                          AND p.organisation_id = i.organisation_id \
         WHERE i.organisation_id = ANY($1) AND i.status = ANY($2) AND i.inspection_id <> $3 \
           AND NOT (coalesce(s.published, '') <> '' AND $4 <> '' \
                    AND left(s.published, 7) > left($4, 7)) \
         ORDER BY i.opened_at, i.id",
    )
    .bind(&organisations)
    .bind(crate::store::open_statuses())
    .bind(&later.id)
    .bind(&later.published)
    .bind(pb::FindingKind::Recommendation as i16)
    .bind(pb::FindingKind::CauseOfConcern as i16)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let kind = item_kind(r.kind);
            let programme = r.programme.unwrap_or_default();
            let title = r.title.unwrap_or_default();
            let item = rec::OpenItem {
                id: r.id.to_string(),
                kind,
                inspection_report: report_type(&programme, &title, &r.pillar),
                pillar: r.pillar,
                question: r.question,
                text: r.text,
                inspection_period: r.period.unwrap_or_default(),
                addressed_to_all: kind == rec::ItemKind::NationalRecommendation,
                parent_id: r.parent_item_id.map(|p| p.to_string()).unwrap_or_default(),
            };
            (item, r.organisation_id)
        })
        .collect())
}

/// The kind of report an item comes from, as follow-up statements name it
/// ("In our 2017 effectiveness report"): a crime data integrity report by
/// its title; a PEEL item by its pillar; otherwise the one PEEL pillar the
/// title names; "" when unknown (an integrated inspection without pillar).
pub fn report_type(programme: &str, title: &str, pillar: &str) -> String {
    let title = title.to_lowercase();
    if title.contains("crime data integrity") {
        return "crime data integrity".into();
    }
    let pillars = ["effectiveness", "efficiency", "legitimacy"];
    let is_peel = programme.eq_ignore_ascii_case("peel") || title.contains("peel");
    let pillar = pillar.trim().to_lowercase();
    if pillars.contains(&pillar.as_str()) && (is_peel || programme.is_empty()) {
        return pillar;
    }
    let named: Vec<&str> = pillars.into_iter().filter(|p| title.contains(p)).collect();
    match named.as_slice() {
        [one] => (*one).to_string(),
        _ => String::new(),
    }
}

/// A stored finding kind in the matcher's terms.
pub fn item_kind(kind: i16) -> rec::ItemKind {
    match pb::FindingKind::try_from(i32::from(kind)) {
        Ok(pb::FindingKind::AreaForImprovement) => rec::ItemKind::AreaForImprovement,
        Ok(pb::FindingKind::CauseOfConcern) => rec::ItemKind::CauseOfConcern,
        Ok(pb::FindingKind::Recommendation) => rec::ItemKind::Recommendation,
        Ok(pb::FindingKind::NationalRecommendation) => rec::ItemKind::NationalRecommendation,
        Ok(pb::FindingKind::NoteworthyPractice) => rec::ItemKind::NoteworthyPractice,
        Ok(pb::FindingKind::Unspecified) | Err(_) => rec::ItemKind::Other,
    }
}

fn follow_up_scope(scope: i16) -> rec::FollowUpScope {
    match pb::FollowUpScope::try_from(i32::from(scope)) {
        Ok(pb::FollowUpScope::AllOfKind) => rec::FollowUpScope::AllOfKind,
        Ok(pb::FollowUpScope::Summary) => rec::FollowUpScope::Summary,
        _ => rec::FollowUpScope::Item,
    }
}

fn follow_up_outcome(outcome: i16) -> rec::FollowUpOutcome {
    match pb::FollowUpOutcome::try_from(i32::from(outcome)) {
        Ok(pb::FollowUpOutcome::Addressed) => rec::FollowUpOutcome::Addressed,
        Ok(pb::FollowUpOutcome::PartiallyAddressed) => rec::FollowUpOutcome::PartiallyAddressed,
        Ok(pb::FollowUpOutcome::NotAddressed) => rec::FollowUpOutcome::NotAddressed,
        _ => rec::FollowUpOutcome::Unclear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_types_come_from_pillar_or_title() {
        assert_eq!(report_type("PEEL", "", "Effectiveness"), "effectiveness");
        assert_eq!(
            report_type("", "PEEL: Police efficiency 2017", ""),
            "efficiency"
        );
        assert_eq!(
            report_type("", "Crime Data Integrity inspection 2017", ""),
            "crime data integrity"
        );
        assert_eq!(
            report_type(
                "PEEL",
                "Police effectiveness, efficiency and legitimacy 2018/19",
                ""
            ),
            ""
        );
        assert_eq!(
            report_type("Fire and rescue", "Effectiveness", "Legitimacy"),
            "effectiveness"
        );
    }

    #[test]
    fn kinds_map_to_the_matcher() {
        assert_eq!(
            item_kind(pb::FindingKind::NationalRecommendation as i16),
            rec::ItemKind::NationalRecommendation
        );
        assert_eq!(item_kind(99), rec::ItemKind::Other);
        assert_eq!(
            follow_up_outcome(pb::FollowUpOutcome::PartiallyAddressed as i16),
            rec::FollowUpOutcome::PartiallyAddressed
        );
    }
}
