//! Handing deliveries over, after the consumer committed them.
//!
//! A dispatcher wakes on PostgreSQL notifications from the delivery
//! outbox (and polls, in case one was missed) and keeps one worker task
//! per subscription with pending deliveries. A worker holds a lease on its
//! subscription (so across replicas one worker sends, in queue order) and
//! sends the oldest pending delivery until none is left: a slow or dead
//! receiver only ever holds up its own subscription.
//!
//! Webhooks: a JSON body (the event in canonical proto3 JSON plus a
//! summary), the `Closeout-Event-Id`, `Closeout-Event-Type`,
//! `Closeout-Delivery-Id` and `Closeout-Signature` headers. 2xx delivers;
//! 5xx, 408, 429, timeouts and connection failures are retried with
//! exponential backoff and jitter; any other answer is refused for good.
//! When the retries are used up, or on a refusal, the delivery is
//! dead-lettered, to be redelivered by hand. E-mail per event goes the
//! same way; daily digests go out once a day ([`send_digests`]).
//!
//! Delivery is at least once: a process that dies after the receiver
//! accepted and before the outcome was recorded sends again, with the same
//! delivery id, so receivers de-duplicate by `Closeout-Delivery-Id`.

use crate::email::{Mailer, subject_line};
use crate::rules::{self, RetryPolicy, Verdict};
use crate::store::{self, AttemptRecord, DeliveryRow, Target};
use chrono::{DateTime, Utc};
use closeout_proto::{self as pb, EventEnvelope};
use prometheus_client::metrics::counter::Counter;
use prost::Message;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Header: the event's id.
pub const HEADER_EVENT_ID: &str = "Closeout-Event-Id";
/// Header: the event's type, e.g. `closeout.v1.StatusChanged`.
pub const HEADER_EVENT_TYPE: &str = "Closeout-Event-Type";
/// Header: the delivery's id, the same on every attempt (de-duplicate by it).
pub const HEADER_DELIVERY_ID: &str = "Closeout-Delivery-Id";
/// Header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const HEADER_SIGNATURE: &str = "Closeout-Signature";

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    pub retry: RetryPolicy,
    /// Longest wait for a webhook answer or an SMTP exchange.
    pub timeout: Duration,
    /// How often pending work is looked for without a notification.
    pub poll_interval: Duration,
    /// Link target for e-mails (`<console>/items/<id>`).
    pub console_url: Option<String>,
    /// Hour of the day (UTC) the daily digests go out.
    pub digest_hour: u32,
    /// Also write every delivery outcome to the log at info level.
    pub log_sink: bool,
    /// Which receiver addresses webhooks may reach (checked again at
    /// every connection, after DNS).
    pub addresses: rules::AddressPolicy,
}

/// The Prometheus counters of deliveries.
#[derive(Clone, Debug, Default)]
pub struct DeliveryCounters {
    pub delivered: Counter,
    pub retried: Counter,
    pub dead_lettered: Counter,
}

/// What the workers share.
pub struct Deliverer {
    pool: PgPool,
    http: reqwest::Client,
    mailer: Option<Mailer>,
    settings: DeliverySettings,
    counters: DeliveryCounters,
    /// This process's lease owner id.
    owner: Uuid,
}

impl Deliverer {
    /// A deliverer; `Err` if the HTTP client cannot be built.
    pub fn new(
        pool: PgPool,
        mailer: Option<Mailer>,
        settings: DeliverySettings,
        counters: DeliveryCounters,
    ) -> Result<Deliverer, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("closeout-notify/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: settings.addresses,
            }))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Deliverer {
            pool,
            http,
            mailer,
            settings,
            counters,
            owner: Uuid::now_v7(),
        })
    }

    fn lease_seconds(&self) -> f64 {
        (self.settings.timeout + Duration::from_secs(5)).as_secs_f64()
    }
}

/// Resolves receiver host names and keeps only the addresses the policy
/// permits, so a name pointing into the internal network is refused at
/// connection time (whatever it resolved to when the subscription was
/// made).
struct GuardedResolver {
    policy: rules::AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<std::net::SocketAddr> =
                found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The running dispatcher with its workers, and the digest schedule.
pub struct Dispatcher {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts the dispatcher and the digest schedule.
    pub fn spawn(deliverer: Arc<Deliverer>) -> Dispatcher {
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(dispatch(deliverer.clone(), stop_rx.clone())),
            tokio::spawn(digests(deliverer, stop_rx)),
        ];
        Dispatcher { stop, tasks }
    }

    /// Stops; an attempt in hand is abandoned (it stays pending).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Once a minute, sends the digests due (see [`latest_digest_time`]).
async fn digests(deliverer: Arc<Deliverer>, mut stop: watch::Receiver<bool>) {
    if deliverer.mailer.is_none() {
        return;
    }
    loop {
        let cutoff = latest_digest_time(Utc::now(), deliverer.settings.digest_hour);
        let run = send_digests(&deliverer, cutoff);
        tokio::select! {
            _ = stop.changed() => return,
            result = run => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "sending digests failed");
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(store::CHANNEL).await.ok()?;
    Some(listener)
}

async fn notified(listener: &mut Option<PgListener>, poll: Duration) {
    match listener {
        Some(l) => {
            if let Err(e) = l.recv().await {
                tracing::debug!(error = %e, "delivery notifications interrupted");
                tokio::time::sleep(poll).await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn dispatch(deliverer: Arc<Deliverer>, mut stop: watch::Receiver<bool>) {
    let poll = deliverer.settings.poll_interval;
    let mut listener = listen(&deliverer.pool).await;
    if listener.is_none() {
        tracing::warn!("no delivery notifications; polling only");
    }
    let mut workers: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
    loop {
        if *stop.borrow() {
            break;
        }
        workers.retain(|_, handle| !handle.is_finished());
        match store::subscriptions_with_work(&deliverer.pool).await {
            Ok(ids) => {
                for id in ids {
                    workers
                        .entry(id)
                        .or_insert_with(|| tokio::spawn(work(deliverer.clone(), id, stop.clone())));
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking for pending deliveries failed"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = notified(&mut listener, poll) => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
    for (_, handle) in workers {
        let _ = handle.await;
    }
}

/// The most recent digest time (`hour`:00 UTC) at or before `now`.
pub fn latest_digest_time(now: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let today = now
        .date_naive()
        .and_hms_opt(hour.min(23), 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    if today <= now {
        today
    } else {
        today - chrono::Duration::days(1)
    }
}

/// Sends the deliveries of one subscription, oldest first, until none is
/// pending, the subscription is paused or deleted, another worker holds
/// it, or the dispatcher stops.
async fn work(deliverer: Arc<Deliverer>, subscription: Uuid, mut stop: watch::Receiver<bool>) {
    let pool = &deliverer.pool;
    let owner = deliverer.owner;
    loop {
        if *stop.borrow() {
            break;
        }
        let target = match store::lease(pool, subscription, owner, deliverer.lease_seconds()).await
        {
            Ok(Some(target)) => target,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%subscription, error = %e, "cannot lease subscription");
                return;
            }
        };
        let head = match store::head(pool, subscription).await {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%subscription, error = %e, "cannot read pending deliveries");
                break;
            }
        };
        let now = Utc::now();
        if head.next_attempt_at > now {
            let wait = (head.next_attempt_at - now)
                .to_std()
                .unwrap_or_default()
                .min(Duration::from_secs_f64(deliverer.lease_seconds() / 2.0));
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(wait) => continue,
            }
        }
        // On shutdown the attempt in hand is abandoned: the delivery stays
        // pending and is sent again (same delivery id) after the restart.
        let record = tokio::select! {
            record = deliverer.attempt(&target, &head) => record,
            _ = stop.changed() => break,
        };
        if let Err(e) = store::record_attempt(pool, head.id, &record).await {
            // The attempt happened; without its record the delivery is
            // still pending and will be sent again (same delivery id).
            tracing::warn!(delivery = %head.id, error = %e, "cannot record attempt");
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(deliverer.settings.poll_interval) => {}
            }
        }
    }
    if let Err(e) = store::release(pool, subscription, owner).await {
        tracing::debug!(%subscription, error = %e, "lease not released; it expires");
    }
}

/// One attempt's raw result.
struct Tried {
    verdict: Verdict,
    status_code: i32,
    error: String,
    channel: &'static str,
}

impl Deliverer {
    /// Makes one attempt and decides what follows.
    async fn attempt(&self, target: &Target, delivery: &DeliveryRow) -> AttemptRecord {
        let attempted_at = Utc::now();
        let started = Instant::now();
        let tried = match EventEnvelope::decode(delivery.envelope.as_slice()) {
            Err(e) => Tried {
                verdict: Verdict::Refused,
                status_code: 0,
                error: format!("stored event does not decode: {e}"),
                channel: "none",
            },
            Ok(event) => match (&target.webhook_url, &target.email_address) {
                (Some(url), _) => self.post(url, &target.secret, delivery, &event).await,
                (None, Some(address)) => self.mail(address, delivery, &event).await,
                (None, None) => Tried {
                    verdict: Verdict::Refused,
                    status_code: 0,
                    error: "subscription has no target".into(),
                    channel: "none",
                },
            },
        };
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let retry = self.settings.retry;
        let (status, tries, next_attempt_at) = match tried.verdict {
            Verdict::Delivered => (pb::DeliveryStatus::Delivered, delivery.tries, attempted_at),
            Verdict::Refused => (pb::DeliveryStatus::Dead, delivery.tries + 1, attempted_at),
            Verdict::Retry => {
                let tries = delivery.tries + 1;
                let failed = u32::try_from(tries).unwrap_or(u32::MAX);
                if retry.exhausted(failed) {
                    (pb::DeliveryStatus::Dead, tries, attempted_at)
                } else {
                    let delay = retry.delay(failed, rand::random::<f64>());
                    let next = attempted_at
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                    (pb::DeliveryStatus::Pending, tries, next)
                }
            }
        };
        match status {
            pb::DeliveryStatus::Delivered => {
                self.counters.delivered.inc();
                if self.settings.log_sink {
                    tracing::info!(
                        target: "closeout_notify::sink",
                        delivery = %delivery.id,
                        subscription = %delivery.subscription_id,
                        channel = tried.channel,
                        status_code = tried.status_code,
                        latency_ms,
                        "delivered: {}",
                        delivery.summary
                    );
                }
            }
            pb::DeliveryStatus::Dead => {
                self.counters.dead_lettered.inc();
                tracing::warn!(
                    delivery = %delivery.id,
                    subscription = %delivery.subscription_id,
                    channel = tried.channel,
                    status_code = tried.status_code,
                    error = %tried.error,
                    tries,
                    "delivery dead-lettered"
                );
            }
            _ => {
                self.counters.retried.inc();
                tracing::info!(
                    delivery = %delivery.id,
                    subscription = %delivery.subscription_id,
                    channel = tried.channel,
                    status_code = tried.status_code,
                    error = %tried.error,
                    tries,
                    next_attempt_at = %next_attempt_at,
                    "delivery failed; will retry"
                );
            }
        }
        AttemptRecord {
            attempted_at,
            status_code: tried.status_code,
            error: tried.error,
            latency_ms,
            status,
            tries,
            next_attempt_at,
        }
    }

    /// Posts one webhook.
    async fn post(
        &self,
        url: &str,
        secret: &str,
        delivery: &DeliveryRow,
        event: &EventEnvelope,
    ) -> Tried {
        let body = match webhook_body(delivery, event) {
            Ok(body) => body,
            Err(e) => {
                return Tried {
                    verdict: Verdict::Refused,
                    status_code: 0,
                    error: e,
                    channel: "webhook",
                };
            }
        };
        // An address written into the URL is not resolved: check it here.
        let literal = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().and_then(rules::ip_literal));
        if let Some(ip) = literal
            && !self.settings.addresses.permits(ip)
        {
            return Tried {
                verdict: Verdict::Refused,
                status_code: 0,
                error: format!("{ip} is not an address webhooks may reach"),
                channel: "webhook",
            };
        }
        let t = Utc::now().timestamp();
        let answer = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .header(HEADER_EVENT_ID, delivery.event_id.to_string())
            .header(HEADER_EVENT_TYPE, &delivery.event_type)
            .header(HEADER_DELIVERY_ID, delivery.id.to_string())
            .header(HEADER_SIGNATURE, rules::signature(secret, t, &body))
            .body(body)
            .send()
            .await;
        match answer {
            Ok(response) => {
                let code = response.status().as_u16();
                let verdict = rules::http_verdict(code);
                let error = if verdict == Verdict::Delivered {
                    String::new()
                } else {
                    format!("receiver answered {}", response.status())
                };
                Tried {
                    verdict,
                    status_code: i32::from(code),
                    error,
                    channel: "webhook",
                }
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    "no answer in time"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                Tried {
                    verdict: Verdict::Retry,
                    status_code: 0,
                    error: format!("{what}: {e}"),
                    channel: "webhook",
                }
            }
        }
    }

    /// Sends one per-event e-mail.
    async fn mail(&self, address: &str, delivery: &DeliveryRow, event: &EventEnvelope) -> Tried {
        let Some(mailer) = &self.mailer else {
            return Tried {
                verdict: Verdict::Retry,
                status_code: 0,
                error: "e-mail is not configured (--smtp-host)".into(),
                channel: "email",
            };
        };
        let item = match rules::item_id_of(event) {
            Some(id) => store::get_item(&self.pool, id).await.ok().flatten(),
            None => None,
        };
        let link = rules::console_link(self.settings.console_url.as_deref(), event);
        let mut text = rules::email_text(event, &delivery.summary, item.as_ref(), link.as_deref());
        text.push_str(&format!("Delivery: {}\n", delivery.id));
        let outcome = mailer
            .send(
                address,
                &subject_line(&delivery.summary),
                text,
                &delivery.id.to_string(),
            )
            .await;
        let verdict = if outcome.error.is_empty() {
            Verdict::Delivered
        } else if outcome.permanent {
            Verdict::Refused
        } else {
            Verdict::Retry
        };
        Tried {
            verdict,
            status_code: outcome.code,
            error: outcome.error,
            channel: "email",
        }
    }
}

/// The webhook body: the delivery's ids, the summary and the event in
/// canonical proto3 JSON.
pub fn webhook_body(delivery: &DeliveryRow, event: &EventEnvelope) -> Result<Vec<u8>, String> {
    let event_json = closeout_proto::json::to_json_value("EventEnvelope", event)
        .map_err(|e| format!("rendering the event as JSON: {e}"))?;
    let body = serde_json::json!({
        "deliveryId": delivery.id.to_string(),
        "subscriptionId": delivery.subscription_id.to_string(),
        "eventId": delivery.event_id.to_string(),
        "eventType": delivery.event_type,
        "summary": delivery.summary,
        "event": event_json,
    });
    serde_json::to_vec(&body).map_err(|e| format!("serialising the body: {e}"))
}

/// Sends one digest per recipient with the digest entries queued before
/// `cutoff`; the number of messages sent. Failed sends stay queued for the
/// next run.
pub async fn send_digests(
    deliverer: &Deliverer,
    cutoff: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let Some(mailer) = &deliverer.mailer else {
        return Ok(0);
    };
    let mut tx = deliverer.pool.begin().await?;
    let entries = store::lock_digest_entries(&mut tx, cutoff).await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let mut by_recipient: BTreeMap<String, Vec<store::DigestEntry>> = BTreeMap::new();
    for entry in entries {
        by_recipient
            .entry(entry.email_address.clone())
            .or_default()
            .push(entry);
    }
    let mut sent = 0;
    for (address, entries) in by_recipient {
        let mut text = format!(
            "Closeout: {} event{} since the last digest.\n",
            entries.len(),
            if entries.len() == 1 { "" } else { "s" }
        );
        for entry in &entries {
            text.push_str("\n----------------------------------------\n");
            match EventEnvelope::decode(entry.envelope.as_slice()) {
                Ok(event) => {
                    let item = match rules::item_id_of(&event) {
                        Some(id) => store::get_item(&deliverer.pool, id).await.ok().flatten(),
                        None => None,
                    };
                    let link =
                        rules::console_link(deliverer.settings.console_url.as_deref(), &event);
                    text.push_str(&rules::email_text(
                        &event,
                        &entry.summary,
                        item.as_ref(),
                        link.as_deref(),
                    ));
                }
                Err(_) => text.push_str(&format!("{}\n", entry.summary)),
            }
            text.push_str(&format!("Delivery: {}\n", entry.id));
        }
        let ids: Vec<Uuid> = entries.iter().map(|e| e.id).collect();
        let digest_id = Uuid::now_v7();
        let subject = format!(
            "[Closeout] Daily digest: {} event{}",
            entries.len(),
            if entries.len() == 1 { "" } else { "s" }
        );
        let started = Instant::now();
        let outcome = mailer
            .send(&address, &subject, text, &digest_id.to_string())
            .await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        store::settle_digest_entries(
            &mut tx,
            &ids,
            Utc::now(),
            outcome.code,
            &outcome.error,
            latency_ms,
        )
        .await?;
        if outcome.error.is_empty() {
            sent += 1;
            deliverer.counters.delivered.inc_by(ids.len() as u64);
        } else {
            deliverer.counters.retried.inc_by(ids.len() as u64);
            tracing::warn!(recipient = %address, error = %outcome.error, "digest not sent; will retry");
        }
    }
    tx.commit().await?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn digest_time_is_the_last_one_passed() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0).single().unwrap();
        assert_eq!(latest_digest_time(at(9, 30), 7), at(7, 0));
        assert_eq!(latest_digest_time(at(7, 0), 7), at(7, 0));
        assert_eq!(
            latest_digest_time(at(6, 59), 7),
            Utc.with_ymd_and_hms(2026, 3, 9, 7, 0, 0).single().unwrap()
        );
    }
}
