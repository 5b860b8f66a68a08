//! Notifications: the `[notify]` configuration, the channels built from it,
//! and the delivery worker that sends what the outbox holds.
//!
//! The store routes alert events to subscriptions in the alert change's own
//! transaction (`simguard_store::outbox`); this module only delivers. The
//! worker is woken by committed alert changes and by the next due time, and
//! records every attempt before it counts as sent, so a crash resends what
//! was not confirmed (with the same id, for the receiver to deduplicate)
//! and loses nothing.

pub mod render;
pub mod worker;

use serde::Deserialize;
use simguard_notify::email::{EmailChannel, EmailConfig};
use simguard_notify::retry::RetryPolicy;
use simguard_notify::sms::{SmsChannel, SmsConfig};
use simguard_notify::webhook::{WebhookChannel, WebhookConfig};
use simguard_notify::{Message, Outcome, Receipt};
use simguard_store::{Routing, Subscription};
use std::collections::BTreeMap;

/// `[notify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Base URL of the console, for the links in messages.
    #[serde(default = "default_console_url")]
    pub console_url: String,
    /// Give a notification up this long after its first attempt.
    #[serde(default = "default_retry_hours")]
    pub max_retry_hours: u64,
    /// First retry delay; it doubles per attempt up to `retry_max_secs`.
    #[serde(default = "default_retry_min")]
    pub retry_min_secs: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// Consecutive failures of a channel that open its circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open circuit waits before one probe (doubling).
    #[serde(default = "default_breaker_open")]
    pub breaker_open_secs: u64,
    /// Deliveries in flight per channel.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// The window that caps count in, seconds.
    #[serde(default = "default_cap_window")]
    pub cap_window_secs: u64,
    /// Finished notifications (sent, failed, digested, unrouted) are deleted
    /// this many days after they finished, with their attempts; 0 keeps
    /// them forever. Pending and retrying ones are never deleted.
    #[serde(default = "default_outbox_retention")]
    pub outbox_retention_days: u32,
    /// Per tenant, notifications per cap window ("*": any other tenant).
    #[serde(default)]
    pub tenant_caps: BTreeMap<String, u32>,
    /// Channels by name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Who gets what, on which channel.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

fn default_outbox_retention() -> u32 {
    30
}
fn default_console_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_retry_hours() -> u64 {
    24
}
fn default_retry_min() -> u64 {
    5
}
fn default_retry_max() -> u64 {
    1800
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open() -> u64 {
    30
}
fn default_in_flight() -> usize {
    16
}
fn default_cap_window() -> u64 {
    3600
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            console_url: default_console_url(),
            max_retry_hours: default_retry_hours(),
            retry_min_secs: default_retry_min(),
            retry_max_secs: default_retry_max(),
            breaker_failures: default_breaker_failures(),
            breaker_open_secs: default_breaker_open(),
            max_in_flight: default_in_flight(),
            cap_window_secs: default_cap_window(),
            outbox_retention_days: default_outbox_retention(),
            tenant_caps: BTreeMap::new(),
            channels: BTreeMap::new(),
            subscriptions: Vec::new(),
        }
    }
}

/// One channel's settings; `type` picks the kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelConfig {
    Email(EmailConfig),
    Sms(SmsConfig),
    Webhook(WebhookConfig),
}

impl ChannelConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Email(_) => "email",
            ChannelConfig::Sms(_) => "sms",
            ChannelConfig::Webhook(_) => "webhook",
        }
    }

    /// Where it sends, for people (never a secret).
    pub fn endpoint(&self) -> String {
        match self {
            ChannelConfig::Email(c) => format!("smtp://{}:{}", c.host, c.port.unwrap_or(0)),
            ChannelConfig::Sms(c) => format!("smpp://{}@{}:{}", c.system_id, c.host, c.port),
            ChannelConfig::Webhook(c) => c.url.clone(),
        }
    }
}

impl NotifyConfig {
    pub fn policy(&self) -> RetryPolicy {
        let s = |x: u64| (x.saturating_mul(1000)).min(i64::MAX as u64) as i64;
        RetryPolicy {
            min_delay_ms: s(self.retry_min_secs.max(1)),
            max_delay_ms: s(self.retry_max_secs.max(self.retry_min_secs.max(1))),
            give_up_after_ms: s(self.max_retry_hours.saturating_mul(3600)),
            breaker_failures: self.breaker_failures.max(1),
            breaker_open_ms: s(self.breaker_open_secs.max(1)),
        }
    }

    pub fn routing(&self) -> Routing {
        Routing {
            subscriptions: self.subscriptions.clone(),
            tenant_caps: self.tenant_caps.clone(),
            cap_window_ms: (self.cap_window_secs.max(1).saturating_mul(1000)).min(i64::MAX as u64)
                as i64,
        }
    }

    /// Problems a config can have that serde cannot see.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.subscriptions.iter().enumerate() {
            let at = format!("notify.subscriptions[{i}] ({:?})", s.name);
            check_subscription(s, &self.channels)
                .map_err(|p| format!("{at}: `{}` {}", p.field, p.message))?;
            if !names.insert(&s.name) {
                return Err(format!("{at}: `name` is used twice"));
            }
        }
        Ok(())
    }
}

/// What is wrong with one field of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionProblem {
    /// The field's name as in the config and the API ("recipients[1]").
    pub field: String,
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> SubscriptionProblem {
    SubscriptionProblem {
        field: field.into(),
        message: message.into(),
    }
}

/// Longest subscription name: it is part of every notification id.
pub const MAX_NAME: usize = 64;

/// Checks a subscription against the channels: what serde cannot see. The
/// config's and the API's go through this one check, so a subscription the
/// console saves is one the config would take, and the other way round.
pub fn check_subscription(
    s: &Subscription,
    channels: &BTreeMap<String, ChannelConfig>,
) -> Result<(), SubscriptionProblem> {
    if s.name.is_empty() || s.name.chars().count() > MAX_NAME || s.name.contains(['.', ':']) {
        return Err(problem(
            "name",
            format!("must be 1 to {MAX_NAME} characters without '.' or ':' (it is part of notification ids)"),
        ));
    }
    let Some(ch) = channels.get(&s.channel) else {
        return Err(problem(
            "channel",
            format!("{:?} is not in [notify.channels]", s.channel),
        ));
    };
    match ch {
        ChannelConfig::Webhook(_) if !s.recipients.is_empty() => {
            return Err(problem(
                "recipients",
                "make no sense for a webhook (the endpoint is the channel's)",
            ))
        }
        ChannelConfig::Email(_) | ChannelConfig::Sms(_) if s.recipients.is_empty() => {
            return Err(problem(
                "recipients",
                format!("is empty; a {} channel needs at least one", ch.kind()),
            ))
        }
        _ => {}
    }
    for (i, r) in s.recipients.iter().enumerate() {
        let ok = match ch {
            ChannelConfig::Email(_) => {
                r.split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
                    && !r.contains(char::is_whitespace)
            }
            ChannelConfig::Sms(_) => {
                let digits = r.strip_prefix('+').unwrap_or(r);
                (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
            }
            ChannelConfig::Webhook(_) => true,
        };
        if !ok {
            let want = match ch {
                ChannelConfig::Sms(_) => "an MSISDN (digits, optionally after '+')",
                _ => "an email address",
            };
            return Err(problem(
                format!("recipients[{i}]"),
                format!("{r:?} is not {want}"),
            ));
        }
    }
    for (i, t) in s.types.iter().enumerate() {
        let known = simguard_engine::FindingKind::ALL
            .iter()
            .any(|k| k.as_str() == t)
            || t.strip_prefix("rule:")
                .is_some_and(|r| !r.trim().is_empty());
        if !known {
            return Err(problem(
                format!("types[{i}]"),
                format!("{t:?} is not a finding type (scanning, silent, roaming...) or rule:<id>"),
            ));
        }
    }
    if s.cap == Some(0) {
        return Err(problem(
            "cap",
            "must be at least 1 (leave it out for no cap)",
        ));
    }
    if !(-720..=840).contains(&s.utc_offset_minutes) {
        return Err(problem(
            "utc_offset_minutes",
            "must be between -720 and 840 (UTC-12:00 to UTC+14:00)",
        ));
    }
    if s.tenant.as_deref().is_some_and(str::is_empty) {
        return Err(problem(
            "tenant",
            "is empty (leave it out for every tenant)",
        ));
    }
    if s.group.as_deref().is_some_and(str::is_empty) {
        return Err(problem("group", "is empty (leave it out for every group)"));
    }
    Ok(())
}

/// A built channel.
pub enum Channel {
    Email(EmailChannel),
    Sms(SmsChannel),
    Webhook(WebhookChannel),
}

impl Channel {
    /// Builds a channel; an SMS channel also gives its receipts.
    pub fn build(
        cfg: &ChannelConfig,
    ) -> Result<(Channel, Option<tokio::sync::mpsc::Receiver<Receipt>>), String> {
        Ok(match cfg {
            ChannelConfig::Email(c) => (
                Channel::Email(EmailChannel::new(c.clone()).map_err(|e| e.to_string())?),
                None,
            ),
            ChannelConfig::Sms(c) => {
                let (ch, rx) = SmsChannel::start(c.clone()).map_err(|e| e.to_string())?;
                (Channel::Sms(ch), Some(rx))
            }
            ChannelConfig::Webhook(c) => (
                Channel::Webhook(WebhookChannel::new(c.clone()).map_err(|e| e.to_string())?),
                None,
            ),
        })
    }

    pub async fn send(&self, msg: &Message) -> Outcome {
        match self {
            Channel::Email(c) => c.send(msg).await,
            Channel::Sms(c) => c.send(msg).await,
            Channel::Webhook(c) => c.send(msg).await,
        }
    }

    /// Whether the channel can deliver right now, as far as it knows.
    pub fn is_healthy(&self) -> bool {
        match self {
            Channel::Email(c) => c.is_healthy(),
            Channel::Sms(c) => c.is_bound(),
            Channel::Webhook(c) => c.is_healthy(),
        }
    }
}

#[cfg(test)]
mod tests {
    fn parse(extra: &str) -> Result<crate::config::Config, String> {
        let text = format!("{}\n{extra}", crate::config::TEMPLATE);
        crate::config::Config::from_toml(&text, "test", std::iter::empty())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn channels_and_subscriptions_parse_and_validate() {
        let c = parse(
            r#"
[notify.channels.siem]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = 2525
tls = "none"
from = "simguard <alerts@example.com>"

[[notify.subscriptions]]
name = "soc"
channel = "siem"
min_severity = "major"

[[notify.subscriptions]]
name = "ops"
channel = "mail"
recipients = ["ops@example.com"]
quiet_hours = "22:00-07:00"
cap = 5
"#,
        )
        .unwrap();
        assert_eq!(c.notify.channels.len(), 2);
        assert_eq!(c.notify.channels["siem"].kind(), "webhook");
        let r = c.notify.routing();
        assert_eq!(r.subscriptions[1].cap, Some(5));
        assert_eq!(r.cap_window_ms, 3_600_000);
    }

    #[test]
    fn bad_notify_config_names_the_field() {
        // Unknown field inside a channel.
        let e = parse("[notify.channels.siem]\ntype = \"webhook\"\nurl = \"http://x\"\nsecret = \"s\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        // A subscription on a channel that does not exist.
        let e = parse("[[notify.subscriptions]]\nname = \"x\"\nchannel = \"nope\"\n").unwrap_err();
        assert!(
            e.contains("notify.subscriptions[0]") && e.contains("`channel`") && e.contains("nope"),
            "{e}"
        );
        // An email subscription without recipients.
        let e = parse("[notify.channels.m]\ntype = \"email\"\nhost = \"h\"\nfrom = \"a@b.c\"\n[[notify.subscriptions]]\nname = \"x\"\nchannel = \"m\"\n").unwrap_err();
        assert!(e.contains("recipients"), "{e}");
        // Bad quiet hours.
        let e = parse("[notify.channels.w]\ntype = \"webhook\"\nurl = \"http://x\"\nsecret = \"s\"\n[[notify.subscriptions]]\nname = \"x\"\nchannel = \"w\"\nquiet_hours = \"late\"\n").unwrap_err();
        assert!(e.contains("HH:MM"), "{e}");
        // An unknown alert type, and a cap of nothing.
        let hook = "[notify.channels.w]\ntype = \"webhook\"\nurl = \"http://x\"\nsecret = \"s\"\n[[notify.subscriptions]]\nname = \"x\"\nchannel = \"w\"\n";
        let e = parse(&format!("{hook}types = [\"scaning\"]\n")).unwrap_err();
        assert!(e.contains("types[0]") && e.contains("scaning"), "{e}");
        assert!(parse(&format!("{hook}types = [\"scanning\", \"rule:r1\"]\n")).is_ok());
        let e = parse(&format!("{hook}cap = 0\n")).unwrap_err();
        assert!(e.contains("`cap`"), "{e}");
        // A recipient that is not an address.
        let e = parse("[notify.channels.m]\ntype = \"email\"\nhost = \"h\"\nfrom = \"a@b.c\"\n[[notify.subscriptions]]\nname = \"x\"\nchannel = \"m\"\nrecipients = [\"ops@example.com\", \"ops\"]\n").unwrap_err();
        assert!(e.contains("recipients[1]"), "{e}");
    }
}
