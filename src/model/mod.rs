//! Domain model shared by every layer: topologies, overlay configs, log
//! commands and their responses, the replicated topology state and its
//! history.
//!
//! Everything here is plain data plus pure functions: no IO, no clock. The
//! types that travel in the Raft log are encoded with postcard, so they use
//! no `#[serde(tag)]`, `untagged`, `flatten` or `skip_serializing_if`.

pub mod app;
pub mod command;
pub mod custom_rule;
pub mod expr;
pub mod metrics;
pub mod overlay_config;
pub mod policy;
pub mod state;
pub mod token;
pub mod topology;
pub mod v1;
pub mod v2;
pub mod v3;

pub use app::{AppAggregate, AppAggregates, AppKind, AppSummaries, AppSummary};
pub use command::{
    Command, CommandResponse, Envelope, EnvelopeError, Phase, PhaseReport, ProposeSwitch,
    Rejection, SwitchReason, Trigger, LOG_VERSION,
};
pub use custom_rule::CustomRule;
pub use metrics::{ClusterMetrics, NodeSummary, WorkloadPattern};
pub use overlay_config::{
    ClientServerConfig, ConfigError, FullMeshConfig, HyParViewConfig, OverlayConfig, PlumtreeConfig,
};
pub use policy::{
    Policy, PolicyError, PolicyUpdate, Thresholds, ThresholdsUpdate, WorkloadProfile,
};
pub use state::{ApplyContext, HistoryRecord, Outcome, TopologyState, Transition};
pub use token::{NewToken, Role, TokenRecord, Tokens};
pub use topology::{Topology, UnknownTopology};

/// A node's id in the cluster (the Raft node id).
pub type NodeId = u64;

/// A transition's id: the Raft log index of its accepted `ProposeSwitch`.
pub type TransitionId = u64;
