//! `simguard import devices FILE.csv`: validate locally (every bad row is
//! reported by line and field and none of it is sent), then send the good
//! rows to the running server in batches, with a progress bar.
//! `simguard import cells FILE...`: see `import_cells.rs`.

use crate::client::ApiClient;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use simguard_server::api::DeviceInput;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ImportWhat {
    /// Devices: CSV with a header; columns imsi, tenant, group (required) and
    /// iccid, msisdn, imei, lifecycle, label (optional), in any order.
    Devices {
        file: PathBuf,
        /// Server API base URL.
        #[arg(long, env = "SIMGUARD_URL", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// API token (operator or admin).
        #[arg(long, env = "SIMGUARD_TOKEN")]
        token: Option<String>,
        /// Only validate the file.
        #[arg(long)]
        dry_run: bool,
        /// Rows per request.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
    },
    /// Cell positions for geolocation, from OpenCelliD files, written into
    /// the data directory's store (the server may be running). Every row is
    /// checked first: one bad row and nothing is imported.
    Cells(super::import_cells::CellsArgs),
}

/// A rejected row: 1-based line in the file, the column, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, field {}: {}",
            self.line, self.field, self.message
        )
    }
}

const REQUIRED: [&str; 3] = ["imsi", "tenant", "group"];
const KNOWN: [&str; 8] = [
    "imsi",
    "tenant",
    "group",
    "iccid",
    "msisdn",
    "imei",
    "lifecycle",
    "label",
];

/// Reads and validates a device CSV. Returns the valid rows and the errors.
pub fn read_devices(
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<(Vec<DeviceInput>, Vec<RowError>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header line", path.display()))?
        .clone();
    let cols: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_ascii_lowercase(), i))
        .collect();
    for h in headers.iter() {
        if !KNOWN.contains(&h.to_ascii_lowercase().as_str()) {
            bail!(
                "{}: line 1: unknown column {h:?}; expected {}",
                path.display(),
                KNOWN.join(", ")
            );
        }
    }
    for r in REQUIRED {
        if !cols.contains_key(r) {
            bail!("{}: line 1: missing required column {r:?}", path.display());
        }
    }
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = match rdr.read_record(&mut record) {
            Ok(m) => m,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    field: "-".into(),
                    message: format!("not valid CSV: {e}"),
                });
                if e.is_io_error() {
                    break;
                }
                continue;
            }
        };
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        progress(record.position().map_or(0, |p| p.byte()));
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        if record.len() != headers.len() {
            errors.push(RowError {
                line,
                field: "-".into(),
                message: format!("{} fields, the header has {}", record.len(), headers.len()),
            });
            continue;
        }
        let get = |c: &str| cols.get(c).and_then(|&i| record.get(i)).map(str::to_string);
        let get_opt = |c: &str| get(c).filter(|v| !v.is_empty());
        let input = DeviceInput {
            imsi: get("imsi").unwrap_or_default(),
            iccid: get_opt("iccid"),
            msisdn: get_opt("msisdn"),
            imei: get_opt("imei"),
            tenant: get("tenant").unwrap_or_default(),
            group: get("group").unwrap_or_default(),
            lifecycle: get_opt("lifecycle"),
            label: get_opt("label"),
        };
        match input.to_record() {
            Err(e) => errors.push(RowError {
                line,
                field: e.field.into(),
                message: e.message,
            }),
            Ok(rec) => {
                let key = rec.imsi.to_string();
                if let Some(first) = seen.get(&key) {
                    errors.push(RowError {
                        line,
                        field: "imsi".into(),
                        message: format!("{key} already appears on line {first}"),
                    });
                } else {
                    seen.insert(key, line);
                    ok.push(input);
                }
            }
        }
    }
    Ok((ok, errors))
}

pub async fn run(what: ImportWhat) -> Result<()> {
    match what {
        ImportWhat::Devices {
            file,
            server,
            token,
            dry_run,
            batch,
        } => devices(file, server, token, dry_run, batch).await,
        ImportWhat::Cells(args) => super::import_cells::run(args),
    }
}

async fn devices(
    file: PathBuf,
    server: String,
    token: Option<String>,
    dry_run: bool,
    batch: usize,
) -> Result<()> {
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("validating {bar:40} {bytes}/{total_bytes} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (rows, errors) = read_devices(&file, |b| bar.set_position(b))?;
    bar.finish_and_clear();
    for e in &errors {
        eprintln!("{}: {e}", file.display());
    }
    eprintln!(
        "{}: {} valid rows, {} rejected",
        file.display(),
        rows.len(),
        errors.len()
    );
    if !dry_run && !rows.is_empty() {
        let token = token
            .or_else(|| std::env::var("SIMGUARD_ADMIN_TOKEN").ok())
            .context("no API token: pass --token or set SIMGUARD_TOKEN")?;
        let api = ApiClient::new(&server, &token)?;
        let bar = ProgressBar::new(rows.len() as u64).with_style(
            ProgressStyle::with_template("importing {bar:40} {pos}/{len} devices {per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        for chunk in rows.chunks(batch.clamp(1, 10_000)) {
            api.send(
                reqwest::Method::POST,
                "/api/v1/devices",
                &serde_json::json!({ "devices": chunk }),
            )
            .await
            .context("import request failed; rows before this batch were imported")?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish();
        eprintln!("imported {} devices into {server}", rows.len());
    }
    if !errors.is_empty() {
        bail!(
            "{} rows rejected (see above); the other rows were {}",
            errors.len(),
            if dry_run { "valid" } else { "imported" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn bad_rows_are_reported_by_line_and_field_and_skipped() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "imsi,iccid,msisdn,imei,tenant,group,lifecycle,label").unwrap();
        writeln!(f, "901700000000001,89490170000000000012,+491700000001,490154203237518,acme,meters,active,ok").unwrap();
        writeln!(f, "90170000000000X,,,,acme,meters,,bad imsi").unwrap();
        writeln!(f, "901700000000003,,,490154203237519,acme,meters,,bad luhn").unwrap();
        writeln!(f, "901700000000004,,,,acme,meters,paused,bad state").unwrap();
        writeln!(f, "901700000000001,,,,acme,meters,,dup").unwrap();
        writeln!(f, "901700000000006,,,,Acme,meters,,bad tenant").unwrap();
        writeln!(f, "901700000000007,,,,acme,meters").unwrap();
        writeln!(f).unwrap();
        writeln!(f, "901700000000009,,,,acme,trackers,,\"quoted, label\"").unwrap();
        f.flush().unwrap();
        let (ok, errs) = read_devices(f.path(), |_| {}).unwrap();
        let got: Vec<(u64, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (3, "imsi"),
                (4, "imei"),
                (5, "lifecycle"),
                (6, "imsi"),
                (7, "tenant"),
                (8, "-")
            ]
        );
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].label.as_deref(), Some("quoted, label"));
    }

    #[test]
    fn missing_required_column_names_it() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "imsi,tenant").unwrap();
        let e = read_devices(f.path(), |_| {}).unwrap_err().to_string();
        assert!(e.contains("group"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "imsi,tenant,group,colour").unwrap();
        let e = read_devices(f.path(), |_| {}).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }
}
