mod common;

use std::fs;

use common::*;
use simguard_journal::{Journal, JournalError, JournalOptions, Reader, MAX_PAYLOAD_LEN};

#[test]
fn round_trip_across_segment_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal"); // does not exist yet: open must create it
    let segment_bytes = 2048;
    let n = 600;
    {
        let (mut j, rec) = Journal::open(&dir, opts(segment_bytes, true)).unwrap();
        assert_eq!((rec.records, rec.last_seq, rec.segments), (0, 0, 1));
        let mut batch = 0;
        for seq in 1..=n {
            assert_eq!(j.append(&payload(seq)).unwrap(), seq);
            batch += 1;
            // Irregular batch sizes, including single-record commits.
            if batch == (seq % 17) + 1 {
                let before = j.durable_seq();
                let stats = j.commit().unwrap();
                assert_eq!(stats.records, batch);
                assert_eq!((stats.first_seq, stats.last_seq), (before + 1, seq));
                assert_eq!(j.durable_seq(), seq);
                assert_eq!(j.pending(), 0);
                batch = 0;
            }
        }
        j.commit().unwrap();
        assert_eq!((j.last_seq(), j.durable_seq()), (n, n));
    }

    let segs = segments(&dir);
    assert!(segs.len() >= 10, "expected many rolls, got {}", segs.len());
    // Segments are contiguous, named for their first record, and only exceed
    // segment_bytes by their last record.
    let mut next = 1;
    for s in &segs {
        assert_eq!(first_seq_of(s), next);
        let recs = record_offsets(s);
        next += recs.len() as u64;
        let size = fs::metadata(s).unwrap().len();
        if let Some(&(last_off, _)) = recs.last() {
            assert!(
                last_off < segment_bytes,
                "{} grew past the limit",
                s.display()
            );
        }
        assert!(size >= SEGMENT_HEADER_LEN);
    }
    assert_eq!(next, n + 1);

    assert_eq!(replay_all(&dir, 1).unwrap(), expected(1, n));
    assert_eq!(replay_all(&dir, 0).unwrap(), expected(1, n));
    assert_eq!(replay_all(&dir, 333).unwrap(), expected(333, n));
    assert_eq!(replay_all(&dir, n).unwrap(), expected(n, n));
    assert_eq!(replay_all(&dir, n + 1).unwrap(), vec![]);

    // Reader API gives the same.
    let mut r = Reader::open(&dir, 100).unwrap();
    let mut got = Vec::new();
    while let Some((seq, p)) = r.next().unwrap() {
        got.push((seq, p.to_vec()));
    }
    assert_eq!(got, expected(100, n));
    assert_eq!(r.next_seq(), n + 1);

    // Reopen: clean recovery, appends continue the sequence.
    let (mut j, rec) = Journal::open(&dir, opts(segment_bytes, true)).unwrap();
    assert_eq!(rec.records, n);
    assert_eq!(rec.last_seq, n);
    assert_eq!(rec.segments, segs.len());
    assert_eq!(rec.truncated_bytes, 0);
    assert!(rec.truncated_at.is_none());
    assert_eq!(j.append(b"after reopen").unwrap(), n + 1);
    j.commit().unwrap();
    drop(j);
    let all = replay_all(&dir, n).unwrap();
    assert_eq!(all[1], (n + 1, b"after reopen".to_vec()));
}

#[test]
fn append_with_encodes_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(tmp.path(), opts(1 << 20, false)).unwrap();
    assert_eq!(j.append(b"first").unwrap(), 1);
    let seq = j
        .append_with(|buf| {
            buf.extend_from_slice(b"sec");
            buf.push(b'o');
            buf.extend_from_slice(b"nd");
        })
        .unwrap();
    assert_eq!(seq, 2);
    assert_eq!(j.append_with(|_| {}).unwrap(), 3); // empty payload
    j.commit().unwrap();
    assert_eq!(
        replay_all(tmp.path(), 1).unwrap(),
        vec![(1, b"first".to_vec()), (2, b"second".to_vec()), (3, vec![])]
    );
}

#[test]
fn too_large_payload_is_rejected_without_using_a_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(tmp.path(), opts(1 << 20, false)).unwrap();
    let big = vec![7u8; MAX_PAYLOAD_LEN + 1];
    assert!(
        matches!(j.append(&big), Err(JournalError::TooLarge { len }) if len == MAX_PAYLOAD_LEN + 1)
    );
    let err = j.append_with(|b| b.extend_from_slice(&big)).unwrap_err();
    assert!(matches!(err, JournalError::TooLarge { .. }));
    assert!(err.to_string().contains("maximum"), "{err}");
    assert_eq!(j.append(b"ok").unwrap(), 1);
    // Exactly the maximum is allowed and survives a round trip.
    let max = vec![9u8; MAX_PAYLOAD_LEN];
    assert_eq!(j.append(&max).unwrap(), 2);
    j.commit().unwrap();
    let all = replay_all(tmp.path(), 1).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1, b"ok");
    assert_eq!(all[1].1, max);
}

#[test]
fn empty_commit_is_a_no_op_and_uncommitted_records_are_invisible() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(tmp.path(), JournalOptions::default()).unwrap();
    let stats = j.commit().unwrap();
    assert_eq!((stats.records, stats.bytes, stats.first_seq), (0, 0, 0));
    j.append(b"a").unwrap();
    j.append(b"b").unwrap();
    assert_eq!((j.pending(), j.last_seq(), j.durable_seq()), (2, 2, 0));
    // Appended but not committed: not on disk for readers.
    assert_eq!(replay_all(tmp.path(), 1).unwrap(), vec![]);
    let stats = j.commit().unwrap();
    assert_eq!(stats.records, 2);
    assert_eq!(stats.bytes, 2 * (RECORD_HEADER_LEN + 1));
    assert_eq!(replay_all(tmp.path(), 1).unwrap().len(), 2);
    assert_eq!(j.dir(), tmp.path());
}

#[test]
fn replay_stops_with_the_callers_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_journal(tmp.path(), opts(512, false), 50, 7);
    #[derive(Debug)]
    enum E {
        Stop(u64),
        J(JournalError),
    }
    impl From<JournalError> for E {
        fn from(e: JournalError) -> Self {
            E::J(e)
        }
    }
    let mut seen = 0;
    let r = Journal::replay(tmp.path(), 1, |seq, _| {
        seen += 1;
        if seq == 20 {
            Err(E::Stop(seq))
        } else {
            Ok(())
        }
    });
    assert!(matches!(r, Err(E::Stop(20))));
    assert_eq!(seen, 20);
    let missing = tmp.path().join("nope");
    assert!(matches!(
        Journal::replay(&missing, 1, |_, _| Ok::<(), E>(())),
        Err(E::J(JournalError::Io { .. }))
    ));
}

#[test]
fn stray_files_in_the_directory_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    write_journal(tmp.path(), opts(512, false), 30, 4);
    fs::write(tmp.path().join("README"), b"operator notes").unwrap();
    fs::write(tmp.path().join("00000000000000000001.sgj.bak"), b"junk").unwrap();
    let (_j, rec) = Journal::open(tmp.path(), opts(512, false)).unwrap();
    assert_eq!(rec.last_seq, 30);
    assert_eq!(replay_all(tmp.path(), 1).unwrap(), expected(1, 30));
}
