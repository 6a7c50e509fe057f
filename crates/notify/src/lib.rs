//! The notify service (`closeout-notify`): tells systems that do not speak
//! NATS what happened to tracked items, by signed webhook or by e-mail.
//!
//! It is itself an event subscriber, and the reference example of one: a
//! durable consumer on the tracker's events ([`consume`]) that, in the
//! transaction recording each event as applied, writes one delivery row
//! per matching subscription (an outbox of deliveries); delivery workers
//! ([`deliver`]) hand them over after commit, one worker per subscription
//! so order is kept and a slow receiver holds up nobody else, retrying
//! with backoff and dead-lettering what cannot be delivered. The rules
//! (matching, signing, backoff, summaries) are pure ([`rules`]); the gRPC
//! API ([`grpc`]) manages subscriptions and shows delivery history.
//!
//! Its parts, declared on the shared host (`closeout_service::host`): the
//! consumer, the delivery dispatcher, NotifyService, and the counters
//! `closeout_notify_delivered_total`, `closeout_notify_retried_total` and
//! `closeout_notify_dead_lettered_total`.

pub mod consume;
pub mod deliver;
pub mod email;
pub mod grpc;
pub mod rules;
pub mod store;

use clap::{Args, Parser};
use closeout_bus::Consumer;
use closeout_proto::notify_service_server::NotifyServiceServer;
use closeout_service::{CommonConfig, Host, ServiceSpec, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Migrations of the notify database, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The notify service: gRPC on 50054 and Prometheus on 9094 by default.
pub const SERVICE: ServiceSpec = ServiceSpec::new("notify", 50054, 9094, &MIGRATOR);

/// How deliveries are made.
#[derive(Clone, Debug, Args)]
pub struct DeliveryOptions {
    /// Also write every event a subscription could ask for, and every
    /// delivery, to the log (on by default in `closeout dev`).
    #[arg(long, env = "CLOSEOUT_NOTIFY_LOG_SINK")]
    pub log_sink: bool,
    /// Base URL of the web console; e-mails link to `<url>/items/<id>`.
    #[arg(long, env = "CLOSEOUT_CONSOLE_URL")]
    pub console_url: Option<String>,
    /// Accept plain-http webhooks to loopback addresses (development and
    /// tests only; otherwise webhooks must be https).
    #[arg(long, env = "CLOSEOUT_NOTIFY_ALLOW_LOOPBACK_HTTP")]
    pub allow_loopback_http: bool,
    /// Accept webhooks to private and link-local addresses (receivers on
    /// an internal network). Off: only public addresses, so a subscriber
    /// cannot make the service call into its own network.
    #[arg(long, env = "CLOSEOUT_NOTIFY_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// Longest wait for a webhook answer or an SMTP exchange, in
    /// milliseconds.
    #[arg(long, env = "CLOSEOUT_NOTIFY_TIMEOUT_MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Attempts per delivery before it is dead-lettered.
    #[arg(long, env = "CLOSEOUT_NOTIFY_MAX_ATTEMPTS", default_value_t = 8)]
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds; doubles per attempt.
    #[arg(long, env = "CLOSEOUT_NOTIFY_RETRY_BASE_MS", default_value_t = 1_000)]
    pub retry_base_ms: u64,
    /// Longest delay between attempts, in milliseconds.
    #[arg(long, env = "CLOSEOUT_NOTIFY_RETRY_MAX_MS", default_value_t = 300_000)]
    pub retry_max_ms: u64,
    /// Hour of the day (UTC, 0-23) the daily e-mail digests go out.
    #[arg(long, env = "CLOSEOUT_NOTIFY_DIGEST_HOUR", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(0..24))]
    pub digest_hour: u32,
    /// How often pending deliveries are looked for when no notification
    /// arrived, in milliseconds.
    #[arg(long, env = "CLOSEOUT_NOTIFY_POLL_MS", default_value_t = 1_000)]
    pub poll_ms: u64,
    /// How soon an event in flight when the process died is delivered
    /// again by JetStream, in seconds.
    #[arg(long, env = "CLOSEOUT_NOTIFY_ACK_WAIT_SECS", default_value_t = 30)]
    pub ack_wait_secs: u64,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            log_sink: false,
            console_url: None,
            allow_loopback_http: false,
            allow_private_webhooks: false,
            timeout_ms: 10_000,
            max_attempts: 8,
            retry_base_ms: 1_000,
            retry_max_ms: 300_000,
            digest_hour: 7,
            poll_ms: 1_000,
            ack_wait_secs: 30,
        }
    }
}

impl DeliveryOptions {
    /// Which receiver addresses webhooks may reach.
    pub fn addresses(&self) -> rules::AddressPolicy {
        rules::AddressPolicy {
            allow_loopback: self.allow_loopback_http,
            allow_private: self.allow_private_webhooks,
        }
    }

    /// The settings of the delivery workers.
    pub fn settings(&self) -> deliver::DeliverySettings {
        deliver::DeliverySettings {
            retry: rules::RetryPolicy {
                max_attempts: self.max_attempts.max(1),
                base: Duration::from_millis(self.retry_base_ms),
                max: Duration::from_millis(self.retry_max_ms.max(self.retry_base_ms)),
            },
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            poll_interval: Duration::from_millis(self.poll_ms.max(10)),
            console_url: self.console_url.clone().filter(|u| !u.is_empty()),
            digest_hour: self.digest_hour.min(23),
            log_sink: self.log_sink,
            addresses: self.addresses(),
        }
    }
}

/// Configuration of `closeout-notify`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "closeout-notify",
    version,
    about = "Closeout notify service: signed webhooks and e-mail"
)]
pub struct NotifyConfig {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Address of the Prometheus text endpoint (`GET /metrics`).
    #[arg(long, env = "CLOSEOUT_METRICS_HTTP_ADDR", default_value_t = SERVICE.default_metrics_http_addr)]
    pub metrics_http_addr: SocketAddr,
    #[command(flatten)]
    pub delivery: DeliveryOptions,
    #[command(flatten)]
    pub smtp: email::SmtpOptions,
}

/// A running notify service (used by `main` and by tests).
pub type RunningNotify = closeout_service::Running;

/// Starts the service; it runs until `stop` or until `signal` resolves.
pub async fn start(
    config: NotifyConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningNotify, StartError> {
    let settings = config.delivery.settings();
    let mailer =
        email::Mailer::from_options(&config.smtp, settings.timeout).map_err(StartError::Config)?;
    let email_enabled = mailer.is_some();
    let mut host = Host::connect(&SERVICE, &config.common, config.metrics_http_addr).await?;
    // Changes to subscriptions and redeliveries are events too.
    host.publish_outbox();
    let pool = host.pool().clone();

    let consumer = Consumer::spawn(
        pool.clone(),
        host.bus().clone(),
        consume::consumer_config(Duration::from_secs(config.delivery.ack_wait_secs.max(1))),
        consume::Subscriber {
            log_sink: settings.log_sink,
        },
    )?;
    host.consumer(consume::DURABLE, consumer);

    let prometheus = host.prometheus();
    let counters = deliver::DeliveryCounters {
        delivered: prometheus.counter(
            "closeout_notify_delivered_total",
            "Deliveries handed over (webhook 2xx or mail accepted)",
        ),
        retried: prometheus.counter(
            "closeout_notify_retried_total",
            "Failed delivery attempts that will be retried",
        ),
        dead_lettered: prometheus.counter(
            "closeout_notify_dead_lettered_total",
            "Deliveries dead-lettered (refused, or every retry failed)",
        ),
    };
    let deliverer = deliver::Deliverer::new(pool.clone(), mailer, settings, counters)
        .map_err(StartError::Config)?;
    let dispatcher = deliver::Dispatcher::spawn(Arc::new(deliverer));
    host.stop_after_serving(dispatcher.stop());

    host.serve(NotifyServiceServer::new(grpc::NotifyApi::new(
        pool,
        config.delivery.addresses(),
        email_enabled,
    )));
    host.start(signal).await
}
