//! Workload profiles (`optimize_for_workload`): the built-in ones and the
//! policy's user profiles, each mapping cluster size ranges to a preferred
//! topology and overlay parameters.
//!
//! The built-ins and why each picks what it picks (sizes are members,
//! voters and learners):
//!
//! | profile | up to 16 | up to 32 | up to 1000 | beyond |
//! |---|---|---|---|---|
//! | `low_latency` | full_mesh | hyparview (active 8) | hyparview (active 8) | client_server |
//! | `high_throughput` | full_mesh | full_mesh | pub_sub (IHAVE batch 20 ms) | pub_sub |
//! | `event_driven` | pub_sub | pub_sub | pub_sub | pub_sub |
//! | `batch_processing` | full_mesh | client_server | client_server | client_server |
//! | `realtime_gaming` | full_mesh | full_mesh | hyparview (active 8) to 500, then client_server | client_server |
//!
//! See each builder's doc for the reasoning. User profiles may not take a
//! built-in name (the policy refuses them), so [`lookup`] looks in both.

use crate::model::policy::ProfileRange;
use crate::model::{
    ClientServerConfig, HyParViewConfig, OverlayConfig, PlumtreeConfig, Policy, Topology,
    WorkloadProfile,
};

/// A profile name that is neither built in nor in the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload `{name}`; known: {}", known.join(", "))]
pub struct UnknownWorkload {
    pub name: String,
    /// Every known profile name, built-in first.
    pub known: Vec<String>,
}

/// A profile with no range for the cluster's size (only an unchecked
/// profile can be one: [`WorkloadProfile::check`] requires an unbounded
/// last range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workload profile has no range covering {nodes} nodes")]
pub struct NoRange {
    pub nodes: u32,
}

/// What a profile prefers at a cluster's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub topology: Topology,
    /// The overlay parameters the profile wants (`None`: the leader's
    /// configured defaults for `topology`).
    pub config: Option<OverlayConfig>,
    /// Index of the range that matched.
    pub range: usize,
    /// In words, for the optimize answer: `"5 nodes <= 16: full_mesh"`.
    pub why: String,
}

/// The built-in profiles, by name, in [`crate::model::policy::BUILTIN_PROFILES`]
/// order.
pub fn builtin() -> Vec<(&'static str, WorkloadProfile)> {
    vec![
        ("low_latency", low_latency()),
        ("high_throughput", high_throughput()),
        ("event_driven", event_driven()),
        ("batch_processing", batch_processing()),
        ("realtime_gaming", realtime_gaming()),
    ]
}

/// The profile called `name`: a built-in one or a user profile of
/// `policy`. The error lists every known name, built-in first.
pub fn lookup(name: &str, policy: &Policy) -> Result<WorkloadProfile, UnknownWorkload> {
    let builtins = builtin();
    if let Some((_, p)) = builtins.iter().find(|(n, _)| *n == name) {
        return Ok(p.clone());
    }
    if let Some(p) = policy.profiles.get(name) {
        return Ok(p.clone());
    }
    let mut known: Vec<String> = builtins.iter().map(|(n, _)| n.to_string()).collect();
    known.extend(policy.profiles.keys().cloned());
    Err(UnknownWorkload {
        name: name.to_string(),
        known,
    })
}

/// What `profile` prefers for a cluster of `node_count` members.
pub fn choose(profile: &WorkloadProfile, node_count: u32) -> Result<Choice, NoRange> {
    let (range, r) = profile
        .ranges
        .iter()
        .enumerate()
        .find(|(_, r)| r.max_nodes.is_none_or(|m| node_count <= m))
        .ok_or(NoRange { nodes: node_count })?;
    let bound = match (r.max_nodes, range.checked_sub(1)) {
        (Some(m), _) => format!("{node_count} nodes <= {m}"),
        (None, Some(prev)) => match profile.ranges[prev].max_nodes {
            Some(p) => format!("{node_count} nodes > {p}"),
            None => format!("{node_count} nodes"),
        },
        (None, None) => format!("{node_count} nodes, any size"),
    };
    let params = if r.config.is_some() {
        " with the profile's parameters"
    } else {
        ""
    };
    Ok(Choice {
        topology: r.topology,
        config: r.config.clone(),
        range,
        why: format!("{bound}: {}{params}", r.topology),
    })
}

fn range(
    max_nodes: Option<u32>,
    topology: Topology,
    config: Option<OverlayConfig>,
) -> ProfileRange {
    ProfileRange {
        max_nodes,
        topology,
        config,
    }
}

/// HyParView with an active view of 8 and a passive view of 48 (the
/// paper's 6× ratio): with degree d a flood reaches N nodes in about
/// log_d(N) hops, so 8 instead of 5 cuts the hops of 1000 nodes from about
/// 4.3 to 3.3 at the cost of three more links per node.
fn wide_hyparview() -> HyParViewConfig {
    HyParViewConfig {
        active_view: 8,
        passive_view: 48,
        ..HyParViewConfig::default()
    }
}

/// Latency → fewer hops. Up to 16 members a full mesh is one hop to
/// everyone; up to 1000 a HyParView with a wider active view
/// ([`wide_hyparview`]) keeps the flood to a few hops; beyond, the
/// client-server overlay bounds every path at three hops (client, server,
/// server, client) whatever the size.
fn low_latency() -> WorkloadProfile {
    WorkloadProfile {
        description: "lowest message latency: fewest hops at every size".into(),
        ranges: vec![
            range(Some(16), Topology::FullMesh, None),
            range(
                Some(1000),
                Topology::HyParView,
                Some(OverlayConfig::HyParView(wide_hyparview())),
            ),
            range(None, Topology::ClientServer, None),
        ],
    }
}

/// Throughput → fewer duplicates. A full mesh delivers each broadcast once
/// per node with no relaying, which wins while the origin's N−1 sends are
/// cheap (up to 32); beyond, Plumtree's eager tree sends each payload once
/// per node too, where HyParView flooding sends it about active-view
/// times. IHAVEs are batched for 20 ms instead of 5 to cut lazy-push
/// frames under a high message rate (the extra repair latency does not
/// matter to throughput).
fn high_throughput() -> WorkloadProfile {
    let plumtree = PlumtreeConfig {
        ihave_batch_ms: 20,
        ..PlumtreeConfig::default()
    };
    WorkloadProfile {
        description: "highest broadcast throughput: fewest duplicate payloads".into(),
        ranges: vec![
            range(Some(32), Topology::FullMesh, None),
            range(
                None,
                Topology::PubSub,
                Some(OverlayConfig::PubSub(plumtree)),
            ),
        ],
    }
}

/// Event-driven → pub_sub at every size: events are broadcasts, and the
/// Plumtree tree is built for exactly that (rule 4's target too). The
/// defaults of the Plumtree paper fit; no parameters of its own.
fn event_driven() -> WorkloadProfile {
    WorkloadProfile {
        description: "event streams: broadcasts dominate, Plumtree tree".into(),
        ranges: vec![range(None, Topology::PubSub, None)],
    }
}

/// Batch → client-server at size. Batch jobs are coordinator and worker
/// traffic; their latency does not matter. While small (up to 16) a full
/// mesh costs little and needs no servers; beyond, workers link only to
/// servers (k = 3 of them, one more than the default, so a server
/// restart during a long job leaves each worker two paths).
fn batch_processing() -> WorkloadProfile {
    let cs = ClientServerConfig {
        links_per_client: 3,
        ..ClientServerConfig::default()
    };
    WorkloadProfile {
        description: "batch jobs: coordinators (servers) and workers (clients)".into(),
        ranges: vec![
            range(Some(16), Topology::FullMesh, None),
            range(
                None,
                Topology::ClientServer,
                Some(OverlayConfig::ClientServer(cs)),
            ),
        ],
    }
}

/// Gaming → full mesh while small: a game session of up to 32 players
/// wants one hop to every other player. Up to 500 a wide HyParView
/// ([`wide_hyparview`]) keeps hops few; beyond, authoritative servers
/// (client-server) bound every path, as game servers do.
fn realtime_gaming() -> WorkloadProfile {
    WorkloadProfile {
        description: "realtime game sessions: one hop while small, bounded hops at size".into(),
        ranges: vec![
            range(Some(32), Topology::FullMesh, None),
            range(
                Some(500),
                Topology::HyParView,
                Some(OverlayConfig::HyParView(wide_hyparview())),
            ),
            range(None, Topology::ClientServer, None),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::BUILTIN_PROFILES;

    fn pick(name: &str, nodes: u32) -> Topology {
        let p = lookup(name, &Policy::default()).unwrap();
        choose(&p, nodes).unwrap().topology
    }

    #[test]
    fn the_builtins_are_the_policys_reserved_names_and_all_check() {
        let names: Vec<&str> = builtin().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, BUILTIN_PROFILES);
        for (name, p) in builtin() {
            p.check(&format!("profiles.{name}"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!p.description.is_empty(), "{name}");
        }
    }

    #[test]
    fn each_builtin_picks_its_documented_topology() {
        use Topology::*;
        let table: [(&str, [(u32, Topology); 4]); 5] = [
            (
                "low_latency",
                [
                    (3, FullMesh),
                    (16, FullMesh),
                    (17, HyParView),
                    (5000, ClientServer),
                ],
            ),
            (
                "high_throughput",
                [
                    (5, FullMesh),
                    (32, FullMesh),
                    (33, PubSub),
                    (10_000, PubSub),
                ],
            ),
            (
                "event_driven",
                [(1, PubSub), (10, PubSub), (1000, PubSub), (100_000, PubSub)],
            ),
            (
                "batch_processing",
                [
                    (2, FullMesh),
                    (16, FullMesh),
                    (17, ClientServer),
                    (2000, ClientServer),
                ],
            ),
            (
                "realtime_gaming",
                [
                    (8, FullMesh),
                    (32, FullMesh),
                    (500, HyParView),
                    (501, ClientServer),
                ],
            ),
        ];
        for (name, cases) in table {
            for (nodes, want) in cases {
                assert_eq!(pick(name, nodes), want, "{name} at {nodes} nodes");
            }
        }
    }

    #[test]
    fn parameters_follow_the_profile() {
        let p = lookup("low_latency", &Policy::default()).unwrap();
        let c = choose(&p, 100).unwrap();
        let Some(OverlayConfig::HyParView(h)) = c.config else {
            panic!("low_latency at 100 nodes wants hyparview parameters: {c:?}");
        };
        assert_eq!(h.active_view, 8);
        assert_eq!(
            c.why,
            "100 nodes <= 1000: hyparview with the profile's parameters"
        );
        let c = choose(&p, 2000).unwrap();
        assert_eq!(c.config, None);
        assert_eq!(c.why, "2000 nodes > 1000: client_server");
        assert_eq!(c.range, 2);
    }

    #[test]
    fn an_unknown_name_lists_every_known_profile() {
        let mut policy = Policy::default();
        policy.profiles.insert(
            "my_app".into(),
            WorkloadProfile {
                description: "mine".into(),
                ranges: vec![range(None, Topology::HyParView, None)],
            },
        );
        let e = lookup("nope", &policy).unwrap_err();
        let mut want: Vec<String> = BUILTIN_PROFILES.iter().map(|s| s.to_string()).collect();
        want.push("my_app".into());
        assert_eq!(e.known, want);
        assert_eq!(
            e.to_string(),
            "unknown workload `nope`; known: low_latency, high_throughput, event_driven, \
             batch_processing, realtime_gaming, my_app"
        );
        assert_eq!(pick_in(&policy, "my_app", 3), Topology::HyParView);
    }

    fn pick_in(policy: &Policy, name: &str, nodes: u32) -> Topology {
        choose(&lookup(name, policy).unwrap(), nodes)
            .unwrap()
            .topology
    }

    #[test]
    fn a_profile_without_a_covering_range_is_an_error() {
        let p = WorkloadProfile {
            description: "unchecked".into(),
            ranges: vec![range(Some(10), Topology::FullMesh, None)],
        };
        assert_eq!(choose(&p, 11), Err(NoRange { nodes: 11 }));
        assert_eq!(choose(&p, 10).unwrap().why, "10 nodes <= 10: full_mesh");
    }
}
