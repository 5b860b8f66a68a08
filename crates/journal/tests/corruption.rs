//! Damage outside the newest segment's tail must be reported, never dropped.

mod common;

use std::fs::{self, OpenOptions};
use std::path::Path;

use common::*;
use simguard_journal::{Journal, JournalError, Reader};

const SEGMENT_BYTES: u64 = 1024;

fn base(dir: &Path) -> Vec<std::path::PathBuf> {
    write_journal(dir, opts(SEGMENT_BYTES, false), 120, 10);
    let segs = segments(dir);
    assert!(segs.len() >= 4);
    segs
}

fn assert_corrupt(err: JournalError, path: &Path, offset: u64) {
    match &err {
        JournalError::Corrupt {
            path: p, offset: o, ..
        } => {
            assert_eq!((p.as_path(), *o), (path, offset), "{err}");
        }
        other => panic!(
            "expected Corrupt at {}:{offset}, got {other:?}",
            path.display()
        ),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains(&offset.to_string()),
        "{msg}"
    );
}

fn reader_error(dir: &Path) -> JournalError {
    let mut r = Reader::open(dir, 1).unwrap();
    loop {
        match r.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("reader reached the end without noticing damage"),
            Err(e) => return e,
        }
    }
}

#[test]
fn bad_checksum_in_an_older_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    let victim = &segs[1];
    let (off, len) = record_offsets(victim)[2];
    let mut bytes = fs::read(victim).unwrap();
    bytes[(off + len - 1) as usize] ^= 0xFF; // last payload byte
    fs::write(victim, &bytes).unwrap();

    assert_corrupt(
        Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)).unwrap_err(),
        victim,
        off,
    );
    assert_corrupt(reader_error(tmp.path()), victim, off);
    // Nothing was "repaired": the damaged file is untouched.
    assert_eq!(fs::read(victim).unwrap(), bytes);
}

#[test]
fn truncated_older_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    let victim = &segs[0];
    let (off, _) = *record_offsets(victim).last().unwrap();
    OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(off + 3)
        .unwrap();
    assert_corrupt(
        Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)).unwrap_err(),
        victim,
        off,
    );
    assert_corrupt(reader_error(tmp.path()), victim, off);
}

#[test]
fn missing_middle_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    fs::remove_file(&segs[1]).unwrap();
    assert_corrupt(
        Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)).unwrap_err(),
        &segs[2],
        0,
    );
    // The reader names the missing file.
    assert_corrupt(reader_error(tmp.path()), &segs[1], 0);
}

#[test]
fn damaged_header_of_an_older_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    let mut bytes = fs::read(&segs[1]).unwrap();
    bytes[9] ^= 0x01; // inside first_seq
    fs::write(&segs[1], &bytes).unwrap();
    assert_corrupt(
        Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)).unwrap_err(),
        &segs[1],
        0,
    );
}

#[test]
fn damaged_header_of_the_newest_segment_with_records_is_an_error() {
    // Headers are synced before any record is written, so a bad header in
    // front of records is damage, not a torn write.
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    let newest = segs.last().unwrap();
    assert!(!record_offsets(newest).is_empty());
    let mut bytes = fs::read(newest).unwrap();
    bytes[0] = b'X';
    fs::write(newest, &bytes).unwrap();
    assert_corrupt(
        Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)).unwrap_err(),
        newest,
        0,
    );
}

#[test]
fn unknown_format_version_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    let mut bytes = fs::read(&segs[0]).unwrap();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..16]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    fs::write(&segs[0], &bytes).unwrap();
    match Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)) {
        Err(JournalError::UnsupportedVersion { path, version }) => {
            assert_eq!((path.as_path(), version), (segs[0].as_path(), 2));
        }
        other => panic!("expected UnsupportedVersion, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn out_of_sequence_record_in_an_older_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    let victim = &segs[1];
    let recs = record_offsets(victim);
    // Replace the second record by a valid copy of the first one.
    let (first_off, first_len) = recs[0];
    let (second_off, _) = recs[1];
    let bytes = fs::read(victim).unwrap();
    let mut damaged = bytes[..second_off as usize].to_vec();
    damaged.extend_from_slice(&bytes[first_off as usize..(first_off + first_len) as usize]);
    fs::write(victim, &damaged).unwrap();
    let err = Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)).unwrap_err();
    assert!(err.to_string().contains("sequence"), "{err}");
    assert_corrupt(err, victim, second_off);
}

#[test]
fn segment_renamed_out_of_place_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = base(tmp.path());
    let wrong = tmp
        .path()
        .join(format!("{:020}.sgj", first_seq_of(&segs[1]) + 1));
    fs::rename(&segs[1], &wrong).unwrap();
    let err = Journal::open(tmp.path(), opts(SEGMENT_BYTES, false)).unwrap_err();
    assert!(err.to_string().contains("file name"), "{err}");
    assert_corrupt(err, &wrong, 0);
}
