//! Durable, idempotent event consumers with a dead-letter subject.
//!
//! A consumer is a durable JetStream pull consumer (explicit acks, delivers
//! everything from the start of the stream) and one task that applies its
//! messages one at a time, in stream order. For each message:
//!
//! 1. decode the [`EventEnvelope`]; a message that does not decode can never
//!    be applied and goes straight to the dead-letter subject;
//! 2. begin a transaction and insert `(consumer, event_id)` into
//!    `closeout_applied_events`; if the row exists the event was applied
//!    before (a redelivery, or the same event published twice): change
//!    nothing, ack;
//! 3. otherwise run the [`EventHandler`] in that same transaction, commit,
//!    then ack and wait for the server to confirm the ack. If the process
//!    dies between commit and ack, the redelivery finds the row and is
//!    acked without effect, so every event is applied exactly once.
//!
//! **Acks beside the next batch.** The server's confirmation of a batch's
//! acks is awaited by a task of its own while the next messages are
//! applied (at most one batch's acks in flight; stopping waits for them).
//! A message is still acked only after its transaction committed; the next
//! event just no longer waits for the round trip of the acks before it.
//!
//! **Batches.** When several messages are waiting, the task takes up to
//! `batch` of them at once (never waiting for more than are already
//! there) and applies them in ONE transaction: the event ids are inserted
//! into `closeout_applied_events` with one statement (those already there,
//! or repeated within the batch, are skipped), the [`BatchHandler`] gets
//! the rest in stream order, the transaction commits, then every message
//! is acked (the acks in flight together). If anything in the batch fails,
//! the transaction is rolled back and the batch's messages are applied one
//! at a time as above, so one bad event is retried or dead-lettered alone
//! and never holds back the others. An [`EventHandler`] is applied per
//! event within the batch's transaction; a [`BatchHandler`] sees the whole
//! batch (e.g. for multi-row statements).
//!
//! **Visible before durable** (`commit_without_flush`, for handlers that
//! append no events): a batch commits without waiting for the disk, so a
//! read model shows it one flush sooner, and its acks wait, beside the
//! next batch, for a durable write made after that commit (WAL is flushed
//! in order). Acked still means on disk; a crash of PostgreSQL may lose
//! an unacked batch, whose messages then come back and are applied again.
//!
//! A handler error is [`HandlerError::Transient`] (rolled back, negatively
//! acked with a growing delay, retried) or [`HandlerError::Permanent`]. A
//! permanent error, or a transient one on the `max_failures`-th delivery,
//! sends the message to `<prefix>.dlq.<durable>` with the reason in headers,
//! acks the original and counts it. Database failures outside the handler
//! (begin, commit) are retried forever and never dead-letter an event: the
//! event is fine, the database is not.
//!
//! **nats-server 2.9** allows one `filter_subject` per consumer. A
//! [`ConsumerConfig`] with several filters therefore creates one durable
//! JetStream consumer per filter (named `<durable>_<filter>`), each with its
//! own task; they share the handler, the idempotency key (`durable_name`)
//! and the dead-letter subject. Events from different filters are not
//! ordered relative to each other; read models rely on `aggregate_version`.
//! Filters are relative to the subject prefix (`"findings.>"`) and may not
//! begin with a wildcard or `dlq`, so dead letters never reach a service.
//!
//! When the message stream ends or fails (server restart, consumer deleted,
//! missed heartbeats), the task re-creates the consumer and its message
//! stream with backoff. In-flight work is bounded by `max_ack_pending`.

use crate::bus::Bus;
use crate::error::{BusError, Result};
use crate::event::{
    HEADER_DLQ_CONSUMER, HEADER_DLQ_DELIVERED, HEADER_DLQ_ERROR, HEADER_DLQ_EVENT_ID,
    HEADER_DLQ_SUBJECT, HEADER_MSG_ID,
};
use crate::subject::{is_valid_name, is_valid_token};
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{AckKind, Message};
use closeout_proto::EventEnvelope;
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a lock timeout, a dependency not there yet):
    /// retried, and dead-lettered after `max_failures` deliveries.
    #[error("{0}")]
    Transient(String),
    /// Can never be applied (invalid content): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

impl HandlerError {
    pub fn transient(error: impl std::fmt::Display) -> Self {
        HandlerError::Transient(error.to_string())
    }

    pub fn permanent(error: impl std::fmt::Display) -> Self {
        HandlerError::Permanent(error.to_string())
    }
}

/// Database errors inside a handler are transient: the retry may succeed.
impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        HandlerError::Transient(error.to_string())
    }
}

/// Applies one event inside the consumer's transaction. Write the effect
/// on `tx` only; the consumer commits it together with the record that the
/// event was applied. Implement it with `async fn`:
///
/// ```ignore
/// impl EventHandler for Projector {
///     async fn handle(&self, tx: &mut PgConnection, event: &EventEnvelope)
///         -> Result<(), HandlerError> { … }
/// }
/// ```
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

impl<H: EventHandler> EventHandler for Arc<H> {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        (**self).handle(tx, event)
    }
}

/// Applies a batch of events, in stream order, inside the consumer's
/// transaction (which also records them all as applied). An error rolls
/// the whole batch back; the consumer then applies its events one at a
/// time (as a batch of one each), so an error names one event.
pub trait BatchHandler: Send + Sync + 'static {
    fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

impl<H: BatchHandler> BatchHandler for Arc<H> {
    fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        (**self).handle_batch(tx, events)
    }
}

/// An [`EventHandler`] as a [`BatchHandler`]: each event in turn, on the
/// batch's transaction.
pub struct PerEvent<H>(pub H);

impl<H: EventHandler> BatchHandler for PerEvent<H> {
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        for event in events {
            self.0.handle(&mut *tx, event).await?;
        }
        Ok(())
    }
}

/// What a consumer reads and how patiently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Durable name (ASCII letters, digits, `-`, `_`), also the key in
    /// `closeout_applied_events` and the last token of the DLQ subject.
    pub durable_name: String,
    /// Subjects relative to the prefix, e.g. `["findings.>"]`; one JetStream
    /// consumer each (see the module documentation).
    pub filter_subjects: Vec<String>,
    /// Most messages delivered and not yet acked, per filter.
    pub max_ack_pending: i64,
    /// Redelivery if a message is not acked within this time.
    pub ack_wait: Duration,
    /// Deliveries with a transient handler error before dead-lettering.
    pub max_failures: u32,
    /// Messages asked for per pull request, and the most applied in one
    /// transaction.
    pub batch: usize,
    /// First redelivery delay after a transient failure; doubles per
    /// delivery up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// Commit each batch without waiting for the disk
    /// (`synchronous_commit = off`), so its effect is visible one disk
    /// flush sooner, and ack it only after a durable write made after that
    /// commit (the WAL is flushed in order, so that write's flush covers
    /// the batch). A crash of PostgreSQL can then lose a batch, but never
    /// an acked one: its messages come back and are applied again. Only
    /// for handlers that append no events: the relay could publish an
    /// event whose transaction a crash then loses.
    pub commit_without_flush: bool,
}

impl ConsumerConfig {
    /// A configuration with default tuning.
    pub fn new(durable_name: impl Into<String>, filter_subjects: &[&str]) -> Self {
        ConsumerConfig {
            durable_name: durable_name.into(),
            filter_subjects: filter_subjects.iter().map(|s| s.to_string()).collect(),
            max_ack_pending: 256,
            ack_wait: Duration::from_secs(30),
            max_failures: 5,
            batch: 64,
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            commit_without_flush: false,
        }
    }

    /// Checks the durable name and filters.
    pub fn validate(&self) -> Result<()> {
        // Room for the per-filter suffix within the 64-character limit.
        if !is_valid_name(&self.durable_name) || self.durable_name.len() > 32 {
            return Err(BusError::Config(format!(
                "durable name {:?} must be 1-32 ASCII letters, digits, '-' or '_'",
                self.durable_name
            )));
        }
        if self.filter_subjects.is_empty() {
            return Err(BusError::Config(format!(
                "consumer {} has no filter subject",
                self.durable_name
            )));
        }
        for filter in &self.filter_subjects {
            let tokens: Vec<&str> = filter.split('.').collect();
            let first_ok = tokens
                .first()
                .is_some_and(|t| is_valid_token(t) && *t != "dlq");
            let rest_ok = tokens.iter().enumerate().all(|(i, t)| {
                *t == "*" || (*t == ">" && i == tokens.len() - 1) || is_valid_token(t)
            });
            if !first_ok || !rest_ok {
                return Err(BusError::Config(format!(
                    "filter {filter:?} must be a subject relative to the prefix, starting \
                     with a service token (e.g. \"findings.>\")"
                )));
            }
        }
        if self.max_failures == 0 || self.batch == 0 || self.max_ack_pending <= 0 {
            return Err(BusError::Config(
                "max_failures, batch and max_ack_pending must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The JetStream durable consumers this configuration creates, as
    /// `(durable name, filter relative to the prefix)`: the durable name
    /// itself for one filter, `<durable>_<filter>` for each of several
    /// (e.g. to read their lag from the consumer info).
    pub fn nats_durables(&self) -> Vec<(String, String)> {
        if let [only] = self.filter_subjects.as_slice() {
            return vec![(self.durable_name.clone(), only.clone())];
        }
        self.filter_subjects
            .iter()
            .map(|filter| {
                let suffix: String = filter
                    .chars()
                    .map(|c| match c {
                        '*' => 'S',
                        '>' => 'A',
                        c if c.is_ascii_alphanumeric() || c == '-' => c,
                        _ => '_',
                    })
                    .take(31)
                    .collect();
                (format!("{}_{suffix}", self.durable_name), filter.clone())
            })
            .collect()
    }

    /// The JetStream pull consumer `durable` (one of [`Self::nats_durables`])
    /// reading `filter` from `deliver_policy`, with this configuration's
    /// acks and limits: what [`Consumer`] creates, and what a replay that
    /// hands over to it must create too.
    pub fn pull_config(
        &self,
        bus: &Bus,
        durable: &str,
        filter: &str,
        deliver_policy: DeliverPolicy,
    ) -> pull::Config {
        pull::Config {
            durable_name: Some(durable.to_string()),
            filter_subject: bus.subject(filter),
            ack_policy: AckPolicy::Explicit,
            deliver_policy,
            ack_wait: self.ack_wait,
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }
}

/// Counters of a consumer, for the Prometheus endpoint.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    applied: AtomicU64,
    duplicates: AtomicU64,
    dead_lettered: AtomicU64,
    failures: AtomicU64,
}

impl ConsumerStats {
    /// Events applied (handler committed).
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Deliveries of events already applied, acked without effect.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Messages sent to the dead-letter subject.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    /// Failed attempts (handler or database), each retried or dead-lettered.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// Starts consumers.
pub struct Consumer;

impl Consumer {
    /// Validates the configuration and spawns one task per filter on the
    /// current Tokio runtime. The JetStream consumers are created by the
    /// tasks (and re-created after failures), so this never waits for NATS.
    pub fn spawn<H: EventHandler>(
        pool: PgPool,
        bus: Bus,
        config: ConsumerConfig,
        handler: H,
    ) -> Result<ConsumerHandle> {
        Consumer::spawn_batched(pool, bus, config, PerEvent(handler))
    }

    /// Like [`Consumer::spawn`], with a handler that takes whole batches.
    pub fn spawn_batched<H: BatchHandler>(
        pool: PgPool,
        bus: Bus,
        config: ConsumerConfig,
        handler: H,
    ) -> Result<ConsumerHandle> {
        config.validate()?;
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(ConsumerStats::default());
        let shared = Arc::new(Shared {
            pool,
            dlq_subject: bus.dlq_subject(&config.durable_name),
            bus,
            config,
            handler,
            stats: stats.clone(),
        });
        let tasks = shared
            .config
            .nats_durables()
            .into_iter()
            .map(|(durable, filter)| {
                let shared = shared.clone();
                let stop_rx = stop_rx.clone();
                tokio::spawn(async move { shared.run(durable, filter, stop_rx).await })
            })
            .collect();
        Ok(ConsumerHandle { stop, tasks, stats })
    }
}

/// A running consumer. Dropping it stops its tasks after their current
/// message.
pub struct ConsumerHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<ConsumerStats>,
}

impl ConsumerHandle {
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Stops after the message in hand (its transaction and ack finish)
    /// and waits for the tasks to end.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

struct Shared<H> {
    pool: PgPool,
    bus: Bus,
    config: ConsumerConfig,
    handler: H,
    stats: Arc<ConsumerStats>,
    dlq_subject: String,
}

enum Outcome {
    Applied,
    Duplicate,
}

enum Failure {
    Handler(HandlerError),
    Database(sqlx::Error),
}

const MIN_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(5);

/// A message that decoded, waiting in a batch.
struct Decoded {
    message: Message,
    event: EventEnvelope,
    event_id: Uuid,
    delivered: u64,
}

impl<H: BatchHandler> Shared<H> {
    async fn run(&self, durable: String, filter: String, mut stop: watch::Receiver<bool>) {
        let mut delay = MIN_RESTART_DELAY;
        let mut acks = Acks::default();
        loop {
            if *stop.borrow() {
                return acks.finish().await;
            }
            match self.open(&durable, &filter).await {
                Ok(mut messages) => loop {
                    let next = tokio::select! {
                        biased;
                        _ = stop.changed() => return acks.finish().await,
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(message)) => {
                            // Whatever else is already here joins the batch.
                            let mut batch = vec![message];
                            let mut ended = None;
                            while batch.len() < self.config.batch {
                                match messages.next().now_or_never() {
                                    Some(Some(Ok(message))) => batch.push(message),
                                    Some(Some(Err(e))) => {
                                        ended = Some(e.to_string());
                                        break;
                                    }
                                    Some(None) => {
                                        ended = Some("message stream ended".to_string());
                                        break;
                                    }
                                    None => break,
                                }
                            }
                            let applied = self.process_batch(batch).await;
                            let flush = self.flush_for(&durable, &applied);
                            acks.confirm(applied, flush).await;
                            delay = MIN_RESTART_DELAY;
                            if *stop.borrow() {
                                return acks.finish().await;
                            }
                            if let Some(reason) = ended {
                                tracing::warn!(consumer = %durable, reason, "message stream failed; re-subscribing");
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(consumer = %durable, error = %e, "message stream failed; re-subscribing");
                            break;
                        }
                        None => {
                            tracing::warn!(consumer = %durable, "message stream ended; re-subscribing");
                            break;
                        }
                    }
                },
                Err(e) => {
                    tracing::warn!(consumer = %durable, error = %e, retry_in = ?delay, "cannot subscribe");
                }
            }
            tokio::select! {
                _ = stop.changed() => return acks.finish().await,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RESTART_DELAY);
        }
    }

    /// Gets or creates the durable consumer and opens its message stream.
    async fn open(&self, durable: &str, filter: &str) -> Result<pull::Stream> {
        let js = self.bus.jetstream();
        let stream = js
            .get_stream(&self.bus.config().stream_name)
            .await
            .map_err(|e| BusError::nats("get stream", e))?;
        let consumer = stream
            .get_or_create_consumer(
                durable,
                self.config
                    .pull_config(&self.bus, durable, filter, DeliverPolicy::All),
            )
            .await
            .map_err(|e| BusError::nats("create consumer", e))?;
        consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            .expires(Duration::from_secs(30))
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| BusError::nats("pull", e))
    }

    /// Applies several messages in one transaction (see the module
    /// documentation); one at a time if that fails. Returns the messages
    /// whose events are applied (now or before), for [`Acks::confirm`].
    async fn process_batch(&self, messages: Vec<Message>) -> Vec<Message> {
        if messages.len() == 1 {
            let mut applied = Vec::with_capacity(1);
            for message in messages {
                applied.extend(self.process(message).await);
            }
            return applied;
        }
        let mut decoded = Vec::with_capacity(messages.len());
        for message in messages {
            if let Some(one) = self.decode(message).await {
                decoded.push(one);
            }
        }
        if decoded.is_empty() {
            return Vec::new();
        }
        let span = tracing::info_span!(
            "events",
            consumer = %self.config.durable_name,
            count = decoded.len()
        );
        match self.apply_batch(&decoded).instrument(span).await {
            Ok(applied) => {
                let duplicates = decoded.len().saturating_sub(applied) as u64;
                self.stats
                    .applied
                    .fetch_add(applied as u64, Ordering::Relaxed);
                self.stats
                    .duplicates
                    .fetch_add(duplicates, Ordering::Relaxed);
                decoded.into_iter().map(|one| one.message).collect()
            }
            Err(failure) => {
                let reason = match &failure {
                    Failure::Handler(e) => e.to_string(),
                    Failure::Database(e) => e.to_string(),
                };
                tracing::info!(
                    count = decoded.len(),
                    error = %reason,
                    "batch failed; applying its events one at a time"
                );
                let mut settled = Vec::with_capacity(decoded.len());
                for one in decoded {
                    if self
                        .settle_traced(&one.message, one.event_id, &one.event, one.delivered)
                        .await
                    {
                        settled.push(one.message);
                    }
                }
                settled
            }
        }
    }

    /// Begins a batch's transaction, in one round trip either way.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        if self.config.commit_without_flush {
            self.pool
                .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                .await
        } else {
            self.pool.begin().await
        }
    }

    /// What must be durable before `messages` are acked (see
    /// [`ConsumerConfig::commit_without_flush`]).
    fn flush_for(&self, durable: &str, messages: &[Message]) -> Option<Flush> {
        if !self.config.commit_without_flush {
            return None;
        }
        let stream_sequence = messages
            .iter()
            .filter_map(|message| message.info().ok().map(|info| info.stream_sequence))
            .max()
            .unwrap_or_default();
        Some(Flush {
            pool: self.pool.clone(),
            durable: durable.to_string(),
            stream_sequence: i64::try_from(stream_sequence).unwrap_or(i64::MAX),
        })
    }

    /// Decodes a message; one that cannot be applied is dead-lettered.
    async fn decode(&self, message: Message) -> Option<Decoded> {
        let delivered = message
            .info()
            .map(|info| u64::try_from(info.delivered).unwrap_or(1))
            .unwrap_or(1);
        let event = match EventEnvelope::decode(message.payload.clone()) {
            Ok(event) => event,
            Err(e) => {
                let reason = format!("undecodable event envelope: {e}");
                self.dead_letter(&message, None, delivered, &reason).await;
                return None;
            }
        };
        let Ok(event_id) = Uuid::parse_str(&event.event_id) else {
            let reason = format!("event id {:?} is not a UUID", event.event_id);
            self.dead_letter(&message, Some(&event.event_id), delivered, &reason)
                .await;
            return None;
        };
        Some(Decoded {
            message,
            event,
            event_id,
            delivered,
        })
    }

    /// Records the batch's events as applied and runs the handler on those
    /// not applied before, in one transaction. Returns how many it applied.
    async fn apply_batch(&self, batch: &[Decoded]) -> Result<usize, Failure> {
        let ids: Vec<Uuid> = batch.iter().map(|one| one.event_id).collect();
        let mut tx = self.begin().await.map_err(Failure::Database)?;
        let inserted: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO closeout_applied_events (consumer, event_id)
             SELECT $1, id FROM UNNEST($2::uuid[]) AS e(id)
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(&self.config.durable_name)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::Database)?;
        let mut fresh: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
        // In stream order; an event repeated within the batch once.
        let events: Vec<EventEnvelope> = batch
            .iter()
            .filter(|one| fresh.remove(&one.event_id))
            .map(|one| one.event.clone())
            .collect();
        if events.is_empty() {
            return Ok(0); // all applied before: dropping `tx` rolls back
        }
        self.handler
            .handle_batch(&mut tx, &events)
            .await
            .map_err(Failure::Handler)?;
        tx.commit().await.map_err(Failure::Database)?;
        // The handler may have appended events: the relay need not chase.
        crate::outbox::committed(&self.pool);
        Ok(events.len())
    }

    /// Applies one message; returns it if it is to be acked.
    async fn process(&self, message: Message) -> Option<Message> {
        let delivered = message
            .info()
            .map(|info| u64::try_from(info.delivered).unwrap_or(1))
            .unwrap_or(1);
        let event = match EventEnvelope::decode(message.payload.clone()) {
            Ok(event) => event,
            Err(e) => {
                let reason = format!("undecodable event envelope: {e}");
                self.dead_letter(&message, None, delivered, &reason).await;
                return None;
            }
        };
        let Ok(event_id) = Uuid::parse_str(&event.event_id) else {
            let reason = format!("event id {:?} is not a UUID", event.event_id);
            self.dead_letter(&message, Some(&event.event_id), delivered, &reason)
                .await;
            return None;
        };
        let span = tracing::info_span!(
            "event",
            consumer = %self.config.durable_name,
            %event_id,
            event_type = %event.event_type
        );
        // The handler's work joins the trace of the request that caused it.
        if let Some(traceparent) = message
            .headers
            .as_ref()
            .and_then(|h| h.get(crate::event::HEADER_TRACEPARENT))
        {
            crate::trace::set_remote_parent(&span, traceparent.as_str());
        }
        self.settle(&message, event_id, &event, delivered)
            .instrument(span)
            .await
            .then_some(message)
    }

    /// [`Self::settle`] in the event's own span, joined to its trace.
    async fn settle_traced(
        &self,
        message: &Message,
        event_id: Uuid,
        event: &EventEnvelope,
        delivered: u64,
    ) -> bool {
        let span = tracing::info_span!(
            "event",
            consumer = %self.config.durable_name,
            %event_id,
            event_type = %event.event_type
        );
        if let Some(traceparent) = message
            .headers
            .as_ref()
            .and_then(|h| h.get(crate::event::HEADER_TRACEPARENT))
        {
            crate::trace::set_remote_parent(&span, traceparent.as_str());
        }
        self.settle(message, event_id, event, delivered)
            .instrument(span)
            .await
    }

    /// Applies a decoded event, or naks or dead-letters the message.
    /// Returns true if it is applied (now or before) and to be acked.
    async fn settle(
        &self,
        message: &Message,
        event_id: Uuid,
        event: &EventEnvelope,
        delivered: u64,
    ) -> bool {
        match self.apply(event_id, event).await {
            Ok(outcome) => {
                let counter = match outcome {
                    Outcome::Applied => &self.stats.applied,
                    Outcome::Duplicate => &self.stats.duplicates,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Err(Failure::Handler(HandlerError::Permanent(reason))) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.dead_letter(message, Some(&event.event_id), delivered, &reason)
                    .await;
            }
            Err(Failure::Handler(HandlerError::Transient(reason))) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                if delivered >= u64::from(self.config.max_failures) {
                    let reason = format!("failed {delivered} times; last error: {reason}");
                    self.dead_letter(message, Some(&event.event_id), delivered, &reason)
                        .await;
                } else {
                    tracing::warn!(delivered, error = %reason, "handler failed; will retry");
                    self.nak(message, delivered).await;
                }
            }
            Err(Failure::Database(e)) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "database unavailable; will retry");
                self.nak(message, delivered).await;
            }
        }
        false
    }

    /// Records the event as applied and runs the handler, in one
    /// transaction.
    async fn apply(&self, event_id: Uuid, event: &EventEnvelope) -> Result<Outcome, Failure> {
        let mut tx = self.begin().await.map_err(Failure::Database)?;
        let inserted = sqlx::query(
            "INSERT INTO closeout_applied_events (consumer, event_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.config.durable_name)
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .map_err(Failure::Database)?
        .rows_affected();
        if inserted == 0 {
            // Applied before: change nothing (dropping `tx` rolls back).
            return Ok(Outcome::Duplicate);
        }
        self.handler
            .handle_batch(&mut tx, std::slice::from_ref(event))
            .await
            .map_err(Failure::Handler)?;
        tx.commit().await.map_err(Failure::Database)?;
        // The handler may have appended events: the relay need not chase.
        crate::outbox::committed(&self.pool);
        Ok(Outcome::Applied)
    }

    async fn nak(&self, message: &Message, delivered: u64) {
        let exponent = u32::try_from(delivered.saturating_sub(1).min(16)).unwrap_or(16);
        let delay = self
            .config
            .retry_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.config.max_retry_delay);
        if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
            // The message comes back after ack_wait anyway.
            tracing::debug!(error = %e, "nak failed");
        }
    }

    /// Publishes the message to the dead-letter subject with the reason,
    /// then acks the original. If the dead letter cannot be published the
    /// original is negatively acked, to be tried again.
    async fn dead_letter(
        &self,
        message: &Message,
        event_id: Option<&str>,
        delivered: u64,
        reason: &str,
    ) {
        let stream_sequence = message
            .info()
            .map(|info| info.stream_sequence)
            .unwrap_or_default();
        let mut headers = HeaderMap::new();
        // Retrying a dead letter must not store it twice.
        headers.insert(
            HEADER_MSG_ID,
            format!("dlq-{}-{stream_sequence}", self.config.durable_name).as_str(),
        );
        headers.insert(HEADER_DLQ_SUBJECT, message.subject.as_str());
        headers.insert(HEADER_DLQ_ERROR, header_safe(reason).as_str());
        headers.insert(HEADER_DLQ_CONSUMER, self.config.durable_name.as_str());
        headers.insert(HEADER_DLQ_DELIVERED, delivered.to_string().as_str());
        if let Some(id) = event_id {
            headers.insert(HEADER_DLQ_EVENT_ID, header_safe(id).as_str());
        }
        match self
            .bus
            .publish(self.dlq_subject.clone(), headers, message.payload.clone())
            .await
        {
            Ok(_) => {
                if let Err(e) = message.double_ack().await {
                    tracing::warn!(error = %e, "ack of a dead-lettered message failed");
                }
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    consumer = %self.config.durable_name,
                    subject = %message.subject,
                    event_id = event_id.unwrap_or(""),
                    reason,
                    "event dead-lettered"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "dead-lettering failed; will retry");
                self.nak(message, delivered).await;
            }
        }
    }
}

/// A durable write that, once committed, proves a batch committed without
/// waiting for the disk is on it: PostgreSQL flushes its WAL in order.
struct Flush {
    pool: PgPool,
    /// The JetStream durable whose batch it is.
    durable: String,
    /// The batch's last stream sequence (kept for inspection).
    stream_sequence: i64,
}

impl Flush {
    /// Commits the write with the session's own (durable) setting.
    async fn run(&self) -> std::result::Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO closeout_consumer_flushes (consumer, stream_sequence) VALUES ($1, $2)
             ON CONFLICT (consumer) DO UPDATE
             SET stream_sequence = EXCLUDED.stream_sequence, flushed_at = now()",
        )
        .bind(&self.durable)
        .bind(self.stream_sequence)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The acks of the last batch applied, confirmed beside the next one.
#[derive(Default)]
struct Acks(Option<JoinHandle<()>>);

impl Acks {
    /// Acks `messages`, whose events are committed (and, with `flush`, once
    /// that commit is on disk). The flush and the server's confirmations
    /// are awaited in a task of their own (after those of the batch
    /// before, so at most one batch is in flight).
    async fn confirm(&mut self, messages: Vec<Message>, flush: Option<Flush>) {
        if messages.is_empty() {
            return;
        }
        self.finish().await;
        self.0 = Some(tokio::spawn(async move {
            if let Some(flush) = flush
                && let Err(e) = flush.run().await
            {
                // Not acked: the messages come back after ack_wait and are
                // applied again if the batch was lost, else skipped.
                tracing::warn!(error = %e, "flush before acks failed; not acking");
                return;
            }
            let acks = messages.iter().map(|message| message.double_ack());
            for result in futures::future::join_all(acks).await {
                if let Err(e) = result {
                    // Committed; the redelivery will be a duplicate.
                    tracing::warn!(error = %e, "ack failed after commit");
                }
            }
        }));
    }

    /// Waits for the confirmations in flight.
    async fn finish(&mut self) {
        if let Some(task) = self.0.take() {
            let _ = task.await;
        }
    }
}

/// A header value: one line, printable, at most 512 bytes.
fn header_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(512));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > 512 {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_rejects_dangerous_filters() {
        assert!(
            ConsumerConfig::new("tracker", &["findings.>"])
                .validate()
                .is_ok()
        );
        assert!(
            ConsumerConfig::new("metrics", &["findings.>", "tracker.v1.item.*.*"])
                .validate()
                .is_ok()
        );
        for filters in [
            &[][..],
            &[">"][..],
            &["*.>"][..],
            &["dlq.>"][..],
            &["findings.>.x"][..],
            &["findings..x"][..],
        ] {
            assert!(
                ConsumerConfig::new("c", filters).validate().is_err(),
                "{filters:?}"
            );
        }
        assert!(
            ConsumerConfig::new("a.b", &["findings.>"])
                .validate()
                .is_err()
        );
        assert!(ConsumerConfig::new("", &["findings.>"]).validate().is_err());
    }

    #[test]
    fn one_durable_per_filter() {
        let one = ConsumerConfig::new("tracker", &["findings.>"]).nats_durables();
        assert_eq!(one, vec![("tracker".into(), "findings.>".into())]);
        let two = ConsumerConfig::new("metrics", &["findings.>", "tracker.>"]).nats_durables();
        assert_eq!(two[0].0, "metrics_findings_A");
        assert_eq!(two[1].0, "metrics_tracker_A");
        assert!(two.iter().all(|(d, _)| is_valid_name(d)));
    }

    #[test]
    fn header_values_are_one_line() {
        assert_eq!(header_safe("a\r\nb"), "a  b");
        assert_eq!(header_safe(&"é".repeat(400)).len(), 512);
    }
}
