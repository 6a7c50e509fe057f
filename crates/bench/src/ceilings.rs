//! The ceilings each figure is compared with, measured in the same run on
//! a scratch database and a scratch stream: what the same work costs with
//! nothing of Closeout's in the way.

use crate::load::{self, Stats};
use closeout_testkit::{TestBus, TestDatabase};
use futures::StreamExt;
use sqlx::PgPool;
use std::future::IntoFuture;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A scratch database holding tables shaped like the tracker's write path
/// (current state, history, outbox) and a scratch stream.
pub struct Ceilings {
    db: TestDatabase,
    bus: TestBus,
    items: Vec<Uuid>,
}

/// An encoded event's worth of bytes.
const ENVELOPE_BYTES: usize = 400;

impl Ceilings {
    pub async fn create() -> anyhow::Result<Ceilings> {
        let db = TestDatabase::create().await;
        for statement in [
            "CREATE TABLE items (id uuid PRIMARY KEY, organisation_id text NOT NULL, \
             status smallint NOT NULL, version bigint NOT NULL, updated_at timestamptz NOT NULL)",
            "CREATE TABLE item_events (sequence bigserial PRIMARY KEY, item_id uuid NOT NULL \
             REFERENCES items (id), version bigint NOT NULL, event_id uuid NOT NULL UNIQUE, \
             event_type text NOT NULL, envelope bytea NOT NULL, item_after bytea NOT NULL, \
             UNIQUE (item_id, version))",
            "CREATE TABLE outbox (seq bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, \
             subject text NOT NULL, payload bytea NOT NULL, sent_at timestamptz)",
            "CREATE TABLE applied (event_id uuid PRIMARY KEY, organisation_id text NOT NULL, \
             payload bytea NOT NULL)",
        ] {
            sqlx::query(statement).execute(db.pool()).await?;
        }
        let bus = TestBus::new();
        drop(bus.connect().await);
        Ok(Ceilings {
            db,
            bus,
            items: Vec::new(),
        })
    }

    /// Makes `count` items for [`Ceilings::note`].
    pub async fn make_items(&mut self, count: usize) -> anyhow::Result<()> {
        while self.items.len() < count {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO items (id, organisation_id, status, version, updated_at) \
                 VALUES ($1, 'ceiling', 1, 1, now())",
            )
            .bind(id)
            .execute(self.db.pool())
            .await?;
            self.items.push(id);
        }
        Ok(())
    }

    /// NoteProgress's durable SQL, directly: in one transaction lock the
    /// item's row, append its event to the history, update its current
    /// state and append the event to the outbox. No NOTIFY: the tracker's
    /// writers no longer send one (its database-wide lock serialised
    /// commits), so the ceiling must not either.
    /// `in_flight` commands at a time, each on its own items.
    pub async fn note(&mut self, in_flight: usize, total: usize) -> anyhow::Result<Stats> {
        self.make_items(in_flight.max(1)).await?;
        let pool = self.db.pool().clone();
        let items = self.items.clone();
        load::run(in_flight, total, move |i| {
            let pool = pool.clone();
            let item = items[i % in_flight.max(1) % items.len()];
            async move {
                let mut tx = pool.begin().await?;
                let version: i64 =
                    sqlx::query_scalar("SELECT version FROM items WHERE id = $1 FOR UPDATE")
                        .bind(item)
                        .fetch_one(&mut *tx)
                        .await?;
                let event = Uuid::now_v7();
                let body = vec![7u8; ENVELOPE_BYTES];
                sqlx::query(
                    "INSERT INTO item_events (item_id, version, event_id, event_type, envelope, \
                     item_after) SELECT $1, $2, $3, 'ProgressNoted', $4, $4",
                )
                .bind(item)
                .bind(version + 1)
                .bind(event)
                .bind(&body)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE items SET version = $2, updated_at = now() WHERE id = $1")
                    .bind(item)
                    .bind(version + 1)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO outbox (event_id, subject, payload) \
                     VALUES ($1, 'item.progress', $2)",
                )
                .bind(event)
                .bind(&body)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        })
        .await
    }

    /// `total` single-row INSERT transactions, one at a time: what a
    /// consumer applying one event per transaction can reach at best.
    pub async fn single_inserts(&self, total: usize) -> anyhow::Result<Stats> {
        let pool = self.db.pool().clone();
        load::run(1, total, move |_| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO applied (event_id, organisation_id, payload) \
                     VALUES ($1, 'ceiling', $2)",
                )
                .bind(Uuid::now_v7())
                .bind(vec![1u8; ENVELOPE_BYTES])
                .execute(&pool)
                .await?;
                Ok(())
            }
        })
        .await
    }

    /// Publishes `total` events to the scratch stream (acknowledged
    /// publishes, 64 outstanding), then pulls and acknowledges them all
    /// with one durable pull consumer; (publish, pull+ack).
    pub async fn jetstream(&self, total: usize) -> anyhow::Result<(Stats, Stats)> {
        let config = self.bus.config();
        let client = async_nats::connect(&config.nats_url).await?;
        let js = async_nats::jetstream::new(client);
        let subject = format!("{}.ceiling.event", config.subject_prefix);
        let body = bytes_of(ENVELOPE_BYTES);
        let started = Instant::now();
        let mut acks = futures::stream::FuturesOrdered::new();
        for _ in 0..total {
            acks.push_back(
                js.publish(subject.clone(), body.clone())
                    .await?
                    .into_future(),
            );
            if acks.len() >= 64
                && let Some(ack) = acks.next().await
            {
                ack?;
            }
        }
        while let Some(ack) = acks.next().await {
            ack?;
        }
        let publish = Stats::throughput(total, started.elapsed());

        let stream = js.get_stream(&config.stream_name).await?;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(format!("ceiling{}", Uuid::now_v7().simple())),
                filter_subject: subject.clone(),
                ..Default::default()
            })
            .await?;
        let started = Instant::now();
        let mut messages = consumer.messages().await?;
        let mut seen = 0;
        while seen < total {
            let next = tokio::time::timeout(Duration::from_secs(30), messages.next()).await;
            match next {
                Ok(Some(message)) => {
                    message
                        .map_err(|e| anyhow::anyhow!("pulling: {e}"))?
                        .ack()
                        .await
                        .map_err(|e| anyhow::anyhow!("acknowledging: {e}"))?;
                    seen += 1;
                }
                Ok(None) => anyhow::bail!("the scratch stream ended after {seen} of {total}"),
                Err(_) => anyhow::bail!("pulled only {seen} of {total} within 30 s"),
            }
        }
        Ok((publish, Stats::throughput(total, started.elapsed())))
    }

    /// Removes the scratch database and stream.
    pub async fn remove(self) {
        self.bus.cleanup().await;
        self.db.drop_database().await;
    }
}

fn bytes_of(n: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![b'x'; n])
}

/// The bare gRPC round trip: the health check of `channel`'s server.
pub async fn health(
    channel: tonic::transport::Channel,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Stats> {
    let client = tonic_health::pb::health_client::HealthClient::new(channel);
    load::run(in_flight, total, move |_| {
        let mut client = client.clone();
        async move {
            client
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await?;
            Ok(())
        }
    })
    .await
}

/// The tracker's current-state columns GetItem and ListItems read.
const ITEM_COLUMNS: &str = "*";

/// GetItem's SELECT by key, directly on the tracker's database.
pub async fn select_item(
    pool: PgPool,
    ids: Vec<Uuid>,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Stats> {
    load::run(in_flight, total, move |i| {
        let pool = pool.clone();
        let id = ids[i % ids.len()];
        async move {
            let row = sqlx::query(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = $1"))
                .bind(id)
                .fetch_optional(&pool)
                .await?;
            anyhow::ensure!(row.is_some(), "item {id} is not in the tracker's database");
            Ok(())
        }
    })
    .await
}

/// ListItems's first page, directly: an organisation's items in opening
/// order, one more than the page for the next-page token.
pub async fn select_page(
    pool: PgPool,
    organisations: Vec<String>,
    page: i64,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Stats> {
    load::run(in_flight, total, move |i| {
        let pool = pool.clone();
        let organisation = organisations[i % organisations.len()].clone();
        async move {
            sqlx::query(&format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE organisation_id = $1 \
                 ORDER BY opened_at, id LIMIT $2"
            ))
            .bind(organisation)
            .bind(page + 1)
            .fetch_all(&pool)
            .await?;
            Ok(())
        }
    })
    .await
}
