//! Calling a service as someone, and waiting for what happens later.
//!
//! Every integration and end-to-end test calls the services as a role
//! (the caller's identity travels as `x-closeout-*` metadata) and waits for
//! eventually-consistent results (an event consumed, a read model caught
//! up). One set of helpers, one argument order: the caller first, the
//! message last.

use std::future::Future;
use std::time::Duration;

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

    /// `message` with this caller's metadata.
    ///
    /// Panics (failing the test) if a value is not valid metadata.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        let mut put = |key: &'static str, value: &str| {
            if !value.is_empty() {
                let value = value
                    .parse()
                    .unwrap_or_else(|_| panic!("{key} {value:?} is not ASCII metadata"));
                metadata.insert(key, value);
            }
        };
        put("x-closeout-role", &self.role);
        put("x-closeout-organisation", &self.organisation);
        put("x-closeout-subject", &self.subject);
        request
    }
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

    #[test]
    fn callers_carry_role_organisation_and_subject() {
        let request = inspected_body("hertfordshire", ());
        assert_eq!(
            metadata(&request, "x-closeout-role").as_deref(),
            Some("inspected-body")
        );
        assert_eq!(
            metadata(&request, "x-closeout-organisation").as_deref(),
            Some("hertfordshire")
        );
        assert_eq!(
            metadata(&request, "x-closeout-subject").as_deref(),
            Some("test:inspected-body")
        );
        let request = inspectorate(());
        assert_eq!(metadata(&request, "x-closeout-organisation"), None);
        let request = Caller::viewer().subject("reader:ann").request(());
        assert_eq!(
            metadata(&request, "x-closeout-subject").as_deref(),
            Some("reader:ann")
        );
        let request = as_role("nobody", "", ());
        assert_eq!(
            metadata(&request, "x-closeout-role").as_deref(),
            Some("nobody")
        );
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
