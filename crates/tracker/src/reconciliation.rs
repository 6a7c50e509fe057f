//! Reconciliation on InspectionPublished: for every open item of the
//! organisation from an earlier inspection, `closeout_reconcile::propose`
//! says what the new inspection's follow-up statements and findings make of
//! it, and the tracker stores one pending proposal per (item, inspection)
//! with ProposalMade in the outbox, in the consumer's transaction. A replayed
//! or re-announced inspection proposes nothing new.
//!
//! NOT_ASSESSED proposals are stored too, so that a reviewer sees each item
//! was considered. Nothing changes an item until a person accepts the
//! proposal — unless the organisation's `reconciliation_policy` allows
//! automatic acceptance at or above a score: such a proposal (any outcome but
//! NOT_ASSESSED, whose score measures no evidence) is accepted by the
//! tracker itself, recorded as AUTO_ACCEPTED with ProposalAccepted
//! `automatic = true`. A refusal of the state machine leaves it pending.
//!
//! An organisation that succeeded others (a merger, a renamed force; see
//! [`organisation_succeeded`]) answers for their open items: its reports
//! are reconciled against them too, and each of those items notes the
//! hand-over in its history and lineage — when the succession is recorded,
//! or, for an item the predecessor opened later (its older report imported
//! after the merger was recorded), when the successor's report is
//! reconciled. When an inspection is replaced by
//! a corrected document ([`inspection_replaced`]), its pending proposals
//! are withdrawn (ProposalWithdrawn) and made again from the new text;
//! proposals a person already decided stand.

use crate::error::TrackerError;
use crate::inspections;
use crate::journal::{Cause, SOURCE_SERVICE};
use crate::lineage::{self, NewLink};
use crate::proposals;
use closeout_proto::{self as pb, event_envelope::Payload};
use closeout_reconcile::{MatchConfig, Proposal as Made, ProposalOutcome};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Proposals stored (and announced) per statement: bounds the size of one
/// statement's arrays for an organisation with a very long history.
const PROPOSALS_PER_STATEMENT: usize = 2_000;

/// Records the inspection and proposes for the organisation's earlier open
/// items. Returns how many proposals were made.
pub async fn inspection_published(
    tx: &mut PgConnection,
    published: &pb::InspectionPublished,
    cause: &Cause,
) -> Result<usize, TrackerError> {
    inspections::inspection_published(tx, published).await?;
    let Some(later) = inspections::inspection(tx, &published.inspection_id).await? else {
        return Ok(0);
    };
    propose_for(tx, &later, cause).await
}

/// Proposes for every open item of the later inspection's organisation and
/// of its predecessors that has no standing proposal from that inspection.
async fn propose_for(
    tx: &mut PgConnection,
    later: &inspections::InspectionRow,
    cause: &Cause,
) -> Result<usize, TrackerError> {
    // Items a predecessor opened after its succession was recorded (its
    // older report imported late) are handed over now.
    let successions: Vec<(String, String, String, String)> = sqlx::query_as(
        "WITH RECURSIVE chain(predecessor_id, successor_id, effective_date, note, depth) AS ( \
             SELECT predecessor_id, successor_id, effective_date, note, 0 FROM successions \
             WHERE successor_id = $1 \
             UNION \
             SELECT s.predecessor_id, s.successor_id, s.effective_date, s.note, c.depth + 1 \
             FROM successions s JOIN chain c ON s.successor_id = c.predecessor_id \
             WHERE c.depth < 16) \
         SELECT DISTINCT predecessor_id, successor_id, effective_date, note FROM chain \
         ORDER BY predecessor_id, successor_id",
    )
    .bind(&later.organisation_id)
    .fetch_all(&mut *tx)
    .await?;
    for (predecessor_id, successor_id, effective_date, note) in successions {
        let succeeded = pb::OrganisationSucceeded {
            predecessor_id,
            successor_id,
            effective_date,
            note,
        };
        hand_over(tx, &succeeded, cause).await?;
    }
    let owned = inspections::open_items_before(tx, later).await?;
    if owned.is_empty() {
        return Ok(0);
    }
    let items: Vec<closeout_reconcile::OpenItem> =
        owned.iter().map(|(item, _)| item.clone()).collect();
    let inspection = inspections::later_inspection(tx, later).await?;
    let mut made = closeout_reconcile::propose(&items, &inspection, &MatchConfig::default());
    for (p, (_, owner)) in made.iter_mut().zip(&owned) {
        if *owner != later.organisation_id {
            p.rule = format!(
                "item of {owner}, handed over to {}: {}",
                later.organisation_id, p.rule
            );
        }
    }
    let threshold: Option<f64> = sqlx::query_scalar(
        "SELECT auto_accept_min_score FROM reconciliation_policy WHERE organisation_id = $1",
    )
    .bind(&later.organisation_id)
    .fetch_optional(&mut *tx)
    .await?;
    let mut count = 0;
    // Proposals are stored and announced a chunk at a time, each chunk with
    // one INSERT and one outbox append, whatever the number of open items.
    for chunk in made.chunks(PROPOSALS_PER_STATEMENT) {
        let rows: Vec<(pb::ReconciliationProposal, String)> = chunk
            .iter()
            .map(|p| {
                let proposal = pb::ReconciliationProposal {
                    id: Uuid::now_v7().to_string(),
                    item_id: p.item_id.clone(),
                    organisation_id: later.organisation_id.clone(),
                    inspection_id: later.id.clone(),
                    outcome: wire_outcome(p.outcome) as i32,
                    status: pb::ProposalStatus::Pending as i32,
                    score: p.score,
                    rule: p.rule.clone(),
                    quotes: p.quotes.clone(),
                    line_start: p.line_start,
                    line_end: p.line_end,
                    matched_finding_id: p.matched_finding_id.clone().unwrap_or_default(),
                    created_at: Some(closeout_bus::event::now_timestamp()),
                    version: 1,
                    ..Default::default()
                };
                (proposal, p.matched_follow_up_id.clone().unwrap_or_default())
            })
            .collect();
        let inserted = proposals::insert_many(tx, &rows).await?;
        let stored: Vec<(&Made, pb::ReconciliationProposal)> = chunk
            .iter()
            .zip(rows)
            .zip(inserted)
            .filter(|(_, inserted)| *inserted)
            .map(|((p, (proposal, _)), _)| (p, proposal))
            .collect();
        let announcements: Vec<pb::EventEnvelope> = stored
            .iter()
            .map(|(_, proposal)| made_event(proposal, cause))
            .collect();
        closeout_bus::outbox::append(&mut *tx, &announcements)
            .await
            .map_err(|e| TrackerError::Outbox(e.to_string()))?;
        count += stored.len();
        for (p, mut proposal) in stored {
            let automatic = threshold
                .is_some_and(|min| p.outcome != ProposalOutcome::NotAssessed && p.score >= min);
            if !automatic {
                continue;
            }
            let note = format!(
                "accepted automatically: score {:.2} is at least the organisation's threshold {:.2}",
                p.score,
                threshold.unwrap_or_default()
            );
            match proposals::accept_locked(tx, &mut proposal, &note, true, cause).await {
                Ok(_) => {}
                Err(
                    refused @ (TrackerError::IllegalTransition(_)
                    | TrackerError::PermissionDenied(_)
                    | TrackerError::Invalid(_)),
                ) => {
                    tracing::warn!(proposal = %proposal.id, error = %refused, "automatic acceptance refused; left pending");
                }
                Err(other) => return Err(other),
            }
        }
    }
    tracing::info!(
        inspection = %later.id,
        organisation = %later.organisation_id,
        proposals = count,
        "reconciliation proposals made"
    );
    Ok(count)
}

/// A corrected document replaced inspection `replaced.inspection_id` (now at
/// version `version`): forgets its older follow-up statements, withdraws
/// every pending proposal it made (ProposalWithdrawn) and, once the
/// inspection has been announced, proposes again from the new text.
/// Returns (withdrawn, made). Replaying it withdraws nothing more: the
/// proposals made again are pending and carry the new version's evidence,
/// and the consumer records applied events.
pub async fn inspection_replaced(
    tx: &mut PgConnection,
    replaced: &pb::InspectionReplaced,
    version: u64,
    cause: &Cause,
) -> Result<(usize, usize), TrackerError> {
    if replaced.inspection_id.is_empty() {
        return Err(TrackerError::invalid("inspection_id", "is empty"));
    }
    inspections::forget_replaced(tx, &replaced.inspection_id, version).await?;
    let pending: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM proposals WHERE inspection_id = $1 AND status = $2 ORDER BY id",
    )
    .bind(&replaced.inspection_id)
    .bind(pb::ProposalStatus::Pending as i16)
    .fetch_all(&mut *tx)
    .await?;
    let reason = format!(
        "inspection {} was replaced by a corrected document (sha256 {}); the proposal is made \
         again from the new text",
        replaced.inspection_id,
        if replaced.source_sha256.is_empty() {
            "unknown"
        } else {
            replaced.source_sha256.as_str()
        }
    );
    let mut withdrawn = 0;
    for id in pending {
        proposals::withdraw(tx, id, &reason, cause).await?;
        withdrawn += 1;
    }
    let made = match inspections::inspection(tx, &replaced.inspection_id).await? {
        Some(later) if later.announced => propose_for(tx, &later, cause).await?,
        _ => 0,
    };
    tracing::info!(
        inspection = %replaced.inspection_id,
        withdrawn,
        made,
        "inspection replaced: proposals made again"
    );
    Ok((withdrawn, made))
}

/// Records that `succeeded.predecessor_id` was succeeded by
/// `succeeded.successor_id` (once: recording it again changes nothing) and
/// hands the predecessor's open items over (see [`hand_over`]). Returns
/// whether the succession was new.
pub async fn organisation_succeeded(
    tx: &mut PgConnection,
    succeeded: &pb::OrganisationSucceeded,
    cause: &Cause,
) -> Result<bool, TrackerError> {
    if succeeded.predecessor_id == succeeded.successor_id {
        return Err(TrackerError::invalid(
            "successor_id",
            "an organisation cannot succeed itself",
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO successions (predecessor_id, successor_id, effective_date, note) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(&succeeded.predecessor_id)
    .bind(&succeeded.successor_id)
    .bind(&succeeded.effective_date)
    .bind(&succeeded.note)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    hand_over(tx, succeeded, cause).await?;
    Ok(inserted == 1)
}

/// Hands the predecessor's open items that are not handed over yet to the
/// successor: each gets a HANDED_OVER_TO link to the successor and a
/// progress note in its history, once. Returns how many were handed over.
async fn hand_over(
    tx: &mut PgConnection,
    succeeded: &pb::OrganisationSucceeded,
    cause: &Cause,
) -> Result<usize, TrackerError> {
    let open: Vec<Uuid> = sqlx::query_scalar(
        "SELECT i.id FROM items i WHERE i.organisation_id = $1 AND i.status = ANY($2) \
           AND NOT EXISTS (SELECT 1 FROM item_links l WHERE l.from_item_id = i.id::text \
                           AND l.to_id = $3 AND l.relation = $4) \
         ORDER BY i.id",
    )
    .bind(&succeeded.predecessor_id)
    .bind(crate::store::open_statuses())
    .bind(&succeeded.successor_id)
    .bind(pb::LinkRelation::HandedOverTo as i16)
    .fetch_all(&mut *tx)
    .await?;
    let count = open.len();
    let note = handover_note(succeeded);
    for id in open {
        let Some(mut item) = crate::store::lock_item(tx, id).await? else {
            continue;
        };
        lineage::record(
            tx,
            NewLink {
                from_item_id: &item.id,
                to_id: &succeeded.successor_id,
                relation: pb::LinkRelation::HandedOverTo,
                organisation_id: &item.organisation_id,
                inspection_id: "",
                proposal_id: None,
            },
        )
        .await?;
        crate::commands::apply(
            tx,
            &mut item,
            &closeout_domain::Command::NoteProgress { note: note.clone() },
            cause,
        )
        .await?;
    }
    Ok(count)
}

/// The progress note of a handed-over item.
fn handover_note(succeeded: &pb::OrganisationSucceeded) -> String {
    let mut note = format!(
        "Handed over to {}: {} was succeeded by it",
        succeeded.successor_id, succeeded.predecessor_id
    );
    if !succeeded.effective_date.is_empty() {
        note.push_str(&format!(" on {}", succeeded.effective_date));
    }
    if !succeeded.note.trim().is_empty() {
        note.push_str(&format!(" ({})", succeeded.note.trim()));
    }
    note.push_str("; its later reports are reconciled against this item.");
    note
}

/// ProposalMade, version 1 of the proposal aggregate.
fn made_event(proposal: &pb::ReconciliationProposal, cause: &Cause) -> pb::EventEnvelope {
    closeout_bus::new_event(
        closeout_bus::EventMeta {
            source_service: SOURCE_SERVICE,
            organisation_id: &proposal.organisation_id,
            aggregate_type: proposals::AGGREGATE,
            aggregate_id: &proposal.id,
            aggregate_version: 1,
            actor: &cause.actor,
            correlation_id: &cause.correlation_id,
            causation_id: &cause.causation_id,
        },
        Payload::ProposalMade(pb::ProposalMade {
            proposal_id: proposal.id.clone(),
            item_id: proposal.item_id.clone(),
            inspection_id: proposal.inspection_id.clone(),
            outcome: proposal.outcome,
            score: proposal.score,
            rule: proposal.rule.clone(),
            quotes: proposal.quotes.clone(),
            line_start: proposal.line_start,
            line_end: proposal.line_end,
            matched_finding_id: proposal.matched_finding_id.clone(),
        }),
    )
}

/// A matcher outcome on the wire.
pub fn wire_outcome(outcome: ProposalOutcome) -> pb::ProposalOutcome {
    match outcome {
        ProposalOutcome::Addressed => pb::ProposalOutcome::Addressed,
        ProposalOutcome::PartiallyAddressed => pb::ProposalOutcome::PartiallyAddressed,
        ProposalOutcome::NotAddressed => pb::ProposalOutcome::NotAddressed,
        ProposalOutcome::Superseded => pb::ProposalOutcome::Superseded,
        ProposalOutcome::NotAssessed => pb::ProposalOutcome::NotAssessed,
    }
}

/// Parses an automatic-acceptance policy: `org=score` pairs separated by
/// commas, e.g. `hertfordshire=0.95,kent=0.9`; each score in (0, 1].
pub fn parse_policy(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (organisation, score) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not organisation=score"))?;
        let organisation = organisation.trim();
        closeout_domain::OrganisationId::parse(organisation)
            .map_err(|e| format!("{part:?}: {e}"))?;
        let score: f64 = score
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: the score is not a number"))?;
        if !(score > 0.0 && score <= 1.0) {
            return Err(format!("{part:?}: the score must be in (0, 1]"));
        }
        out.push((organisation.to_string(), score));
    }
    Ok(out)
}

/// Stores the configured policies (replacing those organisations' rows).
pub async fn install_policy(pool: &PgPool, policy: &[(String, f64)]) -> Result<(), sqlx::Error> {
    for (organisation, score) in policy {
        sqlx::query(
            "INSERT INTO reconciliation_policy (organisation_id, auto_accept_min_score) \
             VALUES ($1, $2) ON CONFLICT (organisation_id) \
             DO UPDATE SET auto_accept_min_score = EXCLUDED.auto_accept_min_score",
        )
        .bind(organisation)
        .bind(score)
        .execute(pool)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(
            parse_policy(" hertfordshire=0.95, kent = 1 ").expect("valid"),
            vec![("hertfordshire".into(), 0.95), ("kent".into(), 1.0)]
        );
        assert!(parse_policy("").expect("empty").is_empty());
        assert!(parse_policy("kent").is_err());
        assert!(parse_policy("kent=2").is_err());
        assert!(parse_policy("kent=0").is_err());
        assert!(parse_policy("Not A Slug=0.5").is_err());
    }

    #[test]
    fn outcomes_map_to_the_wire() {
        for o in ProposalOutcome::ALL {
            assert!(wire_outcome(o).as_str_name().ends_with(o.as_str()));
        }
    }
}
