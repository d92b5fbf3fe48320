//! Durable writes through Raft, secure against insecure, in the same run:
//! a 3-voter cluster in this process (real sockets on loopback; Raft RPC
//! over mutual TLS and the API over HTTPS when secure, plain HTTP when
//! `security.insecure`), `C` clients each sending `PUT /v1/policy` to the
//! leader back to back for `D` seconds. Each write is one Raft entry,
//! replicated to a quorum and flushed by sled (`sync_file_range`, see
//! `control/store`) before it is answered. Prints writes/s and latency
//! p50/p99 per mode and client count.
//!
//! ```sh
//! cargo run --release --example bench_writes                       # 1 and 64 clients, 10 s, both modes
//! cargo run --release --example bench_writes -- 64 5 secure        # one client count, 5 s, one mode
//! ```

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use topod::config::{NodeConfig, RaftConfig, SecurityConfig, VoterConfig};
use topod::control::executor::NoOverlay;
use topod::node::{start_node, Node};
use topod::security::certs::{self, CertAuthority, CertDir};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn cluster(secure: bool, dir: &std::path::Path) -> Vec<Node> {
    let addr = |p: u16| -> SocketAddr { ([127, 0, 0, 1], p).into() };
    let voters: Vec<VoterConfig> = (1..=3)
        .map(|id| VoterConfig {
            id,
            api_addr: addr(free_port()),
            raft_addr: addr(free_port()),
            peer_addr: addr(free_port()),
        })
        .collect();
    let certs = CertDir(dir.join("certs"));
    if secure {
        let ca = CertAuthority::generate("bench", certs::CA_VALIDITY).expect("CA");
        ca.write(&certs).expect("write CA");
        for v in &voters {
            ca.issue(v.id, &[], certs::NODE_VALIDITY)
                .expect("issue")
                .write(&certs, v.id, false)
                .expect("write");
        }
    }
    let mut nodes = Vec::new();
    for v in &voters {
        let mut c = NodeConfig::dev(v.id, 7101, dir).expect("config");
        c.cluster_id = "bench".into();
        c.api_addr = v.api_addr;
        c.raft_addr = v.raft_addr;
        c.peer_addr = v.peer_addr;
        c.initial_voters = voters.clone();
        c.join = Vec::new();
        c.raft = RaftConfig::default();
        c.security = if secure {
            certs::security_config(&certs, v.id)
        } else {
            SecurityConfig::insecure()
        };
        nodes.push(
            start_node(c, Arc::new(NoOverlay))
                .await
                .expect("node starts"),
        );
    }
    nodes
}

async fn leader(nodes: &[Node]) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for n in nodes {
            let m = n.raft().metrics().borrow().clone();
            if m.current_leader == Some(n.id()) && n.applied().borrow().applied_index() > 0 {
                return n.api_addr();
            }
        }
        assert!(Instant::now() < deadline, "no leader within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Figures {
    writes: u64,
    failed: u64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn load(
    api: SocketAddr,
    roots: Option<rustls::RootCertStore>,
    clients: usize,
    secs: u64,
) -> Figures {
    let scheme = if roots.is_some() { "https" } else { "http" };
    let http: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        topod::security::client::operator_client(roots, Duration::from_secs(2));
    let url: hyper::Uri = format!("{scheme}://{api}/v1/policy").parse().expect("uri");
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, url, failed) = (http.clone(), url.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < end {
                i += 1;
                let body = format!(
                    "{{\"cooldown_ms\":{}}}",
                    1000 + (c as u64 * 7919 + i) % 100_000
                );
                let req = hyper::Request::put(url.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .expect("request");
                let t = Instant::now();
                match http.request(req).await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.into_body().collect().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Figures {
        writes: all.len() as u64,
        failed: failed.load(Ordering::Relaxed),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clients: Vec<usize> = args
        .first()
        .map(|a| {
            a.split(',')
                .map(|c| c.parse().expect("client count"))
                .collect()
        })
        .unwrap_or_else(|| vec![1, 64]);
    let secs: u64 = args.get(1).map_or(10, |s| s.parse().expect("seconds"));
    let modes: Vec<&str> = args
        .get(2)
        .map(|m| m.split(',').collect())
        .unwrap_or_else(|| vec!["insecure", "secure"]);
    println!("mode      clients  writes/s  p50 ms  p99 ms  failed");
    for &c in &clients {
        for &mode in &modes {
            let secure = mode == "secure";
            let dir = tempfile::tempdir().expect("tempdir");
            let nodes = cluster(secure, dir.path()).await;
            let api = leader(&nodes).await;
            let roots = secure.then(|| {
                topod::security::client::roots_from_file(
                    &CertDir(dir.path().join("certs")).ca_cert(),
                )
                .expect("roots")
            });
            // A second of warm-up: connections, TLS sessions, caches.
            let _ = load(api, roots.clone(), c, 1).await;
            let f = load(api, roots, c, secs).await;
            println!(
                "{mode:<9} {c:>7}  {:>8.0}  {:>6.2}  {:>6.2}  {}",
                f.writes as f64 / secs as f64,
                f.p50_ms,
                f.p99_ms,
                f.failed
            );
            for n in nodes {
                let _ = n.shutdown().await;
            }
        }
    }
}
