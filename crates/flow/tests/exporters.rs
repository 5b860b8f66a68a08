//! Real exporters: softflowd (NetFlow v5, v9, IPFIX) and pmacct's pmacctd
//! nfprobe (IPFIX) turn a capture we write with scapy into flow exports sent to a
//! UDP socket of this test; we decode them and check every flow exactly.
//!
//! Needs `softflowd`, `pmacctd` (Debian packages softflowd, pmacct) and
//! `/usr/bin/python3` with scapy (python3-scapy). A missing tool fails the test
//! with the command that installs it; nothing is skipped.

use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use simguard_flow::{Collector, FlowRecord};

fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: install it with `apt-get install -y {package}` (CI installs it)");
}

/// The traffic: a TLS-like TCP conversation, a DNS-like UDP exchange and a
/// SYN-only scan, 250 ms apart (exact in binary, so pcap times are exact).
const SCAPY: &str = r#"
import sys
from scapy.all import Ether, IP, TCP, UDP, Raw, wrpcap
pk = []
t = 1700000000.0
def add(p):
    global t
    p = Ether() / p
    p.time = t
    t += 0.25
    pk.append(p)
c, s = "10.45.0.7", "93.184.216.34"
add(IP(src=c, dst=s) / TCP(sport=40001, dport=443, flags="S"))
add(IP(src=s, dst=c) / TCP(sport=443, dport=40001, flags="SA"))
for i in range(5):
    add(IP(src=c, dst=s) / TCP(sport=40001, dport=443, flags="PA") / Raw(b"x" * 100))
    add(IP(src=s, dst=c) / TCP(sport=443, dport=40001, flags="A") / Raw(b"y" * 1000))
add(IP(src=c, dst=s) / TCP(sport=40001, dport=443, flags="FA"))
add(IP(src=s, dst=c) / TCP(sport=443, dport=40001, flags="FA"))
for i in range(3):
    add(IP(src=c, dst="8.8.8.8") / UDP(sport=5353, dport=53) / Raw(b"q" * 30))
    add(IP(src="8.8.8.8", dst=c) / UDP(sport=53, dport=5353) / Raw(b"r" * 60))
for port in (22, 23, 80, 2323, 8080):
    add(IP(src=c, dst="198.51.100.9") / TCP(sport=50000, dport=port, flags="S"))
wrpcap(sys.argv[1], pk)
"#;

const T0: i64 = 1_700_000_000_000;

/// One expected unidirectional flow: addresses, ports, protocol, packets,
/// IP bytes, TCP flags, and (start, end) relative to T0 in ms. softflowd (and
/// pmacct's nfprobe, derived from it) tracks a conversation as one bidirectional
/// flow and exports it as two records that share its first and last packet times.
struct Want {
    src: &'static str,
    dst: &'static str,
    sport: u16,
    dport: u16,
    proto: u8,
    packets: u64,
    bytes: u64,
    flags: u8,
    times: (i64, i64),
}

/// IP bytes: 40 per bare TCP segment (20 + 20, scapy adds no options), 140 per
/// 100-byte payload, 1040 per 1000-byte payload; UDP 28 + payload.
const WANT: &[Want] = &[
    // SYN, 5 x PSH|ACK with 100 bytes, FIN|ACK: 40 + 5*140 + 40.
    Want {
        src: "10.45.0.7",
        dst: "93.184.216.34",
        sport: 40001,
        dport: 443,
        proto: 6,
        packets: 7,
        bytes: 780,
        flags: 0x1b,
        times: (0, 3250),
    },
    // SYN|ACK, 5 x ACK with 1000 bytes, FIN|ACK: 40 + 5*1040 + 40.
    Want {
        src: "93.184.216.34",
        dst: "10.45.0.7",
        sport: 443,
        dport: 40001,
        proto: 6,
        packets: 7,
        bytes: 5280,
        flags: 0x13,
        times: (0, 3250),
    },
    Want {
        src: "10.45.0.7",
        dst: "8.8.8.8",
        sport: 5353,
        dport: 53,
        proto: 17,
        packets: 3,
        bytes: 3 * 58,
        flags: 0,
        times: (3500, 4750),
    },
    Want {
        src: "8.8.8.8",
        dst: "10.45.0.7",
        sport: 53,
        dport: 5353,
        proto: 17,
        packets: 3,
        bytes: 3 * 88,
        flags: 0,
        times: (3500, 4750),
    },
    Want {
        src: "10.45.0.7",
        dst: "198.51.100.9",
        sport: 50000,
        dport: 22,
        proto: 6,
        packets: 1,
        bytes: 40,
        flags: 0x02,
        times: (5000, 5000),
    },
    Want {
        src: "10.45.0.7",
        dst: "198.51.100.9",
        sport: 50000,
        dport: 23,
        proto: 6,
        packets: 1,
        bytes: 40,
        flags: 0x02,
        times: (5250, 5250),
    },
    Want {
        src: "10.45.0.7",
        dst: "198.51.100.9",
        sport: 50000,
        dport: 80,
        proto: 6,
        packets: 1,
        bytes: 40,
        flags: 0x02,
        times: (5500, 5500),
    },
    Want {
        src: "10.45.0.7",
        dst: "198.51.100.9",
        sport: 50000,
        dport: 2323,
        proto: 6,
        packets: 1,
        bytes: 40,
        flags: 0x02,
        times: (5750, 5750),
    },
    Want {
        src: "10.45.0.7",
        dst: "198.51.100.9",
        sport: 50000,
        dport: 8080,
        proto: 6,
        packets: 1,
        bytes: 40,
        flags: 0x02,
        times: (6000, 6000),
    },
];

fn write_pcap(dir: &Path) -> PathBuf {
    let py = Path::new("/usr/bin/python3");
    assert!(
        py.is_file(),
        "/usr/bin/python3 not found: apt-get install -y python3-scapy"
    );
    let pcap = dir.join("conv.pcap");
    let out = Command::new(py)
        .arg("-c")
        .arg(SCAPY)
        .arg(&pcap)
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        out.status.success() && pcap.is_file(),
        "scapy failed (apt-get install -y python3-scapy): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap
}

/// Receives datagrams until the exporter has exited and the socket stayed quiet
/// for a while. Err if it failed or sent nothing (with its log when it has one).
fn collect(
    sock: &UdpSocket,
    mut child: Child,
    what: &str,
    log: Option<&Path>,
) -> Result<Vec<Vec<u8>>, String> {
    let log_text = || {
        log.and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    let mut quiet_after_exit = 0;
    let mut buf = vec![0u8; 65535];
    loop {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{what}: no end of export within 60 s\n{}",
                log_text()
            ));
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                got.push(buf[..n].to_vec());
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{what}: recv: {e}"),
        }
        if let Some(status) = child.try_wait().expect("wait") {
            if !status.success() {
                return Err(format!("{what} exited with {status}\n{}", log_text()));
            }
            quiet_after_exit += 1;
            if quiet_after_exit >= 5 {
                break;
            }
        }
    }
    if got.is_empty() {
        return Err(format!("{what} sent nothing\n{}", log_text()));
    }
    Ok(got)
}

fn decode_all(datagrams: &[Vec<u8>], version: u16) -> Vec<FlowRecord> {
    let mut c = Collector::default();
    let mut out = Vec::new();
    let exporter: IpAddr = "127.0.0.1".parse().unwrap();
    for (i, d) in datagrams.iter().enumerate() {
        let s = c
            .decode(exporter, d, T0, &mut out)
            .unwrap_or_else(|e| panic!("datagram {i}: {e}"));
        assert_eq!(s.version, version);
        assert_eq!(s.pending_sets, 0, "templates come first");
    }
    out.sort_by_key(|r| (r.start_ms, r.src_port, r.dst_port));
    out
}

/// Asserts one record per expected flow, with exact counters, ports, protocol,
/// flags and times; with `abs_times` false only the durations are checked.
fn check(what: &str, mut got: Vec<FlowRecord>, abs_times: bool) {
    for r in &got {
        eprintln!("{what}: {r:?}");
    }
    assert_eq!(
        got.len(),
        WANT.len(),
        "{what}: one record per unidirectional flow"
    );
    for w in WANT {
        let src: IpAddr = w.src.parse().unwrap();
        let dst: IpAddr = w.dst.parse().unwrap();
        let i = got
            .iter()
            .position(|r| {
                (r.src, r.dst, r.src_port, r.dst_port, r.proto)
                    == (src, dst, w.sport, w.dport, w.proto)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{what}: no record for {}:{} -> {}:{}",
                    w.src, w.sport, w.dst, w.dport
                )
            });
        let r = got.swap_remove(i);
        let ctx = format!("{what}: {}:{} -> {}:{}", w.src, w.sport, w.dst, w.dport);
        assert_eq!(
            (r.packets, r.bytes),
            (w.packets, w.bytes),
            "{ctx}: packets, bytes"
        );
        assert_eq!(r.tcp_flags, w.flags, "{ctx}: tcp flags");
        assert_eq!(r.sampling, 1, "{ctx}: unsampled");
        if abs_times {
            assert_eq!(
                (r.start_ms, r.end_ms),
                (T0 + w.times.0, T0 + w.times.1),
                "{ctx}: times"
            );
        } else {
            assert_eq!(
                r.end_ms - r.start_ms,
                w.times.1 - w.times.0,
                "{ctx}: duration"
            );
        }
    }
}

fn softflowd(version: u16) -> Vec<FlowRecord> {
    let bin = tool("softflowd", "softflowd");
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = write_pcap(dir.path());
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    // -c none: no control socket (it would otherwise wait on it forever).
    let child = Command::new(bin)
        .args(["-d", "-r"])
        .arg(&pcap)
        .args([
            "-n",
            &format!("127.0.0.1:{port}"),
            "-v",
            &version.to_string(),
            "-A",
            "milli",
            "-c",
            "none",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn softflowd");
    let datagrams = collect(&sock, child, "softflowd", None).unwrap_or_else(|e| panic!("{e}"));
    decode_all(&datagrams, version)
}

#[test]
fn softflowd_netflow_v5() {
    // softflowd's v5 header carries its wall clock as unix_secs while the
    // sysUptime values follow the capture: absolute times land "now", only
    // durations are meaningful. (Its v9 header is consistent; see below.)
    check("softflowd v5", softflowd(5), false);
}

#[test]
fn softflowd_netflow_v9() {
    // FIRST/LAST_SWITCHED relative to the header's sysUptime and unix_secs.
    check("softflowd v9", softflowd(9), true);
}

#[test]
fn softflowd_ipfix() {
    // IPFIX with -A milli: flowStart/EndMilliseconds carry the capture times.
    check("softflowd IPFIX", softflowd(10), true);
}

/// One pmacctd run; Err when it failed (see `pmacctd_nfprobe_ipfix`).
fn pmacctd_once(bin: &Path, dir: &Path, pcap: &Path) -> Result<Vec<Vec<u8>>, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    let conf = dir.join("pmacctd.conf");
    let log = dir.join("pmacctd.log");
    let _ = std::fs::remove_file(&log);
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\n\
             logfile: {}\n\
             pcap_savefile: {}\n\
             plugins: nfprobe[x]\n\
             nfprobe_receiver[x]: 127.0.0.1:{port}\n\
             nfprobe_version[x]: 10\n\
             nfprobe_timeouts[x]: tcp=5:udp=5:maxlife=10:expint=1\n",
            log.display(),
            pcap.display()
        ),
    )
    .expect("write conf");
    // It reads the file (after a 2 s pause), flushes its flows and exits.
    let child = Command::new(bin)
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pmacctd");
    collect(&sock, child, "pmacctd", Some(&log))
}

#[test]
fn pmacctd_nfprobe_ipfix() {
    let bin = tool("pmacctd", "pmacct");
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = write_pcap(dir.path());
    // pmacctd 1.7.7 has a race at the end of a savefile: the core sometimes stops
    // the nfprobe plugin before it flushes ("Shutting down on user request",
    // then "connection lost to 'x-nfprobe'", exit status 1, nothing sent); seen
    // under CPU load. A failed run is retried, up to three runs; the failures
    // are printed, and three failures fail the test.
    let mut failures = Vec::new();
    let datagrams = loop {
        match pmacctd_once(&bin, dir.path(), &pcap) {
            Ok(d) => break d,
            Err(e) => {
                eprintln!("pmacctd run {} failed: {e}", failures.len() + 1);
                failures.push(e);
                assert!(
                    failures.len() < 3,
                    "pmacctd failed three times:\n{}",
                    failures.join("\n")
                );
            }
        }
    };
    check("pmacctd nfprobe IPFIX", decode_all(&datagrams, 10), true);
}
