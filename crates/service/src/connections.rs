//! Database connections for a service's request path (the tracker's
//! GetItem, ListItems and commands; metrics' live answers), handed back
//! without a round trip.
//!
//! sqlx's pool answers every returned connection with a ping (a Sync and
//! its ReadyForQuery, in a spawned task) before another caller may take
//! it; it is there to flush what an abandoned call left behind (a dropped
//! transaction's queued ROLLBACK, a half-read reply). For a one-statement
//! read that is a second round trip beside its query, PostgreSQL's time as
//! much as the service's; and while the ping is out the connection is
//! neither idle nor leased, so a burst of calls opens new ones (metrics'
//! pool grew over its first ~100 calls with 8–28 ms waits). Here a
//! connection whose call ended normally (the caller says so with
//! [`Lease::done`] or [`Lease::settle`]) goes straight back; only one
//! whose call failed or was cancelled gets the ping (and is closed if
//! that fails), so an abandoned transaction is rolled back before the
//! connection idles. A connection idle for a while is pinged before use,
//! as the shared pool does ([`crate::backbone`]), and one that fails is
//! replaced.
//!
//! The set is bounded like the service's pool (`CLOSEOUT_DATABASE_MAX_
//! CONNECTIONS`, the same figure) and opens connections only as calls need
//! them; background work (consumers, relay, WatchItems) and transactions
//! that must see the pool's settings keep the pool.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection idle this long is pinged before it is used.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);
/// How long a call waits for a connection, like the pool's acquire timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The request path's connections; cheap to clone.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

struct Inner {
    options: PgConnectOptions,
    /// One permit per connection that may exist, idle or leased.
    permits: Arc<Semaphore>,
    /// Idle connections, the most recently used last.
    idle: Mutex<Vec<(PgConnection, Instant)>>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("available", &self.inner.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// At most as many connections as `pool` may hold, to its database
    /// with its options.
    pub fn beside(pool: &PgPool) -> Connections {
        let max = pool.options().get_max_connections().max(1) as usize;
        Connections::with_options((*pool.connect_options()).clone(), max)
    }

    /// At most `max` connections (at least one) with `options`.
    pub fn with_options(options: PgConnectOptions, max: usize) -> Connections {
        let max = max.max(1);
        Connections {
            inner: Arc::new(Inner {
                options,
                permits: Arc::new(Semaphore::new(max)),
                idle: Mutex::new(Vec::with_capacity(max)),
            }),
        }
    }

    /// How many idle connections are kept now.
    pub fn idle(&self) -> usize {
        self.inner.lock().len()
    }

    /// A connection for one call: an idle one (pinged first if it idled
    /// long), or a new one. Waits at most [`ACQUIRE_TIMEOUT`] for one to
    /// become free.
    pub async fn acquire(&self) -> Result<Lease, sqlx::Error> {
        let permit =
            tokio::time::timeout(ACQUIRE_TIMEOUT, self.inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let idle = self.inner.lock().pop();
            let Some((mut connection, since)) = idle else {
                break;
            };
            if since.elapsed() < PING_AFTER_IDLE || connection.ping().await.is_ok() {
                return Ok(self.lease(connection, permit));
            }
            // Dead (the database restarted?): drop it and try the next.
        }
        let connection = self.inner.options.connect().await?;
        Ok(self.lease(connection, permit))
    }

    fn lease(&self, connection: PgConnection, permit: OwnedSemaphorePermit) -> Lease {
        Lease {
            connection: Some(connection),
            done: false,
            permit: Some(permit),
            inner: self.inner.clone(),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PgConnection, Instant)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An error a call answered with, as [`Lease::settle`] sees it.
pub trait Failure {
    /// Whether it came from the database (or its connection), after which
    /// a reply may be half read; false for answers given after the
    /// statement completed (NOT_FOUND, a refused command).
    fn by_database(&self) -> bool;
}

impl Failure for sqlx::Error {
    fn by_database(&self) -> bool {
        // Even a decoding error may come with rows left unread.
        true
    }
}

/// One call's connection. Call [`Lease::done`] when the call's statements
/// (and its transaction, if any) have all completed; a lease dropped
/// without it is treated as abandoned mid-call.
pub struct Lease {
    connection: Option<PgConnection>,
    done: bool,
    /// Released after the connection is back (or gone).
    permit: Option<OwnedSemaphorePermit>,
    inner: Arc<Inner>,
}

impl Lease {
    /// The connection.
    pub fn connection(&mut self) -> &mut PgConnection {
        // Some until dropped.
        self.connection
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// The call completed: nothing is pending on the connection and no
    /// transaction is open, so it may be reused as it is.
    pub fn done(mut self) {
        self.done = true;
    }

    /// [`Lease::done`] unless `outcome` is a database failure.
    pub fn settle<T, E: Failure>(self, outcome: &Result<T, E>) {
        match outcome {
            Err(e) if e.by_database() => {}
            _ => self.done(),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        if self.done {
            self.inner.lock().push((connection, Instant::now()));
            return;
        }
        // Abandoned: the ping flushes a queued ROLLBACK and what is left of
        // a reply; the permit is held until then, so the set stays bounded.
        let inner = self.inner.clone();
        let permit = self.permit.take();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if connection.ping().await.is_ok() {
                inner.lock().push((connection, Instant::now()));
            } else {
                let _ = connection.close_hard().await;
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests;
