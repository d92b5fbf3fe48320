//! The conformance suite: one set of test functions, generic over the
//! backend, instantiated for TCP and for the in-memory network at the end.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::harness::*;
use crate::transport::codec::{self, FrameReader, WireFrame, PROTOCOL_VERSION};
use crate::transport::{
    Direction, FaultRule, FaultRules, FrameClass, LinkDownReason, SendError, TransportConfig,
    TransportError, TransportEvent,
};

/// Frame `i` of a stream: its index, then filler derived from it.
fn payload(i: u32) -> Bytes {
    let len = if i % 100 == 0 {
        1 << 20
    } else {
        8 + (i as usize * 131) % 8192
    };
    let mut v = vec![i as u8; len];
    v[..4].copy_from_slice(&i.to_be_bytes());
    Bytes::from(v)
}

async fn frames_arrive_in_order_and_intact<N: Net>(net: N) {
    let ((a, _ea), (_b, mut eb)) = pair(&net, config(), config()).await;
    const N: u32 = 1000;
    let sender = tokio::spawn(async move {
        for i in 0..N {
            a.send(2, payload(i)).await.unwrap();
        }
        a
    });
    for i in 0..N {
        let (from, p) = next_frame(&mut eb).await;
        assert_eq!(from, 1);
        assert!(p == payload(i), "frame {i} out of order or corrupted");
    }
    let a = sender.await.unwrap();
    let s = a.stats().peers[&2].clone();
    assert!(
        s.frames_out >= u64::from(N),
        "pings come on top of the data frames"
    );
    assert_eq!(s.queue_depth, 0);
}

async fn oversized_frame_is_refused<N: Net>(net: N) {
    let small = TransportConfig {
        max_frame_bytes: 64 << 10,
        ..config()
    };
    // The sender refuses a payload over its own limit.
    let ((a, mut ea), (b, mut eb)) = pair(&net, config(), small.clone()).await;
    assert!(matches!(
        b.try_send(1, FrameClass::Data, Bytes::from(vec![0; 64 << 10])),
        Err(SendError::TooLarge { max, .. }) if max == 64 << 10
    ));
    // A receiver with a smaller limit closes the link with a reason and
    // never delivers the frame.
    a.try_send(2, FrameClass::Data, Bytes::from(vec![7; 100 << 10]))
        .unwrap();
    let ev = expect(&mut eb, "LinkDown for the oversized frame", |e| {
        matches!(
            e,
            TransportEvent::LinkDown { .. } | TransportEvent::Frame { .. }
        )
    })
    .await;
    match ev {
        TransportEvent::LinkDown {
            peer: 1,
            reason: LinkDownReason::Protocol(r),
        } => assert!(r.contains("exceeds the limit"), "{r}"),
        other => panic!("expected LinkDown with a protocol reason, got {other:?}"),
    }
    expect(&mut ea, "LinkDown at the sender", |e| {
        matches!(e, TransportEvent::LinkDown { peer: 2, .. })
    })
    .await;
    // The standing link comes back and small frames flow again.
    link_up(&mut eb, 1).await;
    a.send(2, Bytes::from_static(b"small")).await.unwrap();
    assert_eq!(next_frame(&mut eb).await.1, Bytes::from_static(b"small"));
}

async fn wrong_cluster_id_is_refused<N: Net>(net: N) {
    let (a, mut ea) = net.node(1, config(), "cluster-a", None).await;
    let (b, mut eb) = net.node(2, config(), "cluster-b", None).await;
    introduce(&[&a, &b]);
    a.connect(2).unwrap();
    let ev = expect(&mut ea, "SendFailed or LinkUp", |e| {
        matches!(
            e,
            TransportEvent::SendFailed { .. } | TransportEvent::LinkUp { .. }
        )
    })
    .await;
    let TransportEvent::SendFailed {
        peer: 2, reason, ..
    } = ev
    else {
        panic!("expected a refused dial, got {ev:?}");
    };
    assert!(
        reason.contains("cluster id mismatch")
            && reason.contains("cluster-a")
            && reason.contains("cluster-b"),
        "{reason}"
    );
    // A retry is refused too; the receiver never sees a link.
    expect(&mut ea, "a second refusal", |e| {
        matches!(e, TransportEvent::SendFailed { .. })
    })
    .await;
    assert!(a.links().is_empty() && b.links().is_empty());
    while let Ok(ev) = eb.try_recv() {
        assert!(!matches!(ev, TransportEvent::LinkUp { .. }), "{ev:?}");
    }
}

async fn wrong_protocol_version_is_refused<N: Net>(net: N) {
    let (b, mut eb) = net.node(2, config(), CLUSTER, None).await;
    let stream = net.raw(b.bound_addr()).await;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let hello = WireFrame::Hello {
        cluster_id: CLUSTER.into(),
        node_id: 9,
        protocol_version: 999,
    };
    wr.write_all(&codec::encode(&hello, 4096).unwrap())
        .await
        .unwrap();
    let mut reader = FrameReader::new(4096);
    let first = reader.read(&mut rd).await.unwrap().unwrap().0;
    assert!(matches!(
        first,
        WireFrame::Hello {
            node_id: 2,
            protocol_version: PROTOCOL_VERSION,
            ..
        }
    ));
    match reader.read(&mut rd).await.unwrap().unwrap().0 {
        WireFrame::Refuse { reason } => assert!(
            reason.contains("protocol version mismatch")
                && reason.contains("ours 1")
                && reason.contains("theirs 999"),
            "{reason}"
        ),
        other => panic!("expected Refuse, got {other:?}"),
    }
    assert!(
        reader.read(&mut rd).await.unwrap().is_none(),
        "the link is closed after Refuse"
    );
    assert!(b.links().is_empty());
    assert!(eb.try_recv().is_err(), "no event for a refused handshake");
}

async fn dropped_link_reconnects<N: Net>(net: N) {
    let ((a, mut ea), (b, _eb)) = pair(&net, config(), config()).await;
    let addr = b.bound_addr();
    b.shutdown().await;
    drop(b);
    expect(&mut ea, "LinkDown after the peer stopped", |e| {
        matches!(e, TransportEvent::LinkDown { peer: 2, .. })
    })
    .await;
    // The peer restarts on the same address; the standing link comes back.
    let (b2, mut eb2) = net.node(2, config(), CLUSTER, Some(addr)).await;
    introduce(&[&a, &b2]);
    link_up(&mut ea, 2).await;
    link_up(&mut eb2, 1).await;
    a.send(2, Bytes::from_static(b"again")).await.unwrap();
    assert_eq!(
        next_frame(&mut eb2).await,
        (1, Bytes::from_static(b"again"))
    );
    assert_eq!(a.stats().peers[&2].disconnects, 1);
}

async fn simultaneous_dials_end_with_one_link<N: Net>(net: N) {
    for round in 0..5u64 {
        let (x, y) = (10 + 2 * round, 11 + 2 * round);
        let (a, mut ea) = net.node(x, config(), CLUSTER, None).await;
        let (b, mut eb) = net.node(y, config(), CLUSTER, None).await;
        introduce(&[&a, &b]);
        a.connect(y).unwrap();
        b.connect(x).unwrap();
        link_up(&mut ea, y).await;
        link_up(&mut eb, x).await;
        // Frames flow both ways over the one link, and no link flapped.
        a.send(y, Bytes::from_static(b"a")).await.unwrap();
        b.send(x, Bytes::from_static(b"b")).await.unwrap();
        for (events, from) in [(&mut ea, y), (&mut eb, x)] {
            let ev = expect(events, "frame or flap", |e| {
                matches!(
                    e,
                    TransportEvent::Frame { .. }
                        | TransportEvent::LinkDown { .. }
                        | TransportEvent::LinkUp { .. }
                )
            })
            .await;
            assert!(
                matches!(ev, TransportEvent::Frame { from: f, .. } if f == from),
                "round {round}: {ev:?}"
            );
        }
        assert_eq!(a.links(), vec![y]);
        assert_eq!(b.links(), vec![x]);
        assert_eq!(a.stats().peers[&y].disconnects, 0);
        assert_eq!(b.stats().peers[&x].disconnects, 0);
        a.shutdown().await;
        b.shutdown().await;
    }
}

async fn full_queue_drops_control_and_backpressures_data<N: Net>(net: N) {
    let c = TransportConfig {
        queue_len: 4,
        event_queue_len: 4,
        ..config()
    };
    // Node 2's owner does not read its events: its readers stop, the
    // pipe fills, and node 1's queue fills.
    let ((a, _ea), (_b, mut eb)) = pair(&net, c.clone(), c).await;
    let big = |i: u32| {
        let mut v = vec![0u8; 64 << 10];
        v[..4].copy_from_slice(&i.to_be_bytes());
        Bytes::from(v)
    };
    // Fill until the queue stays full: 20 refusals in a row, 5 ms apart,
    // mean the writer is stuck on the full pipe, not merely busy.
    let deadline = Instant::now() + WAIT;
    let (mut queued, mut refusals) = (0u32, 0);
    while refusals < 20 {
        match a.try_send(2, FrameClass::Data, big(queued)) {
            Ok(()) => (queued, refusals) = (queued + 1, 0),
            Err(SendError::Backpressure { peer: 2 }) => {
                refusals += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(Instant::now() < deadline, "queue never filled");
    }
    // Still full: a control frame is dropped and counted.
    let dropped = a.try_send(2, FrameClass::Control, Bytes::from_static(b"ctl"));
    assert_eq!(dropped, Err(SendError::QueueFull { peer: 2 }));
    assert_eq!(a.stats().peers[&2].dropped, 1);
    assert_eq!(a.stats().peers[&2].queue_depth, 4);
    // A waiting send completes once the receiver drains; nothing is lost.
    let last = tokio::spawn({
        let a = a.clone();
        async move { a.send(2, big(queued)).await }
    });
    for i in 0..=queued {
        let (_, p) = next_frame(&mut eb).await;
        assert_eq!(p[..4], i.to_be_bytes(), "data frame {i} lost or reordered");
    }
    last.await.unwrap().unwrap();
}

async fn full_event_queue_drops_control_frames_and_counts_them<N: Net>(net: N) {
    let c = TransportConfig {
        event_queue_len: 4,
        ..config()
    };
    let ((a, _ea), (b, mut eb)) = pair(&net, config(), c).await;
    for i in 0..50u8 {
        a.try_send(2, FrameClass::Control, Bytes::from(vec![i]))
            .unwrap();
    }
    a.send(2, Bytes::from_static(b"data")).await.unwrap();
    // The data frame waits for room: it arrives after the drain, last.
    let dropped = || b.stats().peers[&1].dropped;
    eventually("control frames dropped at the receiver", || dropped() > 0).await;
    let mut control = 0;
    loop {
        match expect(&mut eb, "frames", |e| {
            matches!(e, TransportEvent::Frame { .. })
        })
        .await
        {
            TransportEvent::Frame {
                class: FrameClass::Control,
                ..
            } => control += 1,
            TransportEvent::Frame {
                class: FrameClass::Data,
                payload,
                ..
            } => {
                assert_eq!(payload, Bytes::from_static(b"data"));
                break;
            }
            _ => unreachable!(),
        }
    }
    assert!(control < 50);
    assert_eq!(
        control + dropped(),
        50,
        "every control frame delivered or counted"
    );
    assert!(b.stats().dropped_events >= dropped());
}

async fn fault_filter_drops_and_delays_for_the_chosen_peer<N: Net>(net: N) {
    // One ping each way at link start and none after it: the frames the
    // rules act on are then only the test's own, so "a drop was counted"
    // means the test's frame was dropped (a ping dropped and counted first
    // let the rules change before that frame was judged).
    let quiet = TransportConfig {
        ping_interval_ms: 60_000,
        ping_timeout_ms: 120_000,
        ..config()
    };
    let (a, _ea) = net.node(1, quiet.clone(), CLUSTER, None).await;
    let (b, mut eb) = net.node(2, quiet.clone(), CLUSTER, None).await;
    let (c, mut ec) = net.node(3, quiet, CLUSTER, None).await;
    introduce(&[&a, &b, &c]);
    a.connect(2).unwrap();
    a.connect(3).unwrap();
    link_up(&mut eb, 1).await;
    link_up(&mut ec, 1).await;
    // Both start-up pings answered, both ways, before any rule is set.
    eventually("the start-up pings are answered", || {
        a.stats()
            .peers
            .get(&2)
            .is_some_and(|p| p.last_rtt.is_some())
            && b.stats()
                .peers
                .get(&1)
                .is_some_and(|p| p.last_rtt.is_some())
    })
    .await;
    let drop_to_b = FaultRule {
        peer: 2,
        direction: Direction::Outbound,
        drop_probability: 1.0,
        delay: Duration::ZERO,
    };
    a.set_faults(FaultRules {
        rules: vec![drop_to_b],
        seed: 7,
    })
    .unwrap();
    a.try_send(2, FrameClass::Data, Bytes::from_static(b"lost"))
        .unwrap();
    a.try_send(3, FrameClass::Data, Bytes::from_static(b"kept"))
        .unwrap();
    assert_eq!(next_frame(&mut ec).await.1, Bytes::from_static(b"kept"));
    eventually("the drop is counted", || a.stats().peers[&2].dropped >= 1).await;
    // Delay only: frames to b arrive late, frames to c do not wait for them.
    let delay = Duration::from_millis(150);
    let slow_b = FaultRule {
        peer: 2,
        direction: Direction::Outbound,
        drop_probability: 0.0,
        delay,
    };
    a.set_faults(FaultRules {
        rules: vec![slow_b],
        seed: 7,
    })
    .unwrap();
    let start = Instant::now();
    a.try_send(2, FrameClass::Data, Bytes::from_static(b"late"))
        .unwrap();
    a.try_send(3, FrameClass::Data, Bytes::from_static(b"prompt"))
        .unwrap();
    assert_eq!(next_frame(&mut ec).await.1, Bytes::from_static(b"prompt"));
    assert_eq!(
        next_frame(&mut eb).await.1,
        Bytes::from_static(b"late"),
        "the dropped frame never arrives"
    );
    assert!(start.elapsed() >= delay);
    // Cleared: frames flow at once again.
    a.clear_faults().unwrap();
    a.try_send(2, FrameClass::Data, Bytes::from_static(b"after"))
        .unwrap();
    assert_eq!(next_frame(&mut eb).await.1, Bytes::from_static(b"after"));
    // With chaos off the filter refuses rules.
    let off = TransportConfig {
        chaos: false,
        ..config()
    };
    let (d, _ed) = net.node(4, off, CLUSTER, None).await;
    assert!(matches!(
        d.set_faults(FaultRules::default()),
        Err(TransportError::ChaosDisabled)
    ));
    assert!(matches!(
        d.clear_faults(),
        Err(TransportError::ChaosDisabled)
    ));
}

async fn rtt_events_appear<N: Net>(net: N) {
    let ((a, mut ea), (_b, _eb)) = pair(&net, config(), config()).await;
    let ev = expect(&mut ea, "an RTT sample", |e| {
        matches!(e, TransportEvent::Rtt { peer: 2, .. })
    })
    .await;
    let TransportEvent::Rtt { rtt, .. } = ev else {
        unreachable!()
    };
    assert!(rtt < WAIT);
    let s = a.stats().peers[&2].clone();
    assert!(s.link_up && s.last_rtt.is_some() && s.rtt_p50.is_some() && s.rtt_p99 >= s.rtt_p50);
}

async fn disconnect_closes_the_link_and_forgets_the_peer<N: Net>(net: N) {
    let ((a, mut ea), (b, mut eb)) = pair(&net, config(), config()).await;
    assert!(a.disconnect(2));
    expect(&mut ea, "LinkDown(Disconnected)", |e| {
        matches!(
            e,
            TransportEvent::LinkDown {
                peer: 2,
                reason: LinkDownReason::Disconnected
            }
        )
    })
    .await;
    expect(&mut eb, "LinkDown at the peer", |e| {
        matches!(e, TransportEvent::LinkDown { peer: 1, .. })
    })
    .await;
    assert_eq!(
        a.try_send(2, FrameClass::Data, Bytes::from_static(b"x")),
        Err(SendError::UnknownPeer { peer: 2 })
    );
    eventually("the peer forgets a link it did not ask for", || {
        b.stats().peers.is_empty()
    })
    .await;
    assert!(!a.disconnect(2));
    a.shutdown().await;
    assert_eq!(a.send(2, Bytes::new()).await, Err(SendError::Closed));
}

async fn silent_link_is_closed_after_the_ping_timeout<N: Net>(net: N) {
    let c = TransportConfig {
        ping_timeout_ms: 300,
        ..config()
    };
    let ((a, mut ea), (_b, _eb)) = pair(&net, c.clone(), c).await;
    // Node 1 stops hearing node 2 (every inbound frame dropped).
    let deaf = FaultRule {
        peer: 2,
        direction: Direction::Inbound,
        drop_probability: 1.0,
        delay: Duration::ZERO,
    };
    a.set_faults(FaultRules {
        rules: vec![deaf],
        seed: 1,
    })
    .unwrap();
    let start = Instant::now();
    expect(&mut ea, "LinkDown(PingTimeout)", |e| {
        matches!(
            e,
            TransportEvent::LinkDown {
                peer: 2,
                reason: LinkDownReason::PingTimeout
            }
        )
    })
    .await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    // Healed: the standing link comes back.
    a.clear_faults().unwrap();
    link_up(&mut ea, 2).await;
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod tcp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Tcp).await
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Mem(crate::transport::MemoryNetwork::new())).await
                }
            )*
        }
    };
}

suite!(
    frames_arrive_in_order_and_intact,
    oversized_frame_is_refused,
    wrong_cluster_id_is_refused,
    wrong_protocol_version_is_refused,
    dropped_link_reconnects,
    simultaneous_dials_end_with_one_link,
    full_queue_drops_control_and_backpressures_data,
    full_event_queue_drops_control_frames_and_counts_them,
    fault_filter_drops_and_delays_for_the_chosen_peer,
    rtt_events_appear,
    disconnect_closes_the_link_and_forgets_the_peer,
    silent_link_is_closed_after_the_ping_timeout,
);
