//! gRPC over TLS end to end, with the development material compose uses:
//! `closeout dev-certs` writes it, the findings service serves with it,
//! and the `closeout` binary calls over TLS trusting the CA. Checked: the
//! CLI is answered with the CA (also with a `--tls-domain` the certificate
//! names, the CA taken from the credentials file, and no CA at all when
//! the system's roots include it via `SSL_CERT_FILE`); it is refused
//! trusting another CA, with no CA and the system's usual roots, naming a domain the certificate does not carry, or
//! speaking plain HTTP/2; with a client CA configured, a call without a
//! client certificate is refused and one with it is answered. The test
//! prints its counts.

use closeout_testkit::{Caller, TestBus, TestDatabase};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `closeout` binary next to this test's target directory (built when
/// missing).
fn closeout_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("closeout");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--bin", "closeout", "-p", "closeout-cli"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    bin
}

/// Runs `closeout args…` with nothing from this environment that would
/// choose TLS settings or an identity for it.
fn closeout(args: &[&str]) -> Output {
    closeout_with(args, &[])
}

/// [`closeout`] with `env` set as well.
fn closeout_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(closeout_binary());
    command.args(args);
    for var in [
        "CLOSEOUT_TLS_CA",
        "CLOSEOUT_TLS_CERT",
        "CLOSEOUT_TLS_KEY",
        "CLOSEOUT_TLS_DOMAIN",
        "CLOSEOUT_TOKEN",
        "CLOSEOUT_AS_ROLE",
        "CLOSEOUT_CREDENTIALS",
        "CLOSEOUT_FINDINGS_ADDR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("closeout runs")
}

fn dev_certs(dir: &Path) {
    let out = closeout(&["dev-certs", "--out", dir.to_str().expect("UTF-8 path")]);
    assert!(
        out.status.success(),
        "dev-certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// What one CLI call came to.
struct Call<'a> {
    what: &'a str,
    output: Output,
}

impl Call<'_> {
    fn answered(&self) -> bool {
        self.output.status.success()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_calls_over_tls_with_the_development_material() {
    let material = std::env::temp_dir().join(format!("closeout-tls-{}", std::process::id()));
    let certs = material.join("certs");
    let stranger = material.join("other-ca");
    dev_certs(&certs);
    dev_certs(&stranger);
    let file = |name: &str| certs.join(name);

    let db = TestDatabase::create().await;
    let bus = TestBus::new();
    let start = |client_ca: Option<PathBuf>| {
        let mut common = support::common(&db, &bus);
        common.tls.grpc_tls_cert = Some(file("server.pem"));
        common.tls.grpc_tls_key = Some(file("server.key"));
        common.tls.grpc_tls_client_ca = client_ca;
        closeout_findings::start(
            closeout_findings::FindingsConfig {
                common,
                metrics_http_addr: "127.0.0.1:0".parse().expect("address"),
                max_report_bytes: 1024 * 1024,
            },
            std::future::pending(),
        )
    };
    let server = start(None).await.expect("findings serves TLS");
    let mutual = start(Some(file("ca.pem")))
        .await
        .expect("findings serves TLS with client certificates");
    let token = Caller::inspectorate().token();
    let tls_addr = format!("https://127.0.0.1:{}", server.addr.port());
    let localhost_addr = format!("https://localhost:{}", server.addr.port());
    let mutual_addr = format!("https://127.0.0.1:{}", mutual.addr.port());
    let ca = file("ca.pem");
    let credentials = material.join("credentials.toml");
    std::fs::write(
        &credentials,
        format!(
            "tls_ca = {:?}\n[tokens]\ninspectorate = {token:?}\n",
            path(&ca)
        ),
    )
    .expect("credentials file");

    let list = |addr: &str, extra: &[&str]| {
        let mut args = vec!["inspections", "--json", "--addr", addr, "--token", &token];
        args.extend_from_slice(extra);
        closeout(&args)
    };
    let answered = [
        Call {
            what: "health with the CA",
            output: closeout(&["health", "--addr", &tls_addr, "--tls-ca", path(&ca)]),
        },
        Call {
            what: "a listing with the CA",
            output: list(&tls_addr, &["--tls-ca", path(&ca)]),
        },
        Call {
            what: "a bare host:port with the CA",
            output: list(
                &format!("127.0.0.1:{}", server.addr.port()),
                &["--tls-ca", path(&ca)],
            ),
        },
        Call {
            what: "--tls-domain a name the certificate carries",
            output: list(
                &tls_addr,
                &["--tls-ca", path(&ca), "--tls-domain", "tracker"],
            ),
        },
        Call {
            what: "the CA from the credentials file",
            output: closeout(&[
                "inspections",
                "--json",
                "--addr",
                &localhost_addr,
                "--credentials",
                path(&credentials),
            ]),
        },
        Call {
            // With no CA the system's roots are trusted; rustls-native-certs
            // reads them from SSL_CERT_FILE when set.
            what: "no CA, the dev CA among the system's roots",
            output: closeout_with(
                &[
                    "inspections",
                    "--json",
                    "--addr",
                    &tls_addr,
                    "--token",
                    &token,
                ],
                &[("SSL_CERT_FILE", path(&ca))],
            ),
        },
        Call {
            what: "client certificate where one is required",
            output: list(
                &mutual_addr,
                &[
                    "--tls-ca",
                    path(&ca),
                    "--tls-cert",
                    path(&file("client.pem")),
                    "--tls-key",
                    path(&file("client.key")),
                ],
            ),
        },
    ];
    let refused = [
        Call {
            what: "trusting another CA",
            output: list(&tls_addr, &["--tls-ca", path(&stranger.join("ca.pem"))]),
        },
        Call {
            what: "https:// without a CA",
            output: list(&tls_addr, &[]),
        },
        Call {
            what: "plain HTTP/2 to the TLS port",
            output: list(&format!("http://127.0.0.1:{}", server.addr.port()), &[]),
        },
        Call {
            what: "--tls-domain a name the certificate lacks",
            output: list(
                &tls_addr,
                &["--tls-ca", path(&ca), "--tls-domain", "elsewhere.example"],
            ),
        },
        Call {
            what: "no client certificate where one is required",
            output: list(&mutual_addr, &["--tls-ca", path(&ca)]),
        },
        Call {
            what: "another CA's client certificate where one is required",
            output: list(
                &mutual_addr,
                &[
                    "--tls-ca",
                    path(&ca),
                    "--tls-cert",
                    path(&stranger.join("client.pem")),
                    "--tls-key",
                    path(&stranger.join("client.key")),
                ],
            ),
        },
    ];
    for call in &answered {
        assert!(call.answered(), "{}: {}", call.what, call.stderr());
    }
    for call in &refused {
        assert!(!call.answered(), "{}: answered", call.what);
        let stderr = call.stderr();
        assert!(
            stderr.starts_with("closeout: "),
            "{}: {:?} {stderr}",
            call.what,
            call.output.status
        );
        // Refused at the transport, not by the service: no status from it.
        assert!(
            !stderr.contains("Unauthenticated") && !stderr.contains("PermissionDenied"),
            "{}: {stderr}",
            call.what
        );
        println!("tls: refused, {}: {}", call.what, stderr.trim());
    }
    let listed = &answered[1].output.stdout;
    let json: serde_json::Value = serde_json::from_slice(listed).expect("JSON listing");
    assert!(json.is_object() || json.is_array(), "listing: {json}");
    println!(
        "tls: {} calls answered over TLS, {} refused ({})",
        answered.len(),
        refused.len(),
        refused
            .iter()
            .map(|c| c.what)
            .collect::<Vec<_>>()
            .join("; ")
    );

    server.stop().await.expect("findings stops");
    mutual.stop().await.expect("findings stops");
    bus.cleanup().await;
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(&material);
}
