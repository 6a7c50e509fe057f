//! Collects the events of one request, so that they are appended to the
//! outbox in the same transaction as the change they announce, all with
//! the same actor and correlation id.

use crate::error::FindingsError;
use closeout_proto::{Actor, EventEnvelope, event_envelope::Payload};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

/// The name this service signs its events with.
pub const SOURCE_SERVICE: &str = "findings";

/// Events of one request, in the order they are to be published.
pub struct EventBatch {
    actor: Actor,
    correlation_id: String,
    events: Vec<EventEnvelope>,
}

impl EventBatch {
    /// An empty batch for a request by `actor`.
    pub fn new(actor: Actor, correlation_id: String) -> Self {
        EventBatch {
            actor,
            correlation_id,
            events: Vec::new(),
        }
    }

    /// Adds an event about `aggregate_type`/`aggregate_id` at `version`.
    pub fn push(
        &mut self,
        organisation_id: &str,
        aggregate_type: &str,
        aggregate_id: String,
        version: u64,
        payload: Payload,
    ) {
        let event = closeout_bus::new_event(
            closeout_bus::EventMeta {
                source_service: SOURCE_SERVICE,
                organisation_id,
                aggregate_type,
                aggregate_id: &aggregate_id,
                aggregate_version: version,
                actor: &self.actor,
                correlation_id: &self.correlation_id,
                causation_id: &self.correlation_id,
            },
            payload,
        );
        self.events.push(event);
    }

    /// An empty batch by the same actor, under the same correlation id.
    pub(crate) fn fresh(&self) -> EventBatch {
        EventBatch::new(self.actor.clone(), self.correlation_id.clone())
    }

    /// The events as the outbox's columns, for a statement that appends
    /// them together with the change they announce (one round trip).
    /// Rows as `closeout_bus::outbox::append` writes them: the subject
    /// without the deployment's prefix, the trace parent, the encoded event.
    pub(crate) fn outbox_columns(&self) -> Result<OutboxColumns, FindingsError> {
        let n = self.events.len();
        let mut columns = OutboxColumns {
            id: Vec::with_capacity(n),
            organisation_id: Vec::with_capacity(n),
            subject: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            traceparent: Vec::with_capacity(n),
            payload: Vec::with_capacity(n),
        };
        for event in &self.events {
            let id = Uuid::parse_str(&event.event_id).map_err(|_| {
                FindingsError::Outbox(format!("event id {:?} is not a UUID", event.event_id))
            })?;
            let payload = event
                .payload
                .as_ref()
                .ok_or_else(|| FindingsError::Outbox(format!("event {id} has no payload")))?;
            columns.id.push(id);
            columns.organisation_id.push(event.organisation_id.clone());
            columns
                .subject
                .push(closeout_bus::subject::relative_subject(
                    payload,
                    &event.organisation_id,
                ));
            columns.event_type.push(event.event_type.clone());
            columns
                .traceparent
                .push(closeout_bus::trace::traceparent_for(event));
            columns.payload.push(event.encode_to_vec());
        }
        Ok(columns)
    }

    /// Who the events are by.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The events collected so far.
    pub fn events(&self) -> &[EventEnvelope] {
        &self.events
    }

    /// Appends every event to the outbox on `tx` (the caller commits).
    pub async fn append(&self, tx: &mut PgConnection) -> Result<(), FindingsError> {
        if self.events.is_empty() {
            return Ok(());
        }
        closeout_bus::outbox::append(tx, &self.events)
            .await
            .map_err(|e| FindingsError::Outbox(e.to_string()))
    }
}

/// Events as the columns of `closeout_outbox`, in publishing order.
pub(crate) struct OutboxColumns {
    pub id: Vec<Uuid>,
    pub organisation_id: Vec<String>,
    pub subject: Vec<String>,
    pub event_type: Vec<String>,
    pub traceparent: Vec<String>,
    pub payload: Vec<Vec<u8>>,
}
