//! Cost of one monitor round on the leader at 5, 50, 1,000 and 10,000
//! members: gathering every member's summary over HTTP (the real
//! `Gatherer`), deriving the cluster metrics and evaluating the rules.
//!
//! The members are simulated by a child process that answers
//! `GET /v1/node/summary` on one port of `0.0.0.0` for every loopback
//! address: member `n` is `127.a.b.c` with `n = a·65536 + b·256 + c -
//! 65536`, and the child answers as the node its destination address
//! names, with a HyParView-sized summary (5 links). Only the leader side
//! (this process) is measured: CPU time from `getrusage` around the
//! rounds, bytes received, and the share of one core at the default
//! 60 s interval.
//!
//! ```sh
//! cargo run --release --example bench_monitor            # 5 50 1000 10000
//! cargo run --release --example bench_monitor -- 1000    # one size
//! ```

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use topod::model::metrics::{HopCount, InOut, Percentiles};
use topod::model::{NodeSummary, Policy, Topology, TopologyState};
use topod::monitor::derive::{derive, DeriveSettings};
use topod::monitor::gather::{Gatherer, Member};
use topod::rules::{evaluate, RuleContext, RuleMemory};

fn member_ip(n: u64) -> Ipv4Addr {
    let v = n + 65_536;
    Ipv4Addr::new(127, (v >> 16) as u8, (v >> 8) as u8, v as u8)
}

fn node_of(ip: Ipv4Addr) -> u64 {
    let [_, a, b, c] = ip.octets();
    (u64::from(a) << 16 | u64::from(b) << 8 | u64::from(c)) - 65_536
}

fn summary(node: u64) -> NodeSummary {
    NodeSummary {
        node,
        window_ms: 60_000,
        topology: Some(Topology::HyParView),
        instance: 7,
        rtt_ms: Some(Percentiles { p50: 0.4, p99: 2.5 }),
        links_up: 5,
        links_expected: 5,
        links: (1..=5).map(|i| (node + i * 7919) % 10_000 + 1).collect(),
        links_truncated: false,
        disconnects: 0,
        bytes_per_s: InOut {
            inbound: 52_000.0,
            outbound: 51_000.0,
        },
        messages_per_s: InOut {
            inbound: 410.0,
            outbound: 405.0,
        },
        max_queue_depth: 3,
        app_broadcasts: 120,
        app_direct: 480,
        hops: Some(HopCount { p50: 4.0, max: 7 }),
        cpu_share: 0.03,
        link_count: 6,
        app: Default::default(),
    }
}

/// The child: answers every connection as the node its local address names.
async fn serve(port_file: String) {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::fs::write(&port_file, port.to_string()).expect("port file");
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        let local = stream.local_addr().expect("local addr");
        let node = match local.ip() {
            IpAddr::V4(ip) => node_of(ip),
            IpAddr::V6(_) => 0,
        };
        let body = Bytes::from(serde_json::to_vec(&summary(node)).expect("json"));
        tokio::spawn(async move {
            let svc = service_fn(move |_req| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            if let Err(e) = conn {
                eprintln!("serving: {e}");
            }
        });
    }
}

fn cpu_time() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}

async fn measure(port: u16, n: u64) {
    let members: Vec<Member> = (1..=n)
        .map(|id| Member {
            id,
            base: format!("http://{}", SocketAddr::from((member_ip(id), port))),
        })
        .collect();
    let ids: Vec<u64> = (1..=n).collect();
    let gatherer = Gatherer::new(
        &topod::security::PeerHttp::insecure(),
        32,
        Duration::from_secs(5),
    );
    let policy = Policy::default();
    let state = TopologyState {
        topology: Topology::HyParView,
        ..TopologyState::default()
    };
    let settings = DeriveSettings {
        link_capacity_bytes_per_s: 125e6,
        max_links_per_node: 1000.0,
    };
    // One warm-up round opens the (pooled) connections, as the first round
    // of a new leader does; the rounds after it reuse them, as every later
    // round of the default 60 s interval does (idle timeout 90 s).
    let rounds = (2_000 / n).clamp(3, 200) as u32;
    let mut memory = RuleMemory::default();
    let (mut bytes, mut failed) = (0, 0);
    let (mut gather_cpu, mut total_cpu, mut wall) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for r in 0..=rounds {
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        let g = gatherer.gather(&members, Duration::from_secs(60)).await;
        let cpu1 = cpu_time();
        let m = derive(
            &ids,
            &g.summaries,
            &g.unreachable(),
            &settings,
            &policy.thresholds,
        );
        let ctx = RuleContext::from_state(&state, 1_000_000, true);
        memory = evaluate(&ctx, &m, &policy, &memory).memory;
        let cpu2 = cpu_time();
        if r == 0 {
            println!(
                "{n:>6} members: first round (connecting) {:>8.1} ms CPU, {:>7.1} ms wall",
                (cpu2 - cpu0).as_secs_f64() * 1e3,
                wall0.elapsed().as_secs_f64() * 1e3
            );
            continue;
        }
        gather_cpu += cpu1 - cpu0;
        total_cpu += cpu2 - cpu0;
        wall += wall0.elapsed();
        bytes += g.bytes;
        failed += g.failures.len();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(rounds);
    println!(
        "{n:>6} members: {:>8.2} ms CPU per round ({:>8.2} ms gathering), {:>7.1} ms wall, \
         {:>9} bytes gathered, {:.4} % of one core at a 60 s interval, {} failures",
        per(total_cpu),
        per(gather_cpu),
        per(wall),
        bytes / u64::from(rounds),
        per(total_cpu) / 60_000.0 * 100.0,
        failed
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        serve(args[1].clone()).await;
        return;
    }
    let sizes: Vec<u64> = if args.is_empty() {
        vec![5, 50, 1_000, 10_000]
    } else {
        args.iter()
            .map(|a| a.parse().expect("a member count"))
            .collect()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port_file = dir.path().join("port");
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .arg("--serve")
        .arg(&port_file)
        .spawn()
        .expect("start the member simulator");
    let deadline = Instant::now() + Duration::from_secs(10);
    let port: u16 = loop {
        if let Ok(s) = std::fs::read_to_string(&port_file) {
            if let Ok(p) = s.trim().parse() {
                break p;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the member simulator did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for n in sizes {
        measure(port, n).await;
    }
    child.kill().expect("stop the simulator");
    child.wait().expect("the simulator stopped");
}
