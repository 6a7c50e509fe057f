//! The connection to NATS and the one JetStream stream of the system.
//!
//! [`Bus::connect`] returns at once and keeps connecting in the background
//! (and reconnecting forever after that), so a service can start while NATS
//! is still coming up; the outbox holds events until it is there.
//! [`Bus::ensure_stream`] creates the stream or brings an existing one's
//! subjects and duplicate window up to date, using nothing newer than
//! nats-server 2.9.

use crate::error::{BusError, Result};
use crate::event::{HEADER_EVENT_TYPE, HEADER_MSG_ID, HEADER_TRACEPARENT, traceparent};
use crate::subject::{self, is_valid_name, is_valid_subject, relative_subject};
use async_nats::jetstream::{self, publish::PublishAck, stream};
use async_nats::{ConnectOptions, Event, HeaderMap};
use bytes::Bytes;
use closeout_proto::EventEnvelope;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;

/// Shortest duplicate window we accept: long enough to cover a relay's
/// retries across a NATS restart.
pub const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Where and how to reach the event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// E.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// The JetStream stream holding every event (default `CLOSEOUT`).
    pub stream_name: String,
    /// First token of every subject (default `closeout`); tests use a
    /// unique one each.
    pub subject_prefix: String,
    /// How long JetStream remembers message ids to drop duplicates
    /// (at least [`MIN_DUPLICATE_WINDOW`]).
    pub duplicate_window: Duration,
    /// Timeout of one JetStream request (publish ack, stream management).
    pub request_timeout: Duration,
    /// How long [`Bus::ensure_stream`] keeps retrying while NATS is not
    /// reachable yet.
    pub startup_timeout: Duration,
    /// Client name shown by the server's monitoring, e.g. the service name.
    pub client_name: String,
    /// Credentials and TLS for the connection (none by default).
    pub security: NatsSecurity,
}

/// How the connection to NATS proves who it is and is encrypted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsSecurity {
    /// A user credentials file (`.creds`: JWT and nkey seed).
    pub credentials_file: Option<std::path::PathBuf>,
    /// An nkey seed (`SU…`) for nkey authentication.
    pub nkey_seed: Option<String>,
    /// Refuse a connection without TLS.
    pub require_tls: bool,
    /// PEM CA certificates the server's certificate is checked against.
    pub root_certificates: Option<std::path::PathBuf>,
    /// PEM client certificate and key (mutual TLS).
    pub client_certificate: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl NatsSecurity {
    /// `options` with these credentials and TLS settings.
    pub async fn apply(&self, mut options: ConnectOptions) -> Result<ConnectOptions> {
        if let Some(path) = &self.credentials_file {
            options = options.credentials_file(path).await.map_err(|e| {
                BusError::Config(format!("NATS credentials {}: {e}", path.display()))
            })?;
        }
        if let Some(seed) = &self.nkey_seed {
            options = options.nkey(seed.clone());
        }
        if self.require_tls {
            options = options.require_tls(true);
        }
        if let Some(path) = &self.root_certificates {
            options = options.add_root_certificates(path.clone());
        }
        if let Some((cert, key)) = &self.client_certificate {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options)
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            nats_url: "nats://127.0.0.1:4222".into(),
            stream_name: "CLOSEOUT".into(),
            subject_prefix: "closeout".into(),
            duplicate_window: MIN_DUPLICATE_WINDOW,
            request_timeout: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(30),
            client_name: "closeout".into(),
            security: NatsSecurity::default(),
        }
    }
}

impl BusConfig {
    /// Checks names, prefix and window; [`Bus::connect`] calls it.
    pub fn validate(&self) -> Result<()> {
        if !is_valid_name(&self.stream_name) {
            return Err(BusError::Config(format!(
                "stream name {:?} must be 1-64 ASCII letters, digits, '-' or '_'",
                self.stream_name
            )));
        }
        if !is_valid_subject(&self.subject_prefix) {
            return Err(BusError::Config(format!(
                "subject prefix {:?} must be one or more subject tokens without wildcards",
                self.subject_prefix
            )));
        }
        if self.duplicate_window < MIN_DUPLICATE_WINDOW {
            return Err(BusError::Config(format!(
                "duplicate window {:?} is shorter than {:?}",
                self.duplicate_window, MIN_DUPLICATE_WINDOW
            )));
        }
        self.servers()?;
        if self.request_timeout.is_zero() {
            return Err(BusError::Config("request timeout must not be zero".into()));
        }
        Ok(())
    }

    /// The servers of `nats_url`: one address, or several separated by
    /// commas (the nodes of a cluster), so a service can start while any one
    /// of them is down.
    pub fn servers(&self) -> Result<Vec<&str>> {
        let servers: Vec<&str> = self.nats_url.split(',').map(str::trim).collect();
        if servers.iter().any(|s| s.is_empty()) {
            return Err(BusError::Config(format!(
                "NATS URL {:?} has an empty address in its comma-separated list",
                self.nats_url
            )));
        }
        Ok(servers)
    }

    /// The stream's subjects: `<prefix>.>`.
    pub fn stream_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }
}

/// A connected bus; cheap to clone (every clone shares one connection).
#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: Arc<BusConfig>,
}

impl Bus {
    /// Connects to NATS. Returns without waiting for the server: the client
    /// retries the first connection and reconnects forever afterwards.
    pub async fn connect(config: BusConfig) -> Result<Bus> {
        config.validate()?;
        let client = config
            .security
            .apply(ConnectOptions::new())
            .await?
            .name(&config.client_name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                match event {
                    Event::Connected => tracing::info!("NATS connected"),
                    Event::Disconnected => tracing::warn!("NATS disconnected"),
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            })
            .connect(config.servers()?)
            .await
            .map_err(|e| BusError::Connect {
                url: config.nats_url.clone(),
                message: e.to_string(),
            })?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client.clone());
        Ok(Bus {
            client,
            jetstream,
            config: Arc::new(config),
        })
    }

    /// Creates the stream, or updates an existing one's subjects and
    /// duplicate window; idempotent and safe for replicas starting together.
    /// Retries while NATS is unreachable, up to `startup_timeout`.
    pub async fn ensure_stream(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.config.startup_timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            match self.try_ensure_stream().await {
                Ok(()) => return Ok(()),
                Err(e @ BusError::Config(_)) => return Err(e),
                Err(e) if tokio::time::Instant::now() + delay >= deadline => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "stream not ready yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn try_ensure_stream(&self) -> Result<()> {
        let subjects = vec![self.config.stream_subjects()];
        let window = self.config.duplicate_window;
        match self.jetstream.get_stream(&self.config.stream_name).await {
            Ok(existing) => {
                let current = &existing.cached_info().config;
                if current.subjects == subjects && current.duplicate_window == window {
                    return Ok(());
                }
                let mut updated = current.clone();
                updated.subjects = subjects;
                updated.duplicate_window = window;
                self.jetstream
                    .update_stream(updated)
                    .await
                    .map_err(|e| BusError::nats("update stream", e))?;
                tracing::info!(stream = %self.config.stream_name, "stream updated");
                Ok(())
            }
            Err(e)
                if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(js)
                    if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                let config = stream::Config {
                    name: self.config.stream_name.clone(),
                    subjects,
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    discard: stream::DiscardPolicy::Old,
                    duplicate_window: window,
                    num_replicas: 1,
                    ..Default::default()
                };
                // A replica may have created it since; creating the same
                // configuration again succeeds, a different one is retried.
                self.jetstream
                    .create_stream(config)
                    .await
                    .map_err(|e| BusError::nats("create stream", e))?;
                tracing::info!(stream = %self.config.stream_name, "stream created");
                Ok(())
            }
            Err(e) => Err(BusError::nats("get stream", e)),
        }
    }

    /// True while the client is connected to a server (for health checks).
    pub fn is_healthy(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// The underlying client, e.g. for plain subscriptions in tests.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (timeout = `request_timeout`).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// `<prefix>.<relative>`.
    pub fn subject(&self, relative: &str) -> String {
        subject::join(&self.config.subject_prefix, relative)
    }

    /// The full subject of an event. Fails if it has no payload.
    pub fn subject_of(&self, event: &EventEnvelope) -> Result<String> {
        let payload = event.payload.as_ref().ok_or_else(|| {
            BusError::InvalidEvent(format!("event {} has no payload", event.event_id))
        })?;
        Ok(self.subject(&relative_subject(payload, &event.organisation_id)))
    }

    /// The dead-letter subject of a consumer: `<prefix>.dlq.<consumer>`.
    pub fn dlq_subject(&self, consumer: &str) -> String {
        subject::dlq_subject(&self.config.subject_prefix, consumer)
    }

    /// Publishes one event directly and waits for the JetStream ack, with
    /// the same headers as the relay. Services publish through the outbox;
    /// this is for tools and tests.
    pub async fn publish_event(&self, event: &EventEnvelope) -> Result<PublishAck> {
        let subject = self.subject_of(event)?;
        let headers = event_headers(
            &event.event_id,
            &event.event_type,
            &crate::trace::traceparent_for(event),
        );
        self.publish(subject, headers, Bytes::from(event.encode_to_vec()))
            .await
    }

    /// Publishes one message and waits for the JetStream ack. An ack for a
    /// duplicate message id counts as success: the message is in the stream.
    pub async fn publish(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PublishAck> {
        self.send(subject, headers, payload).await?.acked().await
    }

    /// Sends one message without waiting for its ack: the ack is awaited
    /// later with [`PendingAck::acked`], so several messages can be in
    /// flight at once (JetStream stores one connection's messages in the
    /// order they were sent).
    pub async fn send(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PendingAck> {
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .headers(headers);
        let ack = self
            .jetstream
            .send_publish(subject, message)
            .await
            .map_err(|e| BusError::nats("publish", e))?;
        Ok(PendingAck(ack))
    }
}

/// The JetStream ack of a message sent with [`Bus::send`].
pub struct PendingAck(jetstream::context::PublishAckFuture);

impl PendingAck {
    /// Waits for the ack (bounded by the bus's request timeout). An ack
    /// for a duplicate message id counts as success.
    pub async fn acked(self) -> Result<PublishAck> {
        self.0.await.map_err(|e| BusError::nats("publish ack", e))
    }
}

/// The headers of an event message: `Nats-Msg-Id`, `Closeout-Event-Type`,
/// `traceparent`.
pub fn event_headers(event_id: &str, event_type: &str, traceparent_value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_MSG_ID, event_id);
    headers.insert(HEADER_EVENT_TYPE, event_type);
    let tp = if traceparent_value.is_empty() {
        traceparent("", event_id)
    } else {
        traceparent_value.to_string()
    };
    headers.insert(HEADER_TRACEPARENT, tp.as_str());
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(BusConfig::default().validate().is_ok());
        let bad = |f: fn(&mut BusConfig)| {
            let mut c = BusConfig::default();
            f(&mut c);
            c.validate().is_err()
        };
        assert!(bad(|c| c.stream_name = "A.B".into()));
        assert!(bad(|c| c.subject_prefix = "a.>".into()));
        assert!(bad(|c| c.subject_prefix = String::new()));
        assert!(bad(|c| c.duplicate_window = Duration::from_secs(10)));
        assert_eq!(BusConfig::default().stream_subjects(), "closeout.>");
    }

    #[test]
    fn a_cluster_is_a_comma_separated_list() {
        let with = |url: &str| BusConfig {
            nats_url: url.into(),
            ..BusConfig::default()
        };
        assert_eq!(
            with("nats://a:4222").servers().unwrap(),
            vec!["nats://a:4222"]
        );
        assert_eq!(
            with("nats://a:4222, nats://b:4222,nats://c:4222")
                .servers()
                .unwrap(),
            vec!["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        let empty = with("nats://a:4222,,nats://c:4222").servers().unwrap_err();
        assert!(empty.to_string().contains("empty address"), "{empty}");
    }
}
