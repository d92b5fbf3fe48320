//! Where a run's nodes live and how faults reach them: `netns` (real
//! `topod run` processes, one per network namespace on the harness's
//! bridge, partitions as iptables rules; [`crate::netns`],
//! [`crate::cluster`]) or `docker` (the Compose cluster, faults by
//! Docker; [`crate::docker`]). The workload, the nemesis schedule and the
//! checker are the same for both: they see a node as an id and an API
//! address, and ask this enum to start, kill, pause, partition and heal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cluster::Cluster;
use crate::docker::Compose;
use crate::docker_plan::Shape;
use crate::history::History;
use crate::http::Api;
use crate::nemesis::NemesisList;
use crate::netns::Net;
use crate::scenario::Scenario;
use crate::NodeId;

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Processes in network namespaces (root; iptables, ip netns).
    Netns,
    /// The Compose cluster (docker, docker-compose, the topod image).
    Docker,
}

/// What a run needs to make its backend.
#[derive(Debug, Clone)]
pub enum Choice {
    Netns {
        topod: PathBuf,
    },
    Docker {
        compose_file: PathBuf,
        image: String,
        shape: Shape,
    },
}

/// A run's nodes.
pub enum Backend {
    Netns { net: Arc<Net>, cluster: Cluster },
    Docker(Compose),
}

/// Polls `addr`'s `/readyz` until 200 (records `ready`) or `timeout`.
pub async fn poll_ready(
    api: &Api,
    addr: &str,
    history: &History,
    id: NodeId,
    timeout: Duration,
) -> anyhow::Result<()> {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        let ans = api.get(addr, "/readyz", Duration::from_secs(1)).await;
        if matches!(&ans, Ok(a) if a.status == 200) {
            history.process(id, "ready", true, String::new());
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            bail!("node {id} not ready within {timeout:?}: {ans:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Backend {
    /// Makes the backend's network (netns) or files (docker) under
    /// `temp`; starts no node.
    pub fn prepare(
        choice: Choice,
        s: &Scenario,
        temp: &Path,
        out: &Path,
        history: History,
    ) -> anyhow::Result<Backend> {
        match choice {
            Choice::Netns { topod } => {
                let net = Arc::new(Net::create(s.subnet, s.nodes)?);
                let cluster = Cluster::new(topod, &net, s.voters, temp, out, &s.node, history)?;
                Ok(Backend::Netns { net, cluster })
            }
            Choice::Docker {
                compose_file,
                image,
                shape,
            } => Ok(Backend::Docker(Compose::new(
                &compose_file,
                &image,
                shape,
                &s.node,
                temp,
                out,
                history,
            )?)),
        }
    }

    /// Refuses, by name, nemeses this backend cannot inject.
    pub fn check_nemeses(kind: Kind, list: &NemesisList) -> Result<(), String> {
        match kind {
            Kind::Netns => Ok(()),
            Kind::Docker => crate::docker_plan::check_nemeses(list),
        }
    }

    /// Starts every node (after the TCP check between namespaces, or by
    /// `docker-compose up`).
    pub async fn start_all(&self) -> anyhow::Result<()> {
        match self {
            Backend::Netns { net, cluster } => {
                crate::probe::check_mesh(net)
                    .await
                    .context("TCP check between namespaces")?;
                for id in cluster.ids() {
                    cluster.start(id)?;
                }
            }
            Backend::Docker(c) => c
                .up()
                .await
                .with_context(|| format!("docker-compose up (project {})", c.project()))?,
        }
        Ok(())
    }

    pub fn ids(&self) -> Vec<NodeId> {
        match self {
            Backend::Netns { cluster, .. } => cluster.ids(),
            Backend::Docker(c) => c.ids(),
        }
    }

    /// How many voters the cluster was bootstrapped with (nodes
    /// `1..=voters`).
    pub fn voters(&self) -> usize {
        match self {
            Backend::Netns { cluster, .. } => cluster.voters(),
            Backend::Docker(c) => c.voters(),
        }
    }

    /// Node `id`'s API address, as the harness reaches it.
    pub fn api_addr(&self, id: NodeId) -> &str {
        match self {
            Backend::Netns { cluster, .. } => cluster.api_addr(id),
            Backend::Docker(c) => c.api_addr(id),
        }
    }

    pub async fn wait_ready(&self, id: NodeId, timeout: Duration) -> anyhow::Result<()> {
        match self {
            Backend::Netns { cluster, .. } => cluster.wait_ready(id, timeout).await,
            Backend::Docker(c) => {
                poll_ready(&Api::new(), c.api_addr(id), c.history(), id, timeout).await
            }
        }
    }

    /// Starts node `id` again after a kill, on the same data.
    pub async fn start(&self, id: NodeId) -> anyhow::Result<()> {
        match self {
            Backend::Netns { cluster, .. } => cluster.start(id),
            Backend::Docker(c) => Ok(c.start(id).await?),
        }
    }

    /// SIGKILL (`kill -9`, `docker kill`), and waits for the exit.
    pub async fn kill9(&self, id: NodeId) -> anyhow::Result<()> {
        match self {
            Backend::Netns { cluster, .. } => cluster.kill9(id).await,
            Backend::Docker(c) => Ok(c.kill(id).await?),
        }
    }

    pub async fn pause(&self, id: NodeId) -> anyhow::Result<()> {
        match self {
            Backend::Netns { cluster, .. } => cluster.pause(id),
            Backend::Docker(c) => Ok(c.pause(id).await?),
        }
    }

    pub async fn resume(&self, id: NodeId) -> anyhow::Result<()> {
        match self {
            Backend::Netns { cluster, .. } => cluster.resume(id),
            Backend::Docker(c) => Ok(c.resume(id).await?),
        }
    }

    /// Every node drops the peers `blocked` names for it; replaces the
    /// previous partition.
    pub async fn partition(
        &self,
        blocked: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    ) -> anyhow::Result<()> {
        match self {
            Backend::Netns { net, .. } => Ok(net.partition(blocked).await?),
            Backend::Docker(c) => Ok(c.partition(blocked).await?),
        }
    }

    /// Removes every partition.
    pub async fn heal(&self) -> anyhow::Result<()> {
        match self {
            Backend::Netns { net, .. } => Ok(net.heal().await?),
            Backend::Docker(c) => Ok(c.heal().await?),
        }
    }

    /// Stops every node gracefully (SIGTERM, then SIGKILL); with docker,
    /// also saves the logs.
    pub async fn stop_all(&self) {
        match self {
            Backend::Netns { cluster, .. } => cluster.stop_all().await,
            Backend::Docker(c) => c.stop_all().await,
        }
    }

    /// Removes what the backend made, at once (any exit path; blocking).
    pub fn cleanup(&self) {
        match self {
            Backend::Netns { net, cluster } => {
                cluster.kill_all_now();
                for e in net.teardown() {
                    eprintln!("topod-chaos: cleanup: {e}");
                }
            }
            Backend::Docker(c) => c.remove(),
        }
    }
}
