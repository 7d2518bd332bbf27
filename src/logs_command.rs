//! `leakwatch logs SOURCE`: prints a source's lines from a running leakwatch, like `tail`; with
//! `--follow`, keeps printing live lines (from `/logs/{source}/stream`), reconnecting after a
//! drop and resuming with `Last-Event-ID`, so no line is skipped or printed twice.
//!
//! Control characters in log text are printed escaped (`\x1b`), so a log line cannot drive the
//! terminal; `--raw` prints the bytes as stored.
//!
//! A protected server: `https://` URLs (the CA from `--cacert`, else the system bundle; a client
//! certificate from `--cert`/`--key`), and basic auth as `--user` with the password read from
//! `--password-file` or the `LEAKWATCH_PASSWORD` environment variable (never from the command
//! line, where `ps` shows it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::either::Either;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::http::sse::{Decoder, Event};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A one-shot request's whole budget.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A stream silent this long (the server sends a keep-alive every 15 s) is taken as dropped.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// The first and the longest pause before reconnecting.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// What to print.
#[derive(Debug, Clone)]
pub struct LogsArgs {
    /// The source name.
    pub source: String,
    /// Keep printing live lines.
    pub follow: bool,
    /// How many recent lines to print first.
    pub lines: usize,
    /// leakwatch's base URL, `http://host:port[/prefix]`.
    pub server: String,
    /// Only lines that contain this text.
    pub contains: Option<String>,
    /// Only lines that match this regex.
    pub regex: Option<String>,
    /// Print control characters unescaped.
    pub raw: bool,
    /// CA certificates (PEM) for an `https://` server; default: the system bundle.
    pub cacert: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that require one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The basic-auth user.
    pub user: Option<String>,
    /// A file holding the user's password (a trailing newline is dropped).
    pub password_file: Option<PathBuf>,
}

/// The environment variable read for the password when no `--password-file` is given.
pub const PASSWORD_ENV: &str = "LEAKWATCH_PASSWORD";

/// Why the command stopped.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
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
    /// The server refused the request (unknown source, bad parameter).
    #[error("{status}: {message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The server's message.
        message: String,
    },
    /// Standard output failed (other than a closed pipe, which ends the command quietly).
    #[error("writing to standard output: {0}")]
    Output(#[source] std::io::Error),
}

/// Runs the command until done (or, with `--follow`, until interrupted or refused).
pub async fn run(args: LogsArgs) -> Result<(), LogsError> {
    let mut server = Server::parse(&args.server)?;
    if server.https {
        server.tls = Some(tls_connector(&args)?);
    } else if args.cacert.is_some() || args.client_cert.is_some() {
        return Err(LogsError::BadServer(format!("--cacert/--cert need an https:// --server, got {:?}", args.server)));
    }
    server.authorization = authorization(&args)?;
    let mut out = Output { raw: args.raw, stdout: std::io::stdout() };
    let result =
        if args.follow { follow(&server, &args, &mut out).await } else { print_page(&server, &args, &mut out).await };
    match result {
        Err(LogsError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

async fn print_page(server: &Server, args: &LogsArgs, out: &mut Output) -> Result<(), LogsError> {
    if args.lines == 0 {
        return Ok(());
    }
    let path = format!("/logs/{}?format=text&lines={}{}", encode(&args.source), args.lines, filters(args));
    let fetch = async {
        let response = server.get(&path, &[("accept", "text/plain")]).await?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| server.error(format!("reading the response: {e}")))?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(refused(status, &body));
        }
        Ok(body)
    };
    let body = tokio::time::timeout(REQUEST_TIMEOUT, fetch)
        .await
        .map_err(|_| server.error(format!("no answer within {REQUEST_TIMEOUT:?}")))??;
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        out.line(line)?;
    }
    out.flush()
}

async fn follow(server: &Server, args: &LogsArgs, out: &mut Output) -> Result<(), LogsError> {
    let mut last_id: Option<String> = None;
    let mut pause = BACKOFF.0;
    let mut warned = false;
    loop {
        let start = match &last_id {
            Some(_) => String::new(),
            None => format!("&backlog={}", args.lines),
        };
        let path = format!("/logs/{}/stream?format=text{start}{}", encode(&args.source), filters(args));
        let mut headers = vec![("accept", "text/event-stream")];
        if let Some(id) = &last_id {
            headers.push(("last-event-id", id.as_str()));
        }
        match server.get(&path, &headers).await {
            Ok(response) if response.status() == StatusCode::OK => {
                if warned {
                    eprintln!("leakwatch logs: reconnected to {}", server.url);
                    warned = false;
                }
                pause = BACKOFF.0;
                let ended = read_stream(response.into_body(), &mut last_id, out).await?;
                if !warned {
                    eprintln!("leakwatch logs: {}: {ended}; reconnecting", server.url);
                    warned = true;
                }
            }
            Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                // Subscriber cap reached: a slot may free up.
                if !warned {
                    eprintln!("leakwatch logs: {}: busy (503); retrying", server.url);
                    warned = true;
                }
            }
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                return Err(refused(status, &body));
            }
            Err(e) => {
                if !warned {
                    eprintln!("leakwatch logs: {e}; retrying");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF.1);
    }
}

/// Prints a stream's events until it ends; returns why it ended.
async fn read_stream(mut body: Incoming, last_id: &mut Option<String>, out: &mut Output) -> Result<String, LogsError> {
    let mut decoder = Decoder::default();
    loop {
        let frame = match tokio::time::timeout(STREAM_IDLE_TIMEOUT, body.frame()).await {
            Err(_) => return Ok(format!("silent for {STREAM_IDLE_TIMEOUT:?}")),
            Ok(None) => return Ok("the stream ended".to_owned()),
            Ok(Some(Err(e))) => return Ok(format!("the stream broke: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        let mut result = Ok(());
        decoder.feed(&data, |event| {
            if result.is_ok() {
                result = print_event(event, last_id, out);
            }
        });
        result?;
        out.flush()?;
    }
}

fn print_event(event: Event, last_id: &mut Option<String>, out: &mut Output) -> Result<(), LogsError> {
    match event.name.as_str() {
        "message" => {
            out.line(&event.data)?;
            if event.id.is_some() {
                *last_id = event.id;
            }
        }
        "missed" => {
            let missed = serde_json::from_slice::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|v| v["missed"].as_u64())
                .unwrap_or(0);
            out.flush()?;
            eprintln!("leakwatch logs: missed {missed} lines (evicted from the buffer before this client read them)");
        }
        "reset" => {
            out.flush()?;
            eprintln!("leakwatch logs: leakwatch restarted (sequence numbers start again); replaying its buffer");
        }
        _ => {}
    }
    Ok(())
}

/// Standard output, with control characters escaped unless `raw`.
struct Output {
    raw: bool,
    stdout: std::io::Stdout,
}

impl Output {
    fn line(&mut self, text: &[u8]) -> Result<(), LogsError> {
        let mut lock = self.stdout.lock();
        let written = if self.raw {
            lock.write_all(text).and_then(|()| lock.write_all(b"\n"))
        } else {
            lock.write_all(escape_controls(text).as_bytes()).and_then(|()| lock.write_all(b"\n"))
        };
        written.map_err(LogsError::Output)
    }

    fn flush(&mut self) -> Result<(), LogsError> {
        self.stdout.lock().flush().map_err(LogsError::Output)
    }
}

/// Lossy UTF-8 with control characters (but tab) written as `\xNN` or `\u{NN}`.
pub fn escape_controls(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn filters(args: &LogsArgs) -> String {
    let mut q = String::new();
    if let Some(c) = &args.contains {
        q.push_str("&contains=");
        q.push_str(&encode(c));
    }
    if let Some(r) = &args.regex {
        q.push_str("&regex=");
        q.push_str(&encode(r));
    }
    q
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn refused(status: StatusCode, body: &[u8]) -> LogsError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    LogsError::Refused { status, message }
}

/// The `Authorization` header value for `--user`, with the password from `--password-file` or
/// [`PASSWORD_ENV`].
fn authorization(args: &LogsArgs) -> Result<Option<String>, LogsError> {
    let Some(user) = &args.user else {
        if args.password_file.is_some() {
            return Err(LogsError::BadServer("--password-file needs --user".to_owned()));
        }
        return Ok(None);
    };
    if user.contains(':') {
        return Err(LogsError::BadServer(format!("--user {user:?}: a basic-auth user name cannot contain ':'")));
    }
    let password = match &args.password_file {
        Some(file) => {
            let mut bytes = std::fs::read(file)
                .map_err(|e| LogsError::BadServer(format!("--password-file {}: {e}", file.display())))?;
            for end in [b'\n', b'\r'] {
                if bytes.last() == Some(&end) {
                    bytes.pop();
                }
            }
            bytes
        }
        None => std::env::var_os(PASSWORD_ENV)
            .map(|p| p.into_encoded_bytes())
            .ok_or_else(|| LogsError::BadServer(format!("--user needs --password-file or {PASSWORD_ENV}")))?,
    };
    let mut pair = user.as_bytes().to_vec();
    pair.push(b':');
    pair.extend_from_slice(&password);
    Ok(Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))))
}

fn tls_connector(args: &LogsArgs) -> Result<tokio_rustls::TlsConnector, LogsError> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        LogsError::BadServer(format!("{what} {}: {e}", path.display()))
    };
    let ca = match &args.cacert {
        Some(path) => path.clone(),
        None => crate::web::tls::system_ca_file().ok_or_else(|| {
            LogsError::BadServer("no system CA bundle found: give the server's CA with --cacert".to_owned())
        })?,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).map_err(|e| bad("--cacert", &ca, &e))? {
        roots.add(cert.map_err(|e| bad("--cacert", &ca, &e))?).map_err(|e| bad("--cacert", &ca, &e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| LogsError::BadServer(format!("TLS: {e}")))?
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

/// `http[s]://host:port[/prefix]`.
struct Server {
    url: String,
    authority: String,
    /// The host, for TLS server name checks.
    host: String,
    prefix: String,
    /// An `https://` URL.
    https: bool,
    /// The TLS connector, built by [`run`] for `https://`.
    tls: Option<tokio_rustls::TlsConnector>,
    authorization: Option<String>,
}

impl Server {
    fn parse(url: &str) -> Result<Self, LogsError> {
        let bad = || LogsError::BadServer(format!("--server {url:?}: expected http[s]://HOST:PORT[/PREFIX]"));
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

    fn error(&self, message: String) -> LogsError {
        LogsError::Connection { server: self.url.clone(), message }
    }

    /// One GET on a fresh connection (the connection task ends with the response body).
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response<Incoming>, LogsError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls(b"\x1b[31mred\x1b[0m\ttab\x00"), "\\x1b[31mred\\x1b[0m\ttab\\x00");
        assert_eq!(escape_controls("c1 \u{9b}".as_bytes()), "c1 \\u{9b}");
        assert_eq!(escape_controls(b"bad \xff"), "bad \u{fffd}");
    }

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
            assert!(matches!(Server::parse(bad), Err(LogsError::BadServer(_))), "{bad}");
        }
    }
}
