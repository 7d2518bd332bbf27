//! The small HTTP client the `leakwatch logs` and `leakwatch status` commands share: the
//! `--server` URL, one GET on a fresh connection, a whole-body fetch under a time budget.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A one-shot request's whole budget.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--server` is not an `http://` URL.
    #[error("--server {0:?}: expected http://HOST:PORT[/PREFIX] (leakwatch serves plain HTTP)")]
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

/// A running leakwatch: `http://host:port[/prefix]`.
#[derive(Debug, Clone)]
pub struct Server {
    /// The URL as given.
    pub url: String,
    authority: String,
    prefix: String,
}

impl Server {
    /// Parses `--server`.
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadServer(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let authority =
            if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !authority.ends_with(']') {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            };
        Ok(Self { url: url.to_owned(), authority, prefix: prefix.to_owned() })
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
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.error(format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::get(format!("{}{path}", self.prefix)).header("host", &self.authority);
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
        for bad in ["https://x:1", "127.0.0.1:1", "http://", "http://u:p@h:1"] {
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
