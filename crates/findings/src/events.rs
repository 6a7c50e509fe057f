//! Collects the events of one request, so that they are appended to the
//! outbox in the same transaction as the change they announce, all with
//! the same actor and correlation id.

use crate::error::FindingsError;
use closeout_proto::{Actor, EventEnvelope, event_envelope::Payload};
use sqlx::PgConnection;

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
