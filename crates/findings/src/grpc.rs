//! The FindingsService gRPC surface: each call checks the caller and its
//! fields, then hands over to `import`, `record` or `store`.

use crate::error::FindingsError;
use crate::events::EventBatch;
use crate::import::{self, ImportPolicy};
use crate::record;
use crate::store::{
    self, ChildFilter, FindingRow, FollowUpRow, IndicatorRow, JudgmentRow,
    check_organisation_filter, parse_id,
};
use crate::successions;
use closeout_domain::authorisation::Action;
use closeout_proto::{self as pb, findings_service_server::FindingsService};
use closeout_service::caller;
use closeout_service::paging::Page;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

/// The gRPC service; cheap to clone.
#[derive(Clone)]
pub struct FindingsApi {
    pool: PgPool,
    policy: ImportPolicy,
    /// Reports read at once (a read's working set is many times its
    /// size): `CLOSEOUT_MAX_CONCURRENT_PARSES`, default 2.
    parses: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Reports read at once unless configured.
pub const DEFAULT_MAX_CONCURRENT_PARSES: usize = 2;

impl FindingsApi {
    pub fn new(pool: PgPool, policy: ImportPolicy) -> Self {
        let parses = std::env::var("CLOSEOUT_MAX_CONCURRENT_PARSES")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_CONCURRENT_PARSES);
        FindingsApi {
            pool,
            policy,
            parses: std::sync::Arc::new(tokio::sync::Semaphore::new(parses)),
        }
    }

    /// Waits for a turn to read a report (bounded by the call deadline).
    async fn parse_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        self.parses
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the service is stopping"))
    }
}

/// The verified caller, if the rules table lets it take `action`
/// (only the inspectorate, or a service, publishes and records findings),
/// with the batch its events go in.
fn inspectorate<T>(request: &Request<T>, action: Action) -> Result<EventBatch, FindingsError> {
    closeout_service::auth::authorise(request, action)?;
    let actor = caller(request)?;
    let correlation_id = closeout_service::auth::request_id(request.metadata());
    Ok(EventBatch::new(actor, correlation_id))
}

/// Published findings are public record: any verified caller reads them.
fn reader<T>(request: &Request<T>) -> Result<(), Status> {
    closeout_service::auth::authorise(request, Action::ReadFindings)?;
    Ok(())
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl FindingsService for FindingsApi {
    async fn import_report(
        &self,
        request: Request<pb::ImportReportRequest>,
    ) -> Reply<pb::ImportReportResponse> {
        let batch = inspectorate(&request, Action::ImportReport)?;
        let request = request.into_inner();
        let policy = self.policy.clone();
        let turn = self.parse_turn().await?;
        // Reading a PDF or a large page is CPU work: off the async workers.
        let (request, read) = tokio::task::spawn_blocking(move || {
            let read = import::parse_request(&request, &policy);
            drop(turn);
            (request, read)
        })
        .await
        .map_err(|e| Status::internal(format!("reading the report failed: {e}")))?;
        let read = read?;
        let response = import::import(&self.pool, &request, &read, batch).await?;
        tracing::info!(
            media_type = %response.media_type,
            profile = %response.profile,
            inspection = %response.inspection_id,
            organisation = %response.organisation_id,
            created = response.created,
            replaced = response.replaced,
            findings = response.finding_count,
            "report imported"
        );
        Ok(Response::new(response))
    }

    async fn parse_report(
        &self,
        request: Request<pb::ParseReportRequest>,
    ) -> Reply<pb::ParseReportResponse> {
        closeout_service::auth::authorise(&request, Action::ParseReport)?;
        let request = request.into_inner();
        let policy = self.policy.clone();
        let turn = self.parse_turn().await?;
        let read = tokio::task::spawn_blocking(move || {
            let read = import::read_report(import::Document::of_parse(&request), &policy);
            drop(request);
            drop(turn);
            read
        })
        .await
        .map_err(|e| Status::internal(format!("reading the report failed: {e}")))??;
        Ok(Response::new(pb::ParseReportResponse {
            report: Some(read.report),
            media_type: read.media_type,
        }))
    }

    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Reply<pb::GetOrganisationResponse> {
        reader(&request)?;
        let id = request.into_inner().organisation_id;
        if id.is_empty() {
            return Err(FindingsError::invalid("organisation_id", "is required").into());
        }
        check_organisation_filter("organisation_id", &id)?;
        let organisation = store::get_organisation(&self.pool, &id).await?;
        Ok(Response::new(pb::GetOrganisationResponse {
            organisation: Some(organisation),
        }))
    }

    async fn list_organisations(
        &self,
        request: Request<pb::ListOrganisationsRequest>,
    ) -> Reply<pb::ListOrganisationsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let page = Page::parse(r.page_size, &r.page_token).map_err(FindingsError::from)?;
        if pb::OrganisationKind::try_from(r.kind).is_err() {
            return Err(FindingsError::invalid(
                "kind",
                format!("{} is not an organisation kind", r.kind),
            )
            .into());
        }
        let (organisations, next_page_token) =
            store::list_organisations(&self.pool, r.kind, page).await?;
        Ok(Response::new(pb::ListOrganisationsResponse {
            organisations,
            next_page_token,
        }))
    }

    async fn record_organisation(
        &self,
        request: Request<pb::RecordOrganisationRequest>,
    ) -> Reply<pb::RecordOrganisationResponse> {
        let batch = inspectorate(&request, Action::RecordFindings)?;
        Ok(Response::new(
            record::record_organisation(&self.pool, request.into_inner(), batch).await?,
        ))
    }

    async fn get_inspection(
        &self,
        request: Request<pb::GetInspectionRequest>,
    ) -> Reply<pb::GetInspectionResponse> {
        reader(&request)?;
        let id = parse_id("inspection_id", &request.into_inner().inspection_id)?;
        let inspection = store::get_inspection(&self.pool, id).await?;
        Ok(Response::new(pb::GetInspectionResponse {
            inspection: Some(inspection),
        }))
    }

    async fn list_inspections(
        &self,
        request: Request<pb::ListInspectionsRequest>,
    ) -> Reply<pb::ListInspectionsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let page = Page::parse(r.page_size, &r.page_token).map_err(FindingsError::from)?;
        check_organisation_filter("organisation_id", &r.organisation_id)?;
        let (inspections, next_page_token) =
            store::list_inspections(&self.pool, &r.organisation_id, &r.programme, page).await?;
        Ok(Response::new(pb::ListInspectionsResponse {
            inspections,
            next_page_token,
        }))
    }

    async fn record_inspection(
        &self,
        request: Request<pb::RecordInspectionRequest>,
    ) -> Reply<pb::RecordInspectionResponse> {
        let batch = inspectorate(&request, Action::RecordFindings)?;
        Ok(Response::new(
            record::record_inspection(&self.pool, request.into_inner(), batch).await?,
        ))
    }

    async fn get_judgment(
        &self,
        request: Request<pb::GetJudgmentRequest>,
    ) -> Reply<pb::GetJudgmentResponse> {
        reader(&request)?;
        let id = parse_id("judgment_id", &request.into_inner().judgment_id)?;
        let judgment = store::get::<JudgmentRow>(&self.pool, id).await?;
        Ok(Response::new(pb::GetJudgmentResponse {
            judgment: Some(judgment),
        }))
    }

    async fn list_judgments(
        &self,
        request: Request<pb::ListJudgmentsRequest>,
    ) -> Reply<pb::ListJudgmentsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let page = Page::parse(r.page_size, &r.page_token).map_err(FindingsError::from)?;
        let filter =
            ChildFilter::new(&r.organisation_id, &r.inspection_id)?.with_text("pillar", &r.pillar);
        let (judgments, next_page_token) =
            store::list::<JudgmentRow>(&self.pool, filter, page).await?;
        Ok(Response::new(pb::ListJudgmentsResponse {
            judgments,
            next_page_token,
        }))
    }

    async fn get_finding(
        &self,
        request: Request<pb::GetFindingRequest>,
    ) -> Reply<pb::GetFindingResponse> {
        reader(&request)?;
        let id = parse_id("finding_id", &request.into_inner().finding_id)?;
        let finding = store::get::<FindingRow>(&self.pool, id).await?;
        Ok(Response::new(pb::GetFindingResponse {
            finding: Some(finding),
        }))
    }

    async fn list_findings(
        &self,
        request: Request<pb::ListFindingsRequest>,
    ) -> Reply<pb::ListFindingsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let page = Page::parse(r.page_size, &r.page_token).map_err(FindingsError::from)?;
        let known = pb::FindingKind::try_from(r.kind).is_ok();
        let filter = ChildFilter::new(&r.organisation_id, &r.inspection_id)?
            .with_enum("kind", r.kind, known, "a finding kind")?
            .with_text("pillar", &r.pillar);
        let (findings, next_page_token) =
            store::list::<FindingRow>(&self.pool, filter, page).await?;
        Ok(Response::new(pb::ListFindingsResponse {
            findings,
            next_page_token,
        }))
    }

    async fn record_finding(
        &self,
        request: Request<pb::RecordFindingRequest>,
    ) -> Reply<pb::RecordFindingResponse> {
        let batch = inspectorate(&request, Action::RecordFindings)?;
        Ok(Response::new(
            record::record_finding(&self.pool, request.into_inner(), batch).await?,
        ))
    }

    async fn get_follow_up(
        &self,
        request: Request<pb::GetFollowUpRequest>,
    ) -> Reply<pb::GetFollowUpResponse> {
        reader(&request)?;
        let id = parse_id("follow_up_id", &request.into_inner().follow_up_id)?;
        let follow_up = store::get::<FollowUpRow>(&self.pool, id).await?;
        Ok(Response::new(pb::GetFollowUpResponse {
            follow_up: Some(follow_up),
        }))
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Reply<pb::ListFollowUpsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let page = Page::parse(r.page_size, &r.page_token).map_err(FindingsError::from)?;
        let known = pb::FollowUpOutcome::try_from(r.outcome).is_ok();
        let filter = ChildFilter::new(&r.organisation_id, &r.inspection_id)?.with_enum(
            "outcome",
            r.outcome,
            known,
            "a follow-up outcome",
        )?;
        let (follow_ups, next_page_token) =
            store::list::<FollowUpRow>(&self.pool, filter, page).await?;
        Ok(Response::new(pb::ListFollowUpsResponse {
            follow_ups,
            next_page_token,
        }))
    }

    async fn get_indicator(
        &self,
        request: Request<pb::GetIndicatorRequest>,
    ) -> Reply<pb::GetIndicatorResponse> {
        reader(&request)?;
        let id = parse_id("indicator_id", &request.into_inner().indicator_id)?;
        let indicator = store::get::<IndicatorRow>(&self.pool, id).await?;
        Ok(Response::new(pb::GetIndicatorResponse {
            indicator: Some(indicator),
        }))
    }

    async fn list_indicators(
        &self,
        request: Request<pb::ListIndicatorsRequest>,
    ) -> Reply<pb::ListIndicatorsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let page = Page::parse(r.page_size, &r.page_token).map_err(FindingsError::from)?;
        let filter = ChildFilter::new(&r.organisation_id, &r.inspection_id)?
            .with_text("measure", &r.measure);
        let (indicators, next_page_token) =
            store::list::<IndicatorRow>(&self.pool, filter, page).await?;
        Ok(Response::new(pb::ListIndicatorsResponse {
            indicators,
            next_page_token,
        }))
    }

    async fn record_succession(
        &self,
        request: Request<pb::RecordSuccessionRequest>,
    ) -> Reply<pb::RecordSuccessionResponse> {
        let batch = inspectorate(&request, Action::RecordSuccession)?;
        let recorded_by = batch.actor().subject.clone();
        let response =
            successions::record(&self.pool, request.into_inner(), batch, &recorded_by).await?;
        if let Some(s) = &response.succession {
            tracing::info!(
                predecessor = %s.predecessor_id,
                successor = %s.successor_id,
                created = response.created,
                "succession recorded"
            );
        }
        Ok(Response::new(response))
    }

    async fn list_successions(
        &self,
        request: Request<pb::ListSuccessionsRequest>,
    ) -> Reply<pb::ListSuccessionsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        Ok(Response::new(pb::ListSuccessionsResponse {
            successions: successions::list(&self.pool, &r.organisation_id).await?,
        }))
    }
}
