//! Exact-output tests of the client-server overlay (`client_server.rs`).
use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SERVERS: [PeerId; 3] = [1, 2, 3];

fn node(me: PeerId) -> State<ChaCha8Rng> {
    let model = ClientServerConfig::default();
    let config = Config::from_model(&model, &SERVERS);
    State::new(me, config, ChaCha8Rng::seed_from_u64(me))
}

fn run(s: &mut State<ChaCha8Rng>, ev: InEvent<Message, Timer>) -> Out {
    let mut out = Vec::new();
    s.handle(Duration::ZERO, ev, &mut out);
    out
}

fn msg(from: PeerId, message: Message) -> InEvent<Message, Timer> {
    InEvent::Message { from, message }
}

fn sends(out: &Out) -> Vec<(PeerId, Message)> {
    out.iter()
        .filter_map(|e| match e {
            OutEvent::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// A joined client linked to the two servers its RNG picked.
fn attached_client(me: PeerId) -> (State<ChaCha8Rng>, Vec<PeerId>) {
    let mut c = node(me);
    let out = run(&mut c, InEvent::Command(Command::Join(vec![])));
    let asked: Vec<PeerId> = sends(&out).into_iter().map(|(to, _)| to).collect();
    for &s in &asked {
        run(&mut c, msg(s, Message::Attached));
    }
    (c, asked)
}

#[test]
fn server_join_links_every_other_server() {
    let mut s = node(2);
    let out = run(&mut s, InEvent::Command(Command::Join(vec![])));
    assert_eq!(
        out,
        vec![
            OutEvent::Connect(1),
            OutEvent::Send {
                to: 1,
                message: Message::Attach
            },
            OutEvent::Connect(3),
            OutEvent::Send {
                to: 3,
                message: Message::Attach
            },
            OutEvent::ViewChanged { links: vec![1, 3] },
        ]
    );
}

#[test]
fn client_attaches_to_k_distinct_servers_chosen_by_the_rng() {
    let mut c = node(10);
    let out = run(&mut c, InEvent::Command(Command::Join(vec![])));
    let asked = sends(&out);
    assert_eq!(asked.len(), 2);
    assert!(asked
        .iter()
        .all(|(to, m)| SERVERS.contains(to) && *m == Message::Attach));
    assert_ne!(asked[0].0, asked[1].0);
    // Same seed, same choice.
    let mut again = node(10);
    let out2 = run(&mut again, InEvent::Command(Command::Join(vec![])));
    assert_eq!(out, out2);
    let (c, linked) = attached_client(10);
    assert_eq!(c.links(), {
        let mut l = linked.clone();
        l.sort();
        l
    });
}

#[test]
fn client_refuses_a_client_link() {
    let (mut c, _) = attached_client(10);
    let out = run(&mut c, msg(11, Message::Attach));
    assert_eq!(
        out,
        vec![OutEvent::Send {
            to: 11,
            message: Message::Refused
        }]
    );
    assert!(!c.links().contains(&11));
}

#[test]
fn client_fails_over_to_the_third_server_when_one_is_lost() {
    let (mut c, linked) = attached_client(10);
    let third = *SERVERS.iter().find(|s| !linked.contains(s)).unwrap();
    let out = run(&mut c, InEvent::PeerDown(linked[0]));
    let remaining = linked[1];
    assert_eq!(
        out,
        vec![
            OutEvent::Send {
                to: third,
                message: Message::Attach
            },
            OutEvent::ViewChanged {
                links: vec![remaining]
            },
        ]
    );
    let out = run(&mut c, msg(third, Message::Attached));
    let mut links = vec![remaining, third];
    links.sort();
    assert_eq!(
        out,
        vec![
            OutEvent::Connect(third),
            OutEvent::ViewChanged {
                links: links.clone()
            }
        ]
    );
    assert_eq!(c.links(), links);
}

#[test]
fn broadcast_path_client_to_server_to_servers_to_clients() {
    let id = MessageId {
        origin: 10,
        incarnation: 0,
        seq: 1,
    };
    let payload = Bytes::from_static(b"p");
    let b = |hops| Message::Broadcast {
        id,
        hops,
        payload: payload.clone(),
    };
    // Client 10 sends to one of its servers, at hop 1.
    let (mut c, linked) = attached_client(10);
    let out = run(
        &mut c,
        InEvent::Command(Command::Broadcast {
            id,
            payload: payload.clone(),
        }),
    );
    let first = *c.servers().iter().next().unwrap();
    assert!(linked.contains(&first));
    assert_eq!(sends(&out), vec![(first, b(1))]);

    // The server relays to the other servers and its other clients.
    let mut s1 = node(1);
    run(&mut s1, InEvent::Command(Command::Join(vec![])));
    run(&mut s1, msg(10, Message::Attach));
    run(&mut s1, msg(11, Message::Attach));
    let out = run(&mut s1, msg(10, b(1)));
    assert_eq!(sends(&out), vec![(2, b(2)), (3, b(2)), (11, b(2))]);
    assert!(out.contains(&OutEvent::Deliver {
        id,
        from: 10,
        hops: 1,
        payload: payload.clone()
    }));

    // A server receiving from a server hands it to its clients only.
    let mut s2 = node(2);
    run(&mut s2, InEvent::Command(Command::Join(vec![])));
    run(&mut s2, msg(12, Message::Attach));
    let out = run(&mut s2, msg(1, b(2)));
    assert_eq!(sends(&out), vec![(12, b(3))]);

    // A client delivers once and forwards nothing; a second copy is dropped.
    let mut c12 = node(12);
    let out = run(&mut c12, msg(2, b(3)));
    assert_eq!(
        out,
        vec![OutEvent::Deliver {
            id,
            from: 2,
            hops: 3,
            payload: payload.clone()
        }]
    );
    assert!(run(&mut c12, msg(3, b(3))).is_empty());
    // A client never takes a payload from a client.
    let mut c13 = node(13);
    assert!(run(&mut c13, msg(12, b(4))).is_empty());
}

fn attach(to: PeerId) -> OutEvent<Message, Timer> {
    OutEvent::Send {
        to,
        message: Message::Attach,
    }
}

fn retry(token: u64) -> OutEvent<Message, Timer> {
    OutEvent::ScheduleTimer {
        after: Duration::from_secs(1),
        timer: Timer::Retry(token),
    }
}

/// A joined server 2 of servers 1, 2, 3.
fn joined_server() -> State<ChaCha8Rng> {
    let mut s = node(2);
    run(&mut s, InEvent::Command(Command::Join(vec![])));
    s
}

#[test]
fn a_server_that_lost_every_link_relinks_when_the_servers_come_back() {
    // Paused: every link of server 2 fails on ping timeout.
    let mut s = joined_server();
    assert_eq!(
        run(&mut s, InEvent::PeerDown(1)),
        vec![retry(1), OutEvent::ViewChanged { links: vec![3] }]
    );
    assert_eq!(
        run(&mut s, InEvent::PeerDown(3)),
        vec![OutEvent::ViewChanged { links: vec![] }]
    );
    // It asks both again every retry interval while they stay away.
    let again = vec![attach(1), attach(3), retry(2)];
    assert_eq!(run(&mut s, InEvent::Timer(Timer::Retry(1))), again);
    // A stale timer does nothing.
    assert!(run(&mut s, InEvent::Timer(Timer::Retry(1))).is_empty());
    // Server 1 answers; server 3, which lost 2 as well, asks first.
    assert_eq!(
        run(&mut s, msg(1, Message::Attached)),
        vec![
            OutEvent::Connect(1),
            OutEvent::ViewChanged { links: vec![1] }
        ]
    );
    assert_eq!(
        run(&mut s, msg(3, Message::Attach)),
        vec![
            OutEvent::Send {
                to: 3,
                message: Message::Attached
            },
            OutEvent::Connect(3),
            OutEvent::ViewChanged { links: vec![1, 3] },
        ]
    );
    assert_eq!(s.links(), vec![1, 3]);
    // Nothing is lost any more: the next retry asks nobody.
    assert!(run(&mut s, InEvent::Timer(Timer::Retry(2))).is_empty());
}

#[test]
fn a_server_that_lost_another_takes_it_back_on_its_answer() {
    // Server 1 saw its link to 2 fail; server 2 did not (one side's
    // pings timed out first). 2 answers 1's Attach; 1 links again.
    let mut one = node(1);
    run(&mut one, InEvent::Command(Command::Join(vec![])));
    assert_eq!(
        run(&mut one, InEvent::PeerDown(2)),
        vec![retry(1), OutEvent::ViewChanged { links: vec![3] }]
    );
    assert_eq!(
        run(&mut one, InEvent::Timer(Timer::Retry(1))),
        vec![attach(2), retry(2)]
    );
    let mut two = joined_server();
    assert_eq!(
        run(&mut two, msg(1, Message::Attach)),
        vec![OutEvent::Send {
            to: 1,
            message: Message::Attached
        }],
        "still linked: it only answers"
    );
    assert_eq!(
        run(&mut one, msg(2, Message::Attached)),
        vec![
            OutEvent::Connect(2),
            OutEvent::ViewChanged { links: vec![2, 3] }
        ]
    );
}

#[test]
fn a_server_that_left_is_not_asked_again() {
    let mut s = joined_server();
    assert_eq!(
        run(&mut s, msg(1, Message::Detach)),
        vec![OutEvent::ViewChanged { links: vec![3] }]
    );
    assert_eq!(
        run(&mut s, InEvent::PeerDown(3)),
        vec![retry(1), OutEvent::ViewChanged { links: vec![] }]
    );
    assert_eq!(
        run(&mut s, InEvent::Timer(Timer::Retry(1))),
        vec![attach(3), retry(2)]
    );
}

#[test]
fn a_client_that_lost_every_server_relinks_when_they_come_back() {
    let (mut c, linked) = attached_client(10);
    let third = *SERVERS.iter().find(|s| !linked.contains(s)).unwrap();
    run(&mut c, InEvent::PeerDown(linked[0]));
    assert_eq!(
        run(&mut c, InEvent::PeerDown(linked[1])),
        vec![OutEvent::ViewChanged { links: vec![] }]
    );
    // The third server's attach fails too: nothing left to ask.
    assert_eq!(
        run(&mut c, InEvent::PeerDown(third)),
        vec![retry(1), OutEvent::ViewChanged { links: vec![] }]
    );
    // Retry: it asks k servers again, chosen by its RNG.
    let out = run(&mut c, InEvent::Timer(Timer::Retry(1)));
    let asked: Vec<PeerId> = sends(&out)
        .into_iter()
        .map(|(to, m)| {
            assert_eq!(m, Message::Attach);
            to
        })
        .collect();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(asked.len(), 2);
    for &s in &asked {
        run(&mut c, msg(s, Message::Attached));
    }
    let mut want = asked.clone();
    want.sort();
    assert_eq!(c.links(), want);
}
