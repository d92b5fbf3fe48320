//! Which log envelope each peer reads, as it announced on its last Raft RPC
//! answer ([`LOG_VERSION_HEADER`]). The leader writes an envelope newer
//! than the oldest one a member reads only when every member has said it
//! reads it; a peer that answers without the header is an older build
//! (version 3, the last envelope written before the header existed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::model::NodeId;

/// Header on every Raft RPC answer: the newest envelope the answering
/// build reads ([`crate::model::LOG_VERSION`]).
pub const LOG_VERSION_HEADER: &str = "x-topod-log-version";

/// What an answer without [`LOG_VERSION_HEADER`] means: a build from
/// before the header, which reads envelopes up to `V3`.
pub const UNANNOUNCED_VERSION: u32 = 3;

/// Shared, per-peer record of announced log versions.
#[derive(Debug, Clone, Default)]
pub struct LogVersions {
    seen: Arc<Mutex<BTreeMap<NodeId, u32>>>,
}

impl LogVersions {
    /// Records what `peer` announced (`None`: no header).
    pub fn record(&self, peer: NodeId, announced: Option<u32>) {
        let v = announced.unwrap_or(UNANNOUNCED_VERSION);
        self.lock().insert(peer, v);
    }

    /// Whether every member but `me` has announced at least `version`.
    pub fn all_read(&self, members: &BTreeSet<NodeId>, me: NodeId, version: u32) -> bool {
        all_read(&self.lock(), members, me, version)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, u32>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The rule: a member never heard from (since this node started) might be
/// an older build, so it counts as not reading `version`.
pub fn all_read(
    seen: &BTreeMap<NodeId, u32>,
    members: &BTreeSet<NodeId>,
    me: NodeId,
    version: u32,
) -> bool {
    members
        .iter()
        .filter(|m| **m != me)
        .all(|m| seen.get(m).is_some_and(|v| *v >= version))
}

/// Parses the header's value; anything but a number is "unannounced".
pub fn parse(value: Option<&hyper::header::HeaderValue>) -> Option<u32> {
    value?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_member_must_have_announced_the_version() {
        let v = LogVersions::default();
        let members = BTreeSet::from([1, 2, 3]);
        assert!(!v.all_read(&members, 1, 4), "nobody heard from yet");
        v.record(2, Some(4));
        assert!(!v.all_read(&members, 1, 4), "node 3 unheard");
        v.record(3, None);
        assert!(!v.all_read(&members, 1, 4), "node 3 is an older build");
        v.record(3, Some(5));
        assert!(v.all_read(&members, 1, 4));
        assert!(!v.all_read(&members, 1, 5));
        // A member that restarts on an older build says so on its next answer.
        v.record(2, None);
        assert!(!v.all_read(&members, 1, 4));
        // A single-node cluster has nobody to wait for.
        assert!(v.all_read(&BTreeSet::from([1]), 1, 4));
    }

    #[test]
    fn header_values_parse_or_count_as_unannounced() {
        use hyper::header::HeaderValue;
        assert_eq!(parse(Some(&HeaderValue::from_static("4"))), Some(4));
        assert_eq!(parse(Some(&HeaderValue::from_static("four"))), None);
        assert_eq!(parse(None), None);
    }
}
