//! The notify service as an event subscriber: one durable consumer on the
//! tracker's events. For each event, in the transaction that also records
//! the event as applied (so a redelivered event changes nothing), it keeps
//! the item's text and status for summaries and writes one delivery row
//! per matching subscription: an outbox of deliveries that the delivery
//! workers ([`crate::deliver`]) hand over after commit.

use crate::rules::{self, Selection};
use crate::store::{self, NewDelivery};
use closeout_bus::{ConsumerConfig, EventHandler, HandlerError, Payload};
use closeout_proto::{self as pb, EmailMode, EventEnvelope};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

/// Durable name of the consumer (and its key in the applied-events table).
pub const DURABLE: &str = "notify";
/// What it reads, relative to the subject prefix.
pub const FILTER: &str = "tracker.v1.>";

/// The consumer's configuration; `ack_wait` is how soon an event in
/// flight when the process died is delivered again.
///
/// One event in flight at a time (`max_ack_pending` 1): JetStream then
/// never hands over a later event while an earlier one is unacknowledged,
/// so deliveries are queued in stream order even across a crash or a
/// retried event (with more in flight, an event left unacknowledged by a
/// dead process would come back after newer ones). Notification volumes
/// are small; order matters more than throughput here.
pub fn consumer_config(ack_wait: std::time::Duration) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(DURABLE, &[FILTER]);
    config.ack_wait = ack_wait;
    config.max_ack_pending = 1;
    config.batch = 16;
    config
}

/// Turns events into deliveries.
#[derive(Clone, Debug, Default)]
pub struct Subscriber {
    /// Also write every event a subscription could ask for to the log.
    pub log_sink: bool,
}

impl EventHandler for Subscriber {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<(), HandlerError> {
        remember_item(tx, event).await?;
        let kinds = rules::event_kinds(event);
        let Some(payload) = &event.payload else {
            return Ok(());
        };
        if kinds.is_empty() {
            return Ok(());
        }
        let event_id = Uuid::parse_str(&event.event_id).map_err(HandlerError::permanent)?;
        let subject = closeout_bus::subject::relative_subject(payload, &event.organisation_id);
        let summary = rules::summary(event);
        if self.log_sink {
            tracing::info!(
                target: "closeout_notify::sink",
                event_id = %event.event_id,
                event_type = %event.event_type,
                organisation = %event.organisation_id,
                "{summary}"
            );
        }
        let kind_numbers: Vec<i32> = kinds.iter().map(|k| *k as i32).collect();
        let candidates =
            store::candidate_subscriptions(tx, &kind_numbers, &event.organisation_id).await?;
        let envelope = event.encode_to_vec();
        for subscription in candidates {
            let selection: Selection = subscription.selection();
            if !selection.matches(&kinds, &event.organisation_id, &subject) {
                continue;
            }
            let digest = subscription.email_address.is_some()
                && subscription.email_mode == EmailMode::DailyDigest as i32;
            let status = if digest {
                pb::DeliveryStatus::DigestQueued
            } else {
                pb::DeliveryStatus::Pending
            };
            store::insert_delivery(
                tx,
                &NewDelivery {
                    id: Uuid::now_v7(),
                    subscription_id: subscription.id,
                    event_id,
                    event_type: &event.event_type,
                    organisation_id: &event.organisation_id,
                    envelope: &envelope,
                    summary: &summary,
                    status,
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// Keeps the item's text (from `ItemOpened`) and latest status, so
/// e-mails can say what the item is.
async fn remember_item(tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), HandlerError> {
    let version = i64::try_from(event.aggregate_version).unwrap_or(i64::MAX);
    match &event.payload {
        Some(Payload::ItemOpened(opened)) => {
            store::upsert_item(
                tx,
                &opened.item_id,
                &event.organisation_id,
                Some(&opened.text),
                Some(opened.status),
                version,
            )
            .await?
        }
        Some(Payload::StatusChanged(change)) => {
            store::upsert_item(
                tx,
                &change.item_id,
                &event.organisation_id,
                None,
                Some(change.to_status),
                version,
            )
            .await?
        }
        _ => {}
    }
    Ok(())
}
