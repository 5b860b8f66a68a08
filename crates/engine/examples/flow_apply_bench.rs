//! Cost of applying flow records in the engine, and memory of traffic profiles.
//!
//! Builds an engine with 100,000 provisioned devices, each with an open
//! session (so an address tenure), group firewall policies (nine groups with
//! a short deny list, one default-deny group with allow rules), then applies
//! 5,000,000 flows in `Event::Flows` batches of 30 spread over 48 hours of
//! event time: 90% to each device's usual services, 9% to random remote
//! hosts (half of them bare SYNs), 1% from addresses no device holds.
//! Only `Engine::apply` is timed, as the thread's CPU time (Linux
//! schedstat; wall time is printed too, it includes time other processes
//! had the core): batches are generated, encoded and decoded (timed
//! separately) in chunks between timed sections.
//!
//! The cost is cache and TLB misses: each flow touches a random device, its
//! profile and its address entry. Compare `--devices 1000` (all in cache)
//! with the default, and know the machine's memory latency.
//!
//! Then every ring of 1,000 profiles is filled (24 windows, 16 counters, 32
//! flows, 64 violations) to measure the bytes of a full profile with a
//! counting allocator.
//!
//! Run: `cargo run --release -p simguard-engine --example flow_apply_bench`
//! Options: `--devices N` (100,000), `--flows N` (5,000,000), `--batch N` (30).

use simguard_engine::policy::{Cidr, PolicyRule};
use simguard_engine::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size() as isize, Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

/// CPU time this thread has run, ns (Linux schedstat; 0 elsewhere). Unlike
/// wall time it does not count time other processes had the core.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of the whole process (every thread, including the flow
/// workers that have exited), ns, from /proc/self/stat (10 ms ticks).
fn process_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = f.get(11)?.parse().ok()?;
            let stime: u64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) * 10_000_000)
        })
        .unwrap_or(0)
}

const T0: i64 = 1_790_000_000_000;
const HOUR: i64 = 3_600_000;

fn imsi(n: u64) -> Digits {
    Digits::parse(&format!("90170{n:010}")).unwrap()
}

fn device_ip(n: u64) -> Ipv4Addr {
    Ipv4Addr::from(0x0A00_0001u32 + n as u32)
}

/// SplitMix64: a small deterministic generator.
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
        self.next() % n
    }
}

fn rule(
    cidr: &str,
    proto: Option<u8>,
    ports: &[(u16, u16)],
    d: PolicyDirection,
    a: PolicyAction,
) -> PolicyRule {
    PolicyRule {
        cidr: cidr.parse::<Cidr>().unwrap(),
        proto,
        ports: ports.to_vec(),
        direction: d,
        action: a,
    }
}

fn policies() -> Vec<(String, FirewallPolicy)> {
    use PolicyAction::*;
    use PolicyDirection::*;
    let mut v: Vec<(String, FirewallPolicy)> = (0..9)
        .map(|g| {
            (
                format!("group-{g}"),
                FirewallPolicy {
                    default_action: Allow,
                    rules: vec![
                        rule(
                            "0.0.0.0/0",
                            Some(6),
                            &[(23, 23), (2323, 2323)],
                            Outbound,
                            Deny,
                        ),
                        rule("0.0.0.0/0", Some(6), &[(22, 22)], Inbound, Deny),
                        rule("198.18.0.0/15", None, &[(0, 1023)], Both, Deny),
                    ],
                },
            )
        })
        .collect();
    v.push((
        "group-9".into(),
        FirewallPolicy {
            default_action: Deny,
            rules: vec![
                rule(
                    "203.0.113.0/24",
                    Some(6),
                    &[(443, 443), (8883, 8883)],
                    Both,
                    Allow,
                ),
                rule("0.0.0.0/0", Some(17), &[(53, 53)], Both, Allow),
                rule(
                    "192.0.2.0/24",
                    Some(17),
                    &[(123, 123), (5683, 5684)],
                    Both,
                    Allow,
                ),
            ],
        },
    ));
    v
}

fn gen_flow(rng: &mut Rng, n_dev: u64, t: i64) -> FlowRecord {
    let dev = rng.below(n_dev);
    let me = IpAddr::V4(device_ip(dev));
    let kind = rng.below(100);
    let (remote, port, proto, flags) = if kind < 90 {
        // The device's usual services.
        match (dev + rng.below(4)) % 4 {
            0 => (
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, (dev % 200) as u8)),
                443,
                6u8,
                0x1B,
            ),
            1 => (IpAddr::V4(Ipv4Addr::new(203, 0, 113, 250)), 8883, 6, 0x1B),
            2 => (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53)), 53, 17, 0),
            _ => (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 123)), 123, 17, 0),
        }
    } else {
        let r = Ipv4Addr::from(0xC612_0000u32 + rng.below(1 << 17) as u32); // 198.18.0.0/15
        let syn_only = rng.below(2) == 0;
        (
            IpAddr::V4(r),
            rng.below(65536) as u16,
            6,
            if syn_only { 0x02 } else { 0x1B },
        )
    };
    let bytes = 60 + rng.below(20_000);
    let packets = if flags == 0x02 { 1 } else { bytes / 500 + 1 };
    let up = rng.below(10) < 6;
    let (src, dst, sp, dp) = if kind == 99 {
        // No device holds these.
        let a = IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 + rng.below(1 << 16) as u32));
        (a, remote, 40_000, port)
    } else if up {
        (me, remote, 40_000 + (rng.below(20_000) as u16), port)
    } else {
        (remote, me, port, 40_000 + (rng.below(20_000) as u16))
    };
    let dur = rng.below(60_000) as i64;
    FlowRecord {
        start: t - dur,
        end: t,
        src,
        dst,
        src_port: sp,
        dst_port: dp,
        proto,
        tcp_flags: flags,
        bytes,
        packets: if flags == 0x02 { 1 } else { packets },
        sampling: 1,
    }
}

fn main() {
    let mut n_dev: u64 = 100_000;
    let mut n_flows: u64 = 5_000_000;
    let mut batch: usize = 30;
    let mut workers: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a number")
        };
        match a.as_str() {
            "--devices" => n_dev = num(),
            "--flows" => n_flows = num(),
            "--batch" => batch = num() as usize,
            "--workers" => workers = num() as usize,
            other => {
                eprintln!("unknown argument {other:?}; use --devices N, --flows N, --batch N, --workers N");
                std::process::exit(2);
            }
        }
    }

    // ---- setup: devices, sessions, policies ----
    let mut engine = Engine::new(EngineOptions::default());
    engine.set_flow_workers(workers);
    let mut out = Vec::new();
    let mut seq = 0u64;
    let apply = |engine: &mut Engine, ev: &Event, out: &mut Vec<Output>, seq: &mut u64| {
        *seq += 1;
        engine.apply(*seq, ev, out);
    };
    for chunk in (0..n_dev).collect::<Vec<_>>().chunks(1000) {
        let recs = chunk
            .iter()
            .map(|&n| DeviceRecord {
                imsi: imsi(n),
                iccid: None,
                msisdn: None,
                bound_imei: None,
                tenant: "acme".into(),
                group: format!("group-{}", n % 10),
                lifecycle: Lifecycle::Active,
                label: None,
            })
            .collect();
        apply(&mut engine, &Event::UpsertDevices(recs), &mut out, &mut seq);
    }
    for (group, policy) in policies() {
        apply(
            &mut engine,
            &Event::SetPolicy { group, policy },
            &mut out,
            &mut seq,
        );
    }
    for n in 0..n_dev {
        let ev = Event::Accounting(AcctRecord {
            time: T0 - HOUR,
            received: T0 - HOUR,
            nas: "pgw-1".into(),
            status: AcctStatus::Start,
            session_id: format!("{n:08X}"),
            imsi: imsi(n),
            imeisv: None,
            msisdn: None,
            apn: Some("iot".into()),
            framed_ip: Some(device_ip(n)),
            up_octets: 0,
            down_octets: 0,
            up_packets: 0,
            down_packets: 0,
            session_time: None,
            terminate_cause: None,
            interim_interval: Some(86_400),
            charging_id: None,
            network: None,
            rat: None,
            cell: None,
            time_zone: None,
        });
        apply(&mut engine, &ev, &mut out, &mut seq);
        out.clear();
    }
    out = Vec::new();
    let heap_before = live();

    // ---- timed: apply 5M flows in batches ----
    let span = 48 * HOUR;
    let mut rng = Rng(42);
    let chunk_batches = 2000usize;
    let mut batches: Vec<Event> = Vec::with_capacity(chunk_batches);
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(chunk_batches);
    let (mut apply_time, mut decode_time) = (Duration::ZERO, Duration::ZERO);
    let mut apply_cpu = 0u64;
    let mut apply_process_cpu = 0u64;
    let mut done = 0u64;
    let mut outputs = 0usize;
    let (mut steady_allocs, mut steady_flows) = (0usize, 0u64);
    while done < n_flows {
        batches.clear();
        encoded.clear();
        while batches.len() < chunk_batches && done < n_flows {
            let k = (n_flows - done).min(batch as u64);
            let flows: Vec<FlowRecord> = (0..k)
                .map(|i| {
                    gen_flow(
                        &mut rng,
                        n_dev,
                        T0 + ((done + i) as i64 * span) / n_flows as i64,
                    )
                })
                .collect();
            let ev = Event::Flows(FlowBatch {
                exporter: "pgw-1".into(),
                received: T0 + ((done + k) as i64 * span) / n_flows as i64 + 1000,
                flows,
            });
            let mut b = Vec::new();
            ev.encode_into(&mut b).unwrap();
            encoded.push(b);
            batches.push(ev);
            done += k;
        }
        let t = Instant::now();
        for b in &encoded {
            std::hint::black_box(Event::decode(b).unwrap());
        }
        decode_time += t.elapsed();

        let allocs = ALLOCS.load(Relaxed);
        let c = cpu_ns();
        let pc = process_cpu_ns();
        let t = Instant::now();
        for ev in &batches {
            seq += 1;
            engine.apply(seq, ev, &mut out);
            outputs += out.len();
            out.clear();
        }
        apply_time += t.elapsed();
        apply_cpu += cpu_ns() - c;
        apply_process_cpu += process_cpu_ns() - pc;
        if done > n_flows * 4 / 5 {
            // The last fifth: profiles are warm.
            steady_allocs += ALLOCS.load(Relaxed) - allocs;
            steady_flows += batches
                .iter()
                .map(|b| match b {
                    Event::Flows(f) => f.flows.len() as u64,
                    _ => 0,
                })
                .sum::<u64>();
        }
    }
    drop(batches);
    drop(encoded);
    out = Vec::new();
    let heap_after = live();
    let s = engine.stats();
    let mut profiles = 0u64;
    let mut profile_bytes = 0u64;
    engine.for_each_device(|d| {
        if let Some(p) = &d.traffic {
            profiles += 1;
            profile_bytes += p.heap_bytes() as u64;
        }
    });

    // ---- full profiles: fill every ring of 1,000 devices ----
    let full_n = 1000u64.min(n_dev);
    // Make their group deny everything so that every flow is a violation.
    apply(
        &mut engine,
        &Event::SetPolicy {
            group: "group-full".into(),
            policy: FirewallPolicy {
                default_action: PolicyAction::Deny,
                rules: vec![],
            },
        },
        &mut out,
        &mut seq,
    );
    let first_new = 10_000_000u64;
    let recs = (0..full_n)
        .map(|k| DeviceRecord {
            imsi: imsi(first_new + k),
            iccid: None,
            msisdn: None,
            bound_imei: None,
            tenant: "acme".into(),
            group: "group-full".into(),
            lifecycle: Lifecycle::Active,
            label: None,
        })
        .collect();
    apply(&mut engine, &Event::UpsertDevices(recs), &mut out, &mut seq);
    let t_full = T0 + span + HOUR;
    for k in 0..full_n {
        let ev = Event::Accounting(AcctRecord {
            time: t_full,
            received: t_full,
            nas: "pgw-2".into(),
            status: AcctStatus::Start,
            session_id: format!("full-{k}"),
            imsi: imsi(first_new + k),
            imeisv: None,
            msisdn: None,
            apn: None,
            framed_ip: Some(Ipv4Addr::from(0x0B00_0000u32 + k as u32)),
            up_octets: 0,
            down_octets: 0,
            up_packets: 0,
            down_packets: 0,
            session_time: None,
            terminate_cause: None,
            interim_interval: None,
            charging_id: None,
            network: None,
            rat: None,
            cell: None,
            time_zone: None,
        });
        apply(&mut engine, &ev, &mut out, &mut seq);
    }
    out.clear();
    out.shrink_to_fit();
    let before_full = live();
    for hour in 0..24i64 {
        let flows: Vec<FlowRecord> = (0..full_n)
            .flat_map(|k| {
                (0..3u32).map(move |j| FlowRecord {
                    start: t_full + hour * HOUR + i64::from(j),
                    end: t_full + hour * HOUR + i64::from(j) + 10,
                    src: IpAddr::V4(Ipv4Addr::from(0x0B00_0000u32 + k as u32)),
                    dst: IpAddr::V4(Ipv4Addr::from(0xC612_0000u32 + (hour as u32) * 3 + j)),
                    src_port: 40_000,
                    dst_port: 443,
                    proto: 6,
                    tcp_flags: 0x1B,
                    bytes: 1000,
                    packets: 4,
                    sampling: 1,
                })
            })
            .collect();
        let ev = Event::Flows(FlowBatch {
            exporter: "x".into(),
            received: t_full + hour * HOUR + 100,
            flows,
        });
        apply(&mut engine, &ev, &mut out, &mut seq);
        out.clear();
    }
    out.shrink_to_fit();
    let full_delta = live() - before_full;
    let mut full_ok = 0;
    let mut full_profile_bytes = 0usize;
    for k in 0..full_n {
        let p = engine.traffic(imsi(first_new + k)).unwrap();
        full_profile_bytes += p.heap_bytes();
        if p.windows().len() == 24
            && p.top_destinations().len() == 16
            && p.recent_flows().count() == 32
            && p.violations().count() == 64
        {
            full_ok += 1;
        }
    }
    // The address table's share, and a snapshot's size, for context.
    let snapshot = engine.encode_snapshot().unwrap().len();

    let ns_apply = apply_cpu as f64 / n_flows as f64;
    let flows_per_s = 1e9 / ns_apply;
    let ns_wall = apply_time.as_nanos() as f64 / n_flows as f64;
    let ns_decode = decode_time.as_nanos() as f64 / n_flows as f64;
    println!("simguard-engine flow apply");
    println!("  devices with sessions           {n_dev}");
    println!(
        "  flows applied                   {n_flows} in batches of {batch}, flow workers {}",
        engine.flow_workers()
    );
    println!(
        "  apply (thread CPU time)         {:>10.0} flows/s   {ns_apply:>6.1} ns/flow   (wall: {ns_wall:.1} ns/flow)",
        flows_per_s
    );
    let ns_process = apply_process_cpu as f64 / n_flows as f64;
    println!(
        "  apply (all threads, CPU time)   {:>10.0} flows/s   {ns_process:>6.1} ns/flow   wall: {:>10.0} flows/s",
        1e9 / ns_process,
        1e9 / ns_wall
    );
    println!(
        "  journal decode (postcard)       {:>10.0} flows/s   {ns_decode:>6.1} ns/flow (not in apply)",
        1e9 / ns_decode
    );
    println!(
        "  attributed / unattributed       {} / {}   policy violations {}   outputs {}",
        s.flows_attributed, s.flows_unattributed, s.policy_violations, outputs
    );
    println!(
        "  allocations, last fifth         {steady_allocs} for {steady_flows} flows ({:.4}/flow)",
        steady_allocs as f64 / steady_flows.max(1) as f64
    );
    println!(
        "  heap growth from flows          {:>8.1} MiB = {:>6.0} B/device ({} profiles, avg heap_bytes {:.0} B)",
        (heap_after - heap_before) as f64 / 1048576.0,
        (heap_after - heap_before) as f64 / n_dev as f64,
        profiles,
        profile_bytes as f64 / profiles.max(1) as f64
    );
    println!(
        "  full profile (24 windows, 16 top, 32 flows, 64 violations): {:.0} B/device measured, {} B bound ({full_ok}/{full_n} full)",
        full_profile_bytes as f64 / full_n as f64,
        TrafficProfile::MAX_HEAP_BYTES
    );
    println!(
        "  heap growth while filling them:  {:.0} B/device (the profiles, the flow detection state, and engine-wide buffers)",
        full_delta as f64 / full_n as f64,
    );
    println!(
        "  size_of: Device {} B, TrafficProfile {} B; address table {} entries",
        std::mem::size_of::<Device>(),
        std::mem::size_of::<TrafficProfile>(),
        engine.ip_table_len()
    );
    println!(
        "  snapshot                        {:.1} MiB",
        snapshot as f64 / 1048576.0
    );
}
