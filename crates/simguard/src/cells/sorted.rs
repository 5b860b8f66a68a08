//! Cells in the store's key order, whatever order the file had.
//!
//! The cell table is a B-tree keyed by (mcc, mnc, cell, area). Inserting a
//! file in its own order, a batch per transaction, would touch pages all
//! over the table in every batch: each commit would rewrite most of the
//! table (quadratic in the file size). In key order each batch fills a
//! contiguous stretch of pages instead, and every page is written about
//! once.
//!
//! An external merge sort: rows are gathered in memory, and every
//! `run_rows` rows the run is sorted and spilled to an anonymous temporary
//! file (fixed 41-byte records), so a world file never has to fit in
//! memory. Reading merges the runs. Sorting is stable and ties go to the
//! earlier run, so of two rows with one key the later one in the file is
//! written last, and wins, as it would unsorted.

use simguard_engine::locate::CellKey;
use simguard_store::{CellRow, Radio};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

/// Rows per in-memory run by default: about 96 MB.
pub const RUN_ROWS: usize = 2_000_000;

const RECORD: usize = 41;

type SortKey = (u16, u16, u64, u32);

fn sort_key(k: &CellKey) -> SortKey {
    (k.mcc, k.mnc, k.cell, k.area)
}

/// Gathers rows; [`Sorter::finish`] gives them back in key order.
pub struct Sorter {
    run: Vec<CellRow>,
    run_rows: usize,
    spilled: Vec<File>,
    rows: u64,
}

impl Sorter {
    pub fn new(run_rows: usize) -> Sorter {
        let run_rows = run_rows.max(1);
        Sorter {
            run: Vec::with_capacity(run_rows.min(1 << 16)),
            run_rows,
            spilled: Vec::new(),
            rows: 0,
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn push(&mut self, row: CellRow) -> io::Result<()> {
        self.run.push(row);
        self.rows += 1;
        if self.run.len() >= self.run_rows {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.run.sort_by_key(|r| sort_key(&r.key));
        let mut f = BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
        for r in &self.run {
            f.write_all(&encode(r))?;
        }
        let mut f = f.into_inner().map_err(|e| e.into_error())?;
        f.rewind()?;
        self.spilled.push(f);
        self.run.clear();
        Ok(())
    }

    /// Every row, in key order.
    pub fn finish(mut self) -> io::Result<Sorted> {
        self.run.sort_by_key(|r| sort_key(&r.key));
        let mut sources: Vec<Source> = self
            .spilled
            .into_iter()
            .map(|f| Source::File(BufReader::with_capacity(1 << 20, f)))
            .collect();
        sources.push(Source::Memory(self.run.into_iter()));
        let mut heads = Vec::with_capacity(sources.len());
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            let head = s.next()?;
            if let Some(r) = &head {
                heap.push(Reverse((sort_key(&r.key), i)));
            }
            heads.push(head);
        }
        Ok(Sorted {
            sources,
            heads,
            heap,
            error: None,
        })
    }
}

enum Source {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<CellRow>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<CellRow>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::File(f) => {
                let mut buf = [0u8; RECORD];
                match f.read_exact(&mut buf) {
                    Ok(()) => decode(&buf).map(Some),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// The merged rows. An I/O error ends the iteration and is kept in
/// [`Sorted::error`].
pub struct Sorted {
    sources: Vec<Source>,
    heads: Vec<Option<CellRow>>,
    heap: BinaryHeap<Reverse<(SortKey, usize)>>,
    pub error: Option<io::Error>,
}

impl Iterator for Sorted {
    type Item = CellRow;

    fn next(&mut self) -> Option<CellRow> {
        let Reverse((_, i)) = self.heap.pop()?;
        let row = self.heads[i].take()?;
        match self.sources[i].next() {
            Ok(Some(r)) => {
                self.heap.push(Reverse((sort_key(&r.key), i)));
                self.heads[i] = Some(r);
            }
            Ok(None) => {}
            Err(e) => {
                self.error = Some(e);
                self.heap.clear();
            }
        }
        Some(row)
    }
}

fn radio_code(r: Radio) -> u8 {
    match r {
        Radio::Gsm => 0,
        Radio::Umts => 1,
        Radio::Cdma => 2,
        Radio::Lte => 3,
        Radio::Nr => 4,
    }
}

fn encode(r: &CellRow) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[0] = radio_code(r.radio);
    b[1..3].copy_from_slice(&r.key.mcc.to_le_bytes());
    b[3..5].copy_from_slice(&r.key.mnc.to_le_bytes());
    b[5..9].copy_from_slice(&r.key.area.to_le_bytes());
    b[9..17].copy_from_slice(&r.key.cell.to_le_bytes());
    b[17..25].copy_from_slice(&r.lat.to_le_bytes());
    b[25..33].copy_from_slice(&r.lon.to_le_bytes());
    b[33..37].copy_from_slice(&r.range_m.to_le_bytes());
    b[37..41].copy_from_slice(&r.samples.to_le_bytes());
    b
}

fn decode(b: &[u8; RECORD]) -> io::Result<CellRow> {
    fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        a
    }
    let radio = match b[0] {
        0 => Radio::Gsm,
        1 => Radio::Umts,
        2 => Radio::Cdma,
        3 => Radio::Lte,
        4 => Radio::Nr,
        x => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sort run: radio code {x}"),
            ))
        }
    };
    Ok(CellRow {
        radio,
        key: CellKey {
            mcc: u16::from_le_bytes(arr(&b[1..3])),
            mnc: u16::from_le_bytes(arr(&b[3..5])),
            area: u32::from_le_bytes(arr(&b[5..9])),
            cell: u64::from_le_bytes(arr(&b[9..17])),
        },
        lat: f64::from_le_bytes(arr(&b[17..25])),
        lon: f64::from_le_bytes(arr(&b[25..33])),
        range_m: u32::from_le_bytes(arr(&b[33..37])),
        samples: u32::from_le_bytes(arr(&b[37..41])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mcc: u16, cell: u64, area: u32, samples: u32) -> CellRow {
        CellRow {
            radio: Radio::ALL[(cell % 5) as usize],
            key: CellKey {
                mcc,
                mnc: 1,
                area,
                cell,
            },
            lat: cell as f64 / 7.0,
            lon: -(area as f64) / 3.0,
            range_m: area * 2,
            samples,
        }
    }

    #[test]
    fn runs_spill_and_merge_in_key_order_and_the_later_duplicate_comes_last() {
        // Run size 3: 10 rows make three spilled runs and one in memory.
        let mut s = Sorter::new(3);
        let input = [
            row(262, 9, 1, 0),
            row(208, 5, 2, 0),
            row(262, 1, 7, 0),
            row(262, 1, 3, 0),
            row(208, 5, 2, 1), // the same key as the second row, later
            row(310, 2, 2, 0),
            row(262, 9, 0, 0),
            row(208, 4, 9, 0),
            row(262, 1, 3, 2), // again, later still
            row(1, 1, 1, 0),
        ];
        for r in input {
            s.push(r).unwrap();
        }
        assert_eq!(s.rows(), 10);
        let mut sorted = s.finish().unwrap();
        let out: Vec<CellRow> = sorted.by_ref().collect();
        assert!(sorted.error.is_none());
        let keys: Vec<(u16, u64, u32, u32)> = out
            .iter()
            .map(|r| (r.key.mcc, r.key.cell, r.key.area, r.samples))
            .collect();
        assert_eq!(
            keys,
            vec![
                (1, 1, 1, 0),
                (208, 4, 9, 0),
                (208, 5, 2, 0),
                (208, 5, 2, 1),
                (262, 1, 3, 0),
                (262, 1, 3, 2),
                (262, 1, 7, 0),
                (262, 9, 0, 0),
                (262, 9, 1, 0),
                (310, 2, 2, 0),
            ]
        );
        // Every field survives the spill.
        for r in &out {
            assert_eq!(*r, row(r.key.mcc, r.key.cell, r.key.area, r.samples));
        }
    }
}
