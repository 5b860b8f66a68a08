//! Cost of applying accounting records in the engine (detection included).
//!
//! 100,000 provisioned devices in ten groups with a declared profile (volume
//! per day, reporting interval, allowed countries), each with one open
//! session; then Interim-Updates round-robin, 5 minutes of event time apart
//! per device, with growing counters, IMEISV, serving network and cell, as a
//! PGW sends them. Only `Engine::apply` of the interims is timed, as the
//! thread's CPU time (wall time printed too).
//!
//! Run: `cargo run --release -p simguard-engine --example acct_apply_bench`
//! Options: `--devices N` (100,000), `--records N` (2,000,000).
//! The file uses only API that predates detection, so the same file can be
//! run against an older engine for a before/after comparison.

use simguard_engine::*;
use std::net::Ipv4Addr;
use std::time::Instant;

const T0: i64 = 1_790_000_000_000;

fn thread_cpu_ns() -> u64 {
    // schedstat: time on CPU (ns) of this thread.
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn imsi(n: u64) -> Digits {
    Digits::parse(&format!("90170{n:010}")).expect("imsi")
}

fn record(n: u64, status: AcctStatus, time: i64, up: u64) -> Event {
    let plmn = Plmn::parse("26201");
    Event::Accounting(AcctRecord {
        time,
        received: time,
        nas: format!("pgw-{}", n % 4),
        status,
        session_id: format!("{:08X}-{:08X}", n as u32 ^ 0x5A5A_0000, n),
        imsi: imsi(n),
        imeisv: Digits::parse(&format!("352099{n:08}23")),
        msisdn: None,
        apn: Some("iot.simguard".into()),
        framed_ip: Some(Ipv4Addr::from(0x0A00_0000u32 | (n as u32 & 0x00FF_FFFF))),
        up_octets: up,
        down_octets: up / 4,
        up_packets: up / 100,
        down_packets: up / 400,
        session_time: Some(((time - T0) / 1000) as u32),
        terminate_cause: None,
        interim_interval: Some(300),
        charging_id: Some(n as u32),
        network: plmn,
        rat: Some(6),
        cell: plmn.map(|p| Cell {
            kind: CellKind::Ecgi,
            plmn: p,
            area: (n % 512) as u32,
            id: n % 4096,
        }),
        time_zone: None,
    })
}

fn main() {
    let mut devices: u64 = 100_000;
    let mut records: u64 = 2_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse().ok());
        match (a.as_str(), v) {
            ("--devices", Some(v)) => devices = v,
            ("--records", Some(v)) => records = v,
            _ => {
                eprintln!("usage: acct_apply_bench [--devices N] [--records N]");
                std::process::exit(2);
            }
        }
    }
    let mut engine = Engine::new(EngineOptions::default());
    let mut out = Vec::new();
    let mut seq = 0u64;
    let mut apply = |e: &mut Engine, ev: &Event, out: &mut Vec<Output>| {
        seq += 1;
        e.apply(seq, ev, out);
        out.clear();
    };
    for g in 0..10 {
        let group = serde_json::json!({
            "id": format!("group-{g}"),
            "tenant": "acme",
            "name": format!("group {g}"),
            "profile": {
                "max_bytes_per_day": 5_000_000u64,
                "report_interval_secs": 300,
                "active_hours": null,
                "allowed_countries": ["DE", "AT"],
                "allowed_networks": [],
                "allowed_rats": [],
                "imei_lock": false
            }
        });
        // Through JSON so that the file compiles whatever fields Group has.
        if let Ok(grp) = serde_json::from_value::<Group>(group) {
            apply(&mut engine, &Event::UpsertGroup(grp), &mut out);
        }
    }
    for chunk in (0..devices).collect::<Vec<_>>().chunks(1000) {
        let list = chunk
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
        apply(&mut engine, &Event::UpsertDevices(list), &mut out);
    }
    for n in 0..devices {
        apply(
            &mut engine,
            &record(n, AcctStatus::Start, T0 + n as i64, 0),
            &mut out,
        );
    }
    // Interims in chunks: build events untimed, apply them timed.
    let mut cpu = 0u64;
    let mut wall = 0f64;
    let mut done = 0u64;
    let mut outputs = 0usize;
    const CHUNK: u64 = 50_000;
    while done < records {
        let n_chunk = CHUNK.min(records - done);
        let events: Vec<Event> = (done..done + n_chunk)
            .map(|i| {
                let n = i % devices;
                let round = (i / devices + 1) as i64;
                // 1-3 kB per report, varying by device and round.
                let up = round as u64 * (1_000 + (n * 37 + round as u64 * 11) % 2_000);
                record(n, AcctStatus::Interim, T0 + round * 300_000 + n as i64, up)
            })
            .collect();
        let c0 = thread_cpu_ns();
        let w0 = Instant::now();
        for ev in &events {
            seq += 1;
            engine.apply(seq, ev, &mut out);
            outputs += out.len();
            out.clear();
        }
        wall += w0.elapsed().as_secs_f64();
        cpu += thread_cpu_ns() - c0;
        done += n_chunk;
    }
    let per = cpu as f64 / records as f64;
    println!("simguard-engine accounting apply");
    println!("  devices                 {devices} (10 groups with declared profiles)");
    println!("  interim records         {records}");
    println!(
        "  apply (thread CPU)      {:>10.0} records/s  {:>7.1} ns/record   (wall {:.1} ns/record)",
        1e9 / per,
        per,
        wall * 1e9 / records as f64
    );
    println!("  outputs                 {outputs}");
}
