//! In-process clusters for the data-plane benchmarks: every node runs the
//! real data plane (TCP transport and overlay executor) on 127.0.0.1, every
//! listener on port 0, in this process. Node 1 bootstraps; nodes 2.. join
//! as learners; nodes 2 and 3 are promoted. The same steps as
//! `tests/dataplane_common`, kept separate so that benchmarks do not break
//! when the tests' helpers change.

#![allow(dead_code)] // each bench uses a different part

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::time::Instant;
use topod::config::{
    ApiConfig, NodeConfig, OverlayDefaults, RaftConfig, StorageConfig, SwitchConfig, VoterConfig,
};
use topod::executor::{ExecState, ExecutorConfig, ExecutorHandle};
use topod::model::{NodeId, Topology};
use topod::node::{start_node_with_overlays, Node};
use topod::transport::TransportConfig;

pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .unwrap_or_else(|_| "error,topod=warn,topod::api=error,openraft=error".into());
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One HTTP request to the admin API: (status, JSON body).
pub async fn http(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let bytes = body
        .map(|v| serde_json::to_vec(&v))
        .transpose()?
        .unwrap_or_default();
    let req = b.body(Full::new(Bytes::from(bytes)))?;
    let resp = tokio::time::timeout(Duration::from_secs(40), client.request(req))
        .await
        .context("no answer in 40 s")??;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    };
    Ok((status, v))
}

/// Overlay defaults that keep every topology meaningful on 5 nodes (the
/// data-plane tests' choice): HyParView active 2 / passive 4;
/// client_server servers 1–3, k = 2.
fn overlay_defaults() -> OverlayDefaults {
    let mut d = OverlayDefaults::default();
    d.hyparview.active_view = 2;
    d.hyparview.passive_view = 4;
    d.pub_sub.hyparview.active_view = 2;
    d.pub_sub.hyparview.passive_view = 4;
    d.client_server.servers = vec![1, 2, 3];
    d.client_server.links_per_client = 2;
    d
}

/// A node's config: production transport and executor defaults (no fault
/// filter), test-like Raft timings.
fn node_config(id: NodeId, dir: &TempDir, join: Vec<SocketAddr>) -> NodeConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut c = NodeConfig {
        node_id: id,
        cluster_id: "bench".into(),
        api_addr: any,
        raft_addr: any,
        peer_addr: any,
        data_dir: dir.path().join(format!("node{id}")),
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
        api: ApiConfig::default(),
        storage: StorageConfig::default(),
        overlay: overlay_defaults(),
        transport: TransportConfig::default(),
        executor: ExecutorConfig::default(),
    };
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
    _dir: TempDir,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `n` nodes and waits until every one is Steady on full_mesh.
    pub async fn start(n: usize) -> Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let first = start_node_with_overlays(node_config(1, &dir, Vec::new())).await?;
        let mut c = Cluster {
            _dir: dir,
            nodes: vec![first],
        };
        wait_until("node 1 leads", DEADLINE, || {
            c.nodes[0].raft().metrics().borrow().current_leader == Some(1)
                && c.nodes[0].applied().borrow().state.policy_set
        })
        .await?;
        for id in 2..=n as NodeId {
            let cfg = node_config(id, &c._dir, vec![c.nodes[0].api_addr()]);
            c.nodes.push(start_node_with_overlays(cfg).await?);
            wait_until(&format!("node {id} joined"), DEADLINE, || {
                c.nodes[0].applied().borrow().members().contains(&id)
            })
            .await?;
        }
        for id in 2..=(n.min(3) as NodeId) {
            let path = format!("/v1/cluster/members/{id}/promote");
            let deadline = Instant::now() + DEADLINE;
            while http(c.api(), Method::POST, &path, None).await?.0 != 200 {
                if Instant::now() >= deadline {
                    bail!("promoting node {id}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        c.wait_steady_on(Topology::FullMesh).await?;
        Ok(c)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    pub fn exec(&self, id: NodeId) -> &ExecutorHandle {
        self.node(id).executor().expect("data plane")
    }

    pub fn api(&self) -> SocketAddr {
        self.nodes[0].api_addr()
    }

    /// Every node is Steady on `topology`, on the committed instance.
    pub fn all_steady_on(&self, topology: Topology) -> bool {
        self.nodes.iter().all(|n| {
            let a = n.applied().borrow().clone();
            let s = n.executor().expect("data plane").status();
            a.state.topology == topology
                && a.state.in_flight.is_none()
                && s.state
                    == ExecState::Steady {
                        current: a.state.current_instance,
                    }
                && s.current.as_ref().is_some_and(|c| c.topology == topology)
        })
    }

    pub async fn wait_steady_on(&self, topology: Topology) -> Result<()> {
        wait_until(
            &format!("every node steady on {topology}"),
            DEADLINE,
            || self.all_steady_on(topology),
        )
        .await
    }

    /// Switches through the API until a switch to `topology` commits
    /// (an aborted one is retried), then waits until every node is Steady.
    pub async fn switch(&self, topology: Topology) -> Result<()> {
        if self.all_steady_on(topology) {
            return Ok(());
        }
        let body = json!({"topology": topology.to_string(), "wait": true});
        let deadline = Instant::now() + DEADLINE * 2;
        loop {
            let (st, v) = http(
                self.api(),
                Method::POST,
                "/v1/topology/switch",
                Some(body.clone()),
            )
            .await?;
            if st == 200 && v["status"] == "committed" {
                break;
            }
            if Instant::now() >= deadline {
                bail!("switch to {topology}: {st} {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.wait_steady_on(topology).await
    }

    pub async fn shutdown(self) -> Result<()> {
        for n in self.nodes {
            n.shutdown().await?;
        }
        Ok(())
    }
}
