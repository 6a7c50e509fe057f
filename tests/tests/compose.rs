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
//! (TLS block included), the services serve gRPC over TLS and reach NATS
//! over TLS, and every client call (health checks included) trusts the CA.
//!
//! What differs from a container, and why: each replica gets its own free
//! ports for CLOSEOUT_GRPC_ADDR and CLOSEOUT_METRICS_HTTP_ADDR, because on
//! one host they would collide where containers each have their own
//! network namespace; paths under /etc/closeout/certs become a temporary
//! directory.

use closeout_testkit::{PrivatePostgres, free_port, nats_server_binary};
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
            .args(["-p", "closeout-metrics", "-p", "closeout-cli"])
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

/// This test run's stand-in for the `certs` volume.
fn certs_dir() -> PathBuf {
    std::env::temp_dir().join(format!("closeout-compose-certs-{}", std::process::id()))
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
        // nats-server before 2.10 (Debian's 2.9) does not know
        // `sync_interval`; it changes durability, not the protocol.
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("sync_interval"))
            .map(|l| format!("{l}\n"))
            .collect();
        let run_conf = certs_dir().join("nats.conf");
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
    let mut admin = sqlx::PgConnection::connect(&postgres.url("postgres"))
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
    let compose = resolved_compose();
    let services = &compose["services"];
    for name in ["findings", "tracker", "metrics"] {
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
        ] {
            assert_eq!(
                environment(service).get(key).map(String::as_str),
                Some(format!("{CERTS_IN_COMPOSE}/{file}").as_str()),
                "{name}: {key}"
            );
        }
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
    let postgres = PrivatePostgres::start();
    run_init_script(&postgres, &compose).await;
    generate_certs(&bin, &compose);
    let nats = ComposeNats::start(&compose);
    let mut replicas = Vec::new();
    for name in ["findings", "tracker", "tracker", "metrics", "metrics"] {
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
    let _ = std::fs::remove_dir_all(certs_dir());
}
