//! Prometheus figures of the event bus, for any service: outbox backlog,
//! relay publishes, and per consumer the events applied, duplicates,
//! dead-lettered events (since start, and all those kept in the stream on
//! its dead-letter subject), failures and lag (`num_pending` +
//! `num_ack_pending` from the JetStream consumer info). Each function registers a collector
//! run at every scrape of the [`Registry`].

use crate::metrics_http::Registry;
use closeout_bus::{Bus, ConsumerStats, RelayStats};
use sqlx::PgPool;
use std::sync::Arc;

/// `closeout_outbox_backlog`: outbox rows not yet published.
pub fn watch_outbox(registry: &Registry, pool: PgPool) {
    let r = registry.clone();
    registry.add_collector(move || {
        let (r, pool) = (r.clone(), pool.clone());
        async move {
            match closeout_bus::outbox::backlog(&pool).await {
                Ok(n) => r.gauge_set(
                    "closeout_outbox_backlog",
                    "Events in the outbox not yet published.",
                    &[],
                    n as f64,
                ),
                Err(e) => tracing::debug!(error = %e, "outbox backlog unavailable"),
            }
        }
    });
}

/// `closeout_outbox_published_total`, `closeout_outbox_publish_failures_total`.
pub fn watch_relay(registry: &Registry, stats: Arc<RelayStats>) {
    let r = registry.clone();
    registry.add_collector(move || {
        let (r, stats) = (r.clone(), stats.clone());
        async move {
            r.counter_set(
                "closeout_outbox_published_total",
                "Events the relay published (acknowledged by JetStream).",
                &[],
                stats.published() as f64,
            );
            r.counter_set(
                "closeout_outbox_publish_failures_total",
                "Failed publish attempts of the relay.",
                &[],
                stats.failures() as f64,
            );
        }
    });
}

/// Counters of consumer `name` (its `durable_name`) from its stats, and its
/// lag summed over its JetStream durables (`nats_durables`: the durable
/// name itself for a consumer with one filter).
pub fn watch_consumer(
    registry: &Registry,
    bus: Bus,
    name: &str,
    nats_durables: &[&str],
    stats: Arc<ConsumerStats>,
) {
    let r = registry.clone();
    let name = name.to_string();
    let durables: Vec<String> = nats_durables.iter().map(|d| d.to_string()).collect();
    registry.add_collector(move || {
        let (r, bus, name, durables, stats) = (
            r.clone(),
            bus.clone(),
            name.clone(),
            durables.clone(),
            stats.clone(),
        );
        async move {
            let labels = [("consumer", name.as_str())];
            for (metric, help, value) in [
                (
                    "closeout_events_applied_total",
                    "Events applied by the consumer.",
                    stats.applied(),
                ),
                (
                    "closeout_events_duplicate_total",
                    "Redelivered events acknowledged without effect.",
                    stats.duplicates(),
                ),
                (
                    "closeout_events_dead_lettered_total",
                    "Events sent to the dead-letter subject.",
                    stats.dead_lettered(),
                ),
                (
                    "closeout_events_failures_total",
                    "Failed attempts to apply an event.",
                    stats.failures(),
                ),
            ] {
                r.counter_set(metric, help, &labels, value as f64);
            }
            let mut lag = 0u64;
            for durable in &durables {
                if let Some(n) = pending(&bus, durable).await {
                    lag += n;
                }
            }
            if let Some(n) = dead_letters(&bus, &name).await {
                r.gauge_set(
                    "closeout_dead_letters",
                    "Dead letters of the consumer kept in the stream (across restarts).",
                    &labels,
                    n as f64,
                );
            }
            r.gauge_set(
                "closeout_consumer_lag",
                "Messages of the stream not yet acknowledged by the consumer.",
                &labels,
                lag as f64,
            );
        }
    });
}

/// `num_pending + num_ack_pending` of a JetStream durable consumer, or
/// `None` when it does not exist (yet) or NATS does not answer.
pub async fn pending(bus: &Bus, durable: &str) -> Option<u64> {
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .ok()?;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(durable).await.ok()?;
    let info = consumer.info().await.ok()?;
    Some(info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(0))
}

/// Messages in the stream on the consumer's dead-letter subject
/// (`<prefix>.dlq.<name>`), or `None` when NATS does not answer.
pub async fn dead_letters(bus: &Bus, name: &str) -> Option<u64> {
    use futures::StreamExt;
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .ok()?;
    let mut subjects = stream
        .info_with_subjects(bus.dlq_subject(name))
        .await
        .ok()?;
    let mut total = 0u64;
    while let Some(entry) = subjects.next().await {
        let (_, count) = entry.ok()?;
        total += count as u64;
    }
    Some(total)
}
