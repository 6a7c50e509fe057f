//! The event backbone of Closeout.
//!
//! Every state change of a service is announced as an [`EventEnvelope`] on
//! one JetStream stream. This crate is everything between a service's
//! transaction and another service's effect:
//!
//! * [`subject`] - `<prefix>.<service>.v1.<entity>.<verb>.<organisation>`,
//!   a pure mapping from payload to subject, and the dead-letter subjects;
//! * [`event`] - the envelope builder ([`new_event`]) and message headers
//!   (`Nats-Msg-Id`, `Closeout-Event-Type`, `traceparent`);
//! * [`bus`] - the NATS connection and the stream ([`Bus::ensure_stream`]);
//! * [`outbox`] - events written in the service's own transaction;
//! * [`relay`] - publishes committed outbox rows in order, awaiting acks;
//! * [`consumer`] - durable pull consumers that apply each event exactly
//!   once (recorded in the same transaction as the effect) and send what can
//!   never be applied to a dead-letter subject.
//!
//! A service starts it like this:
//!
//! ```ignore
//! MIGRATOR.run(&pool).await?;                       // the service's own tables
//! closeout_bus::outbox::install_schema(&pool).await?; // outbox + applied events
//! let bus = Bus::connect(BusConfig { nats_url, ..Default::default() }).await?;
//! bus.ensure_stream().await?;
//! let relay = Relay::spawn(pool.clone(), bus.clone(), RelayConfig::default());
//! let consumer = Consumer::spawn(pool.clone(), bus.clone(),
//!     ConsumerConfig::new("tracker", &["findings.>"]), Projector::new())?;
//! // … serve; in a request: begin, change state, outbox::append(&mut tx, &events), commit.
//! // Shutdown: stop serving, consumer.stop().await, relay.drain_and_stop(timeout).await.
//! ```

pub mod bus;
pub mod consumer;
pub mod error;
pub mod event;
pub mod outbox;
pub mod relay;
pub mod subject;
pub mod trace;

pub use bus::{Bus, BusConfig, MIN_DUPLICATE_WINDOW, NatsSecurity, event_headers};
pub use closeout_proto::EventEnvelope;
pub use closeout_proto::event_envelope::Payload;
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerHandle, ConsumerStats, EventHandler, HandlerError,
};
pub use error::{BusError, Result};
pub use event::{EventMeta, new_event, recorded_at, traceparent, traceparent_of};
pub use relay::{Relay, RelayConfig, RelayHandle, RelayStats};
pub use subject::{Route, route_of};
