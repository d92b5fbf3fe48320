//! Replays every input kept in `fuzz/regressions/<target>/` through the
//! fuzz entry points (`topod::fuzzing`), the same functions the `cargo
//! fuzz` targets run: crashes found by fuzzing stay fixed in the stable
//! build. A `seed-*` file is a real encoding and must be accepted; any
//! other file (a fixed crash) must be answered without a panic.
//!
//! `cargo test --test fuzz_regressions -- --ignored write_seeds` rewrites
//! the seeds from today's encodings (`scripts/fuzz.sh` seeds the corpora
//! from them).

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use openraft::error::RaftError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership, Vote,
};
use serde::Serialize;
use topod::control::prevote::{PreVoteRequest, PreVoteResponse};
use topod::control::types::{LogPayload, NodeAddr, TypeConfig};
use topod::fuzzing::{self, TARGETS};
use topod::model::{
    Command, Envelope, NodeId, OverlayConfig, Phase, PhaseReport, PolicyUpdate, ProposeSwitch,
    SwitchReason, Topology,
};
use topod::transport::codec::{encode, WireFrame};
use topod::transport::FrameClass;

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

fn files(target: &str) -> Vec<PathBuf> {
    let dir = regressions().join(target);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_input_replays_without_a_panic() {
    let mut failures = Vec::new();
    for (target, run) in TARGETS {
        let inputs = files(target);
        let seeds = inputs
            .iter()
            .filter(|p| name(p).starts_with("seed-"))
            .count();
        assert!(seeds > 0, "fuzz/regressions/{target} has no seed");
        for path in inputs {
            let data = std::fs::read(&path).expect("a regression input");
            match catch_unwind(AssertUnwindSafe(|| run(&data))) {
                Err(_) => failures.push(format!("{target}/{}: panicked", name(&path))),
                Ok(Err(e)) if name(&path).starts_with("seed-") => {
                    failures.push(format!("{target}/{}: seed refused: {e}", name(&path)))
                }
                Ok(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_target_has_a_fuzz_target_and_a_regressions_dir() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (target, _) in TARGETS {
        let src = root.join(format!("fuzz_targets/{target}.rs"));
        let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(
            text.contains(&format!("topod::fuzzing::{target}(")),
            "{target}.rs calls another entry point"
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} not in fuzz/Cargo.toml"
        );
        assert!(
            regressions().join(target).is_dir(),
            "{target}: no regressions dir"
        );
    }
}

#[test]
fn generated_seeds_are_accepted() {
    for (target, seeds) in seeds() {
        let run = TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, run)| run)
            .expect("a known target");
        for (file, data) in seeds {
            assert_eq!(run(&data), Ok(()), "{target}/{file}");
        }
    }
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let refused = |r: fuzzing::Outcome| r.expect_err("refused");
    assert!(refused(fuzzing::frame_codec(&[0, 0, 0, 0])).contains("empty frame"));
    assert!(refused(fuzzing::frame_codec(&[0xff, 0, 0, 0])).contains("exceeds the limit"));
    let big_hello = [&[1u8][..], &8192u32.to_be_bytes()].concat();
    assert!(refused(fuzzing::handshake(&big_hello)).contains("4096"));
    let mut foreign = vec![0u8];
    foreign.extend_from_slice(&hello("other", 2));
    assert!(refused(fuzzing::handshake(&foreign)).contains("cluster id mismatch"));
    assert!(refused(fuzzing::envelope(&[9, 9, 9])).contains("not a known envelope"));
    assert!(refused(fuzzing::raft_rpc(&[1])).contains("end"));
    assert!(refused(fuzzing::api_json(b"\x00[]")).contains("expected a JSON object"));
    assert!(refused(fuzzing::api_json(b"\x00{\"topology\":\"ring\"}")).contains("unknown_topology"));
    assert!(refused(fuzzing::config(b"node_id = 0")).contains("missing config key"));
    assert!(refused(fuzzing::config(&[0xff])).contains("UTF-8"));
}

/// Rewrites `fuzz/regressions/<target>/seed-*` from today's encodings.
#[test]
#[ignore = "writes files; run by hand when an encoding changes"]
fn write_seeds() {
    for (target, seeds) in seeds() {
        let dir = regressions().join(target);
        std::fs::create_dir_all(&dir).expect("regressions dir");
        for (file, data) in seeds {
            std::fs::write(dir.join(format!("seed-{file}")), data).expect("seed written");
        }
    }
}

type Seeds = BTreeMap<&'static str, Vec<(String, Vec<u8>)>>;

fn seeds() -> Seeds {
    let mut s = Seeds::new();
    s.insert("frame_codec", frame_seeds());
    s.insert("handshake", handshake_seeds());
    s.insert("envelope", named(envelopes().iter().map(Envelope::encode)));
    s.insert("raft_rpc", rpc_seeds());
    s.insert("api_json", api_seeds());
    s.insert("config", config_seeds());
    s
}

fn named(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("{i:02}"), d))
        .collect()
}

fn frames() -> Vec<WireFrame> {
    vec![
        WireFrame::Refuse {
            reason: "cluster id mismatch".into(),
        },
        WireFrame::Ready,
        WireFrame::Duplicate,
        WireFrame::Ping { nonce: 7 },
        WireFrame::Pong { nonce: u64::MAX },
        WireFrame::Data {
            class: FrameClass::Data,
            payload: Bytes::from_static(b"{\"channel\":\"chaos\"}"),
        },
        WireFrame::Data {
            class: FrameClass::Control,
            payload: Bytes::from(vec![3u8; 300]),
        },
    ]
}

fn wire(f: &WireFrame) -> Vec<u8> {
    encode(f, 1 << 20).expect("a seed frame encodes").to_vec()
}

fn hello(cluster: &str, node: NodeId) -> Vec<u8> {
    wire(&WireFrame::Hello {
        cluster_id: cluster.into(),
        node_id: node,
        protocol_version: topod::transport::PROTOCOL_VERSION,
    })
}

fn frame_seeds() -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<Vec<u8>> = frames().iter().map(wire).collect();
    all.push(hello("cluster-3", 2));
    all.push(all.concat());
    named(all)
}

fn handshake_seeds() -> Vec<(String, Vec<u8>)> {
    let ping = wire(&WireFrame::Ping { nonce: 1 });
    let data = wire(&frames()[5]);
    named([
        [
            &[1u8][..],
            &hello("fuzz", 2),
            &wire(&WireFrame::Ready),
            &ping,
        ]
        .concat(),
        [&[0u8][..], &hello("fuzz", 3), &data].concat(),
    ])
}

fn envelopes() -> Vec<Envelope> {
    let propose = ProposeSwitch::new(
        Topology::HyParView,
        OverlayConfig::default_for(Topology::HyParView),
        SwitchReason::Manual,
        Some("req-1".into()),
        "api@node1",
    );
    vec![
        Envelope::new(1, Command::ProposeSwitch(propose)),
        Envelope::new(
            2,
            Command::ReportPhase {
                id: 1,
                node: 2,
                phase: Phase::Failed {
                    reason: "timeout".into(),
                },
            },
        ),
        Envelope::new(
            3,
            Command::CommitSwitch {
                id: 1,
                term: 4,
                missing: vec![3],
            },
        ),
        Envelope::new(
            4,
            Command::AbortSwitch {
                id: 1,
                term: 4,
                reason: "node 3 failed".into(),
            },
        ),
        Envelope::new(
            5,
            Command::SetPolicy(PolicyUpdate {
                cooldown_ms: Some(1000),
                hold_rounds: Some(2),
                ..Default::default()
            }),
        ),
        Envelope::new(
            6,
            Command::ReportPhases {
                reports: vec![PhaseReport {
                    id: 1,
                    node: 1,
                    phase: Phase::Verified,
                }],
            },
        ),
        Envelope::V1 {
            stamp_ms: 7,
            command: topod::model::v1::Command::SetPolicy(topod::model::v1::PolicyUpdate {
                cooldown_ms: Some(9),
                auto_switch: None,
                history_retention: None,
            }),
        },
        Envelope::V2 {
            stamp_ms: 8,
            command: topod::model::v2::Command::SetPolicy(topod::model::v2::PolicyUpdate {
                hold_rounds: Some(4),
                ..Default::default()
            }),
        },
    ]
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn addr(n: u64) -> NodeAddr {
    NodeAddr {
        api_addr: format!("127.0.0.1:710{n}"),
        raft_addr: format!("127.0.0.1:720{n}"),
        peer_addr: format!("127.0.0.1:730{n}"),
        node_uuid: format!("00000000-0000-4000-8000-00000000000{n}"),
    }
}

fn membership() -> Membership<NodeId, NodeAddr> {
    let voters: BTreeSet<NodeId> = [1, 2, 3].into();
    let nodes: BTreeMap<NodeId, NodeAddr> = (1..=3).map(|n| (n, addr(n))).collect();
    Membership::new(vec![voters], nodes)
}

fn rpc<T: Serialize>(kind: u8, v: &T) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(postcard::to_allocvec(v).expect("a seed body encodes"));
    out
}

fn rpc_seeds() -> Vec<(String, Vec<u8>)> {
    let vote = Vote::new_committed(4, 1);
    let entries: Vec<Entry<TypeConfig>> = vec![
        Entry {
            log_id: log_id(4, 10),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(4, 11),
            payload: EntryPayload::Normal(LogPayload::new(&envelopes()[0])),
        },
        Entry {
            log_id: log_id(4, 12),
            payload: EntryPayload::Membership(membership()),
        },
    ];
    let append = AppendEntriesRequest::<TypeConfig> {
        vote,
        prev_log_id: Some(log_id(3, 9)),
        entries,
        leader_commit: Some(log_id(3, 9)),
    };
    let snapshot = InstallSnapshotRequest::<TypeConfig> {
        vote,
        meta: SnapshotMeta {
            last_log_id: Some(log_id(4, 12)),
            last_membership: StoredMembership::new(Some(log_id(4, 12)), membership()),
            snapshot_id: "4-12-1".into(),
        },
        offset: 0,
        data: vec![1, 2, 3],
        done: true,
    };
    let append_ok: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
        Ok(AppendEntriesResponse::Success);
    let vote_ok: Result<VoteResponse<NodeId>, RaftError<NodeId>> = Ok(VoteResponse {
        vote,
        vote_granted: true,
        last_log_id: Some(log_id(4, 12)),
    });
    let snap_ok: Result<
        InstallSnapshotResponse<NodeId>,
        RaftError<NodeId, openraft::error::InstallSnapshotError>,
    > = Ok(InstallSnapshotResponse { vote });
    named([
        rpc(0, &append),
        rpc(
            1,
            &VoteRequest {
                vote: Vote::new(5, 2),
                last_log_id: Some(log_id(4, 12)),
            },
        ),
        rpc(2, &snapshot),
        rpc(
            3,
            &PreVoteRequest {
                candidate: 2,
                term: 5,
                last_log_id: Some(log_id(4, 12)),
            },
        ),
        rpc(4, &append_ok),
        rpc(5, &vote_ok),
        rpc(6, &snap_ok),
        rpc(
            7,
            &PreVoteResponse {
                voter: 3,
                term: 4,
                refusal: None,
            },
        ),
    ])
}

fn api_seeds() -> Vec<(String, Vec<u8>)> {
    let bodies: [(u8, &str); 9] = [
        (
            0,
            r#"{"topology":"hyparview","overlay_config":{"active_view":5},"wait":true,"request_id":"r1","wait_timeout_ms":1000}"#,
        ),
        (0, r#"{"topology":"client_server"}"#),
        (
            1,
            r#"{"cooldown_ms":5000,"auto_switch":true,"thresholds":{"latency_p99_ms":200},"custom_rules":[{"name":"checkout_slow","when":"app.checkout.p99 > 250 and node_count > 2","switch_to":"hyparview"}]}"#,
        ),
        (
            1,
            r#"{"profiles":{"p":{"ranges":[{"max_nodes":10,"topology":"full_mesh"},{"topology":"hyparview"}]}}}"#,
        ),
        (
            2,
            r#"{"id":4,"api_addr":"127.0.0.1:7104","raft_addr":"127.0.0.1:7204","peer_addr":"127.0.0.1:7304","node_uuid":"00000000-0000-4000-8000-000000000004"}"#,
        ),
        (
            3,
            r#"{"rules":[{"peer":2,"direction":"outbound","drop_probability":0.5,"delay_ms":20}],"seed":7}"#,
        ),
        (4, r#"{"channel":"chaos","id":"m1","payload":"hello"}"#),
        (5, r#"{"workload":"event_driven","wait":false}"#),
        (
            6,
            r#"{"gauges":{"queue_depth":3.5},"counters":{"orders":2},"histograms":{"checkout":[12.0,30.5]}}"#,
        ),
    ];
    let mut out: Vec<Vec<u8>> = bodies
        .iter()
        .map(|(route, body)| [&[*route][..], body.as_bytes()].concat())
        .collect();
    out.push(b"\x07{\"node\":2,\"phase\":{\"phase\":\"prepared\"}}".to_vec());
    named(out)
}

fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    named(
        ["dev.toml", "cluster-3/node1.toml", "cluster-5/node5.toml"]
            .iter()
            .map(|f| std::fs::read(root.join(f)).unwrap_or_else(|e| panic!("config/{f}: {e}"))),
    )
}
