//! Broadcast delivery latency on a 5-node cluster for each topology
//! (full_mesh, hyparview, client_server, pub_sub). Issue 4, "Figures to
//! measure".
//!
//! ```sh
//! cargo run --release --example bench_broadcast -- --count 2000 --interval-us 2000
//! ```
//!
//! All five nodes run in this process with the real TCP data plane on
//! 127.0.0.1, so one clock serves every node. The cluster is switched to
//! each topology in turn through the admin API (`POST /v1/topology/switch`,
//! waiting until every node is Steady). Then `--count` broadcasts are sent,
//! paced one per `--interval-us`, round-robin from all five nodes
//! (broadcast k from node k mod 5 + 1); each carries its send time. Every
//! node's subscriber records, for each broadcast from another node, the
//! time from the send call to its receipt: one sample per (broadcast,
//! receiving node), `count × 4` per topology.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "../tests/dataplane_common/mod.rs"]
mod dataplane_common;

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use clap::Parser;
use tokio::time::Instant;
use topod::executor::Event;
use topod::model::{NodeId, Topology};

#[derive(Parser, Debug)]
#[command(about = "Broadcast delivery latency per topology on 5 in-process nodes")]
struct Args {
    /// Broadcasts per topology.
    #[arg(long, default_value_t = 2000)]
    count: u64,
    /// Pause between two broadcasts, µs.
    #[arg(long, default_value_t = 2000)]
    interval_us: u64,
    /// Payload size, bytes (at least 16: sequence number and send time).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Worker threads of the tokio runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Topologies to measure (repeatable). Default: all four.
    #[arg(long = "topology")]
    topologies: Vec<String>,
}

static BASE: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn main() -> Result<()> {
    let args = Args::parse();
    cluster::init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

struct Result1 {
    topology: Topology,
    samples: Vec<Duration>,
    expected: u64,
    lagged: u64,
}

async fn run(args: Args) -> Result<()> {
    let topologies: Vec<Topology> = if args.topologies.is_empty() {
        vec![
            Topology::FullMesh,
            Topology::HyParView,
            Topology::ClientServer,
            Topology::PubSub,
        ]
    } else {
        args.topologies
            .iter()
            .map(|t| t.parse())
            .collect::<Result<_, _>>()?
    };
    let c = cluster::start(args.nodes).await;
    let mut results = Vec::new();
    for t in topologies {
        eprintln!("switching to {t} …");
        cluster::switch(&c, t).await?;
        // Let the overlay settle (HyParView shuffles, Plumtree's first
        // broadcasts prune the tree) before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        warm_up(&c, t).await?;
        eprintln!("measuring {t} …");
        results.push(measure(&c, t, &args, args.count).await?);
    }
    c.shutdown().await;
    println!();
    println!("| topology | deliveries | expected | lagged | p50 µs | p90 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in results {
        let mut s = r.samples;
        s.sort();
        let at = |q: f64| {
            s.get(((s.len() as f64 * q) as usize).min(s.len().saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.topology,
            s.len(),
            r.expected,
            r.lagged,
            at(0.5),
            at(0.9),
            at(0.99),
            s.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
        );
    }
    Ok(())
}

/// A few broadcasts that are not measured (Plumtree prunes its eager
/// links on the first ones).
async fn warm_up(c: &cluster::Cluster, t: Topology) -> Result<()> {
    let args = Args {
        count: 50,
        interval_us: 2000,
        size: 16,
        nodes: c.nodes.len(),
        threads: 0,
        topologies: Vec::new(),
    };
    measure(c, t, &args, args.count).await.map(drop)
}

async fn measure(
    c: &cluster::Cluster,
    topology: Topology,
    args: &Args,
    count: u64,
) -> Result<Result1> {
    let channel = format!("bc-{topology}-{}", now_ns());
    let ids: Vec<NodeId> = (1..=c.nodes.len() as NodeId).collect();
    let mut subs = Vec::new();
    for &id in &ids {
        let mut sub = c.exec(id).subscribe(&channel).await?;
        subs.push(tokio::spawn(async move {
            let (mut samples, mut lagged) = (Vec::new(), 0u64);
            // Ends when nothing arrived for 2 s.
            while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(2), sub.recv()).await
            {
                match ev {
                    Event::Message(d) if d.origin != id => {
                        let sent =
                            u64::from_be_bytes(d.payload[8..16].try_into().expect("16 bytes"));
                        samples.push(Duration::from_nanos(now_ns().saturating_sub(sent)));
                    }
                    Event::Message(_) => {}
                    Event::Lagged(n) => lagged += n,
                }
            }
            (samples, lagged)
        }));
    }
    let mut tick = tokio::time::interval(Duration::from_micros(args.interval_us));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let size = args.size.max(16);
    for k in 0..count {
        tick.tick().await;
        let from = ids[(k % ids.len() as u64) as usize];
        let mut p = vec![0u8; size];
        p[..8].copy_from_slice(&k.to_be_bytes());
        p[8..16].copy_from_slice(&now_ns().to_be_bytes());
        c.exec(from).broadcast(&channel, Bytes::from(p)).await?;
    }
    let (mut samples, mut lagged) = (Vec::new(), 0);
    for s in subs {
        let (v, l) = s.await?;
        samples.extend(v);
        lagged += l;
    }
    Ok(Result1 {
        topology,
        samples,
        expected: count * (ids.len() as u64 - 1),
        lagged,
    })
}
