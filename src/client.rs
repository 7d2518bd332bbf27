//! The small HTTP client the `leakwatch logs` and `leakwatch status` commands share: the
//! `--server` URL, one GET on a fresh connection, a whole-body fetch under a time budget.
//!
//! A protected server: `https://` URLs (the CA from `--cacert`, else the system bundle; a client
//! certificate from `--cert`/`--key`), and basic auth as `--user` with the password read from
//! `--password-file` or the `LEAKWATCH_PASSWORD` environment variable (never from the command
//! line, where `ps` shows it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::either::Either;

/// The environment variable read for the password when no `--password-file` is given.
pub const PASSWORD_ENV: &str = "LEAKWATCH_PASSWORD";
/// The largest password file read.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A one-shot request's whole budget.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--server` is not an `http://` or `https://` URL, or the TLS or auth options are unusable.
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
    pub fn refused(status: StatusCode, body: &[u8]) -> Self {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
        Self::Refused { status, message }
    }
}

/// How to reach a running leakwatch: the `--server` URL, TLS and basic-auth options.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// leakwatch's base URL, `http[s]://host:port[/prefix]`.
    pub server: String,
    /// CA certificates (PEM) for an `https://` server; default: the system bundle.
    pub cacert: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that require one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The basic-auth user.
    pub user: Option<String>,
    /// A file holding the user's password (a trailing newline is dropped).
    pub password_file: Option<PathBuf>,
}

/// A running leakwatch: `http[s]://host:port[/prefix]`.
#[derive(Clone)]
pub struct Server {
    /// The URL as given.
    pub url: String,
    authority: String,
    /// The host, for TLS server name checks.
    host: String,
    prefix: String,
    /// An `https://` URL.
    https: bool,
    /// The TLS connector of an `https://` server.
    tls: Option<tokio_rustls::TlsConnector>,
    authorization: Option<String>,
}

impl std::fmt::Debug for Server {
    /// Never prints the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("url", &self.url).field("https", &self.https).finish_non_exhaustive()
    }
}

impl Server {
    /// The server `access` names, with its TLS connector and credentials ready.
    pub fn connect(access: &Access) -> Result<Self, ClientError> {
        let mut server = Self::parse(&access.server)?;
        if server.https {
            server.tls = Some(tls_connector(access)?);
        } else if access.cacert.is_some() || access.client_cert.is_some() {
            return Err(ClientError::BadServer(format!(
                "--cacert/--cert need an https:// --server, got {:?}",
                access.server
            )));
        }
        server.authorization = authorization(access)?;
        Ok(server)
    }

    /// Parses `--server`.
    fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadServer(format!("--server {url:?}: expected http[s]://HOST:PORT[/PREFIX]"));
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err(bad()),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let has_port =
            authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !authority.ends_with(']');
        let host = match has_port {
            true => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
            false => authority,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let authority = match (has_port, https) {
            (true, _) => authority.to_owned(),
            (false, false) => format!("{authority}:80"),
            (false, true) => format!("{authority}:443"),
        };
        Ok(Self {
            url: url.to_owned(),
            authority,
            host,
            prefix: prefix.to_owned(),
            https,
            tls: None,
            authorization: None,
        })
    }

    /// A connection error about this server.
    pub fn error(&self, message: String) -> ClientError {
        ClientError::Connection { server: self.url.clone(), message }
    }

    /// One GET on a fresh connection (the connection task ends with the response body).
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response<Incoming>, ClientError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&self.authority))
            .await
            .map_err(|_| self.error(format!("no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| self.error(format!("cannot connect: {e}")))?;
        let io = match &self.tls {
            None => Either::Left(stream),
            Some(connector) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| self.error(format!("bad TLS server name {:?}: {e}", self.host)))?;
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream))
                    .await
                    .map_err(|_| self.error(format!("no TLS handshake within {CONNECT_TIMEOUT:?}")))?
                    .map_err(|e| self.error(format!("TLS handshake: {e}")))?;
                Either::Right(tls)
            }
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.error(format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::get(format!("{}{path}", self.prefix)).header("host", &self.authority);
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::<Bytes>::new()).map_err(|e| self.error(format!("bad request: {e}")))?;
        sender.send_request(request).await.map_err(|e| self.error(format!("request failed: {e}")))
    }

    /// A GET and its whole body, within [`REQUEST_TIMEOUT`]; a status other than 200 is
    /// [`ClientError::Refused`].
    pub async fn fetch(&self, path: &str, headers: &[(&str, &str)]) -> Result<Bytes, ClientError> {
        let fetch = async {
            let response = self.get(path, headers).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.error(format!("reading the response: {e}")))?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(ClientError::refused(status, &body));
            }
            Ok(body)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fetch)
            .await
            .map_err(|_| self.error(format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }
}

/// The `Authorization` header value for `--user`, with the password from `--password-file` or
/// [`PASSWORD_ENV`].
fn authorization(args: &Access) -> Result<Option<String>, ClientError> {
    let Some(user) = &args.user else {
        if args.password_file.is_some() {
            return Err(ClientError::BadServer("--password-file needs --user".to_owned()));
        }
        return Ok(None);
    };
    if user.contains(':') {
        return Err(ClientError::BadServer(format!("--user {user:?}: a basic-auth user name cannot contain ':'")));
    }
    let password = match &args.password_file {
        Some(file) => {
            // A regular file only, opened without blocking (see crate::fsread).
            let mut bytes = crate::fsread::read_capped(file, MAX_PASSWORD_FILE_BYTES)
                .map_err(|e| ClientError::BadServer(format!("--password-file {e}")))?;
            for end in [b'\n', b'\r'] {
                if bytes.last() == Some(&end) {
                    bytes.pop();
                }
            }
            bytes
        }
        None => std::env::var_os(PASSWORD_ENV)
            .map(|p| p.into_encoded_bytes())
            .ok_or_else(|| ClientError::BadServer(format!("--user needs --password-file or {PASSWORD_ENV}")))?,
    };
    let mut pair = user.as_bytes().to_vec();
    pair.push(b':');
    pair.extend_from_slice(&password);
    Ok(Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))))
}

fn tls_connector(args: &Access) -> Result<tokio_rustls::TlsConnector, ClientError> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        ClientError::BadServer(format!("{what} {}: {e}", path.display()))
    };
    let ca = match &args.cacert {
        Some(path) => path.clone(),
        None => crate::web::tls::system_ca_file().ok_or_else(|| {
            ClientError::BadServer("no system CA bundle found: give the server's CA with --cacert".to_owned())
        })?,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).map_err(|e| bad("--cacert", &ca, &e))? {
        roots.add(cert.map_err(|e| bad("--cacert", &ca, &e))?).map_err(|e| bad("--cacert", &ca, &e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::BadServer(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let mut config = match &args.client_cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad("--cert", cert, &e))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--key", key, &e))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| bad("--cert", cert, &e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let s = Server::parse("http://127.0.0.1:10171").unwrap();
        assert_eq!((s.authority.as_str(), s.prefix.as_str()), ("127.0.0.1:10171", ""));
        let s = Server::parse("http://lw.example/proxy/").unwrap();
        assert_eq!((s.authority.as_str(), s.prefix.as_str()), ("lw.example:80", "/proxy"));
        assert_eq!(Server::parse("http://[::1]:9").unwrap().authority, "[::1]:9");
        let s = Server::parse("https://[::1]").unwrap();
        assert_eq!((s.authority.as_str(), s.host.as_str(), s.https), ("[::1]:443", "::1", true));
        assert_eq!(Server::parse("https://lw:8443/p").unwrap().host, "lw");
        for bad in ["ftp://x:1", "127.0.0.1:1", "http://", "http://u:p@h:1"] {
            assert!(matches!(Server::parse(bad), Err(ClientError::BadServer(_))), "{bad}");
        }
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
