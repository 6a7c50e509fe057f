//! Health: SERVING only while PostgreSQL and NATS both answer. NATS is a
//! private server of this test, so it can be stopped.

mod support;

use closeout_testkit::{PrivateNats, TestBus, TestDatabase};
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn wait_for(addr: std::net::SocketAddr, wanted: ServingStatus) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: closeout_tracker::SERVICE_NAME.into(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or_default();
        if status == wanted as i32 {
            return;
        }
        assert!(Instant::now() < deadline, "health never became {wanted:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_nats() {
    let mut nats = PrivateNats::start().await;
    let db = TestDatabase::create().await;
    let test_bus = TestBus::with_url(nats.url());
    let (tracker, _client) = support::start(support::config(&db, &test_bus)).await;
    wait_for(tracker.addr, ServingStatus::Serving).await;

    nats.stop().await;
    wait_for(tracker.addr, ServingStatus::NotServing).await;
    nats.restart().await;
    wait_for(tracker.addr, ServingStatus::Serving).await;

    tracker.stop().await.expect("stops");
    db.drop_database().await;
    test_bus.cleanup().await;
}
