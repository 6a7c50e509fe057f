//! The MetricsService gRPC surface: checks each request (every argument
//! before anything is read), builds the snapshot the question needs (the
//! live read models, or the history folded as of the end of the as-of day,
//! dated by the documents and the recorded actions) and hands it to
//! [`crate::queries`]. The three list-like answers are paged as every List
//! call is (`closeout_service::paging`).

use crate::error::MetricsError;
use crate::model::Snapshot;
use crate::queries;
use crate::store::{self, Scope};
use crate::tally::{self, Tallies};
use chrono::{NaiveDate, Utc};
use closeout_domain::text::{MAX_ID, MAX_SHORT_TEXT, check_line};
use closeout_proto::{self as pb, metrics_service_server::MetricsService};
use closeout_service::connections::Connections;
use closeout_service::error::Violations;
use closeout_service::paging::{MAX_PAGE_TOKEN, Page};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

/// The gRPC service; cheap to clone. Reading needs no particular role.
#[derive(Clone)]
pub struct MetricsApi {
    pool: PgPool,
    /// The live answers' connections, handed back without the pool's
    /// release ping (`closeout_service::connections`); the as-of answers
    /// keep the pool.
    connections: Connections,
}

impl MetricsApi {
    pub fn new(pool: PgPool) -> Self {
        let connections = Connections::beside(&pool);
        MetricsApi { pool, connections }
    }

    /// The snapshot a query reads and the day it answers for: the live read
    /// models and today (UTC) without `as_of` (reports published after today
    /// not yet counted), else the history as of the end of that day.
    async fn snapshot(
        &self,
        as_of: Option<NaiveDate>,
        scope: Scope<'_>,
    ) -> Result<(Snapshot, NaiveDate), MetricsError> {
        let (view, day) = self.view(as_of, scope, false).await?;
        Ok((view.snapshot, day))
    }

    /// [`Self::snapshot`] for the counted figures: live, the snapshot holds
    /// no items and the tallies stand for them (`tallies`); as of a day
    /// too, the tallies then summed from the dated deltas.
    async fn view(
        &self,
        as_of: Option<NaiveDate>,
        scope: Scope<'_>,
        tallies: bool,
    ) -> Result<(View, NaiveDate), MetricsError> {
        match as_of {
            None => {
                let today = Utc::now().date_naive();
                let scope = Scope {
                    items: false,
                    ..scope
                };
                let (snapshot, tallies) = if tallies {
                    // Inspections published after today are left out before
                    // the details of the undated ones are read.
                    let (snapshot, tallies) =
                        store::load_counted_until(&self.connections, scope, Some(today)).await?;
                    (snapshot, Some(tallies))
                } else {
                    let mut snapshot = store::load_live(&self.connections, scope).await?;
                    snapshot.inspections.retain(|_, i| {
                        crate::model::published_on(&i.meta.published).is_none_or(|d| d <= today)
                    });
                    (snapshot, None)
                };
                Ok((View { snapshot, tallies }, today))
            }
            // As of a day: the content dated by then and the tallies summed
            // from the dated deltas (crate::dated), not a fold of the history.
            Some(day) => {
                let (snapshot, summed) = crate::dated::load_as_of(&self.pool, scope, day).await?;
                let tallies = tallies.then_some(summed);
                Ok((View { snapshot, tallies }, day))
            }
        }
    }

    /// [`Self::snapshot`] of one organisation (or everyone), once the
    /// arguments are checked.
    async fn checked_snapshot(
        &self,
        organisation_id: &str,
        as_of: Option<NaiveDate>,
        everyone: bool,
    ) -> Result<(Snapshot, NaiveDate), MetricsError> {
        self.snapshot(as_of, scope_of(organisation_id, everyone))
            .await
    }
}

/// What a query reads: one organisation's content, or everyone.
fn scope_of(organisation_id: &str, everyone: bool) -> Scope<'_> {
    if everyone {
        Scope::default()
    } else {
        Scope {
            organisation: Some(organisation_id),
            content: true,
            items: true,
        }
    }
}

/// A snapshot and, for live questions, the tallies that stand for its
/// items.
struct View {
    snapshot: Snapshot,
    tallies: Option<Tallies>,
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

/// Longest measure or programme filter accepted.
const MAX_MEASURE: usize = MAX_SHORT_TEXT;

/// Checks a one-line request string by the domain's rules (length in
/// characters, no control, bidirectional or only-invisible characters).
fn check_field(v: &mut Violations, field: &str, value: &str, max: usize) {
    if let Err(problem) = check_line(value, max) {
        v.add(field, problem.to_string());
    }
}

/// Checks the organisation, the as-of date, a filter and the page
/// together, before anything is read.
fn check_paged(
    organisation_id: &str,
    as_of: Option<&pb::CalendarDate>,
    filter: Option<(&str, &str, usize)>,
    page_size: i32,
    page_token: &str,
) -> Result<(Option<NaiveDate>, Page), MetricsError> {
    let mut v = Violations::default();
    check_organisation(&mut v, organisation_id);
    let as_of = check_as_of(&mut v, "as_of", as_of);
    if let Some((field, value, max)) = filter {
        check_field(&mut v, field, value, max);
    }
    check_field(&mut v, "page_token", page_token, MAX_PAGE_TOKEN);
    v.into_result()?;
    Ok((as_of, Page::parse(page_size, page_token)?))
}

/// One page of a computed answer and the token of the next ("" at the end).
pub fn page_of<T>(all: Vec<T>, page: Page) -> (Vec<T>, String) {
    let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let take = usize::try_from(page.fetch()).unwrap_or(usize::MAX);
    let mut rows: Vec<T> = all.into_iter().skip(skip).take(take).collect();
    let next = page.finish(&mut rows);
    (rows, next)
}

/// Checks a required organisation id.
fn check_organisation(v: &mut Violations, id: &str) {
    if id.trim().is_empty() {
        v.add("organisation_id", "is required");
    } else {
        check_field(v, "organisation_id", id, MAX_ID);
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Metrics are aggregates of published findings: any verified caller reads
/// them (the rules table, `closeout_domain::authorisation`).
fn reader<T>(request: &Request<T>) -> Result<(), Status> {
    closeout_service::auth::authorise(
        request,
        closeout_domain::authorisation::Action::ReadMetrics,
    )?;
    Ok(())
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Reply<pb::GetScorecardResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        check_organisation(&mut v, &r.organisation_id);
        let as_of = check_as_of(&mut v, "as_of", r.as_of.as_ref());
        v.into_result().map_err(MetricsError::from)?;
        let (view, day) = match as_of {
            // Live: the organisation's summaries and its days-to-close
            // histogram in place of its closings.
            None => {
                let today = Utc::now().date_naive();
                let (snapshot, tallies) =
                    store::load_scorecard(&self.connections, &r.organisation_id, Some(today))
                        .await
                        .map_err(MetricsError::from)?;
                let tallies = Some(tallies);
                (View { snapshot, tallies }, today)
            }
            // As of a day: the checkpoint's days-to-close histogram of the
            // organisation in place of its closings there (crate::dated).
            Some(day) => {
                let (snapshot, tallies) =
                    crate::dated::load_scorecard_as_of(&self.pool, &r.organisation_id, day)
                        .await
                        .map_err(MetricsError::from)?;
                let tallies = Some(tallies);
                (View { snapshot, tallies }, day)
            }
        };
        let scorecard = match &view.tallies {
            Some(tallies) => tally::scorecard(&view.snapshot, tallies, &r.organisation_id, day),
            None => queries::scorecard(&view.snapshot, &r.organisation_id, day),
        }
        .map_err(MetricsError::from)?;
        Ok(Response::new(pb::GetScorecardResponse {
            scorecard: Some(scorecard),
        }))
    }

    async fn get_closure_stats(
        &self,
        request: Request<pb::GetClosureStatsRequest>,
    ) -> Reply<pb::GetClosureStatsResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        check_field(&mut v, "organisation_id", &r.organisation_id, MAX_ID);
        check_field(&mut v, "programme", &r.programme, MAX_MEASURE);
        check_field(&mut v, "page_token", &r.page_token, MAX_PAGE_TOKEN);
        let as_of = check_as_of(&mut v, "as_of", r.as_of.as_ref());
        v.into_result().map_err(MetricsError::from)?;
        let page = Page::parse(r.page_size, &r.page_token).map_err(MetricsError::from)?;
        let scope = Scope {
            organisation: Some(r.organisation_id.as_str()).filter(|o| !o.is_empty()),
            content: false,
            items: true,
        };
        let (view, _) = self.view(as_of, scope, true).await?;
        let all = match &view.tallies {
            Some(tallies) => {
                tally::closure_stats(&view.snapshot, tallies, &r.organisation_id, &r.programme)
            }
            None => queries::closure_stats(&view.snapshot, &r.organisation_id, &r.programme),
        };
        let (inspections, next_page_token) = page_of(all, page);
        Ok(Response::new(pb::GetClosureStatsResponse {
            inspections,
            next_page_token,
        }))
    }

    async fn get_peer_comparison(
        &self,
        request: Request<pb::GetPeerComparisonRequest>,
    ) -> Reply<pb::GetPeerComparisonResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let mut v = Violations::default();
        check_organisation(&mut v, &r.organisation_id);
        let as_of = check_as_of(&mut v, "as_of", r.as_of.as_ref());
        v.into_result().map_err(MetricsError::from)?;
        let (view, day) = match as_of {
            // Live: everyone's summaries, and their days to close as one
            // aggregate for this organisation's comparison.
            None => {
                let today = Utc::now().date_naive();
                let (snapshot, tallies) =
                    store::load_peers(&self.connections, &r.organisation_id, Some(today))
                        .await
                        .map_err(MetricsError::from)?;
                let tallies = Some(tallies);
                (View { snapshot, tallies }, today)
            }
            // As of a day: the checkpoint's histograms of the organisation,
            // its registered group and everyone (crate::dated).
            Some(day) => {
                let (snapshot, tallies) =
                    crate::dated::load_peers_as_of(&self.pool, &r.organisation_id, day)
                        .await
                        .map_err(MetricsError::from)?;
                let tallies = Some(tallies);
                (View { snapshot, tallies }, day)
            }
        };
        let response = match &view.tallies {
            Some(tallies) => {
                tally::peer_comparison(&view.snapshot, tallies, &r.organisation_id, day)
            }
            None => queries::peer_comparison(&view.snapshot, &r.organisation_id, day),
        }
        .map_err(MetricsError::from)?;
        Ok(Response::new(response))
    }

    async fn get_grade_history(
        &self,
        request: Request<pb::GetGradeHistoryRequest>,
    ) -> Reply<pb::GetGradeHistoryResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let (as_of, page) = check_paged(
            &r.organisation_id,
            r.as_of.as_ref(),
            None,
            r.page_size,
            &r.page_token,
        )?;
        let (snapshot, _) = self
            .checked_snapshot(&r.organisation_id, as_of, false)
            .await?;
        let all =
            queries::grade_history(&snapshot, &r.organisation_id).map_err(MetricsError::from)?;
        let (points, next_page_token) = page_of(all, page);
        Ok(Response::new(pb::GetGradeHistoryResponse {
            points,
            next_page_token,
        }))
    }

    async fn get_indicator_series(
        &self,
        request: Request<pb::GetIndicatorSeriesRequest>,
    ) -> Reply<pb::GetIndicatorSeriesResponse> {
        reader(&request)?;
        let r = request.into_inner();
        let (as_of, page) = check_paged(
            &r.organisation_id,
            r.as_of.as_ref(),
            Some(("measure", &r.measure, MAX_MEASURE)),
            r.page_size,
            &r.page_token,
        )?;
        let (snapshot, _) = self
            .checked_snapshot(&r.organisation_id, as_of, false)
            .await?;
        let all = queries::indicator_series(&snapshot, &r.organisation_id, &r.measure)
            .map_err(MetricsError::from)?;
        let (points, next_page_token) = page_of(all, page);
        Ok(Response::new(pb::GetIndicatorSeriesResponse {
            points,
            next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_a_computed_answer() {
        let all: Vec<u32> = (1..=5).collect();
        let first = Page::parse(2, "").expect("first page");
        let (rows, next) = page_of(all.clone(), first);
        assert_eq!((rows, next.as_str()), (vec![1, 2], "o2"));
        let last = Page::parse(2, "o4").expect("last page");
        assert_eq!(page_of(all.clone(), last), (vec![5], String::new()));
        let beyond = Page::parse(2, "o9").expect("beyond");
        assert_eq!(page_of(all, beyond), (vec![], String::new()));
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

    #[test]
    fn over_long_filters_are_refused_naming_the_field() {
        let long = "x".repeat(MAX_MEASURE + 1);
        let err = check_paged(
            "herts",
            None,
            Some(("measure", &long, MAX_MEASURE)),
            10,
            &"o1".repeat(MAX_PAGE_TOKEN),
        )
        .expect_err("too long");
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let text = status.message().to_string();
        assert!(
            text.contains("measure") && text.contains("page_token"),
            "{text}"
        );
        let mut v = Violations::default();
        check_organisation(&mut v, &"é".repeat(MAX_ID));
        assert!(v.into_result().is_ok(), "characters, not bytes");
        assert!(
            check_paged(
                "herts",
                None,
                Some(("measure", "Police officers", MAX_MEASURE)),
                10,
                "o5"
            )
            .is_ok()
        );
    }
}
