//! The simulator against an in-test RADIUS accounting responder on 127.0.0.1.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Behaviour, Responder, Seen};
use simguard_radius::acct::StatusType;
use simguard_radius::tgpp::RatType;
use simguard_radius::{Accounting, Packet};
use simguard_sim::{fleet, run, GroundTruth, Mode, Profile, SimConfig, SimReport};

const SECRET: &str = "loopback-secret";
const START: u64 = 1_735_689_600; // 2025-01-01T00:00:00Z

fn config(target: SocketAddr, devices: u32) -> SimConfig {
    let mut c = SimConfig::new(target, SECRET);
    c.seed = 99;
    c.devices = devices;
    c.start_unix = START;
    c.sockets = 4;
    c
}

async fn run_to_end(cfg: SimConfig) -> SimReport {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    run(cfg, rx).await.expect("simulator run")
}

#[derive(Debug, Clone)]
struct Rec {
    from: SocketAddr,
    status: StatusType,
    session: String,
    imsi: String,
    ts: u32,
    input: u64,
    output: u64,
    interim: Option<u32>,
    rat: RatType,
    uli: String,
    framed: Option<Ipv4Addr>,
}

fn decode(seen: &Seen) -> Vec<Rec> {
    seen.packets
        .iter()
        .map(|(from, raw)| {
            let p = Packet::parse(raw).expect("parse");
            let a = Accounting::from_packet(&p).expect("decode");
            Rec {
                from: *from,
                status: a.status_type.unwrap(),
                session: a.session_id.unwrap().to_string(),
                imsi: a.imsi.unwrap().to_string(),
                ts: a.event_timestamp.unwrap(),
                input: a.input_octets.unwrap_or(0),
                output: a.output_octets.unwrap_or(0),
                interim: a.interim_interval,
                rat: a.rat_type.unwrap(),
                uli: format!("{:?}", a.uli.unwrap()),
                framed: a.framed_ip,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_over_loopback_matches_ground_truth() {
    let responder = Responder::start(SECRET, Behaviour::Answer, true);
    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.jsonl");
    let mut cfg = config(responder.addr, 50);
    cfg.speed = 3_600.0;
    cfg.sim_duration = Some(Duration::from_secs(3 * 3_600));
    cfg.record_to = Some(truth_path.clone());
    let t = Instant::now();
    let report = run_to_end(cfg.clone()).await;
    let wall = t.elapsed();
    let seen = responder.finish();
    println!("{report}");

    assert!(wall < Duration::from_secs(10), "took {wall:?}");
    assert!(
        wall > Duration::from_secs(2),
        "speed 3600 should take about 3 s, took {wall:?}"
    );
    assert_eq!(seen.bad_request_auth, 0);
    assert_eq!(seen.bad_message_auth, 0);
    assert_eq!(seen.missing_message_auth, 0);
    assert!(report.sent > 300, "{report:?}");
    assert_eq!(report.answered, report.sent);
    assert_eq!(
        report.timeouts + report.bad_responses + report.retransmits,
        0
    );
    assert_eq!(report.sent, seen.packets.len() as u64);
    assert_eq!(
        report.sent,
        report.by_status.start + report.by_status.interim + report.by_status.stop
    );
    assert!(report.latency_p50_us > 0 && report.latency_max_us >= report.latency_p99_us);
    assert_eq!(report.sim_time_start, START);
    assert_eq!(report.sim_time_end, START + 3 * 3_600);
    // A scheduling hiccup of a few ms is minutes of simulated time at this speed.
    assert!(report.max_lag_secs < 600.0, "{report:?}");

    let recs = decode(&seen);
    let devices = fleet(cfg.seed, cfg.devices, &cfg.mix, cfg.unprovisioned_share);
    let profile: HashMap<&str, Profile> = devices
        .iter()
        .map(|d| (d.imsi.as_str(), d.profile))
        .collect();
    let sources: HashSet<SocketAddr> = recs.iter().map(|r| r.from).collect();
    assert!(
        sources.len() > 1,
        "requests should spread over the socket pool"
    );

    let mut sessions: HashMap<&str, Vec<&Rec>> = HashMap::new();
    for r in &recs {
        sessions.entry(r.session.as_str()).or_default().push(r);
    }
    for (sid, rs) in sessions.iter_mut() {
        rs.sort_by_key(|r| r.ts);
        let p = profile[rs[0].imsi.as_str()];
        assert!(
            rs.iter()
                .all(|r| r.imsi == rs[0].imsi && r.framed == rs[0].framed),
            "{sid}"
        );
        let rank = |s: StatusType| match s {
            StatusType::Start => 0,
            StatusType::InterimUpdate => 1,
            _ => 2,
        };
        assert!(
            rs.windows(2)
                .all(|w| rank(w[0].status) <= rank(w[1].status)),
            "order in {sid}"
        );
        assert!(rs.iter().filter(|r| r.status == StatusType::Stop).count() <= 1);
        assert!(
            rs.windows(2)
                .all(|w| w[0].input <= w[1].input && w[0].output <= w[1].output),
            "{sid}"
        );
        for r in rs.iter().filter(|r| r.status != StatusType::Stop) {
            assert_eq!(r.interim, Some(p.report_interval_secs()), "{p}");
        }
        if p == Profile::SmartMeter {
            assert!(matches!(
                rs[0].rat,
                RatType::NB_IOT | RatType::LTE_M | RatType::GERAN
            ));
        }
        if p == Profile::Camera {
            assert_eq!(rs[0].rat, RatType::EUTRAN);
        }
    }
    let tracker_cells: Vec<usize> = devices
        .iter()
        .filter(|d| d.profile == Profile::PalletTracker)
        .map(|d| {
            recs.iter()
                .filter(|r| r.imsi == d.imsi)
                .map(|r| r.uli.as_str())
                .collect::<HashSet<_>>()
                .len()
        })
        .collect();
    assert!(
        tracker_cells.iter().filter(|n| **n > 1).count() >= 3,
        "{tracker_cells:?}"
    );

    // The ground truth lists exactly what the server received.
    let file = std::fs::File::open(&truth_path).unwrap();
    let truth: Vec<GroundTruth> = std::io::BufReader::new(file)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(truth.len(), recs.len());
    assert!(truth.iter().all(|t| t.answered));
    let mut want: Vec<(String, String, u64, u64, u64)> = truth
        .iter()
        .map(|t| {
            (
                t.session_id.clone(),
                t.status.clone(),
                t.sim_time_ms / 1_000,
                t.input_octets,
                t.output_octets,
            )
        })
        .collect();
    let name = |s: StatusType| match s {
        StatusType::Start => "start",
        StatusType::InterimUpdate => "interim",
        _ => "stop",
    };
    let mut got: Vec<(String, String, u64, u64, u64)> = recs
        .iter()
        .map(|r| {
            (
                r.session.clone(),
                name(r.status).to_string(),
                u64::from(r.ts),
                r.input,
                r.output,
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(want, got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_carries_the_deterministic_content() {
    // Network order and identifiers differ from the offline generator, the content does not.
    let responder = Responder::start(SECRET, Behaviour::Answer, true);
    let mut cfg = config(responder.addr, 40);
    cfg.speed = f64::INFINITY;
    cfg.rate = 5_000;
    cfg.sim_duration = Some(Duration::from_secs(6 * 3_600));
    let report = run_to_end(cfg.clone()).await;
    let seen = responder.finish();
    let offline = simguard_sim::generate_requests(&cfg, 1_000_000).unwrap();
    assert_eq!(report.sent, offline.len() as u64);
    let strip = |raw: &[u8]| {
        let p = Packet::parse(raw).unwrap();
        let mut a = format!("{:?}", Accounting::from_packet(&p).unwrap());
        a.push_str(&format!(
            "{:?}",
            p.attributes().filter(|x| x.typ != 80).collect::<Vec<_>>()
        ));
        a
    };
    let mut wire: Vec<String> = seen.packets.iter().map(|(_, raw)| strip(raw)).collect();
    let mut gen: Vec<String> = offline.iter().map(|raw| strip(raw)).collect();
    wire.sort();
    gen.sort();
    assert_eq!(wire, gen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_requests_are_retransmitted_byte_for_byte() {
    let responder = Responder::start(SECRET, Behaviour::DropFirst, true);
    let mut cfg = config(responder.addr, 30);
    cfg.speed = f64::INFINITY;
    cfg.rate = 2_000;
    cfg.timeout = Duration::from_millis(100);
    cfg.sim_duration = Some(Duration::from_secs(2 * 3_600));
    let report = run_to_end(cfg).await;
    let seen = responder.finish();
    println!("{report}");
    assert!(report.sent > 50);
    assert_eq!(report.retransmits, report.sent);
    assert_eq!(report.answered, report.sent);
    assert_eq!(report.timeouts, 0);
    assert_eq!(seen.packets.len() as u64, 2 * report.sent);
    // Each request arrived twice from the same port, identical to the byte.
    type Key = (SocketAddr, u8, Vec<u8>);
    let mut copies: HashMap<Key, Vec<&Vec<u8>>> = HashMap::new();
    for (from, raw) in &seen.packets {
        copies
            .entry((*from, raw[1], raw[4..20].to_vec()))
            .or_default()
            .push(raw);
    }
    assert_eq!(copies.len() as u64, report.sent);
    assert!(copies.values().all(|c| c.len() == 2 && c[0] == c[1]));
    // Retransmission waits for the timeout.
    assert!(report.latency_p50_us >= 100_000, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_yields_timeouts() {
    let responder = Responder::start(SECRET, Behaviour::Never, true);
    let mut cfg = config(responder.addr, 10);
    cfg.mode = Mode::Load {
        rate: 200,
        duration: Duration::from_millis(200),
    };
    cfg.timeout = Duration::from_millis(50);
    cfg.retries = 2;
    let t = Instant::now();
    let report = run_to_end(cfg).await;
    let seen = responder.finish();
    assert!(report.sent >= 10, "{report:?}");
    assert_eq!(report.answered, 0);
    assert_eq!(report.timeouts, report.sent);
    assert_eq!(report.retransmits, 2 * report.sent);
    assert_eq!(seen.packets.len() as u64, 3 * report.sent);
    // 200 ms of sending, then 50 + 100 + 200 ms of retrying the last request.
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_answers_are_counted_and_not_accepted() {
    let responder = Responder::start(SECRET, Behaviour::WrongSecret, false);
    let mut cfg = config(responder.addr, 5);
    cfg.mode = Mode::Load {
        rate: 100,
        duration: Duration::from_millis(100),
    };
    cfg.timeout = Duration::from_millis(50);
    cfg.retries = 1;
    let report = run_to_end(cfg).await;
    responder.finish();
    assert!(report.sent > 0);
    assert_eq!(report.answered, 0);
    assert_eq!(report.timeouts, report.sent);
    assert_eq!(report.bad_responses, 2 * report.sent, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_answers_to_retransmissions_count_as_duplicates() {
    let responder = Responder::start(SECRET, Behaviour::Delay(Duration::from_millis(150)), false);
    let mut cfg = config(responder.addr, 5);
    cfg.mode = Mode::Load {
        rate: 100,
        duration: Duration::from_millis(200),
    };
    cfg.timeout = Duration::from_millis(100);
    cfg.retries = 3;
    let report = run_to_end(cfg).await;
    responder.finish();
    assert!(report.sent > 5);
    assert_eq!(report.answered, report.sent, "{report:?}");
    assert_eq!(report.retransmits, report.sent, "{report:?}");
    // The answer to a retransmission arrives after the first one was accepted; those
    // for the last requests come after the run has ended.
    assert!(report.duplicate_responses > 0, "{report:?}");
    assert!(
        report.duplicate_responses <= report.retransmits,
        "{report:?}"
    );
    assert_eq!(report.bad_responses + report.unmatched_responses, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_mode_reaches_its_rate_with_growing_counters() {
    let responder = Responder::start(SECRET, Behaviour::Answer, true);
    let mut cfg = config(responder.addr, 100);
    cfg.mode = Mode::Load {
        rate: 5_000,
        duration: Duration::from_secs(1),
    };
    let report = run_to_end(cfg).await;
    let seen = responder.finish();
    println!("{report}");
    assert!(report.achieved_rate >= 2_500.0, "{report:?}");
    assert!(
        report.achieved_rate <= 5_500.0,
        "rate limit exceeded: {report:?}"
    );
    assert!(report.answered >= 2_500, "{report:?}");
    assert_eq!(report.answered, report.sent);
    assert_eq!(report.by_status.interim, report.sent);
    assert!(report.latency_p50_us > 0 && report.latency_p99_us >= report.latency_p50_us);
    let recs = decode(&seen);
    let mut by_session: HashMap<&str, Vec<&Rec>> = HashMap::new();
    for r in &recs {
        assert_eq!(r.status, StatusType::InterimUpdate);
        by_session.entry(&r.session).or_default().push(r);
    }
    assert_eq!(by_session.len(), 100);
    for rs in by_session.values() {
        // Arrival order from one device is its send order only per socket, so sort by counter.
        let mut v: Vec<u64> = rs.iter().map(|r| r.input + r.output).collect();
        v.sort_unstable();
        assert!(v.windows(2).all(|w| w[0] < w[1]), "counters must grow");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_an_endless_run() {
    let responder = Responder::start(SECRET, Behaviour::Answer, false);
    let mut cfg = config(responder.addr, 200);
    cfg.speed = 600.0;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let task = tokio::spawn(run(cfg, rx));
    tokio::time::sleep(Duration::from_millis(400)).await;
    tx.send(true).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("run must end after shutdown")
        .unwrap()
        .unwrap();
    responder.finish();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(report.sent > 0);
    assert_eq!(report.answered + report.abandoned, report.sent);
    // Simulated time advanced by about 0.4 s x 600.
    let span = report.sim_time_end - report.sim_time_start;
    assert!((150..600).contains(&span), "{span}");
}

#[tokio::test]
async fn unreachable_target_is_reported_as_timeouts_not_an_error() {
    // A port nobody listens on: ICMP port unreachable comes back on loopback.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    let mut cfg = config(addr, 3);
    cfg.mode = Mode::Load {
        rate: 50,
        duration: Duration::from_millis(100),
    };
    cfg.timeout = Duration::from_millis(20);
    cfg.retries = 1;
    let report = run_to_end(cfg).await;
    assert!(report.sent > 0);
    assert_eq!(report.timeouts, report.sent);
}
