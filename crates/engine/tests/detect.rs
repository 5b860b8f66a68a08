//! Detection: every detector has a case that must fire it and a benign twin
//! that must not; replays and snapshots give the same findings.

use simguard_engine::*;
use std::net::{IpAddr, Ipv4Addr};

const T0: i64 = 1_790_000_000_000; // 2026-09-21, a Monday
const S: i64 = 1_000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn imsi(n: u64) -> Digits {
    Digits::parse(&format!("9017000000{n:05}")).unwrap()
}

fn dev_ip(n: u64) -> Ipv4Addr {
    Ipv4Addr::new(10, 45, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// An accounting record builder with sensible defaults.
#[derive(Clone)]
struct Rec(AcctRecord);

impl Rec {
    fn new(n: u64, status: AcctStatus, session: &str, time: i64) -> Rec {
        Rec(AcctRecord {
            time,
            received: time,
            nas: "pgw-1".into(),
            status,
            session_id: session.into(),
            imsi: imsi(n),
            imeisv: Digits::parse("8669550400000101"),
            msisdn: None,
            apn: Some("iot.simguard".into()),
            framed_ip: Some(dev_ip(n)),
            up_octets: 0,
            down_octets: 0,
            up_packets: 0,
            down_packets: 0,
            session_time: None,
            terminate_cause: None,
            interim_interval: Some(300),
            charging_id: None,
            network: Plmn::parse("262-01"),
            rat: Some(6),
            cell: None,
            time_zone: None,
        })
    }
    fn up(mut self, total_up: u64) -> Rec {
        self.0.up_octets = total_up;
        self
    }
    fn down(mut self, total_down: u64) -> Rec {
        self.0.down_octets = total_down;
        self
    }
    fn imei(mut self, s: &str) -> Rec {
        self.0.imeisv = Digits::parse(s);
        self
    }
    fn net(mut self, s: &str) -> Rec {
        self.0.network = Plmn::parse(s);
        self
    }
    fn cell(mut self, id: u64) -> Rec {
        self.0.cell = Some(Cell {
            kind: CellKind::Ecgi,
            plmn: Plmn::parse("262-01").unwrap(),
            area: 100,
            id,
        });
        self
    }
    fn ev(self) -> Event {
        Event::Accounting(self.0)
    }
}

fn group(id: &str, profile: DeclaredProfile) -> Event {
    Event::UpsertGroup(Group {
        id: id.into(),
        tenant: "acme".into(),
        name: id.into(),
        profile,
        disabled_detectors: Vec::new(),
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

fn run(events: &[Event]) -> Vec<Output> {
    let mut e = Engine::new(EngineOptions::default());
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        e.apply(i as u64 + 1, ev, &mut out);
    }
    out
}

fn findings(out: &[Output]) -> Vec<&Finding> {
    out.iter()
        .filter_map(|o| match o {
            Output::Finding(f) => Some(&**f),
            _ => None,
        })
        .collect()
}

fn kinds_of(out: &[Output], n: u64) -> Vec<FindingKind> {
    findings(out)
        .into_iter()
        .filter(|f| f.imsi() == Some(imsi(n)))
        .map(|f| f.kind)
        .collect()
}

fn first(out: &[Output], n: u64, kind: FindingKind) -> Option<&Finding> {
    findings(out)
        .into_iter()
        .find(|f| f.imsi() == Some(imsi(n)) && f.kind == kind)
}

/// A smart meter: one short session a day carrying `up` bytes.
fn daily_sessions(n: u64, days: i64, from: i64, up: impl Fn(i64) -> u64) -> Vec<Event> {
    let mut v = Vec::new();
    for d in 0..days {
        let t = from + d * DAY;
        let s = format!("m{n}-{d}");
        v.push(Rec::new(n, AcctStatus::Start, &s, t).ev());
        v.push(
            Rec::new(n, AcctStatus::Stop, &s, t + 30 * S)
                .up(up(d))
                .down(1_000)
                .ev(),
        );
    }
    v
}

/// An always-on tracker: one session, an interim every 5 minutes.
fn interims(
    n: u64,
    session: &str,
    from: i64,
    count: i64,
    every: i64,
    up: impl Fn(i64) -> u64,
) -> Vec<Event> {
    let mut v = vec![Rec::new(n, AcctStatus::Start, session, from).ev()];
    let mut total = 0;
    for i in 1..=count {
        total += up(i);
        v.push(
            Rec::new(n, AcctStatus::Interim, session, from + i * every)
                .up(total)
                .ev(),
        );
    }
    v
}

fn meters() -> DeclaredProfile {
    DeclaredProfile {
        max_bytes_per_day: Some(15_000),
        report_interval_secs: Some(86_400),
        ..Default::default()
    }
}

fn ticks(from: i64, to: i64, step: i64) -> Vec<Event> {
    (0..)
        .map(|i| from + i * step)
        .take_while(|t| *t <= to)
        .map(|time| Event::Tick { time })
        .collect()
}

fn by_time(mut v: Vec<Event>) -> Vec<Event> {
    // Inventory first (no time), then by event time, stably.
    v.sort_by_key(|e| e.time().unwrap_or(i64::MIN));
    v
}

#[test]
fn declared_volume_fires_on_uplink_over_the_declared_day_and_not_on_downloads() {
    let mut ev = vec![
        group("meters", meters()),
        provision(1, "meters"),
        provision(2, "meters"),
    ];
    // Device 1: 3 kB a day, then 60 kB on day 3.
    ev.extend(daily_sessions(1, 4, T0, |d| {
        if d == 3 {
            60_000
        } else {
            3_000
        }
    }));
    // Device 2 (twin): 3 kB a day and a 5 MB firmware download on day 3.
    for d in 0..4 {
        let t = T0 + d * DAY + 10 * MIN;
        let s = format!("m2-{d}");
        ev.push(Rec::new(2, AcctStatus::Start, &s, t).ev());
        let down = if d == 3 { 5_000_000 } else { 1_000 };
        ev.push(
            Rec::new(2, AcctStatus::Stop, &s, t + 30 * S)
                .up(3_000)
                .down(down)
                .ev(),
        );
    }
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::DeclaredVolume).expect("declared volume");
    assert_eq!(
        f.time,
        T0 + 3 * DAY + 30 * S,
        "on the record that crossed it"
    );
    assert!(
        f.evidence.summary.contains("60.0 kB"),
        "{}",
        f.evidence.summary
    );
    assert_eq!(f.group.as_deref(), Some("meters"));
    assert_eq!(f.tenant.as_deref(), Some("acme"));
    assert!(!f.evidence.records.is_empty());
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn learned_volume_baseline_flags_x10_and_a_spike_does_not_poison_it() {
    let mut ev = vec![group("trackers", DeclaredProfile::default())];
    for n in 1..=2 {
        ev.push(provision(n, "trackers"));
    }
    // 1.5-2.5 kB per 5 minutes; device 1 sends x10 at report 30 and x10 again 2 h later.
    ev.extend(interims(1, "t1", T0, 80, 5 * MIN, |i| {
        if i == 30 || i == 55 {
            20_000
        } else {
            1_500 + (i as u64 * 37) % 1_000
        }
    }));
    // Twin: the same jitter and one report at 2x.
    ev.extend(interims(2, "t2", T0, 80, 5 * MIN, |i| {
        if i == 30 {
            5_000
        } else {
            1_500 + (i as u64 * 37) % 1_000
        }
    }));
    let out = run(&by_time(ev));
    let v: Vec<_> = findings(&out)
        .into_iter()
        .filter(|f| f.kind == FindingKind::VolumeAnomaly)
        .collect();
    assert_eq!(
        v.len(),
        2,
        "both spikes of device 1, none of device 2: {v:?}"
    );
    assert!(v.iter().all(|f| f.imsi() == Some(imsi(1))));
    assert_eq!(v[0].time, T0 + 30 * 5 * MIN);
    assert_eq!(
        v[1].time,
        T0 + 55 * 5 * MIN,
        "the first spike was not learned"
    );
    assert!(
        v[0].evidence.baseline.contains("learned"),
        "{}",
        v[0].evidence.baseline
    );
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn cohort_baseline_covers_a_new_device_and_a_cohort_outlier_is_named() {
    let mut ev = vec![group("meters", DeclaredProfile::default())];
    for n in 1..=40 {
        ev.push(provision(n, "meters"));
        // Device 40 has always sent 100x what the others do.
        let base = if n == 40 { 300_000 } else { 3_000 };
        ev.extend(daily_sessions(n, 8, T0 + n as i64 * MIN, move |d| {
            base + (d as u64 * 97 + n * 13) % 1_000
        }));
    }
    // Device 41 is new: its first report is 60 kB; the cohort says 3-4 kB.
    ev.push(provision(41, "meters"));
    ev.extend(daily_sessions(41, 1, T0 + 8 * DAY, |_| 60_000));
    let out = run(&by_time(ev));
    let outlier = first(&out, 40, FindingKind::CohortOutlier).expect("cohort outlier");
    assert!(outlier.evidence.baseline.contains("cohort"));
    let others: Vec<_> = findings(&out)
        .into_iter()
        .filter(|f| f.kind == FindingKind::CohortOutlier && f.imsi() != Some(imsi(40)))
        .collect();
    assert!(others.is_empty(), "{others:?}");
    let newbie = first(&out, 41, FindingKind::VolumeAnomaly).expect("held to the cohort");
    assert!(
        newbie.evidence.baseline.contains("cohort"),
        "{}",
        newbie.evidence.baseline
    );
    for n in 1..40 {
        assert!(
            kinds_of(&out, n).is_empty(),
            "device {n}: {:?}",
            kinds_of(&out, n)
        );
    }
}

#[test]
fn rhythm_change_against_the_declared_interval_and_not_on_dst_shifts() {
    let mut ev = vec![
        group("meters", meters()),
        provision(1, "meters"),
        provision(2, "meters"),
    ];
    ev.extend(daily_sessions(1, 3, T0, |_| 3_000));
    // From day 3, device 1 reports every minute.
    let onset = T0 + 3 * DAY;
    for i in 0..10 {
        let t = onset + i * MIN;
        let s = format!("fast-{i}");
        ev.push(Rec::new(1, AcctStatus::Start, &s, t).ev());
        ev.push(Rec::new(1, AcctStatus::Stop, &s, t + 20 * S).up(300).ev());
    }
    // Device 2: daily, shifted by an hour twice (daylight saving).
    for (d, shift) in [(0, 0), (1, -HOUR), (2, -HOUR), (3, 0), (4, 0)] {
        let t = T0 + d * DAY + shift + 5 * MIN;
        let s = format!("d2-{d}");
        ev.push(Rec::new(2, AcctStatus::Start, &s, t).ev());
        ev.push(Rec::new(2, AcctStatus::Stop, &s, t + 30 * S).up(3_000).ev());
    }
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::DeclaredRhythm).expect("rhythm");
    assert!(
        f.time <= onset + 3 * MIN,
        "within a few reports: {}",
        f.time - onset
    );
    assert!(
        f.evidence.summary.contains("expected every 1.0 d"),
        "{}",
        f.evidence.summary
    );
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn learned_rhythm_without_a_declared_interval() {
    let mut ev = vec![
        group("g", DeclaredProfile::default()),
        provision(1, "g"),
        provision(2, "g"),
    ];
    ev.extend(interims(1, "a", T0, 20, 5 * MIN, |_| 2_000));
    let onset = T0 + 20 * 5 * MIN;
    let mut total = 40_000;
    for i in 1..=6 {
        total += 500;
        ev.push(
            Rec::new(1, AcctStatus::Interim, "a", onset + i * 30 * S)
                .up(total)
                .ev(),
        );
    }
    ev.extend(interims(2, "b", T0, 26, 5 * MIN, |_| 2_000));
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::RhythmAnomaly).expect("learned rhythm");
    assert!(f.evidence.baseline.contains("learned rhythm"));
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn flapping_and_a_single_reattach() {
    let mut ev = vec![
        group("g", DeclaredProfile::default()),
        provision(1, "g"),
        provision(2, "g"),
    ];
    for i in 0..8 {
        let t = T0 + i * 40 * S;
        let s = format!("f{i}");
        ev.push(Rec::new(1, AcctStatus::Start, &s, t).ev());
        ev.push(Rec::new(1, AcctStatus::Stop, &s, t + 30 * S).ev());
    }
    ev.push(Rec::new(2, AcctStatus::Start, "a", T0).ev());
    ev.push(Rec::new(2, AcctStatus::Stop, "a", T0 + 4 * HOUR).ev());
    ev.push(Rec::new(2, AcctStatus::Start, "b", T0 + 4 * HOUR + 20 * S).ev());
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::Flapping).expect("flapping");
    assert_eq!(f.time, T0 + 4 * 40 * S, "at the fifth start");
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn silence_past_the_expected_interval_fires_by_deadline_from_ticks() {
    let profile = DeclaredProfile {
        report_interval_secs: Some(300),
        ..Default::default()
    };
    let mut ev = vec![
        group("trackers", profile),
        provision(1, "trackers"),
        provision(2, "trackers"),
    ];
    ev.extend(interims(1, "a", T0, 12, 5 * MIN, |_| 1_000)); // stops at T0 + 60 min
    ev.extend(interims(2, "b", T0, 36, 5 * MIN, |_| 1_000));
    ev.extend(ticks(T0, T0 + 4 * HOUR, 10 * S));
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::Silent).expect("silent");
    // Last record at 60 min; 2 x 300 s + 300 s grace later.
    assert_eq!(f.time, T0 + 60 * MIN + 15 * MIN);
    assert_eq!(f.onset, T0 + 60 * MIN);
    let silent: Vec<_> = findings(&out)
        .into_iter()
        .filter(|f| f.kind == FindingKind::Silent)
        .collect();
    assert_eq!(
        silent.len(),
        2,
        "device 2 goes silent after its last interim too, once each: {silent:?}"
    );
    assert_eq!(silent[1].imsi(), Some(imsi(2)));
    assert_eq!(silent[1].time, T0 + 180 * MIN + 15 * MIN);
}

#[test]
fn roaming_outside_the_allowed_countries() {
    let profile = DeclaredProfile {
        allowed_countries: vec!["DE".into(), "AT".into()],
        ..Default::default()
    };
    let mut ev = vec![group("g", profile), provision(1, "g"), provision(2, "g")];
    ev.push(Rec::new(1, AcctStatus::Start, "a", T0).net("262-01").ev());
    ev.push(
        Rec::new(1, AcctStatus::Interim, "a", T0 + 5 * HOUR)
            .net("724-05")
            .ev(),
    );
    ev.push(Rec::new(2, AcctStatus::Start, "b", T0).net("262-01").ev());
    ev.push(
        Rec::new(2, AcctStatus::Interim, "b", T0 + 5 * HOUR)
            .net("232-01")
            .ev(),
    );
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::Roaming).expect("roaming");
    assert_eq!(f.time, T0 + 5 * HOUR, "on the first record that shows it");
    assert!(f.evidence.summary.contains("BR"), "{}", f.evidence.summary);
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn impossible_travel_and_a_truck_crossing_borders() {
    let mut ev = vec![
        group("g", DeclaredProfile::default()),
        provision(1, "g"),
        provision(2, "g"),
    ];
    ev.push(Rec::new(1, AcctStatus::Start, "a", T0).net("262-01").ev());
    ev.push(
        Rec::new(1, AcctStatus::Interim, "a", T0 + 10 * MIN)
            .net("724-05")
            .ev(),
    );
    // Device 2: DE → FR → ES by road over two days.
    ev.push(Rec::new(2, AcctStatus::Start, "b", T0).net("262-01").ev());
    ev.push(
        Rec::new(2, AcctStatus::Interim, "b", T0 + 8 * HOUR)
            .net("208-01")
            .ev(),
    );
    ev.push(
        Rec::new(2, AcctStatus::Interim, "b", T0 + 30 * HOUR)
            .net("214-01")
            .ev(),
    );
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::ImpossibleTravel).expect("impossible travel");
    assert_eq!(f.time, T0 + 10 * MIN);
    assert_eq!(f.onset, T0);
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn sim_swap_into_a_foreign_tac_is_critical_and_a_same_imei_is_fine() {
    let mut ev = vec![group("meters", DeclaredProfile::default())];
    for n in 1..=3 {
        ev.push(provision(n, "meters"));
    }
    ev.push(Rec::new(1, AcctStatus::Start, "a", T0).ev());
    ev.push(Rec::new(2, AcctStatus::Start, "b", T0).ev());
    ev.push(
        Rec::new(3, AcctStatus::Start, "c", T0)
            .imei("8674220400000301")
            .ev(),
    );
    // Device 1's SIM turns up in a phone.
    ev.push(
        Rec::new(1, AcctStatus::Start, "a2", T0 + HOUR)
            .imei("3533251000123401")
            .ev(),
    );
    // Device 3's SIM moves into a module model the group already uses.
    ev.push(
        Rec::new(3, AcctStatus::Start, "c2", T0 + HOUR)
            .imei("8669550400999901")
            .ev(),
    );
    // Device 2 keeps its IMEI.
    ev.push(Rec::new(2, AcctStatus::Start, "b2", T0 + HOUR).ev());
    let out = run(&by_time(ev));
    let f = first(&out, 1, FindingKind::SimSwap).expect("swap");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.time, T0 + HOUR);
    let g = first(&out, 3, FindingKind::SimSwap).expect("module swap");
    assert_eq!(g.severity, Severity::Minor);
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn unprovisioned_imsi_is_a_finding() {
    let out = run(&[
        group("g", DeclaredProfile::default()),
        provision(1, "g"),
        Rec::new(1, AcctStatus::Start, "a", T0).ev(),
        Rec::new(9, AcctStatus::Start, "z", T0).ev(),
        Rec::new(9, AcctStatus::Interim, "z", T0 + MIN).ev(),
    ]);
    assert_eq!(kinds_of(&out, 9), vec![FindingKind::Unprovisioned], "once");
    assert!(kinds_of(&out, 1).is_empty());
}

// ---- flows ----

#[allow(clippy::too_many_arguments)]
fn flow(
    start: i64,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: u8,
    flags: u8,
    bytes: u64,
    packets: u64,
) -> FlowRecord {
    FlowRecord {
        start,
        end: start + 500,
        src,
        dst,
        src_port: sport,
        dst_port: dport,
        proto,
        tcp_flags: flags,
        bytes,
        packets,
        sampling: 1,
    }
}

fn batch(flows: Vec<FlowRecord>) -> Event {
    Event::Flows(FlowBatch {
        exporter: "x".into(),
        received: flows.iter().map(|f| f.end).max().unwrap_or(0),
        flows,
    })
}

fn pseudo_ip(i: i64) -> IpAddr {
    let i = i as u64;
    let h = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32;
    IpAddr::V4(Ipv4Addr::from(0x2000_0000 | (h & 0x3fff_ffff)))
}

/// Devices 1 (attacker) and 2 (twin) online in group `g` since T0.
fn two_online(profile: DeclaredProfile) -> Vec<Event> {
    vec![
        group("g", profile),
        provision(1, "g"),
        provision(2, "g"),
        Rec::new(1, AcctStatus::Start, "a", T0).ev(),
        Rec::new(2, AcctStatus::Start, "b", T0).ev(),
    ]
}

fn me(n: u64) -> IpAddr {
    IpAddr::V4(dev_ip(n))
}

/// Devices 1..=`devices`, each one completed TCP session of `bytes` to
/// `remote` port 443 every hour for `hours` hours from T0: what their group
/// learns as normal.
fn hourly_sessions(devices: u64, remote: IpAddr, hours: i64, bytes: u64) -> Vec<Event> {
    (0..hours)
        .flat_map(|h| {
            (1..=devices).map(move |n| {
                batch(vec![flow(
                    T0 + h * HOUR + n as i64,
                    me(n),
                    40_000,
                    remote,
                    443,
                    6,
                    0x1b,
                    bytes,
                    8,
                )])
            })
        })
        .collect()
}

#[test]
fn mirai_scanning_is_found_within_a_second_and_busy_normal_traffic_is_not() {
    let mut ev = two_online(DeclaredProfile::default());
    let onset = T0 + HOUR;
    // 160 SYN probes in one second, 9 in 10 to port 23.
    let probes: Vec<_> = (0..160)
        .map(|i| {
            let port = if i % 10 == 9 { 2323 } else { 23 };
            flow(
                onset + i * 6,
                me(1),
                41_000,
                pseudo_ip(i),
                port,
                6,
                0x02,
                40,
                1,
            )
        })
        .collect();
    ev.push(batch(probes));
    // Twin: 300 answered HTTPS connections to its three cloud endpoints.
    let cloud: Vec<_> = (0..300)
        .map(|i| {
            flow(
                onset + i * 3,
                me(2),
                40_000 + i as u16,
                IpAddr::V4(Ipv4Addr::new(52, 1, 1, (i % 3) as u8 + 1)),
                443,
                6,
                0x1b,
                4_000,
                10,
            )
        })
        .collect();
    ev.push(batch(cloud));
    let out = run(&ev);
    let f = first(&out, 1, FindingKind::Scanning).expect("scan");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.time - onset < 1_000, "{}", f.time - onset);
    assert!(!f.evidence.flows.is_empty());
    assert!(
        f.evidence.summary.contains("telnet"),
        "{}",
        f.evidence.summary
    );
    assert_eq!(
        kinds_of(&out, 1),
        vec![FindingKind::Scanning],
        "one finding, not one per probe"
    );
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

fn flood(n: u64, onset: i64, proto: u8, flags: u8, pkt: u64) -> Event {
    let target = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let flows = (0..2_000)
        .map(|i| {
            let port = if proto == 47 {
                0
            } else {
                1_024 + (i * 7_919 % 60_000) as u16
            };
            flow(
                onset + i * 3,
                me(n),
                50_000 + i as u16,
                target,
                port,
                proto,
                flags,
                pkt * 2,
                2,
            )
        })
        .collect();
    batch(flows)
}

#[test]
fn each_flood_vector_is_found_and_a_video_stream_is_not() {
    for (proto, flags, pkt, vector) in [
        (17, 0, 540, "udp"),
        (6, 0x02, 60, "syn"),
        (6, 0x10, 552, "ack"),
        (47, 0, 564, "gre"),
    ] {
        let mut ev = two_online(DeclaredProfile::default());
        let onset = T0 + HOUR;
        ev.push(flood(1, onset, proto, flags, pkt));
        // Twin: a camera's stream, 1,300 B packets at 40/s to one port, for minutes.
        let stream: Vec<_> = (0..300)
            .map(|i| {
                flow(
                    onset + i * S,
                    me(2),
                    5_004,
                    IpAddr::V4(Ipv4Addr::new(52, 9, 9, 9)),
                    443,
                    17,
                    0,
                    52_000,
                    40,
                )
            })
            .collect();
        ev.push(batch(stream));
        let out = run(&ev);
        let f = first(&out, 1, FindingKind::Ddos)
            .unwrap_or_else(|| panic!("{vector}: {:?}", kinds_of(&out, 1)));
        assert!(f.time - onset < 5_000, "{vector}: {}", f.time - onset);
        assert!(
            f.evidence
                .facts
                .iter()
                .any(|x| x.name == "vector" && x.observed == vector),
            "{vector}: {:?}",
            f.evidence.facts
        );
        assert!(
            kinds_of(&out, 2).is_empty(),
            "{vector}: {:?}",
            kinds_of(&out, 2)
        );
    }
}

#[test]
fn dns_water_torture_and_ordinary_lookups() {
    let mut ev = two_online(DeclaredProfile::default());
    let onset = T0 + HOUR;
    let resolver = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
    ev.push(batch(
        (0..400)
            .map(|i| {
                flow(
                    onset + i * 10,
                    me(1),
                    1_024 + i as u16,
                    resolver,
                    53,
                    17,
                    0,
                    80,
                    1,
                )
            })
            .collect(),
    ));
    ev.push(batch(
        (0..60)
            .map(|i| {
                flow(
                    onset + i * 10 * S,
                    me(2),
                    1_024 + i as u16,
                    resolver,
                    53,
                    17,
                    0,
                    70,
                    1,
                )
            })
            .collect(),
    ));
    let out = run(&ev);
    let f = first(&out, 1, FindingKind::DnsWaterTorture).expect("water torture");
    assert!(f.time - onset < 5_000);
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn new_destination_after_the_learning_day_and_known_ones_are_fine() {
    let mut ev = two_online(DeclaredProfile::default());
    let head_end = IpAddr::V4(Ipv4Addr::new(100, 64, 10, 20));
    let ntp_new = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 123));
    let drop = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    ev.extend(hourly_sessions(2, head_end, 30, 6_000));
    // Day 2: device 1 uploads 2 MB to a destination the group never used.
    ev.push(batch(vec![flow(
        T0 + 30 * HOUR,
        me(1),
        40_001,
        drop,
        8443,
        6,
        0x1b,
        2_000_000,
        1_500,
    )]));
    // Device 2: more to the head-end, and a small NTP query to a new server.
    ev.push(batch(vec![
        flow(
            T0 + 30 * HOUR,
            me(2),
            40_001,
            head_end,
            443,
            6,
            0x1b,
            2_000_000,
            1_500,
        ),
        flow(T0 + 30 * HOUR, me(2), 123, ntp_new, 123, 17, 0, 76, 1),
    ]));
    let out = run(&ev);
    let f = first(&out, 1, FindingKind::NewDestination).expect("new destination");
    assert!(
        f.evidence.summary.contains("203.0.113.9"),
        "{}",
        f.evidence.summary
    );
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

/// Group `group`'s policy: 100.64.0.0/16 only, everything else denied.
fn only_100_64(group: &str) -> Event {
    Event::SetPolicy {
        group: group.into(),
        policy: FirewallPolicy {
            default_action: PolicyAction::Deny,
            rules: vec![PolicyRule {
                action: PolicyAction::Allow,
                direction: PolicyDirection::Both,
                cidr: "100.64.0.0/16".parse().unwrap(),
                proto: None,
                ports: Vec::new(),
            }],
        },
    }
}

#[test]
fn policy_violations_become_one_finding_per_cooldown() {
    let mut ev = two_online(DeclaredProfile::default());
    ev.push(only_100_64("g"));
    let ok = IpAddr::V4(Ipv4Addr::new(100, 64, 10, 20));
    let bad = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    ev.push(batch(
        (0..5)
            .map(|i| flow(T0 + HOUR + i * MIN, me(1), 40_000, bad, 80, 6, 0x1b, 500, 5))
            .collect(),
    ));
    ev.push(batch(
        (0..5)
            .map(|i| flow(T0 + HOUR + i * MIN, me(2), 40_000, ok, 443, 6, 0x1b, 500, 5))
            .collect(),
    ));
    let out = run(&ev);
    assert_eq!(kinds_of(&out, 1), vec![FindingKind::PolicyViolation]);
    assert_eq!(
        first(&out, 1, FindingKind::PolicyViolation)
            .unwrap()
            .evidence
            .flows
            .len(),
        1
    );
    assert!(kinds_of(&out, 2).is_empty());
}

#[test]
fn a_group_can_switch_a_detector_off() {
    let mut ev = two_online(DeclaredProfile::default());
    ev.push(Event::UpsertGroup(Group {
        id: "g".into(),
        tenant: "acme".into(),
        name: "g".into(),
        profile: DeclaredProfile::default(),
        disabled_detectors: vec![Detector::Botnet],
    }));
    let onset = T0 + HOUR;
    ev.push(batch(
        (0..160)
            .map(|i| {
                flow(
                    onset + i * 6,
                    me(1),
                    41_000,
                    pseudo_ip(i),
                    23,
                    6,
                    0x02,
                    40,
                    1,
                )
            })
            .collect(),
    ));
    let out = run(&ev);
    assert!(kinds_of(&out, 1).is_empty(), "{:?}", kinds_of(&out, 1));
}

#[test]
fn cell_overload_against_its_baseline_and_a_normal_day() {
    let mut ev = vec![group("g", DeclaredProfile::default())];
    for n in 1..=400 {
        ev.push(provision(n, "g"));
    }
    // Two hours of normal attaches: devices 1-100 spread over 10 cells.
    for w in 0..12 {
        for n in 1..=100u64 {
            let t = T0 + w * 10 * MIN + n as i64 * S;
            ev.push(
                Rec::new(n, AcctStatus::Start, &format!("s{n}-{w}"), t)
                    .cell(n % 10)
                    .ev(),
            );
        }
    }
    // Then 300 devices attach to cell 3 within ten minutes.
    let onset = T0 + 2 * HOUR + 30 * MIN;
    for n in 101..=400u64 {
        ev.push(
            Rec::new(n, AcctStatus::Start, "x", onset + (n as i64 - 101) * S)
                .cell(3)
                .ev(),
        );
    }
    let out = run(&by_time(ev));
    let over: Vec<_> = findings(&out)
        .into_iter()
        .filter(|f| f.kind == FindingKind::Overload)
        .collect();
    assert!(!over.is_empty(), "overload");
    assert_eq!(over[0].subject, Subject::Cell("262-01-100-3".into()));
    assert!(
        over[0].time >= onset && over[0].time < onset + 2 * MIN,
        "{}",
        over[0].time - onset
    );
    assert!(
        over.iter().all(|f| f.time >= onset),
        "nothing during the normal hours: {over:?}"
    );
}

// ---- determinism ----

fn mixed() -> Vec<Event> {
    let mut ev = vec![group("meters", meters())];
    for n in 1..=20 {
        ev.push(provision(n, "meters"));
        ev.extend(daily_sessions(n, 5, T0 + n as i64 * MIN, move |d| {
            if n == 3 && d == 4 {
                80_000
            } else {
                3_000
            }
        }));
    }
    ev.push(
        Rec::new(4, AcctStatus::Start, "swap", T0 + 4 * DAY + HOUR)
            .imei("3533251000123401")
            .ev(),
    );
    ev.push(
        Rec::new(5, AcctStatus::Start, "roam", T0 + 4 * DAY + HOUR)
            .net("724-05")
            .ev(),
    );
    ev.extend(ticks(T0, T0 + 8 * DAY, HOUR));
    by_time(ev)
}

#[test]
fn the_same_journal_gives_the_same_findings_and_a_snapshot_changes_nothing() {
    let ev = mixed();
    let a = run(&ev);
    let b = run(&ev);
    assert_eq!(findings(&a), findings(&b));
    let fa = findings(&a);
    assert!(
        fa.len() >= 4,
        "{:?}",
        fa.iter().map(|f| f.kind).collect::<Vec<_>>()
    );
    let ids: std::collections::BTreeSet<u64> = fa.iter().map(|f| f.id).collect();
    assert_eq!(ids.len(), fa.len(), "ids are unique");

    // Snapshot half way, restore, continue: same findings after the cut.
    let cut = ev.len() / 2;
    let mut e = Engine::new(EngineOptions::default());
    let mut first_half = Vec::new();
    for (i, x) in ev[..cut].iter().enumerate() {
        e.apply(i as u64 + 1, x, &mut first_half);
    }
    let bytes = e.encode_snapshot().unwrap();
    let mut r = Engine::decode_snapshot(&bytes).unwrap();
    assert_eq!(
        r.encode_snapshot().unwrap(),
        bytes,
        "snapshots are canonical"
    );
    let mut second_half = Vec::new();
    for (i, x) in ev.iter().enumerate().skip(cut) {
        r.apply(i as u64 + 1, x, &mut second_half);
    }
    let mut joined = findings(&first_half);
    joined.extend(findings(&second_half));
    assert_eq!(joined, fa);
}

#[test]
fn a_single_flow_udp_plain_flood_is_found_and_a_long_stream_is_not() {
    let mut ev = two_online(DeclaredProfile::default());
    let target = IpAddr::V4(Ipv4Addr::new(86, 136, 151, 56));
    let onset = T0 + HOUR;
    // IoT-23 34-1/44-1 shape: one UDP flow to port 80, 300 s, 1.3 M packets.
    let mut flood = flow(
        onset,
        me(1),
        38_897,
        target,
        80,
        17,
        0,
        1_781_371_410,
        1_305_034,
    );
    flood.end = onset + 300 * S;
    // Twin: a 300 s video stream, 40 packets/s.
    let mut stream = flow(
        onset,
        me(2),
        5_004,
        IpAddr::V4(Ipv4Addr::new(52, 9, 9, 9)),
        5_004,
        17,
        0,
        15_600_000,
        12_000,
    );
    stream.end = onset + 300 * S;
    ev.push(batch(vec![flood, stream]));
    let out = run(&ev);
    let f = first(&out, 1, FindingKind::Ddos).expect("udp plain flood");
    assert!(f
        .evidence
        .facts
        .iter()
        .any(|x| x.name == "vector" && x.observed == "udp"));
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn a_telnet_or_irc_session_is_a_c2_channel_and_https_is_not() {
    let mut ev = two_online(DeclaredProfile::default());
    let c2 = IpAddr::V4(Ipv4Addr::new(46, 101, 251, 172));
    let onset = T0 + HOUR;
    let mut session = flow(onset, me(1), 51_834, c2, 23, 6, 0x1b, 18_203, 337);
    session.end = onset + 6_803 * S;
    let mut https = flow(
        onset,
        me(2),
        51_834,
        IpAddr::V4(Ipv4Addr::new(52, 1, 1, 1)),
        443,
        6,
        0x1b,
        18_203,
        337,
    );
    https.end = onset + 6_803 * S;
    ev.push(batch(vec![session, https]));
    let out = run(&ev);
    let f = first(&out, 1, FindingKind::CommandAndControl).expect("c2");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.evidence.summary.contains("port 23"));
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

#[test]
fn beaconing_to_a_never_seen_destination_and_retries_to_a_known_one() {
    let mut ev = two_online(DeclaredProfile::default());
    let known = IpAddr::V4(Ipv4Addr::new(100, 64, 10, 20));
    let torii = IpAddr::V4(Ipv4Addr::new(66, 85, 157, 90));
    ev.extend(hourly_sessions(2, known, 26, 2_000));
    // Day 2: device 1 retries a SYN to a new host every 2 minutes (Torii's C&C);
    // device 2 retries its known head-end the same way.
    let onset = T0 + 26 * HOUR;
    for i in 0..6 {
        ev.push(batch(vec![flow(
            onset + i * 2 * MIN,
            me(1),
            38_086,
            torii,
            443,
            6,
            0x02,
            180,
            3,
        )]));
        ev.push(batch(vec![flow(
            onset + i * 2 * MIN,
            me(2),
            38_086,
            known,
            443,
            6,
            0x02,
            180,
            3,
        )]));
    }
    let out = run(&ev);
    let f = first(&out, 1, FindingKind::NewDestination).expect("beaconing");
    assert_eq!(f.time, onset + 4 * 2 * MIN, "at the fifth attempt");
    assert_eq!(f.onset, onset);
    assert!(f.evidence.summary.contains("C&C-like"));
    assert!(kinds_of(&out, 2).is_empty(), "{:?}", kinds_of(&out, 2));
}

/// Devices 1 to 4 online in group `g`; all talked to their head-end on the
/// learning day, and device 4 has since completed small TLS sessions with a
/// cloud service on two networks of 52.94.0.0/16 and on one of 13.32.0.0/16
/// (no finding: under `new_destination_min_bytes`).
fn cloud_service_fleet() -> (Vec<Event>, i64) {
    let mut ev = two_online(DeclaredProfile::default());
    for n in 3..=4 {
        ev.push(provision(n, "g"));
        ev.push(Rec::new(n, AcctStatus::Start, &format!("s{n}"), T0).ev());
    }
    let head_end = IpAddr::V4(Ipv4Addr::new(100, 64, 10, 20));
    ev.extend(hourly_sessions(4, head_end, 26, 6_000));
    let day2 = T0 + 26 * HOUR;
    for (i, a) in [[52, 94, 228, 52], [52, 94, 232, 206], [13, 32, 118, 129]]
        .into_iter()
        .enumerate()
    {
        ev.push(batch(vec![flow(
            day2 + i as i64 * 10 * MIN,
            me(4),
            41_000 + i as u16,
            IpAddr::V4(Ipv4Addr::from(a)),
            443,
            6,
            0x1b,
            6_000,
            12,
        )]));
    }
    (ev, day2 + HOUR)
}

#[test]
fn a_new_address_of_a_known_cloud_service_is_not_a_new_destination_and_a_new_prefix_is() {
    let (mut ev, t) = cloud_service_fleet();
    let upload = |n: u64, to: [u8; 4], port: u16, proto: u8, flags: u8| {
        batch(vec![flow(
            t,
            me(n),
            42_000,
            IpAddr::V4(Ipv4Addr::from(to)),
            port,
            proto,
            flags,
            528_817,
            600,
        )])
    };
    // The benign twin (the IoT-23 Echo): a completed TLS session uploading
    // 529 kB to a third network of the service's /16.
    ev.push(upload(4, [52, 94, 240, 174], 443, 6, 0x1b));
    // Must fire: the same upload to a /16 the group never reached...
    ev.push(upload(1, [52, 95, 7, 9], 443, 6, 0x1b));
    // ...to the known prefix on another port (not the same service)...
    ev.push(upload(2, [52, 94, 240, 174], 8443, 6, 0x1b));
    // ...and to a prefix where the group used only one network.
    ev.push(upload(3, [13, 32, 99, 123], 443, 6, 0x1b));
    let out = run(&ev);
    assert!(kinds_of(&out, 4).is_empty(), "{:?}", kinds_of(&out, 4));
    for (n, addr) in [(1, "52.95.7.9"), (2, "52.94.240.174"), (3, "13.32.99.123")] {
        let f = first(&out, n, FindingKind::NewDestination)
            .unwrap_or_else(|| panic!("device {n}: new destination"));
        assert!(f.evidence.summary.contains(addr), "{}", f.evidence.summary);
    }

    // Off (known_service_min_networks = 0): every new network is new again.
    let mut opts = EngineOptions::default();
    opts.detect.known_service_min_networks = 0;
    let mut e = Engine::new(opts);
    let mut off = Vec::new();
    for (i, x) in ev.iter().enumerate() {
        e.apply(i as u64 + 1, x, &mut off);
    }
    assert_eq!(
        kinds_of(&off, 4),
        vec![FindingKind::NewDestination],
        "the twin's upload without service learning"
    );
}

#[test]
fn unanswered_beacons_into_a_known_cloud_prefix_are_still_c2_like() {
    let (mut ev, t) = cloud_service_fleet();
    // Device 1 retries a SYN every 2 minutes to a new address inside the
    // service's /16, port 443: nobody answers, so it is not that service.
    for i in 0..6 {
        ev.push(batch(vec![flow(
            t + i * 2 * MIN,
            me(1),
            38_086,
            IpAddr::V4(Ipv4Addr::new(52, 94, 250, 1)),
            443,
            6,
            0x02,
            180,
            3,
        )]));
    }
    let out = run(&ev);
    let f = first(&out, 1, FindingKind::NewDestination).expect("beaconing");
    assert!(
        f.evidence.summary.contains("C&C-like"),
        "{}",
        f.evidence.summary
    );
    assert_eq!(f.onset, t);
}

#[test]
fn an_exfiltration_flow_teaches_no_service() {
    // Device 1 uploads to two new networks of one /16 (its finding is
    // raised on the first; the second falls in the cooldown): neither is
    // learned as a service, so device 2's upload to a third network of the
    // same /16 is still a new destination.
    let (mut ev, t) = cloud_service_fleet();
    for (i, a) in [[198, 18, 1, 1], [198, 18, 2, 1]].into_iter().enumerate() {
        ev.push(batch(vec![flow(
            t + i as i64 * MIN,
            me(1),
            42_000,
            IpAddr::V4(Ipv4Addr::from(a)),
            443,
            6,
            0x1b,
            2_000_000,
            1_500,
        )]));
    }
    ev.push(batch(vec![flow(
        t + 10 * MIN,
        me(2),
        42_000,
        IpAddr::V4(Ipv4Addr::new(198, 18, 3, 1)),
        443,
        6,
        0x1b,
        2_000_000,
        1_500,
    )]));
    let out = run(&ev);
    assert_eq!(kinds_of(&out, 1), vec![FindingKind::NewDestination]);
    assert_eq!(kinds_of(&out, 2), vec![FindingKind::NewDestination]);
}

// ---- response rules (they act on what detection finds) ----

use simguard_engine::rules::{
    Action, ActionKind, ConnectivityEvent, Rule, RuleMode, RuleScope, Step, Trigger, UsagePeriod,
};

fn rule(id: &str, trigger: Trigger, steps: Vec<Step>) -> Rule {
    Rule {
        id: id.into(),
        name: id.into(),
        enabled: true,
        mode: RuleMode::Enforce,
        scope: RuleScope::default(),
        trigger,
        steps,
        cooldown_secs: 0,
        escalation_window_secs: 86_400,
    }
}

fn step(action: ActionKind) -> Step {
    Step {
        action,
        expire_secs: None,
    }
}

fn on_scan() -> Trigger {
    Trigger::Finding {
        types: vec![FindingKind::Scanning],
        min_severity: Severity::Major,
    }
}

fn actions(out: &[Output]) -> Vec<&Action> {
    out.iter()
        .filter_map(|o| match o {
            Output::Action(a) => Some(&**a),
            _ => None,
        })
        .collect()
}

fn scan_burst(n: u64, at: i64) -> Event {
    batch(
        (0..160)
            .map(|i| {
                flow(
                    at + i * 6,
                    me(n),
                    41_000,
                    pseudo_ip(i + at),
                    23,
                    6,
                    0x02,
                    40,
                    1,
                )
            })
            .collect(),
    )
}

fn apply_all(events: &[Event]) -> (Engine, Vec<Output>) {
    let mut e = Engine::new(EngineOptions::default());
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        e.apply(i as u64 + 1, ev, &mut out);
    }
    (e, out)
}

#[test]
fn a_rule_blocks_a_scanning_device_and_records_why() {
    let mut ev = two_online(DeclaredProfile::default());
    ev.push(Event::UpsertRule(rule(
        "block-scanners",
        on_scan(),
        vec![step(ActionKind::Block)],
    )));
    ev.push(scan_burst(1, T0 + HOUR));
    let (e, out) = apply_all(&ev);
    let acts = actions(&out);
    assert_eq!(acts.len(), 1, "{acts:?}");
    let a = acts[0];
    assert_eq!(a.imsi, imsi(1));
    assert_eq!(a.kind, ActionKind::Block);
    assert_eq!(a.actor, "rule:block-scanners");
    assert!(a.enforce);
    assert_eq!(
        (a.from, a.to),
        (Some(Lifecycle::Active), Some(Lifecycle::Blocked))
    );
    let f = first(&out, 1, FindingKind::Scanning).unwrap();
    assert_eq!(a.finding, Some(f.id), "linked to its finding");
    assert!(a.reason.starts_with("scanning (critical)"), "{}", a.reason);
    assert_eq!(e.lifecycle(imsi(1)), Some(Lifecycle::Blocked));
    assert_eq!(e.lifecycle(imsi(2)), Some(Lifecycle::Active));
    assert!(out.iter().any(|o| matches!(o, Output::LifecycleChanged { imsi: i, to: Lifecycle::Blocked, .. } if *i == imsi(1))));
}

#[test]
fn a_dry_run_rule_records_what_it_would_do_and_changes_nothing() {
    let mut ev = two_online(DeclaredProfile::default());
    let mut r = rule("block-scanners", on_scan(), vec![step(ActionKind::Block)]);
    r.mode = RuleMode::DryRun;
    ev.push(Event::UpsertRule(r));
    ev.push(scan_burst(1, T0 + HOUR));
    let (e, out) = apply_all(&ev);
    let acts = actions(&out);
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0].mode, RuleMode::DryRun);
    assert!(!acts[0].enforce, "nothing to send to the network");
    assert_eq!(e.lifecycle(imsi(1)), Some(Lifecycle::Active));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::LifecycleChanged { .. })));
}

#[test]
fn escalation_notify_then_throttle_then_block_with_a_cooldown_and_expiry() {
    let mut ev = two_online(DeclaredProfile::default());
    let mut r = rule(
        "ladder",
        on_scan(),
        vec![
            step(ActionKind::Notify),
            Step {
                action: ActionKind::Throttle { kbps: 64 },
                expire_secs: Some(1_800),
            },
            step(ActionKind::Block),
        ],
    );
    r.cooldown_secs = 600;
    ev.push(Event::UpsertRule(r));
    // Scans an hour apart (the detector's cooldown), plus one inside the rule's.
    ev.push(scan_burst(1, T0 + HOUR));
    ev.push(scan_burst(1, T0 + 2 * HOUR + MIN));
    ev.push(Event::Tick {
        time: T0 + 2 * HOUR + 40 * MIN,
    }); // the throttle expires
    ev.push(scan_burst(1, T0 + 3 * HOUR + 2 * MIN));
    let (e, out) = apply_all(&ev);
    let kinds: Vec<&str> = actions(&out).iter().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, vec!["notify", "throttle", "unthrottle", "block"]);
    let acts = actions(&out);
    assert_eq!(acts[1].expires, Some(acts[1].time + 1_800_000));
    assert_eq!(acts[2].actor, "rule:ladder (expiry)");
    assert_eq!(acts[3].step, 2);
    assert_eq!(e.lifecycle(imsi(1)), Some(Lifecycle::Blocked));
}

#[test]
fn usage_and_connectivity_triggers_and_scope() {
    let mut ev = vec![
        group("meters", DeclaredProfile::default()),
        group("other", DeclaredProfile::default()),
        provision(1, "meters"),
        provision(2, "other"),
    ];
    let mut usage = rule(
        "cap",
        Trigger::Usage {
            period: UsagePeriod::Month,
            max_bytes: 100_000,
        },
        vec![step(ActionKind::Throttle { kbps: 32 })],
    );
    usage.scope = RuleScope {
        group: Some("meters".into()),
        ..Default::default()
    };
    ev.push(Event::UpsertRule(usage));
    ev.push(Event::UpsertRule(rule(
        "roamers",
        Trigger::Connectivity {
            event: ConnectivityEvent::CountryChanged,
        },
        vec![step(ActionKind::Notify)],
    )));
    for n in 1..=2 {
        ev.push(Rec::new(n, AcctStatus::Start, "s", T0).ev());
        ev.push(
            Rec::new(n, AcctStatus::Interim, "s", T0 + 5 * MIN)
                .up(60_000)
                .ev(),
        );
        ev.push(
            Rec::new(n, AcctStatus::Interim, "s", T0 + 10 * MIN)
                .up(120_000)
                .ev(),
        );
        ev.push(
            Rec::new(n, AcctStatus::Interim, "s", T0 + 15 * MIN)
                .up(180_000)
                .ev(),
        );
    }
    ev.push(
        Rec::new(2, AcctStatus::Interim, "s", T0 + 20 * MIN)
            .up(180_000)
            .net("232-01")
            .ev(),
    );
    let (e, out) = apply_all(&by_time(ev));
    let acts = actions(&out);
    let summary: Vec<(u64, &str, i64)> = acts
        .iter()
        .map(|a| (a.imsi.value() % 100_000, a.kind.name(), a.time))
        .collect();
    assert_eq!(
        summary,
        vec![(1, "throttle", T0 + 10 * MIN), (2, "notify", T0 + 20 * MIN)],
        "once when the cap is crossed, only in scope; the country change of device 2"
    );
    assert_eq!(e.lifecycle(imsi(1)), Some(Lifecycle::Throttled));
    assert_eq!(e.lifecycle(imsi(2)), Some(Lifecycle::Active));
}

#[test]
fn people_act_with_a_reason_and_may_step_down() {
    let ev = vec![
        group("g", DeclaredProfile::default()),
        provision(1, "g"),
        Event::DeviceAction {
            time: T0,
            imsi: imsi(1),
            action: ActionKind::Block,
            actor: "user:alice".into(),
            reason: "stolen".into(),
            expire_secs: None,
        },
        Event::DeviceAction {
            time: T0 + HOUR,
            imsi: imsi(1),
            action: ActionKind::Release,
            actor: "user:bob".into(),
            reason: "wrong verb".into(),
            expire_secs: None,
        },
        Event::DeviceAction {
            time: T0 + 2 * HOUR,
            imsi: imsi(1),
            action: ActionKind::Unblock,
            actor: "user:bob".into(),
            reason: "recovered".into(),
            expire_secs: None,
        },
    ];
    let (e, out) = apply_all(&ev);
    let acts = actions(&out);
    assert_eq!(acts.len(), 3);
    assert!(acts[0].enforce && acts[0].reason == "stolen" && acts[0].actor == "user:alice");
    assert!(
        !acts[1].enforce,
        "release of a device that is not quarantined changes nothing"
    );
    assert_eq!(
        (acts[2].from, acts[2].to),
        (Some(Lifecycle::Blocked), Some(Lifecycle::Active))
    );
    assert_eq!(e.lifecycle(imsi(1)), Some(Lifecycle::Active));
}

#[test]
fn rules_and_pending_expiries_survive_a_snapshot() {
    let mut ev = two_online(DeclaredProfile::default());
    ev.push(Event::UpsertRule(rule(
        "t",
        on_scan(),
        vec![Step {
            action: ActionKind::Throttle { kbps: 64 },
            expire_secs: Some(600),
        }],
    )));
    ev.push(scan_burst(1, T0 + HOUR));
    ev.push(Event::Tick {
        time: T0 + HOUR + 20 * MIN,
    });
    let (_, straight) = apply_all(&ev);
    let cut = ev.len() - 1;
    let (e, mut out) = apply_all(&ev[..cut]);
    let mut r = Engine::decode_snapshot(&e.encode_snapshot().unwrap()).unwrap();
    r.apply(cut as u64 + 1, &ev[cut], &mut out);
    assert_eq!(actions(&out), actions(&straight));
    assert_eq!(actions(&out).last().unwrap().kind, ActionKind::Unthrottle);
    assert_eq!(r.lifecycle(imsi(1)), Some(Lifecycle::Active));
}

#[test]
fn an_unprovisioned_sim_can_be_disconnected_though_it_has_no_lifecycle() {
    let mut ev = vec![group("g", DeclaredProfile::default())];
    ev.push(Event::UpsertRule(rule(
        "kick-unknown",
        Trigger::Finding {
            types: vec![FindingKind::Unprovisioned],
            min_severity: Severity::Warning,
        },
        vec![step(ActionKind::Block)],
    )));
    ev.push(Rec::new(7, AcctStatus::Start, "u", T0).ev());
    let (e, out) = apply_all(&ev);
    let acts = actions(&out);
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert!(acts[0].enforce, "the network is told");
    assert_eq!((acts[0].from, acts[0].to), (None, None));
    assert_eq!(e.lifecycle(imsi(7)), None);
}

// ---- usage limits end with their period ----

use simguard_engine::rules::UsageLimit;

/// The `UsageBackUnder` outputs, as (IMSI suffix, limit, period end, time).
fn back_under(out: &[Output]) -> Vec<(u64, UsageLimit, i64, i64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::UsageBackUnder {
                imsi,
                limit,
                period_end,
                time,
            } => Some((imsi.value() % 100_000, limit.clone(), *period_end, *time)),
            _ => None,
        })
        .collect()
}

/// Device 1 sends 80 kB on day D against a daily rule cap of 50 kB and a
/// declared 60 kB a day; device 2 sends 20 kB. Day D+1: device 1 crosses
/// the rule's cap again (60 kB); a tick ends D+1.
fn usage_days() -> (Vec<Event>, i64) {
    let d0 = T0.div_euclid(DAY) * DAY; // midnight starting day D
    let mut ev = vec![
        group(
            "meters",
            DeclaredProfile {
                max_bytes_per_day: Some(60_000),
                ..Default::default()
            },
        ),
        provision(1, "meters"),
        provision(2, "meters"),
        Event::UpsertRule(rule(
            "day-cap",
            Trigger::Usage {
                period: UsagePeriod::Day,
                max_bytes: 50_000,
            },
            vec![step(ActionKind::Notify)],
        )),
    ];
    for (n, up) in [(1, 80_000), (2, 20_000)] {
        let s = format!("s{n}");
        ev.push(Rec::new(n, AcctStatus::Start, &s, d0 + 22 * HOUR).ev());
        ev.push(
            Rec::new(n, AcctStatus::Interim, &s, d0 + 23 * HOUR)
                .up(up / 2)
                .ev(),
        );
        ev.push(
            Rec::new(n, AcctStatus::Interim, &s, d0 + 23 * HOUR + 30 * MIN)
                .up(up)
                .ev(),
        );
    }
    // The last moment of day D changes nothing.
    ev.push(Event::Tick { time: d0 + DAY - 1 });
    // Device 2's record after midnight: the first event of D+1.
    ev.push(
        Rec::new(2, AcctStatus::Interim, "s2", d0 + DAY + 5 * MIN)
            .up(20_000)
            .ev(),
    );
    // Device 1 without new usage, then over the cap of D+1.
    ev.push(
        Rec::new(1, AcctStatus::Interim, "s1", d0 + DAY + 10 * MIN)
            .up(80_000)
            .ev(),
    );
    ev.push(
        Rec::new(1, AcctStatus::Interim, "s1", d0 + DAY + HOUR)
            .up(140_000)
            .ev(),
    );
    // Ticks end D+1, then D+2 (nothing was exceeded on D+2).
    ev.push(Event::Tick {
        time: d0 + 2 * DAY + MIN,
    });
    ev.push(Event::Tick {
        time: d0 + 3 * DAY + MIN,
    });
    (ev, d0)
}

#[test]
fn a_usage_limit_is_back_under_once_when_its_period_ends() {
    let (ev, d0) = usage_days();
    let mut e = Engine::new(EngineOptions::default());
    // Outputs per event, to see which event emitted what.
    let mut per_event: Vec<Vec<Output>> = Vec::new();
    for (i, x) in ev.iter().enumerate() {
        let mut out = Vec::new();
        e.apply(i as u64 + 1, x, &mut out);
        per_event.push(out);
    }
    let all: Vec<Output> = per_event.iter().flatten().cloned().collect();

    let notified: Vec<(u64, i64)> = actions(&all)
        .iter()
        .map(|a| (a.imsi.value() % 100_000, a.time))
        .collect();
    assert_eq!(
        notified,
        vec![(1, d0 + 23 * HOUR + 30 * MIN), (1, d0 + DAY + HOUR)],
        "device 1 crosses the cap on D and on D+1; a record of D+1 without usage is no crossing"
    );
    assert_eq!(
        kinds_of(&all, 1)
            .iter()
            .filter(|k| **k == FindingKind::DeclaredVolume)
            .count(),
        1
    );

    let day_cap = || UsageLimit::Rule("day-cap".into());
    let declared = UsageLimit::Finding(FindingKind::DeclaredVolume);
    assert_eq!(
        back_under(&all),
        vec![
            (1, day_cap(), d0 + DAY, d0 + DAY + 5 * MIN),
            (1, declared, d0 + DAY, d0 + DAY + 5 * MIN),
            (1, day_cap(), d0 + 2 * DAY, d0 + 2 * DAY + MIN),
        ],
        "once per limit and period, for device 1 only (device 2 never exceeded)"
    );

    // Day D ends with the first event past midnight (device 2's record),
    // not with the last tick of D, and before that event's own outputs.
    let first_of_d1 = ev
        .iter()
        .position(|x| x.time() == Some(d0 + DAY + 5 * MIN))
        .unwrap();
    assert!(back_under(&per_event[first_of_d1 - 1]).is_empty());
    let o = &per_event[first_of_d1];
    assert_eq!(back_under(o).len(), 2);
    assert!(
        matches!(o[0], Output::UsageBackUnder { .. }),
        "first: {:?}",
        o[0]
    );
    // D+1 ends with a tick: journal ticks end periods of quiet devices.
    assert_eq!(back_under(&per_event[ev.len() - 2]).len(), 1);
    assert!(back_under(&per_event[ev.len() - 1]).is_empty());
    assert_eq!(e.exceeded_limits().count(), 0, "nothing left pending");

    // Within one event, the end of D comes before a crossing of D+1: the
    // record that ends the period and crosses the cap again.
    let mut ev2 = ev.clone();
    ev2.remove(first_of_d1); // device 2's record
    ev2.remove(first_of_d1); // device 1's record without usage
    let (_, out2) = apply_all(&ev2);
    let pos = |f: &dyn Fn(&Output) -> bool| out2.iter().position(f).unwrap();
    let cleared =
        pos(&|o| matches!(o, Output::UsageBackUnder { period_end, .. } if *period_end == d0 + DAY));
    let second = pos(&|o| matches!(o, Output::Action(a) if a.time == d0 + DAY + HOUR));
    assert!(cleared < second, "{cleared} < {second}");
}

#[test]
fn usage_limits_replay_and_survive_a_snapshot() {
    let (ev, d0) = usage_days();
    let (_, straight) = apply_all(&ev);
    let (_, again) = apply_all(&ev);
    assert_eq!(straight, again, "the same journal gives the same outputs");
    assert_eq!(back_under(&straight).len(), 3);

    // Snapshot just before midnight, while day D's limits are pending.
    let cut = ev
        .iter()
        .position(|x| x.time() == Some(d0 + DAY - 1))
        .unwrap()
        + 1;
    let (e, mut out) = apply_all(&ev[..cut]);
    assert_eq!(e.exceeded_limits().count(), 2);
    let mut r = Engine::decode_snapshot(&e.encode_snapshot().unwrap()).unwrap();
    assert_eq!(
        r.exceeded_limits().collect::<Vec<_>>(),
        e.exceeded_limits().collect::<Vec<_>>()
    );
    for (i, x) in ev.iter().enumerate().skip(cut) {
        r.apply(i as u64 + 1, x, &mut out);
    }
    assert_eq!(back_under(&out), back_under(&straight));
    assert_eq!(out, straight);
}

/// A busy fleet's flows in batches of 6,000 (past the size from which the
/// engine spreads a batch's partitions over threads), with scanning, a
/// flood, beacons, uploads to new destinations, policy violations and
/// unattributed flows: every number of flow workers gives the same outputs
/// in the same order, the same finding ids and the same state.
#[test]
fn flow_workers_change_nothing() {
    let devices = 64u64;
    let mut ev = vec![
        group("g", DeclaredProfile::default()),
        group("h", DeclaredProfile::default()),
    ];
    for n in 1..=devices {
        ev.push(provision(n, if n % 2 == 0 { "g" } else { "h" }));
        ev.push(Rec::new(n, AcctStatus::Start, &format!("s{n}"), T0).ev());
    }
    ev.push(only_100_64("h"));
    let head_end = IpAddr::V4(Ipv4Addr::new(100, 64, 10, 20));
    let ntp = IpAddr::V4(Ipv4Addr::new(100, 64, 0, 123));
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for b in 0..12 {
        let base = T0 + b * 3 * HOUR;
        let flows = (0..6_000)
            .map(|k| {
                let t = base + k;
                let n = 1 + rnd() % devices;
                let r = rnd();
                match r % 100 {
                    0..=79 => flow(t, me(n), 40_000, head_end, 443, 6, 0x1b, 6_000, 8),
                    // Device 1 scans telnet.
                    80..=84 => flow(t, me(1), 40_000, pseudo_ip(r as i64), 23, 6, 0x02, 60, 1),
                    // Uploads to a few dozen hosts per batch.
                    85..=86 => flow(
                        t,
                        me(n),
                        40_001,
                        pseudo_ip(1_000 * b + (r % 50) as i64),
                        8443,
                        6,
                        0x1b,
                        2_000_000,
                        1_500,
                    ),
                    // Device 5 knocks on a host nobody answers.
                    87..=88 => flow(t, me(5), 40_002, pseudo_ip(7 + b), 9_999, 6, 0x02, 60, 1),
                    // Device 3 floods.
                    89 => flow(t, me(3), 40_003, pseudo_ip(9), 80, 17, 0, 9_000_000, 90_000),
                    // Nobody's addresses.
                    90..=94 => flow(
                        t,
                        pseudo_ip(r as i64 + 1),
                        1_234,
                        pseudo_ip(3),
                        80,
                        17,
                        0,
                        100,
                        1,
                    ),
                    _ => flow(t, me(n), 123, ntp, 123, 17, 0, 76, 1),
                }
            })
            .collect();
        ev.push(batch(flows));
    }

    let run_with = |workers: usize| {
        let mut e = Engine::new(EngineOptions::default());
        e.set_flow_workers(workers);
        let mut out = Vec::new();
        for (i, x) in ev.iter().enumerate() {
            e.apply(i as u64 + 1, x, &mut out);
        }
        (format!("{out:?}"), e.encode_snapshot().unwrap(), out)
    };
    let (one, one_state, out) = run_with(1);
    let kinds: std::collections::BTreeSet<FindingKind> =
        findings(&out).iter().map(|f| f.kind).collect();
    for k in [
        FindingKind::Scanning,
        FindingKind::Ddos,
        FindingKind::NewDestination,
        FindingKind::PolicyViolation,
    ] {
        assert!(kinds.contains(&k), "the workload raises {k:?}: {kinds:?}");
    }
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::UnattributedFlow { .. })),
        "the workload has unattributed flows"
    );
    for workers in [2, 5, 16] {
        let (many, many_state, _) = run_with(workers);
        assert!(one == many, "outputs differ with {workers} workers");
        assert!(
            one_state == many_state,
            "state differs with {workers} workers"
        );
    }
}
