//! The pure apply path of the state machine, so regressions show without a
//! cluster: `TopologyState::apply` of `SetPolicy` and of a whole switch
//! cycle (propose, three prepare reports, commit), `Envelope` encode and
//! decode, and the postcard encoding of the whole state (what every apply
//! writes to sled).
//!
//! Run: `cargo bench --bench state_machine` (about a minute).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use topod::model::{
    ApplyContext, Command, CommandResponse, Envelope, OverlayConfig, Phase, PolicyUpdate,
    ProposeSwitch, SwitchReason, Topology, TopologyState,
};

const MEMBERS: [u64; 3] = [1, 2, 3];
const TERM: u64 = 3;

fn ctx(index: u64) -> ApplyContext {
    ApplyContext {
        index,
        term: TERM,
        members: MEMBERS.to_vec(),
    }
}

fn propose(target: Topology) -> Command {
    Command::ProposeSwitch(ProposeSwitch::new(
        target,
        OverlayConfig::default_for(target),
        SwitchReason::Manual,
        None,
        "api@node1",
    ))
}

fn set_policy(cooldown_ms: u64) -> Command {
    Command::SetPolicy(PolicyUpdate {
        cooldown_ms: Some(cooldown_ms),
        ..PolicyUpdate::default()
    })
}

/// Runs one full switch cycle from `index` on; returns the next free index.
fn switch_cycle(state: &mut TopologyState, mut index: u64, stamp: u64) -> u64 {
    let target = if state.topology == Topology::HyParView {
        Topology::FullMesh
    } else {
        Topology::HyParView
    };
    let id = index;
    let r = state.apply(&ctx(index), stamp, &propose(target));
    debug_assert_eq!(r, CommandResponse::Accepted { id });
    index += 1;
    for node in MEMBERS {
        let report = Command::ReportPhase {
            id,
            node,
            phase: Phase::Prepared,
        };
        let r = state.apply(&ctx(index), stamp, &report);
        debug_assert_eq!(r, CommandResponse::Applied);
        index += 1;
    }
    let commit = Command::CommitSwitch {
        id,
        term: TERM,
        missing: Vec::new(),
    };
    let r = state.apply(&ctx(index), stamp, &commit);
    debug_assert_eq!(r, CommandResponse::Applied);
    index + 1
}

/// A state whose history is full (the default retention, 1000 records),
/// as on a cluster that has been switching for a while.
fn state_with_history() -> (TopologyState, u64) {
    let mut state = TopologyState::default();
    let mut index = 1;
    let retention = state.policy.history_retention as u64;
    for i in 0..retention {
        index = switch_cycle(&mut state, index, 1_000 + i);
    }
    assert_eq!(state.history.len() as u64, retention);
    (state, index)
}

fn apply(c: &mut Criterion) {
    let (full, next_index) = state_with_history();
    let mut g = c.benchmark_group("apply");

    let mut state = TopologyState::default();
    let mut i = 0u64;
    g.bench_function("set_policy/empty_history", |b| {
        b.iter(|| {
            i += 1;
            black_box(state.apply(&ctx(i), 1_000, &set_policy(1_000 + i % 1000)))
        })
    });

    let mut state = full.clone();
    let mut i = next_index;
    g.bench_function("set_policy/1000_history", |b| {
        b.iter(|| {
            i += 1;
            black_box(state.apply(&ctx(i), 1_000_000, &set_policy(1_000 + i % 1000)))
        })
    });

    // What the sled state machine does per applied batch before encoding:
    // clone the applied state, apply to the copy.
    g.bench_function("clone_then_set_policy/1000_history", |b| {
        let mut i = next_index;
        b.iter(|| {
            i += 1;
            let mut next = full.clone();
            black_box(next.apply(&ctx(i), 1_000_000, &set_policy(1_000 + i % 1000)));
            next
        })
    });

    let mut state = full.clone();
    let mut index = next_index;
    let mut stamp = 2_000_000u64;
    g.bench_function("switch_cycle/1000_history", |b| {
        b.iter(|| {
            stamp += 1;
            index = switch_cycle(&mut state, index, stamp);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("state");
    g.bench_function("encode/1000_history", |b| {
        b.iter(|| postcard::to_allocvec(black_box(&full)).unwrap())
    });
    let bytes = postcard::to_allocvec(&full).unwrap();
    g.bench_function("decode/1000_history", |b| {
        b.iter(|| postcard::from_bytes::<TopologyState>(black_box(&bytes)).unwrap())
    });
    g.finish();
}

fn envelope(c: &mut Criterion) {
    let mut g = c.benchmark_group("envelope");
    for (name, command) in [
        ("set_policy", set_policy(5_000)),
        ("propose_switch", propose(Topology::HyParView)),
    ] {
        let env = Envelope::new(1_700_000_000_000, command);
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| black_box(&env).encode())
        });
        let bytes = env.encode();
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| Envelope::decode(black_box(&bytes)).unwrap())
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = apply, envelope
}
criterion_main!(benches);
