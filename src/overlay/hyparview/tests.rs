use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::testnet::{components, TestNet};
use super::*;
use crate::overlay::{Command, InEvent, MessageId, OutEvent, PeerId, Protocol};

type Node = State<ChaCha8Rng>;
type Out = OutEvent<Message, Timer>;

fn config(active: usize, passive: usize) -> Config {
    Config {
        active_view: active,
        passive_view: passive,
        ..Config::default()
    }
}

/// Node 0, started, with `active` as its active view.
fn node(cfg: Config, active: &[PeerId]) -> Node {
    let mut n = State::new(0, cfg, ChaCha8Rng::seed_from_u64(1));
    let mut out = Vec::new();
    n.handle(T0, InEvent::Command(Command::Join(vec![])), &mut out);
    for &p in active {
        recv(&mut n, p, HIGH);
    }
    assert_eq!(n.active_view(), active);
    n
}

const T0: Duration = Duration::ZERO;
/// NEIGHBOR requests from peers carry their own request id.
const REQ: u64 = 77;
const LOW: MembershipMessage = MembershipMessage::Neighbor {
    priority: Priority::Low,
    request: REQ,
};
const HIGH: MembershipMessage = MembershipMessage::Neighbor {
    priority: Priority::High,
    request: REQ,
};

fn low(request: u64) -> MembershipMessage {
    MembershipMessage::Neighbor {
        priority: Priority::Low,
        request,
    }
}

fn high(request: u64) -> MembershipMessage {
    MembershipMessage::Neighbor {
        priority: Priority::High,
        request,
    }
}

fn reply(accepted: bool, request: u64) -> MembershipMessage {
    MembershipMessage::NeighborReply { accepted, request }
}

fn recv(n: &mut Node, from: PeerId, m: MembershipMessage) -> Vec<Out> {
    let mut out = Vec::new();
    n.handle(
        T0,
        InEvent::Message {
            from,
            message: m.into(),
        },
        &mut out,
    );
    out
}

fn send(to: PeerId, m: MembershipMessage) -> Out {
    OutEvent::Send {
        to,
        message: m.into(),
    }
}

fn view(links: &[PeerId]) -> Out {
    OutEvent::ViewChanged {
        links: links.to_vec(),
    }
}

/// Fills the passive view through a SHUFFLE_REPLY (accepted from anyone).
fn fill_passive(n: &mut Node, peers: &[PeerId]) {
    recv(
        n,
        1,
        MembershipMessage::ShuffleReply {
            peers: peers.to_vec(),
        },
    );
    assert_eq!(n.passive_view(), peers);
}

#[test]
fn join_to_a_full_active_view_evicts_one_peer_and_forwards() {
    let mut n = node(config(2, 30), &[1, 2]);
    let out = recv(&mut n, 9, MembershipMessage::Join);
    let victim = if n.active_view().contains(&1) { 2 } else { 1 };
    let kept = 3 - victim;
    assert_eq!(
        out,
        vec![
            send(victim, MembershipMessage::Disconnect),
            OutEvent::Disconnect(victim),
            OutEvent::Connect(9),
            send(kept, MembershipMessage::ForwardJoin { joiner: 9, ttl: 6 }),
            view(&[kept, 9]),
        ]
    );
    assert_eq!(n.active_view(), &[kept, 9]);
    assert_eq!(n.passive_view(), &[victim]);
}

#[test]
fn forward_join_with_ttl_zero_adds_the_joiner_to_the_active_view() {
    let mut n = node(config(5, 30), &[1, 2]);
    let out = recv(
        &mut n,
        1,
        MembershipMessage::ForwardJoin { joiner: 9, ttl: 0 },
    );
    assert_eq!(
        out,
        vec![
            OutEvent::Connect(9),
            send(9, high(UNSOLICITED)),
            view(&[1, 2, 9]),
        ]
    );
}

#[test]
fn forward_join_is_accepted_when_the_forwarder_is_the_only_neighbour() {
    let mut n = node(config(5, 30), &[1]);
    let out = recv(
        &mut n,
        1,
        MembershipMessage::ForwardJoin { joiner: 9, ttl: 5 },
    );
    assert_eq!(
        out,
        vec![
            OutEvent::Connect(9),
            send(9, high(UNSOLICITED)),
            view(&[1, 9]),
        ]
    );
}

#[test]
fn forward_join_adds_to_passive_at_prwl_and_walks_on() {
    let mut n = node(config(5, 30), &[1, 2]);
    // TTL 4 != PRWL: only forwarded, to the one peer that is not the sender.
    let out = recv(
        &mut n,
        1,
        MembershipMessage::ForwardJoin { joiner: 9, ttl: 4 },
    );
    assert_eq!(
        out,
        vec![send(
            2,
            MembershipMessage::ForwardJoin { joiner: 9, ttl: 3 }
        )]
    );
    assert!(n.passive_view().is_empty());
    // TTL 3 == PRWL: joiner kept as passive, walk continues with TTL 2.
    let out = recv(
        &mut n,
        2,
        MembershipMessage::ForwardJoin { joiner: 9, ttl: 3 },
    );
    assert_eq!(
        out,
        vec![send(
            1,
            MembershipMessage::ForwardJoin { joiner: 9, ttl: 2 }
        )]
    );
    assert_eq!(n.passive_view(), &[9]);
    assert_eq!(n.active_view(), &[1, 2]);
}

#[test]
fn low_priority_neighbor_is_rejected_when_full_and_high_evicts() {
    let mut n = node(config(2, 30), &[1, 2]);
    let out = recv(&mut n, 7, LOW);
    // Refused; the request hints at churn, so the active view is probed
    // (a dead peer shows up as a failed send) and 7 kept as a candidate.
    let refused = |to| send(to, reply(false, REQ));
    assert_eq!(
        out,
        vec![
            refused(7),
            send(1, MembershipMessage::Ping),
            send(2, MembershipMessage::Ping),
        ]
    );
    assert_eq!(n.active_view(), &[1, 2]);
    assert_eq!(n.passive_view(), &[7]);
    // Probing is rate-limited.
    assert_eq!(recv(&mut n, 6, LOW), vec![refused(6)]);

    let out = recv(&mut n, 8, HIGH);
    let victim = if n.active_view().contains(&1) { 2 } else { 1 };
    let kept = 3 - victim;
    assert_eq!(
        out,
        vec![
            send(victim, MembershipMessage::Disconnect),
            OutEvent::Disconnect(victim),
            OutEvent::Connect(8),
            send(8, reply(true, REQ)),
            view(&[kept, 8]),
        ]
    );
}

#[test]
fn a_refusing_node_with_dead_peers_links_to_the_refused_peer() {
    let mut n = node(config(2, 30), &[1, 2]);
    fill_passive(&mut n, &[5, 6]);
    recv(&mut n, 7, LOW);
    // The probe to 1 failed: 7, known alive, is asked first.
    let mut out = Vec::new();
    n.handle(T0, InEvent::PeerDown(1), &mut out);
    assert_eq!(out[1], send(7, low(0)));
}

#[test]
fn low_priority_neighbor_is_accepted_when_there_is_room() {
    let mut n = node(config(3, 30), &[1, 2]);
    let out = recv(&mut n, 7, LOW);
    assert_eq!(
        out,
        vec![
            OutEvent::Connect(7),
            send(7, reply(true, REQ)),
            view(&[1, 2, 7]),
        ]
    );
}

#[test]
fn disconnect_moves_the_peer_to_the_passive_view() {
    let mut n = node(config(2, 30), &[1, 2]);
    let out = recv(&mut n, 1, MembershipMessage::Disconnect);
    // The only passive candidate is the peer that just dropped us: no
    // NEIGHBOR straight back to it.
    assert_eq!(out, vec![OutEvent::Disconnect(1), view(&[2])]);
    assert_eq!(n.active_view(), &[2]);
    assert_eq!(n.passive_view(), &[1]);
}

#[test]
fn peer_down_promotes_passive_peers_one_after_another() {
    let mut n = node(config(2, 30), &[1, 2]);
    fill_passive(&mut n, &[5, 6]);
    let mut out = Vec::new();
    n.handle(T0, InEvent::PeerDown(1), &mut out);
    let first = match &out[2] {
        OutEvent::Send { to, .. } => *to,
        other => panic!("expected NEIGHBOR, got {other:?}"),
    };
    let second = 11 - first;
    let timeout = Config::default().neighbor_timeout;
    // The remaining peer is probed (failures come together), then the
    // first candidate asked.
    assert_eq!(
        out,
        vec![
            OutEvent::Disconnect(1),
            send(2, MembershipMessage::Ping),
            send(first, low(0)),
            OutEvent::ScheduleTimer {
                after: timeout,
                timer: Timer::NeighborTimeout {
                    peer: first,
                    token: 0
                },
            },
            view(&[2]),
        ]
    );

    // No answer in time: the next candidate is tried, the silent one dropped.
    out.clear();
    let timer = Timer::NeighborTimeout {
        peer: first,
        token: 0,
    };
    n.handle(timeout, InEvent::Timer(timer.clone()), &mut out);
    assert_eq!(
        out,
        vec![
            send(second, low(1)),
            OutEvent::ScheduleTimer {
                after: timeout,
                timer: Timer::NeighborTimeout {
                    peer: second,
                    token: 1
                },
            },
        ]
    );
    assert_eq!(n.passive_view(), &[second]);

    // A stale timer for the answered request does nothing.
    // A stale answer (to another request) is ignored.
    assert!(recv(&mut n, second, reply(true, 0)).is_empty());
    let out = recv(&mut n, second, reply(true, 1));
    assert_eq!(out, vec![OutEvent::Connect(second), view(&[2, second])]);
    let mut out = Vec::new();
    n.handle(timeout, InEvent::Timer(timer), &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn rejected_neighbor_request_tries_the_next_candidate() {
    let mut n = node(config(2, 30), &[1, 2]);
    fill_passive(&mut n, &[5, 6]);
    let mut out = Vec::new();
    n.handle(T0, InEvent::PeerDown(1), &mut out);
    let first = n.membership().pending_neighbors().next().unwrap_or(0);
    let second = 11 - first;
    let out = recv(&mut n, first, reply(false, 0));
    assert_eq!(
        out,
        vec![
            send(second, low(1)),
            OutEvent::ScheduleTimer {
                after: Config::default().neighbor_timeout,
                timer: Timer::NeighborTimeout {
                    peer: second,
                    token: 1
                },
            },
        ]
    );
    // A refusal keeps the candidate in the passive view.
    assert_eq!(n.passive_view().len(), 2);
}

#[test]
fn an_empty_active_view_asks_with_high_priority() {
    let mut n = node(config(1, 30), &[1]);
    fill_passive(&mut n, &[5]);
    let mut out = Vec::new();
    n.handle(T0, InEvent::PeerDown(1), &mut out);
    assert_eq!(out[1], send(5, high(0)));
}

#[test]
fn shuffle_sends_a_sample_and_the_reply_evicts_sent_ids_first() {
    let mut n = node(config(2, 4), &[1, 2]);
    fill_passive(&mut n, &[5, 6, 7, 8]);
    let mut out = Vec::new();
    n.handle(T0, InEvent::Timer(Timer::Shuffle), &mut out);
    assert_eq!(
        out[0],
        OutEvent::ScheduleTimer {
            after: Config::default().shuffle_interval,
            timer: Timer::Shuffle
        }
    );
    let OutEvent::Send {
        to,
        message: Message::Membership(MembershipMessage::Shuffle { origin, ttl, peers }),
    } = &out[1]
    else {
        panic!("expected SHUFFLE, got {out:?}");
    };
    assert_eq!(out.len(), 2);
    assert!([1, 2].contains(to));
    assert_eq!((*origin, *ttl), (0, 6));
    // ka = min(3, other active peers) = 1, kp = 4.
    assert_eq!(peers.len(), 5);
    assert_eq!(peers[0], 3 - to);
    let sent_passive: Vec<PeerId> = peers[1..].to_vec();

    let out = recv(
        &mut n,
        9,
        MembershipMessage::ShuffleReply {
            peers: vec![20, 21],
        },
    );
    assert!(out.is_empty(), "{out:?}");
    // The last two passive ids sent were evicted for the two new ones.
    let mut expected: BTreeSet<PeerId> = sent_passive[..2].iter().copied().collect();
    expected.extend([20, 21]);
    let got: BTreeSet<PeerId> = n.passive_view().iter().copied().collect();
    assert_eq!(got, expected);
}

#[test]
fn shuffle_walk_ends_with_a_reply_and_integration() {
    // A full active view of one, so no NEIGHBOR requests follow.
    let mut n = node(config(1, 30), &[1]);
    fill_passive(&mut n, &[5]);
    let out = recv(
        &mut n,
        1,
        MembershipMessage::Shuffle {
            origin: 9,
            ttl: 4,
            peers: vec![10, 11],
        },
    );
    // The sender is the only neighbour: the walk ends here; the reply carries as many
    // passive peers as were offered (only 5 is known).
    assert_eq!(
        out,
        vec![send(9, MembershipMessage::ShuffleReply { peers: vec![5] })]
    );
    assert_eq!(n.passive_view(), &[5, 10, 11, 9]);
}

fn id(seq: u64) -> MessageId {
    MessageId {
        origin: 7,
        incarnation: 1,
        seq,
    }
}

#[test]
fn broadcast_floods_once_and_suppresses_duplicates() {
    let mut n = node(config(5, 30), &[1, 2]);
    let payload = Bytes::from_static(b"x");
    let msg = |hops| Message::Broadcast {
        id: id(1),
        hops,
        payload: payload.clone(),
    };
    let mut out = Vec::new();
    n.handle(
        T0,
        InEvent::Message {
            from: 1,
            message: msg(3),
        },
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            OutEvent::Deliver {
                id: id(1),
                from: 1,
                hops: 3,
                payload: payload.clone()
            },
            OutEvent::Send {
                to: 2,
                message: msg(4)
            },
        ]
    );
    out.clear();
    n.handle(
        T0,
        InEvent::Message {
            from: 2,
            message: msg(2),
        },
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");

    // A neighbour that comes up shortly after gets the recent broadcast.
    let out = recv(&mut n, 3, LOW);
    assert_eq!(
        out,
        vec![
            OutEvent::Connect(3),
            OutEvent::Send {
                to: 3,
                message: msg(4)
            },
            send(3, reply(true, REQ)),
            view(&[1, 2, 3]),
        ]
    );
}

#[test]
fn own_broadcast_is_delivered_with_zero_hops() {
    let mut n = node(config(5, 30), &[1, 2]);
    let payload = Bytes::from_static(b"y");
    let mut out = Vec::new();
    n.handle(
        T0,
        InEvent::Command(Command::Broadcast {
            id: id(2),
            payload: payload.clone(),
        }),
        &mut out,
    );
    let b = Message::Broadcast {
        id: id(2),
        hops: 1,
        payload: payload.clone(),
    };
    assert_eq!(
        out,
        vec![
            OutEvent::Deliver {
                id: id(2),
                from: 0,
                hops: 0,
                payload
            },
            OutEvent::Send {
                to: 1,
                message: b.clone()
            },
            OutEvent::Send { to: 2, message: b },
        ]
    );
}

// ---- multi-node runs -------------------------------------------------------

/// `n` nodes joining one after another through one of the first `contacts`
/// nodes, then settling for a minute.
pub(crate) fn joined_net(n: usize, contacts: usize, seed: u64) -> TestNet<Node> {
    joined_net_with(n, contacts, seed, None)
}

/// As [`joined_net`], with a per-message latency range in ms (messages of
/// one link may overtake each other).
fn joined_net_with(
    n: usize,
    contacts: usize,
    seed: u64,
    latency: Option<(u64, u64)>,
) -> TestNet<Node> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nodes = (0..n as PeerId)
        .map(|i| {
            State::new(
                i,
                Config::default(),
                ChaCha8Rng::seed_from_u64(seed ^ (i + 1)),
            )
        })
        .collect();
    let mut net = TestNet::new(nodes);
    if let Some((lo, hi)) = latency {
        net = net.with_latency(lo, hi, seed);
    }
    for i in 0..n as PeerId {
        let contact = if i == 0 {
            vec![]
        } else {
            vec![rng.gen_range(0..i.min(contacts as PeerId))]
        };
        net.input(i, InEvent::Command(Command::Join(contact)));
        net.run_for(Duration::from_millis(10));
    }
    net.run_for(Duration::from_secs(60));
    net
}

/// Every active link is known at both ends.
fn assert_symmetric(net: &TestNet<Node>) {
    for i in net.live() {
        for &p in net.nodes[i as usize].active_view() {
            assert!(
                net.nodes[p as usize].active_view().contains(&i),
                "{i} -> {p} is one-sided"
            );
        }
    }
}

fn assert_within_bounds(net: &TestNet<Node>) {
    let cfg = Config::default();
    for i in net.live() {
        let node = &net.nodes[i as usize];
        assert!(!node.active_view().is_empty(), "{i} is isolated");
        assert!(node.active_view().len() <= cfg.active_view);
        assert!(node.passive_view().len() <= cfg.passive_view);
        assert!(!node.active_view().contains(&i) && !node.passive_view().contains(&i));
        for p in node.passive_view() {
            assert!(!node.active_view().contains(p), "{i}: {p} in both views");
        }
    }
}

fn active_edges(net: &TestNet<Node>) -> Vec<(PeerId, PeerId)> {
    net.live()
        .flat_map(|i| {
            net.nodes[i as usize]
                .active_view()
                .iter()
                .map(move |&p| (i, p))
        })
        .collect()
}

#[test]
fn settled_overlay_is_symmetric_bounded_and_connected() {
    let net = joined_net(200, 10, 7);
    assert_symmetric(&net);
    assert_within_bounds(&net);
    let live: Vec<PeerId> = net.live().collect();
    assert_eq!(components(&live, &active_edges(&net)), 1);
    let full = live
        .iter()
        .filter(|&&i| net.nodes[i as usize].active_view().len() >= 4)
        .count();
    assert!(full >= 180, "only {full} of 200 nodes have 4+ neighbours");
}

#[test]
fn flood_reaches_everyone_exactly_once() {
    let mut net = joined_net(200, 10, 3);
    net.reset_counts();
    let payload = Bytes::from_static(b"hello");
    for seq in 0..5 {
        let sender = (seq * 37) % 200;
        net.input(
            sender,
            InEvent::Command(Command::Broadcast {
                id: id(seq),
                payload: payload.clone(),
            }),
        );
        net.run_for(Duration::from_millis(1));
        assert_eq!(net.reached(&id(seq)), 200);
    }
    assert_eq!(net.duplicate_deliveries, 0);
    // Each node forwards to its other neighbours: about (active − 1) per node.
    let per_broadcast = net.payload_sent / 5;
    assert!(per_broadcast <= 200 * 5, "{per_broadcast} payload messages");
}

#[test]
fn flood_after_half_the_nodes_fail_reaches_the_live_ones_and_heals() {
    let mut net = joined_net(200, 10, 11);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut killed = 0;
    while killed < 100 {
        let v = rng.gen_range(0..200);
        if net.alive[v as usize] {
            net.kill(v);
            killed += 1;
        }
    }
    let sender = net.live().next().unwrap_or(0);
    net.input(
        sender,
        InEvent::Command(Command::Broadcast {
            id: id(1),
            payload: Bytes::from_static(b"after failure"),
        }),
    );
    net.run_for(Duration::from_secs(5));
    let reached = net.reached(&id(1));
    assert!(reached >= 95, "first broadcast reached {reached} of 100");
    // Shuffles and sends detect the remaining dead links; the live overlay
    // heals into one symmetric component.
    for seq in 2..6 {
        net.input(
            sender,
            InEvent::Command(Command::Broadcast {
                id: id(seq),
                payload: Bytes::from_static(b"later"),
            }),
        );
        net.run_for(Duration::from_secs(15));
    }
    assert_eq!(net.reached(&id(5)), 100);
    let live: Vec<PeerId> = net.live().collect();
    assert_eq!(components(&live, &active_edges(&net)), 1);
}

#[test]
fn keepalive_pings_the_active_view_only_after_total_silence() {
    let mut n = node(config(5, 30), &[1, 2]);
    let keepalive = Duration::from_secs(2);
    let tick = |n: &mut Node, at: Duration| {
        let mut out = Vec::new();
        n.handle(at, InEvent::Timer(Timer::Keepalive), &mut out);
        out
    };
    let again = OutEvent::ScheduleTimer {
        after: keepalive,
        timer: Timer::Keepalive,
    };
    let ping = |to| send(to, MembershipMessage::Ping);
    // Heard from 1 at 1.5 s: not silent at 2 s.
    let mut out = Vec::new();
    let from_1 = InEvent::Message {
        from: 1,
        message: MembershipMessage::Ping.into(),
    };
    n.handle(Duration::from_millis(1500), from_1, &mut out);
    assert!(out.is_empty(), "a PING needs no answer: {out:?}");
    assert_eq!(tick(&mut n, keepalive), vec![again.clone()]);
    // Nothing from anyone for 2 s: every active peer is pinged, once.
    let at = Duration::from_millis(3500);
    assert_eq!(tick(&mut n, at), vec![again.clone(), ping(1), ping(2)]);
    assert_eq!(tick(&mut n, at + Duration::from_secs(1)), vec![again]);
}

#[test]
fn leave_disconnects_every_active_peer_and_goes_quiet() {
    let mut n = node(config(5, 30), &[1, 2]);
    let mut out = Vec::new();
    n.handle(T0, InEvent::Command(Command::Leave), &mut out);
    assert_eq!(
        out,
        vec![
            send(1, MembershipMessage::Disconnect),
            OutEvent::Disconnect(1),
            send(2, MembershipMessage::Disconnect),
            OutEvent::Disconnect(2),
            view(&[]),
        ]
    );
    assert!(recv(&mut n, 3, MembershipMessage::Join).is_empty());
    // The shuffle timer keeps ticking idly, ready for a later join.
    let mut out = Vec::new();
    n.handle(T0, InEvent::Timer(Timer::Shuffle), &mut out);
    assert_eq!(
        out,
        vec![OutEvent::ScheduleTimer {
            after: Config::default().shuffle_interval,
            timer: Timer::Shuffle
        }]
    );
}

#[test]
fn reordered_links_leave_no_one_sided_active_link() {
    let net = joined_net_with(300, 10, 13, Some((10, 50)));
    assert_symmetric(&net);
    assert_within_bounds(&net);
    let live: Vec<PeerId> = net.live().collect();
    assert_eq!(components(&live, &active_edges(&net)), 1);
}

#[test]
fn traffic_from_a_peer_we_do_not_link_to_is_answered_with_disconnect() {
    let mut n = node(config(5, 30), &[1]);
    assert_eq!(
        recv(&mut n, 4, MembershipMessage::Ping),
        vec![send(4, MembershipMessage::Disconnect)]
    );
    assert!(recv(&mut n, 1, MembershipMessage::Ping).is_empty());
    assert!(n.passive_view().is_empty(), "no state changes");
}
