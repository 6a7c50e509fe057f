//! What the notify tests share: a fresh database and a private stream per
//! test, the service under test with fast retries, a real local HTTP
//! receiver whose answers the test scripts, tracker event envelopes
//! published straight to the stream, and a client with an identity.

#![allow(dead_code)]

use clap::Parser;
use closeout_bus::{Bus, Payload};
use closeout_notify::email::{SmtpOptions, SmtpTls};
use closeout_notify::{DeliveryOptions, NotifyConfig};
use closeout_proto::notify_service_client::NotifyServiceClient;
use closeout_proto::{self as pb, EventEnvelope, ItemStatus};
use closeout_testkit::{TestBus, TestDatabase};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use uuid::Uuid;

/// The database and stream of one test.
pub struct Env {
    pub db: TestDatabase,
    pub test_bus: TestBus,
    pub bus: Bus,
}

impl Env {
    pub async fn new() -> Env {
        let db = TestDatabase::create().await;
        let test_bus = TestBus::new();
        let bus = test_bus.connect().await;
        Env { db, test_bus, bus }
    }

    /// The service's configuration: this test's database and stream, fast
    /// retries, plain http to loopback allowed, the log sink on.
    pub fn config(&self, smtp_port: Option<u16>) -> NotifyConfig {
        let bus = self.test_bus.config();
        // Parsed like the binary's flags, so options added to the shared
        // configuration keep their defaults here.
        let mut config = NotifyConfig::parse_from([
            "closeout-notify",
            "--database-url",
            self.db.url(),
            "--nats-url",
            &bus.nats_url,
            "--grpc-addr",
            "127.0.0.1:0",
            "--stream-name",
            &bus.stream_name,
            "--subject-prefix",
            &bus.subject_prefix,
            "--metrics-http-addr",
            "127.0.0.1:0",
            "--auth-public-key",
            &closeout_testkit::token_public_key().display().to_string(),
        ]);
        config.delivery = DeliveryOptions {
            log_sink: true,
            console_url: Some("https://console.example".into()),
            allow_loopback_http: true,
            allow_private_webhooks: false,
            timeout_ms: 1_000,
            max_attempts: 5,
            retry_base_ms: 20,
            retry_max_ms: 200,
            digest_hour: 7,
            poll_ms: 100,
            ack_wait_secs: 2,
        };
        config.smtp = SmtpOptions {
            smtp_host: smtp_port.map(|_| "127.0.0.1".to_string()),
            smtp_port: smtp_port.unwrap_or(25),
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            smtp_from: "Closeout <closeout@localhost>".into(),
        };
        config
    }

    pub async fn cleanup(self) {
        self.test_bus.cleanup().await;
        self.db.drop_database().await;
    }
}

/// A client of the service at `addr`.
pub async fn client(addr: SocketAddr) -> NotifyServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connecting to notify");
    NotifyServiceClient::new(channel)
}

/// Calls as someone: the shared helpers, so the tests follow however
/// Closeout proves identity.
#[allow(unused_imports)]
pub use closeout_testkit::{as_role, inspectorate};

/// A webhook subscription request.
pub fn webhook(
    url: &str,
    events: &[pb::SubscriptionEvent],
    orgs: &[&str],
) -> pb::CreateSubscriptionRequest {
    pb::CreateSubscriptionRequest {
        events: events.iter().map(|e| *e as i32).collect(),
        subject_filter: String::new(),
        organisation_ids: orgs.iter().map(|o| o.to_string()).collect(),
        target: Some(pb::create_subscription_request::Target::WebhookUrl(
            url.to_string(),
        )),
        description: "test".into(),
    }
}

/// An e-mail subscription request.
pub fn email(
    address: &str,
    mode: pb::EmailMode,
    events: &[pb::SubscriptionEvent],
    orgs: &[&str],
) -> pb::CreateSubscriptionRequest {
    pb::CreateSubscriptionRequest {
        events: events.iter().map(|e| *e as i32).collect(),
        subject_filter: String::new(),
        organisation_ids: orgs.iter().map(|o| o.to_string()).collect(),
        target: Some(pb::create_subscription_request::Target::Email(
            pb::EmailTarget {
                address: address.to_string(),
                mode: mode as i32,
            },
        )),
        description: "test".into(),
    }
}

fn envelope(org: &str, item_id: &str, version: u64, payload: Payload) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: closeout_bus::subject::event_type_of(&payload),
        source_service: "tracker".into(),
        organisation_id: org.into(),
        occurred_at: Some(closeout_bus::event::now_timestamp()),
        aggregate_type: "item".into(),
        aggregate_id: item_id.into(),
        aggregate_version: version,
        correlation_id: "notify-test".into(),
        causation_id: String::new(),
        actor: Some(pb::Actor {
            subject: "jo@example".into(),
            role: pb::Role::InspectedBody as i32,
            organisation_id: org.into(),
        }),
        payload: Some(payload),
    }
}

/// An item's life as the tracker would announce it: opened, then `changes`
/// status changes cycling in progress → awaiting verification → in
/// progress (a rejected claim) → …. The first event is the opening.
pub fn item_history(org: &str, changes: usize) -> Vec<EventEnvelope> {
    let item_id = Uuid::now_v7().to_string();
    let mut events = vec![envelope(
        org,
        &item_id,
        1,
        Payload::ItemOpened(pb::ItemOpened {
            item_id: item_id.clone(),
            organisation_id: org.into(),
            text: "The force should improve how it handles 999 calls.".into(),
            status: ItemStatus::Open as i32,
            ..Default::default()
        }),
    )];
    let mut from = ItemStatus::Open;
    for i in 0..changes {
        let to = match from {
            ItemStatus::InProgress => ItemStatus::AwaitingVerification,
            _ => ItemStatus::InProgress,
        };
        let command = if to == ItemStatus::AwaitingVerification {
            "ClaimCompletion"
        } else if from == ItemStatus::Open {
            "Start"
        } else {
            "RejectClaim"
        };
        events.push(envelope(
            org,
            &item_id,
            2 + i as u64,
            Payload::StatusChanged(pb::StatusChanged {
                item_id: item_id.clone(),
                from_status: from as i32,
                to_status: to as i32,
                command: command.into(),
                reason: String::new(),
            }),
        ));
        from = to;
    }
    events
}

pub async fn publish(bus: &Bus, events: &[EventEnvelope]) {
    for event in events {
        bus.publish_event(event)
            .await
            .expect("publishing a test event");
    }
}

/// Waits until `check` is true, failing the test after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Answer with the status after a pause of this many milliseconds.
    Slow(u16, u64),
    /// Never answer (hold the connection open).
    Hang,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub answer: Answer,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

/// A real HTTP/1.1 receiver on a free port of 127.0.0.1; its answer to
/// the n-th request (0-based) comes from a script the test gives.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let (store, counter) = (received.clone(), count.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (store, counter, script) = (store.clone(), counter.clone(), script.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, store, counter, script).await;
                });
            }
        });
        Receiver {
            addr,
            received,
            count,
            task,
        }
    }

    /// Answers every request with `code`.
    pub async fn always(code: u16) -> Receiver {
        Receiver::start(move |_| Answer::Status(code)).await
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests answered with 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.answer,
                    Answer::Status(200..=299) | Answer::Slow(200..=299, _)
                )
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    counter: Arc<AtomicUsize>,
    script: Script,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut headers = HashMap::new();
    for line in head.split("\r\n").skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[header_end..(header_end + length).min(buffer.len())].to_vec();
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let answer = script(n);
    store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Received {
            headers,
            body,
            answer,
        });
    match answer {
        Answer::Status(code) | Answer::Slow(code, _) => {
            if let Answer::Slow(_, millis) = answer {
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            let response = format!(
                "HTTP/1.1 {code} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await?;
        }
        Answer::Hang => {
            // Hold the connection until the client gives up.
            let mut rest = [0u8; 64];
            while stream.read(&mut rest).await? > 0 {}
        }
    }
    Ok(())
}

/// The deliveries of a subscription, as the service reports them.
pub async fn deliveries(
    client: &NotifyServiceClient<Channel>,
    subscription_id: &str,
) -> Vec<pb::Delivery> {
    client
        .clone()
        .list_deliveries(inspectorate(pb::ListDeliveriesRequest {
            subscription_id: subscription_id.into(),
            page_size: 500,
            page_token: String::new(),
        }))
        .await
        .expect("ListDeliveries")
        .into_inner()
        .deliveries
}

/// Every visible dead letter.
pub async fn dead_letters(client: &NotifyServiceClient<Channel>) -> Vec<pb::Delivery> {
    client
        .clone()
        .list_dead_letters(inspectorate(pb::ListDeadLettersRequest::default()))
        .await
        .expect("ListDeadLetters")
        .into_inner()
        .deliveries
}

/// Number of deliveries in `status`.
pub fn count(deliveries: &[pb::Delivery], status: pb::DeliveryStatus) -> usize {
    deliveries
        .iter()
        .filter(|d| d.status == status as i32)
        .count()
}
