//! The attack lab: scenario files, what each attack injects against what its label
//! says, benign variety, determinism, and a run over the wire.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

use common::{Behaviour, Responder};
use simguard_radius::acct::StatusType;
use simguard_radius::tgpp::UserLocationInfo;
use simguard_radius::{Accounting, Packet};
use simguard_sim::{
    generate_scenario, mirai_excluded, run_scenario, AttackKind, FlowTruth, GroundTruth, Label,
    Scenario, ScenarioOutput, ScenarioRun, FIRMWARE_SERVER,
};

const SECRET: &str = "lab-secret";

/// Every attack once, on a fleet small enough to generate in well under a second.
const TEST_SCENARIO: &str = r#"
name = "test"
seed = 11
start = "2025-03-29T12:00:00Z"   # EU summer time starts 13 h in
duration = "1d"
warmup = "6h"

[fleet]
devices = 150
mix = { smart-meter = 40, pallet-tracker = 25, patient-monitor = 15, vending-machine = 10, camera = 10 }

[benign]
local_time_schedules = true
interim_jitter_secs = 2

[[benign.firmware_update]]
profile = "pallet-tracker"
at = "7h"
window = "2h"
bytes = 3_000_000

[[attack]]
kind = "mirai-scan"
at = "6h"
duration = "20s"

[[attack]]
kind = "ddos-udp"
at = "6h 10m"
duration = "5s"
rate = 300

[[attack]]
kind = "ddos-syn"
at = "6h 20m"
duration = "5s"
rate = 300

[[attack]]
kind = "ddos-ack"
at = "6h 30m"
duration = "5s"
rate = 300

[[attack]]
kind = "ddos-gre"
at = "6h 40m"
duration = "5s"

[[attack]]
kind = "dns-water-torture"
at = "6h 50m"
duration = "10s"
rate = 100

[[attack]]
kind = "volume-spike-x10"
profile = "patient-monitor"
at = "7h"
duration = "2h"

[[attack]]
kind = "volume-spike-x100"
profile = "pallet-tracker"
at = "7h"
duration = "30m"

[[attack]]
kind = "rhythm-change"
profile = "smart-meter"
at = "8h"
duration = "10m"

[[attack]]
kind = "exfiltration"
at = "8h"
duration = "1m"
rate = 100000

[[attack]]
kind = "sim-swap-phone"
profile = "patient-monitor"
at = "9h"
duration = "1h"

[[attack]]
kind = "roaming-disallowed"
profile = "pallet-tracker"
at = "10h"
duration = "1h"

[[attack]]
kind = "impossible-travel"
profile = "pallet-tracker"
at = "11h"
duration = "10m"

[[attack]]
kind = "silent"
profile = "patient-monitor"
at = "12h"
duration = "1h"

[[attack]]
kind = "flapping"
profile = "patient-monitor"
at = "13h"
duration = "10m"

[[attack]]
kind = "cell-overload"
profile = "smart-meter"
at = "14h"
duration = "3m"
devices = 40
"#;

fn scenario() -> Scenario {
    Scenario::from_toml(TEST_SCENARIO).expect("test scenario")
}

/// Generated once for all tests: it is a pure function of the scenario.
fn output() -> &'static ScenarioOutput {
    static OUT: OnceLock<ScenarioOutput> = OnceLock::new();
    OUT.get_or_init(|| generate_scenario(&scenario(), SECRET).expect("generate"))
}

fn label(kind: AttackKind) -> &'static Label {
    let v: Vec<&Label> = output()
        .labels
        .iter()
        .filter(|l| l.attack == kind)
        .collect();
    assert_eq!(v.len(), 1, "one {kind} label: {:#?}", output().labels);
    v[0]
}

fn flows_of(dev: u32) -> Vec<&'static FlowTruth> {
    output().flows.iter().filter(|f| f.device == dev).collect()
}

/// What the tests read from a request.
#[derive(Debug)]
struct Sent {
    imeisv: String,
    /// MCC of 3GPP-SGSN-MCC-MNC.
    mcc: u16,
    /// The ULI as "MCC-MNC-TAC-ECI" for E-UTRAN, else its debug form.
    cell: String,
    status: Option<StatusType>,
}

fn decode(bytes: &[u8]) -> Sent {
    let p = Packet::parse(bytes).expect("parse");
    let a = Accounting::from_packet(&p).expect("accounting");
    Sent {
        imeisv: a.imeisv.expect("IMEISV").to_string(),
        mcc: a.sgsn_mcc_mnc.expect("SGSN-MCC-MNC").mcc,
        cell: uli_text(&a),
        status: a.status_type,
    }
}

/// The device's records in send order, each with its decoded request.
fn records_of(dev: u32) -> Vec<(&'static GroundTruth, Sent)> {
    let o = output();
    o.records
        .iter()
        .zip(&o.requests)
        .filter(|(r, _)| r.device == dev)
        .map(|(r, bytes)| (r, decode(bytes)))
        .collect()
}

fn detail_str<'a>(l: &'a Label, key: &str) -> &'a str {
    l.detail[key]
        .as_str()
        .unwrap_or_else(|| panic!("detail.{key}: {}", l.detail))
}

fn mcc_of(a: &Sent) -> u16 {
    a.mcc
}

fn uli_text(a: &Accounting<'_>) -> String {
    match a.uli.expect("ULI") {
        UserLocationInfo::TaiEcgi {
            tai_plmn, tac, eci, ..
        } => {
            format!("{:03}-{:02}-{tac}-{eci}", tai_plmn.mcc, tai_plmn.mnc)
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn every_attack_is_labelled_once_with_the_fields_the_evaluation_reads() {
    let o = output();
    let kinds: BTreeSet<AttackKind> = o.labels.iter().map(|l| l.attack).collect();
    assert_eq!(kinds.len(), AttackKind::ALL.len(), "{kinds:?}");
    let s = scenario();
    let warm = s.start_ms() + s.warmup.as_ms();
    let fleet = s.devices();
    for l in &o.labels {
        assert!(
            l.start_ms >= warm && l.start_ms <= l.end_ms && l.end_ms <= s.end_ms(),
            "{l:?}"
        );
        if l.attack == AttackKind::CellOverload {
            assert!(l.imsi.is_none() && l.device.is_none() && l.cell.is_some());
        } else {
            let d = &fleet[l.device.expect("device") as usize];
            assert_eq!(l.imsi.as_deref(), Some(d.imsi.as_str()));
            assert_eq!(l.profile, Some(d.profile));
            assert_eq!(
                l.group.as_deref(),
                Some(simguard_sim::placement(d.profile).group)
            );
            assert!(!o.report.benign_imsis.contains(&d.imsi));
        }
        // The JSON names are the ones the evaluation matches on.
        let j = serde_json::to_value(l).unwrap();
        assert_eq!(j["attack"], l.attack.name());
        for k in [
            "imsi", "device", "profile", "group", "start_ms", "end_ms", "cell", "detail",
        ] {
            assert!(j.get(k).is_some(), "{k} in {j}");
        }
        let back: Label = serde_json::from_value(j).unwrap();
        assert_eq!(&back, l);
    }
    // Benign: provisioned, untouched devices of the regular fleet.
    let attacked: HashSet<&str> = o.labels.iter().filter_map(|l| l.imsi.as_deref()).collect();
    assert_eq!(
        o.report.benign_imsis.len(),
        s.fleet.devices as usize - attacked.len()
    );
    let days = (s.end_ms() - warm) as f64 / 86_400_000.0;
    assert!((o.report.benign_device_days - o.report.benign_imsis.len() as f64 * days).abs() < 1e-6);
}

#[test]
fn mirai_scan_fans_out_on_telnet_with_single_syns() {
    let l = label(AttackKind::MiraiScan);
    let flows: Vec<_> = flows_of(l.device.unwrap())
        .into_iter()
        .filter(|f| f.start_ms >= l.start_ms && f.end_ms <= l.end_ms)
        .filter(|f| f.dst_port == 23 || f.dst_port == 2323)
        .collect();
    assert_eq!(flows.len(), 20 * 160, "20 s at 160 probes/s");
    let mut per_sec: BTreeMap<u64, HashSet<Ipv4Addr>> = BTreeMap::new();
    for f in &flows {
        per_sec.entry(f.start_ms / 1_000).or_default().insert(f.dst);
        assert_eq!((f.proto, f.tcp_flags, f.bytes, f.packets), (6, 0x02, 40, 1));
        assert!(!mirai_excluded(f.dst), "{}", f.dst);
        assert_eq!(f.direction, "up");
    }
    assert!(
        per_sec.values().all(|d| d.len() >= 100),
        "{:?}",
        per_sec.values().map(|d| d.len()).collect::<Vec<_>>()
    );
    let p2323 = flows.iter().filter(|f| f.dst_port == 2323).count();
    assert_eq!(p2323 * 10, flows.len(), "every 10th probe to 2323");
    let sports: HashSet<u16> = flows.iter().map(|f| f.src_port).collect();
    assert_eq!(sports.len(), 1, "fixed source port per bot");
    assert!(sports.iter().all(|p| *p >= 1_024));
    // Flows leave the exporter within a second of their packets.
    assert!(flows
        .iter()
        .all(|f| f.sim_time_ms >= f.end_ms && f.sim_time_ms - f.start_ms <= 1_000));
    assert_eq!(l.start_ms, flows.iter().map(|f| f.start_ms).min().unwrap());
    assert_eq!(l.end_ms, flows.iter().map(|f| f.end_ms).max().unwrap());
}

#[test]
fn floods_hit_one_target_with_the_vector_s_packet_shape() {
    for (kind, proto, flags, size, random_ports) in [
        (AttackKind::DdosUdp, 17, 0, 540, true),
        (AttackKind::DdosSyn, 6, 0x02, 60, true),
        (AttackKind::DdosAck, 6, 0x10, 552, true),
        (AttackKind::DdosGre, 47, 0, 564, false),
    ] {
        let l = label(kind);
        let target: Ipv4Addr = detail_str(l, "target").parse().unwrap();
        let flows: Vec<_> = flows_of(l.device.unwrap())
            .into_iter()
            .filter(|f| f.dst == target)
            .collect();
        assert!(!flows.is_empty(), "{kind}");
        let packets: u64 = flows.iter().map(|f| f.packets).sum();
        assert_eq!(packets, l.detail["packets"].as_u64().unwrap(), "{kind}");
        for f in &flows {
            assert_eq!((f.proto, f.tcp_flags), (proto, flags), "{kind}");
            assert_eq!(f.bytes, f.packets * size, "{kind}");
            assert!(f.start_ms >= l.start_ms && f.end_ms <= l.end_ms, "{kind}");
        }
        let ports: HashSet<u16> = flows.iter().map(|f| f.dst_port).collect();
        if random_ports {
            // 300 packets/s on random ports: fan-out stays visible, one record per port.
            assert!(ports.len() > 1_000, "{kind}: {} ports", ports.len());
        } else {
            assert_eq!(flows.len(), 5, "one GRE record per second");
        }
    }
}

#[test]
fn water_torture_floods_a_public_resolver_with_single_queries() {
    let l = label(AttackKind::DnsWaterTorture);
    let resolver: Ipv4Addr = detail_str(l, "resolver").parse().unwrap();
    assert!(["8.8.8.8", "74.82.42.42", "64.6.64.6", "4.2.2.2"].contains(&detail_str(l, "resolver")));
    let q: Vec<_> = flows_of(l.device.unwrap())
        .into_iter()
        .filter(|f| f.dst == resolver)
        .collect();
    assert_eq!(q.len(), 10 * 100);
    let sports: HashSet<u16> = q.iter().map(|f| f.src_port).collect();
    assert!(sports.len() > 900, "random source ports");
    for f in q {
        assert_eq!((f.proto, f.dst_port, f.packets), (17, 53, 1));
        assert!((70..=90).contains(&f.bytes));
    }
}

/// The accounting counters include the attack's bytes: at the first record after the
/// attack, the session's Acct-Input-Octets equal the uplink bytes of all its flows.
#[test]
fn accounting_counts_the_attack_traffic() {
    for kind in [
        AttackKind::MiraiScan,
        AttackKind::DdosUdp,
        AttackKind::DdosGre,
        AttackKind::DnsWaterTorture,
        AttackKind::Exfiltration,
    ] {
        let l = label(kind);
        let dev = l.device.unwrap();
        let recs = records_of(dev);
        let (r, _) = recs
            .iter()
            .find(|(r, _)| r.sim_time_ms > l.end_ms && r.status != "start")
            .unwrap_or_else(|| panic!("{kind}: a record after the attack"));
        let up: u64 = flows_of(dev)
            .iter()
            .filter(|f| f.session_id == r.session_id && f.direction == "up")
            .filter(|f| f.sim_time_ms <= r.sim_time_ms)
            .map(|f| f.bytes)
            .sum();
        assert_eq!(r.input_octets, up, "{kind}");
        assert!(up >= l.detail["bytes"].as_u64().unwrap() / 2, "{kind}");
    }
}

#[test]
fn exfiltration_goes_to_a_destination_the_fleet_never_uses() {
    let l = label(AttackKind::Exfiltration);
    let dst: Ipv4Addr = detail_str(l, "destination").parse().unwrap();
    let o = output();
    let users: HashSet<u32> = o
        .flows
        .iter()
        .filter(|f| f.dst == dst || f.src == dst)
        .map(|f| f.device)
        .collect();
    assert_eq!(users, HashSet::from([l.device.unwrap()]));
    let up: u64 = o
        .flows
        .iter()
        .filter(|f| f.dst == dst)
        .map(|f| f.bytes)
        .sum();
    assert_eq!(up, 60 * 100_000);
}

#[test]
fn volume_spikes_multiply_uplink_to_the_usual_destinations() {
    for (kind, factor) in [
        (AttackKind::VolumeSpikeX10, 10),
        (AttackKind::VolumeSpikeX100, 100),
    ] {
        let l = label(kind);
        let dev = l.device.unwrap();
        let recs = records_of(dev);
        // Unknown before the first record of a session that was open at the start.
        let mut prev: Option<u64> = None;
        let mut spiked = Vec::new();
        let mut normal = Vec::new();
        for (r, _) in &recs {
            if r.status == "start" {
                prev = Some(0);
                continue;
            }
            let Some(p) = prev.replace(r.input_octets) else {
                continue;
            };
            let grew = r.input_octets.saturating_sub(p);
            if r.sim_time_ms >= l.start_ms && r.sim_time_ms <= l.end_ms {
                spiked.push(grew);
            } else if r.sim_time_ms < l.start_ms {
                normal.push(grew);
            }
        }
        assert!(!spiked.is_empty(), "{kind}");
        let max_normal = *normal.iter().max().unwrap();
        let min_spiked = *spiked.iter().min().unwrap();
        assert!(
            min_spiked > max_normal * factor / 4,
            "{kind}: {spiked:?} vs {max_normal}"
        );
        let before: HashSet<Ipv4Addr> = flows_of(dev)
            .iter()
            .filter(|f| f.direction == "up" && f.sim_time_ms < l.start_ms)
            .map(|f| f.dst)
            .collect();
        let during: HashSet<Ipv4Addr> = flows_of(dev)
            .iter()
            .filter(|f| {
                f.direction == "up" && f.sim_time_ms >= l.start_ms && f.sim_time_ms <= l.end_ms
            })
            .map(|f| f.dst)
            .collect();
        assert!(during.is_subset(&before), "{kind}: {during:?} {before:?}");
    }
}

#[test]
fn rhythm_change_reports_every_minute() {
    let l = label(AttackKind::RhythmChange);
    let starts: Vec<u64> = records_of(l.device.unwrap())
        .iter()
        .filter(|(r, _)| {
            r.status == "start" && r.sim_time_ms >= l.start_ms && r.sim_time_ms <= l.end_ms
        })
        .map(|(r, _)| r.sim_time_ms)
        .collect();
    assert!(starts.len() >= 9, "{starts:?}");
    for w in starts.windows(2) {
        assert!((59_000..=62_000).contains(&(w[1] - w[0])), "{starts:?}");
    }
}

#[test]
fn sim_swap_changes_the_tac_at_the_onset_to_a_handset() {
    let l = label(AttackKind::SimSwapPhone);
    let old = detail_str(l, "old_tac");
    let new = detail_str(l, "new_tac");
    assert_ne!(old, new);
    let recs = records_of(l.device.unwrap());
    assert!(recs.iter().any(|(r, _)| r.sim_time_ms < l.start_ms));
    for (r, a) in &recs {
        let tac = &a.imeisv[..8];
        if r.sim_time_ms < l.start_ms {
            assert_eq!(tac, old, "{r:?}");
        } else {
            assert_eq!(tac, new, "{r:?}");
        }
    }
    let first_new = recs.iter().find(|(_, a)| &a.imeisv[..8] == new).unwrap();
    assert_eq!(first_new.0.sim_time_ms, l.start_ms);
    assert_eq!(first_new.1.status, Some(StatusType::Start));
    // The fleet's own modem TACs are untouched.
    let fleet = scenario().base_fleet();
    let d = &fleet[l.device.unwrap() as usize];
    assert_eq!(d.tac(), old);
}

#[test]
fn roaming_moves_the_serving_network_out_of_the_allowed_countries() {
    let l = label(AttackKind::RoamingDisallowed);
    let country = detail_str(l, "country");
    assert!(!simguard_sim::ALLOWED_COUNTRIES.contains(&country));
    let mcc = match country {
        "CH" => 228,
        "UA" => 255,
        c => panic!("{c}"),
    };
    let recs = records_of(l.device.unwrap());
    let abroad: Vec<_> = recs
        .iter()
        .filter(|(r, _)| r.sim_time_ms >= l.start_ms && r.sim_time_ms <= l.end_ms)
        .collect();
    assert!(abroad.len() > 5);
    for (_, a) in &abroad {
        assert_eq!(mcc_of(a), mcc);
        assert!(
            a.cell.starts_with(&format!("{mcc}-")) || !a.cell.contains('-'),
            "{}",
            a.cell
        );
    }
    assert!(recs
        .iter()
        .filter(|(r, _)| r.sim_time_ms < l.start_ms)
        .all(|(_, a)| mcc_of(a) != mcc));
    assert!(recs
        .iter()
        .filter(|(r, _)| r.sim_time_ms > l.end_ms)
        .all(|(_, a)| mcc_of(a) != mcc));
}

#[test]
fn impossible_travel_is_two_consecutive_records_far_apart_within_minutes() {
    let l = label(AttackKind::ImpossibleTravel);
    let recs = records_of(l.device.unwrap());
    let i = recs
        .iter()
        .position(|(r, _)| r.sim_time_ms == l.start_ms)
        .unwrap();
    let (before, after) = (&recs[i - 1], &recs[i]);
    assert!(after.0.sim_time_ms - before.0.sim_time_ms <= 5 * 60_000);
    assert!(l.detail["distance_km"].as_u64().unwrap() >= 1_000);
    let to = match detail_str(l, "to_country") {
        "PT" => 268,
        "GR" => 202,
        c => panic!("{c}"),
    };
    assert_eq!(mcc_of(&after.1), to);
    assert_ne!(mcc_of(&before.1), to);
}

#[test]
fn a_silent_device_sends_nothing_from_the_onset() {
    let l = label(AttackKind::Silent);
    let recs = records_of(l.device.unwrap());
    assert!(!recs.is_empty());
    let last = recs.last().unwrap().0.sim_time_ms;
    assert!(last < l.start_ms);
    assert_eq!(l.detail["last_record_ms"].as_u64(), Some(last));
    assert_eq!(l.end_ms, scenario().end_ms());
    assert!(
        !recs
            .iter()
            .any(|(r, _)| r.status == "stop" && r.sim_time_ms == last),
        "no Stop"
    );
    assert!(flows_of(l.device.unwrap())
        .iter()
        .all(|f| f.sim_time_ms < l.start_ms));
}

#[test]
fn flapping_reconnects_every_half_minute_to_minute() {
    let l = label(AttackKind::Flapping);
    let recs = records_of(l.device.unwrap());
    let starts: Vec<_> = recs
        .iter()
        .filter(|(r, _)| {
            r.status == "start" && r.sim_time_ms >= l.start_ms && r.sim_time_ms <= l.end_ms
        })
        .collect();
    assert!(starts.len() >= 9, "{}", starts.len());
    let sessions: HashSet<&str> = starts.iter().map(|(r, _)| r.session_id.as_str()).collect();
    assert_eq!(sessions.len(), starts.len(), "a new session each time");
    for w in starts.windows(2) {
        let gap = w[1].0.sim_time_ms - w[0].0.sim_time_ms;
        assert!((27_000..=60_000).contains(&gap), "{gap}");
    }
}

#[test]
fn cell_overload_attaches_many_devices_to_one_cell_within_minutes() {
    let l = label(AttackKind::CellOverload);
    let cell = l.cell.as_deref().unwrap();
    let imsis: HashSet<&str> = l.detail["imsis"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(imsis.len(), 40);
    let o = output();
    let mut attached = HashSet::new();
    for (r, bytes) in o.records.iter().zip(&o.requests) {
        if r.status == "start"
            && r.sim_time_ms >= l.start_ms
            && r.sim_time_ms <= l.end_ms
            && decode(bytes).cell == cell
        {
            attached.insert(r.imsi.clone());
        }
    }
    assert!(
        imsis.iter().all(|i| attached.contains(*i)),
        "{} of 40 in {cell}",
        attached.len()
    );
    assert!(l.end_ms - l.start_ms <= 3 * 60_000);
    // They are in the inventory the scenario provisions.
    let all: HashSet<String> = scenario()
        .devices()
        .into_iter()
        .filter(|d| d.provisioned)
        .map(|d| d.imsi)
        .collect();
    assert!(imsis.iter().all(|i| all.contains(*i)));
}

#[test]
fn benign_variety_happens() {
    let o = output();
    let b = o.report.benign;
    assert!(b.dst_shifts > 0, "{b:?}");
    assert!(b.firmware_downloads >= 20, "{b:?}");
    let fw: Vec<_> = o
        .flows
        .iter()
        .filter(|f| f.src == FIRMWARE_SERVER)
        .collect();
    assert_eq!(fw.len() as u64, b.firmware_downloads);
    assert!(fw
        .iter()
        .all(|f| f.bytes == 3_000_000 && f.profile == simguard_sim::Profile::PalletTracker));
    // The shift counter only moves when the clocks change inside the run.
    let s = scenario();
    let switch = 1_743_296_400_000u64; // 2025-03-30T01:00:00Z
    assert!(s.start_ms() < switch && switch < s.end_ms());
}

#[test]
fn the_same_scenario_gives_the_same_bytes() {
    let a = output();
    let b = generate_scenario(&scenario(), SECRET).unwrap();
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.ipfix, b.ipfix);
    assert_eq!(a.labels, b.labels);
    let mut other = scenario();
    other.seed += 1;
    let c = generate_scenario(&other, SECRET).unwrap();
    assert_ne!(a.labels, c.labels);
}

fn err(toml: &str) -> String {
    match Scenario::from_toml(toml) {
        Ok(_) => panic!("accepted: {toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parse_errors_name_the_field() {
    let base = TEST_SCENARIO;
    let e = err(&base.replace("devices = 150", "devices = \"many\""));
    assert!(e.contains("devices"), "{e}");
    let e = err(&base.replace("duration = \"1d\"", "duration = \"1x\""));
    assert!(e.contains("duration") && e.contains("1x"), "{e}");
    let e = err(&base.replace("warmup = \"6h\"", "warmup = \"6h\"\nwarmpu = 1"));
    assert!(e.contains("warmpu"), "{e}");
    let e = err(&base.replace("camera = 10 }", "camera = 10, toaster = 1 }"));
    assert!(e.contains("fleet.mix.toaster"), "{e}");
    let e = err(&base.replace("kind = \"silent\"", "kind = \"quiet\""));
    assert!(e.contains("quiet") && e.contains("kind"), "{e}");
    let e = err(&base.replace(
        "at = \"6h\"\nduration = \"20s\"",
        "at = \"5h\"\nduration = \"20s\"",
    ));
    assert!(e.contains("attack[0].at") && e.contains("warm-up"), "{e}");
    let e = err(&base.replace(
        "duration = \"10s\"\nrate = 100",
        "duration = \"10s\"\nrate = 0",
    ));
    assert!(e.contains("attack[5].rate"), "{e}");
    let e = err(&base.replace(
        "at = \"9h\"\nduration = \"1h\"",
        "at = \"9h\"\nduration = \"1h\"\ncount = 500",
    ));
    assert!(e.contains("attack[10].profile"), "{e}");
    let e = err(&base.replace("start = \"2025-03-29T12:00:00Z\"", "start = \"yesterday\""));
    assert!(e.contains("start") && e.contains("yesterday"), "{e}");
    let e = err(&base.replace(
        "profile = \"pallet-tracker\"\nat = \"11h\"",
        "profile = \"smart-meter\"\nat = \"11h\"",
    ));
    assert!(e.contains("attack[12].profile"), "{e}");
}

fn repo_scenario(name: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shipped_scenarios_load_and_cover_every_attack() {
    for (name, min_each) in [("small.toml", 1), ("standard.toml", 3)] {
        let s = repo_scenario(name);
        let mut counts: BTreeMap<AttackKind, u32> = BTreeMap::new();
        for a in &s.attacks {
            *counts.entry(a.kind).or_default() += a.count;
        }
        for k in AttackKind::ALL {
            assert!(
                counts.get(&k).copied().unwrap_or(0) >= min_each,
                "{name}: {k}"
            );
        }
        assert!(
            s.benign.local_time_schedules && !s.benign.firmware_update.is_empty(),
            "{name}"
        );
    }
    let small = repo_scenario("small.toml");
    assert!(small.fleet.devices <= 1_000);
    assert!(small.warmup.as_ms() >= 2 * 86_400_000);
}

/// A UDP socket that counts IPFIX datagrams.
fn collector() -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut n = 0;
        let mut buf = vec![0u8; 65_536];
        while sock.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    });
    (addr, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_over_the_wire_and_writes_the_labels() {
    let mut s = scenario();
    // A shorter run: only the attacks of the first hours.
    s.attacks
        .retain(|a| a.at.as_ms() <= 7 * 3_600_000 && a.kind != AttackKind::VolumeSpikeX10);
    s.duration = simguard_sim::Span(8 * 3_600_000);
    let offline = generate_scenario(&s, SECRET).unwrap();
    let responder = Responder::start(SECRET, Behaviour::Answer, false);
    let (ipfix, col) = collector();
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.jsonl");
    let mut run = ScenarioRun::new(responder.addr, SECRET);
    run.ipfix_target = Some(ipfix);
    run.labels_path = Some(labels.clone());
    run.sockets = 2;
    let report = run_scenario(&s, run).await.unwrap();
    let got = col.join().unwrap();
    let _ = responder.finish();
    assert_eq!(report.sim.sent, offline.requests.len() as u64);
    assert_eq!(report.sim.answered, report.sim.sent);
    assert_eq!(report.sim.ipfix_messages, offline.ipfix.len() as u64);
    assert_eq!(got, offline.ipfix.len());
    assert_eq!(report.labels, offline.labels);
    assert_eq!(Label::read_jsonl(&labels).unwrap(), offline.labels);
    assert_eq!(report.benign_imsis, offline.report.benign_imsis);
}
