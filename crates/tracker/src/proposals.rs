//! Reconciliation proposals once made: reading them, and deciding on them.
//!
//! [`accept`] applies a proposal to its item through the domain state
//! machine (so an item that changed since cannot be moved illegally:
//! FAILED_PRECONDITION) and records the link across inspections:
//!
//! | outcome | the item | link |
//! |---|---|---|
//! | ADDRESSED | Verify, the later inspection as closure reference (ItemVerified.closed_by_inspection_id) | CLOSED_BY the inspection |
//! | PARTIALLY_ADDRESSED | ProgressNoted with the quotes; stays open | — |
//! | NOT_ADDRESSED | ProgressNoted with the quotes; stays open | — |
//! | SUPERSEDED | Supersede by the matched finding (ItemSuperseded.superseding_item_id) | SUPERSEDED_BY the new item, and the new item CARRIED_FROM it |
//! | NOT_ASSESSED | nothing | — |
//!
//! [`reject`] records the reason and leaves the item alone. [`withdraw`]
//! retires a pending proposal whose inspection was replaced by a corrected
//! document (ProposalWithdrawn; the tracker then proposes again). Both need the
//! inspectorate (the tracker itself for automatic acceptance), the
//! proposal's version as the caller saw it (ABORTED otherwise) and a
//! pending proposal (FAILED_PRECONDITION otherwise). The proposal's change,
//! its event (aggregate "proposal") and the item's events commit in one
//! transaction.

use crate::commands;
use crate::error::TrackerError;
use crate::journal::{Cause, SOURCE_SERVICE};
use crate::lineage::{self, NewLink};
use crate::store;
use chrono::{DateTime, Utc};
use closeout_domain as domain;
use closeout_proto::{self as pb, event_envelope::Payload};
use closeout_service::paging::Page;
use prost::Message;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

/// The aggregate type of proposals' events.
pub const AGGREGATE: &str = "proposal";

/// Columns of `proposals`, in [`ProposalRow`] order.
const COLUMNS: &str = "id, item_id, organisation_id, inspection_id, outcome, status, score, \
     rule, quotes, line_start, line_end, matched_finding_id, decision_reason, decided_by, \
     created_at, decided_at, version";

/// One row of `proposals`.
#[derive(FromRow)]
struct ProposalRow {
    id: Uuid,
    item_id: Uuid,
    organisation_id: String,
    inspection_id: String,
    outcome: i16,
    status: i16,
    score: f64,
    rule: String,
    quotes: Vec<String>,
    line_start: i32,
    line_end: i32,
    matched_finding_id: String,
    decision_reason: String,
    decided_by: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<ProposalRow> for pb::ReconciliationProposal {
    type Error = TrackerError;

    fn try_from(r: ProposalRow) -> Result<Self, TrackerError> {
        let decided_by = r
            .decided_by
            .as_deref()
            .map(pb::Actor::decode)
            .transpose()
            .map_err(|e| TrackerError::Corrupt(format!("decider of proposal {}: {e}", r.id)))?;
        Ok(pb::ReconciliationProposal {
            id: r.id.to_string(),
            item_id: r.item_id.to_string(),
            organisation_id: r.organisation_id,
            inspection_id: r.inspection_id,
            outcome: i32::from(r.outcome),
            status: i32::from(r.status),
            score: r.score,
            rule: r.rule,
            quotes: r.quotes,
            line_start: u32::try_from(r.line_start).unwrap_or(0),
            line_end: u32::try_from(r.line_end).unwrap_or(0),
            matched_finding_id: r.matched_finding_id,
            decision_reason: r.decision_reason,
            decided_by,
            created_at: Some(store::timestamp(r.created_at)),
            decided_at: r.decided_at.map(store::timestamp),
            version: u64::try_from(r.version).unwrap_or(0),
        })
    }
}

/// An unknown proposal.
fn not_found(id: Uuid) -> TrackerError {
    TrackerError::NotFound {
        what: "proposal",
        id: id.to_string(),
    }
}

/// Parses a proposal id; a malformed one is INVALID_ARGUMENT.
pub fn parse_id(value: &str) -> Result<Uuid, TrackerError> {
    crate::store::check_id("proposal_id", value)?;
    Uuid::parse_str(value.trim()).map_err(|_| {
        TrackerError::invalid(
            "proposal_id",
            format!("{value:?} is not a proposal id (a UUID)"),
        )
    })
}

/// Stores new pending proposals, each with its matched follow-up id, in one
/// statement, leaving out each one whose item has a standing proposal
/// (pending or decided, not withdrawn) from the same inspection. Returns,
/// in order, whether each was inserted.
pub async fn insert_many(
    tx: &mut PgConnection,
    proposals: &[(pb::ReconciliationProposal, String)],
) -> Result<Vec<bool>, TrackerError> {
    if proposals.is_empty() {
        return Ok(Vec::new());
    }
    let n = proposals.len();
    let mut ids = Vec::with_capacity(n);
    let mut item_ids = Vec::with_capacity(n);
    let mut organisations = Vec::with_capacity(n);
    let mut inspections = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    let mut rules = Vec::with_capacity(n);
    let mut line_starts = Vec::with_capacity(n);
    let mut line_ends = Vec::with_capacity(n);
    let mut findings = Vec::with_capacity(n);
    let mut follow_ups = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    // Quotes are a list per proposal: flattened with their owner's position
    // (1-based, as WITH ORDINALITY counts) and gathered again in SQL.
    let mut quote_owners: Vec<i64> = Vec::new();
    let mut quotes: Vec<&str> = Vec::new();
    for (position, (proposal, follow_up)) in proposals.iter().enumerate() {
        ids.push(
            Uuid::parse_str(&proposal.id)
                .map_err(|_| TrackerError::Corrupt("proposal id is not a UUID".into()))?,
        );
        item_ids.push(
            Uuid::parse_str(&proposal.item_id)
                .map_err(|_| TrackerError::Corrupt("item id is not a UUID".into()))?,
        );
        organisations.push(proposal.organisation_id.as_str());
        inspections.push(proposal.inspection_id.as_str());
        outcomes.push(proposal.outcome as i16);
        statuses.push(proposal.status as i16);
        scores.push(proposal.score);
        rules.push(proposal.rule.as_str());
        line_starts.push(i32::try_from(proposal.line_start).unwrap_or(0));
        line_ends.push(i32::try_from(proposal.line_end).unwrap_or(0));
        findings.push(proposal.matched_finding_id.as_str());
        follow_ups.push(follow_up.as_str());
        created.push(store::from_timestamp(proposal.created_at.as_ref()));
        versions.push(proposal.version as i64);
        for quote in &proposal.quotes {
            quote_owners.push(position as i64 + 1);
            quotes.push(quote);
        }
    }
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "WITH q AS (SELECT owner, array_agg(quote ORDER BY ord) AS quotes                     FROM unnest($15::int8[], $16::text[]) WITH ORDINALITY AS x(owner, quote, ord)                     GROUP BY owner)          INSERT INTO proposals (id, item_id, organisation_id, inspection_id, outcome, status,          score, rule, quotes, line_start, line_end, matched_finding_id, matched_follow_up_id,          created_at, version)          SELECT p.id, p.item_id, p.organisation_id, p.inspection_id, p.outcome, p.status,                 p.score, p.rule, coalesce(q.quotes, '{}'), p.line_start, p.line_end,                 p.finding_id, p.follow_up_id, p.created_at, p.version          FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int2[], $6::int2[],                      $7::float8[], $8::text[], $9::int4[], $10::int4[], $11::text[], $12::text[],                      $13::timestamptz[], $14::int8[]) WITH ORDINALITY               AS p(id, item_id, organisation_id, inspection_id, outcome, status, score, rule,                    line_start, line_end, finding_id, follow_up_id, created_at, version, n)          LEFT JOIN q ON q.owner = p.n          ORDER BY p.n          ON CONFLICT (item_id, inspection_id) WHERE status <> 5 DO NOTHING          RETURNING id",
    )
    .bind(&ids)
    .bind(&item_ids)
    .bind(&organisations)
    .bind(&inspections)
    .bind(&outcomes)
    .bind(&statuses)
    .bind(&scores)
    .bind(&rules)
    .bind(&line_starts)
    .bind(&line_ends)
    .bind(&findings)
    .bind(&follow_ups)
    .bind(&created)
    .bind(&versions)
    .bind(&quote_owners)
    .bind(&quotes)
    .fetch_all(&mut *tx)
    .await?;
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    Ok(ids.iter().map(|id| inserted.contains(id)).collect())
}

/// Filters of ListProposals, already validated.
#[derive(Debug, Default)]
pub struct ProposalFilter {
    pub organisation_id: String,
    pub inspection_id: String,
    pub status: Option<i16>,
}

/// Lists proposals, oldest first, one page at a time.
pub async fn list(
    pool: &PgPool,
    filter: &ProposalFilter,
    page: Page,
) -> Result<(Vec<pb::ReconciliationProposal>, String), TrackerError> {
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM proposals WHERE true"));
    if !filter.organisation_id.is_empty() {
        query
            .push(" AND organisation_id = ")
            .push_bind(&filter.organisation_id);
    }
    if !filter.inspection_id.is_empty() {
        query
            .push(" AND inspection_id = ")
            .push_bind(&filter.inspection_id);
    }
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status);
    }
    query
        .push(" ORDER BY created_at, id LIMIT ")
        .push_bind(page.fetch())
        .push(" OFFSET ")
        .push_bind(page.offset);
    let rows: Vec<ProposalRow> = query.build_query_as().fetch_all(pool).await?;
    let mut proposals = rows
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<Vec<_>, _>>()?;
    let next = page.finish(&mut proposals);
    Ok((proposals, next))
}

async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<pb::ReconciliationProposal, TrackerError> {
    let row: Option<ProposalRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM proposals WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    row.ok_or_else(|| not_found(id))?.try_into()
}

/// Only the inspectorate (or the tracker itself) decides on proposals:
/// checked before the proposal is read, so a refused caller learns nothing.
fn check_decider(actor: &pb::Actor) -> Result<(), TrackerError> {
    match pb::Role::try_from(actor.role) {
        Ok(pb::Role::Inspectorate | pb::Role::System) => Ok(()),
        Ok(pb::Role::Unspecified) | Err(_) => Err(TrackerError::Unauthenticated(
            "the caller has no role".into(),
        )),
        Ok(role) => Err(TrackerError::PermissionDenied(format!(
            "only the inspectorate decides on reconciliation proposals, not the {} role",
            closeout_service::auth::role_name(role)
        ))),
    }
}

/// The checks on the proposal itself, in order: the version the caller saw
/// (ABORTED), then that it is still pending (FAILED_PRECONDITION).
fn check_pending(
    proposal: &pb::ReconciliationProposal,
    expected_version: u64,
) -> Result<(), TrackerError> {
    if proposal.version != expected_version {
        return Err(TrackerError::StaleProposal {
            proposal_id: proposal.id.clone(),
            expected: expected_version,
            actual: proposal.version,
        });
    }
    if proposal.status != pb::ProposalStatus::Pending as i32 {
        let status = pb::ProposalStatus::try_from(proposal.status)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        return Err(TrackerError::IllegalTransition(format!(
            "proposal {} has already been decided ({status})",
            proposal.id
        )));
    }
    Ok(())
}

/// Writes the decision and appends its event to the outbox.
async fn record_decision(
    tx: &mut PgConnection,
    proposal: &mut pb::ReconciliationProposal,
    status: pb::ProposalStatus,
    reason: &str,
    payload: Payload,
    cause: &Cause,
) -> Result<(), TrackerError> {
    let envelope = closeout_bus::new_event(
        closeout_bus::EventMeta {
            source_service: SOURCE_SERVICE,
            organisation_id: &proposal.organisation_id,
            aggregate_type: AGGREGATE,
            aggregate_id: &proposal.id,
            aggregate_version: proposal.version + 1,
            actor: &cause.actor,
            correlation_id: &cause.correlation_id,
            causation_id: &cause.causation_id,
        },
        payload,
    );
    let at = store::from_timestamp(envelope.occurred_at.as_ref());
    let id = Uuid::parse_str(&proposal.id)
        .map_err(|_| TrackerError::Corrupt("proposal id is not a UUID".into()))?;
    sqlx::query(
        "UPDATE proposals SET status = $2, decision_reason = $3, decided_by = $4, \
         decided_at = $5, version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(status as i16)
    .bind(reason)
    .bind(cause.actor.encode_to_vec())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    closeout_bus::outbox::append(&mut *tx, std::slice::from_ref(&envelope))
        .await
        .map_err(|e| TrackerError::Outbox(e.to_string()))?;
    proposal.status = status as i32;
    proposal.decision_reason = reason.to_string();
    proposal.decided_by = Some(cause.actor.clone());
    proposal.decided_at = Some(store::timestamp(at));
    proposal.version += 1;
    Ok(())
}

/// Accepts proposal `id` at `expected_version` for `cause.actor`; returns
/// the proposal and its item after it.
pub async fn accept(
    pool: &PgPool,
    id: Uuid,
    expected_version: u64,
    note: &str,
    cause: &Cause,
) -> Result<(pb::ReconciliationProposal, pb::TrackedItem), TrackerError> {
    check_decider(&cause.actor)?;
    let mut tx = pool.begin().await?;
    let mut proposal = lock(&mut tx, id).await?;
    check_pending(&proposal, expected_version)?;
    let item = accept_locked(&mut tx, &mut proposal, note, false, cause).await?;
    tx.commit().await?;
    // Events appended: wake the relay and WatchItems now.
    closeout_bus::outbox::committed(pool);
    Ok((proposal, item))
}

/// Accepts a pending `proposal` (locked or just made on `tx`): moves its
/// item, records the links, the decision and ProposalAccepted.
pub async fn accept_locked(
    tx: &mut PgConnection,
    proposal: &mut pb::ReconciliationProposal,
    note: &str,
    automatic: bool,
    cause: &Cause,
) -> Result<pb::TrackedItem, TrackerError> {
    let item_id = Uuid::parse_str(&proposal.item_id)
        .map_err(|_| TrackerError::Corrupt("item id is not a UUID".into()))?;
    let mut item = store::lock_item(tx, item_id)
        .await?
        .ok_or_else(|| TrackerError::item_not_found(item_id.to_string()))?;
    let outcome =
        pb::ProposalOutcome::try_from(proposal.outcome).unwrap_or(pb::ProposalOutcome::Unspecified);
    if let Some(command) = command_for(proposal, outcome, tx).await? {
        commands::apply(tx, &mut item, &command, cause).await?;
    }
    let proposal_id = Uuid::parse_str(&proposal.id).ok();
    match outcome {
        pb::ProposalOutcome::Addressed => {
            lineage::record(
                tx,
                NewLink {
                    from_item_id: &item.id,
                    to_id: &proposal.inspection_id,
                    relation: pb::LinkRelation::ClosedBy,
                    organisation_id: &item.organisation_id,
                    inspection_id: &proposal.inspection_id,
                    proposal_id,
                },
            )
            .await?;
        }
        pb::ProposalOutcome::Superseded if !item.superseded_by_item_id.is_empty() => {
            let newer = item.superseded_by_item_id.clone();
            for (from, to, relation) in [
                (&item.id, &newer, pb::LinkRelation::SupersededBy),
                (&newer, &item.id, pb::LinkRelation::CarriedFrom),
            ] {
                lineage::record(
                    tx,
                    NewLink {
                        from_item_id: from,
                        to_id: to,
                        relation,
                        organisation_id: &item.organisation_id,
                        inspection_id: &proposal.inspection_id,
                        proposal_id,
                    },
                )
                .await?;
            }
        }
        _ => {}
    }
    let status = if automatic {
        pb::ProposalStatus::AutoAccepted
    } else {
        pb::ProposalStatus::Accepted
    };
    let accepted = Payload::ProposalAccepted(pb::ProposalAccepted {
        proposal_id: proposal.id.clone(),
        item_id: proposal.item_id.clone(),
        outcome: proposal.outcome,
        automatic,
        note: note.to_string(),
    });
    record_decision(tx, proposal, status, note, accepted, cause).await?;
    Ok(item)
}

/// The lifecycle command an accepted proposal runs on its item, if any.
async fn command_for(
    proposal: &pb::ReconciliationProposal,
    outcome: pb::ProposalOutcome,
    tx: &mut PgConnection,
) -> Result<Option<domain::Command>, TrackerError> {
    let inspection = crate::inspections::inspection(tx, &proposal.inspection_id).await?;
    let named = inspection
        .as_ref()
        .map(|i| {
            let name = [i.programme.as_str(), i.period.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            if name.is_empty() && !i.title.trim().is_empty() {
                format!("{} (inspection {})", i.title.trim(), i.id)
            } else if name.is_empty() {
                format!("inspection {}", i.id)
            } else {
                format!("{name} inspection {}", i.id)
            }
        })
        .unwrap_or_else(|| format!("inspection {}", proposal.inspection_id));
    let quoted = |verdict: &str| {
        let mut note = format!("{verdict} according to the {named}");
        if proposal.line_start > 0 {
            note.push_str(&format!(
                " (lines {}-{})",
                proposal.line_start, proposal.line_end
            ));
        }
        if !proposal.quotes.is_empty() {
            note.push_str(": “");
            note.push_str(&proposal.quotes.join(" "));
            note.push('”');
        }
        note
    };
    Ok(match outcome {
        pb::ProposalOutcome::Addressed => Some(domain::Command::Verify {
            closure_reference: format!("later inspection: {named}"),
            closed_by_inspection: domain::InspectionId::parse(&proposal.inspection_id).ok(),
        }),
        pb::ProposalOutcome::PartiallyAddressed => Some(domain::Command::NoteProgress {
            note: quoted("Partially addressed"),
        }),
        pb::ProposalOutcome::NotAddressed => Some(domain::Command::NoteProgress {
            note: quoted("Not addressed"),
        }),
        pb::ProposalOutcome::Superseded => Some(domain::Command::Supersede {
            superseding_finding_id: proposal.matched_finding_id.clone(),
            reason: Some(quoted("Re-raised by a new finding")),
        }),
        pb::ProposalOutcome::NotAssessed | pb::ProposalOutcome::Unspecified => None,
    })
}

/// Withdraws pending proposal `id` (its inspection was replaced by a
/// corrected document) with `reason`, appending ProposalWithdrawn. A
/// proposal no longer pending is left alone: a person's decision stands.
pub async fn withdraw(
    tx: &mut PgConnection,
    id: Uuid,
    reason: &str,
    cause: &Cause,
) -> Result<bool, TrackerError> {
    let mut proposal = lock(tx, id).await?;
    if proposal.status != pb::ProposalStatus::Pending as i32 {
        return Ok(false);
    }
    let withdrawn = Payload::ProposalWithdrawn(pb::ProposalWithdrawn {
        proposal_id: proposal.id.clone(),
        item_id: proposal.item_id.clone(),
        inspection_id: proposal.inspection_id.clone(),
        reason: reason.to_string(),
    });
    record_decision(
        tx,
        &mut proposal,
        pb::ProposalStatus::Withdrawn,
        reason,
        withdrawn,
        cause,
    )
    .await?;
    Ok(true)
}

/// Rejects proposal `id` at `expected_version` with `reason`; the item is
/// left as it is.
pub async fn reject(
    pool: &PgPool,
    id: Uuid,
    expected_version: u64,
    reason: &str,
    cause: &Cause,
) -> Result<pb::ReconciliationProposal, TrackerError> {
    check_decider(&cause.actor)?;
    let mut tx = pool.begin().await?;
    let mut proposal = lock(&mut tx, id).await?;
    check_pending(&proposal, expected_version)?;
    if reason.trim().is_empty() {
        return Err(TrackerError::invalid(
            "reason",
            "rejecting a proposal needs a reason",
        ));
    }
    let rejected = Payload::ProposalRejected(pb::ProposalRejected {
        proposal_id: proposal.id.clone(),
        item_id: proposal.item_id.clone(),
        reason: reason.to_string(),
    });
    record_decision(
        &mut tx,
        &mut proposal,
        pb::ProposalStatus::Rejected,
        reason,
        rejected,
        cause,
    )
    .await?;
    tx.commit().await?;
    // Events appended: wake the relay and WatchItems now.
    closeout_bus::outbox::committed(pool);
    Ok(proposal)
}
