//! Full-switch benchmark: a 5-node cluster on 127.0.0.1 (one process,
//! every node with its own Raft, API and data-plane TCP listeners; default
//! executor, overlay and Raft settings) switches through the four
//! topologies in turn. For each switch it measures the time from the API
//! call (`POST /v1/topology/switch` to a follower, forwarded to the
//! leader) until every node's executor reports `Steady` and verified on
//! the new overlay instance. It also prints when the leader's applied
//! state showed the transition committed.
//!
//! ```text
//! cargo run --release --example bench_switch -- [SWITCHES] [NODES] [secure|insecure]
//! ```
//! (defaults: 20 switches, 5 nodes, secure: mutual TLS on every link and
//! RPC, HTTPS and tokens on the API; `insecure` runs plain).

#[path = "../tests/dataplane_common/mod.rs"]
mod dataplane_common;

use std::time::Duration;

use dataplane_common::{http, Cluster};
use hyper::Method;
use serde_json::json;
use tokio::time::Instant;
use topod::config::{OverlayDefaults, RaftConfig};
use topod::executor::{ExecState, ExecutorConfig};
use topod::transport::TransportConfig;

const CYCLE: [&str; 4] = ["hyparview", "client_server", "pub_sub", "full_mesh"];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let switches: usize = args.next().map_or(20, |a| a.parse().expect("SWITCHES"));
    let nodes: usize = args.next().map_or(5, |a| a.parse().expect("NODES"));
    let insecure = match args.next().as_deref() {
        None | Some("secure") => false,
        Some("insecure") => true,
        Some(other) => panic!("mode is secure or insecure, not {other}"),
    };
    println!("mode: {}", if insecure { "insecure" } else { "secure" });
    let c = Cluster::start_with(nodes, move |cfg| {
        if insecure {
            cfg.security = topod::config::SecurityConfig::insecure();
        }
        cfg.raft = RaftConfig::default();
        cfg.executor = ExecutorConfig::default();
        cfg.overlay = OverlayDefaults::default();
        cfg.transport = TransportConfig::default();
    })
    .await;
    c.wait_steady_on(topod::model::Topology::FullMesh).await;
    let api = c.node(2).api_addr(); // a follower: the call is forwarded
    let mut times: Vec<(String, Duration)> = Vec::new();
    let mut commits: Vec<Duration> = Vec::new();
    let mut aborted = 0;
    for k in 0..switches {
        let target = CYCLE[k % CYCLE.len()];
        loop {
            let t0 = Instant::now();
            let (st, v) = http(
                api,
                Method::POST,
                "/v1/topology/switch",
                Some(json!({"topology": target})),
            )
            .await;
            assert!(st == 202 || st == 200, "switch to {target}: {st} {v}");
            let id = v["transition_id"].as_u64().expect("transition id");
            // Every node Steady and verified on instance `id`, or the
            // transition aborted.
            let mut committed_at = None;
            let outcome = loop {
                let done = c.running().iter().all(|&n| {
                    let s = c.status(n);
                    s.state == ExecState::Steady { current: id } && s.verified == Some(id)
                });
                if done {
                    break Ok(t0.elapsed());
                }
                let a = c.node(1).applied().borrow().clone();
                let rec = a.state.history.iter().find(|r| r.id == id).cloned();
                if let Some(r) = rec {
                    match r.outcome {
                        topod::model::Outcome::Aborted { .. } => {
                            break Err(format!("{:?}", r.outcome))
                        }
                        topod::model::Outcome::Committed { .. } if committed_at.is_none() => {
                            committed_at = Some(t0.elapsed())
                        }
                        _ => {}
                    }
                }
                assert!(t0.elapsed() < Duration::from_secs(60), "switch {id} hung");
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            match outcome {
                Ok(t) => {
                    let c = committed_at.unwrap_or(t);
                    println!(
                        "switch {:2} -> {target:13} {:7.1} ms (committed at {:6.1} ms)",
                        k + 1,
                        ms(t),
                        ms(c)
                    );
                    times.push((target.to_string(), t));
                    commits.push(c);
                    break;
                }
                Err(why) => {
                    aborted += 1;
                    println!(
                        "switch {:2} -> {target:13} aborted ({why}); retrying",
                        k + 1
                    );
                }
            }
        }
    }
    println!();
    println!("{nodes} nodes, {switches} switches ({aborted} aborted and retried):");
    let all: Vec<Duration> = times.iter().map(|(_, t)| *t).collect();
    report("all", &all);
    report("(committed)", &commits);
    for t in CYCLE {
        let d: Vec<Duration> = times
            .iter()
            .filter(|(x, _)| x == t)
            .map(|(_, d)| *d)
            .collect();
        report(t, &d);
    }
    c.shutdown().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, d: &[Duration]) {
    if d.is_empty() {
        return;
    }
    let mut v = d.to_vec();
    v.sort();
    let pct = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "  {what:13} n={:3}  p50 {:7.1} ms  p99 {:7.1} ms  max {:7.1} ms",
        v.len(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*v.last().expect("non-empty"))
    );
}
