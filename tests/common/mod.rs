//! In-process test clusters over real sockets (every listener on port 0)
//! and a small HTTP client for the admin API.
//!
//! Node 1 bootstraps as the single initial voter; nodes 2.. join it as
//! learners through `POST /v1/cluster/members`, and nodes 2 and 3 are then
//! promoted, so a 3-node cluster has three voters. Every node runs a
//! [`ScriptedExecutor`] the test can tell to fail. Nothing sleeps for a
//! fixed time: helpers poll for the expected state with a deadline.

#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::Client;
use openraft::ServerState;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::time::Instant;
use topod::api::types::{MembersView, TransitionView, SERVED_BY_HEADER};
use topod::config::{
    ApiConfig, InitialTopology, NodeConfig, OverlayDefaults, RaftConfig, StorageConfig,
    SwitchConfig, VoterConfig,
};
use topod::control::applied::Applied;
use topod::control::executor::ScriptedExecutor;
use topod::model::{NodeId, TopologyState};
use topod::node::{start_node, Node};

/// Default deadline of the polling helpers: generous, as two cores are
/// shared with other builds; a healthy run takes a fraction of it.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Deadline of one HTTP request (a switch with `wait` answers within its
/// own wait timeout, 30 s by default).
const HTTP_TIMEOUT: Duration = Duration::from_secs(40);

pub mod procs;

#[path = "../support/poll.rs"]
mod poll;
#[path = "../support/tls.rs"]
pub mod tls;
#[path = "../support/token.rs"]
mod token;
pub use token::{give_token, harness_token};

/// Logs to the test's captured output; `TEST_LOG` sets the filter.
pub fn init_tracing() {
    poll::init_tracing("info,openraft=warn,sled=warn,topod::api=warn");
}

// ---- polling ----

pub use poll::wait_until;

/// Polls the async `probe` every 20 ms until it gives a value; panics
/// naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- HTTP ----

/// An answer of the admin API.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The body decoded as `T` (panics with the body on failure).
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not the expected JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as a JSON value.
    pub fn value(&self) -> Value {
        self.json()
    }

    /// The node named by `x-topod-served-by`.
    pub fn served_by(&self) -> Option<NodeId> {
        self.headers
            .get(SERVED_BY_HEADER)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// Checks the body is exactly `{"error":{"code","message"}}` (plus an
    /// optional leader hint) and returns (code, message).
    pub fn error(&self) -> (String, String) {
        let v = self.value();
        let obj = v.as_object().expect("error body is an object");
        assert_eq!(obj.len(), 1, "error body has only `error`: {v}");
        let e = v["error"].as_object().expect("`error` is an object");
        for k in e.keys() {
            assert!(
                ["code", "message", "leader"].contains(&k.as_str()),
                "unexpected key {k} in {v}"
            );
        }
        let code = e["code"].as_str().expect("code is a string").to_string();
        let message = e["message"].as_str().expect("message is a string");
        assert!(!message.is_empty(), "empty message in {v}");
        (code, message.to_string())
    }

    /// Asserts the status and the error code; returns the message.
    pub fn expect_error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let (c, message) = self.error();
        assert_eq!(c, code, "message: {message}");
        message
    }
}

/// Sends one request (a fresh connection each time, so a restarted node is
/// never reached through a stale pooled connection).
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Result<Resp, String> {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| ("content-type", ct))
        .into_iter()
        .collect();
    request_with(addr, method, path, &headers, body).await
}

/// Sends one request with extra `headers`, and the harness token unless
/// `headers` has an `authorization`.
pub async fn request_with(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Resp, String> {
    let has_auth = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    let bearer = format!("Bearer {}", harness_token());
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !has_auth {
        all.push(("authorization", &bearer));
    }
    request_exact(addr, method, path, &all, body).await
}

/// Sends one request with exactly `headers` (no harness token).
pub async fn request_exact(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Resp, String> {
    let client: Client<_, Full<Bytes>> = tls::client();
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", tls::base(addr)));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let req = builder
        .body(Full::new(body.into()))
        .map_err(|e| e.to_string())?;
    let call = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(HTTP_TIMEOUT, call)
        .await
        .map_err(|_| format!("no answer within {HTTP_TIMEOUT:?}"))?
}

/// GET `path` (panics when the node does not answer).
pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, Method::GET, path, None, Bytes::new())
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

/// Sends `body` as JSON with `method`.
pub async fn send_json(addr: SocketAddr, method: Method, path: &str, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).expect("JSON");
    request(addr, method.clone(), path, Some("application/json"), bytes)
        .await
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// POST `body` as JSON.
pub async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    send_json(addr, Method::POST, path, body).await
}

/// `POST /v1/topology/switch`, waiting for the outcome when `wait`.
pub async fn switch(addr: SocketAddr, topology: &str, wait: bool) -> Resp {
    post_json(
        addr,
        "/v1/topology/switch",
        &json!({"topology": topology, "wait": wait}),
    )
    .await
}

/// A switch with `wait` that must end (committed or aborted): the final
/// view. Retries (with the same request id) while no leader can serve it.
pub async fn switch_and_wait(addr: SocketAddr, topology: &str, request_id: &str) -> TransitionView {
    let body = json!({"topology": topology, "wait": true, "request_id": request_id});
    wait_for(
        &format!("switch to {topology} through {addr}"),
        DEADLINE,
        || async {
            let r = request(
                addr,
                Method::POST,
                "/v1/topology/switch",
                Some("application/json"),
                serde_json::to_vec(&body).expect("JSON"),
            )
            .await
            .ok()?;
            if r.status.is_server_error() {
                return None;
            }
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            Some(r.json())
        },
    )
    .await
}

// ---- clusters ----

/// Settings of a test cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// `switch.prepare_timeout_ms`.
    pub prepare_timeout_ms: u64,
    /// `api.request_timeout_ms`.
    pub request_timeout_ms: u64,
    /// `[rules]`: seeds of the policy's monitor and rule keys.
    pub rules: topod::config::RulesConfig,
    /// `switch.initial_topology`.
    pub initial_topology: InitialTopology,
    /// `security.insecure`: plain HTTP, no certificates.
    pub insecure: bool,
    /// Last changes to every node's config (e.g. its `[security]`).
    pub tweak: Option<fn(&mut NodeConfig)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prepare_timeout_ms: 10_000,
            request_timeout_ms: 5_000,
            rules: Default::default(),
            initial_topology: SwitchConfig::default().initial_topology,
            insecure: false,
            tweak: None,
        }
    }
}

struct Slot {
    config: NodeConfig,
    node: Option<Node>,
    executor: Arc<ScriptedExecutor>,
}

/// A cluster of in-process nodes with data dirs in a temp dir.
pub struct TestCluster {
    dir: TempDir,
    opts: Options,
    /// Index `i` holds node `i + 1`.
    slots: Vec<Slot>,
}

/// Short Raft timings: heartbeat 50 ms, elections after 300–600 ms (a bit
/// above the 150–300 ms default so that a loaded test machine does not
/// trigger spurious elections).
fn raft_config() -> RaftConfig {
    RaftConfig {
        heartbeat_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        rpc_timeout_ms: 500,
        ..RaftConfig::default()
    }
}

/// The config of node `id` in `cluster_id`, listening on port 0.
pub fn node_config(
    cluster_id: &str,
    id: NodeId,
    data_dir: PathBuf,
    bootstrap: bool,
    join: Vec<SocketAddr>,
    opts: &Options,
) -> NodeConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let config_dir = data_dir.clone();
    let mut config = NodeConfig {
        node_id: id,
        cluster_id: cluster_id.to_string(),
        api_addr: any,
        raft_addr: any,
        peer_addr: any,
        data_dir,
        initial_voters: Vec::new(),
        join,
        raft: raft_config(),
        switch: SwitchConfig {
            prepare_timeout_ms: opts.prepare_timeout_ms,
            initial_topology: opts.initial_topology,
            ..SwitchConfig::default()
        },
        rules: opts.rules.clone(),
        monitor: Default::default(),
        app_metrics: Default::default(),
        api: ApiConfig {
            request_timeout_ms: opts.request_timeout_ms,
            ..ApiConfig::default()
        },
        storage: StorageConfig::default(),
        overlay: OverlayDefaults::default(),
        transport: Default::default(),
        executor: Default::default(),
        advertise: Default::default(),
        security: if opts.insecure {
            topod::config::SecurityConfig::insecure()
        } else {
            tls::security(cluster_id, id, data_dir_parent(&config_dir))
        },
    };
    give_token(&mut config);
    if let Some(tweak) = opts.tweak {
        tweak(&mut config);
    }
    if bootstrap {
        set_own_voter_entry(&mut config);
    }
    config
}

/// The directory holding a node's data dir (the cluster's temp dir, where
/// its certificates go).
fn data_dir_parent(data_dir: &std::path::Path) -> &std::path::Path {
    data_dir.parent().unwrap_or(data_dir)
}

/// Makes `config` the single initial voter, its entry repeating its own
/// addresses (as validation requires).
fn set_own_voter_entry(config: &mut NodeConfig) {
    config.initial_voters = vec![VoterConfig {
        id: config.node_id,
        api_addr: config.api_addr,
        raft_addr: config.raft_addr,
        peer_addr: config.peer_addr,
    }];
}

impl TestCluster {
    /// Starts `n` nodes: node 1 bootstraps, the others join, nodes 2 and 3
    /// are promoted to voters (so up to three voters), and returns once
    /// every node has applied the same log.
    pub async fn start(n: usize, opts: Options) -> TestCluster {
        init_tracing();
        assert!(n >= 1);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = TestCluster {
            dir,
            opts,
            slots: Vec::new(),
        };
        let config = node_config(
            "test",
            1,
            cluster.dir.path().join("node1"),
            true,
            Vec::new(),
            &cluster.opts,
        );
        cluster.launch(config).await;
        cluster
            .wait_leader_is(1, "node 1 leads the new cluster")
            .await;
        cluster.wait_policy_set().await;
        for _ in 1..n {
            cluster.join_learner().await;
        }
        for id in 2..=n.min(3) as NodeId {
            cluster.promote(id).await;
        }
        cluster.wait_converged().await;
        cluster
    }

    /// Starts a node from `config` (recording its bound addresses, so that
    /// a restart binds the same ones).
    async fn launch(&mut self, mut config: NodeConfig) -> NodeId {
        let id = config.node_id;
        let idx = (id - 1) as usize;
        if idx == self.slots.len() {
            self.slots.push(Slot {
                config: config.clone(),
                node: None,
                executor: Arc::new(ScriptedExecutor::default()),
            });
        }
        let executor = self.slots[idx].executor.clone();
        // A node stopped in this process releases its sled lock only when
        // sled's flusher thread lets go of the db, shortly after shutdown:
        // a restart right away retries until it can open the data dir.
        let started = std::time::Instant::now();
        let node = loop {
            match start_node(config.clone(), executor.clone()).await {
                Ok(node) => break node,
                Err(e)
                    if e.to_string().contains("could not acquire lock")
                        && started.elapsed() < DEADLINE =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("node {id} does not start: {e}"),
            }
        };
        config.api_addr = node.api_addr();
        config.raft_addr = node.raft_addr();
        if config.security.insecure {
            tls::register_plain(config.api_addr);
        }
        if !config.initial_voters.is_empty() {
            set_own_voter_entry(&mut config);
        }
        self.slots[idx].config = config;
        self.slots[idx].node = Some(node);
        id
    }

    /// Starts the next node as a learner joining through node 1's API and
    /// waits until it is a member and has caught up.
    pub async fn join_learner(&mut self) -> NodeId {
        let id = self.slots.len() as NodeId + 1;
        let config = node_config(
            "test",
            id,
            self.dir.path().join(format!("node{id}")),
            false,
            vec![self.api(1)],
            &self.opts,
        );
        self.launch(config).await;
        let via = self.api(1);
        wait_for(&format!("node {id} joined"), DEADLINE, || async {
            let r = request(via, Method::GET, "/v1/cluster/members", None, Bytes::new())
                .await
                .ok()?;
            let m: MembersView = r.json();
            m.members.iter().any(|m| m.id == id).then_some(())
        })
        .await;
        self.wait_converged().await;
        id
    }

    /// Promotes learner `id` to voter (through node 1, forwarded if
    /// needed).
    pub async fn promote(&self, id: NodeId) {
        let path = format!("/v1/cluster/members/{id}/promote");
        let via = self.api(self.running()[0]);
        wait_for(&format!("node {id} promoted"), DEADLINE, || async {
            let r = request(via, Method::POST, &path, None, Bytes::new())
                .await
                .ok()?;
            if r.status != StatusCode::OK {
                tracing::info!(status = %r.status, body = %String::from_utf8_lossy(&r.body), "promote refused; retrying");
                return None;
            }
            let m: MembersView = r.json();
            m.members.iter().any(|m| m.id == id && m.voter).then_some(())
        })
        .await;
    }

    /// The running node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        self.slots[(id - 1) as usize]
            .node
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }

    /// Node `id`'s API address (kept across restarts).
    /// Node `id`'s config (with its bound addresses).
    pub fn config(&self, id: NodeId) -> &NodeConfig {
        &self.slots[(id - 1) as usize].config
    }

    pub fn api(&self, id: NodeId) -> SocketAddr {
        self.slots[(id - 1) as usize].config.api_addr
    }

    /// Node `id`'s executor (kept across restarts).
    pub fn executor(&self, id: NodeId) -> Arc<ScriptedExecutor> {
        self.slots[(id - 1) as usize].executor.clone()
    }

    /// Ids of the running nodes.
    pub fn running(&self) -> Vec<NodeId> {
        self.slots
            .iter()
            .filter(|s| s.node.is_some())
            .map(|s| s.config.node_id)
            .collect()
    }

    /// Node `id`'s latest applied state.
    pub fn applied(&self, id: NodeId) -> Arc<Applied> {
        self.node(id).applied().borrow().clone()
    }

    /// Node `id`'s replicated state.
    pub fn state(&self, id: NodeId) -> TopologyState {
        self.applied(id).state.clone()
    }

    /// The leader every running node agrees on.
    pub async fn leader(&self) -> NodeId {
        wait_for("a leader all running nodes agree on", DEADLINE, || async {
            self.agreed_leader()
        })
        .await
    }

    fn agreed_leader(&self) -> Option<NodeId> {
        let running = self.running();
        let leader = running
            .iter()
            .copied()
            .find(|&id| self.node(id).raft().metrics().borrow().state == ServerState::Leader)?;
        running
            .iter()
            .all(|&id| self.node(id).raft().metrics().borrow().current_leader == Some(leader))
            .then_some(leader)
    }

    /// Running nodes other than the leader.
    pub async fn followers(&self) -> Vec<NodeId> {
        let leader = self.leader().await;
        self.running()
            .into_iter()
            .filter(|&n| n != leader)
            .collect()
    }

    async fn wait_leader_is(&self, id: NodeId, what: &str) {
        wait_until(what, DEADLINE, || {
            self.node(id).raft().metrics().borrow().current_leader == Some(id)
        })
        .await;
    }

    /// Waits until the bootstrap policy is written (node 1 writes it once
    /// it leads), so tests start from a settled log.
    async fn wait_policy_set(&self) {
        wait_until("the initial policy is applied", DEADLINE, || {
            self.state(1).policy_set
        })
        .await;
    }

    /// Waits until every running node has applied the leader's whole log
    /// and all hold the same state.
    pub async fn wait_converged(&self) {
        let leader = self.leader().await;
        wait_until("all running nodes applied the same log", DEADLINE, || {
            let m = self.node(leader).raft().metrics().borrow().clone();
            let last = m.last_log_index;
            let ref_applied = self.applied(leader);
            self.running().iter().all(|&id| {
                let a = self.applied(id);
                a.last_applied.map(|l| l.index) == last
                    && a.last_applied == ref_applied.last_applied
                    && a.state == ref_applied.state
            })
        })
        .await;
    }

    /// Shuts node `id` down (its data dir and addresses are kept).
    pub async fn stop(&mut self, id: NodeId) {
        let node = self.slots[(id - 1) as usize]
            .node
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        tokio::time::timeout(DEADLINE, node.shutdown())
            .await
            .unwrap_or_else(|_| panic!("node {id} did not shut down within {DEADLINE:?}"))
            .unwrap_or_else(|e| panic!("node {id} shut down with an error: {e}"));
    }

    /// Restarts node `id` on its data dir and its previous addresses.
    pub async fn restart(&mut self, id: NodeId) {
        let config = self.slots[(id - 1) as usize].config.clone();
        assert!(
            self.slots[(id - 1) as usize].node.is_none(),
            "node {id} is running"
        );
        self.launch(config).await;
    }

    /// Shuts every running node down.
    pub async fn shutdown(mut self) {
        for id in self.running() {
            self.stop(id).await;
        }
    }
}
