//! Heap bytes per device of the engine at a million devices.
//!
//! Every device is provisioned (`Event::UpsertDevices`, batches of 1,000, with
//! ICCID, MSISDN and bound IMEI) and then has one open session, from an
//! accounting Start followed by an Interim carrying IMEISV, MSISDN, cell
//! (ECGI), serving network, RAT, time zone, APN and framed IP, as a PGW sends
//! them. A counting global allocator (wrapping `System`) measures the live
//! heap before and after; the encoded snapshot size is reported too.
//!
//! Run: `cargo run --release -p simguard-engine --example memory_per_device`
//! Options: `--devices N` (default 1,000,000), `--no-sessions`, `--json`,
//! `--shuffle` (provision and send in a scrambled IMSI order instead of
//! ascending; B-tree nodes fill differently), `--no-framed-ip` (records
//! without Framed-IP-Address: shows what the address table costs).

use simguard_engine::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// Counts live heap bytes (as requested by callers) and the peak.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn add(n: isize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    if n > 0 {
        PEAK.fetch_max(now, Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            add(l.size() as isize);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            add(l.size() as isize);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        add(-(l.size() as isize));
        ALLOCS.fetch_sub(1, Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            add(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

/// Resident set size from /proc/self/statm (Linux), bytes; 0 elsewhere.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

const T0: i64 = 1_790_000_000_000;

fn imsi(n: u64) -> Digits {
    // 15 digits: MCC 901, MNC 70, 10-digit MSIN.
    Digits::parse(&format!("90170{n:010}")).unwrap()
}

fn device_record(n: u64) -> DeviceRecord {
    // A Luhn-valid-looking 19-digit ICCID, 12-digit MSISDN, 14-digit IMEI.
    DeviceRecord {
        imsi: imsi(n),
        iccid: Some(format!("894901700{n:010}")),
        msisdn: Digits::parse(&format!("4917{n:08}")),
        bound_imei: Digits::parse(&format!("352099{n:08}")),
        tenant: format!("tenant-{}", n % 10),
        group: format!("group-{}", n % 100),
        lifecycle: Lifecycle::Active,
        label: None,
    }
}

fn acct(n: u64, status: AcctStatus, time: i64, up: u64, down: u64, framed_ip: bool) -> Event {
    let plmn = Plmn::parse("26201");
    Event::Accounting(AcctRecord {
        time,
        received: time,
        nas: format!("pgw-{}", n % 4),
        status,
        // Realistic PGW session ids: 8 hex digits of the charging id + a counter.
        session_id: format!("{:08X}-{:08X}", n as u32 ^ 0x5A5A_0000, n),
        imsi: imsi(n),
        imeisv: Digits::parse(&format!("352099{n:08}23")),
        msisdn: Digits::parse(&format!("4917{n:08}")),
        apn: Some("iot.simguard".into()),
        framed_ip: framed_ip.then(|| Ipv4Addr::from(0x0A00_0000u32 | (n as u32 & 0x00FF_FFFF))),
        up_octets: up,
        down_octets: down,
        up_packets: up / 100,
        down_packets: down / 100,
        session_time: Some(((time - T0) / 1000) as u32),
        terminate_cause: None,
        interim_interval: Some(3600),
        charging_id: Some(n as u32),
        network: plmn,
        rat: Some(6),
        cell: Some(Cell {
            kind: CellKind::Ecgi,
            plmn: plmn.unwrap(),
            area: (n % 65_536) as u32,
            id: n % (1 << 28),
        }),
        time_zone: Some(TimeZone {
            offset_minutes: 60,
            dst_hours: 0,
        }),
    })
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn main() {
    let mut n_devices: u64 = 1_000_000;
    let mut sessions = true;
    let mut json = false;
    let mut shuffle = false;
    let mut framed_ip = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--devices" => {
                n_devices = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--devices N")
            }
            "--no-sessions" => sessions = false,
            "--json" => json = true,
            "--shuffle" => shuffle = true,
            "--no-framed-ip" => framed_ip = false,
            other => {
                eprintln!(
                    "unknown argument {other:?}; use --devices N, --no-sessions, --json, --shuffle"
                );
                std::process::exit(2);
            }
        }
    }

    // Device number for position i: identity, or a fixed scramble (a
    // multiplier coprime to N permutes 0..N).
    let order = |i: u64| -> u64 {
        if !shuffle {
            return i;
        }
        let mut a: u64 = 2_654_435_761 % n_devices.max(1);
        while a < 2 || gcd(a, n_devices) != 1 {
            a += 1;
        }
        ((i as u128 * a as u128) % n_devices as u128) as u64
    };

    let t = Instant::now();
    let base = live();
    let mut engine = Engine::new(EngineOptions::default());
    let mut out = Vec::new();
    let mut seq = 0u64;

    // 1. Provisioning, in batches of 1,000 as the CSV importer writes them.
    const BATCH: u64 = 1000;
    let mut n = 0;
    while n < n_devices {
        let end = (n + BATCH).min(n_devices);
        let ev = Event::UpsertDevices((n..end).map(|i| device_record(order(i))).collect());
        seq += 1;
        engine.apply(seq, &ev, &mut out);
        out.clear();
        n = end;
    }
    let after_provisioning = live() - base;

    // 2. One session per device: Start, then an Interim 10 minutes later.
    if sessions {
        for i in 0..n_devices {
            let ev = acct(order(i), AcctStatus::Start, T0 + i as i64, 0, 0, framed_ip);
            seq += 1;
            engine.apply(seq, &ev, &mut out);
            out.clear();
        }
        for i in 0..n_devices {
            let ev = acct(
                order(i),
                AcctStatus::Interim,
                T0 + 600_000 + i as i64,
                120_000,
                480_000,
                framed_ip,
            );
            seq += 1;
            engine.apply(seq, &ev, &mut out);
            out.clear();
        }
    }
    out.shrink_to_fit();
    let total = live() - base;
    let build_secs = t.elapsed().as_secs_f64();
    let rss_now = rss();

    assert_eq!(engine.device_count() as u64, n_devices);
    if sessions {
        let d = engine.device(imsi(n_devices / 2)).unwrap();
        assert_eq!(d.sessions.len(), 1);
        assert!(d.provisioning.is_some() && d.imeisv.is_some() && d.cell.is_some());
        assert!(d.is_online(engine.clock()));
    }

    let peak_build = PEAK.load(Relaxed) - base;

    // Where the bytes go, from the public state: the devices themselves, the
    // per-device heap blocks, and the rest (indexes, timers, the address
    // table, the interner, unused capacity).
    let mut session_vec_bytes = 0usize;
    let mut session_slots = 0usize;
    let mut session_ids = 0usize;
    let mut iccids = 0usize;
    engine.for_each_device(|d| {
        session_vec_bytes += d.sessions.capacity() * std::mem::size_of::<Session>();
        session_slots += d.sessions.capacity();
        session_ids += d.sessions.iter().map(|s| s.id.len()).sum::<usize>();
        iccids += d
            .provisioning
            .as_ref()
            .and_then(|p| p.iccid.as_ref())
            .map_or(0, |s| s.len());
    });
    let map_payload =
        n_devices as usize * (std::mem::size_of::<Digits>() + std::mem::size_of::<Device>());
    let other = total as usize - map_payload - session_vec_bytes - session_ids - iccids;

    let t2 = Instant::now();
    let snap = engine.encode_snapshot().expect("snapshot");
    let snap_secs = t2.elapsed().as_secs_f64();
    let snap_len = snap.len();
    drop(snap);

    let per = |b: isize| b as f64 / n_devices as f64;
    let dev_size = std::mem::size_of::<Device>();
    let sess_size = std::mem::size_of::<Session>();
    if json {
        println!(
            "{{\"devices\":{n_devices},\"sessions\":{sessions},\"shuffle\":{shuffle},\"framed_ip\":{framed_ip},\"heap_bytes\":{total},\"heap_bytes_per_device\":{:.1},\
\"heap_bytes_per_device_provisioning_only\":{:.1},\"peak_heap_bytes\":{},\"rss_bytes\":{rss_now},\
\"snapshot_bytes\":{snap_len},\"snapshot_bytes_per_device\":{:.1},\"size_of_device\":{dev_size},\
\"size_of_session\":{sess_size},\"build_secs\":{build_secs:.2},\"snapshot_secs\":{snap_secs:.2}}}",
            per(total),
            per(after_provisioning),
            peak_build,
            snap_len as f64 / n_devices as f64,
        );
        return;
    }
    println!("simguard-engine memory per device");
    println!(
        "  devices                         {n_devices} ({} IMSI order)",
        if shuffle { "scrambled" } else { "ascending" }
    );
    println!(
        "  each with                       provisioning{}{}",
        if sessions {
            " + 1 open session (Start + Interim)"
        } else {
            ""
        },
        if sessions && !framed_ip {
            ", no framed IP"
        } else {
            ""
        }
    );
    println!("  size_of::<Device>()             {dev_size} B (stored inline in its partition)");
    println!("  size_of::<Session>()            {sess_size} B (+ session id string)");
    println!(
        "  heap after provisioning         {:>8.1} MiB  = {:>6.1} B/device",
        after_provisioning as f64 / 1048576.0,
        per(after_provisioning)
    );
    println!(
        "  heap, total                     {:>8.1} MiB  = {:>6.1} B/device   (target <= 1024)",
        total as f64 / 1048576.0,
        per(total)
    );
    println!(
        "  peak heap while building        {:>8.1} MiB",
        peak_build as f64 / 1048576.0
    );
    println!("  breakdown of the total heap:");
    let line = |what: &str, b: usize| {
        println!(
            "    {what:<44} {:>7.1} B/device",
            b as f64 / n_devices as f64
        )
    };
    line("devices stored inline (Device + IMSI key)", map_payload);
    line(
        &format!(
            "session Vec buffers ({:.1} slots of {} B each)",
            session_slots as f64 / n_devices as f64,
            sess_size
        ),
        session_vec_bytes,
    );
    line("session id strings", session_ids);
    line("ICCID strings", iccids);
    line("rest: IMSI index, timers, address table, slack", other);
    println!(
        "  process RSS                     {:>8.1} MiB  = {:>6.1} B/device   (allocator overhead included)",
        rss_now as f64 / 1048576.0,
        rss_now as f64 / n_devices as f64
    );
    println!(
        "  encoded snapshot                {:>8.1} MiB  = {:>6.1} B/device",
        snap_len as f64 / 1048576.0,
        snap_len as f64 / n_devices as f64
    );
    println!("  time: build {build_secs:.2} s, snapshot encode {snap_secs:.2} s");
    println!(
        "  result: {}",
        if per(total) <= 1024.0 {
            "PASS (<= 1 KiB/device)"
        } else {
            "FAIL (> 1 KiB/device)"
        }
    );
}
