//! Optional push of alerts to an Alertmanager's v2 API (`POST /api/v2/alerts`), for clusters
//! where no Prometheus evaluates the generated rules. Firing alerts are sent when they start and
//! again every `resend_interval` (with `endsAt` 4 intervals ahead, as Prometheus does, so that
//! Alertmanager resolves them by itself if leakwatch goes away); a resolved alert is sent once
//! with its `endsAt`. A failed push is logged and retried on the next change or interval. The
//! request goes through the shared [`crate::http_client`]: `http://` or `https://` (trusting
//! `ca_file`, else the system CA bundle).
//!
//! Every alert carries leakwatch's [`Identity`]: the pod's `namespace`, `pod`, `container` and
//! `node` (Downward API) and `instance` as labels, so replicas never merge into one alert, and
//! `generatorURL` pointing at leakwatch's `/alerts`; `runbook_url` is absolute. An alert that
//! ended because the target vanished is resolved with the annotation `resolved_reason: target
//! gone`, in the same batch as the alerts that explain it (`LeakwatchOomKill`,
//! `LeakwatchTargetDown`), rather than as a bare "resolved".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use std::path::PathBuf;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::engine::State;
use super::AlertState;
use crate::http_client::{Client, ClientError, Url};
use crate::info::StaticInfo;

/// Who sends the alerts: labels added to every alert and the `generatorURL`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Identity {
    /// `namespace`, `pod`, `container`, `node` (those set) and `instance`.
    pub(crate) labels: BTreeMap<String, String>,
    /// leakwatch's `/alerts` page.
    pub(crate) generator_url: String,
}

impl Identity {
    /// The identity of a leakwatch listening on `local`: `instance` is `POD_IP:port` (what a
    /// Prometheus pod scrape calls it), else the listen address when it is a specific one, else
    /// `hostname:port`; `generatorURL` is `external_url` (or `http://INSTANCE`) + `/alerts`.
    pub(crate) fn new(
        info: &StaticInfo,
        external_url: Option<&str>,
        local: std::net::SocketAddr,
        pod_ip: Option<&str>,
        hostname: Option<&str>,
    ) -> Self {
        let port = local.port();
        let host = match (pod_ip.filter(|ip| !ip.is_empty()), hostname.filter(|h| !h.is_empty())) {
            (Some(ip), _) if ip.contains(':') => format!("[{ip}]"),
            (Some(ip), _) => ip.to_owned(),
            (None, _) if !local.ip().is_unspecified() => match local {
                std::net::SocketAddr::V6(a) => format!("[{}]", a.ip()),
                std::net::SocketAddr::V4(a) => a.ip().to_string(),
            },
            (None, Some(h)) => h.to_owned(),
            (None, None) => "localhost".to_owned(),
        };
        let instance = format!("{host}:{port}");
        let mut labels: BTreeMap<String, String> =
            info.kubernetes.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let base = external_url.map_or_else(|| format!("http://{instance}"), |u| u.trim_end_matches('/').to_owned());
        labels.insert("instance".to_owned(), instance);
        Self { labels, generator_url: format!("{base}/alerts") }
    }
}

/// Where and how to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Alertmanager's base URL; alerts go to its prefix + [`ALERTS_PATH`].
    pub(crate) url: Url,
    /// CA certificates (PEM) trusted for an `https://` URL; `None`: the system bundle.
    pub(crate) ca_file: Option<PathBuf>,
    /// Limit on one push (connect, send, response head).
    pub(crate) timeout: Duration,
    /// Firing alerts are sent again after this long.
    pub(crate) resend_interval: Duration,
}

/// Alertmanager's v2 alerts endpoint, under the URL's prefix.
pub(crate) const ALERTS_PATH: &str = "/api/v2/alerts";

impl Target {
    /// The client of this target: a TLS connector for `https://` (reading `ca_file`, else the
    /// system bundle); the error names the file at fault.
    pub(crate) fn client(&self) -> Result<Client, String> {
        let tls = match self.url.https {
            true => Some(crate::http_client::tls_connector(self.ca_file.as_deref(), None).map_err(|e| e.to_string())?),
            false => None,
        };
        Client::new(self.url.clone(), tls, None).map_err(|e| e.to_string())
    }
}

/// One alert in Alertmanager's `postableAlert` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PostableAlert {
    /// `alertname`, `severity`, the alert's own labels and the [`Identity`] labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// `summary`, `description`, `runbook_url` (and `resolved_reason` on a resolution with one).
    pub(crate) annotations: BTreeMap<String, String>,
    /// leakwatch's `/alerts`.
    #[serde(rename = "generatorURL")]
    pub(crate) generator_url: String,
    /// RFC 3339.
    #[serde(rename = "startsAt")]
    pub(crate) starts_at: String,
    /// RFC 3339: in the future while firing, the resolution time once resolved.
    #[serde(rename = "endsAt")]
    pub(crate) ends_at: String,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    /// Connecting, the TLS handshake or the HTTP exchange failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The batch could not be written as JSON.
    #[error("cannot encode the alerts: {0}")]
    Encode(#[source] serde_json::Error),
    /// The push took longer than the timeout.
    #[error("{0}: no answer within the timeout")]
    Timeout(String),
    /// Alertmanager answered with an error status.
    #[error("{url} answered {status}")]
    Status {
        /// The Alertmanager.
        url: String,
        /// The status.
        status: hyper::StatusCode,
    },
}

/// The alerts to send now: every firing alert (`endsAt` 4 resend intervals ahead) and every
/// alert sent as firing before that no longer fires (`endsAt` its resolution, or now if it is
/// gone). Also returns the firing set, to remember once the push succeeded.
pub(crate) fn batch(
    state: &AlertState,
    sent: &BTreeMap<String, PostableAlert>,
    now: f64,
    resend: Duration,
    identity: &Identity,
) -> (Vec<PostableAlert>, BTreeMap<String, PostableAlert>) {
    let mut firing = BTreeMap::new();
    let mut resolved_at = BTreeMap::new();
    for a in &state.alerts {
        let mut labels = identity.labels.clone();
        labels.extend(a.labels.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        labels.insert("alertname".to_owned(), a.alert.clone());
        labels.insert("severity".to_owned(), a.severity.as_str().to_owned());
        let id = format!("{labels:?}");
        match a.state {
            State::Firing => {
                let alert = PostableAlert {
                    labels,
                    annotations: BTreeMap::from([
                        ("summary".to_owned(), a.summary.clone()),
                        ("description".to_owned(), a.description.clone()),
                        ("runbook_url".to_owned(), a.runbook_url.clone()),
                    ]),
                    generator_url: identity.generator_url.clone(),
                    starts_at: rfc3339(a.fired_at.unwrap_or(now)),
                    ends_at: rfc3339(now + 4.0 * resend.as_secs_f64()),
                };
                firing.insert(id, alert);
            }
            State::Resolved => {
                resolved_at.insert(id, (a.resolved_at.unwrap_or(now), a.resolved_reason));
            }
            _ => {}
        }
    }
    let mut out: Vec<PostableAlert> = firing.values().cloned().collect();
    for (id, alert) in sent {
        if !firing.contains_key(id) {
            let (ends, reason) = resolved_at.get(id).copied().unwrap_or((now, None));
            let mut resolved = PostableAlert { ends_at: rfc3339(ends), ..alert.clone() };
            if reason == Some(super::rules::REASON_TARGET_GONE) {
                resolved.annotations.insert("resolved_reason".to_owned(), "target gone".to_owned());
            }
            out.push(resolved);
        }
    }
    (out, firing)
}

fn rfc3339(unix: f64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs_f64(unix.max(0.0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Posts one batch through `client` within the target's timeout.
pub(crate) async fn post(client: &Client, timeout: Duration, alerts: &[PostableAlert]) -> Result<(), PushError> {
    let body = serde_json::to_vec(alerts).map_err(PushError::Encode)?;
    let url = &client.url.given;
    let status = tokio::time::timeout(timeout, client.post(ALERTS_PATH, "application/json", Bytes::from(body)))
        .await
        .map_err(|_| PushError::Timeout(url.clone()))??;
    if !status.is_success() {
        return Err(PushError::Status { url: url.clone(), status });
    }
    Ok(())
}

/// Pushes on every change of the firing set and every `resend_interval` while something fires,
/// until cancelled or until the engine's channel closes.
pub(crate) async fn run(
    target: Target,
    identity: Identity,
    mut rx: watch::Receiver<Arc<AlertState>>,
    token: CancellationToken,
) {
    let client = match target.client() {
        Ok(client) => client,
        Err(e) => {
            // Validation built the same client; the CA file changed since.
            tracing::warn!("pushing alerts to Alertmanager is off: {e}");
            return;
        }
    };
    let mut sent: BTreeMap<String, PostableAlert> = BTreeMap::new();
    let mut last_push: Option<Instant> = None;
    let mut tick = tokio::time::interval(target.resend_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u64;
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            changed = rx.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
        }
        let state = rx.borrow_and_update().clone();
        let now = crate::seconds::now();
        let (alerts, firing) = batch(&state, &sent, now, target.resend_interval, &identity);
        let changed = firing.keys().ne(sent.keys());
        let due = last_push.is_none_or(|t| t.elapsed() >= target.resend_interval);
        if alerts.is_empty() || (!changed && !due) {
            continue;
        }
        match post(&client, target.timeout, &alerts).await {
            Ok(()) => {
                tracing::debug!(alerts = alerts.len(), "pushed alerts to Alertmanager");
                sent = firing;
                last_push = Some(Instant::now());
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                // Log the first failure of a run of them loudly, the rest quietly.
                if failures == 1 {
                    tracing::warn!("pushing alerts to Alertmanager failed: {e}; retrying");
                } else {
                    tracing::debug!(failures, "pushing alerts to Alertmanager failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::engine::AlertView;
    use crate::alert::rules::Severity;

    fn view(state: State) -> AlertView {
        AlertView {
            alert: "LeakwatchOomKill".into(),
            severity: Severity::Critical,
            state,
            labels: BTreeMap::from([("target", "app".to_owned())]),
            value: 1.0,
            level: 0.0,
            seconds_to_limit: None,
            projection: None,
            active_since: Some(100.0),
            fired_at: Some(100.0),
            resolved_at: (state == State::Resolved).then_some(160.0),
            resolved_reason: None,
            summary: "s".into(),
            description: "d".into(),
            runbook_url: "https://example.com/runbook#leakwatchoomkill".into(),
        }
    }

    #[test]
    fn firing_alerts_are_sent_with_a_future_end_and_resolved_ones_once_with_theirs() {
        let state = |s| AlertState { seq: 1, alerts: vec![view(s)], ..AlertState::default() };
        let (out, firing) =
            batch(&state(State::Firing), &BTreeMap::new(), 120.0, Duration::from_secs(60), &Identity::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels["alertname"], "LeakwatchOomKill");
        assert_eq!(out[0].labels["severity"], "critical");
        assert_eq!(out[0].labels["target"], "app");
        assert_eq!(out[0].starts_at, "1970-01-01T00:01:40.000Z");
        assert_eq!(out[0].ends_at, "1970-01-01T00:06:00.000Z", "now + 4 × 60 s");
        // Resolved: sent once with its resolution time, then nothing.
        let (out, after) =
            batch(&state(State::Resolved), &firing, 170.0, Duration::from_secs(60), &Identity::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ends_at, "1970-01-01T00:02:40.000Z");
        assert_eq!(out[0].annotations.get("resolved_reason"), None, "resolved because its value fell");
        assert!(after.is_empty());
        let (out, _) = batch(&state(State::Resolved), &after, 180.0, Duration::from_secs(60), &Identity::default());
        assert!(out.is_empty());
        // An alert that vanished from the state ends now.
        let (out, _) = batch(&AlertState::default(), &firing, 200.0, Duration::from_secs(60), &Identity::default());
        assert_eq!(out[0].ends_at, "1970-01-01T00:03:20.000Z");
    }

    #[test]
    fn alerts_carry_the_pod_identity_and_a_target_gone_resolution_says_so() {
        let info = StaticInfo::from_env(|k| match k {
            "POD_NAMESPACE" => Some("shop".into()),
            "POD_NAME" => Some("cart-7f9".into()),
            "CONTAINER_NAME" => Some("leakwatch".into()),
            _ => None,
        });
        let local: std::net::SocketAddr = "0.0.0.0:10171".parse().unwrap();
        let id = Identity::new(&info, None, local, Some("10.1.2.3"), Some("cart-7f9"));
        assert_eq!(id.labels["instance"], "10.1.2.3:10171");
        assert_eq!(id.generator_url, "http://10.1.2.3:10171/alerts");
        assert_eq!(Identity::new(&info, None, local, None, Some("h")).labels["instance"], "h:10171");
        let ext = Identity::new(&info, Some("https://lw.example/"), "127.0.0.1:9".parse().unwrap(), None, None);
        assert_eq!(
            (ext.labels["instance"].as_str(), ext.generator_url.as_str()),
            ("127.0.0.1:9", "https://lw.example/alerts")
        );

        let state = |s| AlertState { seq: 1, alerts: vec![view(s)], ..AlertState::default() };
        let (out, firing) = batch(&state(State::Firing), &BTreeMap::new(), 120.0, Duration::from_secs(60), &id);
        let a = &out[0];
        assert_eq!((a.labels["namespace"].as_str(), a.labels["pod"].as_str()), ("shop", "cart-7f9"));
        assert_eq!(a.labels["container"], "leakwatch");
        assert!(!a.labels.contains_key("node"), "unset variables add no label");
        assert_eq!(a.annotations["runbook_url"], "https://example.com/runbook#leakwatchoomkill");
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["generatorURL"], "http://10.1.2.3:10171/alerts");
        let mut gone = state(State::Resolved);
        gone.alerts[0].resolved_reason = Some(crate::alert::rules::REASON_TARGET_GONE);
        let (out, _) = batch(&gone, &firing, 170.0, Duration::from_secs(60), &id);
        assert_eq!(out[0].annotations["resolved_reason"], "target gone");
    }

    /// Makes a CA and a server certificate for 127.0.0.1 with the openssl CLI in `dir`.
    fn test_pki(dir: &std::path::Path) {
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(
            &[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=am ca"]]
                .concat(),
        );
        openssl(&[&["req"][..], &ec, &["-keyout", "am.key", "-out", "am.csr", "-subj", "/CN=am"]].concat());
        std::fs::write(dir.join("am.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "am.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "am.crt",
            "-days",
            "2",
            "-extfile",
            "am.ext",
        ]);
    }

    #[tokio::test]
    async fn alerts_are_pushed_over_https_trusting_the_ca_file() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = std::env::temp_dir().join(format!("lw-push-https-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        test_pki(&dir);
        let chain = CertificateDer::pem_file_iter(dir.join("am.crt")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("am.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A one-request Alertmanager: reads the head and the body, answers 200, hands over the text.
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = tls.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap();
                    if body.len() >= length || n == 0 {
                        break;
                    }
                }
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.unwrap();
            tls.shutdown().await.unwrap();
            // The second connection's client does not trust this certificate.
            let (tcp, _) = listener.accept().await.unwrap();
            assert!(acceptor.accept(tcp).await.is_err(), "the handshake with the untrusting client fails");
            String::from_utf8(request).unwrap()
        });

        let target = Target {
            url: Url::parse(&format!("https://{addr}/am/")).unwrap(),
            ca_file: Some(dir.join("ca.crt")),
            timeout: Duration::from_secs(30),
            resend_interval: Duration::from_secs(60),
        };
        let client = target.client().unwrap();
        let state = AlertState { seq: 1, alerts: vec![view(State::Firing)], ..AlertState::default() };
        let (alerts, _) = batch(&state, &BTreeMap::new(), 120.0, target.resend_interval, &Identity::default());
        post(&client, target.timeout, &alerts).await.unwrap();
        // Another CA: the handshake fails, and the push says so.
        let other = Target { ca_file: Some(dir.join("am.crt")), ..target.clone() };
        let e = post(&other.client().unwrap(), other.timeout, &alerts).await.unwrap_err().to_string();
        assert!(e.contains("TLS handshake"), "{e}");
        let request = tokio::time::timeout(Duration::from_secs(30), server).await.unwrap().unwrap();
        assert!(request.starts_with("POST /am/api/v2/alerts HTTP/1.1\r\n"), "{request}");
        assert!(request.to_ascii_lowercase().contains("content-type: application/json"), "{request}");
        assert!(request.contains("\"alertname\":\"LeakwatchOomKill\""), "{request}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
