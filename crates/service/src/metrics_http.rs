//! Prometheus metrics for every service: a small registry of counters,
//! gauges and histograms, a tower layer counting gRPC calls and timing them
//! by method and status code, and a tiny HTTP/1.1 server answering
//! `GET /metrics` in the Prometheus text format on its own port.
//!
//! A service wires it like this (see `closeout-metrics` for a whole one):
//!
//! ```ignore
//! let registry = Registry::new();
//! bus_metrics::watch_outbox(&registry, pool.clone());          // outbox backlog
//! bus_metrics::watch_relay(&registry, relay.stats());          // publishes
//! bus_metrics::watch_consumer(&registry, bus.clone(), name, &[name], consumer.stats());
//! let http = metrics_http::serve(addr, registry.clone()).await?; // GET /metrics
//! Server::builder().layer(RpcMetricsLayer::new(registry))      // RPC counts, latency
//! ```
//!
//! and adds its own figures either directly ([`Registry::gauge_set`],
//! [`Registry::counter_add`]) or with a collector run at every scrape
//! ([`Registry::add_collector`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Histogram buckets (seconds) for RPC latency.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Name of the RPC call counter.
pub const RPC_REQUESTS: &str = "closeout_rpc_requests_total";
/// Name of the RPC latency histogram.
pub const RPC_DURATION: &str = "closeout_rpc_duration_seconds";

/// Most label sets one family keeps; later new ones are dropped (and
/// counted in `closeout_metrics_series_dropped_total`), so a client calling
/// made-up method names cannot grow the registry without bound.
pub const MAX_SERIES_PER_FAMILY: usize = 1000;

type Labels = Vec<(String, String)>;
type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Collector = Arc<dyn Fn() -> BoxFuture + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Clone, Debug)]
enum Series {
    Value(f64),
    Histogram {
        /// Count per bucket (not cumulative), then +Inf.
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: Kind,
    /// Upper bounds of a histogram's buckets (empty otherwise).
    bounds: Vec<f64>,
    series: BTreeMap<Labels, Series>,
}

#[derive(Default)]
struct Inner {
    families: BTreeMap<String, Family>,
    collectors: Vec<Collector>,
    dropped_series: u64,
}

/// Metrics of one process; cheap to clone (clones share the values).
/// Families are created on first use; a name used with two kinds keeps
/// the first and ignores the other.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_series(
        &self,
        name: &str,
        help: &str,
        kind: Kind,
        bounds: &[f64],
        pairs: &[(&str, &str)],
        update: impl FnOnce(&mut Series),
    ) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let family = inner
            .families
            .entry(name.to_string())
            .or_insert_with(|| Family {
                help: help.to_string(),
                kind,
                bounds: bounds.to_vec(),
                series: BTreeMap::new(),
            });
        if family.kind != kind || family.bounds != bounds {
            return;
        }
        let key = labels(pairs);
        if family.series.len() >= MAX_SERIES_PER_FAMILY && !family.series.contains_key(&key) {
            inner.dropped_series += 1;
            return;
        }
        let series = family.series.entry(key).or_insert_with(|| match kind {
            Kind::Histogram => Series::Histogram {
                counts: vec![0; bounds.len() + 1],
                sum: 0.0,
                count: 0,
            },
            Kind::Counter | Kind::Gauge => Series::Value(0.0),
        });
        update(series);
    }

    /// Adds `value` (≥ 0) to a counter.
    pub fn counter_add(&self, name: &str, help: &str, pairs: &[(&str, &str)], value: f64) {
        let value = value.max(0.0);
        self.with_series(name, help, Kind::Counter, &[], pairs, |s| {
            if let Series::Value(v) = s {
                *v += value;
            }
        });
    }

    /// Sets a counter to a total kept elsewhere (e.g. a consumer's own
    /// atomic count); it never goes down.
    pub fn counter_set(&self, name: &str, help: &str, pairs: &[(&str, &str)], total: f64) {
        self.with_series(name, help, Kind::Counter, &[], pairs, |s| {
            if let Series::Value(v) = s {
                *v = v.max(total);
            }
        });
    }

    /// Sets a gauge.
    pub fn gauge_set(&self, name: &str, help: &str, pairs: &[(&str, &str)], value: f64) {
        self.with_series(name, help, Kind::Gauge, &[], pairs, |s| {
            if let Series::Value(v) = s {
                *v = value;
            }
        });
    }

    /// Records one observation in a histogram with `buckets` (upper bounds,
    /// ascending; an observation with other buckets than the family's
    /// first one is ignored).
    pub fn observe(
        &self,
        name: &str,
        help: &str,
        pairs: &[(&str, &str)],
        buckets: &[f64],
        value: f64,
    ) {
        let slot = buckets
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(buckets.len());
        self.with_series(name, help, Kind::Histogram, buckets, pairs, |s| {
            if let Series::Histogram { counts, sum, count } = s {
                if let Some(c) = counts.get_mut(slot) {
                    *c += 1;
                }
                *sum += value;
                *count += 1;
            }
        });
    }

    /// Runs `collector` before every scrape (bounded by a timeout), to set
    /// gauges that need I/O: consumer lag, outbox backlog.
    pub fn add_collector<F, Fut>(&self, collector: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.lock()
            .collectors
            .push(Arc::new(move || Box::pin(collector()) as BoxFuture));
    }

    /// Runs the collectors (each at most `timeout`), then renders.
    pub async fn scrape(&self, timeout: Duration) -> String {
        let collectors = self.lock().collectors.clone();
        for collector in collectors {
            if tokio::time::timeout(timeout, collector()).await.is_err() {
                tracing::warn!("a metrics collector timed out");
            }
        }
        self.render()
    }

    /// The Prometheus text exposition (version 0.0.4) of every family.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        if inner.dropped_series > 0 {
            let _ = writeln!(
                out,
                "# HELP closeout_metrics_series_dropped_total Updates dropped because their \
                 family had {MAX_SERIES_PER_FAMILY} label sets already.\n\
                 # TYPE closeout_metrics_series_dropped_total counter\n\
                 closeout_metrics_series_dropped_total {}",
                inner.dropped_series
            );
        }
        for (name, family) in &inner.families {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, series) in &family.series {
                match series {
                    Series::Value(v) => {
                        let _ =
                            writeln!(out, "{name}{} {}", render_labels(labels, None), number(*v));
                    }
                    Series::Histogram { counts, sum, count } => {
                        let bounds = &family.bounds;
                        let mut cumulative = 0;
                        for (i, c) in counts.iter().enumerate() {
                            cumulative += c;
                            let le = bounds
                                .get(i)
                                .map_or_else(|| "+Inf".to_string(), |b| number(*b));
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {cumulative}",
                                render_labels(labels, Some(&le))
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_sum{} {}",
                            render_labels(labels, None),
                            number(*sum)
                        );
                        let _ =
                            writeln!(out, "{name}_count{} {count}", render_labels(labels, None));
                    }
                }
            }
        }
        out
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

// ------------------------------------------------------------ HTTP server

/// The running metrics endpoint.
pub struct MetricsServer {
    /// Where it listens (the real port when 0 was asked).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Stops accepting connections.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const MAX_REQUEST_HEAD: usize = 8 * 1024;
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` (port 0 picks one) and answers `GET /metrics` with
/// `registry`'s text until stopped or dropped. Anything else gets 404 (405
/// for other methods); each connection is closed after one response.
pub async fn serve(addr: SocketAddr, registry: Registry) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, registry))
                            .await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
    Ok(MetricsServer { addr, task })
}

async fn answer(mut stream: TcpStream, registry: Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    }
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") | ("HEAD", "/metrics") => {
            let body = registry.scrape(Duration::from_secs(2)).await;
            let body = if method == "HEAD" {
                String::new()
            } else {
                body
            };
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
            .await
        }
        ("GET", _) | ("HEAD", _) => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "not found; try /metrics\n",
            )
            .await
        }
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", "").await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

// ------------------------------------------------------------- RPC layer

/// A tower layer for `tonic::transport::Server::builder().layer(..)`:
/// counts every gRPC call in `closeout_rpc_requests_total{method,code}` and
/// times it in `closeout_rpc_duration_seconds{method,code}` (until the
/// response headers, which for unary calls is when the handler is done).
/// The code is read from the `grpc-status` header (errors are sent as
/// trailers-only responses); a response without one counts as OK.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    registry: Registry,
}

impl RpcMetricsLayer {
    pub fn new(registry: Registry) -> Self {
        RpcMetricsLayer { registry }
    }
}

impl<S> tower_layer::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            registry: self.registry.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around each gRPC service.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
    registry: Registry,
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
        let registry = self.registry.clone();
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
            record_rpc(&registry, &method, code, started.elapsed());
            result
        })
    }
}

/// Records one call (also usable from interceptors or by hand).
pub fn record_rpc(registry: &Registry, method: &str, code: &str, elapsed: Duration) {
    let pairs = [("method", method), ("code", code)];
    registry.counter_add(
        RPC_REQUESTS,
        "gRPC calls by method and status code.",
        &pairs,
        1.0,
    );
    registry.observe(
        RPC_DURATION,
        "gRPC call latency in seconds by method and status code.",
        &pairs,
        LATENCY_BUCKETS,
        elapsed.as_secs_f64(),
    );
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

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let r = Registry::new();
        r.counter_add(
            "t_calls_total",
            "Calls.",
            &[("method", "/a/B"), ("code", "OK")],
            1.0,
        );
        r.counter_add(
            "t_calls_total",
            "Calls.",
            &[("method", "/a/B"), ("code", "OK")],
            2.0,
        );
        r.gauge_set("t_lag", "Lag \"now\".", &[("consumer", "x\"y")], 7.0);
        r.observe("t_seconds", "Latency.", &[], &[0.1, 1.0], 0.05);
        r.observe("t_seconds", "Latency.", &[], &[0.1, 1.0], 0.5);
        r.observe("t_seconds", "Latency.", &[], &[0.1, 1.0], 5.0);
        let text = r.render();
        assert!(text.contains("# TYPE t_calls_total counter\n"), "{text}");
        assert!(
            text.contains("t_calls_total{method=\"/a/B\",code=\"OK\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("t_lag{consumer=\"x\\\"y\"} 7\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"1\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("t_seconds_count 3\n"), "{text}");
        assert!(text.contains("t_seconds_sum 5.55\n"), "{text}");
    }

    #[test]
    fn families_are_bounded() {
        let r = Registry::new();
        for i in 0..MAX_SERIES_PER_FAMILY + 5 {
            r.counter_add("t_total", "T.", &[("method", &format!("/x/{i}"))], 1.0);
        }
        r.counter_add("t_total", "T.", &[("method", "/x/0")], 1.0);
        let text = r.render();
        assert_eq!(text.matches("t_total{").count(), MAX_SERIES_PER_FAMILY);
        assert!(
            text.contains("t_total{method=\"/x/0\"} 2\n"),
            "existing series still count"
        );
        assert!(
            text.contains("closeout_metrics_series_dropped_total 5\n"),
            "{}",
            &text[..300]
        );
    }

    #[test]
    fn counter_set_never_goes_down() {
        let r = Registry::new();
        r.counter_set("t_applied_total", "Applied.", &[], 5.0);
        r.counter_set("t_applied_total", "Applied.", &[], 3.0);
        assert!(r.render().contains("t_applied_total 5\n"));
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let r = Registry::new();
        r.gauge_set("t_up", "Up.", &[], 1.0);
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = seen.clone();
        let registry = r.clone();
        r.add_collector(move || {
            let counter = counter.clone();
            let registry = registry.clone();
            async move {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                registry.gauge_set("t_scrapes", "Scrapes.", &[], n as f64);
            }
        });
        let server = serve("127.0.0.1:0".parse().expect("address"), r)
            .await
            .expect("bind");
        let get = |path: &'static str| async move {
            let mut stream = TcpStream::connect(server.addr).await.expect("connect");
            stream
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut response = String::new();
            stream.read_to_string(&mut response).await.expect("read");
            response
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("t_up 1\n") && ok.contains("t_scrapes 1\n"),
            "{ok}"
        );
        let missing = get("/").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        server.stop();
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
