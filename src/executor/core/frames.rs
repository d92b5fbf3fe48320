//! What arrives from the transport (frames, links up), what overlays
//! deliver, and what the application sends: broadcasts over the current
//! overlay, point-to-point messages routed to their peer.

use std::time::Duration;

use bytes::Bytes;

use super::{Core, Output, SendRefusal, Token};
use crate::executor::wire::{decode, decode_frame, encode, Body, Direct, Frame};
use crate::model::{NodeId, Topology};
use crate::overlay::any::AnyMessage;
use crate::overlay::{
    Command, InEvent as OverlayIn, MessageClass, MessageId, Protocol, ProtocolMessage,
};
use crate::transport::FrameClass;

impl Core {
    pub(super) fn on_frame(
        &mut self,
        now: Duration,
        from: NodeId,
        payload: Bytes,
        out: &mut Vec<Output>,
    ) {
        let frame = match decode_frame(&payload) {
            Ok(f) => f,
            Err(e) => {
                self.counters.undecodable_frames += 1;
                tracing::warn!(peer = from, error = %e, "frame dropped");
                return;
            }
        };
        match frame {
            Frame::Overlay {
                instance,
                topology,
                message,
            } => self.on_overlay_frame(now, from, instance, topology, message, out),
            Frame::Direct(d) if d.to == self.me => out.push(Output::Deliver {
                id: d.id,
                channel: d.channel,
                payload: d.payload,
                broadcast: false,
                hops: None,
            }),
            Frame::Direct(d) => {
                let to = d.to;
                if !self.members.contains(&to)
                    || !self.send_frame(to, FrameClass::Data, payload, None, out)
                {
                    tracing::warn!(from, to, "relayed message could not be sent");
                }
            }
            Frame::ProbeAck { instance, probe } => {
                if let Some(c) = self.check.as_mut() {
                    c.ack(instance, probe, from);
                }
            }
            Frame::Repair(msg) => self.on_repair(now, msg, payload, out),
        }
    }

    pub(super) fn on_overlay_frame(
        &mut self,
        now: Duration,
        from: NodeId,
        instance: u64,
        topology: Topology,
        message: AnyMessage,
        out: &mut Vec<Output>,
    ) {
        if message.class() == MessageClass::Payload {
            self.slots.old_carried(instance, now);
        }
        let newest = self.slots.iter().map(|i| i.id).max();
        match self.slots.get(instance) {
            Some(i) if i.topology == topology && i.overlay.accepts(&message) => {
                self.drive(now, instance, OverlayIn::Message { from, message }, out);
            }
            None if newest.is_none_or(|n| instance > n) => {
                self.keep_early(from, instance, topology, message)
            }
            _ => {
                self.counters.stale_frames_dropped += 1;
                metrics::counter!("topod_executor_stale_frames_total").increment(1);
            }
        }
    }

    /// A broadcast overlay `instance` delivered after `hops` hops.
    pub(super) fn on_deliver(
        &mut self,
        now: Duration,
        instance: u64,
        id: MessageId,
        payload: Bytes,
        hops: u32,
        out: &mut Vec<Output>,
    ) {
        let body: Body = match decode("broadcast body", &payload) {
            Ok(b) => b,
            Err(e) => {
                self.counters.undecodable_frames += 1;
                tracing::warn!(error = %e, "broadcast dropped");
                return;
            }
        };
        match body {
            Body::App {
                channel,
                data,
                bseq,
            } => {
                // A repeat over the draining overlay does not count twice.
                let hops = (id.origin != self.me).then_some(hops);
                self.deliver_broadcast(now, id, bseq, channel, data, hops, out);
            }
            Body::Probe { instance: probed } => {
                if id.origin == self.me || probed != instance {
                    return;
                }
                let ack = encode(&Frame::ProbeAck {
                    instance,
                    probe: id,
                });
                self.send_frame(id.origin, FrameClass::Control, ack, None, out);
            }
        }
    }

    /// Delivers broadcast `bseq` of `id`'s origin unless it was delivered
    /// before (by the overlay, the draining one or a repair); true if new.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_broadcast(
        &mut self,
        now: Duration,
        id: MessageId,
        bseq: u64,
        channel: String,
        data: Bytes,
        hops: Option<u32>,
        out: &mut Vec<Output>,
    ) -> bool {
        if id.origin != self.me {
            self.repair.gaps.seen(id.origin, id.incarnation, bseq, now);
        }
        let key = MessageId { seq: bseq, ..id };
        if !self.seen.insert(key) {
            self.counters.duplicates_dropped += 1;
            return false;
        }
        self.counters.delivered += 1;
        out.push(Output::Deliver {
            id,
            channel,
            payload: data,
            broadcast: true,
            hops,
        });
        true
    }

    pub(super) fn on_link_up(&mut self, now: Duration, peer: NodeId, out: &mut Vec<Output>) {
        self.up.insert(peer);
        self.unreachable.remove(&peer);
        self.update_live(peer);
        if self.members.contains(&peer) {
            // A full mesh that dropped `peer` after a failure takes it back
            // (the overlay itself only re-learns it at its next
            // anti-entropy round).
            let ids: Vec<u64> = self
                .slots
                .iter()
                .filter(|i| i.topology == Topology::FullMesh && !i.overlay.links().contains(&peer))
                .map(|i| i.id)
                .collect();
            for id in ids {
                self.drive(now, id, OverlayIn::Command(Command::Join(vec![peer])), out);
            }
            self.send_summary(peer, out);
        }
        self.dirty = true;
    }

    /// An application broadcast over the current overlay, numbered and kept
    /// for repair; with no overlay it is counted as a send failure.
    pub(super) fn broadcast_app(
        &mut self,
        now: Duration,
        channel: String,
        data: Bytes,
        out: &mut Vec<Output>,
    ) {
        let Some(cur) = self.slots.current().map(|c| c.id) else {
            tracing::warn!(channel, "broadcast with no overlay: not sent");
            self.counters.send_failures += 1;
            return;
        };
        self.counters.broadcasts_sent += 1;
        let id = self.next_id();
        let bseq = self.repair.outbox.push(id, &channel, &data);
        // Its own broadcast counts as seen here (its overlay delivers it to
        // this node too, and that copy is the one the application gets).
        let body = Body::App {
            channel,
            data,
            bseq,
        };
        self.broadcast_with(now, cur, id, &body, out);
    }

    /// A point-to-point message: to this node, delivered at once; else
    /// sent to its next hop, or refused (nothing sent) with the reason.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_direct(
        &mut self,
        _now: Duration,
        token: Option<Token>,
        id: MessageId,
        peer: NodeId,
        channel: String,
        data: Bytes,
        out: &mut Vec<Output>,
    ) {
        let refuse = |error: SendRefusal, out: &mut Vec<Output>| {
            if let Some(token) = token {
                out.push(Output::Sent {
                    token,
                    result: Err(error),
                });
            }
        };
        if peer == self.me {
            self.counters.direct_sent += 1;
            out.push(Output::Deliver {
                id,
                channel,
                payload: data,
                broadcast: false,
                hops: None,
            });
            if let Some(token) = token {
                out.push(Output::Sent {
                    token,
                    result: Ok(()),
                });
            }
            return;
        }
        if !self.members.contains(&peer) {
            self.counters.send_failures += 1;
            return refuse(SendRefusal::UnknownPeer { peer }, out);
        }
        let via = match self.route(peer) {
            Ok(via) => via,
            Err(e) => {
                self.counters.send_failures += 1;
                return refuse(e, out);
            }
        };
        let frame = encode(&Frame::Direct(Direct {
            id,
            to: peer,
            channel,
            payload: data,
        }));
        self.counters.direct_sent += 1;
        if !self.send_frame(via, FrameClass::Data, frame, token, out) {
            tracing::warn!(peer, via, "point-to-point message could not be sent");
            refuse(SendRefusal::UnknownPeer { peer: via }, out);
        }
    }

    /// The next hop to `peer`: itself, except client to client in
    /// client_server, which goes through one of this client's servers.
    pub(super) fn route(&self, peer: NodeId) -> Result<NodeId, SendRefusal> {
        let Some(cur) = self.slots.current() else {
            return Ok(peer);
        };
        if cur.topology != Topology::ClientServer
            || cur.servers.contains(&self.me)
            || cur.servers.contains(&peer)
        {
            return Ok(peer);
        }
        let links = cur.overlay.links();
        links
            .iter()
            .find(|l| cur.servers.contains(l))
            .or_else(|| cur.servers.first())
            .copied()
            .ok_or(SendRefusal::NoRoute { peer })
    }
}
