#[path = "../tests/common/mod.rs"]
mod common;
use std::time::Duration;
use simguard_sim::{run, SimConfig};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let devices: u32 = a[1].parse().unwrap();
    let speed: f64 = a[2].parse().unwrap();
    let rate: u32 = a[3].parse().unwrap();
    let secs: f64 = a[4].parse().unwrap();
    let responder = common::Responder::start("x", common::Behaviour::Answer, false);
    let mut cfg = SimConfig::new(responder.addr, "x");
    cfg.devices = devices; cfg.speed = speed; cfg.rate = rate; cfg.duration = Some(Duration::from_secs_f64(secs));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let t = std::time::Instant::now();
    let report = rt.block_on(run(cfg, rx)).unwrap();
    println!("{report}\nbuild+run {:?}", t.elapsed());
    println!("{}", serde_json::to_string(&report).unwrap());
}
