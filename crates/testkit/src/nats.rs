//! NATS for tests: a private stream and prefix on the shared server
//! ([`TestBus`]), or a private server ([`PrivateNats`]).

use crate::{block_on_thread, free_port, is_stale_suffix, unique_suffix};
use closeout_bus::{Bus, BusConfig};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Environment variable with the URL of the shared NATS server.
pub const NATS_URL_ENV: &str = "CLOSEOUT_TEST_NATS_URL";
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// Environment variable naming the `nats-server` binary.
pub const NATS_SERVER_ENV: &str = "NATS_SERVER_BIN";

static SWEPT: AtomicBool = AtomicBool::new(false);

/// A stream `T<uuid>` capturing `t<uuid>.>` for one test, on the shared
/// NATS (or any URL). Deleted by [`TestBus::cleanup`] or on drop.
pub struct TestBus {
    config: BusConfig,
    cleaned: bool,
}

impl TestBus {
    /// Unique names on the shared NATS (`CLOSEOUT_TEST_NATS_URL`, default
    /// `nats://127.0.0.1:4222`).
    pub fn new() -> TestBus {
        TestBus::with_url(std::env::var(NATS_URL_ENV).unwrap_or_else(|_| DEFAULT_NATS_URL.into()))
    }

    /// Unique names on the server at `nats_url` (e.g. a [`PrivateNats`]).
    pub fn with_url(nats_url: impl Into<String>) -> TestBus {
        let suffix = unique_suffix();
        TestBus {
            config: BusConfig {
                nats_url: nats_url.into(),
                stream_name: format!("T{suffix}"),
                subject_prefix: format!("t{suffix}"),
                request_timeout: Duration::from_secs(2),
                client_name: "closeout-test".into(),
                ..BusConfig::default()
            },
            cleaned: false,
        }
    }

    /// The bus configuration with this test's stream and prefix.
    pub fn config(&self) -> BusConfig {
        self.config.clone()
    }

    /// Connects a [`Bus`] and ensures the stream.
    pub async fn connect(&self) -> Bus {
        if !SWEPT.swap(true, Ordering::SeqCst) {
            sweep_stale(&self.config.nats_url).await;
        }
        let bus = Bus::connect(self.config())
            .await
            .unwrap_or_else(|e| panic!("connecting the test bus: {e}"));
        bus.ensure_stream()
            .await
            .unwrap_or_else(|e| panic!("creating stream {}: {e}", self.config.stream_name));
        bus
    }

    /// Deletes the stream (and with it its consumers).
    pub async fn cleanup(mut self) {
        delete_stream(&self.config.nats_url, &self.config.stream_name).await;
        self.cleaned = true;
    }
}

impl Default for TestBus {
    fn default() -> Self {
        TestBus::new()
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let url = self.config.nats_url.clone();
        let stream = self.config.stream_name.clone();
        block_on_thread(async move { delete_stream(&url, &stream).await });
    }
}

/// A plain client for cleanup: no retries, short timeouts, so a stopped
/// server does not hold a test up.
async fn cleanup_client(url: &str) -> Option<async_nats::jetstream::Context> {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(client)) => Some(async_nats::jetstream::new(client)),
        _ => None,
    }
}

async fn delete_stream(url: &str, stream: &str) {
    let Some(js) = cleanup_client(url).await else {
        return;
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), js.delete_stream(stream)).await;
}

/// Deletes streams left by killed test runs.
async fn sweep_stale(url: &str) {
    let Some(js) = cleanup_client(url).await else {
        return;
    };
    let mut names = js.stream_names();
    let mut stale = Vec::new();
    let listed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(name)) = names.next().await {
            if name.strip_prefix('T').is_some_and(is_stale_suffix) {
                stale.push(name);
            }
        }
    })
    .await;
    if listed.is_err() {
        return;
    }
    for name in stale {
        let _ = tokio::time::timeout(Duration::from_secs(5), js.delete_stream(&name)).await;
    }
}

/// The `nats-server` binary: `$NATS_SERVER_BIN`, else the first found on
/// `PATH`, in `/usr/sbin`, `/usr/bin` or `/usr/local/bin`.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// A `nats-server -js` of the test's own, on a free port of 127.0.0.1 with
/// its JetStream store in a temporary directory. It can be stopped and
/// restarted on the same port and store, so streams, consumers and
/// messages survive. Killed (and the directory removed) on drop.
pub struct PrivateNats {
    // Declared before `dir`: the process dies before its store is removed.
    child: Option<Child>,
    port: u16,
    binary: PathBuf,
    dir: TempDir,
}

impl PrivateNats {
    /// Starts the server and waits until it accepts connections.
    pub async fn start() -> PrivateNats {
        let binary = nats_server_binary()
            .unwrap_or_else(|| panic!("nats-server not found (set {NATS_SERVER_ENV})"));
        let dir = tempfile::Builder::new()
            .prefix("closeout-nats-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a temporary directory: {e}"));
        let mut nats = PrivateNats {
            child: None,
            port: free_port(),
            binary,
            dir,
        };
        nats.launch().await;
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The server's log file (kept across restarts).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Stops the server and waits for it to exit: SIGTERM first, so
    /// JetStream flushes its store like on an orderly restart, SIGKILL if it
    /// has not exited within 10 s.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = child.kill().await;
    }

    /// Kills the server with SIGKILL (a crash) and waits for it. JetStream
    /// may lose writes it had acked but not yet flushed.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops the server if it runs, then starts it again on the same port
    /// and store directory.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    async fn launch(&mut self) {
        let log = self.log_file();
        let mut command = Command::new(&self.binary);
        command
            .arg("-js")
            .arg("-sd")
            .arg(self.store_dir())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if !self.is_running() {
                panic!(
                    "nats-server on port {} exited at start-up; log:\n{}",
                    self.port,
                    read_log(&log)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "nats-server on port {} did not accept connections within 15 s; log:\n{}",
                    self.port,
                    read_log(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            // Reap it before the store directory is removed.
            for _ in 0..100 {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}
