//! The HTTP API (`/api/v1`), health probes and Prometheus metrics.
//!
//! Reads come straight from the engine's in-memory state (live, no store
//! round trip) or, for time series, from the store. Writes go through the
//! journal like accounting does, and the handler answers once the engine has
//! applied them, so a client reads its own writes.

pub mod alerts;
pub mod apikeys;
pub mod audit;
pub mod caller;
pub mod error;
pub mod findings;
pub mod fleet;
pub mod flows;
pub mod locations;
pub mod notify;
pub mod rules;
pub mod session;
pub mod users;
pub mod views;

use crate::pipeline::Submission;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
pub use caller::Caller;
use error::{ApiError, FieldProblem};
use serde::{Deserialize, Serialize};
use simguard_engine::inventory::{self, DeviceRecord, Lifecycle};
use simguard_engine::time::{parse_rfc3339, rfc3339, HOUR_MS};
use simguard_engine::{DeclaredProfile, Digits, Event, Group, Plmn, Tenant};
use simguard_store::{Role, StoreReader, UsagePoint};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use utoipa::{IntoParams, OpenApi, ToSchema};
use views::{device_view, group_view, DeviceView, GroupView};

#[derive(OpenApi)]
#[openapi(
    info(title = "simguard API", description = "IoT connectivity security: inventory, live connectivity and location of every SIM, findings of detection with their evidence, a live event stream (server-sent events), response rules with dry-run and backtest, people's actions on devices, and the audit trail."),
    paths(findings::list_findings, findings::finding_summary, findings::get_finding, findings::device_findings, findings::events, alerts::list_alerts, alerts::get_alert, alerts::ack_alert, alerts::clear_alert, alerts::comment_alert, notify::alert_notifications, notify::get_notification, notify::channels, notify::subscriptions, notify::create_subscription, notify::put_subscription, notify::delete_subscription, list_devices, get_device, device_usage, upsert_devices, list_tenants, put_tenant, list_groups, put_group, status, flows::traffic, flows::device_flows, flows::device_violations, flows::unattributed, flows::get_policy, flows::put_policy, rules::list_rules, rules::create_rule, rules::get_rule, rules::put_rule, rules::delete_rule, rules::backtest_saved, rules::backtest_draft, audit::list_audit, audit::device_audit, audit::device_action, session::login, session::current, session::logout, users::list_users, users::create_user, users::delete_user, apikeys::list_keys, apikeys::create_key, apikeys::revoke_key, locations::device_locations, locations::map_devices, fleet::device_summary, fleet::device_columns, fleet::device_baseline, fleet::alert_summary),
    components(schemas(findings::FindingView, findings::FindingPage, findings::FindingSummary, findings::CountView, findings::SubjectView, findings::EvidenceView, findings::FactView, findings::RecordView, findings::EvidenceFlowView, findings::ReadyView, findings::LaggedView, alerts::AlertView, alerts::AlertSubjectView, alerts::AlertPage, alerts::AlertDetail, alerts::CommentView, alerts::CommentInput, alerts::AlertChangeView, notify::NotificationView, notify::AttemptView, notify::NotificationDetail, notify::ChannelView, notify::ChannelStats, notify::SubscriptionView, notify::SubscriptionInput, notify::SubscriptionDeleted, flows::TrafficView, flows::FlowPage, flows::FlowView, flows::ViolationJson, flows::PolicyJson, flows::RuleJson, flows::DestinationView, flows::WindowJson, rules::RuleInput, rules::ScopeInput, rules::TriggerInput, rules::StepInput, rules::RuleList, rules::RuleWrite, rules::RuleDeleted, rules::BacktestView, rules::BacktestDevice, rules::BacktestAction, audit::ActionView, audit::ResultView, audit::ActionResultView, audit::AuditPage, audit::DeviceActionInput, audit::DeviceActionResult, locations::LocationView, locations::LocationTrail, locations::MapDevices, views::PositionView, DeviceView, DevicePage, GroupView, Tenant_, UsageSeries, UsagePoint_, DeviceInput, DeviceBatch, UpsertResult, GroupInput, ProfileInput, TenantInput, StatusView, error::ErrorBody, session::LoginInput, session::SessionView, session::LoggedOut, users::UserView, users::UserList, users::UserInput, users::UserDeleted, apikeys::ApiKeyView, apikeys::ApiKeyList, apikeys::ApiKeyInput, apikeys::ApiKeyCreated, apikeys::ApiKeyRevoked, fleet::DeviceSummary, fleet::CountryCount, fleet::RatCount, fleet::DeviceColumns, fleet::ColumnDicts, fleet::CountryEntry, fleet::BaselineView, fleet::Quantiles, fleet::DeclaredView, fleet::AlertSummary)),
    modifiers(&AuthSchemes),
    security(("bearer" = []), ("session" = []))
)]
pub struct ApiDoc;

struct AuthSchemes;

impl utoipa::Modify for AuthSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // Console sessions: the cookie, plus the x-csrf-token header on
        // every request that changes something.
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    crate::access::session::COOKIE,
                    "Set by POST /api/v1/session. Writes (POST, PUT, PATCH, DELETE) must also send the session's csrf_token as the x-csrf-token header, and a same-origin Origin when the browser sends one.",
                ),
            )),
        );
    }
}

/// Every route, registered through [`Routes`] so that the list of (method,
/// path) pairs is the router itself: the tenant-isolation test checks that
/// it has a case for each one, so a new route cannot go untested.
fn routes() -> Routes {
    use alerts as al;
    Routes::default()
        .get("/healthz", || async { "ok" })
        .get("/readyz", readyz)
        .get("/metrics", metrics)
        .get("/api/v1/openapi.json", || async { Json(ApiDoc::openapi()) })
        .post("/api/v1/session", session::login)
        .get("/api/v1/session", session::current)
        .delete("/api/v1/session", session::logout)
        .get("/api/v1/status", status)
        .get("/api/v1/devices", list_devices)
        .post("/api/v1/devices", upsert_devices)
        // Static segments win over `{imsi}` (an IMSI is digits only).
        .get("/api/v1/devices/summary", fleet::device_summary)
        .get("/api/v1/devices/columns", fleet::device_columns)
        .get("/api/v1/devices/{imsi}", get_device)
        .get("/api/v1/devices/{imsi}/baseline", fleet::device_baseline)
        .get("/api/v1/devices/{imsi}/usage", device_usage)
        .get(
            "/api/v1/devices/{imsi}/locations",
            locations::device_locations,
        )
        .get("/api/v1/map/devices", locations::map_devices)
        .get("/api/v1/devices/{imsi}/traffic", flows::traffic)
        .get("/api/v1/devices/{imsi}/flows", flows::device_flows)
        .get(
            "/api/v1/devices/{imsi}/violations",
            flows::device_violations,
        )
        .get("/api/v1/flows/unattributed", flows::unattributed)
        .get("/api/v1/findings", findings::list_findings)
        .get("/api/v1/findings/summary", findings::finding_summary)
        .get("/api/v1/findings/{id}", findings::get_finding)
        .get("/api/v1/devices/{imsi}/findings", findings::device_findings)
        .get("/api/v1/events", findings::events)
        .get("/api/v1/alerts", al::list_alerts)
        .get("/api/v1/alerts/summary", fleet::alert_summary)
        .get("/api/v1/alerts/{id}", al::get_alert)
        .get(
            "/api/v1/alerts/{id}/notifications",
            notify::alert_notifications,
        )
        .get("/api/v1/notifications/{id}", notify::get_notification)
        .get("/api/v1/notify/channels", notify::channels)
        .get("/api/v1/notify/subscriptions", notify::subscriptions)
        .post("/api/v1/notify/subscriptions", notify::create_subscription)
        .put(
            "/api/v1/notify/subscriptions/{name}",
            notify::put_subscription,
        )
        .delete(
            "/api/v1/notify/subscriptions/{name}",
            notify::delete_subscription,
        )
        .post("/api/v1/alerts/{id}/ack", al::ack_alert)
        .post("/api/v1/alerts/{id}/clear", al::clear_alert)
        .post("/api/v1/alerts/{id}/comments", al::comment_alert)
        .get("/api/v1/groups/{id}/policy", flows::get_policy)
        .put("/api/v1/groups/{id}/policy", flows::put_policy)
        .get("/api/v1/rules", rules::list_rules)
        .post("/api/v1/rules", rules::create_rule)
        // A static segment wins over `{id}`, so "backtest" is a reserved rule id.
        .post("/api/v1/rules/backtest", rules::backtest_draft)
        .get("/api/v1/rules/{id}", rules::get_rule)
        .put("/api/v1/rules/{id}", rules::put_rule)
        .delete("/api/v1/rules/{id}", rules::delete_rule)
        .post("/api/v1/rules/{id}/backtest", rules::backtest_saved)
        .get("/api/v1/audit", audit::list_audit)
        .get("/api/v1/devices/{imsi}/audit", audit::device_audit)
        .post("/api/v1/devices/{imsi}/actions", audit::device_action)
        .get("/api/v1/tenants", list_tenants)
        .put("/api/v1/tenants/{id}", put_tenant)
        .get("/api/v1/groups", list_groups)
        .put("/api/v1/groups/{id}", put_group)
        .get("/api/v1/users", users::list_users)
        .post("/api/v1/users", users::create_user)
        .delete("/api/v1/users/{name}", users::delete_user)
        .get("/api/v1/apikeys", apikeys::list_keys)
        .post("/api/v1/apikeys", apikeys::create_key)
        .delete("/api/v1/apikeys/{id}", apikeys::revoke_key)
}

pub fn router(state: AppState) -> Router {
    routes().router.fallback(fallback).with_state(state)
}

/// Outside the API, the embedded console answers (its pages route on the
/// client); an unknown API route stays a JSON 404.
async fn fallback(req: axum::extract::Request) -> Response {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found("no such route; see /api/v1/openapi.json").into_response();
    }
    simguard_console::serve(req.method(), req.uri(), req.headers())
}

/// (method, path) of every route the router serves, in registration order.
pub fn route_table() -> Vec<(Method, &'static str)> {
    routes().table
}

/// A router that remembers what it was given.
#[derive(Default)]
struct Routes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
}

impl Routes {
    fn on(mut self, method: Method, path: &'static str, mr: MethodRouter<AppState>) -> Routes {
        self.table.push((method, path));
        // Routes on one path merge into one method router.
        self.router = self.router.route(path, mr);
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.on(Method::GET, path, axum::routing::get(h))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.on(Method::POST, path, axum::routing::post(h))
    }

    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.on(Method::PUT, path, axum::routing::put(h))
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.on(Method::DELETE, path, axum::routing::delete(h))
    }
}

fn with_reader<T>(
    state: &AppState,
    f: impl FnOnce(&StoreReader) -> Result<T, simguard_store::StoreError>,
) -> Result<T, ApiError> {
    let mut guard = state.store.lock();
    if guard.is_none() {
        *guard = Some(
            simguard_store::Store::open_reader(&state.store_path).map_err(ApiError::internal)?,
        );
    }
    match guard.as_ref() {
        Some(r) => f(r).map_err(ApiError::internal),
        None => Err(ApiError::unavailable("store not open")),
    }
}

// ---- probes and metrics ----

async fn readyz(State(s): State<AppState>) -> Response {
    let journal_ok = !s.health.journal_failed.load(Ordering::Relaxed);
    let store_ok = !s.health.store_failed.load(Ordering::Relaxed);
    let ready = s.ready.load(Ordering::Relaxed) && journal_ok && store_ok;
    // Channels are reported but do not make the server unready: ingest and
    // detection work while an SMSC is down, and the outbox keeps what waits.
    let channels: serde_json::Map<String, serde_json::Value> = s
        .notify
        .channels
        .iter()
        .map(|(name, c)| {
            let healthy = c.healthy.load(Ordering::Relaxed);
            let circuit = *c.circuit.lock();
            (
                name.clone(),
                serde_json::json!({ "type": c.kind, "healthy": healthy && circuit == "closed", "circuit": circuit }),
            )
        })
        .collect();
    let body = serde_json::json!({
        "ready": ready,
        "journal": journal_ok,
        "store": store_ok,
        "notifications": {
            "healthy": s.notify.all_healthy(),
            "channels": channels,
        },
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    {
        let e = s.engine.read();
        let now = e.clock();
        let (mut online, mut offline, mut never, mut unprov) = (0u64, 0u64, 0u64, 0u64);
        let mut by_l: BTreeMap<&'static str, u64> =
            Lifecycle::ALL.iter().map(|l| (l.as_str(), 0)).collect();
        e.for_each_device(|d| {
            match views::status(d, now) {
                "online" => online += 1,
                "never_seen" => never += 1,
                _ => offline += 1,
            }
            match d.lifecycle() {
                Some(l) => *by_l.entry(l.as_str()).or_default() += 1,
                None => unprov += 1,
            }
        });
        let by: Vec<(&'static str, u64)> = by_l.into_iter().collect();
        crate::metrics::set_device_gauges(online, offline, never, unprov, &by);
        let st = e.stats();
        metrics::gauge!("simguard_flows_attributed").set(st.flows_attributed as f64);
        metrics::gauge!("simguard_flows_unattributed").set(st.flows_unattributed as f64);
        metrics::gauge!("simguard_flow_policy_violations").set(st.policy_violations as f64);
    }
    match &s.prometheus {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => ApiError::unavailable("metrics recorder not installed").into_response(),
    }
}

// ---- status ----

#[derive(Serialize, ToSchema)]
pub struct StatusView {
    pub version: &'static str,
    /// Last journal sequence the engine applied.
    pub engine_seq: u64,
    /// Last journal sequence whose outputs (findings, audit, usage) the
    /// store has committed: at or past `engine_seq`, list reads are complete.
    pub store_seq: u64,
    /// Engine (event) time: the newest time any record carried.
    pub engine_time: String,
    pub engine_time_ms: i64,
    /// Devices the caller sees (a tenant's: its own).
    pub devices: usize,
    /// IMSIs seen but not in the inventory (operator-wide callers only; 0 otherwise).
    pub unprovisioned_seen: u64,
    pub accounting: BTreeMap<String, u64>,
    pub flows: BTreeMap<String, u64>,
    pub uptime_secs: u64,
    #[schema(value_type = Object)]
    pub recovery: crate::RecoveryReport,
}

/// Engine position, counters and recovery report.
#[utoipa::path(get, path = "/api/v1/status", responses((status = 200, body = StatusView)))]
async fn status(State(s): State<AppState>, caller: Caller) -> Json<StatusView> {
    let e = s.engine.read();
    // A tenant's caller counts its own devices only; unprovisioned IMSIs
    // belong to no tenant.
    let (devices, unprovisioned_seen) = match caller.tenant.as_deref() {
        None => (e.device_count(), e.stats().unprovisioned_seen),
        Some(t) => {
            let sym = e.syms().lookup(t);
            let mut n = 0usize;
            e.for_each_device(|d| {
                if d.provisioning.as_ref().map(|p| Some(p.tenant)) == Some(sym) {
                    n += 1;
                }
            });
            (n, 0)
        }
    };
    let a = &s.acct_stats;
    let mut acct = BTreeMap::new();
    acct.insert("received".to_string(), a.received.load(Ordering::Relaxed));
    acct.insert("accepted".to_string(), a.accepted.load(Ordering::Relaxed));
    acct.insert(
        "duplicates".to_string(),
        a.duplicates.load(Ordering::Relaxed),
    );
    for r in crate::metrics::DropReason::ALL {
        acct.insert(format!("dropped_{}", r.as_str()), a.dropped(r));
    }
    let f = &s.flow_stats;
    let st = e.stats();
    let mut flows = BTreeMap::new();
    flows.insert("datagrams".to_string(), f.datagrams.load(Ordering::Relaxed));
    flows.insert("records".to_string(), f.records.load(Ordering::Relaxed));
    flows.insert(
        "templates_received".to_string(),
        f.templates.load(Ordering::Relaxed),
    );
    flows.insert(
        "pending_sets".to_string(),
        f.pending_sets.load(Ordering::Relaxed),
    );
    flows.insert(
        "released_records".to_string(),
        f.released_records.load(Ordering::Relaxed),
    );
    flows.insert("attributed".to_string(), st.flows_attributed);
    flows.insert("unattributed".to_string(), st.flows_unattributed);
    flows.insert("policy_violations".to_string(), st.policy_violations);
    for (reason, n) in f.dropped.lock().iter() {
        flows.insert(format!("dropped_{reason}"), *n);
    }
    Json(StatusView {
        version: env!("CARGO_PKG_VERSION"),
        flows,
        engine_seq: e.seq(),
        store_seq: s.health.store_seq.load(Ordering::Relaxed),
        engine_time: rfc3339(e.clock()),
        engine_time_ms: e.clock(),
        devices,
        unprovisioned_seen,
        accounting: acct,
        uptime_secs: s.started.elapsed().as_secs(),
        recovery: s.recovery.clone(),
    })
}

// ---- devices ----

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// online, offline or never_seen.
    pub status: Option<String>,
    /// Lifecycle state: active, throttled, quarantined, blocked, retired.
    pub lifecycle: Option<String>,
    pub group: Option<String>,
    pub tenant: Option<String>,
    /// ISO 3166 alpha-2 of the serving network's country.
    pub country: Option<String>,
    /// RAT code or name (NB-IoT, LTE-M, EUTRAN ...).
    pub rat: Option<String>,
    /// false lists IMSIs seen but not in the inventory.
    pub provisioned: Option<bool>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DevicePage {
    pub items: Vec<DeviceView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The device list's filters, resolved once against the engine's symbols
/// and scoped to the caller's tenant: the list, its summary and its columnar
/// form all use this one test, so their counts agree.
pub struct DeviceFilter<'q> {
    status: Option<&'q str>,
    lifecycle: Option<Lifecycle>,
    rat: Option<u8>,
    country: Option<String>,
    provisioned: Option<bool>,
    /// Some(None): a name that no device carries, so nothing matches.
    group: Option<Option<simguard_engine::device::Sym>>,
    tenant: Option<Option<simguard_engine::device::Sym>>,
    caller_tenant: Option<Option<simguard_engine::device::Sym>>,
}

impl<'q> DeviceFilter<'q> {
    pub fn new(
        q: &'q DeviceQuery,
        caller: &Caller,
        e: &simguard_engine::Engine,
    ) -> Result<DeviceFilter<'q>, ApiError> {
        if let Some(st) = &q.status {
            if !["online", "offline", "never_seen"].contains(&st.as_str()) {
                return Err(ApiError::invalid(
                    "status must be online, offline or never_seen",
                ));
            }
        }
        let lifecycle = match &q.lifecycle {
            Some(l) => Some(l.parse::<Lifecycle>().map_err(ApiError::invalid)?),
            None => None,
        };
        let rat = match &q.rat {
            Some(r) => Some(
                views::parse_rat(r)
                    .ok_or_else(|| ApiError::invalid(format!("unknown RAT {r:?}")))?,
            ),
            None => None,
        };
        let syms = e.syms();
        Ok(DeviceFilter {
            status: q.status.as_deref(),
            lifecycle,
            rat,
            country: q.country.as_ref().map(|c| c.to_ascii_uppercase()),
            provisioned: q.provisioned,
            group: q.group.as_deref().map(|g| syms.lookup(g)),
            tenant: q.tenant.as_deref().map(|t| syms.lookup(t)),
            caller_tenant: caller.tenant.as_deref().map(|t| syms.lookup(t)),
        })
    }

    /// Whether `d` passes, with its status at engine time `now`.
    pub fn matches(&self, d: &simguard_engine::device::Device, now: i64) -> bool {
        let p = d.provisioning.as_ref();
        if let Some(ct) = self.caller_tenant {
            if p.map(|p| Some(p.tenant)) != Some(ct) {
                return false;
            }
        }
        if let Some(want) = self.provisioned {
            if p.is_some() != want {
                return false;
            }
        }
        if let Some(g) = self.group {
            if p.map(|p| Some(p.group)) != Some(g) {
                return false;
            }
        }
        if let Some(t) = self.tenant {
            if p.map(|p| Some(p.tenant)) != Some(t) {
                return false;
            }
        }
        if let Some(l) = self.lifecycle {
            if d.lifecycle() != Some(l) {
                return false;
            }
        }
        if let Some(st) = self.status {
            if views::status(d, now) != st {
                return false;
            }
        }
        if let Some(r) = self.rat {
            if d.rat != Some(r) {
                return false;
            }
        }
        if let Some(c) = &self.country {
            if d.network.and_then(|n| n.country()) != Some(c.as_str()) {
                return false;
            }
        }
        true
    }
}

/// Devices with their identity, live status, network, cell and usage.
#[utoipa::path(get, path = "/api/v1/devices", params(DeviceQuery), responses((status = 200, body = DevicePage), (status = 400, body = error::ErrorBody)))]
async fn list_devices(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<DeviceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DevicePage>, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let after = match &q.cursor {
        Some(c) => {
            Some(Digits::parse(c).ok_or_else(|| ApiError::invalid("cursor is not an IMSI"))?)
        }
        None => None,
    };
    let e = s.engine.read();
    let f = DeviceFilter::new(&q, &caller, &e)?;
    let now = e.clock();
    let page = e.list_devices(after, limit + 1, |d| f.matches(d, now));
    let more = page.len() > limit;
    let mut items: Vec<DeviceView> = page
        .iter()
        .take(limit)
        .map(|d| device_view(&e, d))
        .collect();
    let imsis: Vec<Digits> = page.iter().take(limit).map(|d| d.imsi).collect();
    drop(page);
    drop(e);
    let mut positions = with_reader(&s, |r| r.positions(&imsis))?;
    for (v, imsi) in items.iter_mut().zip(&imsis) {
        v.position = positions
            .remove(imsi)
            .map(|(t, p)| views::position_view(t, &p));
    }
    let next_cursor = if more {
        items.last().map(|d| d.imsi.clone())
    } else {
        None
    };
    Ok(Json(DevicePage { items, next_cursor }))
}

pub(crate) fn parse_imsi_path(imsi: &str) -> Result<Digits, ApiError> {
    inventory::parse_imsi(imsi).map_err(|e| ApiError::invalid(e.to_string()))
}

/// One device: identity, lifecycle, live session, network, cell and usage.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}", params(("imsi" = String, Path, description = "IMSI, 6 to 15 digits")), responses((status = 200, body = DeviceView), (status = 404, body = error::ErrorBody)))]
async fn get_device(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let imsi = parse_imsi_path(&imsi)?;
    let e = s.engine.read();
    let d = e
        .device(imsi)
        .filter(|d| caller.sees(d.provisioning.as_ref().map(|p| e.syms().resolve(p.tenant))))
        .ok_or_else(|| ApiError::not_found(format!("no device with IMSI {imsi}")))?;
    let mut view = device_view(&e, d);
    drop(e);
    view.position =
        with_reader(&s, |r| r.position(imsi))?.map(|(t, p)| views::position_view(t, &p));
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start (RFC 3339 or YYYY-MM-DD), inclusive. Default: 7 days before `to`.
    pub from: Option<String>,
    /// End, exclusive. Default: the engine's current time.
    pub to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsagePoint_ {
    /// Start of the hour.
    pub hour: String,
    pub up_octets: u64,
    pub down_octets: u64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageSeries {
    pub imsi: String,
    pub from: String,
    pub to: String,
    /// Hours with traffic, oldest first (hours without traffic are omitted).
    pub hours: Vec<UsagePoint_>,
    pub total_up_octets: u64,
    pub total_down_octets: u64,
}

/// Hourly usage of a device.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/usage", params(("imsi" = String, Path), UsageQuery), responses((status = 200, body = UsageSeries), (status = 404, body = error::ErrorBody)))]
async fn device_usage(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
    q: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UsageSeries>, ApiError> {
    let Query(q) = q?;
    let imsi = parse_imsi_path(&imsi)?;
    let now = {
        let e = s.engine.read();
        e.device(imsi)
            .filter(|d| caller.sees(d.provisioning.as_ref().map(|p| e.syms().resolve(p.tenant))))
            .ok_or_else(|| ApiError::not_found(format!("no device with IMSI {imsi}")))?;
        e.clock()
    };
    let parse = |v: &Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .map(|t| {
                parse_rfc3339(t).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{name}: {t:?} is not RFC 3339 (2026-11-22T10:00:00Z) or a date"
                    ))
                })
            })
            .transpose()
    };
    let to = parse(&q.to, "to")?.unwrap_or(now + HOUR_MS);
    let from = parse(&q.from, "from")?.unwrap_or(to - 7 * 24 * HOUR_MS);
    if from >= to {
        return Err(ApiError::invalid("from must be before to"));
    }
    let points: Vec<UsagePoint> = with_reader(&s, |r| r.usage(imsi, from, to))?;
    Ok(Json(UsageSeries {
        imsi: imsi.to_string(),
        from: rfc3339(from),
        to: rfc3339(to),
        total_up_octets: points.iter().map(|p| p.up).sum(),
        total_down_octets: points.iter().map(|p| p.down).sum(),
        hours: points
            .into_iter()
            .map(|p| UsagePoint_ {
                hour: rfc3339(p.hour),
                up_octets: p.up,
                down_octets: p.down,
            })
            .collect(),
    }))
}

/// One device to create or replace in the inventory.
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    pub imsi: String,
    pub iccid: Option<String>,
    pub msisdn: Option<String>,
    /// The IMEI the SIM is bound to (14-16 digits).
    pub imei: Option<String>,
    pub tenant: String,
    pub group: String,
    /// Default active.
    pub lifecycle: Option<String>,
    pub label: Option<String>,
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl DeviceInput {
    /// Validates every field; the error names the field.
    pub fn to_record(&self) -> Result<DeviceRecord, inventory::FieldError> {
        let rec = DeviceRecord {
            imsi: inventory::parse_imsi(&self.imsi)?,
            iccid: opt(&self.iccid).map(inventory::parse_iccid).transpose()?,
            msisdn: opt(&self.msisdn).map(inventory::parse_msisdn).transpose()?,
            bound_imei: opt(&self.imei).map(inventory::parse_imei).transpose()?,
            tenant: self.tenant.trim().to_string(),
            group: self.group.trim().to_string(),
            lifecycle: match opt(&self.lifecycle) {
                Some(l) => l.parse().map_err(|m| inventory::FieldError {
                    field: "lifecycle",
                    message: m,
                })?,
                None => Lifecycle::Active,
            },
            label: opt(&self.label).map(str::to_string),
        };
        rec.validate()?;
        Ok(rec)
    }
}

#[derive(Deserialize, ToSchema)]
pub struct DeviceBatch {
    /// At most 10,000 devices per request.
    pub devices: Vec<DeviceInput>,
}

#[derive(Serialize, ToSchema)]
pub struct UpsertResult {
    pub upserted: usize,
    /// Journal sequence of the change.
    pub seq: u64,
}

/// Submits events through the journal and waits until the engine applied them.
pub async fn submit(s: &AppState, events: Vec<Event>) -> Result<u64, ApiError> {
    let (done, rx) = tokio::sync::oneshot::channel();
    s.submit
        .try_send(Submission::Api { events, done })
        .map_err(|_| {
            ApiError::unavailable("the journal queue is full or stopped; retry shortly")
        })?;
    let seq = rx
        .await
        .map_err(|_| ApiError::unavailable("server is shutting down"))?
        .map_err(ApiError::unavailable)?;
    let mut applied = s.applied.clone();
    tokio::time::timeout(Duration::from_secs(30), applied.wait_for(|a| *a >= seq))
        .await
        .map_err(|_| {
            ApiError::unavailable("change is durable but not yet applied; read again shortly")
        })?
        .map_err(|_| ApiError::unavailable("server is shutting down"))?;
    Ok(seq)
}

/// Creates or replaces devices. All-or-nothing: if any item is invalid,
/// nothing is written and every problem is listed by index and field.
#[utoipa::path(post, path = "/api/v1/devices", request_body = DeviceBatch, responses((status = 200, body = UpsertResult), (status = 422, body = error::ErrorBody)))]
async fn upsert_devices(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<DeviceBatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UpsertResult>, ApiError> {
    // Provisioning can set any lifecycle (past the audited actions) and
    // move devices between groups and their policies: an admin's job.
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    if body.devices.len() > 10_000 {
        return Err(ApiError::invalid("at most 10,000 devices per request"));
    }
    let mut problems = Vec::new();
    let mut records = Vec::with_capacity(body.devices.len());
    // The engine lock must not live across the await below.
    {
        let e = s.engine.read();
        for (i, d) in body.devices.iter().enumerate() {
            match d.to_record() {
                Ok(r) => {
                    // The device as it is now: a tenant's caller must not take
                    // over (or rewrite) another tenant's SIM by naming its IMSI.
                    let owner = e
                        .device(r.imsi)
                        .and_then(|d| d.provisioning.as_ref())
                        .map(|p| e.syms().resolve(p.tenant));
                    if !caller.sees(Some(&r.tenant)) {
                        problems.push(FieldProblem {
                            index: i,
                            field: "tenant".into(),
                            message: format!("this caller cannot write tenant {:?}", r.tenant),
                        });
                    } else if owner.is_some_and(|t| !caller.sees(Some(t))) {
                        problems.push(FieldProblem {
                        index: i,
                        field: "imsi".into(),
                        message: "this IMSI is provisioned in another tenant; only an operator-wide admin can move it".into(),
                    });
                    } else {
                        records.push(r);
                    }
                }
                Err(e) => problems.push(FieldProblem {
                    index: i,
                    field: e.field.into(),
                    message: e.message,
                }),
            }
        }
    }
    if !problems.is_empty() {
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!(
                "{} of {} devices are invalid; nothing was written",
                problems.len(),
                body.devices.len()
            ),
        );
        err.details = problems;
        return Err(err);
    }
    let n = records.len();
    let seq = submit(&s, vec![Event::UpsertDevices(records)]).await?;
    Ok(Json(UpsertResult { upserted: n, seq }))
}

// ---- tenants and groups ----

#[derive(Serialize, ToSchema)]
pub struct Tenant_ {
    pub id: String,
    pub name: String,
}

/// Tenants the caller can see.
#[utoipa::path(get, path = "/api/v1/tenants", responses((status = 200, body = [Tenant_])))]
async fn list_tenants(State(s): State<AppState>, caller: Caller) -> Json<Vec<Tenant_>> {
    let e = s.engine.read();
    Json(
        e.tenants()
            .filter(|t| caller.sees(Some(&t.id)))
            .map(|t| Tenant_ {
                id: t.id.clone(),
                name: t.name.clone(),
            })
            .collect(),
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    pub name: String,
}

/// Creates or renames a tenant (operator-wide admin only).
#[utoipa::path(put, path = "/api/v1/tenants/{id}", request_body = TenantInput, responses((status = 200, body = UpsertResult)))]
async fn put_tenant(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<TenantInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UpsertResult>, ApiError> {
    caller.require_operator_wide()?;
    let Json(body) = body?;
    inventory::validate_slug("id", &id).map_err(|e| ApiError::invalid(e.to_string()))?;
    let seq = submit(
        &s,
        vec![Event::UpsertTenant(Tenant {
            id,
            name: body.name,
        })],
    )
    .await?;
    Ok(Json(UpsertResult { upserted: 1, seq }))
}

/// Device groups the caller can see, with their declared profiles.
#[utoipa::path(get, path = "/api/v1/groups", responses((status = 200, body = [GroupView])))]
async fn list_groups(State(s): State<AppState>, caller: Caller) -> Json<Vec<GroupView>> {
    let e = s.engine.read();
    Json(
        e.groups()
            .filter(|g| caller.sees(Some(&g.tenant)))
            .map(group_view)
            .collect(),
    )
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    pub max_bytes_per_day: Option<u64>,
    pub report_interval_secs: Option<u32>,
    pub active_hours: Option<(u8, u8)>,
    #[serde(default)]
    pub allowed_countries: Vec<String>,
    /// MCC-MNC, e.g. "262-01" or "26201".
    #[serde(default)]
    pub allowed_networks: Vec<String>,
    #[serde(default)]
    pub allowed_rats: Vec<u8>,
    #[serde(default)]
    pub imei_lock: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub tenant: String,
    pub name: Option<String>,
    #[serde(default)]
    pub profile: Option<ProfileInput>,
    /// Detectors to switch off for this group: declared, location, baseline,
    /// cohort, destinations, policy, botnet, identity, connectivity, overload.
    #[serde(default)]
    pub disabled_detectors: Vec<String>,
}

/// Creates or replaces a device group and its declared behaviour profile.
#[utoipa::path(put, path = "/api/v1/groups/{id}", request_body = GroupInput, responses((status = 200, body = UpsertResult), (status = 400, body = error::ErrorBody)))]
async fn put_group(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<GroupInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UpsertResult>, ApiError> {
    // A group's declared profile and disabled detectors are policy.
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    inventory::validate_slug("id", &id).map_err(|e| ApiError::invalid(e.to_string()))?;
    inventory::validate_slug("tenant", &body.tenant)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if !caller.sees(Some(&body.tenant)) {
        return Err(ApiError::forbidden(format!(
            "this caller cannot write tenant {:?}",
            body.tenant
        )));
    }
    // Another tenant's group does not exist for this caller: replacing it
    // would move it (and its devices' policy) into the caller's tenant.
    {
        let e = s.engine.read();
        if e.groups()
            .any(|g| g.id == id && !caller.sees(Some(&g.tenant)))
        {
            return Err(ApiError::not_found(format!("no group {id:?}")));
        }
    }
    let p = body.profile.unwrap_or_default();
    if let Some((a, b)) = p.active_hours {
        if a > 23 || b > 24 || a == b {
            return Err(ApiError::invalid(
                "profile.active_hours: [start, end) hours with start 0-23, end 1-24, start != end",
            ));
        }
    }
    let mut networks = Vec::new();
    for n in &p.allowed_networks {
        networks.push(Plmn::parse(n).ok_or_else(|| {
            ApiError::invalid(format!(
                "profile.allowed_networks: {n:?} is not an MCC-MNC like \"262-01\""
            ))
        })?);
    }
    let mut countries = Vec::new();
    for c in &p.allowed_countries {
        let up = c.to_ascii_uppercase();
        if simguard_engine::mcc::country_name(&up).is_none() {
            return Err(ApiError::invalid(format!("profile.allowed_countries: {c:?} is not an ISO 3166 alpha-2 code with a mobile country code")));
        }
        countries.push(up);
    }
    let mut disabled_detectors = Vec::new();
    for d in &body.disabled_detectors {
        disabled_detectors.push(
            d.parse::<simguard_engine::Detector>()
                .map_err(|e| ApiError::invalid(format!("disabled_detectors: {e}")))?,
        );
    }
    let group = Group {
        name: body.name.unwrap_or_else(|| id.clone()),
        disabled_detectors,
        id,
        tenant: body.tenant,
        profile: DeclaredProfile {
            max_bytes_per_day: p.max_bytes_per_day,
            report_interval_secs: p.report_interval_secs,
            active_hours: p.active_hours,
            allowed_countries: countries,
            allowed_networks: networks,
            allowed_rats: p.allowed_rats,
            imei_lock: p.imei_lock,
        },
    };
    let seq = submit(&s, vec![Event::UpsertGroup(group)]).await?;
    Ok(Json(UpsertResult { upserted: 1, seq }))
}
