//! Fleet generation and record content, without the network.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use simguard_radius::acct::StatusType;
use simguard_radius::tgpp::{RatType, UserLocationInfo};
use simguard_radius::{Accounting, Code, Packet};
use simguard_sim::{fleet, generate_requests, luhn_valid, Profile, ProfileMix, SimConfig};

const START: u64 = 1_719_792_000; // 2024-07-01T00:00:00Z, summer time in Europe

fn cfg(seed: u64, devices: u32) -> SimConfig {
    let mut c = SimConfig::new("127.0.0.1:1813".parse().unwrap(), "s3cret");
    c.seed = seed;
    c.devices = devices;
    c.start_unix = START;
    c
}

#[test]
fn same_seed_same_fleet_other_seed_other_fleet() {
    let mix = ProfileMix::default();
    let a = fleet(42, 500, &mix, 0.01);
    let b = fleet(42, 500, &mix, 0.01);
    let c = fleet(43, 500, &mix, 0.01);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let imsis_a: HashSet<_> = a.iter().map(|d| &d.imsi).collect();
    let imsis_c: HashSet<_> = c.iter().map(|d| &d.imsi).collect();
    assert!(
        imsis_a.is_disjoint(&imsis_c),
        "different seeds should give different IMSIs"
    );
}

#[test]
fn same_seed_same_records_other_seed_other_records() {
    let k = 2_000;
    let a = generate_requests(&cfg(7, 200), k).unwrap();
    let b = generate_requests(&cfg(7, 200), k).unwrap();
    let c = generate_requests(&cfg(8, 200), k).unwrap();
    assert_eq!(a.len(), k);
    // Byte-identical, authenticators included, since identifiers are fixed here.
    assert_eq!(a, b);
    let decode = |v: &Vec<Vec<u8>>| -> Vec<String> {
        v.iter()
            .map(|p| {
                let p = Packet::parse(p).unwrap();
                format!("{:?}", Accounting::from_packet(&p).unwrap())
            })
            .collect()
    };
    let (da, dc) = (decode(&a), decode(&c));
    assert_ne!(da, dc);
    let same = da.iter().zip(&dc).filter(|(x, y)| x == y).count();
    assert!(same < k / 100, "{same} identical records across seeds");
}

#[test]
fn identifiers_have_valid_formats_and_are_unique() {
    let devices = fleet(5, 5_000, &ProfileMix::default(), 0.002);
    let mut imsis = HashSet::new();
    let mut iccids = HashSet::new();
    let mut msisdns = HashSet::new();
    let mut imeis = HashSet::new();
    for d in &devices {
        assert_eq!(d.imsi.len(), 15, "{}", d.imsi);
        assert!(d.imsi.starts_with("90170") && d.imsi.bytes().all(|b| b.is_ascii_digit()));
        assert!(
            (19..=20).contains(&d.iccid.len()) && d.iccid.starts_with("89"),
            "{}",
            d.iccid
        );
        assert!(luhn_valid(&d.iccid), "ICCID {} fails Luhn", d.iccid);
        assert_eq!(d.imeisv.len(), 16, "{}", d.imeisv);
        assert!(d.imeisv.bytes().all(|b| b.is_ascii_digit()));
        let imei = d.imei();
        assert_eq!(imei.len(), 15);
        assert!(luhn_valid(&imei), "IMEI {imei} fails Luhn");
        assert_eq!(&imei[..14], &d.imeisv[..14]);
        assert!(d.msisdn.bytes().all(|b| b.is_ascii_digit()) && d.msisdn.len() <= 15);
        assert_eq!(d.home, "90170");
        assert!(imsis.insert(d.imsi.clone()), "duplicate IMSI {}", d.imsi);
        assert!(
            iccids.insert(d.iccid.clone()),
            "duplicate ICCID {}",
            d.iccid
        );
        assert!(
            msisdns.insert(d.msisdn.clone()),
            "duplicate MSISDN {}",
            d.msisdn
        );
        imeis.insert(imei);
    }
    assert!(
        imeis.len() > devices.len() * 99 / 100,
        "IMEIs should be nearly unique"
    );
    assert_eq!(devices.iter().filter(|d| !d.provisioned).count(), 10);
    // Each profile uses its own module TACs.
    let mut tacs: HashMap<Profile, HashSet<String>> = HashMap::new();
    for d in &devices {
        tacs.entry(d.profile)
            .or_default()
            .insert(d.tac().to_string());
    }
    for (p, t) in &tacs {
        for (q, u) in &tacs {
            if p != q {
                assert!(t.is_disjoint(u), "{p} and {q} share a TAC");
            }
        }
    }
}

#[test]
fn fleet_follows_the_mix() {
    let devices = fleet(9, 1_000, &ProfileMix::default(), 0.0);
    let count = |p| devices.iter().filter(|d| d.profile == p).count();
    assert_eq!(count(Profile::SmartMeter), 500);
    assert_eq!(count(Profile::PalletTracker), 250);
    assert_eq!(count(Profile::PatientMonitor), 100);
    assert_eq!(count(Profile::VendingMachine), 100);
    assert_eq!(count(Profile::Camera), 50);
    assert!(devices.iter().all(|d| d.provisioned));
    let only: ProfileMix = "camera=1".parse().unwrap();
    assert!(fleet(9, 10, &only, 0.0)
        .iter()
        .all(|d| d.profile == Profile::Camera));
}

struct Decoded {
    status: StatusType,
    session: String,
    imsi: String,
    ts: u32,
    input: Option<u64>,
    output: Option<u64>,
    interim: Option<u32>,
    rat: Option<RatType>,
    uli: Option<UserLocationInfo>,
    cause: Option<u32>,
    session_time: Option<u32>,
}

fn decode_all(packets: &[Vec<u8>]) -> Vec<Decoded> {
    packets
        .iter()
        .map(|b| {
            let p = Packet::parse(b).unwrap();
            assert_eq!(p.code(), Code::AccountingRequest);
            assert!(p.verify_request_authenticator(b"s3cret"));
            let a = Accounting::from_packet(&p).unwrap();
            assert_eq!(a.imsi_mcc_mnc.unwrap().to_string(), "901-70");
            assert_eq!(a.ggsn_mcc_mnc.unwrap().to_string(), "901-70");
            assert!(a.sgsn_mcc_mnc.is_some() && a.ms_timezone.is_some() && a.charging_id.is_some());
            assert_eq!(a.called_station_id, Some("iot.simguard"));
            assert_eq!(a.nas_identifier, Some("pgw-sim-1"));
            assert!(a.imeisv.is_some() && a.calling_station_id.is_some() && a.framed_ip.is_some());
            assert_eq!(a.nsapi, Some(5));
            Decoded {
                status: a.status_type.unwrap(),
                session: a.session_id.unwrap().to_string(),
                imsi: a.imsi.unwrap().to_string(),
                ts: a.event_timestamp.unwrap(),
                input: a.input_octets,
                output: a.output_octets,
                interim: a.interim_interval,
                rat: a.rat_type,
                uli: a.uli,
                cause: a.terminate_cause,
                session_time: a.session_time,
            }
        })
        .collect()
}

#[test]
fn a_week_of_fleet_life_is_consistent() {
    let mut c = cfg(11, 150);
    c.sim_duration = Some(Duration::from_secs(7 * 86_400));
    let packets = generate_requests(&c, 2_000_000).unwrap();
    assert!(packets.len() < 2_000_000, "sim_duration must bound the run");
    let recs = decode_all(&packets);
    let devices = fleet(11, 150, &c.mix, 0.0);
    let profile: HashMap<&str, Profile> = devices
        .iter()
        .map(|d| (d.imsi.as_str(), d.profile))
        .collect();

    // Time order, and within the week.
    assert!(recs.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(recs
        .iter()
        .all(|r| u64::from(r.ts) >= START && u64::from(r.ts) < START + 7 * 86_400));

    let mut sessions: HashMap<&str, Vec<&Decoded>> = HashMap::new();
    for r in &recs {
        sessions.entry(r.session.as_str()).or_default().push(r);
    }
    let mut rats: HashMap<Profile, HashMap<u8, usize>> = HashMap::new();
    let mut gigawords = 0;
    for (sid, rs) in &sessions {
        let imsi = rs[0].imsi.as_str();
        let p = profile[imsi];
        assert!(
            rs.iter().all(|r| r.imsi == imsi),
            "session {sid} spans IMSIs"
        );
        // Start first (unless the session predates the simulation), Stop last, one each.
        let starts = rs.iter().filter(|r| r.status == StatusType::Start).count();
        let stops = rs.iter().filter(|r| r.status == StatusType::Stop).count();
        assert!(starts <= 1 && stops <= 1);
        if starts == 1 {
            assert_eq!(rs[0].status, StatusType::Start, "{sid}");
        } else {
            assert!(p.always_on(), "{p} session {sid} without Start");
            assert!(rs[0].session_time.unwrap() > 0);
        }
        if stops == 1 {
            assert_eq!(rs.last().unwrap().status, StatusType::Stop);
            assert!(rs.last().unwrap().cause.is_some());
        }
        let mut last = (0u64, 0u64);
        for r in rs {
            match r.status {
                StatusType::Start => {
                    assert!(r.input.is_none());
                    assert_eq!(r.interim, Some(p.report_interval_secs()));
                }
                StatusType::InterimUpdate => {
                    assert!(p.always_on(), "{p} sent an interim");
                    assert_eq!(r.interim, Some(p.report_interval_secs()));
                }
                _ => assert!(r.interim.is_none()),
            }
            if let (Some(i), Some(o)) = (r.input, r.output) {
                assert!(i >= last.0 && o >= last.1, "counters went down in {sid}");
                last = (i, o);
                if i > u64::from(u32::MAX) {
                    gigawords += 1;
                }
            }
        }
        // Interims of always-on devices come exactly one interval apart.
        let interims: Vec<u32> = rs
            .iter()
            .filter(|r| r.status == StatusType::InterimUpdate)
            .map(|r| r.ts)
            .collect();
        assert!(
            interims
                .windows(2)
                .all(|w| w[1] - w[0] == p.report_interval_secs()),
            "{sid}"
        );
        let rat = rs[0].rat.unwrap();
        *rats.entry(p).or_default().entry(rat.0).or_default() += 1;
        for r in rs {
            match (rat, r.uli.unwrap()) {
                (RatType::GERAN, UserLocationInfo::Cgi { .. }) => {}
                (RatType::UTRAN, UserLocationInfo::Sai { .. }) => {}
                (
                    RatType::EUTRAN | RatType::NB_IOT | RatType::LTE_M,
                    UserLocationInfo::TaiEcgi { .. },
                ) => {}
                (rat, uli) => panic!("RAT {rat:?} with ULI {uli:?}"),
            }
        }
    }
    assert!(gigawords > 0, "cameras should pass 4 GiB within a week");

    // Meters are mostly NB-IoT, trackers LTE-M, cameras E-UTRAN.
    let share = |p: Profile, rat: RatType| {
        let m = &rats[&p];
        *m.get(&rat.0).unwrap_or(&0) as f64 / m.values().sum::<usize>() as f64
    };
    assert!(share(Profile::SmartMeter, RatType::NB_IOT) > 0.7);
    assert!(share(Profile::PalletTracker, RatType::LTE_M) > 0.6);
    assert_eq!(share(Profile::Camera, RatType::EUTRAN), 1.0);

    // Meters report about once a day.
    let meters = devices
        .iter()
        .filter(|d| d.profile == Profile::SmartMeter)
        .count() as f64;
    let meter_starts = recs
        .iter()
        .filter(|r| {
            r.status == StatusType::Start && profile[r.imsi.as_str()] == Profile::SmartMeter
        })
        .count() as f64;
    assert!(
        (meter_starts / meters - 7.0).abs() < 1.0,
        "{meter_starts} meter sessions"
    );

    // Trackers move between cells and cross borders.
    let mut cells: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut countries: HashMap<&str, HashSet<u16>> = HashMap::new();
    for r in recs
        .iter()
        .filter(|r| profile[r.imsi.as_str()] == Profile::PalletTracker)
    {
        let uli = r.uli.unwrap();
        cells.entry(&r.imsi).or_default().insert(format!("{uli:?}"));
        countries
            .entry(&r.imsi)
            .or_default()
            .insert(uli.plmn().unwrap().mcc);
    }
    let moving = cells.values().filter(|c| c.len() > 5).count();
    assert!(
        moving * 2 > cells.len(),
        "only {moving} of {} trackers moved",
        cells.len()
    );
    assert!(
        countries.values().any(|c| c.len() > 1),
        "no tracker crossed a border"
    );
}

#[test]
fn daily_volume_matches_the_profile() {
    for p in Profile::ALL {
        let devices = match p {
            Profile::SmartMeter => 2_000,
            Profile::PalletTracker => 50,
            Profile::PatientMonitor => 100,
            Profile::VendingMachine => 200,
            Profile::Camera => 20,
        };
        let mut c = cfg(3, devices);
        c.mix = ProfileMix::only(p);
        let days = 3;
        c.sim_duration = Some(Duration::from_secs(days * 86_400));
        let recs = decode_all(&generate_requests(&c, 5_000_000).unwrap());
        // Sum of increments inside sessions: a pre-existing session's first report
        // is only its baseline.
        let mut last: HashMap<&str, u64> = HashMap::new();
        let mut total = 0u64;
        for r in &recs {
            let now = r.input.unwrap_or(0) + r.output.unwrap_or(0);
            match last.insert(&r.session, now) {
                Some(prev) => total += now - prev,
                None if r.status == StatusType::Start => {}
                None if r.status == StatusType::Stop && !p.always_on() => total += now,
                None => {}
            }
        }
        let per_day = total as f64 / (f64::from(c.devices) * days as f64);
        let expected = p.expected_bytes_per_day() as f64;
        let ratio = per_day / expected;
        assert!(
            (0.85..1.15).contains(&ratio),
            "{p}: {per_day:.0} B/day vs expected {expected:.0}"
        );
    }
}

#[test]
fn a_resumed_fleet_keeps_its_devices_but_not_its_session_ids() {
    let sessions = |start: u64| -> (HashSet<String>, HashMap<String, (u8, String)>) {
        let mut c = cfg(21, 100);
        c.start_unix = start;
        c.sim_duration = Some(Duration::from_secs(86_400));
        let mut ids = HashSet::new();
        let mut habits = HashMap::new();
        for raw in generate_requests(&c, 1_000_000).unwrap() {
            let p = Packet::parse(&raw).unwrap();
            let a = Accounting::from_packet(&p).unwrap();
            ids.insert(a.session_id.unwrap().to_string());
            let plmn = a.sgsn_mcc_mnc.unwrap().to_string();
            habits.insert(a.imsi.unwrap().to_string(), (a.rat_type.unwrap().0, plmn));
        }
        (ids, habits)
    };
    let (first, habits_first) = sessions(START);
    let (resumed, habits_resumed) = sessions(START + 86_400);
    assert!(first.len() > 100);
    assert!(
        first.is_disjoint(&resumed),
        "a resumed run must not reuse session ids"
    );
    // Same devices, same radio; static devices stay in their country.
    let devices = fleet(21, 100, &ProfileMix::default(), 0.0);
    for d in devices
        .iter()
        .filter(|d| d.profile != Profile::PalletTracker)
    {
        if let (Some(a), Some(b)) = (habits_first.get(&d.imsi), habits_resumed.get(&d.imsi)) {
            assert_eq!(a, b, "{} changed RAT or network", d.imsi);
        }
    }
}
