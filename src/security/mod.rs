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
