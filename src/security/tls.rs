//! [`TlsContext`]: this node's certificate material, loaded from the
//! `[security]` files and reloadable while the node runs, and the rustls
//! configurations built on it.
//!
//! The configurations are built once; their certificate resolvers and
//! verifiers read the context's current material on every handshake, so a
//! [`TlsContext::reload`] (SIGHUP or a changed file, see
//! [`super::reload`]) rotates the node certificate — and the CA — without a
//! restart. Connections already open keep the certificates they were made
//! with.
//!
//! - Peers (Raft RPC listener, overlay transport): a client certificate of
//!   this cluster's CA is required; a server accepts any node certificate
//!   of the cluster, whatever address was dialed (the name checked is
//!   [`NODE_DNS_NAME`]).
//! - The admin API: the node certificate (or `security.api_cert`), and a
//!   client certificate is optional — a node presenting one is known as
//!   that node; anyone else needs a token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::identity::{CertIdentity, IdentityError, NODE_DNS_NAME};
use crate::config::SecurityConfig;
use crate::model::NodeId;

/// Why the certificate material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("security.{key} is not set: a secure node needs security.ca_cert, security.cert and security.key (create them with `topod certs init --cluster-id ID` and `topod certs issue --node N`), or set security.insecure = true for plain, unauthenticated operation")]
    Missing { key: &'static str },
    #[error("{key} ({}): {detail}", path.display())]
    File {
        key: &'static str,
        path: PathBuf,
        detail: String,
    },
}

/// The files the material is read from.
#[derive(Debug, Clone)]
struct Paths {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    api: Option<(PathBuf, PathBuf)>,
}

/// One consistent set of material.
struct Loaded {
    roots: Arc<RootCertStore>,
    node_key: Arc<CertifiedKey>,
    api_key: Arc<CertifiedKey>,
    identity: CertIdentity,
    api_identity_expiry: Option<std::time::SystemTime>,
    peer_verifier: Arc<dyn ClientCertVerifier>,
    server_verifier: Arc<WebPkiServerVerifier>,
}

/// This node's TLS material and the configurations that use it.
pub struct TlsContext {
    cluster_id: String,
    me: NodeId,
    paths: Paths,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Loaded>>,
}

/// The crypto provider used everywhere (ring: no C toolchain needed for a
/// static build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_err(key: &'static str, path: &Path, detail: impl ToString) -> TlsError {
    TlsError::File {
        key,
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// The certificates of a PEM file as trust roots.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(pem) {
        let c = c.map_err(|e| format!("not PEM: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("holds no certificate".into());
    }
    Ok(roots)
}

/// Checks that `leaf` is a node certificate chaining to `roots`, valid now.
pub fn verify_chain(roots: &RootCertStore, leaf: &CertificateDer<'_>) -> Result<(), String> {
    let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots.clone()), provider())
        .build()
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(NODE_DNS_NAME).expect("a valid DNS name");
    v.verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn read_chain(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(key, path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(key, path, format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(file_err(key, path, "holds no certificate"));
    }
    Ok(chain)
}

fn read_key(
    provider: &CryptoProvider,
    key: &'static str,
    path: &Path,
    chain: Vec<CertificateDer<'static>>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let der = PrivateKeyDer::from_pem_file(path).map_err(|e| file_err(key, path, e))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| file_err(key, path, format!("unusable private key: {e}")))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        file_err(
            key,
            path,
            format!("does not belong to the certificate: {e}"),
        )
    })?;
    Ok(Arc::new(ck))
}

impl Paths {
    fn of(cfg: &SecurityConfig) -> Result<Paths, TlsError> {
        let need = |v: &Option<PathBuf>, key| v.clone().ok_or(TlsError::Missing { key });
        Ok(Paths {
            ca: need(&cfg.ca_cert, "ca_cert")?,
            cert: need(&cfg.cert, "cert")?,
            key: need(&cfg.key, "key")?,
            api: cfg.api_cert.clone().zip(cfg.api_key.clone()),
        })
    }

    fn load(&self, p: &Arc<CryptoProvider>, cluster: &str, me: NodeId) -> Result<Loaded, TlsError> {
        let ca_pem =
            std::fs::read(&self.ca).map_err(|e| file_err("security.ca_cert", &self.ca, e))?;
        let roots = Arc::new(
            roots_from_pem(&ca_pem).map_err(|e| file_err("security.ca_cert", &self.ca, e))?,
        );
        let chain = read_chain("security.cert", &self.cert)?;
        let identity = CertIdentity::of_cluster(&chain[0], cluster)
            .map_err(|e| file_err("security.cert", &self.cert, e))?;
        if identity.node_id != me {
            return Err(file_err(
                "security.cert",
                &self.cert,
                format!(
                    "the certificate is node {}'s, but this node is {me}",
                    identity.node_id
                ),
            ));
        }
        verify_chain(&roots, &chain[0]).map_err(|e| {
            file_err(
                "security.cert",
                &self.cert,
                format!("not valid against security.ca_cert: {e}"),
            )
        })?;
        let node_key = read_key(p, "security.key", &self.key, chain)?;
        let (api_key, api_identity_expiry) = match &self.api {
            None => (node_key.clone(), None),
            Some((cert, key)) => {
                let chain = read_chain("security.api_cert", cert)?;
                let expiry = x509_parser::parse_x509_certificate(&chain[0])
                    .map(|(_, c)| c.validity().not_after.timestamp())
                    .map_err(|e| file_err("security.api_cert", cert, e))?;
                let expiry =
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(expiry.max(0) as u64);
                (read_key(p, "security.api_key", key, chain)?, Some(expiry))
            }
        };
        let peer_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), p.clone())
            .build()
            .map_err(|e| file_err("security.ca_cert", &self.ca, e))?;
        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), p.clone())
            .build()
            .map_err(|e| file_err("security.ca_cert", &self.ca, e))?;
        Ok(Loaded {
            roots,
            node_key,
            api_key,
            identity,
            api_identity_expiry,
            peer_verifier,
            server_verifier,
        })
    }
}

impl TlsContext {
    /// Loads the material `cfg` names, checking that the node certificate
    /// is node `me`'s of `cluster` and chains to the CA.
    pub fn load(
        cfg: &SecurityConfig,
        cluster: &str,
        me: NodeId,
    ) -> Result<Arc<TlsContext>, TlsError> {
        let paths = Paths::of(cfg)?;
        let provider = provider();
        let loaded = paths.load(&provider, cluster, me)?;
        Ok(Arc::new(TlsContext {
            cluster_id: cluster.to_string(),
            me,
            paths,
            provider,
            current: RwLock::new(Arc::new(loaded)),
        }))
    }

    /// Reads the files again; on success the new material is used for every
    /// new connection. On failure the old material stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = self.paths.load(&self.provider, &self.cluster_id, self.me)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    fn now(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The node certificate's identity (and expiry).
    pub fn identity(&self) -> CertIdentity {
        self.now().identity.clone()
    }

    /// When the admin API's own certificate expires, if it is not the node
    /// certificate.
    pub fn api_cert_expiry(&self) -> Option<std::time::SystemTime> {
        self.now().api_identity_expiry
    }

    /// The files reloads read (for the change watcher).
    pub fn files(&self) -> Vec<PathBuf> {
        let p = &self.paths;
        let mut v = vec![p.ca.clone(), p.cert.clone(), p.key.clone()];
        if let Some((c, k)) = &p.api {
            v.push(c.clone());
            v.push(k.clone());
        }
        v
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The trust roots in use.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.now().roots.clone()
    }

    /// For listeners peers connect to: a node certificate of this cluster
    /// is required. `alpn`: the protocols offered (`http/1.1` for HTTP).
    pub fn peer_server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        self.server_config(true, alpn)
    }

    /// For the admin API: a node certificate is optional.
    pub fn api_server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        self.server_config(false, &[b"http/1.1"])
    }

    fn server_config(self: &Arc<Self>, mandatory: bool, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let verifier = Arc::new(PeerVerifier {
            ctx: self.clone(),
            mandatory,
        });
        let resolver: Arc<dyn ResolvesServerCert> = Arc::new(OwnKey {
            ctx: self.clone(),
            api: !mandatory,
        });
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(resolver);
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    /// For connections to peers: presents the node certificate and accepts
    /// any node certificate of this cluster.
    pub fn peer_client_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut cfg = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NodeServerVerifier { ctx: self.clone() }))
            .with_client_cert_resolver(Arc::new(OwnKey {
                ctx: self.clone(),
                api: false,
            }));
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    /// The node a peer's certificate names (after the handshake verified
    /// it).
    pub fn peer_node(&self, certs: Option<&[CertificateDer<'_>]>) -> Option<NodeId> {
        let leaf = certs?.first()?;
        CertIdentity::of_cluster(leaf, &self.cluster_id)
            .ok()
            .map(|i| i.node_id)
    }
}

/// Presents the current node (or API) certificate.
#[derive(Debug)]
struct OwnKey {
    ctx: Arc<TlsContext>,
    api: bool,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("cluster_id", &self.cluster_id)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for OwnKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = self.ctx.now();
        Some(if self.api {
            now.api_key.clone()
        } else {
            now.node_key.clone()
        })
    }
}

impl ResolvesClientCert for OwnKey {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.ctx.now().node_key.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// The handshake signature checks both verifiers share: the provider's
/// algorithms.
struct Signatures<'a>(&'a rustls::crypto::WebPkiSupportedAlgorithms);

impl Signatures<'_> {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.0)
    }
    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.0)
    }
}

impl TlsContext {
    fn signatures(&self) -> Signatures<'_> {
        Signatures(&self.provider.signature_verification_algorithms)
    }
}

fn other(e: IdentityError) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(e),
    )))
}

/// A client certificate must chain to the CA and name a node of this
/// cluster.
#[derive(Debug)]
struct PeerVerifier {
    ctx: Arc<TlsContext>,
    mandatory: bool,
}

impl ClientCertVerifier for PeerVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let current = self.ctx.now();
        current
            .peer_verifier
            .verify_client_cert(end_entity, intermediates, now)?;
        CertIdentity::of_cluster(end_entity, &self.ctx.cluster_id).map_err(other)?;
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ctx.signatures().tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ctx.signatures().tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.ctx.signatures().0.supported_schemes()
    }
}

/// A server certificate must be a node certificate of this cluster,
/// whatever address was dialed.
#[derive(Debug)]
struct NodeServerVerifier {
    ctx: Arc<TlsContext>,
}

impl ServerCertVerifier for NodeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialed: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(NODE_DNS_NAME).expect("a valid DNS name");
        self.ctx.now().server_verifier.verify_server_cert(
            end_entity,
            intermediates,
            &name,
            ocsp_response,
            now,
        )?;
        CertIdentity::of_cluster(end_entity, &self.ctx.cluster_id).map_err(other)?;
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ctx.signatures().tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ctx.signatures().tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.ctx.signatures().0.supported_schemes()
    }
}
