//! Flows: attribution by address tenure, traffic profiles, group firewall
//! policies, and the bounds and snapshots of all of it.

use proptest::prelude::*;
use simguard_engine::time::{hour_start, HOUR_MS};
use simguard_engine::traffic::{SpaceSaving, RECENT_FLOWS, TOP_K, VIOLATION_LOG, WINDOW_HOURS};
use simguard_engine::*;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

const T0: i64 = 1_790_000_000_000;
const MIN: i64 = 60_000;
const TCP: u8 = 6;
const UDP: u8 = 17;

fn imsi(n: u64) -> Digits {
    Digits::parse(&format!("9017000000{n:05}")).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn acct(n: u64, status: AcctStatus, session: &str, time: i64, framed: &str) -> Event {
    Event::Accounting(AcctRecord {
        time,
        received: time,
        nas: "pgw-1".into(),
        status,
        session_id: session.into(),
        imsi: imsi(n),
        imeisv: None,
        msisdn: None,
        apn: Some("iot.simguard".into()),
        framed_ip: Some(framed.parse().unwrap()),
        up_octets: 0,
        down_octets: 0,
        up_packets: 0,
        down_packets: 0,
        session_time: None,
        terminate_cause: None,
        interim_interval: Some(300),
        charging_id: None,
        network: None,
        rat: None,
        cell: None,
        time_zone: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn flow(
    start: i64,
    src: &str,
    src_port: u16,
    dst: &str,
    dst_port: u16,
    proto: u8,
    tcp_flags: u8,
    bytes: u64,
    packets: u64,
) -> FlowRecord {
    FlowRecord {
        start,
        end: start + 1000,
        src: ip(src),
        dst: ip(dst),
        src_port,
        dst_port,
        proto,
        tcp_flags,
        bytes,
        packets,
        sampling: 1,
    }
}

/// A device's flow to a remote host (UDP, 100 bytes).
fn up(start: i64, dev: &str, remote: &str, port: u16) -> FlowRecord {
    flow(start, dev, 40_000, remote, port, UDP, 0, 100, 1)
}

fn batch(flows: Vec<FlowRecord>) -> Event {
    let received = flows.iter().map(|f| f.end).max().unwrap_or(0) + 5000;
    Event::Flows(FlowBatch {
        exporter: "pgw-1-ipfix".into(),
        received,
        flows,
    })
}

fn provision(n: u64, group: &str) -> Event {
    Event::UpsertDevices(vec![DeviceRecord {
        imsi: imsi(n),
        iccid: None,
        msisdn: None,
        bound_imei: None,
        tenant: "acme".into(),
        group: group.into(),
        lifecycle: Lifecycle::Active,
        label: None,
    }])
}

fn run(events: &[Event]) -> (Engine, Vec<Output>) {
    let mut e = Engine::new(EngineOptions::default());
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        e.apply(i as u64 + 1, ev, &mut out);
    }
    (e, out)
}

fn recent(e: &Engine, n: u64) -> Vec<(FlowRecord, FlowDirection)> {
    e.recent_flows(imsi(n))
        .map(|r| (r.flow, r.direction))
        .collect()
}

fn unattributed_outputs(out: &[Output]) -> Vec<(i64, FlowRecord)> {
    out.iter()
        .filter_map(|o| match o {
            Output::UnattributedFlow { time, flow } => Some((*time, *flow)),
            _ => None,
        })
        .collect()
}

fn violations(out: &[Output]) -> Vec<&Output> {
    out.iter()
        .filter(|o| matches!(o, Output::PolicyViolation { .. }))
        .collect()
}

// ---- attribution ----

#[test]
fn attribution_follows_the_address_through_reuse() {
    use AcctStatus::*;
    let (t0, t1, t2) = (T0, T0 + 10 * MIN, T0 + 20 * MIN);
    let a = "10.45.0.7";
    let in_a = up(t0 + MIN, a, "192.0.2.1", 443);
    let a_slack = up(t1 + 30_000, a, "192.0.2.1", 443);
    let gap = flow(t1 + 2 * MIN, "198.51.100.9", 5555, a, 23, TCP, 0x02, 40, 1);
    let b_slack = up(t2 - 30_000, a, "192.0.2.2", 443);
    let in_b = up(t2 + MIN, a, "192.0.2.2", 443);
    let (e, out) = run(&[
        acct(1, Start, "sa", t0, a),
        acct(1, Stop, "sa", t1, a),
        // A retransmitted Stop and a late Interim of the stopped session change nothing.
        acct(1, Stop, "sa", t1, a),
        acct(1, Interim, "sa", t1 - MIN, a),
        acct(2, Start, "sb", t2, a),
        batch(vec![in_a, a_slack, gap, b_slack, in_b]),
    ]);
    use FlowDirection::Up;
    assert_eq!(recent(&e, 1), vec![(a_slack, Up), (in_a, Up)]);
    assert_eq!(recent(&e, 2), vec![(in_b, Up), (b_slack, Up)]);
    assert_eq!(unattributed_outputs(&out), vec![(gap.start, gap)]);
    assert_eq!(e.unattributed().copied().collect::<Vec<_>>(), vec![gap]);
    let s = e.stats();
    assert_eq!(
        (s.flows_attributed, s.flows_unattributed, s.flow_batches),
        (4, 1, 1)
    );

    assert_eq!(e.ip_holder(ip(a), t0 + 5 * MIN), Some(imsi(1)));
    assert_eq!(e.ip_holder(ip(a), t1 + MIN), Some(imsi(1)), "slack: 60 s");
    assert_eq!(e.ip_holder(ip(a), t1 + MIN + 1), None);
    assert_eq!(e.ip_holder(ip(a), t2 - MIN - 1), None);
    assert_eq!(e.ip_holder(ip(a), t2 - MIN), Some(imsi(2)));
    assert_eq!(e.ip_holder(ip(a), t2 + 1000 * MIN), Some(imsi(2)));
    let h = e.ip_history(ip(a));
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].imsi, h[0].from, h[0].to), (imsi(1), t0, Some(t1)));
    assert_eq!((h[1].imsi, h[1].from, h[1].to), (imsi(2), t2, None));
}

/// The engine is causal: it attributes with the accounting journaled before
/// the flow. A flow journaled before its device's Start cannot be attributed
/// to it: unattributed if the previous holder had stopped, or attributed to
/// the previous holder if its Stop never came (its tenure is still open).
#[test]
fn a_flow_journaled_before_the_start_is_not_attributed_to_the_new_holder() {
    use AcctStatus::*;
    let (t0, t1, t2) = (T0, T0 + 10 * MIN, T0 + 20 * MIN);
    let a = "10.45.0.7";
    let f = up(t2 + MIN, a, "192.0.2.2", 443);
    let (e, out) = run(&[
        acct(1, Start, "sa", t0, a),
        acct(1, Stop, "sa", t1, a),
        batch(vec![f]),
        acct(2, Start, "sb", t2, a),
    ]);
    assert_eq!(unattributed_outputs(&out), vec![(f.start, f)]);
    assert!(e.traffic(imsi(2)).is_none());
    // Now that the Start is known, the same flow (re-exported) is B's.
    assert_eq!(e.ip_holder(ip(a), f.start), Some(imsi(2)));

    let (e, out) = run(&[
        acct(1, Start, "sa", t0, a),
        batch(vec![f]),
        acct(2, Start, "sb", t2, a),
    ]);
    assert!(unattributed_outputs(&out).is_empty());
    assert_eq!(recent(&e, 1), vec![(f, FlowDirection::Up)]);
    // The later Start ends A's tenure from then on.
    assert_eq!(e.ip_holder(ip(a), f.start), Some(imsi(2)));
    assert_eq!(e.ip_holder(ip(a), t2 - 1), Some(imsi(1)));
}

#[test]
fn a_long_flow_is_attributed_by_its_end_when_its_start_precedes_the_tenure() {
    let a = "10.45.0.7";
    let mut f = up(T0 - 5 * MIN, a, "192.0.2.1", 443);
    f.end = T0 + 2 * MIN;
    let (e, out) = run(&[acct(1, AcctStatus::Start, "s", T0, a), batch(vec![f])]);
    assert!(unattributed_outputs(&out).is_empty());
    assert_eq!(recent(&e, 1), vec![(f, FlowDirection::Up)]);
    let w = e.traffic(imsi(1)).unwrap().windows();
    assert_eq!(
        w[0].hour,
        hour_start(f.end),
        "counted at the time it was attributed at"
    );
}

#[test]
fn stop_without_start_is_backdated_by_session_time_and_nas_reset_closes() {
    use AcctStatus::*;
    let a = "10.45.0.9";
    let mut stop = acct(1, Stop, "s", T0 + 30 * MIN, a);
    if let Event::Accounting(r) = &mut stop {
        r.session_time = Some(1200); // began 20 minutes earlier
    }
    let (e, _) = run(&[
        stop,
        acct(2, Start, "s2", T0 + 40 * MIN, "10.45.0.10"),
        Event::NasReset(NasReset {
            time: T0 + 50 * MIN,
            nas: "pgw-1".into(),
            on: true,
        }),
    ]);
    let h = e.ip_history(ip(a));
    assert_eq!((h[0].from, h[0].to), (T0 + 10 * MIN, Some(T0 + 30 * MIN)));
    assert_eq!(e.ip_holder(ip(a), T0 + 15 * MIN), Some(imsi(1)));
    let h = e.ip_history(ip("10.45.0.10"));
    assert_eq!(
        h[0].to,
        Some(T0 + 50 * MIN),
        "Accounting-On ended the tenure"
    );
    assert_eq!(e.ip_holder(ip("10.45.0.10"), T0 + 52 * MIN), None);
}

#[test]
fn an_evicted_session_ends_its_tenure() {
    use AcctStatus::*;
    let mut events = Vec::new();
    for k in 0..5u8 {
        events.push(acct(
            1,
            Start,
            &format!("s{k}"),
            T0 + i64::from(k) * MIN,
            &format!("10.45.1.{k}"),
        ));
    }
    let (e, _) = run(&events);
    assert_eq!(e.device(imsi(1)).unwrap().sessions.len(), 4);
    assert_eq!(e.ip_history(ip("10.45.1.0"))[0].to, Some(T0 + 4 * MIN));
    assert_eq!(e.ip_history(ip("10.45.1.1"))[0].to, None);
}

#[test]
fn the_address_table_forgets_tenures_a_week_after_they_ended() {
    use AcctStatus::*;
    let week = 7 * 24 * HOUR_MS;
    let events = vec![
        acct(1, Start, "s", T0, "10.45.0.1"),
        acct(1, Stop, "s", T0 + MIN, "10.45.0.1"),
        acct(2, Start, "s", T0, "10.45.0.2"),
    ];
    let mut later = events.clone();
    later.push(Event::Tick {
        time: T0 + MIN + week - HOUR_MS,
    });
    let (e, _) = run(&later);
    assert_eq!(e.ip_table_len(), 2);
    later.push(Event::Tick {
        time: T0 + MIN + week + HOUR_MS,
    });
    let (e, _) = run(&later);
    assert_eq!(e.ip_table_len(), 1, "the open tenure stays");
    assert!(e.ip_history(ip("10.45.0.1")).is_empty());
    assert_eq!(e.ip_holder(ip("10.45.0.2"), T0 + week), Some(imsi(2)));
}

#[test]
fn unattributed_flows_are_kept_in_a_bounded_ring() {
    let flows: Vec<FlowRecord> = (0..1005u16)
        .map(|i| up(T0 + i64::from(i), "10.99.0.1", "192.0.2.1", i))
        .collect();
    let (e, out) = run(&[batch(flows.clone())]);
    assert_eq!(e.stats().flows_unattributed, 1005);
    assert_eq!(unattributed_outputs(&out).len(), 1005);
    let kept: Vec<FlowRecord> = e.unattributed().copied().collect();
    assert_eq!(kept.len(), 1000);
    assert_eq!(kept[0], flows[1004], "newest first");
    assert_eq!(kept[999], flows[5]);
}

// ---- direction and profile ----

#[test]
fn direction_is_up_from_the_device_and_down_to_it() {
    let a = "10.45.0.7";
    let h = hour_start(T0) + HOUR_MS;
    let f_up = flow(h + 1000, a, 40_001, "192.0.2.1", 443, TCP, 0x1B, 1500, 10);
    let f_down = flow(h + 2000, "192.0.2.1", 443, a, 40_001, TCP, 0x1B, 9000, 12);
    let (e, _) = run(&[
        acct(1, AcctStatus::Start, "s", h, a),
        batch(vec![f_up, f_down]),
    ]);
    assert_eq!(
        recent(&e, 1),
        vec![(f_down, FlowDirection::Down), (f_up, FlowDirection::Up)]
    );
    let p = e.traffic(imsi(1)).unwrap();
    let w = p.windows();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (
            w[0].hour,
            w[0].bytes_up,
            w[0].bytes_down,
            w[0].packets,
            w[0].flows
        ),
        (h, 1500, 9000, 22, 2)
    );
    // Both flows have the same remote side: one destination, one address, one port.
    let top = p.top_destinations();
    assert_eq!(top.len(), 1);
    assert_eq!(
        (top[0].key.addr, top[0].key.port, top[0].bytes, top[0].flows),
        (ip("192.0.2.1"), 443, 10_500, 2)
    );
    assert_eq!(
        (w[0].distinct_remote_addrs, w[0].distinct_remote_ports),
        (1, 1)
    );
}

#[test]
fn a_flow_between_two_devices_counts_once_as_the_sources_upload() {
    let f = flow(
        T0 + 5,
        "10.45.0.1",
        40_000,
        "10.45.0.2",
        502,
        TCP,
        0x1B,
        800,
        6,
    );
    let (e, _) = run(&[
        acct(1, AcctStatus::Start, "s", T0, "10.45.0.1"),
        acct(2, AcctStatus::Start, "s", T0, "10.45.0.2"),
        batch(vec![f]),
    ]);
    assert_eq!(recent(&e, 1), vec![(f, FlowDirection::Up)]);
    assert!(e.traffic(imsi(2)).is_none());
    assert_eq!(e.stats().flows_attributed, 1);
}

#[test]
fn top_destinations_are_exact_for_few_destinations() {
    let a = "10.45.0.7";
    let mut fl = Vec::new();
    for k in 0..3 {
        fl.push(up(T0 + k, a, "1.1.1.1", 53)); // 3 × 100
    }
    fl.push(flow(T0 + 10, a, 40_000, "8.8.8.8", 443, TCP, 0x1B, 5000, 7));
    fl.push(flow(T0 + 20, a, 40_000, "9.9.9.9", 53, UDP, 0, 300, 2));
    let (e, _) = run(&[acct(1, AcctStatus::Start, "s", T0, a), batch(fl)]);
    let top: Vec<(IpAddr, u16, u8, u64, u64, u64, u64)> = e
        .traffic(imsi(1))
        .unwrap()
        .top_destinations()
        .iter()
        .map(|c| {
            (
                c.key.addr,
                c.key.port,
                c.key.proto,
                c.bytes,
                c.packets,
                c.flows,
                c.error,
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![
            (ip("8.8.8.8"), 443, TCP, 5000, 7, 1, 0),
            // Equal bytes: ordered by key.
            (ip("1.1.1.1"), 53, UDP, 300, 3, 3, 0),
            (ip("9.9.9.9"), 53, UDP, 300, 2, 1, 0),
        ]
    );
}

#[test]
fn heavy_hitter_survives_churn_and_the_table_stays_at_k() {
    let a = "10.45.0.7";
    let mut fl = Vec::new();
    for i in 0..2000u32 {
        if i % 10 == 0 {
            fl.push(flow(
                T0 + i64::from(i),
                a,
                1,
                "203.0.113.5",
                8883,
                TCP,
                0x18,
                2000,
                3,
            ));
        }
        let one_off = Ipv4Addr::from(0xC633_6400u32 + i).to_string(); // 198.51.100.0 + i
        fl.push(up(T0 + i64::from(i), a, &one_off, 80));
    }
    let (e, _) = run(&[acct(1, AcctStatus::Start, "s", T0, a), batch(fl)]);
    let p = e.traffic(imsi(1)).unwrap();
    let top = p.top_destinations();
    assert_eq!(top.len(), TOP_K);
    assert_eq!(
        (top[0].key.addr, top[0].key.port),
        (ip("203.0.113.5"), 8883)
    );
    assert_eq!(top[0].bytes, 200 * 2000, "seen from its first flow: exact");
    assert_eq!(top[0].error, 0);
    assert_eq!(
        top.iter().map(|c| c.bytes).sum::<u64>(),
        200 * 2000 + 2000 * 100
    );
}

#[test]
fn windows_roll_by_the_hour() {
    let a = "10.45.0.7";
    let h = hour_start(T0);
    let f = |t: i64| up(t, a, "192.0.2.1", 443);
    let base = vec![
        acct(1, AcctStatus::Start, "s", h, a),
        batch(vec![f(h + 10 * MIN)]),
        batch(vec![f(h + HOUR_MS + 5 * MIN), f(h + HOUR_MS + 6 * MIN)]),
        batch(vec![f(h + 24 * HOUR_MS)]),
    ];
    let (e, _) = run(&base);
    let hours = |e: &Engine| -> Vec<(i64, u32)> {
        e.traffic(imsi(1))
            .unwrap()
            .windows()
            .iter()
            .map(|w| ((w.hour - h) / HOUR_MS, w.flows))
            .collect()
    };
    assert_eq!(
        hours(&e),
        vec![(1, 2), (24, 1)],
        "hour 0 fell out of the 24"
    );
    let mut more = base.clone();
    more.push(batch(vec![f(h + 2 * HOUR_MS)])); // late, still inside
    more.push(batch(vec![f(h + 20 * MIN)])); // late, too old for the windows
    let (e, _) = run(&more);
    assert_eq!(hours(&e), vec![(1, 2), (2, 1), (24, 1)]);
    let p = e.traffic(imsi(1)).unwrap();
    assert_eq!(p.flows(), 6, "a flow too old for the windows still counts");
    assert_eq!(p.first_flow(), Some(h + 10 * MIN));
    assert_eq!(p.recent_flows().next().unwrap().flow.start, h + 20 * MIN);
}

#[test]
fn distinct_counts_are_exact_when_small_and_within_the_documented_error() {
    let a = "10.45.0.7";
    let h = hour_start(T0);
    let mut fl = Vec::new();
    for i in 0..5u32 {
        fl.push(up(
            h + i64::from(i),
            a,
            &format!("192.0.2.{i}"),
            443 + i as u16 % 3,
        ));
    }
    for i in 0..300u32 {
        let remote = Ipv4Addr::from(0xCB00_7100u32 + i).to_string();
        fl.push(up(
            h + HOUR_MS + i64::from(i),
            a,
            &remote,
            1000 + (i % 40) as u16,
        ));
    }
    let (e, _) = run(&[acct(1, AcctStatus::Start, "s", h, a), batch(fl)]);
    let w = e.traffic(imsi(1)).unwrap().windows();
    assert_eq!(
        (w[0].distinct_remote_addrs, w[0].distinct_remote_ports),
        (5, 3)
    );
    let (addrs, ports) = (w[1].distinct_remote_addrs, w[1].distinct_remote_ports);
    assert!((180..=420).contains(&addrs), "300 distinct: {addrs}");
    assert!((24..=56).contains(&ports), "40 distinct: {ports}");
}

/// The sketch's documented error: about 12% at 10 and 16-20% from 50 up,
/// bias under 4%, 95% of estimates within ±40%.
#[test]
fn distinct_sketch_error_matches_its_documentation() {
    for n in [10u32, 20, 50, 100, 200, 500, 1000] {
        let trials = 200u32;
        let mut errs = Vec::new();
        for t in 0..trials {
            let mut s = DistinctSketch::default();
            for i in 0..n {
                let addr = Ipv4Addr::from(0x0A00_0000u32 + t * 1_000_003 + i * 7);
                s.insert_addr(IpAddr::V4(addr));
            }
            errs.push((s.estimate() - f64::from(n)) / f64::from(n));
        }
        let rse = (errs.iter().map(|e| e * e).sum::<f64>() / f64::from(trials)).sqrt();
        let bias = errs.iter().sum::<f64>() / f64::from(trials);
        let within = errs.iter().filter(|e| e.abs() <= 0.40).count();
        assert!(rse <= 0.22, "n={n}: relative standard error {rse:.3}");
        assert!(bias.abs() <= 0.05, "n={n}: bias {bias:.3}");
        assert!(
            within * 100 >= 93 * trials as usize,
            "n={n}: {within}/{trials} within 40%"
        );
    }
}

#[test]
fn never_answered_share_is_one_for_a_syn_scan_and_zero_for_normal_tcp() {
    let h = hour_start(T0);
    let scanner = "10.45.0.1";
    let normal = "10.45.0.2";
    let server = "10.45.0.3";
    let mut fl = Vec::new();
    for i in 0..200u32 {
        let target = Ipv4Addr::from(0xC000_0200u32 + i).to_string();
        fl.push(flow(
            h + i64::from(i),
            scanner,
            50_000,
            &target,
            23,
            TCP,
            0x02,
            44,
            1,
        ));
        fl.push(flow(
            h + i64::from(i),
            normal,
            50_000,
            "192.0.2.10",
            443,
            TCP,
            0x1B,
            4000,
            10,
        ));
    }
    // A device answering a SYN (a lone SYN-ACK) did not attempt anything.
    fl.push(flow(h, server, 22, "192.0.2.99", 50_123, TCP, 0x12, 44, 1));
    let (e, _) = run(&[
        acct(1, AcctStatus::Start, "s", h, scanner),
        acct(2, AcctStatus::Start, "s", h, normal),
        acct(3, AcctStatus::Start, "s", h, server),
        batch(fl),
    ]);
    let p1 = e.traffic(imsi(1)).unwrap();
    assert_eq!(p1.never_answered_share(), Some(1.0));
    let w = p1.windows();
    assert_eq!((w[0].tcp_attempts, w[0].tcp_unanswered), (200, 200));
    assert_eq!(
        e.traffic(imsi(2)).unwrap().never_answered_share(),
        Some(0.0)
    );
    assert_eq!(e.traffic(imsi(3)).unwrap().never_answered_share(), None);
}

// ---- policy ----

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn rule(
    c: &str,
    proto: Option<u8>,
    ports: &[(u16, u16)],
    direction: PolicyDirection,
    action: PolicyAction,
) -> PolicyRule {
    PolicyRule {
        cidr: cidr(c),
        proto,
        ports: ports.to_vec(),
        direction,
        action,
    }
}

fn meters_policy() -> FirewallPolicy {
    use PolicyAction::*;
    use PolicyDirection::*;
    FirewallPolicy {
        default_action: Deny,
        rules: vec![
            rule(
                "203.0.113.0/24",
                Some(TCP),
                &[(443, 443), (8883, 8883)],
                Outbound,
                Allow,
            ),
            rule("192.0.2.53/32", Some(UDP), &[(53, 53)], Both, Allow),
            rule("198.51.100.0/24", None, &[], Inbound, Allow),
        ],
    }
}

#[test]
fn default_deny_policy_reports_flows_outside_the_allow_rules() {
    let a = "10.45.0.7";
    let allowed = [
        flow(T0 + 1, a, 40_000, "203.0.113.9", 443, TCP, 0x1B, 900, 5),
        flow(T0 + 2, a, 40_000, "203.0.113.200", 8883, TCP, 0x1B, 900, 5),
        up(T0 + 3, a, "192.0.2.53", 53),
        flow(T0 + 4, "192.0.2.53", 53, a, 40_000, UDP, 0, 200, 1),
        flow(T0 + 5, "198.51.100.4", 1234, a, 22, TCP, 0x1B, 100, 2),
    ];
    let wrong_port = flow(T0 + 10, a, 40_000, "203.0.113.9", 80, TCP, 0x1B, 500, 4);
    let wrong_net = flow(T0 + 11, a, 40_000, "192.0.2.77", 443, TCP, 0x1B, 500, 4);
    let wrong_proto = up(T0 + 12, a, "203.0.113.9", 443);
    // Stateless: the reply of an Outbound-only rule's connection is inbound.
    let reply = flow(T0 + 13, "203.0.113.9", 443, a, 40_000, TCP, 0x1B, 700, 4);
    let wrong_dir = up(T0 + 14, a, "198.51.100.4", 22);
    let denied = [wrong_port, wrong_net, wrong_proto, reply, wrong_dir];

    let mut fl = allowed.to_vec();
    fl.extend(denied);
    let (e, out) = run(&[
        provision(1, "meters"),
        Event::SetPolicy {
            group: "meters".into(),
            policy: meters_policy(),
        },
        acct(1, AcctStatus::Start, "s", T0, a),
        batch(fl),
    ]);
    assert!(out.contains(&Output::PolicyChanged {
        group: "meters".into()
    }));
    let got = violations(&out);
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[0],
        &Output::PolicyViolation {
            imsi: imsi(1),
            time: wrong_port.start,
            flow: wrong_port,
            direction: FlowDirection::Up,
            rule: None,
            group: Arc::from("meters"),
        }
    );
    let flows: Vec<FlowRecord> = got
        .iter()
        .map(|o| match o {
            Output::PolicyViolation { flow, .. } => *flow,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(flows, denied.to_vec());
    let logged: Vec<(FlowRecord, FlowDirection, Option<usize>, &str)> = e
        .violations(imsi(1))
        .map(|v| (*v.flow, v.direction, v.rule, v.group))
        .collect();
    assert_eq!(logged[0], (wrong_dir, FlowDirection::Up, None, "meters"));
    assert_eq!(logged[1], (reply, FlowDirection::Down, None, "meters"));
    assert_eq!(logged.len(), 5);
    assert_eq!(e.traffic(imsi(1)).unwrap().violation_count(), 5);
    assert_eq!(e.stats().policy_violations, 5);
    assert_eq!(e.policy("meters"), Some(&meters_policy()));
}

#[test]
fn first_matching_rule_wins_and_groups_without_policy_allow_everything() {
    use PolicyAction::*;
    use PolicyDirection::*;
    let cams = FirewallPolicy {
        default_action: Allow,
        rules: vec![
            rule(
                "0.0.0.0/0",
                Some(TCP),
                &[(23, 23), (2323, 2323)],
                Outbound,
                Deny,
            ),
            rule("0.0.0.0/0", Some(TCP), &[(1, 65535)], Both, Allow),
            rule("0.0.0.0/0", None, &[], Both, Deny),
        ],
    };
    let telnet = flow(
        T0 + 1,
        "10.45.0.1",
        50_000,
        "192.0.2.1",
        23,
        TCP,
        0x02,
        44,
        1,
    );
    let ssh = flow(
        T0 + 2,
        "10.45.0.1",
        50_000,
        "192.0.2.1",
        22,
        TCP,
        0x1B,
        440,
        5,
    );
    let dns = up(T0 + 3, "10.45.0.1", "192.0.2.53", 53);
    let plain = flow(
        T0 + 4,
        "10.45.0.2",
        50_000,
        "192.0.2.1",
        23,
        TCP,
        0x02,
        44,
        1,
    );
    let unprov = flow(
        T0 + 5,
        "10.45.0.3",
        50_000,
        "192.0.2.1",
        23,
        TCP,
        0x02,
        44,
        1,
    );
    let (e, out) = run(&[
        provision(1, "cams"),
        provision(2, "plain"),
        Event::SetPolicy {
            group: "cams".into(),
            policy: cams,
        },
        acct(1, AcctStatus::Start, "s", T0, "10.45.0.1"),
        acct(2, AcctStatus::Start, "s", T0, "10.45.0.2"),
        acct(3, AcctStatus::Start, "s", T0, "10.45.0.3"),
        batch(vec![telnet, ssh, dns, plain, unprov]),
    ]);
    let got: Vec<(Digits, FlowRecord, Option<usize>)> = violations(&out)
        .iter()
        .map(|o| match o {
            Output::PolicyViolation {
                imsi, flow, rule, ..
            } => (*imsi, *flow, *rule),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        got,
        vec![(imsi(1), telnet, Some(0)), (imsi(1), dns, Some(2))]
    );
    assert_eq!(e.violations(imsi(2)).count(), 0);
    assert_eq!(e.violations(imsi(3)).count(), 0);
    assert_eq!(e.policy("plain"), None);
}

#[test]
fn an_invalid_policy_is_ignored_and_a_new_one_replaces_the_old() {
    use PolicyAction::*;
    let bad = FirewallPolicy {
        default_action: Deny,
        rules: vec![rule(
            "0.0.0.0/0",
            None,
            &[(100, 1)],
            PolicyDirection::Both,
            Allow,
        )],
    };
    let f = up(T0 + 1, "10.45.0.1", "192.0.2.1", 53);
    let events = vec![
        provision(1, "g"),
        acct(1, AcctStatus::Start, "s", T0, "10.45.0.1"),
        Event::SetPolicy {
            group: "g".into(),
            policy: FirewallPolicy {
                default_action: Deny,
                rules: vec![],
            },
        },
        Event::SetPolicy {
            group: "g".into(),
            policy: bad,
        },
        batch(vec![f]),
        Event::SetPolicy {
            group: "g".into(),
            policy: FirewallPolicy::allow_all(),
        },
        batch(vec![f]),
    ];
    let (e, out) = run(&events);
    let changed = out
        .iter()
        .filter(|o| matches!(o, Output::PolicyChanged { .. }))
        .count();
    assert_eq!(changed, 2);
    assert_eq!(
        violations(&out).len(),
        1,
        "denied by the first, allowed by the third"
    );
    assert_eq!(e.policy("g"), Some(&FirewallPolicy::allow_all()));
    assert_eq!(e.policies().len(), 1);
}

// ---- memory, events, snapshots ----

#[test]
fn a_full_profile_stays_within_its_documented_bound() {
    assert_eq!(std::mem::size_of::<Option<Box<TrafficProfile>>>(), 8);
    let a = "10.45.0.7";
    let h = hour_start(T0);
    let mut fl = Vec::new();
    for i in 0..2000i64 {
        let remote = Ipv4Addr::from(0xC633_6400u32 + i as u32).to_string();
        fl.push(flow(h + i * 3 * MIN, a, 1, &remote, 23, TCP, 0x02, 44, 1));
    }
    let (e, _) = run(&[
        provision(1, "g"),
        Event::SetPolicy {
            group: "g".into(),
            policy: FirewallPolicy {
                default_action: PolicyAction::Deny,
                rules: vec![],
            },
        },
        acct(1, AcctStatus::Start, "s", h, a),
        acct(2, AcctStatus::Start, "s", h, "10.45.0.8"),
        batch(fl),
        batch(vec![up(h, "10.45.0.8", "192.0.2.1", 53)]),
    ]);
    let p = e.traffic(imsi(1)).unwrap();
    assert_eq!(p.windows().len(), WINDOW_HOURS);
    assert_eq!(p.top_destinations().len(), TOP_K);
    assert_eq!(p.recent_flows().count(), RECENT_FLOWS);
    assert_eq!(p.violations().count(), VIOLATION_LOG);
    assert_eq!(p.heap_bytes(), TrafficProfile::MAX_HEAP_BYTES);
    assert!(p.heap_bytes() <= 12_120, "the documented bound");
    // One flow and no violation: the one allocation.
    let one = e.traffic(imsi(2)).unwrap();
    assert_eq!(one.heap_bytes(), std::mem::size_of::<TrafficProfile>());
    assert!(one.heap_bytes() <= 5_464);
}

#[test]
fn flow_events_round_trip_and_carry_their_time() {
    let f = up(T0, "10.45.0.7", "2001:db8::1", 443);
    let mut g = f;
    g.end = T0 + 9000;
    let ev = batch(vec![f, g]);
    assert_eq!(ev.time(), Some(T0 + 9000));
    let empty = Event::Flows(FlowBatch {
        exporter: "x".into(),
        received: 77,
        flows: vec![],
    });
    assert_eq!(empty.time(), Some(77));
    let pol = Event::SetPolicy {
        group: "meters".into(),
        policy: meters_policy(),
    };
    assert_eq!(pol.time(), None);
    for ev in [ev, empty, pol] {
        let mut buf = Vec::new();
        ev.encode_into(&mut buf).unwrap();
        assert_eq!(Event::decode(&buf).unwrap(), ev);
    }
    let (e, _) = run(&[batch(vec![g])]);
    assert_eq!(e.clock(), T0 + 9000, "flows move the engine clock");
}

#[test]
fn policies_read_and_write_as_json_with_text_networks() {
    let json = serde_json::to_value(meters_policy()).unwrap();
    assert_eq!(json["rules"][0]["cidr"], "203.0.113.0/24");
    assert_eq!(json["default_action"], "Deny");
    let back: FirewallPolicy = serde_json::from_value(json).unwrap();
    assert_eq!(back, meters_policy());
    let bad = serde_json::json!({"default_action": "Deny", "rules": [{"cidr": "10.0.0.0/40",
        "proto": null, "ports": [], "direction": "Both", "action": "Allow"}]});
    assert!(serde_json::from_value::<FirewallPolicy>(bad).is_err());
}

fn scenario() -> Vec<Event> {
    use AcctStatus::*;
    let a = "10.45.0.7";
    vec![
        provision(1, "meters"),
        Event::SetPolicy {
            group: "meters".into(),
            policy: meters_policy(),
        },
        acct(1, Start, "s", T0, a),
        acct(2, Start, "s", T0, "10.45.0.8"),
        batch(vec![
            up(T0 + 1, a, "192.0.2.53", 53),
            up(T0 + 2, a, "192.0.2.9", 80),
            flow(T0 + 3, "10.45.0.8", 1, "192.0.2.1", 23, TCP, 0x02, 44, 1),
            up(T0 + 4, "10.99.9.9", "192.0.2.1", 1),
        ]),
        acct(1, Stop, "s", T0 + HOUR_MS, a),
        acct(3, Start, "s", T0 + 2 * HOUR_MS, a),
        batch(vec![up(T0 + 2 * HOUR_MS + 5, a, "192.0.2.9", 80)]),
    ]
}

#[test]
fn snapshots_carry_address_table_profiles_and_policies() {
    let events = scenario();
    let (a, _) = run(&events);
    let bytes = a.encode_snapshot().unwrap();
    let b = Engine::decode_snapshot(&bytes).unwrap();
    assert_eq!(b.encode_snapshot().unwrap(), bytes);
    assert_eq!(b.stats(), a.stats());
    assert_eq!(b.stats().flows_attributed, 4);
    for n in 1..=3 {
        assert_eq!(b.traffic(imsi(n)), a.traffic(imsi(n)));
    }
    assert!(b.traffic(imsi(1)).is_some() && b.traffic(imsi(3)).is_some());
    assert_eq!(b.ip_history(ip("10.45.0.7")), a.ip_history(ip("10.45.0.7")));
    assert_eq!(b.ip_history(ip("10.45.0.7")).len(), 2);
    assert_eq!(b.policy("meters"), Some(&meters_policy()));
    assert_eq!(b.unattributed().count(), 1);
    assert_eq!(b.violations(imsi(1)).count(), 1);

    // Both go on identically.
    let next = batch(vec![
        up(T0 + 3 * HOUR_MS, "10.45.0.7", "192.0.2.9", 81),
        up(T0 + 30 * MIN, "10.45.0.7", "192.0.2.9", 82),
    ]);
    let (mut a, mut b) = (a, b);
    let (mut oa, mut ob) = (Vec::new(), Vec::new());
    a.apply(100, &next, &mut oa);
    b.apply(100, &next, &mut ob);
    assert_eq!(oa, ob);
    assert_eq!(
        violations(&oa).len(),
        1,
        "A's flow: meters policy; C's: no group"
    );
    assert_eq!(a.encode_snapshot().unwrap(), b.encode_snapshot().unwrap());
}

// ---- Space-Saving properties ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the stream: at most K counters, counts sum to the bytes seen,
    /// every key with more than W/K bytes has a counter, and each counter's
    /// bytes bound the truth from above within its error.
    #[test]
    fn space_saving_keeps_heavy_hitters_under_churn(
        heavy in prop::collection::vec((0u8..4, 1u64..5_000), 0..200),
        churn in prop::collection::vec((0u32..100_000, 1u64..500), 0..2000),
        seed in 0u64..1000,
    ) {
        let mut stream: Vec<(DestKey, u64)> = heavy.iter().map(|&(k, w)| (DestKey {
            addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, k)), port: 443, proto: TCP }, w)).collect();
        stream.extend(churn.iter().map(|&(k, w)| (DestKey {
            addr: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + k)), port: (k % 7) as u16, proto: UDP }, w)));
        // Deterministic interleaving.
        let mut x = seed | 1;
        for i in (1..stream.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            stream.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut ss = SpaceSaving::default();
        let mut truth = std::collections::BTreeMap::new();
        for &(k, w) in &stream {
            ss.observe(k, w, 1);
            *truth.entry(k).or_insert(0u64) += w;
        }
        let total: u64 = truth.values().sum();
        let counters = ss.counters();
        prop_assert!(counters.len() <= TOP_K);
        prop_assert_eq!(counters.iter().map(|c| c.bytes).sum::<u64>(), total);
        for c in &counters {
            let t = truth[&c.key];
            prop_assert!(c.bytes >= t && c.bytes - c.error <= t, "{:?} truth {}", c, t);
            prop_assert!(c.error <= total / TOP_K as u64);
        }
        for (k, &t) in &truth {
            if t > total / TOP_K as u64 {
                prop_assert!(counters.iter().any(|c| c.key == *k), "heavy {:?} ({} of {}) lost", k, t, total);
            }
        }
        let sorted = ss.sorted();
        prop_assert!(sorted.windows(2).all(|w| (w[0].bytes, std::cmp::Reverse(w[0].key)) >= (w[1].bytes, std::cmp::Reverse(w[1].key))));
    }
}
