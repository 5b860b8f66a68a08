//! Webhooks: a [`Message`]'s payload POSTed as JSON to the channel's URL,
//! signed as the Standard Webhooks specification describes, so receivers
//! can verify it with any of that specification's libraries:
//!
//! - `webhook-id`: [`Message::id`], the same on every retry, which is what a
//!   receiver deduplicates on;
//! - `webhook-timestamp`: Unix seconds of this attempt, which a receiver
//!   checks against its clock to refuse replays;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
//!
//! Redirects are not followed: a 301/302 would turn the POST into a GET and
//! drop the body, and a signed alert should go only where it was configured
//! to go.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::{Message, Outcome};

/// Prefix of a secret in the Standard Webhooks form.
pub const SECRET_PREFIX: &str = "whsec_";

/// What the user-agent header says.
pub const USER_AGENT: &str = concat!("simguard/", env!("CARGO_PKG_VERSION"));

/// Headers the channel sets itself; an extra header may not replace them,
/// or the signature would no longer describe what is sent.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "user-agent",
];

/// How much of a refusing endpoint's answer goes into the detail.
const BODY_EXCERPT: usize = 200;

/// Base64 as the specification's libraries write secrets (standard
/// alphabet), tolerating missing padding since people paste secrets by hand.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn default_timeout_ms() -> u64 {
    10_000
}

/// Settings of one webhook endpoint.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST: an `http` or `https` URL. The endpoint is the
    /// channel's; a message's recipients are ignored.
    pub url: String,
    /// Signing key, shared with the receiver. `whsec_<base64>` is the
    /// Standard Webhooks form: the key is the base64-decoded part after the
    /// prefix, as in that specification's libraries. Anything else is taken
    /// as raw text and its UTF-8 bytes are the key (note that this differs
    /// from those libraries, which base64-decode a secret without prefix
    /// too: give such a secret with its `whsec_` prefix).
    pub secret: String,
    /// Limit for connecting and, separately, for the whole request and
    /// response, so a slow endpoint ties up a delivery worker for a bounded
    /// time.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Extra headers sent with every request, typically `authorization` for
    /// an endpoint behind a gateway. They may not replace the headers the
    /// channel sets (webhook-*, content-type, user-agent…).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

// Neither the secret nor extra header values (often credentials) belong in
// logs.
impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A configuration that cannot work, found when the channel is built.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// `field` is the config key at fault.
    #[error("webhook config `{field}`: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("webhook: cannot set up the HTTP client: {0}")]
    Client(String),
}

fn config_error(field: &'static str, reason: impl Into<String>) -> WebhookError {
    WebhookError::Config {
        field,
        reason: reason.into(),
    }
}

/// The signing key of a `secret` setting: the base64-decoded part after
/// `whsec_`, or the UTF-8 bytes of any other string.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let key = match secret.strip_prefix(SECRET_PREFIX) {
        Some(b64) => SECRET_BASE64.decode(b64.trim()).map_err(|e| {
            config_error(
                "secret",
                format!("the part after `whsec_` is not base64: {e}"),
            )
        })?,
        None => secret.as_bytes().to_vec(),
    };
    if key.is_empty() {
        return Err(config_error("secret", "must not be empty"));
    }
    Ok(key)
}

/// The `webhook-signature` value for one request:
/// `v1,<base64(HMAC-SHA256(secret, "{msg_id}.{timestamp}.{body}"))>`.
/// `secret` is the decoded key (see [`decode_secret`]); `body` the exact
/// bytes sent.
pub fn sign(secret: &[u8], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(msg_id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp_secs.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

/// The wait a Retry's detail asks for (the endpoint's `Retry-After`, as
/// [`WebhookChannel::send`] writes it: `retry-after 30s`), if any. Lets a
/// caller holding only the [`Outcome`] honour it.
pub fn retry_after(detail: &str) -> Option<Duration> {
    let (_, rest) = detail.split_once("retry-after ")?;
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    if digits.is_empty() || !rest[digits.len()..].starts_with('s') {
        return None;
    }
    digits.parse().ok().map(Duration::from_secs)
}

/// A `Retry-After` header value (delay in seconds, or an HTTP date) as a
/// wait from `now`. A date in the past is no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A webhook endpoint. Cheap to share behind an `Arc`; HTTP connections are
/// kept alive and reused.
pub struct WebhookChannel {
    url: Url,
    key: Vec<u8>,
    headers: HeaderMap,
    client: reqwest::Client,
    /// From the last response that had one; see [`Self::last_retry_after`].
    last_retry_after: Mutex<Option<Duration>>,
    healthy: AtomicBool,
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &self.url.as_str())
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// Checks the configuration (URL, secret, headers) and prepares the
    /// HTTP client. Connects to nothing.
    pub fn new(cfg: WebhookConfig) -> Result<WebhookChannel, WebhookError> {
        let url = Url::parse(cfg.url.trim())
            .map_err(|e| config_error("url", format!("{:?} is not a URL: {e}", cfg.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config_error(
                "url",
                format!("scheme must be http or https, not {:?}", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(config_error("url", "has no host"));
        }
        if url.scheme() == "http" {
            tracing::warn!(url = %url, "webhook: plain http, alerts cross the network in clear");
        }
        let key = decode_secret(&cfg.secret)?;
        if key.len() < 24 {
            // The specification asks for 24 to 64 bytes; shorter keys still
            // work, and refusing them would break existing receivers.
            tracing::warn!(url = %url, bytes = key.len(), "webhook: secret shorter than 24 bytes");
        }
        if cfg.timeout_ms == 0 {
            return Err(config_error("timeout_ms", "must be greater than 0"));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| {
                config_error("headers", format!("{name:?} is not a header name: {e}"))
            })?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(config_error(
                    "headers",
                    format!("{name} is set by the channel and cannot be replaced"),
                ));
            }
            let mut value = HeaderValue::from_str(value).map_err(|e| {
                config_error("headers", format!("value of {name} is not valid: {e}"))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }

        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| WebhookError::Client(error_chain(&e)))?;

        Ok(WebhookChannel {
            url,
            key,
            headers,
            client,
            last_retry_after: Mutex::new(None),
            healthy: AtomicBool::new(true),
        })
    }

    /// One delivery attempt: `msg.payload` as JSON, signed.
    pub async fn send(&self, msg: &Message) -> Outcome {
        let outcome = self.attempt(msg).await;
        self.healthy.store(
            matches!(outcome, Outcome::Delivered { .. }),
            Ordering::Relaxed,
        );
        match &outcome {
            Outcome::Delivered { detail, .. } => {
                tracing::debug!(id = %msg.id, url = %self.url, %detail, "webhook delivered")
            }
            Outcome::Retry { detail } => {
                tracing::info!(id = %msg.id, url = %self.url, %detail, "webhook deferred")
            }
            Outcome::Failed { detail } => {
                tracing::warn!(id = %msg.id, url = %self.url, %detail, "webhook failed")
            }
        }
        outcome
    }

    async fn attempt(&self, msg: &Message) -> Outcome {
        // Serialized once: the signature must cover exactly the bytes sent.
        let body = match serde_json::to_vec(&msg.payload) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Failed {
                    detail: format!("cannot serialize the payload: {e}"),
                }
            }
        };
        let timestamp = unix_secs(SystemTime::now());
        let signature = sign(&self.key, &msg.id, timestamp, &body);

        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", msg.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.request_error(&e),
        };

        let status = response.status();
        let wait = if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        } else {
            None
        };
        self.set_last_retry_after(wait);

        if status.is_success() {
            return Outcome::Delivered {
                detail: format!("HTTP {}", status.as_u16()),
                reference: None,
            };
        }
        let mut detail = format!("HTTP {}", status.as_u16());
        if let Some(wait) = wait {
            // Rounded up so a caller never retries before the endpoint asked.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            detail.push_str(&format!("; retry-after {secs}s"));
        }
        let excerpt = body_excerpt(response).await;
        if !excerpt.is_empty() {
            detail.push_str(": ");
            detail.push_str(&excerpt);
        }
        if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Outcome::Retry { detail }
        } else {
            if status.is_redirection() {
                detail.push_str(" (redirects are not followed: configure the final URL)");
            }
            Outcome::Failed { detail }
        }
    }

    fn request_error(&self, e: &reqwest::Error) -> Outcome {
        self.set_last_retry_after(None);
        let mut detail = error_chain(e);
        if e.is_builder() {
            // The request could not even be formed; sending it again
            // will not change that.
            return Outcome::Failed { detail };
        }
        if e.is_timeout() && !detail.contains("timed out") {
            detail.push_str(" (timed out)");
        }
        Outcome::Retry { detail }
    }

    fn set_last_retry_after(&self, wait: Option<Duration>) {
        match self.last_retry_after.lock() {
            Ok(mut g) => *g = wait,
            Err(poisoned) => *poisoned.into_inner() = wait,
        }
    }

    /// The `Retry-After` of the last response (429 or 503), if it had one.
    /// With concurrent sends on one channel this is whichever answered
    /// last; [`retry_after`] on an outcome's detail is exact.
    pub fn last_retry_after(&self) -> Option<Duration> {
        match self.last_retry_after.lock() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Whether the last attempt was delivered (true before any attempt).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// The endpoint, for logs and the API.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The start of a refusing endpoint's answer, on one line: often the only
/// explanation of a 400.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < BODY_EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let cut = buf.len().min(BODY_EXCERPT);
    let text = String::from_utf8_lossy(&buf[..cut]);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned();
    if buf.len() > BODY_EXCERPT && !out.is_empty() {
        out.push('…');
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    // reqwest's own message ("error sending request for url …") hides the
    // cause (connection refused, DNS, TLS) in its sources.
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The signing test of the Standard Webhooks reference libraries.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn cfg() -> WebhookConfig {
        WebhookConfig {
            url: "http://127.0.0.1:9/hook".into(),
            secret: SPEC_SECRET.into(),
            timeout_ms: 1000,
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn signs_the_published_test_vector() {
        let key = decode_secret(SPEC_SECRET).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(sign(&key, SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
    }

    #[test]
    fn signature_covers_id_timestamp_and_body() {
        let key = decode_secret(SPEC_SECRET).unwrap();
        let base = sign(&key, SPEC_ID, SPEC_TS, SPEC_BODY);
        assert_ne!(sign(&key, "msg_other", SPEC_TS, SPEC_BODY), base);
        assert_ne!(sign(&key, SPEC_ID, SPEC_TS + 1, SPEC_BODY), base);
        assert_ne!(
            sign(&key, SPEC_ID, SPEC_TS, br#"{"test": 2432232315}"#),
            base
        );
        assert_ne!(sign(b"another key", SPEC_ID, SPEC_TS, SPEC_BODY), base);
        // The separators are part of what is signed: moving a character
        // between id and timestamp changes the signature.
        assert_ne!(sign(&key, "a.1", 23, b"x"), sign(&key, "a", 123, b"x"));
    }

    #[test]
    fn signature_matches_pythons_hmac() {
        // Computed with Python's hmac/hashlib/base64, independently of ring:
        // hmac.new(b"simguard-test-key", b'a1.raised.1700000000.{"a":1}', sha256)
        assert_eq!(
            sign(
                b"simguard-test-key",
                "a1.raised",
                1_700_000_000,
                br#"{"a":1}"#
            ),
            "v1,roCRGl5SmZFt3nfQd+fGQMfqjwjX+tRM0nt622hr2PU="
        );
    }

    #[test]
    fn secrets_in_both_forms() {
        assert_eq!(decode_secret("whsec_aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_secret("whsec_aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_secret("plain text key").unwrap(), b"plain text key");
        // Without the prefix nothing is decoded.
        assert_eq!(decode_secret("aGVsbG8=").unwrap(), b"aGVsbG8=");
        for bad in ["", "whsec_", "whsec_!!notbase64"] {
            match decode_secret(bad) {
                Err(WebhookError::Config { field, .. }) => assert_eq!(field, "secret"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn retry_after_round_trips_through_the_detail() {
        assert_eq!(
            retry_after("HTTP 503; retry-after 30s: busy"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("HTTP 503: busy"), None);
        assert_eq!(retry_after("HTTP 503; retry-after s"), None);
        assert_eq!(retry_after("HTTP 503; retry-after 12"), None);
    }

    #[test]
    fn retry_after_header_as_seconds_or_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: WebhookConfig =
            serde_json::from_str(r#"{"url":"https://example.com/h","secret":"s"}"#).unwrap();
        assert_eq!(c.timeout_ms, 10_000);
        assert!(c.headers.is_empty());
        let err = serde_json::from_str::<WebhookConfig>(
            r#"{"url":"https://example.com/h","secret":"s","timeout":5}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn bad_configs_name_the_field() {
        let field_of = |c: WebhookConfig| match WebhookChannel::new(c) {
            Err(WebhookError::Config { field, .. }) => field,
            Err(WebhookError::Client(_)) => "client",
            Ok(_) => "ok",
        };
        assert_eq!(field_of(cfg()), "ok");
        for url in ["not a url", "ftp://example.com/x", "http://"] {
            assert_eq!(
                field_of(WebhookConfig {
                    url: url.into(),
                    ..cfg()
                }),
                "url",
                "{url}"
            );
        }
        assert_eq!(
            field_of(WebhookConfig {
                secret: "whsec_***".into(),
                ..cfg()
            }),
            "secret"
        );
        assert_eq!(
            field_of(WebhookConfig {
                timeout_ms: 0,
                ..cfg()
            }),
            "timeout_ms"
        );
        for (name, value) in [
            ("Webhook-Signature", "x"),
            ("content-type", "text/plain"),
            ("bad name", "x"),
            ("x-ok", "line\nbreak"),
        ] {
            assert_eq!(
                field_of(WebhookConfig {
                    headers: BTreeMap::from([(name.to_owned(), value.to_owned())]),
                    ..cfg()
                }),
                "headers",
                "{name}"
            );
        }
        assert_eq!(
            field_of(WebhookConfig {
                headers: BTreeMap::from([("Authorization".to_owned(), "Bearer t".to_owned())]),
                ..cfg()
            }),
            "ok"
        );
    }

    #[test]
    fn debug_hides_secret_and_header_values() {
        let c = WebhookConfig {
            headers: BTreeMap::from([("authorization".to_owned(), "Bearer t0ken".to_owned())]),
            ..cfg()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("MfKQ9r8G"), "{s}");
        assert!(!s.contains("t0ken"), "{s}");
        assert!(s.contains("authorization"), "{s}");
    }
}
