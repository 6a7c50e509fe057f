//! The testkit cleans up after itself, and a private NATS keeps its
//! JetStream data across a restart.

use closeout_testkit::{PrivateNats, TestBus, TestDatabase, wait_until};
use std::time::Duration;

async fn database_exists(name: &str) -> bool {
    let admin = sqlx::PgPool::connect(
        &std::env::var("CLOSEOUT_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )
    .await
    .expect("admin pool");
    let found: Option<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&admin)
            .await
            .expect("query");
    admin.close().await;
    found.is_some()
}

#[tokio::test]
async fn test_databases_are_fresh_and_dropped_even_without_drop_database() {
    let db = TestDatabase::create().await;
    let name = db.name().to_string();
    assert!(name.starts_with("closeout_test_"));
    assert!(db.url().ends_with(&name));
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(db.pool())
        .await
        .expect("query");
    assert_eq!(one, 1);
    assert!(database_exists(&name).await);
    db.drop_database().await;
    assert!(!database_exists(&name).await);

    // Dropping the value (as when a test panics) drops the database, even
    // with its pool's connections still open.
    let db = TestDatabase::create().await;
    let name = db.name().to_string();
    sqlx::query("CREATE TABLE t (x int)")
        .execute(db.pool())
        .await
        .expect("create");
    drop(db);
    assert!(!database_exists(&name).await);
}

async fn stream_exists(url: &str, stream: &str) -> bool {
    let client = async_nats::connect(url).await.expect("connect");
    async_nats::jetstream::new(client)
        .get_stream(stream)
        .await
        .is_ok()
}

#[tokio::test]
async fn test_buses_are_unique_and_deleted() {
    let a = TestBus::new();
    let b = TestBus::new();
    assert_ne!(a.config().stream_name, b.config().stream_name);
    assert_ne!(a.config().subject_prefix, b.config().subject_prefix);
    let url = a.config().nats_url.clone();

    let bus = a.connect().await;
    assert!(bus.is_healthy());
    let stream = a.config().stream_name;
    assert!(stream_exists(&url, &stream).await);
    a.cleanup().await;
    assert!(!stream_exists(&url, &stream).await);

    let _bus = b.connect().await;
    let stream = b.config().stream_name;
    drop(b);
    assert!(!stream_exists(&url, &stream).await);
}

#[tokio::test]
async fn private_nats_restarts_with_its_jetstream_data() {
    let mut nats = PrivateNats::start().await;
    let test_bus = TestBus::with_url(nats.url());
    let bus = test_bus.connect().await;
    let subject = bus.subject("findings.v1.finding.recorded.x");
    bus.publish(subject.clone(), Default::default(), "kept".into())
        .await
        .expect("publish");

    nats.stop().await;
    assert!(!nats.is_running());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", nats.port()))
            .await
            .is_err()
    );
    nats.restart().await;
    assert!(nats.is_running());

    // The bus reconnects by itself; the stream and its message survived.
    assert!(
        wait_until(Duration::from_secs(10), || async { bus.is_healthy() }).await,
        "bus reconnects"
    );
    let stream = bus
        .jetstream()
        .get_stream(&test_bus.config().stream_name)
        .await
        .expect("stream survived");
    let message = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .expect("message survived");
    assert_eq!(message.payload.as_ref(), b"kept");
    test_bus.cleanup().await;
}
