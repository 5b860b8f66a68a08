use simguard_engine::event::FlowRecord;
use simguard_engine::{Digits, Evidence, Fact, Finding, FindingKind, RecordRef, Severity, Subject};
use simguard_store::{FindingCursor, FindingFilter, FindingsRetention, Store, StoreBatch};

const HOUR: i64 = 3_600_000;

fn finding(
    seq: u64,
    kind: FindingKind,
    imsi: &str,
    tenant: &str,
    sev: Severity,
    time: i64,
) -> Finding {
    Finding {
        id: Finding::make_id(seq, 0),
        kind,
        subject: Subject::Device(Digits::parse(imsi).unwrap()),
        tenant: Some(tenant.into()),
        group: Some(format!("{tenant}-meters")),
        severity: sev,
        time,
        onset: time - 60_000,
        confidence: 87,
        evidence: Evidence {
            summary: format!("{kind} on {imsi}"),
            facts: vec![Fact {
                name: "bytes_per_day".into(),
                observed: "5000000".into(),
                expected: Some("<= 1000000".into()),
            }],
            baseline: "declared profile of group meters".into(),
            records: vec![RecordRef {
                seq,
                time,
                what: "interim".into(),
                detail: "session 1".into(),
            }],
            flows: vec![FlowRecord {
                start: time - 1000,
                end: time,
                src: "10.0.0.1".parse().unwrap(),
                dst: "192.0.2.7".parse().unwrap(),
                src_port: 40000,
                dst_port: 23,
                proto: 6,
                tcp_flags: 2,
                bytes: 60,
                packets: 1,
                sampling: 1,
            }],
        },
    }
}

fn batch(seq: u64, findings: Vec<Finding>) -> StoreBatch {
    StoreBatch {
        seq,
        findings,
        ..Default::default()
    }
}

fn ids(v: &[Finding]) -> Vec<u64> {
    v.iter().map(|f| f.id >> 8).collect()
}

/// Five findings at seqs 1..=5, two tenants, various kinds and severities.
fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("s.db")).unwrap();
    let f = vec![
        finding(
            1,
            FindingKind::DeclaredVolume,
            "901700000000001",
            "acme",
            Severity::Warning,
            HOUR,
        ),
        finding(
            2,
            FindingKind::Scanning,
            "901700000000001",
            "acme",
            Severity::Critical,
            2 * HOUR,
        ),
        finding(
            3,
            FindingKind::Roaming,
            "901700000000002",
            "acme",
            Severity::Major,
            3 * HOUR,
        ),
        finding(
            4,
            FindingKind::Scanning,
            "901700000000009",
            "globex",
            Severity::Minor,
            3 * HOUR,
        ),
        finding(
            5,
            FindingKind::Silent,
            "901700000000002",
            "acme",
            Severity::Major,
            4 * HOUR,
        ),
    ];
    let a = s.apply_batch(&batch(5, f)).unwrap();
    assert!(a.written);
    assert_eq!(a.new_findings.len(), 5);
    (dir, s)
}

#[test]
fn findings_round_trip_with_their_evidence() {
    let (dir, _s) = seeded();
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let want = finding(
        2,
        FindingKind::Scanning,
        "901700000000001",
        "acme",
        Severity::Critical,
        2 * HOUR,
    );
    assert_eq!(r.finding(want.id).unwrap(), Some(want));
    assert_eq!(r.finding(12345).unwrap(), None);
}

#[test]
fn every_filter_narrows() {
    let (dir, _s) = seeded();
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let q = |f: FindingFilter| ids(&r.findings(&f, None, 100).unwrap());
    // Newest first; equal times by id descending.
    assert_eq!(q(FindingFilter::default()), vec![5, 4, 3, 2, 1]);
    assert_eq!(
        q(FindingFilter {
            kinds: vec![FindingKind::Scanning, FindingKind::Silent],
            ..Default::default()
        }),
        vec![5, 4, 2]
    );
    assert_eq!(
        q(FindingFilter {
            min_severity: Some(Severity::Major),
            ..Default::default()
        }),
        vec![5, 3, 2]
    );
    assert_eq!(
        q(FindingFilter {
            tenant: Some("globex".into()),
            ..Default::default()
        }),
        vec![4]
    );
    assert_eq!(
        q(FindingFilter {
            group: Some("acme-meters".into()),
            ..Default::default()
        }),
        vec![5, 3, 2, 1]
    );
    assert_eq!(
        q(FindingFilter {
            imsi: Digits::parse("901700000000002"),
            ..Default::default()
        }),
        vec![5, 3]
    );
    assert_eq!(
        q(FindingFilter {
            since: Some(2 * HOUR),
            until: Some(4 * HOUR),
            ..Default::default()
        }),
        vec![4, 3, 2]
    );
    // A tenant filter cannot widen the caller's scope.
    assert_eq!(
        q(FindingFilter {
            tenant: Some("globex".into()),
            scope: Some("acme".into()),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    // The in-memory test agrees with SQL for each of these.
    let all = r.findings(&FindingFilter::default(), None, 100).unwrap();
    for f in [
        FindingFilter {
            min_severity: Some(Severity::Major),
            scope: Some("acme".into()),
            ..Default::default()
        },
        FindingFilter {
            kinds: vec![FindingKind::Scanning],
            since: Some(3 * HOUR),
            ..Default::default()
        },
    ] {
        let mem: Vec<u64> = all
            .iter()
            .filter(|x| f.matches(x))
            .map(|x| x.id >> 8)
            .collect();
        assert_eq!(mem, q(f.clone()), "{f:?}");
    }
}

#[test]
fn cursor_pages_cover_everything_once() {
    let (dir, _s) = seeded();
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = r.findings(&FindingFilter::default(), cursor, 2).unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(ids(&page));
        let last = page.last().unwrap();
        let c = FindingCursor {
            time: last.time,
            id: last.id,
        };
        assert_eq!(c.to_string().parse::<FindingCursor>().unwrap(), c);
        cursor = Some(c);
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);
    assert!("nope".parse::<FindingCursor>().is_err());
}

#[test]
fn the_same_finding_twice_is_stored_once() {
    let (dir, mut s) = seeded();
    // A replay that re-emits finding 3 in a later batch (as after a store
    // restore): ignored, the stored version kept.
    let mut again = finding(
        3,
        FindingKind::Roaming,
        "901700000000002",
        "acme",
        Severity::Major,
        3 * HOUR,
    );
    again.evidence.summary = "changed".into();
    let a = s
        .apply_batch(&batch(
            6,
            vec![
                again,
                finding(
                    6,
                    FindingKind::SimSwap,
                    "901700000000002",
                    "acme",
                    Severity::Major,
                    5 * HOUR,
                ),
            ],
        ))
        .unwrap();
    assert_eq!(a.new_findings, vec![Finding::make_id(6, 0)]);
    // And the whole batch again is skipped by applied_seq.
    assert!(!s.apply_batch(&batch(6, vec![])).unwrap().written);
    assert_eq!(s.finding_rows(), 6);
    drop(s);
    let s = Store::open(dir.path().join("s.db")).unwrap();
    assert_eq!(s.finding_rows(), 6, "counted again at open");
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let f = r.finding(Finding::make_id(3, 0)).unwrap().unwrap();
    assert_eq!(f.evidence.summary, "roaming on 901700000000002");
}

#[test]
fn findings_after_an_id_come_oldest_first_with_what_the_limit_left_out() {
    let (dir, _s) = seeded();
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let a = r
        .findings_after(&FindingFilter::default(), Finding::make_id(1, 0), 10)
        .unwrap();
    assert_eq!(ids(&a.items), vec![2, 3, 4, 5]);
    assert_eq!(a.left_out, 0);
    let a = r
        .findings_after(&FindingFilter::default(), Finding::make_id(1, 0), 2)
        .unwrap();
    assert_eq!(ids(&a.items), vec![4, 5]);
    assert_eq!(a.left_out, 2);
    let scoped = FindingFilter {
        scope: Some("globex".into()),
        ..Default::default()
    };
    let a = r.findings_after(&scoped, 0, 10).unwrap();
    assert_eq!(ids(&a.items), vec![4]);
}

#[test]
fn counts_by_kind_and_severity() {
    let (dir, _s) = seeded();
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let c = r
        .finding_counts(&FindingFilter {
            scope: Some("acme".into()),
            ..Default::default()
        })
        .unwrap();
    let mut rows = c.rows.clone();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            (FindingKind::DeclaredVolume, Severity::Warning, 1),
            (FindingKind::Roaming, Severity::Major, 1),
            (FindingKind::Scanning, Severity::Critical, 1),
            (FindingKind::Silent, Severity::Major, 1),
        ]
    );
}

#[test]
fn retention_bounds_rows_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("s.db")).unwrap();
    assert_eq!(s.findings_retention(), FindingsRetention::default());
    s.set_findings_retention(FindingsRetention {
        max_rows: 3,
        max_age_ms: 10 * HOUR,
    });
    for seq in 1..=5u64 {
        let f = finding(
            seq,
            FindingKind::Silent,
            "901700000000001",
            "acme",
            Severity::Minor,
            seq as i64 * HOUR,
        );
        s.apply_batch(&batch(seq, vec![f])).unwrap();
    }
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let all = |r: &simguard_store::StoreReader| {
        ids(&r.findings(&FindingFilter::default(), None, 100).unwrap())
    };
    assert_eq!(all(&r), vec![5, 4, 3], "the oldest go first");
    assert_eq!(s.finding_rows(), 3);
    // One finding 11 hours after finding 3: 3 and 4 are older than 10 hours.
    let f = finding(
        6,
        FindingKind::Silent,
        "901700000000001",
        "acme",
        Severity::Minor,
        15 * HOUR,
    );
    let a = s.apply_batch(&batch(6, vec![f])).unwrap();
    assert_eq!(a.pruned_findings, 2);
    assert_eq!(all(&r), vec![6, 5]);
    assert_eq!(s.finding_rows(), 2);
}
