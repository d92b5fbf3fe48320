//! Control plane: openraft types, the sled log store and state machine,
//! Raft RPC, the proposer and its batching of phase reports, the leader's
//! coordinator and the per-node driver of the executor.

pub mod applied;
pub mod coordinator;
pub mod driver;
pub mod executor;
pub mod liveness;
pub mod log_versions;
pub mod network;
pub mod prevote;
pub mod proposer;
pub mod reachability;
pub mod readiness;
pub mod report_batch;
pub mod rpc_server;
pub mod store;
pub mod types;
