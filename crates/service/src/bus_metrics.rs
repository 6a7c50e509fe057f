//! Prometheus figures of the event bus, for any service: outbox backlog,
//! relay publishes, and per consumer the events applied, duplicates,
//! dead-lettered events (since start, and all those kept in the stream on
//! its dead-letter subject), failures and lag (`num_pending` +
//! `num_ack_pending` from the JetStream consumer info). Each function
//! registers its figures and a refresher run before every scrape.

use crate::prometheus::Prometheus;
use closeout_bus::{Bus, ConsumerStats, RelayStats};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The label of every per-consumer figure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    /// The consumer's durable name.
    pub consumer: String,
}

/// The per-consumer families, registered once per registry.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConsumerFigures {
    applied: Family<ConsumerLabels, Counter>,
    duplicates: Family<ConsumerLabels, Counter>,
    dead_lettered: Family<ConsumerLabels, Counter>,
    failures: Family<ConsumerLabels, Counter>,
    dead_letters: Family<ConsumerLabels, Gauge>,
    lag: Family<ConsumerLabels, Gauge>,
}

impl ConsumerFigures {
    fn register(prometheus: &mut Prometheus) -> ConsumerFigures {
        let figures = ConsumerFigures::default();
        let registry = prometheus.registry();
        registry.register(
            "closeout_events_applied",
            "Events applied by the consumer",
            figures.applied.clone(),
        );
        registry.register(
            "closeout_events_duplicate",
            "Redelivered events acknowledged without effect",
            figures.duplicates.clone(),
        );
        registry.register(
            "closeout_events_dead_lettered",
            "Events sent to the dead-letter subject",
            figures.dead_lettered.clone(),
        );
        registry.register(
            "closeout_events_failures",
            "Failed attempts to apply an event",
            figures.failures.clone(),
        );
        registry.register(
            "closeout_dead_letters",
            "Dead letters of the consumer kept in the stream (across restarts)",
            figures.dead_letters.clone(),
        );
        registry.register(
            "closeout_consumer_lag",
            "Messages of the stream not yet acknowledged by the consumer",
            figures.lag.clone(),
        );
        figures
    }
}

/// Raises `counter` to `total` (a count kept elsewhere); it never goes down.
fn catch_up(counter: &Counter, total: u64) {
    counter.inner().fetch_max(total, Ordering::Relaxed);
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `closeout_outbox_backlog`: outbox rows not yet published.
pub fn watch_outbox(prometheus: &mut Prometheus, pool: PgPool) {
    let backlog = prometheus.gauge(
        "closeout_outbox_backlog",
        "Events in the outbox not yet published",
    );
    prometheus.refresh_before_scrape(move || {
        let (backlog, pool) = (backlog.clone(), pool.clone());
        async move {
            match closeout_bus::outbox::backlog(&pool).await {
                Ok(n) => {
                    backlog.set(gauge_value(n));
                }
                Err(e) => tracing::debug!(error = %e, "outbox backlog unavailable"),
            }
        }
    });
}

/// `closeout_outbox_published_total`, `closeout_outbox_publish_failures_total`.
pub fn watch_relay(prometheus: &mut Prometheus, stats: Arc<RelayStats>) {
    let published = prometheus.counter(
        "closeout_outbox_published_total",
        "Events the relay published (acknowledged by JetStream)",
    );
    let failures = prometheus.counter(
        "closeout_outbox_publish_failures_total",
        "Failed publish attempts of the relay",
    );
    prometheus.refresh_before_scrape(move || {
        catch_up(&published, stats.published());
        catch_up(&failures, stats.failures());
        std::future::ready(())
    });
}

/// Counters of consumer `name` (its `durable_name`) from its stats, and its
/// lag summed over its JetStream durables (`nats_durables`: the durable
/// name itself for a consumer with one filter).
pub fn watch_consumer(
    prometheus: &mut Prometheus,
    bus: Bus,
    name: &str,
    nats_durables: &[&str],
    stats: Arc<ConsumerStats>,
) {
    let figures = match &prometheus.consumers {
        Some(figures) => figures.clone(),
        None => {
            let figures = ConsumerFigures::register(prometheus);
            prometheus.consumers = Some(figures.clone());
            figures
        }
    };
    let labels = ConsumerLabels {
        consumer: name.to_string(),
    };
    let durables: Vec<String> = nats_durables.iter().map(|d| d.to_string()).collect();
    prometheus.refresh_before_scrape(move || {
        let (figures, labels, bus, durables, stats) = (
            figures.clone(),
            labels.clone(),
            bus.clone(),
            durables.clone(),
            stats.clone(),
        );
        async move {
            catch_up(&figures.applied.get_or_create(&labels), stats.applied());
            catch_up(
                &figures.duplicates.get_or_create(&labels),
                stats.duplicates(),
            );
            catch_up(
                &figures.dead_lettered.get_or_create(&labels),
                stats.dead_lettered(),
            );
            catch_up(&figures.failures.get_or_create(&labels), stats.failures());
            let mut lag = 0u64;
            for durable in &durables {
                if let Some(n) = pending(&bus, durable).await {
                    lag += n;
                }
            }
            if let Some(n) = dead_letters(&bus, &labels.consumer).await {
                figures
                    .dead_letters
                    .get_or_create(&labels)
                    .set(gauge_value(n));
            }
            figures.lag.get_or_create(&labels).set(gauge_value(lag));
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
