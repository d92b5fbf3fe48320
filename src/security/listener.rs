//! The HTTP listeners (admin API and Raft RPC): plain or TLS, hardened
//! against clients that hold connections.
//!
//! - At most `max_connections` connections at once; one more is closed at
//!   once (counted in `topod_http_connections_refused_total`).
//! - The TLS handshake and then each request's head must arrive within
//!   `header_timeout`; the head is at most `max_header_bytes`.
//! - A request's body must arrive within `body_timeout` of its head: a
//!   client sending one byte a second is cut off.
//! - A TLS client's verified node certificate becomes a [`PeerNode`]
//!   request extension; a request without one has its
//!   [`FORWARDED_HEADER`] removed, so a client cannot pose as a forwarding
//!   node (on an insecure node the header is trusted, as before).
//!
//! On cancellation the listener stops accepting, lets each connection
//! finish its request (at most [`SHUTDOWN_GRACE`]) and returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::{PeerNode, TlsContext};
use crate::api::types::FORWARDED_HEADER;

/// How long a connection may take to finish after shutdown began.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Limits of one listener.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// Which listener, in logs and metrics (`api`, `raft`).
    pub name: &'static str,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_header_bytes: usize,
}

/// Whether and how a listener speaks TLS.
#[derive(Clone)]
pub enum ListenerTls {
    /// Plain HTTP; `trust_forwarded`: keep [`FORWARDED_HEADER`] (insecure
    /// mode, where nodes forward over plain HTTP).
    Plain { trust_forwarded: bool },
    /// TLS with `config`; client certificates are read with `ctx`.
    Tls {
        config: Arc<rustls::ServerConfig>,
        ctx: Arc<TlsContext>,
    },
}

/// Serves `router` on `listener` until `cancel`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: ListenerTls,
    limits: ListenerLimits,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let conns = TaskTracker::new();
    let limits = Arc::new(limits);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(listener = limits.name, error = %e, "accept failed");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("topod_http_connections_refused_total", "listener" => limits.name)
                .increment(1);
            tracing::debug!(listener = limits.name, %remote, "connection limit reached: closed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (router, tls, limits, cancel) =
            (router.clone(), tls.clone(), limits.clone(), cancel.clone());
        conns.spawn(async move {
            connection(tcp, remote, router, tls, &limits, cancel).await;
            drop(slot);
        });
    }
    conns.close();
    conns.wait().await;
}

async fn connection(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    router: Router,
    tls: ListenerTls,
    limits: &ListenerLimits,
    cancel: CancellationToken,
) {
    match tls {
        ListenerTls::Plain { trust_forwarded } => {
            http(tcp, router, None, trust_forwarded, limits, cancel).await
        }
        ListenerTls::Tls { config, ctx } => {
            let accept = TlsAcceptor::from(config).accept(tcp);
            let stream = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(limits.header_timeout, accept) => r,
            };
            let stream = match stream {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    metrics::counter!("topod_tls_handshakes_refused_total", "listener" => limits.name)
                        .increment(1);
                    tracing::info!(listener = limits.name, %remote, reason = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(listener = limits.name, %remote, "TLS handshake timed out");
                    return;
                }
            };
            let peer = ctx
                .peer_node(stream.get_ref().1.peer_certificates())
                .map(PeerNode);
            http(stream, router, peer, false, limits, cancel).await
        }
    }
}

async fn http<S>(
    io: S,
    router: Router,
    peer: Option<PeerNode>,
    trust_forwarded: bool,
    limits: &ListenerLimits,
    cancel: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let mut req = req.map(|b| Body::new(TimedBody::new(b, body_timeout)));
            match peer {
                Some(p) => {
                    // A node forwards in its own name only.
                    let claimed = req.headers().get(FORWARDED_HEADER).map(|v| {
                        v.to_str()
                            .ok()
                            .and_then(|s| s.parse::<crate::model::NodeId>().ok())
                    });
                    if let Some(Some(c)) = claimed {
                        if c != p.0 {
                            tracing::warn!(claimed = c, certificate = p.0, "forwarding header names another node than the certificate: ignored");
                            req.headers_mut().remove(FORWARDED_HEADER);
                        }
                    }
                    req.extensions_mut().insert(p);
                }
                None if !trust_forwarded => {
                    req.headers_mut().remove(FORWARDED_HEADER);
                }
                None => {}
            }
            Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|e| match e {}))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(listener = limits.name, error = %e, "connection ended");
            }
        }
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

/// A request body that must arrive within a deadline.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    after: Duration,
}

impl TimedBody {
    fn new(inner: Incoming, after: Duration) -> Self {
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(after)),
            after,
        }
    }
}

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(r) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(r.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.after)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
