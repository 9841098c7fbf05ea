//! Quorum TLS settings: `sslQuorum`, `portUnification`, `sslQuorumReloadCertFiles` and the
//! `ssl.quorum.*` keys that ZooKeeper 3.8's `QuorumX509Util` reads (through `X509Util`,
//! `SSLContextAndOptions` and `KeyStoreFileType`), typed, with ZooKeeper's defaults. The key and
//! trust stores are named here and read by the TLS layer when the node starts.

use super::apply::{Apply, Draft};
use super::values::{ValueError, java_parse_boolean, parse_bool};
use super::{ConfigError, QuorumPeerConfig};
use std::fmt;
use std::path::PathBuf;

/// A password. `Debug` never shows it, and it has no `Display`: read it with [`expose`](Self::expose).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The text of a `…passwordPath` file as ZooKeeper's `SecretUtils.readSecret` takes it:
    /// one trailing line separator (`\n` on Linux) is dropped.
    pub fn from_file_contents(text: &str) -> Secret {
        Secret(text.strip_suffix('\n').unwrap_or(text).to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(<empty>)" } else { "Secret(<redacted>)" })
    }
}

/// The format of a key or trust store file (`KeyStoreFileType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Jks,
    Pem,
    Pkcs12,
    Bcfks,
}

impl StoreType {
    const ALL: [StoreType; 4] = [StoreType::Jks, StoreType::Pem, StoreType::Pkcs12, StoreType::Bcfks];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::Jks => "JKS",
            StoreType::Pem => "PEM",
            StoreType::Pkcs12 => "PKCS12",
            StoreType::Bcfks => "BCFKS",
        }
    }

    /// The one extension ZooKeeper recognises for the type, compared case-sensitively.
    pub fn extension(self) -> &'static str {
        match self {
            StoreType::Jks => ".jks",
            StoreType::Pem => ".pem",
            StoreType::Pkcs12 => ".p12",
            StoreType::Bcfks => ".bcfks",
        }
    }

    /// `KeyStoreFileType.fromPropertyValue`: a name in any case; empty means "from the file name".
    fn from_property(v: &str) -> Result<Option<StoreType>, ValueError> {
        if v.is_empty() {
            return Ok(None);
        }
        StoreType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(v))
            .map(Some)
            .ok_or_else(|| ValueError::Invalid(format!("unknown store type {v}: write PEM, PKCS12, JKS or BCFKS")))
    }

    /// `KeyStoreFileType.fromFilename`: the text from the last `.` of the path as written.
    pub fn from_file_name(path: &str) -> Option<StoreType> {
        let ext = &path[path.rfind('.')?..];
        StoreType::ALL.into_iter().find(|t| t.extension() == ext)
    }
}

/// `ssl.quorum.clientAuth` (`X509Util.ClientAuth`): what an accepting node asks of the dialler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// Ask for no certificate.
    None,
    /// Ask for one, accept a dialler without.
    Want,
    /// Require one: ZooKeeper's default.
    #[default]
    Need,
}

/// A TLS version zkelect can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Java's protocol name.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    fn from_name(name: &str) -> Option<TlsVersion> {
        [TlsVersion::Tls12, TlsVersion::Tls13].into_iter().find(|v| v.as_str() == name)
    }
}

/// `X509Util.DEFAULT_PROTOCOL`.
pub const DEFAULT_PROTOCOL: &str = "TLSv1.2";

/// ZooKeeper's cipher suites on Java 9 and later (`X509Util.DEFAULT_CIPHERS_JAVA9`), in order.
pub const DEFAULT_CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

/// The suites zkelect can negotiate (rustls has no CBC suites), by Java name and version.
pub const SUPPORTED_CIPHER_SUITES: &[(&str, TlsVersion)] = &[
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", TlsVersion::Tls12),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", TlsVersion::Tls12),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", TlsVersion::Tls12),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", TlsVersion::Tls12),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", TlsVersion::Tls12),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", TlsVersion::Tls12),
    ("TLS_AES_128_GCM_SHA256", TlsVersion::Tls13),
    ("TLS_AES_256_GCM_SHA384", TlsVersion::Tls13),
    ("TLS_CHACHA20_POLY1305_SHA256", TlsVersion::Tls13),
];

/// `X509Util.DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS`.
pub const DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS: u32 = 5000;

/// A key or trust store: `ssl.quorum.{keyStore,trustStore}.{location,type,password,passwordPath}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// `None` when unset or empty: ZooKeeper then uses no store of this kind.
    pub location: Option<PathBuf>,
    /// The configured type, or the one the location's extension names (set after parsing).
    pub store_type: Option<StoreType>,
    /// `…password`, default empty. For a PEM key store a password means an encrypted key.
    pub password: Secret,
    /// `…passwordPath`: when set, the password is this file's text and `password` is ignored
    /// (`X509Util.getPasswordFromConfigPropertyOrFile`); see [`Secret::from_file_contents`].
    pub password_path: Option<PathBuf>,
}

/// Typed quorum TLS configuration (`QuorumPeerConfig` fields plus `ZKConfig`'s `ssl.quorum.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTlsConfig {
    /// `sslQuorum`: dial with TLS, and accept only TLS unless `port_unification`.
    pub ssl_quorum: bool,
    /// `portUnification`: listeners accept TLS and plaintext; dialling is unchanged.
    pub port_unification: bool,
    /// `sslQuorumReloadCertFiles`: rebuild the TLS context when a store file changes.
    pub reload_cert_files: bool,
    pub key_store: StoreConfig,
    pub trust_store: StoreConfig,
    /// `ssl.quorum.protocol` as written (the SSLContext protocol): `TLSv1.2`, `TLSv1.3` or `TLS`.
    pub protocol: String,
    /// `ssl.quorum.enabledProtocols`; `None` = just `protocol`. See [`Self::versions`].
    pub enabled_protocols: Option<Vec<TlsVersion>>,
    /// `ssl.quorum.ciphersuites` (Java names); `None` = [`DEFAULT_CIPHER_SUITES`].
    pub cipher_suites: Option<Vec<String>>,
    /// `ssl.quorum.hostnameVerification` (default true): check the peer certificate's names
    /// against the dialled address, and against the dialler's address when accepting.
    pub hostname_verification: bool,
    pub client_auth: ClientAuth,
    /// `ssl.quorum.crl` and `ssl.quorum.ocsp`: certificate revocation checks (default off).
    pub crl: bool,
    pub ocsp: bool,
    /// `ssl.quorum.handshakeDetectionTimeoutMillis`: how long a unified listener waits for the
    /// first 5 bytes that tell TLS from plaintext.
    pub handshake_detection_timeout_ms: u32,
    /// `ssl.quorum.context.supplier.class`: a Java class, which zkelect cannot use.
    pub context_supplier_class: Option<String>,
    /// `zkelect.sslQuorum.bindSidToCertificate` (default true): a peer may claim a server id
    /// only with a certificate that matches that server's configured host. ZooKeeper has no
    /// such check; it needs hostname verification, see [`Self::binds_sid_to_certificate`].
    pub bind_sid_to_certificate: bool,
}

impl Default for QuorumTlsConfig {
    fn default() -> Self {
        QuorumTlsConfig {
            ssl_quorum: false,
            port_unification: false,
            reload_cert_files: false,
            key_store: StoreConfig::default(),
            trust_store: StoreConfig::default(),
            protocol: DEFAULT_PROTOCOL.to_string(),
            enabled_protocols: None,
            cipher_suites: None,
            hostname_verification: true,
            client_auth: ClientAuth::Need,
            crl: false,
            ocsp: false,
            handshake_detection_timeout_ms: DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS,
            context_supplier_class: None,
            bind_sid_to_certificate: true,
        }
    }
}

impl QuorumTlsConfig {
    /// Whether this node speaks TLS at all: it dials with TLS, or its listeners accept it.
    pub fn in_use(&self) -> bool {
        self.ssl_quorum || self.port_unification
    }

    /// The TLS versions to offer and accept: `enabledProtocols`, else the one `protocol` names
    /// (`SSLContextAndOptions.getEnabledProtocols`). Never empty once validated.
    pub fn versions(&self) -> Vec<TlsVersion> {
        match &self.enabled_protocols {
            Some(v) => v.clone(),
            None => TlsVersion::from_name(&self.protocol).into_iter().collect(),
        }
    }

    /// The configured cipher suites, or ZooKeeper's defaults, in order.
    pub fn cipher_suites(&self) -> Vec<&str> {
        match &self.cipher_suites {
            Some(v) => v.iter().map(String::as_str).collect(),
            None => DEFAULT_CIPHER_SUITES.to_vec(),
        }
    }

    /// Whether a peer's certificate must match the configured host of the server id it claims.
    pub fn binds_sid_to_certificate(&self) -> bool {
        self.bind_sid_to_certificate && self.hostname_verification
    }

    /// Store types from the locations' extensions where no type key was given.
    pub(super) fn infer_store_types(&mut self) {
        for store in [&mut self.key_store, &mut self.trust_store] {
            if store.store_type.is_none() {
                store.store_type =
                    store.location.as_ref().and_then(|l| StoreType::from_file_name(&l.to_string_lossy()));
            }
        }
    }
}

/// Every TLS key with the function that applies its value.
pub(super) const TLS_SETTINGS: &[(&str, Apply)] = &[
    ("sslQuorum", |d, v| {
        tls(d).ssl_quorum = parse_bool(v)?;
        Ok(())
    }),
    ("portUnification", |d, v| {
        tls(d).port_unification = parse_bool(v)?;
        Ok(())
    }),
    ("sslQuorumReloadCertFiles", |d, v| {
        tls(d).reload_cert_files = parse_bool(v)?;
        Ok(())
    }),
    ("ssl.quorum.keyStore.location", |d, v| {
        tls(d).key_store.location = path(v);
        Ok(())
    }),
    ("ssl.quorum.keyStore.type", |d, v| {
        tls(d).key_store.store_type = StoreType::from_property(v)?;
        Ok(())
    }),
    ("ssl.quorum.keyStore.password", |d, v| {
        tls(d).key_store.password = Secret::new(v);
        Ok(())
    }),
    ("ssl.quorum.keyStore.passwordPath", |d, v| {
        tls(d).key_store.password_path = path(v);
        Ok(())
    }),
    ("ssl.quorum.trustStore.location", |d, v| {
        tls(d).trust_store.location = path(v);
        Ok(())
    }),
    ("ssl.quorum.trustStore.type", |d, v| {
        tls(d).trust_store.store_type = StoreType::from_property(v)?;
        Ok(())
    }),
    ("ssl.quorum.trustStore.password", |d, v| {
        tls(d).trust_store.password = Secret::new(v);
        Ok(())
    }),
    ("ssl.quorum.trustStore.passwordPath", |d, v| {
        tls(d).trust_store.password_path = path(v);
        Ok(())
    }),
    ("ssl.quorum.protocol", |d, v| {
        tls(d).protocol = protocol(v)?;
        Ok(())
    }),
    ("ssl.quorum.enabledProtocols", |d, v| {
        let versions = java_comma_split(v)?
            .into_iter()
            .map(|p| TlsVersion::from_name(p).ok_or_else(|| unsupported_protocol(p)))
            .collect::<Result<Vec<_>, _>>()?;
        tls(d).enabled_protocols = Some(versions);
        Ok(())
    }),
    ("ssl.quorum.ciphersuites", |d, v| {
        tls(d).cipher_suites = Some(java_comma_split(v)?.into_iter().map(str::to_string).collect());
        Ok(())
    }),
    ("ssl.quorum.hostnameVerification", |d, v| {
        tls(d).hostname_verification = lenient_bool(d, v, "hostnameVerification");
        Ok(())
    }),
    ("ssl.quorum.clientAuth", |d, v| {
        tls(d).client_auth = match v.to_ascii_uppercase().as_str() {
            "" | "NEED" => ClientAuth::Need,
            "WANT" => ClientAuth::Want,
            "NONE" => ClientAuth::None,
            _ => return Err(ValueError::Invalid(format!("{v} is not one of need, want, none"))),
        };
        Ok(())
    }),
    ("ssl.quorum.crl", |d, v| {
        tls(d).crl = lenient_bool(d, v, "crl");
        Ok(())
    }),
    ("ssl.quorum.ocsp", |d, v| {
        tls(d).ocsp = lenient_bool(d, v, "ocsp");
        Ok(())
    }),
    ("ssl.quorum.handshakeDetectionTimeoutMillis", |d, v| {
        let ms: i32 = v.parse().map_err(|_| ValueError::NotNumber(v.to_string()))?;
        // SSLContextAndOptions: 0 would block an accepting thread forever.
        tls(d).handshake_detection_timeout_ms = if ms < 1 {
            d.warn(&format!(
                "ssl.quorum.handshakeDetectionTimeoutMillis={ms} is below 1, using the default {DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS}"
            ));
            DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS
        } else {
            ms as u32
        };
        Ok(())
    }),
    ("ssl.quorum.context.supplier.class", |d, v| {
        tls(d).context_supplier_class = (!v.is_empty()).then(|| v.to_string());
        Ok(())
    }),
    // ZooKeeper 3.8.6 (CVE-2026-24281): whether a failed IP check may try the reverse-DNS name.
    ("ssl.quorum.allowReverseDnsLookup", |d, v| {
        if lenient_bool(d, v, "allowReverseDnsLookup") {
            d.warn(
                "ssl.quorum.allowReverseDnsLookup=true: zkelect never checks a certificate against a reverse-DNS name",
            );
        }
        Ok(())
    }),
    ("zkelect.sslQuorum.bindSidToCertificate", |d, v| {
        tls(d).bind_sid_to_certificate = parse_bool(v)?;
        Ok(())
    }),
];

fn tls<'d>(d: &'d mut Draft<'_>) -> &'d mut QuorumTlsConfig {
    &mut d.cfg.quorum_tls
}

/// An empty location is "not specified" for ZooKeeper.
fn path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

/// `ZKConfig.getBoolean` (`Boolean.parseBoolean`): anything but `true` is false, so a typo
/// silently turns a check off in ZooKeeper; zkelect does the same but says so.
fn lenient_bool(d: &Draft<'_>, v: &str, name: &str) -> bool {
    let (value, odd) = java_parse_boolean(v);
    if odd {
        d.warn(&format!(
            "ssl.quorum.{name}={v} is neither true nor false; ZooKeeper reads it as false, and so does zkelect"
        ));
    }
    value
}

/// `ssl.quorum.protocol`, matched in any case as `SSLContext.getInstance` does.
fn protocol(v: &str) -> Result<String, ValueError> {
    ["TLS", "TLSv1.2", "TLSv1.3"]
        .into_iter()
        .find(|p| p.eq_ignore_ascii_case(v))
        .map(str::to_string)
        .ok_or_else(|| unsupported_protocol(v))
}

fn unsupported_protocol(p: &str) -> ValueError {
    ValueError::Invalid(format!(
        "protocol {p} is not supported: zkelect speaks TLSv1.2 (ZooKeeper 3.8's default) and TLSv1.3, written exactly so"
    ))
}

/// `value.split(",")` as `SSLContextAndOptions` does it: no trimming, trailing empty parts
/// dropped. Java then refuses a name with blanks around it, so they are refused here.
fn java_comma_split(v: &str) -> Result<Vec<&str>, ValueError> {
    let mut parts: Vec<&str> = v.split(',').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    for p in &parts {
        if p.is_empty() {
            return Err(ValueError::Invalid("an entry of the list is empty; write names separated by ',' only".into()));
        }
        if p.trim() != *p {
            return Err(ValueError::Invalid(format!(
                "'{p}' has blanks around it, which ZooKeeper keeps and Java then refuses; write the list without blanks, \
                 e.g. TLSv1.3,TLSv1.2"
            )));
        }
    }
    Ok(parts)
}

impl QuorumPeerConfig {
    /// TLS checks that need no file: what ZooKeeper would fail on at its first TLS connection,
    /// and what zkelect cannot do. Only when this node speaks TLS, as ZooKeeper builds its TLS
    /// context only then.
    pub(super) fn validate_tls(&self) -> Result<(), ConfigError> {
        let t = &self.quorum_tls;
        if !t.in_use() {
            return Ok(());
        }
        let switch = if t.ssl_quorum { "sslQuorum" } else { "portUnification" };
        if t.context_supplier_class.is_some() {
            return Err(self.error_at(
                Some("ssl.quorum.context.supplier.class"),
                "zkelect cannot load a Java SSLContext supplier; remove it and name the stores with \
                 ssl.quorum.keyStore.location and ssl.quorum.trustStore.location"
                    .into(),
            ));
        }
        for (store, kind, what) in [
            (&t.key_store, "keyStore", "the file with this node's private key and certificate chain"),
            (&t.trust_store, "trustStore", "the file with the CA certificates that sign the peers' certificates"),
        ] {
            let Some(location) = &store.location else {
                return Err(self.error_at(
                    Some(switch),
                    format!("{switch}=true needs ssl.quorum.{kind}.location: set it to {what}"),
                ));
            };
            if store.store_type.is_none() {
                let key = format!("ssl.quorum.{kind}.location");
                return Err(self.error_at(
                    Some(key.as_str()),
                    format!(
                        "Unable to auto-detect store file type from file name: {}; name the file *.pem, *.p12, *.jks \
                         or *.bcfks, or set ssl.quorum.{kind}.type",
                        location.display()
                    ),
                ));
            }
        }
        self.validate_tls_versions()
    }

    /// The versions and cipher suites must leave something zkelect and Java can both speak.
    fn validate_tls_versions(&self) -> Result<(), ConfigError> {
        let t = &self.quorum_tls;
        let versions = t.versions();
        if versions.is_empty() {
            return Err(self.error_at(
                Some("ssl.quorum.protocol"),
                format!(
                    "protocol {} names no TLS version, so without ssl.quorum.enabledProtocols it is unclear which \
                     to enable; write TLSv1.2 (ZooKeeper's default) or TLSv1.3, or set ssl.quorum.enabledProtocols",
                    t.protocol
                ),
            ));
        }
        let suites = t.cipher_suites();
        let usable = |s: &&str| SUPPORTED_CIPHER_SUITES.iter().any(|(n, v)| n == s && versions.contains(v));
        if !suites.iter().any(usable) {
            let listed: Vec<&str> = versions.iter().map(|v| v.as_str()).collect();
            return Err(self.error_at(
                Some(if t.cipher_suites.is_some() { "ssl.quorum.ciphersuites" } else { "ssl.quorum.enabledProtocols" }),
                format!(
                    "no cipher suite zkelect can use with {}: add one of {} to ssl.quorum.ciphersuites",
                    listed.join(","),
                    SUPPORTED_CIPHER_SUITES
                        .iter()
                        .filter(|(_, v)| versions.contains(v))
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ));
        }
        if t.cipher_suites.is_some() {
            let unusable: Vec<&str> = suites.iter().copied().filter(|s| !usable(s)).collect();
            if !unusable.is_empty() {
                log::warn!(
                    "{}: ssl.quorum.ciphersuites: zkelect cannot use {} with {:?}; only Java peers may negotiate them",
                    self.config_path.display(),
                    unusable.join(","),
                    versions.iter().map(|v| v.as_str()).collect::<Vec<_>>()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_type_from_the_file_name_as_zookeeper() {
        assert_eq!(StoreType::from_file_name("/certs/node1.pem"), Some(StoreType::Pem));
        assert_eq!(StoreType::from_file_name("ks.p12"), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_file_name("ks.jks"), Some(StoreType::Jks));
        assert_eq!(StoreType::from_file_name("ks.bcfks"), Some(StoreType::Bcfks));
        // KeyStoreFileType compares the extension case-sensitively and knows no aliases.
        assert_eq!(StoreType::from_file_name("ks.PEM"), None);
        assert_eq!(StoreType::from_file_name("ks.pfx"), None);
        assert_eq!(StoreType::from_file_name("/etc/zk.d/keystore"), None);
        assert_eq!(StoreType::from_property("pkcs12").unwrap(), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_property("").unwrap(), None);
    }

    #[test]
    fn java_split() {
        assert_eq!(java_comma_split("a,b,,").unwrap(), vec!["a", "b"]);
        assert!(java_comma_split("").is_err());
        assert!(java_comma_split("a,,b").is_err());
        assert!(java_comma_split("a ,b").is_err());
    }
}
