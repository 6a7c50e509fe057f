//! The service host end to end, with a stand-in gRPC service: every call
//! needs a bearer token (health stays open), reflection (v1 and v1alpha)
//! answers only on its own address and lists exactly what the server
//! serves, health names it, Prometheus counts its calls, gRPC can be
//! served over TLS with client certificates, and it stops cleanly.

use closeout_service::config::{CommonConfig, LogFormat};
use closeout_service::{Host, ServiceSpec};
use closeout_testkit::{TestBus, TestDatabase};
use futures::StreamExt;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

const SPEC: ServiceSpec = ServiceSpec::new("host-test", 0, 0, &NO_MIGRATIONS);

/// Answers every call UNIMPLEMENTED, under the metrics service's name.
#[derive(Clone)]
struct StandIn;

impl tonic::server::NamedService for StandIn {
    const NAME: &'static str = "closeout.v1.MetricsService";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for StandIn {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        std::future::ready(Ok(tonic::Status::unimplemented("stand-in").into_http()))
    }
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// Calls the stand-in (as GetScorecard) with `token`, if any; its status.
async fn stand_in_call(channel: Channel, token: Option<&str>) -> tonic::Status {
    let mut client = closeout_proto::metrics_service_client::MetricsServiceClient::new(channel);
    let message = closeout_proto::GetScorecardRequest::default();
    let request = match token {
        Some(token) => closeout_testkit::with_token(token, message),
        None => tonic::Request::new(message),
    };
    client
        .get_scorecard(request)
        .await
        .expect_err("the stand-in answers UNIMPLEMENTED")
}

async fn listed_v1(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .next()
        .await
        .expect("one response")
        .expect("not an error");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            names
        }
        other => panic!("not a list: {other:?}"),
    }
}

async fn listed_v1alpha(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .next()
        .await
        .expect("one response")
        .expect("not an error");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            names
        }
        other => panic!("not a list: {other:?}"),
    }
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("read");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_lists_only_what_it_serves() {
    let db = TestDatabase::create().await;
    let test_bus = TestBus::new();
    let bus = test_bus.config();
    let common = CommonConfig {
        database_url: db.url().to_string(),
        nats_url: bus.nats_url,
        grpc_addr: Some("127.0.0.1:0".parse().expect("address")),
        stream_name: bus.stream_name,
        subject_prefix: bus.subject_prefix,
        database_max_connections: 2,
        log_format: LogFormat::Text,
        auth: closeout_service::config::AuthConfig::trusting(vec![
            closeout_testkit::token_public_key().to_path_buf(),
        ]),
        tls: Default::default(),
        reflection_addr: Some("127.0.0.1:0".parse().expect("address")),
    };
    let mut host = Host::connect(&SPEC, &common, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("connects");
    host.serve(StandIn);
    let running = host.start(std::future::pending()).await.expect("starts");

    let expected = [
        "closeout.v1.MetricsService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    let reflection = running.reflection_addr.expect("reflection is on");
    assert_ne!(reflection, running.addr);
    assert_eq!(listed_v1(channel(reflection).await).await, expected);
    assert_eq!(listed_v1alpha(channel(reflection).await).await, expected);

    // The API address does not answer reflection, and every call there
    // needs a valid bearer token.
    let mut on_api =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            channel(running.addr).await,
        );
    let refused = on_api
        .server_reflection_info(futures::stream::iter(Vec::<
            tonic_reflection::pb::v1::ServerReflectionRequest,
        >::new()))
        .await
        .expect_err("no reflection on the API address");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let status = stand_in_call(channel(running.addr).await, None).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let status = stand_in_call(channel(running.addr).await, Some("not.a.jwt")).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let token = closeout_testkit::Caller::viewer().token();
    let status = stand_in_call(channel(running.addr).await, Some(&token)).await;
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");

    // The served service has a health status of its own, SERVING once
    // PostgreSQL and NATS answer.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(channel(running.addr).await);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "closeout.v1.MetricsService".into(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or_default();
        if status == tonic_health::ServingStatus::Serving as i32 {
            break;
        }
        assert!(Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Prometheus counts the API's calls by method and code, refused ones
    // included.
    let text = scrape(running.metrics_http_addr).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains(
            "closeout_rpc_requests_total{method=\"/closeout.v1.MetricsService/GetScorecard\",code=\"UNAUTHENTICATED\"} 2\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "closeout_rpc_requests_total{method=\"/closeout.v1.MetricsService/GetScorecard\",code=\"UNIMPLEMENTED\"} 1\n"
        ),
        "{text}"
    );

    running.stop().await.expect("stops cleanly");
    db.drop_database().await;
    test_bus.cleanup().await;
}
