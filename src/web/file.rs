//! The web configuration file as written: the exporter-toolkit format (`tls_server_config`,
//! `http_server_config`, `basic_auth_users`, `rate_limit`), parsed strictly. Every enumerated
//! value (cipher, curve, TLS version, client auth type, header, bcrypt hash) is checked while it
//! is deserialized, so an error carries the key, the line and the column.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The whole file. Every key is optional; an empty file serves plain HTTP without auth.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WebFile {
    /// TLS; plain HTTP when absent or empty.
    #[serde(deserialize_with = "null_is_default")]
    pub(crate) tls_server_config: TlsFile,
    /// Response headers and HTTP/2.
    #[serde(deserialize_with = "null_is_default")]
    pub(crate) http_server_config: HttpFile,
    /// User name → bcrypt hash; empty or absent: no basic auth.
    #[serde(deserialize_with = "null_is_default")]
    pub(crate) basic_auth_users: BTreeMap<String, BcryptHash>,
    /// A token bucket over all requests.
    #[serde(deserialize_with = "null_is_default")]
    pub(crate) rate_limit: RateLimitFile,
}

/// `tls_server_config:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TlsFile {
    /// Inline PEM certificate (chain).
    pub(crate) cert: String,
    /// Inline PEM private key.
    pub(crate) key: String,
    /// Inline PEM client CA certificates.
    pub(crate) client_ca: String,
    /// Certificate (chain) file, relative to the web config file's directory.
    pub(crate) cert_file: String,
    /// Private key file.
    pub(crate) key_file: String,
    /// Client certificate policy (Go's `tls.ClientAuthType` names).
    pub(crate) client_auth_type: ClientAuth,
    /// Client CA certificates file.
    pub(crate) client_ca_file: String,
    /// A client certificate must carry one of these SANs (DNS, email, IP or URI).
    pub(crate) client_allowed_sans: Option<Vec<String>>,
    /// Lowest TLS version; default TLS12.
    pub(crate) min_version: Option<TlsVersion>,
    /// Highest TLS version; default TLS13.
    pub(crate) max_version: Option<TlsVersion>,
    /// TLS 1.2 cipher suites in preference order (Go names); empty: the defaults.
    pub(crate) cipher_suites: Vec<Cipher>,
    /// Whether the server's order of `cipher_suites` wins; default true.
    pub(crate) prefer_server_cipher_suites: Option<bool>,
    /// Key exchange groups in preference order (Go names); empty: the defaults.
    pub(crate) curve_preferences: Vec<Curve>,
}

impl TlsFile {
    /// Whether any TLS field is set (exporter-toolkit's rule: otherwise plain HTTP).
    pub(crate) fn is_enabled(&self) -> bool {
        [&self.cert, &self.key, &self.client_ca, &self.cert_file, &self.key_file, &self.client_ca_file]
            .iter()
            .any(|s| !s.is_empty())
            || self.client_auth_type.named
    }
}

/// `http_server_config:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpFile {
    /// HTTP/2 over TLS; accepted, but leakwatch serves HTTP/1.1 only.
    pub(crate) http2: Option<bool>,
    /// Extra response headers, from the allowed set.
    #[serde(deserialize_with = "null_is_default")]
    pub(crate) headers: Headers,
}

/// `rate_limit:` — `interval` between requests (0 disables) and `burst`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RateLimitFile {
    /// Time between two requests; 0 or absent disables the limiter.
    pub(crate) interval: GoDuration,
    /// Requests allowed in a burst.
    pub(crate) burst: u32,
}

/// A string value checked by `check`; its errors carry the value's own line and column.
fn parse_str<'de, D: Deserializer<'de>, T>(
    d: D,
    what: &'static str,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct Checked<F>(&'static str, F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for Checked<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.1)(s).map_err(E::custom)
        }
    }
    d.deserialize_str(Checked(what, check))
}

/// A key written without a value (`basic_auth_users:`) is the empty default, as in Go.
fn null_is_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Parses the file's text; the error names the key, line and column.
pub(crate) fn parse(text: &str) -> Result<WebFile, String> {
    if text.trim().is_empty() {
        return Ok(WebFile::default());
    }
    crate::yaml_guard::check(text.as_bytes())?;
    yaml_serde::from_str(text).map_err(|e| {
        let mut message = crate::redact::quoted_text(&hide_string_values(&e.to_string()));
        // The parser leaves out the position when it is the file's start.
        if let Some(at) = e.location().filter(|_| !message.contains(" at line ")) {
            message.push_str(&format!(" at line {} column {}", at.line(), at.column()));
        }
        message
    })
}

/// `invalid type: string "…"` repeats the text, which may be a secret (a key file given as the
/// web config): the value is left out.
fn hide_string_values(message: &str) -> String {
    const MARK: &str = "invalid type: string \"";
    match (message.find(MARK), message.rfind("\", expected")) {
        (Some(start), Some(end)) if end >= start + MARK.len() => {
            format!("{}invalid type: string{}", &message[..start], &message[end + 1..])
        }
        _ => message.to_owned(),
    }
}

/// Go's `tls.ClientAuthType`, by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClientAuth {
    /// The policy.
    pub(crate) kind: ClientAuthKind,
    /// Set to a non-empty value in the file (which turns TLS on).
    named: bool,
}

/// The client certificate policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ClientAuthKind {
    /// No certificate requested.
    #[default]
    NoClientCert,
    /// Requested, not required, not verified.
    RequestClientCert,
    /// Required, not verified.
    RequireAnyClientCert,
    /// Verified against the client CA when given.
    VerifyClientCertIfGiven,
    /// Required and verified against the client CA.
    RequireAndVerifyClientCert,
}

impl<'de> Deserialize<'de> for ClientAuth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a client auth type", |name| {
            let kind = match name {
                "" | "NoClientCert" => ClientAuthKind::NoClientCert,
                "RequestClientCert" => ClientAuthKind::RequestClientCert,
                // "RequireClientCert" is exporter-toolkit's backwards-compatible alias.
                "RequireAnyClientCert" | "RequireClientCert" => ClientAuthKind::RequireAnyClientCert,
                "VerifyClientCertIfGiven" => ClientAuthKind::VerifyClientCertIfGiven,
                "RequireAndVerifyClientCert" => ClientAuthKind::RequireAndVerifyClientCert,
                other => {
                    return Err(format!(
                    "invalid ClientAuth {other:?}: expected NoClientCert, RequestClientCert, RequireAnyClientCert, \
                     VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ))
                }
            };
            Ok(ClientAuth { kind, named: !name.is_empty() })
        })
    }
}

/// A TLS version, by exporter-toolkit name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TlsVersion {
    /// TLS 1.0 (not implemented by rustls).
    Tls10,
    /// TLS 1.1 (not implemented by rustls).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// The name in the file, e.g. `TLS12`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tls10 => "TLS10",
            Self::Tls11 => "TLS11",
            Self::Tls12 => "TLS12",
            Self::Tls13 => "TLS13",
        }
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a TLS version", |name| match name {
            "TLS10" => Ok(Self::Tls10),
            "TLS11" => Ok(Self::Tls11),
            "TLS12" => Ok(Self::Tls12),
            "TLS13" => Ok(Self::Tls13),
            other => Err(format!("unknown TLS version {other:?}: expected TLS10, TLS11, TLS12 or TLS13")),
        })
    }
}

/// The cipher suite names Go's `tls.CipherSuites()` returns (the ones exporter-toolkit accepts),
/// plus the four RSA key-exchange suites older Go releases listed there.
pub(crate) const CIPHER_NAMES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
];

/// A cipher suite, by Go name (one of [`CIPHER_NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cipher(pub(crate) &'static str);

impl<'de> Deserialize<'de> for Cipher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a cipher suite name", |name| {
            CIPHER_NAMES
                .iter()
                .find(|n| **n == name)
                .map(|n| Cipher(n))
                .ok_or_else(|| format!("unknown cipher {name:?}"))
        })
    }
}

/// A key exchange group, by exporter-toolkit name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521 (not in rustls's ring provider).
    P521,
    /// X25519.
    X25519,
}

impl<'de> Deserialize<'de> for Curve {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a curve name", |name| match name {
            "CurveP256" => Ok(Self::P256),
            "CurveP384" => Ok(Self::P384),
            "CurveP521" => Ok(Self::P521),
            "X25519" => Ok(Self::X25519),
            other => Err(format!("unknown curve {other:?}: expected CurveP256, CurveP384, CurveP521 or X25519")),
        })
    }
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, cost 4..=31), checked when parsed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BcryptHash(pub(crate) String);

impl fmt::Debug for BcryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BcryptHash(..)")
    }
}

impl BcryptHash {
    /// Checks `text` is a usable bcrypt hash; the error never repeats the text (it may be a
    /// password written by mistake).
    pub(crate) fn parse(text: &str) -> Result<BcryptHash, String> {
        let parts: bcrypt::HashParts = text
            .parse()
            .map_err(|e| format!("not a bcrypt hash ({e}); hash passwords with `htpasswd -nBC 10 \"\"`"))?;
        if !(4..=31).contains(&parts.get_cost()) {
            return Err(format!("bcrypt cost {} is outside 4..=31", parts.get_cost()));
        }
        Ok(BcryptHash(text.to_owned()))
    }

    /// The hash's cost factor.
    pub(crate) fn cost(&self) -> u32 {
        self.0.parse::<bcrypt::HashParts>().map(|p| p.get_cost()).unwrap_or(10)
    }
}

impl<'de> Deserialize<'de> for BcryptHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a bcrypt hash", BcryptHash::parse)
    }
}

/// The response headers exporter-toolkit allows, with their allowed values (empty: any).
pub(crate) const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// `http_server_config.headers`, checked against [`ALLOWED_HEADERS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Headers(pub(crate) Vec<(String, String)>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
                        let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                        return Err(de::Error::custom(format!(
                            "HTTP header {name:?} can not be configured (allowed: {})",
                            names.join(", ")
                        )));
                    };
                    if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                        return Err(de::Error::custom(format!(
                            "invalid value for {name}: expected one of {allowed:?}, got {value:?}"
                        )));
                    }
                    if value.bytes().any(|b| b.is_ascii_control()) {
                        return Err(de::Error::custom(format!("invalid value for {name}: control characters")));
                    }
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("duplicate header {name}")));
                    }
                    out.push((name, value));
                }
                Ok(Headers(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A Go duration (`1s`, `1.5h`, `300ms`, `1h30m`) or an integer count of nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GoDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like 1s or 500ms")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<GoDuration, E> {
                Ok(GoDuration(Duration::from_nanos(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<GoDuration, E> {
                u64::try_from(n)
                    .map(|n| GoDuration(Duration::from_nanos(n)))
                    .map_err(|_| E::custom(format!("a negative duration: {n}")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<GoDuration, E> {
                parse_go_duration(s).map(GoDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses Go's `time.ParseDuration` syntax (non-negative): decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, e.g. `1h30m` or `1.5s`; `0` alone is zero.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 1s, 500ms or 1h30m");
    let s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = after;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "1", "1x", "s", "-1s", "1..2s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        let f = parse("rate_limit:\n  interval: 0\n  burst: 0\n").unwrap();
        assert_eq!(f.rate_limit.interval.0, Duration::ZERO);
        let f = parse("rate_limit:\n  interval: \"1s\"\n  burst: 20\n").unwrap();
        assert_eq!((f.rate_limit.interval.0, f.rate_limit.burst), (Duration::from_secs(1), 20));
    }

    /// exporter-toolkit's bad fixtures (web/testdata/*.bad.yml), as far as they fail at parse
    /// time, each with the key and the line in the error.
    #[test]
    fn bad_values_name_their_key_and_line() {
        let cases = [
            ("tls_server_config:\n  cert_filse: \"server.crt\"\n", "cert_filse", "line 2"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: x\n",
                "invalid ClientAuth",
                "line 4",
            ),
            (
                "tls_server_config:\n  cipher_suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048\n",
                "unknown cipher",
                "line 3",
            ),
            ("tls_server_config:\n  curve_preferences:\n    - CurveP257\n", "unknown curve", "line 3"),
            ("tls_server_config:\n  min_version: TLS111\n", "unknown TLS version", "line 2"),
            ("basic_auth_users:\n  john: doe\n", "not a bcrypt hash", "line 2"),
            ("basic_auth_users:\n  a: $2y$10$UeRzd4i\n  john: doe\n", "basic_auth_users.a", "line 2"),
            ("http_server_config:\n  headers:\n    Content-Type: foo\n", "can not be configured", "line 3"),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: foo\n",
                "invalid value for X-Frame-Options",
                "line 3",
            ),
            (
                "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
                "invalid value for X-Content-Type-Options",
                "line 3",
            ),
            ("rate_limit:\n  interval: soon\n", "invalid duration", "line 2"),
            ("hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\n", "invalid type: string, expected", "line 1"),
            ("tls_server_config:\n  cert_file: [a]\n", "cert_file", "line 2"),
        ];
        for (text, what, line) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(what) && err.contains(line), "{text:?}: {err}");
            assert!(!err.contains("doe") && !err.contains("hWkN"), "values are not repeated: {err}");
        }
    }

    #[test]
    fn good_values_parse() {
        let f = parse(
            "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_auth_type: RequireClientCert\n  \
             cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP521]\n  \
             min_version: TLS13\n  prefer_server_cipher_suites: false\nhttp_server_config:\n  http2: false\n  headers:\n    \
             X-Frame-Options: deny\n    X-XSS-Protection: \"1\"\n",
        )
        .unwrap();
        assert!(f.tls_server_config.is_enabled());
        assert_eq!(f.tls_server_config.client_auth_type.kind, ClientAuthKind::RequireAnyClientCert);
        assert_eq!(f.tls_server_config.curve_preferences, [Curve::X25519, Curve::P521]);
        assert_eq!(f.tls_server_config.min_version, Some(TlsVersion::Tls13));
        assert_eq!(f.http_server_config.headers.0.len(), 2);
        assert!(!parse("").unwrap().tls_server_config.is_enabled());
        assert!(!parse("tls_server_config: {}\n").unwrap().tls_server_config.is_enabled());
        assert!(parse("tls_server_config:\nbasic_auth_users:\n").unwrap().basic_auth_users.is_empty());
    }
}
