//! Random append/commit/crash histories against an in-memory model.

mod common;

use common::*;
use proptest::prelude::*;
use simguard_journal::Journal;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Commit,
    /// Drop without committing, then reopen: like a process crash.
    Crash,
    /// Prune everything a snapshot at the current durable seq would cover.
    Prune,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Op::Append),
        2 => Just(Op::Commit),
        1 => Just(Op::Crash),
        1 => Just(Op::Prune),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn journal_matches_model(ops in proptest::collection::vec(op(), 1..120), seg in 64u64..1500) {
        let tmp = tempfile::tempdir().unwrap();
        let o = opts(seg, false);
        let (mut j, _) = Journal::open(tmp.path(), o.clone()).unwrap();
        let mut committed: Vec<Vec<u8>> = Vec::new();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut pruned_before = 1u64;

        for op in ops {
            match op {
                Op::Append(p) => {
                    let seq = j.append(&p).unwrap();
                    prop_assert_eq!(seq, (committed.len() + pending.len()) as u64 + 1);
                    pending.push(p);
                }
                Op::Commit => {
                    let stats = j.commit().unwrap();
                    prop_assert_eq!(stats.records, pending.len() as u64);
                    committed.append(&mut pending);
                    prop_assert_eq!(j.durable_seq(), committed.len() as u64);
                }
                Op::Crash => {
                    drop(j);
                    pending.clear();
                    let (reopened, rec) = Journal::open(tmp.path(), o.clone()).unwrap();
                    prop_assert_eq!(rec.last_seq, committed.len() as u64);
                    prop_assert_eq!(rec.truncated_bytes, 0);
                    j = reopened;
                }
                Op::Prune => {
                    j.prune_before(j.durable_seq() + 1).unwrap();
                    let oldest = segments(tmp.path()).iter().map(|p| first_seq_of(p)).min().unwrap();
                    prop_assert!(oldest <= j.durable_seq() + 1);
                    pruned_before = oldest;
                }
            }
            prop_assert_eq!(j.pending(), pending.len() as u64);
            prop_assert_eq!(j.last_seq(), (committed.len() + pending.len()) as u64);
        }

        // Only committed records are on disk, all of them, in order.
        let got = replay_all(tmp.path(), pruned_before).unwrap();
        let want: Vec<(u64, Vec<u8>)> = committed
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64 + 1, p.clone()))
            .filter(|(s, _)| *s >= pruned_before)
            .collect();
        prop_assert_eq!(&got, &want);
        drop(j);
        let (_j, rec) = Journal::open(tmp.path(), o).unwrap();
        prop_assert_eq!(rec.last_seq, committed.len() as u64);
        prop_assert_eq!(replay_all(tmp.path(), pruned_before).unwrap(), want);
    }
}
