//! How the `leakwatch logs` and `leakwatch status` commands reach a server through the shared
//! `crate::http_client`: the `--server` URL and TLS/auth flags, a whole-body fetch under a
//! time budget.
//!
//! A protected server: `https://` URLs (the CA from `--cacert`, else the system bundle; a client
//! certificate from `--cert`/`--key`), and basic auth as `--user` with the password read from
//! `--password-file` or the `LEAKWATCH_PASSWORD` environment variable (never from the command
//! line, where `ps` shows it).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use crate::http_client::{Client, TlsError, Url};
pub use crate::http_client::{ClientError, CONNECT_TIMEOUT};

/// The environment variable read for the password when no `--password-file` is given.
pub(crate) const PASSWORD_ENV: &str = "LEAKWATCH_PASSWORD";
/// The largest password file read.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// A one-shot request's whole budget.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach a running leakwatch: the `--server` URL, TLS and basic-auth options.
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    /// leakwatch's base URL, `http[s]://host:port[/prefix]`.
    pub(crate) server: String,
    /// CA certificates (PEM) for an `https://` server; default: the system bundle.
    pub(crate) cacert: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that require one.
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
    /// The basic-auth user.
    pub(crate) user: Option<String>,
    /// A file holding the user's password (a trailing newline is dropped).
    pub(crate) password_file: Option<PathBuf>,
}

/// A running leakwatch, reached through the shared [`crate::http_client`].
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// The URL as given.
    pub(crate) url: String,
    client: Client,
}

impl Server {
    /// The server `access` names, with its TLS connector and credentials ready.
    pub(crate) fn connect(access: &Access) -> Result<Self, ClientError> {
        let url = Url::parse(&access.server)
            .map_err(|e| ClientError::BadServer(format!("--server {:?}: {e}", access.server)))?;
        let tls = match url.https {
            true => Some(tls_connector(access)?),
            false if access.cacert.is_some() || access.client_cert.is_some() => {
                return Err(ClientError::BadServer(format!(
                    "--cacert/--cert need an https:// --server, got {:?}",
                    access.server
                )));
            }
            false => None,
        };
        let client = Client::new(url, tls, authorization(access)?)?;
        Ok(Self { url: access.server.clone(), client })
    }

    /// A connection error about this server.
    pub(crate) fn error(&self, message: String) -> ClientError {
        self.client.error(message)
    }

    /// One GET on a fresh connection (the connection task ends with the response body).
    pub(crate) async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response<Incoming>, ClientError> {
        self.client.get(path, headers).await
    }

    /// A GET and its whole body, within [`REQUEST_TIMEOUT`]; a status other than 200 is
    /// [`ClientError::Refused`].
    pub(crate) async fn fetch(&self, path: &str, headers: &[(&str, &str)]) -> Result<Bytes, ClientError> {
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

/// The TLS connector for `--cacert` and `--cert`/`--key`, errors naming the flag at fault.
fn tls_connector(args: &Access) -> Result<tokio_rustls::TlsConnector, ClientError> {
    let client_cert = args.client_cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    crate::http_client::tls_connector(args.cacert.as_deref(), client_cert).map_err(|e| {
        ClientError::BadServer(match e {
            TlsError::NoSystemCa => "no system CA bundle found: give the server's CA with --cacert".to_owned(),
            TlsError::Ca { .. } => format!("--cacert {e}"),
            TlsError::Cert { .. } => format!("--cert {e}"),
            TlsError::Key { .. } => format!("--key {e}"),
            TlsError::Config(_) => e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_server_url_names_the_flag() {
        let access = |server: &str| Access { server: server.to_owned(), ..Access::default() };
        let e = Server::connect(&access("ftp://x:1")).unwrap_err().to_string();
        assert_eq!(e, "--server \"ftp://x:1\": expected http[s]://HOST[:PORT][/PREFIX]");
        let e = Server::connect(&Access { cacert: Some("ca.pem".into()), ..access("http://h:1") }).unwrap_err();
        assert!(e.to_string().contains("need an https:// --server"), "{e}");
        assert!(Server::connect(&access("http://127.0.0.1:10171/p")).is_ok());
    }
}
