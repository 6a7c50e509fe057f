//! A NATS cluster of a test's own: several `nats-server -js` processes on
//! free loopback ports, joined by cluster routes, each with its store in
//! one temporary directory. A node can be killed (SIGKILL) and started
//! again on the same ports and store; everything is killed and removed on
//! drop. For fault tests of replicated streams.

use crate::nats::nats_server_binary;
use crate::{free_port, unique_suffix};
use closeout_bus::BusConfig;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::process::{Child, Command};

struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    child: Option<Child>,
}

/// A private NATS cluster with JetStream on every node.
pub struct PrivateNatsCluster {
    // Declared before `dir`: the processes die before their stores go.
    nodes: Vec<Node>,
    cluster_name: String,
    binary: PathBuf,
    dir: TempDir,
}

impl PrivateNatsCluster {
    /// Starts `size` nodes and waits until every one accepts connections
    /// (JetStream may still be electing its leaders: see
    /// [`PrivateNatsCluster::create_stream`]).
    pub async fn start(size: usize) -> PrivateNatsCluster {
        assert!(size >= 1, "a cluster has at least one node");
        let binary = nats_server_binary().expect("nats-server not found (set NATS_SERVER_BIN)");
        let dir = tempfile::Builder::new()
            .prefix("closeout-nats-cluster-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a temporary directory: {e}"));
        let suffix = unique_suffix();
        let nodes = (0..size)
            .map(|i| Node {
                name: format!("n{i}-{}", &suffix[..8]),
                port: free_port(),
                cluster_port: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = PrivateNatsCluster {
            nodes,
            cluster_name: format!("closeout-{}", &suffix[..8]),
            binary,
            dir,
        };
        for i in 0..size {
            cluster.launch(i);
        }
        for i in 0..size {
            cluster.wait_accepting(i).await;
        }
        cluster
    }

    /// Number of nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// `nats://127.0.0.1:<port>` of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every node's URL, comma-separated: a `CLOSEOUT_NATS_URL` (and
    /// `BusConfig::nats_url`) that can connect while any one node is down.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server name of node `i` (as JetStream reports leaders).
    pub fn server_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The node whose server name is `name`.
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// True while node `i`'s process runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i]
            .child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills node `i` with SIGKILL (a crash) and waits for it.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts node `i` again (same ports and store) and waits until it
    /// accepts connections.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i).await;
        self.launch(i);
        self.wait_accepting(i).await;
    }

    /// Creates the stream `config` names, capturing its subjects, with
    /// `replicas` copies (as `closeout_bus::Bus::ensure_stream` would, but
    /// replicated; services that find it keep its replicas). Retries while
    /// the cluster elects its leaders.
    pub async fn create_stream(&self, config: &BusConfig, replicas: usize) {
        let js = self.jetstream(0).await;
        let stream = async_nats::jetstream::stream::Config {
            name: config.stream_name.clone(),
            subjects: vec![config.stream_subjects()],
            storage: async_nats::jetstream::stream::StorageType::File,
            retention: async_nats::jetstream::stream::RetentionPolicy::Limits,
            discard: async_nats::jetstream::stream::DiscardPolicy::Old,
            duplicate_window: config.duplicate_window,
            num_replicas: replicas,
            ..Default::default()
        };
        let mut last = String::new();
        for _ in 0..120 {
            match js.get_or_create_stream(stream.clone()).await {
                Ok(_) => return,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "creating stream {} with {replicas} replicas: {last}",
            config.stream_name
        );
    }

    /// The node leading stream `name` now, asked through node `via`.
    pub async fn stream_leader(&self, via: usize, name: &str) -> Option<usize> {
        let js = self.jetstream(via).await;
        let mut stream = js.get_stream(name).await.ok()?;
        let info = stream.info().await.ok()?;
        let leader = info.cluster.as_ref()?.leader.as_deref()?;
        self.node_named(leader)
    }

    /// A plain JetStream context through node `i`.
    pub async fn jetstream(&self, i: usize) -> async_nats::jetstream::Context {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(self.url(i))
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url(i)));
        async_nats::jetstream::new(client)
    }

    fn launch(&mut self, i: usize) {
        let routes = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let node = &self.nodes[i];
        let store = self.dir.path().join(&node.name);
        let log = self.dir.path().join(format!("{}.log", node.name));
        let child = Command::new(&self.binary)
            .arg("-js")
            .arg("-sd")
            .arg(&store)
            .args(["--server_name", &node.name])
            .args(["-a", "127.0.0.1", "-p", &node.port.to_string()])
            .args(["--cluster_name", &self.cluster_name])
            .arg("--cluster")
            .arg(format!("nats://127.0.0.1:{}", node.cluster_port))
            .args(["--routes", &routes])
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.nodes[i].child = Some(child);
    }

    async fn wait_accepting(&mut self, i: usize) {
        let port = self.nodes[i].port;
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            if !self.is_running(i) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log = self.dir.path().join(format!("{}.log", self.nodes[i].name));
        panic!(
            "nats-server node {i} on port {port} did not start; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Drop for PrivateNatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.start_kill();
                for _ in 0..100 {
                    if !matches!(child.try_wait(), Ok(None)) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}
