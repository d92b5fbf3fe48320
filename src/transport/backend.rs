//! Where byte streams come from: TCP sockets or in-memory pipes. Everything
//! above this file (handshake, framing, queues, pings, faults) is shared by
//! both, so the in-memory transport exercises the same code as TCP.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::memory::MemoryNetwork;

/// A bidirectional byte stream.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub(crate) type BoxStream = Box<dyn Stream>;

/// Accepts incoming streams.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Memory(mpsc::Receiver<BoxStream>),
}

impl Listener {
    pub async fn accept(&mut self) -> io::Result<BoxStream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok(Box::new(s))
            }
            Listener::Memory(rx) => rx
                .recv()
                .await
                .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "memory network dropped")),
        }
    }
}

/// Opens outgoing streams.
pub(crate) enum Dialer {
    Tcp,
    Memory(MemoryNetwork),
}

impl Dialer {
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<BoxStream> {
        match self {
            Dialer::Tcp => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Ok(Box::new(s))
            }
            Dialer::Memory(net) => net.connect(addr),
        }
    }
}
