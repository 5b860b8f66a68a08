//! Generates a scenario offline and prints its size, labels and benign variety:
//! `cargo run --release -p simguard-sim --example scenario_dump scenarios/small.toml`.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: scenario_dump SCENARIO.toml")?;
    let s = simguard_sim::Scenario::load(&path)?;
    let t = std::time::Instant::now();
    let o = simguard_sim::generate_scenario(&s, "dump")?;
    println!(
        "generated in {:?}: {} requests, {} IPFIX messages, {} flows",
        t.elapsed(),
        o.requests.len(),
        o.ipfix.len(),
        o.flows.len()
    );
    for l in &o.labels {
        println!("{}", serde_json::to_string(l)?);
    }
    println!(
        "benign devices {}, benign device-days {:.1}, device-days {:.1}, {:?}",
        o.report.benign_imsis.len(),
        o.report.benign_device_days,
        o.report.device_days,
        o.report.benign
    );
    Ok(())
}
