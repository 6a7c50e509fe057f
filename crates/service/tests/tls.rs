//! gRPC over TLS (rustls) with client certificates, from configuration: a
//! CA, a server and a client certificate are generated (rcgen); a client
//! with the client certificate completes the handshake and is then asked
//! for its bearer token like any other; a client without one is refused
//! at the handshake. Also: the NATS and PostgreSQL options reach their
//! client builders (a credentials file that is not there, a PostgreSQL
//! root certificate that did not sign the server's, both stop start-up).
//! And NATS authentication against private nats-servers that require it:
//! an nkey (nkey users) and a user credentials file (operator mode, the
//! JWTs made here), each let in; none, or a key the server does not know,
//! kept out.

use closeout_service::config::{AuthConfig, CommonConfig, LogFormat, TlsConfig};
use closeout_service::{Host, ServiceSpec, StartError};
use closeout_testkit::{TestBus, TestDatabase, TestPki};
use std::convert::Infallible;
use std::task::{Context, Poll};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
const SPEC: ServiceSpec = ServiceSpec::new("tls-test", 0, 0, &NO_MIGRATIONS);

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

fn common(db: &TestDatabase, bus: &TestBus) -> CommonConfig {
    let bus = bus.config();
    CommonConfig {
        database_url: db.url().to_string(),
        nats_url: bus.nats_url,
        grpc_addr: Some("127.0.0.1:0".parse().expect("address")),
        stream_name: bus.stream_name,
        subject_prefix: bus.subject_prefix,
        database_max_connections: 2,
        log_format: LogFormat::Text,
        auth: AuthConfig::trusting(vec![closeout_testkit::token_public_key().to_path_buf()]),
        tls: TlsConfig::default(),
        reflection_addr: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_is_served_over_tls_with_client_certificates() {
    let db = TestDatabase::create().await;
    let bus = TestBus::new();
    let pki = TestPki::generate();
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let mut config = common(&db, &bus);
    config.tls.grpc_tls_cert = Some(write("server.pem", &pki.server_cert));
    config.tls.grpc_tls_key = Some(write("server.key", &pki.server_key));
    config.tls.grpc_tls_client_ca = Some(write("ca.pem", &pki.ca));
    let mut host = Host::connect(&SPEC, &config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("connects");
    host.serve(StandIn);
    let running = host.start(std::future::pending()).await.expect("starts");
    let port = running.addr.port();

    let endpoint = |with_client_cert: bool| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&pki.ca))
            .domain_name("localhost");
        if with_client_cert {
            tls = tls.identity(Identity::from_pem(&pki.client_cert, &pki.client_key));
        }
        Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
            .expect("endpoint")
            .tls_config(tls)
            .expect("client TLS")
    };

    // With a client certificate: the handshake completes; the call is
    // then judged by its token.
    let channel = endpoint(true).connect().await.expect("TLS handshake");
    let mut client = closeout_proto::metrics_service_client::MetricsServiceClient::new(channel);
    let anonymous = client
        .get_scorecard(closeout_proto::GetScorecardRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let with_token = client
        .get_scorecard(closeout_testkit::inspectorate(
            closeout_proto::GetScorecardRequest::default(),
        ))
        .await
        .expect_err("the stand-in answers UNIMPLEMENTED");
    assert_eq!(with_token.code(), tonic::Code::Unimplemented);

    // Without one: refused before any call is made.
    let refused = match endpoint(false).connect().await {
        Err(_) => true,
        Ok(channel) => closeout_proto::metrics_service_client::MetricsServiceClient::new(channel)
            .get_scorecard(closeout_testkit::inspectorate(
                closeout_proto::GetScorecardRequest::default(),
            ))
            .await
            // A call that got through would reach the stand-in and answer
            // UNIMPLEMENTED; the refused handshake surfaces as whatever
            // transport error the client sees first (it varies with timing
            // under TLS 1.3, where the client finishes before the server
            // checks its certificate).
            .is_err_and(|s| s.code() != tonic::Code::Unimplemented),
    };
    assert!(refused, "a client without a certificate got through");

    // Plain text to a TLS port does not get an answer either.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect()
        .await;
    if let Ok(channel) = plain {
        let status = closeout_proto::metrics_service_client::MetricsServiceClient::new(channel)
            .get_scorecard(closeout_testkit::inspectorate(
                closeout_proto::GetScorecardRequest::default(),
            ))
            .await
            .expect_err("plain text is not served");
        assert_ne!(status.code(), tonic::Code::Unimplemented);
    }

    running.stop().await.expect("stops cleanly");
    db.drop_database().await;
    bus.cleanup().await;
}

#[tokio::test]
async fn nats_and_postgres_security_options_reach_their_clients() {
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        common: CommonConfig,
    }
    // The flags parse into the shared configuration…
    let flags = Flags::parse_from([
        "test",
        "--database-url",
        "postgres://root@127.0.0.1:5432/postgres",
        "--auth-public-key",
        "a.pem,b.json",
        "--nats-credentials",
        "/nonexistent/closeout.creds",
        "--nats-tls-ca",
        "/etc/nats/ca.pem",
        "--database-ssl-mode",
        "require",
    ]);
    let config = flags.common;
    assert_eq!(config.auth.public_keys.len(), 2);
    let security = closeout_service::tls::nats_security(&config.tls).expect("NATS options");
    assert!(security.require_tls);
    assert_eq!(
        security.root_certificates.as_deref(),
        Some(std::path::Path::new("/etc/nats/ca.pem"))
    );
    let options = closeout_service::tls::database_options(&config).expect("database options");
    assert!(format!("{options:?}").contains("Require"), "{options:?}");
    assert!(
        closeout_service::tls::database_options(&CommonConfig {
            tls: TlsConfig {
                database_ssl_mode: Some("sometimes".into()),
                ..TlsConfig::default()
            },
            ..config.clone()
        })
        .is_err()
    );

    // …and reach the clients: a credentials file that is not there stops
    // the NATS client; sslmode=require stops PostgreSQL, which here
    // speaks no TLS.
    let db = TestDatabase::create().await;
    let bus = TestBus::new();
    let mut nats = common(&db, &bus);
    nats.tls.nats_credentials = Some("/nonexistent/closeout.creds".into());
    let error = Host::connect(&SPEC, &nats, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect_err("no credentials file");
    assert!(matches!(&error, StartError::Bus(_)), "{error}");
    assert!(error.to_string().contains("closeout.creds"), "{error}");
    // PostgreSQL over TLS, checked against a root certificate that did not
    // sign the server's: refused at the handshake (sslmode=require alone
    // connects, as the local server has TLS on).
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root.pem");
    std::fs::write(&root, TestPki::generate().ca).expect("write");
    let mut postgres = common(&db, &bus);
    postgres.tls.database_ssl_mode = Some("verify-ca".into());
    postgres.tls.database_ssl_root_cert = Some(root);
    let error = Host::connect(&SPEC, &postgres, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect_err("the server's certificate is not from this root");
    assert!(matches!(&error, StartError::Database(_)), "{error}");
    let mut keyless = common(&db, &bus);
    keyless.auth = AuthConfig::default();
    let error = Host::connect(&SPEC, &keyless, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect_err("no token keys");
    assert!(error.to_string().contains("no token keys"), "{error}");
    db.drop_database().await;
    bus.cleanup().await;
}

/// A nats-server of this test's own with `config` (JetStream and the port
/// added); killed on drop.
struct AuthNats {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl AuthNats {
    fn start(config: &str) -> AuthNats {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = closeout_testkit::free_port();
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "port: {port}\njetstream {{ store_dir: {:?} }}\n{config}",
                dir.path().join("js")
            ),
        )
        .expect("write");
        let log = dir.path().join("nats.log");
        let mut child = std::process::Command::new(
            closeout_testkit::nats_server_binary().expect("nats-server (NATS_SERVER_BIN)"),
        )
        .args(["-c", conf.to_str().expect("UTF-8")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("starting nats-server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            assert!(
                !exited && std::time::Instant::now() < deadline,
                "nats-server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        AuthNats {
            child,
            port,
            _dir: dir,
        }
    }

    /// Connects as a service would with `tls` (its NATS options) and
    /// ensures the stream: Ok only if the server let it in.
    async fn service_connects(&self, tls: &TlsConfig) -> Result<(), String> {
        let security = closeout_service::tls::nats_security(tls)?;
        let bus = closeout_bus::Bus::connect(closeout_bus::BusConfig {
            nats_url: format!("nats://127.0.0.1:{}", self.port),
            startup_timeout: std::time::Duration::from_secs(3),
            request_timeout: std::time::Duration::from_secs(2),
            security,
            ..closeout_bus::BusConfig::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        bus.ensure_stream().await.map_err(|e| e.to_string())
    }
}

impl Drop for AuthNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seed_file(dir: &std::path::Path, name: &str, key: &nkeys::KeyPair) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", key.seed().expect("seed"))).expect("write");
    path
}

#[tokio::test]
async fn nats_nkey_lets_a_service_in_and_nothing_else() {
    let user = nkeys::KeyPair::new_user();
    let server = AuthNats::start(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let with = |path: Option<std::path::PathBuf>| TlsConfig {
        nats_nkey: path,
        ..TlsConfig::default()
    };
    server
        .service_connects(&with(Some(seed_file(dir.path(), "user.nk", &user))))
        .await
        .expect("the known nkey gets in");
    let stranger = nkeys::KeyPair::new_user();
    server
        .service_connects(&with(Some(seed_file(dir.path(), "other.nk", &stranger))))
        .await
        .expect_err("an unknown nkey is kept out");
    server
        .service_connects(&with(None))
        .await
        .expect_err("no nkey: kept out");
    // A file that holds a public key, not a seed, stops start-up with a
    // message naming it.
    let public = dir.path().join("public.nk");
    std::fs::write(&public, user.public_key()).expect("write");
    let error = server
        .service_connects(&with(Some(public)))
        .await
        .expect_err("not a seed");
    assert!(error.contains("public.nk"), "{error}");

    // The whole start-up path of a service, with the nkey from its flags.
    let db = TestDatabase::create().await;
    let bus = TestBus::with_url(format!("nats://127.0.0.1:{}", server.port));
    let mut config = common(&db, &bus);
    config.tls.nats_nkey = Some(seed_file(dir.path(), "user.nk", &user));
    let host = Host::connect(&SPEC, &config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("the service starts with its nkey");
    drop(host);
    db.drop_database().await;
}

/// A NATS JWT (`ed25519-nkey`) with `claims`, issued and signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{subject}{now}"),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let claims = b64.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let signature = issuer.sign(signed.as_bytes()).expect("sign");
    format!("{signed}.{}", b64.encode(signature))
}

#[tokio::test]
async fn nats_credentials_file_lets_a_service_in() {
    // Operator mode: an operator, an account with JetStream, a user.
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "test-account",
        serde_json::json!({"limits": unlimited, "type": "account", "version": 2}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "test-user",
        serde_json::json!({
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2,
        }),
    );
    // JetStream in operator mode wants a system account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"type": "account", "version": 2}),
    );
    let server = AuthNats::start(&format!(
        "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{ {account}: {account_jwt}, {sys}: {system_jwt} }}\n",
        account = account.public_key(),
        sys = system.public_key(),
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let creds = |name: &str, jwt: &str, seed: &nkeys::KeyPair| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                seed.seed().expect("seed")
            ),
        )
        .expect("write");
        path
    };
    let with = |path| TlsConfig {
        nats_credentials: Some(path),
        ..TlsConfig::default()
    };
    server
        .service_connects(&with(creds("user.creds", &user_jwt, &user)))
        .await
        .expect("the account's user gets in");
    // The same JWT with another key's seed cannot sign the server's nonce.
    let thief = nkeys::KeyPair::new_user();
    server
        .service_connects(&with(creds("stolen.creds", &user_jwt, &thief)))
        .await
        .expect_err("a JWT without its seed is kept out");
    server
        .service_connects(&TlsConfig::default())
        .await
        .expect_err("no credentials: kept out");
}
