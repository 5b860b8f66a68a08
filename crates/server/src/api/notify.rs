//! Notifications in the API: each alert's notifications with every attempt,
//! the channels' health and delivery statistics, and the subscriptions.
//!
//! Channels are the operator's infrastructure: only operator-wide callers
//! see them. Subscriptions and notifications are scoped like alerts: a
//! tenant's caller sees those of its tenant.

use super::error::{ApiError, ErrorBody};
use super::{with_reader, Caller};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use simguard_engine::time::rfc3339;
use simguard_store::{Attempt, Notification};
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// One notification: what was routed where, its state, and its attempts.
#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    /// What receivers deduplicate on: the webhook-id, the Message-ID.
    pub message_id: String,
    pub alert: Option<String>,
    /// raised, cleared or digest.
    pub event: String,
    pub subscription: String,
    pub channel: String,
    pub recipient: Option<String>,
    pub severity: String,
    /// pending, retrying, sent, failed, digested (folded into `digest`) or
    /// unrouted (no subscription wanted it).
    pub status: String,
    pub created: String,
    /// Not before (quiet hours, a digest window, the next retry).
    pub due: String,
    pub digest: Option<String>,
    /// The peer's ids for it (SMSC message ids).
    pub reference: Option<String>,
    /// The latest delivery receipt (SMS).
    pub receipt: Option<String>,
    pub receipt_time: Option<String>,
    /// When it was sent or given up.
    pub done: Option<String>,
    pub last_error: Option<String>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub n: u32,
    pub time: String,
    pub latency_ms: i64,
    /// delivered, retry or failed.
    pub result: String,
    pub detail: String,
}

fn view(n: Notification, attempts: Vec<Attempt>) -> NotificationView {
    NotificationView {
        id: n.id,
        message_id: n.message,
        alert: n.alert.map(|a| a.to_string()),
        event: n.event,
        subscription: n.subscription,
        channel: n.channel,
        recipient: (!n.recipient.is_empty()).then_some(n.recipient),
        severity: n.severity.as_str().to_string(),
        status: n.status,
        created: rfc3339(n.created),
        due: rfc3339(n.due),
        digest: n.digest,
        reference: n.reference,
        receipt: n.receipt,
        receipt_time: n.receipt_time.map(rfc3339),
        done: n.done.map(rfc3339),
        last_error: n.last_error,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                n: a.n,
                time: rfc3339(a.time),
                latency_ms: a.latency_ms,
                result: a.result,
                detail: a.detail,
            })
            .collect(),
    }
}

/// The notifications of an alert, oldest first, each with its attempts.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/notifications", params(("id" = String, Path)), responses((status = 200, body = [NotificationView]), (status = 404, body = ErrorBody)))]
pub async fn alert_notifications(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::invalid(format!("{id:?} is not an alert id")))?;
    let out = with_reader(&s, |r| {
        let Some(a) = r.alert(id)? else {
            return Ok(None);
        };
        if !caller.sees(a.tenant.as_deref()) {
            return Ok(None);
        }
        let mut out = Vec::new();
        for n in r.outbox(Some(id))? {
            let attempts = r.attempts(&n.id)?;
            out.push(view(n, attempts));
        }
        Ok(Some(out))
    })?
    .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(Json(out))
}

/// One notification with its attempts (a digest also lists its members).
#[utoipa::path(get, path = "/api/v1/notifications/{id}", params(("id" = String, Path)), responses((status = 200, body = NotificationDetail), (status = 404, body = ErrorBody)))]
pub async fn get_notification(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NotificationDetail>, ApiError> {
    let out = with_reader(&s, |r| {
        let Some((n, attempts)) = r.notification(&id)? else {
            return Ok(None);
        };
        if !caller.sees(n.tenant.as_deref()) {
            return Ok(None);
        }
        let members = if n.event == "digest" {
            r.digest_members(&n.id)?
                .into_iter()
                .map(|m| view(m, Vec::new()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Some(NotificationDetail {
            notification: view(n, attempts),
            members,
        }))
    })?
    .ok_or_else(|| ApiError::not_found(format!("no notification {id:?}")))?;
    Ok(Json(out))
}

#[derive(Serialize, ToSchema)]
pub struct NotificationDetail {
    pub notification: NotificationView,
    /// For a digest: the notifications folded into it.
    pub members: Vec<NotificationView>,
}

/// A channel's health and delivery statistics.
#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub name: String,
    /// email, sms or webhook.
    pub r#type: String,
    /// Where it sends (no secrets).
    pub endpoint: String,
    /// The last attempt worked (SMS: bound to the SMSC).
    pub healthy: bool,
    /// closed, open or half_open.
    pub circuit: String,
    /// Notifications by state, from the outbox.
    pub pending: u64,
    pub retrying: u64,
    pub sent: u64,
    pub failed: u64,
    pub digested: u64,
    /// Attempts since start, by result.
    pub attempts_delivered: u64,
    pub attempts_retry: u64,
    pub attempts_failed: u64,
    /// SMS delivery receipts matched since start.
    pub receipts: u64,
    /// Attempt latency since start, ms.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

/// The channels (operator-wide callers only).
#[utoipa::path(get, path = "/api/v1/notify/channels", responses((status = 200, body = [ChannelView]), (status = 403, body = ErrorBody)))]
pub async fn channels(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    caller.require_operator_wide_read()?;
    let counts = with_reader(&s, |r| r.channel_counts())?;
    let out = s
        .notify
        .channels
        .iter()
        .map(|(name, c)| {
            let k = counts.iter().find(|k| k.channel == *name);
            let (p50, p99) = match c.latency.lock().as_ref() {
                Some(h) if !h.is_empty() => (
                    Some(h.value_at_quantile(0.5) as f64 / 1000.0),
                    Some(h.value_at_quantile(0.99) as f64 / 1000.0),
                ),
                _ => (None, None),
            };
            ChannelView {
                name: name.clone(),
                r#type: c.kind.to_string(),
                endpoint: c.endpoint.clone(),
                healthy: c.healthy.load(Ordering::Relaxed),
                circuit: c.circuit.lock().to_string(),
                pending: k.map_or(0, |k| k.pending),
                retrying: k.map_or(0, |k| k.retrying),
                sent: k.map_or(0, |k| k.sent),
                failed: k.map_or(0, |k| k.failed),
                digested: k.map_or(0, |k| k.digested),
                attempts_delivered: c.delivered.load(Ordering::Relaxed),
                attempts_retry: c.retried.load(Ordering::Relaxed),
                attempts_failed: c.failed.load(Ordering::Relaxed),
                receipts: c.receipts.load(Ordering::Relaxed),
                latency_p50_ms: p50,
                latency_p99_ms: p99,
            }
        })
        .collect();
    Ok(Json(out))
}

/// A subscription as configured.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionView {
    pub name: String,
    pub channel: String,
    pub recipients: Vec<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub min_severity: String,
    pub types: Vec<String>,
    pub on_clear: bool,
    pub quiet_hours: Option<String>,
    pub quiet_min_severity: String,
    pub utc_offset_minutes: i32,
    pub cap: Option<u32>,
}

/// The subscriptions the caller may see (a tenant's caller: its tenant's).
#[utoipa::path(get, path = "/api/v1/notify/subscriptions", responses((status = 200, body = [SubscriptionView])))]
pub async fn subscriptions(
    State(s): State<AppState>,
    caller: Caller,
) -> Json<Vec<SubscriptionView>> {
    let out = s
        .notify_config
        .subscriptions
        .iter()
        .filter(|x| caller.tenant.is_none() || x.tenant == caller.tenant)
        .map(|x| SubscriptionView {
            name: x.name.clone(),
            channel: x.channel.clone(),
            recipients: x.recipients.clone(),
            tenant: x.tenant.clone(),
            group: x.group.clone(),
            min_severity: x.min_severity.as_str().into(),
            types: x.types.clone(),
            on_clear: x.on_clear,
            quiet_hours: x.quiet_hours.map(|q| {
                format!(
                    "{:02}:{:02}-{:02}:{:02}",
                    q.start / 60,
                    q.start % 60,
                    q.end / 60,
                    q.end % 60
                )
            }),
            quiet_min_severity: x.quiet_min_severity.as_str().into(),
            utc_offset_minutes: x.utc_offset_minutes,
            cap: x.cap,
        })
        .collect();
    Json(out)
}
