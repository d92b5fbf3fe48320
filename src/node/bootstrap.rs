//! Bringing a node into its cluster: initialising a new cluster from
//! `initial_voters` (once, by the lowest-id voter), joining a running one
//! as a learner, and refusing a voter whose data dir was wiped.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use tokio_util::sync::CancellationToken;

use super::NodeError;
use crate::api::forward::Forwarder;
use crate::api::routes::NodeIdentity;
use crate::api::types::{JoinRequest, MembersView};
use crate::config::NodeConfig;
use crate::control::types::{NodeAddr, Raft};
use crate::model::NodeId;
use crate::security::PeerHttp;

/// Attempts to join through the `join` addresses before giving up
/// (one round over all addresses per second: about ten minutes).
pub const MAX_JOIN_ROUNDS: u32 = 600;

/// Largest members answer read while probing.
const MAX_PROBE_BYTES: usize = 1024 * 1024;

/// Why a probe got no answer to use. Only `Unreachable` means "not
/// running": a bad status or an undecodable answer comes from a running
/// node, and a safety check must not treat it as absent.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{addr} is unreachable: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("{addr} did not answer within {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("{addr} answered {status}")]
    Status {
        addr: String,
        status: hyper::StatusCode,
    },
    #[error("{addr}'s answer cannot be read: {detail}")]
    Body { addr: String, detail: String },
    #[error("{addr}'s answer is not the expected JSON: {detail}")]
    Decode { addr: String, detail: String },
}

impl ProbeError {
    /// Whether the node did not answer at all (down, or not listening).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ProbeError::Unreachable { .. } | ProbeError::Timeout { .. }
        )
    }
}

/// Deadline of one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// GETs `path` from `api_addr` as JSON.
async fn probe<T: serde::de::DeserializeOwned>(
    peer: &PeerHttp,
    base: &str,
    path: &str,
) -> Result<T, ProbeError> {
    let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
        peer.client(PROBE_TIMEOUT, Duration::from_secs(1), 1);
    let addr = base.to_string();
    let uri: hyper::Uri =
        format!("{base}{path}")
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| ProbeError::Unreachable {
                addr: addr.clone(),
                detail: format!("bad address: {e}"),
            })?;
    let call = async {
        let resp = client.get(uri).await.map_err(|e| ProbeError::Unreachable {
            addr: addr.clone(),
            detail: e.to_string(),
        })?;
        if !resp.status().is_success() {
            return Err(ProbeError::Status {
                addr: addr.clone(),
                status: resp.status(),
            });
        }
        let bytes = Limited::new(resp.into_body(), MAX_PROBE_BYTES)
            .collect()
            .await
            .map_err(|e| ProbeError::Body {
                addr: addr.clone(),
                detail: e.to_string(),
            })?
            .to_bytes();
        serde_json::from_slice::<T>(&bytes).map_err(|e| ProbeError::Decode {
            addr: addr.clone(),
            detail: e.to_string(),
        })
    };
    match tokio::time::timeout(PROBE_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout {
            addr,
            after: PROBE_TIMEOUT,
        }),
    }
}

/// Probes of one voter before the wiped-disk check gives up on an answer
/// it cannot use (a bad status or an undecodable body), with
/// [`WIPE_CHECK_RETRY`] between.
pub const WIPE_CHECK_ATTEMPTS: u32 = 5;
/// Pause between those probes.
pub const WIPE_CHECK_RETRY: Duration = Duration::from_millis(200);

/// Refuses to start a voter whose data dir is empty while the other
/// voters already run a cluster that lists it under another UUID: its disk
/// was wiped, and rejoining with an empty log could elect a leader that
/// lacks committed entries. A voter that does not answer is skipped (it
/// is down: the others decide); one that answers something unusable
/// several times stops the start ([`NodeError::WipeCheck`]), since
/// skipping it could skip the check.
pub async fn check_not_wiped(
    config: &NodeConfig,
    my_uuid: &str,
    peer: &PeerHttp,
) -> Result<(), NodeError> {
    for voter in config
        .initial_voters
        .iter()
        .filter(|v| v.id != config.node_id)
    {
        let base = peer.api_base(&voter.node_addr());
        let Some(view) = members_of(peer, voter.id, &base).await? else {
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

/// Voter `id`'s membership view; `None` when it is unreachable.
async fn members_of(
    peer: &PeerHttp,
    id: NodeId,
    base: &str,
) -> Result<Option<MembersView>, NodeError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match probe::<MembersView>(peer, base, "/v1/cluster/members").await {
            Ok(view) => return Ok(Some(view)),
            Err(e) if e.is_unreachable() => {
                tracing::info!(voter = id, error = %e, "voter unreachable: not checked");
                return Ok(None);
            }
            Err(e) if attempt >= WIPE_CHECK_ATTEMPTS => {
                return Err(NodeError::WipeCheck {
                    peer: id,
                    detail: e.to_string(),
                })
            }
            Err(e) => {
                tracing::warn!(voter = id, error = %e, attempt, "unusable members answer");
                tokio::time::sleep(WIPE_CHECK_RETRY).await;
            }
        }
    }
}

/// How long the first voter waits for the others to answer with their
/// UUIDs before it initialises without the missing ones' UUIDs.
pub const VOTER_WAIT: Duration = Duration::from_secs(20);

/// Learns each initial voter's UUID from its `/v1/node/identity`, waiting
/// up to [`VOTER_WAIT`] for all of them.
async fn voter_uuids(config: &NodeConfig, peer: &PeerHttp) -> BTreeMap<NodeId, String> {
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
            let base = peer.api_base(&v.node_addr());
            match probe::<NodeIdentity>(peer, &base, "/v1/node/identity").await {
                Ok(id) if id.node_id == v.id && id.cluster_id == config.cluster_id => {
                    found.insert(v.id, id.node_uuid);
                }
                Ok(id) => tracing::warn!(
                    voter = v.id,
                    ?id,
                    "initial voter answers with another identity"
                ),
                Err(e) if e.is_unreachable() => {
                    tracing::debug!(voter = v.id, error = %e, "initial voter not up yet")
                }
                Err(e) => tracing::warn!(voter = v.id, error = %e, "initial voter's identity"),
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
    peer: &PeerHttp,
) -> Result<bool, NodeError> {
    let first = config.initial_voters.iter().map(|v| v.id).min();
    if first != Some(config.node_id) {
        return Ok(false);
    }
    let uuids = voter_uuids(config, peer).await;
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

/// Whether a join answer refuses this node for good: retrying cannot
/// help (the cluster knows its id under another UUID).
fn refused_for_good(status: hyper::StatusCode, body: &[u8]) -> bool {
    status == hyper::StatusCode::CONFLICT
        && serde_json::from_slice::<crate::api::types::ErrorBody>(body)
            .is_ok_and(|e| e.error.code == crate::api::types::codes::NODE_UUID_MISMATCH)
}

/// Asks the cluster (through any of `targets`) to add this node as a
/// learner; retries until one accepts, `cancel` fires, or the rounds run
/// out.
pub async fn join(
    targets: Vec<String>,
    me: NodeId,
    addr: NodeAddr,
    cancel: CancellationToken,
    peer: PeerHttp,
) -> Result<(), NodeError> {
    let forwarder = Forwarder::new(peer.clone(), None);
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
                    &forwarder.base(target),
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
                Ok((status, body)) if refused_for_good(status, &body) => {
                    return Err(NodeError::JoinRefused {
                        target: target.clone(),
                        detail: String::from_utf8_lossy(&body).into_owned(),
                    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// A server answering `/v1/cluster/members` with `status` and `body`.
    async fn serve(status: hyper::StatusCode, body: &'static str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/v1/cluster/members",
            get(move || async move { (status, body) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// Node 1 of a dev cluster whose voter 2 answers at `addr`.
    fn config_with_voter_2_at(addr: std::net::SocketAddr) -> NodeConfig {
        let dir = std::env::temp_dir();
        let mut config = NodeConfig::dev(1, 17101, &dir).unwrap();
        let v2 = config
            .initial_voters
            .iter_mut()
            .find(|v| v.id == 2)
            .unwrap();
        v2.api_addr = addr;
        // Voter 3's port is unused: unreachable, skipped.
        let v3 = config
            .initial_voters
            .iter_mut()
            .find(|v| v.id == 3)
            .unwrap();
        v3.api_addr = "127.0.0.1:1".parse().unwrap();
        config
    }

    #[tokio::test]
    async fn an_undecodable_or_failing_answer_is_not_taken_for_a_down_voter() {
        for (status, body) in [
            (hyper::StatusCode::OK, "not json"),
            (hyper::StatusCode::INTERNAL_SERVER_ERROR, "{}"),
        ] {
            let config = config_with_voter_2_at(serve(status, body).await);
            let err = check_not_wiped(&config, "my-uuid", &PeerHttp::insecure())
                .await
                .unwrap_err();
            match err {
                NodeError::WipeCheck { peer, detail } => {
                    assert_eq!(peer, 2);
                    assert!(detail.contains("answer"), "{status}: {detail}");
                }
                other => panic!("{status}: expected WipeCheck, got {other}"),
            }
        }
    }

    #[tokio::test]
    async fn a_listing_under_another_uuid_refuses_and_unreachable_voters_are_skipped() {
        let listed = r#"{"members":[{"id":1,"voter":true,"api_addr":"a","raft_addr":"b","peer_addr":"c","node_uuid":"old-uuid"}]}"#;
        let config = config_with_voter_2_at(serve(hyper::StatusCode::OK, listed).await);
        assert!(matches!(
            check_not_wiped(&config, "new-uuid", &PeerHttp::insecure()).await,
            Err(NodeError::Wiped { peer: 2, .. })
        ));
        assert!(check_not_wiped(&config, "old-uuid", &PeerHttp::insecure())
            .await
            .is_ok());
        let down = config_with_voter_2_at("127.0.0.1:1".parse().unwrap());
        assert!(check_not_wiped(&down, "new-uuid", &PeerHttp::insecure())
            .await
            .is_ok());
    }
}
