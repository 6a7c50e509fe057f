//! Prometheus figures for every service. The figures are kept by the
//! `prometheus-client` crate; before each scrape the refreshers a service
//! registered (outbox backlog, consumer lag: figures that need I/O) run,
//! then the registry is written in the Prometheus text format (0.0.4) at
//! `GET /metrics` on its own port, served by hyper through an axum router.
//! A tower layer counts and times every gRPC call by method and code.
//!
//! The host (`crate::host`) creates one [`Prometheus`] per service; a
//! service adds its own figures through [`Prometheus::gauge`],
//! [`Prometheus::counter`] or [`Prometheus::registry`], and keeps them
//! current directly or with [`Prometheus::refresh_before_scrape`].

use crate::bus_metrics::ConsumerFigures;
use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Histogram buckets (seconds) for RPC latency.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Name of the RPC call counter (the encoder adds `_total`).
pub const RPC_REQUESTS: &str = "closeout_rpc_requests";
/// Name of the RPC latency histogram.
pub const RPC_DURATION: &str = "closeout_rpc_duration_seconds";

/// Most method names the RPC figures keep; calls to further (made-up)
/// methods are counted in `closeout_metrics_series_dropped_total` instead,
/// so a client cannot grow the registry without bound.
pub const MAX_SERIES_PER_FAMILY: usize = 1000;

/// How long one refresher may take before a scrape goes on without it.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// The path the endpoint answers on.
pub const METRICS_PATH: &str = "/metrics";

type Refresher = Box<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The labels of the RPC figures, in this order.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// The gRPC path, `/package.Service/Method`.
    pub method: String,
    /// The canonical status code name, `OK`, `NOT_FOUND`, ….
    pub code: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// The figures of one process, and what refreshes them before a scrape.
pub struct Prometheus {
    registry: Registry,
    refreshers: Vec<Refresher>,
    rpc: RpcFigures,
    pub(crate) consumers: Option<ConsumerFigures>,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus").finish_non_exhaustive()
    }
}

impl Default for Prometheus {
    fn default() -> Self {
        Self::new()
    }
}

/// `help` as `prometheus-client` wants it: it adds the final full stop.
fn help(text: &str) -> &str {
    text.trim_end_matches('.')
}

impl Prometheus {
    /// A registry holding the RPC figures.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let rpc = RpcFigures::default();
        registry.register(
            RPC_REQUESTS,
            "gRPC calls by method and status code",
            rpc.requests.clone(),
        );
        registry.register(
            RPC_DURATION,
            "gRPC call latency in seconds by method and status code",
            rpc.duration.clone(),
        );
        registry.register(
            "closeout_metrics_series_dropped",
            format!(
                "Calls not recorded because the RPC figures had {MAX_SERIES_PER_FAMILY} methods already"
            ),
            rpc.dropped.clone(),
        );
        Prometheus {
            registry,
            refreshers: Vec::new(),
            rpc,
            consumers: None,
        }
    }

    /// The underlying registry, for figures of other shapes (families).
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Registers and returns a gauge `name`.
    pub fn gauge(&mut self, name: &str, text: &str) -> Gauge {
        let gauge = Gauge::default();
        self.registry.register(name, help(text), gauge.clone());
        gauge
    }

    /// Registers and returns a counter; `name` ends in `_total`, as it
    /// is exposed.
    pub fn counter(&mut self, name: &str, text: &str) -> Counter {
        let counter = Counter::default();
        let base = name.strip_suffix("_total").unwrap_or(name);
        self.registry.register(base, help(text), counter.clone());
        counter
    }

    /// Runs `refresh` before every scrape (at most [`REFRESH_TIMEOUT`]),
    /// to bring figures that need I/O up to date.
    pub fn refresh_before_scrape<F, Fut>(&mut self, refresh: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.refreshers.push(Box::new(move || {
            Box::pin(refresh()) as BoxFuture<'static, ()>
        }));
    }

    /// The tower layer recording every gRPC call into these figures.
    pub fn rpc_layer(&self) -> RpcMetricsLayer {
        RpcMetricsLayer {
            figures: self.rpc.clone(),
        }
    }

    /// Runs the refreshers, then writes the text exposition.
    pub async fn scrape(&self) -> String {
        for refresh in &self.refreshers {
            if tokio::time::timeout(REFRESH_TIMEOUT, refresh())
                .await
                .is_err()
            {
                tracing::warn!("a metrics refresher timed out");
            }
        }
        let mut text = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        text
    }

    /// Binds `addr` (port 0 picks one) and answers `GET /metrics` until the
    /// returned endpoint is stopped or dropped. Each connection is closed
    /// after one response.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let figures = Arc::new(self);
        let router = axum::Router::new().route(
            METRICS_PATH,
            axum::routing::get(move || {
                let figures = figures.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                        )],
                        figures.scrape().await,
                    )
                }
            }),
        );
        let task = tokio::spawn(accept(listener, router));
        tracing::info!(%addr, "Prometheus metrics at http://{addr}{METRICS_PATH}");
        Ok(MetricsEndpoint { addr, task })
    }
}

async fn accept(listener: TcpListener, router: axum::Router) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .header_read_timeout(Duration::from_secs(5))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

/// The running metrics endpoint.
pub struct MetricsEndpoint {
    /// Where it listens (the real port when 0 was asked).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsEndpoint {
    /// Stops accepting connections.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ------------------------------------------------------------- RPC layer

#[derive(Clone)]
struct RpcFigures {
    requests: Family<RpcLabels, Counter>,
    duration: Family<RpcLabels, Histogram, fn() -> Histogram>,
    dropped: Counter,
    methods: Arc<Mutex<HashSet<String>>>,
}

impl Default for RpcFigures {
    fn default() -> Self {
        RpcFigures {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            dropped: Counter::default(),
            methods: Arc::default(),
        }
    }
}

impl std::fmt::Debug for RpcFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcFigures").finish_non_exhaustive()
    }
}

impl RpcFigures {
    fn record(&self, method: &str, code: &str, elapsed: Duration) {
        {
            // A panic while holding the lock leaves a plain set behind.
            let mut methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
            if !methods.contains(method) {
                if methods.len() >= MAX_SERIES_PER_FAMILY {
                    self.dropped.inc();
                    return;
                }
                methods.insert(method.to_string());
            }
        }
        let labels = RpcLabels {
            method: method.to_string(),
            code: code.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// A tower layer for `tonic::transport::Server::builder().layer(..)`:
/// counts every gRPC call in `closeout_rpc_requests_total{method,code}` and
/// times it in `closeout_rpc_duration_seconds{method,code}` (until the
/// response headers, which for unary calls is when the handler is done).
/// The code is read from the `grpc-status` header (errors are sent as
/// trailers-only responses); a response without one counts as OK.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    figures: RpcFigures,
}

impl<S> tower_layer::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            figures: self.figures.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around each gRPC service.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
    figures: RpcFigures,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is ready only if polled; keep the polled one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let figures = self.figures.clone();
        let method = request.uri().path().to_string();
        Box::pin(async move {
            let started = Instant::now();
            let result = inner.call(request).await;
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or("OK", code_name),
                Err(_) => "UNAVAILABLE",
            };
            figures.record(&method, code, started.elapsed());
            result
        })
    }
}

/// The canonical name of a numeric gRPC status code.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn renders_counters_gauges_and_histograms() {
        let mut p = Prometheus::new();
        let calls = p.counter("t_calls_total", "Calls.");
        calls.inc_by(3);
        let lag = p.gauge("t_lag", "Lag \"now\".");
        lag.set(7);
        p.rpc.record("/a/B", "OK", Duration::from_millis(50));
        p.rpc.record("/a/B", "OK", Duration::from_millis(500));
        p.rpc.record("/a/B", "NOT_FOUND", Duration::from_secs(20));
        let text = p.scrape().await;
        assert!(text.contains("# TYPE t_calls_total counter\n"), "{text}");
        assert!(text.contains("# HELP t_calls_total Calls.\n"), "{text}");
        assert!(text.contains("t_calls_total 3\n"), "{text}");
        assert!(text.contains("t_lag 7\n"), "{text}");
        assert!(
            text.contains("closeout_rpc_requests_total{method=\"/a/B\",code=\"OK\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "closeout_rpc_duration_seconds_bucket{method=\"/a/B\",code=\"OK\",le=\"0.1\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "closeout_rpc_duration_seconds_bucket{method=\"/a/B\",code=\"OK\",le=\"+Inf\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "closeout_rpc_duration_seconds_count{method=\"/a/B\",code=\"NOT_FOUND\"} 1\n"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn methods_are_bounded() {
        let p = Prometheus::new();
        for i in 0..MAX_SERIES_PER_FAMILY + 5 {
            p.rpc
                .record(&format!("/x/{i}"), "OK", Duration::from_millis(1));
        }
        p.rpc.record("/x/0", "OK", Duration::from_millis(1));
        let text = p.scrape().await;
        assert_eq!(
            text.matches("closeout_rpc_requests_total{").count(),
            MAX_SERIES_PER_FAMILY
        );
        assert!(
            text.contains("closeout_rpc_requests_total{method=\"/x/0\",code=\"OK\"} 2\n"),
            "existing series still count"
        );
        assert!(text.contains("closeout_metrics_series_dropped_total 5\n"));
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // No `Connection: close`: the endpoint closes after one response.
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    #[tokio::test]
    async fn serves_metrics_over_http_refreshing_first() {
        let mut p = Prometheus::new();
        let up = p.gauge("t_up", "Up.");
        up.set(1);
        let scrapes = p.gauge("t_scrapes", "Scrapes.");
        p.refresh_before_scrape(move || {
            let scrapes = scrapes.clone();
            async move {
                scrapes.inc();
            }
        });
        let endpoint = p
            .serve("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("bind");
        let ok = get(endpoint.addr, "/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{ok}"
        );
        assert!(
            ok.contains("t_up 1\n") && ok.contains("t_scrapes 1\n"),
            "{ok}"
        );
        let again = get(endpoint.addr, "/metrics").await;
        assert!(again.contains("t_scrapes 2\n"), "{again}");
        let missing = get(endpoint.addr, "/").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        endpoint.stop();
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
