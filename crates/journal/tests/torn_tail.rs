//! Crash simulation: the newest segment is cut or garbled after a commit.

mod common;

use std::fs::{self, OpenOptions};
use std::path::Path;

use common::*;
use simguard_journal::Journal;

const SEGMENT_BYTES: u64 = 1024;
const N: u64 = 100;

/// A committed journal with several segments; returns the newest segment's
/// path and the (offset, len) of its records.
fn base(dir: &Path) -> (std::path::PathBuf, Vec<(u64, u64)>) {
    write_journal(dir, opts(SEGMENT_BYTES, false), N, 9);
    let segs = segments(dir);
    assert!(segs.len() >= 3, "want several segments, got {}", segs.len());
    let newest = segs.last().unwrap().clone();
    let recs = record_offsets(&newest);
    assert!(
        recs.len() >= 2,
        "newest segment needs two records, has {}",
        recs.len()
    );
    (newest, recs)
}

/// Reopens a damaged copy and checks recovery, continued appends and replay.
fn check_recovers_to(dir: &Path, survivors: u64, cut_bytes: u64, cut_at: Option<(&Path, u64)>) {
    let (mut j, rec) = Journal::open(dir, opts(SEGMENT_BYTES, true)).unwrap();
    assert_eq!(rec.last_seq, survivors);
    assert_eq!(rec.records, survivors);
    assert_eq!(rec.truncated_bytes, cut_bytes);
    assert_eq!(
        rec.truncated_at.as_ref().map(|(p, o)| (p.as_path(), *o)),
        cut_at
    );
    assert_eq!(j.last_seq(), survivors);
    assert_eq!(j.durable_seq(), survivors);
    assert_eq!(j.append(b"after-crash").unwrap(), survivors + 1);
    j.commit().unwrap();
    drop(j);

    let mut want = expected(1, survivors);
    want.push((survivors + 1, b"after-crash".to_vec()));
    assert_eq!(replay_all(dir, 1).unwrap(), want);
    // A second recovery finds nothing left to repair.
    let (_j, rec) = Journal::open(dir, opts(SEGMENT_BYTES, true)).unwrap();
    assert_eq!((rec.last_seq, rec.truncated_bytes), (survivors + 1, 0));
    assert!(rec.truncated_at.is_none());
}

#[test]
fn truncation_at_every_offset_of_the_last_two_records() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    let (newest, recs) = base(&base_dir);
    let name = newest.file_name().unwrap().to_owned();
    let (prev_off, prev_len) = recs[recs.len() - 2];
    let (last_off, last_len) = recs[recs.len() - 1];
    let file_len = last_off + last_len;
    assert_eq!(prev_off + prev_len, last_off);

    let mut checked = 0;
    for cut in prev_off..=file_len {
        let dir = tmp.path().join(format!("cut-{cut}"));
        copy_dir(&base_dir, &dir);
        let seg = dir.join(&name);
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();

        // The last complete record decides what survives.
        let (survivors, keep) = if cut == file_len {
            (N, file_len)
        } else if cut >= last_off {
            (N - 1, last_off)
        } else {
            (N - 2, prev_off)
        };
        let cut_bytes = cut - keep;
        let at = (cut_bytes > 0).then_some((seg.as_path(), keep));
        check_recovers_to(&dir, survivors, cut_bytes, at);
        fs::remove_dir_all(&dir).unwrap();
        checked += 1;
    }
    assert_eq!(checked, prev_len + last_len + 1);
}

#[test]
fn flipped_byte_anywhere_in_the_last_record() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    let (newest, recs) = base(&base_dir);
    let name = newest.file_name().unwrap().to_owned();
    let (last_off, last_len) = *recs.last().unwrap();
    // Every byte: length, checksum, sequence number and payload.
    for i in 0..last_len {
        let dir = tmp.path().join(format!("flip-{i}"));
        copy_dir(&base_dir, &dir);
        let seg = dir.join(&name);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[(last_off + i) as usize] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();
        check_recovers_to(&dir, N - 1, last_len, Some((seg.as_path(), last_off)));
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (newest, recs) = base(tmp.path());
    let (last_off, last_len) = *recs.last().unwrap();
    let mut bytes = fs::read(&newest).unwrap();
    // Zeros are what a filesystem shows for a size update whose data was lost.
    bytes.extend_from_slice(&[0u8; 37]);
    fs::write(&newest, &bytes).unwrap();
    check_recovers_to(
        tmp.path(),
        N,
        37,
        Some((newest.as_path(), last_off + last_len)),
    );
}

#[test]
fn segment_whose_creation_was_interrupted_is_removed() {
    // A roll died after creating the next segment file but before its header was durable.
    for (case, content) in [
        ("empty", vec![]),
        ("half-header", b"SGJ1\x01\x00\x00\x00\x65\x00".to_vec()),
        ("garbage-header", vec![0xAB; 20]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        base(tmp.path());
        let torn = tmp.path().join(format!("{:020}.sgj", N + 1));
        fs::write(&torn, &content).unwrap();
        let (mut j, rec) = Journal::open(tmp.path(), opts(SEGMENT_BYTES, true)).unwrap();
        assert_eq!(rec.last_seq, N, "{case}");
        assert_eq!(rec.truncated_bytes, content.len() as u64, "{case}");
        assert_eq!(rec.truncated_at, Some((torn.clone(), 0)), "{case}");
        assert!(
            !torn.exists() || fs::metadata(&torn).unwrap().len() >= 20,
            "{case}"
        );
        assert_eq!(j.append(b"x").unwrap(), N + 1, "{case}");
        j.commit().unwrap();
        drop(j);
        let all = replay_all(tmp.path(), 1).unwrap();
        assert_eq!(all.len() as u64, N + 1, "{case}");
        assert_eq!(all[..N as usize], expected(1, N)[..], "{case}");
    }
}

#[test]
fn header_only_newest_segment_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    write_journal(tmp.path(), opts(SEGMENT_BYTES, false), N, 9);
    let newest = segments(tmp.path()).last().unwrap().clone();
    let recs = record_offsets(&newest);
    // Cut to exactly the header: every record of the newest segment is a torn tail.
    let removed: u64 = recs.iter().map(|r| r.1).sum();
    OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(SEGMENT_HEADER_LEN)
        .unwrap();
    let survivors = first_seq_of(&newest) - 1;
    let (j, rec) = Journal::open(tmp.path(), opts(SEGMENT_BYTES, true)).unwrap();
    assert_eq!((rec.last_seq, rec.truncated_bytes), (survivors, 0));
    assert_eq!(j.last_seq(), survivors);
    drop(j);
    assert_eq!(replay_all(tmp.path(), 1).unwrap(), expected(1, survivors));
    assert!(removed > 0);
    check_recovers_to(tmp.path(), survivors, 0, None);
}

#[test]
fn valid_record_with_the_wrong_sequence_is_cut() {
    // A record whose checksum is fine but which repeats the previous sequence
    // number (as a double-written retry would) is not accepted as the next one.
    let tmp = tempfile::tempdir().unwrap();
    let (newest, recs) = base(tmp.path());
    let (last_off, last_len) = *recs.last().unwrap();
    let mut bytes = fs::read(&newest).unwrap();
    let dup = bytes[last_off as usize..(last_off + last_len) as usize].to_vec();
    bytes.extend_from_slice(&dup);
    fs::write(&newest, &bytes).unwrap();
    check_recovers_to(
        tmp.path(),
        N,
        last_len,
        Some((newest.as_path(), last_off + last_len)),
    );
}
