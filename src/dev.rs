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

/// Largest dev cluster.
pub const MAX_DEV_NODES: u64 = 9;
/// How long the supervisor waits for the cluster to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
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
}

/// A running child node.
struct ChildNode {
    id: u64,
    child: Child,
    log: PathBuf,
    api: String,
}

/// The configs of a dev cluster (validated).
pub fn dev_configs(
    nodes: u64,
    data_dir: &Path,
    api_base_port: u16,
) -> Result<Vec<NodeConfig>, DevError> {
    if nodes == 0 || nodes > MAX_DEV_NODES {
        return Err(DevError::Nodes(nodes));
    }
    Ok(NodeConfig::dev_cluster(nodes, api_base_port, data_dir)?)
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevError {
    let what = what.into();
    move |source| DevError::Io { what, source }
}

fn spawn(
    exe: &Path,
    id: u64,
    nodes: u64,
    data_dir: &Path,
    base: u16,
) -> Result<ChildNode, DevError> {
    let log = data_dir.join(format!("node{id}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io(format!("opening {}", log.display())))?;
    let err = file.try_clone().map_err(io("cloning the log handle"))?;
    let child = Command::new(exe)
        .arg("dev-node")
        .args(["--id", &id.to_string(), "--nodes", &nodes.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--api-base-port", &base.to_string()])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(io(format!("starting node {id}")))?;
    let api = format!("127.0.0.1:{}", u32::from(base) + id as u32 - 1);
    Ok(ChildNode {
        id,
        child,
        log,
        api,
    })
}

/// Polls every node's `/readyz` until all answer 200.
async fn wait_ready(children: &mut [ChildNode]) -> Result<(), DevError> {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let deadline = Instant::now() + READY_TIMEOUT;
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
            let uri = format!("http://{}/readyz", c.api)
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
        if Instant::now() > deadline {
            return Err(DevError::NotReady(READY_TIMEOUT));
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

/// Runs a dev cluster until Ctrl-C or SIGTERM.
pub async fn run_dev(nodes: u64, data_dir: &Path, api_base_port: u16) -> Result<(), DevError> {
    let configs = dev_configs(nodes, data_dir, api_base_port)?;
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    let exe = std::env::current_exe().map_err(io("locating the topod binary"))?;
    let mut children = Vec::new();
    for c in &configs {
        match spawn(&exe, c.node_id, nodes, data_dir, api_base_port) {
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
    for c in &configs {
        let role = if c.is_initial_voter() {
            "voter"
        } else {
            "learner"
        };
        println!(
            "  node {}  api http://{}  raft {}  ({role}, log {})",
            c.node_id,
            c.api_addr,
            c.raft_addr,
            data_dir.join(format!("node{}.log", c.node_id)).display()
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("installing the SIGTERM handler"))?;
    tokio::select! {
        r = wait_ready(&mut children) => match r {
            Ok(()) => {
                let endpoints: Vec<&str> = children.iter().map(|c| c.api.as_str()).collect();
                println!("cluster ready. Try: topoctl --endpoints {} status", endpoints.join(","));
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
