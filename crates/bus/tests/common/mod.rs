//! Helpers shared by the integration tests: sample events, a handler whose
//! effect is a row per event id, and polling with a deadline.

#![allow(dead_code)]

use closeout_bus::{EventEnvelope, EventHandler, EventMeta, HandlerError, Payload, new_event};
use closeout_proto::{Actor, FindingRecorded, ItemOpened, Role};
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicU64, Ordering};

pub fn actor() -> Actor {
    Actor {
        subject: "service:test".into(),
        role: Role::System as i32,
        organisation_id: String::new(),
    }
}

/// A findings event (even `n`) or a tracker event (odd `n`) for `org`.
pub fn sample_event(n: u64, org: &str) -> EventEnvelope {
    let (service, aggregate_type, payload) = if n.is_multiple_of(2) {
        (
            "findings",
            "finding",
            Payload::FindingRecorded(FindingRecorded {
                finding_id: format!("f-{n}"),
                organisation_id: org.into(),
                text: format!("The force should do thing {n}."),
                ..Default::default()
            }),
        )
    } else {
        (
            "tracker",
            "item",
            Payload::ItemOpened(ItemOpened {
                item_id: format!("i-{n}"),
                organisation_id: org.into(),
                ..Default::default()
            }),
        )
    };
    new_event(
        EventMeta {
            source_service: service,
            organisation_id: org,
            aggregate_type,
            aggregate_id: &format!("a-{n}"),
            aggregate_version: 1,
            actor: &actor(),
            correlation_id: "test-correlation",
            causation_id: "test-cause",
        },
        payload,
    )
}

/// Creates the effect table: one row per applied event, unique by id.
pub async fn create_effects_table(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE effects (
            event_id TEXT PRIMARY KEY,
            organisation_id TEXT NOT NULL,
            applied_seq BIGSERIAL
        )",
    )
    .execute(pool)
    .await
    .expect("create effects table");
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Apply,
    AlwaysTransient,
    Permanent,
}

/// Inserts the event id into `effects`; counts invocations.
pub struct Effects {
    pub mode: Mode,
    pub calls: AtomicU64,
}

impl Effects {
    pub fn new(mode: Mode) -> Self {
        Effects {
            mode,
            calls: AtomicU64::new(0),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl EventHandler for Effects {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode {
            Mode::AlwaysTransient => Err(HandlerError::transient("the projection is not ready")),
            Mode::Permanent => Err(HandlerError::permanent("this event can never apply")),
            Mode::Apply => {
                // A second application would violate the primary key.
                sqlx::query("INSERT INTO effects (event_id, organisation_id) VALUES ($1, $2)")
                    .bind(&event.event_id)
                    .bind(&event.organisation_id)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }
        }
    }
}

/// Polling with a deadline is the testkit's.
pub use closeout_testkit::wait_until;
