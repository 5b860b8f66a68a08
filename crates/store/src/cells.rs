//! The cell table: cell positions imported from OpenCelliD files (or a
//! simulator's cell plan), keyed like OpenCelliD by (mcc, mnc, area, cell).
//!
//! The primary key is ordered (mcc, mnc, cell, area) so that one B-tree
//! answers both lookups of `simguard_engine::locate`: the exact key, and an
//! ECI/NCI in any area of its PLMN. The table is reference data, not engine
//! output: nothing in the journal rebuilds it, and an import writes it
//! directly, in batches of rows per transaction so that the server's store
//! sink (another writer) waits at most one batch.

use crate::{Result, Store, StoreError, StoreReader};
use rusqlite::{params, Connection, OptionalExtension};
use simguard_engine::locate::{CellKey, CellPosition, CellQuery};

/// The radio technology of a cell, as OpenCelliD names it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Radio {
    Gsm,
    Umts,
    Cdma,
    Lte,
    Nr,
}

impl Radio {
    pub const ALL: [Radio; 5] = [Radio::Gsm, Radio::Umts, Radio::Cdma, Radio::Lte, Radio::Nr];

    pub fn as_str(self) -> &'static str {
        match self {
            Radio::Gsm => "GSM",
            Radio::Umts => "UMTS",
            Radio::Cdma => "CDMA",
            Radio::Lte => "LTE",
            Radio::Nr => "NR",
        }
    }

    /// OpenCelliD's radio names, and the access technologies measurement
    /// apps write (`LTE+`, `HSPA`, `EDGE` ...), case-insensitively.
    pub fn parse(s: &str) -> Option<Radio> {
        let up = s.trim().to_ascii_uppercase();
        Some(match up.as_str() {
            "GSM" | "GPRS" | "EDGE" => Radio::Gsm,
            "UMTS" | "HSPA" | "HSPA+" | "HSDPA" | "HSUPA" | "WCDMA" | "TD-SCDMA" => Radio::Umts,
            "CDMA" | "1XRTT" | "EVDO" => Radio::Cdma,
            "LTE" | "LTE+" | "LTE-A" | "NB-IOT" | "NBIOT" | "LTE-M" | "CAT-M" => Radio::Lte,
            "NR" | "5G" | "NR-NSA" | "NR-SA" => Radio::Nr,
            _ => return None,
        })
    }
}

/// One cell to store.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct CellRow {
    pub radio: Radio,
    pub key: CellKey,
    pub lat: f64,
    pub lon: f64,
    /// How far from (lat, lon) the cell serves, m.
    pub range_m: u32,
    /// How many measurements the position comes from.
    pub samples: u32,
}

/// What an import wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellImport {
    /// Rows written (inserted or replacing a cell with the same key).
    pub rows: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Cells in the table before and after.
    pub cells_before: u64,
    pub cells_after: u64,
}

const INSERT: &str =
    "INSERT INTO cells(mcc, mnc, cell, area, radio, lat, lon, range_m, samples, source)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT(mcc, mnc, cell, area) DO UPDATE SET radio = excluded.radio, lat = excluded.lat,
       lon = excluded.lon, range_m = excluded.range_m, samples = excluded.samples,
       source = excluded.source";

impl Store {
    /// Writes cells, `batch` rows per transaction (at least 1). A cell
    /// already in the table (same key) is replaced: importing a newer file
    /// updates positions. `source` says where the rows come from
    /// ("towers", "measurements", "demo"). `progress` gets the rows written
    /// so far after each batch.
    ///
    /// The caller validates everything first: a row that SQLite refuses is
    /// an I/O or corruption problem, and what earlier batches committed
    /// stays (re-running the import is idempotent).
    pub fn import_cells(
        &mut self,
        rows: impl IntoIterator<Item = CellRow>,
        source: &str,
        batch: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<CellImport> {
        let batch = batch.max(1);
        let path = self.path.clone();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut done = CellImport {
            cells_before: count(&self.conn).map_err(map)?,
            ..CellImport::default()
        };
        // A bigger page cache for this connection only: the B-tree of a
        // large table is written in key order only if the file is sorted.
        self.conn
            .execute_batch("PRAGMA cache_size = -262144")
            .map_err(map)?;
        let mut rows = rows.into_iter();
        let mut chunk: Vec<CellRow> = Vec::with_capacity(batch.min(1 << 20));
        loop {
            chunk.clear();
            chunk.extend(rows.by_ref().take(batch));
            if chunk.is_empty() {
                break;
            }
            // In key order, a batch walks the B-tree once from left to right
            // instead of jumping between pages (files are rarely sorted by
            // our key). Stable: of two rows with one key, the later wins as
            // it would unsorted.
            chunk.sort_by_key(|r| (r.key.mcc, r.key.mnc, r.key.cell, r.key.area));
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(map)?;
            {
                let mut st = tx.prepare_cached(INSERT).map_err(map)?;
                for r in &chunk {
                    st.execute(params![
                        r.key.mcc,
                        r.key.mnc,
                        r.key.cell as i64,
                        r.key.area,
                        r.radio.as_str(),
                        r.lat,
                        r.lon,
                        r.range_m,
                        r.samples,
                        source
                    ])
                    .map_err(map)?;
                    done.rows += 1;
                }
            }
            tx.commit().map_err(map)?;
            done.batches += 1;
            progress(done.rows);
        }
        self.conn
            .execute_batch("PRAGMA cache_size = -2000")
            .map_err(map)?;
        done.cells_after = count(&self.conn).map_err(map)?;
        Ok(done)
    }

    /// Cells in the table.
    pub fn cell_count(&self) -> Result<u64> {
        count(&self.conn).map_err(self.err())
    }

    /// Cells in the table that came from `source`.
    pub fn cell_count_from(&self, source: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM cells WHERE source = ?1",
                params![source],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.err())
    }
}

impl StoreReader {
    /// One lookup in the cell table.
    pub fn find_cell(&self, q: CellQuery) -> Result<Option<CellPosition>> {
        find(&self.conn, q).map_err(self.err())
    }

    /// Cells in the table.
    pub fn cell_count(&self) -> Result<u64> {
        count(&self.conn).map_err(self.err())
    }
}

pub(crate) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM cells", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Answers a [`CellQuery`]. In any area, the cell with the most samples wins.
pub(crate) fn find(conn: &Connection, q: CellQuery) -> rusqlite::Result<Option<CellPosition>> {
    let row = |r: &rusqlite::Row| {
        Ok(CellPosition {
            lat: r.get(0)?,
            lon: r.get(1)?,
            range_m: r.get::<_, i64>(2)?.clamp(0, i64::from(u32::MAX)) as u32,
        })
    };
    match q {
        CellQuery::Exact(k) => conn
            .prepare_cached(
                "SELECT lat, lon, range_m FROM cells WHERE mcc = ?1 AND mnc = ?2 AND cell = ?3 AND area = ?4",
            )?
            .query_row(params![k.mcc, k.mnc, k.cell as i64, k.area], row)
            .optional(),
        CellQuery::AnyArea(k) => conn
            .prepare_cached(
                "SELECT lat, lon, range_m FROM cells WHERE mcc = ?1 AND mnc = ?2 AND cell = ?3
                 ORDER BY samples DESC, area LIMIT 1",
            )?
            .query_row(params![k.mcc, k.mnc, k.cell as i64], row)
            .optional(),
    }
}
