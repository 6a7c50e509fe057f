//! Lifecycle commands. Each is checked by the domain state machine
//! (`closeout_domain::decide`) against the item's current state and the
//! caller, and against the version the caller last saw; only then are the
//! domain's changes turned into events and appended through the journal.
//! A refused command writes nothing.
//!
//! Order of the checks: the caller's role and organisation (PERMISSION
//! DENIED, revealing nothing about the item), then the command's fields
//! (INVALID_ARGUMENT, whatever the version), then the expected version
//! (ABORTED, carrying the current version), then the transition
//! (FAILED_PRECONDITION, naming the status and the commands it allows).
//! Concurrent commands on one item are serialised by the item's version:
//! a command writes only if the item is still at the version it was
//! decided on (or, for a supersession, holds the row lock), so the second
//! sees the first's new version and is refused with ABORTED.

use crate::connections::Connections;
use crate::error::TrackerError;
use crate::journal::{self, Cause, Journal};
use crate::lineage::{self, NewLink};
use crate::store;
use crate::writer::Writer;
use closeout_domain::{self as domain, wire};
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
    /// A verification's effective date (checked by the caller), carried
    /// into its `ItemVerified`.
    pub effective_date: Option<pb::CalendarDate>,
}

/// Runs `request` for `cause.actor`; returns the item after it. A
/// supersession looks up and links the superseding item, so it runs in a
/// transaction holding the item's row lock; every other command reads its
/// item on one of `connections`, decides, and hands its write to `writer`,
/// which commits it with the other commands waiting (see `writer`).
pub async fn execute(
    pool: &PgPool,
    connections: &Connections,
    writer: &Writer,
    request: Request,
    cause: &Cause,
) -> Result<pb::TrackedItem, TrackerError> {
    if matches!(request.command, domain::Command::Supersede { .. }) {
        return execute_locked(pool, request, cause).await;
    }
    let actor = domain_actor(&cause.actor)?;
    execute_unlocked(connections, writer, &request, &actor, cause).await
}

/// [`execute`] for a command needing no other item: the item is read
/// without a lock and the command decided on it; the write only lands if
/// the item is still at the version read, else the item is read again
/// (the caller's expected version, equal to the one read, is then stale,
/// which the second pass reports just as a command waiting on the row
/// lock would see it). The connection is handed back before the write
/// waits for its group.
async fn execute_unlocked(
    connections: &Connections,
    writer: &Writer,
    request: &Request,
    actor: &domain::Actor,
    cause: &Cause,
) -> Result<pb::TrackedItem, TrackerError> {
    loop {
        let mut lease = connections.acquire().await?;
        let read = store::read_item(lease.connection(), request.item_id).await;
        lease.settle(&read);
        let mut item =
            read?.ok_or_else(|| TrackerError::item_not_found(request.item_id.to_string()))?;
        let read_version = item.version;
        let changes = checked_changes(&item, request, actor, &request.command, None)?;
        let mut payloads: Vec<Payload> = changes
            .into_iter()
            .map(|change| wire::payload(&item.id, change))
            .collect();
        with_effective_date(&mut payloads, request);
        let Some((write, _)) = journal::prepare_write(&mut item, read_version, payloads, cause)?
        else {
            return Ok(item);
        };
        if writer.write(write).await? {
            return Ok(item);
        }
    }
}

/// [`execute`] in a transaction holding the item's row lock.
async fn execute_locked(
    pool: &PgPool,
    request: Request,
    cause: &Cause,
) -> Result<pb::TrackedItem, TrackerError> {
    let actor = domain_actor(&cause.actor)?;
    let mut tx = pool.begin().await?;
    let mut item = store::lock_item(&mut tx, request.item_id)
        .await?
        .ok_or_else(|| TrackerError::item_not_found(request.item_id.to_string()))?;
    let mut command = request.command.clone();
    let mut superseding = None;
    if let domain::Command::Supersede {
        superseding_finding_id,
        ..
    } = &mut command
    {
        let found = superseding_item(&mut tx, &item, superseding_finding_id).await?;
        if let Ok(newer) = &found {
            superseding_finding_id.clone_from(&newer.finding_id);
        }
        superseding = Some(found);
    }
    let (superseding, superseding_error) = match superseding {
        Some(Ok(newer)) => (Some(newer), None),
        Some(Err(wrong)) => (None, Some(wrong)),
        None => (None, None),
    };
    let changes = checked_changes(&item, &request, &actor, &command, superseding_error)?;
    let mut payloads = Vec::with_capacity(changes.len());
    for change in changes {
        payloads.push(payload_of(&mut tx, &item, change).await?);
    }
    with_effective_date(&mut payloads, &request);
    Journal::append(&mut tx, &mut item, payloads, cause).await?;
    if let Some(newer) = &superseding {
        for (from, to, relation) in [
            (&item.id, &newer.id, pb::LinkRelation::SupersededBy),
            (&newer.id, &item.id, pb::LinkRelation::CarriedFrom),
        ] {
            lineage::record(
                &mut tx,
                NewLink {
                    from_item_id: from,
                    to_id: to,
                    relation,
                    organisation_id: &item.organisation_id,
                    inspection_id: &newer.inspection_id,
                    proposal_id: None,
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    // Events appended: wake the relay and WatchItems now.
    closeout_bus::outbox::committed(pool);
    Ok(item)
}

/// The domain's changes for `command` on `item`, after the checks in the
/// order the module describes (permission, organisation, arguments, the
/// superseding item's lookup, version, transition).
fn checked_changes(
    item: &pb::TrackedItem,
    request: &Request,
    actor: &domain::Actor,
    command: &domain::Command,
    superseding_error: Option<TrackerError>,
) -> Result<Vec<domain::Change>, TrackerError> {
    let state = item_state(item)?;
    let today = chrono::Utc::now().date_naive();
    let decided = domain::decide(&state, actor, command, today);
    if let Err(refusal @ domain::Refusal::NotPermitted { .. }) = &decided {
        return Err(TrackerError::PermissionDenied(refusal.to_string()));
    }
    // Another organisation's item does not exist for an inspected body.
    if let Err(domain::Refusal::WrongOrganisation { .. }) = &decided {
        return Err(TrackerError::item_not_found(request.item_id.to_string()));
    }
    // The command's own arguments are judged before the version, so a bad
    // argument is INVALID_ARGUMENT whichever version the caller sent.
    if let Err(refusal @ domain::Refusal::Invalid { .. }) = &decided {
        return Err(refusal_error(refusal.clone()));
    }
    if let Some(wrong) = superseding_error {
        return Err(wrong);
    }
    if item.version != request.expected_version {
        return Err(TrackerError::StaleVersion {
            item_id: item.id.clone(),
            expected: request.expected_version,
            actual: item.version,
        });
    }
    decided.map_err(refused_in_status)
}

/// A verification's effective date (checked by the caller) into its
/// `ItemVerified`.
fn with_effective_date(payloads: &mut [Payload], request: &Request) {
    for payload in payloads {
        if let Payload::ItemVerified(verified) = payload {
            verified.effective_date.clone_from(&request.effective_date);
        }
    }
}

/// The item that supersedes `item`: the one of the same organisation whose
/// finding id (or item id) is `named`. The outer error is the database's;
/// the inner one names `superseding_finding_id` when `named` is unknown,
/// another organisation's, or `item` itself.
async fn superseding_item(
    tx: &mut PgConnection,
    item: &pb::TrackedItem,
    named: &str,
) -> Result<Result<Superseding, TrackerError>, TrackerError> {
    const FIELD: &str = "superseding_finding_id";
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id::text, finding_id, inspection_id, organisation_id FROM items \
         WHERE finding_id = $1 OR id::text = $1",
    )
    .bind(named)
    .fetch_all(&mut *tx)
    .await?;
    let ours = rows
        .iter()
        .find(|(_, _, _, organisation)| *organisation == item.organisation_id);
    Ok(match ours {
        Some((id, _, _, _)) if *id == item.id => Err(TrackerError::invalid(
            FIELD,
            format!("{named} is the superseded item's own finding"),
        )),
        Some((id, finding_id, inspection_id, _)) => Ok(Superseding {
            id: id.clone(),
            finding_id: finding_id.clone(),
            inspection_id: inspection_id.clone(),
        }),
        None if rows.is_empty() => Err(TrackerError::invalid(
            FIELD,
            format!(
                "{named} names no finding or item of organisation {}",
                item.organisation_id
            ),
        )),
        None => Err(TrackerError::invalid(
            FIELD,
            format!(
                "{named} belongs to another organisation, not {}",
                item.organisation_id
            ),
        )),
    })
}

/// The newer item a supersession points at.
struct Superseding {
    id: String,
    finding_id: String,
    inspection_id: String,
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

/// The domain's view of the caller (`closeout_domain::wire::actor`). A
/// caller without a role, or acting for an organisation that is not a valid
/// id, is refused as unauthenticated.
pub fn domain_actor(actor: &pb::Actor) -> Result<domain::Actor, TrackerError> {
    wire::actor(actor).map_err(|e| match e {
        wire::WireError::Missing { .. } => {
            TrackerError::Unauthenticated("the caller has no role".into())
        }
        wire::WireError::Invalid { reason, .. } => {
            TrackerError::Unauthenticated(format!("caller organisation: {reason}"))
        }
    })
}

/// What the state machine needs to know about a stored item
/// (`closeout_domain::wire::item_state`); a stored item it cannot read is
/// corrupt.
pub fn item_state(item: &pb::TrackedItem) -> Result<domain::ItemState, TrackerError> {
    wire::item_state(item).map_err(|e| TrackerError::Corrupt(format!("item {}: {e}", item.id)))
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

/// The RPC that issues `kind`, as a client calls it.
pub fn rpc_name(kind: domain::CommandKind) -> &'static str {
    use domain::CommandKind as K;
    match kind {
        K::Start => "StartItem",
        K::NoteProgress => "NoteProgress",
        K::AssignOwner => "AssignOwner",
        K::SetDueDate => "SetDueDate",
        K::ClaimCompletion => "ClaimCompletion",
        K::RejectClaim => "RejectClaim",
        K::Verify => "VerifyItem",
        K::Supersede => "SupersedeItem",
        K::Reopen => "ReopenItem",
    }
}

/// [`refusal_error`] for a caller's own command: an illegal transition
/// names the item's status and the commands that status allows.
fn refused_in_status(refusal: domain::Refusal) -> TrackerError {
    let domain::Refusal::IllegalTransition { command, status } = &refusal else {
        return refusal_error(refusal);
    };
    let allowed = domain::CommandKind::ALL
        .into_iter()
        .filter(|kind| kind.allowed_from().contains(status))
        .map(|kind| rpc_name(kind).to_string())
        .collect();
    TrackerError::RefusedInStatus {
        status: pb::ItemStatus::from(*status).as_str_name().to_string(),
        command: rpc_name(*command).to_string(),
        allowed,
        message: refusal.to_string(),
    }
}

/// The event announcing one domain change of `item`
/// (`closeout_domain::wire::payload`), with the superseding item looked up:
/// the newer finding's item for the same organisation, if there is one.
async fn payload_of(
    tx: &mut PgConnection,
    item: &pb::TrackedItem,
    change: domain::Change,
) -> Result<Payload, TrackerError> {
    let mut payload = wire::payload(&item.id, change);
    if let Payload::ItemSuperseded(superseded) = &mut payload {
        let superseding_item: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM items WHERE finding_id = $1 AND organisation_id = $2",
        )
        .bind(&superseded.superseding_finding_id)
        .bind(&item.organisation_id)
        .fetch_optional(&mut *tx)
        .await?;
        superseded.superseding_item_id =
            superseding_item.map(|i| i.to_string()).unwrap_or_default();
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

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
