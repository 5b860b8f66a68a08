//! Notifications in the API: each alert's notifications with every attempt,
//! the channels' health and delivery statistics, and the subscriptions.
//!
//! Channels are the operator's infrastructure, set in the config only (they
//! carry credentials and endpoints): operator-wide callers see their
//! endpoints and statistics, a tenant's caller only their names and types
//! (to pick one for a subscription). Subscriptions come from the config
//! (read-only, `source: "config"`) or from this API (`source: "api"`,
//! stored, routed to from the commit that made them); they and the
//! notifications are scoped like alerts: a tenant's caller sees and
//! changes those of its tenant.

use super::error::{ApiError, ErrorBody, FieldProblem};
use super::{with_reader, Caller};
use crate::notify::{check_subscription, SubscriptionProblem};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::time::rfc3339;
use simguard_engine::{inventory, Severity};
use simguard_store::{
    Attempt, Created, Notification, Role, StoredSubscription, Subscription, SubscriptionWriter,
};
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

/// A channel's health and delivery statistics. A tenant's caller gets the
/// name and type only: endpoints and traffic of every tenant are the
/// operator's.
#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub name: String,
    /// email, sms or webhook.
    pub r#type: String,
    /// Where it sends (no secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stats: Option<ChannelStats>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelStats {
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

/// The channels, from the config's `[notify.channels.*]` (they carry
/// credentials and endpoints, so they are set there, not through the API).
/// Operator-wide callers get endpoints, health and statistics; a tenant's
/// caller the names and types.
#[utoipa::path(get, path = "/api/v1/notify/channels", responses((status = 200, body = [ChannelView])))]
pub async fn channels(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    if caller.tenant.is_some() {
        let out = s
            .notify_config
            .channels
            .iter()
            .map(|(name, c)| ChannelView {
                name: name.clone(),
                r#type: c.kind().to_string(),
                endpoint: None,
                stats: None,
            })
            .collect();
        return Ok(Json(out));
    }
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
                endpoint: Some(c.endpoint.clone()),
                stats: Some(ChannelStats {
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
                }),
            }
        })
        .collect();
    Ok(Json(out))
}

// ---- subscriptions ----

/// A subscription, from the config or stored through the API.
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
    /// "config" (read-only: change it in the config's [notify]) or "api"
    /// (stored; PUT and DELETE change it).
    pub source: &'static str,
    /// Why it cannot deliver, if it cannot: a stored subscription whose
    /// channel was since removed from the config (its notifications fail
    /// with "channel not configured" until it is edited or deleted).
    pub problem: Option<String>,
    /// Who stored it and when (API ones).
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub updated: Option<String>,
    pub updated_by: Option<String>,
}

fn sub_view(
    x: &Subscription,
    stored: Option<&StoredSubscription>,
    channels: &std::collections::BTreeMap<String, crate::notify::ChannelConfig>,
) -> SubscriptionView {
    SubscriptionView {
        problem: (!channels.contains_key(&x.channel)).then(|| {
            format!(
                "channel {:?} is not configured: its notifications fail until the subscription is edited or deleted",
                x.channel
            )
        }),
        name: x.name.clone(),
        channel: x.channel.clone(),
        recipients: x.recipients.clone(),
        tenant: x.tenant.clone(),
        group: x.group.clone(),
        min_severity: x.min_severity.as_str().into(),
        types: x.types.clone(),
        on_clear: x.on_clear,
        quiet_hours: x.quiet_hours.map(|q| q.to_string()),
        quiet_min_severity: x.quiet_min_severity.as_str().into(),
        utc_offset_minutes: x.utc_offset_minutes,
        cap: x.cap,
        source: if stored.is_some() { "api" } else { "config" },
        created: stored.map(|s| rfc3339(s.created)),
        created_by: stored.map(|s| s.created_by.clone()),
        updated: stored.map(|s| rfc3339(s.updated)),
        updated_by: stored.map(|s| s.updated_by.clone()),
    }
}

/// Whether the caller sees subscription `x`: a tenant's caller, its
/// tenant's only (not the operator-wide ones, whose recipients are staff).
fn sees(caller: &Caller, x: &Subscription) -> bool {
    caller.tenant.is_none() || x.tenant == caller.tenant
}

/// The subscriptions the caller may see (a tenant's caller: its tenant's):
/// the config's first, then the stored ones, each by name.
#[utoipa::path(get, path = "/api/v1/notify/subscriptions", responses((status = 200, body = [SubscriptionView])))]
pub async fn subscriptions(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    let stored = with_reader(&s, |r| r.subscriptions())?;
    let config = &s.notify_config.subscriptions;
    let channels = &s.notify_config.channels;
    let out = config
        .iter()
        .filter(|x| sees(&caller, x))
        .map(|x| sub_view(x, None, channels))
        .chain(
            stored
                .iter()
                // Shadowed by the config's of the same name: not routed.
                .filter(|x| !config.iter().any(|c| c.name == x.sub.name))
                .filter(|x| sees(&caller, &x.sub))
                .map(|x| sub_view(&x.sub, Some(x), channels)),
        )
        .collect();
    Ok(Json(out))
}

/// A subscription to store: the fields of `[[notify.subscriptions]]`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    /// 1 to 64 characters without '.' or ':', unique among all
    /// subscriptions (config ones too). PUT: absent, or the path's.
    #[serde(default)]
    pub name: String,
    /// A channel of the config's [notify.channels] (GET /api/v1/notify/channels).
    pub channel: String,
    /// Email addresses (email channel) or MSISDNs (SMS); none for a webhook.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Only alerts of this tenant. A tenant's caller: its own (absent = it).
    /// An operator-wide caller: any, or absent/null for every tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Only alerts of this device group (of the subscription's tenant).
    #[serde(default)]
    pub group: Option<String>,
    /// warning (default), minor, major or critical.
    #[serde(default)]
    pub min_severity: Option<String>,
    /// Only these alert types (finding types, rule:<id>); empty = all.
    #[serde(default)]
    pub types: Vec<String>,
    /// Also notify when the alert clears (default true).
    #[serde(default)]
    pub on_clear: Option<bool>,
    /// "HH:MM-HH:MM" local time: below quiet_min_severity, notifications
    /// wait for a digest at the end.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    /// What still goes through in quiet hours (default critical).
    #[serde(default)]
    pub quiet_min_severity: Option<String>,
    /// Local time's offset from UTC, minutes (default 0).
    #[serde(default)]
    pub utc_offset_minutes: Option<i32>,
    /// At most this many notifications per recipient per cap window.
    #[serde(default)]
    pub cap: Option<u32>,
}

impl From<SubscriptionProblem> for ApiError {
    fn from(p: SubscriptionProblem) -> ApiError {
        field_error(StatusCode::BAD_REQUEST, "invalid", &p.field, p.message)
    }
}

fn field_error(
    status: StatusCode,
    code: &'static str,
    field: &str,
    message: impl Into<String>,
) -> ApiError {
    let message = message.into();
    let mut e = ApiError::new(status, code, format!("{field}: {message}"));
    e.details = vec![FieldProblem {
        index: 0,
        field: field.to_string(),
        message,
    }];
    e
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    field_error(StatusCode::BAD_REQUEST, "invalid", field, message)
}

fn opt(v: Option<String>) -> Option<String> {
    v.map(|x| x.trim().to_string()).filter(|x| !x.is_empty())
}

fn severity(field: &str, v: Option<String>, default: Severity) -> Result<Severity, ApiError> {
    match opt(v) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: String| bad(field, e)),
    }
}

/// A subscription from a request, checked like the config's and scoped to
/// the caller: a tenant's caller writes its own tenant's (an absent tenant
/// becomes it; another is refused) and only names groups of it.
fn subscription_for(
    s: &AppState,
    caller: &Caller,
    input: SubscriptionInput,
) -> Result<Subscription, ApiError> {
    let tenant = match (&caller.tenant, opt(input.tenant)) {
        (Some(mine), None) => Some(mine.clone()),
        (Some(mine), Some(t)) if *mine == t => Some(t),
        (Some(mine), Some(t)) => {
            return Err(field_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "tenant",
                format!("this caller can only write subscriptions of tenant {mine:?}, not {t:?}"),
            ))
        }
        (None, t) => t,
    };
    let group = opt(input.group);
    {
        let e = s.engine.read();
        if let Some(t) = &tenant {
            inventory::validate_slug("tenant", t).map_err(|x| bad("tenant", x.message))?;
            if e.tenant(t).is_none() {
                return Err(bad("tenant", format!("no tenant {t:?}")));
            }
        }
        if let Some(g) = &group {
            // Another tenant's group reads as missing: its existence is
            // that tenant's business.
            let found = e
                .group(g)
                .is_some_and(|x| tenant.as_deref().is_none_or(|t| x.tenant == t));
            if !found {
                return Err(bad(
                    "group",
                    match &tenant {
                        Some(t) => format!("no group {g:?} in tenant {t:?}"),
                        None => format!("no group {g:?}"),
                    },
                ));
            }
        }
    }
    let quiet_hours = opt(input.quiet_hours)
        .map(|q| q.parse().map_err(|e: String| bad("quiet_hours", e)))
        .transpose()?;
    let sub = Subscription {
        name: input.name.trim().to_string(),
        channel: input.channel.trim().to_string(),
        recipients: input
            .recipients
            .into_iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
        tenant,
        group,
        min_severity: severity("min_severity", input.min_severity, Severity::Warning)?,
        types: input
            .types
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        on_clear: input.on_clear.unwrap_or(true),
        quiet_hours,
        quiet_min_severity: severity(
            "quiet_min_severity",
            input.quiet_min_severity,
            Severity::Critical,
        )?,
        utc_offset_minutes: input.utc_offset_minutes.unwrap_or(0),
        cap: input.cap,
    };
    check_subscription(&sub, &s.notify_config.channels)?;
    Ok(sub)
}

fn writer(s: &AppState) -> Result<SubscriptionWriter, ApiError> {
    SubscriptionWriter::open(&s.store_path).map_err(ApiError::internal)
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("no subscription {name:?}"))
}

/// A config subscription the caller sees is read-only (409); one it does
/// not see does not exist for it (404).
fn refuse_config(caller: &Caller, s: &AppState, name: &str) -> Result<(), ApiError> {
    match s.notify_config.subscriptions.iter().find(|c| c.name == name) {
        Some(c) if sees(caller, c) => Err(ApiError::conflict(format!(
            "subscription {name:?} comes from the configuration ([[notify.subscriptions]]): change it there"
        ))),
        Some(_) => Err(not_found(name)),
        None => Ok(()),
    }
}

/// Stores a subscription (operators and admins; a tenant's caller, for its
/// tenant). Routed to from the next alert event on. 409 when the name is
/// taken (by a stored or a config subscription).
#[utoipa::path(post, path = "/api/v1/notify/subscriptions", request_body = SubscriptionInput, responses((status = 201, body = SubscriptionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_subscription(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<SubscriptionInput>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<SubscriptionView>), ApiError> {
    caller.require(Role::Operator)?;
    let Json(input) = body?;
    let sub = subscription_for(&s, &caller, input)?;
    if s.notify_config
        .subscriptions
        .iter()
        .any(|c| c.name == sub.name)
    {
        return Err(field_error(
            StatusCode::CONFLICT,
            "conflict",
            "name",
            format!(
                "{:?} is taken by a subscription of the configuration",
                sub.name
            ),
        ));
    }
    let now = crate::acct::now_ms();
    match writer(&s)?
        .create(&sub, &caller.name, now)
        .map_err(ApiError::internal)?
    {
        Created::Created => {}
        Created::Exists => {
            return Err(field_error(
                StatusCode::CONFLICT,
                "conflict",
                "name",
                format!("a subscription named {:?} exists", sub.name),
            ))
        }
        Created::Full => {
            return Err(ApiError::conflict(format!(
                "at most {} stored subscriptions; delete one first",
                simguard_store::subscriptions::MAX_STORED_SUBSCRIPTIONS
            )))
        }
    }
    // Who changed what, like user and key management: the log, and the
    // row's created_by/updated_by.
    tracing::info!(subscription = %sub.name, channel = %sub.channel, tenant = ?sub.tenant, by = %caller.name, "subscription created");
    let stored = StoredSubscription {
        sub: sub.clone(),
        created: now,
        created_by: caller.name.clone(),
        updated: now,
        updated_by: caller.name.clone(),
    };
    Ok((
        StatusCode::CREATED,
        Json(sub_view(&sub, Some(&stored), &s.notify_config.channels)),
    ))
}

/// Replaces a stored subscription (not the config's: 409). The name stays.
#[utoipa::path(put, path = "/api/v1/notify/subscriptions/{name}", params(("name" = String, Path)), request_body = SubscriptionInput, responses((status = 200, body = SubscriptionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_subscription(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<SubscriptionInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.require(Role::Operator)?;
    let Json(mut input) = body?;
    refuse_config(&caller, &s, &name)?;
    let mut w = writer(&s)?;
    // Another tenant's does not exist for this caller.
    if w.get(&name, caller.tenant.as_deref())
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(not_found(&name));
    }
    if input.name.trim().is_empty() {
        input.name = name.clone();
    } else if input.name.trim() != name {
        return Err(bad(
            "name",
            format!("{:?} differs from the path's {name:?} (a name cannot change: it is part of notification ids)", input.name),
        ));
    }
    let sub = subscription_for(&s, &caller, input)?;
    let now = crate::acct::now_ms();
    if !w
        .replace(&sub, caller.tenant.as_deref(), &caller.name, now)
        .map_err(ApiError::internal)?
    {
        return Err(not_found(&name));
    }
    tracing::info!(subscription = %sub.name, channel = %sub.channel, tenant = ?sub.tenant, by = %caller.name, "subscription changed");
    let stored = w
        .get(&name, None)
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found(&name))?;
    Ok(Json(sub_view(
        &stored.sub,
        Some(&stored),
        &s.notify_config.channels,
    )))
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionDeleted {
    pub deleted: String,
}

/// Deletes a stored subscription (not the config's: 409). The next alert
/// event is not routed to it; notifications already queued still go.
#[utoipa::path(delete, path = "/api/v1/notify/subscriptions/{name}", params(("name" = String, Path)), responses((status = 200, body = SubscriptionDeleted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_subscription(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SubscriptionDeleted>, ApiError> {
    caller.require(Role::Operator)?;
    refuse_config(&caller, &s, &name)?;
    if !writer(&s)?
        .delete(&name, caller.tenant.as_deref())
        .map_err(ApiError::internal)?
    {
        return Err(not_found(&name));
    }
    tracing::info!(subscription = %name, by = %caller.name, "subscription deleted");
    Ok(Json(SubscriptionDeleted { deleted: name }))
}
