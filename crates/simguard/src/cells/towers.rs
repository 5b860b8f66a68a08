//! OpenCelliD's cell-tower export: one row per cell,
//! `radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal`.
//! The world file has that header; the per-country files have none, so a
//! header is optional. `unit` (PSC/PCI), `changeable`, the timestamps and
//! `averageSignal` are not stored.

use super::{degrees, max_cell_id, parse, row_error};
use crate::cmd::import::RowError;
use anyhow::{Context, Result};
use simguard_engine::locate::CellKey;
use simguard_store::{CellRow, Radio};
use std::path::Path;

/// The columns, in order.
pub const COLUMNS: [&str; 14] = [
    "radio",
    "mcc",
    "net",
    "area",
    "cell",
    "unit",
    "lon",
    "lat",
    "range",
    "samples",
    "changeable",
    "created",
    "updated",
    "averageSignal",
];

/// Reads a towers file row by row.
pub struct Towers {
    rdr: csv::Reader<std::fs::File>,
    rec: csv::ByteRecord,
    first: bool,
}

impl Towers {
    pub fn open(path: &Path) -> Result<Towers> {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(f);
        Ok(Towers {
            rdr,
            rec: csv::ByteRecord::new(),
            first: true,
        })
    }

    /// Bytes of the file read so far (for a progress bar).
    pub fn position(&self) -> u64 {
        self.rdr.position().byte()
    }

    /// The next cell; None at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<CellRow>, RowError> {
        loop {
            let more = self.rdr.read_byte_record(&mut self.rec).map_err(|e| {
                row_error(
                    e.position().map_or(0, |p| p.line()),
                    "-",
                    format!("not valid CSV: {e}"),
                )
            })?;
            if !more {
                return Ok(None);
            }
            let line = self.rec.position().map_or(0, |p| p.line());
            let first = std::mem::replace(&mut self.first, false);
            if first && is_header(&self.rec) {
                check_header(&self.rec, line)?;
                continue;
            }
            if self.rec.iter().all(|f| f.is_empty()) {
                continue;
            }
            return parse_row(&self.rec, line).map(Some);
        }
    }
}

fn is_header(rec: &csv::ByteRecord) -> bool {
    rec.get(0)
        .map(|f| String::from_utf8_lossy(f))
        .is_some_and(|f| {
            f.trim_start_matches('\u{feff}')
                .trim()
                .eq_ignore_ascii_case("radio")
        })
}

fn check_header(rec: &csv::ByteRecord, line: u64) -> Result<(), RowError> {
    let got: Vec<String> = rec
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        })
        .collect();
    let same = got.len() == COLUMNS.len()
        && got
            .iter()
            .zip(COLUMNS)
            .all(|(g, c)| g.eq_ignore_ascii_case(c));
    if same {
        Ok(())
    } else {
        Err(row_error(
            line,
            "-",
            format!(
                "the header is {:?}; an OpenCelliD towers file has {}",
                got.join(","),
                COLUMNS.join(",")
            ),
        ))
    }
}

/// One data row, every stored field validated.
pub fn parse_row(rec: &csv::ByteRecord, line: u64) -> Result<CellRow, RowError> {
    if rec.len() != COLUMNS.len() {
        return Err(row_error(
            line,
            "-",
            format!("{} fields, a towers row has {}", rec.len(), COLUMNS.len()),
        ));
    }
    let f = |i: usize| rec.get(i).unwrap_or(b"");
    let radio_text = String::from_utf8_lossy(f(0));
    let radio = Radio::parse(&radio_text).ok_or_else(|| {
        row_error(
            line,
            "radio",
            format!("{radio_text:?} is not GSM, UMTS, CDMA, LTE or NR"),
        )
    })?;
    let mcc: u16 = parse(f(1), line, "mcc")?;
    if mcc > 999 {
        return Err(row_error(
            line,
            "mcc",
            format!("{mcc} has more than 3 digits"),
        ));
    }
    let mnc: u16 = parse(f(2), line, "net")?;
    if mnc > 999 {
        return Err(row_error(
            line,
            "net",
            format!("{mnc} has more than 3 digits"),
        ));
    }
    let area: u32 = parse(f(3), line, "area")?;
    let cell: u64 = parse(f(4), line, "cell")?;
    if cell > max_cell_id(radio) {
        return Err(row_error(
            line,
            "cell",
            format!(
                "{cell} is larger than a {} cell id can be ({})",
                radio.as_str(),
                max_cell_id(radio)
            ),
        ));
    }
    let lon = degrees(f(6), line, "lon", 180.0)?;
    let lat = degrees(f(7), line, "lat", 90.0)?;
    let range_m: u32 = parse(f(8), line, "range")?;
    let samples: u32 = parse(f(9), line, "samples")?;
    Ok(CellRow {
        radio,
        key: CellKey {
            mcc,
            mnc,
            area,
            cell,
        },
        lat,
        lon,
        range_m,
        samples,
    })
}

/// Reads a whole file, checking every row and handing each good one to
/// `keep`. Returns the rows read and the bad ones (at most `max_errors`).
/// `progress` gets the bytes read.
pub fn read(
    path: &Path,
    max_errors: usize,
    mut keep: impl FnMut(CellRow) -> Result<()>,
    mut progress: impl FnMut(u64),
) -> Result<(u64, Vec<RowError>)> {
    let mut t = Towers::open(path)?;
    let (mut rows, mut errors) = (0u64, Vec::new());
    loop {
        match t.next_row() {
            Ok(Some(r)) => {
                rows += 1;
                // After a bad row nothing will be imported: only keep checking.
                if errors.is_empty() {
                    keep(r)?;
                }
                if rows % 65_536 == 0 {
                    progress(t.position());
                }
            }
            Ok(None) => break,
            Err(e) => {
                let fatal = e.field == "-" && e.message.starts_with("not valid CSV");
                errors.push(e);
                if errors.len() >= max_errors || fatal {
                    break;
                }
            }
        }
    }
    progress(t.position());
    Ok((rows, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> csv::ByteRecord {
        csv::ByteRecord::from(line.split(',').collect::<Vec<_>>())
    }

    #[test]
    fn a_good_row_and_what_each_bad_field_says() {
        let r = parse_row(
            &rec("LTE,262,1,1234,123456,17,13.405,52.52,1500,12,1,1459692894,1587306302,-95"),
            2,
        )
        .unwrap();
        assert_eq!(r.radio, Radio::Lte);
        assert_eq!(
            r.key,
            CellKey {
                mcc: 262,
                mnc: 1,
                area: 1234,
                cell: 123_456
            }
        );
        assert_eq!(
            (r.lat, r.lon, r.range_m, r.samples),
            (52.52, 13.405, 1500, 12)
        );
        let bad = |line: &str| parse_row(&rec(line), 7).unwrap_err();
        for (row, field) in [
            ("WIFI,262,1,1,1,0,13,52,1,1,1,0,0,0", "radio"),
            ("LTE,2620,1,1,1,0,13,52,1,1,1,0,0,0", "mcc"),
            ("LTE,262,,1,1,0,13,52,1,1,1,0,0,0", "net"),
            ("LTE,262,1,-4,1,0,13,52,1,1,1,0,0,0", "area"),
            ("GSM,262,1,1,70000,0,13,52,1,1,1,0,0,0", "cell"),
            ("LTE,262,1,1,268435456,0,13,52,1,1,1,0,0,0", "cell"),
            ("LTE,262,1,1,1,0,181,52,1,1,1,0,0,0", "lon"),
            ("LTE,262,1,1,1,0,13,north,1,1,1,0,0,0", "lat"),
            ("LTE,262,1,1,1,0,13,52,-1,1,1,0,0,0", "range"),
            ("LTE,262,1,1,1,0,13,52,1,1.5,1,0,0,0", "samples"),
            ("LTE,262,1,1,1,0,13,52,1,1", "-"),
        ] {
            let e = bad(row);
            assert_eq!((e.line, e.field.as_str()), (7, field), "{row}: {e}");
        }
        assert_eq!(
            bad("LTE,262,1,1,1,0,13,NaN,1,1,1,0,0,0").to_string(),
            "line 7, field lat: NaN is outside -90..90 degrees"
        );
        // An NR cell id has 36 bits.
        assert!(parse_row(&rec("NR,262,1,1,68719476735,0,13,52,1,1,1,0,0,0"), 1).is_ok());
    }
}
