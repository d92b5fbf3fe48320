//! Time from a degradation starting to the automatic switch committed, with
//! the dev cluster's monitor interval (2 s) and the default `hold_rounds`
//! (3): 5 in-process nodes on HyParView (production transport and executor
//! settings, the fault filter on), 40 ms added to every frame each way at
//! t0, until `small_cluster_degraded`'s switch to `full_mesh` commits
//! (its commit stamp in the history). Goal: ≤ hold_rounds × interval + 1 s.
//!
//! ```sh
//! cargo run --release --example bench_monitor_reaction -- 5   # trials
//! ```

#[path = "support/cluster.rs"]
mod cluster;
#[path = "../tests/dataplane_common/mod.rs"]
mod dataplane_common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use tokio::time::Instant;
use topod::config::RulesConfig;
use topod::executor::ExecutorConfig;
use topod::model::{Outcome, SwitchReason, Topology};
use topod::transport::{Direction, FaultRule, FaultRules, TransportConfig};

const INTERVAL_MS: u64 = 2_000;
const HOLD: u32 = 3;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Commit stamps of the automatic switches so far.
fn automatic_commits(c: &cluster::Cluster) -> Vec<u64> {
    c.node(1)
        .applied()
        .borrow()
        .state
        .history
        .iter()
        .filter(|r| matches!(r.reason, SwitchReason::Auto { .. }))
        .filter_map(|r| match r.outcome {
            Outcome::Committed { at_ms, .. } => Some(at_ms),
            _ => None,
        })
        .collect()
}

fn set_delay(c: &cluster::Cluster, delay: Option<Duration>) -> Result<()> {
    for id in c.running() {
        match delay {
            None => c.exec(id).clear_faults()?,
            Some(delay) => {
                let rules = c
                    .running()
                    .into_iter()
                    .filter(|&p| p != id)
                    .map(|peer| FaultRule {
                        peer,
                        direction: Direction::Outbound,
                        drop_probability: 0.0,
                        delay,
                    })
                    .collect();
                c.exec(id).set_faults(FaultRules { rules, seed: 1 })?;
            }
        }
    }
    Ok(())
}

/// Waits until the leader's last monitor round saw latency p99 below `ms`.
async fn wait_latency_below(c: &cluster::Cluster, ms: f64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let leader = c.node(1).raft().metrics().borrow().current_leader;
        let p99 = leader
            .and_then(|l| c.node(l).monitor().last())
            .map(|r| r.metrics.latency_ms.p99);
        if p99.is_some_and(|p| p < ms) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("latency p99 still {p99:?} ms 60 s after the delay was cleared");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    cluster::init_tracing();
    let trials: usize = std::env::args()
        .nth(1)
        .map_or(Ok(5), |a| a.parse())
        .unwrap_or(5);
    let c = cluster::Cluster::start_with(5, |cfg| {
        cfg.transport = TransportConfig {
            chaos: true,
            ..TransportConfig::default()
        };
        cfg.executor = ExecutorConfig::default();
        cfg.switch.auto_switch = true;
        cfg.overlay.hyparview.active_view = 4;
        cfg.rules = RulesConfig {
            monitor_interval_ms: Some(INTERVAL_MS),
            hold_rounds: Some(HOLD),
            flap_window_ms: Some(0),
            ..Default::default()
        };
        // Only latency is degraded here.
        cfg.rules.thresholds.min_connectivity = Some(0.0);
    })
    .await;
    let mut reactions = Vec::new();
    for trial in 1..=trials {
        set_delay(&c, None)?;
        // Wait until the monitor sees the latency recovered (the summaries'
        // window still holds delayed samples for a while), then go back to
        // HyParView and let two clean rounds pass.
        let cleared = Instant::now();
        wait_latency_below(&c, 50.0).await?;
        if trial > 1 {
            println!(
                "trial {trial}: latency seen recovered {} ms after the delay was cleared",
                cleared.elapsed().as_millis()
            );
        }
        cluster::switch(&c, Topology::HyParView).await?;
        let before = automatic_commits(&c).len();
        tokio::time::sleep(Duration::from_millis(2 * INTERVAL_MS + 500)).await;
        if automatic_commits(&c).len() != before {
            bail!("trial {trial}: an automatic switch without degradation");
        }
        let t0 = unix_ms();
        set_delay(&c, Some(Duration::from_millis(40)))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let committed = loop {
            let commits = automatic_commits(&c);
            if commits.len() > before {
                break commits[commits.len() - 1];
            }
            if Instant::now() > deadline {
                let leader = c.node(1).raft().metrics().borrow().current_leader;
                let round = leader.and_then(|l| c.node(l).monitor().last());
                let explanation =
                    round.map(|r| format!("{:?}\n{}", r.metrics, r.evaluation.explanation));
                bail!(
                    "trial {trial}: no automatic switch within 60 s; last round: {explanation:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let ms = committed.saturating_sub(t0);
        println!("trial {trial}: degradation to committed switch {ms} ms");
        reactions.push(ms);
        c.wait_steady_on(Topology::FullMesh).await;
    }
    set_delay(&c, None)?;
    reactions.sort_unstable();
    let goal = u64::from(HOLD) * INTERVAL_MS + 1_000;
    println!(
        "{} trials, interval {INTERVAL_MS} ms, hold_rounds {HOLD}: p50 {} ms, max {} ms (goal <= {goal} ms)",
        reactions.len(),
        reactions[reactions.len() / 2],
        reactions[reactions.len() - 1],
    );
    c.shutdown().await;
    Ok(())
}
