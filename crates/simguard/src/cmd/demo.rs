//! `simguard demo`: the platform plus a simulated fleet, on embedded
//! defaults. Restarting on the same data directory continues where it was.

use crate::client::ApiClient;
use crate::cmd::fleet_inventory;
use anyhow::{Context, Result};
use clap::Args;
use simguard_server::config::Config;
use simguard_server::{Server, StartOptions};
use simguard_sim::{Mode, ProfileMix, SimConfig};
use std::path::Path;
use std::time::Duration;

#[derive(Args)]
pub struct DemoArgs {
    /// Devices in the simulated fleet.
    #[arg(long, default_value_t = 2000)]
    pub devices: u32,
    /// Simulated seconds per wall second (60: an hour of fleet life per minute).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Stop after this many wall seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Most RADIUS requests per second from the simulator.
    #[arg(long, default_value_t = 5000)]
    pub rate: u32,
}

/// The demo's API token: SIMGUARD_ADMIN_TOKEN, else the one kept in the data
/// directory from an earlier run, else a new one written there.
fn demo_token(data_dir: &Path) -> Result<String> {
    if let Some(t) = crate::cmd::serve::admin_token_from_env() {
        return Ok(t);
    }
    let path = data_dir.join("demo-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let t = format!("demo-{:016x}", rand_u64());
    std::fs::write(&path, &t).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(t)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

pub async fn run(a: DemoArgs) -> Result<()> {
    let cfg = Config::load(None)?;
    let token = demo_token(&cfg.data_dir)?;
    let secret = cfg
        .radius
        .clients
        .iter()
        .find(|c| c.address.contains(&std::net::IpAddr::from([127, 0, 0, 1])))
        .map(|c| c.secret.clone())
        .context(
            "the configuration has no RADIUS client for 127.0.0.1, which the simulator needs",
        )?;
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: Some(token.clone()),
        },
    )
    .await?;
    let base = format!("http://{}", server.http_addr);
    let api = ApiClient::new(&base, &token)?;

    let mix = ProfileMix::default();
    let fleet = simguard_sim::fleet(a.seed, a.devices, &mix, 0.002);
    let provisioned = fleet_inventory::provision(&api, &fleet).await?;

    // Continue simulated time where the previous run left it.
    let engine_secs = (server.engine.read().clock() / 1000).max(0) as u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut sim = SimConfig::new(server.acct_addr, secret);
    sim.seed = a.seed;
    sim.devices = a.devices;
    sim.mix = mix;
    sim.unprovisioned_share = 0.002;
    sim.speed = a.speed;
    sim.start_unix = now.max(engine_secs + 1);
    sim.rate = a.rate;
    sim.mode = Mode::Fleet;
    // The fleet's traffic as IPFIX, consistent with its accounting.
    sim.ipfix_target = Some(server.ipfix_addr);

    println!();
    println!("simguard demo is running");
    println!(
        "  fleet       {} devices ({provisioned} provisioned), simulated time x{}",
        a.devices, a.speed
    );
    println!("  RADIUS      udp://{} (accounting)", server.acct_addr);
    println!(
        "  IPFIX       udp://{} (flows from the simulated fleet)",
        server.ipfix_addr
    );
    println!("  API         {base}/api/v1/devices");
    println!("  token       {token}");
    println!(
        "  try         curl -s -H 'Authorization: Bearer {token}' '{base}/api/v1/devices?limit=5'"
    );
    println!("  findings    {base}/api/v1/findings  (live: curl -N -H 'Authorization: Bearer {token}' {base}/api/v1/events)");
    println!("  metrics     {base}/metrics");
    println!("  data        survives restarts; stop with Ctrl-C");
    println!();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sim_task = tokio::spawn(simguard_sim::run(sim, stop_rx));
    match a.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(d)) => {}
                _ = crate::cmd::serve::stop_signal() => {}
            }
        }
        None => crate::cmd::serve::stop_signal().await,
    }
    let _ = stop_tx.send(true);
    match sim_task.await {
        Ok(Ok(report)) => println!("{report}"),
        Ok(Err(e)) => eprintln!("simulator stopped with an error: {e}"),
        Err(e) => eprintln!("simulator task failed: {e}"),
    }
    {
        let e = server.engine.read();
        println!(
            "engine: {} devices, journal at {}",
            e.device_count(),
            e.seq()
        );
    }
    server.shutdown().await;
    Ok(())
}
