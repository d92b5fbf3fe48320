//! [`AnyOverlay`]: whichever overlay is current, behind one [`Protocol`]
//! implementation, so the executor can hold the current overlay and,
//! during a transition, a second one beside it, and the simulator can run
//! any topology through one code path.
//!
//! Messages and timers are wrapped per protocol ([`AnyMessage`],
//! [`AnyTimer`]); an event of another protocol's kind reaching an overlay
//! (a frame routed to the wrong instance) has no effect: callers that
//! count such drops check [`AnyOverlay::accepts`] first.

use std::cell::RefCell;
use std::thread::LocalKey;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    client_server, full_mesh, hyparview, plumtree, InEvent, MessageClass, OutEvent, PeerId,
    Protocol, ProtocolMessage, Time,
};
use crate::model::{ConfigError, OverlayConfig, Topology};

/// The RNG every overlay built here uses, seeded by the caller.
pub type OverlayRng = ChaCha8Rng;

/// An overlay could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The config is invalid; nothing was built.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Client-server with no server given in the config nor by the caller.
    #[error("client_server needs at least one server")]
    NoServers,
}

/// One overlay of any topology.
///
/// Not boxed: a node holds at most two, and the simulator's per-node cost
/// (the size of the largest variant, under a kilobyte) is small next to
/// the views and caches the states own.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyOverlay {
    FullMesh(full_mesh::State<OverlayRng>),
    HyParView(hyparview::State<OverlayRng>),
    ClientServer(client_server::State<OverlayRng>),
    PubSub(plumtree::State<OverlayRng>),
}

/// A message of any overlay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AnyMessage {
    FullMesh(full_mesh::Message),
    HyParView(hyparview::Message),
    ClientServer(client_server::Message),
    PubSub(plumtree::Message),
}

/// A timer of any overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyTimer {
    FullMesh(full_mesh::Timer),
    HyParView(hyparview::Timer),
    ClientServer(client_server::Timer),
    PubSub(plumtree::Timer),
}

macro_rules! wrap {
    ($variant:ident, $module:ident) => {
        impl From<$module::Message> for AnyMessage {
            fn from(m: $module::Message) -> Self {
                AnyMessage::$variant(m)
            }
        }
        impl From<$module::Timer> for AnyTimer {
            fn from(t: $module::Timer) -> Self {
                AnyTimer::$variant(t)
            }
        }
    };
}
wrap!(FullMesh, full_mesh);
wrap!(HyParView, hyparview);
wrap!(ClientServer, client_server);
wrap!(PubSub, plumtree);

/// Runs `$body` with `$s` bound to the inner state, whatever the variant.
macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            AnyOverlay::FullMesh($s) => $body,
            AnyOverlay::HyParView($s) => $body,
            AnyOverlay::ClientServer($s) => $body,
            AnyOverlay::PubSub($s) => $body,
        }
    };
}

/// Hands `$event` to `$s` if it is of variant `$variant`.
macro_rules! route {
    ($s:ident, $variant:ident, $now:expr, $event:expr, $out:expr, $scratch:ident) => {{
        let ev = narrow(
            $event,
            |m| match m {
                AnyMessage::$variant(m) => Some(m),
                _ => None,
            },
            |t| match t {
                AnyTimer::$variant(t) => Some(t),
                _ => None,
            },
        );
        drive($s, $now, ev, $out, &$scratch)
    }};
}

impl ProtocolMessage for AnyMessage {
    fn class(&self) -> MessageClass {
        match self {
            AnyMessage::FullMesh(m) => m.class(),
            AnyMessage::HyParView(m) => m.class(),
            AnyMessage::ClientServer(m) => m.class(),
            AnyMessage::PubSub(m) => m.class(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            AnyMessage::FullMesh(m) => m.kind(),
            AnyMessage::HyParView(m) => m.kind(),
            AnyMessage::ClientServer(m) => m.kind(),
            AnyMessage::PubSub(m) => m.kind(),
        }
    }
}

type AnyOut = Vec<OutEvent<AnyMessage, AnyTimer>>;

/// Unwraps an event for one protocol; `None` if it belongs to another.
fn narrow<M, T>(
    event: InEvent<AnyMessage, AnyTimer>,
    msg: impl FnOnce(AnyMessage) -> Option<M>,
    timer: impl FnOnce(AnyTimer) -> Option<T>,
) -> Option<InEvent<M, T>> {
    Some(match event {
        InEvent::Message { from, message } => InEvent::Message {
            from,
            message: msg(message)?,
        },
        InEvent::Timer(t) => InEvent::Timer(timer(t)?),
        InEvent::PeerDown(p) => InEvent::PeerDown(p),
        InEvent::Command(c) => InEvent::Command(c),
    })
}

/// Wraps one protocol's outputs.
fn widen<M: Into<AnyMessage>, T: Into<AnyTimer>>(
    inner: &mut Vec<OutEvent<M, T>>,
    out: &mut AnyOut,
) {
    out.extend(inner.drain(..).map(|o| match o {
        OutEvent::Send { to, message } => OutEvent::Send {
            to,
            message: message.into(),
        },
        OutEvent::Connect(p) => OutEvent::Connect(p),
        OutEvent::Disconnect(p) => OutEvent::Disconnect(p),
        OutEvent::ScheduleTimer { after, timer } => OutEvent::ScheduleTimer {
            after,
            timer: timer.into(),
        },
        OutEvent::Deliver {
            id,
            from,
            hops,
            payload,
        } => OutEvent::Deliver {
            id,
            from,
            hops,
            payload,
        },
        OutEvent::ViewChanged { links } => OutEvent::ViewChanged { links },
    }));
}

fn drive<P: Protocol>(
    state: &mut P,
    now: Time,
    event: Option<InEvent<P::Message, P::Timer>>,
    out: &mut AnyOut,
    scratch: &'static LocalKey<Scratch<P::Message, P::Timer>>,
) where
    P::Message: Into<AnyMessage>,
    P::Timer: Into<AnyTimer>,
{
    let Some(event) = event else { return };
    // Reuse one output buffer per protocol and thread: no allocation per
    // event on the hot path.
    let mut inner = scratch.with(RefCell::take);
    state.handle(now, event, &mut inner);
    widen(&mut inner, out);
    scratch.with(|cell| *cell.borrow_mut() = inner);
}

type Scratch<M, T> = RefCell<Vec<OutEvent<M, T>>>;

thread_local! {
    static FULL_MESH_OUT: Scratch<full_mesh::Message, full_mesh::Timer> =
        const { RefCell::new(Vec::new()) };
    static HYPARVIEW_OUT: Scratch<hyparview::Message, hyparview::Timer> =
        const { RefCell::new(Vec::new()) };
    static CLIENT_SERVER_OUT: Scratch<client_server::Message, client_server::Timer> =
        const { RefCell::new(Vec::new()) };
    static PUB_SUB_OUT: Scratch<plumtree::Message, plumtree::Timer> =
        const { RefCell::new(Vec::new()) };
}

impl AnyOverlay {
    /// Builds the overlay `config` describes for node `me`, its RNG seeded
    /// with `seed`. `servers` stands in for an empty client-server list.
    pub fn new(
        config: &OverlayConfig,
        me: PeerId,
        seed: u64,
        servers: &[PeerId],
    ) -> Result<Self, BuildError> {
        config.validate()?;
        let rng = OverlayRng::seed_from_u64(seed);
        Ok(match config {
            OverlayConfig::FullMesh(c) => {
                AnyOverlay::FullMesh(full_mesh::State::new(me, c.into(), rng))
            }
            OverlayConfig::ClientServer(c) => {
                let cfg = client_server::Config::from_model(c, servers);
                if cfg.servers.is_empty() {
                    return Err(BuildError::NoServers);
                }
                AnyOverlay::ClientServer(client_server::State::new(me, cfg, rng))
            }
            OverlayConfig::HyParView(c) => {
                AnyOverlay::HyParView(hyparview::State::new(me, c.into(), rng))
            }
            OverlayConfig::PubSub(c) => AnyOverlay::PubSub(plumtree::State::new(me, c.into(), rng)),
        })
    }

    /// The topology this overlay implements.
    pub fn topology(&self) -> Topology {
        match self {
            AnyOverlay::FullMesh(_) => Topology::FullMesh,
            AnyOverlay::HyParView(_) => Topology::HyParView,
            AnyOverlay::ClientServer(_) => Topology::ClientServer,
            AnyOverlay::PubSub(_) => Topology::PubSub,
        }
    }

    /// Whether `message` belongs to this overlay's protocol.
    pub fn accepts(&self, message: &AnyMessage) -> bool {
        matches!(
            (self, message),
            (AnyOverlay::FullMesh(_), AnyMessage::FullMesh(_))
                | (AnyOverlay::HyParView(_), AnyMessage::HyParView(_))
                | (AnyOverlay::ClientServer(_), AnyMessage::ClientServer(_))
                | (AnyOverlay::PubSub(_), AnyMessage::PubSub(_))
        )
    }

    /// Plumtree's eager peers (`None` for other topologies).
    pub fn eager_peers(&self) -> Option<Vec<PeerId>> {
        match self {
            AnyOverlay::PubSub(s) => Some(s.eager_peers().to_vec()),
            _ => None,
        }
    }
}

impl Protocol for AnyOverlay {
    type Message = AnyMessage;
    type Timer = AnyTimer;

    fn me(&self) -> PeerId {
        each!(self, s => s.me())
    }

    fn handle(&mut self, now: Time, event: InEvent<AnyMessage, AnyTimer>, out: &mut AnyOut) {
        match self {
            AnyOverlay::FullMesh(s) => route!(s, FullMesh, now, event, out, FULL_MESH_OUT),
            AnyOverlay::HyParView(s) => route!(s, HyParView, now, event, out, HYPARVIEW_OUT),
            AnyOverlay::ClientServer(s) => {
                route!(s, ClientServer, now, event, out, CLIENT_SERVER_OUT)
            }
            AnyOverlay::PubSub(s) => route!(s, PubSub, now, event, out, PUB_SUB_OUT),
        }
    }

    fn links(&self) -> Vec<PeerId> {
        each!(self, s => s.links())
    }
}
