//! What the conformance suite needs from a backend, for TCP and memory, and
//! helpers to wait for events with a deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tokio::time::Instant;

use crate::model::NodeId;
use crate::transport::backend::BoxStream;
use crate::transport::{MemoryNetwork, Transport, TransportConfig, TransportEvent};

pub const CLUSTER: &str = "test-cluster";
/// Deadline of any single wait in the suite.
pub const WAIT: Duration = Duration::from_secs(5);

pub trait Net: Send + Sync + 'static {
    /// A node, on `at` if given (a restart), else on a fresh address.
    fn node(
        &self,
        id: NodeId,
        config: TransportConfig,
        cluster: &str,
        at: Option<SocketAddr>,
    ) -> impl std::future::Future<Output = (Transport, Receiver<TransportEvent>)> + Send;
    /// A raw byte stream to a node, to speak the protocol by hand.
    fn raw(&self, addr: SocketAddr) -> impl std::future::Future<Output = BoxStream> + Send;
}

pub struct Tcp;
pub struct Mem(pub MemoryNetwork);

impl Net for Tcp {
    async fn node(
        &self,
        id: NodeId,
        config: TransportConfig,
        cluster: &str,
        at: Option<SocketAddr>,
    ) -> (Transport, Receiver<TransportEvent>) {
        let addr = at.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        Transport::bind_tcp(addr, config, id, cluster)
            .await
            .unwrap()
    }

    async fn raw(&self, addr: SocketAddr) -> BoxStream {
        Box::new(tokio::net::TcpStream::connect(addr).await.unwrap())
    }
}

impl Net for Mem {
    async fn node(
        &self,
        id: NodeId,
        config: TransportConfig,
        cluster: &str,
        at: Option<SocketAddr>,
    ) -> (Transport, Receiver<TransportEvent>) {
        match at {
            Some(a) => self.0.endpoint_at(a, config, id, cluster).unwrap(),
            None => self.0.endpoint(config, id, cluster).unwrap(),
        }
    }

    async fn raw(&self, addr: SocketAddr) -> BoxStream {
        self.0.connect(addr).unwrap()
    }
}

/// Fast timings for tests; chaos on.
pub fn config() -> TransportConfig {
    TransportConfig {
        ping_interval_ms: 50,
        // Long enough that a loaded test machine never sees a false timeout.
        ping_timeout_ms: 5000,
        reconnect_min_ms: 10,
        reconnect_max_ms: 200,
        connect_timeout_ms: 1000,
        send_timeout_ms: 5000,
        chaos: true,
        ..TransportConfig::default()
    }
}

/// Tells every node where the others are.
pub fn introduce(nodes: &[&Transport]) {
    let book: BTreeMap<NodeId, SocketAddr> = nodes
        .iter()
        .map(|t| (t.node_id(), t.bound_addr()))
        .collect();
    for t in nodes {
        t.set_address_book(book.clone());
    }
}

/// Waits for the first event matching `want`, skipping others; panics
/// with `what` at the deadline.
pub async fn expect(
    events: &mut Receiver<TransportEvent>,
    what: &str,
    want: impl Fn(&TransportEvent) -> bool,
) -> TransportEvent {
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) if want(&ev) => return ev,
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}

pub async fn link_up(events: &mut Receiver<TransportEvent>, peer: NodeId) {
    expect(
        events,
        &format!("LinkUp from {peer}"),
        |e| matches!(e, TransportEvent::LinkUp { peer: p } if *p == peer),
    )
    .await;
}

/// The next data or control frame's payload (skipping link and RTT events).
pub async fn next_frame(events: &mut Receiver<TransportEvent>) -> (NodeId, bytes::Bytes) {
    match expect(events, "a frame", |e| {
        matches!(e, TransportEvent::Frame { .. })
    })
    .await
    {
        TransportEvent::Frame { from, payload, .. } => (from, payload),
        _ => unreachable!(),
    }
}

/// Two linked nodes, 1 and 2 (1 holds the standing link).
pub async fn pair<N: Net>(
    net: &N,
    c1: TransportConfig,
    c2: TransportConfig,
) -> (
    (Transport, Receiver<TransportEvent>),
    (Transport, Receiver<TransportEvent>),
) {
    let (a, mut ea) = net.node(1, c1, CLUSTER, None).await;
    let (b, mut eb) = net.node(2, c2, CLUSTER, None).await;
    introduce(&[&a, &b]);
    a.connect(2).unwrap();
    link_up(&mut ea, 2).await;
    link_up(&mut eb, 1).await;
    ((a, ea), (b, eb))
}

/// Polls `cond` until true or the deadline.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "not true within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
