//! Alerts routes: the list with filters, one alert with its comments, and
//! what people do to alerts (acknowledge, clear, comment).
//!
//! Alerts are made by the store sink from findings, `notify` actions and
//! connectivity events (a `silent` alert clears by itself when its device
//! reports again; every other type is cleared here). Acknowledge, clear and
//! comment write through their own store connection (they are not journal
//! events) and announce the alert on the live stream after their commit.
//! A clear queues a `cleared` notification in the outbox in the same
//! transaction; nothing delivers the outbox yet.

use super::error::{ApiError, ErrorBody};
use super::{parse_imsi_path, with_reader, Caller};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::time::rfc3339;
use simguard_engine::Severity;
use simguard_store::Role;
use simguard_store::{
    Alert, AlertComment, AlertCursor, AlertFilter, AlertUpdate, AlertWriter, FindingFilter,
};
use utoipa::{IntoParams, ToSchema};

/// Longest comment accepted, in bytes.
pub const MAX_COMMENT: usize = 4096;

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct AlertSubjectView {
    /// device, cell, network or apn.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct AlertView {
    /// The key of the occurrence that opened it (text: it can exceed what a
    /// JSON number holds exactly in JavaScript).
    pub id: String,
    /// The finding type (silent, scanning ...) or "rule:<id>" for a notify action.
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: AlertSubjectView,
    pub imsi: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// warning, minor, major or critical: the highest seen while active.
    pub severity: &'static str,
    /// active or cleared.
    pub state: &'static str,
    pub acknowledged: bool,
    /// First occurrence (event time).
    pub start: String,
    pub start_ms: i64,
    /// Latest occurrence (event time).
    pub last: String,
    pub last_ms: i64,
    /// When it cleared.
    pub end: Option<String>,
    pub end_ms: Option<i64>,
    pub acknowledged_at: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    /// The API key name of who acknowledged it.
    pub acknowledged_by: Option<String>,
    pub cleared_at: Option<String>,
    pub cleared_at_ms: Option<i64>,
    /// The API key name, or "auto: ..." for an automatic clear.
    pub cleared_by: Option<String>,
    /// Occurrences: 1 + repeats while active.
    pub count: u64,
    /// The latest finding behind it.
    pub finding: Option<String>,
    /// The latest occurrence, in one line.
    pub summary: String,
}

pub fn alert_view(a: &Alert) -> AlertView {
    AlertView {
        id: a.id.to_string(),
        kind: a.kind.clone(),
        subject: AlertSubjectView {
            kind: a.subject_type.clone(),
            id: a.subject.clone(),
        },
        imsi: a.imsi.clone(),
        tenant: a.tenant.clone(),
        group: a.group.clone(),
        severity: a.severity.as_str(),
        state: a.state.as_str(),
        acknowledged: a.acknowledged,
        start: rfc3339(a.start),
        start_ms: a.start,
        last: rfc3339(a.last),
        last_ms: a.last,
        end: a.end.map(rfc3339),
        end_ms: a.end,
        acknowledged_at: a.ack_time.map(rfc3339),
        acknowledged_at_ms: a.ack_time,
        acknowledged_by: a.ack_by.clone(),
        cleared_at: a.clear_time.map(rfc3339),
        cleared_at_ms: a.clear_time,
        cleared_by: a.cleared_by.clone(),
        count: a.count,
        finding: a.finding.map(|f| f.to_string()),
        summary: a.summary.clone(),
    }
}

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct CommentView {
    pub id: i64,
    pub time: String,
    pub time_ms: i64,
    /// The API key name of who wrote it.
    pub author: String,
    pub text: String,
}

fn comment_view(c: &AlertComment) -> CommentView {
    CommentView {
        id: c.id,
        time: rfc3339(c.time),
        time_ms: c.time,
        author: c.author.clone(),
        text: c.text.clone(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct AlertDetail {
    pub alert: AlertView,
    /// Oldest first.
    pub comments: Vec<CommentView>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertPage {
    /// Newest first (start time, then id).
    pub items: Vec<AlertView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertChangeView {
    pub alert: AlertView,
    /// False when the alert was already in that state (nothing changed).
    pub changed: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct CommentInput {
    pub text: String,
}

/// Filters of the alerts list.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// active or cleared.
    pub state: Option<String>,
    /// Minimum severity: warning, minor, major or critical.
    pub severity: Option<String>,
    /// Alert type, or several separated by commas (silent,rule:r1).
    pub r#type: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub imsi: Option<String>,
    /// true or false.
    pub acknowledged: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// Whether a live-stream subscriber with finding filter `f` gets this alert:
/// the same scope, tenant, group, IMSI and minimum severity; a type filter
/// compares finding type names with the alert type.
pub fn alert_matches(f: &FindingFilter, a: &Alert) -> bool {
    let tenant_is = |want: &Option<String>| {
        want.as_deref()
            .is_none_or(|w| a.tenant.as_deref() == Some(w))
    };
    tenant_is(&f.scope)
        && tenant_is(&f.tenant)
        && f.group
            .as_deref()
            .is_none_or(|g| a.group.as_deref() == Some(g))
        && f.imsi
            .is_none_or(|i| a.imsi.as_deref() == Some(i.to_string().as_str()))
        && f.min_severity.is_none_or(|s| a.severity >= s)
        && (f.kinds.is_empty() || f.kinds.iter().any(|k| k.as_str() == a.kind))
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::invalid(format!("{id:?} is not an alert id")))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The alert if the caller may see it; 404 otherwise (like every scoped route).
fn visible(s: &AppState, caller: &Caller, id: u64) -> Result<Alert, ApiError> {
    with_reader(s, |r| r.alert(id))?
        .filter(|a| caller.sees(a.tenant.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))
}

fn writer(s: &AppState) -> Result<AlertWriter, ApiError> {
    AlertWriter::open(&s.store_path, s.routing.clone()).map_err(ApiError::internal)
}

fn changed(s: &AppState, u: Option<AlertUpdate>, id: u64) -> Result<AlertChangeView, ApiError> {
    let u = u.ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let view = alert_view(&u.alert);
    if u.changed {
        s.events.alerts_committed(vec![u.alert]);
    }
    Ok(AlertChangeView {
        alert: view,
        changed: u.changed,
    })
}

/// Alerts, newest first (start time, then id), filtered and paged. A
/// tenant's key sees only its tenant's alerts; alerts that belong to no
/// tenant only operator-wide keys see.
#[utoipa::path(get, path = "/api/v1/alerts", params(AlertQuery), responses((status = 200, body = AlertPage), (status = 400, body = ErrorBody)))]
pub async fn list_alerts(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertPage>, ApiError> {
    let Query(q) = q?;
    let f = AlertFilter {
        state: q
            .state
            .as_deref()
            .map(|v| v.parse().map_err(ApiError::invalid))
            .transpose()?,
        min_severity: q
            .severity
            .as_deref()
            .map(|v| v.parse::<Severity>().map_err(ApiError::invalid))
            .transpose()?,
        kinds: q
            .r#type
            .as_deref()
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        tenant: q.tenant.clone(),
        group: q.group.clone(),
        imsi: q.imsi.as_deref().map(parse_imsi_path).transpose()?,
        acknowledged: q.acknowledged,
        scope: caller.tenant.clone(),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| c.parse::<AlertCursor>().map_err(ApiError::invalid))
        .transpose()?;
    let mut rows = with_reader(&s, |r| r.alerts(&f, cursor, limit + 1))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|a| {
            AlertCursor {
                time: a.start,
                id: a.id,
            }
            .to_string()
        })
    } else {
        None
    };
    Ok(Json(AlertPage {
        items: rows.iter().map(alert_view).collect(),
        next_cursor,
    }))
}

/// One alert with its comments.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", params(("id" = String, Path)), responses((status = 200, body = AlertDetail), (status = 404, body = ErrorBody)))]
pub async fn get_alert(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, ApiError> {
    let id = parse_id(&id)?;
    let a = visible(&s, &caller, id)?;
    let comments = with_reader(&s, |r| r.alert_comments(id))?;
    Ok(Json(AlertDetail {
        alert: alert_view(&a),
        comments: comments.iter().map(comment_view).collect(),
    }))
}

/// Acknowledges an alert (who: the caller's name, API key or user; when: now). Acknowledging
/// an acknowledged alert changes nothing (`changed: false`).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", params(("id" = String, Path)), responses((status = 200, body = AlertChangeView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ack_alert(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertChangeView>, ApiError> {
    let id = parse_id(&id)?;
    visible(&s, &caller, id)?;
    caller.require(Role::Operator)?;
    let u = writer(&s)?
        .acknowledge(id, &caller.name, now_ms())
        .map_err(ApiError::internal)?;
    Ok(Json(changed(&s, u, id)?))
}

/// Clears an active alert (who: the caller's name, API key or user; when: now), queueing its
/// `cleared` notification in the same transaction. Clearing a cleared
/// alert changes nothing (`changed: false`).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/clear", params(("id" = String, Path)), responses((status = 200, body = AlertChangeView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn clear_alert(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertChangeView>, ApiError> {
    let id = parse_id(&id)?;
    visible(&s, &caller, id)?;
    caller.require(Role::Operator)?;
    let u = writer(&s)?
        .clear(id, &format!("user:{}", caller.name), now_ms())
        .map_err(ApiError::internal)?;
    Ok(Json(changed(&s, u, id)?))
}

/// Adds a comment (`{"text": ...}`, 1 to 4096 bytes; author: the caller's name, API key or user).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/comments", params(("id" = String, Path)), request_body = CommentInput, responses((status = 200, body = CommentView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn comment_alert(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<CommentInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CommentView>, ApiError> {
    let id = parse_id(&id)?;
    visible(&s, &caller, id)?;
    caller.require(Role::Operator)?;
    let Json(input) = body?;
    let text = input.text.trim();
    if text.is_empty() || text.len() > MAX_COMMENT {
        return Err(ApiError::invalid(format!(
            "text must be 1 to {MAX_COMMENT} bytes"
        )));
    }
    let c = writer(&s)?
        .comment(id, &caller.name, text, now_ms())
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(Json(comment_view(&c)))
}
