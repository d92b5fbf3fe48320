//! Raft RPC client: openraft's `RaftNetwork` over HTTP/1 (hyper) with
//! postcard bodies.
//!
//! Every request carries the cluster id in [`CLUSTER_HEADER`]; the server
//! refuses other clusters. Every RPC has a deadline (openraft's TTL, capped
//! by the configured RPC timeout). For AppendEntries — heartbeats and
//! replication — openraft 0.9 sets that TTL to the heartbeat interval and
//! also wraps the call in a timeout of its own of the same length
//! (`replication/mod.rs`, `C::timeout(heartbeat_interval, ..)`), so
//! `rpc_timeout_ms` cannot lengthen it: only raising `raft.heartbeat_ms`
//! (and the election timeouts with it) gives slow peers more time. It does
//! bound vote and snapshot RPCs.
//!
//! A peer that stops answering is logged once (warn) when it goes down
//! and once (info) when it answers again ([`Reachability`]), not on every
//! heartbeat; openraft's own per-attempt replication errors are left to
//! the `openraft::replication` log target, which `topod` silences by
//! default. A failure to connect is reported as
//! `Unreachable` (openraft backs off); anything else, a timeout included,
//! is a `Network` error (openraft retries without backing off).
//! Connections are pooled and kept alive.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::heartbeat_gate::{HeartbeatGate, HeartbeatKey, Voters};
use super::liveness::Liveness;
use super::log_versions::{self, LogVersions, LOG_VERSION_HEADER};
use super::prevote::{PreVoteRequest, PreVoteResponse};
use super::reachability::{Change, Reachability};
use super::readiness::QuorumClock;
use super::types::{NodeAddr, TypeConfig};
use crate::model::NodeId;

/// Header carrying the cluster id on every Raft RPC.
pub const CLUSTER_HEADER: &str = "x-topod-cluster";

/// Header on every AppendEntries: ms since a quorum last acknowledged the
/// sending leader ([`crate::control::readiness::QuorumClock`]); absent when
/// it does not know.
pub const QUORUM_AGE_HEADER: &str = "x-topod-leader-quorum-ms";

/// Path of each Raft RPC.
pub mod paths {
    pub const APPEND: &str = "/raft/append";
    pub const VOTE: &str = "/raft/vote";
    pub const SNAPSHOT: &str = "/raft/snapshot";
    /// topod's own pre-vote ([`crate::control::prevote`]).
    pub const PREVOTE: &str = "/raft/prevote";
}

type HttpClient = Client<crate::security::client::PeerConnector, Full<Bytes>>;

/// Settings shared by every RPC client.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub cluster_id: String,
    /// Upper bound of any RPC's duration.
    pub rpc_timeout: Duration,
    /// Largest response body accepted, bytes.
    pub max_body_bytes: usize,
    /// Idle heartbeats to learners at most this often (zero: all of them;
    /// [`crate::control::heartbeat_gate`]).
    pub learner_heartbeat: Duration,
    /// Plain HTTP or mutual TLS ([`crate::security::PeerHttp`]).
    pub peer: crate::security::PeerHttp,
}

/// Creates one [`RaftClient`] per target; shares the connection pool.
#[derive(Clone)]
pub struct Network {
    http: HttpClient,
    settings: NetworkSettings,
    liveness: Liveness,
    reachability: Reachability,
    quorum: QuorumClock,
    versions: LogVersions,
    voters: Voters,
}

impl Network {
    /// A factory with a fresh connection pool.
    pub fn new(settings: NetworkSettings, liveness: Liveness) -> Self {
        let http = settings
            .peer
            .client(settings.rpc_timeout, Duration::from_secs(30), 8);
        Network {
            http,
            settings,
            liveness,
            reachability: Reachability::default(),
            quorum: QuorumClock::default(),
            versions: LogVersions::default(),
            voters: Voters::default(),
        }
    }

    /// Tells learners apart by `voters` (for thinning their heartbeats).
    pub fn with_voters(mut self, voters: Voters) -> Self {
        self.voters = voters;
        self
    }

    /// Records in `versions` the log version every peer announces.
    pub fn with_log_versions(mut self, versions: LogVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Stamps every AppendEntries with `quorum`'s age.
    pub fn with_quorum_clock(mut self, quorum: QuorumClock) -> Self {
        self.quorum = quorum;
        self
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = RaftClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> RaftClient {
        RaftClient {
            target,
            base: self.settings.peer.base(&node.raft_addr),
            http: self.http.clone(),
            settings: self.settings.clone(),
            liveness: self.liveness.clone(),
            reachability: self.reachability.clone(),
            quorum: self.quorum.clone(),
            versions: self.versions.clone(),
            voters: self.voters.clone(),
            gate: HeartbeatGate::default(),
        }
    }
}

/// Raft RPC client for one target node.
pub struct RaftClient {
    target: NodeId,
    base: String,
    http: HttpClient,
    settings: NetworkSettings,
    liveness: Liveness,
    reachability: Reachability,
    quorum: QuorumClock,
    versions: LogVersions,
    voters: Voters,
    gate: HeartbeatGate,
}

/// Why one RPC failed, before mapping to openraft's error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to node {target} at {base}: {source}")]
    Connect {
        target: NodeId,
        base: String,
        source: hyper_util::client::legacy::Error,
    },
    #[error("RPC to node {target} timed out after {after:?}")]
    Timeout { target: NodeId, after: Duration },
    #[error("RPC to node {target} failed: {detail}")]
    Other { target: NodeId, detail: String },
}

impl RaftClient {
    /// Asks the target whether it would vote for this node; `timeout`
    /// bounds the whole call.
    pub async fn prevote(
        &self,
        req: &PreVoteRequest,
        timeout: Duration,
    ) -> Result<PreVoteResponse, CallError> {
        self.call(paths::PREVOTE, req, &RPCOption::new(timeout))
            .await
    }

    async fn call<Req, Resp>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let timeout = option.hard_ttl().min(self.settings.rpc_timeout);
        let result = match tokio::time::timeout(timeout, self.call_inner(path, req)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout {
                target: self.target,
                after: timeout,
            }),
        };
        match (
            self.reachability.observe(self.target, result.is_ok()),
            &result,
        ) {
            (Some(Change::Down), Err(e)) => {
                tracing::warn!(peer = self.target, error = %e, "Raft peer stopped answering")
            }
            (Some(Change::Up { failures }), _) => {
                tracing::info!(peer = self.target, failures, "Raft peer answers again")
            }
            _ => {}
        }
        result
    }

    async fn call_inner<Req, Resp>(&self, path: &str, req: &Req) -> Result<Resp, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let other = |detail: String| CallError::Other {
            target: self.target,
            detail,
        };
        let body = postcard::to_allocvec(req).map_err(|e| other(format!("encode: {e}")))?;
        let mut request = hyper::Request::post(format!("{}{}", self.base, path))
            .header(CLUSTER_HEADER, &self.settings.cluster_id);
        if path == paths::APPEND {
            if let Some(age) = self.quorum.age_ms() {
                request = request.header(QUORUM_AGE_HEADER, age);
            }
        }
        let request = request
            .header(hyper::header::CONTENT_TYPE, "application/x-postcard")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| other(format!("build request: {e}")))?;
        let response = self.http.request(request).await.map_err(|e| {
            if e.is_connect() {
                CallError::Connect {
                    target: self.target,
                    base: self.base.clone(),
                    source: e,
                }
            } else {
                other(e.to_string())
            }
        })?;
        let status = response.status();
        let announced = log_versions::parse(response.headers().get(LOG_VERSION_HEADER));
        let bytes = Limited::new(response.into_body(), self.settings.max_body_bytes)
            .collect()
            .await
            .map_err(|e| other(format!("read body: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(other(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
            )));
        }
        let decoded = postcard::from_bytes(&bytes).map_err(|e| other(format!("decode: {e}")))?;
        self.liveness.record_ok(self.target);
        self.versions.record(self.target, announced);
        Ok(decoded)
    }

    fn map_err<E: std::error::Error>(
        &self,
        e: CallError,
    ) -> RPCError<NodeId, NodeAddr, RaftError<NodeId, E>> {
        match e {
            // Only a refused or failed connection means "down": openraft
            // then backs off (500 ms) before it sends to that node again.
            CallError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            // A slow answer is not a dead node. openraft's AppendEntries
            // deadline is the heartbeat interval (50 ms by default), which
            // a busy follower's flush can exceed; reporting that as
            // unreachable stalled replication for the whole backoff.
            CallError::Timeout { .. } | CallError::Other { .. } => {
                RPCError::Network(NetworkError::new(&e))
            }
        }
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, NodeAddr, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for RaftClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let key = HeartbeatKey {
            vote: rpc.vote,
            prev_log_id: rpc.prev_log_id,
            leader_commit: rpc.leader_commit,
        };
        let entries = rpc.entries.len();
        let now = std::time::Instant::now();
        let learner = self.voters.is_learner(self.target);
        let interval = self.settings.learner_heartbeat;
        if !self.gate.should_send(now, learner, entries, &key, interval) {
            metrics::counter!("topod_raft_learner_heartbeats_thinned_total").increment(1);
            return Ok(AppendEntriesResponse::Success);
        }
        let sent = self.call(paths::APPEND, &rpc, &option).await;
        match &sent {
            Ok(Ok(AppendEntriesResponse::Success)) if entries == 0 => self.gate.delivered(now, key),
            _ => self.gate.reset(),
        }
        let res: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
            sent.map_err(|e| self.map_err(e))?;
        res.map_err(|e| self.remote(e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeAddr, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let res: Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> =
            self.call(paths::SNAPSHOT, &rpc, &option)
                .await
                .map_err(|e| self.map_err(e))?;
        res.map_err(|e| self.remote(e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let res: Result<VoteResponse<NodeId>, RaftError<NodeId>> = self
            .call(paths::VOTE, &rpc, &option)
            .await
            .map_err(|e| self.map_err(e))?;
        res.map_err(|e| self.remote(e))
    }
}
