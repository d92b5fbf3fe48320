//! In-process clusters running the real data plane (TCP transport and
//! overlay executor) on 127.0.0.1, every listener on port 0. Node 1
//! bootstraps; nodes 2.. join as learners; nodes 2 and 3 are promoted.
//! Built the way `tests/common` on branch `tests` builds its clusters;
//! helpers poll with a deadline, never sleep a fixed time.

#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::time::Instant;
use topod::config::{
    ApiConfig, NodeConfig, OverlayDefaults, RaftConfig, StorageConfig, SwitchConfig, VoterConfig,
};
use topod::executor::{ExecState, ExecStatus, ExecutorConfig, ExecutorHandle};
use topod::model::{HistoryRecord, NodeId, Outcome, SwitchReason, Topology};
use topod::node::{start_node_with_overlays, Node};
use topod::transport::TransportConfig;

pub const DEADLINE: Duration = Duration::from_secs(30);

#[path = "../support/poll.rs"]
mod poll;
#[path = "../support/tls.rs"]
pub mod tls;
#[path = "../support/token.rs"]
mod token;
pub use token::{give_token, harness_token};

pub fn init_tracing() {
    poll::init_tracing("warn,openraft=error,sled=warn,topod::api=error,topod::executor=warn");
}

pub use poll::wait_until;

/// One HTTP request to the admin API: (status, JSON body).
pub async fn http(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = tls::client();
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", tls::base(addr)));
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    b = b.header("authorization", format!("Bearer {}", harness_token()));
    let bytes = body
        .map(|v| serde_json::to_vec(&v).expect("json"))
        .unwrap_or_default();
    let req = b.body(Full::new(Bytes::from(bytes))).expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(40), client.request(req))
        .await
        .expect("answer in time")
        .expect("request sent");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    };
    (status, v)
}

/// Overlay defaults that keep every check meaningful on 5 nodes:
/// HyParView active 2 / passive 4; client_server servers 1–3, k = 2.
pub fn overlay_defaults() -> OverlayDefaults {
    let mut d = OverlayDefaults::default();
    d.hyparview.active_view = 2;
    d.hyparview.passive_view = 4;
    d.pub_sub.hyparview.active_view = 2;
    d.pub_sub.hyparview.passive_view = 4;
    d.client_server.servers = vec![1, 2, 3];
    d.client_server.links_per_client = 2;
    d
}

pub fn node_config(id: NodeId, data_dir: PathBuf, join: Vec<SocketAddr>) -> NodeConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let security = tls::security("dp", id, data_dir.parent().unwrap_or(&data_dir));
    let mut c = NodeConfig {
        node_id: id,
        cluster_id: "dp".into(),
        api_addr: any,
        raft_addr: any,
        peer_addr: any,
        data_dir,
        initial_voters: Vec::new(),
        join,
        raft: RaftConfig {
            heartbeat_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            rpc_timeout_ms: 500,
            ..RaftConfig::default()
        },
        switch: SwitchConfig {
            prepare_timeout_ms: 8_000,
            cooldown_ms: 0,
            ..SwitchConfig::default()
        },
        rules: Default::default(),
        monitor: Default::default(),
        app_metrics: Default::default(),
        api: ApiConfig::default(),
        storage: StorageConfig::default(),
        overlay: overlay_defaults(),
        transport: TransportConfig {
            chaos: true,
            ping_interval_ms: 200,
            ping_timeout_ms: 1000,
            reconnect_max_ms: 500,
            connect_timeout_ms: 500,
            ..TransportConfig::default()
        },
        executor: ExecutorConfig {
            drain_grace_ms: 1000,
            form_timeout_ms: 4000,
            verify_timeout_ms: 2000,
            ..ExecutorConfig::default()
        },
        advertise: Default::default(),
        security,
    };
    give_token(&mut c);
    if c.join.is_empty() {
        c.initial_voters = vec![VoterConfig {
            id,
            api_addr: any,
            raft_addr: any,
            peer_addr: any,
        }];
    }
    c
}

pub struct Cluster {
    pub dir: TempDir,
    pub configs: Vec<NodeConfig>,
    pub nodes: Vec<Option<Node>>,
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, |_| {}).await
    }

    /// Like [`Cluster::start`], with `tweak` applied to every node's config.
    pub async fn start_with(n: usize, tweak: impl Fn(&mut NodeConfig)) -> Cluster {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = Cluster {
            dir,
            configs: Vec::new(),
            nodes: Vec::new(),
        };
        let mut cfg = node_config(1, c.dir.path().join("node1"), Vec::new());
        tweak(&mut cfg);
        c.launch(cfg).await;
        wait_until("node 1 leads", DEADLINE, || {
            c.node(1).raft().metrics().borrow().current_leader == Some(1)
                && c.node(1).applied().borrow().state.policy_set
        })
        .await;
        for id in 2..=n as NodeId {
            let mut cfg = node_config(
                id,
                c.dir.path().join(format!("node{id}")),
                vec![c.node(1).api_addr()],
            );
            tweak(&mut cfg);
            c.launch(cfg).await;
            wait_until(&format!("node {id} joined"), DEADLINE, || {
                c.node(1).applied().borrow().members().contains(&id)
            })
            .await;
        }
        for id in 2..=(n.min(3) as NodeId) {
            let path = format!("/v1/cluster/members/{id}/promote");
            let deadline = Instant::now() + DEADLINE;
            loop {
                let (st, _) = http(c.node(1).api_addr(), Method::POST, &path, None).await;
                if st == 200 {
                    break;
                }
                assert!(Instant::now() < deadline, "promoting node {id}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        c
    }

    pub async fn launch(&mut self, mut cfg: NodeConfig) {
        let id = cfg.node_id;
        let node = start_node_with_overlays(cfg.clone())
            .await
            .unwrap_or_else(|e| panic!("node {id} does not start: {e}"));
        // A restart keeps its addresses (the membership records them).
        cfg.api_addr = node.api_addr();
        if cfg.security.insecure {
            tls::register_plain(cfg.api_addr);
        }
        cfg.raft_addr = node.raft_addr();
        cfg.peer_addr = node.node_addr().peer_addr.parse().expect("peer addr");
        if !cfg.initial_voters.is_empty() {
            cfg.initial_voters[0].api_addr = cfg.api_addr;
            cfg.initial_voters[0].raft_addr = cfg.raft_addr;
            cfg.initial_voters[0].peer_addr = cfg.peer_addr;
        }
        let idx = (id - 1) as usize;
        if idx == self.nodes.len() {
            self.nodes.push(Some(node));
            self.configs.push(cfg);
        } else {
            self.nodes[idx] = Some(node);
            self.configs[idx] = cfg;
        }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes[(id - 1) as usize]
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }

    pub fn exec(&self, id: NodeId) -> &ExecutorHandle {
        self.node(id).executor().expect("data plane")
    }

    pub fn status(&self, id: NodeId) -> std::sync::Arc<ExecStatus> {
        self.exec(id).status()
    }

    pub fn running(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as NodeId)
            .filter(|id| self.nodes[(*id - 1) as usize].is_some())
            .collect()
    }

    pub fn api(&self) -> SocketAddr {
        self.node(self.running()[0]).api_addr()
    }

    /// Every running node is Steady on `topology`, verified on the
    /// committed instance.
    pub fn all_steady_on(&self, topology: Topology) -> bool {
        self.running().iter().all(|&id| {
            let a = self.node(id).applied().borrow().clone();
            let s = self.status(id);
            a.state.topology == topology
                && a.state.in_flight.is_none()
                && s.state
                    == ExecState::Steady {
                        current: a.state.current_instance,
                    }
                && s.current.as_ref().is_some_and(|c| c.topology == topology)
        })
    }

    pub async fn wait_steady_on(&self, topology: Topology) {
        wait_until(
            &format!("every node steady on {topology}"),
            DEADLINE,
            || self.all_steady_on(topology),
        )
        .await;
    }

    /// Every running node is Steady on the committed topology, with no
    /// transition (or rollback) in flight.
    pub async fn wait_settled(&self) {
        wait_until("every node steady, nothing in flight", DEADLINE, || {
            let t = self
                .node(self.running()[0])
                .applied()
                .borrow()
                .state
                .topology;
            self.all_steady_on(t)
        })
        .await;
    }

    /// Switches through the API and waits for the outcome; returns the
    /// transition view. Retried while no leader answers, or while another
    /// transition (an automatic rollback) is in flight.
    pub async fn switch(&self, topology: &str) -> Value {
        let body = json!({"topology": topology, "wait": true});
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (st, v) = http(
                self.api(),
                Method::POST,
                "/v1/topology/switch",
                Some(body.clone()),
            )
            .await;
            if st == 200 {
                return v;
            }
            let busy = st == 409 && v["error"]["code"] == "transition_in_progress";
            assert!(
                (st >= 500 || busy) && Instant::now() < deadline,
                "switch to {topology}: {st} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The automatic switches in node 1's history.
    pub fn automatic_switches(&self) -> Vec<HistoryRecord> {
        self.node(1)
            .applied()
            .borrow()
            .state
            .history
            .iter()
            .filter(|r| matches!(r.reason, SwitchReason::Auto { .. }))
            .cloned()
            .collect()
    }

    /// Waits until an automatic switch committed; on timeout, fails with
    /// the leader's last monitor round (its figures and every rule's
    /// reasoning).
    pub async fn wait_auto_commit(&self, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if self
                .automatic_switches()
                .iter()
                .any(|r| matches!(r.outcome, Outcome::Committed { .. }))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let leader = self.node(1).raft().metrics().borrow().current_leader;
        let round = leader.and_then(|l| self.node(l).monitor().last());
        panic!(
            "timed out after {DEADLINE:?}: {what}; automatic records {:?}; last round {round:#?}",
            self.automatic_switches()
        );
    }

    /// Waits for `rounds` more monitor rounds on the current leader.
    pub async fn wait_monitor_rounds(&self, rounds: u64) {
        let leader = self
            .node(1)
            .raft()
            .metrics()
            .borrow()
            .current_leader
            .expect("leader");
        let start = self.node(leader).monitor().last().map_or(0, |r| r.round);
        wait_until(&format!("{rounds} more monitor rounds"), DEADLINE, || {
            self.node(leader)
                .monitor()
                .last()
                .is_some_and(|r| r.round >= start + rounds)
        })
        .await;
    }

    pub async fn stop(&mut self, id: NodeId) {
        let node = self.nodes[(id - 1) as usize].take().expect("running");
        tokio::time::timeout(DEADLINE, node.shutdown())
            .await
            .expect("shutdown in time")
            .expect("clean shutdown");
    }

    /// Starts a stopped node again with its addresses and data dir.
    pub async fn restart(&mut self, id: NodeId) {
        let cfg = self.configs[(id - 1) as usize].clone();
        self.launch(cfg).await;
    }

    pub async fn shutdown(mut self) {
        for id in self.running() {
            self.stop(id).await;
        }
    }
}
