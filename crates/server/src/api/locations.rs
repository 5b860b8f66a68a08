//! Location routes: a device's trail, and every device on a map.
//!
//! Positions come from the store (the sink resolves each change of serving
//! network or cell when it writes the batch); status and tenant come live
//! from the engine. Like every device route, a device the caller may not
//! see does not exist (404), and the map leaves it out.

use super::error::{ApiError, ErrorBody};
use super::views::{cell_view, status, CellView};
use super::{parse_imsi_path, with_reader, Caller};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::time::{parse_rfc3339, rfc3339};
use simguard_engine::Digits;
use simguard_store::{LocationPoint, MapPoint};
use utoipa::{IntoParams, ToSchema};

/// Most points one trail request returns.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct LocationQuery {
    /// Start (RFC 3339 or YYYY-MM-DD), inclusive. Default: the beginning.
    pub from: Option<String>,
    /// End, exclusive. Default: no end.
    pub to: Option<String>,
    /// Most points, 1 to 10,000 (default 1000).
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct LocationView {
    /// When the device got there (event time of the record that moved it).
    pub time: String,
    pub time_ms: i64,
    pub lat: f64,
    pub lon: f64,
    /// Radius around (lat, lon) the device is likely within, metres.
    pub accuracy_m: u32,
    /// cell or country (see the device's `position`).
    pub source: &'static str,
    /// The serving network then, MCC-MNC.
    pub network: Option<String>,
    /// The serving cell then.
    pub cell: Option<CellView>,
}

#[derive(Serialize, ToSchema)]
pub struct LocationTrail {
    pub imsi: String,
    /// Newest first: one point per change of serving network or cell.
    pub items: Vec<LocationView>,
}

fn location_view(p: &LocationPoint) -> LocationView {
    LocationView {
        time: rfc3339(p.time),
        time_ms: p.time,
        lat: p.position.lat,
        lon: p.position.lon,
        accuracy_m: p.position.accuracy_m,
        source: p.position.source.as_str(),
        network: p.network.map(|n| n.to_string()),
        cell: p.cell.as_ref().map(cell_view),
    }
}

fn time_arg(v: &Option<String>, name: &str) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|t| {
            parse_rfc3339(t).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{name}: {t:?} is not RFC 3339 (2026-11-22T10:00:00Z) or a date"
                ))
            })
        })
        .transpose()
}

/// A device's location trail, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/locations", params(("imsi" = String, Path), LocationQuery), responses((status = 200, body = LocationTrail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn device_locations(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
    q: Result<Query<LocationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LocationTrail>, ApiError> {
    let Query(q) = q?;
    let imsi = parse_imsi_path(&imsi)?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let from = time_arg(&q.from, "from")?.unwrap_or(i64::MIN);
    let to = time_arg(&q.to, "to")?.unwrap_or(i64::MAX);
    if from >= to {
        return Err(ApiError::invalid("from must be before to"));
    }
    {
        let e = s.engine.read();
        e.device(imsi)
            .filter(|d| caller.sees(d.provisioning.as_ref().map(|p| e.syms().resolve(p.tenant))))
            .ok_or_else(|| ApiError::not_found(format!("no device with IMSI {imsi}")))?;
    }
    let points = with_reader(&s, |r| r.locations(imsi, from, to, limit))?;
    Ok(Json(LocationTrail {
        imsi: imsi.to_string(),
        items: points.iter().map(location_view).collect(),
    }))
}

/// Every located device the caller sees, as parallel arrays (one index per
/// device): compact enough for 100,000 devices in one response.
#[derive(Serialize, ToSchema, Default)]
pub struct MapDevices {
    /// Devices in the arrays.
    pub count: usize,
    #[schema(value_type = Vec<String>)]
    pub imsi: Imsis,
    /// Degrees, rounded to 5 decimals (about a metre).
    pub lat: Vec<f64>,
    pub lon: Vec<f64>,
    /// online or offline.
    pub status: Vec<&'static str>,
    /// The highest severity among the device's active alerts (warning,
    /// minor, major, critical), or null.
    pub severity: Vec<Option<&'static str>>,
    /// Devices the caller sees that were never located (not in the arrays).
    pub unlocated: usize,
}

/// IMSIs serialized as JSON strings straight from their packed form: no
/// string per device (100,000 of them per map).
#[derive(Default)]
pub struct Imsis(pub Vec<Digits>);

impl Serialize for Imsis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        let mut buf = [0u8; Digits::MAX_LEN];
        for d in &self.0 {
            seq.serialize_element(digits_str(*d, &mut buf))?;
        }
        seq.end()
    }
}

/// The digits of `d` (leading zeros kept) in `buf`.
fn digits_str(d: Digits, buf: &mut [u8; Digits::MAX_LEN]) -> &str {
    let len = d.len().min(Digits::MAX_LEN);
    let mut v = d.value();
    for b in buf[..len].iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

/// Every device the caller sees with its newest position, status and worst active alert.
#[utoipa::path(get, path = "/api/v1/map/devices", responses((status = 200, body = MapDevices)))]
pub async fn map_devices(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<MapDevices>, ApiError> {
    // The store first, without the engine's lock: the positions (one row per
    // located device) and the active alerts.
    let mut points: Vec<MapPoint> = Vec::new();
    let severities = with_reader(&s, |r| {
        r.map_points(|p| points.push(p))?;
        r.active_alert_severities()
    })?;
    let mut m = MapDevices::default();
    let e = s.engine.read();
    let now = e.clock();
    let syms = e.syms();
    // The caller's tenant as the engine's symbol: a tenant the engine does
    // not know has no devices.
    let mine = caller.tenant.as_deref().map(|t| syms.lookup(t));
    let visible = |d: &simguard_engine::Device| match mine {
        None => true,
        Some(t) => t.is_some() && d.provisioning.as_ref().map(|p| p.tenant) == t,
    };
    let mut seen = 0usize;
    e.for_each_device(|d| {
        if visible(d) {
            seen += 1;
        }
    });
    m.imsi.0.reserve(points.len());
    m.lat.reserve(points.len());
    m.lon.reserve(points.len());
    m.status.reserve(points.len());
    m.severity.reserve(points.len());
    for p in &points {
        // A position of a device the engine no longer has, or of another
        // tenant's, is not on this map.
        let Some(d) = e.device(p.imsi).filter(|d| visible(d)) else {
            continue;
        };
        m.imsi.0.push(p.imsi);
        m.lat.push(round5(p.lat));
        m.lon.push(round5(p.lon));
        m.status.push(match status(d, now) {
            "online" => "online",
            _ => "offline",
        });
        m.severity
            .push(severities.get(&p.imsi).map(|sev| sev.as_str()));
    }
    drop(e);
    m.count = m.imsi.0.len();
    m.unlocated = seen.saturating_sub(m.count);
    Ok(Json(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imsis_serialize_as_their_digits() {
        let list = Imsis(vec![
            Digits::parse("001010000000001").unwrap(),
            Digits::parse("901700000000123").unwrap(),
            Digits::parse("0").unwrap(),
        ]);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["001010000000001","901700000000123","0"]"#
        );
        assert_eq!(round5(52.123456789), 52.12346);
        assert_eq!(round5(-75.000004), -75.0);
    }
}
