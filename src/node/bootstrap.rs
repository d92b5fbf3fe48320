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
use crate::api::types::{JoinRequest, MembersView};
use crate::config::NodeConfig;
use crate::control::types::{NodeAddr, Raft};
use crate::model::NodeId;

/// Attempts to join through the `join` addresses before giving up
/// (one round over all addresses per second: about ten minutes).
pub const MAX_JOIN_ROUNDS: u32 = 600;

/// Largest members answer read while probing.
const MAX_PROBE_BYTES: usize = 1024 * 1024;

/// Asks `api_addr` for its membership; `None` when it does not answer.
async fn probe_members(api_addr: &str) -> Option<MembersView> {
    let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{api_addr}/v1/cluster/members").parse().ok()?;
    let call = async {
        let resp = client.get(uri).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let bytes = Limited::new(resp.into_body(), MAX_PROBE_BYTES).collect().await.ok()?.to_bytes();
        serde_json::from_slice::<MembersView>(&bytes).ok()
    };
    tokio::time::timeout(Duration::from_secs(1), call).await.ok().flatten()
}

/// Refuses to bootstrap a voter whose data dir is empty while the other
/// voters already run a cluster that has it as a member: its disk was
/// wiped, and initialising again would split the cluster.
pub async fn check_not_wiped(config: &NodeConfig) -> Result<(), NodeError> {
    for voter in config.initial_voters.iter().filter(|v| v.id != config.node_id) {
        let Some(view) = probe_members(&voter.api_addr.to_string()).await else {
            continue;
        };
        if view.members.iter().any(|m| m.id == config.node_id) {
            return Err(NodeError::Wiped {
                node_id: config.node_id,
                data_dir: config.data_dir.clone(),
                peer: voter.id,
            });
        }
    }
    Ok(())
}

/// Initialises the cluster when this node is the lowest-id initial voter
/// and Raft is not initialised yet. Restarting never re-initialises.
pub async fn initialize_if_first(raft: &Raft, config: &NodeConfig, me: &NodeAddr) -> Result<bool, NodeError> {
    let first = config.initial_voters.iter().map(|v| v.id).min();
    if first != Some(config.node_id) {
        return Ok(false);
    }
    let voters: BTreeMap<NodeId, NodeAddr> = config
        .initial_voters
        .iter()
        .map(|v| {
            let addr = if v.id == config.node_id { me.clone() } else { v.node_addr() };
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
pub async fn join(targets: Vec<String>, me: NodeId, addr: NodeAddr, cancel: CancellationToken) -> Result<(), NodeError> {
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
                .post_json(target, "/v1/cluster/members", &request, Duration::from_secs(30))
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
