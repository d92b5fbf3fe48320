//! Clusters of real `topod` processes (the binary cargo built for the
//! tests), every listener on port 0 at the first start.
//!
//! Node 1 bootstraps alone; nodes 2.. join it as learners (`--join`) and
//! are promoted when asked. After a node's first start its config is
//! rewritten with the addresses it bound (read back from the membership),
//! so a restart on the same data dir listens where the cluster expects it.
//! Nothing sleeps for a fixed time: helpers poll with a deadline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::json;
use tempfile::TempDir;
use topod::api::types::MembersView;
use topod::model::NodeId;

use super::{get, post_json, request, wait_for, DEADLINE};

/// How long the binary may take to print its `listening` line.
pub const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a process may take to exit after SIGTERM.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// The `[raft]` timings of every node: short, so elections are quick.
const RAFT: &str =
    "[raft]\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\n";

/// One node's listeners as written in its config.
#[derive(Debug, Clone)]
pub struct Addrs {
    pub api: String,
    pub raft: String,
    pub peer: String,
}

impl Addrs {
    fn any() -> Addrs {
        let a = "127.0.0.1:0".to_string();
        Addrs {
            api: a.clone(),
            raft: a.clone(),
            peer: a,
        }
    }
}

/// A config for node `id` of `cluster_id`: the single initial voter
/// (`bootstrap`), or a node that joins through `join`.
pub fn config_text(
    id: NodeId,
    cluster_id: &str,
    data_dir: &Path,
    addrs: &Addrs,
    bootstrap: bool,
    join: &[SocketAddr],
) -> String {
    let mut t = format!(
        "node_id = {id}\ncluster_id = \"{cluster_id}\"\napi_addr = \"{}\"\nraft_addr = \"{}\"\n\
         peer_addr = \"{}\"\ndata_dir = \"{}\"\n",
        addrs.api,
        addrs.raft,
        addrs.peer,
        data_dir.display()
    );
    if bootstrap {
        t += &format!(
            "initial_voters = [{{ id = {id}, api_addr = \"{}\", raft_addr = \"{}\", peer_addr = \"{}\" }}]\n",
            addrs.api, addrs.raft, addrs.peer
        );
    }
    let join: Vec<String> = join.iter().map(|a| format!("\"{a}\"")).collect();
    t += &format!("join = [{}]\n", join.join(", "));
    t + RAFT
        + &super::tls::security_toml(cluster_id, id, data_dir.parent().unwrap_or(data_dir))
        + &token_line(data_dir)
}

/// The last line of every process node's `[security]` (after
/// [`super::tls::security_toml`]): the harness token as the initial admin
/// token, in a file beside the data dir.
pub fn token_line(data_dir: &Path) -> String {
    let file = data_dir.with_extension("admin-token");
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).expect("token file dir");
    }
    std::fs::write(&file, format!("{}\n", super::harness_token())).expect("token file");
    format!("initial_admin_token_file = \"{}\"\n", file.display())
}

/// Starts `topod ARGS`, stderr to `stderr_path` (appended), with no
/// `TOPOD_*` variable of the test's environment leaking in.
pub fn spawn(args: &[&str], stderr_path: &Path) -> Child {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .expect("stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_topod"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .env("RUST_LOG", "info,openraft=warn,sled=warn")
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("TOPOD_") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().expect("spawn topod")
}

/// Runs `topod ARGS` to completion (a command that exits): its status,
/// stdout and stderr.
pub fn run_to_end(args: &[&str]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_topod"));
    cmd.args(args).stdin(Stdio::null()).env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("TOPOD_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run topod");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A node of a [`ProcCluster`].
pub struct ProcNode {
    pub id: NodeId,
    pub config: PathBuf,
    pub stderr: PathBuf,
    /// The node's stdout: its log (tracing writes to stdout).
    pub log: PathBuf,
    pub data_dir: PathBuf,
    pub child: Option<Child>,
    pub api: SocketAddr,
}

impl ProcNode {
    /// Starts the process on its config and reads its `listening` line.
    pub fn start(&mut self) {
        let config = self.config.display().to_string();
        let mut child = spawn(&["run", "--config", &config], &self.stderr);
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        // Keeps draining stdout (the node's log) into `log` after the
        // line, so the child never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _log_is_best_effort = writeln!(log, "{line}");
                if let Some(rest) = line.strip_prefix("listening api=") {
                    let api = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _receiver_gone = tx.send(api);
                }
            }
        });
        match rx.recv_timeout(START_DEADLINE) {
            Ok(api) => self.api = api.parse().expect("an ip:port"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "node {} printed no `listening` line; stderr:\n{}",
                    self.id,
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
        }
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits for the process to exit: its status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("node is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = std::time::Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "node {} did not exit within {STOP_DEADLINE:?} of SIGTERM; stderr:\n{}",
                    self.id,
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Polls `/readyz` until it answers 200.
    pub async fn wait_ready(&self) {
        let api = self.api;
        wait_for(
            &format!("node {} is ready", self.id),
            DEADLINE,
            || async move {
                let r = request(api, Method::GET, "/readyz", None, bytes::Bytes::new())
                    .await
                    .ok()?;
                (r.status == StatusCode::OK).then_some(())
            },
        )
        .await;
    }
}

impl Drop for ProcNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Real processes sharing one temporary directory.
pub struct ProcCluster {
    pub dir: TempDir,
    pub cluster_id: String,
    pub nodes: BTreeMap<NodeId, ProcNode>,
}

impl ProcCluster {
    /// An empty cluster named `cluster_id` (no process yet).
    pub fn new(cluster_id: &str) -> ProcCluster {
        ProcCluster {
            dir: tempfile::tempdir().expect("tempdir"),
            cluster_id: cluster_id.into(),
            nodes: BTreeMap::new(),
        }
    }

    /// `n` nodes: node 1 bootstraps, the others join and are promoted to
    /// voters; every node ready and every config pinned to its addresses.
    pub async fn start_voters(cluster_id: &str, n: u64) -> ProcCluster {
        let mut c = ProcCluster::new(cluster_id);
        c.add_node(1, true).await;
        for id in 2..=n {
            c.add_node(id, false).await;
            c.promote(id).await;
        }
        for id in 1..=n {
            c.pin_addresses(id).await;
        }
        c
    }

    /// A node's data dir.
    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    /// Starts node `id` on ports 0: the bootstrap voter, or a learner that
    /// joins through the running nodes. Returns once it is ready.
    pub async fn add_node(&mut self, id: NodeId, bootstrap: bool) -> &ProcNode {
        let join: Vec<SocketAddr> = self.nodes.values().map(|n| n.api).collect();
        let data_dir = self.data_dir(id);
        let text = config_text(
            id,
            &self.cluster_id,
            &data_dir,
            &Addrs::any(),
            bootstrap,
            &join,
        );
        let config = self.dir.path().join(format!("node{id}.toml"));
        std::fs::write(&config, text).expect("write config");
        let mut node = ProcNode {
            id,
            config,
            stderr: self.dir.path().join(format!("node{id}.stderr")),
            log: self.dir.path().join(format!("node{id}.log")),
            data_dir,
            child: None,
            api: "127.0.0.1:0".parse().expect("addr"),
        };
        node.start();
        node.wait_ready().await;
        self.nodes.insert(id, node);
        if !bootstrap {
            self.wait_member(id).await;
        }
        &self.nodes[&id]
    }

    /// API address of node `id`.
    pub fn api(&self, id: NodeId) -> SocketAddr {
        self.nodes[&id].api
    }

    /// The API addresses of the running nodes.
    pub fn running_apis(&self) -> Vec<SocketAddr> {
        self.nodes
            .values()
            .filter(|n| n.child.is_some())
            .map(|n| n.api)
            .collect()
    }

    /// The membership as seen by the first running node.
    pub async fn members(&self) -> MembersView {
        let api = self.running_apis()[0];
        get(api, "/v1/cluster/members").await.json()
    }

    async fn wait_member(&self, id: NodeId) {
        let api = self.running_apis()[0];
        wait_for(&format!("node {id} is a member"), DEADLINE, || async move {
            let r = get(api, "/v1/cluster/members").await;
            let v: MembersView = r.json();
            v.members.iter().any(|m| m.id == id).then_some(())
        })
        .await;
    }

    /// Promotes learner `id` to voter (through any running node).
    pub async fn promote(&self, id: NodeId) {
        let api = self.running_apis()[0];
        let path = format!("/v1/cluster/members/{id}/promote");
        let r = post_json(api, &path, &json!({})).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "promote {id}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// Rewrites node `id`'s config with the addresses the membership holds
    /// for it, so that it listens there again after a restart.
    pub async fn pin_addresses(&mut self, id: NodeId) {
        let members = self.members().await;
        let m = members
            .members
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("node {id} is not a member"));
        let addrs = Addrs {
            api: m.api_addr.clone(),
            raft: m.raft_addr.clone(),
            peer: m.peer_addr.clone(),
        };
        let node = &self.nodes[&id];
        let text = config_text(id, &self.cluster_id, &node.data_dir, &addrs, id == 1, &[]);
        std::fs::write(&node.config, text).expect("rewrite config");
    }

    /// The node every running node names as leader.
    pub async fn leader(&self) -> NodeId {
        self.leader_except(None).await
    }

    /// The node every running node names as leader, once it is not `old`
    /// (after `old` stopped: the others elect one of them).
    pub async fn leader_except(&self, old: Option<NodeId>) -> NodeId {
        let apis = self.running_apis();
        wait_for("an agreed leader", DEADLINE, || {
            let apis = apis.clone();
            async move {
                let mut leaders = Vec::new();
                for api in apis {
                    let r = get(api, "/v1/cluster/status").await;
                    if r.status != StatusCode::OK {
                        return None;
                    }
                    leaders.push(r.value()["leader"].as_u64()?);
                }
                let first = *leaders.first()?;
                (Some(first) != old && leaders.iter().all(|l| *l == first)).then_some(first)
            }
        })
        .await
    }
}
