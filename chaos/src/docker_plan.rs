//! What the Docker backend decides before it runs a command, as pure
//! functions: the cluster's shape from the Compose file's service names,
//! the shared node config, the Compose override file, the project's
//! subnet, which nemeses `docker network disconnect` can express, and
//! which containers a partition disconnects.

use std::collections::{BTreeMap, BTreeSet};

use crate::nemesis::{Kind, NemesisList};
use crate::NodeId;

/// Every Compose project the harness starts is named this plus the
/// harness's pid (`cleanup --backend docker` finds them by it).
pub const PROJECT_PREFIX: &str = "topodchaos";

/// The nemeses the Docker backend runs.
pub const SUPPORTED: [Kind; 6] = [
    Kind::Isolate,
    Kind::IsolateLeader,
    Kind::Kill,
    Kind::Pause,
    Kind::Delay,
    Kind::Loss,
];

/// `--nemesis` of a docker run that names none: every supported kind.
pub const DEFAULT_NEMESES: &str = "isolate,isolate-leader,kill,pause,delay,loss,after-switch";

/// The Compose cluster: node id → service name, and how many of the
/// nodes (`1..=voters`) are the initial voters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub services: BTreeMap<NodeId, String>,
    pub voters: usize,
}

impl Shape {
    pub fn nodes(&self) -> usize {
        self.services.len()
    }
}

/// Reads the shape from `docker-compose config --services`: services
/// are named `voter{N}` or `learner{N}` (N the node id, as in
/// deploy/compose/docker-compose.yml); ids are 1..=n and the voters come
/// first, as the harness numbers them.
pub fn parse_services(text: &str) -> Result<Shape, String> {
    let mut services = BTreeMap::new();
    let mut voters = BTreeSet::new();
    for name in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (role, num) = if let Some(n) = name.strip_prefix("voter") {
            (true, n)
        } else if let Some(n) = name.strip_prefix("learner") {
            (false, n)
        } else {
            return Err(format!(
                "service `{name}`: expected voter<N> or learner<N> (N the node id)"
            ));
        };
        let id: NodeId = num
            .parse()
            .map_err(|_| format!("service `{name}`: `{num}` is not a node id"))?;
        if services.insert(id, name.to_string()).is_some() {
            return Err(format!("node id {id} is used by two services"));
        }
        if role {
            voters.insert(id);
        }
    }
    let n = services.len() as NodeId;
    if n < 2 {
        return Err(format!("{n} node service(s): at least 2 are needed"));
    }
    if services.keys().copied().ne(1..=n) {
        let ids: Vec<NodeId> = services.keys().copied().collect();
        return Err(format!("node ids must be 1..={n}, found {ids:?}"));
    }
    let v = voters.len() as NodeId;
    if v == 0 || voters.iter().copied().ne(1..=v) {
        return Err(format!(
            "the voters must be nodes 1..=k (the learners after them), found voters {voters:?}"
        ));
    }
    Ok(Shape {
        services,
        voters: voters.len(),
    })
}

/// The config every container mounts: the Compose directory's
/// `topod.toml` with the chaos routes on (`transport.chaos`, which the
/// workload's broadcasts and the delay/loss nemeses need) and the
/// scenario's `[node]` table merged over it. Ids and addresses come from
/// each service's `TOPOD_*` variables, which win over the file.
pub fn node_config(base: &str, extra: &toml::Table) -> Result<String, String> {
    let mut t: toml::Table = toml::from_str(base).map_err(|e| format!("topod.toml: {e}"))?;
    crate::cluster::merge(&mut t, extra);
    match t
        .entry("transport")
        .or_insert_with(|| toml::Table::new().into())
    {
        toml::Value::Table(tr) => {
            tr.insert("chaos".into(), true.into());
        }
        _ => return Err("`transport` must be a table".into()),
    }
    toml::to_string(&t).map_err(|e| format!("encoding the node config: {e}"))
}

/// The Compose override the harness adds: every service mounts `config`
/// instead of the shipped topod.toml and logs without colour (the log
/// counts read plain text).
pub fn override_yaml(shape: &Shape, config: &str) -> String {
    let mut y = String::from("version: \"2.4\"\nservices:\n");
    for name in shape.services.values() {
        y.push_str(&format!(
            "  {name}:\n    environment:\n      NO_COLOR: \"1\"\n    volumes:\n      - \"{config}:/etc/topod/topod.toml:ro\"\n"
        ));
    }
    y
}

/// The first three bytes of the project's /24, by pid and attempt:
/// 172.30.20.0–172.30.219.0, apart from deploy/compose's own default
/// (172.28.13) and its test (172.29.x).
pub fn subnet_prefix(pid: u32, attempt: u32) -> String {
    format!("172.30.{}", (pid + attempt * 37) % 200 + 20)
}

/// The pid in a project name the harness made (`topodchaos1234` → 1234).
pub fn project_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PROJECT_PREFIX)?.parse().ok()
}

/// Refuses, by name, the nemeses `docker network disconnect` cannot
/// express: it cuts a container from every peer at once, so only whole
/// nodes can be isolated.
pub fn check_nemeses(list: &NemesisList) -> Result<(), String> {
    let refused: Vec<&str> = list
        .kinds
        .iter()
        .filter(|k| !SUPPORTED.contains(k))
        .map(|k| k.name())
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let ok: Vec<&str> = SUPPORTED.iter().map(|k| k.name()).collect();
    Err(format!(
        "the docker backend cannot run nemesis {}: `docker network disconnect` cuts a \
         container from every peer, so only whole nodes can be isolated (supported: {}, \
         after-switch; `all` includes the others, list the kinds instead)",
        refused.join(", "),
        ok.join(", ")
    ))
}

/// The nodes to disconnect for a partition given as who drops whom:
/// the isolated nodes (cut from every other node) when that is all the
/// partition is; an error naming a pair otherwise.
pub fn isolated(
    blocked: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    nodes: &[NodeId],
) -> Result<BTreeSet<NodeId>, String> {
    let none = BTreeSet::new();
    let cut = |x: NodeId| blocked.get(&x).unwrap_or(&none);
    let alone: BTreeSet<NodeId> = nodes
        .iter()
        .copied()
        .filter(|&x| nodes.iter().all(|&y| y == x || cut(x).contains(&y)))
        .collect();
    for &x in nodes {
        for &y in nodes.iter().filter(|&&y| y > x) {
            let want = alone.contains(&x) || alone.contains(&y);
            let is = cut(x).contains(&y) || cut(y).contains(&x);
            if want != is {
                return Err(format!(
                    "nodes {x} and {y} would {} each other, which disconnecting whole nodes \
                     cannot give",
                    if is { "not see" } else { "see" }
                ));
            }
        }
    }
    Ok(alone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::{blocked, Fault, Target};

    const NODES: [NodeId; 5] = [1, 2, 3, 4, 5];

    fn shape() -> Shape {
        parse_services("voter1\nvoter2\nvoter3\nlearner4\nlearner5\n").expect("shape")
    }

    #[test]
    fn the_shipped_compose_services_give_three_voters_and_two_learners() {
        let s = shape();
        assert_eq!(s.nodes(), 5);
        assert_eq!(s.voters, 3);
        assert_eq!(s.services[&4], "learner4");
        // `config --services` lists them in any order.
        assert_eq!(
            parse_services("learner5\nvoter2\nlearner4\nvoter1\nvoter3").expect("shape"),
            s
        );
    }

    #[test]
    fn services_the_harness_cannot_number_are_refused_by_name() {
        let e = parse_services("voter1\nvoter2\nprometheus").expect_err("unknown");
        assert!(e.contains("prometheus"), "{e}");
        let e = parse_services("voter1\nvoter3").expect_err("gap");
        assert!(e.contains("1..=2"), "{e}");
        let e = parse_services("voter1\nlearner2\nvoter3").expect_err("voters first");
        assert!(e.contains("voters"), "{e}");
        let e = parse_services("voter1\nlearner1").expect_err("twice");
        assert!(e.contains("two services"), "{e}");
        assert!(parse_services("voterX\nvoter1").is_err());
    }

    #[test]
    fn the_node_config_keeps_the_base_turns_chaos_on_and_takes_the_scenario() {
        let base = "cluster_id = \"compose\"\n[raft]\nheartbeat_ms = 100\n\
                    election_timeout_max_ms = 1000\n[transport]\nchaos = false\n";
        let extra: toml::Table =
            toml::from_str("[raft]\nheartbeat_ms = 50\n[transport]\nchaos = false").unwrap();
        let t: toml::Table = toml::from_str(&node_config(base, &extra).unwrap()).unwrap();
        assert_eq!(t["cluster_id"].as_str(), Some("compose"));
        assert_eq!(t["raft"]["heartbeat_ms"].as_integer(), Some(50));
        assert_eq!(
            t["raft"]["election_timeout_max_ms"].as_integer(),
            Some(1000)
        );
        assert_eq!(t["transport"]["chaos"].as_bool(), Some(true));
        let e = node_config("raft = [", &toml::Table::new()).expect_err("bad toml");
        assert!(e.contains("topod.toml"), "{e}");
    }

    #[test]
    fn the_override_mounts_the_generated_config_on_every_service() {
        let y = override_yaml(&shape(), "/tmp/x/topod.toml");
        for s in ["voter1", "voter3", "learner5"] {
            assert!(y.contains(&format!("\n  {s}:\n")), "{y}");
        }
        assert_eq!(
            y.matches("\"/tmp/x/topod.toml:/etc/topod/topod.toml:ro\"")
                .count(),
            5
        );
        assert_eq!(y.matches("NO_COLOR: \"1\"").count(), 5);
    }

    #[test]
    fn subnets_stay_in_the_harness_range_and_projects_name_their_pid() {
        for pid in [0, 1, 199, 200, 4_000_000] {
            for attempt in 0..5 {
                let p = subnet_prefix(pid, attempt);
                let third: u32 = p.rsplit('.').next().unwrap().parse().unwrap();
                assert!(
                    p.starts_with("172.30.") && (20..220).contains(&third),
                    "{p}"
                );
            }
            assert_ne!(subnet_prefix(pid, 0), subnet_prefix(pid, 1));
        }
        assert_eq!(project_pid("topodchaos4242"), Some(4242));
        assert_eq!(project_pid("topodtest4242"), None);
        assert_eq!(project_pid("topodchaos"), None);
    }

    #[test]
    fn partial_partitions_are_refused_by_name() {
        let ok: NemesisList = DEFAULT_NEMESES.parse().unwrap();
        assert_eq!(ok.kinds, SUPPORTED.to_vec());
        assert!(ok.after_switch);
        assert!(check_nemeses(&ok).is_ok());
        let e = check_nemeses(&"kill,ring,split".parse().unwrap()).expect_err("ring");
        assert!(
            e.starts_with("the docker backend cannot run nemesis split, ring:"),
            "only the refused kinds are named as refused: {e}"
        );
        let e = check_nemeses(&"all".parse().unwrap()).expect_err("all");
        assert!(e.contains("split, bridge, ring"), "{e}");
    }

    #[test]
    fn an_isolation_disconnects_that_node_and_nothing_else_is_expressible() {
        let iso = blocked(&Fault::Isolate(Target::Node(2)), &NODES, 1).unwrap();
        assert_eq!(isolated(&iso, &NODES).unwrap(), BTreeSet::from([2]));
        let lead = blocked(&Fault::Isolate(Target::Leader), &NODES, 4).unwrap();
        assert_eq!(isolated(&lead, &NODES).unwrap(), BTreeSet::from([4]));
        assert!(isolated(&BTreeMap::new(), &NODES).unwrap().is_empty());
        let split = Fault::Split {
            minority: vec![1, 5],
        };
        let e = isolated(&blocked(&split, &NODES, 1).unwrap(), &NODES).expect_err("split");
        assert!(e.contains("nodes 1 and 2 would not see"), "{e}");
        let ring = Fault::Ring {
            order: vec![1, 2, 3, 4, 5],
        };
        assert!(isolated(&blocked(&ring, &NODES, 1).unwrap(), &NODES).is_err());
    }
}
