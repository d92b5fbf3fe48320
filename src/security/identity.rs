//! What a certificate says about its holder: the cluster and the node id
//! in its name, and when it expires.
//!
//! A node certificate carries two subject alternative names: the DNS name
//! [`NODE_DNS_NAME`] (the same in every node certificate, so that a peer
//! checks the chain and the name with the standard WebPKI rules whatever
//! address it dialed) and the URI `topod://<cluster id>/node/<node id>`,
//! which is what a node is known by.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::extensions::GeneralName;

use crate::model::NodeId;

/// The DNS name every node certificate carries.
pub const NODE_DNS_NAME: &str = "topod-node";

/// Scheme of the URI name that carries the cluster id and node id.
const URI_PREFIX: &str = "topod://";

/// The URI name of node `node` of `cluster`.
pub fn node_uri(cluster: &str, node: NodeId) -> String {
    format!("{URI_PREFIX}{cluster}/node/{node}")
}

/// Why a certificate is not a node certificate of the expected cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("not a parsable X.509 certificate: {0}")]
    Parse(String),
    #[error("the certificate names no topod node (no subject alternative name `{URI_PREFIX}<cluster>/node/<id>`)")]
    NoNodeName,
    #[error("the certificate's node name {0:?} is malformed")]
    BadNodeName(String),
    #[error("the certificate belongs to cluster {theirs:?}, not {ours:?}")]
    OtherCluster { ours: String, theirs: String },
}

/// The holder of a node certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    pub cluster_id: String,
    pub node_id: NodeId,
    /// The end of the certificate's validity.
    pub not_after: SystemTime,
}

impl CertIdentity {
    /// Reads the identity of a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertIdentity, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::Parse(e.to_string()))?;
        let not_after = cert.validity().not_after.timestamp();
        let not_after = UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64);
        let san = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::Parse(e.to_string()))?
            .ok_or(IdentityError::NoNodeName)?;
        let uri = san
            .value
            .general_names
            .iter()
            .find_map(|n| match n {
                GeneralName::URI(u) if u.starts_with(URI_PREFIX) => Some(*u),
                _ => None,
            })
            .ok_or(IdentityError::NoNodeName)?;
        let (cluster_id, node_id) = parse_node_uri(uri)?;
        Ok(CertIdentity {
            cluster_id,
            node_id,
            not_after,
        })
    }

    /// The identity, if it belongs to `cluster`.
    pub fn of_cluster(der: &[u8], cluster: &str) -> Result<CertIdentity, IdentityError> {
        let id = CertIdentity::from_der(der)?;
        if id.cluster_id != cluster {
            return Err(IdentityError::OtherCluster {
                ours: cluster.to_string(),
                theirs: id.cluster_id,
            });
        }
        Ok(id)
    }

    /// Time left before the certificate expires (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.not_after.duration_since(now).unwrap_or_default()
    }
}

/// Seconds since the Unix epoch of `t` (0 before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn parse_node_uri(uri: &str) -> Result<(String, NodeId), IdentityError> {
    let bad = || IdentityError::BadNodeName(uri.to_string());
    let rest = uri.strip_prefix(URI_PREFIX).ok_or_else(bad)?;
    let (cluster, id) = rest.split_once("/node/").ok_or_else(bad)?;
    if cluster.is_empty() || cluster.contains('/') {
        return Err(bad());
    }
    let id: NodeId = id.parse().map_err(|_| bad())?;
    if id == 0 {
        return Err(bad());
    }
    Ok((cluster.to_string(), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_uris_round_trip_and_bad_ones_are_named() {
        let uri = node_uri("prod-1", 42);
        assert_eq!(parse_node_uri(&uri), Ok(("prod-1".into(), 42)));
        for bad in [
            "topod://prod/node/",
            "topod://prod/node/x",
            "topod://prod/node/0",
            "topod:///node/3",
            "topod://a/b/node/3",
            "topod://prod/3",
        ] {
            assert_eq!(
                parse_node_uri(bad),
                Err(IdentityError::BadNodeName(bad.into())),
                "{bad}"
            );
        }
    }
}
