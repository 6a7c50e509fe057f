//! The three services, as the console calls them: one lazily connected
//! channel each, and every request carrying the signed-in session's own
//! token (`authorization: Bearer <token>`), never anything the browser
//! sent: the services verify it and apply their own authorisation.

use crate::session::Session;
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_service::client_tls::ClientTls;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Clients of the findings, tracker and metrics services.
#[derive(Clone, Debug)]
pub struct Backend {
    findings: Channel,
    tracker: Channel,
    metrics: Channel,
}

fn channel(name: &str, url: &str, tls: &ClientTls) -> Result<Channel, String> {
    tls.endpoint(url)
        .map(|e| e.connect_lazy())
        .map_err(|e| format!("{name} address {url:?}: {e}"))
}

impl Backend {
    /// Clients of the services at these URLs (`http://host:port`, or
    /// `https://host:port` with `tls`), connecting on first use.
    pub fn new(
        findings: &str,
        tracker: &str,
        metrics: &str,
        tls: &ClientTls,
    ) -> Result<Backend, String> {
        Ok(Backend {
            findings: channel("findings", findings, tls)?,
            tracker: channel("tracker", tracker, tls)?,
            metrics: channel("metrics", metrics, tls)?,
        })
    }

    pub fn findings(&self) -> FindingsServiceClient<Channel> {
        FindingsServiceClient::new(self.findings.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn tracker(&self) -> TrackerServiceClient<Channel> {
        TrackerServiceClient::new(self.tracker.clone())
    }

    pub fn metrics(&self) -> MetricsServiceClient<Channel> {
        MetricsServiceClient::new(self.metrics.clone())
    }
}

/// `message` as the session's caller: its bearer token, which the
/// services verify themselves (the console adds no identity of its own).
pub fn call<T>(session: &Session, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {}", session.token)) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A refusal or failure of a service, said plainly: the service's own
/// message, prefixed by what it means for the person.
pub fn explain(status: &tonic::Status) -> String {
    use tonic::Code;
    let lead = match status.code() {
        Code::PermissionDenied => "Not allowed",
        Code::Unauthenticated => "Not signed in (sign in again)",
        Code::NotFound => "Not found",
        Code::InvalidArgument => "Not accepted",
        Code::FailedPrecondition => "Not possible now",
        Code::Aborted => "Changed meanwhile (reload and try again)",
        Code::AlreadyExists => "Already exists",
        Code::Unavailable => "Service unavailable",
        _ => "Error",
    };
    format!("{lead}: {}", status.message())
}
