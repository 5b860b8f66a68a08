//! Whole-fleet reads for people looking at many devices at once (the
//! console's overview, device table and map): counts by status, lifecycle,
//! country and RAT; every matching device in one columnar answer; a device's
//! learned baseline next to its declared profile; alert counts.
//!
//! The list route pages 1,000 full device views at a time, about 1 KB each:
//! 100 round trips and 100 MB for a fleet of 100,000. The columnar form
//! carries only what a table row shows, with repeated strings (tenant, group,
//! country ...) replaced by an index into a dictionary, which is about a
//! tenth of that in one answer.

use super::error::{ApiError, ErrorBody};
use super::views::{self, rat_view};
use super::{parse_imsi_path, with_reader, Caller, DeviceFilter, DeviceQuery};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::detect::dequantize;
use simguard_engine::device::Sym;
use simguard_engine::time::rfc3339;
use simguard_engine::{Lifecycle, Severity};
use simguard_store::{AlertFilter, AlertState};
use std::collections::{BTreeMap, HashMap};
use utoipa::{IntoParams, ToSchema};

const STATUSES: [&str; 3] = ["online", "offline", "never_seen"];

#[derive(Serialize, ToSchema)]
pub struct CountryCount {
    /// ISO 3166 alpha-2 of the serving network's country; null when unknown.
    pub country: Option<&'static str>,
    pub name: Option<&'static str>,
    pub count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct RatCount {
    /// 3GPP RAT-Type value; null when never reported.
    pub code: Option<u8>,
    pub name: Option<&'static str>,
    pub count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceSummary {
    /// Devices that pass the filters (the list route's filters).
    pub total: u64,
    /// online, offline and never_seen, zero included.
    pub by_status: BTreeMap<&'static str, u64>,
    /// Every lifecycle state, zero included, and `unprovisioned`.
    pub by_lifecycle: BTreeMap<&'static str, u64>,
    /// Most devices first.
    pub by_country: Vec<CountryCount>,
    /// Most devices first.
    pub by_rat: Vec<RatCount>,
    /// Provisioned devices by tenant id.
    pub by_tenant: BTreeMap<String, u64>,
    /// Engine time the statuses are computed at.
    pub engine_time: String,
    pub engine_time_ms: i64,
}

/// The device list's filters without its paging.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct FleetQuery {
    /// online, offline or never_seen.
    pub status: Option<String>,
    /// active, throttled, quarantined, blocked, retired.
    pub lifecycle: Option<String>,
    pub group: Option<String>,
    pub tenant: Option<String>,
    /// ISO 3166 alpha-2 of the serving network's country.
    pub country: Option<String>,
    /// RAT code or name.
    pub rat: Option<String>,
    pub provisioned: Option<bool>,
}

impl FleetQuery {
    fn as_list(&self) -> DeviceQuery {
        DeviceQuery {
            status: self.status.clone(),
            lifecycle: self.lifecycle.clone(),
            group: self.group.clone(),
            tenant: self.tenant.clone(),
            country: self.country.clone(),
            rat: self.rat.clone(),
            provisioned: self.provisioned,
            limit: None,
            cursor: None,
        }
    }
}

/// Device counts by status, lifecycle, country, RAT and tenant: the same
/// devices, and so the same numbers, as paging through `GET /api/v1/devices`
/// with these filters.
#[utoipa::path(get, path = "/api/v1/devices/summary", params(FleetQuery), responses((status = 200, body = DeviceSummary), (status = 400, body = ErrorBody)))]
pub async fn device_summary(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<FleetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeviceSummary>, ApiError> {
    let Query(q) = q?;
    let q = q.as_list();
    let e = s.engine.read();
    let f = DeviceFilter::new(&q, &caller, &e)?;
    let now = e.clock();
    let mut total = 0u64;
    let mut by_status: BTreeMap<&'static str, u64> = STATUSES.iter().map(|s| (*s, 0)).collect();
    let mut by_lifecycle: BTreeMap<&'static str, u64> =
        Lifecycle::ALL.iter().map(|l| (l.as_str(), 0)).collect();
    by_lifecycle.insert("unprovisioned", 0);
    let mut countries: HashMap<Option<&'static str>, u64> = HashMap::new();
    let mut rats: HashMap<Option<u8>, u64> = HashMap::new();
    let mut tenants: HashMap<Sym, u64> = HashMap::new();
    e.for_each_device(|d| {
        if !f.matches(d, now) {
            return;
        }
        total += 1;
        *by_status.entry(views::status(d, now)).or_default() += 1;
        *by_lifecycle
            .entry(d.lifecycle().map_or("unprovisioned", |l| l.as_str()))
            .or_default() += 1;
        *countries
            .entry(d.network.and_then(|n| n.country()))
            .or_default() += 1;
        *rats.entry(d.rat).or_default() += 1;
        if let Some(p) = &d.provisioning {
            *tenants.entry(p.tenant).or_default() += 1;
        }
    });
    let mut by_country: Vec<CountryCount> = countries
        .into_iter()
        .map(|(c, count)| CountryCount {
            country: c,
            name: c.and_then(simguard_engine::mcc::country_name),
            count,
        })
        .collect();
    by_country.sort_by(|a, b| b.count.cmp(&a.count).then(a.country.cmp(&b.country)));
    let mut by_rat: Vec<RatCount> = rats
        .into_iter()
        .map(|(code, count)| RatCount {
            code,
            name: code.map(|c| rat_view(c).name),
            count,
        })
        .collect();
    by_rat.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    let syms = e.syms();
    let by_tenant = tenants
        .into_iter()
        .map(|(t, n)| (syms.resolve(t).to_string(), n))
        .collect();
    Ok(Json(DeviceSummary {
        total,
        by_status,
        by_lifecycle,
        by_country,
        by_rat,
        by_tenant,
        engine_time: rfc3339(now),
        engine_time_ms: now,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct CountryEntry {
    pub code: &'static str,
    pub name: Option<&'static str>,
    /// A point in the country (its largest land mass): where a device with
    /// no better position is drawn.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct ColumnDicts {
    pub tenant: Vec<String>,
    pub group: Vec<String>,
    pub lifecycle: Vec<&'static str>,
    pub status: Vec<&'static str>,
    pub country: Vec<CountryEntry>,
    pub rat: Vec<&'static str>,
    /// Alert severities, lowest first.
    pub alert: Vec<&'static str>,
}

/// Every matching device, one array per field, in IMSI order. The
/// dictionary-coded columns hold an index into `dict.<column>`, or -1 for
/// none (an unprovisioned device has no tenant, a device never seen no RAT).
#[derive(Serialize, ToSchema)]
pub struct DeviceColumns {
    pub count: usize,
    pub engine_time_ms: i64,
    pub dict: ColumnDicts,
    pub imsi: Vec<String>,
    pub label: Vec<Option<String>>,
    pub msisdn: Vec<Option<String>>,
    pub tenant: Vec<i32>,
    pub group: Vec<i32>,
    pub lifecycle: Vec<i32>,
    pub status: Vec<i32>,
    pub country: Vec<i32>,
    pub rat: Vec<i32>,
    /// Highest severity of the device's active alerts.
    pub alert: Vec<i32>,
    /// Last report, Unix seconds.
    pub last_seen: Vec<Option<i64>>,
    /// Octets up and down in the current billing period.
    pub usage: Vec<u64>,
}

/// Index of each distinct value in first-seen order.
struct Dict<K> {
    index: HashMap<K, i32>,
}

impl<K: std::hash::Hash + Eq + Copy> Dict<K> {
    fn new() -> Self {
        Dict {
            index: HashMap::new(),
        }
    }

    fn code(&mut self, k: Option<K>) -> i32 {
        match k {
            None => -1,
            Some(k) => {
                let n = self.index.len() as i32;
                *self.index.entry(k).or_insert(n)
            }
        }
    }

    /// The values in index order.
    fn values(self) -> Vec<K> {
        let mut v: Vec<(K, i32)> = self.index.into_iter().collect();
        v.sort_by_key(|(_, i)| *i);
        v.into_iter().map(|(k, _)| k).collect()
    }
}

/// Every device that passes the filters, as columns (no paging): the
/// console's device table and map in one request.
#[utoipa::path(get, path = "/api/v1/devices/columns", params(FleetQuery), responses((status = 200, body = DeviceColumns), (status = 400, body = ErrorBody)))]
pub async fn device_columns(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<FleetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeviceColumns>, ApiError> {
    let Query(q) = q?;
    let q = q.as_list();
    // Alerts first, from the store, so that the engine's lock is not held
    // across a SQLite query.
    let alerts: HashMap<String, Severity> = with_reader(&s, |r| {
        r.active_alert_severity_by_imsi(&AlertFilter {
            scope: caller.tenant.clone(),
            ..AlertFilter::default()
        })
    })?
    .into_iter()
    .collect();
    let e = s.engine.read();
    let f = DeviceFilter::new(&q, &caller, &e)?;
    let now = e.clock();
    let devices = e.list_devices(None, usize::MAX, |d| f.matches(d, now));
    let n = devices.len();
    let mut out = DeviceColumns {
        count: n,
        engine_time_ms: now,
        dict: ColumnDicts {
            tenant: Vec::new(),
            group: Vec::new(),
            lifecycle: Lifecycle::ALL.iter().map(|l| l.as_str()).collect(),
            status: STATUSES.to_vec(),
            country: Vec::new(),
            rat: Vec::new(),
            alert: Severity::ALL.iter().map(|s| s.as_str()).collect(),
        },
        imsi: Vec::with_capacity(n),
        label: Vec::with_capacity(n),
        msisdn: Vec::with_capacity(n),
        tenant: Vec::with_capacity(n),
        group: Vec::with_capacity(n),
        lifecycle: Vec::with_capacity(n),
        status: Vec::with_capacity(n),
        country: Vec::with_capacity(n),
        rat: Vec::with_capacity(n),
        alert: Vec::with_capacity(n),
        last_seen: Vec::with_capacity(n),
        usage: Vec::with_capacity(n),
    };
    let (mut tenants, mut groups) = (Dict::<Sym>::new(), Dict::<Sym>::new());
    let (mut countries, mut rats) = (Dict::<&'static str>::new(), Dict::<u8>::new());
    for d in devices {
        let p = d.provisioning.as_ref();
        let imsi = d.imsi.to_string();
        out.alert.push(
            alerts
                .get(&imsi)
                .and_then(|s| Severity::ALL.iter().position(|x| x == s))
                .map_or(-1, |i| i as i32),
        );
        out.imsi.push(imsi);
        out.label
            .push(p.and_then(|p| p.label.as_deref().map(str::to_string)));
        out.msisdn
            .push(p.and_then(|p| p.msisdn.map(|m| m.to_string())));
        out.tenant.push(tenants.code(p.map(|p| p.tenant)));
        out.group.push(groups.code(p.map(|p| p.group)));
        out.lifecycle.push(
            d.lifecycle()
                .and_then(|l| Lifecycle::ALL.iter().position(|x| *x == l))
                .map_or(-1, |i| i as i32),
        );
        let st = views::status(d, now);
        out.status.push(
            STATUSES
                .iter()
                .position(|x| *x == st)
                .map_or(-1, |i| i as i32),
        );
        out.country
            .push(countries.code(d.network.and_then(|n| n.country())));
        out.rat.push(rats.code(d.rat));
        out.last_seen.push(d.last_seen.map(|t| t.div_euclid(1000)));
        out.usage.push(d.usage.period_up + d.usage.period_down);
    }
    let syms = e.syms();
    out.dict.tenant = tenants
        .values()
        .into_iter()
        .map(|t| syms.resolve(t).to_string())
        .collect();
    out.dict.group = groups
        .values()
        .into_iter()
        .map(|g| syms.resolve(g).to_string())
        .collect();
    out.dict.country = countries
        .values()
        .into_iter()
        .map(|c| {
            let at = simguard_engine::geo::centroid(c);
            CountryEntry {
                code: c,
                name: simguard_engine::mcc::country_name(c),
                lat: at.map(|p| p.0),
                lon: at.map(|p| p.1),
            }
        })
        .collect();
    out.dict.rat = rats
        .values()
        .into_iter()
        .map(|r| rat_view(r).name)
        .collect();
    Ok(Json(out))
}

#[derive(Serialize, ToSchema)]
pub struct Quantiles {
    pub p50: u64,
    pub p90: u64,
}

#[derive(Serialize, ToSchema)]
pub struct DeclaredView {
    pub group: String,
    /// Uplink bytes per day the group declares at most.
    pub max_bytes_per_day: Option<u64>,
    pub report_interval_secs: Option<u32>,
    /// [start, end) hours UTC.
    pub active_hours: Option<(u8, u8)>,
}

/// What detection holds the device to: its learned baseline (from its last
/// reports, anomalies excluded) and its group's declared profile.
#[derive(Serialize, ToSchema)]
pub struct BaselineView {
    pub imsi: String,
    /// Reports behind the learned volume (at most 16).
    pub reports: usize,
    /// Reports needed before the device is held to its own baseline rather
    /// than its group's.
    pub warmup_reports: u32,
    /// Uplink bytes per report.
    pub uplink_per_report: Option<Quantiles>,
    /// Seconds between reports (median), once learned.
    pub interval_secs: Option<u64>,
    /// Uplink bytes per hour the baseline amounts to (per report x reports
    /// per hour), for plotting against hourly usage.
    pub uplink_per_hour: Option<Quantiles>,
    /// Uplink bytes so far on the current UTC day.
    pub uplink_today: u64,
    pub declared: Option<DeclaredView>,
}

/// A device's learned baseline and declared profile.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/baseline", params(("imsi" = String, Path)), responses((status = 200, body = BaselineView), (status = 404, body = ErrorBody)))]
pub async fn device_baseline(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
) -> Result<Json<BaselineView>, ApiError> {
    let digits = parse_imsi_path(&imsi)?;
    let e = s.engine.read();
    let syms = e.syms();
    let d = e
        .device(digits)
        .filter(|d| caller.sees(d.provisioning.as_ref().map(|p| syms.resolve(p.tenant))))
        .ok_or_else(|| ApiError::not_found(format!("no device with IMSI {digits}")))?;
    let st = d.detect.as_deref();
    let q = |pct| st.and_then(|s| s.volumes.quantile(pct)).map(dequantize);
    let uplink_per_report = match (q(50), q(90)) {
        (Some(p50), Some(p90)) => Some(Quantiles { p50, p90 }),
        _ => None,
    };
    let interval_secs = st
        .filter(|s| !s.intervals.is_empty())
        .and_then(|s| s.intervals.quantile(50))
        .map(dequantize)
        .filter(|i| *i > 0);
    let declared = d
        .provisioning
        .as_ref()
        .and_then(|p| e.group(syms.resolve(p.group)))
        .map(|g| DeclaredView {
            group: g.id.clone(),
            max_bytes_per_day: g.profile.max_bytes_per_day,
            report_interval_secs: g.profile.report_interval_secs,
            active_hours: g.profile.active_hours,
        });
    // Reports per hour: the learned rhythm, else the declared one.
    let every = interval_secs.or_else(|| {
        declared
            .as_ref()
            .and_then(|g| g.report_interval_secs)
            .map(u64::from)
    });
    let uplink_per_hour = match (&uplink_per_report, every) {
        (Some(r), Some(i)) if i > 0 => {
            let per_hour = 3600.0 / i as f64;
            Some(Quantiles {
                p50: (r.p50 as f64 * per_hour).round() as u64,
                p90: (r.p90 as f64 * per_hour).round() as u64,
            })
        }
        _ => None,
    };
    Ok(Json(BaselineView {
        imsi: digits.to_string(),
        reports: st.map_or(0, |s| s.volumes.len()),
        warmup_reports: e.options().detect.warmup_reports,
        uplink_per_report,
        interval_secs,
        uplink_per_hour,
        uplink_today: st.map_or(0, |s| s.day_up),
        declared,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AlertSummary {
    /// Active alerts by severity, zero included.
    pub active: BTreeMap<&'static str, u64>,
    /// Active alerts nobody has acknowledged, by severity.
    pub active_unacknowledged: BTreeMap<&'static str, u64>,
    pub active_total: u64,
    pub cleared_total: u64,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AlertSummaryQuery {
    pub tenant: Option<String>,
    pub group: Option<String>,
}

/// Counts of the caller's alerts by severity: active, and active and not acknowledged.
#[utoipa::path(get, path = "/api/v1/alerts/summary", params(AlertSummaryQuery), responses((status = 200, body = AlertSummary)))]
pub async fn alert_summary(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<AlertSummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertSummary>, ApiError> {
    let Query(q) = q?;
    let f = AlertFilter {
        tenant: q.tenant,
        group: q.group,
        scope: caller.tenant.clone(),
        ..AlertFilter::default()
    };
    let rows = with_reader(&s, |r| r.alert_counts(&f))?;
    let zero = || -> BTreeMap<&'static str, u64> {
        Severity::ALL.iter().map(|s| (s.as_str(), 0)).collect()
    };
    let mut out = AlertSummary {
        active: zero(),
        active_unacknowledged: zero(),
        active_total: 0,
        cleared_total: 0,
    };
    for (sev, state, ack, n) in rows {
        match state {
            AlertState::Active => {
                out.active_total += n;
                *out.active.entry(sev.as_str()).or_default() += n;
                if !ack {
                    *out.active_unacknowledged.entry(sev.as_str()).or_default() += n;
                }
            }
            AlertState::Cleared => out.cleared_total += n,
        }
    }
    Ok(Json(out))
}
