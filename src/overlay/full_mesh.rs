//! Full mesh: every member keeps a standing link to every other member it
//! knows.
//!
//! Membership spreads on join: the joiner sends `Join` to a contact, the
//! contact answers with the members it knows (`Members`) and adds the
//! joiner; the joiner then greets every member (`Hello`), who add it. Two
//! nodes joining at once through different contacts may miss each other,
//! so every node also runs a cheap anti-entropy round every
//! [`Config::sync_interval`]: it sends a digest (member count and an
//! order-independent hash) to one random member, and a member whose digest
//! differs answers with its list (push-pull). A member is removed when the
//! transport reports it down or it leaves; a bounded tombstone list keeps
//! anti-entropy from resurrecting it until it speaks to us directly. A
//! tombstoned peer is probed every [`Config::probe_after`], so two sides of
//! a healed partition find each other again.
//!
//! Broadcast: the origin sends the payload directly to every member (hops
//! 1); receivers deliver once (a bounded id cache) and never forward.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::id_cache::IdCache;
use super::{
    Command, InEvent, MessageClass, MessageId, OutEvent, PeerId, Protocol, ProtocolMessage, Time,
};
use crate::model::FullMeshConfig;

/// Full-mesh parameters (the replicated [`FullMeshConfig`] has none; these
/// are local tuning knobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Period of the anti-entropy digest exchange. Guess: 5 s (joins settle
    /// within a few periods; one small message per node per period).
    pub sync_interval: Duration,
    /// Delivered broadcast ids remembered for duplicate suppression. Guess:
    /// 4096, as Plumtree's message cache.
    pub seen_capacity: usize,
    /// Removed members remembered so anti-entropy does not resurrect them.
    /// Guess: 1024.
    pub tombstones: usize,
    /// A removed member is probed again this long after its removal (and
    /// after every failed probe). Guess: 30 s.
    pub probe_after: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sync_interval: Duration::from_secs(5),
            seen_capacity: 4096,
            tombstones: 1024,
            probe_after: Duration::from_secs(30),
        }
    }
}

impl From<&FullMeshConfig> for Config {
    fn from(_: &FullMeshConfig) -> Self {
        Config::default()
    }
}

/// Full-mesh protocol messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    /// A joiner asks a member for the membership.
    Join,
    /// A member list: the answer to `Join` (`reply: false`) or to a
    /// differing `Digest` (`reply: true`: the receiver sends its own list
    /// back once if it knows members the list lacks; that answer has
    /// `reply: false`, so two nodes with different tombstones cannot
    /// bounce lists forever).
    Members { list: Vec<PeerId>, reply: bool },
    /// "I am a member": the receiver adds the sender.
    Hello,
    /// "Are you there?" to a removed member: the receiver adds the sender
    /// and answers `Hello`.
    Probe,
    /// Anti-entropy digest of the sender's membership (itself included).
    Digest { count: u32, hash: u64 },
    /// The sender leaves gracefully.
    Leave,
    /// A broadcast payload, sent by its origin to every member.
    Gossip {
        id: MessageId,
        hops: u32,
        payload: Bytes,
    },
}

impl ProtocolMessage for Message {
    fn class(&self) -> MessageClass {
        match self {
            Message::Gossip { .. } => MessageClass::Payload,
            _ => MessageClass::Membership,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Message::Join => "JOIN",
            Message::Members { .. } => "MEMBERS",
            Message::Hello => "HELLO",
            Message::Probe => "PROBE",
            Message::Digest { .. } => "DIGEST",
            Message::Leave => "LEAVE",
            Message::Gossip { .. } => "GOSSIP",
        }
    }
}

/// Full-mesh timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Time for the next anti-entropy digest. The token recognises stale
    /// timers (a Leave and a later Join restart the cycle).
    Sync(u64),
}

type Out = Vec<OutEvent<Message, Timer>>;

/// Per-node full-mesh state.
#[derive(Debug)]
pub struct State<R> {
    me: PeerId,
    config: Config,
    rng: R,
    members: BTreeSet<PeerId>,
    /// XOR of `mix(id)` over members and `me`: the digest hash.
    hash: u64,
    /// Removed member → when it was removed (or last probed in vain).
    tombstones: BTreeMap<PeerId, Time>,
    /// Tombstones in time order; entries whose time no longer matches the
    /// map are stale and skipped.
    tombstone_order: VecDeque<(PeerId, Time)>,
    seen: IdCache<()>,
    joined: bool,
    sync_token: u64,
}

/// A 64-bit mix (splitmix64 finaliser) so the XOR digest is not fooled by
/// small ids.
fn mix(id: PeerId) -> u64 {
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<R: Rng> State<R> {
    /// A node that has not joined yet.
    pub fn new(me: PeerId, config: Config, rng: R) -> Self {
        let seen = IdCache::new(config.seen_capacity);
        State {
            me,
            config,
            rng,
            members: BTreeSet::new(),
            hash: mix(me),
            tombstones: BTreeMap::new(),
            tombstone_order: VecDeque::new(),
            seen,
            joined: false,
            sync_token: 0,
        }
    }

    /// Known members, without this node.
    pub fn members(&self) -> &BTreeSet<PeerId> {
        &self.members
    }

    fn view_changed(&self, out: &mut Out) {
        out.push(OutEvent::ViewChanged {
            links: self.links(),
        });
    }

    /// Adds `peer`; returns whether it was new. `direct` means the peer
    /// itself spoke to us, which lifts a tombstone.
    fn add(&mut self, peer: PeerId, direct: bool, out: &mut Out) -> bool {
        if peer == self.me || (!direct && self.tombstones.contains_key(&peer)) {
            return false;
        }
        if direct {
            self.tombstones.remove(&peer);
        }
        if !self.members.insert(peer) {
            return false;
        }
        self.hash ^= mix(peer);
        out.push(OutEvent::Connect(peer));
        true
    }

    /// Removes `peer` and (re)starts its tombstone; returns whether it was
    /// a member.
    fn remove(&mut self, peer: PeerId, now: Time) -> bool {
        let was_member = self.members.remove(&peer);
        if was_member {
            self.hash ^= mix(peer);
        }
        if was_member || self.tombstones.contains_key(&peer) {
            self.tombstones.insert(peer, now);
            self.tombstone_order.push_back((peer, now));
            while self.tombstones.len() > self.config.tombstones {
                let Some((old, at)) = self.tombstone_order.pop_front() else {
                    break;
                };
                if self.tombstones.get(&old) == Some(&at) {
                    self.tombstones.remove(&old);
                }
            }
        }
        was_member
    }

    /// Probes the tombstones due; a dead one fails again (`PeerDown`) and
    /// is re-tombstoned, a live one answers `Hello` and is a member again.
    fn probe_due(&mut self, now: Time, out: &mut Out) {
        while let Some(&(peer, at)) = self.tombstone_order.front() {
            if at + self.config.probe_after > now {
                break;
            }
            self.tombstone_order.pop_front();
            if self.tombstones.get(&peer) == Some(&at) {
                // Keep it tombstoned until it answers; a failed probe
                // restarts the wait.
                self.tombstones.insert(peer, now);
                self.tombstone_order.push_back((peer, now));
                out.push(OutEvent::Send {
                    to: peer,
                    message: Message::Probe,
                });
            }
        }
    }

    fn member_list(&self) -> Vec<PeerId> {
        let mut list: Vec<PeerId> = self.members.iter().copied().collect();
        list.push(self.me);
        list
    }

    fn digest(&self) -> Message {
        Message::Digest {
            count: u32::try_from(self.members.len() + 1).unwrap_or(u32::MAX),
            hash: self.hash,
        }
    }

    fn schedule_sync(&mut self, out: &mut Out) {
        self.sync_token += 1;
        out.push(OutEvent::ScheduleTimer {
            after: self.config.sync_interval,
            timer: Timer::Sync(self.sync_token),
        });
    }

    fn on_command(&mut self, command: Command, out: &mut Out) {
        match command {
            Command::Join(contacts) => {
                self.joined = true;
                for contact in contacts.into_iter().filter(|c| *c != self.me) {
                    out.push(OutEvent::Send {
                        to: contact,
                        message: Message::Join,
                    });
                }
                self.schedule_sync(out);
            }
            Command::Leave => {
                for peer in std::mem::take(&mut self.members) {
                    out.push(OutEvent::Send {
                        to: peer,
                        message: Message::Leave,
                    });
                    out.push(OutEvent::Disconnect(peer));
                }
                self.hash = mix(self.me);
                self.joined = false;
                self.sync_token += 1;
                self.view_changed(out);
            }
            Command::Broadcast { id, payload } => {
                if !self.seen.insert(id, ()) {
                    return;
                }
                out.push(OutEvent::Deliver {
                    id,
                    from: self.me,
                    hops: 0,
                    payload: payload.clone(),
                });
                for &peer in &self.members {
                    out.push(OutEvent::Send {
                        to: peer,
                        message: Message::Gossip {
                            id,
                            hops: 1,
                            payload: payload.clone(),
                        },
                    });
                }
            }
        }
    }

    /// Adds every listed member; greets the new ones. Returns whether any
    /// was new.
    fn merge(&mut self, list: Vec<PeerId>, out: &mut Out) -> bool {
        let mut changed = false;
        for peer in list {
            if self.add(peer, false, out) {
                changed = true;
                out.push(OutEvent::Send {
                    to: peer,
                    message: Message::Hello,
                });
            }
        }
        changed
    }

    fn on_message(&mut self, now: Time, from: PeerId, message: Message, out: &mut Out) {
        match message {
            Message::Join => {
                let list = self.member_list();
                let changed = self.add(from, true, out);
                out.push(OutEvent::Send {
                    to: from,
                    message: Message::Members { list, reply: false },
                });
                if changed {
                    self.view_changed(out);
                }
            }
            Message::Members { list, reply } => {
                let mut changed = self.add(from, true, out);
                let theirs: BTreeSet<PeerId> = list.iter().copied().collect();
                changed |= self.merge(list, out);
                // Push-pull: if we know members the sender did not list,
                // send ours back, once (the answer asks for no reply).
                if reply
                    && self
                        .members
                        .iter()
                        .any(|m| *m != from && !theirs.contains(m))
                {
                    out.push(OutEvent::Send {
                        to: from,
                        message: Message::Members {
                            list: self.member_list(),
                            reply: false,
                        },
                    });
                }
                if changed {
                    self.view_changed(out);
                }
            }
            Message::Hello => {
                if self.add(from, true, out) {
                    self.view_changed(out);
                }
            }
            Message::Probe => {
                out.push(OutEvent::Send {
                    to: from,
                    message: Message::Hello,
                });
                if self.add(from, true, out) {
                    self.view_changed(out);
                }
            }
            Message::Digest { count, hash } => {
                let changed = self.add(from, true, out);
                if let Message::Digest {
                    count: mine,
                    hash: my_hash,
                } = self.digest()
                {
                    if (mine, my_hash) != (count, hash) {
                        out.push(OutEvent::Send {
                            to: from,
                            message: Message::Members {
                                list: self.member_list(),
                                reply: true,
                            },
                        });
                    }
                }
                if changed {
                    self.view_changed(out);
                }
            }
            Message::Leave => {
                if self.remove(from, now) {
                    out.push(OutEvent::Disconnect(from));
                    self.view_changed(out);
                }
            }
            Message::Gossip { id, hops, payload } => {
                if self.seen.insert(id, ()) {
                    out.push(OutEvent::Deliver {
                        id,
                        from,
                        hops,
                        payload,
                    });
                }
            }
        }
    }

    fn on_timer(&mut self, now: Time, timer: Timer, out: &mut Out) {
        let Timer::Sync(token) = timer;
        if token != self.sync_token || !self.joined {
            return;
        }
        if !self.members.is_empty() {
            let index = self.rng.gen_range(0..self.members.len());
            if let Some(&peer) = self.members.iter().nth(index) {
                out.push(OutEvent::Send {
                    to: peer,
                    message: self.digest(),
                });
            }
        }
        self.probe_due(now, out);
        self.schedule_sync(out);
    }
}

impl<R: Rng> Protocol for State<R> {
    type Message = Message;
    type Timer = Timer;

    fn me(&self) -> PeerId {
        self.me
    }

    fn handle(&mut self, now: Time, event: InEvent<Message, Timer>, out: &mut Out) {
        match event {
            InEvent::Message { from, message } => self.on_message(now, from, message, out),
            InEvent::PeerDown(peer) => {
                if self.remove(peer, now) {
                    self.view_changed(out);
                }
            }
            InEvent::Timer(timer) => self.on_timer(now, timer, out),
            InEvent::Command(command) => self.on_command(command, out),
        }
    }

    fn links(&self) -> Vec<PeerId> {
        self.members.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn node(me: PeerId) -> State<ChaCha8Rng> {
        State::new(me, Config::default(), ChaCha8Rng::seed_from_u64(me))
    }

    fn run(s: &mut State<ChaCha8Rng>, ev: InEvent<Message, Timer>) -> Out {
        let mut out = Vec::new();
        s.handle(Duration::ZERO, ev, &mut out);
        out
    }

    fn msg(from: PeerId, message: Message) -> InEvent<Message, Timer> {
        InEvent::Message { from, message }
    }

    #[test]
    fn join_sends_join_to_contacts_and_schedules_sync() {
        let mut a = node(1);
        let out = run(&mut a, InEvent::Command(Command::Join(vec![2])));
        assert_eq!(
            out,
            vec![
                OutEvent::Send {
                    to: 2,
                    message: Message::Join
                },
                OutEvent::ScheduleTimer {
                    after: Duration::from_secs(5),
                    timer: Timer::Sync(1)
                },
            ]
        );
    }

    #[test]
    fn contact_answers_join_with_members_and_links_the_joiner() {
        let mut b = node(2);
        run(&mut b, InEvent::Command(Command::Join(vec![])));
        run(&mut b, msg(3, Message::Hello));
        let out = run(&mut b, msg(1, Message::Join));
        assert_eq!(
            out,
            vec![
                OutEvent::Connect(1),
                OutEvent::Send {
                    to: 1,
                    message: Message::Members {
                        list: vec![3, 2],
                        reply: false
                    }
                },
                OutEvent::ViewChanged { links: vec![1, 3] },
            ]
        );
    }

    #[test]
    fn joiner_learns_members_and_greets_each() {
        let mut a = node(1);
        run(&mut a, InEvent::Command(Command::Join(vec![2])));
        let out = run(
            &mut a,
            msg(
                2,
                Message::Members {
                    list: vec![3, 2],
                    reply: false,
                },
            ),
        );
        assert_eq!(
            out,
            vec![
                OutEvent::Connect(2),
                OutEvent::Connect(3),
                OutEvent::Send {
                    to: 3,
                    message: Message::Hello
                },
                OutEvent::ViewChanged { links: vec![2, 3] },
            ]
        );
    }

    #[test]
    fn broadcast_goes_to_every_member_at_hop_one_and_is_delivered_once() {
        let mut a = node(1);
        run(&mut a, msg(2, Message::Hello));
        run(&mut a, msg(3, Message::Hello));
        let id = MessageId {
            origin: 1,
            incarnation: 0,
            seq: 1,
        };
        let payload = Bytes::from_static(b"x");
        let out = run(
            &mut a,
            InEvent::Command(Command::Broadcast {
                id,
                payload: payload.clone(),
            }),
        );
        let gossip = Message::Gossip {
            id,
            hops: 1,
            payload: payload.clone(),
        };
        assert_eq!(
            out,
            vec![
                OutEvent::Deliver {
                    id,
                    from: 1,
                    hops: 0,
                    payload: payload.clone()
                },
                OutEvent::Send {
                    to: 2,
                    message: gossip.clone()
                },
                OutEvent::Send {
                    to: 3,
                    message: gossip.clone()
                },
            ]
        );
        let mut b = node(2);
        let first = run(&mut b, msg(1, gossip.clone()));
        assert_eq!(
            first,
            vec![OutEvent::Deliver {
                id,
                from: 1,
                hops: 1,
                payload
            }]
        );
        assert!(run(&mut b, msg(1, gossip)).is_empty());
    }

    #[test]
    fn peer_down_removes_member_and_anti_entropy_does_not_resurrect_it() {
        let mut a = node(1);
        run(&mut a, msg(2, Message::Hello));
        run(&mut a, msg(3, Message::Hello));
        let out = run(&mut a, InEvent::PeerDown(3));
        assert_eq!(out, vec![OutEvent::ViewChanged { links: vec![2] }]);
        // Another member still lists 3: it stays removed.
        let out = run(
            &mut a,
            msg(
                2,
                Message::Members {
                    list: vec![2, 3],
                    reply: true,
                },
            ),
        );
        assert!(out.is_empty(), "{out:?}");
        // 3 greets us itself (it came back): it is a member again.
        let out = run(&mut a, msg(3, Message::Hello));
        assert_eq!(
            out,
            vec![
                OutEvent::Connect(3),
                OutEvent::ViewChanged { links: vec![2, 3] }
            ]
        );
    }

    #[test]
    fn tombstoned_member_is_probed_after_probe_after_and_readded_on_hello() {
        let mut a = node(1);
        run(&mut a, InEvent::Command(Command::Join(vec![])));
        run(&mut a, msg(2, Message::Hello));
        run(&mut a, msg(3, Message::Hello));
        run(&mut a, InEvent::PeerDown(3));
        let mut out = Vec::new();
        a.handle(
            Duration::from_secs(31),
            InEvent::Timer(Timer::Sync(1)),
            &mut out,
        );
        assert!(out.contains(&OutEvent::Send {
            to: 3,
            message: Message::Probe
        }));
        let out = run(&mut a, msg(3, Message::Hello));
        assert!(out.contains(&OutEvent::Connect(3)));
        assert_eq!(a.links(), vec![2, 3]);
    }

    #[test]
    fn differing_digest_is_answered_with_the_member_list() {
        let mut a = node(1);
        run(&mut a, msg(2, Message::Hello));
        let out = run(&mut a, msg(2, Message::Digest { count: 1, hash: 0 }));
        assert_eq!(
            out,
            vec![OutEvent::Send {
                to: 2,
                message: Message::Members {
                    list: vec![2, 1],
                    reply: true
                }
            }]
        );
        let same = a.digest();
        let Message::Digest { count, hash } = same else {
            unreachable!()
        };
        assert!(run(&mut a, msg(2, Message::Digest { count, hash })).is_empty());
    }
}
