//! Issue 16 end to end: the embedding application of a 3-node cluster
//! reports a rising checkout latency; an operator's custom rule switches
//! once on it, the history names the rule and the figures, and nothing
//! more happens when the latency recovers. A policy with a bad rule is
//! refused and the previous rules stay. A local process reports through
//! `POST /v1/node/app-metrics`, limits included.

mod dataplane_common;

use std::time::Duration;

use dataplane_common::{http, wait_until, Cluster, DEADLINE};
use hyper::Method;
use serde_json::json;
use topod::config::{NodeConfig, RulesConfig};
use topod::model::custom_rule::CustomRuleSpec;
use topod::model::{Outcome, SwitchReason, Topology};

fn auto(cfg: &mut NodeConfig) {
    cfg.switch.auto_switch = true;
    cfg.rules = RulesConfig {
        monitor_interval_ms: Some(400),
        hold_rounds: Some(3),
        flap_window_ms: Some(0),
        custom: vec![CustomRuleSpec {
            name: "checkout_slow".into(),
            when: "app.checkout_latency_ms.p99 > 250 and node_count >= 3".into(),
            hold_rounds: Some(2),
            from: vec![Topology::FullMesh],
            switch_to: Topology::HyParView,
        }],
        // Only the custom rule may act on this small cluster.
        disabled: vec!["small_cluster_degraded".into()],
        ..Default::default()
    };
    cfg.app_metrics.max_names = 4;
}

/// Every node's application records `ms` as its checkout latency.
fn report(c: &Cluster, ms: f64) {
    for id in c.running() {
        c.node(id)
            .metrics()
            .histogram("app.checkout_latency_ms", ms)
            .expect("a valid sample");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rising_app_latency_switches_once_by_the_custom_rule() {
    let c = Cluster::start_with(3, auto).await;
    c.wait_steady_on(Topology::FullMesh).await;
    // Healthy latency: the rule does not hold.
    for _ in 0..5 {
        report(&c, 20.0);
    }
    wait_until("a round that sees the app metric", DEADLINE, || {
        c.running().iter().any(|&id| {
            c.node(id).monitor().last().is_some_and(|r| {
                r.app
                    .get("app.checkout_latency_ms")
                    .is_some_and(|a| a.nodes == 3)
            })
        })
    })
    .await;
    assert!(
        c.automatic_switches().is_empty(),
        "{:?}",
        c.automatic_switches()
    );

    // Rising: every node sees 400 ms checkouts.
    let rising = async {
        loop {
            report(&c, 400.0);
            if c.automatic_switches()
                .iter()
                .any(|r| matches!(r.outcome, Outcome::Committed { .. }))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(DEADLINE, rising)
        .await
        .expect("an automatic switch committed");
    c.wait_steady_on(Topology::HyParView).await;
    let auto = c.automatic_switches();
    assert_eq!(auto.len(), 1, "{auto:?}");
    let r = &auto[0];
    assert_eq!(
        r.reason,
        SwitchReason::Auto {
            rule: "checkout_slow".into()
        }
    );
    assert_eq!((r.from, r.to), (Topology::FullMesh, Topology::HyParView));
    let explanation = &r.trigger.as_ref().expect("a trigger").explanation;
    assert!(
        explanation.contains("checkout_slow: holds")
            && explanation.contains("app.checkout_latency_ms.p99 ")
            && explanation.contains("> 250 and node_count 3.0 >= 3"),
        "{explanation}"
    );
    assert!(
        explanation.contains("disabled: small_cluster_degraded"),
        "{explanation}"
    );

    // /v1/topology shows the aggregate beside the cluster metrics.
    let (st, v) = http(c.api(), Method::GET, "/v1/topology", None).await;
    assert_eq!(st, 200, "{v}");
    assert!(
        v["app_metrics"]["app.checkout_latency_ms"]["nodes"].as_u64() >= Some(1),
        "{v}"
    );

    // Recovered: rounds pass, nothing more switches.
    for _ in 0..5 {
        report(&c, 20.0);
    }
    c.wait_monitor_rounds(6).await;
    assert_eq!(
        c.automatic_switches().len(),
        1,
        "{:?}",
        c.automatic_switches()
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rule_is_refused_and_reports_respect_the_limits() {
    let c = Cluster::start_with(3, auto).await;
    c.wait_steady_on(Topology::FullMesh).await;
    let bad = json!({"custom_rules": [{
        "name": "typo", "when": "app.x.p99 > 1 and nodes_count > 2", "switch_to": "hyparview"
    }]});
    let (st, v) = http(c.api(), Method::PUT, "/v1/policy", Some(bad)).await;
    assert_eq!(st, 400, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("custom_rules.typo.when") && msg.contains("column 19"),
        "{v}"
    );
    let (st, v) = http(c.api(), Method::PUT, "/v1/policy", Some(json!({"custom_rules": [{
        "name": "loop", "when": "node_count > 1", "from": ["hyparview"], "switch_to": "hyparview"
    }]})))
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = http(c.api(), Method::GET, "/v1/policy", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["custom_rules"][0]["name"], "checkout_slow", "{v}");
    assert_eq!(v["custom_rules"].as_array().map(Vec::len), Some(1), "{v}");

    // Local reports: accepted, then refused over the limit of 4 names,
    // with bad names, and nothing of a refused batch is recorded.
    let addr = c.node(2).api_addr();
    let ok = json!({"gauges": {"app.x": 1.5}, "counters": {"app.y": 3}, "histograms": {"app.z_ms": [12.0, 15.5]}});
    let (st, v) = http(addr, Method::POST, "/v1/node/app-metrics", Some(ok)).await;
    assert_eq!((st, v["recorded"].as_u64()), (200, Some(3)), "{v}");
    let over = json!({"gauges": {"app.a": 1.0, "app.b": 2.0}});
    let (st, v) = http(addr, Method::POST, "/v1/node/app-metrics", Some(over)).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_app_metrics");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_names = 4"),
        "{v}"
    );
    let (st, _) = http(
        addr,
        Method::POST,
        "/v1/node/app-metrics",
        Some(json!({"gauges": {"Bad-Name": 1.0}})),
    )
    .await;
    assert_eq!(st, 400);
    let (st, summary) = http(addr, Method::GET, "/v1/node/summary?window_ms=60000", None).await;
    assert_eq!(st, 200);
    let names: Vec<&String> = summary["app"].as_object().expect("app").keys().collect();
    assert_eq!(names, ["app.x", "app.y", "app.z_ms"], "{summary}");
    assert_eq!(summary["app"]["app.x"]["last"], 1.5);
    c.shutdown().await;
}
