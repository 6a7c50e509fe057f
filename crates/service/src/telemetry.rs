//! Tracing set-up: `RUST_LOG`-style filtering (default `info`), text or
//! JSON logs, and — when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `CLOSEOUT_OTLP_ENDPOINT`) names a collector — OpenTelemetry spans
//! exported over OTLP/gRPC. Trace context arrives with gRPC calls as a W3C
//! `traceparent` header ([`grpc_request_span`]) and travels on with every
//! event the call causes (see `closeout_bus::trace`).

use crate::config::LogFormat;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// Environment variables naming the OTLP collector, in order of preference.
pub const OTLP_ENDPOINT_ENV: [&str; 2] = ["CLOSEOUT_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Flushes exported spans when dropped; keep it alive for the process.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

fn otlp_endpoint() -> Option<String> {
    OTLP_ENDPOINT_ENV
        .iter()
        .find_map(|name| std::env::var(name).ok())
        .filter(|v| !v.trim().is_empty())
}

/// A tracer provider that exports to `endpoint` if given. Without one,
/// spans still get trace and span ids, so trace context is carried from
/// gRPC calls to events even when nothing is exported.
fn tracer_provider(service: &str, endpoint: Option<&str>) -> (SdkTracerProvider, Option<String>) {
    use opentelemetry_otlp::WithExportConfig;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(format!("closeout-{service}"))
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Some(endpoint) = endpoint else {
        return (builder.build(), None);
    };
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
    {
        Ok(exporter) => (builder.with_batch_exporter(exporter).build(), None),
        Err(e) => (
            builder.build(),
            Some(format!("OTLP exporter for {endpoint}: {e}")),
        ),
    }
}

/// Installs the global subscriber for `service` ("findings", …). Calling
/// it twice (tests start several services in one process) keeps the first.
pub fn init(format: LogFormat, service: &str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,async_nats=warn,h2=warn,tower=warn,opentelemetry=warn")
    });
    let logs = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let endpoint = otlp_endpoint();
    let (provider, problem) = tracer_provider(service, endpoint.as_deref());
    let traces =
        tracing_opentelemetry::layer().with_tracer(provider.tracer(format!("closeout-{service}")));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if let Some(problem) = &problem {
        tracing::warn!(%problem, "trace export disabled");
    }
    if let (true, None, Some(endpoint)) = (installed, &problem, &endpoint) {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
    TelemetryGuard {
        provider: installed.then_some(provider),
    }
}

/// The span of one incoming gRPC call (for `Server::builder().trace_fn`),
/// a child of the caller's span when the request carries `traceparent`.
pub fn grpc_request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc",
        rpc.method = %request.uri().path(),
        otel.kind = "server"
    );
    if let Some(traceparent) = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        closeout_bus::trace::set_remote_parent(&span, traceparent);
    }
    span
}
