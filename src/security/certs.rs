//! The cluster CA and node certificates (`topod certs init|issue`), made
//! with rcgen: ECDSA P-256 keys, a self-signed CA whose name carries the
//! cluster id, and node certificates signed by it whose names carry the
//! node id ([`super::identity`]), usable as TLS server and client
//! certificates.
//!
//! Files in a certs directory: `ca.pem`, `ca.key`, `node-<id>.pem`,
//! `node-<id>.key`; keys are written with mode 0600. Nothing is
//! overwritten: an existing file is an error naming it.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

use super::identity::{node_uri, NODE_DNS_NAME};
use crate::model::NodeId;

/// Default validity of a CA: ten years.
pub const CA_VALIDITY: Duration = Duration::from_secs(3650 * 86_400);
/// Default validity of a node certificate: one year.
pub const NODE_VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// Names every node certificate carries besides its own, so that local
/// clients (topoctl on the node's machine) can check the API's certificate.
pub const DEFAULT_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Why certificate material could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists: not overwritten (remove it first to replace it)", .0.display())]
    Exists(PathBuf),
    #[error("{}: {detail}", path.display())]
    Bad { path: PathBuf, detail: String },
    #[error("host {0:?} is neither an IP address nor a DNS name")]
    BadHost(String),
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The files of a certs directory.
#[derive(Debug, Clone)]
pub struct CertDir(pub PathBuf);

impl CertDir {
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.0.join("ca.key")
    }
    pub fn node_cert(&self, node: NodeId) -> PathBuf {
        self.0.join(format!("node-{node}.pem"))
    }
    pub fn node_key(&self, node: NodeId) -> PathBuf {
        self.0.join(format!("node-{node}.key"))
    }
}

/// A cluster CA: its certificate and key, PEM.
pub struct CertAuthority {
    pub cluster_id: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// rcgen's view, for signing.
    issuer: Certificate,
    key: KeyPair,
}

/// A node certificate and its key, PEM.
pub struct NodeCert {
    pub cert_pem: String,
    pub key_pem: String,
}

fn validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // An hour back: peers whose clocks lag a little still accept it.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::seconds(valid_for.as_secs() as i64);
}

fn ca_params(cluster_id: &str) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("topod cluster CA {cluster_id}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.subject_alt_names = vec![SanType::URI(format!("topod://{cluster_id}/ca").try_into()?)];
    Ok(params)
}

impl CertAuthority {
    /// A new CA for `cluster_id`, valid for `valid_for`.
    pub fn generate(cluster_id: &str, valid_for: Duration) -> Result<CertAuthority, CertError> {
        let mut params = ca_params(cluster_id)?;
        validity(&mut params, valid_for);
        let key = KeyPair::generate()?;
        let issuer = params.self_signed(&key)?;
        Ok(CertAuthority {
            cluster_id: cluster_id.to_string(),
            cert_pem: issuer.pem(),
            key_pem: key.serialize_pem(),
            issuer,
            key,
        })
    }

    /// The CA of a certs directory.
    pub fn load(dir: &CertDir) -> Result<CertAuthority, CertError> {
        let cert_pem = read(&dir.ca_cert())?;
        let key_pem = read(&dir.ca_key())?;
        let bad = |path: PathBuf, detail: String| CertError::Bad { path, detail };
        let params = CertificateParams::from_ca_cert_pem(&cert_pem)
            .map_err(|e| bad(dir.ca_cert(), format!("not a CA certificate: {e}")))?;
        let cluster_id = params
            .subject_alt_names
            .iter()
            .find_map(|n| match n {
                SanType::URI(u) => u
                    .as_str()
                    .strip_prefix("topod://")
                    .and_then(|r| r.strip_suffix("/ca"))
                    .map(str::to_string),
                _ => None,
            })
            .ok_or_else(|| {
                bad(
                    dir.ca_cert(),
                    "not a topod cluster CA (no topod://<cluster>/ca name)".into(),
                )
            })?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| bad(dir.ca_key(), format!("not a private key: {e}")))?;
        // rcgen signs with a `Certificate`: the same name and key as the
        // stored CA, so what it signs chains to the stored certificate.
        let issuer = params.self_signed(&key)?;
        Ok(CertAuthority {
            cluster_id,
            cert_pem,
            key_pem,
            issuer,
            key,
        })
    }

    /// A certificate for node `node`, also naming `hosts` (DNS names or IP
    /// addresses the admin API is reached by), valid for `valid_for`.
    pub fn issue(
        &self,
        node: NodeId,
        hosts: &[String],
        valid_for: Duration,
    ) -> Result<NodeCert, CertError> {
        self.issue_for(&self.cluster_id.clone(), node, hosts, valid_for)
    }

    /// [`Self::issue`] naming another cluster than the CA's own (one CA
    /// shared by many test clusters; a node accepts a peer by the cluster
    /// its certificate names, and the CA that signed it).
    pub fn issue_for(
        &self,
        cluster_id: &str,
        node: NodeId,
        hosts: &[String],
        valid_for: Duration,
    ) -> Result<NodeCert, CertError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("topod node {node} of {cluster_id}"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let mut names = vec![
            SanType::DnsName(NODE_DNS_NAME.try_into()?),
            SanType::URI(node_uri(cluster_id, node).try_into()?),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for h in DEFAULT_HOSTS
            .iter()
            .map(|s| s.to_string())
            .chain(hosts.iter().cloned())
        {
            if !seen.insert(h.clone()) {
                continue;
            }
            names.push(host_name(&h)?);
        }
        params.subject_alt_names = names;
        validity(&mut params, valid_for);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer, &self.key)?;
        Ok(NodeCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes `ca.pem` and `ca.key` into `dir` (created), refusing to
    /// overwrite.
    pub fn write(&self, dir: &CertDir) -> Result<(), CertError> {
        create_dir(&dir.0)?;
        check_absent(&dir.ca_cert())?;
        check_absent(&dir.ca_key())?;
        write_file(&dir.ca_key(), &self.key_pem, true)?;
        write_file(&dir.ca_cert(), &self.cert_pem, false)
    }
}

impl NodeCert {
    /// Writes `node-<id>.pem` and `node-<id>.key` into `dir`, refusing to
    /// overwrite unless `replace` (a rotation).
    pub fn write(&self, dir: &CertDir, node: NodeId, replace: bool) -> Result<(), CertError> {
        create_dir(&dir.0)?;
        if !replace {
            check_absent(&dir.node_cert(node))?;
            check_absent(&dir.node_key(node))?;
        }
        // Key first, each through a rename: a node reloading meanwhile
        // sees the old pair or the new one's key before its certificate,
        // which it refuses and retries (never a torn file).
        write_file(&dir.node_key(node), &self.key_pem, true)?;
        write_file(&dir.node_cert(node), &self.cert_pem, false)
    }
}

/// The `[security]` section of node `node` whose files are in `dir`.
pub fn security_config(dir: &CertDir, node: NodeId) -> crate::config::SecurityConfig {
    crate::config::SecurityConfig {
        ca_cert: Some(dir.ca_cert()),
        cert: Some(dir.node_cert(node)),
        key: Some(dir.node_key(node)),
        ..crate::config::SecurityConfig::default()
    }
}

/// Makes sure `dir` holds a CA of `cluster_id` (created if absent) and a
/// certificate for each of `nodes` (issued if absent); what exists is
/// kept. What `topod dev` runs on every start.
pub fn provision(
    dir: &CertDir,
    cluster_id: &str,
    nodes: impl IntoIterator<Item = NodeId>,
) -> Result<(), CertError> {
    if !dir.ca_cert().exists() {
        CertAuthority::generate(cluster_id, CA_VALIDITY)?.write(dir)?;
    }
    let ca = CertAuthority::load(dir)?;
    for node in nodes {
        if !dir.node_cert(node).exists() || !dir.node_key(node).exists() {
            ca.issue(node, &[], NODE_VALIDITY)?.write(dir, node, true)?;
        }
    }
    Ok(())
}

fn host_name(h: &str) -> Result<SanType, CertError> {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        return Err(CertError::BadHost(h.to_string()));
    }
    Ok(SanType::DnsName(
        h.to_string()
            .try_into()
            .map_err(|_| CertError::BadHost(h.to_string()))?,
    ))
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn check_absent(path: &Path) -> Result<(), CertError> {
    if path.exists() {
        return Err(CertError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename; `secret`
/// files get mode 0600.
fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::super::identity::CertIdentity;
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn an_issued_certificate_names_its_node_and_cluster() {
        let ca = CertAuthority::generate("prod", CA_VALIDITY).unwrap();
        let node = ca.issue(7, &["10.0.0.7".into()], NODE_VALIDITY).unwrap();
        let der = CertificateDer::from_pem_slice(node.cert_pem.as_bytes()).unwrap();
        let id = CertIdentity::of_cluster(&der, "prod").unwrap();
        assert_eq!((id.cluster_id.as_str(), id.node_id), ("prod", 7));
        let left = id.remaining(std::time::SystemTime::now());
        assert!(left > NODE_VALIDITY - Duration::from_secs(60) && left <= NODE_VALIDITY);
        assert!(CertIdentity::of_cluster(&der, "other").is_err());
    }

    #[test]
    fn a_loaded_ca_signs_certificates_that_chain_to_the_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let certs = CertDir(dir.path().join("certs"));
        CertAuthority::generate("c1", CA_VALIDITY)
            .unwrap()
            .write(&certs)
            .unwrap();
        let again = CertAuthority::generate("c1", CA_VALIDITY).unwrap();
        assert!(matches!(again.write(&certs), Err(CertError::Exists(_))));
        let ca = CertAuthority::load(&certs).unwrap();
        assert_eq!(ca.cluster_id, "c1");
        let node = ca.issue(2, &[], NODE_VALIDITY).unwrap();
        // Verified against the CA file with rustls' own WebPKI rules.
        let roots = super::super::tls::roots_from_pem(ca.cert_pem.as_bytes()).unwrap();
        let leaf = CertificateDer::from_pem_slice(node.cert_pem.as_bytes()).unwrap();
        super::super::tls::verify_chain(&roots, &leaf).expect("chains to the stored CA");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(certs.ca_key())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_bad_host_is_named() {
        let ca = CertAuthority::generate("c1", CA_VALIDITY).unwrap();
        let err = ca
            .issue(1, &["no spaces".into()], NODE_VALIDITY)
            .err()
            .unwrap();
        assert!(err.to_string().contains("\"no spaces\""), "{err}");
    }
}
