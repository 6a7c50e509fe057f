//! Keeps `deploy/docker-compose.yml` honest without a Docker engine: reads
//! the compose file as `docker-compose config` resolves it, then starts the
//! real binaries with exactly the command and environment it gives each
//! service — two replicas of tracker and metrics included — with host names
//! mapped to loopback, a private PostgreSQL initialised by the compose
//! file's own init script, and a private NATS. It checks health with the
//! compose health-check command, imports the sample and reads the scorecard
//! and items through the second replicas. If the compose file and the
//! binaries drift apart (a renamed variable, a wrong command, a missing
//! health check), this test fails.
//!
//! TLS as compose turns it on: the `certs` service's own command writes the
//! development material, NATS runs with the compose file's `nats.conf`
//! (TLS block and nkey authorization included), PostgreSQL with the compose
//! file's TLS settings and pg_hba.conf, the services serve gRPC over TLS,
//! reach NATS over TLS with their own nkeys and PostgreSQL over TLS with
//! sslmode verify-full, and every client call (health checks included)
//! trusts the CA. A NATS connection without an nkey, a service's nkey
//! publishing another service's events, and a PostgreSQL connection
//! without TLS are refused. The `ha` profile's node configurations are
//! checked by nats-server as they are and started as a cluster on
//! loopback (routes over TLS with the route password), where the same
//! nkeys get in and no nkey does not.
//!
//! What differs from a container, and why: each replica gets its own free
//! ports for CLOSEOUT_GRPC_ADDR and CLOSEOUT_METRICS_HTTP_ADDR, because on
//! one host they would collide where containers each have their own
//! network namespace; `/etc` becomes a temporary directory (so the NATS
//! configuration's relative include finds the `certs` volume's file as in
//! the container); the host name `postgres` becomes 127.0.0.1 (also in the
//! server certificate); the PostgreSQL key copy the compose entrypoint
//! makes, the testkit makes.

use closeout_testkit::{PrivatePostgres, ServerSettings, free_port, nats_server_binary};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn resolved_compose() -> Value {
    let output = Command::new("docker-compose")
        .args(["-f", "deploy/docker-compose.yml", "config"])
        .current_dir(workspace_root())
        .output()
        .expect("docker-compose runs (Debian package docker-compose; .ci/run installs it)");
    assert!(
        output.status.success(),
        "docker-compose config failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_yaml::from_slice(&output.stdout).expect("resolved compose file is YAML")
}

fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/compose-… → target/<profile>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf();
    let needed = [
        "closeout-findings",
        "closeout-tracker",
        "closeout-metrics",
        "closeout-notify",
        "closeout",
    ];
    if needed.iter().any(|b| !dir.join(b).exists()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--bins",
                "-p",
                "closeout-findings",
                "-p",
                "closeout-tracker",
            ])
            .args(["-p", "closeout-metrics", "-p", "closeout-notify"])
            .args(["-p", "closeout-cli"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    dir
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.as_str()?.to_string(), value))
            })
            .collect(),
        other => panic!("environment must be a mapping, got {other:?}"),
    }
}

/// A running replica and what the test mapped for it.
struct Replica {
    name: String,
    child: Child,
    grpc_port: u16,
    health: Vec<String>,
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("address has a port")
}

fn start_replica(
    name: &str,
    service: &Value,
    bin: &Path,
    postgres: &PrivatePostgres,
    nats_url: &str,
) -> Replica {
    let command = strings(&service["command"]);
    assert!(!command.is_empty(), "{name}: compose gives no command");
    let mut env = environment(service);
    let grpc_port = free_port();
    let mut compose_grpc_port = 0;
    for (key, value) in env.iter_mut() {
        *value = value
            .replace("@postgres:5432", &format!("@127.0.0.1:{}", postgres.port()))
            .replace("nats://nats:4222", nats_url)
            .replace("/etc/closeout/dev", DEV_KEYS)
            .replace(CERTS_IN_COMPOSE, &certs_dir().display().to_string());
        if key == "CLOSEOUT_GRPC_ADDR" {
            compose_grpc_port = port_of(value);
            *value = format!("127.0.0.1:{grpc_port}");
        }
        if key == "CLOSEOUT_METRICS_HTTP_ADDR" {
            *value = format!("127.0.0.1:{}", free_port());
        }
    }
    assert!(
        env.contains_key("CLOSEOUT_DATABASE_URL"),
        "{name}: no database URL"
    );
    assert!(compose_grpc_port > 0, "{name}: no CLOSEOUT_GRPC_ADDR");
    // The health check as compose runs it, pointed at this replica's port.
    let health: Vec<String> = strings(&service["healthcheck"]["test"])
        .into_iter()
        .skip_while(|w| w == "CMD" || w == "CMD-SHELL")
        .map(|w| w.replace(&format!(":{compose_grpc_port}"), &format!(":{grpc_port}")))
        .collect();
    assert_eq!(
        health.first().map(String::as_str),
        Some("closeout"),
        "{name}: health check"
    );
    let child = Command::new(bin.join(&command[0]))
        .args(&command[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: starting {}: {e}", command[0]));
    Replica {
        name: name.to_string(),
        child,
        grpc_port,
        health,
    }
}

/// Where compose mounts the `certs` volume.
const CERTS_IN_COMPOSE: &str = "/etc/closeout/certs";

/// This test run's stand-in for the containers' `/etc`.
fn etc_dir() -> PathBuf {
    std::env::temp_dir().join(format!("closeout-compose-{}/etc", std::process::id()))
}

/// This test run's stand-in for the `certs` volume.
fn certs_dir() -> PathBuf {
    etc_dir().join("closeout/certs")
}

/// Runs the compose `certs` service's command, writing into
/// [`certs_dir`].
fn generate_certs(bin: &Path, compose: &Value) {
    let command = strings(&compose["services"]["certs"]["command"]);
    assert_eq!(
        command.first().map(String::as_str),
        Some("closeout"),
        "certs: the development material comes from the CLI: {command:?}"
    );
    assert!(
        command.iter().any(|w| w == CERTS_IN_COMPOSE),
        "certs writes to {CERTS_IN_COMPOSE}: {command:?}"
    );
    let dir = certs_dir().display().to_string();
    let args: Vec<String> = command[1..]
        .iter()
        .map(|w| w.replace(CERTS_IN_COMPOSE, &dir))
        .collect();
    let out = Command::new(bin.join("closeout"))
        .args(&args)
        .output()
        .expect("closeout dev-certs runs");
    assert!(
        out.status.success(),
        "certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// nats-server with the compose file's configuration: its ports, store
/// and certificate paths mapped to this run's.
struct ComposeNats {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl ComposeNats {
    fn start(compose: &Value) -> ComposeNats {
        let volumes = strings(&compose["services"]["nats"]["volumes"]);
        let conf = volumes
            .iter()
            .find_map(|v| {
                let (source, target) = v.split_once(':')?;
                target
                    .starts_with("/etc/nats/nats.conf")
                    .then(|| source.to_string())
            })
            .expect("nats mounts its configuration");
        let port = free_port();
        let store = std::env::temp_dir().join(format!("closeout-compose-nats-{}", port));
        let text = std::fs::read_to_string(&conf)
            .unwrap_or_else(|e| panic!("reading {conf}: {e}"))
            .replace("port: 4222", &format!("port: {port}"))
            .replace("http_port: 8222", &format!("http_port: {}", free_port()))
            .replace("/data/jetstream", &store.display().to_string())
            .replace(CERTS_IN_COMPOSE, &certs_dir().display().to_string());
        assert!(text.contains("tls {"), "compose's NATS serves TLS");
        assert!(
            text.contains("include \"../closeout/certs/nats-auth.conf\""),
            "compose's NATS takes its authorization from the certs volume"
        );
        // nats-server before 2.10 (Debian's 2.9) does not know
        // `sync_interval`; it changes durability, not the protocol.
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("sync_interval"))
            .map(|l| format!("{l}\n"))
            .collect();
        // Where compose mounts it, relative to the certs volume.
        let run_conf = etc_dir().join("nats/nats.conf");
        std::fs::create_dir_all(etc_dir().join("nats")).expect("NATS configuration directory");
        std::fs::write(&run_conf, text).expect("writing the NATS configuration");
        let child = Command::new(nats_server_binary().expect("nats-server (NATS_SERVER_BIN)"))
            .args(["-c", run_conf.to_str().expect("UTF-8 path")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        wait_until("nats-server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        ComposeNats { child, port, store }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for ComposeNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Where compose mounts `deploy/dev` (the development-only token keys).
const DEV_KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/dev");

/// A token minted with the development key, by the CLI as an operator
/// would.
fn dev_token(bin: &Path) -> String {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN
        .get_or_init(|| {
            let out = Command::new(bin.join("closeout"))
                .args([
                    "token",
                    "mint",
                    "--key",
                    &format!("{DEV_KEYS}/dev-token-key.pem"),
                    "--role",
                    "inspectorate",
                    "--sub",
                    "compose-test",
                ])
                .output()
                .expect("closeout token mint runs");
            assert!(
                out.status.success(),
                "token mint: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .clone()
}

fn closeout(bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin.join("closeout"))
        .args(args)
        .env("CLOSEOUT_TOKEN", dev_token(bin))
        .env("CLOSEOUT_TLS_CA", certs_dir().join("ca.pem"))
        .env_remove("CLOSEOUT_ROLE")
        .output()
        .expect("closeout runs")
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The source of the volume mounted at `target` in `service`.
fn mount_source(service: &Value, target: &str) -> Option<String> {
    strings(&service["volumes"]).iter().find_map(|v| {
        let (source, rest) = v.split_once(':')?;
        (rest.split(':').next() == Some(target)).then(|| source.to_string())
    })
}

/// A private PostgreSQL with the compose service's server settings (its
/// command's `-c` options): certificate paths mapped to this run's, the
/// pg_hba.conf it mounts, and the key the entrypoint copies for the
/// postgres user.
fn start_compose_postgres(compose: &Value) -> PrivatePostgres {
    let service = &compose["services"]["postgres"];
    let command = strings(&service["command"]);
    assert_eq!(command.first().map(String::as_str), Some("postgres"));
    let entrypoint = strings(&service["entrypoint"]).join(" ");
    let mut settings = ServerSettings::default();
    let mut rest = command[1..].iter();
    while let Some(flag) = rest.next() {
        assert_eq!(flag, "-c", "postgres command: {command:?}");
        let setting = rest.next().expect("-c takes a setting");
        let (name, value) = setting.split_once('=').expect("name=value");
        match name {
            "ssl_key_file" => {
                // The entrypoint copies the volume's key there first.
                let copy = format!("{CERTS_IN_COMPOSE}/server.key {value}");
                assert!(
                    entrypoint.contains(&format!("install -o postgres -g postgres -m 600 {copy}")),
                    "the entrypoint copies the key to {value}: {entrypoint}"
                );
                settings.ssl_key_file = Some(certs_dir().join("server.key"));
            }
            _ => {
                let value = match mount_source(service, value) {
                    Some(source) => source,
                    None => value.replace(CERTS_IN_COMPOSE, &certs_dir().display().to_string()),
                };
                settings.settings.push((name.to_string(), value));
            }
        }
    }
    assert!(
        settings
            .settings
            .iter()
            .any(|(n, v)| n == "ssl" && v == "on"),
        "compose's PostgreSQL serves TLS: {command:?}"
    );
    assert!(
        settings.settings.iter().any(|(n, _)| n == "hba_file"),
        "compose's PostgreSQL has its own pg_hba.conf: {command:?}"
    );
    PrivatePostgres::start_with(settings)
}

async fn run_init_script(postgres: &PrivatePostgres, compose: &Value) {
    use sqlx::Connection;
    let volumes = strings(&compose["services"]["postgres"]["volumes"]);
    let init = volumes
        .iter()
        .find_map(|v| {
            let (source, target) = v.split_once(':')?;
            target
                .starts_with("/docker-entrypoint-initdb.d/")
                .then(|| source.to_string())
        })
        .expect("postgres mounts an init script");
    // `docker-compose config` resolves the mount source to an absolute path.
    let script = std::fs::read_to_string(&init)
        .unwrap_or_else(|e| panic!("reading the init script {init}: {e}"));
    // As the image's entrypoint runs it: over the Unix socket.
    let mut admin = sqlx::PgConnection::connect(&postgres.socket_url("postgres"))
        .await
        .expect("private PostgreSQL");
    for statement in script
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        sqlx::query(statement)
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("init script: {statement}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compose_file_runs_the_real_binaries() {
    // The test's own NATS and PostgreSQL clients use TLS; in a workspace
    // build rustls has two providers enabled and cannot pick one itself.
    closeout_service::tls::install_crypto_provider();
    let compose = resolved_compose();
    let services = &compose["services"];
    for name in ["findings", "tracker", "metrics", "notify"] {
        let service = &services[name];
        assert!(service.is_mapping(), "compose has a {name} service");
        assert_eq!(
            service["depends_on"]["certs"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name} waits for the development TLS material"
        );
        for (key, file) in [
            ("CLOSEOUT_GRPC_TLS_CERT", "server.pem"),
            ("CLOSEOUT_GRPC_TLS_KEY", "server.key"),
            ("CLOSEOUT_NATS_TLS_CA", "ca.pem"),
            ("CLOSEOUT_NATS_NKEY", &format!("{name}.nk")),
            ("CLOSEOUT_DATABASE_SSL_ROOT_CERT", "ca.pem"),
        ] {
            assert_eq!(
                environment(service).get(key).map(String::as_str),
                Some(format!("{CERTS_IN_COMPOSE}/{file}").as_str()),
                "{name}: {key}"
            );
        }
        assert_eq!(
            environment(service)
                .get("CLOSEOUT_DATABASE_SSL_MODE")
                .map(String::as_str),
            Some("verify-full"),
            "{name}: PostgreSQL's certificate and host name are checked"
        );
        for dependency in ["postgres", "nats"] {
            assert_eq!(
                service["depends_on"][dependency]["condition"].as_str(),
                Some("service_healthy"),
                "{name} waits for a healthy {dependency}"
            );
        }
        assert!(
            service["restart"].is_string(),
            "{name} has a restart policy"
        );
    }
    // Scaled services must not pin a host port.
    for name in ["tracker", "metrics"] {
        if let Value::Sequence(ports) = &services[name]["ports"] {
            for port in ports {
                assert!(
                    port.get("published").is_none(),
                    "{name} pins host port {port:?}: it could not be scaled"
                );
            }
        }
    }

    let bin = binaries_dir();
    generate_certs(&bin, &compose);
    let postgres = start_compose_postgres(&compose);
    run_init_script(&postgres, &compose).await;
    postgres_refuses_without_tls(&postgres).await;
    check_ha_configurations(&compose).await;
    let nats = ComposeNats::start(&compose);
    nats_refuses_without_an_nkey(&nats.url()).await;
    let mut replicas = Vec::new();
    // Notify too: its nkey's permissions (its own events, tracker's
    // consumed) must be enough for it to start and stay healthy.
    for name in [
        "findings", "tracker", "tracker", "metrics", "metrics", "notify",
    ] {
        replicas.push(start_replica(
            name,
            &services[name],
            &bin,
            &postgres,
            &nats.url(),
        ));
    }
    for replica in &mut replicas {
        let health = replica.health.clone();
        let name = replica.name.clone();
        wait_until(&format!("{name} to be healthy"), || {
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("{name} exited: {status}");
            }
            let args: Vec<&str> = health[1..].iter().map(String::as_str).collect();
            closeout(&bin, &args).status.success()
        });
    }

    let findings = format!("https://127.0.0.1:{}", replicas[0].grpc_port);
    let second_tracker = format!("https://127.0.0.1:{}", replicas[2].grpc_port);
    let second_metrics = format!("https://127.0.0.1:{}", replicas[4].grpc_port);
    // Plain HTTP/2 to a TLS port gets no answer.
    let plain = Command::new(bin.join("closeout"))
        .args([
            "health",
            "--addr",
            &format!("http://127.0.0.1:{}", replicas[0].grpc_port),
        ])
        .env_remove("CLOSEOUT_TLS_CA")
        .output()
        .expect("closeout runs");
    assert!(!plain.status.success(), "findings answered plain HTTP/2");
    let sample = workspace_root().join("tests/fixtures/peel-2018-19-hertfordshire.txt");
    let imported = closeout(
        &bin,
        &["import", sample.to_str().unwrap(), "--addr", &findings],
    );
    assert!(
        imported.status.success(),
        "import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );

    wait_until("seven items through the second tracker replica", || {
        let out = closeout(
            &bin,
            &[
                "items",
                "--org",
                "hertfordshire",
                "--json",
                "--addr",
                &second_tracker,
            ],
        );
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["items"].as_array().map(|a| a.len() == 7))
                .unwrap_or(false)
    });
    wait_until("the scorecard through the second metrics replica", || {
        let out = closeout(
            &bin,
            &[
                "scorecard",
                "hertfordshire",
                "--json",
                "--addr",
                &second_metrics,
            ],
        );
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .map(|v| {
                    let card = if v.get("scorecard").is_some() {
                        &v["scorecard"]
                    } else {
                        &v
                    };
                    card["totalItems"] == 7
                })
                .unwrap_or(false)
    });

    for replica in &mut replicas {
        let _ = Command::new("kill")
            .args(["-TERM", &replica.child.id().to_string()])
            .status();
    }
    for replica in &mut replicas {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match replica.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "{} stopped badly: {status}", replica.name);
                    break;
                }
                _ if Instant::now() > deadline => {
                    let _ = replica.child.kill();
                    panic!("{} did not stop on SIGTERM", replica.name);
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    drop(nats);
    drop(postgres);
    let _ = std::fs::remove_dir_all(etc_dir().parent().expect("run directory"));
}

/// The service users get in over TLS only: the same user, password and
/// database without TLS find no pg_hba.conf entry, and so does the
/// superuser over TLS (no password, not a service user).
async fn postgres_refuses_without_tls(postgres: &PrivatePostgres) {
    use sqlx::ConnectOptions;
    use sqlx::postgres::{PgConnectOptions, PgSslMode};
    use std::str::FromStr;
    let findings = |mode| {
        PgConnectOptions::from_str(&format!(
            "postgres://findings:findings@127.0.0.1:{}/findings",
            postgres.port()
        ))
        .expect("URL")
        .ssl_mode(mode)
        .ssl_root_cert(certs_dir().join("ca.pem"))
    };
    findings(PgSslMode::VerifyFull)
        .connect()
        .await
        .expect("findings over TLS, server certificate checked");
    let plain = findings(PgSslMode::Disable)
        .connect()
        .await
        .expect_err("findings without TLS");
    assert!(plain.to_string().contains("pg_hba.conf"), "{plain}");
    let superuser = PgConnectOptions::from_str(&postgres.url("postgres"))
        .expect("URL")
        .ssl_mode(PgSslMode::Require)
        .connect()
        .await
        .expect_err("the superuser over the network");
    assert!(superuser.to_string().contains("pg_hba.conf"), "{superuser}");
}

/// A client with the services' TLS settings but no nkey is refused; with
/// the operators' nkey it gets in; a service's nkey may not publish
/// another service's events (the server drops them: no acknowledgement).
async fn nats_refuses_without_an_nkey(nats_url: &str) {
    use closeout_bus::{Bus, BusConfig, NatsSecurity};
    let config = |nkey: Option<&str>| BusConfig {
        nats_url: nats_url.to_string(),
        // Short where refusal is expected; a fresh cluster may take a
        // while to elect its JetStream leader.
        startup_timeout: Duration::from_secs(if nkey.is_some() { 60 } else { 3 }),
        request_timeout: Duration::from_secs(2),
        security: NatsSecurity {
            nkey_seed: nkey.map(|name| {
                std::fs::read_to_string(certs_dir().join(format!("{name}.nk")))
                    .expect("nkey seed")
                    .trim()
                    .to_string()
            }),
            require_tls: true,
            root_certificates: Some(certs_dir().join("ca.pem")),
            ..NatsSecurity::default()
        },
        ..BusConfig::default()
    };
    let anonymous = Bus::connect(config(None)).await.expect("client starts");
    anonymous
        .ensure_stream()
        .await
        .expect_err("no nkey: no connection");
    assert!(!anonymous.is_healthy());
    let admin = Bus::connect(config(Some("admin"))).await.expect("admin");
    admin
        .ensure_stream()
        .await
        .expect("the operators' nkey gets in");
    let metrics = Bus::connect(config(Some("metrics")))
        .await
        .expect("metrics");
    metrics
        .ensure_stream()
        .await
        .expect("metrics' nkey gets in");
    let forged = metrics
        .jetstream()
        .publish("closeout.findings.v1.finding.recorded.forged", "x".into())
        .await
        .expect("sent");
    assert!(
        forged.await.is_err(),
        "metrics' nkey published a findings event"
    );
}

/// The `ha` profile's three node configurations: valid for nats-server as
/// they are (with this run's paths), and, with the node names mapped to
/// loopback ports, a cluster whose routes connect over TLS with the route
/// password from the certs volume, which takes the same nkeys.
async fn check_ha_configurations(compose: &Value) {
    let nats = nats_server_binary().expect("nats-server (NATS_SERVER_BIN)");
    let root = etc_dir().parent().expect("run directory").join("ha");
    let cluster_conf =
        std::fs::read_to_string(certs_dir().join("nats-cluster.conf")).expect("nats-cluster.conf");
    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let monitor_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut local_cluster = cluster_conf.clone();
    for (i, port) in route_ports.iter().enumerate() {
        local_cluster = local_cluster.replace(
            &format!("@nats-{}:6222", i + 1),
            &format!("@127.0.0.1:{port}"),
        );
    }
    assert!(!local_cluster.contains("nats-1"), "{cluster_conf}");
    let mut nodes = Vec::new();
    for (i, name) in ["nats-1", "nats-2", "nats-3"].into_iter().enumerate() {
        let service = &compose["services"][name];
        assert_eq!(service["profiles"][0].as_str(), Some("ha"), "{name}");
        let source = mount_source(service, "/etc/nats/nats.conf").expect("node configuration");
        let text = std::fs::read_to_string(&source).expect("node configuration");
        assert!(
            text.contains("verify: true") && text.contains("route.pem"),
            "{name}: routes over mutual TLS"
        );
        let text: String = text
            .replace(CERTS_IN_COMPOSE, &certs_dir().display().to_string())
            .replace(
                "/data/jetstream",
                &root.join(name).join("js").display().to_string(),
            )
            .replace("port: 4222", &format!("port: {}", client_ports[i]))
            .replace(
                "http_port: 8222",
                &format!("http_port: {}", monitor_ports[i]),
            )
            .replace("port: 6222", &format!("port: {}", route_ports[i]))
            .lines()
            .filter(|l| !l.trim_start().starts_with("sync_interval"))
            .map(|l| format!("{l}\n"))
            .collect();
        // As mounted: /etc/nats/nats.conf beside the certs volume.
        let conf = etc_dir().join("nats").join(format!("{name}.conf"));
        std::fs::create_dir_all(etc_dir().join("nats")).expect("directory");
        std::fs::write(&conf, &text).expect("node configuration");
        let checked = Command::new(&nats)
            .args(["-t", "-c", conf.to_str().expect("UTF-8")])
            .output()
            .expect("nats-server -t");
        assert!(
            checked.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
        // Started: the routes point at loopback (same directory depth, so
        // the relative include works the same way).
        let local_dir = root.join(name).join("etc/closeout/certs");
        std::fs::create_dir_all(&local_dir).expect("directory");
        std::fs::write(local_dir.join("nats-cluster.conf"), &local_cluster).expect("routes");
        std::fs::create_dir_all(root.join(name).join("etc/nats")).expect("directory");
        let auth = std::fs::read(certs_dir().join("nats-auth.conf")).expect("auth");
        std::fs::write(local_dir.join("nats-auth.conf"), auth).expect("auth");
        let local_conf = root.join(name).join("etc/nats/nats.conf");
        std::fs::write(&local_conf, &text).expect("node configuration");
        let child = Command::new(&nats)
            .args(["-c", local_conf.to_str().expect("UTF-8")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting a cluster node");
        nodes.push(KillOnDrop(child));
    }
    for port in &monitor_ports {
        wait_until("every node to have its two routes", || {
            http_get(*port, "/routez")
                .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
                .is_some_and(|v| v["num_routes"] == 2)
        });
    }
    nats_refuses_without_an_nkey(&format!("nats://127.0.0.1:{}", client_ports[0])).await;
    drop(nodes);
    let _ = std::fs::remove_dir_all(&root);
}

/// The body of a plain HTTP/1.0 GET to 127.0.0.1 (nats-server's
/// monitoring port).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
