//! IPFIX load generator: sends pre-built IPFIX datagrams at a target rate.
//!
//! The stream looks like softflowd's IPv4 export (`-v 10 -A milli`): template
//! 1024 with 16 fields (addresses, flowStart/EndMilliseconds, octets,
//! packets, interfaces, flowDirection, flowEndReason, ports, protocol, TCP
//! flags, ipVersion, ToS), 50-byte records, 27 records in a 1,370-byte
//! datagram. The template is sent first and again every `--template-every`
//! data datagrams. Device addresses are in 10.45.0.0/16, allocated as the
//! simulator's PGW pool does (lowest first, skipping .0 and .255 of every
//! /24): with `--hosts N`, flows use the first N such addresses (which
//! `simguard sim --devices N` gives to its sessions), so they can be
//! attributed; `--unknown-share` of the flows come from 10.45.250.0/23,
//! which no session holds. Half the flows are uplink (device is the source),
//! half downlink. Remote ends are the simulator's service endpoints (mostly
//! the smart meters' head-ends, which its provisioned policy allows), 5%
//! random addresses in 198.18.0.0/15.
//!
//! Datagrams are built once (a pool per socket); per send only the header's
//! export time and sequence number are patched. Each socket is a thread, paced
//! by a token bucket, and sends in batches with `sendmmsg` (Linux/glibc;
//! elsewhere, or with `--no-mmsg`, one `send` per datagram).
//!
//! ```text
//! cargo run --release -p simguard-flow --example ipfix_blast -- \
//!     --target 127.0.0.1:4739 --rate 200000 --seconds 60
//! ```
//!
//! Options:
//! * `--target ADDR` (repeatable; default 127.0.0.1:4739): every datagram goes
//!   to every target (side-by-side comparisons), unless `--spread`, which sends
//!   socket i's datagrams to target i mod n only. `sink` is a local socket
//!   that is never read (measures the generator alone).
//! * `--rate R` records/s over all sockets (0 = as fast as possible).
//! * `--seconds S` (10), or `--records N` total (stops at whichever is first).
//! * `--sockets K` (1): sending threads, each with its own socket and
//!   observation domain (1..=K).
//! * `--batch B` (32): datagrams per `sendmmsg`.
//! * `--per-datagram P` (27), `--hosts N` (10000), `--unknown-share F` (0.1),
//!   `--template-every T` (1000), `--pool D` (1024 datagrams per socket),
//!   `--seed S` (1), `--max-age SECS` (59: flows start 1 s to 60 s before the
//!   generator started, and end before it started), `--progress` (a line per
//!   second on stderr).
//!
//! Prints one JSON object: records and datagrams sent (per target), send
//! errors, wall seconds, achieved records/s and the generator's CPU seconds.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TEMPLATE_ID: u16 = 1024;
const HEADER: usize = 16;

/// softflowd's IPFIX template 1024 (softflowd 1.1 `-v 10 -A milli`).
const SOFTFLOWD: &[(u16, u16)] = &[
    (8, 4),   // sourceIPv4Address
    (12, 4),  // destinationIPv4Address
    (152, 8), // flowStartMilliseconds
    (153, 8), // flowEndMilliseconds
    (1, 4),   // octetDeltaCount
    (2, 4),   // packetDeltaCount
    (10, 4),  // ingressInterface
    (14, 4),  // egressInterface
    (61, 1),  // flowDirection
    (136, 1), // flowEndReason
    (7, 2),   // sourceTransportPort
    (11, 2),  // destinationTransportPort
    (4, 1),   // protocolIdentifier
    (6, 1),   // tcpControlBits
    (60, 1),  // ipVersion
    (5, 1),   // ipClassOfService
];
const RECORD_BYTES: usize = 50;

/// splitmix64: varied but reproducible contents.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[derive(Clone)]
struct Opts {
    targets: Vec<String>,
    spread: bool,
    rate: u64,
    seconds: f64,
    records: u64,
    sockets: usize,
    batch: usize,
    per: usize,
    hosts: u32,
    unknown_share: f64,
    template_every: u64,
    pool: usize,
    seed: u64,
    max_age_ms: u64,
    progress: bool,
    mmsg: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("ipfix_blast: {msg}");
    eprintln!("usage: ipfix_blast [--target ADDR|sink]... [--spread] [--rate R] [--seconds S] [--records N] [--sockets K] [--batch B] [--per-datagram P] [--hosts N] [--unknown-share F] [--template-every T] [--pool D] [--seed S] [--max-age SECS] [--progress] [--no-mmsg]");
    std::process::exit(2);
}

fn parse_args() -> Opts {
    let mut o = Opts {
        targets: Vec::new(),
        spread: false,
        rate: 200_000,
        seconds: 10.0,
        records: u64::MAX,
        sockets: 1,
        batch: 32,
        per: 27,
        hosts: 10_000,
        unknown_share: 0.1,
        template_every: 1000,
        pool: 1024,
        seed: 1,
        max_age_ms: 59_000,
        progress: false,
        mmsg: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> T {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| usage(&format!("bad value for {name}: {v}")))
        }
        match a.as_str() {
            "--target" => o.targets.push(val("--target")),
            "--spread" => o.spread = true,
            "--rate" => o.rate = num("--rate", val("--rate")),
            "--seconds" => o.seconds = num("--seconds", val("--seconds")),
            "--records" => o.records = num("--records", val("--records")),
            "--sockets" => o.sockets = num("--sockets", val("--sockets")),
            "--batch" => o.batch = num("--batch", val("--batch")),
            "--per-datagram" => o.per = num("--per-datagram", val("--per-datagram")),
            "--hosts" => o.hosts = num("--hosts", val("--hosts")),
            "--unknown-share" => o.unknown_share = num("--unknown-share", val("--unknown-share")),
            "--template-every" => {
                o.template_every = num("--template-every", val("--template-every"))
            }
            "--pool" => o.pool = num("--pool", val("--pool")),
            "--seed" => o.seed = num("--seed", val("--seed")),
            "--max-age" => {
                o.max_age_ms = (num::<f64>("--max-age", val("--max-age")) * 1000.0) as u64
            }
            "--progress" => o.progress = true,
            "--no-mmsg" => o.mmsg = false,
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if o.targets.is_empty() {
        o.targets.push("127.0.0.1:4739".to_string());
    }
    if o.sockets == 0 || o.batch == 0 || o.pool == 0 {
        usage("--sockets, --batch and --pool must be at least 1");
    }
    // One set of records must fit in a datagram (65,535 bytes).
    if o.per == 0 || HEADER + 4 + o.per * RECORD_BYTES > 65_000 {
        usage("--per-datagram must be 1..=1299");
    }
    o.max_age_ms = o.max_age_ms.max(1);
    if o.hosts == 0 || o.hosts > 60_000 {
        usage("--hosts must be 1..=60000");
    }
    o.batch = o.batch.min(1024);
    o
}

fn put16(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn put32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn put64(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_be_bytes());
}

fn header(o: &mut Vec<u8>, export: u32, seq: u32, domain: u32) {
    put16(o, 10);
    put16(o, 0); // length, patched
    put32(o, export);
    put32(o, seq);
    put32(o, domain);
}

fn patch_len(o: &mut [u8], at: usize) {
    let n = (o.len() - at) as u16;
    o[at + 2..at + 4].copy_from_slice(&n.to_be_bytes());
}

fn template_datagram(export: u32, seq: u32, domain: u32) -> Vec<u8> {
    let mut o = Vec::with_capacity(128);
    header(&mut o, export, seq, domain);
    let s = o.len();
    put16(&mut o, 2);
    put16(&mut o, 0);
    put16(&mut o, TEMPLATE_ID);
    put16(&mut o, SOFTFLOWD.len() as u16);
    for &(ie, len) in SOFTFLOWD {
        put16(&mut o, ie);
        put16(&mut o, len);
    }
    patch_len(&mut o, s);
    patch_len(&mut o, 0);
    o
}

/// The k-th address of the simulator's pool (10.45.0.0/16, lowest first,
/// skipping .0 and .255).
fn pool_addr(k: u32) -> Ipv4Addr {
    let off = (k / 254) * 256 + 1 + k % 254;
    Ipv4Addr::from(0x0A2D_0000 | (off & 0xFFFF))
}

/// Where the flows go: the endpoints of `simguard sim`'s device profiles.
/// Most go to the smart meters' head-ends and NTP server (which the
/// simulator's provisioning allows for meters, and no other group has a
/// policy), some to the other profiles' services (a policy violation when a
/// meter does it), and `record` sends 5% somewhere new.
fn service(r: &mut Rng) -> (Ipv4Addr, u16, u8) {
    const OTHERS: [([u8; 4], u16, u8); 9] = [
        ([203, 0, 113, 20], 8883, 6), // tracker clouds (MQTT/TLS)
        ([203, 0, 113, 21], 8883, 6),
        ([192, 0, 2, 53], 53, 17),   // resolver
        ([203, 0, 113, 40], 443, 6), // hospitals
        ([203, 0, 113, 41], 443, 6),
        ([198, 51, 100, 50], 443, 6),  // payments
        ([203, 0, 113, 60], 1883, 6),  // vending telemetry
        ([203, 0, 113, 80], 5004, 17), // video (RTP)
        ([203, 0, 113, 80], 443, 6),
    ];
    let x = r.below(100);
    if x < 70 {
        (Ipv4Addr::new(198, 51, 100, 10 + (x & 1) as u8), 443, 6)
    } else if x < 80 {
        (Ipv4Addr::new(198, 51, 100, 123), 123, 17)
    } else {
        let (a, port, proto) = OTHERS[r.below(OTHERS.len() as u64) as usize];
        (Ipv4Addr::from(a), port, proto)
    }
}

fn record(o: &mut Vec<u8>, r: &mut Rng, opts: &Opts, base_ms: u64) {
    let device = if r.chance(opts.unknown_share) {
        Ipv4Addr::from(0x0A2D_FA00 | (r.below(510) as u32 + 1))
    } else {
        pool_addr(r.below(u64::from(opts.hosts)) as u32)
    };
    let (mut remote, mut rport, proto) = service(r);
    if r.chance(0.05) {
        // Now and then somewhere new (scans, updates, NTP pools...).
        // 198.18.0.0/15: the benchmarking range.
        remote = Ipv4Addr::from(0xC612_0000 | r.below(1 << 17) as u32);
        rport = [23, 2323, 22, 8080, 443][r.below(5) as usize];
    }
    let lport = 32_768 + r.below(28_000) as u16;
    let up = r.chance(0.5);
    let (src, dst, sport, dport) = if up {
        (device, remote, lport, rport)
    } else {
        (remote, device, rport, lport)
    };
    let most = if r.chance(0.9) { 20 } else { 2000 };
    let packets = 1 + r.below(most);
    let octets = packets * (40 + r.below(1400));
    // Ended within the last minute (the server's default attribution slack
    // covers sessions that began just before the run).
    let start = base_ms - 1_000 - r.below(opts.max_age_ms);
    let end = (start + r.below(30_000)).min(base_ms - 500);
    put32(o, u32::from(src));
    put32(o, u32::from(dst));
    put64(o, start);
    put64(o, end);
    put32(o, octets as u32);
    put32(o, packets as u32);
    put32(o, 1); // ingressInterface
    put32(o, 2); // egressInterface
    o.push(if up { 1 } else { 0 }); // flowDirection (0 ingress, 1 egress)
    o.push(if r.chance(0.8) { 2 } else { 3 }); // active timeout / end of flow
    put16(o, sport);
    put16(o, dport);
    o.push(proto);
    o.push(if proto == 6 {
        [0x1b, 0x1b, 0x1a, 0x02, 0x12][r.below(5) as usize]
    } else {
        0
    });
    o.push(4);
    o.push(0);
}

/// `count` data datagrams of `opts.per` records (sequence and export time
/// are patched at send time).
fn data_pool(opts: &Opts, domain: u32, base_ms: u64) -> Vec<Vec<u8>> {
    let mut r = Rng(opts
        .seed
        .wrapping_mul(1_000_003)
        .wrapping_add(u64::from(domain)));
    (0..opts.pool)
        .map(|_| {
            let mut o = Vec::with_capacity(HEADER + 4 + opts.per * RECORD_BYTES);
            header(&mut o, 0, 0, domain);
            let s = o.len();
            put16(&mut o, TEMPLATE_ID);
            put16(&mut o, 0);
            for _ in 0..opts.per {
                record(&mut o, &mut r, opts, base_ms);
            }
            patch_len(&mut o, s);
            patch_len(&mut o, 0);
            o
        })
        .collect()
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Batched sends. With sendmmsg, one system call per batch.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod mmsg {
    use std::os::fd::AsRawFd;

    #[repr(C)]
    struct IoVec {
        base: *mut u8,
        len: usize,
    }
    #[repr(C)]
    struct MsgHdr {
        name: *mut u8,
        namelen: u32,
        iov: *mut IoVec,
        iovlen: usize,
        control: *mut u8,
        controllen: usize,
        flags: i32,
    }
    #[repr(C)]
    struct MMsgHdr {
        hdr: MsgHdr,
        len: u32,
    }
    extern "C" {
        fn sendmmsg(fd: i32, msgvec: *mut MMsgHdr, vlen: u32, flags: i32) -> i32;
    }

    /// Sends every datagram of `bufs` on the connected socket; returns
    /// (sent, errors). A failing datagram is counted and skipped.
    pub fn send_all(sock: &std::net::UdpSocket, bufs: &mut [&mut Vec<u8>]) -> (u64, u64) {
        let mut iov: Vec<IoVec> = bufs
            .iter_mut()
            .map(|b| IoVec {
                base: b.as_mut_ptr(),
                len: b.len(),
            })
            .collect();
        let mut msgs: Vec<MMsgHdr> = iov
            .iter_mut()
            .map(|v| MMsgHdr {
                hdr: MsgHdr {
                    name: std::ptr::null_mut(),
                    namelen: 0,
                    iov: v,
                    iovlen: 1,
                    control: std::ptr::null_mut(),
                    controllen: 0,
                    flags: 0,
                },
                len: 0,
            })
            .collect();
        let (mut at, mut sent, mut errors) = (0usize, 0u64, 0u64);
        while at < msgs.len() {
            // SAFETY: every header points at an iovec of `iov` that points
            // at a live buffer of the stated length; all outlive the call.
            let n = unsafe {
                sendmmsg(
                    sock.as_raw_fd(),
                    msgs[at..].as_mut_ptr(),
                    (msgs.len() - at) as u32,
                    0,
                )
            };
            if n > 0 {
                at += n as usize;
                sent += n as u64;
            } else {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // The first datagram failed (e.g. ECONNREFUSED from an
                // earlier ICMP): count it and go on with the next.
                errors += 1;
                at += 1;
            }
        }
        (sent, errors)
    }
}

fn send_batch(sock: &UdpSocket, bufs: &mut [&mut Vec<u8>], use_mmsg: bool) -> (u64, u64) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if use_mmsg {
        return mmsg::send_all(sock, bufs);
    }
    let _ = use_mmsg;
    let (mut sent, mut errors) = (0, 0);
    for b in bufs.iter() {
        match sock.send(b) {
            Ok(_) => sent += 1,
            Err(_) => errors += 1,
        }
    }
    (sent, errors)
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    datagrams: AtomicU64,
    templates: AtomicU64,
    errors: AtomicU64,
}

struct Sender {
    id: usize,
    socks: Vec<UdpSocket>,
    opts: Opts,
    /// Data datagrams this thread is to send per second (0 = unpaced).
    dgram_rate: f64,
    max_dgrams: u64,
    deadline: Instant,
    base_ms: u64,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Sender {
    fn run(self) {
        let domain = self.id as u32 + 1;
        let mut pool = data_pool(&self.opts, domain, self.base_ms);
        let per = self.opts.per as u64;
        let mut seq: u32 = 0; // IPFIX: data records sent before this message
        let mut sent_data: u64 = 0;
        let mut since_template = u64::MAX;
        let mut next = 0usize;
        let t0 = Instant::now();
        let batch = self.opts.batch;
        let mut tpl: Vec<u8>;
        while !self.stop.load(Ordering::Relaxed) && sent_data < self.max_dgrams {
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            // Token bucket: how many datagrams are due by now.
            let want = if self.dgram_rate > 0.0 {
                let due = ((now - t0).as_secs_f64() * self.dgram_rate) as u64;
                if due <= sent_data {
                    let wait = (sent_data + 1) as f64 / self.dgram_rate - (now - t0).as_secs_f64();
                    std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.000_05, 0.002)));
                    continue;
                }
                (due - sent_data).min(batch as u64)
            } else {
                batch as u64
            }
            .min(self.max_dgrams - sent_data) as usize;
            let export = unix_now().as_secs() as u32;
            if since_template >= self.opts.template_every {
                tpl = template_datagram(export, seq, domain);
                for s in &self.socks {
                    let (ok, err) = send_batch(s, &mut [&mut tpl], self.opts.mmsg);
                    self.counters.templates.fetch_add(ok, Ordering::Relaxed);
                    self.counters.errors.fetch_add(err, Ordering::Relaxed);
                }
                if since_template == u64::MAX {
                    // Let the collector learn the template before the data.
                    std::thread::sleep(Duration::from_millis(20));
                }
                since_template = 0;
            }
            // Take `want` datagrams from the pool (wrapping), patch headers.
            let mut picked: Vec<&mut Vec<u8>> = Vec::with_capacity(want);
            {
                let n = pool.len();
                let first = next;
                let (a, b) = pool.split_at_mut(first);
                for d in b.iter_mut().chain(a.iter_mut()).take(want.min(n)) {
                    d[4..8].copy_from_slice(&export.to_be_bytes());
                    d[8..12].copy_from_slice(&seq.to_be_bytes());
                    seq = seq.wrapping_add(per as u32);
                    picked.push(d);
                }
                next = (first + picked.len()) % n;
            }
            let k = picked.len() as u64;
            for s in &self.socks {
                let (ok, err) = send_batch(s, &mut picked, self.opts.mmsg);
                self.counters.datagrams.fetch_add(ok, Ordering::Relaxed);
                self.counters.records.fetch_add(ok * per, Ordering::Relaxed);
                self.counters.errors.fetch_add(err, Ordering::Relaxed);
            }
            sent_data += k;
            since_template = since_template.saturating_add(k);
        }
    }
}

/// CPU seconds (user + system) this process used, from /proc/self/stat
/// (assumes the usual 100 ticks/s).
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = s.rsplit(") ").next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat are 12 and 13 after the command.
    (t(11) + t(12)) / 100.0
}

fn main() {
    let opts = parse_args();
    // `sink`: a local socket nobody reads (the kernel drops what overflows it).
    let mut sinks = Vec::new();
    let targets: Vec<SocketAddr> = opts
        .targets
        .iter()
        .map(|t| {
            if t == "sink" {
                let s = UdpSocket::bind("127.0.0.1:0").expect("bind sink");
                let a = s.local_addr().expect("sink address");
                sinks.push(s);
                a
            } else {
                t.parse()
                    .unwrap_or_else(|_| usage(&format!("bad target {t}")))
            }
        })
        .collect();
    for t in &targets {
        if !t.ip().is_loopback() {
            usage("targets must be loopback addresses (benchmark traffic stays on this machine)");
        }
    }
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let base_ms = unix_now().as_millis() as u64;
    let dgram_rate = opts.rate as f64 / opts.per as f64 / opts.sockets as f64;
    let total_dgrams = if opts.records == u64::MAX {
        u64::MAX
    } else {
        opts.records.div_ceil(opts.per as u64)
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(opts.seconds.max(0.0));
    let mut threads = Vec::new();
    for id in 0..opts.sockets {
        let mine: Vec<SocketAddr> = if opts.spread {
            vec![targets[id % targets.len()]]
        } else {
            targets.clone()
        };
        let socks = mine
            .iter()
            .map(|t| {
                let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
                s.connect(t).expect("connect");
                s
            })
            .collect();
        let per_thread = if total_dgrams == u64::MAX {
            u64::MAX
        } else {
            total_dgrams / opts.sockets as u64
                + u64::from((id as u64) < total_dgrams % opts.sockets as u64)
        };
        let s = Sender {
            id,
            socks,
            opts: opts.clone(),
            dgram_rate,
            max_dgrams: per_thread,
            deadline,
            base_ms,
            counters: counters.clone(),
            stop: stop.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("blast-{id}"))
                .spawn(move || s.run())
                .expect("spawn"),
        );
    }
    if opts.progress {
        let c = counters.clone();
        let st = stop.clone();
        std::thread::spawn(move || {
            let mut last = 0;
            let mut i = 0;
            while !st.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                i += 1;
                let r = c.records.load(Ordering::Relaxed);
                eprintln!("ipfix_blast: t={i}s records={r} (+{}/s)", r - last);
                last = r;
            }
        });
    }
    for t in threads {
        let _ = t.join();
    }
    stop.store(true, Ordering::Relaxed);
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let records = counters.records.load(Ordering::Relaxed);
    let datagrams = counters.datagrams.load(Ordering::Relaxed);
    let n_targets = if opts.spread { 1 } else { targets.len() } as u64;
    let datagram_bytes = HEADER + 4 + opts.per * RECORD_BYTES;
    println!(
        "{{\"targets\":{:?},\"spread\":{},\"sockets\":{},\"batch\":{},\"mmsg\":{},\"records_per_datagram\":{},\"datagram_bytes\":{},\"rate_target\":{},\"records\":{},\"datagrams\":{},\"records_per_target\":{},\"templates\":{},\"send_errors\":{},\"seconds\":{:.3},\"records_per_s\":{:.0},\"cpu_seconds\":{:.2}}}",
        targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        opts.spread,
        opts.sockets,
        opts.batch,
        opts.mmsg && cfg!(all(target_os = "linux", target_env = "gnu")),
        opts.per,
        datagram_bytes,
        opts.rate,
        records,
        datagrams,
        records / n_targets.max(1),
        counters.templates.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
        wall,
        records as f64 / n_targets.max(1) as f64 / wall,
        cpu
    );
    drop(sinks);
}
