//! `simguard import cells FILE... [--format auto|towers|measurements]`:
//! cell positions into the store of a data directory, for geolocation.
//!
//! Validate, then commit. Every row of every file is checked first, and one
//! bad row aborts with `FILE: line N, field F: reason` before anything is
//! written. Good rows are gathered in the store's key order while they are
//! checked (`cells::sorted`, spilling to temporary files past a couple of
//! million rows, so a world file never has to fit in memory); measurement
//! files are aggregated into cells (`cells::measurements`). Then the cells
//! go into the store in batched transactions, so that a running server's
//! store sink waits at most one batch. Cells are replaced by key, so
//! running an import again is safe.

use crate::cells::measurements::{Aggregated, Collector};
use crate::cells::sorted::{Sorted, Sorter, RUN_ROWS};
use crate::cells::{self, towers, Format};
use crate::cmd::import::RowError;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use simguard_server::config::Config;
use simguard_store::{CellImport, CellRow, Store};
use std::path::PathBuf;
use std::time::Instant;

/// Bad rows listed before giving up.
const MAX_ERRORS: usize = 20;

#[derive(clap::Args)]
pub struct CellsArgs {
    /// Files of one format. Several measurement files are aggregated
    /// together (a cell measured in two files gets one position).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// File format (auto: from the first line).
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// Configuration whose data directory holds the store (default: the
    /// built-in one, with SIMGUARD_* overrides such as SIMGUARD_DATA_DIR).
    #[arg(long, short, env = "SIMGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the configuration's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Rows per transaction.
    #[arg(long, default_value_t = 100_000)]
    pub batch: usize,
    /// Only check the files.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: CellsArgs) -> Result<()> {
    let format = format_of(&a.files, a.format)?;
    let store_path = match &a.data_dir {
        Some(d) => d.join("simguard.db"),
        None => Config::load(a.config.as_deref())?.store_path(),
    };
    let t0 = Instant::now();
    let (rows, cells, source) = match format {
        Format::Measurements => {
            let agg = check_measurements(&a.files)?;
            println!(
                "{} measurements ({} repeated) of {} cells",
                agg.rows,
                agg.duplicates,
                agg.cells.len()
            );
            (agg.rows, Cells::Aggregated(agg.cells), "measurements")
        }
        Format::Towers | Format::Auto => {
            let sorter = check_towers(&a.files, RUN_ROWS)?;
            (sorter.rows(), Cells::Towers(sorter), "towers")
        }
    };
    println!(
        "checked {rows} rows of {} file(s) in {:.2} s: all valid",
        a.files.len(),
        t0.elapsed().as_secs_f64()
    );
    if a.dry_run {
        return Ok(());
    }
    if let Some(dir) = store_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut store = Store::open(&store_path)
        .with_context(|| format!("opening the store {}", store_path.display()))?;
    let bar = ProgressBar::new(cells.len()).with_style(
        ProgressStyle::with_template("importing {bar:40} {pos}/{len} cells {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t1 = Instant::now();
    let mut committed = 0;
    let result = cells.write(&mut store, source, a.batch, |n| {
        committed = n;
        bar.set_position(n);
    });
    bar.finish_and_clear();
    let done = result.map_err(|e| {
        anyhow!(
            "{e:#}\n{committed} rows were committed before this (cells are replaced by key: running the import again is safe)"
        )
    })?;
    let secs = t1.elapsed().as_secs_f64().max(1e-9);
    println!(
        "imported {} rows into {}: {} cells in the store ({} new), in {:.2} s ({:.0} rows/s; {:.0} rows/s with the check)",
        done.rows,
        store_path.display(),
        done.cells_after,
        done.cells_after.saturating_sub(done.cells_before),
        secs,
        done.rows as f64 / secs,
        done.rows as f64 / t0.elapsed().as_secs_f64().max(1e-9),
    );
    Ok(())
}

/// The one format of all files.
fn format_of(files: &[PathBuf], asked: Format) -> Result<Format> {
    if asked != Format::Auto {
        return Ok(asked);
    }
    let mut found = None;
    for f in files {
        let this = cells::detect(f)?;
        match found {
            Some((first, ref name)) if first != this => bail!(
                "{} is a {this:?} file but {name} is {first:?}; import them separately",
                f.display()
            ),
            Some(_) => {}
            None => found = Some((this, f.display().to_string())),
        }
    }
    found
        .map(|(f, _)| f)
        .ok_or_else(|| anyhow!("no file given"))
}

fn byte_bar(files: &[PathBuf]) -> ProgressBar {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template("checking {bar:40} {bytes}/{total_bytes} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// Fails, listing the bad rows, when there are any.
fn fail_on(errors: &[(PathBuf, RowError)], more: bool) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    for (f, e) in errors {
        eprintln!("{}: {e}", f.display());
    }
    bail!(
        "{}{} bad row(s); nothing was imported",
        errors.len(),
        if more { " or more" } else { "" }
    )
}

/// Checks towers files, gathering their rows in key order.
fn check_towers(files: &[PathBuf], run_rows: usize) -> Result<Sorter> {
    let bar = byte_bar(files);
    let mut sorter = Sorter::new(run_rows);
    let (mut errors, mut offset) = (Vec::new(), 0u64);
    for f in files {
        let left = MAX_ERRORS - errors.len();
        let (_, errs) = towers::read(
            f,
            left,
            |r| sorter.push(r).context("sorting the rows"),
            |b| bar.set_position(offset + b),
        )?;
        offset += std::fs::metadata(f).map_or(0, |m| m.len());
        errors.extend(errs.into_iter().map(|e| (f.clone(), e)));
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    bar.finish_and_clear();
    fail_on(&errors, errors.len() >= MAX_ERRORS)?;
    Ok(sorter)
}

fn check_measurements(files: &[PathBuf]) -> Result<Aggregated> {
    let bar = byte_bar(files);
    let (mut c, mut errors, mut offset) = (Collector::default(), Vec::new(), 0u64);
    for f in files {
        let left = MAX_ERRORS - errors.len();
        let errs = c.add_file(f, left, |b| bar.set_position(offset + b))?;
        offset += std::fs::metadata(f).map_or(0, |m| m.len());
        errors.extend(errs.into_iter().map(|e| (f.clone(), e)));
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    bar.finish_and_clear();
    fail_on(&errors, errors.len() >= MAX_ERRORS)?;
    Ok(c.finish())
}

/// What to write once everything checked out.
enum Cells {
    Towers(Sorter),
    Aggregated(Vec<CellRow>),
}

impl Cells {
    fn len(&self) -> u64 {
        match self {
            Cells::Towers(s) => s.rows(),
            Cells::Aggregated(c) => c.len() as u64,
        }
    }

    fn write(
        self,
        store: &mut Store,
        source: &str,
        batch: usize,
        progress: impl FnMut(u64),
    ) -> Result<CellImport> {
        match self {
            Cells::Aggregated(rows) => Ok(store.import_cells(rows, source, batch, progress)?),
            Cells::Towers(sorter) => {
                let mut sorted: Sorted = sorter.finish().context("merging the sorted rows")?;
                let done = store.import_cells(sorted.by_ref(), source, batch, progress)?;
                match sorted.error {
                    None => Ok(done),
                    Some(e) => Err(anyhow!(e).context(format!(
                        "reading back the sorted rows failed after {} rows",
                        done.rows
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

    fn args(files: Vec<PathBuf>, data: &Path) -> CellsArgs {
        CellsArgs {
            files,
            format: Format::Auto,
            config: None,
            data_dir: Some(data.to_path_buf()),
            batch: 2,
            dry_run: false,
        }
    }

    fn towers_file(dir: &Path, name: &str, rows: &[&str]) -> PathBuf {
        let p = dir.join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        writeln!(
            f,
            "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal"
        )
        .unwrap();
        for r in rows {
            writeln!(f, "{r}").unwrap();
        }
        p
    }

    const GOOD: [&str; 3] = [
        "LTE,262,1,1234,123456,17,13.405,52.52,1500,12,1,1459692894,1587306302,0",
        "GSM,262,1,1000,4242,0,8.6821,50.1109,900,3,1,1459692894,1587306302,-80",
        "UMTS,262,2,77,2345678,0,11.5756,48.1372,2500,40,1,1459692894,1587306302,0",
    ];

    #[test]
    fn a_bad_row_names_its_line_and_field_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut rows = GOOD.to_vec();
        // Line 5 (header, three good rows, then this): latitude 91.
        rows.push("LTE,262,1,1234,123457,17,13.405,91.0,1500,12,1,1459692894,1587306302,0");
        rows.push(GOOD[0]);
        let bad = towers_file(dir.path(), "bad.csv", &rows);
        let good = towers_file(dir.path(), "good.csv", &GOOD);
        std::fs::create_dir_all(&data).unwrap();
        drop(Store::open(data.join("simguard.db")).unwrap());
        let e = run(args(vec![good, bad], &data)).unwrap_err().to_string();
        assert!(e.contains("1 bad row(s); nothing was imported"), "{e}");
        // The line and field were printed; check them through the reader.
        let (_, errors) =
            towers::read(&dir.path().join("bad.csv"), 20, |_| Ok(()), |_| {}).unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "line 5, field lat: 91 is outside -90..90 degrees"
        );
        // Nothing was written: the good file before the bad one neither.
        let store = Store::open(data.join("simguard.db")).unwrap();
        assert_eq!(store.cell_count().unwrap(), 0);
    }

    #[test]
    fn good_files_are_imported_in_batches_and_reimporting_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let a = towers_file(dir.path(), "a.csv", &GOOD[..2]);
        // A per-country file: no header.
        let b = dir.path().join("b.csv");
        std::fs::write(&b, format!("{}\n", GOOD[2])).unwrap();
        run(args(vec![a.clone(), b], &data)).unwrap();
        let store = Store::open(data.join("simguard.db")).unwrap();
        assert_eq!(store.cell_count().unwrap(), 3);
        assert_eq!(store.cell_count_from("towers").unwrap(), 3);
        drop(store);
        run(args(vec![a], &data)).unwrap();
        let store = Store::open(data.join("simguard.db")).unwrap();
        assert_eq!(store.cell_count().unwrap(), 3);
    }

    #[test]
    fn spilled_runs_import_like_one_and_the_last_duplicate_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = GOOD.to_vec();
        // The first row's cell again, moved: the file's later row wins.
        rows.push("LTE,262,1,1234,123456,17,13.5,52.6,700,13,1,1459692894,1587306302,0");
        let f = towers_file(dir.path(), "dup.csv", &rows);
        // Runs of two rows: two spilled runs, and the merge.
        let sorter = check_towers(&[f], 2).unwrap();
        assert_eq!(sorter.rows(), 4);
        let mut store = Store::open(dir.path().join("s.db")).unwrap();
        let done = Cells::Towers(sorter)
            .write(&mut store, "towers", 3, |_| {})
            .unwrap();
        assert_eq!((done.rows, done.batches, done.cells_after), (4, 2, 3));
        drop(store);
        let r = Store::open_reader(dir.path().join("s.db")).unwrap();
        let p = r
            .find_cell(simguard_engine::locate::CellQuery::Exact(
                simguard_engine::locate::CellKey {
                    mcc: 262,
                    mnc: 1,
                    area: 1234,
                    cell: 123_456,
                },
            ))
            .unwrap()
            .unwrap();
        assert_eq!((p.lat, p.lon, p.range_m), (52.6, 13.5, 700));
    }

    #[test]
    fn formats_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        let t = towers_file(dir.path(), "t.csv", &GOOD);
        let m = dir.path().join("m.csv");
        std::fs::write(&m, "mcc,mnc,lac,cellid,lat,lon\n302,720,1,2,45,-75\n").unwrap();
        let e = format_of(&[t.clone(), m], Format::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("separately"), "{e}");
        assert_eq!(format_of(&[t], Format::Auto).unwrap(), Format::Towers);
    }

    /// The shared measurement files (../shared/data/cells-opencellid): 18
    /// files, 2,621 rows of which one repeats another, 99 cells of Rogers
    /// (302-720) in Ottawa.
    #[test]
    fn the_shared_measurement_files_aggregate_to_99_cells() {
        let root = std::env::var_os("SIMGUARD_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/work/shared/data"))
            .join("cells-opencellid");
        let mut files: Vec<PathBuf> = ["lacolyoc", "uottawa"]
            .iter()
            .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 18, "{}", root.display());
        let agg = check_measurements(&files).unwrap();
        assert_eq!((agg.rows, agg.duplicates), (2621, 1));
        assert_eq!(agg.cells.len(), 99);
        assert_eq!(
            agg.cells.iter().map(|c| u64::from(c.samples)).sum::<u64>(),
            2620
        );
        let tacs: std::collections::BTreeMap<u32, usize> =
            agg.cells.iter().fold(Default::default(), |mut m, c| {
                *m.entry(c.key.area).or_default() += 1;
                m
            });
        assert_eq!(tacs, [(29050, 15), (29100, 84)].into_iter().collect());
        for c in &agg.cells {
            assert_eq!((c.key.mcc, c.key.mnc), (302, 720));
            assert_eq!(c.radio, simguard_store::Radio::Lte);
            // Ottawa, within the walks' reach.
            assert!((45.2..45.5).contains(&c.lat), "{c:?}");
            assert!((-76.0..-75.5).contains(&c.lon), "{c:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut a = args(files, &data);
        a.batch = 50_000;
        run(a).unwrap();
        let store = Store::open(data.join("simguard.db")).unwrap();
        assert_eq!(store.cell_count_from("measurements").unwrap(), 99);
    }
}
