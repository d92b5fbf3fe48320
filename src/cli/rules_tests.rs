//! `topoctl rules`: the rule file's local check (every error, with the
//! rule and the column), the command line, and `list`/`set` against an
//! in-test server that keeps a policy and decodes and checks `PUT`s the
//! way the API does.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::Value;

use super::args::RulesCommand;
use super::rules::*;
use super::tests::serve;
use super::*;
use crate::api::types::*;
use crate::model::{OverlayConfig, Policy, Topology};

const GOOD: &str = r#"
disabled = ["small_cluster_degraded"]

[[rules.custom]]
name = "checkout_slow"
when = "app.checkout_latency_ms.p99 > 250 and node_count >= 5"
hold_rounds = 3
from = ["hyparview", "pub_sub"]
switch_to = "full_mesh"

[[rules.custom]]
name = "big"
when = "node_count > 100"
switch_to = "hyparview"
"#;

fn problems(text: &str) -> Vec<String> {
    check_text(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_good_file_becomes_the_put_body() {
    let f = check_text(GOOD).unwrap();
    assert_eq!(f.custom.len(), 2);
    assert_eq!(f.custom[0].name, "checkout_slow");
    assert_eq!(f.custom[0].hold_rounds, Some(3));
    assert_eq!(f.custom[0].from, [Topology::HyParView, Topology::PubSub]);
    assert_eq!(f.custom[1].hold_rounds, None);
    assert!(f.custom[1].from.is_empty());
    let body = serde_json::to_value(f.request()).unwrap();
    assert_eq!(
        body["disabled_rules"],
        serde_json::json!(["small_cluster_degraded"])
    );
    assert_eq!(body["custom_rules"][1]["switch_to"], "hyparview");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    // The server decodes it to the same request.
    assert_eq!(PolicyRequest::from_json(&body).unwrap(), f.request());

    // `disabled` may also sit in [rules]; without it, it is left alone.
    let f = check_text("[rules]\ndisabled = []\n").unwrap();
    assert_eq!(f.disabled, Some(vec![]));
    let f = check_text(
        "[[rules.custom]]\nname = \"a\"\nwhen = \"node_count > 1\"\nswitch_to = \"pub_sub\"\n",
    )
    .unwrap();
    assert_eq!(f.disabled, None);
    assert!(f.request().disabled_rules.is_none());
}

#[test]
fn every_error_is_reported_with_the_rule_and_the_column() {
    let text = r#"
disabled = ["checkout_slow", "large_mesh_strain", "large_mesh_strain"]

[[rules.custom]]
name = "checkout_slow"
when = "app.checkout_latency_ms.p99 > 250 and nodes > 1"
switch_to = "full_mesh"

[[rules.custom]]
name = "loop"
when = "node_count > 1"
from = ["full_mesh"]
switch_to = "full_mesh"

[[rules.custom]]
name = "no_target"
when = "node_count > 1"

[[rules.custom]]
name = "syntax"
when = "node_count >"
switch_to = "pub_sub"

[[rules.custom]]
name = "ok"
when = "node_count > 1"
switch_to = "pub_sub"

[[rules.custom]]
name = "ok"
when = "node_count > 2"
switch_to = "pub_sub"
"#;
    let p = problems(text);
    assert_eq!(p.len(), 7, "{p:#?}");
    assert_eq!(
        p[0],
        "custom_rules.checkout_slow.when: at column 39: unknown metric `nodes`"
    );
    assert!(p[1].starts_with("custom_rules.loop.from: "), "{p:?}");
    assert!(
        p[2].starts_with("custom_rules.no_target: ") && p[2].contains("switch_to"),
        "{p:?}"
    );
    assert!(
        p[3].starts_with("custom_rules.syntax.when: at column "),
        "{p:?}"
    );
    assert_eq!(p[4], "custom_rules.ok: the name is used twice");
    assert!(p[5].starts_with("disabled_rules: `checkout_slow` is not a built-in rule"));
    assert_eq!(p[6], "disabled_rules: `large_mesh_strain` is listed twice");
}

#[test]
fn a_file_that_is_not_a_rule_file_is_refused() {
    let p = problems("[[rules.custom]\n");
    assert!(
        p[0].starts_with("file: ") && p[0].contains("line 1"),
        "{p:?}"
    );
    let p = problems("[rules]\nhold_rounds = 3\n");
    assert!(
        p[0].starts_with("file: ") && p[0].contains("hold_rounds"),
        "{p:?}"
    );
    let p = problems("disabled = []\n[rules]\ndisabled = []\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("disabled_rules: "));
    let many: String = (0..65)
        .map(|i| format!("[[rules.custom]]\nname = \"r{i}\"\nwhen = \"node_count > 1\"\nswitch_to = \"pub_sub\"\n"))
        .collect();
    assert_eq!(problems(&many), ["custom_rules: at most 64 rules, got 65"]);
}

#[test]
fn rules_command_line() {
    let parse = |argv: &[&str]| {
        let mut full = vec!["topoctl", "rules"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full)
    };
    assert!(matches!(
        parse(&["list"]).unwrap().command,
        Command::Rules(RulesCommand::List)
    ));
    match parse(&["check", "r.toml"]).unwrap().command {
        Command::Rules(RulesCommand::Check { file }) => assert_eq!(file.to_str(), Some("r.toml")),
        other => panic!("not rules check: {other:?}"),
    }
    match parse(&["set", "r.toml"]).unwrap().command {
        Command::Rules(RulesCommand::Set { file }) => assert_eq!(file.to_str(), Some("r.toml")),
        other => panic!("not rules set: {other:?}"),
    }
    assert!(parse(&["check"]).is_err());
    assert!(parse(&["set"]).is_err());
    assert!(parse(&["remove", "x"]).is_err());
}

/// A server keeping one policy: `GET` shows it, `PUT` decodes, checks
/// and applies the body as the API does; counts the `PUT`s.
#[derive(Default)]
struct PolicyServer {
    policy: Mutex<Policy>,
    puts: Mutex<Vec<Value>>,
}

async fn policy_server() -> (Endpoint, Arc<PolicyServer>) {
    let state = Arc::new(PolicyServer::default());
    let router = Router::new()
        .route(
            "/v1/policy",
            get(|State(s): State<Arc<PolicyServer>>| async move {
                Json(PolicyView::from(&*s.policy.lock().unwrap()))
            })
            .put(
                |State(s): State<Arc<PolicyServer>>, Json(body): Json<Value>| async move {
                    s.puts.lock().unwrap().push(body.clone());
                    let update = PolicyRequest::from_json(&body)
                        .and_then(|r| r.to_update(OverlayConfig::default_for));
                    let mut policy = s.policy.lock().unwrap();
                    match update {
                        Ok(u) => {
                            u.apply(&mut policy).unwrap();
                            (
                                StatusCode::OK,
                                Json(serde_json::to_value(PolicyView::from(&*policy)).unwrap()),
                            )
                        }
                        Err(e) => (
                            StatusCode::BAD_REQUEST,
                            Json(serde_json::to_value(ErrorBody::new(e.code, e.message)).unwrap()),
                        ),
                    }
                },
            ),
        )
        .with_state(state.clone());
    (serve(router).await, state)
}

async fn run_rules(ep: &Endpoint, args: &[&str]) -> (Result<(), CliError>, String) {
    let mut argv = vec!["topoctl", "--endpoints", ep.authority()];
    argv.push("rules");
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    let r = run(Cli::try_parse_from(argv).unwrap(), &mut out).await;
    (r, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn set_sends_the_file_and_list_shows_the_rules() {
    let (ep, server) = policy_server().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, GOOD).unwrap();
    let path = good.to_str().unwrap();

    let (r, text) = run_rules(&ep, &["check", path]).await;
    r.unwrap();
    assert!(text.contains("ok, 2 custom rule(s), 1 disabled"), "{text}");
    assert!(
        server.puts.lock().unwrap().is_empty(),
        "check sends nothing"
    );

    let (r, text) = run_rules(&ep, &["set", path]).await;
    r.unwrap();
    assert_eq!(server.puts.lock().unwrap().len(), 1);
    {
        let policy = server.policy.lock().unwrap();
        assert_eq!(policy.custom_rules.len(), 2);
        assert_eq!(policy.disabled_rules, ["small_cluster_degraded"]);
    }
    assert!(text.contains("checkout_slow"), "{text}");

    let (r, text) = run_rules(&ep, &["list"]).await;
    r.unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {text}"))
            .to_string()
    };
    assert!(line("small_cluster_degraded").contains("disabled"));
    assert!(line("large_mesh_strain").contains("enabled"));
    let slow = line("checkout_slow");
    assert!(
        slow.contains("hyparview, pub_sub") && slow.contains("full_mesh"),
        "{slow}"
    );
    assert!(slow.contains("app.checkout_latency_ms.p99 > 250"), "{slow}");
    let big = line("| big");
    assert!(big.contains("any") && big.contains("3 (policy)"), "{big}");
}

#[tokio::test]
async fn a_bad_file_is_not_sent_and_fails_with_every_error() {
    let (ep, server) = policy_server().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "disabled = [\"nope\"]\n[[rules.custom]]\nname = \"x\"\nwhen = \"node_count >> 1\"\nswitch_to = \"pub_sub\"\n",
    )
    .unwrap();
    for cmd in ["check", "set"] {
        let (r, _) = run_rules(&ep, &[cmd, bad.to_str().unwrap()]).await;
        let err = r.unwrap_err();
        let CliError::Rules { problems, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].key == "custom_rules.x.when" && problems[0].reason.contains("column"));
        assert_eq!(problems[1].key, "disabled_rules");
        assert!(err.to_string().starts_with("invalid_rules: "), "{err}");
    }
    assert!(server.puts.lock().unwrap().is_empty());
    assert!(server.policy.lock().unwrap().custom_rules.is_empty());
    let (r, _) = run_rules(&ep, &["check", "/nonexistent/rules.toml"]).await;
    assert!(matches!(r, Err(CliError::Rules { .. })));
}
