//! `topod dev`: a local cluster of child processes on loopback.
//!
//! One child process per node (the `metrics` recorder is global to a
//! process): nodes 1–3 are voters, the others learners that join them.
//! Data lives under `<data_dir>/node<id>` and each node logs to
//! `<data_dir>/node<id>.log`; running again on the same data dir resumes
//! the cluster. Ctrl-C (or SIGTERM) stops the children gracefully.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::NodeConfig;
use crate::security::certs::CertDir;

/// Largest dev cluster (one process per node).
pub const MAX_DEV_NODES: u64 = crate::config::DEV_MAX_NODES;

/// How long the supervisor waits for the cluster to become ready: 30 s,
/// and 300 ms more for every node (joins go through the leader one by one).
pub fn ready_timeout(nodes: u64) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(300) * nodes as u32
}
/// How long a child may take to stop after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the dev cluster could not run.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("--nodes must be 1..={MAX_DEV_NODES}, got {0}")]
    Nodes(u64),
    #[error("config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("node {node} exited during start-up ({status}); see {}", log.display())]
    ChildExited {
        node: u64,
        status: std::process::ExitStatus,
        log: PathBuf,
    },
    #[error("the cluster was not ready within {0:?}")]
    NotReady(Duration),
    #[error("dev certificates: {0}")]
    Certs(String),
    #[error("admin token: {0}")]
    Token(#[from] crate::security::token::TokenFileError),
}

/// A running child node.
struct ChildNode {
    id: u64,
    child: Child,
    log: PathBuf,
    api: String,
}

/// What `topod dev` is asked to start.
#[derive(Debug, Clone)]
pub struct DevSpec {
    pub nodes: u64,
    pub data_dir: PathBuf,
    pub api_base_port: u16,
    /// A base config file layered on every node's generated config (as
    /// `topod run --config`); `TOPOD_*` variables go on top of it.
    pub config: Option<PathBuf>,
}

/// The config of dev node `id`: the generated layout with the spec's
/// config file and the `TOPOD_*` variables on top (validated).
pub fn dev_node_config(spec: &DevSpec, id: u64) -> Result<NodeConfig, DevError> {
    if spec.nodes == 0 || spec.nodes > MAX_DEV_NODES {
        return Err(DevError::Nodes(spec.nodes));
    }
    Ok(NodeConfig::dev(id, spec.api_base_port, &spec.data_dir)?
        .with_cluster_size(spec.nodes)?
        .layered(spec.config.as_deref(), crate::config::ENV_PREFIX)?)
}

/// The configs of a dev cluster (validated).
pub fn dev_configs(spec: &DevSpec) -> Result<Vec<NodeConfig>, DevError> {
    if spec.nodes == 0 || spec.nodes > MAX_DEV_NODES {
        return Err(DevError::Nodes(spec.nodes));
    }
    (1..=spec.nodes)
        .map(|id| dev_node_config(spec, id))
        .collect()
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevError {
    let what = what.into();
    move |source| DevError::Io { what, source }
}

fn spawn(exe: &Path, spec: &DevSpec, config: &NodeConfig) -> Result<ChildNode, DevError> {
    let id = config.node_id;
    let log = spec.data_dir.join(format!("node{id}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io(format!("opening {}", log.display())))?;
    let err = file.try_clone().map_err(io("cloning the log handle"))?;
    let mut command = Command::new(exe);
    command
        .arg("dev-node")
        .args(["--id", &id.to_string(), "--nodes", &spec.nodes.to_string()])
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .args(["--api-base-port", &spec.api_base_port.to_string()]);
    if let Some(path) = &spec.config {
        command.arg("--config").arg(path);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(io(format!("starting node {id}")))?;
    let api = config.api_addr.to_string();
    Ok(ChildNode {
        id,
        child,
        log,
        api,
    })
}

/// Polls every node's `/readyz` until all answer 200, printing how many
/// are ready as that changes.
async fn wait_ready(
    children: &mut [ChildNode],
    roots: Option<rustls::RootCertStore>,
) -> Result<(), DevError> {
    let scheme = if roots.is_some() { "https" } else { "http" };
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        crate::security::client::operator_client(roots, Duration::from_millis(500));
    let timeout = ready_timeout(children.len() as u64);
    let deadline = Instant::now() + timeout;
    let mut shown = 0;
    loop {
        let mut ready = 0;
        for c in children.iter_mut() {
            if let Some(status) = c.child.try_wait().map_err(io("checking a child"))? {
                return Err(DevError::ChildExited {
                    node: c.id,
                    status,
                    log: c.log.clone(),
                });
            }
            let uri = format!("{scheme}://{}/readyz", c.api)
                .parse()
                .expect("valid URI");
            if let Ok(Ok(resp)) =
                tokio::time::timeout(Duration::from_millis(500), client.get(uri)).await
            {
                if resp.status().is_success() {
                    ready += 1;
                }
            }
        }
        if ready == children.len() {
            return Ok(());
        }
        if ready != shown && children.len() > 9 {
            println!("  {ready}/{} ready", children.len());
            shown = ready;
        }
        if Instant::now() > deadline {
            return Err(DevError::NotReady(timeout));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stop(children: &mut [ChildNode]) {
    for c in children.iter() {
        if let Err(e) = kill(Pid::from_raw(c.child.id() as i32), Signal::SIGTERM) {
            eprintln!("node {}: SIGTERM failed: {e}", c.id);
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for c in children.iter_mut() {
        loop {
            match c.child.try_wait() {
                Ok(Some(status)) => {
                    eprintln!("node {} stopped ({status})", c.id);
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    eprintln!("node {} did not stop in time: killing it", c.id);
                    if let Err(e) = c.child.kill() {
                        eprintln!("node {}: kill failed: {e}", c.id);
                    }
                    if let Err(e) = c.child.wait() {
                        eprintln!("node {}: wait failed: {e}", c.id);
                    }
                    break;
                }
            }
        }
    }
}

/// Creates the dev cluster's CA and node certificates under
/// `<data dir>/certs` (kept across runs), unless the nodes run insecure or
/// were given other certificate files; the CA to trust, if any.
fn dev_certificates(
    spec: &DevSpec,
    configs: &[NodeConfig],
) -> Result<Option<rustls::RootCertStore>, DevError> {
    let Some(first) = configs.first() else {
        return Ok(None);
    };
    if first.security.insecure {
        return Ok(None);
    }
    let dir = CertDir(spec.data_dir.join("certs"));
    let own: Vec<u64> = configs
        .iter()
        .filter(|c| c.security.cert.as_deref() == Some(dir.node_cert(c.node_id).as_path()))
        .map(|c| c.node_id)
        .collect();
    if !own.is_empty() {
        crate::security::certs::provision(&dir, &first.cluster_id, own)
            .map_err(|e| DevError::Certs(e.to_string()))?;
    }
    let ca = first
        .security
        .ca_cert
        .clone()
        .unwrap_or_else(|| dir.ca_cert());
    crate::security::client::roots_from_file(&ca)
        .map(Some)
        .map_err(DevError::Certs)
}

/// The dev cluster's admin token: created (random, mode 0600) on the
/// first start in the file the nodes' `security.initial_admin_token_file`
/// names, kept on later starts. `None` when the nodes have none (a
/// `--config` that unset it).
fn dev_token(configs: &[NodeConfig]) -> Result<Option<(String, PathBuf)>, DevError> {
    let Some(path) = configs
        .first()
        .and_then(|c| c.security.initial_admin_token_file.clone())
    else {
        return Ok(None);
    };
    let token = crate::security::token::ensure_token_file(&path)?;
    Ok(Some((token, path)))
}

/// Runs a dev cluster until Ctrl-C or SIGTERM.
pub async fn run_dev(spec: &DevSpec) -> Result<(), DevError> {
    let configs = dev_configs(spec)?;
    let (nodes, data_dir) = (spec.nodes, spec.data_dir.as_path());
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    let roots = dev_certificates(spec, &configs)?;
    let scheme = if roots.is_some() { "https" } else { "http" };
    let token = dev_token(&configs)?;
    let exe = std::env::current_exe().map_err(io("locating the topod binary"))?;
    let mut children = Vec::new();
    for c in &configs {
        match spawn(&exe, spec, c) {
            Ok(child) => children.push(child),
            Err(e) => {
                stop(&mut children);
                return Err(e);
            }
        }
    }
    println!(
        "topod dev: {nodes} node(s), data under {}",
        data_dir.display()
    );
    if let Some((token, path)) = &token {
        println!("  admin token: {token}");
        println!(
            "  topoctl finds it in {} (or set TOPOCTL_TOKEN)",
            path.display()
        );
    }
    // Past a screenful, the voters and the last node stand for the rest.
    let shown: Vec<&NodeConfig> = if configs.len() > 12 {
        let mut v: Vec<&NodeConfig> = configs.iter().take(4).collect();
        v.extend(configs.last());
        v
    } else {
        configs.iter().collect()
    };
    for c in shown {
        if configs.len() > 12 && c.node_id == nodes {
            println!(
                "  ... nodes 5..{} alike (API port base + id - 1)",
                nodes - 1
            );
        }
        let role = if c.is_initial_voter() {
            "voter"
        } else {
            "learner"
        };
        println!(
            "  node {}  api {scheme}://{}  raft {}  ({role}, log {})",
            c.node_id,
            c.api_addr,
            c.raft_addr,
            data_dir.join(format!("node{}.log", c.node_id)).display()
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("installing the SIGTERM handler"))?;
    tokio::select! {
        r = wait_ready(&mut children, roots.clone()) => match r {
            Ok(()) => {
                let endpoints: Vec<&str> = children.iter().take(3).map(|c| c.api.as_str()).collect();
                println!("cluster ready. Try: topoctl --endpoints {} status", endpoints.join(","));
                if roots.is_some() {
                    println!(
                        "  (mutual TLS between the nodes; topoctl trusts the cluster CA {} by itself \
                         when run from this directory, else pass --data-dir {} or --ca-cert)",
                        CertDir(data_dir.join("certs")).ca_cert().display(),
                        data_dir.display()
                    );
                }
                println!("Ctrl-C stops the cluster.");
            }
            Err(e) => {
                stop(&mut children);
                return Err(e);
            }
        },
        _ = tokio::signal::ctrl_c() => { stop(&mut children); return Ok(()); }
        _ = term.recv() => { stop(&mut children); return Ok(()); }
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("stopping the cluster");
    stop(&mut children);
    Ok(())
}
