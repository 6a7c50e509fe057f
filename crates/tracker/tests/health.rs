//! Health: SERVING only while PostgreSQL and NATS both answer. NATS is a
//! private server of this test, so it can be stopped.

mod support;

use closeout_testkit::{PrivateNats, TestBus, TestDatabase};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn wait_for(addr: std::net::SocketAddr, wanted: ServingStatus) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let health = HealthClient::new(channel);
    closeout_testkit::eventually(&format!("health {wanted:?}"), || {
        let mut health = health.clone();
        async move {
            let status = health
                .check(HealthCheckRequest {
                    service: closeout_tracker::SERVICE_NAME.into(),
                })
                .await
                .map(|r| r.into_inner().status)
                .unwrap_or_default();
            (status == wanted as i32).then_some(())
        }
    })
    .await
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
