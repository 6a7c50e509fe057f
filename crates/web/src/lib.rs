//! `closeout-web`: the web console. Server-rendered HTML pages — the
//! national overview, an organisation's scorecard as charts, the items
//! with their history and actions, the reconciliation review queue, and
//! report import with the parser's explanation — over the findings,
//! tracker and metrics services' gRPC APIs. It owns no tables: every
//! figure is the services' answer, asked as the signed-in person (the
//! session's token is forwarded), so the services' own authorisation
//! decides what each person sees and may do.
//!
//! Everything the browser needs (style sheet, a few lines of script for
//! keyboard shortcuts and live updates) is compiled into the binary; pages
//! read fully without script, and print as a board paper.

pub mod backend;
pub mod charts;
mod live;
mod pages;
pub mod session;
pub mod tls;
pub mod view;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use closeout_auth::Verifier;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub use backend::Backend;
pub use session::{Session, Sessions};
pub use tls::WebTls;

/// Largest report upload accepted (bytes).
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// What the console needs to run.
#[derive(Clone)]
pub struct WebConfig {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate and key; `None`: plain HTTP.
    pub tls: Option<WebTls>,
    /// The services, as `http://host:port`.
    pub findings_url: String,
    pub tracker_url: String,
    pub metrics_url: String,
    /// TLS towards the services (CA, optional client certificate).
    pub services_tls: closeout_service::client_tls::ClientTls,
    /// Verifies sign-in tokens (the same keys the services trust).
    pub verifier: Verifier,
    /// Mark the session cookie Secure (for a console behind a TLS proxy;
    /// always on when [`WebConfig::tls`] is set).
    pub secure_cookies: bool,
    /// Largest upload accepted on the import page.
    pub max_upload_bytes: usize,
}

/// A document uploaded for a preview, kept until imported.
#[derive(Clone)]
pub(crate) struct Upload {
    pub(crate) session_id: String,
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) content: Vec<u8>,
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) backend: Backend,
    pub(crate) sessions: Sessions,
    pub(crate) verifier: Verifier,
    pub(crate) secure_cookies: bool,
    pub(crate) max_upload_bytes: usize,
    pub(crate) uploads: Arc<Mutex<HashMap<String, Upload>>>,
}

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("the server task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The console running in the background.
pub struct RunningWeb {
    /// Where it listens (the real port when 0 was asked).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), WebError>>,
}

impl RunningWeb {
    /// Stops accepting, finishes open requests (live streams end), waits.
    pub async fn stop(mut self) -> Result<(), WebError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }

    /// Waits until the console stops on `signal` or fails.
    pub async fn wait(mut self) -> Result<(), WebError> {
        let _keep = self.shutdown.take();
        (&mut self.task).await?
    }
}

/// Starts the console; it stops on `signal` (or [`RunningWeb::stop`]).
pub async fn start(
    config: WebConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningWeb, WebError> {
    let backend = Backend::new(
        &config.findings_url,
        &config.tracker_url,
        &config.metrics_url,
        &config.services_tls,
    )
    .map_err(WebError::Config)?;
    let tls = match &config.tls {
        Some(tls) => Some(tls.server_config().map_err(WebError::Config)?),
        None => None,
    };
    let state = AppState {
        backend,
        sessions: Sessions::default(),
        verifier: config.verifier,
        // A cookie set over HTTPS must never travel back in the clear.
        secure_cookies: config.secure_cookies || tls.is_some(),
        max_upload_bytes: config.max_upload_bytes,
        uploads: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| WebError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| WebError::Listen {
        addr: config.listen,
        source,
    })?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state);
    let stop = async move {
        tokio::select! {
            _ = signal => {}
            _ = rx => {}
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = match tls {
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(WebError::Serve)
        }),
        Some(tls) => {
            let listener =
                tls::TlsListener::new(listener, tls).map_err(|source| WebError::Listen {
                    addr: config.listen,
                    source,
                })?;
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
                    .map_err(WebError::Serve)
            })
        }
    };
    tracing::info!(%addr, scheme, "web console listening");
    Ok(RunningWeb {
        addr,
        shutdown: Some(tx),
        task,
    })
}

fn router(state: AppState) -> Router {
    let upload_limit = state.max_upload_bytes + 64 * 1024;
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(pages::login_page).post(pages::login_form))
        .route("/logout", post(pages::logout))
        .route("/organisations/{id}", get(pages::organisation))
        .route("/items", get(pages::items))
        .route("/items/{id}", get(pages::item))
        .route("/items/{id}/{action}", post(pages::item_action))
        .route("/review", get(pages::review))
        .route("/proposals/{id}/{decision}", post(pages::decide))
        .route("/import", get(pages::import_page))
        .route("/import/preview", post(pages::import_preview))
        .route("/import/confirm", post(pages::import_confirm))
        .route("/events", get(live::events))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(upload_limit))
        .layer(axum::middleware::map_response(protect))
        .with_state(state)
}

/// Headers on every answer: only this site's own script and style run, the
/// pages are not framed, types are not guessed, and no address (a sign-in
/// link holds a token) is sent on as a referrer.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../assets/style.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../assets/app.js"),
    )
}

/// A signed-in request: its session and the session's id. Without one the
/// person is sent to the sign-in page (and back afterwards).
pub(crate) struct Signed {
    pub(crate) session: Arc<Session>,
    pub(crate) id: String,
}

fn session_of(state: &AppState, headers: &HeaderMap) -> Option<(String, Arc<Session>)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::cookie_value)
        .and_then(|id| state.sessions.get(id).map(|s| (id.to_string(), s)))
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match session_of(state, &parts.headers) {
            Some((id, session)) => Ok(Signed { session, id }),
            None => {
                let wanted = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                if parts.uri.path() == "/events" {
                    return Err((StatusCode::UNAUTHORIZED, "sign in first").into_response());
                }
                let next = if wanted.starts_with('/') { wanted } else { "/" };
                let mut target = String::from("/login?next=");
                for byte in next.bytes() {
                    if byte.is_ascii_alphanumeric() || b"/-_.".contains(&byte) {
                        target.push(byte as char);
                    } else {
                        target.push_str(&format!("%{byte:02X}"));
                    }
                }
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// The session of a request that may or may not be signed in.
pub(crate) fn optional_session(
    state: &State<AppState>,
    headers: &HeaderMap,
) -> Option<Arc<Session>> {
    session_of(state, headers).map(|(_, s)| s)
}
