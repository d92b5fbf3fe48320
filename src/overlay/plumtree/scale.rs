//! Larger runs with latency, ignored by default; they print the issue's
//! figures for a quick look before the simulator has them:
//! `cargo nextest run --release --lib scale --run-ignored only --no-capture`
//! (`SCALE_N` sets the node count, default 2000; `PER_LINK=1` fixes the
//! latency per node pair instead of drawing it per message).

use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Config, State};
use crate::overlay::hyparview::testnet::TestNet;
use crate::overlay::{Command, InEvent, MessageId, PeerId, Protocol};

type Node = State<ChaCha8Rng>;

fn nodes() -> usize {
    std::env::var("SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn id(seq: u64) -> MessageId {
    MessageId {
        origin: 0,
        incarnation: 0,
        seq,
    }
}

/// Joins through 100 bootstrap contacts, one node per ms, latency 10–50 ms.
fn build<P: Protocol>(n: usize, seed: u64, make: impl Fn(PeerId) -> P) -> TestNet<P> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut net = TestNet::new((0..n as PeerId).map(make).collect()).with_latency(10, 50, seed);
    net.per_link = std::env::var("PER_LINK").is_ok();
    for i in 0..n as PeerId {
        let contacts = if i == 0 {
            vec![]
        } else {
            vec![rng.gen_range(0..i.min(100))]
        };
        net.input(i, InEvent::Command(Command::Join(contacts)));
        net.run_for(Duration::from_millis(1));
    }
    net.run_for(Duration::from_secs(20));
    net
}

struct Round {
    reliability: f64,
    rmr: f64,
    ldh: u32,
    missed: usize,
}

fn round<P: Protocol>(net: &mut TestNet<P>, sender: PeerId, seq: u64, wait: Duration) -> Round {
    net.reset_counts();
    net.input(
        sender,
        InEvent::Command(Command::Broadcast {
            id: id(seq),
            payload: Bytes::from_static(b"0123456789"),
        }),
    );
    net.run_for(wait);
    let live = net.live().count();
    let delivered = net.reached(&id(seq));
    let ldh = net
        .live()
        .filter_map(|i| net.delivered[i as usize].get(&id(seq)).copied())
        .max()
        .unwrap_or(0);
    Round {
        reliability: delivered as f64 / live as f64,
        rmr: net.payload_sent as f64 / (delivered.max(2) - 1) as f64 - 1.0,
        ldh,
        missed: live - delivered,
    }
}

fn summary(name: &str, rounds: &[Round]) {
    let n = rounds.len() as f64;
    let mean_rmr = rounds.iter().map(|r| r.rmr).sum::<f64>() / n;
    let ldh = rounds.iter().map(|r| r.ldh).max().unwrap_or(0);
    let mean_ldh = rounds.iter().map(|r| f64::from(r.ldh)).sum::<f64>() / n;
    let missed: usize = rounds.iter().map(|r| r.missed).sum();
    let first = &rounds[0];
    eprintln!(
        "{name}: mean rmr {mean_rmr:.3} (first {:.3}, last {:.3}), ldh mean {mean_ldh:.1} max {ldh} \
         (first {}, last {}), missed {missed}",
        first.rmr,
        rounds[rounds.len() - 1].rmr,
        first.ldh,
        rounds[rounds.len() - 1].ldh,
    );
}

/// Defaults, with `IHAVE_TIMEOUT_MS` / `GRAFT_TIMEOUT_MS` overrides for
/// experiments.
fn config() -> Config {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mut c = Config::default();
    if let Some(ms) = env("IHAVE_TIMEOUT_MS") {
        c.ihave_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = env("KEEPALIVE_MS") {
        c.hyparview.keepalive = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(ms) = env("GRAFT_TIMEOUT_MS") {
        c.graft_timeout = Duration::from_millis(ms);
    }
    c
}

fn plumtree(n: usize, seed: u64) -> TestNet<Node> {
    build(n, seed, |i| {
        State::new(
            i,
            config(),
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ i),
        )
    })
}

#[test]
#[ignore]
fn plumtree_same_sender() {
    let mut net = plumtree(nodes(), 7);
    let rounds: Vec<Round> = (0..30)
        .map(|s| round(&mut net, 0, s, Duration::from_secs(2)))
        .collect();
    summary("plumtree same sender", &rounds);
}

#[test]
#[ignore]
fn plumtree_random_sender() {
    let n = nodes();
    let mut net = plumtree(n, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let rounds: Vec<Round> = (0..30)
        .map(|s| {
            let sender = rng.gen_range(0..n as PeerId);
            round(&mut net, sender, s, Duration::from_secs(2))
        })
        .collect();
    summary("plumtree random sender", &rounds);
}

#[test]
#[ignore]
fn plumtree_failures() {
    let n = nodes();
    for fraction in [0.5, 0.7] {
        let mut net = plumtree(n, 123);
        for s in 0..5 {
            round(&mut net, 0, s, Duration::from_secs(2));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut killed = 0;
        while killed < (n as f64 * fraction) as usize {
            let v = rng.gen_range(1..n as PeerId);
            if net.alive[v as usize] {
                net.kill(v);
                killed += 1;
            }
        }
        let first = round(&mut net, 0, 100, Duration::from_secs(5));
        let later: Vec<Round> = (101..106)
            .map(|s| round(&mut net, 0, s, Duration::from_secs(5)))
            .collect();
        eprintln!(
            "plumtree {:.0}% failed: first reliability {:.4} (missed {}), later {:?}",
            fraction * 100.0,
            first.reliability,
            first.missed,
            later.iter().map(|r| r.reliability).collect::<Vec<_>>()
        );
    }
}

#[test]
#[ignore]
fn hyparview_flood_many_senders() {
    use crate::overlay::hyparview;
    let n = nodes();
    let mut net = build(n, 7, |i| {
        hyparview::State::new(
            i,
            hyparview::Config::default(),
            ChaCha8Rng::seed_from_u64(7_000_003 ^ i),
        )
    });
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let rounds: Vec<Round> = (0..30)
        .map(|s| {
            let sender = rng.gen_range(0..n as PeerId);
            round(&mut net, sender, s, Duration::from_secs(2))
        })
        .collect();
    let per_broadcast: f64 = rounds
        .iter()
        .map(|r| (r.rmr + 1.0) * (n - 1) as f64)
        .sum::<f64>()
        / 30.0;
    summary("hyparview flood", &rounds);
    eprintln!("hyparview flood: {per_broadcast:.0} payload messages per broadcast");
}

/// With per-message latency, messages between two nodes can overtake each
/// other; prints the one-sided active links that persist for 5 s.
#[test]
#[ignore]
fn active_views_stay_symmetric_under_reordering() {
    let n = nodes();
    let mut net = plumtree(n, 3);
    let one_sided = |net: &TestNet<Node>| -> Vec<(PeerId, PeerId)> {
        let mut v = Vec::new();
        for i in net.live() {
            for &p in net.nodes[i as usize].active_view() {
                if !net.nodes[p as usize].active_view().contains(&i) {
                    v.push((i, p));
                }
            }
        }
        v
    };
    let before = one_sided(&net);
    net.run_for(Duration::from_secs(5));
    let after = one_sided(&net);
    let persistent: Vec<_> = before.iter().filter(|e| after.contains(e)).collect();
    let sizes: Vec<usize> = net
        .live()
        .map(|i| net.nodes[i as usize].active_view().len())
        .collect();
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    eprintln!(
        "one-sided active links: {} then {}, persistent {persistent:?}; active view mean {mean:.2}, min {:?}",
        before.len(),
        after.len(),
        sizes.iter().min()
    );
}
