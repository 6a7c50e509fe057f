//! A fresh PostgreSQL database per test on the shared server.

use crate::{block_on_thread, is_stale_suffix, unique_suffix};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Environment variable with the URL of the shared server (any database).
pub const DATABASE_URL_ENV: &str = "CLOSEOUT_TEST_DATABASE_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const NAME_PREFIX: &str = "closeout_test_";

static SWEPT: AtomicBool = AtomicBool::new(false);

/// A database `closeout_test_<uuid>` that exists for one test. Dropped by
/// [`TestDatabase::drop_database`] or, failing that, when the value is
/// dropped (also when the test panics).
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: PgPool,
    dropped: bool,
}

impl TestDatabase {
    /// Creates the database and a pool (up to 10 connections) to it.
    pub async fn create() -> TestDatabase {
        let admin_url = std::env::var(DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_URL.into());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL at {admin_url}: {e}"));
        if !SWEPT.swap(true, Ordering::SeqCst) {
            sweep_stale(&mut admin).await;
        }
        let name = format!("{NAME_PREFIX}{}", unique_suffix());
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        TestDatabase {
            name,
            url,
            admin_url,
            pool,
            dropped: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// URL of this database, e.g. for a service under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool and drops the database, ending any other
    /// connections to it (`WITH (FORCE)`).
    pub async fn drop_database(mut self) {
        self.pool.close().await;
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        block_on_thread(async move { drop_database(&admin_url, &name).await });
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let result = async {
        let mut admin = PgConnection::connect(admin_url).await?;
        sqlx::query(&statement).execute(&mut admin).await?;
        admin.close().await
    };
    match tokio::time::timeout(Duration::from_secs(30), result).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("closeout-testkit: dropping database {name}: {e}"),
        Err(_) => eprintln!("closeout-testkit: dropping database {name} timed out"),
    }
}

/// A pool (up to 10 connections) to a database kept by an earlier run (a
/// bench's `CLOSEOUT_BENCH_KEEP=1`), on the same server as
/// [`TestDatabase::create`]'s: read again without rebuilding it.
pub async fn connect_kept(name: &str) -> PgPool {
    let admin_url = std::env::var(DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_URL.into());
    let url = with_database(&admin_url, name);
    PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Drops leftover test databases of killed runs. Without FORCE: one still
/// in use is left alone.
async fn sweep_stale(admin: &mut PgConnection) {
    let names: Vec<String> = match sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'closeout\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    {
        Ok(names) => names,
        Err(_) => return,
    };
    for name in names {
        let stale = name.strip_prefix(NAME_PREFIX).is_some_and(is_stale_suffix);
        if stale {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// `url` with its database (path) replaced by `database`, keeping any query.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
    }
}
