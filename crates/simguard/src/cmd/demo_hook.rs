//! The demo's own webhook receiver, so that its notification channel has a
//! real peer: `simguard demo` gives the server a webhook channel that posts
//! here, and this checks each request as a Standard Webhooks receiver would
//! (HMAC-SHA256 over `id.timestamp.body` with the shared secret, timestamp
//! within five minutes) before logging what arrived. A request that fails
//! the check is refused (401), so the channel's health in Settings is the
//! truth about the signing too.

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use simguard_notify::webhook::{decode_secret, sign};
use simguard_server::notify::ChannelConfig;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The channel's name in the demo's configuration.
pub const CHANNEL: &str = "demo-webhook";

/// What arrived, for the log and the shutdown report.
#[derive(Default)]
pub struct Counts {
    pub verified: AtomicU64,
    pub refused: AtomicU64,
}

struct Hook {
    key: Vec<u8>,
    counts: Arc<Counts>,
}

/// A running receiver: the channel to configure and the counts.
pub struct DemoHook {
    pub channel: ChannelConfig,
    pub url: String,
    pub counts: Arc<Counts>,
}

/// Binds the receiver on a loopback port and serves it on the runtime.
pub async fn start(secret: String) -> Result<DemoHook> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the demo's webhook receiver")?;
    let addr = listener.local_addr()?;
    let key = decode_secret(&secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    let counts = Arc::new(Counts::default());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(Arc::new(Hook {
            key,
            counts: counts.clone(),
        }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the demo's webhook receiver stopped");
        }
    });
    let url = format!("http://{addr}/hook");
    // The channel's config, as a [notify.channels.demo-webhook] table
    // would give it (through serde, so defaults stay the channel's own).
    let channel: ChannelConfig = serde_json::from_value(serde_json::json!({
        "type": "webhook",
        "url": url,
        "secret": secret,
        "timeout_ms": 5000,
    }))
    .context("the demo's webhook channel")?;
    Ok(DemoHook {
        channel,
        url,
        counts,
    })
}

/// Checks a request as a Standard Webhooks receiver does; Ok(id) or why not.
fn verify(key: &[u8], headers: &HeaderMap, body: &[u8], now_secs: i64) -> Result<String, String> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("no {name} header"))
    };
    let id = h("webhook-id")?;
    let ts: i64 = h("webhook-timestamp")?
        .parse()
        .map_err(|_| "webhook-timestamp is not a number".to_string())?;
    if (now_secs - ts).abs() > 300 {
        return Err(format!("timestamp {ts} is more than 5 minutes off"));
    }
    let want = sign(key, id, ts, body);
    // Several signatures may be sent (key rotation), space-separated.
    let ok = h("webhook-signature")?
        .split(' ')
        .any(|s| constant_time_eq(s.as_bytes(), want.as_bytes()));
    if ok {
        Ok(id.to_string())
    } else {
        Err("no signature matches".into())
    }
}

/// Compares without stopping at the first difference (no timing hint).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match verify(&hook.key, &headers, &body, now) {
        Ok(id) => {
            hook.counts.verified.fetch_add(1, Ordering::Relaxed);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            tracing::info!(
                webhook_id = %id,
                r#type = %v["type"].as_str().unwrap_or("?"),
                alert = %v["data"]["alert"]["type"].as_str().unwrap_or("-"),
                tenant = %v["data"]["alert"]["tenant"].as_str().unwrap_or("-"),
                "demo webhook received a notification (signature verified)"
            );
            StatusCode::NO_CONTENT
        }
        Err(why) => {
            hook.counts.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(reason = %why, "demo webhook refused a request");
            StatusCode::UNAUTHORIZED
        }
    }
}

/// The demo's notify settings: the channel, and one config subscription
/// (critical alerts, at most 10 an hour and then a digest) so Settings
/// shows both kinds and the log is not flooded.
pub fn configure(
    notify: &mut simguard_server::notify::NotifyConfig,
    hook: &DemoHook,
) -> Result<()> {
    notify
        .channels
        .insert(CHANNEL.to_string(), hook.channel.clone());
    if !notify
        .subscriptions
        .iter()
        .any(|s| s.name == "demo-critical")
    {
        let sub: simguard_store::Subscription = serde_json::from_value(serde_json::json!({
            "name": "demo-critical",
            "channel": CHANNEL,
            "min_severity": "critical",
            "cap": 10,
        }))
        .context("the demo's subscription")?;
        notify.subscriptions.push(sub);
    }
    notify.validate().map_err(|e| anyhow::anyhow!("{e}"))
}

/// A fresh signing secret per run (the channel lives in memory only).
pub fn secret() -> String {
    format!(
        "demo-{:016x}{:016x}",
        super::demo::rand_u64(),
        super::demo::rand_u64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_takes_a_good_signature_and_refuses_the_rest() {
        let key = b"demo-secret".to_vec();
        let body = br#"{"type":"alert.raised.v1"}"#;
        let mut h = HeaderMap::new();
        h.insert("webhook-id", "7.raised".parse().unwrap());
        h.insert("webhook-timestamp", "1000".parse().unwrap());
        let sig = sign(&key, "7.raised", 1000, body);
        h.insert(
            "webhook-signature",
            format!("v1,bogus {sig}").parse().unwrap(),
        );
        assert_eq!(verify(&key, &h, body, 1010).unwrap(), "7.raised");
        // Another body, key or time: refused.
        assert!(verify(&key, &h, b"{}", 1010).is_err());
        assert!(verify(b"other", &h, body, 1010).is_err());
        assert!(verify(&key, &h, body, 2000).is_err());
    }
}
