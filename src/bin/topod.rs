//! `topod`: run a node, or a local dev cluster.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use topod::config::NodeConfig;
use topod::dev::DevSpec;

#[derive(Parser)]
#[command(
    name = "topod",
    version,
    about = "Runtime-switchable overlay topologies, agreed through Raft"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node from a config file (the default).
    Run(RunArgs),
    /// Run a local cluster of child processes on 127.0.0.1.
    Dev {
        /// Nodes: 1–3 are voters, the rest learners.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Data dir of the cluster (one sub-dir per node).
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// API port of node 1; node N uses base+N-1, Raft +100, peer +200
        /// (+200 and +400 past 100 nodes, and so on).
        #[arg(long, default_value_t = 7101)]
        api_base_port: u16,
        /// Base config file for every node, as `topod run --config`;
        /// `TOPOD_*` variables apply on top. Ids, addresses, data dirs and
        /// voters stay the dev layout's.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// GET this node's `/readyz` (exit 0 when ready, 1 otherwise): the
    /// container health check of an image without curl.
    Healthcheck {
        /// The node's config (its `api_addr` is checked); `TOPOD_*`
        /// variables apply as for `run`.
        #[arg(long, short, env = "TOPOD_CONFIG")]
        config: Option<PathBuf>,
        /// Check this address instead of the config's `api_addr`.
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// Path to GET (`/livez` for liveness).
        #[arg(long, default_value = "/readyz")]
        path: String,
        /// Deadline of the request, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Load and validate a node config (file and `TOPOD_*` variables) as
    /// `run` would, print what it says, and exit: 0 when valid.
    CheckConfig {
        #[arg(long, short, env = "TOPOD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Seed a new single-node cluster's data dir from a backup
    /// (`topoctl snapshot save`): same topology, history and policy, this
    /// node the only voter. The data dir must be absent or empty.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The new data dir (over the config's `data_dir`).
        #[arg(long)]
        data_dir: PathBuf,
        /// The new node's config (node id, cluster id, addresses: fixed
        /// ports); `TOPOD_*` variables apply as for `run`.
        #[arg(long, short, env = "TOPOD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The cluster CA and node certificates (mutual TLS between nodes).
    Certs {
        #[command(subcommand)]
        cmd: CertsCmd,
    },
    /// The admin API's bearer tokens, through a node's API (needs an admin
    /// token): `topod token create --role operator --name ci` prints the
    /// new token once; `list` and `revoke NAME` as in `topoctl token`.
    Token {
        #[command(subcommand)]
        cmd: topod::cli::token::TokenCommand,
        /// API address of any node (`host:port`); default node 1 of
        /// `topod dev`.
        #[arg(long, global = true, default_value = "127.0.0.1:7101")]
        api: topod::cli::Endpoint,
        /// The admin token to authenticate with (else `TOPOCTL_TOKEN`,
        /// else `DATA_DIR/admin.token`).
        #[arg(long, global = true, env = "TOPOCTL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Where to look for `admin.token`: the data dir of `topod dev`.
        #[arg(long, global = true, default_value = "./data")]
        data_dir: PathBuf,
        /// Print the raw JSON answer.
        #[arg(long, global = true)]
        json: bool,
    },
    /// One node of `topod dev` (started by it).
    #[command(hide = true)]
    DevNode {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        nodes: u64,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        api_base_port: u16,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Create the cluster CA: `ca.pem` and `ca.key` (keep it off the
    /// nodes) in `--dir`.
    Init {
        /// The cluster id every node certificate will carry.
        #[arg(long)]
        cluster_id: String,
        /// Where the files go.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u64).range(1..=36500))]
        days: u64,
    },
    /// Issue node N's certificate and key (`node-N.pem`, `node-N.key`)
    /// with the CA in `--dir`.
    Issue {
        /// The node id.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        node: u64,
        /// Where the CA is and the files go.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Other names clients reach the node's admin API by (IP or DNS),
        /// besides localhost, 127.0.0.1 and ::1; repeatable.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=3650))]
        days: u64,
        /// Replace existing files (a rotation: the node reloads them on
        /// SIGHUP or by itself within seconds).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Args, Clone, Default)]
struct RunArgs {
    /// TOML config file; every key can be overridden by `TOPOD_*` variables.
    #[arg(long, short, env = "TOPOD_CONFIG")]
    config: Option<PathBuf>,
    /// API address (host:port) of a cluster member to join as a learner.
    #[arg(long)]
    join: Vec<std::net::SocketAddr>,
}

fn init_tracing() {
    topod::node::logging::init();
}

async fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let node = topod::node::start_node_with_overlays(config).await?;
    // One machine-readable line with the bound addresses (the config may
    // say port 0), for scripts and tests that start the binary.
    println!(
        "listening api={} raft={}",
        node.api_addr(),
        node.raft_addr()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = node.stopped() => { r?; }
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        _ = term.recv() => tracing::info!("terminated: shutting down"),
    }
    node.shutdown().await?;
    Ok(())
}

async fn main_inner(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => run(cli.run).await,
        Some(Cmd::Run(args)) => run(args).await,
        Some(Cmd::Dev {
            nodes,
            data_dir,
            api_base_port,
            config,
        }) => Ok(topod::dev::run_dev(&DevSpec {
            nodes,
            data_dir,
            api_base_port,
            config,
        })
        .await?),
        Some(Cmd::Healthcheck {
            config,
            addr,
            path,
            timeout_ms,
        }) => {
            let loaded = match (&addr, &config) {
                (Some(_), None) => None,
                _ => Some(NodeConfig::load(config.as_deref())?),
            };
            let addr = addr
                .or(loaded.as_ref().map(|c| c.api_addr))
                .expect("an address or a config");
            // A secure node's API is checked over TLS as a peer would: with
            // the node's own certificate, accepting any node certificate
            // of the cluster (whatever address the API listens on).
            let peer = match &loaded {
                Some(c) if !c.security.insecure && c.security.api_tls => {
                    let ctx =
                        topod::security::TlsContext::load(&c.security, &c.cluster_id, c.node_id)?;
                    Some(topod::security::PeerHttp::secure(ctx))
                }
                _ => None,
            };
            let target = topod::node::health::local_target(addr);
            let body =
                topod::node::health::check(target, &path, Duration::from_millis(timeout_ms), peer)
                    .await?;
            println!("{body}");
            Ok(())
        }
        Some(Cmd::CheckConfig { config }) => {
            let c = NodeConfig::load(config.as_deref())?;
            let role = if c.is_initial_voter() {
                "initial voter"
            } else {
                "joins as a learner"
            };
            let me = c.node_addr("");
            println!(
                "config ok: node {} of cluster {} ({role}), listens api={} raft={} peer={}, \
                 advertises api={} raft={} peer={}, data in {}",
                c.node_id,
                c.cluster_id,
                c.api_addr,
                c.raft_addr,
                c.peer_addr,
                me.api_addr,
                me.raft_addr,
                me.peer_addr,
                c.data_dir.display()
            );
            Ok(())
        }
        Some(Cmd::Restore {
            file,
            data_dir,
            config,
        }) => {
            let config = NodeConfig::load_with_data_dir(config.as_deref(), &data_dir)?;
            let r = topod::node::restore::restore(&file, &config)?;
            let state = &r.backup.applied.state;
            println!(
                "restored {} into {}: cluster {} (from {}), node {} the only voter, index {} term {}, \
                 topology {}, epoch {}, {} transition(s) in the history, {} token(s); start it \
                 with `topod run`",
                file.display(),
                data_dir.display(),
                config.cluster_id,
                r.backup.cluster_id,
                config.node_id,
                r.seeded.index,
                r.seeded.term,
                state.topology.as_str(),
                state.epoch,
                state.history.len(),
                state.tokens.records.len()
            );
            Ok(())
        }
        Some(Cmd::Certs { cmd }) => certs(cmd),
        Some(Cmd::Token {
            cmd,
            api,
            token,
            data_dir,
            json,
        }) => {
            let cli = topod::cli::Cli {
                endpoints: vec![api],
                timeout_ms: 10_000,
                json,
                token,
                data_dir,
                ca_cert: None,
                command: topod::cli::Command::Token(cmd),
            };
            let mut stdout = std::io::stdout().lock();
            topod::cli::run(cli, &mut stdout).await?;
            Ok(())
        }
        Some(Cmd::DevNode {
            id,
            nodes,
            data_dir,
            api_base_port,
            config,
        }) => {
            init_tracing();
            let spec = DevSpec {
                nodes,
                data_dir,
                api_base_port,
                config,
            };
            serve(topod::dev::dev_node_config(&spec, id)?).await
        }
    }
}

fn certs(cmd: CertsCmd) -> anyhow::Result<()> {
    use topod::security::certs::{CertAuthority, CertDir};
    const DAY: u64 = 86_400;
    match cmd {
        CertsCmd::Init {
            cluster_id,
            dir,
            days,
        } => {
            let probe = NodeConfig {
                cluster_id: cluster_id.clone(),
                ..NodeConfig::dev(1, 7101, &dir)?
            };
            probe.validate()?;
            let dir = CertDir(dir);
            CertAuthority::generate(&cluster_id, Duration::from_secs(days * DAY))?.write(&dir)?;
            println!(
                "created the CA of cluster {cluster_id}: {} (give it to every node as                  security.ca_cert) and {} (secret: keep it off the nodes)",
                dir.ca_cert().display(),
                dir.ca_key().display()
            );
        }
        CertsCmd::Issue {
            node,
            dir,
            hosts,
            days,
            replace,
        } => {
            let dir = CertDir(dir);
            let ca = CertAuthority::load(&dir)?;
            ca.issue(node, &hosts, Duration::from_secs(days * DAY))?
                .write(&dir, node, replace)?;
            println!(
                "issued node {node} of cluster {}: {} and {} (security.cert, security.key),                  valid {days} days",
                ca.cluster_id,
                dir.node_cert(node).display(),
                dir.node_key(node).display()
            );
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing();
    let mut config = NodeConfig::load(args.config.as_deref())?;
    if !args.join.is_empty() {
        config.join = args.join;
    }
    serve(config).await
}

#[tokio::main]
async fn main() -> ExitCode {
    match main_inner(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("topod: {e:#}");
            ExitCode::FAILURE
        }
    }
}
