//! Mutual TLS between nodes and the hardened listeners (issue 12): who is
//! refused, that nothing changes when they are, certificate rotation and
//! expiry, and slow clients cut off.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use topod::control::network::{paths, CLUSTER_HEADER};
use topod::model::NodeId;
use topod::security::certs::{CertAuthority, CertDir, CA_VALIDITY, NODE_VALIDITY};

/// A TLS client configuration trusting the test CA that presents
/// `cert`/`key` (PEM), or nothing.
fn client_config(client: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let roots = topod::security::tls::roots_from_pem(tls::ca_pem().as_bytes()).expect("roots");
    let b = rustls::ClientConfig::builder_with_provider(topod::security::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut cfg = match client {
        None => b.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            b.with_client_auth_cert(chain, key).expect("client cert")
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// POSTs `body` to `addr` over TLS with `cfg`, one connection.
async fn post_tls(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), String> {
    let call = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("topod-node").expect("name");
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::post(path)
            .header("host", "topod-node")
            .header(CLUSTER_HEADER, "test")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, bytes.to_bytes()))
    };
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// A vote request from `candidate` for a term far ahead.
fn forged_vote(candidate: NodeId, term: u64) -> Vec<u8> {
    let req: openraft::raft::VoteRequest<NodeId> =
        openraft::raft::VoteRequest::new(openraft::Vote::new(term, candidate), None);
    postcard::to_allocvec(&req).expect("encode")
}

fn term_of(c: &TestCluster, id: NodeId) -> u64 {
    c.node(id).raft().metrics().borrow().current_term
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpcs_without_a_valid_certificate_or_in_another_node_s_name_are_refused() {
    init_tracing();
    let c = TestCluster::start(3, Options::default()).await;
    let leader = c.leader().await;
    let target = c.followers().await[0];
    let raft = c.node(target).raft_addr();
    let term = term_of(&c, target);

    // No client certificate: the TLS handshake is refused.
    let r = post_tls(
        raft,
        client_config(None),
        paths::VOTE,
        forged_vote(3, term + 100),
    )
    .await;
    assert!(r.is_err(), "answered without a certificate: {r:?}");

    // A certificate of another CA (same cluster, a member's id).
    let other = CertAuthority::generate("test", CA_VALIDITY).expect("CA");
    let foreign = other.issue(3, &[], NODE_VALIDITY).expect("issue");
    let r = post_tls(
        raft,
        client_config(Some((&foreign.cert_pem, &foreign.key_pem))),
        paths::VOTE,
        forged_vote(3, term + 100),
    )
    .await;
    assert!(r.is_err(), "answered a foreign CA's certificate: {r:?}");

    // A valid certificate of node 3 (a member) claiming to be node 2.
    let claimant = (1..=3u64).find(|&n| n != target).expect("another node");
    let cert = tls::ca()
        .issue_for("test", claimant, &[], NODE_VALIDITY)
        .expect("issue");
    let other_id = (1..=3u64).find(|&n| n != claimant).expect("other");
    let (status, body) = post_tls(
        raft,
        client_config(Some((&cert.cert_pem, &cert.key_pem))),
        paths::VOTE,
        forged_vote(other_id, term + 100),
    )
    .await
    .expect("an answer");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(
        text.contains(&format!("node {other_id}")) && text.contains(&format!("node {claimant}'s")),
        "{text}"
    );

    // Nothing changed: no node moved to the forged term, the leader leads.
    assert!(term_of(&c, target) < term + 100);
    assert_eq!(c.leader().await, leader);

    // The same certificate in its own name is answered (the check is on
    // the claim, not the certificate).
    let (status, _) = post_tls(
        raft,
        client_config(Some((&cert.cert_pem, &cert.key_pem))),
        paths::PREVOTE,
        postcard::to_allocvec(&topod::control::prevote::PreVoteRequest {
            candidate: claimant,
            term: term + 1,
            last_log_id: None,
        })
        .expect("encode"),
    )
    .await
    .expect("an answer");
    assert_eq!(status, StatusCode::OK);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_links_need_a_certificate_naming_the_node_the_hello_claims() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = |node: NodeId| {
        let s = tls::security("links", node, dir.path());
        topod::security::TlsContext::load(&s, "links", node).expect("load")
    };
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let cfg = topod::transport::TransportConfig::default();
    let bind = |id: NodeId, t: Option<Arc<topod::security::TlsContext>>| {
        topod::transport::Transport::bind_tcp_with_tls(any, cfg.clone(), id, "links", t)
    };
    let (one, _e1) = bind(1, Some(ctx(1))).await.expect("bind 1");
    let (two, _e2) = bind(2, Some(ctx(2))).await.expect("bind 2");
    // Claims node 4 with node 3's certificate.
    let (liar, _e4) = bind(4, Some(ctx(3))).await.expect("bind liar");
    // No TLS at all.
    let (plain, _e5) = bind(5, None).await.expect("bind plain");
    let book: std::collections::BTreeMap<NodeId, SocketAddr> = [(1, one.bound_addr())].into();
    for t in [&two, &liar, &plain] {
        t.set_address_book(book.clone());
    }
    two.connect(1).expect("connect");
    wait_until("node 2's link to node 1 is up", DEADLINE, || {
        two.links().contains(&1)
    })
    .await;
    liar.connect(1).expect("connect");
    plain.connect(1).expect("connect");
    wait_until("node 1 refused both", DEADLINE, || {
        one.refused_handshakes() >= 2
    })
    .await;
    assert!(
        !one.links().contains(&4) && !one.links().contains(&5),
        "{:?}",
        one.links()
    );
    assert_eq!(one.links(), vec![2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_picked_up_without_a_restart_and_expiry_is_shown() {
    init_tracing();
    let c = TestCluster::start(1, Options::default()).await;
    let identity = get(c.api(1), "/v1/node/identity").await.value();
    let sec = &identity["security"];
    assert_eq!(sec["mode"], "mutual_tls", "{identity}");
    let days = sec["certificate_days_left"].as_u64().expect("days");
    assert!((363..=365).contains(&days), "{identity}");
    assert_eq!(sec["certificate_expiring_soon"], false);
    let before = sec["certificate_expires_unix"].as_u64().expect("expiry");

    // Rotate: a new certificate valid 10 days, inside the 30-day window.
    let certs = CertDir(tls_dir_of(&c).join("certs-test"));
    tls::ca()
        .issue_for("test", 1, &[], Duration::from_secs(10 * 86_400))
        .expect("issue")
        .write(&certs, 1, true)
        .expect("write");
    let after = wait_for("the node reloads its certificate", DEADLINE, || async {
        let v = get(c.api(1), "/v1/node/identity").await.value();
        let e = v["security"]["certificate_expires_unix"].as_u64()?;
        (e != before).then_some(v)
    })
    .await;
    assert_eq!(
        after["security"]["certificate_expiring_soon"], true,
        "{after}"
    );
    assert!(after["security"]["certificate_days_left"].as_u64() <= Some(10));
    // New connections use it: the API still answers over TLS and a switch
    // commits.
    let v = switch_and_wait(c.api(1), "hyparview", "rotated-1").await;
    assert_eq!(v.status, topod::api::types::TransitionStatus::Committed);
    c.shutdown().await;
}

/// The temp dir a test cluster keeps its nodes' data dirs (and certs) in.
fn tls_dir_of(c: &TestCluster) -> std::path::PathBuf {
    c.config(1).data_dir.parent().expect("parent").to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_certificates_or_with_another_node_s_refuses_to_start() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = node_config(
        "test",
        1,
        dir.path().join("node1"),
        true,
        Vec::new(),
        &Options::default(),
    );
    let good = config.security.clone();
    config.security = topod::config::SecurityConfig::default();
    let err = topod::node::start_node(
        config.clone(),
        Arc::new(topod::control::executor::ScriptedExecutor::default()),
    )
    .await
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("security.ca_cert is not set") && text.contains("security.insecure"),
        "{text}"
    );

    // Node 2's certificate in node 1's config.
    let two = tls::security("test", 2, dir.path());
    config.security = topod::config::SecurityConfig {
        cert: two.cert,
        key: two.key,
        ..good
    };
    let err = topod::node::start_node(
        config,
        Arc::new(topod::control::executor::ScriptedExecutor::default()),
    )
    .await
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("security.cert") && text.contains("node 2's"),
        "{text}"
    );
}

/// Reads from `s` until it is closed; how long that took.
async fn closed_within(mut s: TcpStream, mut trickle: impl FnMut(u64) -> Option<u8>) -> Duration {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    for i in 0.. {
        if let Some(b) = trickle(i) {
            if s.write_all(&[b]).await.is_err() {
                return started.elapsed();
            }
        }
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never closed");
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_the_connection_cap_holds() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |insecure: bool, n: NodeId| {
        let mut config = node_config(
            if insecure { "plain" } else { "test" },
            n,
            dir.path().join(format!("node{n}")),
            true,
            Vec::new(),
            &Options {
                insecure,
                ..Options::default()
            },
        );
        config.api.header_timeout_ms = 500;
        config.api.body_timeout_ms = 500;
        config.api.max_connections = 8;
        topod::node::start_node(
            config,
            Arc::new(topod::control::executor::ScriptedExecutor::default()),
        )
    };
    let plain = start(true, 1).await.expect("plain node");
    tls::register_plain(plain.api_addr());
    let secure = start(false, 2).await.expect("secure node");

    // One byte a second into a request head (plain HTTP).
    let head = b"GET /livez HTTP/1.1\r\nHost: x\r\n";
    let s = TcpStream::connect(plain.api_addr()).await.expect("connect");
    let took = closed_within(s, |i| {
        (i % 5 == 0).then(|| head[(i / 5) as usize % head.len()])
    })
    .await;
    assert!(took < Duration::from_secs(4), "plain head: {took:?}");

    // One byte a second into the TLS handshake.
    let s = TcpStream::connect(secure.api_addr())
        .await
        .expect("connect");
    let took = closed_within(s, |i| (i % 5 == 0).then_some(0x16)).await;
    assert!(took < Duration::from_secs(4), "TLS handshake: {took:?}");

    // A complete head, then a body at one byte a second.
    let mut s = TcpStream::connect(plain.api_addr()).await.expect("connect");
    s.write_all(
        b"POST /v1/topology/switch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .expect("write");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    loop {
        let _ = s.write_all(b" ").await;
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(1000), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "body never cut off"
        );
        if !answer.is_empty() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 4"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The cap: 8 idle connections held open (each inside its header
    // timeout), the 9th is closed at once; after they go, service resumes.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(plain.api_addr()).await.expect("connect"));
    }
    let extra = TcpStream::connect(plain.api_addr()).await.expect("connect");
    let took = closed_within(extra, |_| None).await;
    assert!(took < Duration::from_millis(400), "over the cap: {took:?}");
    drop(held);
    wait_for("the plain node answers again", DEADLINE, || async {
        let r = request(
            plain.api_addr(),
            hyper::Method::GET,
            "/livez",
            None,
            Bytes::new(),
        )
        .await;
        r.ok().filter(|r| r.status == StatusCode::OK)
    })
    .await;
    plain.shutdown().await.expect("shutdown");
    secure.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reports_only_for_itself_and_a_follower_relays_tokens_for_the_leader_to_check() {
    init_tracing();
    let c = TestCluster::start(3, Options::default()).await;
    let leader = c.leader().await;
    let follower = c.followers().await[0];

    // Through a follower with the harness token: forwarded, checked by the
    // leader, prepared and committed by every node over mutual TLS.
    let v = switch_and_wait(c.api(follower), "hyparview", "through-follower").await;
    assert_eq!(v.status, topod::api::types::TransitionStatus::Committed);
    // `wait` answers at the commit; the members' health reports after the
    // cut-over are still on their way then. Let them land first, or they
    // look like something this test's refused requests wrote.
    wait_for("every member's health report", DEADLINE, || async {
        (c.applied(leader).state.record(v.id)?.health.len() == 3).then_some(())
    })
    .await;

    // Through a follower without a token: 401, nothing written.
    let before = c.applied(leader).state.clone();
    let r = request_exact(
        c.api(follower),
        hyper::Method::POST,
        "/v1/topology/switch",
        &[("content-type", "application/json")],
        r#"{"topology":"full_mesh"}"#,
    )
    .await
    .expect("answer");
    r.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    // A report for node `other`, sent to the leader with `claimant`'s valid
    // node certificate: refused, nothing written.
    let claimant = follower;
    let other = (1..=3u64).find(|&n| n != claimant).expect("other");
    let cert = tls::ca()
        .issue_for("test", claimant, &[], NODE_VALIDITY)
        .expect("issue");
    let body = serde_json::json!({"node": other, "phase": {"phase": "failed", "reason": "forged"}});
    let (status, text) = post_tls(
        c.node(leader).raft_addr(),
        client_config(Some((&cert.cert_pem, &cert.key_pem))),
        &format!("/v1/transitions/{}/reports", v.id),
        serde_json::to_vec(&body).expect("json"),
    )
    .await
    .expect("an answer");
    let text = String::from_utf8_lossy(&text);
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains(&format!("node {other}")), "{text}");
    c.wait_converged().await;
    assert_eq!(c.applied(leader).state, before, "nothing written");
    c.shutdown().await;
}

/// GETs `path` over HTTPS trusting only the CA in `ca_pem`.
async fn get_trusting(addr: SocketAddr, ca_pem: &str, path: &str) -> Result<StatusCode, String> {
    let roots = topod::security::tls::roots_from_pem(ca_pem.as_bytes())?;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<Bytes>> =
        topod::security::client::operator_client(Some(roots), Duration::from_secs(5));
    let uri: hyper::Uri = format!("https://{addr}{path}").parse().expect("uri");
    match tokio::time::timeout(Duration::from_secs(10), client.get(uri)).await {
        Ok(Ok(r)) => Ok(r.status()),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("timed out".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_can_serve_the_operator_s_own_certificate() {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    // The operator's own CA and a server certificate for 127.0.0.1.
    let operator = CertAuthority::generate("operator", CA_VALIDITY).expect("CA");
    let api_cert = operator.issue(99, &[], NODE_VALIDITY).expect("issue");
    let (cert, key) = (dir.path().join("api.pem"), dir.path().join("api.key"));
    std::fs::write(&cert, &api_cert.cert_pem).expect("write");
    std::fs::write(&key, &api_cert.key_pem).expect("write");
    let mut config = node_config(
        "test",
        1,
        dir.path().join("node1"),
        true,
        Vec::new(),
        &Options::default(),
    );
    config.security.api_cert = Some(cert);
    config.security.api_key = Some(key);
    let node = topod::node::start_node(
        config,
        Arc::new(topod::control::executor::ScriptedExecutor::default()),
    )
    .await
    .expect("starts");
    // The API presents the operator's certificate: trusted by its CA...
    assert_eq!(
        get_trusting(node.api_addr(), &operator.cert_pem, "/livez").await,
        Ok(StatusCode::OK)
    );
    // ...and not by the cluster CA, which still signs what peers see on
    // the Raft listener.
    assert!(get_trusting(node.api_addr(), tls::ca_pem(), "/livez")
        .await
        .is_err());
    node.shutdown().await.expect("shutdown");
}
