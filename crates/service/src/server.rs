//! The gRPC server every service runs: its own service plus the standard
//! health service (SERVING only while its dependencies answer) and server
//! reflection (so `grpcurl` works without .proto files), bound to a
//! listener so tests can use port 0, and stopped gracefully on a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Binds the gRPC listener; port 0 picks a free port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Server reflection over every Closeout proto and the health proto.
pub fn reflection_service() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(closeout_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// Health-service name that is SERVING whenever the process runs.
pub const LIVENESS_SERVICE: &str = "liveness";

/// Keeps the health status of `service_name` (and of the whole server, the
/// empty name) in step with `check`, polled every `every`, until the task
/// is dropped. Starts NOT_SERVING so nothing is routed before the first
/// successful check.
pub fn spawn_health_watch<F, Fut>(
    reporter: HealthReporter,
    service_name: &'static str,
    every: Duration,
    check: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        // Liveness: the process answers. Readiness is the service's own
        // name (and ""), SERVING only while its dependencies answer.
        reporter
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let mut last = None;
        loop {
            let healthy = check().await;
            if last != Some(healthy) {
                let status = if healthy {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                reporter.set_service_status(service_name, status).await;
                reporter.set_service_status("", status).await;
                tracing::info!(service = service_name, healthy, "health changed");
                last = Some(healthy);
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

/// Response header naming the Closeout version that served a call.
pub const VERSION_HEADER: &str = "x-closeout-version";

/// The Closeout version, as `closeout version` and the header report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A tower layer adding [`VERSION_HEADER`] to every response, so a client
/// can tell which release answered (useful behind a load balancer with
/// replicas of mixed versions during a rollout).
#[derive(Clone, Copy, Debug, Default)]
pub struct VersionLayer;

impl<S> tower_layer::Layer<S> for VersionLayer {
    type Service = WithVersion<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithVersion { inner }
    }
}

/// The service [`VersionLayer`] wraps around each gRPC service.
#[derive(Clone, Debug)]
pub struct WithVersion<S> {
    inner: S,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for WithVersion<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            response
                .headers_mut()
                .insert(VERSION_HEADER, http::HeaderValue::from_static(VERSION));
            Ok(response)
        })
    }
}

/// A service started in the background (by its `main` or by a test): where
/// it listens, and how to stop it gracefully or wait for it to end.
pub struct Running<E> {
    /// The address gRPC listens on (the real port when 0 was asked).
    pub addr: std::net::SocketAddr,
    /// The address of the Prometheus endpoint.
    pub metrics_http_addr: std::net::SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), E>>,
}

impl<E: From<tokio::task::JoinError>> Running<E> {
    /// Wraps a service task that stops when `shutdown` fires.
    pub fn new(
        addr: std::net::SocketAddr,
        metrics_http_addr: std::net::SocketAddr,
        shutdown: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<Result<(), E>>,
    ) -> Self {
        Running {
            addr,
            metrics_http_addr,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// Stops gracefully and waits until everything is drained.
    pub async fn stop(mut self) -> Result<(), E> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }

    /// Waits until the service stops on its own (a signal) or fails.
    pub async fn wait(mut self) -> Result<(), E> {
        let _keep_running = self.shutdown.take();
        (&mut self.task).await?
    }
}

/// The accepted connections of `listener`, with Nagle's algorithm off:
/// tonic sets TCP_NODELAY only on listeners it binds itself, and without it
/// a reply that spans two segments waits ~40 ms for a delayed ACK.
pub fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted {
            let _ = stream.set_nodelay(true);
        }
        accepted
    })
}
