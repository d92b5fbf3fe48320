//! Security: who a request or a connection comes from.
//!
//! Nodes prove who they are with certificates of the cluster CA (mutual
//! TLS on the Raft RPC listener, the overlay transport and, when a node
//! presents one, the admin API); operators with bearer tokens that carry a
//! role. This module owns the types the listeners attach to what they
//! accept, and token secrets ([`token`]: generation, token files).

pub mod token;

use crate::model::NodeId;

/// The node a request came from, proved by its client certificate (the node
/// id in the certificate's name). Listeners insert it as a request
/// extension; it is absent for a request without a node certificate.
///
/// The admin API treats a request with `PeerNode` as a cluster node,
/// allowed everything an `admin` token is (forwarded writes, phase
/// reports, summary gathering, joins), except a phase report for another
/// node (`api::auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerNode(pub NodeId);

pub mod certs;
pub mod client;
pub mod identity;
pub mod listener;
pub mod reload;
pub mod tls;

pub use client::PeerHttp;
pub use tls::{TlsContext, TlsError};

/// The TLS context `config` asks for: `None` on an insecure node (said
/// loudly in the log), else the loaded material, or why it cannot be used.
pub fn context_for(
    config: &crate::config::NodeConfig,
) -> Result<Option<std::sync::Arc<TlsContext>>, TlsError> {
    if config.security.insecure {
        tracing::warn!(
            node = config.node_id,
            "SECURITY IS OFF (security.insecure = true): no TLS, no tokens; anyone who reaches \
             this node's ports can change the cluster"
        );
        return Ok(None);
    }
    let ctx = TlsContext::load(&config.security, &config.cluster_id, config.node_id)?;
    let id = ctx.identity();
    tracing::info!(
        node = config.node_id,
        expires_unix = identity::unix_secs(id.not_after),
        "mutual TLS on: node certificate loaded"
    );
    Ok(Some(ctx))
}
