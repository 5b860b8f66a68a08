//! IPFIX export: the flows agree with the accounting the server receives, go where each
//! profile says, and are as deterministic as the accounting.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Behaviour, Responder};
use simguard_radius::acct::StatusType;
use simguard_radius::{Accounting, Packet};
use simguard_sim::{
    fleet, generate_ipfix, generate_requests, run, FlowTruth, GroundTruth, Profile, SimConfig,
    SimReport, TruthLine,
};

const SECRET: &str = "ipfix-secret";
const START: u64 = 1_735_689_600; // 2025-01-01T00:00:00Z
const DOMAIN: u32 = 7;

fn config(radius: SocketAddr, collector: Option<SocketAddr>, devices: u32) -> SimConfig {
    let mut c = SimConfig::new(radius, SECRET);
    c.seed = 2024;
    c.devices = devices;
    c.start_unix = START;
    c.sockets = 4;
    c.speed = f64::INFINITY;
    c.rate = 10_000;
    c.ipfix_target = collector;
    c.ipfix_observation_domain = DOMAIN;
    c
}

async fn run_to_end(cfg: SimConfig) -> SimReport {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    run(cfg, rx).await.expect("simulator run")
}

/// A UDP socket on loopback that keeps every datagram, in arrival order.
struct Collector {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Vec<u8>>>,
}

impl Collector {
    fn start() -> Collector {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => got.push(buf[..n].to_vec()),
                    // Stop only once the queue is empty.
                    Err(_) if stop2.load(Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
            got
        });
        Collector { addr, stop, handle }
    }

    fn finish(self) -> Vec<Vec<u8>> {
        std::thread::sleep(Duration::from_millis(50));
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// One decoded data record of template 256.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Flow {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    proto: u8,
    flags: u16,
    bytes: u64,
    packets: u64,
    start: u64,
    end: u64,
}

struct Message {
    export: u32,
    sequence: u32,
    domain: u32,
    template: bool,
    flows: Vec<Flow>,
}

/// The template the simulator must announce: (IE, length) in record order.
const TEMPLATE: [(u16, u16); 10] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 2),
    (1, 8),
    (2, 8),
    (152, 8),
    (153, 8),
];

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// A minimal IPFIX decoder for exactly the one template, written from RFC 7011 and
/// independent of the simulator's encoder. `known` says whether the template was
/// seen in an earlier message.
fn decode_message(m: &[u8], known: &mut bool) -> Message {
    assert!(m.len() <= 1400, "message of {} bytes", m.len());
    assert_eq!(be16(m, 0), 10, "IPFIX version");
    assert_eq!(be16(m, 2) as usize, m.len(), "message length");
    let mut msg = Message {
        export: be32(m, 4),
        sequence: be32(m, 8),
        domain: be32(m, 12),
        template: false,
        flows: Vec::new(),
    };
    let mut at = 16;
    while at < m.len() {
        let (id, len) = (be16(m, at), be16(m, at + 2) as usize);
        assert!(len >= 4 && at + len <= m.len(), "set length");
        let body = &m[at + 4..at + len];
        match id {
            2 => {
                assert_eq!(be16(body, 0), 256, "template id");
                assert_eq!(be16(body, 2) as usize, TEMPLATE.len(), "field count");
                for (i, (ie, l)) in TEMPLATE.iter().enumerate() {
                    assert_eq!((be16(body, 4 + 4 * i), be16(body, 6 + 4 * i)), (*ie, *l));
                }
                assert_eq!(body.len(), 4 + 4 * TEMPLATE.len());
                msg.template = true;
                *known = true;
            }
            256 => {
                assert!(*known, "data set before its template");
                assert_eq!(body.len() % 47, 0, "no padding expected");
                for r in body.chunks(47) {
                    msg.flows.push(Flow {
                        src: Ipv4Addr::from(be32(r, 0)),
                        dst: Ipv4Addr::from(be32(r, 4)),
                        sport: be16(r, 8),
                        dport: be16(r, 10),
                        proto: r[12],
                        flags: be16(r, 13),
                        bytes: be64(r, 15),
                        packets: be64(r, 23),
                        start: be64(r, 31),
                        end: be64(r, 39),
                    });
                }
            }
            other => panic!("unexpected set id {other}"),
        }
        at += len;
    }
    msg
}

/// Decodes a message stream, checking headers: domain, sequence numbers (records
/// before the message), template in message 0, 64, 128, ...
fn decode_stream(messages: &[Vec<u8>]) -> Vec<Message> {
    let mut known = false;
    let mut records = 0u64;
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let msg = decode_message(m, &mut known);
        assert_eq!(msg.domain, DOMAIN);
        assert_eq!(u64::from(msg.sequence), records % (1 << 32), "message {i}");
        assert_eq!(msg.template, i % 64 == 0, "template refresh at message {i}");
        assert!(!msg.flows.is_empty());
        for f in &msg.flows {
            assert!(
                f.end / 1_000 <= u64::from(msg.export),
                "{f:?} after export time"
            );
        }
        records += msg.flows.len() as u64;
        out.push(msg);
    }
    out
}

fn pool_addr(a: Ipv4Addr) -> bool {
    a.octets()[..2] == [10, 45]
}

fn documentation_addr(a: Ipv4Addr) -> bool {
    let o = a.octets();
    matches!(o[..3], [192, 0, 2] | [198, 51, 100] | [203, 0, 113])
}

#[derive(Debug, Default)]
struct Session {
    imsi: String,
    framed: Option<Ipv4Addr>,
    start_ms: u64,
    last_ts: u32,
    input: u64,
    output: u64,
    input_packets: u64,
    output_packets: u64,
    // What the flows attributed to it add up to.
    up: (u64, u64),
    down: (u64, u64),
}

/// The session's start in ms from its Acct-Session-Id: `{charging id}-{start ms}-{device}`, hex.
fn session_start_ms(sid: &str) -> u64 {
    let mid = sid.split('-').nth(1).expect(sid);
    u64::from_str_radix(mid, 16).expect(sid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_add_up_to_the_accounting_and_go_where_the_profile_says() {
    let responder = Responder::start(SECRET, Behaviour::Answer, true);
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.jsonl");
    let mut cfg = config(responder.addr, Some(collector.addr), 60);
    cfg.sim_duration = Some(Duration::from_secs(2 * 86_400));
    cfg.record_to = Some(truth_path.clone());
    let report = run_to_end(cfg.clone()).await;
    let seen = responder.finish();
    let raw = collector.finish();
    println!("{report}");

    assert_eq!(report.answered, report.sent);
    assert_eq!(report.ipfix_messages, raw.len() as u64, "{report:?}");
    let messages = decode_stream(&raw);
    let flows: Vec<Flow> = messages.iter().flat_map(|m| m.flows.clone()).collect();
    assert_eq!(report.flows_exported, flows.len() as u64);
    assert!(flows.len() > 5_000, "{}", flows.len());
    assert!(report.to_string().contains("ipfix"), "{report}");

    // The accounting as the server saw it, per session.
    let mut sessions: HashMap<String, Session> = HashMap::new();
    for (_, raw) in &seen.packets {
        let a = Accounting::from_packet(&Packet::parse(raw).unwrap()).unwrap();
        let sid = a.session_id.unwrap().to_string();
        let s = sessions.entry(sid.clone()).or_default();
        s.imsi = a.imsi.unwrap().to_string();
        s.framed = a.framed_ip;
        s.start_ms = session_start_ms(&sid);
        s.last_ts = s.last_ts.max(a.event_timestamp.unwrap());
        if a.status_type != Some(StatusType::Start) {
            // Counters are cumulative: the last record has the largest.
            s.input = s.input.max(a.input_octets.unwrap());
            s.output = s.output.max(a.output_octets.unwrap());
            s.input_packets = s.input_packets.max(u64::from(a.input_packets.unwrap()));
            s.output_packets = s.output_packets.max(u64::from(a.output_packets.unwrap()));
        }
    }
    let mut by_ip: HashMap<Ipv4Addr, Vec<String>> = HashMap::new();
    for (sid, s) in &sessions {
        by_ip
            .entry(s.framed.expect("framed ip"))
            .or_default()
            .push(sid.clone());
    }

    // Each flow belongs to exactly one session: its device address is the session's
    // Framed-IP and it lies within the session's [start, last report].
    let devices = fleet(cfg.seed, cfg.devices, &cfg.mix, cfg.unprovisioned_share);
    let profile_of: HashMap<&str, Profile> = devices
        .iter()
        .map(|d| (d.imsi.as_str(), d.profile))
        .collect();
    let mut owner: HashMap<Flow, String> = HashMap::new();
    let mut remotes: HashMap<String, HashSet<(Ipv4Addr, u16, u8)>> = HashMap::new();
    let mut volume: HashMap<String, u64> = HashMap::new();
    for f in &flows {
        let up = pool_addr(f.src);
        let (dev, remote, rport) = if up {
            (f.src, f.dst, f.dport)
        } else {
            (f.dst, f.src, f.sport)
        };
        assert!(pool_addr(dev), "{f:?}");
        assert!(documentation_addr(remote), "not an RFC 5737 address: {f:?}");
        // Not 40 bytes a packet: a Stop soon after an Interim can add 20 bytes in one
        // packet to the counters, and the flows carry exactly what the counters say.
        assert!(
            f.start <= f.end && f.bytes >= f.packets && f.packets >= 1,
            "{f:?}"
        );
        match f.proto {
            6 => assert!(f.flags & 0x10 != 0 && f.flags & !0x1b == 0, "{f:?}"),
            17 => assert_eq!(f.flags, 0, "{f:?}"),
            p => panic!("protocol {p}"),
        }
        let candidates: Vec<&String> = by_ip
            .get(&dev)
            .map(|v| {
                v.iter()
                    .filter(|sid| {
                        let s = &sessions[*sid];
                        s.start_ms <= f.start && f.end <= u64::from(s.last_ts) * 1_000 + 999
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(candidates.len(), 1, "{f:?} matches {candidates:?}");
        let sid = candidates[0].clone();
        let s = sessions.get_mut(&sid).unwrap();
        let dir = if up { &mut s.up } else { &mut s.down };
        dir.0 += f.bytes;
        dir.1 += f.packets;
        remotes
            .entry(s.imsi.clone())
            .or_default()
            .insert((remote, rport, f.proto));
        *volume.entry(s.imsi.clone()).or_default() += f.bytes;
        owner.insert(*f, s.imsi.clone());
    }

    // Exactly the counters, session by session, including sessions that were already
    // open when the simulation started.
    let mut with_usage = 0;
    for (sid, s) in &sessions {
        assert_eq!(
            (s.up, s.down),
            ((s.input, s.input_packets), (s.output, s.output_packets)),
            "session {sid} of {}",
            s.imsi
        );
        with_usage += usize::from(s.input + s.output > 0);
    }
    assert!(with_usage > 50, "{with_usage}");

    // Destinations per profile.
    let ip = |a, b, c, d| Ipv4Addr::new(a, b, c, d);
    let mut camera_min = u64::MAX;
    let mut others_max = 0u64;
    for d in &devices {
        let Some(r) = remotes.get(&d.imsi) else {
            continue;
        };
        let tcp = |port| r.iter().filter(move |x| x.1 == port && x.2 == 6);
        match d.profile {
            Profile::SmartMeter => {
                for x in r {
                    assert!(
                        [
                            (ip(198, 51, 100, 10), 443, 6),
                            (ip(198, 51, 100, 11), 443, 6)
                        ]
                        .contains(x)
                            || *x == (ip(198, 51, 100, 123), 123, 17),
                        "meter {}: {x:?}",
                        d.imsi
                    );
                }
                assert_eq!(tcp(443).count(), 1, "a meter has one head-end: {r:?}");
            }
            Profile::PalletTracker => {
                for x in r {
                    assert!(
                        [
                            (ip(203, 0, 113, 20), 8883, 6),
                            (ip(203, 0, 113, 21), 8883, 6)
                        ]
                        .contains(x)
                            || *x == (ip(192, 0, 2, 53), 53, 17),
                        "tracker {}: {x:?}",
                        d.imsi
                    );
                }
                assert_eq!(tcp(8883).count(), 1, "a tracker has one cloud: {r:?}");
            }
            Profile::PatientMonitor => {
                for x in r {
                    assert!(
                        (40..=42).any(|h| *x == (ip(203, 0, 113, h), 443, 6)),
                        "monitor {}: {x:?}",
                        d.imsi
                    );
                }
            }
            Profile::VendingMachine => {
                for x in r {
                    assert!(
                        *x == (ip(198, 51, 100, 50), 443, 6)
                            || *x == (ip(203, 0, 113, 60), 1883, 6),
                        "vending machine {}: {x:?}",
                        d.imsi
                    );
                }
            }
            Profile::Camera => {
                for x in r {
                    assert!(
                        [
                            (ip(203, 0, 113, 80), 5004, 17),
                            (ip(203, 0, 113, 80), 5005, 17),
                            (ip(203, 0, 113, 80), 443, 6),
                        ]
                        .contains(x),
                        "camera {}: {x:?}",
                        d.imsi
                    );
                }
            }
        }
        let v = volume[&d.imsi];
        if d.profile == Profile::Camera {
            camera_min = camera_min.min(v);
        } else {
            others_max = others_max.max(v);
        }
    }
    assert!(
        camera_min > others_max,
        "cameras carry the most: {camera_min} vs {others_max}"
    );
    for p in Profile::ALL {
        assert!(
            devices
                .iter()
                .any(|d| d.profile == p && remotes.contains_key(&d.imsi)),
            "no flows for {p}"
        );
    }

    // The ground truth lists every exported flow, with the owner attribution found.
    let file = std::fs::File::open(&truth_path).unwrap();
    let mut truth_flows: Vec<FlowTruth> = Vec::new();
    let mut requests = 0u64;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.unwrap();
        match serde_json::from_str::<TruthLine>(&line).unwrap() {
            TruthLine::Flow(f) => {
                assert!(line.contains(r#""kind":"flow""#), "{line}");
                truth_flows.push(f);
            }
            TruthLine::Request(r) => {
                // Request lines still read as plain GroundTruth.
                let plain: GroundTruth = serde_json::from_str(&line).unwrap();
                assert_eq!(plain, r);
                requests += 1;
            }
        }
    }
    assert_eq!(requests, report.sent);
    assert_eq!(truth_flows.len(), flows.len());
    let mut from_truth: Vec<Flow> = Vec::new();
    for t in &truth_flows {
        let f = Flow {
            src: t.src,
            dst: t.dst,
            sport: t.src_port,
            dport: t.dst_port,
            proto: t.proto,
            flags: t.tcp_flags,
            bytes: t.bytes,
            packets: t.packets,
            start: t.start_ms,
            end: t.end_ms,
        };
        assert_eq!(owner.get(&f), Some(&t.imsi), "{t:?}");
        assert_eq!(profile_of[t.imsi.as_str()], t.profile);
        assert_eq!(t.direction == "up", pool_addr(t.src), "{t:?}");
        assert!(t.start_ms >= session_start_ms(&t.session_id) && t.end_ms <= t.sim_time_ms);
        from_truth.push(f);
    }
    let mut exported = flows.clone();
    exported.sort();
    from_truth.sort();
    assert_eq!(exported, from_truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_is_deterministic_and_leaves_the_accounting_alone() {
    let mut streams = Vec::new();
    let mut cfg = config("127.0.0.1:1".parse().unwrap(), None, 40);
    cfg.sim_duration = Some(Duration::from_secs(86_400));
    for _ in 0..2 {
        let responder = Responder::start(SECRET, Behaviour::Answer, true);
        let collector = Collector::start();
        cfg.target = responder.addr;
        cfg.ipfix_target = Some(collector.addr);
        let report = run_to_end(cfg.clone()).await;
        let seen = responder.finish();
        let raw = collector.finish();
        assert_eq!(report.answered, report.sent);
        assert_eq!(report.ipfix_messages, raw.len() as u64);
        // The requests on the wire are those of the run without IPFIX.
        let mut plain = cfg.clone();
        plain.ipfix_target = None;
        let offline = generate_requests(&plain, 1_000_000).unwrap();
        assert_eq!(report.sent, offline.len() as u64);
        let content = |raw: &[u8]| {
            let p = Packet::parse(raw).unwrap();
            format!("{:?}", Accounting::from_packet(&p).unwrap())
        };
        let mut wire: Vec<String> = seen.packets.iter().map(|(_, r)| content(r)).collect();
        let mut want: Vec<String> = offline.iter().map(|r| content(r)).collect();
        wire.sort();
        want.sort();
        assert_eq!(wire, want);
        streams.push(raw);
    }
    // Byte for byte the same messages, in the same order, both times and offline.
    assert!(streams[0].len() > 100, "{}", streams[0].len());
    assert_eq!(streams[0], streams[1]);
    let offline = generate_ipfix(&cfg, 1_000_000).unwrap();
    assert_eq!(streams[0], offline);
}

#[test]
fn enabling_ipfix_changes_no_request_and_the_seed_changes_the_flows() {
    let mut with = config("127.0.0.1:1813".parse().unwrap(), None, 300);
    with.sim_duration = Some(Duration::from_secs(86_400));
    let without = with.clone();
    with.ipfix_target = Some("127.0.0.1:4739".parse().unwrap());
    let a = generate_requests(&without, 20_000).unwrap();
    let b = generate_requests(&with, 20_000).unwrap();
    assert_eq!(a.len(), 20_000);
    assert_eq!(a, b, "IPFIX export must not perturb the RADIUS stream");

    let f1 = generate_ipfix(&with, 20_000).unwrap();
    let f2 = generate_ipfix(&with, 20_000).unwrap();
    assert_eq!(f1, f2);
    let mut other = with.clone();
    other.seed += 1;
    let f3 = generate_ipfix(&other, 20_000).unwrap();
    let records = |s: &[Vec<u8>]| -> Vec<Flow> {
        decode_stream(s).into_iter().flat_map(|m| m.flows).collect()
    };
    let (r1, r3) = (records(&f1), records(&f3));
    assert!(r1.len() > 10_000, "{}", r1.len());
    let set3: HashSet<&Flow> = r3.iter().collect();
    let same = r1.iter().filter(|f| set3.contains(f)).count();
    assert!(same < r1.len() / 100, "{same} identical flows across seeds");

    // Offline, the flows of each record add up to its counters too: per device and
    // direction, the flow total equals the sum of the last counters of its sessions.
    let mut last: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for raw in &b {
        let a = Accounting::from_packet(&Packet::parse(raw).unwrap()).unwrap();
        if a.status_type != Some(StatusType::Start) {
            let sid = a.session_id.unwrap().to_string();
            let e = last.entry(sid).or_default();
            e.0 = e.0.max(a.input_octets.unwrap());
            e.1 = e.1.max(a.output_octets.unwrap());
        }
    }
    let total_up: u64 = last.values().map(|v| v.0).sum();
    let total_down: u64 = last.values().map(|v| v.1).sum();
    let flow_up: u64 = r1
        .iter()
        .filter(|f| pool_addr(f.src))
        .map(|f| f.bytes)
        .sum();
    let flow_down: u64 = r1
        .iter()
        .filter(|f| pool_addr(f.dst))
        .map(|f| f.bytes)
        .sum();
    assert_eq!((flow_up, flow_down), (total_up, total_down));
}

#[test]
fn load_mode_refuses_ipfix() {
    let mut c = config("127.0.0.1:1813".parse().unwrap(), None, 10);
    c.mode = simguard_sim::Mode::Load {
        rate: 10,
        duration: Duration::from_secs(1),
    };
    assert!(generate_ipfix(&c, 10).is_err());
    c.ipfix_target = Some("127.0.0.1:4739".parse().unwrap());
    assert!(generate_requests(&c, 10).is_err());
}
