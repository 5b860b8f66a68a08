//! Engine behaviour: usage counted once whatever the order, liveness by
//! deadline, inventory, and determinism of replay (property tests).

use proptest::prelude::*;
use simguard_engine::*;

fn imsi(n: u64) -> Digits {
    Digits::parse(&format!("9017000000{n:05}")).unwrap()
}

fn rec(imsi_n: u64, status: AcctStatus, session: &str, time: i64, up: u64, down: u64) -> Event {
    Event::Accounting(AcctRecord {
        time,
        received: time,
        nas: "pgw-1".into(),
        status,
        session_id: session.into(),
        imsi: imsi(imsi_n),
        imeisv: Digits::parse("3520990017614823"),
        msisdn: None,
        apn: Some("iot.simguard".into()),
        framed_ip: Some(std::net::Ipv4Addr::new(10, 45, 0, (imsi_n % 250) as u8)),
        up_octets: up,
        down_octets: down,
        up_packets: up / 100,
        down_packets: down / 100,
        session_time: None,
        terminate_cause: None,
        interim_interval: Some(300),
        charging_id: Some(7),
        network: Plmn::parse("26201"),
        rat: Some(8),
        cell: None,
        time_zone: None,
    })
}

fn run(events: &[Event]) -> (Engine, Vec<Output>) {
    let mut e = Engine::new(EngineOptions::default());
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        e.apply(i as u64 + 1, ev, &mut out);
    }
    (e, out)
}

const T0: i64 = 1_790_000_000_000;

#[test]
fn usage_counts_once_across_retransmits_and_reordering() {
    use AcctStatus::*;
    let start = rec(1, Start, "s1", T0, 0, 0);
    let i1 = rec(1, Interim, "s1", T0 + 300_000, 1000, 5000);
    let i2 = rec(1, Interim, "s1", T0 + 600_000, 2500, 9000);
    let stop = rec(1, Stop, "s1", T0 + 700_000, 3000, 10_000);
    let orders: Vec<Vec<&Event>> = vec![
        vec![&start, &i1, &i2, &stop],
        vec![&start, &i1, &i1, &i2, &i2, &stop, &stop],
        vec![&stop, &i2, &i1, &start],
        vec![&i2, &start, &stop, &i1],
        vec![&i1, &stop, &start, &i2, &stop],
    ];
    for order in orders {
        let events: Vec<Event> = order.into_iter().cloned().collect();
        let (e, _) = run(&events);
        let d = e.device(imsi(1)).unwrap();
        assert_eq!(d.usage.total_up, 3000, "order {events:?}");
        assert_eq!(d.usage.total_down, 10_000);
        assert!(d.sessions.is_empty(), "a stopped session never reopens");
    }
}

#[test]
fn gigaword_sized_counters_are_exact() {
    use AcctStatus::*;
    let big = (2u64 << 32) + 5;
    let (e, out) = run(&[
        rec(1, Start, "s", T0, 0, 0),
        rec(1, Interim, "s", T0 + 1000, big, 1),
    ]);
    assert_eq!(e.device(imsi(1)).unwrap().usage.total_up, 8_589_934_597);
    let hourly: u64 = out
        .iter()
        .filter_map(|o| match o {
            Output::Usage { up, .. } => Some(*up),
            _ => None,
        })
        .sum();
    assert_eq!(hourly, 8_589_934_597);
}

#[test]
fn a_location_point_comes_out_when_the_network_or_cell_changes() {
    use AcctStatus::*;
    let cell = |eci| {
        Some(Cell {
            kind: CellKind::Ecgi,
            plmn: Plmn::parse("26201").unwrap(),
            area: 1234,
            id: eci,
        })
    };
    let at = |time, up, eci: Option<u64>, net: &str| {
        let mut ev = rec(1, Interim, "s", time, up, 0);
        if let Event::Accounting(r) = &mut ev {
            r.cell = eci.and_then(cell);
            r.network = Plmn::parse(net);
        }
        ev
    };
    let (_, out) = run(&[
        at(T0, 0, Some(1), "26201"),
        // Same place: no point.
        at(T0 + 1000, 10, Some(1), "26201"),
        // No ULI in this record: the device is still in cell 1, no point.
        at(T0 + 2000, 20, None, "26201"),
        at(T0 + 3000, 30, Some(2), "26201"),
        // A late record from cell 1 does not move the device back.
        at(T0 + 2500, 25, Some(1), "26201"),
        // Same cell, another serving network: a point.
        at(T0 + 4000, 40, Some(2), "20801"),
    ]);
    let points: Vec<(i64, Option<u64>, String)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Located {
                imsi: i,
                time,
                network,
                cell,
            } => {
                assert_eq!(*i, imsi(1));
                Some((
                    *time - T0,
                    cell.map(|c| c.id),
                    network.map(|n| n.to_string()).unwrap_or_default(),
                ))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        points,
        vec![
            (0, Some(1), "262-01".into()),
            (3000, Some(2), "262-01".into()),
            (4000, Some(2), "208-01".into()),
        ]
    );
}

#[test]
fn interim_without_start_counts_from_session_begin() {
    let (e, _) = run(&[rec(2, AcctStatus::Interim, "s", T0, 700, 800)]);
    let d = e.device(imsi(2)).unwrap();
    assert_eq!((d.usage.total_up, d.usage.total_down), (700, 800));
    assert_eq!(d.sessions.len(), 1);
}

#[test]
fn unknown_imsi_is_registered_unprovisioned_and_reported() {
    let (e, out) = run(&[rec(3, AcctStatus::Start, "s", T0, 0, 0)]);
    let d = e.device(imsi(3)).unwrap();
    assert!(d.provisioning.is_none());
    assert_eq!(e.stats().unprovisioned_seen, 1);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Unprovisioned { imsi: i, .. } if *i == imsi(3))));
}

#[test]
fn provisioned_device_keeps_inventory_and_is_not_unprovisioned() {
    let dev = DeviceRecord {
        imsi: imsi(4),
        iccid: Some("8949017000000000042".into()),
        msisdn: Digits::parse("491700000004"),
        bound_imei: Digits::parse("35209900176148"),
        tenant: "acme".into(),
        group: "acme-meters".into(),
        lifecycle: Lifecycle::Active,
        label: None,
    };
    let (e, out) = run(&[
        Event::UpsertDevices(vec![dev]),
        rec(4, AcctStatus::Start, "s", T0, 0, 0),
    ]);
    assert_eq!(e.stats().unprovisioned_seen, 0);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Unprovisioned { .. })));
    assert_eq!(e.lifecycle(imsi(4)), Some(Lifecycle::Active));
    assert!(
        e.group("acme-meters").is_some(),
        "group created on first use"
    );
    assert!(e.tenant("acme").is_some());
}

#[test]
fn device_goes_offline_at_interim_deadline_not_before() {
    use AcctStatus::*;
    // Interim interval 300 s, 2 missed + 30 s grace => deadline start + 630 s.
    let mut events = vec![rec(5, Start, "s", T0, 0, 0)];
    events.push(Event::Tick { time: T0 + 629_000 });
    let (e, out) = run(&events);
    assert!(e.device(imsi(5)).unwrap().is_online(e.clock()));
    assert!(!out.iter().any(|o| matches!(o, Output::WentOffline { .. })));

    events.push(Event::Tick { time: T0 + 630_000 });
    let (e, out) = run(&events);
    let d = e.device(imsi(5)).unwrap();
    assert!(!d.is_online(e.clock()));
    assert_eq!(d.offline_reason, OfflineReason::InterimTimeout);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::WentOffline { reason: OfflineReason::InterimTimeout, time, .. } if *time == T0 + 630_000
    )));

    // A late interim brings it back.
    events.push(rec(5, Interim, "s", T0 + 640_000, 10, 10));
    let (e, out) = run(&events);
    assert!(e.device(imsi(5)).unwrap().is_online(e.clock()));
    assert!(
        matches!(out.last(), Some(Output::CameOnline { .. }))
            || out
                .iter()
                .rev()
                .take(3)
                .any(|o| matches!(o, Output::CameOnline { .. }))
    );
}

#[test]
fn interims_extend_the_deadline() {
    use AcctStatus::*;
    let (e, out) = run(&[
        rec(6, Start, "s", T0, 0, 0),
        rec(6, Interim, "s", T0 + 300_000, 1, 1),
        rec(6, Interim, "s", T0 + 600_000, 2, 2),
        Event::Tick { time: T0 + 900_000 },
    ]);
    assert!(e.device(imsi(6)).unwrap().is_online(e.clock()));
    assert!(!out.iter().any(|o| matches!(o, Output::WentOffline { .. })));
}

#[test]
fn accounting_off_closes_the_nas_sessions() {
    let (e, out) = run(&[
        rec(7, AcctStatus::Start, "s", T0, 0, 0),
        Event::NasReset(NasReset {
            time: T0 + 10,
            nas: "pgw-1".into(),
            on: false,
        }),
    ]);
    let d = e.device(imsi(7)).unwrap();
    assert!(d.sessions.is_empty());
    assert_eq!(d.offline_reason, OfflineReason::NasReset);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::WentOffline {
            reason: OfflineReason::NasReset,
            ..
        }
    )));
}

#[test]
fn older_record_does_not_move_the_device_back() {
    use AcctStatus::*;
    let mut newer = rec(8, Interim, "s", T0 + 1000, 1, 1);
    if let Event::Accounting(r) = &mut newer {
        r.network = Plmn::parse("20408");
    }
    let older = rec(8, Interim, "s", T0, 0, 0);
    let (e, _) = run(&[newer, older]);
    assert_eq!(e.device(imsi(8)).unwrap().network, Plmn::parse("20408"));
}

#[test]
fn usage_period_rolls_over_by_calendar_month() {
    use AcctStatus::*;
    let jan = time::parse_rfc3339("2026-01-31T23:00:00Z").unwrap();
    let feb = time::parse_rfc3339("2026-02-01T01:00:00Z").unwrap();
    let (e, _) = run(&[
        rec(9, Start, "s", jan, 0, 0),
        rec(9, Interim, "s", jan + 1000, 100, 0),
        rec(9, Interim, "s", feb, 150, 0),
    ]);
    let u = e.device(imsi(9)).unwrap().usage;
    assert_eq!(u.period, time::month_index(feb));
    assert_eq!(u.period_up, 50);
    assert_eq!(u.total_up, 150);
}

#[test]
fn list_devices_pages_in_imsi_order_across_partitions() {
    let events: Vec<Event> = (0..200)
        .map(|n| rec(n, AcctStatus::Start, "s", T0 + n as i64, 0, 0))
        .collect();
    let (e, _) = run(&events);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = e.list_devices(after, 37, |_| true);
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().imsi);
        seen.extend(page.iter().map(|d| d.imsi));
    }
    let want: Vec<Digits> = (0..200).map(imsi).collect();
    assert_eq!(seen, want);
    let odd = e.list_devices(None, 1000, |d| d.imsi.value() % 2 == 1);
    assert_eq!(odd.len(), 100);
}

#[test]
fn snapshot_rejects_garbage_and_other_versions() {
    assert!(matches!(
        Engine::decode_snapshot(b"nope"),
        Err(EngineError::NotASnapshot)
    ));
    assert!(matches!(
        Engine::decode_snapshot(b"SGS9abc"),
        Err(EngineError::SnapshotVersion(b'9'))
    ));
}

#[test]
fn events_round_trip_through_their_binary_form() {
    let ev = rec(1, AcctStatus::Stop, "sess-1", T0, 1 << 40, 3);
    let mut buf = vec![0xAA];
    ev.encode_into(&mut buf).unwrap();
    assert_eq!(Event::decode(&buf[1..]).unwrap(), ev);
    assert!(Event::decode(&[]).is_err());
    assert!(Event::decode(&[9, 1, 2]).is_err());
}

// ---- property tests ----

fn arb_event() -> impl Strategy<Value = Event> {
    let acct = (
        0u64..6,
        0u8..3,
        0u8..3,
        0i64..4_000_000,
        0u64..10_000,
        0u64..10_000,
    )
        .prop_map(|(i, st, sess, dt, up, down)| {
            let status = [AcctStatus::Start, AcctStatus::Interim, AcctStatus::Stop][st as usize];
            rec(i, status, &format!("s{sess}"), T0 + dt, up, down)
        });
    let tick = (0i64..5_000_000).prop_map(|dt| Event::Tick { time: T0 + dt });
    let upsert = (0u64..6, 0u8..2).prop_map(|(i, l)| {
        Event::UpsertDevices(vec![DeviceRecord {
            imsi: imsi(i),
            iccid: None,
            msisdn: None,
            bound_imei: None,
            tenant: "t".into(),
            group: format!("g{l}"),
            lifecycle: if l == 0 {
                Lifecycle::Active
            } else {
                Lifecycle::Blocked
            },
            label: None,
        }])
    });
    let reset = (0i64..4_000_000).prop_map(|dt| {
        Event::NasReset(NasReset {
            time: T0 + dt,
            nas: "pgw-1".into(),
            on: true,
        })
    });
    let flows = (
        prop::collection::vec(
            (
                0u8..10,
                0u8..10,
                0i64..4_000_000,
                0usize..4,
                0usize..4,
                any::<u8>(),
                1u64..5000,
            ),
            0..6,
        ),
        0i64..4_000_000,
    )
        .prop_map(|(fl, recv)| {
            Event::Flows(FlowBatch {
                exporter: "pgw-1-ipfix".into(),
                received: T0 + recv,
                flows: fl
                    .into_iter()
                    .map(|(s, d, dt, port, proto, flags, bytes)| FlowRecord {
                        start: T0 + dt,
                        end: T0 + dt + 500,
                        src: flow_addr(s),
                        dst: flow_addr(d),
                        src_port: 40_000,
                        dst_port: [23, 53, 443, 8883][port],
                        proto: [6, 17, 1, 6][proto],
                        tcp_flags: flags,
                        bytes,
                        packets: bytes / 100 + 1,
                        sampling: 1,
                    })
                    .collect(),
            })
        });
    let policy = (0u8..2, 0u8..3).prop_map(|(g, p)| Event::SetPolicy {
        group: format!("g{g}"),
        policy: arb_policy(p),
    });
    prop_oneof![6 => acct, 2 => tick, 1 => upsert, 1 => reset, 4 => flows, 1 => policy]
}

/// Device addresses of `rec` (10.45.0.0-5), remote ones, IPv6.
fn flow_addr(k: u8) -> std::net::IpAddr {
    match k {
        0..=5 => std::net::Ipv4Addr::new(10, 45, 0, k).into(),
        6 | 7 => std::net::Ipv4Addr::new(192, 0, 2, k).into(),
        8 => "2001:db8::1".parse().unwrap(),
        _ => std::net::Ipv4Addr::new(198, 51, 100, 1).into(),
    }
}

fn arb_policy(p: u8) -> FirewallPolicy {
    let rule = |cidr: &str, proto, ports: Vec<(u16, u16)>, direction, action| PolicyRule {
        cidr: cidr.parse().unwrap(),
        proto,
        ports,
        direction,
        action,
    };
    match p {
        0 => FirewallPolicy {
            default_action: PolicyAction::Deny,
            rules: vec![
                rule(
                    "192.0.2.0/24",
                    Some(6),
                    vec![(443, 443)],
                    PolicyDirection::Outbound,
                    PolicyAction::Allow,
                ),
                rule(
                    "0.0.0.0/0",
                    Some(17),
                    vec![(53, 53)],
                    PolicyDirection::Both,
                    PolicyAction::Allow,
                ),
            ],
        },
        1 => FirewallPolicy {
            default_action: PolicyAction::Allow,
            rules: vec![rule(
                "0.0.0.0/0",
                None,
                vec![(23, 23)],
                PolicyDirection::Both,
                PolicyAction::Deny,
            )],
        },
        _ => FirewallPolicy::allow_all(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The same journal gives identical state and outputs; so does a snapshot
    /// taken anywhere, restored, and followed by a replay that overlaps it.
    #[test]
    fn replay_is_deterministic(events in prop::collection::vec(arb_event(), 1..120), cut in 0usize..120, overlap in 0usize..10) {
        let cut = cut.min(events.len());
        let (a, out_a) = run(&events);
        let (a2, out_a2) = run(&events);
        prop_assert_eq!(a.encode_snapshot().unwrap(), a2.encode_snapshot().unwrap());
        prop_assert_eq!(&out_a, &out_a2);

        // Snapshot at `cut`, restore, replay from `cut - overlap` (already-applied
        // records must be ignored).
        let (b, out_head) = run(&events[..cut]);
        let mut b = Engine::decode_snapshot(&b.encode_snapshot().unwrap()).unwrap();
        let mut out_tail = Vec::new();
        for (i, ev) in events.iter().enumerate().skip(cut.saturating_sub(overlap)) {
            b.apply(i as u64 + 1, ev, &mut out_tail);
        }
        prop_assert_eq!(a.encode_snapshot().unwrap(), b.encode_snapshot().unwrap());
        let mut joined = out_head;
        joined.extend(out_tail);
        prop_assert_eq!(out_a, joined);
    }

    /// Whatever the order and repetition of a session's records, usage equals
    /// the highest cumulative counters.
    #[test]
    fn usage_is_order_independent(
        counters in prop::collection::vec((0u64..1_000_000, 0u64..1_000_000), 1..6),
        order in prop::collection::vec(0usize..100, 1..20),
    ) {
        let mut sorted = counters.clone();
        sorted.sort();
        // Cumulative: make both counters non-decreasing along the session.
        let mut up = 0; let mut down = 0;
        let records: Vec<Event> = sorted.iter().enumerate().map(|(k, (u, d))| {
            up = up.max(*u); down = down.max(*d);
            let status = if k == 0 { AcctStatus::Start } else if k + 1 == sorted.len() { AcctStatus::Stop } else { AcctStatus::Interim };
            rec(1, status, "s", T0 + k as i64 * 1000, up, down)
        }).collect();
        let mut events: Vec<Event> = order.iter().map(|&i| records[i % records.len()].clone()).collect();
        events.extend(records.iter().cloned()); // every record arrives at least once
        let (e, _) = run(&events);
        let u = e.device(imsi(1)).unwrap().usage;
        prop_assert_eq!((u.total_up, u.total_down), (up, down));
    }
}
