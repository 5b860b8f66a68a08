//! People stay in charge: a person's action on a device (block, throttle,
//! quarantine and their reversals, always with a reason), and the audit
//! trail of every action, a rule's or a person's, with the network's answers.
//!
//! Actions are decided by the engine (so they are in the journal's order
//! and ids) and stored by the sink; the trail is read from the store.

use super::error::{ApiError, ErrorBody, FieldProblem};
use super::{parse_imsi_path, submit, with_reader, Caller};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::rules::{Action, ActionKind, ActionResult, RuleMode};
use simguard_engine::time::{parse_rfc3339, rfc3339};
use simguard_engine::{Event, Finding};
use simguard_store::{AuditCursor, AuditEntry, AuditFilter, Role};
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};

/// Most characters of a person's reason.
const MAX_REASON: usize = 500;

// ---- views ----

/// What the network answered to an enforced action.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ResultView {
    /// Journal sequence of the answer.
    pub seq: u64,
    pub time: String,
    pub time_ms: i64,
    /// ack, nak, session_gone, timeout, no_session or error.
    pub result: String,
    /// Error-Cause, NAS name, round trip...
    pub detail: String,
    pub attempts: u32,
    /// What was sent, one line per request.
    pub sent: Vec<String>,
}

/// One entry of the audit trail: who or what did what to which device, and why.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ActionView {
    /// Deterministic: (journal sequence << 8) | index. Text, like finding ids.
    pub id: String,
    /// Event time of the decision.
    pub time: String,
    pub time_ms: i64,
    pub imsi: String,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// "rule:<id>", "rule:<id> (expiry)" or "user:<API key name>".
    pub actor: String,
    /// The rule behind it, if any.
    pub rule: Option<String>,
    /// notify, throttle, quarantine, block, set_lifecycle, unthrottle, release, unblock.
    pub action: &'static str,
    /// Rate of a throttle, kbit/s.
    pub kbps: Option<u32>,
    /// Target state of set_lifecycle.
    pub state: Option<&'static str>,
    /// enforce or dry-run.
    pub mode: &'static str,
    /// Why, in one line.
    pub reason: String,
    /// The finding behind it (its id), if any.
    pub finding: Option<String>,
    /// Lifecycle before and after (equal for notify, dry runs and no-ops).
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
    /// When it undoes itself, if it does.
    pub expires: Option<String>,
    pub expires_ms: Option<i64>,
    /// Escalation step taken (0-based).
    pub step: u8,
    /// Whether the network was to be told (CoA / Disconnect).
    pub enforce: bool,
    /// The network's answers, oldest first.
    pub results: Vec<ResultView>,
}

pub fn action_view(a: &Action) -> ActionView {
    let (kbps, state) = match a.kind {
        ActionKind::Throttle { kbps } => (Some(kbps), None),
        ActionKind::SetLifecycle { state } => (None, Some(state.as_str())),
        _ => (None, None),
    };
    ActionView {
        id: a.id.to_string(),
        time: rfc3339(a.time),
        time_ms: a.time,
        imsi: a.imsi.to_string(),
        tenant: a.tenant.clone(),
        group: a.group.clone(),
        actor: a.actor.clone(),
        rule: a.rule.clone(),
        action: a.kind.name(),
        kbps,
        state,
        mode: a.mode.as_str(),
        reason: a.reason.clone(),
        finding: a.finding.map(|f| f.to_string()),
        from: a.from.map(|l| l.as_str()),
        to: a.to.map(|l| l.as_str()),
        expires: a.expires.map(rfc3339),
        expires_ms: a.expires,
        step: a.step,
        enforce: a.enforce,
        results: Vec::new(),
    }
}

pub fn result_view(seq: u64, r: &ActionResult) -> ResultView {
    ResultView {
        seq,
        time: rfc3339(r.time),
        time_ms: r.time,
        result: r.result.clone(),
        detail: r.detail.clone(),
        attempts: r.attempts,
        sent: r.sent.clone(),
    }
}

pub fn entry_view(e: &AuditEntry) -> ActionView {
    let mut v = action_view(&e.action);
    v.results = e
        .results
        .iter()
        .map(|r| result_view(r.seq, &r.result))
        .collect();
    v
}

/// The network's answer on the live stream (`action_result`): the result
/// as in the audit trail's `results`, with the action it answers and what
/// the stream filters on (the action's device, tenant and group).
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ActionResultView {
    /// The action's id (as `id` of the `action` event and the audit trail).
    pub action: String,
    pub imsi: String,
    pub tenant: Option<String>,
    pub group: Option<String>,
    #[serde(flatten)]
    pub result: ResultView,
}

pub fn live_result_view(r: &crate::LiveResult) -> ActionResultView {
    ActionResultView {
        action: r.result.action.to_string(),
        imsi: r.result.imsi.to_string(),
        tenant: r.tenant.clone(),
        group: r.group.clone(),
        result: result_view(r.seq, &r.result),
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first (event time, then id).
    pub items: Vec<ActionView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

// ---- queries ----

/// Filters of the audit trail.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Actions on this device.
    pub imsi: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// Exact actor: user:alice, rule:block-scanners, "rule:x (expiry)".
    pub actor: Option<String>,
    /// Actions of this rule (its own and its expiries).
    pub rule: Option<String>,
    /// Action name: notify, throttle, quarantine, block, set_lifecycle, unthrottle, release, unblock.
    pub action: Option<String>,
    /// enforce or dry-run.
    pub mode: Option<String>,
    /// Event time from (inclusive): RFC 3339, a date, or Unix ms.
    pub since: Option<String>,
    /// Event time until (exclusive): RFC 3339, a date, or Unix ms.
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// Filters of one device's audit trail.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct DeviceAuditQuery {
    pub actor: Option<String>,
    pub rule: Option<String>,
    pub action: Option<String>,
    /// enforce or dry-run.
    pub mode: Option<String>,
    /// Event time from (inclusive): RFC 3339, a date, or Unix ms.
    pub since: Option<String>,
    /// Event time until (exclusive).
    pub until: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

const ACTION_NAMES: [&str; 8] = [
    "notify",
    "throttle",
    "quarantine",
    "block",
    "set_lifecycle",
    "unthrottle",
    "release",
    "unblock",
];

fn parse_time(v: &Option<String>, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(t) = v.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(Some(ms));
    }
    parse_rfc3339(t).map(Some).ok_or_else(|| {
        ApiError::invalid(format!(
            "{name}: {t:?} is not RFC 3339 (2026-11-22T10:00:00Z), a date or Unix ms"
        ))
    })
}

/// The filter of a request, scoped to the caller's tenant.
fn filter(
    caller: &Caller,
    q: AuditQuery,
) -> Result<(AuditFilter, Option<AuditCursor>, usize), ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    if let Some(a) = &q.action {
        if !ACTION_NAMES.contains(&a.as_str()) {
            return Err(ApiError::invalid(format!(
                "action: {a:?} is not one of {}",
                ACTION_NAMES.join(", ")
            )));
        }
    }
    let f = AuditFilter {
        imsi: q.imsi.as_deref().map(parse_imsi_path).transpose()?,
        tenant: q.tenant,
        group: q.group,
        actor: q.actor,
        rule: q.rule,
        action: q.action,
        mode: q
            .mode
            .as_deref()
            .map(|m| {
                RuleMode::parse(m).ok_or_else(|| {
                    ApiError::invalid(format!("mode: {m:?} is not enforce or dry-run"))
                })
            })
            .transpose()?,
        since: parse_time(&q.since, "since")?,
        until: parse_time(&q.until, "until")?,
        scope: caller.tenant.clone(),
    };
    if let (Some(a), Some(b)) = (f.since, f.until) {
        if a >= b {
            return Err(ApiError::invalid("since must be before until"));
        }
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| c.parse::<AuditCursor>().map_err(ApiError::invalid))
        .transpose()?;
    Ok((f, cursor, limit))
}

fn page(
    s: &AppState,
    f: &AuditFilter,
    cursor: Option<AuditCursor>,
    limit: usize,
) -> Result<AuditPage, ApiError> {
    let mut rows = with_reader(s, |r| r.audit(f, cursor, limit + 1))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|l| {
            AuditCursor {
                time: l.action.time,
                id: l.action.id,
            }
            .to_string()
        })
    } else {
        None
    };
    Ok(AuditPage {
        items: rows.iter().map(entry_view).collect(),
        next_cursor,
    })
}

/// The tenant of a device the caller may see, or 404 (a device the caller
/// may not see does not exist for it).
fn visible_device(
    s: &AppState,
    caller: &Caller,
    imsi: simguard_engine::Digits,
) -> Result<(), ApiError> {
    let e = s.engine.read();
    e.device(imsi)
        .filter(|d| caller.sees(d.provisioning.as_ref().map(|p| e.syms().resolve(p.tenant))))
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("no device with IMSI {imsi}")))
}

// ---- routes ----

/// The audit trail: every action (a rule's or a person's, enforced or
/// dry-run), newest first, with the network's answers. A tenant's key sees
/// only actions on its tenant's devices.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody)))]
pub async fn list_audit(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = q?;
    let (f, cursor, limit) = filter(&caller, q)?;
    Ok(Json(page(&s, &f, cursor, limit)?))
}

/// The audit trail of one device, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/audit", params(("imsi" = String, Path), DeviceAuditQuery), responses((status = 200, body = AuditPage), (status = 404, body = ErrorBody)))]
pub async fn device_audit(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
    q: Result<Query<DeviceAuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = q?;
    let digits = parse_imsi_path(&imsi)?;
    visible_device(&s, &caller, digits)?;
    let (f, cursor, limit) = filter(
        &caller,
        AuditQuery {
            imsi: Some(imsi),
            actor: q.actor,
            rule: q.rule,
            action: q.action,
            mode: q.mode,
            since: q.since,
            until: q.until,
            cursor: q.cursor,
            limit: q.limit,
            ..AuditQuery::default()
        },
    )?;
    Ok(Json(page(&s, &f, cursor, limit)?))
}

/// A person's action on a device.
#[derive(Deserialize, Serialize, ToSchema, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DeviceActionInput {
    /// block, unblock, throttle, unthrottle, quarantine or release.
    pub action: String,
    /// Why (required): it goes into the audit trail.
    pub reason: String,
    /// Rate for throttle, kbit/s (required for throttle).
    pub kbps: Option<u32>,
    /// Undo the block, throttle or quarantine after this many seconds.
    pub expire_secs: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceActionResult {
    /// Journal sequence of the action.
    pub seq: u64,
    /// The action's id in the audit trail.
    pub action_id: String,
    /// The device's lifecycle state once the action was applied.
    pub lifecycle: Option<&'static str>,
    /// The audit entry, once the store has it (null if it did not within a
    /// few seconds; read it later with GET /api/v1/devices/{imsi}/audit).
    pub action: Option<ActionView>,
}

fn problem(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    let mut e = ApiError::invalid(format!("{field}: {message}"));
    e.details = vec![FieldProblem {
        index: 0,
        field: field.into(),
        message,
    }];
    e
}

impl DeviceActionInput {
    /// The action it asks for; errors name the field.
    pub fn kind(&self) -> Result<ActionKind, ApiError> {
        let kind = match self.action.trim() {
            "block" => ActionKind::Block,
            "unblock" => ActionKind::Unblock,
            "throttle" => ActionKind::Throttle {
                kbps: match self.kbps {
                    Some(k) if k > 0 => k,
                    _ => return Err(problem("kbps", "throttle needs a positive kbps")),
                },
            },
            "unthrottle" => ActionKind::Unthrottle,
            "quarantine" => ActionKind::Quarantine,
            "release" => ActionKind::Release,
            other => {
                return Err(problem(
                    "action",
                    format!("{other:?} is not one of block, unblock, throttle, unthrottle, quarantine, release"),
                ))
            }
        };
        if self.kbps.is_some() && !matches!(kind, ActionKind::Throttle { .. }) {
            return Err(problem("kbps", "kbps applies to throttle only"));
        }
        match self.expire_secs {
            Some(0) => return Err(problem("expire_secs", "must be positive")),
            Some(_) if kind.reversal().is_none() => {
                return Err(problem(
                    "expire_secs",
                    "only block, throttle and quarantine expire",
                ))
            }
            _ => {}
        }
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(problem(
                "reason",
                "say why: the reason goes into the audit trail",
            ));
        }
        if reason.chars().count() > MAX_REASON {
            return Err(problem(
                "reason",
                format!("at most {MAX_REASON} characters"),
            ));
        }
        Ok(kind)
    }
}

/// A person acts on a device: block, unblock, throttle, unthrottle,
/// quarantine or release, with a reason. The actor in the audit trail is
/// "user:" and the caller's name (API key or user). Needs an operator or
/// admin of the device's tenant (or operator-wide).
#[utoipa::path(post, path = "/api/v1/devices/{imsi}/actions", params(("imsi" = String, Path)), request_body = DeviceActionInput, responses((status = 200, body = DeviceActionResult), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn device_action(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
    body: Result<Json<DeviceActionInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<DeviceActionResult>, ApiError> {
    caller.require(Role::Operator)?;
    let digits = parse_imsi_path(&imsi)?;
    visible_device(&s, &caller, digits)?;
    let Json(body) = body?;
    let kind = body.kind()?;
    let seq = submit(
        &s,
        vec![Event::DeviceAction {
            // People act in wall-clock time (the engine keeps its clock
            // monotonic, so a slow wall clock cannot move it back).
            time: crate::acct::now_ms(),
            imsi: digits,
            action: kind,
            actor: format!("user:{}", caller.name),
            reason: body.reason.trim().to_string(),
            expire_secs: body.expire_secs,
        }],
    )
    .await?;
    let lifecycle = s.engine.read().lifecycle(digits).map(|l| l.as_str());
    // The action is the first output of its journal record.
    let id = Finding::make_id(seq, 0);
    let action = read_back(&s, seq, id).await?.map(|e| entry_view(&e));
    Ok(Json(DeviceActionResult {
        seq,
        action_id: id.to_string(),
        lifecycle,
        action,
    }))
}

/// Waits (briefly) for the store sink to commit the batch holding `seq`,
/// then reads the action back. The sink flushes about once a second.
async fn read_back(s: &AppState, seq: u64, id: u64) -> Result<Option<AuditEntry>, ApiError> {
    let t0 = Instant::now();
    loop {
        if with_reader(s, |r| r.applied_seq())? >= seq {
            return with_reader(s, |r| r.action(id));
        }
        if t0.elapsed() > Duration::from_secs(5) {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
