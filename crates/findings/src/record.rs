//! Record calls: entering organisations, inspections and findings by hand
//! (for reports the parser cannot read, or items raised outside a report).
//! Each validates every field first, then writes and announces in one
//! transaction.

use crate::error::FindingsError;
use crate::events::EventBatch;
use crate::import::due_date_of;
use crate::store::{self, calendar_date, parse_id};
use closeout_proto::{self as pb, event_envelope::Payload};
use closeout_service::error::Violations;
use sqlx::PgPool;
use uuid::Uuid;

const MAX_TEXT: usize = 20_000;
const MAX_NAME: usize = 300;

fn check_text(v: &mut Violations, field: &str, value: &str, required: bool, max: usize) {
    if required && value.trim().is_empty() {
        v.add(field, "is required");
    } else if let Err(problem) = closeout_domain::text::check_text(value, max) {
        v.add(field, problem.to_string());
    }
}

/// Checks a "YYYY-MM" or "YYYY-MM-DD" publication date.
fn check_published(v: &mut Violations, field: &str, value: &str) {
    if closeout_domain::PublishedDate::parse(value).is_err() {
        v.add(
            field,
            format!("{value:?} is not a date (YYYY-MM or YYYY-MM-DD)"),
        );
    }
}

pub async fn record_organisation(
    pool: &PgPool,
    request: pb::RecordOrganisationRequest,
    mut batch: EventBatch,
) -> Result<pb::RecordOrganisationResponse, FindingsError> {
    let organisation = request.organisation.unwrap_or_default();
    let mut v = Violations::default();
    if closeout_domain::OrganisationId::parse(&organisation.id).is_err() {
        v.add(
            "organisation.id",
            format!(
                "{:?} is not an organisation id (1-64 lowercase letters, digits and hyphens)",
                organisation.id
            ),
        );
    }
    check_text(
        &mut v,
        "organisation.name",
        &organisation.name,
        true,
        MAX_NAME,
    );
    if !matches!(
        pb::OrganisationKind::try_from(organisation.kind),
        Ok(pb::OrganisationKind::PoliceForce | pb::OrganisationKind::FireAndRescueService)
    ) {
        v.add(
            "organisation.kind",
            "must be ORGANISATION_KIND_POLICE_FORCE or ORGANISATION_KIND_FIRE_AND_RESCUE_SERVICE",
        );
    }
    for (i, peer) in organisation.most_similar_group.iter().enumerate() {
        if closeout_domain::OrganisationId::parse(peer).is_err() {
            v.add(
                format!("organisation.most_similar_group[{i}]"),
                format!("{peer:?} is not an organisation id"),
            );
        }
    }
    v.into_result()?;
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO organisations (id, name, kind, most_similar_group) VALUES ($1,$2,$3,$4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&organisation.id)
    .bind(&organisation.name)
    .bind(organisation.kind as i16)
    .bind(&organisation.most_similar_group)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        let existing = store::get_organisation(pool, &organisation.id).await?;
        tx.rollback().await?;
        if existing.name == organisation.name && existing.kind == organisation.kind {
            return Ok(pb::RecordOrganisationResponse {
                organisation: Some(existing),
                created: false,
            });
        }
        let words = crate::successions::kind_words;
        return Err(FindingsError::AlreadyExists(format!(
            "organisation {} exists already as {:?} ({}); not recorded as {:?} ({})",
            organisation.id,
            existing.name,
            words(existing.kind),
            organisation.name,
            words(organisation.kind)
        )));
    }
    batch.push(
        &organisation.id,
        "organisation",
        organisation.id.clone(),
        1,
        Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(organisation.clone()),
        }),
    );
    batch.append(&mut tx).await?;
    tx.commit().await?;
    Ok(pb::RecordOrganisationResponse {
        organisation: Some(organisation),
        created: true,
    })
}

pub async fn record_inspection(
    pool: &PgPool,
    request: pb::RecordInspectionRequest,
    mut batch: EventBatch,
) -> Result<pb::RecordInspectionResponse, FindingsError> {
    let mut v = Violations::default();
    store::check_organisation_filter("organisation_id", &request.organisation_id)?;
    if request.organisation_id.is_empty() {
        v.add("organisation_id", "is required");
    }
    check_text(&mut v, "programme", &request.programme, true, 50);
    check_text(&mut v, "period", &request.period, true, 20);
    check_text(&mut v, "title", &request.title, false, MAX_NAME);
    check_published(&mut v, "published", &request.published);
    v.into_result()?;
    store::get_organisation(pool, &request.organisation_id).await?;
    let mut tx = pool.begin().await?;
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO inspections (id, organisation_id, programme, period, title, published) \
         VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (organisation_id, programme, period, title) DO NOTHING",
    )
    .bind(id)
    .bind(&request.organisation_id)
    .bind(&request.programme)
    .bind(&request.period)
    .bind(&request.title)
    .bind(&request.published)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Err(FindingsError::AlreadyExists(format!(
            "inspection {} {} {:?} of {} exists already",
            request.programme, request.period, request.title, request.organisation_id
        )));
    }
    batch.push(
        &request.organisation_id,
        "inspection",
        id.to_string(),
        1,
        Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: id.to_string(),
            organisation_id: request.organisation_id.clone(),
            programme: request.programme.clone(),
            period: request.period.clone(),
            title: request.title.clone(),
            published: request.published.clone(),
            ..Default::default()
        }),
    );
    batch.append(&mut tx).await?;
    tx.commit().await?;
    Ok(pb::RecordInspectionResponse {
        inspection: Some(store::get_inspection(pool, id).await?),
    })
}

pub async fn record_finding(
    pool: &PgPool,
    request: pb::RecordFindingRequest,
    mut batch: EventBatch,
) -> Result<pb::RecordFindingResponse, FindingsError> {
    let mut v = Violations::default();
    let inspection_id = parse_id("inspection_id", &request.inspection_id);
    if let Err(FindingsError::Invalid(violations)) = &inspection_id {
        for x in violations {
            v.add(x.field.clone(), x.description.clone());
        }
    }
    let kind = pb::FindingKind::try_from(request.kind).unwrap_or(pb::FindingKind::Unspecified);
    if kind == pb::FindingKind::Unspecified {
        v.add("kind", "must name a finding kind");
    }
    check_text(&mut v, "text", &request.text, true, MAX_TEXT);
    check_text(&mut v, "pillar", &request.pillar, false, MAX_NAME);
    check_text(&mut v, "question", &request.question, false, MAX_NAME);
    check_text(&mut v, "deadline", &request.deadline, false, MAX_NAME);
    if request.addressed_to_all && kind != pb::FindingKind::NationalRecommendation {
        v.add(
            "addressed_to_all",
            "only a national recommendation is addressed to all organisations",
        );
    }
    let parent = store::parse_optional_id("parent_finding_id", &request.parent_finding_id);
    if let Err(FindingsError::Invalid(violations)) = &parent {
        for x in violations {
            v.add(x.field.clone(), x.description.clone());
        }
    }
    if !request.parent_finding_id.is_empty() && kind != pb::FindingKind::Recommendation {
        v.add(
            "parent_finding_id",
            "only a recommendation has a cause of concern",
        );
    }
    v.into_result()?;
    let inspection_id = inspection_id?;
    let parent = parent?;
    let inspection = store::get_inspection(pool, inspection_id).await?;
    let due = due_date_of(&request.deadline, &inspection.published);
    if !request.deadline.trim().is_empty() && due.is_none() {
        return Err(FindingsError::invalid(
            "deadline",
            format!(
                "{:?} is not a deadline clause Closeout understands (e.g. \"immediately\", \"within six months\", \"by 31 March 2020\")",
                request.deadline
            ),
        ));
    }
    if let Some(parent_id) = parent {
        let parent_finding = store::get::<store::FindingRow>(pool, parent_id).await?;
        if parent_finding.inspection_id != inspection.id
            || parent_finding.kind != pb::FindingKind::CauseOfConcern as i32
        {
            return Err(FindingsError::invalid(
                "parent_finding_id",
                "must be a cause of concern of the same inspection",
            ));
        }
    }
    let mut tx = pool.begin().await?;
    let ordinal: i32 = sqlx::query_scalar(
        "SELECT COALESCE(max(ordinal) + 1, 0) FROM findings WHERE inspection_id = $1",
    )
    .bind(inspection_id)
    .fetch_one(&mut *tx)
    .await?;
    let id = Uuid::now_v7();
    let addressed_to_all = kind == pb::FindingKind::NationalRecommendation;
    sqlx::query(
        "INSERT INTO findings (id, inspection_id, organisation_id, ordinal, kind, pillar, question, \
         text, deadline, due_date, parent_finding_id, addressed_to_all) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
    )
    .bind(id)
    .bind(inspection_id)
    .bind(&inspection.organisation_id)
    .bind(ordinal)
    .bind(kind as i16)
    .bind(&request.pillar)
    .bind(&request.question)
    .bind(&request.text)
    .bind(&request.deadline)
    .bind(due)
    .bind(parent)
    .bind(addressed_to_all)
    .execute(&mut *tx)
    .await?;
    batch.push(
        &inspection.organisation_id,
        "finding",
        id.to_string(),
        1,
        Payload::FindingRecorded(pb::FindingRecorded {
            finding_id: id.to_string(),
            inspection_id: inspection.id.clone(),
            organisation_id: inspection.organisation_id.clone(),
            kind: kind as i32,
            pillar: request.pillar.clone(),
            question: request.question.clone(),
            text: request.text.clone(),
            deadline: request.deadline.clone(),
            due_date: due.map(calendar_date),
            parent_finding_id: parent.map(|p| p.to_string()).unwrap_or_default(),
            addressed_to_all,
            line_start: 0,
            line_end: 0,
            period: inspection.period.clone(),
            published: inspection.published.clone(),
        }),
    );
    batch.append(&mut tx).await?;
    tx.commit().await?;
    Ok(pb::RecordFindingResponse {
        finding: Some(store::get::<store::FindingRow>(pool, id).await?),
    })
}
