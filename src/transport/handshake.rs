//! Opening a link: both sides send `Hello` (cluster id, node id, protocol
//! version) and check the other's; a mismatch is refused with a `Refuse`
//! frame and a log line naming both values. The accepting side's peer task
//! then answers `Ready` (keep) or `Duplicate` (both dialed at once and the
//! other connection wins); the dialer waits for that answer.
//!
//! Peers are identified by their `Hello`, never by source address. On a
//! secure node ([`TransportTls`]) the stream is mutual TLS first, with a
//! node certificate of this cluster on both sides, and the `Hello`'s node
//! id must be the one the peer's certificate names (and, for the dialer,
//! the node it dialed).

use std::sync::Arc;

use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};

use super::backend::BoxStream;
use super::codec::{
    self, FrameReader, ReadError, WireFrame, HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION,
};
use super::handle::Inner;
use crate::model::NodeId;
use crate::security::TlsContext;

/// Mutual TLS on the overlay links.
#[derive(Clone)]
pub struct TransportTls {
    ctx: Arc<TlsContext>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl TransportTls {
    pub fn new(ctx: Arc<TlsContext>) -> Self {
        TransportTls {
            server: ctx.peer_server_config(&[]),
            client: ctx.peer_client_config(&[]),
            ctx,
        }
    }

    /// The server side: the stream and the node the client's certificate
    /// names.
    async fn accept(&self, stream: BoxStream) -> Result<(BoxStream, NodeId), HandshakeError> {
        let tls = tokio_rustls::TlsAcceptor::from(self.server.clone())
            .accept(stream)
            .await
            .map_err(|e| HandshakeError::Tls(e.to_string()))?;
        let node = self
            .ctx
            .peer_node(tls.get_ref().1.peer_certificates())
            .ok_or_else(|| HandshakeError::Tls("no node certificate".into()))?;
        Ok((Box::new(tls), node))
    }

    /// The client side: the stream and the node the server's certificate
    /// names.
    async fn connect(&self, stream: BoxStream) -> Result<(BoxStream, NodeId), HandshakeError> {
        let name = rustls_pki_types::ServerName::try_from(crate::security::identity::NODE_DNS_NAME)
            .expect("a valid DNS name");
        let tls = tokio_rustls::TlsConnector::from(self.client.clone())
            .connect(name, stream)
            .await
            .map_err(|e| HandshakeError::Tls(e.to_string()))?;
        let node = self
            .ctx
            .peer_node(tls.get_ref().1.peer_certificates())
            .ok_or_else(|| HandshakeError::Tls("no node certificate".into()))?;
        Ok((Box::new(tls), node))
    }
}

/// A link whose `Hello`s were exchanged and checked.
pub(crate) struct Established {
    pub peer: NodeId,
    /// The node that dialed this connection.
    pub dialer: NodeId,
    /// Holds bytes read past the handshake.
    pub reader: FrameReader,
    pub rd: ReadHalf<BoxStream>,
    pub wr: WriteHalf<BoxStream>,
}

/// Why a link could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("node {0} has no address in the address book")]
    NoAddress(NodeId),
    #[error("partitioned by the fault filter")]
    Partitioned,
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Read(#[from] ReadError),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("connection closed during the handshake")]
    Closed,
    #[error("we refused: {0}")]
    Mismatch(String),
    #[error("peer refused: {0}")]
    Refused(String),
    #[error("unexpected {0} during the handshake")]
    Unexpected(&'static str),
    #[error("the simultaneous link dialed by the other node won")]
    Duplicate,
    #[error("handshake timed out")]
    Timeout,
    #[error("TLS: {0}")]
    Tls(String),
}

/// Dials `peer` and completes the handshake, within `connect_timeout_ms`.
pub(crate) async fn dial(inner: Arc<Inner>, peer: NodeId) -> Result<Established, HandshakeError> {
    let addr = inner.address(peer).ok_or(HandshakeError::NoAddress(peer))?;
    if inner.faults.partitioned(peer) {
        return Err(HandshakeError::Partitioned);
    }
    let attempt = async {
        let stream = inner
            .dialer
            .connect(addr)
            .await
            .map_err(HandshakeError::Connect)?;
        let (stream, certified) = match &inner.tls {
            Some(tls) => {
                let (s, n) = tls.connect(stream).await?;
                (s, Some(n))
            }
            None => (stream, None),
        };
        let mut est = hello(&inner, stream, Some(peer), certified).await?;
        let theirs = est.reader.read(&mut est.rd).await?;
        check_answer(theirs.map(|(f, _)| f))?;
        Ok(est)
    };
    tokio::time::timeout(inner.config.connect_timeout(), attempt)
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

/// The accepting side's half: exchange and check `Hello`s. The caller
/// (under its own deadline) hands the result to the peer task, which
/// answers `Ready` or `Duplicate` with [`answer`].
pub(crate) async fn accept(
    inner: &Inner,
    stream: BoxStream,
) -> Result<Established, HandshakeError> {
    let (stream, certified) = match &inner.tls {
        Some(tls) => {
            let (s, n) = tls.accept(stream).await?;
            (s, Some(n))
        }
        None => (stream, None),
    };
    hello(inner, stream, None, certified).await
}

/// Writes the accepting side's answer on a handshaken link.
pub(crate) async fn answer(
    inner: &Inner,
    est: &mut Established,
    frame: WireFrame,
) -> Result<(), HandshakeError> {
    let write = async {
        write_frame(&mut est.wr, &frame).await?;
        est.wr.flush().await.map_err(HandshakeError::Write)
    };
    tokio::time::timeout(inner.config.connect_timeout(), write)
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

async fn hello(
    inner: &Inner,
    stream: BoxStream,
    expect: Option<NodeId>,
    certified: Option<NodeId>,
) -> Result<Established, HandshakeError> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let ours = WireFrame::Hello {
        cluster_id: inner.cluster_id.clone(),
        node_id: inner.me,
        protocol_version: PROTOCOL_VERSION,
    };
    write_frame(&mut wr, &ours).await?;
    wr.flush().await.map_err(HandshakeError::Write)?;
    let mut reader = FrameReader::new(HANDSHAKE_MAX_FRAME);
    let theirs = match reader.read(&mut rd).await? {
        Some((f, _)) => f,
        None => return Err(HandshakeError::Closed),
    };
    let checked = check_hello(theirs, &inner.cluster_id, inner.me, expect).and_then(|n| {
        match certificate_mismatch(n, certified) {
            Some(reason) => Err(HandshakeError::Mismatch(reason)),
            None => Ok(n),
        }
    });
    let node_id = match checked {
        Ok(node_id) => node_id,
        Err(HandshakeError::Mismatch(reason)) => {
            return Err(refuse(&mut wr, reason).await);
        }
        Err(e) => return Err(e),
    };
    reader.set_max(inner.config.max_frame());
    Ok(Established {
        peer: node_id,
        dialer: if expect.is_some() { inner.me } else { node_id },
        reader,
        rd,
        wr,
    })
}

/// Checks the peer's first frame against our cluster id and node id (and
/// the node we dialed): the peer's node id, or why the link is refused
/// (`Mismatch` is answered with a `Refuse` frame). Pure, so the fuzz
/// target `handshake` runs exactly this.
pub(crate) fn check_hello(
    theirs: WireFrame,
    our_cluster: &str,
    me: NodeId,
    expect: Option<NodeId>,
) -> Result<NodeId, HandshakeError> {
    match theirs {
        WireFrame::Hello {
            cluster_id,
            node_id,
            protocol_version,
        } => match mismatch(
            our_cluster,
            me,
            &cluster_id,
            node_id,
            protocol_version,
            expect,
        ) {
            Some(reason) => Err(HandshakeError::Mismatch(reason)),
            None => Ok(node_id),
        },
        WireFrame::Refuse { reason } => Err(HandshakeError::Refused(reason)),
        other => Err(HandshakeError::Unexpected(name(&other))),
    }
}

/// Checks the accepting side's answer to the dialer (`None`: the stream
/// ended): `Ok` only for `Ready`. Pure, run by the fuzz target
/// `handshake`.
pub(crate) fn check_answer(theirs: Option<WireFrame>) -> Result<(), HandshakeError> {
    match theirs {
        Some(WireFrame::Ready) => Ok(()),
        Some(WireFrame::Duplicate) => Err(HandshakeError::Duplicate),
        Some(WireFrame::Refuse { reason }) => Err(HandshakeError::Refused(reason)),
        Some(f) => Err(HandshakeError::Unexpected(name(&f))),
        None => Err(HandshakeError::Closed),
    }
}

/// Sends `Refuse` for `reason` (best effort) and gives the error to return.
async fn refuse(wr: &mut WriteHalf<BoxStream>, reason: String) -> HandshakeError {
    tracing::warn!(%reason, "link refused");
    // The peer may have refused and closed first (both sides check):
    // our reason is the one to report either way.
    let refuse = WireFrame::Refuse {
        reason: reason.clone(),
    };
    if let Err(e) = write_frame(wr, &refuse).await {
        tracing::debug!(error = %e, "could not send Refuse");
    } else if let Err(e) = wr.flush().await {
        tracing::debug!(error = %e, "could not send Refuse");
    }
    HandshakeError::Mismatch(reason)
}

/// Why a `Hello` is refused, naming both values; `None` if it is fine.
fn mismatch(
    our_cluster: &str,
    me: NodeId,
    cluster_id: &str,
    node_id: NodeId,
    version: u32,
    expect: Option<NodeId>,
) -> Option<String> {
    if version != PROTOCOL_VERSION {
        return Some(format!(
            "protocol version mismatch: ours {PROTOCOL_VERSION}, theirs {version} (node {node_id})"
        ));
    }
    if cluster_id != our_cluster {
        return Some(format!(
            "cluster id mismatch: ours {our_cluster:?}, theirs {cluster_id:?} (node {node_id})"
        ));
    }
    if node_id == me {
        return Some(format!("peer claims our own node id {node_id}"));
    }
    match expect {
        Some(e) if e != node_id => Some(format!(
            "dialed node {e} but node {node_id} answered (stale address book?)"
        )),
        _ => None,
    }
}

/// Why a `Hello` naming `node_id` is refused over a link whose
/// certificate names `certified`; `None` if it is fine.
fn certificate_mismatch(node_id: NodeId, certified: Option<NodeId>) -> Option<String> {
    match certified {
        Some(c) if c != node_id => Some(format!(
            "the Hello claims node {node_id}, but the certificate is node {c}'s"
        )),
        _ => None,
    }
}

async fn write_frame(
    wr: &mut WriteHalf<BoxStream>,
    frame: &WireFrame,
) -> Result<(), HandshakeError> {
    let bytes = codec::encode(frame, HANDSHAKE_MAX_FRAME)
        .map_err(|e| HandshakeError::Mismatch(e.to_string()))?;
    wr.write_all(&bytes).await.map_err(HandshakeError::Write)
}

pub(crate) fn name(f: &WireFrame) -> &'static str {
    match f {
        WireFrame::Hello { .. } => "Hello",
        WireFrame::Refuse { .. } => "Refuse",
        WireFrame::Ready => "Ready",
        WireFrame::Duplicate => "Duplicate",
        WireFrame::Ping { .. } => "Ping",
        WireFrame::Pong { .. } => "Pong",
        WireFrame::Data { .. } => "Data",
    }
}
