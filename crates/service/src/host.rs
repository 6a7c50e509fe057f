//! The one service host. Every Closeout service runs the same way: connect
//! to its database and the event stream, serve its gRPC services with
//! health, bearer-token authentication (`crate::auth::AuthLayer`), the
//! version header, tracing and RPC figures (over TLS when configured),
//! serve Prometheus on its own address (loopback by default) and server
//! reflection on another (off unless configured), and on a signal stop in
//! one order. A
//! service declares only its own parts, on a [`Host`]:
//!
//! ```ignore
//! pub const SERVICE: ServiceSpec = ServiceSpec::new("findings", 50051, 9091, &MIGRATOR);
//!
//! pub async fn start(config: FindingsConfig, signal: impl Future<Output = ()> + Send + 'static)
//!     -> Result<Running, StartError>
//! {
//!     let mut host = Host::connect(&SERVICE, &config.common, config.metrics_http_addr).await?;
//!     host.publish_outbox();                                   // relay + its figures
//!     host.serve(FindingsServiceServer::new(FindingsApi::new(host.pool().clone())));
//!     host.start(signal).await
//! }
//! ```
//!
//! Shutdown order, whatever the service: run the `on_shutdown_signal`
//! hooks (e.g. end open streams), stop accepting and finish in-flight
//! calls, stop the health watch, await the `stop_after_serving` futures in
//! the order they were declared (consumers, schedulers), drain the outbox
//! relay, close the pool, close the Prometheus endpoint.

use crate::config::{CommonConfig, LogFormat};
use crate::prometheus::{MetricsEndpoint, Prometheus};
use closeout_bus::{Bus, ConsumerHandle, RelayHandle};
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::server::NamedService;

/// How long the relay may take to publish what in-flight calls committed.
pub const RELAY_DRAIN: Duration = Duration::from_secs(10);

/// What a service is, declared once as a constant: its name, its default
/// ports and its migrations. Everything else about start-up is the host's.
#[derive(Debug)]
pub struct ServiceSpec {
    /// Short name: logs, the NATS client name (`closeout-<name>`), traces.
    pub name: &'static str,
    /// Where gRPC listens unless `--grpc-addr` says otherwise.
    pub default_grpc_addr: SocketAddr,
    /// Where Prometheus listens unless `--metrics-http-addr` says otherwise.
    pub default_metrics_http_addr: SocketAddr,
    /// The service's own database migrations.
    pub migrator: &'static Migrator,
}

impl ServiceSpec {
    /// A service listening on all interfaces at `grpc_port` and, for
    /// Prometheus, on loopback only at `metrics_http_port` by default
    /// (figures are for the operator, not the public).
    pub const fn new(
        name: &'static str,
        grpc_port: u16,
        metrics_http_port: u16,
        migrator: &'static Migrator,
    ) -> Self {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        ServiceSpec {
            name,
            default_grpc_addr: SocketAddr::new(any, grpc_port),
            default_metrics_http_addr: SocketAddr::new(loopback, metrics_http_port),
            migrator,
        }
    }
}

/// Why a service could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("event bus: {0}")]
    Bus(#[from] closeout_bus::BusError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("service task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A failure of one of the service's own parts, in its words.
    #[error("{0}")]
    Service(String),
}

/// A service being assembled: connected, declaring its parts, not yet
/// serving. See the module documentation for the whole life cycle.
pub struct Host {
    spec: &'static ServiceSpec,
    grpc_addr: SocketAddr,
    metrics_http_addr: SocketAddr,
    reflection_addr: Option<SocketAddr>,
    auth: crate::auth::AuthLayer,
    tls: Option<tonic::transport::ServerTlsConfig>,
    pool: PgPool,
    bus: Bus,
    routes: tonic::service::RoutesBuilder,
    served: Vec<&'static str>,
    prometheus: Prometheus,
    relay: Option<RelayHandle>,
    on_signal: Vec<Box<dyn FnOnce() + Send>>,
    after_serving: Vec<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("service", &self.spec.name)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Connects `spec`'s database (migrated, with the outbox tables) and
    /// the event stream. Nothing listens yet.
    pub async fn connect(
        spec: &'static ServiceSpec,
        common: &CommonConfig,
        metrics_http_addr: SocketAddr,
    ) -> Result<Host, StartError> {
        crate::tls::install_crypto_provider();
        let verifier = common.auth.verifier().map_err(StartError::Config)?;
        let tls = crate::tls::server_config(&common.tls).map_err(StartError::Config)?;
        let (pool, bus) = crate::backbone::connect(common, spec.migrator, spec.name).await?;
        Ok(Host {
            spec,
            grpc_addr: common.grpc_addr.unwrap_or(spec.default_grpc_addr),
            metrics_http_addr,
            reflection_addr: common.reflection_addr,
            auth: crate::auth::AuthLayer::new(verifier),
            tls,
            pool,
            bus,
            routes: Default::default(),
            served: Vec::new(),
            prometheus: Prometheus::new(),
            relay: None,
            on_signal: Vec::new(),
            after_serving: Vec::new(),
        })
    }

    /// The service's database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The event bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The Prometheus figures, for the service's own.
    pub fn prometheus(&mut self) -> &mut Prometheus {
        &mut self.prometheus
    }

    /// The service publishes events: start the outbox relay (drained at
    /// shutdown, after every other part has stopped) and expose the
    /// backlog and the relay's counts.
    pub fn publish_outbox(&mut self) {
        if self.relay.is_some() {
            return;
        }
        let relay =
            closeout_bus::Relay::spawn(self.pool.clone(), self.bus.clone(), Default::default());
        crate::bus_metrics::watch_outbox(&mut self.prometheus, self.pool.clone());
        crate::bus_metrics::watch_relay(&mut self.prometheus, relay.stats());
        self.relay = Some(relay);
    }

    /// Serves the gRPC service `service`: it is routed, listed by
    /// reflection and given a health status of its own.
    pub fn serve<S>(&mut self, service: S) -> &mut Self
    where
        S: tower_service::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.served.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// A durable consumer of the service: its figures (applied,
    /// duplicates, dead letters, failures, lag) are exposed and it is
    /// stopped after in-flight calls finish.
    pub fn consumer(&mut self, name: &str, handle: ConsumerHandle) {
        self.watch_consumer(name, handle.stats());
        self.stop_after_serving(handle.stop());
    }

    /// Exposes the figures of consumer `name` whose handle the service
    /// keeps itself (stop it with [`Host::stop_after_serving`]).
    pub fn watch_consumer(
        &mut self,
        name: &str,
        stats: std::sync::Arc<closeout_bus::ConsumerStats>,
    ) {
        crate::bus_metrics::watch_consumer(
            &mut self.prometheus,
            self.bus.clone(),
            name,
            &[name],
            stats,
        );
    }

    /// Runs `hook` as soon as shutdown is asked for, before in-flight
    /// calls are awaited: for what would otherwise never end (open
    /// server streams).
    pub fn on_shutdown_signal(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.on_signal.push(Box::new(hook));
    }

    /// Awaits `stop` once the server has stopped, before the relay is
    /// drained; declared parts stop in declaration order.
    pub fn stop_after_serving(&mut self, stop: impl Future<Output = ()> + Send + 'static) {
        self.after_serving.push(Box::pin(stop));
    }

    /// Binds gRPC and Prometheus and serves until [`Running::stop`] or
    /// until `signal` resolves.
    pub async fn start(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Running, StartError> {
        let Host {
            spec,
            grpc_addr,
            metrics_http_addr,
            reflection_addr,
            auth,
            tls,
            pool,
            bus,
            mut routes,
            served,
            prometheus,
            relay,
            on_signal,
            after_serving,
        } = self;
        let listener = crate::server::bind(grpc_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: grpc_addr,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            addr: grpc_addr,
            source,
        })?;
        let (reflection_v1, reflection_v1alpha) = crate::server::reflection_services(&served)?;
        let rpc_figures = prometheus.rpc_layer();
        let endpoint: MetricsEndpoint =
            prometheus
                .serve(metrics_http_addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr: metrics_http_addr,
                    source,
                })?;
        let metrics_addr = endpoint.addr;
        let (reporter, health) = tonic_health::server::health_reporter();
        let health_task =
            crate::backbone::watch_health(reporter, served.clone(), pool.clone(), bus);
        routes.add_service(health.clone());

        // Reflection (with health) on its own address, apart from the API.
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        let reflection = match reflection_addr {
            None => None,
            Some(addr) => {
                let listener = crate::server::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?;
                let mut stopping = stopping_rx.clone();
                let server = tonic::transport::Server::builder()
                    .add_service(health)
                    .add_service(reflection_v1)
                    .add_service(reflection_v1alpha)
                    .serve_with_incoming_shutdown(crate::server::incoming(listener), async move {
                        let _ = stopping.wait_for(|stop| *stop).await;
                    });
                Some((bound, tokio::spawn(server)))
            }
        };
        let reflection_addr = reflection.as_ref().map(|(addr, _)| *addr);

        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls)?;
        }
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let name = spec.name;
        let task = tokio::spawn(async move {
            let stop = async move {
                tokio::select! {
                    _ = shutdown_rx => {},
                    _ = signal => {},
                }
                let _ = stopping_tx.send(true);
                for hook in on_signal {
                    hook();
                }
            };
            tracing::info!(service = name, addr = %local, prometheus = %metrics_addr, reflection = ?reflection_addr, "listening");
            let served = builder
                .trace_fn(crate::telemetry::grpc_request_span)
                .layer(rpc_figures)
                .layer(crate::server::VersionLayer)
                .layer(auth)
                .layer(crate::limits::LimitsLayer::from_env())
                .add_routes(routes.routes())
                .serve_with_incoming_shutdown(crate::server::incoming(listener), stop)
                .await;
            if let Some((_, reflection)) = reflection {
                let _ = reflection.await;
            }
            health_task.abort();
            for stop in after_serving {
                stop.await;
            }
            if let Some(relay) = relay {
                // In-flight calls and consumers are done; publish what
                // they committed.
                relay.drain_and_stop(RELAY_DRAIN).await;
            }
            pool.close().await;
            endpoint.stop();
            tracing::info!(service = name, "stopped");
            served.map_err(StartError::from)
        });
        Ok(Running {
            addr: local,
            metrics_http_addr: metrics_addr,
            reflection_addr,
            shutdown: Some(shutdown_tx),
            task,
        })
    }
}

/// A service started in the background (by its `main` or by a test): where
/// it listens, and how to stop it gracefully or wait for it to end.
/// Dropping it stops the service.
pub struct Running {
    /// The address gRPC listens on (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// The address of the Prometheus endpoint.
    pub metrics_http_addr: SocketAddr,
    /// The address server reflection answers on, if it is on.
    pub reflection_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), StartError>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .field("metrics_http_addr", &self.metrics_http_addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Stops gracefully and waits until everything is drained.
    pub async fn stop(mut self) -> Result<(), StartError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }

    /// Waits until the service stops on its own (a signal) or fails.
    pub async fn wait(mut self) -> Result<(), StartError> {
        let _keep_running = self.shutdown.take();
        (&mut self.task).await?
    }
}

/// The whole `main` of a service binary: logs and traces for `spec`, then
/// `start` with the process's shutdown signal (SIGTERM or Ctrl-C), then
/// wait. Failure to start or a failure while running is logged and exits
/// non-zero.
pub async fn run_main<F, Fut>(spec: &ServiceSpec, log_format: LogFormat, start: F) -> ExitCode
where
    F: FnOnce(BoxFuture<'static, ()>) -> Fut,
    Fut: Future<Output = Result<Running, StartError>>,
{
    let _telemetry = crate::telemetry::init(log_format, spec.name);
    let running = match start(Box::pin(crate::server::shutdown_signal())).await {
        Ok(running) => running,
        Err(error) => {
            tracing::error!(service = spec.name, %error, "failed to start");
            return ExitCode::FAILURE;
        }
    };
    match running.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(service = spec.name, %error, "failed");
            ExitCode::FAILURE
        }
    }
}
