//! `topod-chaos`: a Jepsen-style harness for topod. It starts real `topod`
//! processes, each in its own network namespace on a bridge (`--backend
//! netns`) or as the Compose cluster's containers (`--backend docker`),
//! runs a workload and a seeded nemesis schedule at once, heals, and
//! checks the nine properties of issue 11 on the history it recorded.
//!
//! # Layout
//!
//! - [`backend`] — where the nodes live (`netns` or `docker`) and how
//!   faults reach them; one enum the run talks to.
//! - [`netns`] — namespaces, veth pairs, the bridge, iptables partitions;
//!   cleanup of leftovers.
//! - [`probe`] — the TCP check between namespaces before nodes start.
//! - [`cluster`] — `topod run` processes: start, kill -9, restart,
//!   pause, resume, stop; generated configs.
//! - [`docker`] — the Compose cluster: up, docker kill/start, pause,
//!   network disconnect/connect, `docker logs`, `down -v`; leftovers.
//! - [`docker_plan`] — the Docker backend's decisions (pure): shape,
//!   config, override file, subnet, supported nemeses, isolations.
//! - [`http`] — the JSON client with deadlines.
//! - [`nemesis`] — fault kinds and the seeded schedule (pure).
//! - [`workload`] — switch clients, policy changes, broadcasts, status
//!   samplers.
//! - [`history`] — the JSON-lines history of the run.
//! - [`checker`] — properties 1–7 (pure).
//! - [`serving`] — properties 8 (cut-off nodes not ready) and 9 (unknown
//!   outcomes resolved by request id) (pure).
//! - [`afterwards`] — what is read after the heal: request-id lookups, log
//!   levels, the run's extra figures.
//! - [`scenario`] — scenario files and their validation.
//! - [`outdir`] — the output directory's files, cleared when reused.
//! - [`run`] — one run end to end, and its cleanup guard.

mod afterwards;
mod backend;
mod checker;
mod cluster;
mod docker;
mod docker_plan;
mod history;
mod http;
mod nemesis;
mod netns;
mod outdir;
mod probe;
mod run;
mod scenario;
mod serving;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

pub use topod::model::NodeId;

#[derive(Parser)]
#[command(
    name = "topod-chaos",
    about = "Chaos runs of real topod processes in network namespaces or Docker containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One seeded run: nodes, workload, nemeses, heal, check.
    Run(RunArgs),
    /// Remove what an interrupted run left: namespaces (and their
    /// processes), the bridge, the FORWARD rule, temp dirs; with
    /// `--backend docker`, the Compose projects `topodchaos<pid>` of runs
    /// no longer going.
    Cleanup {
        #[arg(long, value_enum, default_value = "netns")]
        backend: backend::Kind,
    },
    #[command(hide = true)]
    ProbeListen { addr: String, secs: u64 },
    #[command(hide = true)]
    ProbeConnect { addr: String },
}

#[derive(clap::Args)]
struct RunArgs {
    /// `netns` (processes in namespaces) or `docker` (the Compose cluster).
    #[arg(long, value_enum, default_value = "netns")]
    backend: backend::Kind,
    /// The Compose file (docker backend; default
    /// deploy/compose/docker-compose.yml). Its services `voter<N>` and
    /// `learner<N>` give the nodes and voters.
    #[arg(long)]
    compose_file: Option<PathBuf>,
    /// The image the Compose file runs (docker backend).
    #[arg(long, default_value = "topod:latest")]
    image: String,
    /// Scenario file (chaos/scenarios/*.toml); flags override it.
    #[arg(long)]
    scenario: Option<PathBuf>,
    #[arg(long)]
    nodes: Option<usize>,
    /// Initial voters (nodes 1..=voters); the rest join as learners.
    #[arg(long)]
    voters: Option<usize>,
    /// Run length, e.g. `60s`, `2m`.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    #[arg(long)]
    seed: Option<u64>,
    /// Replays a failing run's schedule: the same as `--seed`, with the
    /// same scenario and flags as that run.
    #[arg(long, conflicts_with = "seed")]
    reproduce: Option<u64>,
    /// `all`, `none`, or a list: isolate, isolate-leader, split, bridge,
    /// ring, kill, pause, delay, loss, after-switch.
    #[arg(long)]
    nemesis: Option<String>,
    /// Where the history, logs and report go (default target/chaos/SEED).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The topod binary (netns backend; default: `cargo build --release
    /// --bin topod`).
    #[arg(long)]
    topod: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected e.g. 60s, 2m"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "ms" => Ok(Duration::from_millis(n)),
        _ => Err(format!("`{s}`: unit must be ms, s or m")),
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `--topod`, or a fresh release build of it.
fn topod_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--topod {}: no such file", p.display());
        }
        return Ok(p);
    }
    let root = workspace_root();
    let st = std::process::Command::new("cargo")
        .args(["build", "--release", "--bin", "topod"])
        .current_dir(&root)
        .status()
        .context("running cargo build --release --bin topod")?;
    if !st.success() {
        bail!("cargo build --release --bin topod failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release").join("topod"))
}

fn scenario_of(a: &RunArgs) -> anyhow::Result<(scenario::Scenario, u64)> {
    let mut s = match &a.scenario {
        Some(p) => scenario::Scenario::load(p)?,
        None => scenario::Scenario::default(),
    };
    if let Some(n) = a.nodes {
        s.nodes = n;
        if a.voters.is_none() && a.scenario.is_none() {
            s.voters = n.min(5);
        }
    }
    if let Some(v) = a.voters {
        s.voters = v;
    }
    if let Some(d) = a.duration {
        s.duration_s = d.as_secs().max(1);
    }
    if let Some(n) = &a.nemesis {
        s.nemesis = n.clone();
    }
    s.validate()?;
    let seed = a.reproduce.or(a.seed).or(s.seed).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    s.seed = Some(seed);
    Ok((s, seed))
}

/// The docker backend's node count and voters are the Compose file's:
/// a flag that says otherwise is refused, a scenario file's value replaced.
fn fit_shape(
    a: &RunArgs,
    s: &mut scenario::Scenario,
    shape: &docker_plan::Shape,
) -> anyhow::Result<()> {
    let (n, v) = (shape.nodes(), shape.voters);
    for (flag, given, has) in [("--nodes", a.nodes, n), ("--voters", a.voters, v)] {
        if let Some(x) = given.filter(|x| *x != has) {
            bail!("{flag} {x}: the compose file's cluster has {n} nodes ({v} voters); edit it instead");
        }
    }
    if a.scenario.is_some() && (s.nodes, s.voters) != (n, v) {
        println!(
            "note: the scenario's {} nodes ({} voters) are replaced by the compose file's {n} ({v})",
            s.nodes, s.voters
        );
    }
    s.nodes = n;
    s.voters = v;
    s.validate()
}

/// The backend the flags ask for, and the scenario fitted to it.
async fn choice_of(a: &RunArgs, s: &mut scenario::Scenario) -> anyhow::Result<backend::Choice> {
    if a.backend == backend::Kind::Docker && a.nemesis.is_none() && a.scenario.is_none() {
        // The default `all` includes what docker cannot express.
        s.nemesis = docker_plan::DEFAULT_NEMESES.to_string();
    }
    let list: nemesis::NemesisList = s.nemesis.parse().map_err(anyhow::Error::msg)?;
    backend::Backend::check_nemeses(a.backend, &list).map_err(anyhow::Error::msg)?;
    match a.backend {
        backend::Kind::Netns => {
            if a.compose_file.is_some() {
                bail!("--compose-file is for --backend docker");
            }
            Ok(backend::Choice::Netns {
                topod: topod_binary(a.topod.clone())?,
            })
        }
        backend::Kind::Docker => {
            if a.topod.is_some() {
                bail!("--topod is for the netns backend; the docker backend runs --image");
            }
            let file = a.compose_file.clone().unwrap_or_else(|| {
                workspace_root()
                    .join("deploy")
                    .join("compose")
                    .join("docker-compose.yml")
            });
            let shape = docker::shape_of(&file).await?;
            fit_shape(a, s, &shape)?;
            Ok(backend::Choice::Docker {
                compose_file: file,
                image: a.image.clone(),
                shape,
            })
        }
    }
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    let (mut s, seed) = scenario_of(&a)?;
    let choice = choice_of(&a, &mut s).await?;
    let out = a.out.clone().unwrap_or_else(|| {
        workspace_root()
            .join("target")
            .join("chaos")
            .join(seed.to_string())
    });
    let slot: Arc<Mutex<Option<Arc<run::Guard>>>> = Arc::new(Mutex::new(None));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result = tokio::select! {
        r = run::run(choice, s, seed, &out, slot.clone()) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
        _ = term.recv() => Err(anyhow::anyhow!("interrupted (SIGTERM)")),
    };
    // The run's future is gone; the guard (if the run got that far) is
    // the last owner of what it made.
    if let Some(g) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
        g.cleanup();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("topod-chaos: seed {seed}: run failed: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    println!("seed {seed}: results (out: {})", out.display());
    for v in &report.verdicts {
        println!(
            "  {} {}. {}: {}",
            if v.pass { "PASS" } else { "FAIL" },
            v.number,
            v.name,
            v.reason
        );
    }
    println!("  ops: {:?}", report.ops);
    println!(
        "  faults: {:?}; committed {}, aborted {}",
        report.faults_by_kind, report.committed, report.aborted
    );
    if report.passed() {
        println!("seed {seed}: PASS");
        return Ok(ExitCode::SUCCESS);
    }
    for v in report.verdicts.iter().filter(|v| !v.pass) {
        eprintln!(
            "FAIL: property {} {} (seed {seed}): {}",
            v.number, v.name, v.reason
        );
    }
    eprintln!("reproduce: topod-chaos run --reproduce {seed} with the same scenario and flags");
    Ok(ExitCode::from(1))
}

fn cleanup_cmd(backend: backend::Kind) -> anyhow::Result<()> {
    let removed = match backend {
        backend::Kind::Netns => netns::cleanup_leftovers()?,
        backend::Kind::Docker => docker::cleanup_leftovers()?,
    };
    for r in removed {
        println!("removed {r}");
    }
    for entry in std::fs::read_dir(std::env::temp_dir())? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name.strip_prefix(run::TEMP_PREFIX) else {
            continue;
        };
        if pid.parse().is_ok_and(run::harness_running) {
            println!("kept {}: its run is still going", entry.path().display());
            continue;
        }
        std::fs::remove_dir_all(entry.path())
            .with_context(|| format!("removing {}", entry.path().display()))?;
        println!("removed {}", entry.path().display());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(a) => run_cmd(a).await,
        Cmd::Cleanup { backend } => cleanup_cmd(backend).map(|()| ExitCode::SUCCESS),
        Cmd::ProbeListen { addr, secs } => {
            probe::listen(&addr, secs).await.map(|()| ExitCode::SUCCESS)
        }
        Cmd::ProbeConnect { addr } => probe::connect(&addr).await.map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("topod-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
