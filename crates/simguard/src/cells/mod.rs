//! Cell files for `simguard import cells`: OpenCelliD's cell-tower export
//! ([`towers`]) and measurement files ([`measurements`], aggregated into
//! cell positions). Reading validates every field; a bad row is reported by
//! line and field, and the import writes nothing unless every row is good.

pub mod measurements;
pub mod sorted;
pub mod towers;

use crate::cmd::import::RowError;
use anyhow::{bail, Context, Result};
use std::io::BufRead;
use std::path::Path;
use std::str::FromStr;

/// A cell file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Decide from the first line of each file.
    Auto,
    /// OpenCelliD cell towers: radio,mcc,net,area,cell,unit,lon,lat,range,
    /// samples,changeable,created,updated,averageSignal (header optional).
    Towers,
    /// OpenCelliD measurements: a header naming mcc, mnc, lac, cellid, lat,
    /// lon (and optionally act, tac, signal, measured_at ...).
    Measurements,
}

/// Tells the format from a file's first line: a towers file starts with its
/// header ("radio,...") or directly with a radio name; a measurement file
/// with a header that names mcc first.
pub fn detect(path: &Path) -> Result<Format> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut first = String::new();
    std::io::BufReader::new(f)
        .read_line(&mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let head = first
        .trim_start_matches('\u{feff}')
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_ascii_lowercase();
    if head == "radio" || simguard_store::Radio::parse(&head).is_some() {
        return Ok(Format::Towers);
    }
    if head == "mcc" {
        return Ok(Format::Measurements);
    }
    bail!(
        "{}: line 1: cannot tell the format (a towers file starts with \"radio\" or a radio name, a measurement file with the header \"mcc,mnc,lac,cellid,lat,lon,...\"); pass --format",
        path.display()
    )
}

/// Parses one field, naming it in the error.
pub(crate) fn parse<T: FromStr>(value: &[u8], line: u64, field: &str) -> Result<T, RowError> {
    // Trimmed as bytes: the char-by-char `str::trim` was a good share of the
    // time to read a large file.
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(row_error(line, field, "empty".into()));
    }
    let text =
        std::str::from_utf8(value).map_err(|_| row_error(line, field, "not UTF-8".into()))?;
    text.parse()
        .map_err(|_| row_error(line, field, format!("{text:?} is not a valid {field}")))
}

/// A latitude or longitude: a finite number within `limit` degrees.
pub(crate) fn degrees(value: &[u8], line: u64, field: &str, limit: f64) -> Result<f64, RowError> {
    let v: f64 = parse(value, line, field)?;
    if !v.is_finite() || v.abs() > limit {
        return Err(row_error(
            line,
            field,
            format!("{v} is outside -{limit}..{limit} degrees"),
        ));
    }
    Ok(v)
}

pub(crate) fn row_error(line: u64, field: &str, message: String) -> RowError {
    RowError {
        line,
        field: field.to_string(),
        message,
    }
}

/// The largest cell id a radio's cells can have: CI and CDMA BID are 16
/// bits, the UTRAN cell id (RNC << 16 | CI) and the ECI 28, the NCI 36.
pub(crate) fn max_cell_id(radio: simguard_store::Radio) -> u64 {
    use simguard_store::Radio;
    match radio {
        Radio::Gsm | Radio::Cdma => 0xffff,
        Radio::Umts | Radio::Lte => (1 << 28) - 1,
        Radio::Nr => (1 << 36) - 1,
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

    #[test]
    fn the_format_is_told_by_the_first_line() {
        let t = file("radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n");
        assert_eq!(detect(t.path()).unwrap(), Format::Towers);
        let t = file("LTE,262,1,1234,123456,0,13.4,52.5,1000,3,1,0,0,0\n");
        assert_eq!(detect(t.path()).unwrap(), Format::Towers);
        let m = file("mcc,mnc,lac,cellid,lat,lon,signal\n");
        assert_eq!(detect(m.path()).unwrap(), Format::Measurements);
        let x = file("imsi,tenant,group\n");
        let e = detect(x.path()).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("--format"), "{e}");
    }
}
