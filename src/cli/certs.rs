//! Certificates for local TLS ensembles (`zkelect ensemble --tls`) and the tests: a CA and a leaf
//! per node, written as ZooKeeper reads PEM stores (the unencrypted PKCS#8 key and the chain in one
//! file; a file of CA certificates as the trust store). EC P-256 keys: what ZooKeeper's own tests
//! use and what both Java and rustls accept.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When a leaf certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From a day ago for a year.
    Current,
    /// Ended yesterday.
    #[allow(dead_code, reason = "for the tests, which include this file")]
    Expired,
    /// Starts tomorrow.
    #[allow(dead_code, reason = "for the tests, which include this file")]
    NotYetValid,
}

/// What a leaf certificate says.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub common_name: String,
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    /// Extended key usages: quorum peers need both (the same certificate dials and accepts).
    pub server_auth: bool,
    pub client_auth: bool,
    pub validity: Validity,
}

impl Leaf {
    /// A node's certificate: its own address, 127.0.0.1 (the source address of every loopback
    /// dial) and `localhost`, both usages, valid now.
    pub fn node(sid: i64, ip: IpAddr) -> Leaf {
        let mut ips = vec![ip];
        let loopback: IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
        if ip != loopback {
            ips.push(loopback);
        }
        Leaf {
            common_name: format!("zkelect node {sid}"),
            ips,
            dns: vec!["localhost".into()],
            server_auth: true,
            client_auth: true,
            validity: Validity::Current,
        }
    }
}

/// A certificate authority that signs the leaves.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn err(e: rcgen::Error) -> String {
    format!("cannot make a certificate: {e}")
}

impl Ca {
    pub fn new(name: &str) -> Result<Ca, String> {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(2 * 86_400);
        params.not_after = now + Duration::from_secs(3650 * 86_400);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().map_err(err)?).map_err(err)?;
        Ok(Ca { issuer })
    }

    /// The trust store: this CA's certificate.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A key store: the leaf's private key (PKCS#8) followed by its certificate.
    pub fn key_store(&self, leaf: &Leaf) -> Result<String, String> {
        let mut params = CertificateParams::new(leaf.dns.clone()).map_err(err)?;
        params.subject_alt_names.extend(leaf.ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.distinguished_name.push(DnType::CommonName, leaf.common_name.as_str());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = [
            leaf.server_auth.then_some(ExtendedKeyUsagePurpose::ServerAuth),
            leaf.client_auth.then_some(ExtendedKeyUsagePurpose::ClientAuth),
        ]
        .into_iter()
        .flatten()
        .collect();
        let now = time::OffsetDateTime::now_utc();
        let day = Duration::from_secs(86_400);
        (params.not_before, params.not_after) = match leaf.validity {
            Validity::Current => (now - day, now + 365 * day),
            Validity::Expired => (now - 30 * day, now - day),
            Validity::NotYetValid => (now + day, now + 30 * day),
        };
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(format!("{}{}", key.serialize_pem(), cert.pem()))
    }
}

/// Writes `ca.pem` (the trust store) into `dir` and returns its path.
pub fn write_trust_store(ca: &Ca, dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("ca.pem");
    std::fs::write(&path, ca.pem())?;
    Ok(path)
}

/// Writes `node<sid>.pem` (the key store of a node at `ip`) into `dir` and returns its path.
pub fn write_node_key_store(ca: &Ca, dir: &Path, sid: i64, ip: IpAddr) -> Result<PathBuf, String> {
    let path = dir.join(format!("node{sid}.pem"));
    let pem = ca.key_store(&Leaf::node(sid, ip))?;
    std::fs::write(&path, pem).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The zoo.cfg lines of quorum TLS for a node with these stores.
pub fn zoo_cfg_lines(key_store: &Path, trust_store: &Path) -> String {
    format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        key_store.display(),
        trust_store.display()
    )
}
