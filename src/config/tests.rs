//! Loading, env overrides, and errors that name the key.
//!
//! Each test that sets environment variables uses a prefix of its own: the
//! environment is shared by every test thread of the process.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;
use crate::model::{OverlayConfig, Topology};

const MINIMAL: &str = r#"
node_id = 1
cluster_id = "test-1"
api_addr = "127.0.0.1:0"
raft_addr = "127.0.0.1:0"
peer_addr = "127.0.0.1:0"
data_dir = "/tmp/topod-test"
"#;

/// Loads `MINIMAL` plus `extra` with no environment.
fn load(extra: &str) -> Result<NodeConfig, ConfigError> {
    NodeConfig::from_toml_str_with_env(&format!("{MINIMAL}\n{extra}"), "TOPOD_TEST_NO_ENV_")
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_example_config_loads_and_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files = Vec::new();
    toml_files(&root, &mut files);
    assert!(
        files.len() >= 9,
        "expected dev + 3 + 5 files, got {files:?}"
    );
    for file in &files {
        // Fragments (tables to copy into a node config) load merged into
        // a minimal one.
        if FRAGMENTS.iter().any(|f| file.ends_with(f)) {
            let text = std::fs::read_to_string(file).unwrap();
            load(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            continue;
        }
        let figment = NodeConfig::figment(Some(file), "TOPOD_TEST_NO_ENV_").unwrap();
        let config: NodeConfig = figment
            .extract()
            .map_err(ConfigError::from_figment)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

/// Example files that are tables to copy into a node config, not whole
/// configs.
const FRAGMENTS: [&str; 1] = ["config/rules.toml"];

fn rules_toml() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn config_rules_toml_documents_every_key_at_its_default() {
    let c = load(&rules_toml()).unwrap();
    assert_eq!(
        c.switch.initial_policy(&c.rules),
        crate::model::Policy::default()
    );
    assert_eq!(c.monitor, MonitorConfig::default());
    // Every key is written out, not left to the default.
    let whole = crate::model::PolicyUpdate::whole(&crate::model::Policy::default());
    assert_eq!(c.rules.thresholds, whole.thresholds);
    assert_eq!(c.rules.monitor_interval_ms, whole.monitor_interval_ms);
    assert_eq!(c.rules.hold_rounds, whole.hold_rounds);
    assert_eq!(c.rules.flap_window_ms, whole.flap_window_ms);
    let file: toml::Table = toml::from_str(&rules_toml()).unwrap();
    let monitor = file["monitor"].as_table().unwrap();
    let defaults = toml::Table::try_from(MonitorConfig::default()).unwrap();
    let keys = |t: &toml::Table| t.keys().cloned().collect::<BTreeSet<String>>();
    assert_eq!(keys(monitor), keys(&defaults));
    assert_eq!(c.app_metrics, super::AppMetricsConfig::default());
    assert_eq!(c.rules.disabled, whole.disabled_rules.unwrap());
    let app = file["app_metrics"].as_table().unwrap();
    let defaults = toml::Table::try_from(super::AppMetricsConfig::default()).unwrap();
    assert_eq!(keys(app), keys(&defaults));
}

#[test]
fn the_commented_custom_rule_in_config_rules_toml_is_valid() {
    let text = rules_toml();
    let mut lines: Vec<String> = Vec::new();
    let mut in_example = false;
    for line in text.lines() {
        if line == "# [[rules.custom]]" {
            in_example = true;
        } else if in_example && !(line.starts_with("# ") && line.contains(" = ")) {
            in_example = false;
        }
        match line.strip_prefix("# ") {
            Some(l) if in_example => lines.push(l.to_string()),
            _ => lines.push(line.to_string()),
        }
    }
    let c = load(&lines.join("\n")).unwrap();
    assert_eq!(c.rules.custom.len(), 1);
    let rule = &c.rules.custom[0];
    assert_eq!(rule.name, "checkout_slow");
    assert_eq!(rule.hold_rounds, Some(3));
    assert_eq!(rule.switch_to, crate::model::Topology::FullMesh);
    assert_eq!(rule.from.len(), 2);
}

#[test]
fn a_bad_threshold_in_config_names_its_key() {
    let bad = rules_toml().replace("min_connectivity = 0.9", "min_connectivity = 1.5");
    assert_ne!(
        bad,
        rules_toml(),
        "the file no longer sets min_connectivity"
    );
    let e = load(&bad).unwrap_err();
    assert_eq!(e.key(), "rules.thresholds.min_connectivity", "{e}");
    assert!(e.to_string().contains("1.5 is outside 0..=1"), "{e}");
    let e = load("[rules.thresholds]\nmax_hops = 0\n").unwrap_err();
    assert_eq!(e.key(), "rules.thresholds.max_hops", "{e}");
    let e = load("[rules.thresholds]\nmax_hop = 9\n").unwrap_err();
    assert_eq!(e.key(), "rules.thresholds.max_hop", "{e}");
    let e = load("[rules]\nhold_rounds = 0\n").unwrap_err();
    assert_eq!(e.key(), "rules.hold_rounds", "{e}");
}

fn cluster(dir: &str, n: u64) -> Vec<NodeConfig> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(dir);
    (1..=n)
        .map(|i| {
            let path = root.join(format!("node{i}.toml"));
            let c: NodeConfig = NodeConfig::figment(Some(&path), "TOPOD_TEST_NO_ENV_")
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(c.node_id, i, "{}", path.display());
            c
        })
        .collect()
}

#[test]
fn example_clusters_agree_on_voters_and_use_distinct_ports() {
    for (dir, n) in [("cluster-3", 3), ("cluster-5", 5)] {
        let nodes = cluster(dir, n);
        let voters = nodes[0].initial_voters.clone();
        assert_eq!(voters.len(), 3, "{dir}");
        let mut ports = BTreeSet::new();
        for c in &nodes {
            assert_eq!(c.cluster_id, nodes[0].cluster_id);
            if c.node_id <= 3 {
                assert_eq!(c.initial_voters, voters, "{dir} node {}", c.node_id);
            } else {
                assert!(c.initial_voters.is_empty());
                let voter_apis: Vec<_> = voters.iter().map(|v| v.api_addr).collect();
                assert_eq!(c.join, voter_apis);
            }
            for a in [c.api_addr, c.raft_addr, c.peer_addr] {
                assert!(ports.insert(a.port()), "{dir}: port {a} used twice");
            }
        }
        assert_eq!(nodes[0].api_addr.to_string(), "127.0.0.1:7101");
        assert_eq!(nodes[0].raft_addr.to_string(), "127.0.0.1:7201");
        assert_eq!(nodes[0].peer_addr.to_string(), "127.0.0.1:7301");
    }
}

#[test]
fn defaults_fill_absent_keys() {
    let c = load("").unwrap();
    assert_eq!(c.raft, RaftConfig::default());
    assert_eq!(
        (
            c.raft.heartbeat_ms,
            c.raft.election_timeout_min_ms,
            c.raft.election_timeout_max_ms
        ),
        (50, 150, 300)
    );
    assert_eq!(c.api.max_body_bytes, 64 * 1024);
    assert_eq!(
        c.switch.initial_topology,
        InitialTopology::Fixed(Topology::FullMesh)
    );
    assert!(c.initial_voters.is_empty() && c.join.is_empty());
    c.raft.to_openraft(&c.cluster_id).unwrap();
}

#[test]
fn partial_tables_merge_over_defaults() {
    let c = load(
        "[raft]\nheartbeat_ms = 20\n\
         [overlay.hyparview]\nactive_view = 4\n\
         [overlay.pub_sub.hyparview]\npassive_view = 12\n\
         [switch]\ninitial_topology = \"hyparview\"\n",
    )
    .unwrap();
    assert_eq!(c.raft.heartbeat_ms, 20);
    assert_eq!(c.raft.election_timeout_max_ms, 300);
    assert_eq!(c.overlay.hyparview.active_view, 4);
    assert_eq!(c.overlay.hyparview.passive_view, 30);
    assert_eq!(c.overlay.pub_sub.hyparview.passive_view, 12);
    assert_eq!(c.overlay.pub_sub.optimization_threshold, 7);
    assert_eq!(
        c.switch.initial_topology,
        InitialTopology::Fixed(Topology::HyParView)
    );
    let OverlayConfig::HyParView(h) = c.overlay_default(Topology::HyParView) else {
        panic!("wrong topology")
    };
    assert_eq!(h.active_view, 4);
    assert_eq!(
        c.overlay_default(Topology::FullMesh),
        OverlayConfig::default_for(Topology::FullMesh)
    );
}

#[test]
fn environment_overrides_the_file() {
    std::env::set_var("TOPOD_T_ENV_RAFT__HEARTBEAT_MS", "100");
    std::env::set_var("TOPOD_T_ENV_NODE_ID", "2");
    std::env::set_var("TOPOD_T_ENV_OVERLAY__HYPARVIEW__ACTIVE_VIEW", "3");
    std::env::set_var("TOPOD_T_ENV_LOG", "debug");
    let c = NodeConfig::from_toml_str_with_env(MINIMAL, "TOPOD_T_ENV_").unwrap();
    assert_eq!(c.raft.heartbeat_ms, 100);
    assert_eq!(c.node_id, 2);
    assert_eq!(c.overlay.hyparview.active_view, 3);
}

#[test]
fn environment_errors_name_the_variable() {
    std::env::set_var("TOPOD_T_ENVBAD_RAFT__BOGUS", "1");
    let e = NodeConfig::from_toml_str_with_env(MINIMAL, "TOPOD_T_ENVBAD_").unwrap_err();
    assert_eq!(e.key(), "raft.bogus");
    assert!(e.to_string().contains("TOPOD_T_ENVBAD_RAFT__BOGUS"), "{e}");
    std::env::set_var("TOPOD_T_ENVTYPE_API__MAX_BODY_BYTES", "lots");
    let e = NodeConfig::from_toml_str_with_env(MINIMAL, "TOPOD_T_ENVTYPE_").unwrap_err();
    assert_eq!(e.key(), "api.max_body_bytes");
    assert!(
        e.to_string()
            .contains("TOPOD_T_ENVTYPE_API__MAX_BODY_BYTES"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_named() {
    for (extra, key) in [
        ("nod_id = 1", "nod_id"),
        ("[raft]\nheartbeat = 5", "raft.heartbeat"),
        (
            "[overlay.hyparview]\nfanout = 1",
            "overlay.hyparview.fanout",
        ),
        ("[overlay.ring]\nsize = 1", "overlay.ring"),
        (
            "initial_voters = [{ id = 1, api_addr = \"127.0.0.1:0\", raft_addr = \"127.0.0.1:0\", \
             peer_addr = \"127.0.0.1:0\", voter = true }]",
            "initial_voters.0.voter",
        ),
    ] {
        let e = load(extra).unwrap_err();
        assert!(
            matches!(e, ConfigError::UnknownKey { .. }),
            "{extra}: {e:?}"
        );
        assert_eq!(e.key(), key, "{extra}: {e}");
        assert!(e.to_string().contains(key), "{e}");
    }
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        (
            "[raft]\nelection_timeout_min_ms = 300",
            "raft.election_timeout_min_ms must be below raft.election_timeout_max_ms",
        ),
        (
            "[raft]\nheartbeat_ms = 200",
            "raft.heartbeat_ms must be below raft.election_timeout_min_ms",
        ),
        (
            "[api]\nmax_body_bytes = 10",
            "api.max_body_bytes is 10, outside",
        ),
        (
            "[overlay.hyparview]\nactive_view = 0",
            "overlay.hyparview.active_view is invalid",
        ),
        (
            "[switch]\nhistory_retention = 0",
            "switch.history_retention is 0",
        ),
        ("[storage]\ncache_bytes = 1", "storage.cache_bytes is 1"),
    ];
    for (extra, expected) in cases {
        let e = load(extra).unwrap_err();
        assert!(e.to_string().starts_with(expected), "{extra}: {e}");
    }
    let e = NodeConfig::from_toml_str_with_env(
        &MINIMAL.replace("test-1", "Test_1"),
        "TOPOD_TEST_NO_ENV_",
    )
    .unwrap_err();
    assert_eq!(e.key(), "cluster_id");
    let e = NodeConfig::from_toml_str_with_env(
        &MINIMAL.replace("node_id = 1", "node_id = 0"),
        "TOPOD_TEST_NO_ENV_",
    )
    .unwrap_err();
    assert_eq!(e.key(), "node_id");
}

#[test]
fn wrong_types_and_missing_keys_are_named() {
    let e = load("[raft]\nheartbeat_ms = \"fast\"").unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }), "{e:?}");
    assert_eq!(e.key(), "raft.heartbeat_ms");
    let e = load("[switch]\ninitial_topology = \"ring\"").unwrap_err();
    assert_eq!(e.key(), "switch.initial_topology");
    let e = NodeConfig::from_toml_str_with_env(
        &MINIMAL.replace("api_addr = \"127.0.0.1:0\"", "api_addr = \"localhost\""),
        "TOPOD_TEST_NO_ENV_",
    )
    .unwrap_err();
    assert_eq!(e.key(), "api_addr");
    let e = NodeConfig::from_toml_str_with_env(
        &MINIMAL.replace("data_dir = \"/tmp/topod-test\"", ""),
        "TOPOD_TEST_NO_ENV_",
    )
    .unwrap_err();
    assert_eq!(
        e,
        ConfigError::MissingKey {
            key: "data_dir".into()
        }
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let e = NodeConfig::load(Some(Path::new("/nonexistent/topod.toml"))).unwrap_err();
    assert!(matches!(e, ConfigError::File { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/topod.toml"));
}

#[test]
fn initial_voters_must_be_consistent() {
    let voter = |id: u64, port: u16| {
        format!(
            "{{ id = {id}, api_addr = \"127.0.0.1:{port}\", raft_addr = \"127.0.0.1:{}\", \
             peer_addr = \"127.0.0.1:{}\" }}",
            port + 100,
            port + 200
        )
    };
    // Node 1's own entry must repeat its addresses (port 0 in MINIMAL).
    let e = load(&format!("initial_voters = [{}]", voter(1, 7101))).unwrap_err();
    assert!(e.to_string().contains("api_addr"), "{e}");
    // A list without this node.
    let e = load(&format!("initial_voters = [{}]", voter(2, 7102))).unwrap_err();
    assert!(e.to_string().contains("does not list node_id 1"), "{e}");
    // Duplicates.
    let e = load(&format!(
        "initial_voters = [{}, {}]",
        voter(2, 7102),
        voter(2, 7103)
    ))
    .unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
}

#[test]
fn dev_configs_follow_the_port_layout() {
    let dir = Path::new("/tmp/d");
    let one = NodeConfig::dev(1, 7101, dir).unwrap();
    assert_eq!(one.api_addr.to_string(), "127.0.0.1:7101");
    assert_eq!(one.raft_addr.to_string(), "127.0.0.1:7201");
    assert_eq!(one.peer_addr.to_string(), "127.0.0.1:7301");
    assert_eq!(one.data_dir, dir.join("node1"));
    let ids: Vec<u64> = one.initial_voters.iter().map(|v| v.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(one.is_initial_voter());

    let single = NodeConfig::dev(1, 7101, dir)
        .unwrap()
        .with_cluster_size(1)
        .unwrap();
    assert_eq!(single.initial_voters.len(), 1);

    let all = NodeConfig::dev_cluster(5, 8001, dir).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[4].api_addr.to_string(), "127.0.0.1:8005");
    assert!(all[4].initial_voters.is_empty() && !all[4].is_initial_voter());
    assert_eq!(all[4].join.len(), 3);
    assert_eq!(all[0].initial_voters, all[2].initial_voters);

    assert_eq!(NodeConfig::dev(0, 7101, dir).unwrap_err().key(), "node_id");
    assert_eq!(
        NodeConfig::dev(3, 65500, dir).unwrap_err().key(),
        "api_base_port"
    );
}

#[test]
fn dev_ports_keep_the_layout_to_100_nodes_and_widen_beyond() {
    use crate::config::dev::dev_port_stride;
    assert_eq!(dev_port_stride(3), 100);
    assert_eq!(dev_port_stride(100), 100);
    assert_eq!(dev_port_stride(101), 200);
    let dir = Path::new("/tmp/d");
    for nodes in [9u64, 100, 200, 256] {
        let all = NodeConfig::dev_cluster(nodes, 7101, dir).unwrap();
        let mut ports = std::collections::BTreeSet::new();
        for c in &all {
            for a in [c.api_addr, c.raft_addr, c.peer_addr] {
                assert!(
                    ports.insert(a.port()),
                    "{nodes} nodes: port {} twice",
                    a.port()
                );
            }
            // Every node names the voters at the same addresses.
            assert_eq!(c.initial_voters.is_empty(), c.node_id > 3);
            if let Some(v) = c.initial_voters.first() {
                assert_eq!(v.raft_addr, all[0].raft_addr);
            }
        }
        assert_eq!(all.last().unwrap().api_addr.port() as u64, 7100 + nodes);
    }
    let big = NodeConfig::dev_cluster(200, 7101, dir).unwrap();
    assert_eq!(big[0].raft_addr.port(), 7301);
    assert_eq!(big[0].peer_addr.port(), 7501);
    assert_eq!(big[150].join[0], big[0].api_addr);
    let e = NodeConfig::dev_cluster(257, 7101, dir).unwrap_err();
    assert_eq!(e.key(), "nodes");
}

#[test]
fn dev_configs_take_a_base_file_and_the_environment_but_keep_their_layout() {
    let dir = std::env::temp_dir().join(format!("topod-dev-layer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("base.toml");
    std::fs::write(
        &file,
        "[transport]\nchaos = true\n[raft]\nheartbeat_ms = 80\nelection_timeout_min_ms = 400\n\
         election_timeout_max_ms = 800\n",
    )
    .unwrap();
    let dev = NodeConfig::dev(4, 7101, &dir)
        .unwrap()
        .with_cluster_size(5)
        .unwrap();
    std::env::set_var("TOPOD_T_DEVLAYER_SWITCH__COOLDOWN_MS", "1234");
    let c = dev
        .clone()
        .layered(Some(&file), "TOPOD_T_DEVLAYER_")
        .unwrap();
    assert!(c.transport.chaos);
    assert_eq!(c.raft.heartbeat_ms, 80);
    assert_eq!(
        c.switch.cooldown_ms, 1234,
        "TOPOD_* goes on top of the file"
    );
    assert_eq!(
        (c.node_id, c.api_addr, &c.join),
        (4, dev.api_addr, &dev.join)
    );
    assert_eq!(
        c.rules.monitor_interval_ms, dev.rules.monitor_interval_ms,
        "dev defaults kept"
    );
    // Nothing set: the generated config as it was.
    assert_eq!(
        dev.clone().layered(None, "TOPOD_T_DEVLAYER_NONE_").unwrap(),
        dev
    );
    // A key of the layout is refused, named.
    std::fs::write(&file, "node_id = 9\n").unwrap();
    let e = dev
        .clone()
        .layered(Some(&file), "TOPOD_T_DEVLAYER_NONE_")
        .unwrap_err();
    assert_eq!(e.key(), "node_id");
    assert!(e.to_string().contains("laid out by `topod dev`"), "{e}");
    std::env::set_var("TOPOD_T_DEVLAYER2_API_ADDR", "127.0.0.1:9");
    let e = dev.clone().layered(None, "TOPOD_T_DEVLAYER2_").unwrap_err();
    assert_eq!(e.key(), "api_addr");
    // A bad value in the file is the usual error naming the key.
    std::fs::write(&file, "[raft]\nheartbeat_ms = \"fast\"\n").unwrap();
    let e = dev
        .clone()
        .layered(Some(&file), "TOPOD_T_DEVLAYER_NONE_")
        .unwrap_err();
    assert_eq!(e.key(), "raft.heartbeat_ms");
    let e = dev
        .layered(Some(&dir.join("missing.toml")), "TOPOD_T_DEVLAYER_NONE_")
        .unwrap_err();
    assert!(e.to_string().contains("missing.toml"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn initial_topology_takes_auto_or_a_name_and_names_the_key() {
    let c = load("[switch]\ninitial_topology = \"auto\"").unwrap();
    assert_eq!(c.switch.initial_topology, InitialTopology::Auto);
    let c = load("[switch]\ninitial_topology = \"pub_sub\"").unwrap();
    assert_eq!(
        c.switch.initial_topology,
        InitialTopology::Fixed(Topology::PubSub)
    );
    let e = load("[switch]\ninitial_topology = \"automatic\"").unwrap_err();
    assert_eq!(e.key(), "switch.initial_topology");
    assert!(e.to_string().contains("expected auto, full_mesh"), "{e}");
    let e = load("[switch]\ninitial_topology = 3").unwrap_err();
    assert_eq!(e.key(), "switch.initial_topology");
}

#[test]
fn auto_initial_topology_follows_the_design_threshold() {
    assert_eq!(determine_initial_topology(1), Topology::FullMesh);
    assert_eq!(determine_initial_topology(9), Topology::FullMesh);
    assert_eq!(determine_initial_topology(10), Topology::HyParView);
    assert_eq!(determine_initial_topology(5000), Topology::HyParView);
    assert_eq!(InitialTopology::Auto.resolve(3), Topology::FullMesh);
    assert_eq!(InitialTopology::Auto.resolve(12), Topology::HyParView);
    assert_eq!(
        InitialTopology::Fixed(Topology::ClientServer).resolve(3),
        Topology::ClientServer
    );
}
