//! Why a check or a phase failed, as values: [`CheckFailure`] (a prepare,
//! verify or health check that did not pass) and [`FormGap`] (what an
//! overlay still lacks to count as formed). They become text only when a
//! report or a log line is written (their `Display`).

use std::fmt;
use std::time::Duration;

use crate::model::{NodeId, Topology};

/// What an overlay lacks to count as formed (see `Instance::formed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormGap {
    /// Linked to `have` of the `want` members of `of`; `missing` are not.
    Missing {
        of: Wanted,
        have: usize,
        want: usize,
        missing: Vec<NodeId>,
    },
    /// A client linked to `have` of the `want` servers it should.
    ClientServers {
        have: usize,
        want: usize,
        servers: Vec<NodeId>,
        links: Vec<NodeId>,
    },
    /// A HyParView active view (of this size) with no live peer yet.
    EmptyActiveView { size: u32 },
    /// Formed, but a round trip over one of its links is above the limit.
    SlowRoundTrip {
        peer: NodeId,
        rtt: Duration,
        limit: Duration,
    },
}

/// Whose links [`FormGap::Missing`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    LiveMembers,
    LiveServers,
}

impl fmt::Display for FormGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormGap::Missing {
                of,
                have,
                want,
                missing,
            } => {
                let of = match of {
                    Wanted::LiveMembers => "live members",
                    Wanted::LiveServers => "live servers",
                };
                write!(f, "linked to {have}/{want} {of}: missing {missing:?}")
            }
            FormGap::ClientServers {
                have,
                want,
                servers,
                links,
            } => write!(
                f,
                "client linked to {have}/{want} servers (live servers {servers:?}, links {links:?})"
            ),
            FormGap::EmptyActiveView { size } => {
                write!(f, "active view (size {size}) holds no live peer yet")
            }
            FormGap::SlowRoundTrip { peer, rtt, limit } => write!(
                f,
                "round trip to node {peer} is {rtt:.1?}, above the {limit:?} threshold"
            ),
        }
    }
}

/// What superseded a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupersededBy {
    Verify,
    Prepare(u64),
}

/// Why a prepare, verify or health check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckFailure {
    /// The overlay did not form before the formation deadline.
    #[error("{topology} overlay (instance {instance}) did not form within {after:.1?}: {gap}")]
    NotFormed {
        topology: Topology,
        instance: u64,
        after: Duration,
        gap: FormGap,
    },
    /// Probes over the overlay did not reach every expected live member
    /// before the verify deadline.
    #[error("probe over {topology} (instance {instance}) reached {reached}/{total} members within {after:.1?}: missing {missing:?}")]
    ProbeMissed {
        topology: Topology,
        instance: u64,
        reached: usize,
        total: usize,
        missing: Vec<NodeId>,
        after: Duration,
    },
    /// This node lost most of the members it expected during the check:
    /// it is the one cut off.
    #[error("lost contact with {lost:?} of the {of} other members during the check")]
    LostContact { lost: Vec<NodeId>, of: usize },
    /// A newer check took its place.
    #[error("superseded by {0}")]
    Superseded(SupersededDisplay),
    /// The overlay under check was torn down.
    #[error("overlay instance {instance} was torn down")]
    TornDown { instance: u64 },
}

/// [`SupersededBy`] as the text of [`CheckFailure::Superseded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupersededDisplay(pub SupersededBy);

impl fmt::Display for SupersededDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SupersededBy::Verify => write!(f, "a verify"),
            SupersededBy::Prepare(id) => write!(f, "the prepare of transition {id}"),
        }
    }
}

impl CheckFailure {
    pub fn superseded(by: SupersededBy) -> Self {
        CheckFailure::Superseded(SupersededDisplay(by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_the_reports_always_said() {
        let f = CheckFailure::ProbeMissed {
            topology: Topology::HyParView,
            instance: 7,
            reached: 3,
            total: 5,
            missing: vec![4, 5],
            after: Duration::from_millis(2000),
        };
        assert_eq!(
            f.to_string(),
            "probe over hyparview (instance 7) reached 3/5 members within 2.0s: missing [4, 5]"
        );
        let f = CheckFailure::superseded(SupersededBy::Prepare(9));
        assert_eq!(f.to_string(), "superseded by the prepare of transition 9");
        let gap = FormGap::Missing {
            of: Wanted::LiveMembers,
            have: 1,
            want: 2,
            missing: vec![3],
        };
        assert_eq!(gap.to_string(), "linked to 1/2 live members: missing [3]");
    }
}
