//! `GET /v1/cluster/links`: every member's data-plane stats, gathered by
//! the node asked (the admin UI draws its graph from it).

use serde::{Deserialize, Serialize};

use super::NodeStats;
use crate::model::NodeId;

/// Most members asked at once by one `GET /v1/cluster/links`.
pub const CLUSTER_LINKS_CONCURRENCY: usize = 16;
/// Deadline of each member's `GET /v1/node/stats`, ms.
pub const CLUSTER_LINKS_TIMEOUT_MS: u64 = 1_000;

/// One member's part of [`ClusterLinks`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberLinks {
    pub id: NodeId,
    /// Raft voter (else learner).
    pub voter: bool,
    pub api_addr: String,
    /// The member answered (with stats, or 409 `no_data_plane`).
    pub reachable: bool,
    /// Why there are no stats: unreachable, timed out, an error status,
    /// a body that does not decode, or `no_data_plane`.
    pub error: Option<String>,
    /// Its `GET /v1/node/stats`, when it gave them.
    pub stats: Option<NodeStats>,
}

/// The answer of `GET /v1/cluster/links`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterLinks {
    /// The node that gathered the answer.
    pub served_by: NodeId,
    /// The leader as that node knows it.
    pub leader: Option<NodeId>,
    /// Every member of the membership, ascending by id.
    pub members: Vec<MemberLinks>,
}
