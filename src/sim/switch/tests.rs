//! Simulated switches: every node runs the executor's core; the
//! figures the issue names (switch time, lost, duplicated, prepare
//! failures) are asserted on runs small enough for a debug build.

use super::*;

fn quick(nodes: u32, from: Topology, to: Topology) -> SwitchParams {
    SwitchParams {
        settle_ms: 5_000,
        run_ms: 12_000,
        rate_per_s: 50.0,
        ..SwitchParams::new(nodes, from, to)
    }
}

fn assert_clean(r: &SwitchReport) {
    let s = &r.switches[0];
    assert!(r.committed, "{r:#?}");
    assert_eq!(
        s.settled, s.expected,
        "every live node steady on the new overlay: {r:#?}"
    );
    assert_eq!(r.lost, 0, "{r:#?}");
    assert_eq!(r.duplicates, 0, "{r:#?}");
    assert_eq!(r.prepare_failures, 0, "{r:#?}");
    assert!(r.broadcasts >= 20, "a stream ran: {r:#?}");
    assert!(s.switch_ms.p50 > 0 && s.switch_ms.p50 <= s.switch_ms.p99);
}

#[test]
fn a_thousand_nodes_switch_hyparview_to_pub_sub_under_a_stream_losing_nothing() {
    // Light enough for a debug build: a short run and a slow stream.
    let p = SwitchParams {
        settle_ms: 3_000,
        run_ms: 7_000,
        rate_per_s: 5.0,
        ..SwitchParams::new(1000, Topology::HyParView, Topology::PubSub)
    };
    let r = run_switch(&p).unwrap();
    assert_clean(&r);
    assert_eq!(r.probers, 32);
    assert!(
        r.peak_two_overlays >= 900,
        "nodes ran two overlays at once: {r:#?}"
    );
    assert!(r.overhead_messages > 0, "{r:#?}");
}

#[test]
fn every_pair_of_topologies_switches_cleanly_on_a_small_cluster() {
    for from in Topology::ALL {
        for to in Topology::ALL {
            if from == to {
                continue;
            }
            let r = run_switch(&quick(40, from, to)).unwrap();
            assert_clean(&r);
            assert_eq!(r.probers, 0, "every node probes below 1,000");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let p = quick(60, Topology::FullMesh, Topology::HyParView);
    let (mut a, mut b) = (run_switch(&p).unwrap(), run_switch(&p).unwrap());
    a.wall_ms = 0;
    b.wall_ms = 0;
    assert_eq!(a, b);
}

#[test]
fn a_node_cut_off_during_the_prepare_aborts_the_switch_and_the_stream_recovers() {
    let mut p = quick(50, Topology::HyParView, Topology::PubSub);
    p.events.push(SwitchEvent::Partition {
        at_ms: 1,
        fraction: 0.05,
    });
    p.events.push(SwitchEvent::Heal { at_ms: 7_000 });
    let r = run_switch(&p).unwrap();
    let s = &r.switches[0];
    assert!(
        !s.committed,
        "a member that cannot prepare blocks the commit: {r:#?}"
    );
    assert_eq!(r.lost, 0, "gap repair after the heal: {r:#?}");
    assert_eq!(r.duplicates, 0);
}

#[test]
fn failures_during_a_switch_do_not_stop_it() {
    let mut p = quick(60, Topology::FullMesh, Topology::HyParView);
    p.events.push(SwitchEvent::Fail {
        at_ms: 200,
        fraction: 0.1,
    });
    let r = run_switch(&p).unwrap();
    let s = &r.switches[0];
    assert_eq!(s.expected, 54, "six nodes failed: {r:#?}");
    assert!(s.committed, "{r:#?}");
    assert_eq!(s.settled, s.expected, "{r:#?}");
    assert_eq!(r.duplicates, 0);
}

#[test]
fn two_switches_in_a_row_both_settle() {
    let mut p = quick(50, Topology::HyParView, Topology::PubSub);
    p.events.push(SwitchEvent::Switch {
        at_ms: 4_000,
        to: Topology::ClientServer,
    });
    let r = run_switch(&p).unwrap();
    assert_eq!(r.switches.len(), 2);
    for s in &r.switches {
        assert!(s.committed && s.settled == s.expected, "{r:#?}");
    }
    assert_eq!(r.lost, 0, "{r:#?}");
    assert_eq!(r.duplicates, 0);
}

#[test]
#[ignore = "minutes in a release build: cargo test --release --lib sim::switch -- --ignored"]
fn ten_thousand_nodes_switch_hyparview_to_pub_sub() {
    let r = run_switch(&SwitchParams::new(
        10_000,
        Topology::HyParView,
        Topology::PubSub,
    ))
    .unwrap();
    assert_clean(&r);
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let mut p = quick(10, Topology::HyParView, Topology::PubSub);
    p.loss = 2.0;
    let e = run_switch(&p).unwrap_err().to_string();
    assert!(e.contains("loss"), "{e}");
    let mut p = quick(10, Topology::HyParView, Topology::PubSub);
    p.events.clear();
    let e = run_switch(&p).unwrap_err().to_string();
    assert!(e.contains("no switch"), "{e}");
    let p = quick(3_000, Topology::FullMesh, Topology::PubSub);
    assert!(matches!(run_switch(&p), Err(SimError::TooLarge { .. })));
}

#[test]
fn simulate_with_switch_prints_the_figures_as_json_and_as_a_table() {
    let args = crate::sim::SimulateArgs {
        nodes: Some(30),
        switch: Some((Topology::HyParView, Topology::PubSub)),
        settle_ms: Some(3_000),
        run_ms: Some(8_000),
        rate: Some(20.0),
        json: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    crate::sim::run_simulate(&args, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for key in [
        "switch_ms",
        "lost",
        "duplicates",
        "prepare_failures",
        "overhead_messages",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert!(
        v["switch_ms"]["p50"].as_u64().is_some_and(|ms| ms > 0),
        "{v}"
    );
    assert_eq!(v["lost"], 0, "{v}");
    let mut out = Vec::new();
    crate::sim::run_simulate(
        &crate::sim::SimulateArgs {
            json: false,
            ..args
        },
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("hyparview → pub_sub") && text.contains("0 lost"),
        "{text}"
    );
}
