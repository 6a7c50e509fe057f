//! The pieces of the gRPC server every service runs (assembled by
//! `crate::host`): the standard health service (SERVING only while its
//! dependencies answer), server reflection listing what the server serves
//! (so `grpcurl` works without .proto files), the version header, TCP
//! listeners with TCP_NODELAY, and the shutdown signal.

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

/// The two server reflection services (v1, and v1alpha for older clients
/// such as Python's grpcio-reflection), each listing exactly `served`
/// (the gRPC services this server answers), the health service and
/// reflection itself; every Closeout proto can be looked up by symbol.
#[allow(clippy::type_complexity)]
pub fn reflection_services(
    served: &[&str],
) -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(closeout_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            );
        for name in served.iter().copied().chain([
            HEALTH_SERVICE,
            REFLECTION_V1_SERVICE,
            REFLECTION_V1ALPHA_SERVICE,
        ]) {
            builder = builder.with_service_name(name);
        }
        builder
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// The standard health service's name.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// The reflection service's name (v1).
pub const REFLECTION_V1_SERVICE: &str = "grpc.reflection.v1.ServerReflection";
/// The reflection service's name (v1alpha).
pub const REFLECTION_V1ALPHA_SERVICE: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Health-service name that is SERVING whenever the process runs.
pub const LIVENESS_SERVICE: &str = "liveness";

/// Keeps the health status of each of `service_names` (and of the whole
/// server, the empty name) in step with `check`, polled every `every`,
/// until the task is aborted. Starts NOT_SERVING so nothing is routed
/// before the first successful check.
pub fn spawn_health_watch<F, Fut>(
    reporter: HealthReporter,
    service_names: Vec<&'static str>,
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
                for name in service_names.iter().copied().chain([""]) {
                    reporter.set_service_status(name, status).await;
                }
                tracing::info!(services = ?service_names, healthy, "health changed");
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
