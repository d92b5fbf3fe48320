//! Command-line arguments of `topoctl` (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};

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

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

/// `policy [--cooldown-ms N] [--auto on|off] [--history-retention N]`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Minimum time between a committed switch and the next automatic one, ms.
    #[arg(long)]
    pub cooldown_ms: Option<u64>,
    /// Whether the monitor may switch on its own.
    #[arg(long)]
    pub auto: Option<Toggle>,
    /// Transitions kept in the history.
    #[arg(long)]
    pub history_retention: Option<u32>,
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
