use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::overlay::hyparview::testnet::{components, TestNet};
use crate::overlay::hyparview::{MembershipMessage, Priority};
use crate::overlay::{Command, InEvent, MessageId, OutEvent, PeerId, Protocol};

type Node = State<ChaCha8Rng>;
type Out = OutEvent<Message, Timer>;

const T0: Duration = Duration::ZERO;

fn id(seq: u64) -> MessageId {
    MessageId {
        origin: 7,
        incarnation: 1,
        seq,
    }
}

fn payload() -> Bytes {
    Bytes::from_static(b"payload")
}

fn gossip(seq: u64, hops: u32) -> Message {
    Message::Gossip {
        id: id(seq),
        hops,
        payload: payload(),
    }
}

fn handle(n: &mut Node, event: InEvent<Message, Timer>) -> Vec<Out> {
    let mut out = Vec::new();
    n.handle(T0, event, &mut out);
    out
}

fn recv(n: &mut Node, from: PeerId, message: Message) -> Vec<Out> {
    handle(n, InEvent::Message { from, message })
}

fn send(to: PeerId, message: Message) -> Out {
    OutEvent::Send { to, message }
}

/// Node 0 with `active` as its active view (all eager), then `lazy` pruned.
fn node(active: &[PeerId], lazy: &[PeerId]) -> Node {
    let mut n = State::new(0, Config::default(), ChaCha8Rng::seed_from_u64(1));
    handle(&mut n, InEvent::Command(Command::Join(vec![])));
    for &p in active {
        let m = MembershipMessage::Neighbor {
            priority: Priority::High,
            request: 77,
        };
        recv(&mut n, p, m.into());
    }
    for &p in lazy {
        assert!(recv(&mut n, p, Message::Prune).is_empty());
    }
    assert_eq!(n.active_view(), active);
    assert_eq!(n.lazy_peers(), lazy);
    n
}

#[test]
fn first_gossip_is_delivered_pushed_eagerly_and_announced_lazily() {
    let mut n = node(&[1, 2, 3], &[3]);
    let out = recv(&mut n, 1, gossip(1, 2));
    assert_eq!(
        out,
        vec![
            OutEvent::Deliver {
                id: id(1),
                from: 1,
                hops: 2,
                payload: payload()
            },
            send(2, gossip(1, 3)),
            OutEvent::ScheduleTimer {
                after: Duration::from_millis(5),
                timer: Timer::IHaveFlush
            },
        ]
    );
    let out = handle(&mut n, InEvent::Timer(Timer::IHaveFlush));
    assert_eq!(
        out,
        vec![send(
            3,
            Message::IHave(vec![Announce { id: id(1), hops: 3 }])
        )]
    );
}

#[test]
fn duplicate_gossip_answers_prune_and_makes_the_sender_lazy() {
    let mut n = node(&[1, 2, 3], &[3]);
    recv(&mut n, 1, gossip(1, 2));
    let out = recv(&mut n, 2, gossip(1, 4));
    assert_eq!(out, vec![send(2, Message::Prune)]);
    assert_eq!(n.eager_peers(), &[1]);
    assert_eq!(n.lazy_peers(), &[3, 2]);
}

#[test]
fn prune_makes_the_link_lazy() {
    let mut n = node(&[1, 2], &[]);
    assert!(recv(&mut n, 2, Message::Prune).is_empty());
    assert_eq!((n.eager_peers(), n.lazy_peers()), (&[1][..], &[2][..]));
}

#[test]
fn ihave_for_an_unknown_id_grafts_after_the_missing_timer() {
    let mut n = node(&[1, 2], &[1, 2]);
    let announce = |hops| Message::IHave(vec![Announce { id: id(5), hops }]);
    let out = recv(&mut n, 2, announce(4));
    let first = Timer::Missing {
        id: id(5),
        token: 1,
    };
    assert_eq!(
        out,
        vec![OutEvent::ScheduleTimer {
            after: Duration::from_millis(80),
            timer: first.clone()
        }]
    );
    // A second announcer is remembered, no second timer.
    assert!(recv(&mut n, 1, announce(3)).is_empty());

    let out = handle(&mut n, InEvent::Timer(first.clone()));
    let second = Timer::Missing {
        id: id(5),
        token: 2,
    };
    assert_eq!(
        out,
        vec![
            OutEvent::ScheduleTimer {
                after: Duration::from_millis(40),
                timer: second.clone()
            },
            send(2, Message::Graft { id: Some(id(5)) }),
        ]
    );
    assert_eq!(n.eager_peers(), &[2]);
    // The replaced timer is stale.
    assert!(handle(&mut n, InEvent::Timer(first)).is_empty());

    // Still nothing after graft_timeout: the next announcer is grafted.
    let out = handle(&mut n, InEvent::Timer(second));
    assert_eq!(
        out,
        vec![
            OutEvent::ScheduleTimer {
                after: Duration::from_millis(40),
                timer: Timer::Missing {
                    id: id(5),
                    token: 3
                }
            },
            send(1, Message::Graft { id: Some(id(5)) }),
        ]
    );
    // The payload arrives: delivered, and the missing entry is gone.
    let out = recv(&mut n, 1, gossip(5, 4));
    assert!(matches!(out[0], OutEvent::Deliver { hops: 4, .. }));
    assert_eq!(n.missing_ids().count(), 0);
    let late = Timer::Missing {
        id: id(5),
        token: 3,
    };
    assert!(handle(&mut n, InEvent::Timer(late)).is_empty());
}

#[test]
fn graft_is_answered_with_the_payload_and_makes_the_link_eager() {
    let mut n = node(&[1, 2], &[2]);
    handle(
        &mut n,
        InEvent::Command(Command::Broadcast {
            id: id(9),
            payload: payload(),
        }),
    );
    let out = recv(&mut n, 2, Message::Graft { id: Some(id(9)) });
    assert_eq!(out, vec![send(2, gossip(9, 1))]);
    assert_eq!(n.eager_peers(), &[1, 2]);
    assert!(n.lazy_peers().is_empty());
}

#[test]
fn optimization_swaps_a_much_shorter_lazy_path_for_the_eager_one() {
    let mut n = node(&[1, 2], &[2]);
    recv(&mut n, 1, gossip(1, 10));
    // 4 + 7 > 10: not worth it.
    let ihave = |hops| Message::IHave(vec![Announce { id: id(1), hops }]);
    assert!(recv(&mut n, 2, ihave(4)).is_empty());
    assert_eq!(n.eager_peers(), &[1]);
    // 3 + 7 <= 10: graft the lazy link, prune the eager one.
    let out = recv(&mut n, 2, ihave(3));
    assert_eq!(
        out,
        vec![
            send(2, Message::Graft { id: None }),
            send(1, Message::Prune)
        ]
    );
    assert_eq!((n.eager_peers(), n.lazy_peers()), (&[2][..], &[1][..]));
}

#[test]
fn link_loss_removes_the_peer_from_eager_and_lazy_sets() {
    let mut n = node(&[1, 2, 3], &[3]);
    let out = handle(&mut n, InEvent::PeerDown(1));
    assert_eq!(
        out,
        vec![
            OutEvent::Disconnect(1),
            send(2, MembershipMessage::Ping.into()),
            send(3, MembershipMessage::Ping.into()),
            OutEvent::ViewChanged { links: vec![2, 3] }
        ]
    );
    assert_eq!(n.eager_peers(), &[2]);
    // Probing is rate-limited: no second round of PINGs.
    let out = handle(&mut n, InEvent::PeerDown(3));
    assert_eq!(
        out,
        vec![
            OutEvent::Disconnect(3),
            OutEvent::ViewChanged { links: vec![2] }
        ]
    );
    assert!(n.lazy_peers().is_empty());
}

#[test]
fn a_new_neighbour_starts_eager_and_gets_recent_payloads() {
    let mut n = node(&[1], &[]);
    recv(&mut n, 1, gossip(1, 2));
    let m = MembershipMessage::Neighbor {
        priority: Priority::Low,
        request: 77,
    };
    let out = recv(&mut n, 5, m.into());
    assert_eq!(
        out,
        vec![
            OutEvent::Connect(5),
            send(5, gossip(1, 3)),
            send(
                5,
                MembershipMessage::NeighborReply {
                    accepted: true,
                    request: 77
                }
                .into()
            ),
            OutEvent::ViewChanged { links: vec![1, 5] },
        ]
    );
    assert_eq!(n.eager_peers(), &[1, 5]);
}

#[test]
fn message_classes() {
    use crate::overlay::{MessageClass, ProtocolMessage};
    assert_eq!(gossip(1, 1).class(), MessageClass::Payload);
    assert_eq!(Message::Prune.class(), MessageClass::Gossip);
    assert_eq!(Message::IHave(vec![]).class(), MessageClass::Gossip);
    assert_eq!(Message::Graft { id: None }.class(), MessageClass::Gossip);
    let m: Message = MembershipMessage::Join.into();
    assert_eq!((m.class(), m.kind()), (MessageClass::Membership, "JOIN"));
}

// ---- multi-node runs -------------------------------------------------------

fn joined_net(n: usize, contacts: usize, seed: u64) -> TestNet<Node> {
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
    for i in 0..n as PeerId {
        let contact = if i == 0 {
            vec![]
        } else {
            vec![rng.gen_range(0..i.min(contacts as PeerId))]
        };
        net.input(i, InEvent::Command(Command::Join(contact)));
        net.run_for(Duration::from_millis(10));
    }
    net.run_for(Duration::from_secs(30));
    net
}

fn broadcast(net: &mut TestNet<Node>, sender: PeerId, seq: u64) -> f64 {
    net.reset_counts();
    net.input(
        sender,
        InEvent::Command(Command::Broadcast {
            id: id(seq),
            payload: payload(),
        }),
    );
    net.run_for(Duration::from_secs(2));
    let delivered = net.reached(&id(seq));
    net.payload_sent as f64 / (delivered.max(2) - 1) as f64 - 1.0
}

fn eager_edges(net: &TestNet<Node>) -> BTreeSet<(PeerId, PeerId)> {
    let mut edges = BTreeSet::new();
    for i in net.live() {
        for &p in net.nodes[i as usize].eager_peers() {
            assert!(
                net.nodes[p as usize].eager_peers().contains(&i),
                "eager link {i} -> {p} is one-sided"
            );
            edges.insert((i.min(p), i.max(p)));
        }
    }
    edges
}

#[test]
fn eager_links_settle_into_a_spanning_tree() {
    let n = 200;
    let mut net = joined_net(n, 10, 5);
    let first = broadcast(&mut net, 0, 0);
    assert_eq!(net.reached(&id(0)), n);
    assert!(first > 0.5, "the first broadcast floods (rmr {first})");
    for seq in 1..4 {
        broadcast(&mut net, 0, seq);
        assert_eq!(net.reached(&id(seq)), n);
    }
    let edges: Vec<_> = eager_edges(&net).into_iter().collect();
    assert_eq!(edges.len(), n - 1);
    let live: Vec<PeerId> = net.live().collect();
    assert_eq!(components(&live, &edges), 1);
    let rmr = broadcast(&mut net, 0, 10);
    assert_eq!(net.reached(&id(10)), n);
    assert!(rmr < 0.01, "rmr {rmr} on a settled tree");
    assert_eq!(net.duplicate_deliveries, 0);
}

#[test]
fn random_senders_reach_everyone_with_little_redundancy() {
    let n = 200;
    let mut net = joined_net(n, 10, 8);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut total = 0.0;
    let rounds = 20;
    for seq in 0..rounds {
        total += broadcast(&mut net, rng.gen_range(0..n as PeerId), seq);
        assert_eq!(net.reached(&id(seq)), n, "round {seq}");
    }
    let mean = total / rounds as f64;
    assert!(mean < 0.35, "mean rmr {mean}");
}

fn kill_fraction(net: &mut TestNet<Node>, fraction: f64, seed: u64) {
    let n = net.nodes.len();
    let target = (n as f64 * fraction) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut killed = 0;
    while killed < target {
        let v = rng.gen_range(1..n as PeerId);
        if net.alive[v as usize] {
            net.kill(v);
            killed += 1;
        }
    }
}

#[test]
fn first_broadcast_after_half_the_nodes_fail_reaches_the_live_ones() {
    let n = 200;
    let mut net = joined_net(n, 10, 21);
    for seq in 0..3 {
        broadcast(&mut net, 0, seq);
    }
    kill_fraction(&mut net, 0.5, 4);
    broadcast(&mut net, 0, 100);
    let live = net.live().count();
    let reached = net.reached(&id(100));
    assert!(
        reached * 100 >= live * 99,
        "first broadcast after failure reached {reached} of {live}"
    );
    for seq in 101..104 {
        broadcast(&mut net, 0, seq);
        net.run_for(Duration::from_secs(10));
    }
    assert_eq!(net.reached(&id(103)), live);
}
