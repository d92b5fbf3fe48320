//! Control plane: openraft types, the sled log store and state machine,
//! Raft RPC, the leader's coordinator.

pub mod store;
pub mod types;
