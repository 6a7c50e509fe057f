//! Limits that keep one service answering under load and hostile input.
//!
//! [`LimitsLayer`] is a tower layer every Closeout gRPC server runs (next to
//! the bearer-token layer): ONE concurrency limit shared by every connection,
//! with load shedding (a call beyond it is answered RESOURCE_EXHAUSTED at
//! once instead of queueing), a server-side deadline for every call
//! (DEADLINE_EXCEEDED), and malformed protobuf frames answered
//! INVALID_ARGUMENT (tonic's codec says INTERNAL, which blames the server
//! for the client's bytes). Health checks are never shed, so load balancers
//! still see a busy service as alive.
//!
//! [`StreamSlots`] bounds the long-lived server streams one identity may hold
//! open (WatchItems), so one credential cannot exhaust a service's memory.
//!
//! Settings come from the environment so that every service and test host
//! gets them without new configuration plumbing:
//! `CLOSEOUT_MAX_CONCURRENT_CALLS` (default 256),
//! `CLOSEOUT_CALL_DEADLINE_SECS` (default 30) and
//! `CLOSEOUT_MAX_STREAMS_PER_IDENTITY` (default 16).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;

/// Calls in flight at once, over all connections, unless configured.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 256;
/// How long one call may run, unless configured.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(30);
/// Open server streams per identity, unless configured.
pub const DEFAULT_MAX_STREAMS_PER_IDENTITY: usize = 16;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
}

/// The layer shedding load beyond one shared concurrency limit, bounding
/// each call's time and answering codec errors INVALID_ARGUMENT.
#[derive(Clone, Debug)]
pub struct LimitsLayer {
    permits: Arc<Semaphore>,
    max: usize,
    deadline: Duration,
}

impl LimitsLayer {
    /// At most `max_calls` calls at once (at least one), each at most
    /// `deadline` long.
    pub fn new(max_calls: usize, deadline: Duration) -> LimitsLayer {
        let max = max_calls.max(1);
        LimitsLayer {
            permits: Arc::new(Semaphore::new(max)),
            max,
            deadline,
        }
    }

    /// The limits from the environment (see the module documentation).
    pub fn from_env() -> LimitsLayer {
        let max = env_number("CLOSEOUT_MAX_CONCURRENT_CALLS")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS);
        let deadline = env_number("CLOSEOUT_CALL_DEADLINE_SECS")
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_CALL_DEADLINE);
        LimitsLayer::new(max, deadline)
    }
}

impl<S> tower_layer::Layer<S> for LimitsLayer {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limited {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`LimitsLayer`] wraps around the gRPC routes.
#[derive(Clone, Debug)]
pub struct Limited<S> {
    inner: S,
    layer: LimitsLayer,
}

fn is_health(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
}

/// Whether `status` is tonic's word for bytes that are not a valid
/// message (as opposed to a failure of the service itself).
pub fn is_codec_error(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Internal && {
        let m = status.message();
        m.starts_with("failed to decode Protobuf message")
            || m.starts_with("protocol error:")
            || m.starts_with("Unexpected EOF decoding stream")
            || m.starts_with("Error decompressing")
    }
}

/// Longest status message sent back; longer ones (echoing a caller's
/// over-long value) are cut, so an answer never breaks the client's
/// header limits.
pub const MAX_STATUS_MESSAGE: usize = 1024;
/// Longest status details sent back.
pub const MAX_STATUS_DETAILS: usize = 4096;

fn cut(message: &str) -> String {
    if message.len() <= MAX_STATUS_MESSAGE {
        return message.to_string();
    }
    let mut end = MAX_STATUS_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// A response answering a codec error INTERNAL is answered
/// INVALID_ARGUMENT instead; an over-long status message is cut and
/// over-long details dropped; any other response is left as it is.
fn tidy_status<R: Default>(mut response: http::Response<R>) -> http::Response<R> {
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    if is_codec_error(&status) {
        return tonic::Status::invalid_argument(format!(
            "malformed request message: {}",
            cut(status.message())
        ))
        .into_http::<R>();
    }
    let long_message = status.message().len() > MAX_STATUS_MESSAGE;
    let long_details = status.details().len() > MAX_STATUS_DETAILS;
    if !long_message && !long_details {
        return response;
    }
    let details = if long_details {
        bytes::Bytes::new()
    } else {
        bytes::Bytes::copy_from_slice(status.details())
    };
    let tidy = tonic::Status::with_details(status.code(), cut(status.message()), details);
    let mut headers = http::HeaderMap::new();
    if tidy.add_header(&mut headers).is_ok() {
        for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            response.headers_mut().remove(name);
        }
        response.headers_mut().extend(headers);
    }
    response
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Limited<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if is_health(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let status = tonic::Status::resource_exhausted(format!(
                "the service is at its limit of {} calls at once; retry shortly",
                self.layer.max
            ));
            return Box::pin(async move { Ok(status.into_http::<R>()) });
        };
        let deadline = self.layer.deadline;
        let call = self.inner.call(request);
        Box::pin(async move {
            // Held until the handler has answered (a server stream's
            // messages flow after, without a permit).
            let _permit = permit;
            match tokio::time::timeout(deadline, call).await {
                Ok(Ok(response)) => Ok(tidy_status(response)),
                Ok(Err(e)) => Err(e),
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call took longer than the service's deadline of {} s",
                    deadline.as_secs_f64()
                ))
                .into_http::<R>()),
            }
        })
    }
}

/// Open server streams counted per identity, bounded by a maximum.
#[derive(Clone, Debug)]
pub struct StreamSlots {
    open: Arc<Mutex<HashMap<String, usize>>>,
    max: usize,
}

impl Default for StreamSlots {
    fn default() -> Self {
        StreamSlots::from_env()
    }
}

impl StreamSlots {
    /// At most `max` streams per identity (at least one).
    pub fn new(max: usize) -> StreamSlots {
        StreamSlots {
            open: Arc::default(),
            max: max.max(1),
        }
    }

    /// The maximum from `CLOSEOUT_MAX_STREAMS_PER_IDENTITY`.
    pub fn from_env() -> StreamSlots {
        let max = env_number("CLOSEOUT_MAX_STREAMS_PER_IDENTITY")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_STREAMS_PER_IDENTITY);
        StreamSlots::new(max)
    }

    /// A slot for one more stream of `identity`, held until the guard is
    /// dropped; RESOURCE_EXHAUSTED when the identity holds all it may.
    pub fn acquire(&self, identity: &str) -> Result<SlotGuard, tonic::Status> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(identity.to_string()).or_insert(0);
        if *count >= self.max {
            return Err(tonic::Status::resource_exhausted(format!(
                "at most {} open streams per caller; close one first",
                self.max
            )));
        }
        *count += 1;
        Ok(SlotGuard {
            open: self.open.clone(),
            identity: identity.to_string(),
        })
    }

    /// Streams `identity` holds open now.
    pub fn open(&self, identity: &str) -> usize {
        let open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.get(identity).copied().unwrap_or(0)
    }
}

/// One open stream's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct SlotGuard {
    open: Arc<Mutex<HashMap<String, usize>>>,
    identity: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.identity) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.identity);
            }
        }
    }
}

/// A stream holding a [`SlotGuard`] for as long as it lives.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    _slot: SlotGuard,
}

impl<S> Guarded<S> {
    /// `inner`, holding `slot` until it is dropped.
    pub fn new(inner: S, slot: SlotGuard) -> Guarded<S> {
        Guarded { inner, _slot: slot }
    }
}

impl<S: tokio_stream::Stream + Unpin> tokio_stream::Stream for Guarded<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_layer::Layer;
    use tower_service::Service;

    /// Answers once released (or at once for "/bad", with a codec error).
    #[derive(Clone)]
    struct Slow(tokio::sync::watch::Receiver<bool>);

    impl Service<http::Request<()>> for Slow {
        type Response = http::Response<String>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            let mut release = self.0.clone();
            Box::pin(async move {
                if request.uri().path() == "/bad" {
                    return Ok(tonic::Status::internal(
                        "failed to decode Protobuf message: invalid varint",
                    )
                    .into_http());
                }
                if request.uri().path() == "/long" {
                    let echo = "x".repeat(7000);
                    return Ok(tonic::Status::invalid_argument(echo).into_http());
                }
                let _ = release.wait_for(|go| *go).await;
                Ok(http::Response::new("done".to_string()))
            })
        }
    }

    fn code(response: &http::Response<String>) -> Option<tonic::Code> {
        tonic::Status::from_header_map(response.headers()).map(|s| s.code())
    }

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder().uri(path).body(()).unwrap()
    }

    #[tokio::test]
    async fn sheds_beyond_the_shared_limit_and_keeps_health_open() {
        let (go, release) = tokio::sync::watch::channel(false);
        let layer = LimitsLayer::new(2, Duration::from_secs(60));
        // Two "connections" share one limit.
        let mut a = layer.layer(Slow(release.clone()));
        let mut b = layer.layer(Slow(release.clone()));
        let first = tokio::spawn(a.call(request("/x/A")));
        let second = tokio::spawn(b.call(request("/x/B")));
        let shed = a.call(request("/x/C")).await.unwrap();
        assert_eq!(code(&shed), Some(tonic::Code::ResourceExhausted));
        let health = tokio::spawn(b.call(request("/grpc.health.v1.Health/Check")));
        go.send(true).unwrap();
        for call in [first, second, health] {
            let response = call.await.unwrap().unwrap();
            assert_eq!(code(&response), None);
        }
        // Permits come back once calls are answered.
        let again = a.call(request("/x/D")).await.unwrap();
        assert_eq!(code(&again), None);
    }

    #[tokio::test]
    async fn deadline_and_codec_errors() {
        let (_go, release) = tokio::sync::watch::channel(false);
        let layer = LimitsLayer::new(4, Duration::from_millis(20));
        let mut s = layer.layer(Slow(release));
        let late = s.call(request("/x/Slow")).await.unwrap();
        assert_eq!(code(&late), Some(tonic::Code::DeadlineExceeded));
        let bad = s.call(request("/bad")).await.unwrap();
        assert_eq!(code(&bad), Some(tonic::Code::InvalidArgument));
        let long = s.call(request("/long")).await.unwrap();
        let status = tonic::Status::from_header_map(long.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().len() <= MAX_STATUS_MESSAGE + 3);
    }

    #[test]
    fn stream_slots_per_identity() {
        let slots = StreamSlots::new(2);
        let a1 = slots.acquire("a").unwrap();
        let _a2 = slots.acquire("a").unwrap();
        assert_eq!(
            slots.acquire("a").unwrap_err().code(),
            tonic::Code::ResourceExhausted
        );
        let _b = slots.acquire("b").unwrap();
        drop(a1);
        assert_eq!(slots.open("a"), 1);
        assert!(slots.acquire("a").is_ok());
    }
}
