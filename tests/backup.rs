//! Backup and restore with the real binaries: `topoctl snapshot save`
//! from a follower of a 3-node cluster, `topod restore` into a new data
//! dir, and the new single-node cluster serves the same topology, history
//! and policy (and keeps switching). A truncated, damaged or foreign file,
//! a data dir that holds anything, or a config with port 0 are refused
//! with a message saying why, and nothing is written.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use common::procs::{run_to_end, Addrs, ProcCluster, ProcNode};
use common::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use topod::api::types::{MembersView, TransitionStatus};
use topod::control::store::{Applied, Backup};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A config for node `id` of `cluster_id`, the only initial voter, on
/// fixed (free) ports.
fn fixed_config(dir: &Path, id: u64, cluster_id: &str) -> std::path::PathBuf {
    let addrs = Addrs {
        api: format!("127.0.0.1:{}", free_port()),
        raft: format!("127.0.0.1:{}", free_port()),
        peer: format!("127.0.0.1:{}", free_port()),
    };
    let data_dir = dir.join("unused-by-restore");
    let text = common::procs::config_text(id, cluster_id, &data_dir, &addrs, true, &[]);
    let path = dir.join(format!("{cluster_id}-{id}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

fn topoctl(endpoint: SocketAddr, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_topoctl"))
        .arg("--endpoints")
        .arg(endpoint.to_string())
        .arg("--ca-cert")
        .arg(common::tls::ca_file())
        .env("TOPOCTL_TOKEN", common::harness_token())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run topoctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What must survive a backup: topology and its config, epoch, instance,
/// the history and the policy.
async fn replicated_view(api: SocketAddr) -> Value {
    let t = get(api, "/v1/topology").await.value();
    json!({
        "topology": t["topology"],
        "overlay_config": t["overlay_config"],
        "epoch": t["epoch"],
        "current_instance": t["current_instance"],
        "history": get(api, "/v1/topology/history?limit=1000").await.value()["transitions"],
        "policy": get(api, "/v1/policy").await.value(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_saved_from_a_follower_restores_into_a_new_single_node_cluster() {
    let cluster = ProcCluster::start_voters("backup-src", 3).await;
    let api = cluster.api(1);
    for (topology, id) in [("hyparview", "b-1"), ("client_server", "b-2")] {
        let t = switch_and_wait(api, topology, id).await;
        assert_eq!(t.status, TransitionStatus::Committed, "{t:?}");
    }
    let r = send_json(
        api,
        Method::PUT,
        "/v1/policy",
        &json!({"cooldown_ms": 4321}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let leader = cluster.leader().await;
    let follower = cluster.api(if leader == 1 { 2 } else { 1 });
    wait_for("the follower applied the policy", DEADLINE, || async {
        let p = get(follower, "/v1/policy").await.value();
        (p["cooldown_ms"] == 4321).then_some(())
    })
    .await;
    let source = replicated_view(follower).await;

    let file = cluster.dir.path().join("backup.topod");
    let file_s = file.display().to_string();
    let (ok, stdout, stderr) = topoctl(follower, &["snapshot", "save", &file_s]);
    assert!(ok, "snapshot save failed: {stderr}");
    assert!(stdout.contains("saved"), "{stdout}");
    let (ok, shown, stderr) = topoctl(follower, &["--json", "snapshot", "show", &file_s]);
    assert!(ok, "snapshot show failed: {stderr}");
    let shown: Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["cluster_id"], "backup-src");
    assert_eq!(shown["topology"], "client_server");
    assert_eq!(shown["members"], json!([1, 2, 3]));

    // A new cluster, "restored", of one node (id 7) from the file.
    let config = fixed_config(cluster.dir.path(), 7, "restored");
    let data_dir = cluster.dir.path().join("restored-data");
    let (status, stdout, stderr) = run_to_end(&[
        "restore",
        &file_s,
        "--data-dir",
        &data_dir.display().to_string(),
        "--config",
        &config.display().to_string(),
    ]);
    assert!(status.success(), "restore failed: {stderr}");
    assert!(stdout.contains("restored"), "{stdout}");
    // `run` must use the restored data dir: point the config at it.
    let text = std::fs::read_to_string(&config).expect("config");
    let unused = cluster.dir.path().join("unused-by-restore");
    let text = text.replace(
        &format!("data_dir = \"{}\"", unused.display()),
        &format!("data_dir = \"{}\"", data_dir.display()),
    );
    std::fs::write(&config, text).expect("config");
    let mut node = ProcNode {
        id: 7,
        config,
        stderr: cluster.dir.path().join("restored.stderr"),
        log: cluster.dir.path().join("restored.log"),
        data_dir,
        child: None,
        api: "127.0.0.1:0".parse().expect("addr"),
    };
    node.start();
    node.wait_ready().await;
    let restored = node.api;
    assert_eq!(replicated_view(restored).await, source);
    let members: MembersView = get(restored, "/v1/cluster/members").await.json();
    assert_eq!(members.members.len(), 1, "{members:?}");
    assert!(members.members[0].id == 7 && members.members[0].voter);
    let identity = get(restored, "/v1/node/identity").await.value();
    assert_eq!(identity["cluster_id"], "restored");

    // The new cluster is a working one: it switches and records it after
    // the restored history.
    let t = switch_and_wait(restored, "full_mesh", "after-restore").await;
    assert_eq!(t.status, TransitionStatus::Committed, "{t:?}");
    let history = get(restored, "/v1/topology/history?limit=1000")
        .await
        .value();
    let n = source["history"].as_array().expect("history").len();
    assert_eq!(
        history["transitions"].as_array().expect("history").len(),
        n + 1
    );
    assert!(node.terminate().success());
}

/// A valid backup file's bytes (no cluster needed).
fn valid_backup() -> Vec<u8> {
    let last = openraft::LogId::new(openraft::CommittedLeaderId::new(3, 1), 10);
    Backup {
        cluster_id: "src".into(),
        node_id: 1,
        taken_at_ms: 0,
        applied: Applied {
            last_applied: Some(last),
            ..Applied::default()
        },
    }
    .to_bytes()
    .expect("encode")
}

/// `topod restore FILE` into `data_dir`: (success, stderr).
fn restore(file: &Path, data_dir: &Path, config: &Path) -> (bool, String) {
    let (status, _, stderr) = run_to_end(&[
        "restore",
        &file.display().to_string(),
        "--data-dir",
        &data_dir.display().to_string(),
        "--config",
        &config.display().to_string(),
    ]);
    (status.success(), stderr)
}

#[test]
fn bad_backups_and_used_data_dirs_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = fixed_config(dir.path(), 1, "restored");
    let good = valid_backup();
    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "garbage",
            b"hello, not a backup at all".to_vec(),
            "not a topod backup",
        ),
        ("truncated", good[..good.len() - 7].to_vec(), "truncated"),
        ("damaged", damaged, "damaged"),
        ("empty", Vec::new(), "not a topod backup"),
    ];
    for (name, bytes, expected) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).expect("write");
        let data_dir = dir.path().join(format!("{name}-data"));
        let (ok, stderr) = restore(&file, &data_dir, &config);
        assert!(!ok, "{name}: restore succeeded");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!data_dir.exists(), "{name}: the data dir was created");
    }

    // A data dir holding anything is left as it was.
    let file = dir.path().join("good");
    std::fs::write(&file, &good).expect("write");
    let used = dir.path().join("used");
    std::fs::create_dir(&used).expect("mkdir");
    std::fs::write(used.join("keep"), b"mine").expect("write");
    let (ok, stderr) = restore(&file, &used, &config);
    assert!(!ok && stderr.contains("not empty"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&used).expect("read").collect();
    assert_eq!(left.len(), 1);
    assert_eq!(std::fs::read(used.join("keep")).expect("read"), b"mine");

    // Port 0 cannot go into a membership.
    let port0 = dir.path().join("port0.toml");
    let text = common::procs::config_text(
        1,
        "restored",
        &dir.path().join("x"),
        &Addrs {
            api: "127.0.0.1:0".into(),
            raft: "127.0.0.1:0".into(),
            peer: "127.0.0.1:0".into(),
        },
        true,
        &[],
    );
    std::fs::write(&port0, text).expect("write");
    let fresh = dir.path().join("fresh");
    let (ok, stderr) = restore(&file, &fresh, &port0);
    assert!(!ok && stderr.contains("port 0"), "{stderr}");
    assert!(!fresh.exists());

    // The good file restores into an empty dir that already exists.
    let empty = dir.path().join("empty-dir");
    std::fs::create_dir(&empty).expect("mkdir");
    let (ok, stderr) = restore(&file, &empty, &config);
    assert!(ok, "{stderr}");
    // ... and a second restore into it is refused.
    let (ok, stderr) = restore(&file, &empty, &config);
    assert!(!ok && stderr.contains("not empty"), "{stderr}");
}
