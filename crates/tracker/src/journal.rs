//! The event-sourced write path. Every change of an item is a list of
//! payloads; [`Journal::append`] turns each into an envelope at the next
//! version, folds it into the item's state, stores it in `item_events`,
//! writes the new state to `items`, appends the envelopes to the outbox and
//! notifies WatchItems streams — all on the caller's transaction, so either
//! everything is committed or nothing is.

use crate::error::TrackerError;
use crate::store;
use crate::watch::CHANNEL;
use closeout_proto::{self as pb, event_envelope::Payload};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

/// The name this service signs its events with.
pub const SOURCE_SERVICE: &str = "tracker";
/// The aggregate type of tracked items.
pub const AGGREGATE: &str = "item";

/// Advisory lock key held while item events are inserted, so sequence
/// numbers become visible in order (a watcher that has seen sequence n can
/// never later find a committed m < n). Arbitrary, fixed: "trk-log".
const LOG_LOCK: i64 = 0x0074_726b_2d6c_6f67;

/// Who caused a change and why, shared by the events of one change.
#[derive(Clone, Debug)]
pub struct Cause {
    /// Who acted (a caller, or the tracker itself).
    pub actor: pb::Actor,
    /// The request or import the change belongs to.
    pub correlation_id: String,
    /// The event or command that caused it.
    pub causation_id: String,
}

impl Cause {
    /// A cause whose correlation and causation are the same id.
    pub fn new(actor: pb::Actor, id: impl Into<String>) -> Self {
        let id = id.into();
        Cause {
            actor,
            correlation_id: id.clone(),
            causation_id: id,
        }
    }
}

/// Appends events of items on one transaction.
pub struct Journal;

impl Journal {
    /// Appends `payloads` to `item` (whose `version` is its current one; 0
    /// for a new item), updating `item` to the state after the last one.
    /// Returns the envelopes, in order.
    pub async fn append(
        tx: &mut PgConnection,
        item: &mut pb::TrackedItem,
        payloads: Vec<Payload>,
        cause: &Cause,
    ) -> Result<Vec<pb::EventEnvelope>, TrackerError> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let item_id = Uuid::parse_str(&item.id)
            .map_err(|_| TrackerError::Corrupt(format!("item id {:?} is not a UUID", item.id)))?;
        let mut envelopes = Vec::with_capacity(payloads.len());
        let mut rows = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let status_before = item.status;
            let envelope = closeout_bus::new_event(
                closeout_bus::EventMeta {
                    source_service: SOURCE_SERVICE,
                    organisation_id: &item.organisation_id,
                    aggregate_type: AGGREGATE,
                    aggregate_id: &item.id,
                    aggregate_version: item.version + 1,
                    actor: &cause.actor,
                    correlation_id: &cause.correlation_id,
                    causation_id: &cause.causation_id,
                },
                payload,
            );
            project(item, &envelope);
            rows.push((status_before, item.status, item.encode_to_vec()));
            envelopes.push(envelope);
        }
        // Items first (the events reference them), then the log in order.
        store::save_item(tx, item).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        for (envelope, (status_before, status_after, item_after)) in envelopes.iter().zip(rows) {
            let actor = envelope.actor.clone().unwrap_or_default();
            let event_id = Uuid::parse_str(&envelope.event_id)
                .map_err(|_| TrackerError::Corrupt("event id is not a UUID".into()))?;
            sqlx::query(
                "INSERT INTO item_events (item_id, version, event_id, event_type, \
                 organisation_id, actor_subject, actor_role, occurred_at, status_before, \
                 status_after, envelope, item_after) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
            )
            .bind(item_id)
            .bind(envelope.aggregate_version as i64)
            .bind(event_id)
            .bind(&envelope.event_type)
            .bind(&envelope.organisation_id)
            .bind(&actor.subject)
            .bind(actor.role as i16)
            .bind(store::from_timestamp(envelope.occurred_at.as_ref()))
            .bind(status_before as i16)
            .bind(status_after as i16)
            .bind(envelope.encode_to_vec())
            .bind(item_after)
            .execute(&mut *tx)
            .await?;
        }
        closeout_bus::outbox::append(&mut *tx, &envelopes)
            .await
            .map_err(|e| TrackerError::Outbox(e.to_string()))?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *tx)
            .await?;
        Ok(envelopes)
    }
}

/// Folds one event into an item's state: the current-state projection of
/// the history. The domain has decided the event is legal; this only
/// records its effect.
pub fn project(item: &mut pb::TrackedItem, envelope: &pb::EventEnvelope) {
    // PostgreSQL keeps microseconds; so does the state, to read back equal.
    let at = envelope.occurred_at.map(|t| prost_types::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos - t.nanos % 1000,
    });
    item.version = envelope.aggregate_version;
    item.updated_at = at;
    let Some(payload) = &envelope.payload else {
        return;
    };
    match payload {
        Payload::ItemOpened(opened) => {
            item.organisation_id.clone_from(&opened.organisation_id);
            item.finding_id.clone_from(&opened.finding_id);
            item.inspection_id.clone_from(&opened.inspection_id);
            item.kind = opened.kind;
            item.pillar.clone_from(&opened.pillar);
            item.question.clone_from(&opened.question);
            item.text.clone_from(&opened.text);
            item.due_date = opened.due_date;
            item.status = opened.status;
            item.carried_from_item_id
                .clone_from(&opened.carried_from_item_id);
            item.opened_at = at;
        }
        Payload::StatusChanged(changed) => item.status = changed.to,
        Payload::OwnerAssigned(assigned) => item.owner.clone_from(&assigned.owner),
        Payload::DueDateChanged(changed) => {
            item.due_date = changed.due_date;
            // A new date may be missed again; that raises a new event.
            item.overdue = false;
        }
        Payload::CompletionClaimed(claimed) => {
            if let Some(evidence) = &claimed.evidence {
                item.evidence.push(evidence.clone());
            }
        }
        Payload::ItemVerified(verified) => {
            item.closure_reference
                .clone_from(&verified.closure_reference);
        }
        Payload::ItemSuperseded(superseded) => {
            item.superseded_by_item_id
                .clone_from(&superseded.superseding_item_id);
        }
        Payload::ItemReopened(_) => {
            item.closure_reference.clear();
            item.superseded_by_item_id.clear();
        }
        Payload::ItemOverdue(_) => item.overdue = true,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(version: u64, payload: Payload) -> pb::EventEnvelope {
        pb::EventEnvelope {
            aggregate_version: version,
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_600_000_000,
                nanos: 123_456_789,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn projection_folds_events_into_the_state() {
        let mut item = pb::TrackedItem::default();
        project(
            &mut item,
            &envelope(
                1,
                Payload::ItemOpened(pb::ItemOpened {
                    organisation_id: "kent".into(),
                    status: pb::ItemStatus::Open as i32,
                    due_date: Some(pb::CalendarDate::new(2020, 1, 1)),
                    ..Default::default()
                }),
            ),
        );
        assert_eq!((item.version, item.organisation_id.as_str()), (1, "kent"));
        assert_eq!(item.opened_at.map(|t| t.nanos), Some(123_456_000));
        project(
            &mut item,
            &envelope(2, Payload::ItemOverdue(pb::ItemOverdue::default())),
        );
        assert!(item.overdue);
        project(
            &mut item,
            &envelope(
                3,
                Payload::DueDateChanged(pb::DueDateChanged {
                    due_date: Some(pb::CalendarDate::new(2021, 1, 1)),
                    ..Default::default()
                }),
            ),
        );
        assert!(!item.overdue, "a new due date may be missed again");
        project(
            &mut item,
            &envelope(
                4,
                Payload::StatusChanged(pb::StatusChanged {
                    from: pb::ItemStatus::Open as i32,
                    to: pb::ItemStatus::Closed as i32,
                    ..Default::default()
                }),
            ),
        );
        project(
            &mut item,
            &envelope(
                5,
                Payload::ItemVerified(pb::ItemVerified {
                    closure_reference: "letter".into(),
                    ..Default::default()
                }),
            ),
        );
        assert_eq!(item.status, pb::ItemStatus::Closed as i32);
        assert_eq!(item.closure_reference, "letter");
        project(
            &mut item,
            &envelope(6, Payload::ItemReopened(pb::ItemReopened::default())),
        );
        assert!(item.closure_reference.is_empty());
        assert_eq!(item.version, 6);
    }
}
