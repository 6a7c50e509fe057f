//! Who is calling, proved once for every service. [`AuthLayer`] is the one
//! tower layer every Closeout gRPC server runs: it reads
//! `authorization: Bearer <JWT>`, verifies it with `closeout-auth`'s
//! [`Verifier`] and puts the caller's [`Identity`] into the request's
//! extensions; a call without a valid token never reaches a handler
//! (UNAUTHENTICATED). Health checks (`grpc.health.v1`) stay open so load
//! balancers can probe. The layer also bounds `x-request-id` (the events'
//! correlation id): at most [`MAX_REQUEST_ID`] printable ASCII characters,
//! else INVALID_ARGUMENT.
//!
//! Handlers read the identity with [`caller`] (for history and events) and
//! ask the domain's rules table with [`authorise`]; there is no other
//! source of identity and no default role.

use crate::error::ApiError;
use closeout_auth::Verifier;
use closeout_domain::authorisation::{self, Action, Scope};
use closeout_proto::{Actor, Role};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use closeout_domain::authorisation::Identity;

/// The metadata key holding the bearer token.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The metadata key of the caller's request id (the events' correlation id).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest `x-request-id` accepted.
pub const MAX_REQUEST_ID: usize = 128;

/// The role's spelling in tokens, metadata and messages.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Inspectorate => "inspectorate",
        Role::InspectedBody => "inspected-body",
        Role::Viewer => "viewer",
        Role::System => "service",
        Role::Unspecified => "unspecified",
    }
}

/// The wire role of a domain role.
fn wire_role(role: closeout_domain::Role) -> Role {
    match role {
        closeout_domain::Role::Inspectorate => Role::Inspectorate,
        closeout_domain::Role::InspectedBody => Role::InspectedBody,
        closeout_domain::Role::Viewer => Role::Viewer,
        closeout_domain::Role::System => Role::System,
    }
}

/// The actor recorded in history and events for `identity`.
pub fn actor_of(identity: &Identity) -> Actor {
    Actor {
        subject: identity.subject.clone(),
        role: wire_role(identity.role) as i32,
        organisation_id: identity
            .organisation
            .as_ref()
            .map(|o| o.as_str().to_string())
            .unwrap_or_default(),
    }
}

/// The verified identity in `extensions` (a request's, or its parts').
pub fn identity_in(extensions: &http::Extensions) -> Result<&Identity, ApiError> {
    extensions.get::<Identity>().ok_or_else(|| {
        ApiError::Unauthenticated(
            "no verified caller: send metadata authorization: Bearer <token>".into(),
        )
    })
}

/// The verified identity of `request`.
pub fn identity<T>(request: &tonic::Request<T>) -> Result<&Identity, ApiError> {
    identity_in(request.extensions())
}

/// The caller of `request`, as recorded in history and events.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Actor, ApiError> {
    identity(request).map(actor_of)
}

/// The caller in `extensions` (for handlers that split their request).
pub fn caller_in(extensions: &tonic::Extensions) -> Result<Actor, ApiError> {
    identity_in(extensions).map(actor_of)
}

/// Asks the rules table whether `identity` may take `action`: the scope it
/// may act in, or PERMISSION_DENIED.
pub fn allow(identity: &Identity, action: Action) -> Result<Scope, ApiError> {
    authorisation::authorise(identity, action)
        .map_err(|d| ApiError::PermissionDenied(d.to_string()))
}

/// [`allow`] for the caller of `request`; UNAUTHENTICATED without one.
pub fn authorise<T>(request: &tonic::Request<T>, action: Action) -> Result<Scope, ApiError> {
    allow(identity(request)?, action)
}

/// [`authorise`] for a split request's extensions.
pub fn authorise_in(extensions: &tonic::Extensions, action: Action) -> Result<Scope, ApiError> {
    allow(identity_in(extensions)?, action)
}

/// A service acting on its own behalf (consumers, schedulers).
pub fn system_actor(service: &str) -> Actor {
    Actor {
        subject: format!("service:{service}"),
        role: Role::System as i32,
        organisation_id: String::new(),
    }
}

/// The request's `x-request-id` (already bounded by [`AuthLayer`]), or a
/// new id.
pub fn request_id(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Whether `value` is an acceptable request id: 1 to [`MAX_REQUEST_ID`]
/// printable ASCII characters, no spaces.
pub fn valid_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value.bytes().all(|b| b.is_ascii_graphic())
}

/// gRPC paths that need no token: the health service.
fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
}

/// The token of an `authorization` header value.
fn bearer(value: &http::HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The layer verifying every call's bearer token.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
}

impl AuthLayer {
    /// Verifies tokens with `verifier`.
    pub fn new(verifier: Verifier) -> AuthLayer {
        AuthLayer {
            verifier: Arc::new(verifier),
        }
    }

    /// Checks one request's headers: the identity to insert, or the status
    /// to answer with.
    fn check(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Identity>, tonic::Status> {
        if let Some(id) = headers.get(REQUEST_ID_HEADER) {
            let ok = id.to_str().is_ok_and(valid_request_id);
            if !ok {
                return Err(tonic::Status::invalid_argument(format!(
                    "metadata {REQUEST_ID_HEADER} must be 1 to {MAX_REQUEST_ID} printable ASCII characters"
                )));
            }
        }
        if is_open(path) {
            return Ok(None);
        }
        let Some(value) = headers.get(AUTHORIZATION_HEADER) else {
            return Err(tonic::Status::unauthenticated(
                "no credentials: send metadata authorization: Bearer <token> (closeout dev prints tokens; closeout token mint makes one)",
            ));
        };
        let token = bearer(value).ok_or_else(|| {
            tonic::Status::unauthenticated("metadata authorization must be \"Bearer <token>\"")
        })?;
        self.verifier
            .verify(token)
            .map(Some)
            .map_err(|e| tonic::Status::unauthenticated(e.to_string()))
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the gRPC routes.
#[derive(Clone, Debug)]
pub struct Authenticated<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Authenticated<S>
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.layer.check(request.uri().path(), request.headers()) {
            Ok(identity) => {
                // Whatever a client sent, only the verified identity counts.
                request.extensions_mut().remove::<Identity>();
                if let Some(identity) = identity {
                    request.extensions_mut().insert(identity);
                }
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                let response = status.into_http::<R>();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use closeout_auth::{Claims, KeySet, SigningKey, VerifierConfig, generate_ed25519, mint};
    use std::time::Duration;

    fn layer() -> (AuthLayer, SigningKey) {
        let pair = generate_ed25519("t").unwrap();
        let mut keys = KeySet::new();
        keys.add_pem("t", pair.public_pem.as_bytes(), None).unwrap();
        let key = SigningKey::from_pem(pair.private_pem.as_bytes(), None).unwrap();
        (
            AuthLayer::new(Verifier::new(keys, VerifierConfig::default())),
            key,
        )
    }

    fn headers(pairs: &[(&'static str, String)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_tokens_become_identities() {
        let (layer, key) = layer();
        let token = mint(
            &key,
            &Claims::new(
                "jo",
                closeout_domain::Role::InspectedBody,
                Some("kent"),
                Duration::from_secs(60),
            ),
        )
        .unwrap();
        let who = layer
            .check(
                "/closeout.v1.TrackerService/GetItem",
                &headers(&[(AUTHORIZATION_HEADER, format!("Bearer {token}"))]),
            )
            .unwrap()
            .unwrap();
        let actor = actor_of(&who);
        assert_eq!(actor.role, Role::InspectedBody as i32);
        assert_eq!(actor.organisation_id, "kent");
        assert_eq!(actor.subject, "jo");
    }

    #[test]
    fn missing_or_bad_credentials_are_unauthenticated_but_health_is_open() {
        let (layer, _) = layer();
        let path = "/closeout.v1.TrackerService/ListItems";
        for h in [
            headers(&[]),
            headers(&[(AUTHORIZATION_HEADER, "Basic abc".into())]),
            headers(&[(AUTHORIZATION_HEADER, "Bearer not.a.token".into())]),
            headers(&[("x-closeout-role", "inspectorate".into())]),
        ] {
            let status = layer.check(path, &h).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
        }
        assert!(
            layer
                .check("/grpc.health.v1.Health/Check", &headers(&[]))
                .unwrap()
                .is_none()
        );
        let long_id = headers(&[(REQUEST_ID_HEADER, "x".repeat(7000))]);
        assert_eq!(
            layer.check(path, &long_id).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
