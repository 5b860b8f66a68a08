//! The audit trail: written with batches, idempotent under replay, read
//! newest first with filters, scoping, cursors and joined results.

use simguard_engine::rules::{Action, ActionKind, ActionResult, RuleMode};
use simguard_engine::{Digits, Finding, Lifecycle};
use simguard_store::{AuditCursor, AuditFilter, Store, StoreBatch};

const T0: i64 = 1_795_305_600_000;

fn imsi(s: &str) -> Digits {
    Digits::parse(s).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn action(
    seq: u64,
    dev: &str,
    tenant: Option<&str>,
    actor: &str,
    rule: Option<&str>,
    kind: ActionKind,
    mode: RuleMode,
    time: i64,
) -> Action {
    let enforce = mode == RuleMode::Enforce && kind != ActionKind::Notify;
    Action {
        id: Finding::make_id(seq, 0),
        time,
        imsi: imsi(dev),
        tenant: tenant.map(str::to_string),
        group: tenant.map(|t| format!("{t}-meters")),
        actor: actor.into(),
        rule: rule.map(str::to_string),
        kind,
        mode,
        reason: format!("reason {seq}"),
        finding: rule.map(|_| Finding::make_id(seq - 1, 0)),
        from: Some(Lifecycle::Active),
        to: Some(if enforce {
            kind.target(Lifecycle::Active).unwrap_or(Lifecycle::Active)
        } else {
            Lifecycle::Active
        }),
        expires: (kind == ActionKind::Block).then_some(time + 3_600_000),
        step: (seq % 3) as u8,
        enforce,
    }
}

fn result(action: u64, dev: &str, what: &str, time: i64) -> ActionResult {
    ActionResult {
        action,
        time,
        imsi: imsi(dev),
        result: what.into(),
        detail: format!("{what} from pgw-1"),
        attempts: 2,
        sent: vec!["Disconnect-Request to pgw-1".into(), "retransmitted".into()],
    }
}

/// Six actions over three devices and two tenants (one unprovisioned),
/// seqs 10, 20 .. 60, one minute apart; results for the first block.
fn corpus() -> (Vec<Action>, Vec<(u64, ActionResult)>) {
    use ActionKind::*;
    use RuleMode::*;
    let m = 60_000;
    let a = vec![
        action(
            10,
            "901700000000001",
            Some("acme"),
            "rule:scan",
            Some("scan"),
            Block,
            Enforce,
            T0 + m,
        ),
        action(
            20,
            "901700000000001",
            Some("acme"),
            "user:alice",
            None,
            Unblock,
            Enforce,
            T0 + 2 * m,
        ),
        action(
            30,
            "901700000000002",
            Some("acme"),
            "rule:vol",
            Some("vol"),
            Throttle { kbps: 64 },
            DryRun,
            T0 + 3 * m,
        ),
        action(
            40,
            "901700000000009",
            Some("globex"),
            "rule:scan",
            Some("scan"),
            Quarantine,
            Enforce,
            T0 + 3 * m,
        ),
        action(
            50,
            "901709999999999",
            None,
            "user:ops",
            None,
            SetLifecycle {
                state: Lifecycle::Retired,
            },
            Enforce,
            T0 + 4 * m,
        ),
        action(
            60,
            "901700000000002",
            Some("acme"),
            "rule:vol (expiry)",
            Some("vol"),
            Notify,
            Enforce,
            T0 + 5 * m,
        ),
    ];
    let r = vec![
        (
            11,
            result(a[0].id, "901700000000001", "timeout", T0 + m + 5_000),
        ),
        (
            12,
            result(a[0].id, "901700000000001", "ack", T0 + m + 9_000),
        ),
    ];
    (a, r)
}

fn seqs(entries: &[simguard_store::AuditEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.action.id >> 8).collect()
}

#[test]
fn actions_and_results_are_stored_once_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    let (actions, results) = corpus();
    let batch = StoreBatch {
        seq: 60,
        actions: actions.clone(),
        action_results: results.clone(),
        ..Default::default()
    };
    assert!(!batch.is_empty());
    let applied = s.apply_batch(&batch).unwrap();
    assert_eq!(applied.new_actions, 6);
    // A replay in a later batch (the store lost its applied_seq, say):
    // nothing is inserted twice.
    let again = StoreBatch { seq: 61, ..batch };
    assert_eq!(s.apply_batch(&again).unwrap().new_actions, 0);
    let r = Store::open_reader(&path).unwrap();
    assert_eq!(r.audit_rows().unwrap(), (6, 2));

    let all = r.audit(&AuditFilter::default(), None, 100).unwrap();
    assert_eq!(seqs(&all), vec![60, 50, 40, 30, 20, 10], "newest first");
    // Every field survives the round trip, results in arrival order.
    let first = all.last().unwrap();
    assert_eq!(first.action, actions[0]);
    assert_eq!(first.results.len(), 2);
    assert_eq!((first.results[0].seq, first.results[1].seq), (11, 12));
    assert_eq!(first.results[0].result, results[0].1);
    assert_eq!(first.results[1].result, results[1].1);
    for (e, a) in all.iter().rev().zip(&actions) {
        assert_eq!(&e.action, a);
    }
    assert!(all[0].results.is_empty());
    let one = r.action(actions[0].id).unwrap().unwrap();
    assert_eq!(one, *first);
    assert!(r.action(12345).unwrap().is_none());
}

#[test]
fn filters_scope_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    let (actions, results) = corpus();
    s.apply_batch(&StoreBatch {
        seq: 60,
        actions,
        action_results: results,
        ..Default::default()
    })
    .unwrap();
    let r = Store::open_reader(&path).unwrap();
    let q = |f: AuditFilter| seqs(&r.audit(&f, None, 100).unwrap());
    let m = 60_000;
    assert_eq!(
        q(AuditFilter {
            imsi: Some(imsi("901700000000001")),
            ..Default::default()
        }),
        vec![20, 10]
    );
    assert_eq!(
        q(AuditFilter {
            tenant: Some("acme".into()),
            ..Default::default()
        }),
        vec![60, 30, 20, 10]
    );
    assert_eq!(
        q(AuditFilter {
            group: Some("globex-meters".into()),
            ..Default::default()
        }),
        vec![40]
    );
    assert_eq!(
        q(AuditFilter {
            actor: Some("user:alice".into()),
            ..Default::default()
        }),
        vec![20]
    );
    assert_eq!(
        q(AuditFilter {
            rule: Some("vol".into()),
            ..Default::default()
        }),
        vec![60, 30],
        "a rule's own actions and its expiries"
    );
    assert_eq!(
        q(AuditFilter {
            action: Some("throttle".into()),
            ..Default::default()
        }),
        vec![30]
    );
    assert_eq!(
        q(AuditFilter {
            mode: Some(RuleMode::DryRun),
            ..Default::default()
        }),
        vec![30]
    );
    assert_eq!(
        q(AuditFilter {
            since: Some(T0 + 3 * m),
            until: Some(T0 + 5 * m),
            ..Default::default()
        }),
        vec![50, 40, 30]
    );
    // Scope: a tenant's caller never sees another tenant's or tenantless
    // actions, whatever the tenant filter says.
    let acme = AuditFilter {
        scope: Some("acme".into()),
        ..Default::default()
    };
    assert_eq!(q(acme.clone()), vec![60, 30, 20, 10]);
    assert_eq!(
        q(AuditFilter {
            tenant: Some("globex".into()),
            ..acme.clone()
        }),
        Vec::<u64>::new()
    );
    assert_eq!(
        q(AuditFilter {
            imsi: Some(imsi("901709999999999")),
            ..acme
        }),
        Vec::<u64>::new()
    );

    // Pages of two, with ties on time (30 and 40) broken by id.
    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let page = r.audit(&AuditFilter::default(), cursor, 2).unwrap();
        if page.is_empty() {
            break;
        }
        got.extend(seqs(&page));
        let last = &page.last().unwrap().action;
        let c = AuditCursor {
            time: last.time,
            id: last.id,
        };
        assert_eq!(c.to_string().parse::<AuditCursor>().unwrap(), c);
        cursor = Some(c);
    }
    assert_eq!(got, vec![60, 50, 40, 30, 20, 10]);
    assert!("12".parse::<AuditCursor>().is_err());
}

#[test]
fn the_audit_tables_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (actions, _) = corpus();
    {
        let mut s = Store::open(&path).unwrap();
        s.apply_batch(&StoreBatch {
            seq: 5,
            actions: actions[..2].to_vec(),
            ..Default::default()
        })
        .unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    let a = s
        .apply_batch(&StoreBatch {
            seq: 6,
            actions: actions.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(a.new_actions, 4, "the two stored before are ignored");
    let r = Store::open_reader(&path).unwrap();
    assert_eq!(r.audit_rows().unwrap(), (6, 0));
}
