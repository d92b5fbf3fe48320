//! Command-line arguments of `topoctl` (clap derive).

use clap::{Args, Parser, Subcommand};

use super::Endpoint;
use crate::model::{NodeId, TransitionId};

/// Endpoints tried when `--endpoints` is not given: the API ports of
/// `topod dev --nodes 3`.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";

/// topoctl: inspect and switch the overlay topology of a topod cluster.
#[derive(Debug, Parser)]
#[command(name = "topoctl", version)]
pub struct Cli {
    /// API endpoints of any nodes, comma-separated `host:port` or
    /// `http://host:port`; tried in order until one answers.
    #[arg(
        long,
        global = true,
        env = "TOPOCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = DEFAULT_ENDPOINTS
    )]
    pub endpoints: Vec<Endpoint>,
    /// Deadline of each request, ms.
    #[arg(long, global = true, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    /// Print the raw JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The bearer token to send (else `TOPOCTL_TOKEN`, else
    /// `DATA_DIR/admin.token`).
    #[arg(long, global = true, env = "TOPOCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A dev cluster's data dir (default `./data`): topoctl finds the admin
    /// token (`admin.token`) and the cluster CA (`certs/ca.pem`) there when
    /// `--token` and `--ca-cert` are not given.
    #[arg(
        long,
        global = true,
        env = "TOPOCTL_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: std::path::PathBuf,
    /// The cluster CA's certificate (PEM): endpoints without a scheme are
    /// then called over HTTPS and the nodes' certificates checked against
    /// it. Default: `<data-dir>/certs/ca.pem` if it exists, else plain HTTP.
    #[arg(long, global = true, env = "TOPOCTL_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Raft status of every endpoint (like `etcdctl endpoint status`).
    Status,
    /// Members of the cluster, voters and learners.
    Members,
    /// The current topology, its overlay config and any transition in flight.
    Info,
    /// Switch the cluster to another topology.
    Switch(SwitchArgs),
    /// One transition with each member's report; `--wait` follows it.
    Transition(TransitionArgs),
    /// Past transitions, newest first.
    History(HistoryArgs),
    /// Show the switching policy, or change it when a flag is given.
    Policy(PolicyArgs),
    /// Switch to what a workload profile (built-in or user) prefers at the
    /// current cluster size.
    Optimize(OptimizeArgs),
    /// The leader's last monitor round: metrics, every rule's evaluation,
    /// the decision and the action.
    Monitor,
    /// Print topology events (and the leader's monitor rounds) as they
    /// happen, until interrupted.
    Watch(WatchArgs),
    /// Add a node as a Raft learner.
    Join(JoinArgs),
    /// Make a learner a voter.
    Promote {
        /// Node id.
        id: NodeId,
    },
    /// Remove a node from the cluster.
    Remove {
        /// Node id.
        id: NodeId,
    },
    /// Run the overlay simulator (no cluster needed): one topology, or
    /// `--topology all` side by side.
    Simulate(crate::sim::SimulateArgs),
    /// One node's data plane. Asks only the first of `--endpoints` (no
    /// failover: the answer is about that node).
    #[command(subcommand)]
    Node(NodeCommand),
    /// One node's transport fault filter (chaos mode only). Talks only to
    /// the first of `--endpoints`: rules are local to that node.
    #[command(subcommand)]
    Faults(FaultsCommand),
    /// The switching rules: built-in (on or off) and the operators' own.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Backups of the replicated state (restore with `topod restore`).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// The admin API's bearer tokens (needs an admin token).
    #[command(subcommand)]
    Token(super::token::TokenCommand),
}

/// `snapshot save FILE|show FILE`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a consistent snapshot of the replicated state (topology,
    /// history, policy, membership) from the first endpoint that serves
    /// one; checked before FILE is written (atomically).
    Save {
        /// The backup file to write.
        file: std::path::PathBuf,
    },
    /// Check a backup file and describe it. Sends nothing.
    Show {
        /// The backup file.
        file: std::path::PathBuf,
    },
}

/// `rules list|check FILE|set FILE`. FILE is TOML: `[[rules.custom]]`
/// tables (`name`, `when`, optional `hold_rounds` and `from`,
/// `switch_to`) and an optional `disabled = [...]` of built-in rules.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Built-in rules (enabled or disabled) and custom rules from the
    /// policy.
    List,
    /// Check a rule file locally with the server's checks; prints every
    /// error (rule and column), exit 1 if there is one. Sends nothing.
    Check {
        /// The TOML rule file.
        file: std::path::PathBuf,
    },
    /// Check a rule file, then make its rules the policy's
    /// `custom_rules` (replacing them all) and, when it has `disabled`,
    /// its `disabled_rules`.
    Set {
        /// The TOML rule file.
        file: std::path::PathBuf,
    },
}

/// `node ...`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// State, overlays, links and per-peer figures (RTT, bytes, messages,
    /// queue depth, disconnects, drops) of the node.
    Stats,
}

/// `faults show|set|clear`.
#[derive(Debug, Subcommand)]
pub enum FaultsCommand {
    /// The installed rules and whether chaos mode is on.
    Show,
    /// Replace the rules: e.g. `--drop-to 2,3 --drop-from 4 --delay-to
    /// 5:100ms`, or `--file rules.json` (the `PUT /v1/node/faults` body).
    Set(FaultsSetArgs),
    /// Remove every rule.
    Clear,
}

/// `faults set`. Flags naming the same peer and direction merge into one
/// rule (e.g. `--drop-to 2 --drop-probability 0.5 --delay-to 2:20ms`).
#[derive(Debug, Default, Args)]
pub struct FaultsSetArgs {
    /// Drop frames this node sends to these peers (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "PEERS")]
    pub drop_to: Vec<NodeId>,
    /// Drop frames this node receives from these peers.
    #[arg(long, value_delimiter = ',', value_name = "PEERS")]
    pub drop_from: Vec<NodeId>,
    /// Drop frames both ways (at probability 1: a partition from this
    /// node's side; new links with them are refused).
    #[arg(long, value_delimiter = ',', value_name = "PEERS")]
    pub drop: Vec<NodeId>,
    /// Probability of each drop, 0..=1.
    #[arg(long, default_value_t = 1.0, value_name = "P")]
    pub drop_probability: f64,
    /// Delay frames sent to a peer: `PEER:DELAY`, delay as `100ms`, `2s`
    /// or plain milliseconds; comma-separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "PEER:DELAY")]
    pub delay_to: Vec<String>,
    /// Delay frames received from a peer: `PEER:DELAY`.
    #[arg(long, value_delimiter = ',', value_name = "PEER:DELAY")]
    pub delay_from: Vec<String>,
    /// Seed of the drop decisions (a run replays from it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The whole rule set as a JSON file (the `PUT /v1/node/faults` body);
    /// excludes the other flags.
    #[arg(long, value_name = "PATH", conflicts_with_all = [
        "drop_to", "drop_from", "drop", "delay_to", "delay_from", "seed", "drop_probability"
    ])]
    pub file: Option<std::path::PathBuf>,
}

/// `switch TOPOLOGY [--config JSON] [--wait] [--request-id ID]`.
#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// Target: full_mesh, hyparview, client_server or pub_sub.
    pub topology: String,
    /// Overlay config keys to override, as a JSON object, e.g.
    /// '{"active_view":4}'.
    #[arg(long)]
    pub config: Option<String>,
    /// Wait until the transition is committed or aborted, showing the
    /// phases; exit 1 if it is aborted.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits, ms.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub wait_timeout_ms: u64,
    /// Idempotency key: repeating the command with the same id does not
    /// start a second transition.
    #[arg(long)]
    pub request_id: Option<String>,
}

/// `transition ID [--wait]`.
#[derive(Debug, Args)]
pub struct TransitionArgs {
    /// Transition id (the log index printed by `switch`).
    pub id: TransitionId,
    /// Wait until it is committed or aborted, showing the phases; exit 1
    /// if it is aborted.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits, ms.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub wait_timeout_ms: u64,
}

/// `history [--limit N] [--before ID]`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Transitions to show.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub limit: u64,
    /// Only transitions older than this id (for paging).
    #[arg(long)]
    pub before: Option<TransitionId>,
}

/// `policy [--cooldown-ms N] [--auto-switch true|false] ...`: without a
/// flag, shows the policy.
#[derive(Debug, Default, Args)]
pub struct PolicyArgs {
    /// Minimum time between a committed switch and the next automatic one, ms.
    #[arg(long)]
    pub cooldown_ms: Option<u64>,
    /// Whether the monitor may switch on its own.
    #[arg(long, value_name = "true|false")]
    pub auto_switch: Option<bool>,
    /// Transitions kept in the history.
    #[arg(long)]
    pub history_retention: Option<u32>,
    /// Period of the leader's monitor rounds, ms.
    #[arg(long)]
    pub monitor_interval_ms: Option<u64>,
    /// Consecutive rounds a rule must hold before it acts.
    #[arg(long)]
    pub hold_rounds: Option<u32>,
    /// A return to a topology left less than this long ago is deferred, ms.
    #[arg(long)]
    pub flap_window_ms: Option<u64>,
    /// A rule threshold, `KEY=VALUE` (e.g. `latency_p99_ms=80`); repeatable.
    #[arg(long = "threshold", value_name = "KEY=VALUE")]
    pub thresholds: Vec<String>,
    /// Set user profiles from a JSON file: `{"name": {"description": "..",
    /// "ranges": [{"max_nodes": 10, "topology": "full_mesh"}, ...]}}`
    /// (`null` deletes a profile).
    #[arg(long, value_name = "FILE.json")]
    pub profile_file: Option<std::path::PathBuf>,
    /// Delete a user profile; repeatable.
    #[arg(long, value_name = "NAME")]
    pub delete_profile: Vec<String>,
}

/// `optimize PROFILE [--wait]`.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// A built-in (low_latency, high_throughput, event_driven,
    /// batch_processing, realtime_gaming) or user profile.
    pub profile: String,
    /// Wait until the transition is committed or aborted, showing the
    /// phases; exit 1 if it is aborted.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits, ms.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub wait_timeout_ms: u64,
    /// Idempotency key.
    #[arg(long)]
    pub request_id: Option<String>,
}

/// `watch [--count N]`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Stop after this many events (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

/// `join --id N --api-addr A --raft-addr R --peer-addr P --node-uuid U`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Node id of the new member.
    #[arg(long)]
    pub id: NodeId,
    /// Its API address, ip:port.
    #[arg(long)]
    pub api_addr: String,
    /// Its Raft address, ip:port.
    #[arg(long)]
    pub raft_addr: String,
    /// Its peer transport address, ip:port.
    #[arg(long)]
    pub peer_addr: String,
    /// The UUID of its data dir (printed by the node at start).
    #[arg(long)]
    pub node_uuid: String,
}
