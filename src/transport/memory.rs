//! The in-memory network: endpoints that talk through `tokio::io::duplex`
//! pipes instead of sockets, with the same handshake, codec, queues, pings
//! and fault filter as TCP. For tests of the transport's users.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::backend::{BoxStream, Dialer, Listener};
use super::{Transport, TransportConfig, TransportError, TransportEvent};
use crate::model::NodeId;

/// Bytes buffered in each direction of an in-memory pipe (like a socket
/// buffer).
const PIPE_BYTES: usize = 64 * 1024;
/// Connections waiting to be accepted per endpoint (like a listen backlog).
const BACKLOG: usize = 64;

/// A set of in-memory endpoints that can reach each other. Addresses are
/// made up in 192.0.2.0/24 (TEST-NET-1), so they are never real sockets.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    listeners: BTreeMap<SocketAddr, mpsc::Sender<BoxStream>>,
    next_port: u16,
}

impl MemoryNetwork {
    pub fn new() -> Self {
        MemoryNetwork::default()
    }

    /// A new endpoint at a fresh address. Must be called inside a tokio
    /// runtime.
    pub fn endpoint(
        &self,
        config: TransportConfig,
        node_id: NodeId,
        cluster_id: &str,
    ) -> Result<(Transport, mpsc::Receiver<TransportEvent>), TransportError> {
        let addr = {
            let mut reg = self.lock();
            reg.next_port = reg.next_port.wrapping_add(1).max(1);
            SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), reg.next_port))
        };
        self.endpoint_at(addr, config, node_id, cluster_id)
    }

    /// An endpoint at `addr`, e.g. to restart a node on its old address.
    /// Fails with `TransportError::Bind` while another live endpoint holds
    /// it.
    pub fn endpoint_at(
        &self,
        addr: SocketAddr,
        config: TransportConfig,
        node_id: NodeId,
        cluster_id: &str,
    ) -> Result<(Transport, mpsc::Receiver<TransportEvent>), TransportError> {
        config.validate()?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        {
            let mut reg = self.lock();
            if reg.listeners.get(&addr).is_some_and(|l| !l.is_closed()) {
                return Err(TransportError::Bind {
                    addr,
                    source: io::Error::new(io::ErrorKind::AddrInUse, "address in use"),
                });
            }
            reg.listeners.insert(addr, tx);
        }
        Ok(Transport::start(
            Listener::Memory(rx),
            Dialer::Memory(self.clone()),
            addr,
            config,
            node_id,
            cluster_id,
        ))
    }

    /// Opens a pipe to the endpoint at `addr`; refused like a closed port
    /// when there is none.
    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<BoxStream> {
        let listener = self.lock().listeners.get(&addr).cloned();
        let refused = || io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        let listener = listener.ok_or_else(refused)?;
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        listener.try_send(Box::new(theirs)).map_err(|_| refused())?;
        Ok(Box::new(ours))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
