//! The pages: sign-in, overview, organisation, items, item, reconciliation
//! review and import. Each handler asks the services as the signed-in
//! person and renders HTML; a refusal is shown in the service's own words.
//! Which actions are offered follows the domain's authorisation table and
//! the item's lifecycle, but the tracker decides: a form posted anyway is
//! refused by it, and the refusal shown.

use crate::backend::{call, explain};
use crate::charts::{self, Bar, Paired, Point};
use crate::session::{self, Session};
use crate::view::{self, error_box, notice, page};
use crate::{AppState, Signed, Upload, optional_session};
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate};
use closeout_domain::authorisation::{Action, authorise};
use closeout_domain::lifecycle::{CommandKind, ItemStatus as DomainStatus};
use closeout_proto as pb;
use maud::{Markup, html};
use rand::RngCore;
use std::collections::{BTreeMap, HashMap};

type Params = HashMap<String, String>;

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn param<'a>(params: &'a Params, key: &str) -> &'a str {
    params.get(key).map(|s| s.trim()).unwrap_or("")
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn calendar(date: NaiveDate) -> pb::CalendarDate {
    pb::CalendarDate {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

/// The first day a report's publication ("YYYY-MM" or "YYYY-MM-DD") covers.
pub(crate) fn published_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok())
}

/// Dates a series over time is sampled at: the first day of each quarter
/// from `start`'s quarter up to `end`, yearly when that would be more than
/// 32 points, and `end` itself last.
pub(crate) fn series_dates(start: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
    if start >= end {
        return vec![end];
    }
    let quarter_start = |d: NaiveDate| {
        NaiveDate::from_ymd_opt(d.year(), ((d.month() - 1) / 3) * 3 + 1, 1).unwrap_or(d)
    };
    let months = (end.year() - start.year()) * 12 + end.month() as i32 - start.month() as i32;
    let step = if months / 3 > 32 { 12 } else { 3 };
    let mut dates = Vec::new();
    let mut d = if step == 12 {
        NaiveDate::from_ymd_opt(start.year(), 1, 1).unwrap_or(start)
    } else {
        quarter_start(start)
    };
    while d < end && dates.len() < 200 {
        dates.push(d);
        d = match d.checked_add_months(chrono::Months::new(step)) {
            Some(next) => next,
            None => break,
        };
    }
    dates.push(end);
    dates
}

fn domain_status(status: pb::ItemStatus) -> Option<DomainStatus> {
    Some(match status {
        pb::ItemStatus::Open => DomainStatus::Open,
        pb::ItemStatus::InProgress => DomainStatus::InProgress,
        pb::ItemStatus::AwaitingVerification => DomainStatus::AwaitingVerification,
        pb::ItemStatus::Closed => DomainStatus::Closed,
        pb::ItemStatus::Superseded => DomainStatus::Superseded,
        pb::ItemStatus::Unspecified => return None,
    })
}

/// The lifecycle commands `session` may take on `item` now.
pub(crate) fn offered_commands(session: &Session, item: &pb::TrackedItem) -> Vec<CommandKind> {
    let Some(status) = domain_status(item.status()) else {
        return Vec::new();
    };
    CommandKind::ALL
        .into_iter()
        .filter(|kind| {
            authorise(&session.identity, Action::Command(*kind))
                .map(|scope| scope.admits(&item.organisation_id))
                .unwrap_or(false)
                && kind.allowed_from().contains(&status)
        })
        .collect()
}

fn may(session: &Session, action: Action) -> bool {
    authorise(&session.identity, action).is_ok()
}

// ---------------------------------------------------------------- sign-in

pub(crate) async fn login_page(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Response {
    let next = safe_next(param(&params, "next"));
    let token = param(&params, "token");
    if !token.is_empty() {
        return sign_in(&state, token, &next);
    }
    login_form_page(&next, None, StatusCode::OK)
}

pub(crate) async fn login_form(
    State(state): State<AppState>,
    Form(params): Form<Params>,
) -> Response {
    let next = safe_next(param(&params, "next"));
    sign_in(&state, param(&params, "token"), &next)
}

/// Only a path on this site is followed after signing in.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".to_string()
    }
}

fn sign_in(state: &AppState, token: &str, next: &str) -> Response {
    match state.sessions.sign_in(&state.verifier, token) {
        Ok(id) => (
            StatusCode::SEE_OTHER,
            [
                (
                    header::SET_COOKIE,
                    session::set_cookie(&id, state.secure_cookies),
                ),
                (header::LOCATION, next.to_string()),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response(),
        Err(reason) => login_form_page(
            next,
            Some(&format!("That token was not accepted: {reason}")),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

fn login_form_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        @if let Some(error) = error { (error_box(error)) }
        p { "Paste the token you were given (" code { "closeout dev" } " prints one per role), or open the sign-in link." }
        form method="post" action="/login" class="stack" {
            input type="hidden" name="next" value=(next);
            label for="token" { "Token" }
            textarea id="token" name="token" rows="5" required autocomplete="off" spellcheck="false" {}
            button type="submit" { "Sign in" }
        }
    };
    html_response(status, page("Sign in", None, None, body))
}

pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::cookie_value)
    {
        state.sessions.sign_out(id);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                session::clear_cookie(state.secure_cookies),
            ),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}

// ---------------------------------------------------------------- data helpers

async fn organisations(state: &AppState, s: &Session) -> Result<Vec<pb::Organisation>, String> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..50 {
        let response = state
            .backend
            .findings()
            .list_organisations(call(
                s,
                pb::ListOrganisationsRequest {
                    kind: 0,
                    page_size: 500,
                    page_token: token.clone(),
                },
            ))
            .await
            .map_err(|e| explain(&e))?
            .into_inner();
        out.extend(response.organisations);
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    Ok(out)
}

async fn inspections(
    state: &AppState,
    s: &Session,
    organisation: &str,
) -> Result<Vec<pb::Inspection>, String> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..50 {
        let response = state
            .backend
            .findings()
            .list_inspections(call(
                s,
                pb::ListInspectionsRequest {
                    organisation_id: organisation.to_string(),
                    programme: String::new(),
                    page_size: 500,
                    page_token: token.clone(),
                },
            ))
            .await
            .map_err(|e| explain(&e))?
            .into_inner();
        out.extend(response.inspections);
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    Ok(out)
}

pub(crate) async fn all_items(
    state: &AppState,
    s: &Session,
    request: pb::ListItemsRequest,
) -> Result<Vec<pb::TrackedItem>, String> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..40 {
        let mut r = request.clone();
        r.page_size = 500;
        r.page_token = token.clone();
        let response = state
            .backend
            .tracker()
            .list_items(call(s, r))
            .await
            .map_err(|e| explain(&e))?
            .into_inner();
        out.extend(response.items);
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    Ok(out)
}

/// Open items over time: `organisation`'s own, or every organisation's
/// (`national`), asked of the metrics service as of each sampled day.
async fn open_series(
    state: &AppState,
    s: &Session,
    organisation: &str,
    national: bool,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<Point>, String> {
    let dates = series_dates(start, end);
    let calls = dates.iter().map(|d| {
        let mut metrics = state.backend.metrics();
        let request = call(
            s,
            pb::GetPeerComparisonRequest {
                organisation_id: organisation.to_string(),
                as_of: Some(calendar(*d)),
            },
        );
        async move { metrics.get_peer_comparison(request).await }
    });
    let answers = futures::future::join_all(calls).await;
    let mut points = Vec::new();
    for (d, answer) in dates.iter().zip(answers) {
        let answer = answer.map_err(|e| explain(&e))?.into_inner();
        let figures = if national {
            answer.all_organisations
        } else {
            answer.organisation
        };
        points.push(Point {
            label: d.to_string(),
            value: figures.map(|f| f.open_items as f64).unwrap_or(0.0),
        });
    }
    Ok(points)
}

fn earliest_publication(inspections: &[pb::Inspection]) -> Option<NaiveDate> {
    inspections
        .iter()
        .filter_map(|i| published_date(&i.published))
        .min()
}

struct Counts {
    open: u32,
    overdue: u32,
    closed: u32,
}

fn counts(card: &pb::Scorecard) -> Counts {
    let mut c = Counts {
        open: 0,
        overdue: card.overdue,
        closed: 0,
    };
    for s in &card.by_status {
        match s.status() {
            pb::ItemStatus::Open
            | pb::ItemStatus::InProgress
            | pb::ItemStatus::AwaitingVerification => c.open += s.count,
            pb::ItemStatus::Closed => c.closed += s.count,
            _ => {}
        }
    }
    c
}

/// Latest grades, one group per scale, never on one scale together.
fn grades_by_scale(grades: &[pb::QuestionGrade]) -> Markup {
    let mut by_scale: BTreeMap<i32, Vec<&pb::QuestionGrade>> = BTreeMap::new();
    for g in grades {
        by_scale.entry(g.scale).or_default().push(g);
    }
    html! {
        @if by_scale.is_empty() { span class="muted" { "No grades" } }
        @for (scale, grades) in &by_scale {
            @let scale = pb::GradeScale::try_from(*scale).unwrap_or(pb::GradeScale::Unspecified);
            div class="scale" {
                span class="scale-name" title=(view::scale_label(scale)) { (view::scale_short(scale)) ": " }
                @for g in grades {
                    span class=(format!("grade {}", view::grade_class(g.grade())))
                        title=(format!("{} — {} ({})", g.pillar, g.question, g.period)) {
                        (view::grade_label(g.grade()))
                    }
                    " "
                }
            }
        }
    }
}

// ---------------------------------------------------------------- overview

pub(crate) async fn overview(State(state): State<AppState>, signed: Signed) -> Response {
    let s = &signed.session;
    let orgs = match organisations(&state, s).await {
        Ok(orgs) => orgs,
        Err(e) => {
            return html_response(
                StatusCode::BAD_GATEWAY,
                page("Overview", Some(s), None, error_box(&e)),
            );
        }
    };
    let cards = futures::future::join_all(orgs.iter().map(|o| {
        let mut metrics = state.backend.metrics();
        let request = call(
            s,
            pb::GetScorecardRequest {
                organisation_id: o.id.clone(),
                as_of: None,
            },
        );
        async move { metrics.get_scorecard(request).await }
    }))
    .await;
    let all_inspections = inspections(&state, s, "").await.unwrap_or_default();
    let end = today();
    let start = earliest_publication(&all_inspections).unwrap_or(end);
    let series = match orgs.first() {
        Some(first) => open_series(&state, s, &first.id, true, start, end).await,
        None => Ok(Vec::new()),
    };
    let body = html! {
        section aria-labelledby="orgs-h" {
            h2 id="orgs-h" { "Organisations" }
            @if orgs.is_empty() { p { "No organisation yet: import a report." } }
            @else {
                table id="organisations" {
                    caption { "Tracked items and latest grades per organisation, as of " (end) }
                    thead { tr { th scope="col" { "Organisation" } th scope="col" class="num" { "Open" } th scope="col" class="num" { "Overdue" } th scope="col" class="num" { "Closed" } th scope="col" { "Latest grades" } } }
                    tbody {
                        @for (org, card) in orgs.iter().zip(&cards) {
                            tr data-org=(org.id) {
                                th scope="row" { a href=(format!("/organisations/{}", org.id)) { (org.name) } }
                                @match card {
                                    Ok(card) => {
                                        @let card = card.get_ref().scorecard.clone().unwrap_or_default();
                                        @let c = counts(&card);
                                        td class="num open" { (c.open) }
                                        td class="num overdue" { (c.overdue) }
                                        td class="num closed" { (c.closed) }
                                        td { (grades_by_scale(&card.grades)) }
                                    }
                                    Err(e) => { td colspan="4" { (explain(e)) } }
                                }
                            }
                        }
                    }
                }
                p class="legend" { "Grades are shown on the scale they were given on: "
                    (view::scale_label(pb::GradeScale::FourTier)) "; " (view::scale_label(pb::GradeScale::FiveTier)) ". The two are never compared." }
            }
        }
        section aria-labelledby="national-h" {
            h2 id="national-h" { "Open items over time, all organisations" }
            @match &series {
                Ok(points) => {
                    (charts::line_chart("national-open", "Open items over time, all organisations", points))
                    details { summary { "Figures" }
                        table { thead { tr { th scope="col" { "As of" } th scope="col" class="num" { "Open items" } } }
                            tbody { @for p in points { tr { td { (p.label) } td class="num" { (p.value) } } } } }
                    }
                }
                Err(e) => (error_box(e)),
            }
        }
    };
    html_response(
        StatusCode::OK,
        page("Overview", Some(s), Some("org="), body),
    )
}

// ---------------------------------------------------------------- organisation

pub(crate) async fn organisation(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let s = &signed.session;
    let as_of_text = param(&params, "as_of");
    let as_of = if as_of_text.is_empty() {
        None
    } else {
        match NaiveDate::parse_from_str(as_of_text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                return html_response(
                    StatusCode::BAD_REQUEST,
                    page(
                        "Organisation",
                        Some(s),
                        None,
                        error_box(&format!("as_of {as_of_text:?} is not a date (YYYY-MM-DD)")),
                    ),
                );
            }
        }
    };
    let end = as_of.unwrap_or_else(today);
    let org = state
        .backend
        .findings()
        .get_organisation(call(
            s,
            pb::GetOrganisationRequest {
                organisation_id: id.clone(),
            },
        ))
        .await;
    let org = match org {
        Ok(r) => r.into_inner().organisation.unwrap_or_default(),
        Err(e) => {
            let code = if e.code() == tonic::Code::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_GATEWAY
            };
            return html_response(
                code,
                page("Organisation", Some(s), None, error_box(&explain(&e))),
            );
        }
    };
    let as_of_pb = as_of.map(calendar);
    let mut metrics = state.backend.metrics();
    let card = metrics
        .get_scorecard(call(
            s,
            pb::GetScorecardRequest {
                organisation_id: id.clone(),
                as_of: as_of_pb,
            },
        ))
        .await
        .map(|r| r.into_inner().scorecard.unwrap_or_default())
        .map_err(|e| explain(&e));
    let peers = metrics
        .get_peer_comparison(call(
            s,
            pb::GetPeerComparisonRequest {
                organisation_id: id.clone(),
                as_of: as_of_pb,
            },
        ))
        .await
        .map(|r| r.into_inner())
        .map_err(|e| explain(&e));
    let grades = metrics
        .get_grade_history(call(
            s,
            pb::GetGradeHistoryRequest {
                organisation_id: id.clone(),
                as_of: as_of_pb,
                page_size: 500,
                page_token: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner().points)
        .map_err(|e| explain(&e));
    let closure = metrics
        .get_closure_stats(call(
            s,
            pb::GetClosureStatsRequest {
                organisation_id: id.clone(),
                programme: String::new(),
                as_of: as_of_pb,
                page_size: 500,
                page_token: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner().inspections)
        .map_err(|e| explain(&e));
    let org_inspections = inspections(&state, s, &id).await.unwrap_or_default();
    let start = earliest_publication(&org_inspections).unwrap_or(end);
    let burn = open_series(&state, s, &id, false, start, end).await;
    let open_items = if may(s, Action::ReadItems) {
        all_items(
            &state,
            s,
            pb::ListItemsRequest {
                organisation_id: id.clone(),
                statuses: vec![
                    pb::ItemStatus::Open as i32,
                    pb::ItemStatus::InProgress as i32,
                    pb::ItemStatus::AwaitingVerification as i32,
                ],
                ..Default::default()
            },
        )
        .await
    } else {
        Err("Your role does not read tracked items.".to_string())
    };
    let title = if org.name.is_empty() {
        id.clone()
    } else {
        org.name.clone()
    };
    let body = html! {
        form method="get" class="inline" {
            label for="as_of" { "As of " }
            input type="date" id="as_of" name="as_of" value=(as_of.map(|d| d.to_string()).unwrap_or_default());
            button type="submit" { "Show" }
            " "
            a href=(format!("/items?org={id}")) { "Items of " (title) }
            " · "
            a href=(format!("/review?org={id}")) { "Reconciliation review" }
        }
        p { "Figures as of " strong { (end) } "." }
        @match &card {
            Err(e) => (error_box(e)),
            Ok(card) => {
                @let c = counts(card);
                ul class="figures" {
                    li { span class="big" id="open-count" { (c.open) } " open" }
                    li { span class="big" { (c.overdue) } " overdue" }
                    li { span class="big" id="closed-count" { (c.closed) } " closed" }
                    li { span class="big" { (format!("{:.0}", card.median_open_age_days)) } " days median age of open items (90th percentile " (format!("{:.0}", card.p90_open_age_days)) ")" }
                }
                div class="grid" {
                    section aria-labelledby="status-h" {
                        h2 id="status-h" { "Items by status" }
                        (charts::bar_chart("by-status", "Items by status", &view::STATUSES.iter().map(|st| Bar {
                            label: view::status_label(*st).to_string(),
                            value: card.by_status.iter().filter(|b| b.status() == *st).map(|b| b.count as f64).sum(),
                        }).collect::<Vec<_>>()))
                    }
                    section aria-labelledby="ageing-h" {
                        h2 id="ageing-h" { "Ageing of open items" }
                        @match &open_items {
                            Ok(items) => (charts::bar_chart("ageing", "Open items by time past their due date", &ageing(items, end))),
                            Err(e) => p class="muted" { (e) },
                        }
                    }
                }
                @if !card.by_pillar.is_empty() {
                    section aria-labelledby="pillar-h" {
                        h2 id="pillar-h" { "By pillar" }
                        table { thead { tr { th scope="col" { "Pillar" } th scope="col" class="num" { "Open" } th scope="col" class="num" { "Closed" } th scope="col" class="num" { "Total" } } }
                            tbody { @for p in &card.by_pillar { tr { th scope="row" { (p.pillar) } td class="num" { (p.open) } td class="num" { (p.closed) } td class="num" { (p.total) } } } } }
                    }
                }
            }
        }
        section aria-labelledby="burn-h" {
            h2 id="burn-h" { "Burn-down of open items across inspections" }
            @match &burn {
                Ok(points) => (charts::line_chart("burn-down", "Open items over time", points)),
                Err(e) => (error_box(e)),
            }
            @match &closure {
                Ok(rows) if !rows.is_empty() => {
                    table { caption { "Items closed by the next inspection" }
                        thead { tr { th scope="col" { "Inspection period" } th scope="col" class="num" { "Items" } th scope="col" class="num" { "Closed by next inspection" } th scope="col" class="num" { "Median days to close" } } }
                        tbody { @for r in rows { tr { td { (r.period) } td class="num" { (r.items) } td class="num" { (r.closed_by_next_inspection) } td class="num" { (format!("{:.0}", r.median_days_to_close)) } } } }
                    }
                }
                Ok(_) => {}
                Err(e) => (error_box(e)),
            }
        }
        section aria-labelledby="grades-h" {
            h2 id="grades-h" { "Grades by question and period" }
            @match &grades { Ok(points) => (grade_tables(points)), Err(e) => (error_box(e)) }
        }
        @if let Ok(card) = &card {
            @if !card.indicators.is_empty() {
                section aria-labelledby="ind-h" {
                    h2 id="ind-h" { "Indicators against their comparators" }
                    (charts::paired_chart("indicators", "Indicators against comparators", &card.indicators.iter().map(|i| Paired {
                        label: format!("{} ({})", i.measure, i.period),
                        value: i.value,
                        comparator_label: if i.comparator_period.is_empty() { i.comparator.clone() } else { format!("{} ({})", i.comparator, i.comparator_period) },
                        comparator: i.comparator_value,
                        unit: i.unit.clone(),
                    }).collect::<Vec<_>>()))
                }
            }
        }
        section aria-labelledby="peers-h" {
            h2 id="peers-h" { "Peers" }
            @match &peers {
                Ok(p) => {
                    table id="peers" { thead { tr { th scope="col" { "Group" } th scope="col" class="num" { "Organisations" } th scope="col" class="num" { "Open" } th scope="col" class="num" { "Closed" } th scope="col" class="num" { "Overdue" } th scope="col" class="num" { "Closure rate" } th scope="col" class="num" { "Median days to close" } } }
                        tbody {
                            @for (name, f) in [("This organisation", &p.organisation), ("Most similar group", &p.most_similar_group), ("All organisations", &p.all_organisations)] {
                                @if let Some(f) = f {
                                    tr { th scope="row" { (name) } td class="num" { (f.organisations) } td class="num" { (f.open_items) } td class="num" { (f.closed_items) } td class="num" { (f.overdue_items) } td class="num" { (format!("{:.0}%", f.closure_rate * 100.0)) } td class="num" { (format!("{:.0}", f.median_days_to_close)) } }
                                }
                            }
                        }
                    }
                    @if !org.most_similar_group.is_empty() {
                        p { "Most similar group: " @for (i, m) in org.most_similar_group.iter().enumerate() { @if i > 0 { ", " } a href=(format!("/organisations/{m}")) { (m) } } }
                    }
                }
                Err(e) => (error_box(e)),
            }
        }
    };
    html_response(
        StatusCode::OK,
        page(&title, Some(s), Some(&format!("org={id}")), body),
    )
}

fn ageing(items: &[pb::TrackedItem], today: NaiveDate) -> Vec<Bar> {
    let mut buckets = [0u32; 5];
    for item in items {
        let due = item
            .due_date
            .as_ref()
            .and_then(|d| NaiveDate::from_ymd_opt(d.year, d.month as u32, d.day as u32));
        let index = match due {
            None => 0,
            Some(due) if due >= today => 1,
            Some(due) => match (today - due).num_days() {
                0..=90 => 2,
                91..=365 => 3,
                _ => 4,
            },
        };
        buckets[index] += 1;
    }
    [
        "No due date",
        "Not yet due",
        "Up to 90 days overdue",
        "91–365 days overdue",
        "Over a year overdue",
    ]
    .iter()
    .zip(buckets)
    .map(|(label, n)| Bar {
        label: label.to_string(),
        value: n as f64,
    })
    .collect()
}

/// The periods (sorted) and, per (pillar, question), the grade of each
/// period, of one scale's grade points.
type GradeRows<'a> = BTreeMap<(String, String), HashMap<&'a str, &'a pb::GradePoint>>;

fn grade_grid<'a>(points: &[&'a pb::GradePoint]) -> (Vec<&'a str>, GradeRows<'a>) {
    let mut periods: Vec<&str> = points.iter().map(|p| p.period.as_str()).collect();
    periods.sort();
    periods.dedup();
    let mut rows: GradeRows = BTreeMap::new();
    for p in points {
        rows.entry((p.pillar.clone(), p.question.clone()))
            .or_default()
            .insert(p.period.as_str(), p);
    }
    (periods, rows)
}

/// One table per scale: questions down, periods across.
fn grade_tables(points: &[pb::GradePoint]) -> Markup {
    let mut by_scale: BTreeMap<i32, Vec<&pb::GradePoint>> = BTreeMap::new();
    for p in points {
        by_scale.entry(p.scale).or_default().push(p);
    }
    html! {
        @if points.is_empty() { p class="muted" { "No grades as of this day." } }
        @for (scale, points) in &by_scale {
            @let scale = pb::GradeScale::try_from(*scale).unwrap_or(pb::GradeScale::Unspecified);
            @let (periods, rows) = grade_grid(points);
            table class="grades" {
                caption { (view::scale_label(scale)) }
                thead { tr { th scope="col" { "Pillar" } th scope="col" { "Question" } @for period in &periods { th scope="col" { (period) } } } }
                tbody {
                    @for ((pillar, question), cells) in &rows {
                        tr { td { (pillar) } th scope="row" { (if question.is_empty() { "(pillar)" } else { question }) }
                            @for period in &periods {
                                @match cells.get(period) {
                                    Some(p) => td class=(format!("grade {}", view::grade_class(p.grade()))) { (view::grade_label(p.grade())) @if p.carried_over { " (carried over)" } },
                                    None => td class="muted" { "—" },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- items

pub(crate) async fn items(
    State(state): State<AppState>,
    signed: Signed,
    Query(params): Query<Params>,
) -> Response {
    let s = &signed.session;
    let org = match s.own_organisation() {
        Some(own) if param(&params, "org").is_empty() => own.to_string(),
        _ => param(&params, "org").to_string(),
    };
    let status = param(&params, "status");
    let kind = param(&params, "kind");
    let pillar = param(&params, "pillar");
    let owner = param(&params, "owner");
    let overdue = !param(&params, "overdue").is_empty();
    let mut problems = Vec::new();
    let statuses = match status {
        "" => Vec::new(),
        "active" => vec![
            pb::ItemStatus::Open as i32,
            pb::ItemStatus::InProgress as i32,
            pb::ItemStatus::AwaitingVerification as i32,
        ],
        other => match view::parse_status(other) {
            Some(st) => vec![st as i32],
            None => {
                problems.push(format!("status {other:?} is not a status"));
                Vec::new()
            }
        },
    };
    let kind_value = match kind {
        "" => 0,
        other => match view::parse_kind(other) {
            Some(k) => k as i32,
            None => {
                problems.push(format!("kind {other:?} is not a kind of finding"));
                0
            }
        },
    };
    if !problems.is_empty() {
        return html_response(
            StatusCode::BAD_REQUEST,
            page("Items", Some(s), None, error_box(&problems.join("; "))),
        );
    }
    let result = all_items(
        &state,
        s,
        pb::ListItemsRequest {
            organisation_id: org.clone(),
            statuses,
            kind: kind_value,
            overdue_only: overdue,
            ..Default::default()
        },
    )
    .await;
    let orgs = organisations(&state, s).await.unwrap_or_default();
    let (listed, error) = match result {
        Ok(items) => (
            items
                .into_iter()
                .filter(|i| pillar.is_empty() || i.pillar.eq_ignore_ascii_case(pillar))
                .filter(|i| {
                    owner.is_empty() || i.owner.to_lowercase().contains(&owner.to_lowercase())
                })
                .collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    let mut pillars: Vec<&str> = listed.iter().map(|i| i.pillar.as_str()).collect();
    pillars.sort();
    pillars.dedup();
    let body = html! {
        form method="get" class="filters" aria-label="Filter items" {
            label { "Organisation "
                select name="org" {
                    (view::option("", "All", org.is_empty()))
                    @for o in &orgs { (view::option(&o.id, &o.name, o.id == org)) }
                }
            }
            label { "Status "
                select name="status" {
                    (view::option("", "Any", status.is_empty()))
                    (view::option("active", "Not closed", status == "active"))
                    @for st in view::STATUSES { (view::option(view::status_slug(st), view::status_label(st), status == view::status_slug(st))) }
                }
            }
            label { "Kind "
                select name="kind" {
                    (view::option("", "Any", kind.is_empty()))
                    @for k in view::KINDS { (view::option(view::kind_slug(k), view::kind_label(k), kind == view::kind_slug(k))) }
                }
            }
            label { "Pillar " input type="text" name="pillar" value=(pillar) size="14"; }
            label { "Owner " input type="text" name="owner" value=(owner) size="14"; }
            label { input type="checkbox" name="overdue" value="1" checked[overdue]; " Overdue only" }
            button type="submit" { "Filter" }
        }
        @if let Some(e) = &error { (error_box(e)) }
        p id="item-count" { (listed.len()) " item" @if listed.len() != 1 { "s" } }
        table id="items" {
            thead { tr { th scope="col" { "Item" } th scope="col" { "Organisation" } th scope="col" { "Kind" } th scope="col" { "Pillar" } th scope="col" { "Status" } th scope="col" { "Owner" } th scope="col" { "Due" } } }
            tbody {
                @for i in &listed {
                    tr class=(if i.overdue { "overdue" } else { "" }) data-status=(view::status_slug(i.status())) data-inspection=(i.inspection_id) {
                        td { a href=(format!("/items/{}", i.id)) { (short_text(&i.text, 110)) } }
                        td { (i.organisation_id) }
                        td { (view::kind_label(i.kind())) }
                        td { (i.pillar) }
                        td class="status" { (view::status_label(i.status())) }
                        td { (i.owner) }
                        td { (view::date(i.due_date.as_ref())) @if i.overdue { " " strong class="flag" { "overdue" } } }
                    }
                }
            }
        }
        @if !pillars.is_empty() { p class="muted" { "Pillars listed: " (pillars.join(", ")) } }
    };
    html_response(
        StatusCode::OK,
        page("Items", Some(s), Some(&format!("org={org}")), body),
    )
}

fn short_text(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

pub(crate) async fn item(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    render_item(&state, &signed.session, &id, None).await
}

async fn render_item(
    state: &AppState,
    s: &Session,
    id: &str,
    flash: Option<Result<String, String>>,
) -> Response {
    let mut tracker = state.backend.tracker();
    let item = match tracker
        .get_item(call(
            s,
            pb::GetItemRequest {
                item_id: id.to_string(),
            },
        ))
        .await
    {
        Ok(r) => r.into_inner().item.unwrap_or_default(),
        Err(e) => {
            let code = match e.code() {
                tonic::Code::NotFound => StatusCode::NOT_FOUND,
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_GATEWAY,
            };
            return html_response(code, page("Item", Some(s), None, error_box(&explain(&e))));
        }
    };
    let finding = state
        .backend
        .findings()
        .get_finding(call(
            s,
            pb::GetFindingRequest {
                finding_id: item.finding_id.clone(),
            },
        ))
        .await
        .ok()
        .and_then(|r| r.into_inner().finding);
    let inspection = state
        .backend
        .findings()
        .get_inspection(call(
            s,
            pb::GetInspectionRequest {
                inspection_id: item.inspection_id.clone(),
            },
        ))
        .await
        .ok()
        .and_then(|r| r.into_inner().inspection);
    let history = tracker
        .get_item_history(call(
            s,
            pb::GetItemHistoryRequest {
                item_id: id.to_string(),
                page_size: 500,
                page_token: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner().events)
        .map_err(|e| explain(&e));
    let lineage = tracker
        .get_lineage(call(
            s,
            pb::GetLineageRequest {
                item_id: id.to_string(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
        .map_err(|e| explain(&e));
    let offered = offered_commands(s, &item);
    let status_code = match &flash {
        Some(Err(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let body = html! {
        @match &flash { Some(Ok(m)) => (notice(m)), Some(Err(m)) => (error_box(m)), None => {} }
        dl class="facts" {
            dt { "Organisation" } dd { a href=(format!("/organisations/{}", item.organisation_id)) { (item.organisation_id) } }
            dt { "Kind" } dd { (view::kind_label(item.kind())) }
            dt { "Pillar / question" } dd { (item.pillar) @if !item.question.is_empty() { " — " (item.question) } }
            dt { "Status" } dd id="item-status" class="status" { (view::status_label(item.status())) }
            dt { "Owner" } dd { @if item.owner.is_empty() { span class="muted" { "none" } } @else { (item.owner) } }
            dt { "Due" } dd { (view::date(item.due_date.as_ref())) @if item.overdue { " " strong class="flag" { "overdue" } } }
            @if !item.closure_reference.is_empty() { dt { "Closed by" } dd { (item.closure_reference) } }
            dt { "Version" } dd { (item.version) }
        }
        blockquote class="item-text" { (item.text) }
        p class="source" {
            "Source: "
            @if let Some(ins) = &inspection { (ins.title) " (" (ins.programme) " " (ins.period) ", published " (ins.published) ")" } @else { "inspection " (item.inspection_id) }
            @if let Some(f) = &finding { @if f.line_start > 0 { ", lines " (f.line_start) "–" (f.line_end) } @if !f.deadline.is_empty() { ". Deadline in the report: “" (f.deadline) "”" } }
        }
        @if !item.evidence.is_empty() {
            section aria-labelledby="evidence-h" {
                h2 id="evidence-h" { "Evidence" }
                ul { @for e in &item.evidence { li { (e.description)
                    @if !e.uri.is_empty() { " — " a href=(e.uri) rel="noopener noreferrer" { (e.uri) } }
                    @if !e.sha256.is_empty() { " " code title="sha256" { (e.sha256) } } } } }
            }
        }
        section aria-labelledby="actions-h" class="actions no-print" {
            h2 id="actions-h" { "Actions" }
            @if offered.is_empty() { p class="muted" { "No action is open to your role (" (s.role_name()) ") on this item now." } }
            @for kind in &offered { (command_form(&item, *kind)) }
        }
        section aria-labelledby="history-h" {
            h2 id="history-h" { "History" }
            @match &history {
                Ok(events) => ol class="timeline" id="history" {
                    @for e in events {
                        li { time { (view::timestamp(e.occurred_at.as_ref().map(|t| t.seconds).unwrap_or(0))) } " "
                            strong { (view::event_name(&e.event_type)) }
                            @if let Some(a) = &e.actor { " by " (a.subject) }
                            (event_detail(e)) }
                    }
                },
                Err(e) => (error_box(e)),
            }
        }
        section aria-labelledby="lineage-h" {
            h2 id="lineage-h" { "Lineage across inspections" }
            @match &lineage {
                Ok(l) if l.items.len() > 1 || !l.links.is_empty() => {
                    ol class="lineage" { @for i in &l.items { li { a href=(format!("/items/{}", i.id)) { (short_text(&i.text, 90)) } " — " (view::status_label(i.status())) @if i.id == item.id { " (this item)" } } } }
                    ul { @for link in &l.links { li { (short(&link.from_item_id)) " " (view::relation_label(link.relation())) " " (short(&link.to_item_id)) } } }
                }
                Ok(_) => p class="muted" { "No earlier or later item." },
                Err(e) => (error_box(e)),
            }
        }
    };
    html_response(
        status_code,
        page(
            &format!(
                "{} — {}",
                view::kind_label(item.kind()),
                item.organisation_id
            ),
            Some(s),
            Some(&format!("item={}", item.id)),
            body,
        ),
    )
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn event_detail(e: &pb::EventEnvelope) -> Markup {
    use pb::event_envelope::Payload;
    let text = match &e.payload {
        Some(Payload::StatusChanged(c)) => format!(
            ": {} → {}{}",
            view::status_label(c.from_status()),
            view::status_label(c.to_status()),
            if c.reason.is_empty() {
                String::new()
            } else {
                format!(" — {}", c.reason)
            }
        ),
        Some(Payload::OwnerAssigned(c)) => format!(": {}", c.owner),
        Some(Payload::ProgressNoted(c)) => format!(": {}", c.note),
        Some(Payload::DueDateChanged(c)) => format!(": {}", view::date(c.due_date.as_ref())),
        _ => String::new(),
    };
    html! { (text) }
}

fn command_form(item: &pb::TrackedItem, kind: CommandKind) -> Markup {
    let (slug, title) = match kind {
        CommandKind::Start => ("start", "Start work"),
        CommandKind::NoteProgress => ("note", "Note progress"),
        CommandKind::AssignOwner => ("assign", "Assign an owner"),
        CommandKind::SetDueDate => ("due-date", "Set the due date"),
        CommandKind::ClaimCompletion => ("claim", "Claim completion"),
        CommandKind::RejectClaim => ("reject-claim", "Reject the claim"),
        CommandKind::Verify => ("verify", "Verify and close"),
        CommandKind::Supersede => ("supersede", "Supersede"),
        CommandKind::Reopen => ("reopen", "Reopen"),
    };
    let field = |name: &str, label: &str, required: bool| {
        let id = format!("{slug}-{name}");
        html! { label for=(id) { (label) } input type="text" id=(id) name=(name) required[required]; }
    };
    html! {
        form method="post" action=(format!("/items/{}/{slug}", item.id)) class="command" id=(format!("form-{slug}")) {
            fieldset { legend { (title) }
                input type="hidden" name="version" value=(item.version);
                @match kind {
                    CommandKind::Start => (field("note", "Note", false)),
                    CommandKind::NoteProgress => (field("note", "Note", true)),
                    CommandKind::AssignOwner => (field("owner", "Owner", true)),
                    CommandKind::SetDueDate => {
                        label for="due-date-date" { "Due date" } input type="date" id="due-date-date" name="date" required;
                        (field("reason", "Reason (required when changing a due date)", false))
                    }
                    CommandKind::ClaimCompletion => {
                        (field("description", "Evidence", true)) (field("uri", "Link (optional)", false)) (field("sha256", "SHA-256 of the document (64 hexadecimal digits)", true)) (field("note", "Note", false))
                    }
                    CommandKind::RejectClaim | CommandKind::Reopen => (field("reason", "Reason", true)),
                    CommandKind::Verify => {
                        (field("reference", "Closure reference", true))
                        label for="verify-effective" { "Effective date (optional)" } input type="date" id="verify-effective" name="effective";
                    }
                    CommandKind::Supersede => { (field("finding", "Superseding finding id", true)) (field("reason", "Reason", true)) }
                }
                button type="submit" { (title) }
            }
        }
    }
}

fn parse_date_field(text: &str, what: &str) -> Result<Option<pb::CalendarDate>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| Some(calendar(d)))
        .map_err(|_| format!("{what} {text:?} is not a date (YYYY-MM-DD)"))
}

pub(crate) async fn item_action(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<Params>,
) -> Response {
    let s = &signed.session;
    let outcome = run_command(&state, s, &id, &action, &form).await;
    match outcome {
        Ok(message) => render_item(&state, s, &id, Some(Ok(message))).await,
        Err(message) => render_item(&state, s, &id, Some(Err(message))).await,
    }
}

async fn run_command(
    state: &AppState,
    s: &Session,
    id: &str,
    action: &str,
    form: &Params,
) -> Result<String, String> {
    let version: u64 = param(form, "version")
        .parse()
        .map_err(|_| "the form carried no item version; reload the page".to_string())?;
    let item_id = id.to_string();
    let text = |k: &str| param(form, k).to_string();
    let mut t = state.backend.tracker();
    let result = match action {
        "start" => t
            .start_item(call(
                s,
                pb::StartItemRequest {
                    item_id,
                    expected_version: version,
                    note: text("note"),
                },
            ))
            .await
            .map(|_| "Started."),
        "note" => t
            .note_progress(call(
                s,
                pb::NoteProgressRequest {
                    item_id,
                    expected_version: version,
                    note: text("note"),
                },
            ))
            .await
            .map(|_| "Progress noted."),
        "assign" => t
            .assign_owner(call(
                s,
                pb::AssignOwnerRequest {
                    item_id,
                    expected_version: version,
                    owner: text("owner"),
                },
            ))
            .await
            .map(|_| "Owner assigned."),
        "due-date" => {
            let due_date = parse_date_field(param(form, "date"), "due date")?;
            t.set_due_date(call(
                s,
                pb::SetDueDateRequest {
                    item_id,
                    expected_version: version,
                    due_date,
                    reason: text("reason"),
                },
            ))
            .await
            .map(|_| "Due date set.")
        }
        "claim" => t
            .claim_completion(call(
                s,
                pb::ClaimCompletionRequest {
                    item_id,
                    expected_version: version,
                    evidence: Some(pb::Evidence {
                        description: text("description"),
                        uri: text("uri"),
                        sha256: text("sha256"),
                    }),
                    note: text("note"),
                },
            ))
            .await
            .map(|_| "Completion claimed; awaiting verification."),
        "reject-claim" => t
            .reject_claim(call(
                s,
                pb::RejectClaimRequest {
                    item_id,
                    expected_version: version,
                    reason: text("reason"),
                },
            ))
            .await
            .map(|_| "Claim rejected."),
        "verify" => {
            let effective_date = parse_date_field(param(form, "effective"), "effective date")?;
            t.verify_item(call(
                s,
                pb::VerifyItemRequest {
                    item_id,
                    expected_version: version,
                    closure_reference: text("reference"),
                    effective_date,
                },
            ))
            .await
            .map(|_| "Verified and closed.")
        }
        "supersede" => t
            .supersede_item(call(
                s,
                pb::SupersedeItemRequest {
                    item_id,
                    expected_version: version,
                    superseding_finding_id: text("finding"),
                    reason: text("reason"),
                },
            ))
            .await
            .map(|_| "Superseded."),
        "reopen" => t
            .reopen_item(call(
                s,
                pb::ReopenItemRequest {
                    item_id,
                    expected_version: version,
                    reason: text("reason"),
                },
            ))
            .await
            .map(|_| "Reopened."),
        other => return Err(format!("{other:?} is not an action on an item")),
    };
    result.map(str::to_string).map_err(|e| explain(&e))
}

// ---------------------------------------------------------------- review

pub(crate) async fn review(
    State(state): State<AppState>,
    signed: Signed,
    Query(params): Query<Params>,
) -> Response {
    render_review(&state, &signed.session, &params, None).await
}

async fn render_review(
    state: &AppState,
    s: &Session,
    params: &Params,
    flash: Option<Result<String, String>>,
) -> Response {
    let org = match s.own_organisation() {
        Some(own) if param(params, "org").is_empty() => own.to_string(),
        _ => param(params, "org").to_string(),
    };
    let show = param(params, "show");
    let status = if show == "all" {
        0
    } else {
        pb::ProposalStatus::Pending as i32
    };
    let listed = state
        .backend
        .tracker()
        .list_proposals(call(
            s,
            pb::ListProposalsRequest {
                organisation_id: org.clone(),
                inspection_id: param(params, "inspection").to_string(),
                status,
                page_size: 500,
                page_token: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner().proposals)
        .map_err(|e| explain(&e));
    let proposals = listed.as_ref().map(|p| p.as_slice()).unwrap_or(&[]);
    let earlier = futures::future::join_all(proposals.iter().map(|p| {
        let mut tracker = state.backend.tracker();
        let request = call(
            s,
            pb::GetItemRequest {
                item_id: p.item_id.clone(),
            },
        );
        async move {
            tracker
                .get_item(request)
                .await
                .ok()
                .and_then(|r| r.into_inner().item)
        }
    }))
    .await;
    let decide = may(s, Action::DecideProposal);
    let back = format!(
        "/review?org={}&show={}",
        org,
        if show == "all" { "all" } else { "pending" }
    );
    let status_code = match &flash {
        Some(Err(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let body = html! {
        @match &flash { Some(Ok(m)) => (notice(m)), Some(Err(m)) => (error_box(m)), None => {} }
        form method="get" class="filters" {
            label { "Organisation " input type="text" name="org" value=(org) size="18"; }
            label { "Show " select name="show" { (view::option("pending", "Waiting for a decision", show != "all")) (view::option("all", "All", show == "all")) } }
            button type="submit" { "Show" }
        }
        p class="keys no-print" { "Keys: " kbd { "j" } " next, " kbd { "k" } " previous"
            @if decide { ", " kbd { "a" } " accept, " kbd { "r" } " reject (type the reason, then Enter)" } "." }
        @if let Err(e) = &listed { (error_box(e)) }
        p id="proposal-count" { (proposals.len()) " proposal" @if proposals.len() != 1 { "s" } }
        @for (p, item) in proposals.iter().zip(&earlier) {
            article class="proposal" id=(format!("p-{}", p.id)) tabindex="-1" aria-labelledby=(format!("p-{}-h", p.id)) {
                h2 id=(format!("p-{}-h", p.id)) { (view::outcome_label(p.outcome())) " — score " (format!("{:.2}", p.score)) " · " (view::proposal_status_label(p.status())) }
                div class="pair" {
                    div { h3 { "Earlier item" }
                        @match item {
                            Some(i) => { p class="muted" { (view::kind_label(i.kind())) ", " (i.pillar) " — " (view::status_label(i.status())) }
                                blockquote { a href=(format!("/items/{}", i.id)) { (i.text) } } }
                            None => p class="muted" { "Item " (p.item_id) " is not visible to you." },
                        }
                    }
                    div { h3 { "The later report says" @if p.line_start > 0 { " (lines " (p.line_start) "–" (p.line_end) ")" } }
                        @for q in &p.quotes { blockquote { mark { (q) } } }
                        @if p.quotes.is_empty() { p class="muted" { "No sentence quoted." } }
                    }
                }
                p class="rule" { "Rule: " code { (p.rule) } }
                @if !p.decision_reason.is_empty() { p { "Decision: " (p.decision_reason) } }
                @if decide && p.status() == pb::ProposalStatus::Pending {
                    div class="decide no-print" {
                        form method="post" action=(format!("/proposals/{}/accept", p.id)) class="accept" {
                            input type="hidden" name="version" value=(p.version);
                            input type="hidden" name="back" value=(back);
                            label for=(format!("note-{}", p.id)) { "Note (optional)" }
                            input type="text" id=(format!("note-{}", p.id)) name="note";
                            button type="submit" { "Accept" }
                        }
                        form method="post" action=(format!("/proposals/{}/reject", p.id)) class="reject" {
                            input type="hidden" name="version" value=(p.version);
                            input type="hidden" name="back" value=(back);
                            label for=(format!("reason-{}", p.id)) { "Reason" }
                            input type="text" id=(format!("reason-{}", p.id)) name="reason" required;
                            button type="submit" { "Reject" }
                        }
                    }
                }
            }
        }
    };
    html_response(
        status_code,
        page(
            "Reconciliation review",
            Some(s),
            Some(&format!("org={org}")),
            body,
        ),
    )
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, decision)): Path<(String, String)>,
    Form(form): Form<Params>,
) -> Response {
    let s = &signed.session;
    let back = safe_next(param(&form, "back"));
    let result: Result<String, String> = match param(&form, "version").parse::<u64>() {
        Err(_) => Err("the form carried no proposal version; reload the page".into()),
        Ok(version) => {
            let mut t = state.backend.tracker();
            match decision.as_str() {
                "accept" => t
                    .accept_proposal(call(
                        s,
                        pb::AcceptProposalRequest {
                            proposal_id: id.clone(),
                            expected_version: version,
                            note: param(&form, "note").to_string(),
                        },
                    ))
                    .await
                    .map(|_| "Proposal accepted.".to_string())
                    .map_err(|e| explain(&e)),
                "reject" => t
                    .reject_proposal(call(
                        s,
                        pb::RejectProposalRequest {
                            proposal_id: id.clone(),
                            expected_version: version,
                            reason: param(&form, "reason").to_string(),
                        },
                    ))
                    .await
                    .map(|_| "Proposal rejected.".to_string())
                    .map_err(|e| explain(&e)),
                other => Err(format!("{other:?} is not a decision (accept or reject)")),
            }
        }
    };
    let query: Params = back
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    render_review(&state, s, &query, Some(result)).await
}

// ---------------------------------------------------------------- import

pub(crate) async fn import_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(s) = optional_session(&State(state.clone()), &headers) else {
        return Redirect::to("/login?next=/import").into_response();
    };
    html_response(
        StatusCode::OK,
        page("Import a report", Some(&s), None, import_form(&s, None)),
    )
}

fn import_form(s: &Session, error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { (error_box(e)) }
        @if !may(s, Action::ImportReport) {
            p class="notice" { "Your role (" (s.role_name()) ") may not import reports; the findings service will refuse." }
        }
        form method="post" action="/import/preview" enctype="multipart/form-data" class="stack" {
            label for="file" { "Report file (text, HTML saved from the inspectorate's site, or PDF)" }
            input type="file" id="file" name="file" accept=".txt,.html,.htm,.pdf,text/plain,text/html,application/pdf";
            label for="text" { "…or paste the report's text" }
            textarea id="text" name="text" rows="8" {}
            label for="published" { "Publication date, if the document does not state it (YYYY-MM or YYYY-MM-DD)" }
            input type="text" id="published" name="published";
            button type="submit" { "Preview" }
        }
    }
}

fn media_type_of(content_type: &str, name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match content_type {
        "text/plain" | "text/html" | "application/pdf" => content_type.to_string(),
        _ if lower.ends_with(".pdf") => "application/pdf".into(),
        _ if lower.ends_with(".html") || lower.ends_with(".htm") => "text/html".into(),
        _ if lower.ends_with(".txt") => "text/plain".into(),
        _ => String::new(),
    }
}

pub(crate) async fn import_preview(
    State(state): State<AppState>,
    signed: Signed,
    mut multipart: Multipart,
) -> Response {
    let s = &signed.session;
    let mut upload = Upload {
        session_id: signed.id.clone(),
        name: String::new(),
        media_type: String::new(),
        content: Vec::new(),
    };
    let mut text = String::new();
    let mut published = String::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let file_name = field.file_name().unwrap_or("").to_string();
                let content_type = field.content_type().unwrap_or("").to_string();
                let bytes = match field.bytes().await {
                    Ok(b) => b,
                    Err(e) => return import_error(s, &format!("reading the upload: {e}")),
                };
                match name.as_str() {
                    "file" if !bytes.is_empty() => {
                        upload.media_type = media_type_of(&content_type, &file_name);
                        upload.name = file_name;
                        upload.content = bytes.to_vec();
                    }
                    "text" => text = String::from_utf8_lossy(&bytes).into_owned(),
                    "published" => published = String::from_utf8_lossy(&bytes).trim().to_string(),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return import_error(s, &format!("reading the upload: {e}")),
        }
    }
    if upload.content.is_empty() {
        if text.trim().is_empty() {
            return import_error(s, "choose a file or paste the report's text");
        }
        upload.content = text.into_bytes();
        upload.media_type = "text/plain".into();
        upload.name = "pasted text".into();
    }
    if upload.content.len() > state.max_upload_bytes {
        return import_error(
            s,
            &format!(
                "the document is larger than {} bytes",
                state.max_upload_bytes
            ),
        );
    }
    let overrides = (!published.is_empty()).then(|| pb::ReportOverrides {
        published: published.clone(),
        ..Default::default()
    });
    let parsed = state
        .backend
        .findings()
        .parse_report(call(
            s,
            pb::ParseReportRequest {
                text: String::new(),
                source_name: upload.name.clone(),
                content: upload.content.clone(),
                media_type: upload.media_type.clone(),
                overrides: overrides.clone(),
            },
        ))
        .await;
    let parsed = match parsed {
        Ok(r) => r.into_inner(),
        Err(e) => return import_error(s, &explain(&e)),
    };
    let report = parsed.report.unwrap_or_default();
    let mut key = [0u8; 16];
    rand::rng().fill_bytes(&mut key);
    let key = hex::encode(key);
    {
        let mut uploads = state.uploads.lock().unwrap_or_else(|p| p.into_inner());
        uploads.retain(|_, u| u.session_id != signed.id);
        if uploads.len() >= 64 {
            uploads.clear();
        }
        uploads.insert(key.clone(), upload.clone());
    }
    let explanation = closeout_report::render_explanation(&report);
    let org = report.organisation.clone().unwrap_or_default();
    let ins = report.inspection.clone().unwrap_or_default();
    let body = html! {
        dl class="facts" id="preview" {
            dt { "Document" } dd { (upload.name) " (" (parsed.media_type) ", " (upload.content.len()) " bytes)" }
            dt { "Organisation" } dd { (org.name) " (" (org.id) ")" }
            dt { "Inspection" } dd { (ins.title) " — " (ins.programme) " " (ins.period) ", published " (ins.published) }
            dt { "Layout" } dd { @if report.profile.is_empty() { "none recognised" } @else { (report.profile) } }
            dt { "Read" } dd { (report.judgments.len()) " judgments, " (report.findings.len()) " findings, " (report.follow_ups.len()) " follow-up statements, " (report.indicators.len()) " indicators" }
        }
        @if !report.warnings.is_empty() { h2 { "Warnings" } ul class="warnings" { @for w in &report.warnings { li { (w) } } } }
        h2 { "Findings read" }
        ol { @for f in &report.findings { li { strong { (view::kind_label(f.kind())) } " (" (f.pillar) ") " (f.text) } } }
        form method="post" action="/import/confirm" class="no-print" {
            input type="hidden" name="upload" value=(key);
            input type="hidden" name="published" value=(published);
            button type="submit" id="import-button" { "Import this report" }
            " " a href="/import" { "Choose another" }
        }
        h2 { "How each line was read" }
        pre class="explain" { (explanation) }
    };
    html_response(StatusCode::OK, page("Import preview", Some(s), None, body))
}

fn import_error(s: &Session, message: &str) -> Response {
    html_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        page(
            "Import a report",
            Some(s),
            None,
            import_form(s, Some(message)),
        ),
    )
}

pub(crate) async fn import_confirm(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<Params>,
) -> Response {
    let s = &signed.session;
    let upload = {
        let uploads = state.uploads.lock().unwrap_or_else(|p| p.into_inner());
        uploads
            .get(param(&form, "upload"))
            .filter(|u| u.session_id == signed.id)
            .cloned()
    };
    let Some(upload) = upload else {
        return import_error(s, "that preview has expired: upload the report again");
    };
    let published = param(&form, "published");
    let imported = state
        .backend
        .findings()
        .import_report(call(
            s,
            pb::ImportReportRequest {
                text: String::new(),
                source_name: upload.name.clone(),
                replace: false,
                content: upload.content.clone(),
                media_type: upload.media_type.clone(),
                overrides: (!published.is_empty()).then(|| pb::ReportOverrides {
                    published: published.to_string(),
                    ..Default::default()
                }),
            },
        ))
        .await;
    match imported {
        Err(e) => import_error(s, &explain(&e)),
        Ok(r) => {
            let r = r.into_inner();
            state
                .uploads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(param(&form, "upload"));
            let body = html! {
                (notice(if r.created { "Imported." } else { "This document had already been imported; nothing changed." }))
                dl class="facts" id="imported" {
                    dt { "Organisation" } dd { a href=(format!("/organisations/{}", r.organisation_id)) { (r.organisation_id) } }
                    dt { "Inspection" } dd { (r.inspection_id) }
                    dt { "Read" } dd { (r.judgment_count) " judgments, " (r.finding_count) " findings, " (r.follow_up_count) " follow-up statements, " (r.indicator_count) " indicators" }
                }
                @if !r.warnings.is_empty() { ul class="warnings" { @for w in &r.warnings { li { (w) } } } }
                p { a href=(format!("/items?org={}", r.organisation_id)) { "See its items" } " · "
                    a href=(format!("/review?org={}", r.organisation_id)) { "Review what it says of earlier items" } }
            };
            html_response(StatusCode::OK, page("Report imported", Some(s), None, body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn series_are_quarterly_then_yearly_and_end_on_the_day() {
        let dates = series_dates(d(2019, 2, 10), d(2020, 1, 15));
        assert_eq!(dates.first(), Some(&d(2019, 1, 1)));
        assert_eq!(dates.last(), Some(&d(2020, 1, 15)));
        assert_eq!(dates.len(), 6);
        let long = series_dates(d(2000, 5, 1), d(2026, 1, 1));
        assert_eq!(long[1], d(2001, 1, 1));
        assert!(long.len() < 40);
        assert_eq!(
            series_dates(d(2020, 1, 1), d(2019, 1, 1)),
            vec![d(2019, 1, 1)]
        );
    }

    #[test]
    fn publication_dates_read_months_and_days() {
        assert_eq!(published_date("2019-09"), Some(d(2019, 9, 1)));
        assert_eq!(published_date("2019-09-27"), Some(d(2019, 9, 27)));
        assert_eq!(published_date("September"), None);
    }

    #[test]
    fn next_is_only_a_local_path() {
        assert_eq!(safe_next("/items?org=x"), "/items?org=x");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil"), "/");
    }

    #[test]
    fn uploads_are_typed_by_header_then_name() {
        assert_eq!(media_type_of("application/pdf", "x"), "application/pdf");
        assert_eq!(
            media_type_of("application/octet-stream", "r.HTM"),
            "text/html"
        );
        assert_eq!(media_type_of("", "r.bin"), "");
    }

    #[test]
    fn ageing_buckets_by_time_past_due() {
        let item = |due: Option<(i32, i32, i32)>| pb::TrackedItem {
            due_date: due.map(|(year, month, day)| pb::CalendarDate { year, month, day }),
            ..Default::default()
        };
        let bars = ageing(
            &[
                item(None),
                item(Some((2020, 6, 1))),
                item(Some((2019, 1, 1))),
                item(Some((2020, 3, 1))),
            ],
            d(2020, 5, 1),
        );
        let values: Vec<f64> = bars.iter().map(|b| b.value).collect();
        assert_eq!(values, vec![1.0, 1.0, 1.0, 0.0, 1.0]);
    }
}
