//! Location trails: where each device was, one point per change of serving
//! network or cell (the engine's `Output::Located`), resolved to a position
//! through the cell table when the sink writes the batch.
//!
//! - `locations`: the trail, keyed by (packed IMSI, event time), bounded to
//!   the newest [`LocationRetention::per_device`] points per device, pruned
//!   in the transaction that adds points;
//! - `device_positions`: each device's newest point, so that a map of every
//!   device reads one row per device instead of searching the trails.
//!
//! A point is resolved once, when it is written: importing cells later
//! improves later points, not history (history then says what was known).

use crate::{Result, StoreReader};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use simguard_engine::locate::{self, Position, PositionSource};
use simguard_engine::{Cell, CellKind, Digits, Plmn, Severity};
use std::collections::{BTreeSet, HashMap};

/// How much of each trail is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocationRetention {
    /// Newest points kept per device (at least 1). A point is about 60
    /// bytes on disk: the default bounds a device's trail to about 60 kB.
    pub per_device: u32,
}

impl Default for LocationRetention {
    fn default() -> Self {
        LocationRetention { per_device: 1000 }
    }
}

/// A change of a device's serving network or cell, to resolve and store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocationChange {
    pub imsi: Digits,
    /// Event time, Unix ms.
    pub time: i64,
    pub network: Option<Plmn>,
    pub cell: Option<Cell>,
}

/// One stored point of a trail.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocationPoint {
    pub imsi: Digits,
    /// Event time, Unix ms.
    pub time: i64,
    /// The serving network then.
    pub network: Option<Plmn>,
    /// The serving cell then.
    pub cell: Option<Cell>,
    pub position: Position,
}

/// A device on the map: its newest position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapPoint {
    pub imsi: Digits,
    pub lat: f64,
    pub lon: f64,
}

/// Resolves and writes `changes` (in journal order), then prunes the
/// trails they grew. Returns the points written. A change that resolves to
/// no position (no known cell, no country) writes nothing: the device keeps
/// its last known position.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    changes: &[LocationChange],
    keep: LocationRetention,
) -> rusqlite::Result<u64> {
    if changes.is_empty() {
        return Ok(0);
    }
    let mut written = 0;
    let mut grown = BTreeSet::new();
    {
        let mut point = tx.prepare_cached(
            "INSERT OR REPLACE INTO locations(imsi, time, network, cell_type, cell_plmn, area, cell,
                lat, lon, accuracy_m, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        // Newest wins: replayed or late points never move a device back.
        let mut current = tx.prepare_cached(
            "INSERT INTO device_positions(imsi, time, lat, lon, accuracy_m, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(imsi) DO UPDATE SET time = excluded.time, lat = excluded.lat,
               lon = excluded.lon, accuracy_m = excluded.accuracy_m, source = excluded.source
             WHERE excluded.time >= device_positions.time",
        )?;
        for ch in changes {
            let mut failed = None;
            let pos = locate::resolve(ch.cell.as_ref(), ch.network, |q| {
                crate::cells::find(tx, q).unwrap_or_else(|e| {
                    failed = Some(e);
                    None
                })
            });
            if let Some(e) = failed {
                return Err(e);
            }
            let Some(pos) = pos else { continue };
            let imsi = ch.imsi.packed() as i64;
            point.execute(params![
                imsi,
                ch.time,
                ch.network.map(|n| n.to_string()),
                ch.cell.map(|c| c.kind.as_str()),
                ch.cell.map(|c| c.plmn.to_string()),
                ch.cell.map(|c| c.area),
                ch.cell.map(|c| c.id as i64),
                pos.lat,
                pos.lon,
                pos.accuracy_m,
                pos.source.as_str(),
            ])?;
            current.execute(params![
                imsi,
                ch.time,
                pos.lat,
                pos.lon,
                pos.accuracy_m,
                pos.source.as_str()
            ])?;
            written += 1;
            grown.insert(imsi);
        }
    }
    // Keep the newest `per_device`: delete from the first point past them.
    // The scan reads at most that many index entries of one device.
    let mut prune = tx.prepare_cached(
        "DELETE FROM locations WHERE imsi = ?1 AND time <= (
            SELECT time FROM locations WHERE imsi = ?1 ORDER BY time DESC LIMIT 1 OFFSET ?2)",
    )?;
    for imsi in grown {
        prune.execute(params![imsi, keep.per_device.max(1)])?;
    }
    Ok(written)
}

fn cell_kind(s: &str) -> Option<CellKind> {
    Some(match s {
        "CGI" => CellKind::Cgi,
        "SAI" => CellKind::Sai,
        "RAI" => CellKind::Rai,
        "TAI" => CellKind::Tai,
        "ECGI" => CellKind::Ecgi,
        "NCGI" => CellKind::Ncgi,
        _ => return None,
    })
}

fn point_of(r: &rusqlite::Row) -> rusqlite::Result<LocationPoint> {
    let bad = |i: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("locations: {what}").into(),
        )
    };
    let imsi: i64 = r.get(0)?;
    let network: Option<String> = r.get(2)?;
    let kind: Option<String> = r.get(3)?;
    let plmn: Option<String> = r.get(4)?;
    let source: String = r.get(10)?;
    let cell = match (kind, plmn) {
        (Some(k), Some(p)) => Some(Cell {
            kind: cell_kind(&k).ok_or_else(|| bad(3, format!("cell type {k:?}")))?,
            plmn: Plmn::parse(&p).ok_or_else(|| bad(4, format!("PLMN {p:?}")))?,
            area: r.get::<_, Option<u32>>(5)?.unwrap_or(0),
            id: r.get::<_, Option<i64>>(6)?.unwrap_or(0) as u64,
        }),
        _ => None,
    };
    Ok(LocationPoint {
        imsi: Digits::from_packed(imsi as u64).ok_or_else(|| bad(0, format!("IMSI {imsi}")))?,
        time: r.get(1)?,
        network: match network {
            Some(n) => Some(Plmn::parse(&n).ok_or_else(|| bad(2, format!("network {n:?}")))?),
            None => None,
        },
        cell,
        position: Position {
            lat: r.get(7)?,
            lon: r.get(8)?,
            accuracy_m: r.get(9)?,
            source: PositionSource::parse(&source)
                .ok_or_else(|| bad(10, format!("source {source:?}")))?,
        },
    })
}

const POINT_COLUMNS: &str =
    "imsi, time, network, cell_type, cell_plmn, area, cell, lat, lon, accuracy_m, source";

impl StoreReader {
    /// A device's trail in [from, to) (event time, Unix ms), newest first,
    /// at most `limit` points.
    pub fn locations(
        &self,
        imsi: Digits,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<LocationPoint>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {POINT_COLUMNS} FROM locations
                 WHERE imsi = ?1 AND time >= ?2 AND time < ?3 ORDER BY time DESC LIMIT ?4"
            ))
            .map_err(self.err())?;
        let rows = st
            .query_map(
                params![imsi.packed() as i64, from, to, limit as i64],
                point_of,
            )
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    /// A device's newest position and when it was taken (event time, ms).
    pub fn position(&self, imsi: Digits) -> Result<Option<(i64, Position)>> {
        position(&self.conn, imsi).map_err(self.err())
    }

    /// The newest positions of some devices (a page of the device list).
    pub fn positions(&self, imsis: &[Digits]) -> Result<HashMap<Digits, (i64, Position)>> {
        let mut out = HashMap::with_capacity(imsis.len());
        for &imsi in imsis {
            if let Some(p) = position(&self.conn, imsi).map_err(self.err())? {
                out.insert(imsi, p);
            }
        }
        Ok(out)
    }

    /// Every device's newest position, in IMSI (packed) order: the map.
    pub fn map_points(&self, mut f: impl FnMut(MapPoint)) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("SELECT imsi, lat, lon FROM device_positions")
            .map_err(self.err())?;
        let mut rows = st.query([]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let imsi: i64 = r.get(0).map_err(self.err())?;
            // A row that is not an IMSI cannot be on anyone's map.
            let Some(imsi) = Digits::from_packed(imsi as u64) else {
                continue;
            };
            f(MapPoint {
                imsi,
                lat: r.get(1).map_err(self.err())?,
                lon: r.get(2).map_err(self.err())?,
            });
        }
        Ok(())
    }

    /// The highest severity of each device's active alerts.
    pub fn active_alert_severities(&self) -> Result<HashMap<Digits, Severity>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT imsi, severity FROM alerts WHERE state = 'active' AND imsi IS NOT NULL",
            )
            .map_err(self.err())?;
        let mut rows = st.query([]).map_err(self.err())?;
        let mut out: HashMap<Digits, Severity> = HashMap::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let imsi: String = r.get(0).map_err(self.err())?;
            let sev: String = r.get(1).map_err(self.err())?;
            let (Some(imsi), Ok(sev)) = (Digits::parse(&imsi), sev.parse::<Severity>()) else {
                continue;
            };
            let e = out.entry(imsi).or_insert(sev);
            *e = (*e).max(sev);
        }
        Ok(out)
    }
}

fn position(conn: &Connection, imsi: Digits) -> rusqlite::Result<Option<(i64, Position)>> {
    conn.prepare_cached(
        "SELECT time, lat, lon, accuracy_m, source FROM device_positions WHERE imsi = ?1",
    )?
    .query_row(params![imsi.packed() as i64], |r| {
        let source: String = r.get(4)?;
        Ok((
            r.get(0)?,
            Position {
                lat: r.get(1)?,
                lon: r.get(2)?,
                accuracy_m: r.get(3)?,
                source: PositionSource::parse(&source).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        4,
                        rusqlite::types::Type::Text,
                        format!("device_positions: source {source:?}").into(),
                    )
                })?,
            },
        ))
    })
    .optional()
}
