//! Email over SMTP (lettre): one message to all of a [`Message`]'s
//! recipients, plain text and HTML as multipart/alternative.
//!
//! The Message-ID is derived from [`Message::id`], so every retry of the same
//! notification carries the same Message-ID and a receiver (or the mail
//! store) can drop duplicates when a retry follows a delivery whose `250` was
//! lost on the way back.
//!
//! lettre stops at the first recipient the server refuses, so one refused
//! recipient fails (or defers) the whole message for all of them: the
//! recipients of a subscription are meant to get the same mail together.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;

use crate::{Message, Outcome};

/// Carries the event type so a receiving mailbox can filter or route alerts
/// without parsing the subject.
const EVENT_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Simguard-Event");

/// The right-hand side of every Message-ID we generate.
const MESSAGE_ID_DOMAIN: &str = "simguard";

fn default_timeout_ms() -> u64 {
    30_000
}

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP. Only for a relay on the same host or a lab: credentials
    /// and alerts cross the network in clear.
    None,
    /// Plain connection upgraded with STARTTLS, which is required: a server
    /// that does not offer it is an error rather than a silent downgrade.
    /// Usual on port 587.
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS", implicit TLS). Usual on port 465.
    Tls,
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
        }
    }
}

/// `[notify.email]`-style settings of one SMTP channel.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server (relay or submission server) to hand mail to. Also the
    /// name its TLS certificate must carry.
    pub host: String,
    /// Server port. Defaults by `tls`: 25 for none, 587 for starttls, 465 for
    /// tls, the ports those modes are normally offered on.
    #[serde(default)]
    pub port: Option<u16>,
    /// "none", "starttls" (default) or "tls" (implicit TLS).
    #[serde(default)]
    pub tls: TlsMode,
    /// Login for SMTP AUTH. Authentication happens only when this is set, as
    /// a relay inside the operator's network often accepts mail by address.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `username`; required with it.
    #[serde(default)]
    pub password: Option<String>,
    /// Sender, with or without a display name: `"simguard <alerts@example.com>"`.
    /// Checked when the channel is built, since every message needs it.
    pub from: String,
    /// Limit for one whole attempt (connect, TLS, greeting, AUTH and the
    /// mail transaction), so a server that stops answering ties up a
    /// delivery worker for a bounded time. Running out of it is a Retry.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Accept a certificate that does not verify (self-signed, expired,
    /// another name). For lab setups only: it gives up the protection TLS
    /// is there for.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// Name to greet the server with in EHLO. Defaults to this host's name;
    /// some relays reject a name they cannot resolve.
    #[serde(default)]
    pub hello_name: Option<String>,
}

// The password must not reach logs through `{:?}` of a config.
impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout_ms", &self.timeout_ms)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

/// A configuration that cannot work, found when the channel is built.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// `field` is the config key at fault.
    #[error("email config `{field}`: {reason}")]
    Config { field: &'static str, reason: String },
}

fn config_error(field: &'static str, reason: impl Into<String>) -> EmailError {
    EmailError::Config {
        field,
        reason: reason.into(),
    }
}

/// What the last delivery attempts came to, for readiness checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Attempts that reached the transport (a recipient address that does
    /// not parse is refused before that and not counted).
    pub attempts: u64,
    /// Attempts since the last success that did not end in Delivered.
    pub consecutive_failures: u64,
    /// Detail of the last attempt that did not end in Delivered.
    pub last_error: Option<String>,
    /// Unix ms of the last Delivered.
    pub last_success_ms: Option<i64>,
}

impl Health {
    /// True before any attempt and after a successful one.
    pub fn is_healthy(&self) -> bool {
        self.consecutive_failures == 0
    }
}

/// An SMTP channel. Cheap to share behind an `Arc`; connections are pooled
/// and reused across sends.
pub struct EmailChannel {
    from: Mailbox,
    builder: AsyncSmtpTransportBuilder,
    /// Built on the first send: lettre's pool starts a clean-up task when
    /// the transport is built, which needs a running Tokio runtime, and
    /// `new` should not. Replaced after a time-out (see `send`).
    transport: Mutex<Option<AsyncSmtpTransport<Tokio1Executor>>>,
    timeout: Duration,
    health: Mutex<Health>,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("from", &self.from.to_string())
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Checks the configuration (sender address, credentials, TLS) and
    /// prepares the transport. Connects to nothing.
    pub fn new(cfg: EmailConfig) -> Result<EmailChannel, EmailError> {
        let host = cfg.host.trim();
        if host.is_empty() {
            return Err(config_error("host", "must not be empty"));
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| config_error("from", format!("{:?} is not an address: {e}", cfg.from)))?;
        if cfg.timeout_ms == 0 {
            return Err(config_error("timeout_ms", "must be greater than 0"));
        }
        if cfg.port == Some(0) {
            return Err(config_error("port", "must not be 0"));
        }

        let tls_params = || {
            TlsParameters::builder(host.to_owned())
                .dangerous_accept_invalid_certs(cfg.accept_invalid_certs)
                .build_rustls()
                .map_err(|e| config_error("tls", format!("cannot set up TLS: {e}")))
        };
        let tls = match cfg.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls => Tls::Required(tls_params()?),
            TlsMode::Tls => Tls::Wrapper(tls_params()?),
        };
        if cfg.accept_invalid_certs && cfg.tls != TlsMode::None {
            tracing::warn!(
                host,
                "email: accept_invalid_certs is on, the server's certificate is not verified"
            );
        }

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(cfg.port.unwrap_or_else(|| cfg.tls.default_port()))
            .tls(tls)
            .timeout(Some(Duration::from_millis(cfg.timeout_ms)))
            .pool_config(PoolConfig::new());
        if let Some(name) = &cfg.hello_name {
            if name.trim().is_empty() {
                return Err(config_error("hello_name", "must not be empty when set"));
            }
            builder = builder.hello_name(ClientId::Domain(name.trim().to_owned()));
        }
        match (cfg.username, cfg.password) {
            (Some(user), Some(password)) => {
                if cfg.tls == TlsMode::None {
                    tracing::warn!(
                        host,
                        "email: SMTP AUTH without TLS sends the password in clear"
                    );
                }
                builder = builder.credentials(Credentials::new(user, password));
            }
            (Some(_), None) => {
                return Err(config_error("password", "required when `username` is set"));
            }
            (None, Some(_)) => {
                return Err(config_error("username", "required when `password` is set"));
            }
            (None, None) => {}
        }

        Ok(EmailChannel {
            from,
            builder,
            transport: Mutex::new(None),
            timeout: Duration::from_millis(cfg.timeout_ms),
            health: Mutex::new(Health::default()),
        })
    }

    /// One delivery attempt of `msg` to all of `msg.recipients`, bounded by
    /// `timeout_ms`. Safe to cancel: a send dropped half-way (by the
    /// caller's own time-out, say) retires the pool like a time-out does.
    pub async fn send(&self, msg: &Message) -> Outcome {
        let email = match self.build(msg) {
            Ok(email) => email,
            Err(detail) => {
                tracing::warn!(id = %msg.id, %detail, "email: message not sent");
                return Outcome::Failed { detail };
            }
        };
        let transport = self.transport();
        let mut in_flight = InFlight {
            channel: self,
            transport: Some(transport.clone()),
        };
        // lettre bounds only the connect; a server that accepts and then
        // stalls would hold this send forever without this limit.
        let result = tokio::time::timeout(self.timeout, transport.send(email)).await;
        if result.is_ok() {
            // Finished either way: the connection is in a known state.
            in_flight.transport = None;
        }
        drop(in_flight);
        let outcome = match result {
            Err(_) => Outcome::Retry {
                detail: format!(
                    "no answer from the SMTP server within {} ms",
                    self.timeout.as_millis()
                ),
            },
            Ok(Err(e)) => classify(&e),
            Ok(Ok(response)) => Outcome::Delivered {
                detail: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )
                .trim_end()
                .to_owned(),
                reference: None,
            },
        };
        match &outcome {
            Outcome::Delivered { detail, .. } => {
                tracing::debug!(id = %msg.id, %detail, "email delivered")
            }
            Outcome::Retry { detail } => tracing::info!(id = %msg.id, %detail, "email deferred"),
            Outcome::Failed { detail } => tracing::warn!(id = %msg.id, %detail, "email failed"),
        }
        self.record(&outcome);
        outcome
    }

    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        let mut slot = match self.transport.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        slot.get_or_insert_with(|| self.builder.clone().build())
            .clone()
    }

    /// Retires the pool after a send was cut short. The cut send leaves its
    /// connection mid-command, and lettre would put it back in the pool,
    /// where the next send could read the stale reply as its own. Shutting
    /// the pool down closes that connection instead of reusing it; the next
    /// send builds a new pool.
    fn discard(&self, transport: AsyncSmtpTransport<Tokio1Executor>) {
        match self.transport.lock() {
            Ok(mut g) => *g = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
        let limit = self.timeout;
        // Closing sends QUIT and waits for its reply, which a stalled
        // server never gives: bounded, and off the caller's path. Without a
        // runtime (dropped outside one) the pool is simply dropped, which
        // closes its sockets.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(limit, transport.shutdown()).await;
            });
        }
    }

    /// Health as of the last attempt.
    pub fn health(&self) -> Health {
        match self.health.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the last attempt was delivered (true before any attempt).
    pub fn is_healthy(&self) -> bool {
        self.health().is_healthy()
    }

    fn record(&self, outcome: &Outcome) {
        let mut h = match self.health.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        h.attempts += 1;
        match outcome {
            Outcome::Delivered { .. } => {
                h.consecutive_failures = 0;
                h.last_success_ms = Some(now_ms());
            }
            Outcome::Retry { detail } | Outcome::Failed { detail } => {
                h.consecutive_failures += 1;
                h.last_error = Some(detail.clone());
            }
        }
    }

    /// The MIME message, or why it cannot be built (a Failed detail).
    fn build(&self, msg: &Message) -> Result<lettre::Message, String> {
        if msg.recipients.is_empty() {
            return Err("no recipients".to_owned());
        }
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(msg.title.as_str())
            .message_id(Some(message_id(&msg.id)))
            .raw_header(HeaderValue::new(EVENT_HEADER, msg.event_type.clone()));
        for r in &msg.recipients {
            let mailbox: Mailbox = r
                .trim()
                .parse()
                .map_err(|e| format!("invalid recipient address {r:?}: {e}"))?;
            builder = builder.to(mailbox);
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                msg.text.clone(),
                msg.html.clone(),
            ))
            .map_err(|e| format!("cannot build the message: {e}"))
    }
}

/// A send under way: if it is dropped before the transport answered (time-out
/// or cancellation), the pool it used is retired.
struct InFlight<'a> {
    channel: &'a EmailChannel,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(transport) = self.transport.take() {
            self.channel.discard(transport);
        }
    }
}

/// Maps a lettre error to an outcome: a permanent SMTP reply (5xx) will be
/// the same next time; a transient one (4xx), a broken connection, a
/// time-out or a TLS failure may pass.
fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let detail = error_chain(e);
    if e.is_permanent() {
        Outcome::Failed { detail }
    } else if e.is_client() {
        // lettre's own refusals (no AUTH mechanism in common with the
        // server, a message it cannot encode): a matter of configuration,
        // not of time.
        Outcome::Failed { detail }
    } else {
        Outcome::Retry { detail }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    // lettre's Display already includes its direct source; walk the rest so
    // the root cause (e.g. "Connection refused") is in the detail.
    let mut out = e.to_string();
    let mut source = e.source().and_then(|s| s.source());
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `<{id}@simguard>`, with anything that may not stand in a Message-ID's
/// local part (RFC 5322 dot-atom) written as `=XX`. Deterministic, so
/// retries of one notification share it, and injective, so two ids never
/// share one.
pub fn message_id(id: &str) -> String {
    let bytes = id.as_bytes();
    let mut local = String::with_capacity(id.len() + 2);
    for (i, &b) in bytes.iter().enumerate() {
        let keep = match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'+' => true,
            // A dot may not start or end the local part or follow another.
            b'.' => {
                i > 0
                    && i + 1 < bytes.len()
                    && bytes[i - 1] != b'.'
                    && bytes.get(i + 1) != Some(&b'.')
            }
            _ => false,
        };
        if keep {
            local.push(char::from(b));
        } else {
            local.push_str(&format!("={b:02X}"));
        }
    }
    if local.is_empty() {
        // Keeps an (invalid) empty id from producing an invalid header.
        local.push('=');
    }
    format!("<{local}@{MESSAGE_ID_DOMAIN}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(2525),
            tls: TlsMode::None,
            username: None,
            password: None,
            from: "simguard <alerts@example.com>".into(),
            timeout_ms: 1000,
            accept_invalid_certs: false,
            hello_name: None,
        }
    }

    #[test]
    fn message_id_keeps_plain_ids_and_escapes_the_rest() {
        assert_eq!(message_id("a1b2.raised"), "<a1b2.raised@simguard>");
        assert_eq!(
            message_id("digest.ops team.2024-01-01T00:00"),
            "<digest.ops=20team.2024-01-01T00=3A00@simguard>"
        );
        assert_eq!(message_id(".a..b."), "<=2Ea=2E=2Eb=2E@simguard>");
        assert_eq!(message_id("<x@y>"), "<=3Cx=40y=3E@simguard>");
        // '=' itself is escaped, so escaping cannot make two ids collide.
        assert_eq!(message_id("a=20"), "<a=3D20@simguard>");
        assert_ne!(message_id("a b"), message_id("a=20b"));
    }

    #[test]
    fn config_parses_with_defaults_and_rejects_unknown_fields() {
        let c: EmailConfig =
            from_json(r#"{"host":"smtp.example.com","from":"alerts@example.com"}"#);
        assert_eq!(c.tls, TlsMode::Starttls);
        assert_eq!(c.port, None);
        assert_eq!(c.timeout_ms, 30_000);
        assert!(!c.accept_invalid_certs);
        let err =
            serde_json::from_str::<EmailConfig>(r#"{"host":"h","from":"a@b.c","passwd":"x"}"#)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(err.contains("unknown field `passwd`"), "{err}");
        let err = serde_json::from_str::<EmailConfig>(r#"{"host":"h","from":"a@b.c","tls":"ssl"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown variant `ssl`"), "{err}");
    }

    fn from_json(json: &str) -> EmailConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bad_configs_name_the_field() {
        let field_of = |c: EmailConfig| match EmailChannel::new(c) {
            Err(EmailError::Config { field, .. }) => field,
            Ok(_) => "ok",
        };
        assert_eq!(field_of(cfg()), "ok");
        assert_eq!(
            field_of(EmailConfig {
                from: "not an address".into(),
                ..cfg()
            }),
            "from"
        );
        assert_eq!(
            field_of(EmailConfig {
                host: " ".into(),
                ..cfg()
            }),
            "host"
        );
        assert_eq!(
            field_of(EmailConfig {
                username: Some("u".into()),
                ..cfg()
            }),
            "password"
        );
        assert_eq!(
            field_of(EmailConfig {
                password: Some("p".into()),
                ..cfg()
            }),
            "username"
        );
        assert_eq!(
            field_of(EmailConfig {
                timeout_ms: 0,
                ..cfg()
            }),
            "timeout_ms"
        );
        let e = EmailChannel::new(EmailConfig {
            from: "nope".into(),
            ..cfg()
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("email config `from`:"), "{e}");
    }

    #[test]
    fn debug_hides_the_password() {
        let c = EmailConfig {
            username: Some("u".into()),
            password: Some("hunter2".into()),
            ..cfg()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("<redacted>"), "{s}");
    }

    #[tokio::test]
    async fn an_invalid_recipient_fails_naming_it_without_touching_health() {
        let ch = EmailChannel::new(cfg()).unwrap();
        let msg = Message {
            id: "a.1".into(),
            event_type: "alert.raised.v1".into(),
            time: 0,
            title: "t".into(),
            text: "x".into(),
            html: "<p>x</p>".into(),
            sms: String::new(),
            payload: serde_json::Value::Null,
            recipients: vec!["ops@example.com".into(), "not-an-address".into()],
        };
        match ch.send(&msg).await {
            Outcome::Failed { detail } => assert!(detail.contains("not-an-address"), "{detail}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(ch.health().attempts, 0);
        assert!(ch.is_healthy());
    }
}
