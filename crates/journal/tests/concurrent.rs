//! A reader tailing the journal while a writer appends, commits and rolls.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use simguard_journal::{Journal, Reader};

#[test]
fn reader_follows_a_live_writer_across_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let total: u64 = 4000;
    let durable = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(2));
    // Small segments so the writer rolls many times under the reader; real
    // fsyncs so commits take as long as in production.
    let (mut j, _) = Journal::open(&dir, opts(8 * 1024, true)).unwrap();

    let writer = {
        let durable = Arc::clone(&durable);
        let start = Arc::clone(&start);
        thread::spawn(move || {
            start.wait();
            let mut seq = 0;
            let mut batch = 1;
            while seq < total {
                for _ in 0..batch.min(total - seq) {
                    seq += 1;
                    assert_eq!(j.append(&payload(seq)).unwrap(), seq);
                }
                j.commit().unwrap();
                durable.store(j.durable_seq(), Ordering::Release);
                batch = batch % 37 + 1;
                if seq % 500 < 37 {
                    thread::yield_now();
                }
            }
            j
        })
    };

    let mut r = Reader::open(&dir, 1).unwrap();
    start.wait();
    let mut next = 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut empty_polls = 0u64;
    while next <= total {
        assert!(Instant::now() < deadline, "reader stuck at {next}");
        // Everything committed before this call must be readable by it.
        let durable_before = durable.load(Ordering::Acquire);
        match r.next().unwrap() {
            Some((seq, p)) => {
                assert_eq!(seq, next);
                assert_eq!(p, payload(seq).as_slice(), "payload of {seq}");
                next += 1;
            }
            None => {
                assert!(
                    next > durable_before,
                    "reader stopped at {next} although {durable_before} were committed"
                );
                empty_polls += 1;
                thread::sleep(Duration::from_micros(50));
            }
        }
    }
    let j = writer.join().unwrap();
    assert!(r.next().unwrap().is_none());
    assert!(segments(&dir).len() > 10, "writer should have rolled");
    // The reader really did chase the writer rather than read a finished journal.
    assert!(empty_polls > 0);
    eprintln!("reader caught up with the writer {empty_polls} times");

    // A replay started while the writer is still open sees everything too.
    assert_eq!(replay_all(&dir, 1).unwrap().len() as u64, total);
    drop(j);
}

#[test]
fn reader_opened_before_any_segment_exists_waits_for_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Reader::open(tmp.path(), 1).unwrap();
    assert!(r.next().unwrap().is_none());
    let (mut j, _) = Journal::open(tmp.path(), opts(1 << 20, false)).unwrap();
    assert!(r.next().unwrap().is_none());
    j.append(b"hello").unwrap();
    assert!(
        r.next().unwrap().is_none(),
        "uncommitted record must not be visible"
    );
    j.commit().unwrap();
    assert_eq!(r.next().unwrap(), Some((1, &b"hello"[..])));
    assert!(r.next().unwrap().is_none());
}
