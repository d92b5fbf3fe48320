//! openraft type configuration and the payload types of the Raft log.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::model::{CommandResponse, Envelope, EnvelopeError, NodeId};

/// Application data of a log entry: the postcard bytes of an [`Envelope`].
///
/// The bytes are decoded only when the entry is applied, so a node that
/// meets an envelope it does not understand stops there with a clear error
/// instead of failing somewhere inside storage or the network.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPayload(pub Vec<u8>);

impl LogPayload {
    /// Encodes an envelope.
    pub fn new(envelope: &Envelope) -> Self {
        LogPayload(envelope.encode())
    }

    /// Decodes the envelope.
    pub fn decode(&self) -> Result<Envelope, EnvelopeError> {
        Envelope::decode(&self.0)
    }
}

impl fmt::Debug for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decode() {
            Ok(e) => write!(f, "{e:?}"),
            Err(_) => write!(f, "LogPayload({} undecodable bytes)", self.0.len()),
        }
    }
}

impl fmt::Display for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A member's addresses, stored in the Raft membership from the first
/// version on so that the data plane needs no migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// HTTP admin API, `host:port`.
    pub api_addr: String,
    /// Raft RPC, `host:port`.
    pub raft_addr: String,
    /// Overlay peer transport, `host:port`.
    pub peer_addr: String,
    /// The node's UUID, created with its data dir: a wiped disk shows up as
    /// a new UUID under a known node id.
    pub node_uuid: String,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "api={} raft={} peer={}",
            self.api_addr, self.raft_addr, self.peer_addr
        )
    }
}

openraft::declare_raft_types!(
    /// openraft types of topod.
    pub TypeConfig:
        D = LogPayload,
        R = CommandResponse,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle of a topod node.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// A stored membership.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeAddr>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeAddr>;
/// A snapshot.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// A storage error.
pub type StorageError = openraft::StorageError<NodeId>;

/// Calls `on` with Raft's metrics now and at every change, until `cancel`
/// or until Raft stops (the loop of the small tasks that mirror a piece of
/// the metrics for the RPC layer).
pub async fn follow_metrics(
    raft: Raft,
    cancel: tokio_util::sync::CancellationToken,
    mut on: impl FnMut(&openraft::RaftMetrics<crate::model::NodeId, NodeAddr>),
) {
    let mut rx = raft.metrics();
    loop {
        on(&rx.borrow_and_update());
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}
