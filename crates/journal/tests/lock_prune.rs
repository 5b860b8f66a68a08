mod common;

use common::*;
use simguard_journal::{Journal, JournalError};

#[test]
fn second_writer_is_locked_out_until_the_first_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut first, _) = Journal::open(tmp.path(), opts(4096, false)).unwrap();
    first.append(b"one").unwrap();
    first.commit().unwrap();

    let err = Journal::open(tmp.path(), opts(4096, false)).unwrap_err();
    match &err {
        JournalError::Locked { dir } => assert_eq!(dir, tmp.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("another simguard"), "{msg}");
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    // The lock file names the holder for operators.
    let pid = std::fs::read_to_string(first.lock_path()).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());

    // The failed open did not disturb the first writer.
    first.append(b"two").unwrap();
    first.commit().unwrap();
    drop(first);

    let (mut second, rec) = Journal::open(tmp.path(), opts(4096, false)).unwrap();
    assert_eq!(rec.last_seq, 2);
    assert_eq!(second.append(b"three").unwrap(), 3);
    second.commit().unwrap();
}

#[test]
fn prune_deletes_only_whole_older_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 300;
    let segment_bytes = 1024;
    let (mut j, _) = Journal::open(tmp.path(), opts(segment_bytes, true)).unwrap();
    for seq in 1..=n {
        j.append(&payload(seq)).unwrap();
        if seq % 8 == 0 {
            j.commit().unwrap();
        }
    }
    j.commit().unwrap();
    let before = segments(tmp.path());
    assert!(before.len() >= 8, "{}", before.len());
    let firsts: Vec<u64> = before.iter().map(|p| first_seq_of(p)).collect();

    // Prune exactly at a segment boundary, then strictly inside a segment.
    let boundary = firsts[3];
    assert_eq!(j.prune_before(boundary).unwrap(), 3);
    assert_eq!(segments(tmp.path()), before[3..].to_vec());
    let inside = firsts[5] + 1;
    assert!(inside < firsts[6]);
    // Segment 5 still holds `firsts[5]`, which is below `inside` but must stay
    // because segment 5 also holds `inside` itself.
    assert_eq!(j.prune_before(inside).unwrap(), 2);
    assert_eq!(segments(tmp.path()), before[5..].to_vec());
    assert_eq!(j.prune_before(inside).unwrap(), 0);

    assert_eq!(replay_all(tmp.path(), inside).unwrap(), expected(inside, n));
    assert_eq!(
        replay_all(tmp.path(), firsts[5]).unwrap(),
        expected(firsts[5], n)
    );
    match replay_all(tmp.path(), firsts[5] - 1) {
        Err(JournalError::Pruned {
            requested,
            first_available,
            ..
        }) => assert_eq!((requested, first_available), (firsts[5] - 1, firsts[5])),
        other => panic!("expected Pruned, got {other:?}"),
    }

    // Pruning everything keeps the active segment, and writing goes on.
    let deleted = j.prune_before(u64::MAX).unwrap();
    assert_eq!(deleted, before.len() - 6);
    let left = segments(tmp.path());
    assert_eq!(left, vec![before.last().unwrap().clone()]);
    assert_eq!(j.append(b"still writing").unwrap(), n + 1);
    j.commit().unwrap();
    drop(j);

    // Recovery accepts a journal that no longer starts at 1, and pruning
    // works on segments discovered by recovery, not just those rolled in-process.
    let (mut j, rec) = Journal::open(tmp.path(), opts(256, true)).unwrap();
    assert_eq!(rec.last_seq, n + 1);
    assert_eq!(rec.segments, 1);
    let active_first = first_seq_of(&left[0]);
    for seq in n + 2..=n + 40 {
        j.append(&payload(seq)).unwrap();
        j.commit().unwrap();
    }
    drop(j);
    let (mut j, rec) = Journal::open(tmp.path(), opts(256, true)).unwrap();
    assert!(rec.segments > 2);
    assert_eq!(rec.records, n + 40 - active_first + 1);
    let deleted = j.prune_before(n + 30).unwrap();
    assert!(deleted >= 1);
    let oldest = first_seq_of(&segments(tmp.path())[0]);
    assert!(oldest <= n + 30);
    let got = replay_all(tmp.path(), oldest).unwrap();
    assert_eq!(got.first().unwrap().0, oldest);
    assert_eq!(got.last().unwrap().0, n + 40);
}
