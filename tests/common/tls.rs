//! Quorum TLS for the tests: certificates made in the test (with `certs`, the generator of
//! `zkelect ensemble --tls`), the zoo.cfg lines that name them, and a TLS client built on rustls
//! that plays a peer, honest or not, against a node's election or quorum port.

use super::certs::{Ca, Leaf};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// A certificate authority and the files it signed, in one directory.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: Ca,
    /// The trust store: this CA's certificate.
    pub trust_store: PathBuf,
}

impl Pki {
    /// A fresh CA named `name`; its files go into `dir` (created).
    pub fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("certificate directory");
        let ca = Ca::new(name).expect("CA");
        let trust_store = dir.join(format!("{}.pem", file_name(name)));
        std::fs::write(&trust_store, ca.pem()).expect("trust store");
        Pki { dir: dir.to_path_buf(), ca, trust_store }
    }

    /// Writes a key store for `leaf` as `<name>.pem` and returns its path.
    pub fn key_store(&self, name: &str, leaf: &Leaf) -> PathBuf {
        let path = self.dir.join(format!("{}.pem", file_name(name)));
        std::fs::write(&path, self.ca.key_store(leaf).expect("leaf certificate")).expect("key store");
        path
    }

    /// The key store of node `sid` at `ip` (see `Leaf::node`).
    pub fn node_store(&self, sid: i64, ip: IpAddr) -> PathBuf {
        self.key_store(&format!("node{sid}"), &Leaf::node(sid, ip))
    }
}

fn file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// The zoo.cfg lines naming a node's PEM key and trust stores (nothing about the mode).
pub fn store_lines(key_store: &Path, trust_store: &Path) -> String {
    format!(
        "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        key_store.display(),
        trust_store.display()
    )
}

/// The four states of ZooKeeper's rolling upgrade, as zoo.cfg lines.
pub const PLAINTEXT: &str = "sslQuorum=false\nportUnification=false\n";
pub const PLAINTEXT_ACCEPTS_TLS: &str = "sslQuorum=false\nportUnification=true\n";
pub const TLS_ACCEPTS_PLAINTEXT: &str = "sslQuorum=true\nportUnification=true\n";
pub const TLS_ONLY: &str = "sslQuorum=true\nportUnification=false\n";

/// A client certificate and key from a PEM key store (the key first, then the chain).
pub fn identity(key_store: &Path) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let pem = std::fs::read(key_store).expect("key store");
    let chain = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().expect("certificates");
    let key = PrivateKeyDer::from_pem_slice(&pem).expect("private key");
    (chain, key)
}

/// Accepts any server certificate: the tests play a peer; what they check is the node's side.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS 1.2 client configuration (what ZooKeeper 3.8 speaks) presenting the certificate of
/// `key_store`, or none.
pub fn client_config(key_store: Option<&Path>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let cfg = match key_store {
        Some(ks) => {
            let (chain, key) = identity(ks);
            builder.with_client_auth_cert(chain, key).expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// A TCP connection to `to` from the loopback address `from` (each test case from its own
/// address, so that the node's per-address log rate limit treats them apart).
pub fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(from, 0).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(2))?;
    let tcp: TcpStream = s.into();
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(tcp)
}

/// A TLS session as a client, over a socket of the test's.
pub struct TlsClient {
    pub tcp: TcpStream,
    pub conn: ClientConnection,
}

impl TlsClient {
    /// Runs the handshake (the server's verdict on our certificate may come only with its first
    /// record after it, in TLS 1.2 as the node's alert on the next read).
    pub fn handshake(tcp: TcpStream, cfg: Arc<ClientConfig>) -> io::Result<TlsClient> {
        let name = ServerName::IpAddress(tcp.peer_addr()?.ip().into());
        let mut conn = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
        let mut t = &tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut t)?;
        }
        Ok(TlsClient { tcp, conn })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut t = &self.tcp;
        rustls::Stream::new(&mut self.conn, &mut t).write_all(bytes)?;
        while self.conn.wants_write() {
            self.conn.write_tls(&mut t)?;
        }
        Ok(())
    }

    /// Whether the node closed the session within `timeout` (EOF, alert or reset): what a
    /// refused connection sees.
    pub fn closed_by_peer(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        let mut t = &self.tcp;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.tcp.set_read_timeout(Some(left));
            match rustls::Stream::new(&mut self.conn, &mut t).read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return false,
                Err(_) => return true,
            }
        }
    }
}

/// Whether the node closed a raw socket within `timeout` (EOF or reset; bytes it sends first,
/// such as a TLS alert, are read and dropped).
pub fn closed_by_peer(tcp: &TcpStream, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = tcp.set_read_timeout(Some(left));
        match (&*tcp).read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

/// Whether a raw socket is still open: nothing to read, no EOF (checked without waiting).
pub fn still_open(tcp: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    let _ = tcp.set_nonblocking(true);
    let open = matches!(tcp.peek(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    let _ = tcp.set_nonblocking(false);
    open
}

/// The first TLS records a client sends: its ClientHello.
pub fn client_hello(cfg: Arc<ClientConfig>) -> Vec<u8> {
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let mut conn = ClientConnection::new(cfg, name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("hello");
    }
    out
}
