//! Quorum TLS (`sslQuorum`, `portUnification`), as ZooKeeper 3.8's `QuorumX509Util` and
//! `UnifiedServerSocket` do it, on rustls: the dialler is the TLS client and the acceptor the TLS
//! server, on the election port and the quorum port alike.
//!
//! - [`TlsContext`]: the key and trust stores (PEM, as ZooKeeper reads them) as rustls
//!   configurations; with `sslQuorumReloadCertFiles`, a replaced store file is picked up by the next
//!   connection (a broken replacement is logged and the previous material kept).
//! - [`Security`]: what a node dials and accepts (the four states of ZooKeeper's rolling upgrade).
//! - [`TlsLink`]: one TLS session shared by the thread that reads and the thread that writes it.
//!   Neither holds the session's lock while it waits on the socket: the reader takes bytes from the
//!   socket first and hands them to the session afterwards; the writer encrypts under the lock and
//!   writes after releasing it.
//! - Names: the server's certificate is checked against the address dialled (IP SAN for an IP
//!   literal, DNS SAN for a configured name), the client's against its source address; never by
//!   reverse DNS (CVE-2026-24281).

use crate::config::{ClientAuth, QuorumTlsConfig, Secret, StoreConfig, StoreType, TlsVersion};
use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, Connection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme,
};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A key or trust store that cannot be used (at start: the node does not run).
#[derive(Debug)]
pub enum TlsError {
    /// Naming the file, what is wrong with it, and what to do.
    Store {
        path: PathBuf,
        problem: String,
    },
    Config(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Store { path, problem } => write!(f, "{}: {problem}", path.display()),
            TlsError::Config(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for TlsError {}

/// What a node dials and accepts on its election and quorum ports.
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Arc<TlsContext>>,
    /// `sslQuorum`: dial with TLS.
    dial_tls: bool,
    accept: Accept,
    /// Refused connections per peer address, for rate-limited warnings.
    refusals: Arc<Mutex<HashMap<IpAddr, Refusals>>>,
}

/// How often refused connections from one address are logged at WARN (a peer with a bad
/// certificate retries with every notification).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Refusals {
    logged: Option<Instant>,
    since: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Accept {
    #[default]
    Plaintext,
    TlsOnly,
    /// `portUnification`: TLS or plaintext, told apart by the first bytes within the timeout.
    Both {
        detect: Duration,
    },
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Security(dials {}, accepts {})", if self.dial_tls { "TLS" } else { "plaintext" }, self.accepts())
    }
}

impl Security {
    /// Plaintext only (no quorum TLS configured).
    pub fn plaintext() -> Security {
        Security::default()
    }

    /// From the configuration, reading the stores (errors name the file and the fix).
    pub fn from_config(cfg: &QuorumTlsConfig) -> Result<Security, TlsError> {
        if !cfg.in_use() {
            log::info!("Using insecure (non-TLS) quorum communication");
            return Ok(Security::plaintext());
        }
        let ctx = Arc::new(TlsContext::load(cfg)?);
        if cfg.crl || cfg.ocsp {
            log::warn!(
                "ssl.quorum.crl or ssl.quorum.ocsp is set, but zkelect does not check certificate revocation: a \
                 revoked certificate that chains to the trust store is still accepted (to shut a peer out, trust a CA \
                 that did not sign its certificate)"
            );
        }
        let accept = match (cfg.ssl_quorum, cfg.port_unification) {
            (_, true) => Accept::Both { detect: Duration::from_millis(cfg.handshake_detection_timeout_ms.into()) },
            (true, false) => Accept::TlsOnly,
            (false, false) => Accept::Plaintext,
        };
        log::info!(
            "{}; port unification {}",
            if cfg.ssl_quorum {
                "Using TLS encrypted quorum communication"
            } else {
                "Using insecure (non-TLS) quorum communication"
            },
            if cfg.port_unification { "enabled" } else { "disabled" }
        );
        Ok(Security { tls: Some(ctx), dial_tls: cfg.ssl_quorum, accept, refusals: Arc::default() })
    }

    /// Logs a refused connection at WARN, at most once per interval per peer address (with the
    /// number refused since), at DEBUG otherwise.
    pub fn refused(&self, remote: SocketAddr, why: &str) {
        let now = Instant::now();
        let mut all = self.refusals.lock();
        let r = all.entry(remote.ip()).or_default();
        if r.logged.is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL) {
            let more =
                if r.since > 0 { format!(" ({} more refused since the last report)", r.since) } else { String::new() };
            log::warn!("Refusing a connection from {remote}: {why}{more}");
            *r = Refusals { logged: Some(now), since: 0 };
        } else {
            r.since += 1;
            log::debug!("Refusing a connection from {remote}: {why}");
        }
        if all.len() > 1024 {
            all.retain(|_, r| r.logged.is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_INTERVAL));
        }
    }

    /// Whether this node dials with TLS (`sslQuorum`).
    pub fn dials_tls(&self) -> bool {
        self.dial_tls
    }

    /// How the listeners take connections: `plaintext`, `TLS only` or `TLS and plaintext`.
    pub fn accepts(&self) -> &'static str {
        match self.accept {
            Accept::Plaintext => "plaintext",
            Accept::TlsOnly => "TLS only",
            Accept::Both { .. } => "TLS and plaintext",
        }
    }

    pub(super) fn context(&self) -> Option<&Arc<TlsContext>> {
        self.tls.as_ref()
    }

    /// The detection timeout when plaintext is accepted next to TLS.
    pub(super) fn detect(&self) -> Option<Duration> {
        match self.accept {
            Accept::Both { detect } => Some(detect),
            _ => None,
        }
    }

    pub(super) fn accepts_tls_only(&self) -> bool {
        self.accept == Accept::TlsOnly
    }
}

/// The rustls configurations built from the stores, and the files' stamps when they were read.
struct Built {
    client: Arc<ClientConfig>,
    server_verifier: Arc<WebPkiServerVerifier>,
    server: Arc<ServerConfig>,
    stamps: Vec<Option<Stamp>>,
}

/// What tells a replaced store file from the one read before.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

/// The key and trust stores as rustls configurations.
pub struct TlsContext {
    cfg: QuorumTlsConfig,
    built: Mutex<Arc<Built>>,
}

impl TlsContext {
    pub fn load(cfg: &QuorumTlsConfig) -> Result<TlsContext, TlsError> {
        let built = build(cfg)?;
        Ok(TlsContext { cfg: cfg.clone(), built: Mutex::new(Arc::new(built)) })
    }

    /// `ssl.quorum.hostnameVerification`.
    pub fn hostname_verification(&self) -> bool {
        self.cfg.hostname_verification
    }

    /// Whether a claimed server id must match the certificate.
    pub fn binds_sid(&self) -> bool {
        self.cfg.binds_sid_to_certificate()
    }

    /// The current configurations; with `sslQuorumReloadCertFiles`, rebuilt first when a store
    /// file changed since it was read.
    fn current(&self) -> Arc<Built> {
        let mut built = self.built.lock();
        if self.cfg.reload_cert_files {
            let now = stamps(&self.cfg);
            if now != built.stamps {
                match build(&self.cfg) {
                    Ok(b) => {
                        log::info!("Quorum TLS key or trust store changed; new connections use the new material");
                        *built = Arc::new(b);
                    }
                    Err(e) => {
                        log::warn!("Cannot use the replaced quorum TLS store ({e}); keeping the previous material");
                        // Not again for the same files.
                        *built = Arc::new(Built {
                            client: Arc::clone(&built.client),
                            server_verifier: Arc::clone(&built.server_verifier),
                            server: Arc::clone(&built.server),
                            stamps: now,
                        });
                    }
                }
            }
        }
        Arc::clone(&built)
    }

    /// A client configuration whose verifier checks the server's certificate chain and, with
    /// hostname verification, its names against `names` (any of them).
    pub(super) fn client_config(&self, names: Vec<ServerName<'static>>) -> Arc<ClientConfig> {
        let built = self.current();
        let mut cfg = (*built.client).clone();
        let verifier = ZkServerVerifier {
            inner: Arc::clone(&built.server_verifier),
            names,
            check_names: self.cfg.hostname_verification,
        };
        cfg.dangerous().set_certificate_verifier(Arc::new(verifier));
        Arc::new(cfg)
    }

    pub(super) fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current().server)
    }
}

fn stamps(cfg: &QuorumTlsConfig) -> Vec<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    [&cfg.key_store.location, &cfg.trust_store.location, &cfg.key_store.password_path]
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(p.as_ref()?).ok()?;
            Some(Stamp { len: m.len(), modified: m.modified().ok(), inode: m.ino() })
        })
        .collect()
}

fn build(cfg: &QuorumTlsConfig) -> Result<Built, TlsError> {
    let stamps = stamps(cfg);
    let provider = Arc::new(provider(cfg)?);
    let versions = protocol_versions(cfg)?;
    let roots = Arc::new(trust_store(&cfg.trust_store)?);
    let (chain, key) = key_store(&cfg.key_store)?;
    let key_path = cfg.key_store.location.clone().unwrap_or_default();
    let unusable = |e: rustls::Error| TlsError::Store {
        path: key_path.clone(),
        problem: format!("unusable private key or certificate chain: {e}"),
    };
    let trust_error =
        |e: rustls::server::VerifierBuilderError| TlsError::Config(format!("quorum TLS trust store: {e}"));
    let server_verifier = WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
        .build()
        .map_err(|e| TlsError::Config(format!("quorum TLS trust store: {e}")))?;
    let placeholder = ZkServerVerifier { inner: Arc::clone(&server_verifier), names: Vec::new(), check_names: true };
    let mut client = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config(format!("quorum TLS protocols: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(placeholder))
        .with_client_auth_cert(chain.clone(), key.clone_key())
        .map_err(unusable)?;
    // Every connection fully verified: Java skips its host check on a resumed session.
    client.resumption = rustls::client::Resumption::disabled();
    let client_verifier = match cfg.client_auth {
        ClientAuth::Need => WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(trust_error)?,
        ClientAuth::Want => WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .allow_unauthenticated()
            .build()
            .map_err(trust_error)?,
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config(format!("quorum TLS protocols: {e}")))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key)
        .map_err(unusable)?;
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    Ok(Built { client: Arc::new(client), server_verifier, server: Arc::new(server), stamps })
}

/// ring's suites, narrowed to `ssl.quorum.ciphersuites` (Java names) in that order.
fn provider(cfg: &QuorumTlsConfig) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let wanted = cfg.cipher_suites();
    let mut suites = Vec::new();
    for name in &wanted {
        if let Some(s) = provider.cipher_suites.iter().find(|s| s.suite().as_str() == Some(name)) {
            suites.push(*s);
        }
    }
    if suites.is_empty() {
        return Err(TlsError::Config(format!(
            "ssl.quorum.ciphersuites: none of {} can be negotiated (zkelect has the AES-GCM and CHACHA20 suites, no CBC)",
            wanted.join(",")
        )));
    }
    provider.cipher_suites = suites;
    Ok(provider)
}

fn protocol_versions(cfg: &QuorumTlsConfig) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let versions: Vec<_> = cfg
        .versions()
        .into_iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    if versions.is_empty() {
        return Err(TlsError::Config(format!("ssl.quorum.protocol {}: no TLS version zkelect speaks", cfg.protocol)));
    }
    Ok(versions)
}

/// Reads a store file, refusing what zkelect cannot read with the command that converts it.
fn read_store(store: &StoreConfig, what: &str) -> Result<(PathBuf, Vec<u8>), TlsError> {
    let key = format!("ssl.quorum.{what}.location");
    let path = store.location.clone().ok_or_else(|| TlsError::Config(format!("{key} is not set")))?;
    let problem = |problem: String| TlsError::Store { path: path.clone(), problem };
    match store.store_type.unwrap_or(StoreType::Pem) {
        StoreType::Pem => {}
        StoreType::Pkcs12 => {
            return Err(problem(format!(
                "PKCS#12 stores are not read by zkelect; convert it to PEM, e.g. `openssl pkcs12 -in {} -nodes -out \
                 store.pem` (and set {key} and ssl.quorum.{what}.type=PEM)",
                path.display()
            )));
        }
        StoreType::Jks | StoreType::Bcfks => {
            return Err(problem(format!(
                "{} stores are not read by zkelect; convert it to PKCS#12 with `keytool -importkeystore -srckeystore {} \
                 -destkeystore store.p12 -deststoretype PKCS12`, then to PEM with `openssl pkcs12 -in store.p12 -nodes \
                 -out store.pem`",
                store.store_type.map_or("JKS", StoreType::as_str),
                path.display()
            )));
        }
    }
    let expected = if what == "keyStore" {
        "the node's private key (PKCS#8: BEGIN PRIVATE KEY, or BEGIN ENCRYPTED PRIVATE KEY with \
         ssl.quorum.keyStore.password) followed by its certificate chain, leaf first"
    } else {
        "the certificates of the CAs to trust"
    };
    let bytes = std::fs::read(&path)
        .map_err(|e| problem(format!("cannot read the {what}: {e}; {key} must name a PEM file holding {expected}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(problem(format!("the {what} is empty; it must be a PEM file holding {expected}")));
    }
    Ok((path, bytes))
}

fn trust_store(store: &StoreConfig) -> Result<RootCertStore, TlsError> {
    let (path, bytes) = read_store(store, "trustStore")?;
    let problem = |problem: String| TlsError::Store { path: path.clone(), problem };
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&bytes) {
        let c = c.map_err(|e| problem(format!("not a PEM file of certificates: {e}")))?;
        roots.add(c).map_err(|e| problem(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(problem("no CERTIFICATE in the trust store (a PEM file of CA certificates)".into()));
    }
    Ok(roots)
}

type KeyAndChain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A PEM key store as ZooKeeper reads it (`PEMFileLoader`): the private key and the certificate
/// chain (leaf first) in one file; the key encrypted (PKCS#8, PBES2) exactly when a password is set.
fn key_store(store: &StoreConfig) -> Result<KeyAndChain, TlsError> {
    let (path, bytes) = read_store(store, "keyStore")?;
    let problem = |problem: String| TlsError::Store { path: path.clone(), problem };
    let password = store_password(store, "keyStore")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("not a PEM key store: {e}")))?;
    if chain.is_empty() {
        return Err(problem("no CERTIFICATE in the key store (the private key and its certificate chain)".into()));
    }
    let text = String::from_utf8_lossy(&bytes);
    let key = match pem_block(&text, "ENCRYPTED PRIVATE KEY") {
        Some(block) => decrypt_key(block, &password).map_err(problem)?,
        None => {
            if !password.is_empty() {
                log::warn!(
                    "{}: ssl.quorum.keyStore.password is set but the key is not encrypted; zkelect reads it, \
                     ZooKeeper would refuse this key store",
                    path.display()
                );
            }
            PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| problem(format!("no usable PRIVATE KEY in the key store: {e}")))?
        }
    };
    if !matches!(key, PrivateKeyDer::Pkcs8(_)) {
        log::warn!(
            "{}: the key is not PKCS#8 ('BEGIN PRIVATE KEY'), which ZooKeeper requires; zkelect reads it, but convert it \
             with `openssl pkcs8 -topk8 -nocrypt` before ZooKeeper servers use the same file",
            path.display()
        );
    }
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| problem(format!("unsupported private key type ({e}); use an EC P-256 or RSA key")))?;
    Ok((chain, key))
}

/// `ssl.quorum.<what>.password`, or the text of `…passwordPath` when that is set (as
/// `X509Util.getPasswordFromConfigPropertyOrFile`).
fn store_password(store: &StoreConfig, what: &str) -> Result<Secret, TlsError> {
    let Some(file) = &store.password_path else { return Ok(store.password.clone()) };
    std::fs::read_to_string(file).map(|t| Secret::from_file_contents(&t)).map_err(|e| TlsError::Store {
        path: file.clone(),
        problem: format!("cannot read ssl.quorum.{what}.passwordPath: {e}"),
    })
}

/// The first PEM block labelled `label` in `text`, with its BEGIN and END lines.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` block (PKCS#8 `EncryptedPrivateKeyInfo`) with `password`.
fn decrypt_key(block: &str, password: &Secret) -> Result<PrivateKeyDer<'static>, String> {
    if password.is_empty() {
        return Err("the key is encrypted: set ssl.quorum.keyStore.password (or passwordPath) to its password".into());
    }
    let (_, der) = pkcs8::der::pem::decode_vec(block.as_bytes())
        .map_err(|e| format!("the ENCRYPTED PRIVATE KEY block is not valid PEM: {e}"))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| format!("the ENCRYPTED PRIVATE KEY is not a PKCS#8 EncryptedPrivateKeyInfo: {e}"))?;
    let key = info.decrypt(password.expose()).map_err(|e| {
        format!(
            "cannot decrypt the key with ssl.quorum.keyStore.password ({e}): a wrong password, or an encryption \
             zkelect does not read (it reads PBES2: PBKDF2 or scrypt with AES-CBC, as `openssl pkcs8 -topk8 -v2 \
             aes-256-cbc` writes)"
        )
    })?;
    Ok(PrivateKeyDer::Pkcs8(key.as_bytes().to_vec().into()))
}

/// Checks a server certificate's chain with webpki and, with hostname verification, its names
/// against any of the names this dial accepts (ZooKeeper: the dialled IP, then the configured name).
#[derive(Debug)]
struct ZkServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    names: Vec<ServerName<'static>>,
    check_names: bool,
}

fn is_name_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

impl ServerCertVerifier for ZkServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked first; a name error means the chain itself is fine.
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(e) if is_name_error(&e) => {
                if !self.check_names {
                    return Ok(ServerCertVerified::assertion());
                }
                let cert = ParsedCertificate::try_from(end_entity)?;
                if self.names.iter().any(|n| verify_server_name(&cert, n).is_ok()) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The name a configured host is checked as: an IP SAN for an IP literal, a DNS SAN for a name.
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => Some(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_string()).ok(),
    }
}

/// Whether a certificate names `name` (as hostname verification matches it).
pub fn cert_matches(cert: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    ParsedCertificate::try_from(cert).is_ok_and(|c| verify_server_name(&c, name).is_ok())
}

/// What was negotiated, for the logs and the operator interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`, as Java writes it.
    pub protocol: &'static str,
    pub suite: String,
}

impl fmt::Display for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} - {}", self.protocol, self.suite)
    }
}

fn info(conn: &Connection) -> TlsInfo {
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    };
    let suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .map_or_else(|| "unknown".to_string(), str::to_string);
    TlsInfo { protocol, suite }
}

/// Socket I/O with one deadline for a whole exchange (the handshake).
struct DeadlineIo<'a> {
    tcp: &'a TcpStream,
    deadline: Instant,
}

impl DeadlineIo<'_> {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake deadline passed"));
        }
        Ok(left)
    }
}

fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "TLS handshake deadline passed")
    } else {
        e
    }
}

impl Read for DeadlineIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf).map_err(timed_out)
    }
}

impl Write for DeadlineIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf).map_err(timed_out)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs a handshake to its end before `deadline`.
fn handshake(mut conn: Connection, tcp: &TcpStream, deadline: Instant) -> io::Result<Connection> {
    let mut io = DeadlineIo { tcp, deadline };
    while conn.is_handshaking() {
        conn.complete_io(&mut io)?;
    }
    while conn.wants_write() {
        conn.write_tls(&mut io)?;
    }
    Ok(conn)
}

/// The TLS client side of a dialled connection.
pub(super) fn connect(
    ctx: &TlsContext,
    tcp: &TcpStream,
    names: Vec<ServerName<'static>>,
    deadline: Instant,
) -> io::Result<TlsLink> {
    let first = names.first().cloned().unwrap_or_else(|| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let conn = ClientConnection::new(ctx.client_config(names), first).map_err(io::Error::other)?;
    Ok(TlsLink::new(handshake(conn.into(), tcp, deadline)?))
}

/// The TLS server side of an accepted connection.
pub(super) fn accept(ctx: &TlsContext, tcp: &TcpStream, deadline: Instant) -> io::Result<TlsLink> {
    let conn = ServerConnection::new(ctx.server_config()).map_err(io::Error::other)?;
    Ok(TlsLink::new(handshake(conn.into(), tcp, deadline)?))
}

/// What the first bytes of an accepted connection say (`UnifiedServerSocket.detectMode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FirstBytes {
    Tls,
    /// Five bytes that are no TLS record header.
    NotTls,
    /// Fewer than five bytes before the timeout or the end of the stream (ZooKeeper takes that for
    /// plaintext): says what happened.
    Incomplete(String),
}

/// `UnifiedServerSocket.detectMode`: whether the first bytes are a TLS record, waiting at most
/// `timeout` for five of them (Java reads once; this waits for all five). Nothing is consumed.
pub(super) fn detect_mode(tcp: &TcpStream, timeout: Duration) -> io::Result<FirstBytes> {
    let deadline = Instant::now() + timeout;
    let mut b = [0u8; 5];
    let mut seen = 0;
    let silent = |seen: usize| {
        FirstBytes::Incomplete(if seen == 0 {
            format!("nothing arrived within {} ms", timeout.as_millis())
        } else {
            format!("only {seen} bytes arrived within {} ms", timeout.as_millis())
        })
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(silent(seen));
        }
        tcp.set_read_timeout(Some(left))?;
        match tcp.peek(&mut b) {
            Ok(5) if is_tls_record(&b) => return Ok(FirstBytes::Tls),
            Ok(5) => return Ok(FirstBytes::NotTls),
            Ok(0) => {
                return Ok(FirstBytes::Incomplete(format!("the peer closed the connection after {seen} bytes")));
            }
            // Wait for more, briefly (peek returns at once while anything is buffered).
            Ok(n) => {
                seen = n;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Ok(silent(seen));
            }
            Err(e) => return Err(e),
        }
    }
}

/// netty's `SslUtils.getEncryptedPacketLength` test on a record header, as ZooKeeper uses it.
pub fn is_tls_record(b: &[u8; 5]) -> bool {
    let tls = matches!(b[0], 20..=24) && b[1] == 3 && u16::from_be_bytes([b[3], b[4]]) > 0;
    let h = if b[0] & 0x80 != 0 { 2 } else { 3 };
    tls || matches!(b[h + 1], 2 | 3)
}

/// One TLS session over a socket, shared by a reading and a writing thread.
pub struct TlsLink {
    state: Mutex<LinkState>,
    /// Held across a socket write so that records leave in the order they were made.
    write: Mutex<()>,
    info: TlsInfo,
}

struct LinkState {
    conn: Connection,
    /// Bytes read from the socket that the session could not take yet (its plaintext buffer full).
    pending: Vec<u8>,
}

impl LinkState {
    /// Hands pending bytes to the session while it takes them.
    fn feed(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() && self.conn.wants_read() {
            let mut src = &self.pending[..];
            let n = self.conn.read_tls(&mut src)?;
            self.pending.drain(..n);
            self.conn.process_new_packets().map_err(io::Error::other)?;
            if n == 0 {
                break;
            }
        }
        Ok(())
    }
}

impl TlsLink {
    fn new(conn: Connection) -> TlsLink {
        let info = info(&conn);
        TlsLink { state: Mutex::new(LinkState { conn, pending: Vec::new() }), write: Mutex::new(()), info }
    }

    pub fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// The peer's end-entity certificate, if it sent one.
    pub fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        self.state.lock().conn.peer_certificates().and_then(|c| c.first().cloned())
    }

    /// Reads plaintext, taking records from the socket through `raw` (which blocks as the
    /// socket's timeout says, or not at all) without holding the lock.
    pub(super) fn read(
        &self,
        buf: &mut [u8],
        mut raw: impl FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut wire = [0u8; 4096];
        loop {
            {
                let mut st = self.state.lock();
                match st.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // rustls' own text carries a link to its manual; say what happened instead.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the peer closed the connection without a TLS close_notify",
                        ));
                    }
                    Err(e) => return Err(e),
                }
                if !st.pending.is_empty() && st.conn.wants_read() {
                    st.feed()?;
                    continue;
                }
            }
            let n = raw(&mut wire)?;
            let mut st = self.state.lock();
            if n == 0 {
                // EOF: the session says whether it was announced (close_notify) or not.
                st.conn.read_tls(&mut &[][..])?;
                st.conn.process_new_packets().map_err(io::Error::other)?;
                continue;
            }
            st.pending.extend_from_slice(&wire[..n]);
            st.feed()?;
        }
    }

    /// Encrypts `buf` under the lock, then writes the records without it.
    pub(super) fn write_all(&self, tcp: &TcpStream, buf: &[u8]) -> io::Result<()> {
        let _order = self.write.lock();
        let mut wire = Vec::with_capacity(buf.len() + 64);
        {
            let mut st = self.state.lock();
            let mut rest = buf;
            while !rest.is_empty() {
                let k = st.conn.writer().write(rest)?;
                rest = &rest[k..];
                while st.conn.wants_write() {
                    st.conn.write_tls(&mut wire)?;
                }
                if k == 0 {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "TLS session refused more data"));
                }
            }
        }
        (&*tcp).write_all(&wire)
    }
}

/// The path of a store, for messages.
pub fn store_path(store: &StoreConfig) -> &Path {
    store.location.as_deref().unwrap_or(Path::new("(not set)"))
}
