//! The real `topod` binary as a single-node cluster: SIGKILLed after two
//! switches and a policy change, it restarts on the same data dir with
//! topology, epoch, history and policy intact and keeps switching. It
//! refuses to start on another cluster's data dir or with a bad config,
//! saying why.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use serde_json::json;
use topod::api::types::{HistoryPage, PolicyView, TopologyInfo, TransitionStatus};
use topod::model::Topology;

/// How long the binary may take to print its `listening` line.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A config for a single-voter cluster `cluster_id` listening on port 0.
fn config_text(cluster_id: &str, data_dir: &Path) -> String {
    format!(
        r#"node_id = 1
cluster_id = "{cluster_id}"
api_addr = "127.0.0.1:0"
raft_addr = "127.0.0.1:0"
peer_addr = "127.0.0.1:0"
data_dir = "{}"
initial_voters = [{{ id = 1, api_addr = "127.0.0.1:0", raft_addr = "127.0.0.1:0", peer_addr = "127.0.0.1:0" }}]

[raft]
heartbeat_ms = 50
election_timeout_min_ms = 300
election_timeout_max_ms = 600
{}{}"#,
        data_dir.display(),
        common::tls::security_toml(cluster_id, 1, data_dir.parent().unwrap_or(data_dir)),
        common::procs::token_line(data_dir)
    )
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// Starts `topod --config CONFIG`, stderr to `stderr_path`, with no
/// `TOPOD_*` variable of the test's environment leaking in.
fn spawn(config: &Path, stderr_path: &Path) -> Child {
    let stderr = std::fs::File::create(stderr_path).expect("stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_topod"));
    cmd.arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .env("RUST_LOG", "info,openraft=warn,sled=warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("TOPOD_") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().expect("spawn topod")
}

/// A running `topod` process and its bound API address.
struct Proc {
    child: Child,
    api: SocketAddr,
}

impl Proc {
    /// Starts the binary and reads its `listening api=.. raft=..` line.
    fn start(config: &Path, stderr_path: &Path) -> Proc {
        let mut child = spawn(config, stderr_path);
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the line so the child never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(rest) = line.strip_prefix("listening api=") {
                    let api = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _receiver_gone = tx.send(api);
                }
            }
        });
        let api = match rx.recv_timeout(START_DEADLINE) {
            Ok(api) => api.parse().expect("an ip:port"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "topod printed no `listening` line; stderr:\n{}",
                    std::fs::read_to_string(stderr_path).unwrap_or_default()
                );
            }
        };
        Proc { child, api }
    }

    /// SIGKILL, then reap.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    async fn wait_ready(&self) {
        wait_for("topod is ready", DEADLINE, || async {
            let r = request(self.api, Method::GET, "/readyz", None, bytes::Bytes::new())
                .await
                .ok()?;
            (r.status == StatusCode::OK).then_some(())
        })
        .await;
    }
}

/// Runs the binary expecting it to refuse to start: its exit status and
/// stderr.
fn refused(config: &Path, stderr_path: &Path) -> (ExitStatus, String) {
    let mut child = spawn(config, stderr_path);
    let deadline = std::time::Instant::now() + START_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "topod kept running; stderr:\n{}",
                std::fs::read_to_string(stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(stderr_path).expect("stderr");
    (status, stderr)
}

/// Topology, full history and policy as the API shows them, once the last
/// committed transition has its health report (nothing more to write).
async fn observed(api: SocketAddr) -> (TopologyInfo, HistoryPage, PolicyView) {
    wait_for("the node settles", DEADLINE, || async {
        let info: TopologyInfo = get(api, "/v1/topology").await.json();
        let history: HistoryPage = get(api, "/v1/topology/history").await.json();
        let policy: PolicyView = get(api, "/v1/policy").await.json();
        let healthy = history
            .transitions
            .iter()
            .find(|t| t.id == info.current_instance)
            .is_none_or(|t| t.health.contains_key(&1));
        (info.in_flight.is_none() && healthy).then_some((info, history, policy))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_node_restarts_with_its_topology_history_and_policy() {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "node.toml",
        &config_text("crash", &dir.path().join("data")),
    );
    let stderr = dir.path().join("stderr-1.log");

    let p = Proc::start(&config, &stderr);
    p.wait_ready().await;
    let a = switch_and_wait(p.api, "hyparview", "a").await;
    let b = switch_and_wait(p.api, "client_server", "b").await;
    assert_eq!(
        (a.status, b.status),
        (TransitionStatus::Committed, TransitionStatus::Committed)
    );
    let r = send_json(
        p.api,
        Method::PUT,
        "/v1/policy",
        &json!({"cooldown_ms": 4321, "auto_switch": true, "history_retention": 50}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.value());
    let (info, history, policy) = observed(p.api).await;
    assert_eq!((info.topology, info.epoch), (Topology::ClientServer, 2));
    assert_eq!(
        (
            policy.cooldown_ms,
            policy.auto_switch,
            policy.history_retention
        ),
        (4321, true, 50)
    );
    p.kill();

    let p = Proc::start(&config, &dir.path().join("stderr-2.log"));
    p.wait_ready().await;
    let (info2, history2, policy2) = observed(p.api).await;
    assert_eq!(info2.topology, info.topology);
    assert_eq!(info2.epoch, info.epoch);
    assert_eq!(info2.current_instance, b.id);
    assert_eq!(info2.overlay_config, info.overlay_config);
    assert_eq!(history2, history, "the history survived");
    assert_eq!(
        policy2, policy,
        "the policy survived (not reset from the config)"
    );

    let c = switch_and_wait(p.api, "pub_sub", "c").await;
    assert_eq!(c.status, TransitionStatus::Committed);
    assert_eq!(c.epoch, Some(3));
    assert!(c.id > b.id);
    p.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clusters_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let first = write_config(
        dir.path(),
        "first.toml",
        &config_text("first-cluster", &data),
    );
    let p = Proc::start(&first, &dir.path().join("stderr-1.log"));
    p.wait_ready().await;
    p.kill();

    let other = write_config(
        dir.path(),
        "other.toml",
        &config_text("other-cluster", &data),
    );
    let (status, stderr) = refused(&other, &dir.path().join("stderr-2.log"));
    assert!(!status.success(), "{status}");
    assert!(
        stderr.contains("first-cluster") && stderr.contains("other-cluster"),
        "names both cluster ids: {stderr}"
    );

    // The data dir still belongs to the first cluster.
    let p = Proc::start(&first, &dir.path().join("stderr-3.log"));
    p.wait_ready().await;
    p.kill();
}

#[tokio::test]
async fn a_bad_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let base = config_text("bad", &data);
    let zero_heartbeat = base.replace("heartbeat_ms = 50", "heartbeat_ms = 0");
    let unknown_key = format!("colour = \"red\"\n{base}");
    let unknown_nested = base.replace("heartbeat_ms = 50", "heartbeat_ms = 50\nheartbeat = 50");
    for (name, text, key) in [
        ("zero.toml", zero_heartbeat, "raft.heartbeat_ms"),
        ("unknown.toml", unknown_key, "colour"),
        ("nested.toml", unknown_nested, "raft.heartbeat"),
    ] {
        let config = write_config(dir.path(), name, &text);
        let (status, stderr) = refused(&config, &dir.path().join(format!("{name}.log")));
        assert!(!status.success(), "{name}: {status}");
        assert!(stderr.contains(key), "{name}: names `{key}`: {stderr}");
        assert!(!data.exists(), "{name}: nothing was written");
    }
}
