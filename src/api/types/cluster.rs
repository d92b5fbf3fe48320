//! `/v1/cluster/...`: a node's Raft status and the membership.

use std::net::SocketAddr;

use openraft::{Membership, RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};

use super::BadRequest;
use crate::control::types::NodeAddr;
use crate::model::NodeId;

/// A node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    /// The Raft core is stopping.
    Shutdown,
}

impl Role {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

impl From<ServerState> for Role {
    fn from(s: ServerState) -> Self {
        match s {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

/// `GET /v1/cluster/status`: this node's view of Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to the state machine.
    pub applied_index: Option<u64>,
    /// Commit index last heard, when the node tracks it (openraft 0.9's
    /// metrics do not carry it).
    #[serde(default)]
    pub commit_index: Option<u64>,
    /// This node's API address, `host:port` (the bound one).
    pub api_addr: String,
}

impl ClusterStatus {
    /// The status from a copy of `raft.metrics().borrow()`.
    pub fn from_metrics(m: &RaftMetrics<NodeId, NodeAddr>, api_addr: impl Into<String>) -> Self {
        ClusterStatus {
            node_id: m.id,
            role: m.state.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            commit_index: None,
            api_addr: api_addr.into(),
        }
    }
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub id: NodeId,
    /// Raft voter (else learner).
    pub voter: bool,
    pub api_addr: String,
    pub raft_addr: String,
    pub peer_addr: String,
    pub node_uuid: String,
}

impl MemberView {
    /// The view of member `id` with addresses `addr`.
    pub fn new(id: NodeId, voter: bool, addr: &NodeAddr) -> Self {
        MemberView {
            id,
            voter,
            api_addr: addr.api_addr.clone(),
            raft_addr: addr.raft_addr.clone(),
            peer_addr: addr.peer_addr.clone(),
            node_uuid: addr.node_uuid.clone(),
        }
    }
}

/// `GET /v1/cluster/members` (also the answer to join, promote, remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersView {
    /// Ordered by id.
    pub members: Vec<MemberView>,
}

impl From<&Membership<NodeId, NodeAddr>> for MembersView {
    fn from(m: &Membership<NodeId, NodeAddr>) -> Self {
        let voters: Vec<NodeId> = m.voter_ids().collect();
        let mut members: Vec<MemberView> = m
            .nodes()
            .map(|(id, addr)| MemberView::new(*id, voters.contains(id), addr))
            .collect();
        members.sort_by_key(|v| v.id);
        MembersView { members }
    }
}

/// Body of `POST /v1/cluster/members`: add a node as a learner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Node id, at least 1.
    pub id: NodeId,
    /// `host:port` of its API.
    pub api_addr: String,
    /// `host:port` of its Raft RPC.
    pub raft_addr: String,
    /// `host:port` of its overlay transport.
    pub peer_addr: String,
    /// The UUID of its data dir.
    pub node_uuid: String,
}

impl JoinRequest {
    /// Checks the fields and gives the addresses to store in the
    /// membership. Nothing changes on error.
    pub fn to_node_addr(&self) -> Result<NodeAddr, BadRequest> {
        if self.id == 0 {
            return Err(BadRequest::new("id must be at least 1"));
        }
        for (key, value) in [
            ("api_addr", &self.api_addr),
            ("raft_addr", &self.raft_addr),
            ("peer_addr", &self.peer_addr),
        ] {
            value.parse::<SocketAddr>().map_err(|e| {
                BadRequest::new(format!("{key} `{value}` is not an ip:port address: {e}"))
            })?;
        }
        uuid::Uuid::parse_str(&self.node_uuid).map_err(|e| {
            BadRequest::new(format!("node_uuid `{}` is not a UUID: {e}", self.node_uuid))
        })?;
        Ok(NodeAddr {
            api_addr: self.api_addr.clone(),
            raft_addr: self.raft_addr.clone(),
            peer_addr: self.peer_addr.clone(),
            node_uuid: self.node_uuid.clone(),
        })
    }
}
