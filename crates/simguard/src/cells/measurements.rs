//! OpenCelliD measurement files (what apps such as Network Cell Info export
//! and upload): one row per measurement, a position where a cell was heard.
//! Columns are found by name in the header: `mcc`, `mnc`, `lac`, `cellid`,
//! `lat`, `lon` are required; `act` (access technology: GSM, UMTS, LTE,
//! LTE+ ...), `tac`, `signal` and `measured_at` are used when present.
//!
//! # Aggregation
//!
//! The measurements of one cell (mcc, mnc, area, cell) become one position:
//!
//! - **Duplicates** (the same cell, position, time and signal twice, as
//!   apps export a measurement again) count once.
//! - **Centre**: the mean of the latitudes and the mean of the longitudes,
//!   every measurement weighted equally (longitudes unwrapped first if the
//!   cell straddles the antimeridian). This is how OpenCelliD estimates a
//!   cell from measurements. Signal weighting was not chosen: dBm readings
//!   of different phones and bands are not comparable enough to weigh
//!   positions by, and in the power domain one strong reading would
//!   outweigh every other. Measurements are taken where people go (a
//!   street, not around the mast), so the centre is where the cell is
//!   heard, biased towards those paths, not the mast.
//! - **Range**: the 90th percentile (nearest rank: the ⌈0.9·n⌉-th smallest)
//!   of the great-circle distances from the centre to the measurements. The
//!   maximum (OpenCelliD's choice) lets a single GPS outlier or a freak
//!   long-distance reception set a cell's range; the 90th percentile still
//!   covers nearly all places the cell was heard.
//! - **Samples**: the measurements kept.
//! - **Radio**: the most frequent one among the measurements (LTE+ and
//!   LTE-A count as LTE); without `act`, LTE when a TAC is given, else GSM
//!   for 16-bit cell ids and UMTS above.
//! - **Area**: the TAC for LTE/NR measurements that have one, else the LAC
//!   (the app writes the TAC into `lac` as well).

use super::{degrees, max_cell_id, parse, row_error};
use crate::cmd::import::RowError;
use anyhow::{bail, Context, Result};
use simguard_engine::geo::distance_km;
use simguard_engine::locate::CellKey;
use simguard_store::{CellRow, Radio};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

const REQUIRED: [&str; 6] = ["mcc", "mnc", "lac", "cellid", "lat", "lon"];

/// What makes two rows the same measurement: cell, position (bits), time
/// and signal.
type MeasurementId = (CellKey, u64, u64, Option<i64>, Option<i32>);

/// Measurements gathered from one or more files, grouped by cell.
#[derive(Default)]
pub struct Collector {
    cells: BTreeMap<CellKey, CellSamples>,
    seen: HashSet<MeasurementId>,
    /// Data rows read.
    pub rows: u64,
    /// Rows that repeated an earlier measurement.
    pub duplicates: u64,
}

#[derive(Default)]
struct CellSamples {
    points: Vec<(f64, f64)>,
    radios: [u32; 5],
}

/// The cells a [`Collector`] aggregated.
pub struct Aggregated {
    pub rows: u64,
    pub duplicates: u64,
    pub cells: Vec<CellRow>,
}

impl Collector {
    /// Reads one file. Returns the bad rows (at most `max_errors`); when
    /// there are any, the collector must not be used for an import.
    pub fn add_file(
        &mut self,
        path: &Path,
        max_errors: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<RowError>> {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(f);
        let headers = rdr
            .byte_headers()
            .with_context(|| format!("{}: cannot read the header line", path.display()))?
            .clone();
        let names: Vec<String> = headers
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let col = |n: &str| names.iter().position(|h| h == n);
        for r in REQUIRED {
            if col(r).is_none() {
                bail!(
                    "{}: line 1: missing column {r:?}; a measurement file has {}",
                    path.display(),
                    REQUIRED.join(", ")
                );
            }
        }
        let cols = Columns {
            mcc: col("mcc").unwrap_or(0),
            mnc: col("mnc").unwrap_or(0),
            lac: col("lac").unwrap_or(0),
            cell: col("cellid").unwrap_or(0),
            lat: col("lat").unwrap_or(0),
            lon: col("lon").unwrap_or(0),
            act: col("act"),
            tac: col("tac"),
            signal: col("signal"),
            time: col("measured_at"),
            width: names.len(),
        };
        let mut errors = Vec::new();
        let mut rec = csv::ByteRecord::new();
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    errors.push(row_error(
                        e.position().map_or(0, |p| p.line()),
                        "-",
                        format!("not valid CSV: {e}"),
                    ));
                    break;
                }
            }
            let line = rec.position().map_or(0, |p| p.line());
            if rec.iter().all(|f| f.is_empty()) {
                continue;
            }
            self.rows += 1;
            match cols.parse(&rec, line) {
                Ok(m) => self.add(m),
                Err(e) => {
                    errors.push(e);
                    if errors.len() >= max_errors {
                        break;
                    }
                }
            }
            if self.rows % 4096 == 0 {
                progress(rec.position().map_or(0, |p| p.byte()));
            }
        }
        progress(rdr.position().byte());
        Ok(errors)
    }

    fn add(&mut self, m: Measurement) {
        let dup: MeasurementId = (m.key, m.lat.to_bits(), m.lon.to_bits(), m.time, m.signal);
        if !self.seen.insert(dup) {
            self.duplicates += 1;
            return;
        }
        let c = self.cells.entry(m.key).or_default();
        c.points.push((m.lat, m.lon));
        let i = Radio::ALL.iter().position(|r| *r == m.radio).unwrap_or(0);
        c.radios[i] += 1;
    }

    /// One position per cell (see the module documentation), in key order.
    pub fn finish(self) -> Aggregated {
        let cells = self
            .cells
            .into_iter()
            .filter_map(|(key, s)| {
                let (lat, lon, range_m) = aggregate(&s.points)?;
                // The most frequent radio; the first of equals in Radio::ALL order.
                let mut best = 0;
                for i in 1..s.radios.len() {
                    if s.radios[i] > s.radios[best] {
                        best = i;
                    }
                }
                Some(CellRow {
                    radio: Radio::ALL[best],
                    key,
                    lat,
                    lon,
                    range_m,
                    samples: s.points.len() as u32,
                })
            })
            .collect();
        Aggregated {
            rows: self.rows,
            duplicates: self.duplicates,
            cells,
        }
    }
}

/// Centre (mean latitude, mean longitude) and range (90th percentile of the
/// distances from the centre, nearest rank, in whole metres) of a cell's
/// measurements. None for no measurements.
pub fn aggregate(points: &[(f64, f64)]) -> Option<(f64, f64, u32)> {
    if points.is_empty() {
        return None;
    }
    let n = points.len() as f64;
    // Across the antimeridian (-179 and 179 are 2 degrees apart, not 358),
    // average longitudes in 0..360 instead.
    let (lo_min, lo_max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let wrap = lo_max - lo_min > 180.0;
    let unwrap = |lon: f64| if wrap && lon < 0.0 { lon + 360.0 } else { lon };
    let lat = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mut lon = points.iter().map(|p| unwrap(p.1)).sum::<f64>() / n;
    if lon > 180.0 {
        lon -= 360.0;
    }
    let mut d: Vec<f64> = points
        .iter()
        .map(|p| distance_km((lat, lon), *p) * 1000.0)
        .collect();
    d.sort_by(f64::total_cmp);
    let rank = (0.9 * n).ceil() as usize;
    let p90 = d[rank.clamp(1, d.len()) - 1];
    Some((lat, lon, p90.round() as u32))
}

/// One row of a measurement file.
struct Measurement {
    key: CellKey,
    radio: Radio,
    lat: f64,
    lon: f64,
    time: Option<i64>,
    signal: Option<i32>,
}

/// Where each column is.
struct Columns {
    mcc: usize,
    mnc: usize,
    lac: usize,
    cell: usize,
    lat: usize,
    lon: usize,
    act: Option<usize>,
    tac: Option<usize>,
    signal: Option<usize>,
    time: Option<usize>,
    width: usize,
}

impl Columns {
    fn parse(&self, rec: &csv::ByteRecord, line: u64) -> Result<Measurement, RowError> {
        if rec.len() != self.width {
            return Err(row_error(
                line,
                "-",
                format!("{} fields, the header has {}", rec.len(), self.width),
            ));
        }
        let f = |i: usize| rec.get(i).unwrap_or(b"");
        let opt = |i: Option<usize>| i.map(f).filter(|v| !v.trim_ascii().is_empty());
        let mcc: u16 = parse(f(self.mcc), line, "mcc")?;
        if mcc > 999 {
            return Err(row_error(
                line,
                "mcc",
                format!("{mcc} has more than 3 digits"),
            ));
        }
        let mnc: u16 = parse(f(self.mnc), line, "mnc")?;
        if mnc > 999 {
            return Err(row_error(
                line,
                "mnc",
                format!("{mnc} has more than 3 digits"),
            ));
        }
        let lac: u32 = parse(f(self.lac), line, "lac")?;
        let cell: u64 = parse(f(self.cell), line, "cellid")?;
        let tac: Option<u32> = opt(self.tac).map(|v| parse(v, line, "tac")).transpose()?;
        let radio = match opt(self.act) {
            Some(v) => {
                let text = String::from_utf8_lossy(v);
                Radio::parse(&text).ok_or_else(|| {
                    row_error(
                        line,
                        "act",
                        format!("{text:?} is not an access technology (GSM, UMTS, LTE, NR ...)"),
                    )
                })?
            }
            None if tac.is_some() => Radio::Lte,
            None if cell <= 0xffff => Radio::Gsm,
            None => Radio::Umts,
        };
        if cell > max_cell_id(radio) {
            return Err(row_error(
                line,
                "cellid",
                format!(
                    "{cell} is larger than a {} cell id can be ({})",
                    radio.as_str(),
                    max_cell_id(radio)
                ),
            ));
        }
        let lat = degrees(f(self.lat), line, "lat", 90.0)?;
        let lon = degrees(f(self.lon), line, "lon", 180.0)?;
        if lat == 0.0 && lon == 0.0 {
            // What apps write when they had no GPS fix.
            return Err(row_error(
                line,
                "lat",
                "0,0 is no position (no GPS fix)".into(),
            ));
        }
        let area = match (radio, tac) {
            (Radio::Lte | Radio::Nr, Some(t)) => t,
            _ => lac,
        };
        Ok(Measurement {
            key: CellKey {
                mcc,
                mnc,
                area,
                cell,
            },
            radio,
            lat,
            lon,
            time: opt(self.time)
                .map(|v| parse(v, line, "measured_at"))
                .transpose()?,
            signal: opt(self.signal)
                .map(|v| parse(v, line, "signal"))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.flush().unwrap();
        f
    }

    /// A hand-written measurement file with a hand-computed answer.
    ///
    /// Cell A (302-720, TAC 100, ECI 200000): four corners of a square
    /// 0.002 degrees wide, one row repeated.
    ///   centre = ((45.000 + 45.000 + 45.002 + 45.002) / 4,
    ///             (-75.000 - 75.002 - 75.000 - 75.002) / 4) = (45.001, -75.001)
    ///   Each corner is 0.001 deg of latitude and 0.001 deg of longitude away:
    ///   north-south 0.001 * pi/180 * 6,371,000 m = 111.195 m,
    ///   east-west 111.195 m * cos(45.001 deg) = 111.195 * 0.70709 = 78.625 m,
    ///   distance = sqrt(111.195^2 + 78.625^2) = 136.18 m for all four;
    ///   90th percentile, rank ceil(0.9 * 4) = 4: 136.18 m -> 136 m.
    /// Cell B (302-720, LAC 7, CI 300, GSM): nine measurements on a meridian
    ///   at 45.0000, 45.0001, ... 45.0008 and one outlier at 45.0090, all at
    ///   longitude -75.1:
    ///   centre latitude = 45 + (0.0000 + ... + 0.0008 + 0.0090) / 10
    ///                   = 45 + (0.0036 + 0.0090) / 10 = 45.00126
    ///   distances (latitude only: 111,194.93 m per degree):
    ///     0.00046 ... 0.00126 deg for the nine, 0.00774 deg for the outlier;
    ///   rank ceil(0.9 * 10) = 9: the 9th smallest, 0.00126 deg = 140.1 m
    ///   -> 140 m (the maximum would say 861 m because of one reading).
    const HAND: &str = "\
mcc,mnc,lac,cellid,lat,lon,signal,measured_at,act,tac
302,720,100,200000,45.000,-75.000,-90,1000,LTE,100
302,720,100,200000,45.000,-75.002,-91,2000,LTE+,100
302,720,100,200000,45.002,-75.000,-92,3000,LTE,100
302,720,100,200000,45.002,-75.000,-92,3000,LTE,100
302,720,100,200000,45.002,-75.002,-93,4000,LTE,100
302,720,7,300,45.0000,-75.1,-80,1,GSM,
302,720,7,300,45.0001,-75.1,-80,2,GSM,
302,720,7,300,45.0002,-75.1,-80,3,GSM,
302,720,7,300,45.0003,-75.1,-80,4,GSM,
302,720,7,300,45.0004,-75.1,-80,5,GSM,
302,720,7,300,45.0005,-75.1,-80,6,GSM,
302,720,7,300,45.0006,-75.1,-80,7,GSM,
302,720,7,300,45.0007,-75.1,-80,8,GSM,
302,720,7,300,45.0008,-75.1,-80,9,GSM,
302,720,7,300,45.0090,-75.1,-80,10,EDGE,
";

    #[test]
    fn aggregation_matches_the_hand_computed_positions() {
        let f = file(HAND);
        let mut c = Collector::default();
        let errors = c.add_file(f.path(), 10, |_| {}).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let agg = c.finish();
        assert_eq!((agg.rows, agg.duplicates), (15, 1));
        assert_eq!(agg.cells.len(), 2);
        // Key order: (mcc, mnc, area, cell): LAC 7 before TAC 100.
        let b = agg.cells[0];
        assert_eq!(
            b.key,
            CellKey {
                mcc: 302,
                mnc: 720,
                area: 7,
                cell: 300
            }
        );
        assert_eq!(b.radio, Radio::Gsm);
        assert!((b.lat - 45.00126).abs() < 1e-9, "{}", b.lat);
        assert!((b.lon + 75.1).abs() < 1e-9, "{}", b.lon);
        assert_eq!(b.range_m, 140);
        assert_eq!(b.samples, 10);
        let a = agg.cells[1];
        assert_eq!(
            a.key,
            CellKey {
                mcc: 302,
                mnc: 720,
                area: 100,
                cell: 200_000
            }
        );
        assert_eq!(a.radio, Radio::Lte);
        assert!((a.lat - 45.001).abs() < 1e-9, "{}", a.lat);
        assert!((a.lon + 75.001).abs() < 1e-9, "{}", a.lon);
        assert_eq!(a.range_m, 136);
        assert_eq!(a.samples, 4, "the repeated row counts once");
    }

    #[test]
    fn the_centre_is_right_across_the_antimeridian() {
        let (lat, lon, range) = aggregate(&[(0.0, 179.999), (0.0, -179.999)]).unwrap();
        assert_eq!(lat, 0.0);
        assert!((lon.abs() - 180.0).abs() < 1e-9, "{lon}");
        // 0.001 deg of equator = 111 m either side.
        assert_eq!(range, 111);
        assert_eq!(aggregate(&[]), None);
        assert_eq!(aggregate(&[(1.0, 2.0)]), Some((1.0, 2.0, 0)));
    }

    #[test]
    fn bad_rows_name_line_and_field() {
        let f = file(
            "mcc,mnc,lac,cellid,lat,lon,act\n\
             302,720,1,2,45,-75,LTE\n\
             302,720,1,2,95,-75,LTE\n\
             302,720,x,2,45,-75,LTE\n\
             302,720,1,2,45,-75,WIFI\n\
             302,720,1,2,0,0,LTE\n\
             302,720,1,2,45\n",
        );
        let mut c = Collector::default();
        let errors = c.add_file(f.path(), 10, |_| {}).unwrap();
        let got: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![(3, "lat"), (4, "lac"), (5, "act"), (6, "lat"), (7, "-")]
        );
        let f = file("mcc,mnc,cellid,lat,lon\n");
        let e = Collector::default()
            .add_file(f.path(), 10, |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("\"lac\""), "{e}");
    }
}
