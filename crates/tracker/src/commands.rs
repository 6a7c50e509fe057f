//! Lifecycle commands. Each is checked by the domain state machine
//! (`closeout_domain::decide`) against the item's current state and the
//! caller, and against the version the caller last saw; only then are the
//! domain's changes turned into events and appended through the journal.
//! A refused command writes nothing.
//!
//! Order of the checks: the caller's role and organisation (PERMISSION
//! DENIED, revealing nothing about the item), then the expected version
//! (ABORTED), then the transition (FAILED_PRECONDITION) and the command's
//! fields (INVALID_ARGUMENT). Concurrent commands on one item are
//! serialised by `SELECT … FOR UPDATE`: the second sees the first's new
//! version and is refused with ABORTED.

use crate::error::TrackerError;
use crate::journal::{Cause, Journal};
use crate::store;
use closeout_domain as domain;
use closeout_proto::{self as pb, event_envelope::Payload};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A command addressed to one item at the version the caller last saw.
#[derive(Debug, Clone)]
pub struct Request {
    pub item_id: Uuid,
    /// The item version the caller last saw.
    pub expected_version: u64,
    /// What to do, in the domain's terms.
    pub command: domain::Command,
}

/// Runs `request` for `cause.actor`; returns the item after it.
pub async fn execute(
    pool: &PgPool,
    request: Request,
    cause: &Cause,
) -> Result<pb::TrackedItem, TrackerError> {
    let actor = domain_actor(&cause.actor)?;
    let mut tx = pool.begin().await?;
    let mut item = store::lock_item(&mut tx, request.item_id)
        .await?
        .ok_or_else(|| TrackerError::item_not_found(request.item_id.to_string()))?;
    let state = item_state(&item)?;
    let today = chrono::Utc::now().date_naive();
    let decided = domain::decide(&state, &actor, &request.command, today);
    if let Err(
        refusal
        @ (domain::Refusal::NotPermitted { .. } | domain::Refusal::WrongOrganisation { .. }),
    ) = &decided
    {
        return Err(TrackerError::PermissionDenied(refusal.to_string()));
    }
    if item.version != request.expected_version {
        return Err(TrackerError::StaleVersion {
            item_id: item.id.clone(),
            expected: request.expected_version,
            actual: item.version,
        });
    }
    let changes = decided.map_err(refusal_error)?;
    let mut payloads = Vec::with_capacity(changes.len());
    for change in changes {
        payloads.push(payload_of(&mut tx, &item, change).await?);
    }
    Journal::append(&mut tx, &mut item, payloads, cause).await?;
    tx.commit().await?;
    Ok(item)
}

/// Runs `command` for `cause.actor` on `item`, already locked on `tx`, with
/// no version check (the caller has checked what it relies on): used when
/// an accepted reconciliation proposal moves its item. Every refusal of the
/// state machine is returned (FAILED_PRECONDITION for an illegal
/// transition) and nothing is written.
pub async fn apply(
    tx: &mut PgConnection,
    item: &mut pb::TrackedItem,
    command: &domain::Command,
    cause: &Cause,
) -> Result<Vec<pb::EventEnvelope>, TrackerError> {
    let actor = domain_actor(&cause.actor)?;
    let state = item_state(item)?;
    let today = chrono::Utc::now().date_naive();
    let changes = domain::decide(&state, &actor, command, today).map_err(refusal_error)?;
    let mut payloads = Vec::with_capacity(changes.len());
    for change in changes {
        payloads.push(payload_of(tx, item, change).await?);
    }
    Journal::append(tx, item, payloads, cause).await
}

/// The domain's view of the caller. Roles outside the lifecycle (none
/// given) are refused as unauthenticated.
pub fn domain_actor(actor: &pb::Actor) -> Result<domain::Actor, TrackerError> {
    let role = match pb::Role::try_from(actor.role) {
        Ok(pb::Role::Inspectorate) => domain::Role::Inspectorate,
        Ok(pb::Role::InspectedBody) => domain::Role::InspectedBody,
        Ok(pb::Role::Viewer) => domain::Role::Viewer,
        Ok(pb::Role::System) => domain::Role::System,
        Ok(pb::Role::Unspecified) | Err(_) => {
            return Err(TrackerError::Unauthenticated(
                "the caller has no role".into(),
            ));
        }
    };
    let organisation = if actor.organisation_id.is_empty() {
        None
    } else {
        Some(
            domain::OrganisationId::parse(&actor.organisation_id)
                .map_err(|e| TrackerError::Unauthenticated(format!("caller organisation: {e}")))?,
        )
    };
    Ok(domain::Actor {
        subject: actor.subject.clone(),
        role,
        organisation,
    })
}

/// A wire status in the domain's terms.
pub fn domain_status(status: i32) -> Option<domain::ItemStatus> {
    match pb::ItemStatus::try_from(status).ok()? {
        pb::ItemStatus::Open => Some(domain::ItemStatus::Open),
        pb::ItemStatus::InProgress => Some(domain::ItemStatus::InProgress),
        pb::ItemStatus::AwaitingVerification => Some(domain::ItemStatus::AwaitingVerification),
        pb::ItemStatus::Closed => Some(domain::ItemStatus::Closed),
        pb::ItemStatus::Superseded => Some(domain::ItemStatus::Superseded),
        pb::ItemStatus::Unspecified => None,
    }
}

/// A domain status on the wire.
pub fn wire_status(status: domain::ItemStatus) -> pb::ItemStatus {
    match status {
        domain::ItemStatus::Open => pb::ItemStatus::Open,
        domain::ItemStatus::InProgress => pb::ItemStatus::InProgress,
        domain::ItemStatus::AwaitingVerification => pb::ItemStatus::AwaitingVerification,
        domain::ItemStatus::Closed => pb::ItemStatus::Closed,
        domain::ItemStatus::Superseded => pb::ItemStatus::Superseded,
    }
}

fn some_text(text: &str) -> Option<String> {
    Some(text.to_string()).filter(|t| !t.is_empty())
}

/// Evidence in the domain's terms.
pub fn domain_evidence(evidence: &pb::Evidence) -> domain::Evidence {
    domain::Evidence {
        description: evidence.description.clone(),
        uri: some_text(&evidence.uri),
        sha256: evidence.sha256.clone(),
    }
}

fn wire_evidence(evidence: domain::Evidence) -> pb::Evidence {
    pb::Evidence {
        description: evidence.description,
        uri: evidence.uri.unwrap_or_default(),
        sha256: evidence.sha256,
    }
}

/// What the state machine needs to know about a stored item.
pub fn item_state(item: &pb::TrackedItem) -> Result<domain::ItemState, TrackerError> {
    let corrupt = |what: &str| TrackerError::Corrupt(format!("item {}: {what}", item.id));
    Ok(domain::ItemState {
        status: domain_status(item.status).ok_or_else(|| corrupt("no status"))?,
        organisation: domain::OrganisationId::parse(&item.organisation_id)
            .map_err(|e| corrupt(&e.to_string()))?,
        owner: some_text(&item.owner),
        due_date: item.due_date.as_ref().and_then(store::naive_date),
        evidence: item.evidence.iter().map(domain_evidence).collect(),
        closure_reference: some_text(&item.closure_reference),
        closed_by_inspection: None,
        superseded_by: some_text(&item.superseded_by_item_id),
    })
}

fn refusal_error(refusal: domain::Refusal) -> TrackerError {
    match &refusal {
        domain::Refusal::IllegalTransition { .. } => {
            TrackerError::IllegalTransition(refusal.to_string())
        }
        domain::Refusal::NotPermitted { .. } | domain::Refusal::WrongOrganisation { .. } => {
            TrackerError::PermissionDenied(refusal.to_string())
        }
        domain::Refusal::Invalid { field, reason } => TrackerError::invalid(*field, reason.clone()),
    }
}

/// The event announcing one domain change of `item`.
async fn payload_of(
    tx: &mut PgConnection,
    item: &pb::TrackedItem,
    change: domain::Change,
) -> Result<Payload, TrackerError> {
    let item_id = item.id.clone();
    Ok(match change {
        domain::Change::StatusChanged {
            from,
            to,
            command,
            reason,
        } => Payload::StatusChanged(pb::StatusChanged {
            item_id,
            from: wire_status(from) as i32,
            to: wire_status(to) as i32,
            command: command.as_str().to_string(),
            reason: reason.unwrap_or_default(),
        }),
        domain::Change::OwnerAssigned { owner, previous } => {
            Payload::OwnerAssigned(pb::OwnerAssigned {
                item_id,
                owner,
                previous_owner: previous.unwrap_or_default(),
            })
        }
        domain::Change::DueDateChanged {
            previous,
            new,
            reason,
        } => Payload::DueDateChanged(pb::DueDateChanged {
            item_id,
            due_date: Some(store::calendar_date(new)),
            previous_due_date: previous.map(store::calendar_date),
            reason: reason.unwrap_or_default(),
        }),
        domain::Change::ProgressNoted { note } => {
            Payload::ProgressNoted(pb::ProgressNoted { item_id, note })
        }
        domain::Change::CompletionClaimed { evidence, note } => {
            Payload::CompletionClaimed(pb::CompletionClaimed {
                item_id,
                evidence: Some(wire_evidence(evidence)),
                note: note.unwrap_or_default(),
            })
        }
        domain::Change::ClaimRejected { reason } => {
            Payload::ClaimRejected(pb::ClaimRejected { item_id, reason })
        }
        domain::Change::Verified {
            closure_reference,
            closed_by_inspection,
        } => Payload::ItemVerified(pb::ItemVerified {
            item_id,
            closure_reference,
            closed_by_inspection_id: closed_by_inspection
                .map(|i| i.to_string())
                .unwrap_or_default(),
        }),
        domain::Change::Superseded { finding, reason } => {
            // The newer finding's item for the same organisation, if open.
            let superseding_item: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM items WHERE finding_id = $1 AND organisation_id = $2",
            )
            .bind(&finding)
            .bind(&item.organisation_id)
            .fetch_optional(&mut *tx)
            .await?;
            Payload::ItemSuperseded(pb::ItemSuperseded {
                item_id,
                superseding_finding_id: finding,
                superseding_item_id: superseding_item.map(|i| i.to_string()).unwrap_or_default(),
                reason: reason.unwrap_or_default(),
            })
        }
        domain::Change::Reopened { reason } => {
            Payload::ItemReopened(pb::ItemReopened { item_id, reason })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_between_wire_and_domain() {
        for status in domain::ItemStatus::ALL {
            assert_eq!(domain_status(wire_status(status) as i32), Some(status));
        }
        assert_eq!(domain_status(0), None);
        assert_eq!(domain_status(99), None);
    }

    #[test]
    fn the_state_machine_sees_the_stored_item() {
        let item = pb::TrackedItem {
            id: "x".into(),
            organisation_id: "kent".into(),
            status: pb::ItemStatus::InProgress as i32,
            owner: "Jo".into(),
            due_date: Some(pb::CalendarDate::new(2020, 2, 29)),
            ..Default::default()
        };
        let state = item_state(&item).expect("valid");
        assert_eq!(state.status, domain::ItemStatus::InProgress);
        assert_eq!(state.organisation.as_str(), "kent");
        assert_eq!(state.owner.as_deref(), Some("Jo"));
        assert!(state.due_date.is_some());
        assert!(item_state(&pb::TrackedItem::default()).is_err());
    }

    #[test]
    fn callers_become_domain_actors() {
        let actor = domain_actor(&pb::Actor {
            subject: "jo".into(),
            role: pb::Role::InspectedBody as i32,
            organisation_id: "kent".into(),
        })
        .expect("valid");
        assert_eq!(actor.role, domain::Role::InspectedBody);
        assert_eq!(
            actor.organisation.map(|o| o.as_str().to_string()),
            Some("kent".into())
        );
        assert!(domain_actor(&pb::Actor::default()).is_err());
    }
}
