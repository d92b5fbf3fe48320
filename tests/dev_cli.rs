//! The real `topod dev` binary: a base `--config` file and `TOPOD_*`
//! variables reach every dev node (chaos mode, a seeded policy), log files
//! are plain text, SIGTERM stops the cluster, and a file that sets a key
//! of the dev layout is refused before any node starts.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use topod::api::types::PolicyView;

/// How long `topod dev` may take to say the cluster is ready.
const READY_DEADLINE: Duration = Duration::from_secs(90);

/// An API base port whose dev layout (`base + i`, `+100`, `+200` for
/// `nodes` nodes) is free now: probed, not fixed.
fn free_dev_base(nodes: u16) -> u16 {
    for _ in 0..50 {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let base = probe.local_addr().expect("local addr").port();
        drop(probe);
        if base > 65535 - 300 {
            continue;
        }
        let all: Option<Vec<TcpListener>> = (0..nodes)
            .flat_map(|i| [base + i, base + 100 + i, base + 200 + i])
            .map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if all.is_some() {
            return base;
        }
    }
    panic!("no free port range for a dev cluster");
}

/// `topod dev ARGS` with `env` and no other `TOPOD_*` variable.
fn topod_dev(args: &[&str], env: &[(&str, &str)], stderr: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_topod"));
    cmd.arg("dev")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).expect("stderr file"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TOPOD_") || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.spawn().expect("spawn topod dev")
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("topod dev did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_cluster_takes_a_base_config_and_the_environment() {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let base_file = dir.path().join("base.toml");
    std::fs::write(&base_file, "[transport]\nchaos = true\n").expect("write config");
    let base = free_dev_base(4);
    let stderr = dir.path().join("stderr.log");
    let mut child = topod_dev(
        &[
            "--nodes",
            "4",
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--api-base-port",
            &base.to_string(),
            "--config",
            base_file.to_str().expect("utf-8 path"),
        ],
        &[("TOPOD_SWITCH__COOLDOWN_MS", "1234")],
        &stderr,
    );
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if line.starts_with("cluster ready") {
                let _receiver_gone = tx.send(());
            }
        }
    });
    if rx.recv_timeout(READY_DEADLINE).is_err() {
        let _ = child.kill();
        panic!(
            "topod dev was not ready; stderr:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
    }
    let api = |id: u16| -> SocketAddr { ([127, 0, 0, 1], base + id - 1).into() };
    // The dev cluster runs secure with a CA and an admin token of its own
    // under the data dir.
    common::tls::trust_file(&data.join("certs").join("ca.pem"));
    let token = std::fs::read_to_string(data.join("admin.token")).expect("the dev token");
    let bearer = format!("Bearer {}", token.trim());
    let get = |addr: SocketAddr, path: &'static str| {
        let bearer = bearer.clone();
        async move {
            common::request_exact(
                addr,
                hyper::Method::GET,
                path,
                &[("authorization", bearer.as_str())],
                bytes::Bytes::new(),
            )
            .await
            .expect("an answer")
        }
    };

    // The file's chaos mode reached a learner: its deliveries answer.
    let r = get(api(4), "/v1/node/deliveries?after=0").await;
    assert_eq!(r.status, hyper::StatusCode::OK, "{}", r.value());
    // The variable seeded the replicated policy at bootstrap.
    let policy: PolicyView = get(api(1), "/v1/policy").await.json();
    assert_eq!(policy.cooldown_ms, 1234);
    // Logs written to a file carry no ANSI colour codes.
    let log = std::fs::read_to_string(data.join("node1.log")).expect("node 1 log");
    assert!(log.contains("INFO"), "the log has lines: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes in a log file");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "topod dev exits 0 on SIGTERM: {status}");
}

#[test]
fn a_base_config_that_sets_the_dev_layout_is_refused_before_any_node_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let base_file = dir.path().join("base.toml");
    std::fs::write(&base_file, "node_id = 7\n").expect("write config");
    let stderr = dir.path().join("stderr.log");
    let mut child = topod_dev(
        &[
            "--nodes",
            "2",
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--config",
            base_file.to_str().expect("utf-8 path"),
        ],
        &[],
        &stderr,
    );
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let err = std::fs::read_to_string(&stderr).expect("stderr");
    assert!(!status.success());
    assert!(
        err.contains("node_id") && err.contains("laid out by `topod dev`"),
        "{err}"
    );
    assert!(!data.exists(), "nothing was created");

    let mut child = topod_dev(&["--nodes", "300"], &[], &stderr);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let err = std::fs::read_to_string(&stderr).expect("stderr");
    assert!(!status.success());
    assert!(err.contains("--nodes must be 1..=256, got 300"), "{err}");
}
