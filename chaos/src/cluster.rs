//! Real `topod run` processes, one per namespace, from generated configs:
//! start, SIGKILL and restart on the same data dir, SIGSTOP/SIGCONT, stop.
//! Each process is watched by a task that records its exit in the history;
//! an exit the harness did not cause is a crash (property 7).
//!
//! Nodes `1..=voters` bootstrap the cluster; the rest join as learners.
//! Every node runs with `transport.chaos = true` and `NO_COLOR=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use topod::security::certs::{CertAuthority, CertDir, CA_VALIDITY, NODE_VALIDITY};

use crate::history::History;
use crate::http::Api;
use crate::netns::{ns_name, Net};
use crate::NodeId;

/// Ports on each node's own address.
pub const API_PORT: u16 = 7100;
pub const RAFT_PORT: u16 = 7200;
pub const PEER_PORT: u16 = 7300;

/// How long a started node may take to answer `/readyz` 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One node's fixed facts.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub api: String,
    pub config: PathBuf,
    pub log: PathBuf,
}

struct Proc {
    pid: Pid,
    /// Set before the harness signals it to die.
    expected: Arc<AtomicBool>,
    exited: tokio::sync::watch::Receiver<bool>,
}

/// The cluster's processes.
pub struct Cluster {
    topod: PathBuf,
    specs: BTreeMap<NodeId, NodeSpec>,
    procs: Mutex<BTreeMap<NodeId, Proc>>,
    history: History,
    api: Api,
    voters: usize,
}

/// The generated config of node `id` (with `extra` merged over it).
fn node_config(
    net: &Net,
    id: NodeId,
    voters: usize,
    data_dir: &Path,
    extra: &toml::Table,
) -> anyhow::Result<String> {
    let addr = |n: NodeId, port: u16| format!("{}:{port}", net.addr(n));
    let mut t = toml::Table::new();
    t.insert("node_id".into(), (id as i64).into());
    t.insert("cluster_id".into(), "chaos".into());
    t.insert("api_addr".into(), addr(id, API_PORT).into());
    t.insert("raft_addr".into(), addr(id, RAFT_PORT).into());
    t.insert("peer_addr".into(), addr(id, PEER_PORT).into());
    t.insert("data_dir".into(), data_dir.display().to_string().into());
    let voter_ids = 1..=voters as NodeId;
    if (id as usize) <= voters {
        let list: Vec<toml::Value> = voter_ids
            .map(|v| {
                let mut e = toml::Table::new();
                e.insert("id".into(), (v as i64).into());
                e.insert("api_addr".into(), addr(v, API_PORT).into());
                e.insert("raft_addr".into(), addr(v, RAFT_PORT).into());
                e.insert("peer_addr".into(), addr(v, PEER_PORT).into());
                toml::Value::Table(e)
            })
            .collect();
        t.insert("initial_voters".into(), list.into());
    } else {
        let join: Vec<toml::Value> = voter_ids.map(|v| addr(v, API_PORT).into()).collect();
        t.insert("join".into(), join.into());
    }
    let mut transport = toml::Table::new();
    transport.insert("chaos".into(), true.into());
    t.insert("transport".into(), transport.into());
    // Mutual TLS, as a real cluster runs (certificates from `certs`).
    let certs = CertDir(data_dir.parent().unwrap_or(data_dir).join("certs"));
    let mut security = toml::Table::new();
    let path = |p: std::path::PathBuf| toml::Value::from(p.display().to_string());
    security.insert("ca_cert".into(), path(certs.ca_cert()));
    security.insert("cert".into(), path(certs.node_cert(id)));
    security.insert("key".into(), path(certs.node_key(id)));
    security.insert(
        "initial_admin_token_file".into(),
        path(certs.0.join("admin.token")),
    );
    t.insert("security".into(), security.into());
    merge(&mut t, extra);
    // `chaos` stays on whatever the scenario says: the harness needs it.
    if let Some(toml::Value::Table(tr)) = t.get_mut("transport") {
        tr.insert("chaos".into(), true.into());
    }
    toml::to_string(&t).context("encoding a node config")
}

/// Merges `over` into `base`, tables recursively.
pub fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

impl Cluster {
    /// Writes every node's config under `dir` (data dirs there too) and
    /// logs under `out`.
    pub fn new(
        topod: PathBuf,
        net: &Net,
        voters: usize,
        dir: &Path,
        out: &Path,
        extra: &toml::Table,
        history: History,
    ) -> anyhow::Result<Cluster> {
        // The cluster CA and a certificate per node naming its address (the
        // harness checks the nodes' API certificates by it).
        let certs = CertDir(dir.join("certs"));
        let ca = CertAuthority::generate("chaos", CA_VALIDITY)?;
        ca.write(&certs)?;
        for &id in net.nodes() {
            ca.issue(id, &[net.addr(id).to_string()], NODE_VALIDITY)?
                .write(&certs, id, false)?;
        }
        crate::http::use_cluster_ca(
            topod::security::tls::roots_from_pem(ca.cert_pem.as_bytes())
                .map_err(anyhow::Error::msg)?,
        );
        // The first admin token, which node 1 stores; the harness sends it.
        let token = topod::security::token::ensure_token_file(&certs.0.join("admin.token"))?;
        crate::http::use_token(token);
        let mut specs = BTreeMap::new();
        for &id in net.nodes() {
            let data = dir.join(format!("node{id}"));
            let text = node_config(net, id, voters, &data, extra)?;
            let config = dir.join(format!("node{id}.toml"));
            std::fs::write(&config, text)
                .with_context(|| format!("writing {}", config.display()))?;
            specs.insert(
                id,
                NodeSpec {
                    api: format!("{}:{API_PORT}", net.addr(id)),
                    config,
                    log: out.join(format!("node{id}.log")),
                },
            );
        }
        Ok(Cluster {
            topod,
            specs,
            procs: Mutex::new(BTreeMap::new()),
            history,
            api: Api::new(),
            voters,
        })
    }

    /// How many voters the cluster was bootstrapped with (nodes
    /// `1..=voters`).
    pub fn voters(&self) -> usize {
        self.voters
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.specs.keys().copied().collect()
    }

    /// Node `id`'s API address.
    pub fn api_addr(&self, id: NodeId) -> &str {
        self.specs.get(&id).map_or("", |s| s.api.as_str())
    }

    fn procs(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Proc>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts node `id` (appending to its log).
    pub fn start(&self, id: NodeId) -> anyhow::Result<()> {
        let spec = self.specs.get(&id).context("no such node")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("opening {}", spec.log.display()))?;
        let err = log.try_clone().context("log handle")?;
        // `ip netns exec` execs the command: the child's pid is topod's.
        let mut child = tokio::process::Command::new("ip")
            .args(["netns", "exec", &ns_name(id)])
            .arg(&self.topod)
            .arg("run")
            .arg("--config")
            .arg(&spec.config)
            .env("NO_COLOR", "1")
            // topod's own default filter, which logs an unreachable peer
            // once per change rather than on every heartbeat.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        let pid = child.id().context("child pid")?;
        let pid = Pid::from_raw(i32::try_from(pid).context("pid")?);
        let expected = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let h = self.history.clone();
        let exp = expected.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let detail = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            let expected = exp.load(Ordering::SeqCst);
            if !expected {
                eprintln!("topod-chaos: node {id} exited unexpectedly: {detail}");
            }
            h.process(id, "exited", expected, detail);
            if tx.send(true).is_err() {
                // Nobody waits for this exit.
            }
        });
        self.history
            .process(id, "started", true, format!("pid {pid}"));
        self.procs().insert(
            id,
            Proc {
                pid,
                expected,
                exited: rx,
            },
        );
        Ok(())
    }

    /// Waits until node `id` answers `/readyz` 200; records `ready`.
    pub async fn wait_ready(&self, id: NodeId, timeout: Duration) -> anyhow::Result<()> {
        crate::backend::poll_ready(&self.api, self.api_addr(id), &self.history, id, timeout).await
    }

    fn signal(
        &self,
        id: NodeId,
        sig: Signal,
        dying: bool,
    ) -> anyhow::Result<Option<tokio::sync::watch::Receiver<bool>>> {
        let procs = self.procs();
        let Some(p) = procs.get(&id) else {
            bail!("node {id} is not running");
        };
        if dying {
            p.expected.store(true, Ordering::SeqCst);
        }
        kill(p.pid, sig).with_context(|| format!("{sig} to node {id}"))?;
        Ok(Some(p.exited.clone()))
    }

    async fn await_exit(
        &self,
        id: NodeId,
        rx: Option<tokio::sync::watch::Receiver<bool>>,
        within: Duration,
    ) -> anyhow::Result<()> {
        if let Some(mut rx) = rx {
            let exited = tokio::time::timeout(within, rx.wait_for(|e| *e)).await;
            if exited.is_err() {
                bail!("node {id} did not exit within {within:?}");
            }
        }
        self.procs().remove(&id);
        Ok(())
    }

    /// `kill -9` node `id` and waits for it to be gone.
    pub async fn kill9(&self, id: NodeId) -> anyhow::Result<()> {
        let rx = self.signal(id, Signal::SIGKILL, true)?;
        self.history.process(id, "killed", true, "SIGKILL".into());
        self.await_exit(id, rx, Duration::from_secs(10)).await
    }

    pub fn pause(&self, id: NodeId) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGSTOP, false)?;
        self.history.process(id, "paused", true, "SIGSTOP".into());
        Ok(())
    }

    pub fn resume(&self, id: NodeId) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGCONT, false)?;
        self.history.process(id, "resumed", true, "SIGCONT".into());
        Ok(())
    }

    /// SIGTERM every node (SIGCONT first, a paused one would not die),
    /// SIGKILL any still there after 10 s.
    pub async fn stop_all(&self) {
        let ids: Vec<NodeId> = self.procs().keys().copied().collect();
        let mut waits = Vec::new();
        for id in ids {
            if let Err(e) = self.signal(id, Signal::SIGCONT, true) {
                eprintln!("topod-chaos: {e:#}");
            }
            match self.signal(id, Signal::SIGTERM, true) {
                Ok(rx) => waits.push((id, rx)),
                Err(e) => eprintln!("topod-chaos: {e:#}"),
            }
            self.history.process(id, "stopped", true, "SIGTERM".into());
        }
        for (id, rx) in waits {
            if self
                .await_exit(id, rx.clone(), Duration::from_secs(10))
                .await
                .is_err()
            {
                eprintln!("topod-chaos: node {id} ignored SIGTERM; SIGKILL");
                if let Ok(rx) = self.signal(id, Signal::SIGKILL, true) {
                    if let Err(e) = self.await_exit(id, rx, Duration::from_secs(5)).await {
                        eprintln!("topod-chaos: {e:#}");
                    }
                }
            }
        }
    }
}

impl Cluster {
    /// SIGKILLs every process at once (Ctrl-C, failure paths).
    pub fn kill_all_now(&self) {
        for (id, p) in self.procs().iter() {
            if !*p.exited.borrow() {
                p.expected.store(true, Ordering::SeqCst);
                if let Err(e) = kill(p.pid, Signal::SIGKILL) {
                    eprintln!("topod-chaos: cleanup: kill node {id}: {e}");
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all_now();
    }
}
