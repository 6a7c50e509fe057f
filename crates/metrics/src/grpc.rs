//! The MetricsService gRPC surface: checks each request, builds the
//! snapshot the question needs (the live read models, or the history folded
//! up to the end of the as-of day) and hands it to [`crate::queries`].

use crate::error::MetricsError;
use crate::model::Snapshot;
use crate::queries;
use crate::store::{self, Scope};
use chrono::{NaiveDate, Utc};
use closeout_proto::{self as pb, metrics_service_server::MetricsService};
use closeout_service::error::Violations;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

/// The gRPC service; cheap to clone. Reading needs no particular role.
#[derive(Clone)]
pub struct MetricsApi {
    pool: PgPool,
}

impl MetricsApi {
    pub fn new(pool: PgPool) -> Self {
        MetricsApi { pool }
    }

    /// The snapshot a query reads and the day it answers for: the live read
    /// models and today (UTC) without `as_of`, else the history up to the
    /// end of that day.
    async fn snapshot(
        &self,
        as_of: Option<NaiveDate>,
        scope: Scope<'_>,
    ) -> Result<(Snapshot, NaiveDate), MetricsError> {
        match as_of {
            None => Ok((
                store::load_live(&self.pool, scope).await?,
                Utc::now().date_naive(),
            )),
            Some(day) => {
                let end = end_of_day(day);
                Ok((
                    store::load_history(&self.pool, end, scope.organisation).await?,
                    day,
                ))
            }
        }
    }

    /// Validates an organisation id and an as-of date (reporting both at
    /// once), then loads the snapshot: of that organisation's items and
    /// content, or of everyone's when `everyone` (peer comparison).
    async fn organisation_snapshot(
        &self,
        organisation_id: &str,
        as_of: Option<&pb::CalendarDate>,
        everyone: bool,
    ) -> Result<(Snapshot, NaiveDate), MetricsError> {
        let mut v = Violations::default();
        check_organisation(&mut v, organisation_id);
        let as_of = check_as_of(&mut v, "as_of", as_of);
        v.into_result().map_err(MetricsError::from)?;
        let scope = if everyone {
            Scope::default()
        } else {
            Scope {
                organisation: Some(organisation_id),
                content: true,
            }
        };
        self.snapshot(as_of, scope).await
    }
}

/// The first instant after `day` (UTC).
pub fn end_of_day(day: NaiveDate) -> chrono::DateTime<Utc> {
    day.succ_opt()
        .unwrap_or(day)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
}

/// Checks an optional as-of date.
fn check_as_of(
    v: &mut Violations,
    field: &str,
    date: Option<&pb::CalendarDate>,
) -> Option<NaiveDate> {
    let date = date?;
    let parsed = crate::model::calendar_date(date);
    if parsed.is_none() {
        v.add(
            field,
            format!(
                "{:04}-{:02}-{:02} is not a calendar date",
                date.year, date.month, date.day
            ),
        );
    }
    parsed
}

/// Checks a required organisation id.
fn check_organisation(v: &mut Violations, id: &str) {
    if id.trim().is_empty() {
        v.add("organisation_id", "is required");
    } else if id.len() > 100 {
        v.add("organisation_id", "must be at most 100 characters");
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Reply<pb::GetScorecardResponse> {
        let r = request.into_inner();
        let (snapshot, day) = self
            .organisation_snapshot(&r.organisation_id, r.as_of.as_ref(), false)
            .await?;
        let scorecard =
            queries::scorecard(&snapshot, &r.organisation_id, day).map_err(MetricsError::from)?;
        Ok(Response::new(pb::GetScorecardResponse {
            scorecard: Some(scorecard),
        }))
    }

    async fn get_closure_stats(
        &self,
        request: Request<pb::GetClosureStatsRequest>,
    ) -> Reply<pb::GetClosureStatsResponse> {
        let r = request.into_inner();
        let mut v = Violations::default();
        if r.organisation_id.len() > 100 {
            v.add("organisation_id", "must be at most 100 characters");
        }
        let as_of = check_as_of(&mut v, "as_of", r.as_of.as_ref());
        v.into_result().map_err(MetricsError::from)?;
        let scope = Scope {
            organisation: Some(r.organisation_id.as_str()).filter(|o| !o.is_empty()),
            content: false,
        };
        let (snapshot, _) = self.snapshot(as_of, scope).await?;
        Ok(Response::new(pb::GetClosureStatsResponse {
            inspections: queries::closure_stats(&snapshot, &r.organisation_id, &r.programme),
        }))
    }

    async fn get_peer_comparison(
        &self,
        request: Request<pb::GetPeerComparisonRequest>,
    ) -> Reply<pb::GetPeerComparisonResponse> {
        let r = request.into_inner();
        let (snapshot, _) = self
            .organisation_snapshot(&r.organisation_id, r.as_of.as_ref(), true)
            .await?;
        let response =
            queries::peer_comparison(&snapshot, &r.organisation_id).map_err(MetricsError::from)?;
        Ok(Response::new(response))
    }

    async fn get_grade_history(
        &self,
        request: Request<pb::GetGradeHistoryRequest>,
    ) -> Reply<pb::GetGradeHistoryResponse> {
        let r = request.into_inner();
        let (snapshot, _) = self
            .organisation_snapshot(&r.organisation_id, r.as_of.as_ref(), false)
            .await?;
        let points =
            queries::grade_history(&snapshot, &r.organisation_id).map_err(MetricsError::from)?;
        Ok(Response::new(pb::GetGradeHistoryResponse { points }))
    }

    async fn get_indicator_series(
        &self,
        request: Request<pb::GetIndicatorSeriesRequest>,
    ) -> Reply<pb::GetIndicatorSeriesResponse> {
        let r = request.into_inner();
        let (snapshot, _) = self
            .organisation_snapshot(&r.organisation_id, r.as_of.as_ref(), false)
            .await?;
        let points = queries::indicator_series(&snapshot, &r.organisation_id, &r.measure)
            .map_err(MetricsError::from)?;
        Ok(Response::new(pb::GetIndicatorSeriesResponse { points }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_day_is_the_next_midnight() {
        let day = NaiveDate::from_ymd_opt(2020, 2, 29).unwrap_or_default();
        assert_eq!(end_of_day(day).to_rfc3339(), "2020-03-01T00:00:00+00:00");
    }

    #[test]
    fn impossible_dates_and_missing_organisations_are_named() {
        let mut v = Violations::default();
        check_organisation(&mut v, " ");
        let bad = pb::CalendarDate::new(2020, 2, 30);
        assert_eq!(check_as_of(&mut v, "as_of", Some(&bad)), None);
        let err = v.into_result().expect_err("two violations");
        let text = err.to_string();
        assert!(
            text.contains("organisation_id") && text.contains("as_of"),
            "{text}"
        );
    }
}
