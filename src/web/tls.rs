//! TLS from `tls_server_config`: a rustls server config (ring provider) whose certificate is
//! re-checked at every handshake. A handshake after the certificate or key file changed (by
//! device, inode, length or modification time: a Kubernetes Secret's `..data` swap changes the
//! inode) presents the new pair; a file that does not parse, or a key that does not match, keeps
//! the previous pair and logs why, once per change.
//!
//! exporter-toolkit's values map onto rustls where rustls has them; where it has not (TLS 1.0
//! and 1.1, CBC and RSA key-exchange suites, P-521) the value is accepted and a startup warning
//! says what is served instead.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{ring, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};

use super::file::{ClientAuthKind, Curve, TlsFile, TlsVersion};

/// The largest certificate, key or CA file read (a system CA bundle is about 200 KiB).
const MAX_PEM_BYTES: u64 = 4 << 20;

/// System CA bundles tried, as Go does, when a verifying client auth type has no client CA.
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// The system CA bundle: `SSL_CERT_FILE`, else the first of the usual files that exists.
pub(crate) fn system_ca_file() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_CA_FILES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Builds the server config; `dir` is the web config file's directory (relative paths are
/// under it). Values rustls cannot honour add a line to `warnings`.
pub(crate) fn server_config(
    tls: &TlsFile,
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Arc<ServerConfig>, String> {
    let cert = pem_source("cert", &tls.cert, "cert_file", &tls.cert_file, dir, warnings)
        .ok_or("tls_server_config: missing one of cert or cert_file")?;
    let key = pem_source("key", &tls.key, "key_file", &tls.key_file, dir, warnings)
        .ok_or("tls_server_config: missing one of key or key_file")?;
    let versions = versions(tls, warnings)?;
    let base = ring::default_provider();
    let provider = Arc::new(CryptoProvider {
        cipher_suites: cipher_suites(tls, &base, warnings),
        kx_groups: kx_groups(&tls.curve_preferences, warnings),
        ..base
    });
    let resolver = ReloadingCert::new(cert, key, provider.clone())?;
    let verifier = client_verifier(tls, dir, &provider, warnings)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(true);
    Ok(Arc::new(config))
}

/// PEM text from a file or inline; the file wins when both are set (as in exporter-toolkit).
#[derive(Debug, Clone)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

fn pem_source(
    inline_key: &str,
    inline: &str,
    file_key: &str,
    file: &str,
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Option<Pem> {
    match (inline.is_empty(), file.is_empty()) {
        (_, false) => {
            if !inline.is_empty() {
                warnings.push(format!("tls_server_config: both {inline_key} and {file_key} are set; using {file_key}"));
            }
            Some(Pem::File(dir.join(file)))
        }
        (false, true) => Some(Pem::Inline(inline.to_owned())),
        (true, true) => None,
    }
}

impl Pem {
    fn bytes(&self, what: &str) -> Result<Vec<u8>, String> {
        match self {
            // A regular file only, opened without blocking (see crate::fsread).
            Pem::File(path) => {
                crate::fsread::read_capped(path, MAX_PEM_BYTES).map_err(|e| format!("cannot read {what} {e}"))
            }
            Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }

    fn name(&self, what: &str) -> String {
        match self {
            Pem::File(path) => format!("{what} {}", path.display()),
            Pem::Inline(_) => format!("inline {}", what.trim_end_matches("_file")),
        }
    }

    /// What identifies the file's current content cheaply; `None` for inline text.
    fn stamp(&self) -> Option<Stamp> {
        let Pem::File(path) = self else { return None };
        Stamp::of(path)
    }
}

/// A file's device, inode, size and change times: what a rewrite or a symlink swap (a
/// Kubernetes Secret's `..data`) changes, read with one `stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of `path` (following symlinks); `None` when it cannot be read.
    pub(crate) fn of(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

fn certificates(pem: &Pem, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = pem.bytes(what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", pem.name(what)))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", pem.name(what)));
    }
    Ok(certs)
}

fn key_pair(cert: &Pem, key: &Pem, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = certificates(cert, "cert_file")?;
    let key_bytes = key.bytes("key_file")?;
    let private = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| format!("{}: {e}", key.name("key_file")))?;
    CertifiedKey::from_der(chain, private, provider)
        .map_err(|e| format!("{} and {}: {e}", cert.name("cert_file"), key.name("key_file")))
}

/// The server certificate, re-read when its files change.
struct ReloadingCert {
    cert: Pem,
    key: Pem,
    provider: Arc<CryptoProvider>,
    state: Mutex<Loaded>,
}

struct Loaded {
    pair: Arc<CertifiedKey>,
    /// The files' stamps when last read (successfully or not).
    seen: (Option<Stamp>, Option<Stamp>),
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert").field("cert", &self.cert.name("cert")).finish_non_exhaustive()
    }
}

impl ReloadingCert {
    fn new(cert: Pem, key: Pem, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let seen = (cert.stamp(), key.stamp());
        let pair = Arc::new(key_pair(&cert, &key, &provider).map_err(|e| format!("tls_server_config: {e}"))?);
        Ok(Self { cert, key, provider, state: Mutex::new(Loaded { pair, seen }) })
    }

    /// The pair to present now: re-read when a file changed since the last look.
    fn current(&self) -> Arc<CertifiedKey> {
        let now = (self.cert.stamp(), self.key.stamp());
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now != state.seen {
            state.seen = now;
            match key_pair(&self.cert, &self.key, &self.provider) {
                Ok(pair) => {
                    tracing::info!("TLS certificate reloaded from {}", self.cert.name("cert_file"));
                    state.pair = Arc::new(pair);
                }
                Err(e) => tracing::error!("TLS certificate not reloaded, keeping the previous one: {e}"),
            }
        }
        state.pair.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn versions(
    tls: &TlsFile,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let min = tls.min_version.unwrap_or(TlsVersion::Tls12);
    let max = tls.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(format!("tls_server_config: min_version {} is above max_version {}", min.name(), max.name()));
    }
    if min < TlsVersion::Tls12 {
        warnings.push(format!(
            "tls_server_config.min_version {}: rustls implements TLS 1.2 and 1.3 only; the minimum is TLS 1.2",
            min.name()
        ));
    }
    if max < TlsVersion::Tls12 {
        warnings.push(format!(
            "tls_server_config.max_version {}: rustls implements TLS 1.2 and 1.3 only; serving TLS 1.2",
            max.name()
        ));
        return Ok(vec![&rustls::version::TLS12]);
    }
    let mut out = Vec::new();
    if max >= TlsVersion::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls12 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

/// TLS 1.3 suites are all kept (Go does not configure them either); the TLS 1.2 ones are the
/// listed ones rustls implements, in the listed order.
fn cipher_suites(
    tls: &TlsFile,
    base: &CryptoProvider,
    warnings: &mut Vec<String>,
) -> Vec<rustls::SupportedCipherSuite> {
    let tls13 = base.cipher_suites.iter().filter(|s| s.tls13().is_some()).copied();
    if tls.cipher_suites.is_empty() {
        return base.cipher_suites.clone();
    }
    let mut tls12 = Vec::new();
    let mut listed12 = false;
    for cipher in &tls.cipher_suites {
        if cipher.0.starts_with("TLS_AES_") || cipher.0.starts_with("TLS_CHACHA20_") {
            continue;
        }
        listed12 = true;
        match base.cipher_suites.iter().find(|s| s.tls13().is_none() && s.suite().as_str() == Some(cipher.0)) {
            Some(s) => tls12.push(*s),
            None => warnings
                .push(format!("tls_server_config.cipher_suites: {} is not implemented by rustls; ignored", cipher.0)),
        }
    }
    if tls12.is_empty() {
        if listed12 {
            warnings.push(
                "tls_server_config.cipher_suites: none of the listed TLS 1.2 suites is implemented by rustls; \
                 TLS 1.2 uses rustls's defaults (all AEAD)"
                    .to_owned(),
            );
        }
        return base.cipher_suites.clone();
    }
    tls13.chain(tls12).collect()
}

fn kx_groups(curves: &[Curve], warnings: &mut Vec<String>) -> Vec<&'static dyn SupportedKxGroup> {
    let mut out: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for curve in curves {
        match curve {
            Curve::P256 => out.push(ring::kx_group::SECP256R1),
            Curve::P384 => out.push(ring::kx_group::SECP384R1),
            Curve::X25519 => out.push(ring::kx_group::X25519),
            Curve::P521 => warnings.push(
                "tls_server_config.curve_preferences: CurveP521 is not implemented by rustls's ring provider; ignored"
                    .to_owned(),
            ),
        }
    }
    if out.is_empty() {
        if !curves.is_empty() {
            warnings.push(
                "tls_server_config.curve_preferences: no listed curve is implemented; using X25519, P-256, P-384"
                    .to_owned(),
            );
        }
        return ring::ALL_KX_GROUPS.to_vec();
    }
    out
}

fn client_verifier(
    tls: &TlsFile,
    dir: &Path,
    provider: &Arc<CryptoProvider>,
    warnings: &mut Vec<String>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let ca = pem_source("client_ca", &tls.client_ca, "client_ca_file", &tls.client_ca_file, dir, warnings);
    let kind = tls.client_auth_type.kind;
    if ca.is_some() && kind == ClientAuthKind::NoClientCert {
        return Err("tls_server_config: client CA's have been configured without a Client Auth Policy \
                    (set client_auth_type, e.g. RequireAndVerifyClientCert)"
            .to_owned());
    }
    let roots = |warnings: &mut Vec<String>| -> Result<(Arc<RootCertStore>, Vec<CertificateDer<'static>>), String> {
        let ca = match &ca {
            Some(ca) => ca.clone(),
            None => {
                let system = system_ca_file().ok_or_else(|| {
                    format!("tls_server_config: client_auth_type {kind:?} needs client_ca_file (or client_ca): no system CA bundle found")
                })?;
                warnings.push(format!(
                    "tls_server_config: client_auth_type {kind:?} without client_ca_file: client certificates are \
                     verified against the system CA bundle {} (as Go does)",
                    system.display()
                ));
                Pem::File(system)
            }
        };
        let certs = certificates(&ca, "client_ca_file").map_err(|e| format!("tls_server_config: {e}"))?;
        let mut store = RootCertStore::empty();
        for cert in &certs {
            store.add(cert.clone()).map_err(|e| format!("tls_server_config: {}: {e}", ca.name("client_ca_file")))?;
        }
        Ok((Arc::new(store), certs))
    };
    let verifying = |warnings: &mut Vec<String>, optional: bool| -> Result<Arc<dyn ClientCertVerifier>, String> {
        let (store, pins) = roots(warnings)?;
        let builder = WebPkiClientVerifier::builder_with_provider(store, provider.clone());
        let builder = if optional { builder.allow_unauthenticated() } else { builder };
        let inner = builder.build().map_err(|e| format!("tls_server_config: client CA: {e}"))?;
        Ok(Arc::new(Checked { inner, rule: Rule::Pinned(pins) }))
    };
    let verifier: Arc<dyn ClientCertVerifier> = match kind {
        ClientAuthKind::NoClientCert => {
            if tls.client_allowed_sans.is_some() {
                warnings
                    .push("tls_server_config.client_allowed_sans has no effect without client_auth_type".to_owned());
            }
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
        ClientAuthKind::RequestClientCert => Arc::new(AnyCert { mandatory: false, provider: provider.clone() }),
        ClientAuthKind::RequireAnyClientCert => Arc::new(AnyCert { mandatory: true, provider: provider.clone() }),
        ClientAuthKind::VerifyClientCertIfGiven => verifying(warnings, true)?,
        ClientAuthKind::RequireAndVerifyClientCert => verifying(warnings, false)?,
    };
    Ok(match &tls.client_allowed_sans {
        Some(allowed) => Arc::new(Checked { inner: verifier, rule: Rule::AllowedSans(allowed.clone()) }),
        None => verifier,
    })
}

/// `RequestClientCert` / `RequireAnyClientCert`: any certificate is taken (its key must still
/// sign the handshake), none is checked against a CA.
#[derive(Debug)]
struct AnyCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A client CA verifier (`inner`) with one more rule of Go's or exporter-toolkit's.
#[derive(Debug)]
struct Checked {
    inner: Arc<dyn ClientCertVerifier>,
    rule: Rule,
}

/// What [`Checked`] adds to the chain verification.
#[derive(Debug)]
enum Rule {
    /// What Go also accepts and webpki refuses (`CaUsedAsEndEntity`): a client certificate that is
    /// itself one of the CA certificates (a self-signed certificate made with `openssl req -x509`,
    /// which marks it CA:TRUE), within its validity period. Its key must still sign the handshake.
    Pinned(Vec<CertificateDer<'static>>),
    /// `client_allowed_sans`: after the chain is accepted, one of the certificate's SANs (DNS
    /// name, email, IP address or URI) must be listed.
    AllowedSans(Vec<String>),
}

/// The SAN values of a DER certificate as text (IP addresses in their usual notation).
fn subject_alt_names(der: &[u8]) -> Result<Vec<String>, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("bad client certificate: {e}"))?;
    let Some(san) = cert.subject_alternative_name().map_err(|e| format!("bad subjectAltName: {e}"))? else {
        return Ok(Vec::new());
    };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => Some((*s).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| std::net::Ipv4Addr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| std::net::Ipv6Addr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

impl ClientCertVerifier for Checked {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match &self.rule {
            Rule::Pinned(pins) => {
                pinned(self.inner.verify_client_cert(end_entity, intermediates, now), pins, end_entity, now)
            }
            Rule::AllowedSans(allowed) => {
                let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
                let names = subject_alt_names(end_entity).map_err(rustls::Error::General)?;
                if names.iter().any(|n| allowed.contains(n)) {
                    Ok(verified)
                } else {
                    tracing::debug!(?names, "client certificate refused: no SAN in client_allowed_sans");
                    Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
                }
            }
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

/// [`Rule::Pinned`] over the chain verification's `verdict`.
fn pinned(
    verdict: Result<ClientCertVerified, rustls::Error>,
    pins: &[CertificateDer<'static>],
    end_entity: &CertificateDer<'_>,
    now: UnixTime,
) -> Result<ClientCertVerified, rustls::Error> {
    match verdict {
        Err(e) if pins.iter().any(|p| p.as_ref() == end_entity.as_ref()) => {
            let (_, cert) = x509_parser::parse_x509_certificate(end_entity)
                .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
            let at = x509_parser::time::ASN1Time::from_timestamp(now.as_secs() as i64)
                .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
            if cert.validity().is_valid_at(at) {
                Ok(ClientCertVerified::assertion())
            } else {
                tracing::debug!("pinned client certificate outside its validity period ({e})");
                Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired))
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::parse;
    use super::*;

    fn tls(yaml: &str) -> TlsFile {
        parse(&format!("tls_server_config:\n{yaml}")).unwrap().tls_server_config
    }

    #[test]
    fn versions_rustls_lacks_are_warned_not_refused() {
        let mut warnings = Vec::new();
        let v = versions(&tls("  min_version: TLS10\n"), &mut warnings).unwrap();
        assert_eq!(v.len(), 2);
        assert!(warnings[0].contains("min_version TLS10"), "{warnings:?}");
        let v = versions(&tls("  min_version: TLS10\n  max_version: TLS11\n"), &mut warnings).unwrap();
        assert_eq!(v, [&rustls::version::TLS12]);
        let v = versions(&tls("  min_version: TLS13\n"), &mut Vec::new()).unwrap();
        assert_eq!(v, [&rustls::version::TLS13]);
        let err = versions(&tls("  min_version: TLS13\n  max_version: TLS12\n"), &mut Vec::new()).unwrap_err();
        assert!(err.contains("above max_version"), "{err}");
    }

    #[test]
    fn cipher_suites_keep_the_listed_order_and_skip_what_rustls_lacks() {
        let base = ring::default_provider();
        let mut warnings = Vec::new();
        let file = tls(
            "  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  - TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\n  \
             - TLS_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
        );
        let suites = cipher_suites(&file, &base, &mut warnings);
        let tls12: Vec<_> = suites.iter().filter(|s| s.tls13().is_none()).map(|s| s.suite().as_str()).collect();
        assert_eq!(
            tls12,
            [Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"), Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")]
        );
        assert_eq!(suites.iter().filter(|s| s.tls13().is_some()).count(), 3, "TLS 1.3 suites are not configurable");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"), "{warnings:?}");
        let mut warnings = Vec::new();
        let only_cbc = tls("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n");
        assert_eq!(cipher_suites(&only_cbc, &base, &mut warnings).len(), base.cipher_suites.len());
        assert!(warnings.iter().any(|w| w.contains("rustls's defaults")), "{warnings:?}");
    }

    #[test]
    fn curves_map_to_kx_groups() {
        let mut warnings = Vec::new();
        let groups =
            kx_groups(&tls("  curve_preferences: [CurveP384, CurveP521, X25519]\n").curve_preferences, &mut warnings);
        let names: Vec<_> = groups.iter().map(|g| g.name()).collect();
        assert_eq!(names, [rustls::NamedGroup::secp384r1, rustls::NamedGroup::X25519]);
        assert!(warnings[0].contains("CurveP521"), "{warnings:?}");
        let mut warnings = Vec::new();
        assert_eq!(kx_groups(&[Curve::P521], &mut warnings).len(), ring::ALL_KX_GROUPS.len());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn missing_pieces_are_named() {
        let dir = Path::new("/nonexistent");
        let err = server_config(&tls("  key_file: k\n"), dir, &mut Vec::new()).unwrap_err();
        assert!(err.contains("missing one of cert or cert_file"), "{err}");
        let err = server_config(&tls("  cert_file: c\n"), dir, &mut Vec::new()).unwrap_err();
        assert!(err.contains("missing one of key or key_file"), "{err}");
        let err = server_config(&tls("  cert_file: c\n  key_file: k\n"), dir, &mut Vec::new()).unwrap_err();
        assert!(err.contains("/nonexistent/c"), "relative paths are under the file's directory: {err}");
    }
}
