//! Throughput of the findings service against baselines measured in the
//! same run, on the real servers: `cargo bench -p closeout-findings`.
//!
//! * gRPC reads: GetFinding (a PostgreSQL lookup) against the health check
//!   (the same transport with no database), both with 16 calls in flight.
//! * Imports: ImportReport end to end (parse, one transaction of ~60 rows
//!   and ~60 outbox events, relay to JetStream) against parsing alone, and
//!   against the same import's SQL run directly (the service's own import
//!   code on reports parsed beforehand, on a scratch findings database: no
//!   gRPC, relay or parse), one at a time. `IMPORT_BENCH_RUNS` runs
//!   (default 3) alternate the two; min / median / max are printed, and
//!   the ratio of the medians.

use closeout_findings::{FindingsConfig, start};
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::{self as pb};
use closeout_service::config::{CommonConfig, LogFormat};
use closeout_testkit::{TestBus, TestDatabase, inspectorate};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");
const CALLS: usize = 4000;
const IN_FLIGHT: usize = 16;
const IMPORTS: usize = 40;

async fn calls_per_second<F, Fut>(call: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..CALLS / IN_FLIGHT {
                call().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("bench task");
    }
    CALLS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let db = TestDatabase::create().await;
    let bus = TestBus::new();
    let bus_config = bus.config();
    let running = start(
        FindingsConfig {
            common: CommonConfig {
                database_url: db.url().to_string(),
                nats_url: bus_config.nats_url.clone(),
                grpc_addr: Some("127.0.0.1:0".parse().expect("addr")),
                stream_name: bus_config.stream_name.clone(),
                subject_prefix: bus_config.subject_prefix.clone(),
                database_max_connections: 20,
                log_format: LogFormat::Text,
                auth: closeout_service::config::AuthConfig::trusting(vec![
                    closeout_testkit::token_public_key().to_path_buf(),
                ]),
                tls: Default::default(),
                reflection_addr: None,
            },
            metrics_http_addr: "127.0.0.1:0".parse().expect("addr"),
            max_report_bytes: 5 * 1024 * 1024,
        },
        std::future::pending(),
    )
    .await
    .expect("findings starts");
    let channel: Channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
    let mut client = FindingsServiceClient::new(channel.clone());

    // Imports, against parsing alone.
    let parse_started = Instant::now();
    for _ in 0..IMPORTS {
        std::hint::black_box(closeout_report::parse(SAMPLE).expect("parses"));
    }
    let parse_ms = parse_started.elapsed().as_secs_f64() * 1000.0 / IMPORTS as f64;
    let runs: usize = std::env::var("IMPORT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let scratch = TestDatabase::create().await;
    closeout_findings::MIGRATOR
        .run(scratch.pool())
        .await
        .expect("scratch migrations");
    closeout_bus::outbox::install_schema(scratch.pool())
        .await
        .expect("scratch outbox");
    let mut import_rates = Vec::new();
    let mut direct_rates = Vec::new();
    let mut import_ms = 0.0;
    let mut finding_id = String::new();
    for run in 0..runs {
        let documents: Vec<String> = (0..IMPORTS)
            .map(|i| SAMPLE.replace("Hertfordshire", &format!("Benchshire{run}x{i}")))
            .collect();
        let import_started = Instant::now();
        for text in documents {
            let reply = client
                .import_report(inspectorate(pb::ImportReportRequest {
                    text,
                    source_name: "bench".into(),
                    replace: false,
                    ..Default::default()
                }))
                .await
                .expect("import")
                .into_inner();
            assert_eq!(reply.finding_count, 7);
            assert!(
                reply.created,
                "a fresh organisation's report makes an inspection"
            );
            if finding_id.is_empty() {
                finding_id = client
                    .list_findings(inspectorate(pb::ListFindingsRequest {
                        inspection_id: reply.inspection_id.clone(),
                        page_size: 1,
                        ..Default::default()
                    }))
                    .await
                    .expect("list")
                    .into_inner()
                    .findings[0]
                    .id
                    .clone();
            }
        }
        let elapsed = import_started.elapsed().as_secs_f64();
        import_ms = elapsed * 1000.0 / IMPORTS as f64;
        import_rates.push(IMPORTS as f64 / elapsed);

        let parsed: Vec<_> = (0..IMPORTS)
            .map(|i| {
                closeout_findings::parse_for_import(
                    SAMPLE.replace("Hertfordshire", &format!("Directshire{run}x{i}")),
                )
                .expect("parses")
            })
            .collect();
        let direct_started = Instant::now();
        for one in &parsed {
            let created = closeout_findings::store_parsed(scratch.pool(), one)
                .await
                .expect("stores");
            assert!(created, "a fresh organisation's report makes an inspection");
        }
        direct_rates.push(IMPORTS as f64 / direct_started.elapsed().as_secs_f64());
    }

    // Reads, against the bare transport.
    let health = HealthClient::new(channel.clone());
    let baseline = calls_per_second(move || {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest::default())
                .await
                .expect("health");
        }
    })
    .await;
    let pool = db.pool().clone();
    let lookup_id: uuid::Uuid = finding_id.parse().expect("uuid");
    let lookups = calls_per_second(move || {
        let pool = pool.clone();
        async move {
            let _: (String,) = sqlx::query_as("SELECT text FROM findings WHERE id = $1")
                .bind(lookup_id)
                .fetch_one(&pool)
                .await
                .expect("lookup");
        }
    })
    .await;
    let reads = calls_per_second(move || {
        let mut client = client.clone();
        let id = finding_id.clone();
        async move {
            client
                .get_finding(inspectorate(pb::GetFindingRequest { finding_id: id }))
                .await
                .expect("get finding");
        }
    })
    .await;

    // Wait for the relay, to report the publish backlog honestly.
    let drain_started = Instant::now();
    while closeout_bus::outbox::backlog(db.pool()).await.unwrap_or(0) > 0
        && drain_started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    println!("findings service, {IN_FLIGHT} calls in flight, {CALLS} calls each:");
    println!("  health check (baseline)   {baseline:>9.0} calls/s");
    println!(
        "  the same row, sqlx only   {lookups:>9.0} calls/s   {:.2}x the baseline",
        lookups / baseline
    );
    println!(
        "  GetFinding                {reads:>9.0} calls/s   {:.2}x the baseline",
        reads / baseline
    );
    println!("imports of the sample report, one at a time, {IMPORTS} documents:");
    println!("  parse only (baseline)     {parse_ms:>9.2} ms each");
    println!(
        "  ImportReport end to end   {import_ms:>9.2} ms each   {:.1}x the baseline ({:.1} imports/s)",
        import_ms / parse_ms,
        1000.0 / import_ms
    );
    let spread = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let (i_min, i_median, i_max) = spread(&mut import_rates);
    let (d_min, d_median, d_max) = spread(&mut direct_rates);
    println!(
        "  ImportReport, {runs} runs   min {i_min:.0}  median {i_median:.0}  max {i_max:.0} imports/s"
    );
    println!(
        "  the same SQL directly     min {d_min:.0}  median {d_median:.0}  max {d_max:.0} imports/s"
    );
    println!("  ratio of the medians      {:.2}", i_median / d_median);
    println!(
        "  outbox drained to JetStream {:.2} s after the last import",
        drain_started.elapsed().as_secs_f64()
    );

    running.stop().await.expect("stops");
    bus.cleanup().await;
    db.drop_database().await;
    scratch.drop_database().await;
}
