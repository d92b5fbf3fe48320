//! The actor's reactions: commands from the handle, transport events,
//! timers and the periodic tick (checks in progress, end of a drain).

use tokio::sync::broadcast;
use tokio::time::{Duration, Instant};

use super::actor::{Actor, Second};
use super::check::{Check, CheckKind};
use super::handle::{Cmd, Delivery};
use super::instance::Instance;
use super::wire::{decode_frame, encode, Direct, Frame};
use crate::control::executor::ExecError;
use crate::model::{NodeId, Topology};
use crate::overlay::any::AnyMessage;
use crate::overlay::{InEvent, Protocol};
use crate::transport::{FrameClass, LinkDownReason, TransportEvent};

/// Period of the check of full meshes for members they lack.
const MESH_CHECK: Duration = Duration::from_millis(500);

impl Actor {
    pub async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Build {
                instance,
                topology,
                config,
                reply,
            } => {
                let r = self.build(instance, topology, config).await;
                answer(reply, r);
            }
            Cmd::Prepare { .. } => self.prepare(cmd).await,
            Cmd::CutOver { id, reply } => {
                let r = self.cut_over(id);
                answer(reply, r);
            }
            Cmd::Abort { id, reply } => {
                if self.second == Second::Shadow && self.other.as_ref().is_some_and(|o| o.id == id)
                {
                    self.teardown(id).await;
                }
                if let Some(Cmd::Prepare { id: q, .. }) = &self.queued {
                    if *q == id {
                        self.queued = None;
                    }
                }
                answer(reply, Ok(()));
            }
            Cmd::Verify { reply } => {
                let Some(cur) = self.current.as_ref().map(|c| c.id) else {
                    return answer(reply, Err("no overlay is running".into()));
                };
                if let Some(old) = self.check.take() {
                    old.finish(Err("superseded by a verify".into()));
                }
                self.check = Some(Check::new(
                    CheckKind::Verify,
                    cur,
                    self.live(),
                    self.cfg.form_timeout(),
                    self.cfg.watch(),
                    reply,
                ));
            }
            Cmd::Broadcast { channel, data } => {
                let Some(cur) = self.current.as_ref().map(|c| c.id) else {
                    tracing::warn!(channel, "broadcast with no overlay: not sent");
                    self.counters.send_failures += 1;
                    return;
                };
                self.counters.broadcasts_sent += 1;
                self.broadcast_app(cur, channel, data).await;
            }
            Cmd::Send {
                peer,
                channel,
                data,
                done,
            } => {
                self.send_direct(peer, channel, data).await;
                super::handle::sent(done);
            }
            Cmd::Summary { window, reply } => {
                if reply.send(self.node_summary(window)).is_err() {
                    tracing::debug!("nobody waits for the summary any more");
                }
            }
            Cmd::Subscribe { channel, reply } => {
                let cap = self.cfg.subscriber_queue_len as usize;
                let rx = self.subscriber(&channel, cap);
                if reply.send(rx).is_err() {
                    tracing::debug!(channel, "subscriber gone before its subscription");
                }
            }
        }
    }

    fn subscriber(&mut self, channel: &str, cap: usize) -> broadcast::Receiver<Delivery> {
        self.subscribe(channel, cap)
    }

    async fn build(
        &mut self,
        instance: u64,
        topology: Topology,
        config: crate::model::OverlayConfig,
    ) -> Result<(), String> {
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.id == instance && c.topology == topology)
        {
            return Ok(());
        }
        if self.second == Second::Shadow && self.other.as_ref().is_some_and(|o| o.id == instance) {
            return self.cut_over(instance);
        }
        if let Some(o) = self.other.as_ref().map(|o| o.id) {
            self.teardown(o).await;
        }
        if let Some(c) = self.current.as_ref().map(|c| c.id) {
            self.teardown(c).await;
        }
        let inst = Instance::new(self.me, instance, topology, config, &self.voters.clone())
            .map_err(|e| format!("cannot build the {topology} overlay: {e}"))?;
        self.start_instance(inst, true).await;
        Ok(())
    }

    async fn prepare(&mut self, cmd: Cmd) {
        let Cmd::Prepare {
            id,
            topology,
            config,
            reply,
        } = cmd
        else {
            return;
        };
        if let Second::Old { since, .. } = self.second {
            if Instant::now() < since + self.cfg.drain_min() {
                self.queued = Some(Cmd::Prepare {
                    id,
                    topology,
                    config,
                    reply,
                });
                return;
            }
        }
        if let Some(o) = self.other.as_ref().map(|o| o.id) {
            self.teardown(o).await;
        }
        if let Some(old) = self.check.take() {
            old.finish(Err(format!("superseded by the prepare of transition {id}")));
        }
        if self.current.is_none() {
            return answer(reply, Err("no current overlay to prepare beside".into()));
        }
        let inst = match Instance::new(self.me, id, topology, config, &self.voters.clone()) {
            Ok(i) => i,
            Err(e) => {
                return answer(
                    reply,
                    Err(format!("cannot build the {topology} overlay: {e}")),
                )
            }
        };
        self.second = Second::Shadow;
        self.start_instance(inst, false).await;
        self.check = Some(Check::new(
            CheckKind::Prepare,
            id,
            self.live(),
            self.cfg.form_timeout(),
            self.cfg.watch(),
            reply,
        ));
    }

    fn cut_over(&mut self, id: u64) -> Result<(), String> {
        if self.current.as_ref().is_some_and(|c| c.id == id) {
            return Ok(());
        }
        if self.second != Second::Shadow || self.other.as_ref().is_none_or(|o| o.id != id) {
            return Err(format!("no prepared overlay for transition {id}"));
        }
        std::mem::swap(&mut self.current, &mut self.other);
        let now = Instant::now();
        self.second = Second::Old {
            since: now,
            last_payload: now,
        };
        self.mark_dirty();
        Ok(())
    }

    async fn send_direct(&mut self, peer: NodeId, channel: String, data: bytes::Bytes) {
        let id = self.next_id();
        self.counters.direct_sent += 1;
        if peer == self.me {
            return self.deliver_direct(Direct {
                id,
                to: peer,
                channel,
                payload: data,
            });
        }
        let via = self.route(peer);
        let frame = encode(&Frame::Direct(Direct {
            id,
            to: peer,
            channel,
            payload: data,
        }));
        if !self.send_frame(via, FrameClass::Data, frame).await {
            tracing::warn!(peer, via, "point-to-point message could not be sent");
        }
    }

    /// The next hop to `peer`: itself, except client to client in
    /// client_server, which goes through one of this client's servers.
    pub(crate) fn route(&self, peer: NodeId) -> NodeId {
        let Some(cur) = &self.current else {
            return peer;
        };
        if cur.topology != Topology::ClientServer
            || cur.servers.contains(&self.me)
            || cur.servers.contains(&peer)
        {
            return peer;
        }
        let links = cur.overlay.links();
        links
            .iter()
            .find(|l| cur.servers.contains(l))
            .or_else(|| cur.servers.first())
            .copied()
            .unwrap_or(peer)
    }

    pub fn deliver_direct(&mut self, d: Direct) {
        self.deliver_msg(d.id, &d.channel, d.payload, false);
    }

    pub async fn on_transport(&mut self, ev: TransportEvent) {
        match ev {
            TransportEvent::Frame { from, payload, .. } => self.on_frame(from, payload).await,
            TransportEvent::LinkUp { peer } => {
                self.up.insert(peer);
                self.unreachable.remove(&peer);
                self.rejoin(peer).await;
                if self.members.contains(&peer) {
                    self.send_summary(peer).await;
                }
                self.mark_dirty();
            }
            TransportEvent::LinkDown { peer, reason } => {
                self.up.remove(&peer);
                metrics::counter!("topod_executor_disconnects_total").increment(1);
                if !matches!(
                    reason,
                    LinkDownReason::Replaced
                        | LinkDownReason::Disconnected
                        | LinkDownReason::Shutdown
                ) {
                    self.peer_down(peer).await;
                }
                self.mark_dirty();
            }
            TransportEvent::SendFailed { peer, .. } => {
                self.unreachable.insert(peer);
                self.peer_down(peer).await;
            }
            TransportEvent::Rtt { peer, rtt } => {
                // One series per node, never per peer (per-peer RTTs are
                // in /v1/node/stats).
                metrics::histogram!("topod_overlay_rtt_seconds").record(rtt.as_secs_f64());
                self.summary_rtt(peer, rtt);
                self.rtt.insert(peer, rtt);
                // Republish, so the status's RTTs and counters (read by
                // /v1/node/stats) are at most one ping interval old.
                self.mark_dirty();
            }
        }
    }

    /// Starts the periodic check of a steady HyParView/Plumtree overlay
    /// when it is due and nothing else is being checked.
    fn start_health_check(&mut self) {
        let Some(every) = self.cfg.health_interval() else {
            return;
        };
        let now = Instant::now();
        if now < self.next_health || self.check.is_some() || self.second != Second::None {
            return;
        }
        self.next_health = now + every;
        let Some(cur) = self
            .current
            .as_ref()
            .filter(|c| matches!(c.topology, Topology::HyParView | Topology::PubSub))
            .map(|c| c.id)
        else {
            return;
        };
        // Nobody waits for the answer.
        let (reply, _) = tokio::sync::oneshot::channel();
        self.check = Some(Check::new(
            CheckKind::Health,
            cur,
            self.live(),
            self.cfg.form_timeout(),
            self.cfg.watch(),
            reply,
        ));
    }

    /// Every half second: a full mesh that lacks a member whose link is up
    /// joins it again (its join may have been lost while the link was
    /// failing; the overlay itself re-probes only after `probe_after`).
    async fn complete_meshes(&mut self) {
        let now = Instant::now();
        if now < self.next_mesh_check {
            return;
        }
        self.next_mesh_check = now + MESH_CHECK;
        let wanted: Vec<(u64, Vec<NodeId>)> = self
            .current
            .iter()
            .chain(self.other.iter())
            .filter(|i| i.topology == Topology::FullMesh)
            .map(|i| {
                let links = i.overlay.links();
                let lacking = self
                    .up
                    .iter()
                    .copied()
                    .filter(|p| self.members.contains(p) && !links.contains(p))
                    .collect();
                (i.id, lacking)
            })
            .filter(|(_, l): &(u64, Vec<NodeId>)| !l.is_empty())
            .collect();
        for (id, lacking) in wanted {
            tracing::debug!(
                instance = id,
                ?lacking,
                "full mesh lacks linked members: joining them"
            );
            self.drive(id, InEvent::Command(crate::overlay::Command::Join(lacking)))
                .await;
        }
    }

    /// A full mesh that dropped `peer` after a failure takes it back when a
    /// link to it comes up again (the overlay itself only re-learns it at
    /// its next anti-entropy round).
    async fn rejoin(&mut self, peer: NodeId) {
        if !self.members.contains(&peer) {
            return;
        }
        let ids: Vec<u64> = self
            .current
            .iter()
            .chain(self.other.iter())
            .filter(|i| i.topology == Topology::FullMesh && !i.overlay.links().contains(&peer))
            .map(|i| i.id)
            .collect();
        for id in ids {
            self.drive(
                id,
                InEvent::Command(crate::overlay::Command::Join(vec![peer])),
            )
            .await;
        }
    }

    async fn peer_down(&mut self, peer: NodeId) {
        let ids: Vec<u64> = self
            .current
            .iter()
            .chain(self.other.iter())
            .map(|i| i.id)
            .collect();
        for id in ids {
            self.drive(id, InEvent::PeerDown(peer)).await;
        }
    }

    async fn on_frame(&mut self, from: NodeId, payload: bytes::Bytes) {
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
            } => {
                self.on_overlay_frame(from, instance, topology, message)
                    .await
            }
            Frame::Direct(d) if d.to == self.me => self.deliver_direct(d),
            Frame::Direct(d) => {
                let to = d.to;
                if !self.send_frame(to, FrameClass::Data, payload).await {
                    tracing::warn!(from, to, "relayed message could not be sent");
                }
            }
            Frame::ProbeAck { instance, probe } => {
                if let Some(c) = self.check.as_mut() {
                    c.ack(instance, probe, from);
                }
            }
            Frame::Repair(msg) => self.on_repair(msg, payload).await,
        }
    }

    pub async fn on_overlay_frame(
        &mut self,
        from: NodeId,
        instance: u64,
        topology: Topology,
        message: AnyMessage,
    ) {
        let newest = self
            .current
            .iter()
            .chain(self.other.iter())
            .map(|i| i.id)
            .max();
        if let Second::Old { last_payload, .. } = &mut self.second {
            let old = self.other.as_ref().is_some_and(|o| o.id == instance);
            if old
                && crate::overlay::ProtocolMessage::class(&message)
                    == crate::overlay::MessageClass::Payload
            {
                *last_payload = Instant::now();
            }
        }
        match self.instance_mut(instance) {
            Some(i) if i.topology == topology && i.overlay.accepts(&message) => {
                self.drive(instance, InEvent::Message { from, message })
                    .await;
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

    pub async fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, timer) = entry.remove();
            self.drive(id, InEvent::Timer(timer)).await;
        }
    }

    pub async fn on_tick(&mut self) {
        if let Second::Old {
            since,
            last_payload,
        } = self.second
        {
            // The drain ends at the grace period, or early — not before
            // `drain_min` — when a prepare waits or the old overlay has
            // gone quiet (every node sends on the new one). A broadcast a
            // slow node still sends on the old overlay after that is
            // dropped here as stale and recovered by gap repair.
            let now = Instant::now();
            let min = since + self.cfg.drain_min();
            let quiet = last_payload + self.cfg.drain_min();
            let early = now >= min && (self.queued.is_some() || now >= quiet);
            if early || now >= since + self.cfg.drain_grace() {
                if let Some(o) = self.other.as_ref().map(|o| o.id) {
                    self.teardown(o).await;
                }
                if let Some(cmd) = self.queued.take() {
                    self.prepare(cmd).await;
                }
            }
        }
        self.start_health_check();
        self.advance_check().await;
        self.repair_round().await;
        self.complete_meshes().await;
        self.summary_tick();
        self.counters_moved();
    }
}

fn answer(reply: tokio::sync::oneshot::Sender<Result<(), ExecError>>, r: Result<(), String>) {
    if reply.send(r.map_err(ExecError)).is_err() {
        tracing::debug!("nobody waits for the executor's answer any more");
    }
}
