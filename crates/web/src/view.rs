//! The page shell and the words pages use: the layout every page shares
//! (navigation, who is signed in, the live-update hook), and the
//! inspectorate's names for statuses, kinds, grades and scales.

use crate::session::Session;
use closeout_proto as pb;
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The page: title, navigation, the signed-in person, `body`. `live` names
/// the event filter (`org=…`, `item=…`) the page refreshes on, if any.
pub fn page(title: &str, session: Option<&Session>, live: Option<&str>, body: Markup) -> Markup {
    let rendered_at = chrono::Utc::now().timestamp_millis();
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Closeout" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body data-live=[live] data-rendered-at=(rendered_at) {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    nav aria-label="Main" {
                        a class="brand" href="/" { "Closeout" }
                        @if session.is_some() {
                            a href="/" { "Overview" }
                            a href="/items" { "Items" }
                            a href="/review" { "Reconciliation review" }
                            a href="/import" { "Import" }
                        }
                    }
                    @if let Some(session) = session {
                        form class="who" method="post" action="/logout" {
                            span { "Signed in as " strong { (session.identity.subject) } " (" (session.role_name())
                                @if let Some(org) = session.own_organisation() { ", " (org) } ")" }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @if live.is_some() {
                        p id="live-status" class="live" role="status" aria-live="polite" {}
                    }
                    (body)
                }
                footer { "Closeout — areas for improvement followed to closure." }
            }
        }
    }
}

/// An error box with the service's words.
pub fn error_box(message: &str) -> Markup {
    html! { div class="error" role="alert" { (message) } }
}

/// A notice (an action that worked).
pub fn notice(message: &str) -> Markup {
    html! { div class="notice" role="status" { (message) } }
}

pub fn status_label(status: pb::ItemStatus) -> &'static str {
    match status {
        pb::ItemStatus::Open => "Open",
        pb::ItemStatus::InProgress => "In progress",
        pb::ItemStatus::AwaitingVerification => "Awaiting verification",
        pb::ItemStatus::Closed => "Closed",
        pb::ItemStatus::Superseded => "Superseded",
        pb::ItemStatus::Unspecified => "Unknown",
    }
}

/// Status as written in URLs.
pub fn status_slug(status: pb::ItemStatus) -> &'static str {
    match status {
        pb::ItemStatus::Open => "open",
        pb::ItemStatus::InProgress => "in-progress",
        pb::ItemStatus::AwaitingVerification => "awaiting-verification",
        pb::ItemStatus::Closed => "closed",
        pb::ItemStatus::Superseded => "superseded",
        pb::ItemStatus::Unspecified => "",
    }
}

pub const STATUSES: [pb::ItemStatus; 5] = [
    pb::ItemStatus::Open,
    pb::ItemStatus::InProgress,
    pb::ItemStatus::AwaitingVerification,
    pb::ItemStatus::Closed,
    pb::ItemStatus::Superseded,
];

pub fn parse_status(text: &str) -> Option<pb::ItemStatus> {
    STATUSES.into_iter().find(|s| status_slug(*s) == text)
}

pub fn kind_label(kind: pb::FindingKind) -> &'static str {
    match kind {
        pb::FindingKind::AreaForImprovement => "Area for improvement",
        pb::FindingKind::CauseOfConcern => "Cause of concern",
        pb::FindingKind::Recommendation => "Recommendation",
        pb::FindingKind::NationalRecommendation => "National recommendation",
        pb::FindingKind::NoteworthyPractice => "Noteworthy practice",
        pb::FindingKind::Unspecified => "Unknown",
    }
}

pub fn kind_slug(kind: pb::FindingKind) -> &'static str {
    match kind {
        pb::FindingKind::AreaForImprovement => "area-for-improvement",
        pb::FindingKind::CauseOfConcern => "cause-of-concern",
        pb::FindingKind::Recommendation => "recommendation",
        pb::FindingKind::NationalRecommendation => "national-recommendation",
        pb::FindingKind::NoteworthyPractice => "noteworthy-practice",
        pb::FindingKind::Unspecified => "",
    }
}

pub const KINDS: [pb::FindingKind; 4] = [
    pb::FindingKind::AreaForImprovement,
    pb::FindingKind::CauseOfConcern,
    pb::FindingKind::Recommendation,
    pb::FindingKind::NationalRecommendation,
];

pub fn parse_kind(text: &str) -> Option<pb::FindingKind> {
    KINDS.into_iter().find(|k| kind_slug(*k) == text)
}

pub fn grade_label(grade: pb::Grade) -> &'static str {
    match grade {
        pb::Grade::Outstanding => "Outstanding",
        pb::Grade::Good => "Good",
        pb::Grade::Adequate => "Adequate",
        pb::Grade::RequiresImprovement => "Requires improvement",
        pb::Grade::Inadequate => "Inadequate",
        pb::Grade::Ungraded => "Ungraded",
        pb::Grade::Unspecified => "—",
    }
}

/// CSS class of a grade (colour plus its name, never colour alone).
pub fn grade_class(grade: pb::Grade) -> &'static str {
    match grade {
        pb::Grade::Outstanding => "g-outstanding",
        pb::Grade::Good => "g-good",
        pb::Grade::Adequate => "g-adequate",
        pb::Grade::RequiresImprovement => "g-ri",
        pb::Grade::Inadequate => "g-inadequate",
        _ => "g-none",
    }
}

pub fn scale_label(scale: pb::GradeScale) -> &'static str {
    match scale {
        pb::GradeScale::FourTier => {
            "Four-tier scale: Outstanding, Good, Requires improvement, Inadequate"
        }
        pb::GradeScale::FiveTier => {
            "Five-tier scale: Outstanding, Good, Adequate, Requires improvement, Inadequate"
        }
        pb::GradeScale::Unspecified => "Scale not stated",
    }
}

pub fn scale_short(scale: pb::GradeScale) -> &'static str {
    match scale {
        pb::GradeScale::FourTier => "four-tier",
        pb::GradeScale::FiveTier => "five-tier",
        pb::GradeScale::Unspecified => "unstated",
    }
}

pub fn outcome_label(outcome: pb::ProposalOutcome) -> &'static str {
    match outcome {
        pb::ProposalOutcome::Addressed => "Addressed",
        pb::ProposalOutcome::PartiallyAddressed => "Partially addressed",
        pb::ProposalOutcome::NotAddressed => "Not addressed",
        pb::ProposalOutcome::Superseded => "Superseded",
        pb::ProposalOutcome::NotAssessed => "Not assessed",
        pb::ProposalOutcome::Unspecified => "Unknown",
    }
}

pub fn proposal_status_label(status: pb::ProposalStatus) -> &'static str {
    match status {
        pb::ProposalStatus::Pending => "Pending",
        pb::ProposalStatus::Accepted => "Accepted",
        pb::ProposalStatus::Rejected => "Rejected",
        pb::ProposalStatus::AutoAccepted => "Accepted automatically",
        pb::ProposalStatus::Withdrawn => "Withdrawn",
        pb::ProposalStatus::Unspecified => "Unknown",
    }
}

pub fn relation_label(relation: pb::LinkRelation) -> &'static str {
    match relation {
        pb::LinkRelation::CarriedFrom => "carried from",
        pb::LinkRelation::SupersededBy => "superseded by",
        pb::LinkRelation::ClosedBy => "closed by",
        pb::LinkRelation::HandedOverTo => "handed over to",
        pb::LinkRelation::Unspecified => "linked to",
    }
}

pub fn date(d: Option<&pb::CalendarDate>) -> String {
    match d {
        Some(d) if d.year > 0 => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
        _ => "—".into(),
    }
}

/// A protobuf timestamp as `YYYY-MM-DD HH:MM UTC`.
pub fn timestamp(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// The type of an event without its package (`StatusChanged`).
pub fn event_name(event_type: &str) -> &str {
    event_type.rsplit('.').next().unwrap_or(event_type)
}

/// A `<select>` option.
pub fn option(value: &str, label: &str, selected: bool) -> Markup {
    html! { option value=(value) selected[selected] { (label) } }
}

/// Raw markup known to be safe (vendored static text).
pub fn raw(text: &'static str) -> Markup {
    PreEscaped(text.to_string())
}
