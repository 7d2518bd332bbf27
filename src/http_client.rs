//! The one HTTP/1.1 client, shared by the `leakwatch logs`/`status` commands and the
//! Alertmanager push: `http[s]://host[:port][/prefix]` URLs, TLS through rustls (a CA file, else
//! the system bundle; an optional client certificate), an optional `Authorization` header, and
//! one request per fresh connection with the connect and TLS handshake under
//! [`CONNECT_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::either::Either;

/// How long a connection attempt (TCP connect, then TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an `http://` or `https://` URL, or the TLS or auth options are unusable.
    #[error("{0}")]
    BadServer(String),
    /// The server could not be reached or the connection failed.
    #[error("{server}: {message}")]
    Connection {
        /// The server URL.
        server: String,
        /// What failed.
        message: String,
    },
    /// The server answered with an error (unknown source, bad parameter, ...).
    #[error("{status}: {message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The server's message.
        message: String,
    },
}

impl ClientError {
    /// The error for a response with `status` and `body`: its JSON `error` field, or its text.
    pub(crate) fn refused(status: StatusCode, body: &[u8]) -> Self {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
        Self::Refused { status, message }
    }
}

/// A parsed `http[s]://host[:port][/prefix]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// The URL as given.
    pub(crate) given: String,
    /// `host:port` to connect to (the scheme's port when none is given).
    pub(crate) authority: String,
    /// The host, for TLS server name checks (IPv6 without brackets).
    pub(crate) host: String,
    /// The path prefix, without a trailing `/` (empty for none).
    pub(crate) prefix: String,
    /// An `https://` URL.
    pub(crate) https: bool,
}

impl Url {
    /// Parses `url`; the error says what is wrong with it (without repeating it).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err("expected http[s]://HOST[:PORT][/PREFIX]".to_owned()),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let valid_host =
            |h: &str| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
        if !valid_host(authority) {
            return Err(format!("bad host {authority:?}"));
        }
        let has_port = if authority.starts_with('[') { authority.contains("]:") } else { authority.contains(':') };
        let (host, authority) = match authority.rsplit_once(':').filter(|_| has_port) {
            Some((host, port)) => {
                if port.parse::<u16>().is_err() {
                    return Err(format!("bad port {port:?}"));
                }
                (host, authority.to_owned())
            }
            None => (authority, format!("{authority}:{}", if https { 443 } else { 80 })),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("bad host {authority:?}"));
        }
        Ok(Self { given: url.to_owned(), authority, host: host.to_owned(), prefix: prefix.to_owned(), https })
    }
}

/// Why a TLS client configuration could not be built; the caller names the option at fault.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// No CA file was given and no system CA bundle exists.
    #[error("no system CA bundle found")]
    NoSystemCa,
    /// The CA file is unreadable or holds no usable certificate.
    #[error("{}: {message}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The client certificate file is unusable.
    #[error("{}: {message}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The client key file is unusable.
    #[error("{}: {message}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Config(String),
}

/// A TLS connector trusting `ca` (else the system bundle), presenting `client_cert`
/// (certificate, key; PEM) when given, offering HTTP/1.1 by ALPN.
pub(crate) fn tls_connector(
    ca: Option<&Path>,
    client_cert: Option<(&Path, &Path)>,
) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let ca = match ca {
        Some(path) => path.to_owned(),
        None => crate::web::tls::system_ca_file().ok_or(TlsError::NoSystemCa)?,
    };
    let bad_ca = |e: &dyn std::fmt::Display| TlsError::Ca { path: ca.clone(), message: e.to_string() };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).map_err(|e| bad_ca(&e))? {
        roots.add(cert.map_err(|e| bad_ca(&e))?).map_err(|e| bad_ca(&e))?;
    }
    if roots.is_empty() {
        return Err(bad_ca(&"no certificate in the file"));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((cert, key)) => {
            let bad_cert = |e: &dyn std::fmt::Display| TlsError::Cert { path: cert.to_owned(), message: e.to_string() };
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad_cert(&e))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsError::Key { path: key.to_owned(), message: e.to_string() })?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| bad_cert(&e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A server to send requests to: its URL, TLS connector (for `https://`) and credentials.
#[derive(Clone)]
pub(crate) struct Client {
    /// The server's URL.
    pub(crate) url: Url,
    tls: Option<tokio_rustls::TlsConnector>,
    authorization: Option<String>,
}

impl std::fmt::Debug for Client {
    /// Never prints the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.url.given).finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `url`; `tls` is required for an `https://` URL and refused for `http://`;
    /// `authorization` is sent as the `Authorization` header of every request.
    pub(crate) fn new(
        url: Url,
        tls: Option<tokio_rustls::TlsConnector>,
        authorization: Option<String>,
    ) -> Result<Self, ClientError> {
        match (url.https, tls.is_some()) {
            (true, false) => Err(ClientError::BadServer(format!("{:?}: https needs a TLS configuration", url.given))),
            (false, true) => Err(ClientError::BadServer(format!("{:?}: TLS options need an https:// URL", url.given))),
            _ => Ok(Self { url, tls, authorization }),
        }
    }

    /// A connection error about this server.
    pub(crate) fn error(&self, message: String) -> ClientError {
        ClientError::Connection { server: self.url.given.clone(), message }
    }

    /// A request to the URL's prefix + `path`, with `Host` and `Authorization` set.
    fn request(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url.prefix))
            .header(hyper::header::HOST, &self.url.authority);
        match &self.authorization {
            Some(auth) => request.header(hyper::header::AUTHORIZATION, auth),
            None => request,
        }
    }

    /// A fresh HTTP/1.1 connection: TCP, then TLS for `https://`, each within
    /// [`CONNECT_TIMEOUT`].
    async fn connect(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http1::SendRequest<Full<Bytes>>,
            hyper::client::conn::http1::Connection<impl hyper::rt::Read + hyper::rt::Write + Unpin, Full<Bytes>>,
        ),
        ClientError,
    > {
        let authority = &self.url.authority;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(authority))
            .await
            .map_err(|_| self.error(format!("no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| self.error(format!("cannot connect: {e}")))?;
        let io = match &self.tls {
            None => Either::Left(stream),
            Some(connector) => {
                let host = &self.url.host;
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| self.error(format!("bad TLS server name {host:?}: {e}")))?;
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream))
                    .await
                    .map_err(|_| self.error(format!("no TLS handshake within {CONNECT_TIMEOUT:?}")))?
                    .map_err(|e| self.error(format!("TLS handshake: {e}")))?;
                Either::Right(tls)
            }
        };
        hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.error(format!("HTTP handshake: {e}")))
    }

    /// One GET on a fresh connection, whose task ends with the response body (to be streamed).
    pub(crate) async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response<Incoming>, ClientError> {
        let mut request = self.request(Method::GET, path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::new())).map_err(|e| self.error(format!("bad request: {e}")))?;
        let (mut sender, connection) = self.connect().await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sender.send_request(request).await.map_err(|e| self.error(format!("request failed: {e}")))
    }

    /// One POST of `body` (`content_type`) on a fresh connection, driven here until the
    /// response head arrives (nothing outlives the call); returns the status.
    pub(crate) async fn post(&self, path: &str, content_type: &str, body: Bytes) -> Result<StatusCode, ClientError> {
        let request = self
            .request(Method::POST, path)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .map_err(|e| self.error(format!("bad request: {e}")))?;
        let (mut sender, conn) = self.connect().await?;
        let failed = |e: hyper::Error| self.error(format!("request failed: {e}"));
        let mut conn = std::pin::pin!(conn);
        let mut send = std::pin::pin!(sender.send_request(request));
        // A server that closes the connection right after answering ends `conn` first, and
        // `send` then yields the answer.
        let response = tokio::select! {
            r = &mut send => r.map_err(failed)?,
            r = &mut conn => {
                r.map_err(failed)?;
                send.await.map_err(failed)?
            }
        };
        Ok(response.status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:10171").unwrap();
        assert_eq!((u.authority.as_str(), u.prefix.as_str(), u.https), ("127.0.0.1:10171", "", false));
        let u = Url::parse("http://lw.example/proxy/").unwrap();
        assert_eq!((u.authority.as_str(), u.prefix.as_str()), ("lw.example:80", "/proxy"));
        assert_eq!(Url::parse("http://[::1]:9").unwrap().authority, "[::1]:9");
        let u = Url::parse("https://[::1]").unwrap();
        assert_eq!((u.authority.as_str(), u.host.as_str(), u.https), ("[::1]:443", "::1", true));
        assert_eq!(Url::parse("https://lw:8443/p").unwrap().host, "lw");
        assert_eq!(Url::parse("https://am:9093/am/").unwrap().prefix, "/am");
        for bad in ["ftp://x:1", "127.0.0.1:1", "http://", "http://u:p@h:1", "http://h :1", "http://[]:1"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Url::parse("http://am:port"), Err("bad port \"port\"".to_owned()));
    }

    #[test]
    fn https_needs_tls_and_http_refuses_it() {
        let http = Url::parse("http://h:1").unwrap();
        let https = Url::parse("https://h:1").unwrap();
        assert!(matches!(Client::new(https, None, None), Err(ClientError::BadServer(_))));
        assert!(Client::new(http, None, None).is_ok());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("lw-http-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = tls_connector(Some(&empty), None).err();
        assert!(matches!(e, Some(TlsError::Ca { .. })), "{e:?}");
        assert!(matches!(tls_connector(Some(&dir.join("missing.pem")), None), Err(TlsError::Ca { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusals_carry_the_json_error_or_the_text() {
        let message = |body: &[u8]| match ClientError::refused(StatusCode::NOT_FOUND, body) {
            ClientError::Refused { message, .. } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(message(br#"{"error":"no log source \"x\""}"#), "no log source \"x\"");
        assert_eq!(message(b"not found\n"), "not found");
    }
}
