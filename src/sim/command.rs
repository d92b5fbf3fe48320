//! The `simulate` command: arguments ([`SimulateArgs`], a `clap::Args` the
//! binaries flatten into their own parsers) and [`run_simulate`], which
//! prints a table or JSON.

use std::io::Write;
use std::path::PathBuf;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

use super::latency::LatencyModel;
use super::report::Report;
use super::runner::run_scenario;
use super::scenario::{Scenario, SenderMode, TopologyChoice};
use super::SimError;
use crate::model::Topology;

/// Arguments of `simulate`. Flags given override the scenario file, which
/// overrides the defaults of [`Scenario`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SimulateArgs {
    /// Topology to simulate, or `all` to compare the four side by side.
    #[arg(long, value_enum)]
    pub topology: Option<TopologyChoice>,
    /// Nodes joined before the rounds [default: 1000].
    #[arg(long)]
    pub nodes: Option<u32>,
    /// Broadcast rounds [default: 30].
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Fraction of nodes (0.0..0.99) failing at once at the start of round
    /// `--fail-round`.
    #[arg(long, value_name = "FRACTION")]
    pub fail: Option<f64>,
    /// Round at whose start `--fail` applies (earlier rounds warm up)
    /// [default: 1].
    #[arg(long, value_name = "ROUND")]
    pub fail_round: Option<u32>,
    /// Seed of the run [default: 7].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenario file (TOML).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Print JSON instead of tables. Not a flag of its own: the command
    /// that embeds these arguments sets it from its `--json` (topoctl's is
    /// global).
    #[arg(skip)]
    pub json: bool,
    /// Who broadcasts each round [default: fixed].
    #[arg(long, value_enum)]
    pub sender: Option<SenderMode>,
    /// Fixed latency of every link, ms (instead of a uniform range).
    #[arg(long, value_name = "MS", conflicts_with_all = ["latency_min_ms", "latency_max_ms"])]
    pub latency_ms: Option<u64>,
    /// Lower bound of the uniform per-link latency, ms [default: 10].
    #[arg(long, value_name = "MS")]
    pub latency_min_ms: Option<u64>,
    /// Upper bound of the uniform per-link latency, ms [default: 50].
    #[arg(long, value_name = "MS")]
    pub latency_max_ms: Option<u64>,
    /// Bootstrap contacts new nodes join through [default: 100].
    #[arg(long)]
    pub contacts: Option<u32>,
    /// Probability that a message is lost [default: 0].
    #[arg(long)]
    pub loss: Option<f64>,
    /// Client-server: number of servers (nodes 1..=N) [default: 5].
    #[arg(long)]
    pub servers: Option<u32>,
    /// Time given to each round, ms [default: 2000].
    #[arg(long, value_name = "MS")]
    pub round_interval_ms: Option<u64>,
    /// Time from the last join to the first round, ms [default: 30000].
    #[arg(long, value_name = "MS")]
    pub settle_ms: Option<u64>,
    /// Failed send → PeerDown delay, ms [default: one link latency].
    #[arg(long, value_name = "MS")]
    pub detection_delay_ms: Option<u64>,
    /// Simulate a live switch from one topology to another under a
    /// broadcast stream, e.g. `hyparview:pub_sub` (the executor's own
    /// core on every node; see `[switch]` in scenario files).
    #[arg(long, value_name = "FROM:TO", value_parser = parse_switch)]
    pub switch: Option<(Topology, Topology)>,
    /// Switch runs: broadcasts a second from random senders [default: 100].
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// Switch runs: nodes that broadcast (the first ones); 0 = all
    /// [default: 0].
    #[arg(long)]
    pub senders: Option<u32>,
    /// Switch runs: nodes that probe each overlay under check
    /// (`executor.probers`; 0 = all) [default: 32 from 1,000 nodes, else 0].
    #[arg(long)]
    pub probers: Option<u64>,
    /// Switch runs: members told of a broadcaster's latest number per
    /// summary round (`executor.summary_peers`; 0 = all) [default: 0].
    #[arg(long)]
    pub summary_peers: Option<u64>,
    /// Switch runs: time from the proposal to the end, ms [default: 20000].
    #[arg(long, value_name = "MS")]
    pub run_ms: Option<u64>,
}

/// `FROM:TO`, two topology names.
fn parse_switch(s: &str) -> Result<(Topology, Topology), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("expected FROM:TO (e.g. hyparview:pub_sub), got `{s}`"))?;
    let t = |n: &str| {
        n.parse::<Topology>().map_err(|_| {
            format!("`{n}` is not a topology (full_mesh, hyparview, client_server, pub_sub)")
        })
    };
    Ok((t(a)?, t(b)?))
}

impl SimulateArgs {
    /// The scenario these arguments describe (file, then flags).
    pub fn scenario(&self) -> Result<Scenario, SimError> {
        let mut s = match &self.scenario {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                Scenario::from_toml(&text, &path.display().to_string())?
            }
            None => Scenario::default(),
        };
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = self.$field {
                    s.$field = v;
                }
            };
        }
        set!(topology);
        set!(nodes);
        set!(rounds);
        set!(seed);
        set!(sender);
        set!(contacts);
        set!(loss);
        set!(servers);
        set!(round_interval_ms);
        set!(settle_ms);
        set!(fail_round);
        if self.fail.is_some() {
            s.fail = self.fail;
        }
        if self.detection_delay_ms.is_some() {
            s.detection_delay_ms = self.detection_delay_ms;
        }
        if let Some(ms) = self.latency_ms {
            s.latency = LatencyModel::Fixed { ms };
        } else if self.latency_min_ms.is_some() || self.latency_max_ms.is_some() {
            let (min, max) = match s.latency {
                LatencyModel::Uniform { min_ms, max_ms } => (min_ms, max_ms),
                _ => (10, 50),
            };
            s.latency = LatencyModel::Uniform {
                min_ms: self.latency_min_ms.unwrap_or(min),
                max_ms: self.latency_max_ms.unwrap_or(max),
            };
        }
        if let Some((from, to)) = self.switch {
            s.topology = from.into();
            s.switch.get_or_insert_with(Default::default).to = Some(to);
        }
        if let Some(sw) = s.switch.as_mut() {
            if let Some(v) = self.rate {
                sw.rate_per_s = v;
            }
            if let Some(v) = self.senders {
                sw.senders = v;
            }
            if let Some(v) = self.run_ms {
                sw.run_ms = v;
            }
            if let Some(v) = self.settle_ms {
                sw.settle_ms = v;
            }
            if self.probers.is_some() {
                sw.probers = self.probers;
            }
            if self.summary_peers.is_some() {
                sw.summary_peers = self.summary_peers;
            }
        }
        s.validate()?;
        Ok(s)
    }
}

/// A topology `--topology all` could not simulate at this size.
#[derive(Debug, Clone, Serialize)]
struct Skipped {
    topology: Topology,
    reason: String,
}

/// Runs the simulation the arguments describe and writes the result to
/// `out`: tables, or JSON (`--json`) with the report's field names.
pub fn run_simulate(args: &SimulateArgs, out: &mut dyn Write) -> Result<(), SimError> {
    let scenario = args.scenario()?;
    if let Some(sw) = &scenario.switch {
        let report = super::switch::run_switch(&sw.params(&scenario)?)?;
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            report.write_table(out)?;
        }
        return Ok(());
    }
    if scenario.topology != TopologyChoice::All {
        let topology = scenario.topology.topologies()[0];
        let report = run_scenario(&scenario, topology)?;
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            write_single(&report, out)?;
        }
        return Ok(());
    }
    let mut reports = Vec::new();
    let mut skipped = Vec::new();
    for topology in Topology::ALL {
        match run_scenario(&scenario, topology) {
            Ok(r) => reports.push(r),
            Err(e @ SimError::TooLarge { .. }) => skipped.push(Skipped {
                topology,
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    if args.json {
        #[derive(Serialize)]
        struct All<'a> {
            topologies: &'a [Report],
            skipped: &'a [Skipped],
        }
        serde_json::to_writer_pretty(
            &mut *out,
            &All {
                topologies: &reports,
                skipped: &skipped,
            },
        )?;
        writeln!(out)?;
    } else {
        write_comparison(&reports, &skipped, out)?;
    }
    Ok(())
}

fn f(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

fn write_single(r: &Report, out: &mut dyn Write) -> Result<(), SimError> {
    let mut rounds = Table::new();
    rounds.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "round",
        "sender",
        "live",
        "reliability",
        "missed",
        "rmr",
        "ldh",
        "p50 ms",
        "p99 ms",
        "payload",
        "gossip",
        "membership",
        "links mean",
        "links max",
        "components",
    ]);
    for x in &r.rounds {
        rounds.add_row(vec![
            x.round.to_string(),
            x.sender.to_string(),
            x.live.to_string(),
            f(x.reliability, 4),
            x.missed.to_string(),
            f(x.rmr, 3),
            x.ldh.to_string(),
            f(x.latency_p50_ms, 1),
            f(x.latency_p99_ms, 1),
            x.payload_messages.to_string(),
            x.gossip_messages.to_string(),
            x.membership_messages.to_string(),
            f(x.links_per_node_mean, 2),
            x.links_per_node_max.to_string(),
            x.components.to_string(),
        ]);
    }
    writeln!(
        out,
        "{} · {} nodes · seed {} · sender {}",
        r.topology, r.nodes, r.seed, r.sender
    )?;
    writeln!(out, "{rounds}")?;
    writeln!(out, "{}", summary_table(std::slice::from_ref(r)))?;
    for i in r.invariants.iter().filter(|i| !i.holds) {
        writeln!(
            out,
            "invariant {} ({}) violated: {}",
            i.name,
            i.when,
            i.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// One column per report, one row per summary figure.
fn summary_table(reports: &[Report]) -> Table {
    let mut t = Table::new();
    let mut header = vec!["summary".to_string()];
    header.extend(reports.iter().map(|r| r.topology.clone()));
    t.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    type Row = (&'static str, fn(&Report) -> String);
    let rows: [Row; 17] = [
        ("reliability", |r| f(r.summary.reliability, 4)),
        ("min reliability", |r| f(r.summary.min_reliability, 4)),
        ("first_round_reliability", |r| {
            f(r.summary.first_round_reliability, 4)
        }),
        ("missed", |r| r.summary.missed.to_string()),
        ("rmr (mean)", |r| f(r.summary.rmr, 3)),
        ("rmr (first round)", |r| f(r.summary.first_round_rmr, 3)),
        ("ldh (max)", |r| r.summary.ldh.to_string()),
        ("latency p50 ms", |r| f(r.summary.latency_p50_ms, 1)),
        ("latency p99 ms", |r| f(r.summary.latency_p99_ms, 1)),
        ("links/node mean", |r| f(r.summary.links_per_node_mean, 2)),
        ("links/node max", |r| {
            r.summary.links_per_node_max.to_string()
        }),
        ("connected", |r| r.summary.connected.to_string()),
        ("components", |r| r.summary.components.to_string()),
        ("payload msgs/broadcast", |r| {
            f(r.summary.payload_per_broadcast, 1)
        }),
        ("gossip msgs/broadcast", |r| {
            f(r.summary.gossip_per_broadcast, 1)
        }),
        ("membership msgs/round", |r| {
            f(r.summary.membership_per_round, 1)
        }),
        ("healing time ms", |r| {
            r.summary.healing_time_ms.map_or("-".into(), |v| f(v, 0))
        }),
    ];
    for (name, get) in rows {
        let mut row = vec![name.to_string()];
        row.extend(reports.iter().map(get));
        t.add_row(row);
    }
    t
}

fn write_comparison(
    reports: &[Report],
    skipped: &[Skipped],
    out: &mut dyn Write,
) -> Result<(), SimError> {
    if let Some(r) = reports.first() {
        writeln!(
            out,
            "{} nodes · seed {} · sender {}",
            r.nodes, r.seed, r.sender
        )?;
    }
    writeln!(out, "{}", summary_table(reports))?;
    for s in skipped {
        writeln!(out, "{} skipped: {}", s.topology, s.reason)?;
    }
    Ok(())
}
