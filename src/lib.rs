//! topod — runtime-switchable overlay network topologies, agreed through
//! Raft.
//!
//! Every node runs `topod`. Topology decisions and their history are entries
//! of a Raft log (openraft, stored in sled), so every node applies switches
//! in the same order at the same index; each node's executor prepares,
//! verifies, cuts over or rolls back as the log decides.
//!
//! # Layout
//!
//! - [`model`] — topologies, overlay configs, log commands and typed
//!   rejections, the replicated [`model::TopologyState`] and its pure apply
//!   (including the admin API's token hashes).
//! - [`overlay`] — overlay protocols as sans-IO state machines, and
//!   [`overlay::any::AnyOverlay`] holding whichever is current.
//! - [`sim`] — discrete-event simulator of thousands of overlay nodes
//!   (`topoctl simulate`).
//! - [`transport`] — the data plane's node-to-node transport: TCP and
//!   in-memory links, framing, handshake, pings, fault filter.
//! - [`executor`] — the data plane's executor: runs the overlays on the
//!   transport, phased switches, channels (`broadcast`, `send`, `subscribe`)
//!   with duplicate suppression and gap repair of broadcasts.
//! - [`rules`] — the switching rules as a pure function of state, metrics
//!   and policy (built-in and operators' custom rules); workload profiles.
//! - [`app_metrics`] — the embedding application's own metrics (gauges,
//!   counters, histograms): `Node::metrics()`, summaries, `topod_app_*`.
//! - [`monitor`] — the leader's monitor: gathers node summaries, derives
//!   cluster metrics, evaluates the rules, proposes switches.
//! - [`control`] — openraft types, sled storage, Raft RPC, proposer,
//!   coordinator, executor interface and driver; pre-vote and readiness.
//! - [`api`] — HTTP admin API: JSON types, routes, forwarding to the leader;
//!   this node's data-plane stats and summary, fault rules, per-node
//!   metrics (no per-peer labels); policy, optimize, monitor views, events;
//!   bearer tokens with roles (`api::auth`, `/v1/tokens`).
//! - [`ui`] — the admin web page served at `/ui/` (embedded HTML, CSS, JS).
//! - [`config`] — node configuration (TOML + environment) and validation.
//! - [`security`] — who a request or connection comes from: the cluster
//!   CA and node certificates, mutual TLS between nodes, the hardened HTTP
//!   listeners, rotation; token secrets and token files (the roles live in
//!   `api::auth`).
//! - [`node`] — [`node::start_node`]: wires a node together.
//! - [`cli`] — `topoctl`'s client and commands.
//! - [`dev`] — `topod dev`, a local cluster of child processes.
//! - `fuzzing` (hidden) — the fuzz entry points: one function per decoder
//!   of untrusted bytes, run by `fuzz/` and `tests/fuzz_regressions.rs`.
//!
//! `ARCHITECTURE.md` shows the data path of a switch.

pub mod api;
pub mod app_metrics;
pub mod cli;
pub mod config;
pub mod control;
pub mod dev;
pub mod executor;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod monitor;
pub mod node;
pub mod overlay;
pub mod rules;
pub mod security;
pub mod sim;
pub mod transport;
pub mod ui;
