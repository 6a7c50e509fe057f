//! The ceilings each figure is compared with, measured in the same run on
//! a scratch database and a scratch stream: what the same work costs with
//! nothing of Closeout's in the way.

use crate::load::{self, Stats};
use closeout_testkit::{TestBus, TestDatabase};
use futures::StreamExt;
use sqlx::{Connection, PgPool, Row};
use std::future::IntoFuture;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A scratch database holding tables shaped like the tracker's write path
/// (current state, history, outbox) and a scratch stream.
pub struct Ceilings {
    db: TestDatabase,
    bus: TestBus,
    items: Vec<Uuid>,
    /// A scratch database with the tracker's own schema, for
    /// [`Ceilings::note`], and its items; made when first needed.
    tracker: Option<(TestDatabase, Vec<Uuid>)>,
}

/// Connections the private stack's tracker may hold
/// (`CLOSEOUT_DATABASE_MAX_CONNECTIONS` in `stack`), and so the ceiling's.
const TRACKER_CONNECTIONS: usize = 20;

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
            tracker: None,
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

    /// NoteProgress's durable SQL, directly: the tracker's two statements
    /// (`closeout_tracker::GET_ITEM`, then `APPEND_IF_UNCHANGED` with one
    /// ProgressNoted event and its outbox row), on a scratch database with
    /// the tracker's schema (its migrations and the outbox), on connections
    /// handed back without a release ping as the tracker's are, as many as
    /// the tracker may hold. `in_flight` commands at a time, each on its
    /// own items.
    pub async fn note(&mut self, in_flight: usize, total: usize) -> anyhow::Result<Stats> {
        let in_flight = in_flight.max(1);
        let (db, items) = self.tracker_items(in_flight).await?;
        let mut connections = Vec::new();
        for _ in 0..in_flight.min(TRACKER_CONNECTIONS) {
            let connection = sqlx::postgres::PgConnection::connect(db.url()).await?;
            connections.push(tokio::sync::Mutex::new(connection));
        }
        let connections = std::sync::Arc::new(connections);
        let ids = items.clone();
        let stats = load::run(in_flight, total, move |i| {
            let connections = connections.clone();
            let worker = i % in_flight;
            let item = ids[worker % ids.len()];
            async move {
                let mut connection = connections[worker % connections.len()].lock().await;
                let row = sqlx::query(closeout_tracker::GET_ITEM)
                    .bind(item)
                    .fetch_one(&mut *connection)
                    .await?;
                let version: i64 = row.try_get("version")?;
                let body = vec![7u8; ENVELOPE_BYTES];
                let now = sqlx::types::chrono::Utc::now();
                let written: i64 = sqlx::query_scalar(closeout_tracker::APPEND_IF_UNCHANGED)
                    .bind(item)
                    .bind(1i16)
                    .bind("")
                    .bind(None::<sqlx::types::chrono::NaiveDate>)
                    .bind(false)
                    .bind(version + 1)
                    .bind(now)
                    .bind("")
                    .bind(Vec::<Vec<u8>>::new())
                    .bind("")
                    .bind(version)
                    .bind(vec![version + 1])
                    .bind(vec![Uuid::now_v7()])
                    .bind(vec!["ProgressNoted"])
                    .bind(vec!["ceiling"])
                    .bind(vec!["bench"])
                    .bind(vec![1i16])
                    .bind(vec![now])
                    .bind(vec![1i16])
                    .bind(vec![1i16])
                    .bind(vec![body.clone()])
                    .bind(vec![body])
                    .bind(vec!["item.ceiling.progress"])
                    .bind(vec![""])
                    .fetch_one(&mut *connection)
                    .await?;
                anyhow::ensure!(written == 1, "item {item} moved under the ceiling");
                Ok(())
            }
        })
        .await;
        self.tracker = Some((db, items));
        stats
    }

    /// The scratch database with the tracker's schema and at least `count`
    /// items in it (taken from `self`: put it back after use).
    async fn tracker_items(&mut self, count: usize) -> anyhow::Result<(TestDatabase, Vec<Uuid>)> {
        let (db, mut items) = match self.tracker.take() {
            Some(made) => made,
            None => {
                let db = TestDatabase::create().await;
                closeout_tracker::MIGRATOR.run(db.pool()).await?;
                closeout_bus::outbox::install_schema(db.pool()).await?;
                (db, Vec::new())
            }
        };
        while items.len() < count {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO items (id, organisation_id, finding_id, kind, text, status, \
                 version, opened_at, updated_at) \
                 VALUES ($1, 'ceiling', $1::text, 1, 'The force should review its vetting.', \
                 1, 1, now(), now())",
            )
            .bind(id)
            .execute(db.pool())
            .await?;
            items.push(id);
        }
        Ok((db, items))
    }

    /// NoteProgress's durable SQL as the tracker groups it, directly: in
    /// rounds of `in_flight` commands (each on its own item), every item is
    /// read with `closeout_tracker::GET_ITEM` (on as many connections as
    /// the tracker may hold, at once), then all are written by one
    /// `APPEND_MANY_IF_UNCHANGED` (one ProgressNoted event each). A
    /// command's latency is its round's. The best the tracker's group
    /// commit could do, with every group full.
    pub async fn note_batched(&mut self, in_flight: usize, total: usize) -> anyhow::Result<Stats> {
        let in_flight = in_flight.max(1);
        let (db, items) = self.tracker_items(in_flight).await?;
        let mut connections = Vec::new();
        for _ in 0..in_flight.min(TRACKER_CONNECTIONS) {
            connections.push(sqlx::postgres::PgConnection::connect(db.url()).await?);
        }
        let mut writer = sqlx::postgres::PgConnection::connect(db.url()).await?;
        let body = vec![7u8; ENVELOPE_BYTES];
        let mut latencies = Vec::with_capacity(total);
        let started = Instant::now();
        let mut done = 0;
        while done < total {
            let round = in_flight.min(total - done);
            let began = Instant::now();
            let share = round.div_ceil(connections.len());
            let reads = connections.iter_mut().enumerate().map(|(c, connection)| {
                let ids: Vec<Uuid> = items[..round]
                    .iter()
                    .skip(c * share)
                    .take(share)
                    .copied()
                    .collect();
                async move {
                    let mut versions = Vec::with_capacity(ids.len());
                    for id in ids {
                        let row = sqlx::query(closeout_tracker::GET_ITEM)
                            .bind(id)
                            .fetch_one(&mut *connection)
                            .await?;
                        versions.push((id, row.try_get::<i64, _>("version")?));
                    }
                    anyhow::Ok(versions)
                }
            });
            let mut read = Vec::with_capacity(round);
            for versions in futures::future::join_all(reads).await {
                read.extend(versions?);
            }
            let now = sqlx::types::chrono::Utc::now();
            let n = read.len();
            let ids: Vec<Uuid> = read.iter().map(|(id, _)| *id).collect();
            let read_versions: Vec<i64> = read.iter().map(|(_, v)| *v).collect();
            let next: Vec<i64> = read_versions.iter().map(|v| v + 1).collect();
            let texts = |t: &str| vec![t.to_string(); n];
            let written = sqlx::query(closeout_tracker::APPEND_MANY_IF_UNCHANGED)
                .bind(&ids)
                .bind(vec![1i16; n])
                .bind(texts(""))
                .bind(vec![None::<sqlx::types::chrono::NaiveDate>; n])
                .bind(vec![false; n])
                .bind(&next)
                .bind(vec![now; n])
                .bind(texts(""))
                .bind(texts("{}"))
                .bind(texts(""))
                .bind(&read_versions)
                .bind(&ids)
                .bind(&next)
                .bind((0..n).map(|_| Uuid::now_v7()).collect::<Vec<_>>())
                .bind(texts("ProgressNoted"))
                .bind(texts("ceiling"))
                .bind(texts("bench"))
                .bind(vec![1i16; n])
                .bind(vec![now; n])
                .bind(vec![1i16; n])
                .bind(vec![1i16; n])
                .bind(vec![body.clone(); n])
                .bind(vec![body.clone(); n])
                .bind(texts("item.ceiling.progress"))
                .bind(texts(""))
                .fetch_all(&mut writer)
                .await?;
            anyhow::ensure!(written.len() == n, "items moved under the ceiling");
            latencies.extend(std::iter::repeat_n(began.elapsed(), n));
            done += n;
        }
        self.tracker = Some((db, items));
        Ok(Stats::of(latencies, started.elapsed()))
    }

    /// The durable SQL NoteProgress ran until session 6, directly, on
    /// tables shaped like the tracker's: in one transaction lock the
    /// item's row, append its event to the history, update its current
    /// state and append the event to the outbox (six round trips and the
    /// pool's release ping). Kept beside [`Ceilings::note`] to compare with
    /// earlier figures. `in_flight` commands at a time, each on its own
    /// items.
    pub async fn note_in_transaction(
        &mut self,
        in_flight: usize,
        total: usize,
    ) -> anyhow::Result<Stats> {
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

    /// Removes the scratch databases and stream.
    pub async fn remove(self) {
        if let Some((db, _)) = self.tracker {
            db.drop_database().await;
        }
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

/// A bare tonic server in this process: the standard health service and
/// nothing else (no trace span, RPC figures, version header,
/// authentication or limits), on a free port with TCP_NODELAY, and a
/// channel to it; the task serves until the process ends. Its health
/// check beside a service's separates what tonic and HTTP/2 cost from
/// what the service's layers add.
pub async fn bare_tonic() -> anyhow::Result<tonic::transport::Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(closeout_service::server::incoming(listener)),
    );
    crate::stack::connect(&addr.to_string()).await
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
