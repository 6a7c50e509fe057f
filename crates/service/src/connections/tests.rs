//! The request path's connections against a scratch database: a
//! completed call's connection is reused as it is, an abandoned or failed
//! one is pinged (its transaction rolled back, its reply flushed) or
//! closed before reuse, and no more than the bound exist at once.

use super::*;
use closeout_testkit::TestDatabase;
use futures::FutureExt;
use std::str::FromStr;

async fn connections(db: &TestDatabase, max: usize) -> Connections {
    let options = PgConnectOptions::from_str(db.url()).expect("url");
    Connections::with_options(options, max)
}

async fn backend(lease: &mut Lease) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(lease.connection())
        .await
        .expect("pid")
}

#[tokio::test]
async fn a_completed_call_returns_its_connection_as_it_is() {
    let db = TestDatabase::create().await;
    let connections = connections(&db, 2).await;
    let mut lease = connections.acquire().await.expect("acquire");
    let first = backend(&mut lease).await;
    lease.done();
    assert_eq!(connections.idle(), 1, "back at once, no ping pending");
    let mut lease = connections.acquire().await.expect("acquire");
    assert_eq!(backend(&mut lease).await, first);
    lease.settle(&Ok::<(), sqlx::Error>(()));
    assert_eq!(connections.idle(), 1);
    drop(connections);
    db.drop_database().await;
}

#[tokio::test]
async fn no_more_connections_than_the_bound() {
    let db = TestDatabase::create().await;
    let connections = connections(&db, 2).await;
    let mut a = connections.acquire().await.expect("a");
    let mut b = connections.acquire().await.expect("b");
    let (pa, pb) = (backend(&mut a).await, backend(&mut b).await);
    assert_ne!(pa, pb);
    // A third call waits for one of the two.
    let mut third = Box::pin(connections.acquire());
    assert!((&mut third).now_or_never().is_none(), "a third connection");
    a.done();
    let mut c = third.await.expect("c");
    assert_eq!(backend(&mut c).await, pa, "the one handed back");
    c.done();
    b.done();
    let opened: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND pid = ANY($1)",
    )
    .bind(vec![pa, pb])
    .fetch_one(db.pool())
    .await
    .expect("count");
    assert_eq!(opened, 2);
    drop(connections);
    db.drop_database().await;
}

#[tokio::test]
async fn an_abandoned_transaction_is_rolled_back_before_reuse() {
    let db = TestDatabase::create().await;
    sqlx::query("CREATE TABLE marks (n int)")
        .execute(db.pool())
        .await
        .expect("table");
    // One connection, so the next call gets the abandoned one.
    let connections = connections(&db, 1).await;
    let mut lease = connections.acquire().await.expect("acquire");
    let pid = backend(&mut lease).await;
    {
        let mut tx = lease.connection().begin().await.expect("begin");
        sqlx::query("INSERT INTO marks VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        // Dropped uncommitted: sqlx only queues the ROLLBACK.
    }
    drop(lease);
    let mut lease = connections.acquire().await.expect("acquire");
    assert_eq!(backend(&mut lease).await, pid, "pinged and kept");
    let in_transaction: bool = sqlx::query_scalar(
        "SELECT state = 'idle in transaction' FROM pg_stat_activity WHERE pid = $1",
    )
    .bind(pid)
    .fetch_one(db.pool())
    .await
    .expect("state");
    assert!(!in_transaction);
    let marks: i64 = sqlx::query_scalar("SELECT count(*) FROM marks")
        .fetch_one(lease.connection())
        .await
        .expect("count");
    assert_eq!(marks, 0, "rolled back");
    lease.done();
    drop(connections);
    db.drop_database().await;
}

#[tokio::test]
async fn a_cancelled_call_is_flushed_before_reuse() {
    let db = TestDatabase::create().await;
    let connections = connections(&db, 1).await;
    let mut lease = connections.acquire().await.expect("acquire");
    let pid = backend(&mut lease).await;
    {
        // The call is dropped with its reply still to come.
        let mut call = Box::pin(
            sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(0.2)")
                .fetch_one(lease.connection()),
        );
        assert!((&mut call).now_or_never().is_none());
    }
    drop(lease);
    let mut lease = connections.acquire().await.expect("acquire");
    assert_eq!(backend(&mut lease).await, pid, "the same connection");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(lease.connection())
        .await
        .expect("a fresh reply, not the old one");
    assert_eq!(one, 1);
    lease.done();
    drop(connections);
    db.drop_database().await;
}

#[tokio::test]
async fn a_failed_call_on_a_dead_connection_is_replaced() {
    let db = TestDatabase::create().await;
    let connections = connections(&db, 1).await;
    let mut lease = connections.acquire().await.expect("acquire");
    let pid = backend(&mut lease).await;
    let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(db.pool())
        .await
        .expect("terminate");
    let outcome = sqlx::query("SELECT 1").execute(lease.connection()).await;
    assert!(outcome.is_err());
    lease.settle(&outcome);
    let mut lease = connections.acquire().await.expect("acquire");
    assert_ne!(
        backend(&mut lease).await,
        pid,
        "closed, and a new one opened"
    );
    lease.done();
    assert_eq!(connections.idle(), 1);
    drop(connections);
    db.drop_database().await;
}
