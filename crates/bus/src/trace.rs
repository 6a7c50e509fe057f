//! W3C trace context across the event stream. An event appended while a
//! traced request is in progress carries that request's `traceparent`, so
//! the consumer's work joins the same trace; without tracing (no
//! OpenTelemetry layer installed) the header is derived from the
//! correlation id, which still groups an import's events together.

use crate::event::traceparent_of;
use closeout_proto::EventEnvelope;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `traceparent` of the current tracing span, if it is part of a real
/// (OpenTelemetry) trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The `traceparent` to send with `event`: the current trace's, else one
/// derived from the event (see [`crate::event::traceparent`]).
pub fn traceparent_for(event: &EventEnvelope) -> String {
    current_traceparent().unwrap_or_else(|| traceparent_of(event))
}

/// Parses a version-00 `traceparent` into a remote span context.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Makes `span` a child of the remote span named by `traceparent`; a
/// malformed value is ignored (the span starts its own trace).
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    if let Some(remote) = parse_traceparent(traceparent) {
        let context = opentelemetry::Context::new().with_remote_span_context(remote);
        let _ = span.set_parent(context);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_and_refuses_malformed_traceparents() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_traceparent(tp).expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_remote());
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn without_tracing_the_header_comes_from_the_event() {
        let event = EventEnvelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            correlation_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        };
        assert_eq!(current_traceparent(), None);
        assert_eq!(traceparent_for(&event), traceparent_of(&event));
    }
}
