//! [`PeerHttp`]: how a node makes HTTP calls to other nodes — Raft RPCs,
//! forwarded writes, phase reports, summary gathering, joins.
//!
//! On a secure node every such call is HTTPS to the peer's Raft RPC
//! listener, which requires this node's certificate and also serves the
//! admin API's routes to peers; the peer's answer is accepted only from a
//! node certificate of this cluster. On an insecure node the calls are
//! plain HTTP, API calls to the peer's API listener, as before.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::TlsContext;
use crate::control::types::NodeAddr;

/// The connector every node-to-node client uses (plain `http://` URLs
/// pass through it unencrypted).
pub type PeerConnector = HttpsConnector<HttpConnector>;

/// A node's way of calling other nodes.
#[derive(Clone)]
pub struct PeerHttp {
    tls: Option<Arc<TlsContext>>,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for PeerHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHttp")
            .field("secure", &self.tls.is_some())
            .finish()
    }
}

impl Default for PeerHttp {
    fn default() -> Self {
        PeerHttp::insecure()
    }
}

impl PeerHttp {
    /// Plain HTTP (an insecure node).
    pub fn insecure() -> Self {
        let config = rustls::ClientConfig::builder_with_provider(super::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        PeerHttp {
            tls: None,
            config: Arc::new(config),
        }
    }

    /// Mutual TLS with `ctx`'s node certificate.
    pub fn secure(ctx: Arc<TlsContext>) -> Self {
        PeerHttp {
            config: ctx.peer_client_config(&[]),
            tls: Some(ctx),
        }
    }

    /// `secure` when `ctx` is given, else `insecure`.
    pub fn of(ctx: Option<Arc<TlsContext>>) -> Self {
        ctx.map_or_else(PeerHttp::insecure, PeerHttp::secure)
    }

    pub fn is_secure(&self) -> bool {
        self.tls.is_some()
    }

    /// The TLS context, on a secure node.
    pub fn tls(&self) -> Option<&Arc<TlsContext>> {
        self.tls.as_ref()
    }

    /// A pooled client: connects within `connect_timeout`, keeps idle
    /// connections `idle` long, at most `max_idle` per peer.
    pub fn client<B>(
        &self,
        connect_timeout: Duration,
        idle: Duration,
        max_idle: usize,
    ) -> Client<PeerConnector, B>
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
    {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.config).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(idle)
            .pool_max_idle_per_host(max_idle)
            .build(connector)
    }

    /// `scheme://addr` for `addr` (`host:port`).
    pub fn base(&self, addr: &str) -> String {
        if self.is_secure() {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        }
    }

    /// Where this node calls `node`'s admin API routes: its Raft RPC
    /// listener over mutual TLS, or its API listener when insecure.
    pub fn api_base(&self, node: &NodeAddr) -> String {
        if self.is_secure() {
            self.base(&node.raft_addr)
        } else {
            self.base(&node.api_addr)
        }
    }
}

/// A client for operators (topoctl, `topod dev`, `topod healthcheck`):
/// HTTPS trusting `roots` with the standard WebPKI name check (a node
/// certificate names `localhost`, `127.0.0.1`, `::1` and the hosts given to
/// `topod certs issue --host`), no client certificate; plain HTTP works
/// through it too.
pub fn operator_client<B>(
    roots: Option<rustls::RootCertStore>,
    connect_timeout: Duration,
) -> Client<PeerConnector, B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let config = rustls::ClientConfig::builder_with_provider(super::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots.unwrap_or_else(rustls::RootCertStore::empty))
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(2)
        .build(connector)
}

/// The trust roots of the CA file at `path`, or why not.
pub fn roots_from_file(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    super::tls::roots_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}
