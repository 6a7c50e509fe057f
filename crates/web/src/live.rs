//! Live updates: `GET /events` is a server-sent event stream fed by the
//! tracker's WatchItems, opened with the session's own credentials (so a
//! person sees only the changes they may read). One WatchItems stream per
//! browser connection. The browser resumes with `Last-Event-ID` (the
//! tracker's sequence); a fresh page passes `since` (when it was drawn) so
//! that history older than the page is not sent again.

use crate::backend::{call, explain};
use crate::{AppState, Signed};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use closeout_proto as pb;
use futures::StreamExt;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

pub(crate) async fn events(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> axum::response::Response {
    let get = |k: &str| {
        params
            .get(k)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let organisation = match signed.session.own_organisation() {
        Some(own) => own.to_string(),
        None => get("org"),
    };
    let item = get("item");
    let resume: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let since_ms: i64 = if resume.is_some() {
        0
    } else {
        get("since").parse().unwrap_or(0)
    };
    let request = call(
        &signed.session,
        pb::WatchItemsRequest {
            organisation_id: organisation,
            statuses: Vec::new(),
            after_sequence: resume.unwrap_or(0),
        },
    );
    let stream = match state.backend.tracker().watch_items(request).await {
        Ok(response) => response.into_inner(),
        Err(e) => {
            let message = explain(&e);
            let once = futures::stream::once(async move {
                Ok::<Event, Infallible>(Event::default().event("refused").data(message))
            });
            return Sse::new(once).into_response();
        }
    };
    let events = stream
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(move |r| {
            let item = item.clone();
            async move {
                let change = r.ok()?;
                let event = change.event.as_ref()?;
                let at = event
                    .occurred_at
                    .as_ref()
                    .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
                    .unwrap_or(0);
                if at < since_ms {
                    return None;
                }
                let item_id = change.item.as_ref().map(|i| i.id.as_str()).unwrap_or("");
                if !item.is_empty() && item_id != item {
                    return None;
                }
                let kind = event.event_type.rsplit('.').next().unwrap_or("");
                Some(Ok::<Event, Infallible>(
                    Event::default()
                        .id(change.sequence.to_string())
                        .event("item")
                        .data(format!("{kind} {item_id}")),
                ))
            }
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
