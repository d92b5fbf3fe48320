//! Bringing a node into its cluster: initialising a new cluster from
//! `initial_voters` (once, by the lowest-id voter), joining a running one
//! as a learner, and refusing a voter whose data dir was wiped.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

use super::NodeError;
use crate::api::forward::Forwarder;
use crate::api::routes::NodeIdentity;
use crate::api::types::{JoinRequest, MembersView};
use crate::config::NodeConfig;
use crate::control::types::{NodeAddr, Raft};
use crate::model::NodeId;

/// Attempts to join through the `join` addresses before giving up
/// (one round over all addresses per second: about ten minutes).
pub const MAX_JOIN_ROUNDS: u32 = 600;

/// Largest members answer read while probing.
const MAX_PROBE_BYTES: usize = 1024 * 1024;

/// GETs `path` from `api_addr` as JSON; `None` when it does not answer.
async fn probe<T: serde::de::DeserializeOwned>(api_addr: &str, path: &str) -> Option<T> {
    let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{api_addr}{path}").parse().ok()?;
    let call = async {
        let resp = client.get(uri).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let bytes = Limited::new(resp.into_body(), MAX_PROBE_BYTES)
            .collect()
            .await
            .ok()?
            .to_bytes();
        serde_json::from_slice::<T>(&bytes).ok()
    };
    tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .ok()
        .flatten()
}

/// Refuses to start a voter whose data dir is empty while the other
/// voters already run a cluster that lists it under another UUID: its disk
/// was wiped, and rejoining with an empty log could elect a leader that
/// lacks committed entries.
pub async fn check_not_wiped(config: &NodeConfig, my_uuid: &str) -> Result<(), NodeError> {
    for voter in config
        .initial_voters
        .iter()
        .filter(|v| v.id != config.node_id)
    {
        let path = "/v1/cluster/members";
        let Some(view) = probe::<MembersView>(&voter.api_addr.to_string(), path).await else {
            continue;
        };
        let listed = view.members.iter().find(|m| m.id == config.node_id);
        if listed.is_some_and(|m| !m.node_uuid.is_empty() && m.node_uuid != my_uuid) {
            return Err(NodeError::Wiped {
                node_id: config.node_id,
                data_dir: config.data_dir.clone(),
                peer: voter.id,
            });
        }
    }
    Ok(())
}

/// How long the first voter waits for the others to answer with their
/// UUIDs before it initialises without the missing ones' UUIDs.
pub const VOTER_WAIT: Duration = Duration::from_secs(20);

/// Learns each initial voter's UUID from its `/v1/node/identity`, waiting
/// up to [`VOTER_WAIT`] for all of them.
async fn voter_uuids(config: &NodeConfig) -> BTreeMap<NodeId, String> {
    let deadline = tokio::time::Instant::now() + VOTER_WAIT;
    let mut found = BTreeMap::new();
    loop {
        for v in config
            .initial_voters
            .iter()
            .filter(|v| v.id != config.node_id)
        {
            if found.contains_key(&v.id) {
                continue;
            }
            let addr = v.api_addr.to_string();
            if let Some(id) = probe::<NodeIdentity>(&addr, "/v1/node/identity").await {
                if id.node_id == v.id && id.cluster_id == config.cluster_id {
                    found.insert(v.id, id.node_uuid);
                } else {
                    tracing::warn!(
                        voter = v.id,
                        ?id,
                        "initial voter answers with another identity"
                    );
                }
            }
        }
        if found.len() + 1 >= config.initial_voters.len() || tokio::time::Instant::now() >= deadline
        {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Initialises the cluster when this node is the lowest-id initial voter
/// and Raft is not initialised yet. Restarting never re-initialises.
pub async fn initialize_if_first(
    raft: &Raft,
    config: &NodeConfig,
    me: &NodeAddr,
) -> Result<bool, NodeError> {
    let first = config.initial_voters.iter().map(|v| v.id).min();
    if first != Some(config.node_id) {
        return Ok(false);
    }
    let uuids = voter_uuids(config).await;
    let voters: BTreeMap<NodeId, NodeAddr> = config
        .initial_voters
        .iter()
        .map(|v| {
            let addr = if v.id == config.node_id {
                me.clone()
            } else {
                let mut a = v.node_addr();
                a.node_uuid = uuids.get(&v.id).cloned().unwrap_or_default();
                if a.node_uuid.is_empty() {
                    tracing::warn!(
                        voter = v.id,
                        "initial voter did not answer: its UUID stays unknown"
                    );
                }
                a
            };
            (v.id, addr)
        })
        .collect();
    tracing::info!(?voters, "initialising the cluster");
    raft.initialize(voters)
        .await
        .map_err(|e| NodeError::Raft(format!("initialising the cluster: {e}")))?;
    Ok(true)
}

/// Asks the cluster (through any of `targets`) to add this node as a
/// learner; retries until one accepts, `cancel` fires, or the rounds run
/// out.
pub async fn join(
    targets: Vec<String>,
    me: NodeId,
    addr: NodeAddr,
    cancel: CancellationToken,
) -> Result<(), NodeError> {
    let forwarder = Forwarder::default();
    let request = JoinRequest {
        id: me,
        api_addr: addr.api_addr.clone(),
        raft_addr: addr.raft_addr.clone(),
        peer_addr: addr.peer_addr.clone(),
        node_uuid: addr.node_uuid.clone(),
    };
    for round in 0..MAX_JOIN_ROUNDS {
        for target in &targets {
            let sent = forwarder
                .post_json(
                    target,
                    "/v1/cluster/members",
                    &request,
                    Duration::from_secs(30),
                )
                .await;
            match sent {
                Ok((status, _)) if status.is_success() => {
                    tracing::info!(%target, "joined the cluster as a learner");
                    return Ok(());
                }
                Ok((status, body)) => tracing::info!(
                    %target, %status, round,
                    body = %String::from_utf8_lossy(&body), "join not accepted yet"
                ),
                Err(e) => tracing::debug!(%target, error = %e, "join target unreachable"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    Err(NodeError::JoinFailed { targets })
}
