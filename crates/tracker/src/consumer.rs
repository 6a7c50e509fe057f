//! The durable consumer of the findings service's events: opens tracked
//! items, keeps what reconciliation needs of each inspection (its findings
//! and follow-up statements, see `inspections`) and, on
//! InspectionPublished, proposes what happened to the organisation's
//! earlier items (see `reconciliation`). An area for improvement, a cause of concern and a recommendation
//! open one item for their organisation; a national recommendation opens
//! one for every organisation of its kind the tracker knows, and is kept so
//! that an organisation learned later gets one too; noteworthy practice
//! opens nothing.
//!
//! Organisations are learned from OrganisationRegistered and from the
//! organisation of any FindingRecorded. Replays open nothing new: the
//! consumer records applied event ids (closeout-bus), and `items` has one
//! row per (finding, organisation) at most.

use crate::error::TrackerError;
use crate::journal::{self, Cause, Journal};
use crate::store;
use closeout_bus::consumer::BatchHandler;
use closeout_bus::{Bus, ConsumerConfig, ConsumerHandle, EventHandler, HandlerError};
use closeout_proto::{self as pb, event_envelope::Payload};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use std::collections::HashSet;
use uuid::Uuid;

/// The findings events this consumer reads (relative to the prefix).
pub const FILTER: &str = "findings.>";

/// Advisory lock key serialising the fan-out of national recommendations
/// against organisations being learned (across replicas), so that neither
/// side misses the other. Arbitrary, fixed: "trk-fan".
const FAN_OUT_LOCK: i64 = 0x0074_726b_2d66_616e;

/// Starts the durable consumer `durable_name` on `<prefix>.findings.>`.
pub fn spawn(
    pool: PgPool,
    bus: Bus,
    durable_name: &str,
) -> Result<ConsumerHandle, closeout_bus::BusError> {
    let mut config = ConsumerConfig::new(durable_name, &[FILTER]);
    // A report's findings arrive together: apply them in large batches.
    config.batch = 256;
    config.max_ack_pending = 1024;
    closeout_bus::Consumer::spawn_batched(pool, bus, config, ItemOpener)
}

/// The event handler: opens items from findings events.
pub struct ItemOpener;

/// A batch of findings events is applied in one transaction, in stream
/// order. Consecutive findings of one organisation each (all but national
/// recommendations, which fan out) are applied together with multi-row
/// statements ([`findings_recorded`]), to the same effect as applying them
/// one by one; every other event as [`EventHandler::handle`] applies it
/// alone.
impl BatchHandler for ItemOpener {
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: &[pb::EventEnvelope],
    ) -> Result<(), HandlerError> {
        let mut run: Vec<(&pb::EventEnvelope, &pb::FindingRecorded)> = Vec::new();
        for event in events {
            if let Some(Payload::FindingRecorded(finding)) = &event.payload
                && !is_national(finding)
            {
                run.push((event, finding));
                continue;
            }
            self.flush(tx, &mut run).await?;
            self.handle(&mut *tx, event).await?;
        }
        self.flush(tx, &mut run).await
    }
}

impl ItemOpener {
    /// Applies the findings gathered so far (one alone as `handle` does).
    async fn flush(
        &self,
        tx: &mut PgConnection,
        run: &mut Vec<(&pb::EventEnvelope, &pb::FindingRecorded)>,
    ) -> Result<(), HandlerError> {
        match run.len() {
            0 => return Ok(()),
            1 => {
                let (event, _) = run[0];
                self.handle(&mut *tx, event).await?;
            }
            _ => findings_recorded(tx, run).await.map_err(handler_error)?,
        }
        run.clear();
        Ok(())
    }
}

/// The database may come back; bad content never gets better.
fn handler_error(error: TrackerError) -> HandlerError {
    match error {
        TrackerError::Database(_) | TrackerError::Outbox(_) => HandlerError::transient(error),
        other => HandlerError::permanent(other),
    }
}

/// A finding opened for every organisation of a kind, not only its own.
fn is_national(finding: &pb::FindingRecorded) -> bool {
    finding.addressed_to_all
        || closeout_domain::wire::finding_kind(finding.kind)
            == Some(closeout_domain::FindingKind::NationalRecommendation)
}

impl EventHandler for ItemOpener {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &pb::EventEnvelope,
    ) -> Result<(), HandlerError> {
        let result = match &event.payload {
            Some(Payload::FindingRecorded(finding)) => finding_recorded(tx, event, finding).await,
            Some(Payload::OrganisationRegistered(registered)) => {
                organisation_registered(tx, event, registered).await
            }
            Some(Payload::FollowUpRecorded(follow_up)) => {
                crate::inspections::follow_up_recorded(tx, follow_up, event.aggregate_version).await
            }
            Some(Payload::InspectionReplaced(replaced)) => {
                crate::reconciliation::inspection_replaced(
                    tx,
                    replaced,
                    event.aggregate_version,
                    &cause_of(event),
                )
                .await
                .map(|_| ())
            }
            Some(Payload::OrganisationSucceeded(succeeded)) => {
                organisation_succeeded(tx, event, succeeded).await
            }
            Some(Payload::InspectionPublished(published)) => {
                inspection_published(tx, event, published).await
            }
            Some(Payload::FindingWithdrawn(withdrawn)) => {
                finding_withdrawn(tx, event, withdrawn).await
            }
            Some(Payload::OrganisationRenamed(renamed)) => match lock_fan_out(tx).await {
                Ok(()) => crate::renames::organisation_renamed(tx, renamed, &cause_of(event)).await,
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        result.map_err(handler_error)
    }
}

/// The cause of items opened by `event`: the tracker itself, in the
/// event's correlation.
fn cause_of(event: &pb::EventEnvelope) -> Cause {
    let correlation = if event.correlation_id.is_empty() {
        event.event_id.clone()
    } else {
        event.correlation_id.clone()
    };
    Cause {
        actor: closeout_service::auth::system_actor("tracker"),
        correlation_id: correlation,
        causation_id: event.event_id.clone(),
    }
}

/// A corrected document no longer contains the finding. Its open items
/// stay open — no state means "withdrawn", and closing them silently would
/// hide it — but each gets a progress note saying so, in its history and on
/// the stream, for a person to supersede or close.
async fn finding_withdrawn(
    tx: &mut PgConnection,
    event: &pb::EventEnvelope,
    withdrawn: &pb::FindingWithdrawn,
) -> Result<(), TrackerError> {
    let open = [
        pb::ItemStatus::Open as i16,
        pb::ItemStatus::InProgress as i16,
        pb::ItemStatus::AwaitingVerification as i16,
    ];
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM items WHERE finding_id = $1 AND status = ANY($2) ORDER BY id",
    )
    .bind(&withdrawn.finding_id)
    .bind(&open[..])
    .fetch_all(&mut *tx)
    .await?;
    let note = format!(
        "The finding was withdrawn from inspection {}: {}",
        withdrawn.inspection_id,
        if withdrawn.reason.is_empty() {
            "no reason given"
        } else {
            withdrawn.reason.as_str()
        }
    );
    crate::inspections::finding_withdrawn(tx, withdrawn).await?;
    let cause = cause_of(event);
    for id in ids {
        let Some(mut item) = crate::store::lock_item(tx, id).await? else {
            continue;
        };
        crate::commands::apply(
            tx,
            &mut item,
            &closeout_domain::Command::NoteProgress { note: note.clone() },
            &cause,
        )
        .await?;
    }
    Ok(())
}

async fn finding_recorded(
    tx: &mut PgConnection,
    event: &pb::EventEnvelope,
    finding: &pb::FindingRecorded,
) -> Result<(), TrackerError> {
    if finding.finding_id.is_empty() {
        return Err(TrackerError::invalid("finding_id", "is empty"));
    }
    check_organisation_id("organisation_id", &finding.organisation_id)?;
    lock_fan_out(tx).await?;
    let cause = cause_of(event);
    learn_organisation(tx, &finding.organisation_id, "", 0, &cause).await?;
    crate::inspections::finding_recorded(tx, finding).await?;
    // Which kinds are tracked is the domain's rule (FindingKind::is_tracked).
    let kind = closeout_domain::wire::finding_kind(finding.kind);
    match kind {
        _ if finding.addressed_to_all
            || kind == Some(closeout_domain::FindingKind::NationalRecommendation) =>
        {
            national_recommendation(tx, finding, &cause).await
        }
        Some(kind) if kind.is_tracked() => {
            open_item(tx, finding, &finding.organisation_id, &cause).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Many findings, none national, applied as [`finding_recorded`] applies
/// each in turn, with a few statements for all: each organisation is
/// learned and each inspection remembered once, the findings kept with one
/// insert, and the items that do not exist yet opened together
/// (`Journal::open_many`). A finding that is not valid fails the whole
/// run (the consumer then applies the batch's events one at a time, so
/// the bad one is named and dead-lettered alone).
async fn findings_recorded(
    tx: &mut PgConnection,
    run: &[(&pb::EventEnvelope, &pb::FindingRecorded)],
) -> Result<(), TrackerError> {
    for (_, finding) in run {
        if finding.finding_id.is_empty() {
            return Err(TrackerError::invalid("finding_id", "is empty"));
        }
        check_organisation_id("organisation_id", &finding.organisation_id)?;
    }
    lock_fan_out(tx).await?;
    let causes: Vec<Cause> = run.iter().map(|(event, _)| cause_of(event)).collect();
    let mut learned = HashSet::new();
    let mut remembered = HashSet::new();
    for ((_, finding), cause) in run.iter().zip(&causes) {
        if learned.insert(finding.organisation_id.as_str()) {
            learn_organisation(tx, &finding.organisation_id, "", 0, cause).await?;
        }
        let inspection = (
            finding.inspection_id.as_str(),
            finding.organisation_id.as_str(),
            finding.period.as_str(),
            finding.published.as_str(),
        );
        if remembered.insert(inspection) {
            crate::inspections::remember_inspection(
                tx,
                inspection.0,
                inspection.1,
                inspection.2,
                inspection.3,
            )
            .await?;
        }
    }
    let findings: Vec<&pb::FindingRecorded> = run.iter().map(|(_, f)| *f).collect();
    crate::inspections::findings_recorded(tx, &findings).await?;

    // The tracked ones, once per (finding, organisation), that have no item.
    let mut wanted = HashSet::new();
    let tracked: Vec<(&pb::FindingRecorded, &Cause)> = run
        .iter()
        .zip(&causes)
        .filter(|((_, f), _)| {
            closeout_domain::wire::finding_kind(f.kind).is_some_and(|k| k.is_tracked())
        })
        .filter(|((_, f), _)| wanted.insert((f.finding_id.as_str(), f.organisation_id.as_str())))
        .map(|((_, f), cause)| (*f, cause))
        .collect();
    if tracked.is_empty() {
        return Ok(());
    }
    let finding_ids: Vec<&str> = tracked.iter().map(|(f, _)| f.finding_id.as_str()).collect();
    let organisation_ids: Vec<&str> = tracked
        .iter()
        .map(|(f, _)| f.organisation_id.as_str())
        .collect();
    let existing: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.finding_id, i.organisation_id FROM items i \
         JOIN UNNEST($1::text[], $2::text[]) AS w(finding_id, organisation_id) \
           ON i.finding_id = w.finding_id AND i.organisation_id = w.organisation_id",
    )
    .bind(&finding_ids)
    .bind(&organisation_ids)
    .fetch_all(&mut *tx)
    .await?;
    let existing: HashSet<(String, String)> = existing.into_iter().collect();
    let openings: Vec<(pb::TrackedItem, Payload, &Cause)> = tracked
        .into_iter()
        .filter(|(f, _)| !existing.contains(&(f.finding_id.clone(), f.organisation_id.clone())))
        .map(|(finding, cause)| {
            let (item, opened) = opening(finding, &finding.organisation_id);
            (item, Payload::ItemOpened(opened), cause)
        })
        .collect();
    let opened = journal::open_many(tx, openings).await?;
    tracing::info!(items = opened.len(), findings = run.len(), "items opened");
    Ok(())
}

/// A new item of `finding` for `organisation_id` and the event opening it.
fn opening(
    finding: &pb::FindingRecorded,
    organisation_id: &str,
) -> (pb::TrackedItem, pb::ItemOpened) {
    let due_date = finding
        .due_date
        .as_ref()
        .and_then(store::naive_date)
        .map(store::calendar_date);
    let item = pb::TrackedItem {
        id: Uuid::now_v7().to_string(),
        organisation_id: organisation_id.to_string(),
        ..Default::default()
    };
    let opened = pb::ItemOpened {
        item_id: item.id.clone(),
        organisation_id: organisation_id.to_string(),
        finding_id: finding.finding_id.clone(),
        inspection_id: finding.inspection_id.clone(),
        kind: finding.kind,
        pillar: finding.pillar.clone(),
        question: finding.question.clone(),
        text: finding.text.clone(),
        due_date,
        status: pb::ItemStatus::Open as i32,
        carried_from_item_id: String::new(),
    };
    (item, opened)
}

/// Keeps a national recommendation and opens it for every organisation of
/// the kind it is addressed to known so far: its wording
/// says whom ("chief constables should" → every police force, "all fire and
/// rescue services should" → every fire and rescue service, both → kind 0,
/// every organisation); failing that, the issuer's kind; failing that,
/// police forces.
async fn national_recommendation(
    tx: &mut PgConnection,
    finding: &pb::FindingRecorded,
    cause: &Cause,
) -> Result<(), TrackerError> {
    let issuer_kind: Option<i16> =
        sqlx::query_scalar("SELECT kind FROM organisations WHERE id = $1")
            .bind(&finding.organisation_id)
            .fetch_optional(&mut *tx)
            .await?;
    let audience = closeout_reconcile::audience::audience(&finding.text);
    let kind = match (audience.police_forces, audience.fire_and_rescue_services) {
        (true, true) => 0,
        (true, false) => pb::OrganisationKind::PoliceForce as i16,
        (false, true) => pb::OrganisationKind::FireAndRescueService as i16,
        (false, false) => issuer_kind
            .filter(|k| *k != 0)
            .unwrap_or(pb::OrganisationKind::PoliceForce as i16),
    };
    sqlx::query(
        "INSERT INTO national_findings (finding_id, organisation_kind, finding) \
         VALUES ($1, $2, $3) ON CONFLICT (finding_id) DO NOTHING",
    )
    .bind(&finding.finding_id)
    .bind(kind)
    .bind(finding.encode_to_vec())
    .execute(&mut *tx)
    .await?;
    let recipients: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM organisations WHERE kind = 0 OR $1 = 0 OR kind = $1 ORDER BY id",
    )
    .bind(kind)
    .fetch_all(&mut *tx)
    .await?;
    for organisation_id in recipients {
        open_item(tx, finding, &organisation_id, cause).await?;
    }
    Ok(())
}

/// A predecessor organisation was succeeded by another: both become known,
/// and the predecessor's open items are handed over (see
/// `reconciliation::organisation_succeeded`).
async fn organisation_succeeded(
    tx: &mut PgConnection,
    event: &pb::EventEnvelope,
    succeeded: &pb::OrganisationSucceeded,
) -> Result<(), TrackerError> {
    check_organisation_id("predecessor_id", &succeeded.predecessor_id)?;
    check_organisation_id("successor_id", &succeeded.successor_id)?;
    lock_fan_out(tx).await?;
    let cause = cause_of(event);
    learn_organisation(tx, &succeeded.predecessor_id, "", 0, &cause).await?;
    learn_organisation(tx, &succeeded.successor_id, "", 0, &cause).await?;
    crate::reconciliation::organisation_succeeded(tx, succeeded, &cause).await?;
    Ok(())
}

/// Records the inspection and makes the reconciliation proposals for the
/// organisation's earlier open items.
async fn inspection_published(
    tx: &mut PgConnection,
    event: &pb::EventEnvelope,
    published: &pb::InspectionPublished,
) -> Result<(), TrackerError> {
    check_organisation_id("organisation_id", &published.organisation_id)?;
    crate::reconciliation::inspection_published(tx, published, &cause_of(event)).await?;
    Ok(())
}

async fn organisation_registered(
    tx: &mut PgConnection,
    event: &pb::EventEnvelope,
    registered: &pb::OrganisationRegistered,
) -> Result<(), TrackerError> {
    let Some(organisation) = &registered.organisation else {
        return Err(TrackerError::invalid("organisation", "is missing"));
    };
    check_organisation_id("organisation.id", &organisation.id)?;
    lock_fan_out(tx).await?;
    let kind = i16::try_from(organisation.kind).unwrap_or(0);
    learn_organisation(
        tx,
        &organisation.id,
        &organisation.name,
        kind,
        &cause_of(event),
    )
    .await
}

/// Items are kept only for organisations with a valid id (a slug).
fn check_organisation_id(field: &str, id: &str) -> Result<(), TrackerError> {
    closeout_domain::OrganisationId::parse(id)
        .map(|_| ())
        .map_err(|e| TrackerError::invalid(field, e.to_string()))
}

async fn lock_fan_out(tx: &mut PgConnection) -> Result<(), TrackerError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(FAN_OUT_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Records an organisation (its name and kind when known, `kind` 0 when
/// not) and opens for it every national recommendation of its kind that it
/// has no item for yet.
///
/// A known organisation is rewritten only when something about it changes:
/// every finding names its organisation, and rewriting the same row for
/// each of a report's thousands of findings would leave one dead version
/// per finding on one hot row for vacuum to clear.
async fn learn_organisation(
    tx: &mut PgConnection,
    id: &str,
    name: &str,
    kind: i16,
    cause: &Cause,
) -> Result<(), TrackerError> {
    sqlx::query(
        "INSERT INTO organisations (id, name, kind) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET \
           name = CASE WHEN EXCLUDED.name = '' THEN organisations.name ELSE EXCLUDED.name END, \
           kind = CASE WHEN EXCLUDED.kind = 0 THEN organisations.kind ELSE EXCLUDED.kind END \
         WHERE (EXCLUDED.name <> '' AND EXCLUDED.name <> organisations.name) \
            OR (EXCLUDED.kind <> 0 AND EXCLUDED.kind <> organisations.kind)",
    )
    .bind(id)
    .bind(name)
    .bind(kind)
    .execute(&mut *tx)
    .await?;
    let pending: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT n.finding FROM national_findings n JOIN organisations o ON o.id = $1 \
         WHERE (o.kind = 0 OR n.organisation_kind = 0 OR o.kind = n.organisation_kind) \
           AND NOT EXISTS (SELECT 1 FROM items i \
                           WHERE i.finding_id = n.finding_id AND i.organisation_id = $1) \
         ORDER BY n.recorded_at, n.finding_id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    for bytes in pending {
        let finding = pb::FindingRecorded::decode(bytes.as_slice())
            .map_err(|e| TrackerError::Corrupt(format!("national finding: {e}")))?;
        open_item(tx, &finding, id, cause).await?;
    }
    Ok(())
}

/// Opens the item of `finding` for `organisation_id` unless it exists.
/// Returns the new item, if one was opened.
pub async fn open_item(
    tx: &mut PgConnection,
    finding: &pb::FindingRecorded,
    organisation_id: &str,
    cause: &Cause,
) -> Result<Option<pb::TrackedItem>, TrackerError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM items WHERE finding_id = $1 AND organisation_id = $2)",
    )
    .bind(&finding.finding_id)
    .bind(organisation_id)
    .fetch_one(&mut *tx)
    .await?;
    if exists {
        return Ok(None);
    }
    let (mut item, opened) = opening(finding, organisation_id);
    Journal::append(tx, &mut item, vec![Payload::ItemOpened(opened)], cause).await?;
    tracing::info!(item = %item.id, organisation = organisation_id, finding = %finding.finding_id, "item opened");
    Ok(Some(item))
}
