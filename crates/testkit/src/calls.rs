//! Calling a service as someone, and waiting for what happens later.
//!
//! Every integration and end-to-end test calls the services as a role
//! and waits for eventually-consistent results (an event consumed, a read
//! model caught up). One set of helpers, one argument order: the caller
//! first, the message last.
//!
//! The caller's identity is a real bearer token (`authorization: Bearer`),
//! minted with a key pair generated once per test process; services under
//! test trust its public key ([`token_public_key`], which the tests'
//! service configurations pass as `--auth-public-key`). Tests of refused
//! tokens mint their own with [`token_signing_key`] or another key.

use closeout_auth::{Claims, SigningKey};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a test token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The key id of the test key pair.
pub const TEST_KEY_ID: &str = "closeout-test";

struct TestKeys {
    signing: SigningKey,
    public_key: PathBuf,
    // Keeps the directory holding the public key for the process's life.
    _dir: tempfile::TempDir,
}

fn test_keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pair = closeout_auth::generate_ed25519(TEST_KEY_ID).expect("generating the test key");
        let dir = tempfile::tempdir().expect("a directory for the test key");
        let public_key = dir.path().join(format!("{TEST_KEY_ID}.pem"));
        std::fs::write(&public_key, &pair.public_pem).expect("writing the test public key");
        let signing = SigningKey::from_pem(pair.private_pem.as_bytes(), Some(TEST_KEY_ID.into()))
            .expect("loading the test signing key");
        TestKeys {
            signing,
            public_key,
            _dir: dir,
        }
    })
}

/// The PEM public key file services under test verify tokens with (the
/// same for every test of the process).
pub fn token_public_key() -> &'static Path {
    &test_keys().public_key
}

/// The key [`Caller`]s' tokens are signed with.
pub fn token_signing_key() -> &'static SigningKey {
    &test_keys().signing
}

/// How long [`eventually`] waits before the test fails.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// How often the waiting helpers look again.
const POLL: Duration = Duration::from_millis(50);

/// Who calls: a role, the organisation an inspected body acts for, and the
/// subject recorded in the audit trail (`test:<role>`).
#[derive(Clone, Debug)]
pub struct Caller {
    role: String,
    organisation: String,
    subject: String,
}

impl Caller {
    /// A caller in `role` (any text, so tests can send a role the service
    /// refuses), for `organisation` (empty: none).
    pub fn new(role: &str, organisation: &str) -> Caller {
        Caller {
            role: role.to_string(),
            organisation: organisation.to_string(),
            subject: format!("test:{role}"),
        }
    }

    /// The inspectorate.
    pub fn inspectorate() -> Caller {
        Caller::new("inspectorate", "")
    }

    /// The inspected body `organisation`.
    pub fn inspected_body(organisation: &str) -> Caller {
        Caller::new("inspected-body", organisation)
    }

    /// A viewer.
    pub fn viewer() -> Caller {
        Caller::new("viewer", "")
    }

    /// The same caller, recorded as `subject`.
    pub fn subject(mut self, subject: &str) -> Caller {
        self.subject = subject.to_string();
        self
    }

    /// The claims of this caller's token: its role as written (so a test
    /// can send a role the service refuses), its organisation if any.
    pub fn claims(&self) -> Claims {
        // The role is replaced below; any role gives the other defaults.
        let mut claims = Claims::new(
            &self.subject,
            closeout_auth::Role::Viewer,
            Some(self.organisation.as_str()).filter(|o| !o.is_empty()),
            TOKEN_TTL,
        );
        claims.role = self.role.clone();
        claims
    }

    /// A bearer token for this caller, signed with the test key.
    pub fn token(&self) -> String {
        closeout_auth::mint(token_signing_key(), &self.claims()).expect("minting a test token")
    }

    /// `message` with this caller's bearer token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        with_token(&self.token(), message)
    }
}

/// A client channel whose calls carry a default caller's token unless the
/// request already has one: for tests whose reads need a verified caller
/// but are about something else (`Client::new(authenticated(channel))`).
pub type AuthChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, DefaultCaller>;

/// The interceptor of [`AuthChannel`]: adds its caller's token to requests
/// that carry none.
#[derive(Clone, Debug)]
pub struct DefaultCaller {
    header: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl tonic::service::Interceptor for DefaultCaller {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if !request.metadata().contains_key("authorization") {
            request
                .metadata_mut()
                .insert("authorization", self.header.clone());
        }
        Ok(request)
    }
}

/// `channel` with `caller`'s token on every call that has none.
pub fn authenticated_as(channel: tonic::transport::Channel, caller: &Caller) -> AuthChannel {
    let header = format!("Bearer {}", caller.token())
        .parse()
        .expect("a token is ASCII metadata");
    tonic::service::interceptor::InterceptedService::new(channel, DefaultCaller { header })
}

/// `channel` with a viewer's token on every call that has none: reads
/// work, writes still need their own caller.
pub fn authenticated(channel: tonic::transport::Channel) -> AuthChannel {
    authenticated_as(channel, &Caller::viewer())
}

/// A channel to the service at `addr` (`host:port`) with a viewer's token
/// on every call that has none ([`authenticated`]).
///
/// Panics (failing the test) if the service cannot be reached.
pub async fn connect_authenticated(addr: std::net::SocketAddr) -> AuthChannel {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    authenticated(channel)
}

/// `message` carrying `token` as `authorization: Bearer` (any text, so a
/// test can send a forged or malformed one).
///
/// Panics (failing the test) if the token is not valid metadata.
pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .unwrap_or_else(|_| panic!("token {token:?} is not ASCII metadata"));
    request.metadata_mut().insert("authorization", value);
    request
}

/// `message` as `role` (for an inspected body, of `organisation`; empty:
/// none).
pub fn as_role<T>(role: &str, organisation: &str, message: T) -> tonic::Request<T> {
    Caller::new(role, organisation).request(message)
}

/// `message` as the inspectorate.
pub fn inspectorate<T>(message: T) -> tonic::Request<T> {
    Caller::inspectorate().request(message)
}

/// `message` as the inspected body `organisation`.
pub fn inspected_body<T>(organisation: &str, message: T) -> tonic::Request<T> {
    Caller::inspected_body(organisation).request(message)
}

/// Polls `probe` until it gives a value, for at most `timeout`; `None` if
/// it never does.
pub async fn poll<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it is true, for at most `timeout`; whether it
/// became true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(timeout, || {
        let check = check();
        async move { check.await.then_some(()) }
    })
    .await
    .is_some()
}

/// Polls `probe` until it gives a value and returns it; fails the test,
/// naming `what`, if it does not within [`EVENTUALLY`].
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll(EVENTUALLY, probe).await {
        Some(value) => value,
        None => panic!("timed out after {EVENTUALLY:?} waiting for {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata<T>(request: &tonic::Request<T>, key: &str) -> Option<String> {
        request
            .metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    fn verify(request: &tonic::Request<()>) -> Result<closeout_auth::Identity, String> {
        let token = metadata(request, "authorization").expect("a token");
        let mut keys = closeout_auth::KeySet::new();
        keys.add_file(token_public_key())
            .map_err(|e| e.to_string())?;
        closeout_auth::Verifier::new(keys, Default::default())
            .verify(token.trim_start_matches("Bearer "))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn callers_carry_verifiable_tokens() {
        let who = verify(&inspected_body("hertfordshire", ())).unwrap();
        assert_eq!(who.role, closeout_auth::Role::InspectedBody);
        assert_eq!(who.organisation.unwrap().as_str(), "hertfordshire");
        assert_eq!(who.subject, "test:inspected-body");
        let who = verify(&inspectorate(())).unwrap();
        assert_eq!(who.organisation, None);
        let who = verify(&Caller::viewer().subject("reader:ann").request(())).unwrap();
        assert_eq!(who.subject, "reader:ann");
        assert!(verify(&as_role("nobody", "", ())).is_err());
        assert!(verify(&as_role("inspected-body", "", ())).is_err());
        assert!(metadata(&inspectorate(()), "x-closeout-role").is_none());
    }

    #[tokio::test]
    async fn polling_returns_the_first_value_or_gives_up() {
        let mut calls = 0;
        let value = poll(Duration::from_secs(5), || {
            calls += 1;
            let now = calls;
            async move { (now >= 3).then_some(now) }
        })
        .await;
        assert_eq!(value, Some(3));
        let never = poll(Duration::from_millis(120), || async { None::<()> }).await;
        assert_eq!(never, None);
        assert!(!wait_until(Duration::from_millis(120), || async { false }).await);
        assert!(wait_until(Duration::from_millis(120), || async { true }).await);
        assert_eq!(eventually("a value", || async { Some(7) }).await, 7);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the impossible")]
    async fn eventually_names_what_it_waited_for() {
        tokio::time::pause();
        eventually("the impossible", || async { None::<()> }).await;
    }
}
