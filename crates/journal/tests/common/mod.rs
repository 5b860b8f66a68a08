#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::path::{Path, PathBuf};

use simguard_journal::{Journal, JournalError, JournalOptions};

pub const SEGMENT_HEADER_LEN: u64 = 20;
pub const RECORD_HEADER_LEN: u64 = 16;

/// Deterministic payload for `seq`: varied sizes (including empty and a few
/// larger ones) and content that differs per seq, so a misplaced record is caught.
pub fn payload(seq: u64) -> Vec<u8> {
    let len = match seq % 11 {
        0 => 0,
        5 => 700 + (seq % 13) as usize * 10,
        _ => ((seq * 37) % 120) as usize + 1,
    };
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

pub fn opts(segment_bytes: u64, fsync: bool) -> JournalOptions {
    JournalOptions {
        segment_bytes,
        fsync,
    }
}

/// Every record on disk from `from`, via `Journal::replay`.
pub fn replay_all(dir: &Path, from: u64) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
    let mut out = Vec::new();
    let visited = Journal::replay(dir, from, |seq, p: &[u8]| {
        out.push((seq, p.to_vec()));
        Ok::<(), JournalError>(())
    })?;
    assert_eq!(visited, out.len() as u64);
    Ok(out)
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sgj"))
        .collect();
    v.sort();
    v
}

pub fn first_seq_of(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// (offset, total record length) of every record in a segment file, parsed
/// independently of the crate so the tests check the documented format.
pub fn record_offsets(path: &Path) -> Vec<(u64, u64)> {
    let bytes = fs::read(path).unwrap();
    let mut off = SEGMENT_HEADER_LEN as usize;
    let mut out = Vec::new();
    while off + RECORD_HEADER_LEN as usize <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        let total = RECORD_HEADER_LEN as usize + len;
        assert!(
            off + total <= bytes.len(),
            "test helper expects a clean file"
        );
        out.push((off as u64, total as u64));
        off += total;
    }
    assert_eq!(off, bytes.len());
    out
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Writes `count` records (payload(seq)), committing every `batch`.
pub fn write_journal(dir: &Path, o: JournalOptions, count: u64, batch: u64) {
    let (mut j, _) = Journal::open(dir, o).unwrap();
    for seq in 1..=count {
        assert_eq!(j.append(&payload(seq)).unwrap(), seq);
        if seq % batch == 0 {
            j.commit().unwrap();
        }
    }
    j.commit().unwrap();
    assert_eq!(j.durable_seq(), count);
}

pub fn expected(from: u64, to: u64) -> Vec<(u64, Vec<u8>)> {
    (from..=to).map(|s| (s, payload(s))).collect()
}
