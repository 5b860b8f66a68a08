//! Decode throughput on one core: records/s for a realistic IPFIX stream
//! (softflowd's IPv4 template: 16 fields, 50-byte records, 27 records per
//! 1400-byte datagram), plus NetFlow v9 and v5 streams and a variable-length
//! IPFIX template for comparison.
//!
//! `cargo run --release -p simguard-flow --example decode_bench [seconds-per-case]`

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use simguard_flow::{Collector, FlowRecord};

const EXPORT: u32 = 1_700_000_000;

/// splitmix64, for varied but reproducible record contents.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
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

/// softflowd's IPFIX template 1024 (as captured from softflowd 1.1 -v 10 -A milli).
const SOFTFLOWD: &[(u16, u16)] = &[
    (8, 4),
    (12, 4),
    (152, 8),
    (153, 8),
    (1, 4),
    (2, 4),
    (10, 4),
    (14, 4),
    (61, 1),
    (136, 1),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 1),
    (60, 1),
    (5, 1),
];

fn ipfix_header(o: &mut Vec<u8>, seq: u32) {
    put16(o, 10);
    put16(o, 0); // length, patched
    put32(o, EXPORT);
    put32(o, seq);
    put32(o, 1);
}

fn patch_len(o: &mut [u8], at: usize) {
    let n = (o.len() - at) as u16;
    o[at + 2..at + 4].copy_from_slice(&n.to_be_bytes());
}

fn template_set(o: &mut Vec<u8>, set_id: u16, tid: u16, fields: &[(u16, u16)]) {
    let start = o.len();
    put16(o, set_id);
    put16(o, 0);
    put16(o, tid);
    put16(o, fields.len() as u16);
    for &(ie, len) in fields {
        put16(o, ie);
        put16(o, len);
    }
    patch_len(o, start);
}

fn softflowd_record(o: &mut Vec<u8>, r: &mut Rng) {
    let x = r.next();
    put32(o, 0x0A2D_0000 | (x as u32 & 0xFFFF)); // 10.45.x.x devices
    put32(o, (r.next() >> 32) as u32);
    let start = 1_699_999_000_000 + (x >> 40) % 600_000;
    put64(o, start);
    put64(o, start + (x >> 20) % 60_000);
    put32(o, (r.next() % 1_000_000) as u32);
    put32(o, (r.next() % 1000) as u32);
    put32(o, 0);
    put32(o, 0);
    o.push((x >> 8) as u8 & 1);
    o.push(2);
    put16(o, (x >> 16) as u16);
    put16(o, [443, 53, 80, 8883, 1883][(x % 5) as usize]);
    o.push(if x & 0x100 != 0 { 6 } else { 17 });
    o.push(0x1b);
    o.push(4);
    o.push(0);
}

/// IPFIX stream: one template datagram, then `n` data datagrams of 27 records.
pub fn ipfix_stream(n: usize) -> (Vec<u8>, Vec<Vec<u8>>, usize) {
    let mut t = Vec::new();
    ipfix_header(&mut t, 0);
    template_set(&mut t, 2, 1024, SOFTFLOWD);
    patch_len(&mut t, 0);
    let mut r = Rng(1);
    let per = 27;
    let data = (0..n)
        .map(|i| {
            let mut o = Vec::with_capacity(1400);
            ipfix_header(&mut o, i as u32);
            let s = o.len();
            put16(&mut o, 1024);
            put16(&mut o, 0);
            for _ in 0..per {
                softflowd_record(&mut o, &mut r);
            }
            patch_len(&mut o, s);
            patch_len(&mut o, 0);
            o
        })
        .collect();
    (t, data, per)
}

/// The same with a variable-length interfaceName appended to each record.
fn ipfix_varlen_stream(n: usize) -> (Vec<u8>, Vec<Vec<u8>>, usize) {
    let mut fields = SOFTFLOWD.to_vec();
    fields.push((82, 65535));
    let mut t = Vec::new();
    ipfix_header(&mut t, 0);
    template_set(&mut t, 2, 1025, &fields);
    patch_len(&mut t, 0);
    let mut r = Rng(2);
    let per = 24;
    let data = (0..n)
        .map(|i| {
            let mut o = Vec::with_capacity(1400);
            ipfix_header(&mut o, i as u32);
            let s = o.len();
            put16(&mut o, 1025);
            put16(&mut o, 0);
            for _ in 0..per {
                softflowd_record(&mut o, &mut r);
                o.push(6);
                o.extend_from_slice(b"rmnet0");
            }
            patch_len(&mut o, s);
            patch_len(&mut o, 0);
            o
        })
        .collect();
    (t, data, per)
}

/// NetFlow v9 with a Cisco-like IPv4 template (sysUptime times, 45-byte records).
fn v9_stream(n: usize) -> (Vec<u8>, Vec<Vec<u8>>, usize) {
    let fields: &[(u16, u16)] = &[
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (6, 1),
        (5, 1),
        (1, 4),
        (2, 4),
        (22, 4),
        (21, 4),
        (10, 4),
        (14, 4),
        (61, 1),
        (48, 1),
        (15, 4),
    ];
    let header = |o: &mut Vec<u8>, seq: u32| {
        put16(o, 9);
        put16(o, 0);
        put32(o, 3_600_000);
        put32(o, EXPORT);
        put32(o, seq);
        put32(o, 0);
    };
    let mut t = Vec::new();
    header(&mut t, 0);
    template_set(&mut t, 0, 300, fields);
    let mut r = Rng(3);
    let per = 30;
    let data = (0..n)
        .map(|i| {
            let mut o = Vec::with_capacity(1400);
            header(&mut o, i as u32);
            let s = o.len();
            put16(&mut o, 300);
            put16(&mut o, 0);
            for _ in 0..per {
                let x = r.next();
                put32(&mut o, 0x0A2D_0000 | (x as u32 & 0xFFFF));
                put32(&mut o, (x >> 32) as u32);
                put16(&mut o, (x >> 16) as u16);
                put16(&mut o, 443);
                o.extend_from_slice(&[6, 0x1b, 0]);
                put32(&mut o, (r.next() % 1_000_000) as u32);
                put32(&mut o, 12);
                put32(&mut o, 3_500_000);
                put32(&mut o, 3_590_000);
                put32(&mut o, 1);
                put32(&mut o, 2);
                o.extend_from_slice(&[0, 1]);
                put32(&mut o, 0);
            }
            patch_len(&mut o, s);
            o
        })
        .collect();
    (t, data, per)
}

/// NetFlow v5 datagrams of 30 records.
fn v5_stream(n: usize) -> (Vec<u8>, Vec<Vec<u8>>, usize) {
    let mut r = Rng(4);
    let per = 30;
    let data = (0..n)
        .map(|i| {
            let mut o = Vec::with_capacity(24 + 48 * per);
            put16(&mut o, 5);
            put16(&mut o, per as u16);
            put32(&mut o, 3_600_000);
            put32(&mut o, EXPORT);
            put32(&mut o, 0);
            put32(&mut o, (i * per) as u32);
            put16(&mut o, 0);
            put16(&mut o, 0);
            for _ in 0..per {
                let x = r.next();
                put32(&mut o, 0x0A2D_0000 | (x as u32 & 0xFFFF));
                put32(&mut o, (x >> 32) as u32);
                put32(&mut o, 0);
                put16(&mut o, 1);
                put16(&mut o, 2);
                put32(&mut o, 12);
                put32(&mut o, (r.next() % 1_000_000) as u32);
                put32(&mut o, 3_500_000);
                put32(&mut o, 3_590_000);
                put16(&mut o, (x >> 16) as u16);
                put16(&mut o, 443);
                o.extend_from_slice(&[0, 0x1b, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            }
            o
        })
        .collect();
    (Vec::new(), data, per)
}

fn run(name: &str, (tpl, data, per): (Vec<u8>, Vec<Vec<u8>>, usize), budget: Duration) {
    let exporter: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([192, 0, 2, 1]));
    let mut c = Collector::default();
    let mut out: Vec<FlowRecord> = Vec::with_capacity(64);
    if !tpl.is_empty() {
        if let Err(e) = c.decode(exporter, &tpl, 0, &mut out) {
            eprintln!("{name}: template rejected: {e}");
            return;
        }
    }
    let bytes: usize = data.iter().map(Vec::len).sum::<usize>() / data.len();
    // Warm-up, and a check that every record decodes.
    let mut n = 0usize;
    for d in &data {
        out.clear();
        match c.decode(exporter, d, 0, &mut out) {
            Ok(s) => n += s.records,
            Err(e) => {
                eprintln!("{name}: {e}");
                return;
            }
        }
    }
    assert_eq!(n, data.len() * per, "{name}: all records decode");
    let start = Instant::now();
    let mut records = 0usize;
    let mut checksum = 0u64;
    while start.elapsed() < budget {
        for d in &data {
            out.clear();
            if let Ok(s) = c.decode(exporter, black_box(d), 0, &mut out) {
                records += s.records;
            }
            checksum = checksum.wrapping_add(black_box(&out).last().map_or(0, |r| r.bytes));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = records as f64 / secs;
    println!(
        "{name:<34} {per:>3} rec/datagram ({bytes:>4} B)  {:>6.2} M records/s  {:>5.1} ns/record  (checksum {})",
        rate / 1e6,
        1e9 / rate,
        checksum % 1000
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    println!("simguard-flow decode throughput, one core, output Vec reused:");
    run("IPFIX softflowd IPv4 template", ipfix_stream(2000), budget);
    run(
        "IPFIX + variable-length field",
        ipfix_varlen_stream(2000),
        budget,
    );
    run("NetFlow v9 Cisco-like template", v9_stream(2000), budget);
    run("NetFlow v5", v5_stream(2000), budget);
}
