//! Certificates for in-process test clusters, which run secure (mutual
//! TLS, the default) like a real one: one CA per test process, written
//! into each cluster's temp dir, issuing a certificate per node; and the
//! HTTPS client the tests call the admin API with (it trusts that CA).
//! Included by `tests/common` and `tests/dataplane_common`.

use std::path::Path;
use std::sync::OnceLock;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use topod::config::SecurityConfig;
use topod::model::NodeId;
use topod::security::certs::{self, CertAuthority, CertDir};

struct SharedCa {
    ca: CertAuthority,
}

fn shared() -> &'static SharedCa {
    static CA: OnceLock<SharedCa> = OnceLock::new();
    CA.get_or_init(|| {
        let ca = CertAuthority::generate("tests", certs::CA_VALIDITY).expect("test CA");
        SharedCa { ca }
    })
}

/// The `[security]` section of node `node` of `cluster`, its files written
/// under `dir/certs-<cluster>` (a node certificate issued anew each call).
pub fn security(cluster: &str, node: NodeId, dir: &Path) -> SecurityConfig {
    let ca = &shared().ca;
    let certs = CertDir(dir.join(format!("certs-{cluster}")));
    std::fs::create_dir_all(&certs.0).expect("certs dir");
    if !certs.ca_cert().exists() {
        std::fs::write(certs.ca_cert(), &ca.cert_pem).expect("write CA");
    }
    ca.issue_for(cluster, node, &[], certs::NODE_VALIDITY)
        .expect("issue")
        .write(&certs, node, true)
        .expect("write node certificate");
    certs::security_config(&certs, node)
}

/// The test CA's certificate, PEM.
pub fn ca_pem() -> &'static str {
    &shared().ca.cert_pem
}

/// The test CA (to issue certificates for other clusters or nodes).
pub fn ca() -> &'static CertAuthority {
    &shared().ca
}

/// An HTTPS (and HTTP) client trusting the test CA, with no client
/// certificate (an operator), and no pooling.
pub fn client<B>() -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut pem = ca_pem().to_string();
    for extra in trusted().lock().expect("lock").iter() {
        pem.push_str(extra);
    }
    let roots = topod::security::tls::roots_from_pem(pem.as_bytes()).expect("roots");
    let config = rustls::ClientConfig::builder_with_provider(topod::security::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

fn trusted() -> &'static std::sync::Mutex<Vec<String>> {
    static EXTRA: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    EXTRA.get_or_init(Default::default)
}

/// Makes [`client`] also trust the CA in `pem_file` (a `topod dev`
/// cluster's own).
pub fn trust_file(pem_file: &Path) {
    let pem = std::fs::read_to_string(pem_file).expect("read CA");
    trusted().lock().expect("lock").push(pem);
}

fn plain() -> &'static std::sync::Mutex<std::collections::BTreeSet<std::net::SocketAddr>> {
    static PLAIN: OnceLock<std::sync::Mutex<std::collections::BTreeSet<std::net::SocketAddr>>> =
        OnceLock::new();
    PLAIN.get_or_init(Default::default)
}

/// Marks `addr` as the API of an insecure node (plain HTTP).
pub fn register_plain(addr: std::net::SocketAddr) {
    plain().lock().expect("lock").insert(addr);
}

/// `https://addr`, or `http://addr` for an insecure node's API.
pub fn base(addr: std::net::SocketAddr) -> String {
    if plain().lock().expect("lock").contains(&addr) {
        format!("http://{addr}")
    } else {
        format!("https://{addr}")
    }
}

/// [`security`] as a TOML `[security]` table, for a config file.
pub fn security_toml(cluster: &str, node: NodeId, dir: &Path) -> String {
    let s = security(cluster, node, dir);
    let path = |p: Option<std::path::PathBuf>| p.expect("path").display().to_string();
    format!(
        "\n[security]\nca_cert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        path(s.ca_cert),
        path(s.cert),
        path(s.key)
    )
}

/// A file holding the test CA's certificate (for `topoctl --ca-cert`).
pub fn ca_file() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca_pem()).expect("write CA");
        (dir, path)
    });
    path
}
