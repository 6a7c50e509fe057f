//! The event consumers: one durable consumer per source service
//! (nats-server 2.9 allows one filter subject per consumer), both applying
//! events with the same [`Projector`] inside the bus's transaction, so an
//! event is stored in the history and folded into the read models exactly
//! once.

use crate::model::Fact;
use crate::store;
use closeout_bus::consumer::BatchHandler;
use closeout_bus::{
    Bus, BusError, ConsumerConfig, ConsumerHandle, ConsumerStats, EventHandler, HandlerError,
};
use closeout_proto::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use uuid::Uuid;

/// Durable consumer of the findings service's events.
pub const FINDINGS_CONSUMER: &str = "metrics-findings";
/// Durable consumer of the tracker's events.
pub const TRACKER_CONSUMER: &str = "metrics-tracker";

/// The consumers and the subjects (relative to the prefix) they read.
pub const CONSUMERS: [(&str, &str); 2] = [
    (FINDINGS_CONSUMER, "findings.>"),
    (TRACKER_CONSUMER, "tracker.>"),
];

/// Stores each event and folds it into the read models.
#[derive(Clone, Copy, Debug, Default)]
pub struct Projector;

impl BatchHandler for Projector {
    /// The whole batch: one statement stores the history, the batch's items
    /// are folded in memory and written back with one statement, and the
    /// tallies move once per key.
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        let mut checked = Vec::with_capacity(events.len());
        for event in events {
            let fact = Fact::from_envelope(event).map_err(HandlerError::Permanent)?;
            let event_id = Uuid::parse_str(&event.event_id).map_err(|_| {
                HandlerError::Permanent(format!("event id {:?} is not a UUID", event.event_id))
            })?;
            checked.push((event_id, event, fact));
        }
        let fresh = store::record_batch(tx, &checked).await?;
        store::apply(tx, &fresh).await?;
        Ok(())
    }
}

impl EventHandler for Projector {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<(), HandlerError> {
        self.handle_batch(tx, std::slice::from_ref(event)).await
    }
}

/// Running consumers.
pub struct Consumers {
    handles: Vec<(&'static str, ConsumerHandle)>,
}

impl Consumers {
    /// Starts both consumers.
    pub fn spawn(pool: &PgPool, bus: &Bus) -> Result<Consumers, BusError> {
        let projector = Arc::new(Projector);
        let mut handles = Vec::new();
        for (name, filter) in CONSUMERS {
            let handle = closeout_bus::Consumer::spawn_batched(
                pool.clone(),
                bus.clone(),
                // Batched: up to 256 events applied per transaction.
                ConsumerConfig {
                    batch: 256,
                    max_ack_pending: 1024,
                    ..ConsumerConfig::new(name, &[filter])
                },
                projector.clone(),
            )?;
            handles.push((name, handle));
        }
        Ok(Consumers { handles })
    }

    /// Each consumer's counters.
    pub fn stats(&self) -> Vec<(&'static str, Arc<ConsumerStats>)> {
        self.handles
            .iter()
            .map(|(name, h)| (*name, h.stats()))
            .collect()
    }

    /// Stops both after the message in hand.
    pub async fn stop(self) {
        for (_, handle) in self.handles {
            handle.stop().await;
        }
    }
}

/// Deletes the durable consumers, so the next start replays the stream
/// from the beginning. Missing consumers are fine.
pub async fn delete_consumers(bus: &Bus) -> Result<(), String> {
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .map_err(|e| format!("getting stream {}: {e}", bus.config().stream_name))?;
    for (name, _) in CONSUMERS {
        if let Err(e) = stream.delete_consumer(name).await {
            let text = e.to_string();
            if !text.contains("not found") {
                return Err(format!("deleting consumer {name}: {text}"));
            }
        }
    }
    Ok(())
}
