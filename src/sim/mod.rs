//! A discrete-event simulator of N overlay nodes (thousands), for the
//! figures the topology rules rest on and for regression tests of the
//! protocols.
//!
//! Layout:
//! - [`engine`]: event queue (time, then scheduling order), node states,
//!   the simulated transport.
//! - [`latency`]: per-link latency models (fixed, uniform, regions).
//! - [`graph`]: overlay-graph snapshots (links per node, in-degree,
//!   components).
//! - [`invariants`]: named checkers, one property each.
//! - [`scenario`]: TOML scenario files.
//! - [`runner`]: joins, settling, rounds, events; builds the [`Report`].
//! - [`report`]: the per-round and summary figures.
//! - [`command`]: `simulate` arguments and output (table or JSON).
//!
//! # Transport model
//!
//! - A message from `a` to `b` arrives after the latency of the link
//!   `a`–`b` (a pure function of the seed and the endpoints, the same in
//!   both directions), unless it is lost (probability `loss`, silently).
//! - Links are opened on demand; `Connect`/`Disconnect` cost nothing.
//! - A node learns that a peer is gone only when a send (or `Connect`) to
//!   it fails: the peer has stopped or is on the other side of a
//!   partition, checked when the message is sent and again when it
//!   arrives. The sender then gets `PeerDown(peer)` after the link-loss
//!   detection delay (default: one latency of that link), once per pending
//!   (node, peer) pair. Crashed nodes tell nobody.
//! - A link broken by a partition is closed at both ends: the end that
//!   detected it first is told as above, the other end gets `PeerDown`
//!   when the partition heals (as a TCP reset would reach it then), so no
//!   node keeps a one-sided link across a healed partition.
//! - The overlay graph of the figures holds the links that can carry
//!   messages now: links to stopped nodes and across a partition are left
//!   out even while their ends have not noticed.
//! - Nodes fail (`fail`) by stopping at once; leaving nodes (`churn`) get
//!   `Command::Leave` first, so their goodbyes are in flight.
//! - Everything random (joins' contacts, senders, failures, loss, each
//!   node's protocol RNG) comes from ChaCha RNGs seeded from the run's
//!   seed, and every collection is iterated in order: the same seed gives
//!   the same report.
//!
//! # Rounds
//!
//! Node `i` joins at `(i − 1) × join_interval_ms` (node 1 alone, nodes
//! 2..=contacts through node 1, later ones through a random one of the
//! first `contacts`), then the run settles for `settle_ms`. Each round
//! applies its events, broadcasts one message at once and runs
//! `round_interval_ms`; messages sent during that window count for the
//! round. Nodes that joined in the round itself are not expected to
//! deliver.

pub mod command;
pub mod engine;
pub mod graph;
pub mod invariants;
pub mod latency;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod switch;

pub use command::{run_simulate, SimulateArgs};
pub use report::{Report, RoundReport, Summary};
pub use runner::{run_scenario, Run};
pub use scenario::{Scenario, SenderMode, TopologyChoice};

use crate::model::Topology;
use crate::overlay::any::BuildError;

/// Why a simulation did not run. No simulation state survives an error.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The scenario is not valid TOML or has an unknown key (named in the
    /// message).
    #[error("scenario {origin}: {message}")]
    Parse { origin: String, message: String },
    /// A scenario or argument value is out of range.
    #[error("invalid scenario key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    /// The overlay could not be built from its config.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The topology's state would not fit in memory at this size.
    #[error("{topology} is limited to {limit} simulated nodes (its state grows with the square of the size), asked for {nodes}")]
    TooLarge {
        topology: Topology,
        nodes: u32,
        limit: u32,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// Encoding the JSON output failed.
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests;
