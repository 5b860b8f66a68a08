//! Findings routes and the live event stream.
//!
//! Findings are read from the store (the sink writes them with the batch
//! that covers their journal sequence). The stream (`GET /api/v1/events`)
//! announces each one after that batch has committed, so a client that sees
//! an event can fetch the finding at once.

use super::alerts::{alert_matches, alert_view, AlertView};
use super::audit::{action_view, live_result_view, ActionResultView, ActionView};
use super::error::{ApiError, ErrorBody};
use super::{parse_imsi_path, with_reader, Caller};
use crate::metrics::StreamMetrics;
use crate::{AppState, LiveAction, LiveEvent, Subscription};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use simguard_engine::event::FlowRecord;
use simguard_engine::time::{parse_rfc3339, rfc3339};
use simguard_engine::{Finding, FindingKind, Severity, Subject};
use simguard_store::{FindingCursor, FindingFilter, FindingsAfter};
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

// ---- views ----

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct SubjectView {
    /// device, cell, network or apn.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The IMSI, "MCC-MNC-TAC/LAC-CI", "MCC-MNC" or the APN.
    pub id: String,
}

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct FactView {
    pub name: String,
    pub observed: String,
    /// What was expected, when there is an expectation to hold it to.
    pub expected: Option<String>,
}

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct RecordView {
    /// Journal sequence of the record.
    pub seq: u64,
    pub time: String,
    pub time_ms: i64,
    /// start, interim, stop or flows.
    pub what: String,
    pub detail: String,
}

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct EvidenceFlowView {
    pub start: String,
    pub start_ms: i64,
    pub end: String,
    pub end_ms: i64,
    pub src: String,
    pub dst: String,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub proto: u8,
    pub tcp_flags: u8,
    /// Octets and packets, scaled by `sampling`.
    pub bytes: u64,
    pub packets: u64,
    pub sampling: u32,
}

fn evidence_flow(f: &FlowRecord) -> EvidenceFlowView {
    EvidenceFlowView {
        start: rfc3339(f.start),
        start_ms: f.start,
        end: rfc3339(f.end),
        end_ms: f.end,
        src: f.src.to_string(),
        dst: f.dst.to_string(),
        src_port: f.src_port,
        dst_port: f.dst_port,
        proto: f.proto,
        tcp_flags: f.tcp_flags,
        bytes: f.bytes,
        packets: f.packets,
        sampling: f.sampling,
    }
}

/// Why the finding was raised, in terms a person can check.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct EvidenceView {
    /// What it was held to: "declared profile of group meters", "learned baseline (14 days)"...
    pub baseline: String,
    /// Observed against expected, one fact each.
    pub facts: Vec<FactView>,
    /// The records behind it (at most 8).
    pub records: Vec<RecordView>,
    /// Sample flows behind it (at most 8).
    pub flows: Vec<EvidenceFlowView>,
}

#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct FindingView {
    /// Deterministic: (journal sequence << 8) | index. Text, because it can
    /// exceed what a JSON number holds exactly in JavaScript.
    pub id: String,
    /// The finding type (declared_volume, scanning, sim_swap ...).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The detector that produced it.
    pub detector: &'static str,
    pub subject: SubjectView,
    /// The IMSI for device findings.
    pub imsi: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// warning, minor, major or critical.
    pub severity: &'static str,
    /// When it was detected (event time).
    pub time: String,
    pub time_ms: i64,
    /// When the deviation began, as far as the evidence shows.
    pub onset: String,
    pub onset_ms: i64,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// One line: what was observed against what was expected.
    pub summary: String,
    pub evidence: EvidenceView,
}

pub fn finding_view(f: &Finding) -> FindingView {
    let (kind, id) = match &f.subject {
        Subject::Device(d) => ("device", d.to_string()),
        Subject::Cell(c) => ("cell", c.clone()),
        Subject::Network(n) => ("network", n.clone()),
        Subject::Apn(a) => ("apn", a.clone()),
    };
    let e = &f.evidence;
    FindingView {
        id: f.id.to_string(),
        kind: f.kind.as_str(),
        detector: f.kind.detector().as_str(),
        subject: SubjectView { kind, id },
        imsi: f.imsi().map(|d| d.to_string()),
        tenant: f.tenant.clone(),
        group: f.group.clone(),
        severity: f.severity.as_str(),
        time: rfc3339(f.time),
        time_ms: f.time,
        onset: rfc3339(f.onset),
        onset_ms: f.onset,
        confidence: f64::from(f.confidence.min(100)) / 100.0,
        summary: e.summary.clone(),
        evidence: EvidenceView {
            baseline: e.baseline.clone(),
            facts: e
                .facts
                .iter()
                .map(|x| FactView {
                    name: x.name.clone(),
                    observed: x.observed.clone(),
                    expected: x.expected.clone(),
                })
                .collect(),
            records: e
                .records
                .iter()
                .map(|r| RecordView {
                    seq: r.seq,
                    time: rfc3339(r.time),
                    time_ms: r.time,
                    what: r.what.clone(),
                    detail: r.detail.clone(),
                })
                .collect(),
            flows: e.flows.iter().map(evidence_flow).collect(),
        },
    }
}

#[derive(Serialize, ToSchema)]
pub struct FindingPage {
    /// Newest first (event time, then id).
    pub items: Vec<FindingView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CountView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub severity: &'static str,
    pub count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct FindingSummary {
    pub total: u64,
    /// Every finding type, zero included.
    pub by_type: BTreeMap<&'static str, u64>,
    /// Every severity, zero included.
    pub by_severity: BTreeMap<&'static str, u64>,
    /// The non-zero (type, severity) pairs.
    pub by_type_and_severity: Vec<CountView>,
}

// ---- queries ----

/// Filters of the findings list.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct FindingQuery {
    /// Finding type, or several separated by commas (scanning,ddos).
    pub r#type: Option<String>,
    /// Minimum severity: warning, minor, major or critical.
    pub severity: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// Findings about this device.
    pub imsi: Option<String>,
    /// Event time from (inclusive): RFC 3339, a date, or Unix ms.
    pub since: Option<String>,
    /// Event time until (exclusive): RFC 3339, a date, or Unix ms.
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// Filters of a device's findings.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct DeviceFindingQuery {
    /// Finding type, or several separated by commas.
    pub r#type: Option<String>,
    /// Minimum severity: warning, minor, major or critical.
    pub severity: Option<String>,
    /// Event time from (inclusive): RFC 3339, a date, or Unix ms.
    pub since: Option<String>,
    /// Event time until (exclusive).
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// Filters of the findings summary.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Finding type, or several separated by commas.
    pub r#type: Option<String>,
    /// Minimum severity.
    pub severity: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub imsi: Option<String>,
    /// Event time from (inclusive): RFC 3339, a date, or Unix ms.
    pub since: Option<String>,
    /// Event time until (exclusive).
    pub until: Option<String>,
}

/// Filters of the live stream (a caller only ever gets its own tenant's).
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Wire version the client speaks; only 1 exists (default 1).
    pub version: Option<u32>,
    /// Finding type, or several separated by commas.
    pub r#type: Option<String>,
    /// Minimum severity.
    pub severity: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub imsi: Option<String>,
}

fn parse_kinds(v: &Option<String>) -> Result<Vec<FindingKind>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.parse::<FindingKind>().map_err(|e| {
                let all: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::invalid(format!("type: {e}; known: {}", all.join(", ")))
            })
        })
        .collect()
}

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

/// The filter of a request: its parameters, scoped to the caller's tenant.
#[allow(clippy::too_many_arguments)]
fn filter(
    caller: &Caller,
    kinds: &Option<String>,
    severity: &Option<String>,
    tenant: &Option<String>,
    group: &Option<String>,
    imsi: &Option<String>,
    since: &Option<String>,
    until: &Option<String>,
) -> Result<FindingFilter, ApiError> {
    let f = FindingFilter {
        kinds: parse_kinds(kinds)?,
        min_severity: severity
            .as_deref()
            .map(|s| s.parse::<Severity>().map_err(ApiError::invalid))
            .transpose()?,
        tenant: tenant.clone(),
        group: group.clone(),
        imsi: imsi.as_deref().map(parse_imsi_path).transpose()?,
        since: parse_time(since, "since")?,
        until: parse_time(until, "until")?,
        scope: caller.tenant.clone(),
    };
    if let (Some(a), Some(b)) = (f.since, f.until) {
        if a >= b {
            return Err(ApiError::invalid("since must be before until"));
        }
    }
    Ok(f)
}

fn page_args(
    cursor: &Option<String>,
    limit: Option<usize>,
) -> Result<(Option<FindingCursor>, usize), ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let cursor = cursor
        .as_deref()
        .map(|c| c.parse::<FindingCursor>().map_err(ApiError::invalid))
        .transpose()?;
    Ok((cursor, limit))
}

fn page(
    s: &AppState,
    f: &FindingFilter,
    cursor: Option<FindingCursor>,
    limit: usize,
) -> Result<FindingPage, ApiError> {
    let mut rows = with_reader(s, |r| r.findings(f, cursor, limit + 1))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|l| {
            FindingCursor {
                time: l.time,
                id: l.id,
            }
            .to_string()
        })
    } else {
        None
    };
    Ok(FindingPage {
        items: rows.iter().map(finding_view).collect(),
        next_cursor,
    })
}

// ---- routes ----

/// Findings, newest first, filtered and paged. A tenant's key sees only its
/// tenant's findings; findings that belong to no tenant (unprovisioned IMSIs,
/// cells, networks) only operator-wide keys see.
#[utoipa::path(get, path = "/api/v1/findings", params(FindingQuery), responses((status = 200, body = FindingPage), (status = 400, body = ErrorBody)))]
pub async fn list_findings(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<FindingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FindingPage>, ApiError> {
    let Query(q) = q?;
    let f = filter(
        &caller,
        &q.r#type,
        &q.severity,
        &q.tenant,
        &q.group,
        &q.imsi,
        &q.since,
        &q.until,
    )?;
    let (cursor, limit) = page_args(&q.cursor, q.limit)?;
    Ok(Json(page(&s, &f, cursor, limit)?))
}

/// The findings about one device, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/findings", params(("imsi" = String, Path), DeviceFindingQuery), responses((status = 200, body = FindingPage), (status = 404, body = ErrorBody)))]
pub async fn device_findings(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
    q: Result<Query<DeviceFindingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FindingPage>, ApiError> {
    let Query(q) = q?;
    let digits = parse_imsi_path(&imsi)?;
    {
        // Like every device route: a device the caller may not see does not exist.
        let e = s.engine.read();
        e.device(digits)
            .filter(|d| caller.sees(d.provisioning.as_ref().map(|p| e.syms().resolve(p.tenant))))
            .ok_or_else(|| ApiError::not_found(format!("no device with IMSI {digits}")))?;
    }
    let f = filter(
        &caller,
        &q.r#type,
        &q.severity,
        &None,
        &None,
        &Some(imsi),
        &q.since,
        &q.until,
    )?;
    let (cursor, limit) = page_args(&q.cursor, q.limit)?;
    Ok(Json(page(&s, &f, cursor, limit)?))
}

/// One finding by id.
#[utoipa::path(get, path = "/api/v1/findings/{id}", params(("id" = String, Path)), responses((status = 200, body = FindingView), (status = 404, body = ErrorBody)))]
pub async fn get_finding(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FindingView>, ApiError> {
    let n: u64 = id
        .parse()
        .map_err(|_| ApiError::invalid(format!("{id:?} is not a finding id")))?;
    with_reader(&s, |r| r.finding(n))?
        .filter(|f| caller.sees(f.tenant.as_deref()))
        .map(|f| Json(finding_view(&f)))
        .ok_or_else(|| ApiError::not_found(format!("no finding {n}")))
}

/// Counts of findings by type and severity, with the list's filters.
#[utoipa::path(get, path = "/api/v1/findings/summary", params(SummaryQuery), responses((status = 200, body = FindingSummary), (status = 400, body = ErrorBody)))]
pub async fn finding_summary(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<SummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FindingSummary>, ApiError> {
    let Query(q) = q?;
    let f = filter(
        &caller,
        &q.r#type,
        &q.severity,
        &q.tenant,
        &q.group,
        &q.imsi,
        &q.since,
        &q.until,
    )?;
    let counts = with_reader(&s, |r| r.finding_counts(&f))?;
    let mut out = FindingSummary {
        total: 0,
        by_type: FindingKind::ALL.iter().map(|k| (k.as_str(), 0)).collect(),
        by_severity: Severity::ALL.iter().map(|k| (k.as_str(), 0)).collect(),
        by_type_and_severity: Vec::new(),
    };
    for (k, sev, n) in counts.rows {
        out.total += n;
        *out.by_type.entry(k.as_str()).or_default() += n;
        *out.by_severity.entry(sev.as_str()).or_default() += n;
        out.by_type_and_severity.push(CountView {
            kind: k.as_str(),
            severity: sev.as_str(),
            count: n,
        });
    }
    Ok(Json(out))
}

// ---- live stream ----

/// Wire version of the stream. Version 1: SSE events `ready`, `finding`,
/// `lagged`, `alert`, `action` and `action_result` (below). New event types
/// are added as new variants of [`StreamEventV1`]; clients ignore event
/// types they do not know (the SSE rule). Changing the shape of an existing event makes a
/// version 2, which clients ask for with `?version=2`.
pub const STREAM_VERSION: u32 = 1;

/// Most findings replayed from the store at once (Last-Event-ID resumption,
/// catch-up after lagging); older ones are reported in a `lagged` event.
pub const REPLAY_LIMIT: usize = 1000;

/// Sent first, once the subscription is in place: anything committed after
/// it reaches this client.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ReadyView {
    pub version: u32,
    /// Findings after this id are delivered (the Last-Event-ID sent, or the
    /// newest finding at connection).
    pub after: String,
}

/// The client missed events: what and why.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct LaggedView {
    pub missed: u64,
    /// slow_consumer: the live buffer dropped `missed` events (of every
    /// tenant and type) before this client read them; the findings among
    /// them that it may see follow, replayed from the store (alerts and
    /// actions are not replayed: GET /api/v1/alerts and /api/v1/audit).
    /// replay_limit: `missed` findings this client may see were not
    /// replayed (only the newest 1000 are); list them with
    /// GET /api/v1/findings. replay_failed: the store could not be read;
    /// `missed` live events are lost to this stream.
    pub reason: &'static str,
}

/// One event of the stream, wire version 1. The SSE `event:` field is
/// [`StreamEventV1::name`], `data:` the JSON of the view, and `id:` the
/// finding id for findings (so a reconnecting client resumes with
/// Last-Event-ID).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEventV1 {
    Ready(ReadyView),
    Finding(Box<FindingView>),
    Lagged(LaggedView),
    /// An alert changed (raised, repeated, acknowledged, cleared): the
    /// alert as it is now, as in `GET /api/v1/alerts/{id}` without comments.
    /// No `id:` (Last-Event-ID resumes findings only; alerts missed while
    /// disconnected are read with `GET /api/v1/alerts`).
    Alert(Box<AlertView>),
    /// An action was decided (a rule's or a person's; enforced or dry-run,
    /// `mode` says which), as in `GET /api/v1/audit` (without results).
    /// No `id:`: actions missed while disconnected are read with
    /// `GET /api/v1/audit`.
    Action(Box<ActionView>),
    /// The network answered an action (ack, nak, timeout...): the result
    /// with its action's id, IMSI, tenant and group. No `id:` either.
    ActionResult(Box<ActionResultView>),
}

impl StreamEventV1 {
    pub fn name(&self) -> &'static str {
        match self {
            StreamEventV1::Ready(_) => "ready",
            StreamEventV1::Finding(_) => "finding",
            StreamEventV1::Lagged(_) => "lagged",
            StreamEventV1::Alert(_) => "alert",
            StreamEventV1::Action(_) => "action",
            StreamEventV1::ActionResult(_) => "action_result",
        }
    }

    fn into_sse(self) -> Event {
        let ev = Event::default().event(self.name());
        let r = match &self {
            StreamEventV1::Ready(v) => ev.json_data(v),
            StreamEventV1::Finding(v) => ev.id(v.id.clone()).json_data(v),
            StreamEventV1::Lagged(v) => ev.json_data(v),
            StreamEventV1::Alert(v) => ev.json_data(v),
            StreamEventV1::Action(v) => ev.json_data(v),
            StreamEventV1::ActionResult(v) => ev.json_data(v),
        };
        r.unwrap_or_else(|e| {
            // Our views always serialize; should one not, say so on the stream.
            tracing::error!(error = %e, "stream event not serializable");
            Event::default().comment("event dropped: not serializable")
        })
    }
}

/// Reads findings after an id from the store (blocking; run off the runtime).
pub type CatchUp =
    Arc<dyn Fn(&FindingFilter, u64, usize) -> Result<FindingsAfter, String> + Send + Sync>;

struct LiveState {
    sub: Subscription,
    filter: FindingFilter,
    /// Highest finding id passed on (sent, or seen and filtered out): ids
    /// grow with the journal, so anything at or below is a duplicate.
    seen: u64,
    queue: VecDeque<StreamEventV1>,
    catch_up: CatchUp,
    metrics: StreamMetrics,
}

impl LiveState {
    /// Queues the findings after `self.seen` from the store.
    async fn replay(&mut self, lost_if_failed: u64) {
        let (f, after, c) = (self.filter.clone(), self.seen, self.catch_up.clone());
        let r = tokio::task::spawn_blocking(move || c(&f, after, REPLAY_LIMIT))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match r {
            Ok(found) => {
                if found.left_out > 0 {
                    self.queue.push_back(StreamEventV1::Lagged(LaggedView {
                        missed: found.left_out,
                        reason: "replay_limit",
                    }));
                }
                for f in found.items {
                    self.seen = self.seen.max(f.id);
                    self.metrics.replayed.increment(1);
                    self.queue
                        .push_back(StreamEventV1::Finding(Box::new(finding_view(&f))));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "live stream catch-up from the store failed");
                if lost_if_failed > 0 {
                    self.queue.push_back(StreamEventV1::Lagged(LaggedView {
                        missed: lost_if_failed,
                        reason: "replay_failed",
                    }));
                }
            }
        }
    }
}

/// The stream of one subscriber: `ready`, the findings after `after` from
/// the store, then live events, with catch-up when it lags. Ends when the hub
/// closes (shutdown).
pub fn live_stream(
    sub: Subscription,
    filter: FindingFilter,
    after: u64,
    catch_up: CatchUp,
    metrics: StreamMetrics,
) -> impl Stream<Item = StreamEventV1> + Send {
    let st = LiveState {
        sub,
        filter,
        seen: after,
        queue: VecDeque::from([StreamEventV1::Ready(ReadyView {
            version: STREAM_VERSION,
            after: after.to_string(),
        })]),
        catch_up,
        metrics,
    };
    stream::unfold((st, true), |(mut st, first)| async move {
        if first {
            // The subscription exists already (the caller made it), so what
            // commits from now on is in the broadcast; what committed after
            // `after` before it is in the store.
            st.replay(0).await;
        }
        loop {
            if let Some(ev) = st.queue.pop_front() {
                if matches!(ev, StreamEventV1::Finding(_)) {
                    st.metrics.findings_sent.increment(1);
                }
                return Some((ev, (st, false)));
            }
            tokio::select! {
                // Live events first: at shutdown what is already buffered
                // still goes out before the stream ends.
                biased;
                r = st.sub.rx.recv() => match r {
                    Ok(LiveEvent::Finding(f)) => {
                        if f.id <= st.seen {
                            continue;
                        }
                        st.seen = f.id;
                        if st.filter.matches(&f) {
                            st.queue.push_back(StreamEventV1::Finding(Box::new(finding_view(&f))));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        st.metrics.lagged.increment(n);
                        st.queue.push_back(StreamEventV1::Lagged(LaggedView {
                            missed: n,
                            reason: "slow_consumer",
                        }));
                        st.replay(n).await;
                    }
                    Err(RecvError::Closed) => return None,
                },
                r = st.sub.alerts.recv() => match r {
                    Ok(a) => {
                        if alert_matches(&st.filter, &a) {
                            st.queue.push_back(StreamEventV1::Alert(Box::new(alert_view(&a))));
                        }
                    }
                    // Alerts are not replayed: say how many were missed
                    // (list them with GET /api/v1/alerts).
                    Err(RecvError::Lagged(n)) => {
                        st.metrics.lagged.increment(n);
                        st.queue.push_back(StreamEventV1::Lagged(LaggedView {
                            missed: n,
                            reason: "slow_consumer",
                        }));
                    }
                    Err(RecvError::Closed) => return None,
                },
                r = st.sub.actions.recv() => match r {
                    Ok(a) => {
                        if let Some(ev) = action_event(&st.filter, &a) {
                            st.queue.push_back(ev);
                        }
                    }
                    // Not replayed either (GET /api/v1/audit has them).
                    Err(RecvError::Lagged(n)) => {
                        st.metrics.lagged.increment(n);
                        st.queue.push_back(StreamEventV1::Lagged(LaggedView {
                            missed: n,
                            reason: "slow_consumer",
                        }));
                    }
                    Err(RecvError::Closed) => return None,
                },
                changed = st.sub.closed.changed() => {
                    if changed.is_err() || *st.sub.closed.borrow() {
                        return None;
                    }
                }
            }
        }
    })
}

/// The stream event of an action or result if the subscriber may see it:
/// the caller's tenant scope and the `tenant`, `group` and `imsi` filters,
/// applied to the action's tenant, group and device (a result's are its
/// action's). `type` and `severity` select findings and alerts only: an
/// action has neither, and a device page filtering on `imsi` wants them all.
fn action_event(f: &FindingFilter, a: &LiveAction) -> Option<StreamEventV1> {
    let (tenant, group, imsi) = match a {
        LiveAction::Action(a) => (&a.tenant, &a.group, a.imsi),
        LiveAction::Result(r) => (&r.tenant, &r.group, r.result.imsi),
    };
    let tenant_is =
        |want: &Option<String>| want.as_deref().is_none_or(|w| tenant.as_deref() == Some(w));
    let visible = tenant_is(&f.scope)
        && tenant_is(&f.tenant)
        && f.group
            .as_deref()
            .is_none_or(|g| group.as_deref() == Some(g))
        && f.imsi.is_none_or(|i| i == imsi);
    visible.then(|| match a {
        LiveAction::Action(a) => StreamEventV1::Action(Box::new(action_view(a))),
        LiveAction::Result(r) => StreamEventV1::ActionResult(Box::new(live_result_view(r))),
    })
}

/// Server-sent events: findings, alert changes, actions and the network's
/// answers to them as they are committed, scoped to the caller's tenant and
/// the filters.
///
/// Events (wire version 1):
/// - `ready`: first, `{"version":1,"after":"<id>"}`.
/// - `finding`: `id:` the finding id, `data:` the finding (as in the list).
/// - `lagged`: `{"missed":N,"reason":"slow_consumer|replay_limit|replay_failed"}`:
///   the client fell behind; never silent.
/// - `alert`: no `id:`, `data:` the alert after a change (as in
///   `GET /api/v1/alerts/{id}`, without comments), with the same tenant,
///   group, IMSI, severity and type filters.
/// - `action`: no `id:`, `data:` an action decided by a rule or a person,
///   enforced or dry-run (`mode`), as in `GET /api/v1/audit` (`results`
///   empty: the answers follow as `action_result`). Tenant, group and IMSI
///   filters apply (`type` and `severity` do not).
/// - `action_result`: no `id:`, `data:` the network's answer to an action
///   (`action`: its id; `imsi`, `tenant`, `group`: the action's; then the
///   result as in the audit trail's `results`), filtered as `action`.
///
/// Only findings resume: actions and results missed while disconnected
/// (or in a `lagged` gap) are read from `GET /api/v1/audit`.
///
/// Keep-alive comments every 15 s. Send `Last-Event-ID` to resume: the
/// findings committed after that id are replayed from the store first (the
/// newest 1000 at most).
#[utoipa::path(get, path = "/api/v1/events",
    params(EventQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this finding id")),
    responses((status = 200, description = "text/event-stream of `ready`, `finding`, `lagged`, `alert`, `action` and `action_result` events (only `finding` has an `id:`; missed actions are read from GET /api/v1/audit)", content_type = "text/event-stream", body = String), (status = 400, body = ErrorBody)))]
pub async fn events(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    q: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = q?;
    if let Some(v) = q.version.filter(|v| *v != STREAM_VERSION) {
        return Err(ApiError::invalid(format!(
            "stream version {v} is not served; this server speaks version {STREAM_VERSION}"
        )));
    }
    let f = filter(
        &caller,
        &q.r#type,
        &q.severity,
        &q.tenant,
        &q.group,
        &q.imsi,
        &None,
        &None,
    )?;
    if s.events.is_closed() {
        return Err(ApiError::unavailable("shutting down"));
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    // Where this client starts, read before subscribing: whatever commits
    // later is either replayed (committed before the subscription) or
    // broadcast (after), and ids tell the two apart.
    let after = match last_event_id {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::invalid(format!("Last-Event-ID {v:?} is not a finding id")))?,
        None => with_reader(&s, |r| r.newest_finding_id())?,
    };
    let sub = s.events.subscribe();
    let state = s.clone();
    let catch_up: CatchUp = Arc::new(move |f, after, limit| {
        with_reader(&state, |r| r.findings_after(f, after, limit)).map_err(|e| e.message)
    });
    let stream = live_stream(sub, f, after, catch_up, s.events.metrics.clone())
        .map(|e| Ok::<_, Infallible>(e.into_sse()))
        .take_until(session_end(&s, &caller, &headers));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Resolves when the session behind a cookie-authenticated stream has
/// ended (logged out, expired, its user deleted): an open stream must not
/// outlive it. Never resolves for an API key.
fn session_end(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let secret = (caller.via == super::caller::Via::Session)
        .then(|| crate::access::session::cookie(headers))
        .flatten();
    let access = s.access.clone();
    async move {
        let Some(secret) = secret else {
            return std::future::pending::<()>().await;
        };
        // Often enough that a logout closes the stream within seconds.
        let every = Duration::from_millis((access.policy.idle_ms / 4).clamp(250, 5000) as u64);
        loop {
            tokio::time::sleep(every).await;
            let now = crate::acct::now_ms();
            let live = access.with(|a| a.session(&secret)).map(|r| {
                r.is_some_and(|r| crate::access::session::is_live(&r, now, &access.policy))
            });
            // A store error is not an ended session: look again later.
            if let Ok(false) = live {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventHub;
    use simguard_engine::rules::{Action, ActionKind, ActionResult, RuleMode};
    use simguard_engine::{Digits, Evidence, Lifecycle};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn finding(seq: u64, tenant: &str) -> Finding {
        Finding {
            id: Finding::make_id(seq, 0),
            kind: FindingKind::Scanning,
            subject: Subject::Device(Digits::parse("901700000000001").unwrap()),
            tenant: Some(tenant.into()),
            group: None,
            severity: Severity::Major,
            time: seq as i64,
            onset: 0,
            confidence: 50,
            evidence: Evidence::default(),
        }
    }

    fn names(evs: &[StreamEventV1]) -> Vec<String> {
        evs.iter()
            .map(|e| match e {
                StreamEventV1::Ready(r) => format!("ready>{}", r.after),
                StreamEventV1::Finding(f) => (f.id.parse::<u64>().unwrap() >> 8).to_string(),
                StreamEventV1::Lagged(l) => format!("lagged {} {}", l.missed, l.reason),
                StreamEventV1::Alert(a) => format!("alert {}", a.id),
                StreamEventV1::Action(a) => format!("action {} {} {}", a.id, a.imsi, a.mode),
                StreamEventV1::ActionResult(r) => {
                    format!("result {} {} {}", r.action, r.imsi, r.result.result)
                }
            })
            .collect()
    }

    /// A catch-up serving findings 1..=n (seqs) from memory; n can grow.
    fn store_of(n: Arc<AtomicU64>) -> CatchUp {
        Arc::new(move |f, after, limit| {
            let mut items: Vec<Finding> = (1..=n.load(Ordering::SeqCst))
                .map(|s| finding(s, "acme"))
                .filter(|x| x.id > after && f.matches(x))
                .collect();
            let left_out = items.len().saturating_sub(limit);
            items.drain(..left_out);
            Ok(FindingsAfter {
                items,
                left_out: left_out as u64,
            })
        })
    }

    async fn rest(s: impl Stream<Item = StreamEventV1>) -> Vec<StreamEventV1> {
        tokio::time::timeout(Duration::from_secs(5), s.collect::<Vec<_>>())
            .await
            .expect("the stream ends when the hub closes")
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_and_caught_up_from_the_store() {
        let hub = EventHub::new(2);
        let stored = Arc::new(AtomicU64::new(0));
        let s = live_stream(
            hub.subscribe(),
            FindingFilter::default(),
            0,
            store_of(stored.clone()),
            hub.metrics.clone(),
        );
        let mut s = Box::pin(s);
        assert_eq!(names(&[s.next().await.unwrap()]), vec!["ready>0"]);
        // Seven findings commit while the client does not read; the buffer keeps 2.
        stored.store(7, Ordering::SeqCst);
        for seq in 1..=7 {
            hub.publish(LiveEvent::Finding(Arc::new(finding(seq, "acme"))));
        }
        hub.close();
        let evs = rest(s).await;
        // Told it missed 5, then given all 7 from the store; the 2 still
        // buffered are recognised as sent and not repeated.
        assert_eq!(
            names(&evs),
            vec!["lagged 5 slow_consumer", "1", "2", "3", "4", "5", "6", "7"]
        );
    }

    #[tokio::test]
    async fn live_findings_are_scoped_deduplicated_and_end_on_close() {
        let hub = EventHub::new(16);
        let s = live_stream(
            hub.subscribe(),
            FindingFilter {
                scope: Some("acme".into()),
                ..Default::default()
            },
            0,
            store_of(Arc::new(AtomicU64::new(0))),
            hub.metrics.clone(),
        );
        hub.publish(LiveEvent::Finding(Arc::new(finding(1, "globex"))));
        hub.publish(LiveEvent::Finding(Arc::new(finding(2, "acme"))));
        hub.publish(LiveEvent::Finding(Arc::new(finding(2, "acme"))));
        hub.close();
        assert_eq!(names(&rest(s).await), vec!["ready>0", "2"]);
        assert_eq!(
            hub.subscribers(),
            0,
            "the subscription went with the stream"
        );
    }

    fn action(id: u64, imsi: &str, tenant: &str, mode: RuleMode) -> LiveAction {
        LiveAction::Action(Arc::new(Action {
            id,
            time: 0,
            imsi: Digits::parse(imsi).unwrap(),
            tenant: Some(tenant.into()),
            group: Some(format!("{tenant}-meters")),
            actor: "user:alice".into(),
            rule: None,
            kind: ActionKind::Block,
            mode,
            reason: "test".into(),
            finding: None,
            from: Some(Lifecycle::Active),
            to: Some(Lifecycle::Blocked),
            expires: None,
            step: 0,
            enforce: mode == RuleMode::Enforce,
        }))
    }

    /// A result scoped as its action: `tenant` is the action's.
    fn result(action: u64, imsi: &str, tenant: &str) -> LiveAction {
        LiveAction::Result(Arc::new(crate::LiveResult {
            seq: 9,
            result: ActionResult {
                action,
                time: 0,
                imsi: Digits::parse(imsi).unwrap(),
                result: "ack".into(),
                detail: String::new(),
                attempts: 1,
                sent: Vec::new(),
            },
            tenant: Some(tenant.into()),
            group: Some(format!("{tenant}-meters")),
        }))
    }

    /// What a subscriber with `filter` gets of a mix of tenants' actions.
    async fn actions_seen(filter: FindingFilter) -> Vec<String> {
        let hub = EventHub::new(16);
        let s = live_stream(
            hub.subscribe(),
            filter,
            0,
            store_of(Arc::new(AtomicU64::new(0))),
            hub.metrics.clone(),
        );
        const A1: &str = "901700000000001";
        const A2: &str = "901700000000002";
        const G1: &str = "901700000000009";
        hub.action_committed(action(1, A1, "acme", RuleMode::Enforce));
        hub.action_committed(action(2, G1, "globex", RuleMode::Enforce));
        hub.action_committed(action(3, A2, "acme", RuleMode::DryRun));
        hub.action_committed(result(2, G1, "globex"));
        hub.action_committed(result(1, A1, "acme"));
        hub.close();
        names(&rest(s).await)
    }

    #[tokio::test]
    async fn live_actions_and_results_are_scoped_and_filtered() {
        let scoped = |scope: &str| FindingFilter {
            scope: Some(scope.into()),
            ..Default::default()
        };
        // A tenant's stream: its actions (dry runs too) and the answers to
        // them, never another tenant's.
        assert_eq!(
            actions_seen(scoped("acme")).await,
            vec![
                "ready>0",
                "action 1 901700000000001 enforce",
                "action 3 901700000000002 dry-run",
                "result 1 901700000000001 ack",
            ]
        );
        assert_eq!(
            actions_seen(scoped("globex")).await,
            vec![
                "ready>0",
                "action 2 901700000000009 enforce",
                "result 2 901700000000009 ack",
            ]
        );
        // The imsi filter (a device page), also for results.
        assert_eq!(
            actions_seen(FindingFilter {
                imsi: Digits::parse("901700000000001"),
                ..Default::default()
            })
            .await,
            vec![
                "ready>0",
                "action 1 901700000000001 enforce",
                "result 1 901700000000001 ack",
            ]
        );
        // The group filter; a tenant asking for another's group gets nothing.
        assert_eq!(
            actions_seen(FindingFilter {
                group: Some("globex-meters".into()),
                ..Default::default()
            })
            .await,
            vec![
                "ready>0",
                "action 2 901700000000009 enforce",
                "result 2 901700000000009 ack",
            ]
        );
        assert_eq!(
            actions_seen(FindingFilter {
                group: Some("globex-meters".into()),
                ..scoped("acme")
            })
            .await,
            vec!["ready>0"]
        );
        // Finding filters (type, severity) do not hide actions.
        assert_eq!(
            actions_seen(FindingFilter {
                kinds: vec![FindingKind::Scanning],
                min_severity: Some(Severity::Critical),
                ..scoped("globex")
            })
            .await
            .len(),
            3
        );
    }

    #[tokio::test]
    async fn lagging_behind_on_actions_is_told() {
        let hub = EventHub::new(2);
        let s = live_stream(
            hub.subscribe(),
            FindingFilter::default(),
            0,
            store_of(Arc::new(AtomicU64::new(0))),
            hub.metrics.clone(),
        );
        for id in 1..=5 {
            hub.action_committed(action(id, "901700000000001", "acme", RuleMode::Enforce));
        }
        hub.close();
        assert_eq!(
            names(&rest(s).await),
            vec![
                "ready>0",
                "lagged 3 slow_consumer",
                "action 4 901700000000001 enforce",
                "action 5 901700000000001 enforce",
            ]
        );
    }

    #[tokio::test]
    async fn resuming_beyond_the_replay_limit_reports_what_was_left_out() {
        let hub = EventHub::new(4);
        let n = REPLAY_LIMIT as u64 + 8;
        let s = live_stream(
            hub.subscribe(),
            FindingFilter::default(),
            0,
            store_of(Arc::new(AtomicU64::new(n))),
            hub.metrics.clone(),
        );
        hub.close();
        let evs = rest(s).await;
        assert_eq!(
            names(&evs[..3]),
            vec!["ready>0", "lagged 8 replay_limit", "9"]
        );
        assert_eq!(evs.len(), 2 + REPLAY_LIMIT);
        assert_eq!(names(&evs[evs.len() - 1..]), vec![n.to_string()]);
    }
}
