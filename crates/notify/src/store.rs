//! Every SQL statement of the notify service: subscriptions, the outbox of
//! deliveries and their attempts, the per-subscription worker lease, and
//! the item facts kept for summaries. Rows convert to the proto messages
//! here, so the gRPC layer only checks and calls.

use crate::rules::{ItemFacts, Selection};
use chrono::{DateTime, Utc};
use closeout_proto as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The LISTEN/NOTIFY channel that wakes the delivery dispatcher when
/// deliveries are queued (delivered by PostgreSQL on commit).
pub const CHANNEL: &str = "closeout_notify_deliveries";

/// A timestamp as a protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        // Always below 2e9, so it fits.
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A subscription as stored (without its secret).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub id: Uuid,
    pub events: Vec<i32>,
    pub subject_filter: String,
    pub organisation_ids: Vec<String>,
    pub webhook_url: Option<String>,
    pub email_address: Option<String>,
    pub email_mode: i32,
    pub state: i32,
    pub owner_organisation_id: String,
    pub created_by: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

const SUBSCRIPTION_COLUMNS: &str = "id, events, subject_filter, organisation_ids, webhook_url, \
    email_address, email_mode, state, owner_organisation_id, created_by, description, created_at";

impl SubscriptionRow {
    pub fn selection(&self) -> Selection {
        Selection {
            events: self.events.clone(),
            subject_filter: self.subject_filter.clone(),
            organisation_ids: self.organisation_ids.clone(),
        }
    }

    pub fn to_proto(&self) -> pb::Subscription {
        let target = match (&self.webhook_url, &self.email_address) {
            (Some(url), _) => Some(pb::subscription::Target::WebhookUrl(url.clone())),
            (None, Some(address)) => Some(pb::subscription::Target::Email(pb::EmailTarget {
                address: address.clone(),
                mode: self.email_mode,
            })),
            (None, None) => None,
        };
        pb::Subscription {
            id: self.id.to_string(),
            events: self.events.clone(),
            subject_filter: self.subject_filter.clone(),
            organisation_ids: self.organisation_ids.clone(),
            target,
            state: self.state,
            owner_organisation_id: self.owner_organisation_id.clone(),
            created_by: self.created_by.clone(),
            created_at: Some(timestamp(self.created_at)),
            description: self.description.clone(),
        }
    }
}

/// Stores a new subscription with its secret.
pub async fn insert_subscription(
    conn: &mut PgConnection,
    row: &SubscriptionRow,
    secret: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notify_subscriptions (id, events, subject_filter, organisation_ids,
             webhook_url, email_address, email_mode, secret, state, owner_organisation_id,
             created_by, description, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(row.id)
    .bind(&row.events)
    .bind(&row.subject_filter)
    .bind(&row.organisation_ids)
    .bind(&row.webhook_url)
    .bind(&row.email_address)
    .bind(row.email_mode)
    .bind(secret)
    .bind(row.state)
    .bind(&row.owner_organisation_id)
    .bind(&row.created_by)
    .bind(&row.description)
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_subscription(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Subscriptions owned by `owner` (all when `None`) that cover
/// `organisation` (all when `None`; a subscription for every organisation
/// covers each), oldest first.
pub async fn list_subscriptions(
    pool: &PgPool,
    owner: Option<&str>,
    organisation: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions
         WHERE ($1::text IS NULL OR owner_organisation_id = $1)
           AND ($2::text IS NULL OR cardinality(organisation_ids) = 0 OR $2 = ANY(organisation_ids))
         ORDER BY created_at, id LIMIT $3 OFFSET $4"
    ))
    .bind(owner)
    .bind(organisation)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// Sets the state; the row afterwards, `None` if there is no such
/// subscription.
pub async fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: pb::SubscriptionState,
) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    let row = sqlx::query_as(&format!(
        "UPDATE notify_subscriptions SET state = $2 WHERE id = $1 RETURNING {SUBSCRIPTION_COLUMNS}"
    ))
    .bind(id)
    .bind(state as i32)
    .fetch_optional(&mut *conn)
    .await?;
    wake(conn).await?;
    Ok(row)
}

/// Deletes a subscription and its deliveries; false if there was none.
pub async fn delete_subscription(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM notify_subscriptions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Active subscriptions asking for any of `kinds` and covering
/// `organisation` (the subject filter is checked by the caller).
pub async fn candidate_subscriptions(
    tx: &mut PgConnection,
    kinds: &[i32],
    organisation: &str,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions
         WHERE state = $1 AND events && $2
           AND (cardinality(organisation_ids) = 0 OR $3 = ANY(organisation_ids))
         ORDER BY id"
    ))
    .bind(pb::SubscriptionState::Active as i32)
    .bind(kinds)
    .bind(organisation)
    .fetch_all(&mut *tx)
    .await
}

/// A delivery to queue.
pub struct NewDelivery<'a> {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub organisation_id: &'a str,
    pub envelope: &'a [u8],
    pub summary: &'a str,
    pub status: pb::DeliveryStatus,
}

/// Queues a delivery (once per subscription and event) and wakes the
/// dispatcher on commit. True if it was new.
pub async fn insert_delivery(
    tx: &mut PgConnection,
    delivery: &NewDelivery<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO notify_deliveries (id, subscription_id, event_id, event_type,
             organisation_id, envelope, summary, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (subscription_id, event_id) DO NOTHING",
    )
    .bind(delivery.id)
    .bind(delivery.subscription_id)
    .bind(delivery.event_id)
    .bind(delivery.event_type)
    .bind(delivery.organisation_id)
    .bind(delivery.envelope)
    .bind(delivery.summary)
    .bind(delivery.status as i32)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted > 0 {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    Ok(inserted > 0)
}

/// Wakes the dispatcher (after a resume or a redelivery); inside a
/// transaction the notification goes out at commit.
pub async fn wake<'e>(executor: impl sqlx::PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(executor)
        .await?;
    Ok(())
}

/// Records what an `ItemOpened` says, or moves an item's status forward
/// (never backwards: an older version changes nothing).
pub async fn upsert_item(
    tx: &mut PgConnection,
    item_id: &str,
    organisation_id: &str,
    text: Option<&str>,
    status: Option<i32>,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notify_items (item_id, organisation_id, text, status, version)
         VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, 0), $5)
         ON CONFLICT (item_id) DO UPDATE SET
             text = CASE WHEN $3 IS NULL THEN notify_items.text ELSE $3 END,
             status = CASE WHEN $4 IS NULL OR notify_items.version > $5
                           THEN notify_items.status ELSE $4 END,
             version = GREATEST(notify_items.version, $5)",
    )
    .bind(item_id)
    .bind(organisation_id)
    .bind(text)
    .bind(status)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_item(pool: &PgPool, item_id: &str) -> Result<Option<ItemFacts>, sqlx::Error> {
    let row: Option<(String, i32)> =
        sqlx::query_as("SELECT text, status FROM notify_items WHERE item_id = $1")
            .bind(item_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(text, status)| ItemFacts { text, status }))
}

/// A delivery as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub organisation_id: String,
    pub envelope: Vec<u8>,
    pub summary: String,
    pub status: i32,
    pub attempts: i32,
    pub tries: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.subscription_id, d.event_id, d.event_type, \
    d.organisation_id, d.envelope, d.summary, d.status, d.attempts, d.tries, d.next_attempt_at, \
    d.last_error, d.created_at, d.delivered_at";

/// One recorded attempt.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: i32,
    pub error: String,
    pub latency_ms: i32,
}

impl DeliveryRow {
    pub fn to_proto(&self, attempts: &[AttemptRow]) -> pb::Delivery {
        let pending = self.status == pb::DeliveryStatus::Pending as i32;
        pb::Delivery {
            id: self.id.to_string(),
            subscription_id: self.subscription_id.to_string(),
            event_id: self.event_id.to_string(),
            event_type: self.event_type.clone(),
            organisation_id: self.organisation_id.clone(),
            status: self.status,
            summary: self.summary.clone(),
            created_at: Some(timestamp(self.created_at)),
            delivered_at: self.delivered_at.map(timestamp),
            next_attempt_at: pending.then(|| timestamp(self.next_attempt_at)),
            last_error: self.last_error.clone(),
            attempts: attempts
                .iter()
                .filter(|a| a.delivery_id == self.id)
                .map(|a| pb::DeliveryAttempt {
                    attempt: u32::try_from(a.attempt).unwrap_or(0),
                    attempted_at: Some(timestamp(a.attempted_at)),
                    status_code: u32::try_from(a.status_code).unwrap_or(0),
                    error: a.error.clone(),
                    latency_ms: u32::try_from(a.latency_ms).unwrap_or(0),
                })
                .collect(),
        }
    }
}

pub async fn get_delivery(pool: &PgPool, id: Uuid) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries d WHERE d.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A subscription's deliveries, newest first.
pub async fn list_deliveries(
    pool: &PgPool,
    subscription_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries d WHERE d.subscription_id = $1
         ORDER BY d.seq DESC LIMIT $2 OFFSET $3"
    ))
    .bind(subscription_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// Dead-lettered deliveries, newest first, of one subscription or of all
/// subscriptions owned by `owner` (all when `None`).
pub async fn list_dead_letters(
    pool: &PgPool,
    subscription_id: Option<Uuid>,
    owner: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries d
         JOIN notify_subscriptions s ON s.id = d.subscription_id
         WHERE d.status = $1
           AND ($2::uuid IS NULL OR d.subscription_id = $2)
           AND ($3::text IS NULL OR s.owner_organisation_id = $3)
         ORDER BY d.seq DESC LIMIT $4 OFFSET $5"
    ))
    .bind(pb::DeliveryStatus::Dead as i32)
    .bind(subscription_id)
    .bind(owner)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// The attempts of the given deliveries.
pub async fn attempts_of(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<AttemptRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT delivery_id, attempt, attempted_at, status_code, error, latency_ms
         FROM notify_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Queues a dead letter again with a fresh retry budget; `None` if it is
/// not (or no longer) dead.
pub async fn redeliver(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let row = sqlx::query_as(&format!(
        "UPDATE notify_deliveries d SET status = $2, tries = 0, next_attempt_at = now(),
             last_error = ''
         WHERE d.id = $1 AND d.status = $3 RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(id)
    .bind(pb::DeliveryStatus::Pending as i32)
    .bind(pb::DeliveryStatus::Dead as i32)
    .fetch_optional(&mut *conn)
    .await?;
    wake(conn).await?;
    Ok(row)
}

/// Subscriptions that are active and have pending deliveries.
pub async fn subscriptions_with_work(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT d.subscription_id FROM notify_deliveries d
         JOIN notify_subscriptions s ON s.id = d.subscription_id
         WHERE d.status = $1 AND s.state = $2",
    )
    .bind(pb::DeliveryStatus::Pending as i32)
    .bind(pb::SubscriptionState::Active as i32)
    .fetch_all(pool)
    .await
}

/// Where and how a worker delivers.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Target {
    pub webhook_url: Option<String>,
    pub email_address: Option<String>,
    pub secret: String,
}

/// Takes or renews the lease on an active subscription for `owner`, for
/// `seconds`; its target, or `None` if it is paused, deleted or leased by
/// another worker.
pub async fn lease(
    pool: &PgPool,
    subscription_id: Uuid,
    owner: Uuid,
    seconds: f64,
) -> Result<Option<Target>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE notify_subscriptions
         SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
         WHERE id = $1 AND state = $4
           AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())
         RETURNING webhook_url, email_address, secret",
    )
    .bind(subscription_id)
    .bind(owner)
    .bind(seconds)
    .bind(pb::SubscriptionState::Active as i32)
    .fetch_optional(pool)
    .await
}

/// Gives the lease up.
pub async fn release(pool: &PgPool, subscription_id: Uuid, owner: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notify_subscriptions SET lease_owner = NULL, lease_until = NULL
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(subscription_id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(())
}

/// The first pending delivery of a subscription, in queue order.
pub async fn head(
    pool: &PgPool,
    subscription_id: Uuid,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries d
         WHERE d.subscription_id = $1 AND d.status = $2 ORDER BY d.seq LIMIT 1"
    ))
    .bind(subscription_id)
    .bind(pb::DeliveryStatus::Pending as i32)
    .fetch_optional(pool)
    .await
}

/// What an attempt came to.
pub struct AttemptRecord {
    pub attempted_at: DateTime<Utc>,
    pub status_code: i32,
    pub error: String,
    pub latency_ms: i32,
    /// The delivery's status afterwards.
    pub status: pb::DeliveryStatus,
    /// Failed attempts since it was queued, afterwards.
    pub tries: i32,
    pub next_attempt_at: DateTime<Utc>,
}

/// Records an attempt and the delivery's new state, in one transaction;
/// nothing if the delivery is no longer pending (e.g. deleted).
pub async fn record_attempt(
    pool: &PgPool,
    delivery_id: Uuid,
    record: &AttemptRecord,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let attempt: Option<i32> = sqlx::query_scalar(
        "UPDATE notify_deliveries SET attempts = attempts + 1, tries = $2, status = $3,
             next_attempt_at = $4, last_error = $5,
             delivered_at = CASE WHEN $3 = $6 THEN $7 ELSE delivered_at END
         WHERE id = $1 AND status = $8 RETURNING attempts",
    )
    .bind(delivery_id)
    .bind(record.tries)
    .bind(record.status as i32)
    .bind(record.next_attempt_at)
    .bind(&record.error)
    .bind(pb::DeliveryStatus::Delivered as i32)
    .bind(record.attempted_at)
    .bind(pb::DeliveryStatus::Pending as i32)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(attempt) = attempt {
        sqlx::query(
            "INSERT INTO notify_attempts (delivery_id, attempt, attempted_at, status_code, error,
                 latency_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(delivery_id)
        .bind(attempt)
        .bind(record.attempted_at)
        .bind(record.status_code)
        .bind(&record.error)
        .bind(record.latency_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// A delivery waiting for its recipient's digest.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DigestEntry {
    pub id: Uuid,
    pub email_address: String,
    pub envelope: Vec<u8>,
    pub summary: String,
}

/// Locks and returns the digest entries queued before `cutoff` for active
/// subscriptions, oldest first; other replicas skip the locked rows.
pub async fn lock_digest_entries(
    tx: &mut PgConnection,
    cutoff: DateTime<Utc>,
) -> Result<Vec<DigestEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, s.email_address, d.envelope, d.summary
         FROM notify_deliveries d JOIN notify_subscriptions s ON s.id = d.subscription_id
         WHERE d.status = $1 AND d.created_at < $2 AND s.state = $3
           AND s.email_address IS NOT NULL
         ORDER BY d.seq
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(pb::DeliveryStatus::DigestQueued as i32)
    .bind(cutoff)
    .bind(pb::SubscriptionState::Active as i32)
    .fetch_all(&mut *tx)
    .await
}

/// Marks digest entries sent (or records a failed send), with an attempt
/// row each.
pub async fn settle_digest_entries(
    tx: &mut PgConnection,
    ids: &[Uuid],
    attempted_at: DateTime<Utc>,
    status_code: i32,
    error: &str,
    latency_ms: i32,
) -> Result<(), sqlx::Error> {
    let delivered = error.is_empty();
    let status = if delivered {
        pb::DeliveryStatus::Delivered
    } else {
        pb::DeliveryStatus::DigestQueued
    };
    sqlx::query(
        "WITH updated AS (
             UPDATE notify_deliveries SET attempts = attempts + 1, status = $2, last_error = $3,
                 delivered_at = CASE WHEN $4 THEN $5 ELSE delivered_at END
             WHERE id = ANY($1) RETURNING id, attempts)
         INSERT INTO notify_attempts (delivery_id, attempt, attempted_at, status_code, error,
             latency_ms)
         SELECT id, attempts, $5, $6, $3, $7 FROM updated",
    )
    .bind(ids)
    .bind(status as i32)
    .bind(error)
    .bind(delivered)
    .bind(attempted_at)
    .bind(status_code)
    .bind(latency_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
