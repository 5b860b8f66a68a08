//! Routing alert events into the outbox: subscriptions by tenant, severity
//! and type, one row per recipient, caps folding into a digest, quiet
//! hours, unrouted events, replays, and the worker's bookkeeping
//! (attempts, retries, receipts).

use simguard_engine::{Digits, Severity};
use simguard_store::{
    AlertChange, AlertRaise, AlertSource, AlertState, AlertWriter, AttemptResult, OutboxWriter,
    Routing, Store, StoreBatch, Subscription, CLEARED_USAGE,
};
use std::sync::Arc;

/// 2026-11-22T12:00:00Z, a Sunday noon.
const NOON: i64 = 1_795_348_800_000;
const MIN: i64 = 60_000;

fn raise(seq: u64, dev: &str, tenant: &str, kind: &str, sev: Severity, time: i64) -> AlertChange {
    AlertChange::Raise(AlertRaise {
        source: AlertSource::Finding(seq << 8),
        kind: kind.into(),
        subject_type: "device".into(),
        subject: dev.into(),
        imsi: Some(Digits::parse(dev).unwrap()),
        tenant: Some(tenant.into()),
        group: Some(format!("{tenant}-meters")),
        severity: Some(sev),
        time,
        finding: None,
        summary: format!("{kind} on {dev}"),
    })
}

fn sub(toml_text: &str) -> Subscription {
    toml::from_str(toml_text).unwrap()
}

fn apply(store: &mut Store, seq: u64, alerts: Vec<AlertChange>) {
    store
        .apply_batch(&StoreBatch {
            seq,
            alerts,
            ..StoreBatch::default()
        })
        .unwrap();
}

fn routing(subs: Vec<Subscription>) -> Arc<Routing> {
    Arc::new(Routing {
        subscriptions: subs,
        ..Routing::default()
    })
}

#[test]
fn subscriptions_pick_by_tenant_severity_and_type_one_row_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    store.set_routing(routing(vec![
        sub(r#"name = "soc"
               channel = "siem"
               min_severity = "major""#),
        sub(r#"name = "acme-mail"
               channel = "mail"
               tenant = "acme"
               types = ["silent"]
               recipients = ["ops@acme.example", "lead@acme.example"]"#),
    ]));
    apply(
        &mut store,
        1,
        vec![
            raise(
                1,
                "901700000000001",
                "acme",
                "scanning",
                Severity::Critical,
                NOON,
            ),
            raise(
                2,
                "901700000000002",
                "acme",
                "silent",
                Severity::Minor,
                NOON,
            ),
            raise(
                3,
                "901700000000003",
                "globex",
                "silent",
                Severity::Minor,
                NOON,
            ),
        ],
    );
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let mut rows: Vec<(String, String, String, String)> = r
        .outbox(None)
        .unwrap()
        .into_iter()
        .map(|n| (n.message, n.channel, n.recipient, n.status))
        .collect();
    rows.sort();
    let a1 = AlertSource::Finding(1 << 8).key();
    let a2 = AlertSource::Finding(2 << 8).key();
    let a3 = AlertSource::Finding(3 << 8).key();
    let row = |a: u64, ch: &str, rc: &str, st: &str| {
        (
            format!("{a}.raised"),
            ch.to_string(),
            rc.to_string(),
            st.to_string(),
        )
    };
    let mut want = vec![
        row(a1, "siem", "", "pending"),
        row(a2, "mail", "lead@acme.example", "pending"),
        row(a2, "mail", "ops@acme.example", "pending"),
        // globex's silent alert is minor and not acme's: nobody wants it.
        row(a3, "unrouted", "", "unrouted"),
    ];
    want.sort();
    assert_eq!(rows, want);

    // A replay of the batch adds nothing.
    apply(
        &mut store,
        1,
        vec![raise(
            1,
            "901700000000001",
            "acme",
            "scanning",
            Severity::Critical,
            NOON,
        )],
    );
    assert_eq!(r.outbox(None).unwrap().len(), 4);

    // A person's clear is routed to who wants clears.
    let mut w = AlertWriter::open(dir.path().join("s.db"), store_routing()).unwrap();
    w.clear(a1, "user:x", NOON + MIN).unwrap().unwrap();
    let cleared: Vec<_> = r
        .outbox(Some(a1))
        .unwrap()
        .into_iter()
        .filter(|n| n.event == "cleared")
        .collect();
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0].channel, "siem");
    assert_eq!(cleared[0].id, format!("{a1}.cleared.soc"));
}

fn store_routing() -> Arc<Routing> {
    routing(vec![sub(r#"name = "soc"
                        channel = "siem"
                        min_severity = "major""#)])
}

#[test]
fn over_the_cap_goes_into_one_digest_at_the_window_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    store.set_routing(Arc::new(Routing {
        subscriptions: vec![sub(r#"name = "pager"
                                  channel = "sms"
                                  recipients = ["+4915112345678"]
                                  cap = 3"#)],
        tenant_caps: Default::default(),
        cap_window_ms: 3_600_000,
    }));
    let changes = (0..10u64)
        .map(|i| {
            let dev = format!("90170000000{:04}", i);
            let sev = if i == 7 {
                Severity::Critical
            } else {
                Severity::Minor
            };
            raise(
                10 + i,
                &dev,
                "acme",
                "silent",
                sev,
                NOON + 5 * MIN + i as i64 * MIN,
            )
        })
        .collect();
    apply(&mut store, 1, changes);
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let all = r.outbox(None).unwrap();
    let pending: Vec<_> = all
        .iter()
        .filter(|n| n.event == "raised" && n.status == "pending")
        .collect();
    let folded: Vec<_> = all.iter().filter(|n| n.status == "digested").collect();
    let digests: Vec<_> = all.iter().filter(|n| n.event == "digest").collect();
    assert_eq!(pending.len(), 3, "{all:#?}");
    assert_eq!(folded.len(), 7);
    assert_eq!(digests.len(), 1);
    let d = digests[0];
    // Due at the end of the hour window, with the worst member's severity.
    assert_eq!(d.due, NOON + 3_600_000);
    assert_eq!(d.severity, Severity::Critical);
    assert_eq!(d.recipient, "+4915112345678");
    assert!(folded
        .iter()
        .all(|n| n.digest.as_deref() == Some(d.id.as_str())));
    assert_eq!(r.digest_members(&d.id).unwrap().len(), 7);

    // The next window has a fresh cap.
    apply(
        &mut store,
        2,
        vec![raise(
            40,
            "901700000000040",
            "acme",
            "silent",
            Severity::Minor,
            NOON + 3_600_000,
        )],
    );
    let n = r.outbox(Some(AlertSource::Finding(40 << 8).key())).unwrap();
    assert_eq!(n[0].status, "pending");
}

#[test]
fn tenant_cap_counts_across_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    store.set_routing(Arc::new(Routing {
        subscriptions: vec![
            sub(r#"name = "a"
                   channel = "siem""#),
            sub(r#"name = "b"
                   channel = "mail"
                   recipients = ["x@example.com"]"#),
        ],
        tenant_caps: [("acme".to_string(), 4)].into_iter().collect(),
        cap_window_ms: 0,
    }));
    let changes = (0..3u64)
        .map(|i| {
            raise(
                i + 1,
                &format!("9017000000000{i:02}"),
                "acme",
                "flapping",
                Severity::Major,
                NOON + i as i64,
            )
        })
        .collect();
    apply(&mut store, 1, changes);
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let all = r.outbox(None).unwrap();
    let sent = all
        .iter()
        .filter(|n| n.status == "pending" && n.event != "digest")
        .count();
    let folded = all.iter().filter(|n| n.status == "digested").count();
    assert_eq!((sent, folded), (4, 2), "{all:#?}");
}

#[test]
fn quiet_hours_hold_all_but_critical_until_morning() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    // 22:00-07:00 at UTC+1; 23:30 UTC is 00:30 local.
    store.set_routing(routing(vec![sub(r#"name = "night"
                                          channel = "mail"
                                          recipients = ["ops@example.com"]
                                          quiet_hours = "22:00-07:00"
                                          utc_offset_minutes = 60"#)]));
    let night = NOON + 11 * 60 * MIN + 30 * MIN;
    apply(
        &mut store,
        1,
        vec![
            raise(
                1,
                "901700000000001",
                "acme",
                "silent",
                Severity::Major,
                night,
            ),
            raise(
                2,
                "901700000000002",
                "acme",
                "scanning",
                Severity::Critical,
                night,
            ),
        ],
    );
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let all = r.outbox(None).unwrap();
    let get = |a: u64| {
        all.iter()
            .find(|n| n.alert == Some(AlertSource::Finding(a << 8).key()))
            .unwrap()
    };
    assert_eq!(get(1).status, "digested");
    assert_eq!(get(2).status, "pending");
    let digest = all.iter().find(|n| n.event == "digest").unwrap();
    // 07:00 local next day = 06:00 UTC = NOON + 18h.
    assert_eq!(digest.due, NOON + 18 * 60 * MIN);
}

#[test]
fn attempts_retries_and_receipts_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::open(&path).unwrap();
    store.set_routing(routing(vec![sub(r#"name = "pager"
                                          channel = "sms"
                                          recipients = ["+4915112345678"]"#)]));
    apply(
        &mut store,
        1,
        vec![raise(
            1,
            "901700000000001",
            "acme",
            "silent",
            Severity::Major,
            NOON,
        )],
    );
    let mut w = OutboxWriter::open(&path).unwrap();
    // Not due before its time.
    assert!(w.due(NOON - 1, 10).unwrap().is_empty());
    let due = w.due(NOON, 10).unwrap();
    assert_eq!(due.len(), 1);
    let id = due[0].id.clone();
    w.record(
        &id,
        NOON + 10,
        5,
        &AttemptResult::Retry { due: NOON + 1000 },
        "HTTP 503",
    )
    .unwrap();
    assert!(w.due(NOON + 999, 10).unwrap().is_empty());
    assert_eq!(w.next_due().unwrap(), Some(NOON + 1000));
    w.record(
        &id,
        NOON + 1000,
        7,
        &AttemptResult::Delivered {
            reference: Some("m1,m2".into()),
        },
        "submit_sm_resp OK",
    )
    .unwrap();
    assert!(w.due(i64::MAX, 10).unwrap().is_empty());
    assert_eq!(
        w.receipt("sms", "m2", "DELIVRD", NOON + 2000).unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        w.receipt("sms", "nope", "DELIVRD", NOON + 2000).unwrap(),
        None
    );
    let r = Store::open_reader(&path).unwrap();
    let (n, attempts) = r.notification(&id).unwrap().unwrap();
    assert_eq!(n.status, "sent");
    assert_eq!(n.attempts, 2);
    assert_eq!(n.first_attempt, Some(NOON + 10));
    assert_eq!(n.receipt.as_deref(), Some("DELIVRD"));
    assert_eq!(n.last_error.as_deref(), Some("HTTP 503"));
    let results: Vec<_> = attempts.iter().map(|a| (a.n, a.result.as_str())).collect();
    assert_eq!(results, vec![(1, "retry"), (2, "delivered")]);
    let counts = w.channel_counts().unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].channel.as_str(), counts[0].sent), ("sms", 1));
}

/// A `notify` action's alert ("rule:<id>") on `dev`, from action `seq << 8
/// | index`.
fn rule_alert(seq: u64, index: u64, dev: &str, rule: &str, time: i64) -> AlertChange {
    AlertChange::Raise(AlertRaise {
        source: AlertSource::Action((seq << 8) | index),
        kind: format!("rule:{rule}"),
        subject_type: "device".into(),
        subject: dev.into(),
        imsi: Some(Digits::parse(dev).unwrap()),
        tenant: Some("acme".into()),
        group: Some("acme-meters".into()),
        severity: None,
        time,
        finding: None,
        summary: "usage sent 80000 bytes this day".into(),
    })
}

#[test]
fn a_usage_alert_clears_when_its_period_ends_and_the_clear_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    store.set_routing(routing(vec![
        sub(r#"name = "ops"
               channel = "mail"
               types = ["rule:day-cap"]
               recipients = ["ops@acme.example"]"#),
        sub(r#"name = "raises-only"
               channel = "siem"
               on_clear = false"#),
    ]));
    let (a, b) = ("901700000000001", "901700000000002");
    let midnight = (NOON / 86_400_000 + 1) * 86_400_000;
    apply(
        &mut store,
        1,
        vec![
            rule_alert(1, 0, a, "day-cap", NOON),
            rule_alert(1, 1, b, "day-cap", NOON),
        ],
    );
    apply(
        &mut store,
        2,
        vec![rule_alert(2, 0, a, "other", NOON + MIN)],
    );
    let r = Store::open_reader(dir.path().join("s.db")).unwrap();
    let id = AlertSource::Action(1 << 8).key();
    let id_b = AlertSource::Action((1 << 8) | 1).key();
    let other = AlertSource::Action(2 << 8).key();

    // Device a's day ended (noticed at seq 3); device b's alert was raised
    // again by the same event that ends its period (seq 3): it stands.
    let applied = store
        .apply_batch(&StoreBatch {
            seq: 3,
            alerts: vec![
                AlertChange::UsageBackUnder {
                    seq: 3,
                    imsi: Digits::parse(a).unwrap(),
                    kind: "rule:day-cap".into(),
                    time: midnight,
                },
                rule_alert(3, 0, b, "day-cap", midnight + MIN),
                AlertChange::UsageBackUnder {
                    seq: 3,
                    imsi: Digits::parse(b).unwrap(),
                    kind: "rule:day-cap".into(),
                    time: midnight,
                },
            ],
            ..StoreBatch::default()
        })
        .unwrap();
    let al = r.alert(id).unwrap().unwrap();
    assert_eq!(al.state, AlertState::Cleared);
    assert_eq!(al.end, Some(midnight));
    assert_eq!(al.clear_time, Some(midnight));
    assert_eq!(
        al.cleared_by.as_deref(),
        Some("auto: usage back under the limit (period ended)")
    );
    assert_eq!(al.cleared_by.as_deref(), Some(CLEARED_USAGE));
    assert_eq!(r.alert(other).unwrap().unwrap().state, AlertState::Active);
    assert_eq!(r.alert(id_b).unwrap().unwrap().state, AlertState::Active);
    assert!(
        applied
            .alerts
            .iter()
            .any(|x| x.id == id && x.state == AlertState::Cleared),
        "the clear is among the batch's alert changes (the live stream's)"
    );

    // Its `cleared` event goes to the subscription that wants clears.
    let rows = |alert: u64| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = r
            .outbox(Some(alert))
            .unwrap()
            .into_iter()
            .map(|n| (n.event, n.subscription, n.status))
            .collect();
        v.sort();
        v
    };
    let row = |e: &str, s: &str| (e.to_string(), s.to_string(), "pending".to_string());
    assert_eq!(
        rows(id),
        vec![
            row("cleared", "ops"),
            row("raised", "ops"),
            row("raised", "raises-only")
        ]
    );
    let cleared = r
        .outbox(Some(id))
        .unwrap()
        .into_iter()
        .find(|n| n.event == "cleared")
        .unwrap();
    assert_eq!(cleared.id, format!("{id}.cleared.ops:ops@acme.example"));
    assert_eq!(cleared.created, midnight);

    // A replay of the batch, and a later end of the same period, change nothing.
    for seq in [3, 4] {
        apply(
            &mut store,
            seq,
            vec![AlertChange::UsageBackUnder {
                seq,
                imsi: Digits::parse(a).unwrap(),
                kind: "rule:day-cap".into(),
                time: midnight,
            }],
        );
    }
    assert_eq!(rows(id).len(), 3);
    assert_eq!(r.alert(id).unwrap().unwrap().clear_time, Some(midnight));
}

/// Outbox retention: finished notifications older than the cut go with
/// their attempts, receipt references and cap counts; pending and retrying
/// ones stay however old, and so do the members of a digest still to send.
#[test]
fn retention_prunes_finished_notifications_and_keeps_what_is_owed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::open(&path).unwrap();
    store.set_routing(Arc::new(Routing {
        subscriptions: vec![sub(r#"name = "pager"
                                  channel = "sms"
                                  tenant = "acme"
                                  recipients = ["+4915112345678"]
                                  cap = 4"#)],
        tenant_caps: Default::default(),
        cap_window_ms: 3_600_000,
    }));
    // Six for acme in one window: four rows, then two folded into a digest
    // due at the window's end; one for a tenant nobody subscribed to.
    let mut changes: Vec<AlertChange> = (0..6u64)
        .map(|i| {
            let dev = format!("90170000000{i:04}");
            raise(
                10 + i,
                &dev,
                "acme",
                "silent",
                Severity::Major,
                NOON + i as i64 * MIN,
            )
        })
        .collect();
    changes.push(raise(
        30,
        "901700000000030",
        "other",
        "silent",
        Severity::Major,
        NOON,
    ));
    apply(&mut store, 1, changes);
    let r = Store::open_reader(&path).unwrap();
    let by_status = |r: &simguard_store::StoreReader| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = r
            .outbox(None)
            .unwrap()
            .into_iter()
            .map(|n| (n.event, n.status))
            .collect();
        v.sort();
        v
    };
    let mut w = OutboxWriter::open(&path).unwrap();
    let rows = w.due(NOON + 10 * MIN, 10).unwrap();
    assert_eq!(rows.len(), 4, "four under the cap");
    let ids: Vec<String> = rows.iter().map(|n| n.id.clone()).collect();
    let delivered = |reference: &str| AttemptResult::Delivered {
        reference: Some(reference.into()),
    };
    w.record(&ids[0], NOON + MIN, 5, &delivered("m0"), "ok")
        .unwrap();
    w.record(&ids[1], NOON + MIN, 5, &AttemptResult::Failed, "HTTP 400")
        .unwrap();
    w.record(
        &ids[2],
        NOON + MIN,
        5,
        &AttemptResult::Retry {
            due: NOON + 2 * MIN,
        },
        "HTTP 503",
    )
    .unwrap();
    // ids[3] stays pending.
    let day = 86_400_000;
    let cut = NOON + 30 * day;

    let deleted = w.prune(cut, 1000).unwrap();
    assert_eq!(deleted, 3, "sent, failed, unrouted: {:?}", by_status(&r));
    assert!(r.notification(&ids[0]).unwrap().is_none());
    assert!(r.notification(&ids[1]).unwrap().is_none());
    assert_eq!(
        w.receipt("sms", "m0", "DELIVRD", cut).unwrap(),
        None,
        "the receipt reference went with its notification"
    );
    let (retrying, attempts) = r.notification(&ids[2]).unwrap().unwrap();
    assert_eq!((retrying.status.as_str(), attempts.len()), ("retrying", 1));
    assert_eq!(
        by_status(&r),
        vec![
            ("digest".to_string(), "pending".to_string()),
            ("raised".into(), "digested".into()),
            ("raised".into(), "digested".into()),
            ("raised".into(), "pending".into()),
            ("raised".into(), "retrying".into()),
        ]
    );
    let counts = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM notify_counts", [], |x| x.get(0))
            .unwrap()
    };
    assert_eq!(counts(), 0, "cap counts of old windows are gone");

    // Once the digest is sent, it and its members go at the next pass; a
    // cut before they finished keeps them.
    let digest = w
        .due(NOON + 61 * MIN, 10)
        .unwrap()
        .into_iter()
        .find(|n| n.event == "digest")
        .unwrap();
    w.record(&digest.id, NOON + 61 * MIN, 5, &delivered("d0"), "ok")
        .unwrap();
    assert_eq!(w.prune(NOON + 60 * MIN, 1000).unwrap(), 0);
    // A small limit takes them in turns.
    assert_eq!(w.prune(cut, 2).unwrap(), 2);
    assert_eq!(w.prune(cut, 2).unwrap(), 1);
    assert_eq!(w.prune(cut, 2).unwrap(), 0);
    assert_eq!(
        by_status(&r),
        vec![
            ("raised".to_string(), "pending".to_string()),
            ("raised".into(), "retrying".into()),
        ]
    );
}
