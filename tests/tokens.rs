//! Bearer tokens with roles on the admin API, on single-node clusters
//! with tokens enforced (a single node exercises every role fully; nodes
//! calling each other need the certificates of the mutual-TLS work).
//!
//! Every refusal is checked to change nothing: the topology, history,
//! policy and tokens are read back (with the harness's admin token) and
//! compared. Expiry needs no sleep: a token is created with an expiry in
//! the past.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use common::{harness_token, request_exact, Options, Resp, TestCluster};
use topod::config::{MetricsAccess, NodeConfig};

fn enforced(c: &mut NodeConfig) {
    assert!(c.security.require_tokens(), "a secure node asks for tokens");
}

fn enforced_metrics_read(c: &mut NodeConfig) {
    c.security.metrics = MetricsAccess::Read;
}

fn insecure(c: &mut NodeConfig) {
    c.security.insecure = true;
}

async fn one_node(tweak: fn(&mut NodeConfig)) -> TestCluster {
    TestCluster::start(
        1,
        Options {
            tweak: Some(tweak),
            ..Options::default()
        },
    )
    .await
}

/// One request with `token` (or none), a JSON `body` when given.
async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let bytes = body.map_or_else(Bytes::new, |v| Bytes::from(serde_json::to_vec(&v).unwrap()));
    request_exact(addr, method.clone(), path, &headers, bytes)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn admin() -> Option<&'static str> {
    Some(harness_token())
}

/// Creates a token with the harness admin token: its secret.
async fn create(addr: SocketAddr, name: &str, role: &str, extra: Value) -> String {
    let mut body = json!({"name": name, "role": role});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = call(addr, Method::POST, "/v1/tokens", admin(), Some(body)).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.value();
    assert_eq!(v["name"], name);
    assert_eq!(v["role"], role);
    let token = v["token"].as_str().expect("the secret").to_string();
    assert!(token.starts_with("topod_"), "{token}");
    token
}

/// What must not change when a request is refused.
async fn replicated(addr: SocketAddr) -> Value {
    let get = |p: &'static str| async move {
        let r = call(addr, Method::GET, p, admin(), None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {p}");
        r.value()
    };
    let t = get("/v1/topology").await;
    json!({
        "topology": t["topology"],
        "epoch": t["epoch"],
        "config": t["config"],
        "history": get("/v1/topology/history").await,
        "policy": get("/v1/policy").await,
        "tokens": get("/v1/tokens").await,
        "members": get("/v1/cluster/members").await,
    })
}

fn unauthenticated(r: &Resp) {
    r.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let challenge = r
        .headers
        .get("www-authenticate")
        .expect("a 401 carries WWW-Authenticate");
    assert!(challenge.to_str().unwrap().starts_with("Bearer"));
}

fn forbidden(r: &Resp) {
    r.expect_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn missing_wrong_expired_and_revoked_tokens_get_401_and_change_nothing() {
    let c = one_node(enforced).await;
    let api = c.api(1);
    let expired = create(api, "old", "admin", json!({"expires_at_ms": 1})).await;
    let revoked = create(api, "gone", "admin", json!({})).await;
    let r = call(api, Method::DELETE, "/v1/tokens/gone", admin(), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let before = replicated(api).await;
    let wrong = topod::security::token::generate();
    let bad: [(&str, Option<&str>); 4] = [
        ("missing", None),
        ("wrong", Some(&wrong)),
        ("expired", Some(&expired)),
        ("revoked", Some(&revoked)),
    ];
    for (what, token) in bad {
        let switch = json!({"topology": "hyparview", "wait": true});
        let r = call(
            api,
            Method::POST,
            "/v1/topology/switch",
            token,
            Some(switch),
        )
        .await;
        unauthenticated(&r);
        let r = call(api, Method::GET, "/v1/topology", token, None).await;
        unauthenticated(&r);
        let mk = json!({"name": format!("by-{what}"), "role": "admin"});
        let r = call(api, Method::POST, "/v1/tokens", token, Some(mk)).await;
        unauthenticated(&r);
        let r = call(api, Method::DELETE, "/v1/cluster/members/1", token, None).await;
        unauthenticated(&r);
        let r = call(
            api,
            Method::PUT,
            "/v1/policy",
            token,
            Some(json!({"cooldown_ms": 1})),
        )
        .await;
        unauthenticated(&r);
    }
    let r = call(api, Method::GET, "/v1/topology", Some(&expired), None).await;
    assert!(r.error().1.contains("expired"), "{:?}", r.error());
    // A malformed header is a 401 too.
    let r = request_exact(
        api,
        Method::GET,
        "/v1/topology",
        &[("authorization", "Basic eDp5")],
        Bytes::new(),
    )
    .await
    .unwrap();
    unauthenticated(&r);
    assert_eq!(replicated(api).await, before, "nothing changed");
    c.shutdown().await;
}

#[tokio::test]
async fn too_weak_a_role_gets_403_and_changes_nothing() {
    let c = one_node(enforced).await;
    let api = c.api(1);
    let read = create(api, "viewer", "read", json!({})).await;
    let operator = create(api, "ci", "operator", json!({})).await;
    let before = replicated(api).await;
    let switch = || Some(json!({"topology": "hyparview", "wait": true}));
    forbidden(
        &call(
            api,
            Method::POST,
            "/v1/topology/switch",
            Some(&read),
            switch(),
        )
        .await,
    );
    forbidden(
        &call(
            api,
            Method::PUT,
            "/v1/policy",
            Some(&read),
            Some(json!({"cooldown_ms": 1})),
        )
        .await,
    );
    forbidden(
        &call(
            api,
            Method::POST,
            "/v1/topology/optimize",
            Some(&read),
            Some(json!({})),
        )
        .await,
    );
    for token in [&read, &operator] {
        let mk = json!({"name": "sneaky", "role": "admin"});
        forbidden(&call(api, Method::POST, "/v1/tokens", Some(token), Some(mk)).await);
        forbidden(&call(api, Method::DELETE, "/v1/tokens/ci", Some(token), None).await);
        forbidden(&call(api, Method::GET, "/v1/tokens", Some(token), None).await);
        forbidden(&call(api, Method::GET, "/v1/cluster/snapshot", Some(token), None).await);
        forbidden(
            &call(
                api,
                Method::DELETE,
                "/v1/cluster/members/1",
                Some(token),
                None,
            )
            .await,
        );
        forbidden(&call(api, Method::DELETE, "/v1/node/faults", Some(token), None).await);
        let join = json!({"id": 9, "api_addr": "127.0.0.1:1", "raft_addr": "127.0.0.1:2",
            "peer_addr": "127.0.0.1:3", "node_uuid": "x"});
        forbidden(
            &call(
                api,
                Method::POST,
                "/v1/cluster/members",
                Some(token),
                Some(join),
            )
            .await,
        );
    }
    // Phase reports come from nodes (certificates) only, whatever the token.
    let report = json!({"node": 1, "phase": {"status": "prepared"}});
    let r = call(
        api,
        Method::POST,
        "/v1/transitions/1/reports",
        admin(),
        Some(report),
    )
    .await;
    forbidden(&r);
    let r = call(api, Method::GET, "/v1/policy", Some(&operator), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let message = forbidden_message(&call(api, Method::GET, "/v1/tokens", Some(&read), None).await);
    assert!(
        message.contains("viewer") && message.contains("admin"),
        "{message}"
    );
    assert_eq!(replicated(api).await, before, "nothing changed");
    c.shutdown().await;
}

fn forbidden_message(r: &Resp) -> String {
    r.expect_error(StatusCode::FORBIDDEN, "forbidden")
}

#[tokio::test]
async fn each_role_does_what_it_should() {
    let c = one_node(enforced).await;
    let api = c.api(1);
    let read = create(api, "viewer", "read", json!({})).await;
    let operator = create(api, "ci", "operator", json!({"expires_in_ms": 3_600_000})).await;
    // Open routes need nothing.
    for p in ["/livez", "/readyz", "/metrics", "/ui/"] {
        let r = call(api, Method::GET, p, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {p} without a token");
    }
    // read: every GET but the snapshot and the tokens.
    for p in [
        "/v1/topology",
        "/v1/topology/history",
        "/v1/policy",
        "/v1/cluster/members",
        "/v1/cluster/status",
        "/v1/node/identity",
    ] {
        let r = call(api, Method::GET, p, Some(&read), None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {p} with read");
    }
    // operator: switch and policy.
    let r = call(
        api,
        Method::POST,
        "/v1/topology/switch",
        Some(&operator),
        Some(json!({"topology": "hyparview", "wait": true})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.value()["status"], "committed");
    let r = call(
        api,
        Method::PUT,
        "/v1/policy",
        Some(&operator),
        Some(json!({"cooldown_ms": 1234})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(c.state(1).policy.cooldown_ms, 1234);
    // The history names the switch.
    let h = call(api, Method::GET, "/v1/topology/history", Some(&read), None).await;
    assert_eq!(h.value()["transitions"][0]["to"], "hyparview");
    // admin: tokens and the snapshot.
    let extra = create(api, "extra", "read", json!({})).await;
    let r = call(api, Method::GET, "/v1/tokens", admin(), None).await;
    let names: Vec<String> = r.value()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["ci", "extra", "initial-admin", "viewer"]);
    let r = call(api, Method::DELETE, "/v1/tokens/extra", admin(), None).await;
    assert_eq!(r.value(), json!({"revoked": "extra"}));
    unauthenticated(&call(api, Method::GET, "/v1/topology", Some(&extra), None).await);
    let r = call(api, Method::DELETE, "/v1/tokens/extra", admin(), None).await;
    r.expect_error(StatusCode::NOT_FOUND, "unknown_token");
    let dup = json!({"name": "ci", "role": "read"});
    let r = call(api, Method::POST, "/v1/tokens", admin(), Some(dup)).await;
    r.expect_error(StatusCode::CONFLICT, "token_exists");
    let bad = json!({"name": "no spaces", "role": "read"});
    let r = call(api, Method::POST, "/v1/tokens", admin(), Some(bad)).await;
    r.expect_error(StatusCode::BAD_REQUEST, "invalid_token");
    let r = call(api, Method::GET, "/v1/cluster/snapshot", admin(), None).await;
    assert_eq!(r.status, StatusCode::OK);
    c.shutdown().await;
}

#[tokio::test]
async fn the_token_list_never_shows_a_secret_or_hash() {
    let c = one_node(enforced).await;
    let api = c.api(1);
    let secret = create(api, "ci", "operator", json!({})).await;
    let r = call(api, Method::GET, "/v1/tokens", admin(), None).await;
    let text = String::from_utf8_lossy(&r.body).to_string();
    let hash = topod::model::token::hash_secret(&secret);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!text.contains(&secret) && !text.contains(harness_token()));
    assert!(!text.contains(&hex));
    for t in r.value()["tokens"].as_array().unwrap() {
        let mut keys: Vec<&str> = t.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["created_ms", "expires_ms", "name", "role"]);
    }
    // The state holds the hash, never the secret.
    let state = c.state(1);
    assert_eq!(state.tokens.records["ci"].hash, hash);
    c.shutdown().await;
}

#[tokio::test]
async fn tokens_survive_a_restart_and_travel_in_the_snapshot() {
    let mut c = one_node(enforced).await;
    let api = c.api(1);
    let secret = create(api, "ci", "operator", json!({})).await;
    let r = call(api, Method::GET, "/v1/cluster/snapshot", admin(), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let backup = topod::control::store::Backup::from_bytes(&r.body).expect("a backup");
    let tokens = &backup.applied.state.tokens;
    assert_eq!(tokens.records["ci"].role, topod::model::Role::Operator);
    assert_eq!(
        tokens.records["ci"].hash,
        topod::model::token::hash_secret(&secret)
    );
    assert!(!String::from_utf8_lossy(&r.body).contains(&secret));
    c.stop(1).await;
    c.restart(1).await;
    let api = c.api(1);
    common::wait_for(
        "the restarted node serves the token",
        common::DEADLINE,
        || async {
            let r = call(api, Method::GET, "/v1/topology", Some(&secret), None).await;
            (r.status == StatusCode::OK).then_some(())
        },
    )
    .await;
    c.shutdown().await;
}

#[tokio::test]
async fn the_initial_admin_token_is_stored_once() {
    let mut c = one_node(enforced).await;
    let api = c.api(1);
    let state = c.state(1);
    assert!(state.tokens.initial_stored);
    assert_eq!(
        state.tokens.records["initial-admin"].role,
        topod::model::Role::Admin
    );
    // Another admin revokes it; a restart with the file still configured
    // does not bring it back.
    let other = create(api, "root2", "admin", json!({})).await;
    let r = call(
        api,
        Method::DELETE,
        "/v1/tokens/initial-admin",
        Some(&other),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    c.stop(1).await;
    c.restart(1).await;
    let api = c.api(1);
    common::wait_for("the restarted node serves", common::DEADLINE, || async {
        let r = call(api, Method::GET, "/v1/tokens", Some(&other), None).await;
        (r.status == StatusCode::OK).then_some(r.value())
    })
    .await;
    // The setup task had its chance: the policy check of the restart runs
    // the same loop; the state says the initial token was stored.
    unauthenticated(&call(api, Method::GET, "/v1/topology", admin(), None).await);
    let state = c.state(1);
    assert!(state.tokens.initial_stored);
    assert!(!state.tokens.records.contains_key("initial-admin"));
    c.shutdown().await;
}

#[tokio::test]
async fn metrics_need_a_read_token_when_configured() {
    let c = one_node(enforced_metrics_read).await;
    let api = c.api(1);
    unauthenticated(&call(api, Method::GET, "/metrics", None, None).await);
    let read = create(api, "scraper", "read", json!({})).await;
    let r = call(api, Method::GET, "/metrics", Some(&read), None).await;
    assert_eq!(r.status, StatusCode::OK);
    for p in ["/livez", "/readyz"] {
        assert_eq!(
            call(api, Method::GET, p, None, None).await.status,
            StatusCode::OK
        );
    }
    c.shutdown().await;
}

#[tokio::test]
async fn an_insecure_node_needs_no_token() {
    let c = one_node(insecure).await;
    let api = c.api(1);
    let r = call(
        api,
        Method::POST,
        "/v1/topology/switch",
        None,
        Some(json!({"topology": "hyparview", "wait": true})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = call(api, Method::GET, "/v1/tokens", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    // Even a wrong token is not looked at.
    let r = call(
        api,
        Method::GET,
        "/v1/topology",
        Some("topod_nonsense"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    c.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_initial_token_file_is_a_start_up_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::node_config(
        "t",
        1,
        dir.path().join("node1"),
        true,
        Vec::new(),
        &Options::default(),
    );
    for (what, path) in [
        ("missing", dir.path().join("nope.token")),
        ("empty", {
            let p = dir.path().join("empty.token");
            std::fs::write(&p, "\n").unwrap();
            p
        }),
    ] {
        config.security.initial_admin_token_file = Some(path);
        let executor = std::sync::Arc::new(topod::control::executor::ScriptedExecutor::default());
        let e = match topod::node::start_node(config.clone(), executor).await {
            Ok(_) => panic!("{what}: the node started"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("security.initial_admin_token_file"),
            "{what}: {e}"
        );
    }
}
