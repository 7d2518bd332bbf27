//! Optional push of alerts to an Alertmanager's v2 API (`POST /api/v2/alerts`), for clusters
//! where no Prometheus evaluates the generated rules. Firing alerts are sent when they start and
//! again every `resend_interval` (with `endsAt` 4 intervals ahead, as Prometheus does, so that
//! Alertmanager resolves them by itself if leakwatch goes away); a resolved alert is sent once
//! with its `endsAt`. A failed push is logged and retried on the next change or interval; plain
//! `http://` only.
//!
//! Every alert carries leakwatch's [`Identity`]: the pod's `namespace`, `pod`, `container` and
//! `node` (Downward API) and `instance` as labels, so replicas never merge into one alert, and
//! `generatorURL` pointing at leakwatch's `/alerts`; `runbook_url` is absolute. An alert that
//! ended because the target vanished is resolved with the annotation `resolved_reason: target
//! gone`, in the same batch as the alerts that explain it (`LeakwatchOomKill`,
//! `LeakwatchTargetDown`), rather than as a bare "resolved".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::engine::State;
use super::AlertState;
use crate::metrics::StaticInfo;

/// Who sends the alerts: labels added to every alert and the `generatorURL`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// `namespace`, `pod`, `container`, `node` (those set) and `instance`.
    pub labels: BTreeMap<String, String>,
    /// leakwatch's `/alerts` page.
    pub generator_url: String,
}

impl Identity {
    /// The identity of a leakwatch listening on `local`: `instance` is `POD_IP:port` (what a
    /// Prometheus pod scrape calls it), else the listen address when it is a specific one, else
    /// `hostname:port`; `generatorURL` is `external_url` (or `http://INSTANCE`) + `/alerts`.
    pub fn new(
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
pub struct Target {
    /// `host:port` to connect to.
    pub authority: String,
    /// The request path: the URL's path prefix + `/api/v2/alerts`.
    pub path: String,
    /// Limit on one push (connect, send, response head).
    pub timeout: Duration,
    /// Firing alerts are sent again after this long.
    pub resend_interval: Duration,
}

impl Target {
    /// Parses `http://host[:port][/prefix]` into the authority and request path.
    pub fn parse_url(url: &str) -> Result<(String, String), String> {
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(if url.starts_with("https://") {
                format!("{url:?}: https is not supported; use http:// (e.g. through a local proxy)")
            } else {
                format!("{url:?} is not an http:// URL like http://alertmanager:9093")
            });
        };
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let valid_host =
            |h: &str| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
        if !valid_host(authority) || authority.contains('@') {
            return Err(format!("{url:?}: bad host {authority:?}"));
        }
        let has_port = if authority.starts_with('[') { authority.contains("]:") } else { authority.contains(':') };
        let authority = if has_port {
            let port = authority.rsplit_once(':').map_or("", |(_, p)| p);
            if port.parse::<u16>().is_err() {
                return Err(format!("{url:?}: bad port {port:?}"));
            }
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let prefix = prefix.trim_end_matches('/');
        let path = if prefix.is_empty() { "/api/v2/alerts".to_owned() } else { format!("/{prefix}/api/v2/alerts") };
        Ok((authority, path))
    }
}

/// One alert in Alertmanager's `postableAlert` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    /// `alertname`, `severity`, the alert's own labels and the [`Identity`] labels.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `runbook_url` (and `resolved_reason` on a resolution with one).
    pub annotations: BTreeMap<String, String>,
    /// leakwatch's `/alerts`.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// RFC 3339.
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// RFC 3339: in the future while firing, the resolution time once resolved.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Connecting, writing or reading failed.
    #[error("{authority}: {source}")]
    Io {
        /// The Alertmanager.
        authority: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("{authority}: {source}")]
    Http {
        /// The Alertmanager.
        authority: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// The batch could not be written as JSON.
    #[error("cannot encode the alerts: {0}")]
    Encode(#[source] serde_json::Error),
    /// The push took longer than the timeout.
    #[error("{0}: no answer within the timeout")]
    Timeout(String),
    /// Alertmanager answered with an error status.
    #[error("{authority} answered {status}")]
    Status {
        /// The Alertmanager.
        authority: String,
        /// The status.
        status: hyper::StatusCode,
    },
}

/// The alerts to send now: every firing alert (`endsAt` 4 resend intervals ahead) and every
/// alert sent as firing before that no longer fires (`endsAt` its resolution, or now if it is
/// gone). Also returns the firing set, to remember once the push succeeded.
pub fn batch(
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

/// Posts one batch.
pub async fn post(target: &Target, alerts: &[PostableAlert]) -> Result<(), PushError> {
    let body = serde_json::to_vec(alerts).map_err(PushError::Encode)?;
    let authority = target.authority.clone();
    let exchange = async {
        let io = |source| PushError::Io { authority: authority.clone(), source };
        let http = |source| PushError::Http { authority: authority.clone(), source };
        let stream = tokio::net::TcpStream::connect(&authority).await.map_err(io)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
        let request = Request::post(&target.path)
            .header(HOST, &authority)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let mut conn = std::pin::pin!(conn);
        let mut send = std::pin::pin!(sender.send_request(request));
        // Drive the connection until the response head arrives; a server that closes the
        // connection right after answering ends `conn` first, and `send` then yields the answer.
        let response = tokio::select! {
            r = &mut send => r.map_err(http)?,
            r = &mut conn => {
                r.map_err(http)?;
                send.await.map_err(http)?
            }
        };
        if !response.status().is_success() {
            return Err(PushError::Status { authority: authority.clone(), status: response.status() });
        }
        Ok(())
    };
    tokio::time::timeout(target.timeout, exchange).await.map_err(|_| PushError::Timeout(target.authority.clone()))?
}

/// Pushes on every change of the firing set and every `resend_interval` while something fires,
/// until cancelled or until the engine's channel closes.
pub async fn run(
    target: Target,
    identity: Identity,
    mut rx: watch::Receiver<Arc<AlertState>>,
    token: CancellationToken,
) {
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
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let (alerts, firing) = batch(&state, &sent, now, target.resend_interval, &identity);
        let changed = firing.keys().ne(sent.keys());
        let due = last_push.is_none_or(|t| t.elapsed() >= target.resend_interval);
        if alerts.is_empty() || (!changed && !due) {
            continue;
        }
        match post(&target, &alerts).await {
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

    #[test]
    fn urls_are_http_with_an_optional_port_and_prefix() {
        assert_eq!(Target::parse_url("http://am:9093"), Ok(("am:9093".into(), "/api/v2/alerts".into())));
        assert_eq!(Target::parse_url("http://am/"), Ok(("am:80".into(), "/api/v2/alerts".into())));
        assert_eq!(
            Target::parse_url("http://127.0.0.1:9093/alertmanager/"),
            Ok(("127.0.0.1:9093".into(), "/alertmanager/api/v2/alerts".into()))
        );
        assert_eq!(Target::parse_url("http://[::1]:9093"), Ok(("[::1]:9093".into(), "/api/v2/alerts".into())));
        assert!(Target::parse_url("https://am:9093").unwrap_err().contains("https is not supported"));
        assert!(Target::parse_url("am:9093").is_err());
        assert!(Target::parse_url("http://am:port").unwrap_err().contains("bad port"));
        assert!(Target::parse_url("http://user@am:1").is_err());
        assert!(Target::parse_url("http://").is_err());
    }

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
}
