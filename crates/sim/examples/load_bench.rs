//! Load-mode throughput against the in-test responder on loopback, the simulator on a
//! single-threaded runtime (one core) and the responder on its own thread.
//!
//! cargo run --release -p simguard-sim --example load_bench -- [rate] [seconds] [sockets] [devices]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use simguard_sim::{run, Mode, SimConfig};

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rate: u32 = arg(1, 100_000);
    let seconds: f64 = arg(2, 5.0);
    let sockets: usize = arg(3, 16);
    let devices: u32 = arg(4, 10_000);
    let responder = common::Responder::start("bench-secret", common::Behaviour::Answer, false);
    let mut cfg = SimConfig::new(responder.addr, "bench-secret");
    cfg.devices = devices;
    cfg.sockets = sockets;
    cfg.mode = Mode::Load {
        rate,
        duration: Duration::from_secs_f64(seconds),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let before = thread_cpu_secs();
    let report = rt.block_on(run(cfg, rx))?;
    let sim_cpu = thread_cpu_secs() - before;
    let seen = responder.finish();
    println!("{report}");
    println!("responder answered {}", seen.answered);
    // Other work on the machine steals cycles from a wall-clock measurement; the
    // simulator thread's own CPU time tells what one dedicated core would sustain.
    println!(
        "simulator thread: {sim_cpu:.2} CPU s for {} answered requests = {:.0} requests per CPU second",
        report.answered,
        report.answered as f64 / sim_cpu.max(1e-9)
    );
    Ok(())
}

/// User+system CPU seconds of the calling thread (Linux procfs; 0 elsewhere).
fn thread_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}
