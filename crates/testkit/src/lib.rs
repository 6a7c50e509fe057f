//! Test support for Closeout, used as a dev-dependency by every crate that
//! talks to PostgreSQL or NATS.
//!
//! CI runs on the same machine as development, against the same shared
//! PostgreSQL (127.0.0.1:5432) and NATS (127.0.0.1:4222), possibly with
//! several test binaries at once. So every test gets its own things and
//! cleans them up, even when it fails:
//!
//! * [`TestDatabase`]: a fresh database `closeout_test_<uuid>` per test;
//! * [`TestBus`]: a private stream `T<uuid>` and subject prefix `t<uuid>`
//!   on the shared NATS;
//! * [`PrivatePostgres`]: a PostgreSQL cluster of the test's own;
//! * [`PrivateNatsCluster`]: a NATS cluster of the test's own (cluster
//!   routes on loopback), for replicated streams losing a node;
//! * [`PrivateNats`]: a `nats-server` of the test's own, on a free port,
//!   which the test may stop and restart (the shared servers are never
//!   stopped by a test).
//! * [`Caller`], [`as_role`], [`inspectorate`], [`inspected_body`]: a call
//!   as someone, with a real bearer token signed by a per-process test key
//!   that services under test trust ([`token_public_key`]); [`eventually`], [`poll`], [`wait_until`]: waiting for what
//!   happens later.
//!
//! Leftovers of killed test runs (no destructor ran) are swept: databases
//! and streams named with a UUID v7 older than [`STALE_AFTER`] are dropped
//! the first time a test creates one.
//!
//! Setup failures panic with a message: they are the test's failure.

mod calls;
mod cluster;
mod database;
mod nats;
mod pki;
mod postgres;
pub mod smtp;

pub use calls::{
    AuthChannel, Caller, DefaultCaller, EVENTUALLY, TEST_KEY_ID, TOKEN_TTL, as_role, authenticated,
    authenticated_as, connect_authenticated, eventually, inspected_body, inspectorate, poll,
    token_public_key, token_signing_key, wait_until, with_token,
};
pub use cluster::PrivateNatsCluster;
pub use database::{TestDatabase, connect_kept};
pub use nats::{PrivateNats, TestBus, nats_server_binary};
pub use pki::TestPki;
pub use postgres::{PrivatePostgres, ServerSettings};

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Age after which a database or stream named by a test is a leftover.
pub const STALE_AFTER: Duration = Duration::from_secs(2 * 3600);

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// A new unique name suffix: 32 hex digits of a UUID v7.
pub(crate) fn unique_suffix() -> String {
    Uuid::now_v7().simple().to_string()
}

/// True if `suffix` is the 32-hex-digit simple form of a UUID v7 made more
/// than [`STALE_AFTER`] ago.
pub(crate) fn is_stale_suffix(suffix: &str) -> bool {
    let Ok(id) = Uuid::try_parse(suffix) else {
        return false;
    };
    if suffix.len() != 32 || id.get_version_num() != 7 {
        return false;
    }
    let Some(ts) = id.get_timestamp() else {
        return false;
    };
    let (secs, _) = ts.to_unix();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    now.saturating_sub(secs) > STALE_AFTER.as_secs()
}

/// Runs `future` to completion on a fresh runtime in a new thread and
/// waits for it: usable from `Drop`, inside or outside a Tokio runtime.
pub(crate) fn block_on_thread<F>(future: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let thread = std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(future),
            Err(e) => eprintln!("closeout-testkit: no runtime for cleanup: {e}"),
        }
    });
    let _ = thread.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_suffixes() {
        assert!(!is_stale_suffix(&unique_suffix()));
        assert!(!is_stale_suffix("not-a-uuid"));
        assert!(!is_stale_suffix(
            &Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef)
                .simple()
                .to_string()
        ));
        let old = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_600_000_000,
            0,
        ));
        assert!(is_stale_suffix(&old.simple().to_string()));
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert!(port > 0);
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
