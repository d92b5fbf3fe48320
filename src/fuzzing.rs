//! The fuzz entry points: one function per decoder that untrusted bytes
//! reach, each running the same code the node runs on those bytes (decode,
//! then the checks that follow it) and never panicking on any input.
//!
//! The `cargo fuzz` targets in `fuzz/` (outside the workspace) call these,
//! and so does the stable test `tests/fuzz_regressions.rs`, which replays
//! every input kept in `fuzz/regressions/<target>/`; `scripts/fuzz.sh`
//! runs the targets. Each function returns `Ok` when the input was
//! accepted and `Err` with the node's own error message when it was
//! refused; a panic (including a failed round-trip assertion: what was
//! accepted must encode and decode back to the same thing) is the bug a
//! fuzzer looks for.
//!
//! Not an API: hidden from the docs, kept stable only for the fuzz crate.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::app_metrics::AppMetricsRequest;
use crate::api::routes::{decode_json, ReportRequest};
use crate::api::types::{
    BroadcastRequest, FaultsRequest, JoinRequest, OptimizeRequest, PolicyRequest, SwitchRequest,
};
use crate::app_metrics::{AppMetrics, Batch, DEFAULT_MAX_NAMES};
use crate::config::NodeConfig;
use crate::control::prevote::{PreVoteRequest, PreVoteResponse};
use crate::control::rpc_server::decode_body;
use crate::control::types::{NodeAddr, TypeConfig};
use crate::model::{Envelope, NodeId, OverlayConfig};
use crate::transport::codec::{self, decode_body as decode_frame, FrameReader, WireFrame};
use crate::transport::handshake::{check_answer, check_hello};
use crate::transport::TransportConfig;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

/// What an entry point says about one input.
pub type Outcome = Result<(), String>;

/// An entry point.
pub type Entry = fn(&[u8]) -> Outcome;

/// The fuzz targets, by name (`fuzz/fuzz_targets/<name>.rs`,
/// `fuzz/regressions/<name>/`).
pub const TARGETS: &[(&str, Entry)] = &[
    ("frame_codec", frame_codec),
    ("handshake", handshake),
    ("envelope", envelope),
    ("raft_rpc", raft_rpc),
    ("api_json", api_json),
    ("config", config),
];

/// Frame limit of the `frame_codec` target: the transport's default
/// `max_frame_bytes`.
fn link_max_frame() -> usize {
    TransportConfig::default().max_frame()
}

/// The peer link's reader on a byte stream: every complete frame in
/// `data`, in order, until the first error. Each frame must re-encode to
/// bytes that decode to it, and a `Data` frame's zero-copy decoding must
/// agree with postcard's.
pub fn frame_codec(data: &[u8]) -> Outcome {
    let max = link_max_frame();
    let mut reader = FrameReader::new(max);
    reader.extend(data);
    let mut at = 0;
    loop {
        match reader.next_frame() {
            Ok(Some((frame, size))) => {
                let body = &data[at + codec::LEN_PREFIX..at + size];
                assert_eq!(
                    decode_frame(body).as_ref(),
                    Ok(&frame),
                    "the reader and postcard disagree on a frame"
                );
                at += size;
                frame_round_trip(&frame, max);
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `frame` encodes within `max` and decodes back to itself.
fn frame_round_trip(frame: &WireFrame, max: usize) {
    let bytes = codec::encode(frame, max).expect("a decoded frame encodes within its limit");
    let mut reader = FrameReader::new(max);
    reader.extend(&bytes);
    let again = reader.next_frame().expect("a re-encoded frame decodes");
    assert_eq!(
        again,
        Some((frame.clone(), bytes.len())),
        "frame round trip"
    );
}

/// Our side of the fuzzed handshake: cluster `fuzz`, node 1, dialing 2.
const FUZZ_CLUSTER: &str = "fuzz";

/// A link's handshake on a byte stream, from the dialer's side (the first
/// byte's low bit: 1 dials node 2 and waits for the answer, 0 accepts):
/// the peer's `Hello` under the handshake's frame limit, checked against
/// our cluster id and node id, then (dialer) the `Ready` answer; what
/// follows is read as the link does, with the raised limit.
pub fn handshake(data: &[u8]) -> Outcome {
    let Some((&mode, stream)) = data.split_first() else {
        return Err("empty input".into());
    };
    let expect: Option<NodeId> = (mode & 1 == 1).then_some(2);
    let mut reader = FrameReader::new(codec::HANDSHAKE_MAX_FRAME);
    reader.extend(stream);
    let next = |r: &mut FrameReader| r.next_frame().map_err(|e| e.to_string());
    let Some((hello, _)) = next(&mut reader)? else {
        return Err("connection closed during the handshake".into());
    };
    let peer = check_hello(hello, FUZZ_CLUSTER, 1, expect).map_err(|e| e.to_string())?;
    assert_ne!(peer, 1, "a peer with our own node id was accepted");
    if let Some(e) = expect {
        assert_eq!(peer, e, "a Hello from another node than the dialed one");
        let answer = next(&mut reader)?.map(|(f, _)| f);
        check_answer(answer).map_err(|e| e.to_string())?;
    }
    reader.set_max(link_max_frame());
    while let Some((frame, _)) = next(&mut reader)? {
        frame_round_trip(&frame, link_max_frame());
    }
    Ok(())
}

/// A log entry's payload as the state machine decodes it, converted to
/// today's command; what decodes re-encodes to bytes that decode to the
/// same encoding.
pub fn envelope(data: &[u8]) -> Outcome {
    let env = Envelope::decode(data).map_err(|e| e.to_string())?;
    let bytes = env.encode();
    let again = Envelope::decode(&bytes).expect("a re-encoded envelope decodes");
    assert_eq!(again.encode(), bytes, "envelope round trip");
    let _ = env.rules();
    let _ = again.into_parts();
    Ok(())
}

/// A Raft RPC body as the RPC server decodes it (first byte: which
/// request) or as the client decodes the answer; an AppendEntries
/// request's entries are also decoded as the state machine will.
pub fn raft_rpc(data: &[u8]) -> Outcome {
    let Some((&kind, body)) = data.split_first() else {
        return Err("empty input".into());
    };
    match kind % 8 {
        0 => {
            let req: AppendEntriesRequest<TypeConfig> = rpc_round_trip(body)?;
            for entry in &req.entries {
                if let openraft::EntryPayload::Normal(payload) = &entry.payload {
                    envelope(&payload.0)?;
                }
            }
            Ok(())
        }
        1 => rpc_round_trip::<VoteRequest<NodeId>>(body).map(drop),
        2 => rpc_round_trip::<InstallSnapshotRequest<TypeConfig>>(body).map(drop),
        3 => rpc_round_trip::<PreVoteRequest>(body).map(drop),
        4 => rpc_round_trip::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(body)
            .map(drop),
        5 => rpc_round_trip::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(body).map(drop),
        6 => rpc_round_trip::<
            Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
        >(body)
        .map(drop),
        _ => rpc_round_trip::<PreVoteResponse>(body).map(drop),
    }
}

/// Decodes `body` as the RPC server does; what decodes must re-encode to
/// bytes that decode to the same encoding.
fn rpc_round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let value: T = decode_body(body).map_err(|e| e.to_string())?;
    let bytes = postcard::to_allocvec(&value).expect("a decoded RPC body encodes");
    let again: T = decode_body(&bytes).expect("a re-encoded RPC body decodes");
    let twice = postcard::to_allocvec(&again).expect("a decoded RPC body encodes");
    assert_eq!(twice, bytes, "RPC body round trip");
    Ok(value)
}

/// An admin API request body (first byte: which route) through the
/// route's own decoding and checks, up to what it would propose or do.
pub fn api_json(data: &[u8]) -> Outcome {
    let Some((&route, body)) = data.split_first() else {
        return Err("empty input".into());
    };
    let e = |e: crate::api::types::BadRequest| e.to_string();
    match route % 8 {
        0 => {
            let r: SwitchRequest = decode_json(body).map_err(e)?;
            r.to_proposal(OverlayConfig::default_for, "api@node1")
                .map_err(e)?;
        }
        1 => {
            let value: serde_json::Value = decode_json(body).map_err(e)?;
            let r = PolicyRequest::from_json(&value).map_err(e)?;
            r.to_update(OverlayConfig::default_for).map_err(e)?;
        }
        2 => {
            let r: JoinRequest = decode_json(body).map_err(e)?;
            r.to_node_addr().map_err(e)?;
        }
        3 => {
            let r: FaultsRequest = decode_json(body).map_err(e)?;
            r.to_rules(1).map_err(e)?;
        }
        4 => {
            let r: BroadcastRequest = decode_json(body).map_err(e)?;
            r.validate().map_err(e)?;
        }
        5 => {
            let r: OptimizeRequest = decode_json(body).map_err(e)?;
            r.check().map_err(e)?;
        }
        6 => {
            let r: AppMetricsRequest = decode_json(body).map_err(e)?;
            let batch = Batch {
                gauges: r.gauges,
                counters: r.counters,
                histograms: r.histograms,
            };
            AppMetrics::new(DEFAULT_MAX_NAMES)
                .record(&batch)
                .map_err(|e| e.to_string())?;
        }
        _ => {
            let _: ReportRequest = decode_json(body).map_err(e)?;
        }
    }
    Ok(())
}

/// Environment prefix of the `config` target: no variable has it, so the
/// outcome depends on the input only.
const FUZZ_ENV_PREFIX: &str = "TOPOD_FUZZ_UNSET_";

/// A node config file (UTF-8 TOML) through the loader: figment, then
/// every section's validation. An accepted config must also pass
/// `validate` again and keep its `NodeAddr`s printable.
pub fn config(data: &[u8]) -> Outcome {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8: {e}"))?;
    let cfg =
        NodeConfig::from_toml_str_with_env(text, FUZZ_ENV_PREFIX).map_err(|e| e.to_string())?;
    cfg.validate().expect("a loaded config validates");
    for v in &cfg.initial_voters {
        let _: NodeAddr = v.node_addr();
    }
    Ok(())
}
