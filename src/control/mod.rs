//! Control plane: openraft types, the sled log store and state machine,
//! Raft RPC, the proposer, the leader's coordinator and the per-node driver
//! of the executor.

pub mod applied;
pub mod coordinator;
pub mod driver;
pub mod executor;
pub mod liveness;
pub mod network;
pub mod prevote;
pub mod proposer;
pub mod reachability;
pub mod readiness;
pub mod rpc_server;
pub mod store;
pub mod types;
